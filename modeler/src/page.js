// The modeler page. It opens a deployed version, a draft or a file, saves drafts, and validates and deploys
// through liuhen's API. The page template (api/templates/modeler.html) provides the elements used here.

import { Api } from './api';
import { decodeBpmn } from './encoding';
import { createTranslate } from './i18n';
import { addAutomaticLayout, hasDiagram } from './layout';
import { createModeler } from './modeler';

const UNREADABLE = /^unparsable content|^unknown type|^unrecognized element/;
const UNRESOLVED = /^unresolved reference/;
const KEPT_ATTRIBUTE = /^unknown attribute/;

export function startModelerPage(document) {
  const root = document.getElementById('liuhen-modeler');
  const locale = document.documentElement.lang === 'en' ? 'en' : 'zh-CN';
  const translate = createTranslate(locale);
  const api = new Api(root.dataset.token, locale);
  const modeler = createModeler({
    canvas: document.getElementById('modeler-canvas'),
    properties: document.getElementById('modeler-properties'),
    translate
  });
  const page = new ModelerPage(document, modeler, api, translate);

  page.bindControls();
  page.refreshLists();
  page.openInitial(root.dataset);
  return page;
}

class ModelerPage {
  constructor(document, modeler, api, translate) {
    this.document = document;
    this.modeler = modeler;
    this.api = api;
    this.translate = translate;
    this.dirty = false;
    this.unreadable = [];
    this.filename = 'flowchart.bpmn';
    this.draftNames = new Set();

    // The draft this diagram was opened from or last saved as; saving under another existing name asks first.
    this.currentDraft = null;

    // Whether the diagram was edited since it was opened or last deployed, and the sentence shown in the
    // deployment confirmation when it was not. Saving a draft does not reset it, because the confirmation
    // compares with what was opened or deployed, not with the draft.
    this.changedSinceBaseline = false;
    this.unchangedNote = '';

    modeler.on('commandStack.changed', () => {
      this.setDirty(true);
      this.changedSinceBaseline = true;
    });

    // Leaving a field writes what was typed at once, rather than after the debounce delay.
    document.getElementById('modeler-properties').addEventListener('focusout', () => {
      modeler.get('debounceInput').flush();
    });
  }

  element(id) {
    return this.document.getElementById(id);
  }

  bindControls() {
    const on = (id, handler) => this.element(id).addEventListener('click', () => this.run(handler));

    on('modeler-new', () => this.openNew());
    on('modeler-open-definition', () => this.openSelectedDefinition());
    on('modeler-open-draft', () => this.openSelectedDraft());
    on('modeler-save-draft', () => this.saveDraft());
    on('modeler-validate', () => this.validate());
    on('modeler-deploy', () => this.deploy());
    on('modeler-download', () => this.download());
    this.element('modeler-file').addEventListener('change', (event) => this.run(() => this.openFile(event.target)));
  }

  /**
   * Run one user action and report its failure in the status line, so no error goes unseen. A quiet
   * action (such as refreshing a list) leaves the status line alone unless it fails.
   */
  async run(action, { quiet = false } = {}) {
    if (!quiet) {
      this.report('busy', this.translate('Working…'));
    }
    try {
      await action();
    } catch (error) {
      this.report('error', error.message || String(error));
    }
  }

  // Opening

  async openInitial({ process, version, draft }) {
    if (process && version) {
      await this.run(() => this.openDefinition(process, version));
    } else if (draft) {
      await this.run(() => this.openDraft(draft));
    } else {
      await this.run(() => this.openNew());
    }
  }

  confirmDiscard() {
    return !this.dirty || window.confirm(this.translate('There are unsaved changes. Discard them?'));
  }

  async openNew() {
    if (!this.confirmDiscard()) {
      return;
    }
    await this.modeler.createDiagram();
    this.afterOpen({
      source: this.translate('a new flowchart'), filename: 'flowchart.bpmn', draftName: '', warnings: []
    });
  }

  async openSelectedDefinition() {
    const value = this.element('modeler-definitions').value;
    if (!value) {
      throw new Error(this.translate('Choose a deployed version first.'));
    }
    const { process, version } = JSON.parse(value);
    await this.openDefinition(process, version);
  }

  async openDefinition(process, version) {
    if (!this.confirmDiscard()) {
      return;
    }
    const buffer = await this.api.definitionBpmn(process, version);
    await this.openBytes(buffer, {
      source: this.translate('deployed version {version} of {process}', { process, version }),
      filename: `${process}.bpmn`,
      draftName: process
    });
  }

  async openSelectedDraft() {
    const name = this.element('modeler-drafts').value;
    if (!name) {
      throw new Error(this.translate('Choose a draft first.'));
    }
    await this.openDraft(name);
  }

  async openDraft(name) {
    if (!this.confirmDiscard()) {
      return;
    }
    const buffer = await this.api.draftBpmn(name);
    await this.openBytes(buffer, {
      source: this.translate('draft {name}', { name }), filename: `${name}.bpmn`, draftName: name
    });
    this.currentDraft = name;
  }

