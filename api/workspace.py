"""The workspace pages: staff tasks, the task form, a case's path and timeline, and the auditors' search and replay.

The pages are server-rendered shells. Their script (static/workspace.js) reads the JSON API with the
sign-in cookie and polls it, so every page shows a new state without a reload.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import access
from api.pages import localized_link, page_actor, render, service_of, sign_in_first
from api.supervision_pages import case_departments
from api.workspace_api import ANY_RISK_EVENT, CARD_FILTERS
from diagrams.overlay import DEFAULT_TIMEZONE
from engine.catalog import EVENT_KIND_MSGIDS, RISK_LEVEL_MSGIDS, STATUS_MSGIDS
from engine.extension import CLOCK_PAUSE_REASON_TEXTS, RISK_LEVELS
from engine.i18n import dynamic, normalize_locale
from engine.risk_events import RISK_EVENT_KIND_TEXTS, RISK_EVENT_KINDS
from engine.service import Liuhen
from engine.users import Actor, require_role

router = APIRouter(prefix="/workspace", include_in_schema=False)

CASE_READERS = ("staff", "auditor", "admin", "designer")
AUDITORS = ("auditor", "admin")
# Milliseconds between two reads of the API while a page is open.
POLL_INTERVAL_MS = 5000
# The status filter of the staff case list; "any" lists every status.
CASE_LIST_STATUSES = ("running", "completed", "cancelled", "any")
# The newest cases the staff case list shows; auditors search older ones on the case search.
CASE_LIST_LIMIT = 200


@router.get("")
def workspace_home(request: Request) -> Response:
    """Send a signed-in user to the start page of their role."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    if actor.has_role("staff"):
        return RedirectResponse(localized_link(request, "/workspace/tasks"), status_code=303)
    if actor.has_role(*AUDITORS):
        return RedirectResponse(localized_link(request, "/workspace/audit"), status_code=303)
    return RedirectResponse(localized_link(request, "/staff/flowcharts"), status_code=303)


@router.get("/tasks", response_class=HTMLResponse)
def my_tasks(request: Request) -> Response:
    """Show my tasks: the ones I hold and the ones waiting in my posts, most urgent first."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, "staff")
    return _page("workspace/tasks.html", request, actor, {"name": "tasks", "username": actor.username})


@router.get("/start", response_class=HTMLResponse)
def start_page(request: Request) -> Response:
    """Show the form that starts a case of any deployed flowchart, with the steps of the user's posts marked."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, "staff")
    service = service_of(request)
    processes = [{**process, "first_steps": _first_steps(service, process["definition_id"])}
                 for process in _processes(service)]
    return _page("workspace/start.html", request, actor, {"name": "start", "posts": sorted(actor.posts)},
                 processes=processes, posts=actor.posts)


@router.get("/cases", response_class=HTMLResponse)
def my_cases(request: Request, status: str = "running") -> Response:
    """List the cases a staff user may see: of their department, started by them, or with a task of their posts."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, "staff")
    if status not in CASE_LIST_STATUSES:
        status = "running"
    service = service_of(request)
    cases = access.list_visible_cases(service, actor, status=None if status == "any" else status, process_id=None,
                                      limit=CASE_LIST_LIMIT, offset=0)
    return _page("workspace/cases.html", request, actor, {"name": "cases"}, cases=cases, status=status,
                 statuses=CASE_LIST_STATUSES, limit=CASE_LIST_LIMIT)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(task_id: str, request: Request) -> Response:
    """Show a task with the case's data and the step's form, where its holder completes it."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, "staff")
    service = service_of(request)
    access.require_task_visible(service, actor, task_id)
    task = service.get_task(task_id)
    case = service.get_case(task["case_id"])
    fields = [_prefilled(field, task["data"]) for field in task["form_fields"]]
    config = {"name": "task", "username": actor.username, "taskId": task_id, "caseId": case["id"],
              "fields": task["form_fields"], **_definition_labels(service, case["definition_id"])}
    # NOTE: a step that declares form fields rejects any other data key, so the free opinion box shows only on
    # steps without declared fields. Elsewhere the flowchart's own opinion fields (such as 审批意见) take its place.
    return _page("workspace/task.html", request, actor, config, task=task, case=case, fields=fields,
                 opinion_box=not task["form_fields"])


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: int, request: Request) -> Response:
    """Show a case: its path on the flowchart, its open tasks, its timeline and its time limits."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, *CASE_READERS)
    service = service_of(request)
    access.require_case_visible(service, actor, case_id)
    case = service.get_case(case_id)
    config = {"name": "case", "username": actor.username, "caseId": case_id, "staff": actor.has_role("staff"),
              **_definition_labels(service, case["definition_id"])}
    return _page("workspace/case.html", request, actor, config, case=case)


@router.get("/audit", response_class=HTMLResponse)
def audit_search(request: Request) -> Response:
    """Show the case search for auditors, with links to the event-log exports of the same process, period and status."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, *AUDITORS)
    service = service_of(request)
    return _page("workspace/audit.html", request, actor, {"name": "audit"}, processes=_processes(service),
                 departments=case_departments(service), cards=CARD_FILTERS, any_risk_event=ANY_RISK_EVENT,
                 risk_event_kinds=RISK_EVENT_KINDS, levels=RISK_LEVELS, filters=dict(request.query_params))


