"""The supervision pages for auditors and administrators: the board of running cases and the statistics.

Like the other workspace pages they are server-rendered shells. Their script (static/supervision.js)
reads /api/supervision/board, /api/supervision/statistics and /api/supervision/grades with the sign-in
cookie and polls them, so the figures follow new cards and events without a reload.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from api.pages import page_actor, render, service_of, sign_in_first
from diagrams.overlay import DEFAULT_TIMEZONE
from engine.calendar import local_today
from engine.catalog import RISK_LEVEL_MSGIDS
from engine.db import cases
from engine.extension import RISK_LEVELS
from engine.i18n import dynamic, normalize_locale
from engine.service import Liuhen
from engine.statistics import GROUPS
from engine.supervision import BOARD_CARDS
from engine.users import Actor, require_role

router = APIRouter(prefix="/workspace", include_in_schema=False)

SUPERVISORS = ("auditor", "admin")
# Milliseconds between two reads of the API while a page is open. Figures change more slowly than tasks.
POLL_INTERVAL_MS = 15000


@router.get("/board", response_class=HTMLResponse)
def supervision_board(request: Request) -> Response:
    """Show running cases with their card, the time left on each clock and who holds the current step."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, *SUPERVISORS)
    service = service_of(request)
    filters = {name: request.query_params.get(name, "")
               for name in ("department", "process_id", "risk_level", "card")}
    return _page("workspace/board.html", request, actor, {"name": "board"}, filters=filters,
                 departments=case_departments(service), processes=_processes(service), levels=RISK_LEVELS,
                 cards=BOARD_CARDS)


@router.get("/statistics", response_class=HTMLResponse)
def supervision_statistics(request: Request) -> Response:
    """Show the period's figures per department, post or process, as a table and charts, and the grades."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, *SUPERVISORS)
    today = local_today(service_of(request).now())
    # The period picker starts at the current month of the server's clock, not of the browser's.
    config = {"name": "statistics", "today": {"year": today.year, "month": today.month,
                                              "quarter": (today.month - 1) // 3 + 1}}
    return _page("workspace/statistics.html", request, actor, config, groups=GROUPS)


def _page(template: str, request: Request, actor: Actor, config: dict[str, Any], **context: Any) -> HTMLResponse:
    locale = normalize_locale(request.query_params.get("lang") or request.headers.get("accept-language"))
    lang = request.query_params.get("lang")
    config = {
        **config,
        "locale": "en" if locale == "en" else "zh-CN",
        "langQuery": f"lang={quote(lang)}" if lang else "",
        "timeZone": DEFAULT_TIMEZONE,
        "pollMs": POLL_INTERVAL_MS,
        "levelLabels": {level: dynamic(level).render(locale) for level in RISK_LEVEL_MSGIDS},
    }
    return render(template, request, actor=actor, page=config, **context)



def case_departments(service: Liuhen) -> list[str]:
    """Return every department a case was started in, for the filters of the board and the case search."""
    query = select(cases.c.department).where(cases.c.department.is_not(None)).distinct()
    with service.db.read() as conn:
        return sorted(conn.execute(query).scalars())


def _processes(service: Liuhen) -> list[dict[str, str]]:
    """Return the id and newest name of every deployed process, for the board's filter."""
    names: dict[str, str] = {}
    for definition in service.list_definitions():
        names[definition["process_id"]] = definition["name"]
    return [{"process_id": process_id, "name": name} for process_id, name in sorted(names.items())]