  async openFile(input) {
    const file = input.files && input.files[0];
    if (!file) {
      return;
    }
    if (!this.confirmDiscard()) {
      input.value = '';
      return;
    }
    const buffer = await file.arrayBuffer();
    input.value = '';
    await this.openBytes(buffer, {
      source: this.translate('file {name}', { name: file.name }),
      filename: file.name,
      draftName: file.name.replace(/\.(bpmn|xml)$/i, '').replace(/\.bpmn20$/i, '')
    });
  }

  async openBytes(buffer, { source, filename, draftName }) {
    let xml;
    let laidOut = false;

    try {
      xml = decodeBpmn(buffer, this.translate);
      if (!hasDiagram(xml)) {
        xml = await addAutomaticLayout(xml);
        laidOut = true;
      }
      const { warnings } = await this.modeler.importXML(xml);
      this.afterOpen({ source, filename, draftName, warnings, laidOut });
    } catch (error) {
      throw new Error(this.translate('Could not open the file: {reason}', { reason: error.message }));
    }
  }

  afterOpen({ source, filename, draftName, warnings, laidOut }) {
    this.filename = filename;
    this.currentDraft = null;
    if (draftName !== undefined) {
      this.element('modeler-draft-name').value = draftName;
    }
    this.modeler.get('canvas').zoom('fit-viewport', 'auto');
    this.setDirty(false);
    this.changedSinceBaseline = false;
    this.unchangedNote = this.translate('The diagram has not changed since you opened {source}.', { source });

    const messages = [ this.translate('Opened {source}.', { source }) ];
    if (laidOut) {
      messages.push(this.translate(
        'The file has no diagram (no BPMN DI), so it was laid out automatically. Lanes and pools are not drawn.'));
    }
    const unresolved = warnings.filter((warning) => UNRESOLVED.test(warning.message || '')).length;
    if (unresolved) {
      messages.push(this.translate('{count} references to ids that the file does not define are kept as they are.',
        { count: unresolved }));
    }
    this.unreadable = warnings.filter((warning) => UNREADABLE.test(warning.message || ''));
    const notes = warnings.filter((warning) => {
      const message = warning.message || '';
      return !UNRESOLVED.test(message) && !KEPT_ATTRIBUTE.test(message) && !UNREADABLE.test(message);
    });

    this.report(this.unreadable.length ? 'warning' : 'info', messages.join(' '), [
      ...listed(this.translate('The modeler cannot read these parts of the file, and saving would drop them:'),
        this.unreadable),
      ...listed(this.translate('Notes on the diagram:'), notes)
    ]);
  }

  // Saving

  /** Return the current diagram as BPMN text, with input still waiting in the panel's debounce written first. */
  async currentXml() {
    this.modeler.get('debounceInput').flush();
    if (this.unreadable.length && !window.confirm(this.translate(
      'Parts of this file cannot be read by the modeler and will be lost if you save it. Save anyway?'))) {
      return null;
    }
    const { xml } = await this.modeler.saveXML({ format: true });
    return xml;
  }

  async saveDraft() {
    const name = this.element('modeler-draft-name').value.trim();
    if (!name) {
      throw new Error(this.translate('Enter a draft name first.'));
    }
    if (/[/\\]/.test(name)) {
      throw new Error(this.translate('A draft name must not contain / or \\.'));
    }
    if (name !== this.currentDraft && this.draftNames.has(name)
      && !window.confirm(this.translate('A draft named {name} already exists. Replace it?', { name }))) {
      this.report('info', '');
      return;
    }
    const xml = await this.currentXml();
    if (xml === null) {
      return;
    }
    try {
      await this.api.saveDraft(name, xml);
    } catch (error) {
      throw new Error(this.translate('Saving failed: {reason}', { reason: error.message }));
    }
    this.setDirty(false);
    this.currentDraft = name;
    this.report('success', this.translate('Saved draft {name}.', { name }));
    await this.refreshDrafts(name);
  }

  async validate() {
    const xml = await this.currentXml();
    if (xml === null) {
      return;
    }
    try {
      const result = await this.api.validate(xml, this.filename);
      const processes = result.processes.join(', ');
      this.report('success', this.translate('The file is valid: {processes}.', { processes }));
    } catch (error) {
      this.showProblem(error);
      throw new Error(this.translate('Validation failed: {reason}', { reason: error.message }));
    }
  }

  async deploy() {
    const question = await this.deployQuestion();
    if (!window.confirm(question)) {
      this.report('info', this.translate('Deployment cancelled; nothing was deployed.'));
      return;
    }
    const xml = await this.currentXml();
    if (xml === null) {
      return;
    }
    let result;
    try {
      result = await this.api.deploy(xml, this.filename);
    } catch (error) {
      this.showProblem(error);
      throw new Error(this.translate('Deployment failed: {reason}', { reason: error.message }));
    }
    this.setDirty(false);
    this.changedSinceBaseline = false;
    this.unchangedNote = this.translate('The diagram has not changed since it was last deployed.');
    this.report('success', result.processes.map((deployed) => deployed.message).join(' '));
    await this.refreshDefinitions();
  }

