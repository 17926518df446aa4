/* The supervision pages' script: the board of running cases and the statistics with their charts.
 * It runs after workspace.js and uses its helpers to read the JSON API with the sign-in cookie, poll it
 * while the page is visible and build every text node with textContent. It draws the charts as inline
 * SVG, without any chart library. */
(function () {
  "use strict";

  const {config, text, byId, el, svg, link, timeFormat, numberFormat, formatTime, api, showStatus, poll,
         resolvePeople, cardBadge, timeLeft, keepInAddress} = window.liuhenWorkspace;

  function formatRate(rate) {
    if (rate === null || rate === undefined) return text("notApplicable");
    return text("percent", {value: numberFormat.format(rate * 100)});
  }

  function levelLabel(level) {
    if (!level) return text("noLevel");
    return (config.levelLabels || {})[level] || level;
  }

  function showUpdated() {
    showStatus(text("updatedAt", {time: timeFormat.format(new Date())}));
  }

  /* The form's non-empty fields as a query string, also kept in the address so a reload shows the same view. */
  function formQuery(form) {
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (value) query.set(name, value);
    }
    return query;
  }

  // The supervision board

  function clockName(clock, steps) {
    if (clock.kind === "statutory") return text("statutoryLimit");
    if (clock.kind === "promised") return text("promisedLimit");
    const step = steps.find((item) => item.task_id === clock.task_id);
    return text("stepLimit", {step: (step && step.name) || clock.element_id || ""});
  }

  function clockItem(clock, steps) {
    const item = el("li", {class: "sv-clock", dataset: {clock: clock.kind, card: clock.card}},
                    el("span", {class: "ws-label", text: clockName(clock, steps) + " "}),
                    cardBadge(clock.card), " ",
                    el("span", {class: "sv-left", text: timeLeft(clock)}),
                    el("span", {class: "ws-meta", text: " (" + text("dueAt", {time: formatTime(clock.due_at)}) + ")"}));
    if (clock.paused) item.append(" ", el("span", {class: "sv-flag", text: text("clockPaused")}));
    if (clock.provisional) {
      item.append(" ", el("abbr", {class: "sv-flag sv-provisional", dataset: {provisional: "true"},
                                   title: text("provisional"), text: text("provisionalShort")}));
    }
    return item;
  }

  function stepItem(step) {
    const name = step.name || step.element_id;
    let holder = el("span", {text: text("waitingAnyPost")});
    if (step.assignee) {
      holder = el("span", {class: "ws-person sv-person", dataset: {username: step.assignee}, text: step.assignee});
    } else if (step.post) {
      holder = el("span", {text: text("waitingInPost", {post: step.post})});
    }
    const item = el("li", {dataset: {elementId: step.element_id}}, el("span", {class: "ws-step", text: name}), " ", holder);
    if (step.risk_level) {
      item.append(" ", el("span", {class: "sv-level sv-level-" + step.risk_level, text: levelLabel(step.risk_level)}));
    }
    return item;
  }

  function boardRow(entry) {
    const caseLink = el("a", {href: link("/workspace/audit/cases/" + entry.case_id),
                              "aria-label": text("openCase", {case_id: entry.case_id}),
                              text: text("caseNumber", {case_id: entry.case_id})});
    const caseCell = el("td", {}, caseLink);
    if (entry.title) caseCell.append(el("div", {class: "ws-meta", text: entry.title}));
    const clocks = entry.clocks.length
      ? el("ul", {class: "sv-list"}, entry.clocks.map((clock) => clockItem(clock, entry.steps)))
      : el("span", {class: "ws-empty", text: text("noClock")});
    const steps = entry.steps.length
      ? el("ul", {class: "sv-list"}, entry.steps.map(stepItem))
      : el("span", {class: "ws-empty", text: text("noOpenTask")});
    const level = entry.risk_level
      ? el("span", {class: "sv-level sv-level-" + entry.risk_level, text: levelLabel(entry.risk_level)})
      : el("span", {class: "ws-empty", text: text("noLevel")});
    return el("tr", {class: "ws-row-" + entry.card, dataset: {caseId: entry.case_id, card: entry.card}},
              el("td", {}, cardBadge(entry.card)),
              caseCell,
              el("td", {}, entry.process_name, el("div", {class: "ws-meta", text: entry.power_item_code || entry.process_id})),
              el("td", {text: entry.department || text("noDepartment")}),
              el("td", {}, level),
              el("td", {}, clocks),
              el("td", {}, steps));
  }

  function startBoard() {
    const form = byId("sv-board-filters");
    const body = byId("sv-board").tBodies[0];

    async function refresh() {
      const query = formQuery(form);
      keepInAddress(query);
      const entries = await api("/api/supervision/board?" + query.toString());
      body.replaceChildren(...entries.map(boardRow));
      byId("sv-board-count").textContent = text("boardCount", {count: entries.length});
      byId("sv-board-empty").hidden = entries.length > 0;
      await resolvePeople(body, (name) => text("heldBy", {holder: name}));
      showUpdated();
    }

    const refreshNow = poll(refresh, config.pollMs);
    form.addEventListener("change", refreshNow);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      refreshNow();
    });
  }

  // Statistics: the period picker

  function periodBound(form) {
    const data = new FormData(form);
    const year = String(data.get("year") || "").padStart(4, "0");
    if (data.get("kind") === "year") return year;
    if (data.get("kind") === "quarter") return year + "-Q" + data.get("quarter");
    return year + "-" + String(data.get("month")).padStart(2, "0");
  }

  function showPeriodFields(form) {
    const kind = form.elements.kind.value;
    for (const label of form.querySelectorAll("[data-for-kind]")) label.hidden = label.dataset.forKind !== kind;
  }

  function fillPeriodForm(form) {
    const params = new URLSearchParams(location.search);
    const today = config.today;
    const from = params.get("from") || "";
    let kind = "month";
    let year = today.year;
    let month = today.month;
    let quarter = today.quarter;
    let match;
    if ((match = /^(\d{4})-[Qq]([1-4])$/.exec(from))) {
      kind = "quarter";
      year = Number(match[1]);
      quarter = Number(match[2]);
    } else if ((match = /^(\d{4})-(\d{2})$/.exec(from))) {
      year = Number(match[1]);
      month = Number(match[2]);
    } else if ((match = /^(\d{4})$/.exec(from))) {
      kind = "year";
      year = Number(match[1]);
    }
    form.elements.kind.value = kind;
    form.elements.year.value = year;
    form.elements.month.value = String(month);
    form.elements.quarter.value = String(quarter);
    if (params.get("group")) form.elements.group.value = params.get("group");
    showPeriodFields(form);
  }

  // Statistics: the table

  function groupName(group, grouping) {
    if (group.key === null) return grouping === "department" ? text("noDepartment") : text("noGroup");
    if (grouping === "process" && group.name) return group.name + " (" + group.key + ")";
    return group.key;
  }

  function numberCell(value) {
    return el("td", {class: "sv-number", text: value === null || value === undefined ? text("notApplicable")
                                                                                      : numberFormat.format(value)});
  }

  function figuresRow(group, label) {
    const cases = group.cases;
    const levels = group.risk_events.by_level;
    return el("tr", {dataset: {group: group.key === null ? "" : group.key}},
              el("th", {scope: "row", text: label}),
              numberCell(cases ? cases.started : null), numberCell(cases ? cases.handled : null),
              numberCell(cases ? cases.overdue : null),
              el("td", {class: "sv-number", text: cases ? formatRate(cases.overdue_rate) : text("notApplicable")}),
              numberCell(group.steps.handled), numberCell(group.steps.overdue),
              el("td", {class: "sv-number", text: formatRate(group.steps.overdue_rate)}),
              numberCell(levels.high || 0), numberCell(levels.medium || 0), numberCell(levels.low || 0),
              numberCell(group.risk_events.total),
              numberCell(group.yellow_cards), numberCell(group.red_cards), numberCell(group.supervision_notices));
  }

  // Statistics: the charts

  const LEVELS = ["high", "medium", "low"];
  const CHART_WIDTH = 560;
  const CHART_LEFT = 40;
  const CHART_TOP = 28;
  const PLOT_HEIGHT = 180;
  const LABEL_ROOM = 46;

  function niceMaximum(value) {
    if (value <= 5) return 5;
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * magnitude >= value) return step * magnitude;
    }
    return 10 * magnitude;
  }

  function shortLabel(label) {
    return label.length > 8 ? label.slice(0, 7) + "…" : label;
  }

  function chartFrame(title, ticks, maximum, format) {
    const height = CHART_TOP + PLOT_HEIGHT + LABEL_ROOM;
    const chart = svg("svg", {viewBox: "0 0 " + CHART_WIDTH + " " + height, role: "img", "aria-label": title,
                              class: "sv-svg"}, svg("title", {text: title}));
    for (let index = 0; index <= ticks; index += 1) {
      const value = (maximum * index) / ticks;
      const y = CHART_TOP + PLOT_HEIGHT - (PLOT_HEIGHT * index) / ticks;
      chart.append(svg("line", {x1: CHART_LEFT, x2: CHART_WIDTH - 8, y1: y, y2: y, class: "sv-grid"}),
                   svg("text", {x: CHART_LEFT - 6, y: y + 4, "text-anchor": "end", class: "sv-axis", text: format(value)}));
    }
    return chart;
  }

  function legend(chart, entries) {
    let x = CHART_LEFT;
    for (const [label, className] of entries) {
      chart.append(svg("rect", {x: x, y: 6, width: 12, height: 12, class: className}),
                   svg("text", {x: x + 16, y: 16, class: "sv-axis", text: label}));
      x += 24 + label.length * 12;
    }
  }

  /* Draw one group of bars per row of `groups`, one bar per series, scaled to `maximum`. */
  function barChart(groups, series, maximum, format, title) {
    const ticks = 5;
    const chart = chartFrame(title, ticks, maximum, format);
    legend(chart, series.map((item) => [item.label, item.className]));
    const slot = (CHART_WIDTH - CHART_LEFT - 8) / Math.max(groups.length, 1);
    const barWidth = Math.min(28, (slot - 10) / series.length);
    groups.forEach(function (group, groupIndex) {
      const left = CHART_LEFT + slot * groupIndex + (slot - barWidth * series.length) / 2;
      series.forEach(function (item, seriesIndex) {
        const value = item.value(group) || 0;
        const height = maximum ? (PLOT_HEIGHT * value) / maximum : 0;
        chart.append(svg("rect", {x: left + barWidth * seriesIndex, y: CHART_TOP + PLOT_HEIGHT - height,
                                  width: Math.max(barWidth - 2, 1), height: height, class: item.className,
                                  dataset: {group: group.label, series: item.key, value: value}},
                         svg("title", {text: group.label + " · " + item.label + ": " + format(value)})));
      });
      chart.append(svg("text", {x: CHART_LEFT + slot * groupIndex + slot / 2, y: CHART_TOP + PLOT_HEIGHT + 18,
                                "text-anchor": "middle", class: "sv-axis", text: shortLabel(group.label)},
                       svg("title", {text: group.label})));
    });
    return chart;
  }

  function riskChart(groups) {
    const rows = groups.map((group) => ({label: group.label, levels: group.figures.risk_events.by_level}));
    const largest = Math.max(0, ...rows.flatMap((row) => LEVELS.map((level) => row.levels[level] || 0)));
    const series = LEVELS.map((level) => ({key: level, label: levelLabel(level), className: "sv-bar-" + level,
                                           value: (row) => row.levels[level]}));
    const chart = barChart(rows, series, niceMaximum(largest), (value) => numberFormat.format(value),
                           text("riskChartTitle"));
    const summary = el("ul", {class: "sv-visually-hidden"}, rows.map((row) => el("li", {
      text: text("riskChartSummary", {group: row.label, high: row.levels.high || 0, medium: row.levels.medium || 0,
                                      low: row.levels.low || 0})})));
    return [chart, summary];
  }

  function overdueChart(groups) {
    const rows = groups.map((group) => ({label: group.label, cases: group.figures.cases, steps: group.figures.steps}));
    const series = [
      {key: "cases", label: text("caseRate"), className: "sv-bar-cases",
       value: (row) => (row.cases && row.cases.overdue_rate) || 0},
      {key: "steps", label: text("stepRate"), className: "sv-bar-steps", value: (row) => row.steps.overdue_rate || 0},
    ];
    const chart = barChart(rows, series, 1, (value) => formatRate(value), text("overdueChartTitle"));
    const summary = el("ul", {class: "sv-visually-hidden"}, rows.map((row) => el("li", {
      text: text("overdueChartSummary", {group: row.label, cases: formatRate(row.cases ? row.cases.overdue_rate : null),
                                         steps: formatRate(row.steps.overdue_rate)})})));
    return [chart, summary];
  }

  // Statistics: the grades

  function gradeRow(grade) {
    const deductions = grade.deductions.length
      ? el("ul", {class: "sv-list"}, grade.deductions.map((deduction) => el("li", {
          dataset: {rule: deduction.rule},
          text: text("deductionPoints", {points: numberFormat.format(deduction.points),
                                         description: deduction.description})})))
      : el("span", {class: "ws-empty", text: text("noDeduction")});
    return el("tr", {dataset: {department: grade.department || "", grade: grade.grade || ""}},
              el("th", {scope: "row", text: grade.department || text("noDepartment")}),
              numberCell(grade.score),
              el("td", {class: "sv-grade", text: grade.grade_name}),
              numberCell(grade.cases_handled),
              el("td", {}, deductions));
  }

  function startStatistics() {
    const form = byId("sv-period");
    const table = byId("sv-figures");
    fillPeriodForm(form);

    async function refresh() {
      if (!form.elements.year.checkValidity()) return;
      const bound = periodBound(form);
      const grouping = form.elements.group.value;
      keepInAddress({from: bound, group: grouping});
      const period = "from=" + encodeURIComponent(bound);
      const [figures, grades] = await Promise.all([
        api("/api/supervision/statistics?group=" + encodeURIComponent(grouping) + "&" + period),
        api("/api/supervision/grades?" + period),
      ]);

      const groups = figures.groups.map((group) => ({label: groupName(group, grouping), figures: group}));
      byId("sv-period-shown").textContent = text("periodShown", {first: figures.period.from, last: figures.period.to});
      const provisional = byId("sv-provisional");
      provisional.hidden = !figures.provisional_years.length;
      provisional.textContent = text("provisionalYears", {years: figures.provisional_years.join(", ")});
      table.tBodies[0].replaceChildren(...groups.map((group) => figuresRow(group.figures, group.label)));
      table.tFoot.replaceChildren(figuresRow(figures.totals, text("totals")));
      byId("sv-figures-empty").hidden = groups.length > 0;
      byId("sv-group-heading").textContent = form.elements.group.selectedOptions[0].textContent;

      byId("sv-risk-chart").querySelector(".sv-chart-body").replaceChildren(
        ...(groups.length ? riskChart(groups) : [el("p", {class: "ws-empty", text: text("noFigures")})]));
      byId("sv-overdue-chart").querySelector(".sv-chart-body").replaceChildren(
        ...(groups.length ? overdueChart(groups) : [el("p", {class: "ws-empty", text: text("noFigures")})]));

      byId("sv-grade-rules").textContent = text("gradeRules", {base: numberFormat.format(grades.base_score),
                                                              min_cases: grades.min_cases});
      byId("sv-grades").tBodies[0].replaceChildren(...grades.departments.map(gradeRow));
      byId("sv-grades-empty").hidden = grades.departments.length > 0;
      showUpdated();
    }

    const refreshNow = poll(refresh, config.pollMs);
    form.addEventListener("change", function () {
      showPeriodFields(form);
      refreshNow();
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      refreshNow();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (config.name === "board") startBoard();
    if (config.name === "statistics") startStatistics();
  });
})();
