"""The administrator pages: users, the organisation, the working-day calendar, publishing, keys and reviews.

Like the other workspace pages they are server-rendered shells that carry no data of their own. Their
script (static/admin.js, on top of static/workspace.js) reads and changes everything through the JSON
API with the sign-in cookie and polls it, so a change made elsewhere shows without a reload. Every page
returns 403 to a signed-in user who is not an administrator, before anything is read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.pages import localized_link, page_actor, render, service_of, sign_in_first
from diagrams.overlay import DEFAULT_TIMEZONE
from engine.calendar import local_today
from engine.catalog import RISK_LEVEL_MSGIDS
from engine.i18n import dynamic, normalize_locale
from engine.users import ROLES, Actor, require_role

router = APIRouter(prefix="/workspace/admin", include_in_schema=False)

# Milliseconds between two reads of the API while a page is open. Administrative data changes rarely.
POLL_INTERVAL_MS = 10000
# The pages in the order of the administration menu: (path below /workspace/admin, page name).
SECTIONS = (("users", "admin_users"), ("organisation", "admin_organisation"), ("calendar", "admin_calendar"),
            ("publishing", "admin_publishing"), ("keys", "admin_keys"), ("review", "admin_review"))


@router.get("")
def administration_home(request: Request) -> Response:
    """Open the first administration page, the users."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, "admin")
    return RedirectResponse(localized_link(request, "/workspace/admin/users"), status_code=303)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    """List users and create, change, reset the password of, deactivate and reactivate them."""
    return _admin_page(request, "admin_users", {"roles": list(ROLES)})


@router.get("/organisation", response_class=HTMLResponse)
def organisation_page(request: Request) -> Response:
    """Show departments, roles and posts with their users, and flag posts nobody can take."""
    return _admin_page(request, "admin_organisation")


@router.get("/calendar", response_class=HTMLResponse)
def calendar_page(request: Request) -> Response:
    """Show a year of working days, holidays and make-up days, set single days and import a year file."""
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, "admin")
    # The year shown first is the current year of the server's clock, not of the browser's.
    today = local_today(service_of(request).now())
    return _page(request, actor, "admin_calendar", {"today": today.isoformat(), "year": today.year})


@router.get("/publishing", response_class=HTMLResponse)
def publishing_page(request: Request) -> Response:
    """List process versions with the published one, publish a version or withdraw publication."""
    return _admin_page(request, "admin_publishing")


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request) -> Response:
    """Show the signing keys and the signed checkpoints, rotate the key and create a checkpoint."""
    return _admin_page(request, "admin_keys")


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request) -> Response:
    """List the risk checkpoints with their last review, and mark one reviewed."""
    return _admin_page(request, "admin_review")


def _admin_page(request: Request, name: str, config: dict[str, Any] | None = None) -> Response:
    actor = page_actor(request)
    if actor is None:
        return sign_in_first(request)
    require_role(actor, "admin")
    return _page(request, actor, name, config or {})


def _page(request: Request, actor: Actor, name: str, config: dict[str, Any]) -> HTMLResponse:
    locale = normalize_locale(request.query_params.get("lang") or request.headers.get("accept-language"))
    lang = request.query_params.get("lang")
    page = {
        **config,
        "name": name,
        "username": actor.username,
        "locale": "en" if locale == "en" else "zh-CN",
        "langQuery": f"lang={quote(lang)}" if lang else "",
        "timeZone": DEFAULT_TIMEZONE,
        "pollMs": POLL_INTERVAL_MS,
        "levelLabels": {level: dynamic(level).render(locale) for level in RISK_LEVEL_MSGIDS},
    }
    sections = [{"path": f"/workspace/admin/{path}", "name": section, "current": section == name}
                for path, section in SECTIONS]
    return render(f"workspace/{name}.html", request, actor=actor, page=page, sections=sections,
                  link=lambda path: localized_link(request, path))