  /**
   * Return the question asked before deploying: the version each executable process would get, read from
   * the deployed versions now, and whether the diagram is unchanged. The server keeps the existing version
   * instead when the saved file is byte for byte one it already has.
   */
  async deployQuestion() {
    this.modeler.get('debounceInput').flush();
    const definitions = await this.api.listDefinitions();
    const newest = new Map();
    for (const definition of definitions) {
      newest.set(definition.process_id, Math.max(newest.get(definition.process_id) || 0, definition.version));
    }
    const lines = executableProcesses(this.modeler).map((process) => {
      const label = process.name
        ? this.translate('{name} ({id})', { name: process.name, id: process.id }) : process.id;
      return '- ' + this.translate('version {version} of {process}',
        { version: (newest.get(process.id) || 0) + 1, process: label });
    });
    const parts = [ lines.length
      ? [ this.translate('Deploy this flowchart? This creates:'), ...lines ].join('\n')
      : this.translate('Deploy this flowchart?') ];
    if (!this.changedSinceBaseline) {
      parts.push(this.unchangedNote);
    }
    return parts.join('\n\n');
  }

  async download() {
    const xml = await this.currentXml();
    if (xml === null) {
      return;
    }
    const link = this.document.createElement('a');
    link.href = URL.createObjectURL(new Blob([ xml ], { type: 'application/xml' }));
    link.download = this.filename.replace(/\.xml$/i, '.bpmn');
    link.click();
    URL.revokeObjectURL(link.href);
  }

  /** Select the element that an API error names, so the designer can find the problem in the diagram. */
  showProblem(error) {
    const elementId = error.details && error.details.element_id;
    const shape = elementId && this.modeler.get('elementRegistry').get(elementId);
    if (shape) {
      this.modeler.get('selection').select(shape);
      this.modeler.get('canvas').scrollToElement(shape);
    }
  }

  // Lists of deployed versions and drafts

  async refreshLists() {
    await Promise.all([
      this.run(() => this.refreshDefinitions(), { quiet: true }),
      this.run(() => this.refreshDrafts(), { quiet: true })
    ]);
  }

  async refreshDefinitions() {
    const definitions = await this.api.listDefinitions();
    const options = definitions
      .slice()
      .sort((left, right) => left.process_id.localeCompare(right.process_id) || right.version - left.version)
      .map((definition) => option(
        JSON.stringify({ process: definition.process_id, version: definition.version }),
        `${definition.name || definition.process_id} · ${definition.process_id} v${definition.version}`));
    fillSelect(this.element('modeler-definitions'), options, this.translate('(nothing deployed yet)'));
  }

  async refreshDrafts(selected) {
    const drafts = await this.api.listDrafts();
    this.draftNames = new Set(drafts.map((draft) => draft.name));
    const options = drafts.map((draft) => option(draft.name, `${draft.name} · ${draft.saved_by} · ${draft.saved_at}`));
    fillSelect(this.element('modeler-drafts'), options, this.translate('(no drafts yet)'), selected);
  }

  // Status

  setDirty(dirty) {
    this.dirty = dirty;
    this.element('modeler-dirty').textContent = dirty ? this.translate('Unsaved changes') : '';
  }

  report(kind, message, details = []) {
    const status = this.element('modeler-status');
    status.className = `modeler-status ${kind}`;
    status.dataset.kind = kind;
    status.replaceChildren(this.document.createTextNode(message));
    if (details.length) {
      const list = this.document.createElement('ul');
      for (const detail of details) {
        const item = this.document.createElement('li');
        item.textContent = detail;
        list.appendChild(item);
      }
      status.appendChild(list);
    }
  }
}

/** List the processes a deployment would create versions of: the executable ones, as the server requires. */
function executableProcesses(modeler) {
  const definitions = modeler.getDefinitions();
  const roots = (definitions && definitions.rootElements) || [];
  return roots.filter((element) => element.$type === 'bpmn:Process' && element.isExecutable)
    .map((process) => ({ id: process.id, name: process.name }));
}

function listed(heading, warnings) {
  return warnings.length ? [ heading, ...warnings.map((warning) => warning.message.split('\n')[0]) ] : [];
}

function option(value, label) {
  return { value, label };
}

function fillSelect(select, options, emptyLabel, selected) {
  select.replaceChildren();
  if (!options.length) {
    const empty = new Option(emptyLabel, '');
    select.appendChild(empty);
    return;
  }
  for (const { value, label } of options) {
    select.appendChild(new Option(label, value, false, value === selected));
  }
}
