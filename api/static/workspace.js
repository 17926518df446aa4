/* The workspace pages' script. It reads the JSON API with the sign-in cookie, polls it while the page
 * is visible and after every action, and builds every text node with textContent, never with HTML.
 * The supervision pages load it first and use its helpers through window.liuhenWorkspace. */
(function () {
  "use strict";

  const SVG_NAMESPACE = "http://www.w3.org/2000/svg";
  const config = readJson("ws-config");
  // Every page has the shared texts, and a page with texts of its own adds another script.ws-texts block.
  const texts = Object.assign({}, ...Array.from(document.querySelectorAll("script.ws-texts"),
                                                (node) => JSON.parse(node.textContent)));
  const people = new Map();

  // Basics

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : {};
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function text(key, params) {
    let value = Object.prototype.hasOwnProperty.call(texts, key) ? texts[key] : key;
    for (const [name, replacement] of Object.entries(params || {})) {
      value = value.split("{" + name + "}").join(String(replacement));
    }
    return value;
  }

  /* Set the attributes of an HTML or SVG element and append its children, leaving out null, undefined and false. */
  function build(node, attributes, children) {
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.setAttribute("class", value);
      else if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function el(tag, attributes, ...children) {
    return build(document.createElement(tag), attributes, children);
  }

  function svg(tag, attributes, ...children) {
    return build(document.createElementNS(SVG_NAMESPACE, tag), attributes, children);
  }

  function link(path) {
    if (!config.langQuery) return path;
    return path + (path.includes("?") ? "&" : "?") + config.langQuery;
  }

  /* Write `query` into the page's address, with the chosen language, so a reload or a shared link shows the same view. */
  function keepInAddress(query) {
    const params = new URLSearchParams(query);
    const lang = new URLSearchParams(location.search).get("lang");
    if (lang) params.set("lang", lang);
    const search = params.toString();
    history.replaceState(null, "", location.pathname + (search ? "?" + search : ""));
  }

  const timeFormat = new Intl.DateTimeFormat(config.locale, {
    timeZone: config.timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
    minute: "2-digit", hour12: false,
  });
  const numberFormat = new Intl.NumberFormat(config.locale, {maximumFractionDigits: 1});

  function parseTime(value) {
    // Trace times carry microseconds, but Date reads at most milliseconds reliably.
    return new Date(String(value).replace(/(\.\d{3})\d+/, "$1"));
  }

  function formatTime(value) {
    if (!value) return "";
    const moment = parseTime(value);
    return Number.isNaN(moment.getTime()) ? String(value) : timeFormat.format(moment);
  }

  function fillTimes(root) {
    for (const node of (root || document).querySelectorAll(".ws-time[data-time]")) {
      node.textContent = formatTime(node.dataset.time);
    }
  }

  // The JSON API

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
    }
  }

  /* Call the API and return the parsed JSON response, the text of any other response, or null for an empty
   * one such as 204. `options.body` is sent as JSON, or as it is (a string or a File) when `options.contentType`
   * names its type. Failures throw an ApiError. */
  async function api(path, options) {
    const settings = options || {};
    const headers = {"Accept": "application/json", "Accept-Language": config.locale, "X-Requested-With": "fetch"};
    const init = {method: settings.method || "GET", headers: headers, credentials: "same-origin", cache: "no-store"};
    if (settings.body !== undefined) {
      headers["Content-Type"] = settings.contentType || "application/json";
      init.body = settings.contentType ? settings.body : JSON.stringify(settings.body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, "network_error", text("networkError"), {});
    }
    // Read the text first: a 204 response has no body even when FastAPI labels it as JSON.
    const isJson = (response.headers.get("content-type") || "").includes("json");
    const raw = await response.text();
    let body = null;
    let readable = true;
    if (raw !== "") {
      try {
        body = isJson ? JSON.parse(raw) : raw;
      } catch (error) {
        readable = false;
      }
    }
    if (response.ok && readable) return body;
    const error = (isJson && body && body.error) || {};
    if (response.status === 401) showSignIn();
    throw new ApiError(response.status, error.code || "http_error",
                       error.message || text("requestFailed", {status: response.status}), error.details);
  }

  function showStatus(message) {
    const node = byId("ws-status");
    if (node) node.textContent = message;
  }

  function showAlert(message) {
    const node = byId("ws-alert");
    if (!node) return;
    node.replaceChildren(message);
    node.hidden = !message;
  }

  function showSignIn() {
    const currentPage = location.pathname + location.search;
    showAlert(el("span", {}, text("signedOut") + " ",
                 el("a", {href: "/login?next=" + encodeURIComponent(currentPage), text: text("signInAgain")})));
  }

  /* Run `task` now and every `interval` ms while the page is visible. The returned function runs it at once. */
  function poll(task, interval) {
    let timer = null;
    let running = false;
    let again = false;
    let failed = false;

    async function run() {
      clearTimeout(timer);
      if (running) {
        again = true;
        return;
      }
      if (!document.hidden) {
        running = true;
        try {
          await task();
          if (failed) showAlert("");
          failed = false;
        } catch (error) {
          failed = true;
          if (error.status !== 401) showAlert(error.message);
        } finally {
          running = false;
        }
        if (again) {
          again = false;
          run();
          return;
        }
      }
      timer = setTimeout(run, interval);
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) run();
    });
    run();
    return run;
  }

  // Shared pieces: people, values, status, cards

  /* Show the display name of each .ws-person under `root`, passed through `format` when one is given. */
  async function resolvePeople(root, format) {
    const nodes = Array.from((root || document).querySelectorAll(".ws-person[data-username]"));
    const missing = [...new Set(nodes.map((node) => node.dataset.username))]
      .filter((name) => name && name !== "system" && !people.has(name));
    if (missing.length) {
      const query = missing.map((name) => "username=" + encodeURIComponent(name)).join("&");
      const names = await api("/api/workspace/people?" + query);
      for (const name of missing) people.set(name, names[name] || name);
    }
    for (const node of nodes) {
      const name = node.dataset.username;
      const displayName = name === "system" ? text("system") : people.get(name) || name;
      node.textContent = format ? format(displayName) : displayName;
    }
  }

  function person(username) {
    return el("span", {class: "ws-person", dataset: {username: username || ""}, text: username || "-"});
  }

  function statusLabel(status) {
    return (config.statusLabels || {})[status] || status;
  }

  function stepName(elementId, fallback) {
    return (config.stepNames || {})[elementId] || fallback || elementId || "";
  }

  function formatValue(name, value) {
    const field = (config.fieldLabels || {})[name];
    if (value === null || value === undefined || value === "") return text("empty");
    if (typeof value === "boolean") return value ? text("yes") : text("no");
    if (field && field.type === "enum" && field.options[value]) return field.options[value];
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function fieldLabel(name) {
    const field = (config.fieldLabels || {})[name];
    return field ? field.label : name;
  }

  function renderData(list, data) {
    const entries = Object.entries(data || {});
    if (!entries.length) {
      list.replaceChildren(el("dd", {class: "ws-empty", text: text("noData")}));
      return;
    }
    list.replaceChildren(...entries.flatMap(([name, value]) => [
      el("dt", {text: fieldLabel(name), title: name}),
      el("dd", {dataset: {field: name}, text: formatValue(name, value)}),
    ]));
  }

  const CARD_RANK = {red: 0, yellow: 1};

  function cardBadge(card) {
    const colour = card === "red" || card === "yellow" ? card : "none";
    let label = text("noCard");
    if (colour === "red") label = text("redCard");
    if (colour === "yellow") label = text("yellowCard");
    return el("span", {class: "ws-card ws-card-" + colour, dataset: {card: colour}, text: label});
  }

  function timeLeft(item) {
    if (typeof item.days_left === "number") {
      const days = numberFormat.format(Math.abs(item.days_left));
      if (item.days_left < 0) return text("overdueDays", {days: days});
      if (item.days_left === 0) return text("dueToday");
      return text("daysLeft", {days: days});
    }
    if (item.due_at) return text("dueAt", {time: formatTime(item.due_at)});
    return text("readySince", {time: formatTime(item.created_at)});
  }

  function urgencyKey(task) {
    const card = task.card in CARD_RANK ? CARD_RANK[task.card] : 2;
    const days = typeof task.days_left === "number" ? task.days_left : Infinity;
    const due = task.due_at ? parseTime(task.due_at).getTime() : Infinity;
    return [card, days, due, parseTime(task.created_at).getTime() || 0];
  }

  function byUrgency(first, second) {
    const a = urgencyKey(first);
    const b = urgencyKey(second);
    for (let i = 0; i < a.length; i += 1) {
      if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return 0;
  }

  // Timeline of a case, from its trace

  const REACHING_KINDS = new Set(["task_completed", "gateway_decision", "end_event_reached", "timer_fired",
                                  "step_skipped"]);

  const CONTROL_OUTCOMES = {passed: "controlPassed", failed: "controlFailed", overridden: "controlOverridden"};
  const CONTROL_MARKS = {passed: "✓", failed: "✗", overridden: "!"};
  // Milliseconds of typing pause before the task page checks the step's controls again.
  const CHECK_DELAY_MS = 400;

  function eventLabel(event) {
    return (config.kindLabels || {})[event.kind] || event.kind;
  }

  function eventDetail(event) {
    const payload = event.payload || {};
    if (event.kind === "task_completed" && payload.data && Object.keys(payload.data).length) {
      return el("ul", {class: "ws-event-data"}, Object.entries(payload.data).map(([name, value]) =>
        el("li", {}, el("span", {class: "ws-label", text: fieldLabel(name) + text("colon")}), formatValue(name, value))));
    }
    if (event.kind === "gateway_decision" && Array.isArray(payload.taken)) {
      // The flow's name (是, 合格) reads better than its condition; traces from before names were kept have none.
      return el("p", {}, payload.taken.map((flow) => text("wentTo", {step: stepName(flow.target)}) +
        (flow.name || flow.condition ? " (" + (flow.name || flow.condition) + ")" : "")).join(text("listSeparator")));
    }
    if (event.kind === "task_ready" && payload.lane) return el("p", {text: text("postIs", {post: payload.lane})});
    if (event.kind === "case_started" && payload.title) return el("p", {text: payload.title});
    if (event.kind === "task_released" && payload.previous_assignee) {
      return el("p", {}, text("releasedBy") + " ", person(payload.previous_assignee));
    }
    if (event.kind === "control_evaluated") {
      // event.message is the stored message in the page's language; older events carry English text only.
      const outcome = CONTROL_OUTCOMES[payload.outcome] ? text(CONTROL_OUTCOMES[payload.outcome]) : payload.outcome;
      return el("p", {text: [payload.control_id, outcome, event.message || payload.message].filter(Boolean)
        .join(" · ")});
    }
    if (event.kind.startsWith("clock_") && payload.clock) {
      // Which clock moved, and its due time or the reason of its pause.
      const clock = clockName({clock: payload.clock, element_id: event.element_id});
      let detail = payload.due_at ? text("dueAt", {time: formatTime(payload.due_at)}) : "";
      if (event.kind === "clock_paused") detail = (config.pauseReasons || {})[payload.reason] || payload.reason || "";
      return el("p", {text: [clock, detail].filter(Boolean).join(" · ")});
    }
    if (event.kind === "card_raised") {
      return el("p", {}, cardBadge(payload.colour), " ",
                payload.clock ? clockName({clock: payload.clock, element_id: event.element_id}) : "");
    }
    if (event.kind === "risk_event") {
      const level = (config.levelLabels || {})[payload.level] || payload.level;
      return el("p", {text: [(config.riskKinds || {})[payload.risk_kind] || payload.risk_kind, level,
                             payload.checkpoint_id].filter(Boolean).join(" · ")});
    }
    const note = payload.reason || event.message || payload.message;
    return note ? el("p", {text: String(note)}) : null;
  }

  function timelineItem(event) {
    let step = event.element_id && event.kind !== "case_started" ? stepName(event.element_id) : "";
    // A gateway without a name would show its id, which means nothing to readers.
    if (event.kind === "gateway_decision") step = (config.stepNames || {})[event.element_id] || "";
    return el("li", {dataset: {seq: event.seq, kind: event.kind}},
      el("div", {class: "ws-event-head"},
        el("span", {class: "ws-seq", text: "#" + event.seq}),
        el("time", {datetime: event.at, text: formatTime(event.at)}),
        person(event.actor),
        el("strong", {text: eventLabel(event)}),
        step ? el("span", {class: "ws-step", text: step}) : null),
      eventDetail(event));
  }

  async function loadTimeline(caseId) {
    const events = await api("/api/cases/" + caseId + "/trace");
    const list = byId("ws-timeline");
    list.replaceChildren(...events.map(timelineItem));
    await resolvePeople(list);
    return events;
  }

  // Notices (督办) addressed to the signed-in user, where the server offers them. Each open notice has a form
  // for the answer. A notice answered on this page stays in the list, with its answer, until the page is left.

  function noticesArea() {
    const aside = byId("ws-notices");
    if (!aside) return;
    const list = aside.querySelector("ul");
    const casePath = config.name === "audit" || config.name === "audit_case" ? "/workspace/audit/cases/" : "/workspace/cases/";
    // Polling keeps the list item of a notice whose status did not change, so a half-typed answer keeps its focus.
    const items = new Map();
    const answeredHere = new Map();
    let available = true;

    function summary(notice) {
      return el("p", {class: "ws-notice-summary"},
        el("a", {href: link(casePath + notice.case_id), text: text("caseNumber", {case_id: notice.case_id}) +
                 (notice.case_title ? text("colon") + notice.case_title : "")}),
        " · " + [clockName(notice), notice.post ? text("postIs", {post: notice.post}) : "",
                 text("dueAt", {time: formatTime(notice.due_at)}),
                 text("openedAt", {time: formatTime(notice.opened_at)}),
                 notice.status === "answered" ? text("noticeAnswered") : text("noticeOpen")]
          .filter(Boolean).join(" · "));
    }

    function answerShown(notice) {
      return el("div", {class: "ws-notice-answer"},
        el("p", {class: "ws-label"}, text("answeredBy") + " ", person(notice.answered_by),
           " · " + formatTime(notice.answered_at)),
        el("p", {class: "ws-answer-text", text: notice.answer}));
    }

    function answerForm(notice) {
      const inputId = "ws-answer-" + notice.id;
      const errorId = inputId + "-error";
      const box = el("textarea", {id: inputId, name: "answer", rows: 2, maxlength: 4000, required: true,
                                  "aria-required": "true", "aria-describedby": errorId});
      const error = el("p", {class: "ws-field-error", id: errorId, hidden: true});
      const button = el("button", {type: "submit", text: text("sendAnswer")});
      const form = el("form", {class: "ws-answer-form", novalidate: true},
        el("label", {for: inputId, text: text("answerLabel", {case_id: notice.case_id})}), box, error, button);

      function showProblem(message) {
        error.textContent = message;
        error.hidden = false;
        box.setAttribute("aria-invalid", "true");
        box.focus();
      }

      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        error.hidden = true;
        box.removeAttribute("aria-invalid");
        if (!box.value.trim()) {
          showProblem(text("answerRequired"));
          return;
        }
        button.disabled = true;
        try {
          const answered = await api("/api/supervision/notices/" + encodeURIComponent(notice.id) + "/answer",
                                     {method: "POST", body: {answer: box.value}});
          answeredHere.set(answered.id, answered);
          const item = noticeItem(answered);
          items.get(notice.id).replaceWith(item);
          items.set(notice.id, item);
          await resolvePeople(item);
          showStatus(text("noticeAnsweredStatus", {case_id: notice.case_id}));
        } catch (failure) {
          showProblem(failure.message);
        } finally {
          button.disabled = false;
        }
      });
      return form;
    }

    function noticeItem(notice) {
      return el("li", {dataset: {notice: notice.id, status: notice.status || ""}}, summary(notice),
                notice.status === "answered" ? answerShown(notice) : answerForm(notice));
    }

    function showNotices(notices) {
      const listed = notices.filter((notice) => !answeredHere.has(notice.id));
      for (const notice of answeredHere.values()) listed.push(notice);
      // Newest first, as the server sorts them.
      listed.sort((a, b) => parseTime(b.opened_at) - parseTime(a.opened_at) || b.id - a.id);
      const nodes = listed.map(function (notice) {
        const known = items.get(notice.id);
        if (known && known.dataset.status === (notice.status || "")) return known;
        const item = noticeItem(notice);
        items.set(notice.id, item);
        return item;
      });
      for (const id of items.keys()) {
        if (!listed.some((notice) => notice.id === id)) items.delete(id);
      }
      // Insert and remove around the kept items instead of replacing them all, so none of them loses focus.
      for (const child of Array.from(list.children)) {
        if (!nodes.includes(child)) child.remove();
      }
      let cursor = list.firstElementChild;
      for (const node of nodes) {
        if (node === cursor) cursor = cursor.nextElementSibling;
        else list.insertBefore(node, cursor);
      }
      aside.hidden = nodes.length === 0;
      return resolvePeople(list);
    }

    poll(async function () {
      if (!available) return;
      list.setAttribute("aria-busy", "true");
      try {
        await showNotices(await api("/api/supervision/notices"));
      } catch (error) {
        if (error.status !== 404 && error.status !== 403) throw error;
        available = false;
        aside.hidden = true;
      } finally {
        list.setAttribute("aria-busy", "false");
      }
    }, config.pollMs * 3);
  }

  // Zoom buttons: fit the drawing to the width, or show it at its own size and scroll. The label names the action.

  function zoomButtons() {
    for (const button of document.querySelectorAll(".ws-zoom")) {
      const box = byId(button.getAttribute("aria-controls"));
      const sync = function () {
        const fit = box.classList.contains("ws-fit");
        button.textContent = fit ? text("actualSize") : text("fitWidth");
      };
      button.addEventListener("click", function () {
        box.classList.toggle("ws-fit");
        sync();
      });
      sync();
    }
  }

  // My tasks

  function tasksPage() {
    const cases = new Map();

    async function loadCases(ids) {
      const missing = [...new Set(ids)].filter((id) => !cases.has(id));
      await Promise.all(missing.map(async function (id) {
        cases.set(id, await api("/api/cases/" + id));
      }));
    }

    async function act(task, action) {
      try {
        await api("/api/tasks/" + encodeURIComponent(task.id) + "/" + action, {method: "POST"});
        showStatus(text(action === "claim" ? "claimedTask" : "releasedTask", {step: task.name || task.element_id}));
        showAlert("");
      } catch (error) {
        showAlert(error.message);
      }
      refresh();
    }

    function row(task, heldByMe) {
      const kase = cases.get(task.case_id) || {};
      const name = task.name || task.element_id;
      const caseText = text("caseNumber", {case_id: task.case_id}) + (kase.title ? text("colon") + kase.title : "");
      const actions = heldByMe
        ? [el("a", {class: "ws-button", href: link("/workspace/tasks/" + task.id), text: text("handle"),
                    "aria-label": text("handleStep", {step: name})}),
           el("button", {type: "button", text: text("release"), "aria-label": text("releaseStep", {step: name}),
                         onclick: () => act(task, "release")})]
        : [el("button", {type: "button", class: "ws-primary", text: text("claim"),
                         "aria-label": text("claimStep", {step: name}), onclick: () => act(task, "claim")}),
           el("a", {href: link("/workspace/tasks/" + task.id), text: text("view"),
                    "aria-label": text("viewStep", {step: name})})];
      return el("tr", {dataset: {taskId: task.id, caseId: task.case_id, card: task.card || "none"},
                       class: "ws-row-" + (task.card || "none")},
        el("td", {}, cardBadge(task.card)),
        el("td", {}, el("a", {href: link("/workspace/tasks/" + task.id), text: name})),
        el("td", {}, el("a", {href: link("/workspace/cases/" + task.case_id), text: caseText}),
           kase.process_name ? el("div", {class: "ws-sub", text: kase.process_name}) : null),
        el("td", {text: task.lane || text("anyPost")}),
        el("td", {class: "ws-left", text: timeLeft(task)}),
        el("td", {class: "ws-actions"}, actions));
    }

    function fill(id, tasks, heldByMe) {
      byId(id).querySelector("tbody").replaceChildren(...tasks.map((task) => row(task, heldByMe)));
      byId(id).hidden = tasks.length === 0;
      byId(id + "-empty").hidden = tasks.length !== 0;
      byId(id + "-count").textContent = "(" + tasks.length + ")";
    }

    const refresh = poll(async function () {
      const tasks = await api("/api/tasks?scope=mine");
      await loadCases(tasks.map((task) => task.case_id));
      fill("ws-held", tasks.filter((task) => task.status === "claimed" && task.assignee === config.username)
        .sort(byUrgency), true);
      fill("ws-pool", tasks.filter((task) => task.status === "ready").sort(byUrgency), false);
    }, config.pollMs);
  }

  // One task: state, claim and release, the form, errors and where the case went

  function taskPage() {
    const form = byId("ws-task-form");
    const errors = byId("ws-errors");
    const claimButton = byId("ws-claim");
    const releaseButton = byId("ws-release");
    const taskPath = "/api/tasks/" + encodeURIComponent(config.taskId);
    const controlsBox = byId("ws-step-controls");
    let task = null;
    let finished = false;
    // The status and holder the controls were last checked for, the number of the latest check and its timer.
    let checkedFor = "";
    let checkNumber = 0;
    let checkTimer = null;

    function renderState(current) {
      task = current;
      const status = byId("ws-task-status");
      const mine = current.status === "claimed" && current.assignee === config.username;
      status.dataset.status = current.status;
      status.replaceChildren(current.status === "claimed" && !mine
        ? el("span", {}, text("claimedBy") + " ", person(current.assignee))
        : mine ? text("claimedByMe") : statusLabel(current.status));
      claimButton.hidden = current.status !== "ready" || finished;
      releaseButton.hidden = !mine || finished;
      const open = current.status === "ready" || mine;
      for (const control of form.elements) control.disabled = !open || finished;
      if (!open && !finished) {
        showStatus(current.status === "claimed" ? text("heldByOther") : text("taskClosed"));
      }
      renderData(byId("ws-case-data"), current.data);
      const access = open && !finished ? current.status + " " + (current.assignee || "") : "";
      if (access !== checkedFor) {
        checkedFor = access;
        if (access) checkControls();
        else if (controlsBox) controlsBox.hidden = true;
      }
      return resolvePeople(status);
    }

    const refresh = poll(async function () {
      await renderState(await api(taskPath));
    }, config.pollMs);

    async function act(action) {
      clearErrors();
      try {
        await renderState(await api(taskPath + "/" + action, {method: "POST"}));
        showStatus(text(action === "claim" ? "claimedTask" : "releasedTask", {step: task.name || task.element_id}));
      } catch (error) {
        showError(error);
      }
      refresh();
    }

    claimButton.addEventListener("click", () => act("claim"));
    releaseButton.addEventListener("click", () => act("release"));

    function fieldBox(name) {
      return form.querySelector('.ws-field[data-field="' + CSS.escape(name) + '"]');
    }

    function markField(name, message) {
      const box = fieldBox(name);
      if (!box) return false;
      const note = box.querySelector(".ws-field-error");
      note.textContent = message;
      note.hidden = false;
      box.classList.add("ws-invalid");
      for (const control of box.querySelectorAll("input, select, textarea")) control.setAttribute("aria-invalid", "true");
      return true;
    }

    function clearErrors() {
      errors.hidden = true;
      errors.replaceChildren();
      for (const box of form.querySelectorAll(".ws-field")) {
        box.classList.remove("ws-invalid");
        const note = box.querySelector(".ws-field-error");
        note.hidden = true;
        note.textContent = "";
        for (const control of box.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
      }
    }

    /* Read the form into typed values. Return the data and the problems found before sending. */
    function collect() {
      const data = {};
      const problems = [];
      for (const box of form.querySelectorAll(".ws-field")) {
        const name = box.dataset.field;
        const type = box.dataset.type;
        const required = box.dataset.required === "true";
        let raw;
        if (type === "boolean") {
          const checked = box.querySelector("input:checked");
          raw = checked ? checked.value : "";
        } else {
          const control = box.querySelector("input, select, textarea");
          if (control.validity && control.validity.badInput) {
            problems.push([name, text("invalidDate")]);
            continue;
          }
          raw = control.value;
        }
        if (raw.trim() === "") {
          if (required) problems.push([name, type === "boolean" ? text("chooseYesNo") : text("required")]);
          continue;
        }
        if (type === "boolean") data[name] = raw === "true";
        else if (type === "integer") {
          if (!/^[+-]?\d+$/.test(raw.trim())) problems.push([name, text("wholeNumber")]);
          else data[name] = Number.isSafeInteger(Number(raw)) ? Number(raw) : raw.trim();
        } else if (type === "decimal") {
          if (!/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(raw.trim())) problems.push([name, text("decimalNumber")]);
          else data[name] = raw.trim();
        } else data[name] = raw;
      }
      return {data: data, problems: problems};
    }

    function failedControls(details) {
      for (const value of Object.values(details || {})) {
        if (Array.isArray(value) && value.length && typeof value[0] === "object") return value;
      }
      return [];
    }

    /* Mark every field whose name occurs in `message` as a word. */
    /* Mark each field the message names, by its name or by its label. A label inside a longer named label
       (金额 in 报销金额) does not count. */
    function markNamedFields(message, note) {
      const named = [];
      for (const box of form.querySelectorAll(".ws-field")) {
        const name = box.dataset.field;
        const label = box.dataset.label || "";
        if (new RegExp("(^|[^A-Za-z0-9_])" + name + "([^A-Za-z0-9_]|$)").test(message)) named.push({name, label: ""});
        else if (label && message.includes(label)) named.push({name, label});
      }
      for (const field of named) {
        const inside = field.label && named.some((other) => other !== field && other.label.length > field.label.length &&
                                                           other.label.includes(field.label));
        if (!inside) markField(field.name, note || message);
      }
    }

    /* Show an API error above the form and, where the message names a field, next to that field. */
    function showError(error) {
      const controls = error.code === "control_failed" ? failedControls(error.details) : [];
      let items = [el("p", {class: "ws-error-message", text: error.message})];
      if (controls.length) {
        items = [el("p", {class: "ws-error-title", text: text("controlsFailed")}),
          el("ul", {class: "ws-controls"}, controls.map((control) => el("li",
            {dataset: {control: control.control_id || control.id || ""}},
            control.message || "",
            el("span", {class: "ws-sub", text: " " + text("controlRef", {
              checkpoint: control.checkpoint_id || control.checkpoint || ""})}))))];
        // The full message appears in the list above, so a field it names only points there.
        for (const control of controls) {
          markNamedFields(String(control.message || ""),
                          text("fieldInFailedControl", {control: control.control_id || control.id || ""}));
        }
      } else if (error.code === "invalid_input" || error.code === "control_failed") {
        markNamedFields(error.message);
      }
      errors.replaceChildren(...items);
      errors.dataset.code = error.code;
      errors.hidden = false;
      errors.focus();
    }

    function showProblems(problems) {
      for (const [name, message] of problems) markField(name, message);
      errors.replaceChildren(el("p", {class: "ws-error-title", text: text("fixFields", {count: problems.length})}),
        el("ul", {}, problems.map(([name, message]) => el("li", {},
          el("a", {href: "#ws-f-" + name, text: fieldLabel(name) + text("colon") + message})))));
      errors.dataset.code = "form";
      errors.hidden = false;
      errors.focus();
    }

    // The step's controls, checked by the server against the data typed so far, before the first submit

    function openToMe() {
      return Boolean(task) && !finished &&
        (task.status === "ready" || (task.status === "claimed" && task.assignee === config.username));
    }

    function controlItem(control) {
      let state = "failed";
      if (control.passed) state = "passed";
      else if (control.overridden) state = "overridden";
      return el("li", {class: "ws-control ws-control-" + state,
                       dataset: {control: control.id, state: state, enforcement: control.enforcement}},
        el("span", {class: "ws-control-mark", "aria-hidden": "true", text: CONTROL_MARKS[state]}),
        el("span", {class: "ws-control-outcome", text: text(CONTROL_OUTCOMES[state])}), " ",
        el("strong", {text: control.rule}), " ",
        el("span", {class: "ws-sub", text: control.id + " · " +
                    text(control.enforcement === "hard" ? "hardControl" : "softControl")}),
        control.message ? el("p", {class: "ws-control-message", text: control.message}) : null);
    }

    function controlSummary(result) {
      const lines = [];
      if (result.blocked) lines.push(text("controlsBlock"));
      else if (result.controls.some((control) => !control.passed)) lines.push(text("controlsRecorded"));
      else if (result.controls.length === 0) lines.push(text("noControls"));
      else lines.push(text("controlsPass"));
      if (result.field_problems.length) {
        lines.push(text("checkedAsEmpty", {fields: result.field_problems.map((problem) => fieldLabel(problem.field))
          .join(text("listSeparator"))}));
      }
      return lines.join(" ");
    }

    function showControls(result) {
      byId("ws-control-list").replaceChildren(...result.controls.map(controlItem));
      const summary = byId("ws-control-summary");
      summary.textContent = controlSummary(result);
      summary.dataset.blocked = String(result.blocked);
      byId("ws-control-error").hidden = true;
      controlsBox.dataset.blocked = String(result.blocked);
      controlsBox.dataset.empty = String(result.controls.length === 0);
      controlsBox.hidden = false;
    }

    function showControlsError(message) {
      byId("ws-control-list").replaceChildren();
      byId("ws-control-summary").textContent = "";
      const note = byId("ws-control-error");
      note.textContent = text("controlsUnchecked", {message: message});
      note.hidden = false;
      controlsBox.hidden = false;
    }

    /* Ask the server to evaluate the controls as a completion would. Only the response to the latest request is shown. */
    async function checkControls() {
      clearTimeout(checkTimer);
      if (!controlsBox || !openToMe()) return;
      checkNumber += 1;
      const number = checkNumber;
      let result;
      try {
        result = await api(taskPath + "/check", {method: "POST", body: {data: collect().data}});
      } catch (error) {
        if (number === checkNumber && openToMe()) showControlsError(error.message);
        return;
      }
      if (number === checkNumber && openToMe()) showControls(result);
    }

    function checkSoon() {
      clearTimeout(checkTimer);
      checkTimer = setTimeout(checkControls, CHECK_DELAY_MS);
    }

    form.addEventListener("input", checkSoon);
    form.addEventListener("change", checkSoon);

    function showOutcome(kase) {
      const body = byId("ws-outcome").querySelector(".ws-outcome-body");
      const parts = [];
      if (kase.status === "completed") {
        parts.push(el("p", {dataset: {outcome: "completed"}, text: text("caseCompleted", {step: stepName(kase.end_element_id)})}));
      } else if (kase.status === "cancelled") {
        parts.push(el("p", {dataset: {outcome: "cancelled"}, text: statusLabel("cancelled")}));
      } else if (kase.tasks.length) {
        parts.push(el("p", {text: text("caseMovedTo")}));
        parts.push(el("ul", {class: "ws-next"}, kase.tasks.map((next) => el("li",
          {dataset: {element: next.element_id, post: next.lane || ""}},
          el("strong", {text: next.name || next.element_id}),
          " · " + text("postIs", {post: next.lane || text("anyPost")}) + " · " + statusLabel(next.status)))));
      } else {
        parts.push(el("p", {dataset: {outcome: "waiting"}, text: kase.next_timer_at
          ? text("caseWaitsUntil", {time: formatTime(kase.next_timer_at)}) : text("caseWaits")}));
      }
      body.replaceChildren(...parts);
      byId("ws-outcome").hidden = false;
      renderData(byId("ws-case-data"), kase.data);
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      clearErrors();
      const {data, problems} = collect();
      if (problems.length) {
        showProblems(problems);
        return;
      }
      const button = byId("ws-submit");
      button.disabled = true;
      showStatus(text("submitting"));
      try {
        const kase = await api(taskPath + "/complete", {method: "POST", body: {data: data}});
        finished = true;
        form.hidden = true;
        showStatus(text("completedStep", {step: task ? task.name || task.element_id : ""}));
        showOutcome(kase);
        byId("ws-outcome").focus();
      } catch (error) {
        showStatus("");
        showError(error);
        // A check still waiting for a pause in typing would leave the rules box showing older data.
        if (error.code === "control_failed") checkControls();
      } finally {
        button.disabled = false;
      }
      refresh();
    });
  }

  // A case: status, open tasks, time limits, path and timeline

  function renderCaseHeader(kase) {
    const status = byId("ws-case-status");
    status.dataset.status = kase.status;
    status.textContent = statusLabel(kase.status);
  }

  function clockName(clock) {
    const name = clock.clock || clock.kind || "";
    if (name === "statutory") return text("statutoryLimit");
    if (name === "promised") return text("promisedLimit");
    return text("stepLimit", {step: stepName(clock.element_id, name)});
  }

  function clockLeft(clock) {
    if (clock.stopped_at) return text("clockStopped", {time: formatTime(clock.stopped_at)});
    if (clock.paused_since || clock.paused) return text("clockPaused");
    return timeLeft(clock);
  }

  /* Show the case's clocks. Return false when the server has no clocks endpoint, so the page stops asking. */
  async function loadClocks(caseId) {
    const section = byId("ws-clocks");
    let answer;
    try {
      answer = await api("/api/cases/" + caseId + "/clocks");
    } catch (error) {
      if (error.status === 404) {
        section.hidden = true;
        return false;
      }
      throw error;
    }
    const clocks = Array.isArray(answer) ? answer : answer.clocks || [];
    section.querySelector("tbody").replaceChildren(...clocks.map((clock) => el("tr",
      {dataset: {clock: clock.clock || "", card: clock.card || "none"}},
      el("td", {text: clockName(clock)}),
      el("td", {text: formatTime(clock.due_at) + (clock.provisional ? " " + text("provisional") : "")}),
      el("td", {}, cardBadge(clock.card)),
      el("td", {text: clockLeft(clock)}))));
    section.hidden = clocks.length === 0;
    return true;
  }

  function reloadDiagram(revision) {
    const image = byId("ws-case-diagram");
    const base = image.getAttribute("src").replace(/([?&])r=\d+&?/, "$1").replace(/[?&]$/, "");
    image.setAttribute("src", base + (base.includes("?") ? "&" : "?") + "r=" + revision);
  }

  function watchCase(caseId, onChange) {
    let revision = null;
    let clocks = Boolean(byId("ws-clocks"));
    return poll(async function () {
      const kase = await api("/api/cases/" + caseId);
      renderCaseHeader(kase);
      if (revision !== kase.revision) {
        if (revision !== null) reloadDiagram(kase.revision);
        revision = kase.revision;
        await onChange(kase);
      }
      if (clocks) clocks = await loadClocks(caseId);
    }, config.pollMs);
  }

  function casePage() {
    fillTimes();
    resolvePeople();
    watchCase(config.caseId, async function (kase) {
      const list = byId("ws-open-tasks");
      list.replaceChildren(...kase.tasks.map((task) => el("li", {dataset: {taskId: task.id}},
        config.staff ? el("a", {href: link("/workspace/tasks/" + task.id), text: task.name || task.element_id})
          : el("strong", {text: task.name || task.element_id}),
        " · " + text("postIs", {post: task.lane || text("anyPost")}) + " · ",
        task.status === "claimed" ? el("span", {}, text("claimedBy") + " ", person(task.assignee)) : statusLabel(task.status))));
      byId("ws-open-empty").hidden = kase.tasks.length !== 0;
      renderData(byId("ws-case-data"), kase.data);
      await resolvePeople(list);
      await loadTimeline(config.caseId);
    });
  }

  // Auditors: case search

  const EXPORT_FILTERS = ["process", "power_item", "since", "until", "status"];
  // Filters of the search that the event-log exports do not take.
  const SEARCH_ONLY_FILTERS = ["department", "card", "risk_event", "risk_level"];

  function auditPage() {
    const form = byId("ws-search");
    const errors = byId("ws-errors");
    let query = new URLSearchParams(location.search);
    query.delete("lang");

    function fillForm() {
      for (const [name, value] of query) {
        if (form.elements[name]) form.elements[name].value = value;
      }
    }

    function exportLinks() {
      const filters = new URLSearchParams();
      for (const name of EXPORT_FILTERS) if (query.get(name)) filters.set(name, query.get(name));
      for (const anchor of byId("ws-exports").querySelectorAll("a[data-format]")) {
        const format = anchor.dataset.format;
        const params = new URLSearchParams(filters);
        if (format === "csv") params.set("bom", "true");
        const suffix = params.toString();
        anchor.href = "/api/exports/" + format + (suffix ? "?" + suffix : "");
      }
      byId("ws-exports-partial").hidden = !SEARCH_ONLY_FILTERS.some((name) => query.get(name));
    }

    function resultRow(hit) {
      return el("tr", {dataset: {caseId: hit.id, status: hit.status}},
        el("td", {}, el("a", {href: link("/workspace/audit/cases/" + hit.id),
                              text: text("caseNumber", {case_id: hit.id}) + (hit.title ? text("colon") + hit.title : "")})),
        el("td", {text: hit.process_name + " (" + text("versionNumber", {version: hit.version}) + ")"}),
        el("td", {text: [hit.power_item_code, hit.power_item_name].filter(Boolean).join(" ")}),
        el("td", {text: statusLabel(hit.status)}),
        el("td", {text: hit.started_by_name}),
        el("td", {text: formatTime(hit.started_at)}),
        el("td", {text: formatTime(hit.ended_at)}));
    }

    const results = byId("ws-results");
    const refresh = poll(async function () {
      let result;
      results.setAttribute("aria-busy", "true");
      try {
        result = await api("/api/workspace/cases?" + query.toString());
      } catch (error) {
        errors.replaceChildren(el("p", {text: error.message}));
        errors.hidden = false;
        return;
      } finally {
        results.removeAttribute("aria-busy");
      }
      errors.hidden = true;
      results.querySelector("tbody").replaceChildren(...result.cases.map(resultRow));
      byId("ws-result-count").textContent = result.truncated
        ? text("foundFirst", {count: result.cases.length}) : text("found", {count: result.cases.length});
    }, config.pollMs * 2);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      query = new URLSearchParams();
      for (const [name, value] of new FormData(form)) if (String(value).trim()) query.set(name, String(value).trim());
      keepInAddress(query);
      exportLinks();
      refresh();
    });
    fillForm();
    exportLinks();
  }

  // Auditors: one case, with verification, replay and stepping through the trace on the flowchart

  function sanitizeSvg(root) {
    for (const node of root.querySelectorAll("script, foreignObject, iframe, object, embed")) node.remove();
    for (const node of [root, ...root.querySelectorAll("*")]) {
      for (const attribute of Array.from(node.attributes)) {
        const name = attribute.name.toLowerCase();
        const external = (name === "href" || name === "xlink:href") && !attribute.value.startsWith("#");
        if (name.startsWith("on") || external) node.removeAttribute(attribute.name);
      }
    }
  }

  async function loadReplayDiagram() {
    const path = "/api/definitions/" + encodeURIComponent(config.processId) + "/versions/" + config.version + "/diagram.svg";
    const response = await fetch(link(path), {credentials: "same-origin", headers: {"Accept-Language": config.locale}});
    if (!response.ok) throw new ApiError(response.status, "http_error", text("diagramFailed"), {});
    const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
    const svg = parsed.documentElement;
    if (svg.nodeName.toLowerCase() !== "svg") throw new ApiError(0, "bad_svg", text("diagramFailed"), {});
    sanitizeSvg(svg);
    svg.style.setProperty("--ws-width", svg.getAttribute("width") || "100%");
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", text("flowchartAtStep"));
    const box = byId("ws-replay-diagram");
    box.replaceChildren(document.importNode(svg, true));
    return box.querySelector("svg");
  }

  function stepper(caseId) {
    const range = byId("ws-step-range");
    const output = byId("ws-step-number");
    const states = new Map();
    let events = [];
    let index = 0;
    let svg = null;

    async function state(seq) {
      if (!states.has(seq)) states.set(seq, await api("/api/cases/" + caseId + "/state?at=" + seq));
      return states.get(seq);
    }

    function highlight(current, at) {
      if (!svg) return;
      const reached = new Set(events.slice(0, index + 1).filter((event) => REACHING_KINDS.has(event.kind))
        .map((event) => event.element_id));
      const open = new Set(at.open_tasks.map((task) => task.element_id));
      let target = null;
      for (const node of svg.querySelectorAll("g.node")) {
        const done = reached.has(node.id) || node.classList.contains("bpmn-startEvent");
        node.classList.toggle("ws-reached", done);
        node.classList.toggle("ws-open", open.has(node.id));
        node.classList.toggle("ws-current", node.id === current.element_id);
        node.classList.toggle("ws-pending", !done && !open.has(node.id));
        if (node.id === current.element_id) target = node;
      }
      const box = byId("ws-replay-scroll");
      if (target && !box.classList.contains("ws-fit")) {
        const area = box.getBoundingClientRect();
        const spot = target.getBoundingClientRect();
        box.scrollLeft += spot.left + spot.width / 2 - area.left - area.width / 2;
        box.scrollTop += spot.top + spot.height / 2 - area.top - area.height / 2;
      }
    }

    async function show(position) {
      if (!events.length) return;
      index = Math.max(0, Math.min(events.length - 1, position));
      const current = events[index];
      range.value = String(index + 1);
      output.textContent = text("eventOf", {seq: current.seq, count: events.length});
      const description = byId("ws-step-event");
      description.dataset.seq = current.seq;
      description.replaceChildren(timelineItem(current));
      const at = await state(current.seq);
      if (events[index] !== current) return;
      byId("ws-step-open").replaceChildren(...(at.open_tasks.length ? at.open_tasks.map((task) => el("li", {},
        (task.name || task.element_id) + " · " + text("postIs", {post: task.lane || text("anyPost")}))) : [el("li", {text: text("noOpenTask")})]));
      renderData(byId("ws-step-data"), at.data);
      highlight(current, at);
      await resolvePeople(byId("ws-step-state"));
    }

    function update(latest) {
      const atEnd = !events.length || index === events.length - 1;
      events = latest;
      range.max = String(events.length);
      return show(atEnd ? events.length - 1 : index);
    }

    for (const button of byId("ws-stepper").querySelectorAll("button[data-step]")) {
      button.addEventListener("click", function () {
        const moves = {first: -Infinity, previous: index - 1, next: index + 1, last: Infinity};
        show(moves[button.dataset.step]).catch((error) => showAlert(error.message));
      });
    }
    range.addEventListener("input", function () {
      show(Number(range.value) - 1).catch((error) => showAlert(error.message));
    });
    const ready = loadReplayDiagram().then(function (loaded) {
      svg = loaded;
    }, function (error) {
      showAlert(error.message);
    });
    return async function (latest) {
      await ready;
      await update(latest);
    };
  }

  function showCheck(node, ok, message) {
    node.dataset.state = ok ? "ok" : "failed";
    node.textContent = message;
  }

  async function checkCase(caseId) {
    const verification = await api("/api/cases/" + caseId + "/verify");
    const stream = verification.streams[0] || {events: 0};
    showCheck(byId("ws-verify"), verification.ok, verification.ok
      ? text("verifyOk", {events: stream.events})
      : text("verifyFailed", {message: verification.streams.map((item) => item.message).filter(Boolean).join(" ")}));
    const replay = await api("/api/cases/" + caseId + "/replay");
    showCheck(byId("ws-replay-result"), replay.ok, replay.ok
      ? text("replayOk", {events: replay.events, steps: replay.steps})
      : text("replayFailed", {message: replay.divergence ? replay.divergence.message : ""}));
  }

  function auditCasePage() {
    fillTimes();
    resolvePeople();
    const step = stepper(config.caseId);
    watchCase(config.caseId, async function () {
      const events = await loadTimeline(config.caseId);
      await Promise.all([checkCase(config.caseId), step(events)]);
    });
  }

  /* Start a case from the form, then open its first task when the user may take it, or else the case page. */
  function startPage() {
    const form = byId("ws-start");
    const errors = byId("ws-errors");

    function fail(message) {
      errors.replaceChildren(el("p", {class: "ws-error-message", text: message}));
      errors.hidden = false;
      errors.focus();
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const chosen = form.querySelector("input[name=process_id]:checked");
      const title = form.elements.title.value.trim();
      if (!chosen) return fail(text("chooseFlowchart"));
      if (!title) return fail(text("titleNeeded"));
      errors.hidden = true;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      let started;
      try {
        started = await api("/api/cases", {method: "POST", body: {process_id: chosen.value, title: title}});
      } catch (error) {
        button.disabled = false;
        return fail(error.message);
      }
      const mine = started.tasks.find((task) => task.status === "ready" && (config.posts || []).includes(task.lane));
      location.assign(link(mine ? "/workspace/tasks/" + mine.id : "/workspace/cases/" + started.id));
    });
  }

  // Start, and the helpers the supervision pages' script uses

  const pages = {tasks: tasksPage, task: taskPage, case: casePage, audit: auditPage, audit_case: auditCasePage,
                 start: startPage, cases: fillTimes};

  window.liuhenWorkspace = Object.freeze({
    config, text, byId, el, svg, link, timeFormat, numberFormat, formatTime, api, ApiError, showStatus, showAlert,
    poll, resolvePeople, cardBadge, timeLeft, keepInAddress,
  });

  document.addEventListener("DOMContentLoaded", function () {
    zoomButtons();
    noticesArea();
    const start = pages[config.name];
    if (start) start();
  });
})();
