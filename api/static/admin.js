/* The administrator pages' script. It runs after workspace.js and uses its helpers for the JSON API,
 * polling, building elements and formatting times. Like workspace.js it builds every text node with
 * textContent, never with HTML. */
(function () {
  "use strict";

  const {config, text: sharedText, byId, el, link, formatTime, api, showStatus, poll,
         resolvePeople} = window.liuhenWorkspace;

  /* Return the page's own text `key`; admin_texts.html names each one "ad." + key. */
  function text(key, params) {
    return sharedText("ad." + key, params);
  }

  // Shared pieces

  function showErrors(box, error) {
    box.replaceChildren(el("p", {class: "ws-error-message", text: error.message}),
                        el("p", {class: "ws-sub", text: text("errorCode", {code: error.code})}));
    box.dataset.code = error.code;
    box.hidden = false;
    box.focus();
  }

  function clearErrors(box) {
    box.hidden = true;
    box.replaceChildren();
    delete box.dataset.code;
  }

  /* Run `action`, showing its error in `box` and its success message in the status line. */
  async function perform(box, action) {
    clearErrors(box);
    try {
      const message = await action();
      if (message) showStatus(message);
      return true;
    } catch (error) {
      showStatus("");
      showErrors(box, error);
      return false;
    }
  }

  /* Return a function that reports whether `value` differs from the value it saw last time. */
  function changeDetector() {
    let last = null;
    return function (value) {
      const current = JSON.stringify(value);
      if (current === last) return false;
      last = current;
      return true;
    };
  }

  function listOf(items) {
    return items.filter(Boolean).join(text("comma"));
  }

  function roleLabel(role) {
    return text("role." + role);
  }

  function levelLabel(level) {
    return (config.levelLabels || {})[level] || level;
  }

  function splitPosts(value) {
    return String(value || "").split(/[,，、;；\n]/).map((post) => post.trim()).filter(Boolean);
  }

  function personLabel(user) {
    return user.display_name === user.username ? user.username : user.display_name + " (" + user.username + ")";
  }

  /* A name that resolvePeople replaces with the user's display name. */
  function person(username) {
    return el("span", {class: "ws-person", dataset: {username: username}, text: username});
  }

  function badge(kind, label) {
    return el("span", {class: "ad-badge ad-badge-" + kind, text: label});
  }

  function jsonDownload(name, document) {
    const body = JSON.stringify(document, null, 2) + "\n";
    return el("a", {href: "data:application/json;charset=utf-8," + encodeURIComponent(body), download: name,
                    text: text("download"), "aria-label": text("downloadFile", {file: name})});
  }

  // Users

  /* The fields shared by the create and change forms: display name, department, roles and posts. */
  function userFields(form) {
    const choices = form.querySelector("[data-posts]");

    function setPostChoices(posts) {
      const checked = new Set(Array.from(choices.querySelectorAll("input:checked"), (box) => box.value));
      choices.replaceChildren(...posts.map((post) => el("label", {},
        el("input", {type: "checkbox", name: "posts", value: post, checked: checked.has(post)}), " " + post)));
    }

    function read() {
      const posts = Array.from(form.querySelectorAll("input[name=posts]:checked"), (box) => box.value);
      for (const post of splitPosts(form.elements.other_posts.value)) if (!posts.includes(post)) posts.push(post);
      return {
        display_name: form.elements.display_name.value,
        department: form.elements.department.value.trim(),
        roles: Array.from(form.querySelectorAll("input[name=roles]:checked"), (box) => box.value),
        posts: posts,
      };
    }

    function fill(user) {
      form.elements.display_name.value = user.display_name || "";
      form.elements.department.value = user.department || "";
      for (const box of form.querySelectorAll("input[name=roles]")) box.checked = user.roles.includes(box.value);
      const known = new Set();
      for (const box of form.querySelectorAll("input[name=posts]")) {
        box.checked = user.posts.includes(box.value);
        known.add(box.value);
      }
      form.elements.other_posts.value = user.posts.filter((post) => !known.has(post)).join(", ");
    }

    return {setPostChoices: setPostChoices, read: read, fill: fill};
  }

  function usersPage() {
    const createForm = byId("ad-create-form");
    const editForm = byId("ad-edit-form");
    const panel = byId("ad-edit");
    const showInactive = byId("ad-show-inactive");
    const create = userFields(createForm);
    const edit = userFields(editForm);
    const postsChanged = changeDetector();
    const departmentsChanged = changeDetector();
    const usersChanged = changeDetector();
    let users = [];
    let editing = null;

    function userRow(user) {
      const name = personLabel(user);
      return el("tr", {dataset: {username: user.username, active: String(user.active)},
                       class: user.active ? "" : "ad-inactive"},
        el("td", {}, el("code", {text: user.username})),
        el("td", {text: user.display_name}),
        el("td", {text: listOf(user.roles.map(roleLabel))}),
        el("td", {text: listOf(user.posts) || "-"}),
        el("td", {text: user.department || "-"}),
        el("td", {}, user.active ? badge("ok", text("active")) : badge("off", text("deactivated"))),
        el("td", {class: "ws-actions"}, el("button", {type: "button", text: text("change"),
          "aria-label": text("changeUser", {user: name}), onclick: () => openEditor(user.username)})));
    }

    function renderUsers() {
      const shown = users.filter((user) => user.active || showInactive.checked);
      byId("ad-users").querySelector("tbody").replaceChildren(...shown.map(userRow));
      byId("ad-users-count").textContent = "(" + shown.length + ")";
    }

    function renderEditor() {
      const user = users.find((candidate) => candidate.username === editing);
      if (!user) return;
      byId("ad-edit-title").textContent = text("changeUserTitle", {user: personLabel(user)});
      byId("ad-deactivate").hidden = !user.active;
      byId("ad-reactivate").hidden = user.active;
      panel.dataset.username = user.username;
      panel.dataset.active = String(user.active);
    }

    function openEditor(username) {
      editing = username;
      const user = users.find((candidate) => candidate.username === username);
      for (const box of ["ad-edit-errors", "ad-password-errors", "ad-active-errors"]) clearErrors(byId(box));
      edit.fill(user);
      byId("ad-new-password").value = "";
      panel.hidden = false;
      renderEditor();
      panel.focus();
    }

    function closeEditor() {
      editing = null;
      panel.hidden = true;
    }

    // Each part is rebuilt only when its data changed, so polling keeps the focus and what is typed.
    const refresh = poll(async function () {
      const [list, overview] = await Promise.all([api("/api/users"), api("/api/admin/organisation")]);
      users = list;
      const posts = overview.posts.map((post) => post.name);
      if (postsChanged(posts)) {
        create.setPostChoices(posts);
        edit.setPostChoices(posts);
        const user = users.find((candidate) => candidate.username === editing);
        if (user) edit.fill(user);
      }
      const departments = overview.departments.map((group) => group.name).filter(Boolean);
      if (departmentsChanged(departments)) {
        byId("ad-departments").replaceChildren(...departments.map((name) => el("option", {value: name})));
      }
      if (usersChanged(users)) renderUsers();
      renderEditor();
    }, config.pollMs);

    showInactive.addEventListener("change", renderUsers);
    panel.querySelector("[data-close]").addEventListener("click", closeEditor);

    createForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const body = {...create.read(), username: createForm.elements.username.value.trim(),
                    password: createForm.elements.password.value};
      const created = await perform(byId("ad-create-errors"), async function () {
        const user = await api("/api/users", {method: "POST", body: body});
        return text("userCreated", {user: personLabel(user)});
      });
      if (!created) return;
      createForm.reset();
      refresh();
    });

    editForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      const username = editing;
      await perform(byId("ad-edit-errors"), async function () {
        const user = await api("/api/users/" + encodeURIComponent(username), {method: "PATCH", body: edit.read()});
        return text("userChanged", {user: personLabel(user)});
      });
      refresh();
    });

    byId("ad-password-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      const username = editing;
      const field = byId("ad-new-password");
      const done = await perform(byId("ad-password-errors"), async function () {
        await api("/api/users/" + encodeURIComponent(username) + "/password",
                  {method: "POST", body: {password: field.value}});
        return text("passwordSet", {user: username});
      });
      if (done) field.value = "";
    });

    for (const action of ["deactivate", "reactivate"]) {
      byId("ad-" + action).addEventListener("click", async function () {
        const username = editing;
        await perform(byId("ad-active-errors"), async function () {
          const user = await api("/api/users/" + encodeURIComponent(username) + "/" + action, {method: "POST"});
          return text(action === "deactivate" ? "userDeactivated" : "userReactivated", {user: personLabel(user)});
        });
        await refresh();
        const button = byId(action === "deactivate" ? "ad-reactivate" : "ad-deactivate");
        if (!button.hidden) button.focus();
      });
    }
  }

  // Departments, posts and roles

  function holderItem(user) {
    const notes = [];
    if (!user.active) notes.push(text("deactivated"));
    else if (!user.roles.includes("staff")) notes.push(text("notStaff"));
    return el("li", {dataset: {username: user.username, able: String(user.active && user.roles.includes("staff"))},
                     class: notes.length ? "ad-unable" : ""},
      personLabel(user), notes.length ? el("span", {class: "ws-sub", text: " (" + listOf(notes) + ")"}) : null);
  }

  function needItem(need) {
    return el("li", {dataset: {process: need.process_id}},
      el("strong", {text: need.process_name}),
      " " + text("versions", {versions: need.versions.join(", ")}) + text("colon") + listOf(need.steps),
      need.running_cases ? el("span", {class: "ws-sub", text: " · " + text("runningCases",
                                                                            {count: need.running_cases})}) : null);
  }

  function postRow(post) {
    return el("tr", {dataset: {post: post.name, unheld: String(post.unheld)}, class: post.unheld ? "ad-row-unheld" : ""},
      el("th", {scope: "row"}, post.name, post.unheld ? el("div", {}, badge("warn", text("nobodyCanTake"))) : null),
      el("td", {}, post.holders.length ? el("ul", {class: "ad-list"}, post.holders.map(holderItem))
        : el("span", {class: "ws-empty", text: text("noHolder")})),
      el("td", {}, post.needed_by.length ? el("ul", {class: "ad-list"}, post.needed_by.map(needItem))
        : el("span", {class: "ws-empty", text: text("noFlowchart")})),
      el("td", {class: "ad-number", text: String(post.open_tasks)}));
  }

  function departmentBlock(group) {
    const title = group.name || text("noDepartment");
    return el("section", {class: "ad-department", dataset: {department: group.name || ""}},
      el("h3", {}, title, el("span", {class: "ws-count", text: " (" + group.users.length + ")"})),
      el("ul", {class: "ad-list"}, group.users.map((user) => el("li",
        {dataset: {username: user.username}, class: user.active ? "" : "ad-unable"},
        personLabel(user),
        el("span", {class: "ws-sub", text: " · " + listOf(user.roles.map(roleLabel)) +
          (user.posts.length ? " · " + listOf(user.posts) : "") + (user.active ? "" : " · " + text("deactivated"))})))));
  }

  function organisationPage() {
    const changed = changeDetector();
    poll(async function () {
      const overview = await api("/api/admin/organisation");
      if (!changed(overview)) return;
      const warning = byId("ad-unheld");
      warning.textContent = overview.unheld_posts.length
        ? text("unheldPosts", {count: overview.unheld_posts.length, posts: listOf(overview.unheld_posts)}) : "";
      warning.hidden = overview.unheld_posts.length === 0;
      byId("ad-posts").querySelector("tbody").replaceChildren(...overview.posts.map(postRow));
      byId("ad-posts-count").textContent = "(" + overview.posts.length + ")";
      byId("ad-departments").replaceChildren(...overview.departments.map(departmentBlock));
      byId("ad-departments-count").textContent = "(" + overview.departments.length + ")";
      byId("ad-roles").querySelector("tbody").replaceChildren(...overview.roles.map((group) => el("tr",
        {dataset: {role: group.role}},
        el("th", {scope: "row", text: roleLabel(group.role)}),
        el("td", {text: group.users.length ? listOf(group.users.map(personLabel)) : "-"}))));
    }, config.pollMs);
  }

  // Working-day calendar

  const monthFormat = new Intl.DateTimeFormat(config.locale, {timeZone: "UTC", year: "numeric", month: "long"});
  const dayFormat = new Intl.DateTimeFormat(config.locale, {timeZone: "UTC", year: "numeric", month: "long",
                                                            day: "numeric", weekday: "long"});
  const weekdayFormat = new Intl.DateTimeFormat(config.locale, {timeZone: "UTC", weekday: "narrow"});

  function utcDate(iso) {
    return new Date(iso + "T00:00:00Z");
  }

  /* Classify a day as working, rest (a plain weekend), holiday or make-up (a working weekend day). */
  function dayKind(day) {
    const weekend = [0, 6].includes(utcDate(day.date).getUTCDay());
    if (day.is_working_day) return weekend ? "makeup" : "working";
    return weekend && !day.name ? "rest" : "holiday";
  }

  function describeDay(day) {
    const parts = [dayFormat.format(utcDate(day.date)), text("kind." + dayKind(day))];
    if (day.name) parts.push(day.name);
    if (day.source === "admin") parts.push(text("setByAdmin"));
    if (day.source === "import") parts.push(text("imported"));
    if (day.provisional) parts.push(text("provisional"));
    return parts.join(text("comma"));
  }

  function monthTable(year, month, days, onPick) {
    const first = Date.UTC(year, month, 1);
    // Weeks start on Monday, as Chinese calendars print them.
    const offset = (new Date(first).getUTCDay() + 6) % 7;
    const cells = [];
    for (let blank = 0; blank < offset; blank += 1) cells.push(el("td", {}));
    for (const day of days) {
      const classes = ["ad-day", "ad-" + dayKind(day)];
      if (day.source === "admin" || day.source === "import") classes.push("ad-source-" + day.source);
      if (day.provisional) classes.push("ad-provisional");
      if (day.date === config.today) classes.push("ad-today");
      const label = describeDay(day);
      cells.push(el("td", {}, el("button", {type: "button", class: classes.join(" "), title: label,
        "aria-label": label, dataset: {date: day.date, kind: dayKind(day), source: day.source},
        text: String(utcDate(day.date).getUTCDate()), onclick: () => onPick(day)})));
    }
    const rows = [];
    for (let start = 0; start < cells.length; start += 7) rows.push(el("tr", {}, cells.slice(start, start + 7)));
    // 2024-01-01 was a Monday, so these are the weekday names from Monday to Sunday.
    const weekdays = [0, 1, 2, 3, 4, 5, 6].map((index) => weekdayFormat.format(new Date(Date.UTC(2024, 0, 1 + index))));
    return el("table", {class: "ad-month", dataset: {month: month + 1}},
      el("caption", {text: monthFormat.format(new Date(first))}),
      el("thead", {}, el("tr", {}, weekdays.map((name) => el("th", {scope: "col", text: name})))),
      el("tbody", {}, rows));
  }

  function calendarPage() {
    const yearInput = byId("ad-year");
    const form = byId("ad-day-form");
    const changed = changeDetector();
    let year = Number(new URLSearchParams(location.search).get("year")) || config.year;
    let days = new Map();

    function pick(day) {
      form.elements.date.value = day.date;
      form.elements.type.value = day.is_working_day ? "working" : "holiday";
      form.elements.name.value = day.source === "admin" || day.source === "import" ? day.name || "" : "";
      showCurrent();
      form.elements.type.focus();
    }

    function showCurrent() {
      const day = days.get(form.elements.date.value);
      byId("ad-day-current").textContent = day ? text("currently", {day: describeDay(day)}) : "";
    }

    function render(calendar) {
      days = new Map(calendar.days.map((day) => [day.date, day]));
      const months = [];
      for (let month = 0; month < 12; month += 1) {
        const prefix = year + "-" + String(month + 1).padStart(2, "0") + "-";
        months.push(monthTable(year, month, calendar.days.filter((day) => day.date.startsWith(prefix)), pick));
      }
      byId("ad-months").replaceChildren(...months);
      const count = (kind) => calendar.days.filter((day) => dayKind(day) === kind).length;
      byId("ad-year-summary").textContent = text(calendar.official ? "yearSummary" : "yearSummaryProvisional", {
        working: count("working") + count("makeup"), holidays: count("holiday"), makeup: count("makeup")});
      showCurrent();
    }

    const refresh = poll(async function () {
      const [calendar, status] = await Promise.all([api("/api/calendar/" + year), api("/api/calendar/status")]);
      const warnings = byId("ad-calendar-warnings");
      warnings.replaceChildren(...status.warnings.map((warning) => el("p", {dataset: {code: warning.code},
                                                                            text: warning.message})));
      warnings.hidden = status.warnings.length === 0;
      if (calendar.year !== year || !changed(calendar)) return;
      render(calendar);
    }, config.pollMs);

    function showYear(next) {
      if (!Number.isInteger(next) || next < 1900 || next > 2200) return;
      year = next;
      yearInput.value = String(year);
      byId("ad-year-title").textContent = text("yearTitle", {year: year});
      const address = new URLSearchParams(location.search);
      address.set("year", String(year));
      history.replaceState(null, "", location.pathname + "?" + address);
      refresh();
    }

    byId("ad-year-previous").addEventListener("click", () => showYear(year - 1));
    byId("ad-year-next").addEventListener("click", () => showYear(year + 1));
    yearInput.addEventListener("change", () => showYear(Number(yearInput.value)));
    form.elements.date.addEventListener("change", showCurrent);
    byId("ad-year-title").textContent = text("yearTitle", {year: year});
    yearInput.value = String(year);

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const date = form.elements.date.value;
      const errors = byId("ad-day-errors");
      if (!date) {
        showErrors(errors, {message: text("chooseDate"), code: "missing_date"});
        return;
      }
      const working = form.elements.type.value === "working";
      const saved = await perform(errors, async function () {
        await api("/api/calendar/days/" + date, {method: "PUT",
          body: {type: form.elements.type.value, name: form.elements.name.value}});
        return text(working ? "daySetWorking" : "daySetHoliday", {day: dayFormat.format(utcDate(date))});
      });
      if (saved && Number(date.slice(0, 4)) !== year) showYear(Number(date.slice(0, 4)));
      else refresh();
    });

    byId("ad-import-form").addEventListener("submit", async function (event) {
      event.preventDefault();
      const errors = byId("ad-import-errors");
      const file = byId("ad-import-file").files[0];
      if (!file) {
        showErrors(errors, {message: text("chooseFile"), code: "missing_file"});
        return;
      }
      const imported = await perform(errors, async function () {
        const result = await api("/api/calendar/import", {method: "POST", body: file, contentType: "text/csv"});
        return text("importedDays", {count: result.stored, years: result.years.join(", ")});
      });
      if (imported) byId("ad-import-form").reset();
      refresh();
    });
  }

  // Publishing

  function publishingPage() {
    const errors = byId("ad-publish-errors");
    const chosen = new Map();
    const changed = changeDetector();
    let latest = null;

    function kindLabel(kind) {
      if (kind === "external") return text("external");
      if (kind === "internal") return text("internal");
      return text("noKind");
    }

    function processRow(process, published) {
      const newest = process.versions[process.versions.length - 1];
      const selectId = "ad-version-" + process.process_id;
      const select = el("select", {id: selectId, name: "version"},
        process.versions.slice().reverse().map((version) => el("option", {value: version.version,
          text: text("versionLabel", {version: version.version}) +
                (version === newest ? " " + text("newest") : "")})));
      select.value = String(chosen.get(process.process_id) || newest.version);
      select.addEventListener("change", () => chosen.set(process.process_id, Number(select.value)));
      const publishedCell = published
        ? [el("strong", {text: text("versionLabel", {version: published.version})}),
           el("div", {class: "ws-sub"}, text("publishedAt", {time: formatTime(published.published_at)}) + " · ",
              person(published.published_by)),
           published.kind === "external"
             ? el("a", {href: link("/public/items/" + encodeURIComponent(process.process_id)),
                        text: text("viewPublic")}) : null]
        : [el("span", {class: "ws-empty", text: text("notPublished")})];
      const name = newest.name;
      return el("tr", {dataset: {process: process.process_id, published: published ? published.version : ""}},
        el("th", {scope: "row"}, name, el("div", {class: "ws-sub"}, el("code", {text: process.process_id}),
          newest.power_item && newest.power_item.code ? " · " + newest.power_item.code : "")),
        el("td", {text: kindLabel(newest.kind)}),
        el("td", {}, process.versions.map((version) => version.version).join(", "),
           el("div", {class: "ws-sub", text: text("deployedAt", {time: formatTime(newest.deployed_at)})})),
        el("td", {}, publishedCell),
        el("td", {class: "ws-actions"},
          el("label", {class: "ad-visually-hidden", for: selectId, text: text("versionToPublish", {name: name})}),
          select,
          el("button", {type: "button", class: "ws-primary", text: text("publish"),
                        "aria-label": text("publishName", {name: name}),
                        onclick: () => publish(process.process_id, name, Number(select.value))}),
          published ? el("button", {type: "button", text: text("withdraw"),
                                    "aria-label": text("withdrawName", {name: name}),
                                    onclick: () => withdraw(process.process_id, name)}) : null));
    }

    function render() {
      const [definitions, publications] = latest;
      const processes = new Map();
      for (const definition of definitions) {
        if (!processes.has(definition.process_id)) {
          processes.set(definition.process_id, {process_id: definition.process_id, versions: []});
        }
        processes.get(definition.process_id).versions.push(definition);
      }
      const published = new Map(publications.map((item) => [item.process_id, item]));
      const body = byId("ad-processes").querySelector("tbody");
      body.replaceChildren(...Array.from(processes.values(), (process) => processRow(process,
                                                                                   published.get(process.process_id))));
      byId("ad-processes-empty").hidden = processes.size !== 0;
      return resolvePeople(body);
    }

    const refresh = poll(async function () {
      latest = await Promise.all([api("/api/definitions"), api("/api/admin/publications")]);
      if (changed(latest)) await render();
    }, config.pollMs);

    async function publish(processId, name, version) {
      await perform(errors, async function () {
        await api("/api/definitions/" + encodeURIComponent(processId) + "/versions/" + version + "/publish",
                  {method: "POST"});
        chosen.delete(processId);
        return text("publishedVersion", {name: name, version: version});
      });
      await refresh();
    }

    async function withdraw(processId, name) {
      await perform(errors, async function () {
        await api("/api/definitions/" + encodeURIComponent(processId) + "/publication", {method: "DELETE"});
        return text("withdrawn", {name: name});
      });
      await refresh();
    }
  }

  // Signing keys and checkpoints

  function keysPage() {
    const keysChanged = changeDetector();
    const checkpointsChanged = changeDetector();
    const confirmBox = byId("ad-rotate-confirm");
    const rotateButton = byId("ad-rotate");
    let publicKeys = new Map();

    function keyRow(key) {
      const pem = key.public_key;
      return el("tr", {dataset: {keyId: key.key_id, status: key.status}},
        el("th", {scope: "row"}, el("code", {text: key.key_id})),
        el("td", {}, key.status === "active" ? badge("ok", text("keyActive")) : badge("off", text("keyRetired"))),
        el("td", {}, key.created_at ? formatTime(key.created_at) : "-",
           key.created_by ? el("div", {class: "ws-sub"}, person(key.created_by)) :
             key.generated_on_first_use ? el("div", {class: "ws-sub", text: text("keyGeneratedOnFirstUse")}) : null),
        el("td", {}, key.retired_at ? formatTime(key.retired_at) : "-",
           key.retired_by ? el("div", {class: "ws-sub"}, person(key.retired_by)) : null),
        el("td", {class: "ad-number", text: String(key.checkpoints)}),
        el("td", {}, pem ? el("details", {},
          el("summary", {text: text("showPublicKey")}),
          el("p", {class: "ws-sub"}, text("fingerprint") + " ", el("code", {class: "ad-hash", text: key.fingerprint})),
          el("pre", {class: "ad-pem", text: pem}),
          el("a", {href: "data:application/x-pem-file;charset=utf-8," + encodeURIComponent(pem),
                   download: "liuhen-key-" + key.key_id + ".pem", text: text("download"),
                   "aria-label": text("downloadFile", {file: "liuhen-key-" + key.key_id + ".pem"})}))
          : el("span", {class: "ws-empty", text: text("publicKeyUnknown")})));
    }

    function checkpointDocument(checkpoint) {
      const document = {...checkpoint, public_key: checkpoint.public_key || publicKeys.get(checkpoint.key_id) || null};
      delete document.id;
      return document;
    }

    function checkpointRow(checkpoint) {
      const document = checkpointDocument(checkpoint);
      return el("tr", {dataset: {checkpoint: checkpoint.id, keyId: checkpoint.key_id}},
        el("th", {scope: "row", text: String(checkpoint.id)}),
        el("td", {class: "ad-number", text: String(checkpoint.size)}),
        el("td", {text: formatTime(checkpoint.created_at)}),
        el("td", {}, el("code", {text: checkpoint.key_id})),
        el("td", {}, el("code", {class: "ad-hash", title: checkpoint.root, text: checkpoint.root.slice(0, 16) + "…"})),
        el("td", {}, document.public_key ? jsonDownload("liuhen-checkpoint-" + checkpoint.id + ".json", document)
          : el("span", {class: "ws-empty", text: text("publicKeyUnknown")})));
    }

    const refresh = poll(async function () {
      const [keys, checkpoints] = await Promise.all([api("/api/admin/keys"), api("/api/audit/checkpoints")]);
      publicKeys = new Map(keys.filter((key) => key.public_key).map((key) => [key.key_id, key.public_key]));
      if (keysChanged(keys)) {
        const body = byId("ad-keys").querySelector("tbody");
        body.replaceChildren(...keys.map(keyRow));
        byId("ad-keys-empty").hidden = keys.length !== 0;
        await resolvePeople(body);
      }
      if (checkpointsChanged([checkpoints, keys])) {
        byId("ad-checkpoints").querySelector("tbody").replaceChildren(...checkpoints.map(checkpointRow));
        byId("ad-checkpoints-empty").hidden = checkpoints.length !== 0;
        byId("ad-checkpoints-count").textContent = "(" + checkpoints.length + ")";
      }
    }, config.pollMs);

    function showConfirm(shown) {
      confirmBox.hidden = !shown;
      rotateButton.setAttribute("aria-expanded", String(shown));
      (shown ? byId("ad-rotate-now") : rotateButton).focus();
    }

    rotateButton.addEventListener("click", () => showConfirm(confirmBox.hidden));
    byId("ad-rotate-cancel").addEventListener("click", () => showConfirm(false));
    byId("ad-rotate-now").addEventListener("click", async function () {
      const button = byId("ad-rotate-now");
      button.disabled = true;
      const rotated = await perform(byId("ad-keys-errors"), async function () {
        const key = await api("/api/admin/keys/rotate", {method: "POST"});
        return text("keyRotated", {key_id: key.key_id});
      });
      button.disabled = false;
      if (rotated) showConfirm(false);
      refresh();
    });

    byId("ad-create-checkpoint").addEventListener("click", async function () {
      const button = byId("ad-create-checkpoint");
      button.disabled = true;
      await perform(byId("ad-checkpoint-errors"), async function () {
        const checkpoint = await api("/api/audit/checkpoints", {method: "POST"});
        return text("checkpointCreated", {size: checkpoint.size, key_id: checkpoint.key_id});
      });
      button.disabled = false;
      refresh();
    });
  }

  // The annual review of risk checkpoints

  function reviewPage() {
    const filters = byId("ad-review-filters");
    const panel = byId("ad-review-panel");
    const form = byId("ad-review-form");
    const changed = changeDetector();
    let rows = [];
    let reviewing = null;

    function rowKey(row) {
      return row.process_id + "/" + row.checkpoint_id;
    }

    function lastReview(review) {
      if (!review) return [el("span", {class: "ws-empty", text: text("neverReviewed")})];
      return [formatTime(review.reviewed_at), el("div", {class: "ws-sub"}, person(review.reviewed_by)),
              el("div", {class: "ad-note", text: review.note})];
    }

    function reviewRow(row) {
      const events = row.risk_events || {};
      return el("tr", {dataset: {checkpoint: row.checkpoint_id, process: row.process_id, due: String(row.review_due)},
                       class: row.review_due ? "ad-row-due" : ""},
        el("th", {scope: "row"}, el("code", {text: row.checkpoint_id}), " ",
           el("span", {class: "sv-level sv-level-" + row.level, text: levelLabel(row.level)}),
           el("div", {class: "ad-note", text: row.description}),
           row.review_due ? badge("warn", text("reviewDue")) : null),
        el("td", {}, row.process_name, el("div", {class: "ws-sub", text: text("versionLabel", {version: row.version}) +
                                                                     " · " + (row.step_name || row.element_id)})),
        el("td", {}, text("versionLabel", {version: row.unchanged_since_version}),
           el("div", {class: "ws-sub", text: formatTime(row.unchanged_since) + " · " +
                                              text("days", {days: row.unchanged_days})})),
        el("td", {class: "ad-number", title: text("eventsByLevel", {high: events.high || 0, medium: events.medium || 0,
                                                                      low: events.low || 0}),
                  text: String(events.total || 0)}),
        el("td", {}, lastReview(row.last_review)),
        el("td", {class: "ws-actions"}, el("button", {type: "button", text: text("markReviewed"),
          "aria-label": text("markCheckpointReviewed", {checkpoint: row.checkpoint_id}),
          onclick: () => openPanel(row)})));
    }

    function render() {
      const process = filters.elements.process_id.value;
      const dueOnly = filters.elements.due.checked;
      const shown = rows.filter((row) => (!process || row.process_id === process) && (!dueOnly || row.review_due));
      const body = byId("ad-review").querySelector("tbody");
      body.replaceChildren(...shown.map(reviewRow));
      byId("ad-review-count").textContent = text("checkpointsShown", {count: shown.length,
        due: shown.filter((row) => row.review_due).length});
      return resolvePeople(body);
    }

    function fillProcesses() {
      const select = filters.elements.process_id;
      const current = select.value;
      const names = new Map(rows.map((row) => [row.process_id, row.process_name]));
      select.replaceChildren(select.options[0],
        ...Array.from(names, ([id, name]) => el("option", {value: id, text: name + " (" + id + ")"})));
      select.value = names.has(current) ? current : "";
    }

    function openPanel(row) {
      reviewing = row;
      clearErrors(byId("ad-review-errors"));
      byId("ad-review-panel-title").textContent = text("reviewOf", {checkpoint: row.checkpoint_id});
      byId("ad-review-panel-description").textContent = row.process_name + " · " + (row.step_name || row.element_id) +
        text("colon") + row.description;
      form.elements.note.value = "";
      panel.hidden = false;
      form.elements.note.focus();
    }

    const refresh = poll(async function () {
      const report = await api("/api/review/checkpoints");
      if (!changed(report)) return;
      rows = report;
      fillProcesses();
      await render();
      if (reviewing) reviewing = rows.find((row) => rowKey(row) === rowKey(reviewing)) || null;
    }, config.pollMs);

    filters.addEventListener("change", render);
    filters.addEventListener("submit", (event) => event.preventDefault());
    panel.querySelector("[data-close]").addEventListener("click", function () {
      reviewing = null;
      panel.hidden = true;
    });

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const row = reviewing;
      const done = await perform(byId("ad-review-errors"), async function () {
        await api("/api/review/checkpoints/" + encodeURIComponent(row.checkpoint_id) + "/reviewed",
                  {method: "POST", body: {note: form.elements.note.value, process_id: row.process_id}});
        return text("reviewRecorded", {checkpoint: row.checkpoint_id});
      });
      if (done) {
        reviewing = null;
        panel.hidden = true;
      }
      refresh();
    });
  }

  // Start

  const pages = {admin_users: usersPage, admin_organisation: organisationPage, admin_calendar: calendarPage,
                 admin_publishing: publishingPage, admin_keys: keysPage, admin_review: reviewPage};

  document.addEventListener("DOMContentLoaded", function () {
    const start = pages[config.name];
    if (start) start();
  });
})();