@router.get("/audit/cases/{case_id}", response_class=HTMLResponse)
def audit_case(case_id: int, request: Request) -> Response:
    """Show a case to auditors: trace verification, replay result, timeline and a step-by-step replay."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, *AUDITORS)
    service = service_of(request)
    case = service.get_case(case_id)
    config = {"name": "audit_case", "caseId": case_id, "processId": case["process_id"], "version": case["version"],
              **_definition_labels(service, case["definition_id"])}
    return _page("workspace/audit_case.html", request, actor, config, case=case)


def _page(template: str, request: Request, actor: Actor, config: dict[str, Any], **context: Any) -> HTMLResponse:
    locale = _page_locale(request)
    lang = request.query_params.get("lang")
    config = {
        **config,
        "locale": "en" if locale == "en" else "zh-CN",
        "langQuery": f"lang={quote(lang)}" if lang else "",
        "timeZone": DEFAULT_TIMEZONE,
        "pollMs": POLL_INTERVAL_MS,
        "kindLabels": {kind: dynamic(kind).render(locale) for kind in EVENT_KIND_MSGIDS},
        "statusLabels": {status: dynamic(status).render(locale) for status in STATUS_MSGIDS},
        "levelLabels": {level: dynamic(level).render(locale) for level in RISK_LEVEL_MSGIDS},
        "pauseReasons": {reason: text.render(locale) for reason, text in CLOCK_PAUSE_REASON_TEXTS.items()},
        "riskKinds": {kind: text.render(locale) for kind, text in RISK_EVENT_KIND_TEXTS.items()},
    }
    return render(template, request, actor=actor, page=config, link=lambda path: localized_link(request, path),
                  **context)


def _page_locale(request: Request) -> str:
    return normalize_locale(request.query_params.get("lang") or request.headers.get("accept-language"))




def _prefilled(field: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Return the form field with the value the case data already has for it, so a repeated step starts from it."""
    value = data.get(field["name"])
    return {**field, "value": value}


def _definition_labels(service: Liuhen, definition_id: int) -> dict[str, Any]:
    """Return the names of the flowchart's steps and the labels of all its form fields, for the data and the trace."""
    nodes = service.definition_nodes(definition_id)
    step_names = {node_id: node["name"] for node_id, node in nodes.items() if node.get("name")}
    fields: dict[str, dict[str, Any]] = {}
    for node in nodes.values():
        for field in (node.get("extensions") or {}).get("form_fields", []):
            # A name used at several steps keeps the label and options of its first step.
            fields.setdefault(field["name"], {
                "label": field["label"], "type": field["type"],
                "options": {option["value"]: option["label"] for option in field.get("options", [])},
            })
    return {"stepNames": step_names, "fieldLabels": fields}


def _first_steps(service: Liuhen, definition_id: int) -> list[dict[str, Any]]:
    """Return the user tasks a new case of the definition waits at, with their lanes, without starting a case.

    The steps are those a start event's flows lead to directly. A flowchart that begins with a gateway or a
    timer lists none, so the page names no first step for it.
    """
    parsed, _process = service.parsed_definition(definition_id)
    # NOTE: the node index does not record which process a node belongs to, so the start event of an
    # embedded subprocess counts too and may add a step that a new case does not wait at.
    starts = [node_id for node_id, node in parsed.nodes.items() if node.kind == "startEvent"]
    return [{"element_id": target, "name": parsed.nodes[target].name, "lane": parsed.nodes[target].lane}
            for (source, target) in parsed.flows if source in starts
            and target in parsed.nodes and parsed.nodes[target].kind in ("userTask", "manualTask")]


def _processes(service: Liuhen) -> list[dict[str, Any]]:
    """Return the newest version of every deployed process, for the search filters."""
    newest: dict[str, dict[str, Any]] = {}
    for definition in service.list_definitions():
        newest[definition["process_id"]] = definition
    return [{"process_id": process_id, "name": definition["name"], "definition_id": definition["id"],
             "power_item_code": (definition["power_item"] or {}).get("code"),
             "power_item_name": (definition["power_item"] or {}).get("name")}
            for process_id, definition in sorted(newest.items())]
