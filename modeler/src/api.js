// Calls to liuhen's HTTP API with the token the modeler page was issued. Errors come back as
// {"error": {"code", "message", "details"}} with the message already in the reader's language.

export class ApiError extends Error {
  constructor(message, code, details, status) {
    super(message);
    this.code = code;
    this.details = details || {};
    this.status = status;
  }
}

export class Api {
  constructor(token, locale) {
    this.token = token;
    this.language = locale === 'en' ? 'en' : 'zh-CN';
  }

  async request(method, path, { body, contentType } = {}) {
    const headers = { 'Authorization': `Bearer ${this.token}`, 'Accept-Language': this.language };
    if (contentType) {
      headers['Content-Type'] = contentType;
    }
    const response = await fetch(path, { method, headers, body, credentials: 'same-origin' });
    if (!response.ok) {
      throw await apiError(response);
    }
    return response;
  }

  async json(method, path, options) {
    return (await this.request(method, path, options)).json();
  }

  listDefinitions() {
    return this.json('GET', '/api/definitions');
  }

  async definitionBpmn(processId, version) {
    const path = `/api/definitions/${encodeURIComponent(processId)}/versions/${encodeURIComponent(version)}/bpmn`;
    return (await this.request('GET', path)).arrayBuffer();
  }

  validate(xml, filename) {
    return this.json('POST', `/api/definitions/validate?filename=${encodeURIComponent(filename)}`,
      { body: xml, contentType: 'application/xml' });
  }

  deploy(xml, filename) {
    return this.json('POST', `/api/definitions?filename=${encodeURIComponent(filename)}`,
      { body: xml, contentType: 'application/xml' });
  }

  listDrafts() {
    return this.json('GET', '/api/modeler/drafts');
  }

  async draftBpmn(name) {
    return (await this.request('GET', `/api/modeler/drafts/${encodeURIComponent(name)}`)).arrayBuffer();
  }

  saveDraft(name, xml) {
    return this.json('PUT', `/api/modeler/drafts/${encodeURIComponent(name)}`,
      { body: xml, contentType: 'application/xml' });
  }

  deleteDraft(name) {
    return this.request('DELETE', `/api/modeler/drafts/${encodeURIComponent(name)}`);
  }
}

async function apiError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    // Not JSON: a proxy or the server failed before liuhen could respond.
  }
  const error = body && body.error;
  if (error && error.message) {
    return new ApiError(error.message, error.code, error.details, response.status);
  }
  return new ApiError(`HTTP ${response.status} ${response.statusText}`, 'http_error', {}, response.status);
}
