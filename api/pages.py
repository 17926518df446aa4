"""Server-rendered pages: the public power catalogue and flowcharts, and sign-in for staff pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from api.deps import SESSION_COOKIE, client_address
from api.errors import request_locale
from engine import publication
from engine.errors import LiuhenError, NotFound, Unauthorized
from engine.i18n import msg, translate
from engine.login_throttle import sign_in
from engine.service import Liuhen
from engine.users import Actor, actor_for_token

router = APIRouter(include_in_schema=False)
COOKIE = SESSION_COOKIE
# The page that sign-in leads to when no page requested one. The workspace sends each role to its own start page.
HOME_AFTER_SIGN_IN = "/workspace"

templates = Environment(loader=PackageLoader("api", "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)


def format_limit(limit: dict[str, Any] | None, locale: str) -> str:
    """Render a time limit such as {"amount": 30, "unit": "working_day"} for a reader."""
    if not limit:
        return translate(locale, "not set")
    amount = limit["amount"]
    if limit["unit"] == "working_day":
        return translate(locale, "{amount} working days", amount=amount)
    if limit["unit"] == "month":
        return translate(locale, "{amount} months", amount=amount)
    return translate(locale, "{amount} days", amount=amount)


def translator(locale: str) -> Callable[..., str]:
    """Return the ``t`` function templates call; the catalogue extractor reads its msgids from them."""

    def t(msgid: str, **params: Any) -> str:
        return translate(locale, msgid, **params)

    return t


def render(template: str, request: Request, **context: Any) -> HTMLResponse:
    locale = request_locale(request)
    html = templates.get_template(template).render(
        t=translator(locale), locale=locale, lang_query="?lang=en" if locale != "en" else "?lang=zh_CN",
        nav_link=lambda path: localized_link(request, path),
        format_limit=lambda limit: format_limit(limit, locale), **context)
    return HTMLResponse(html)


def service_of(request: Request) -> Liuhen:
    return request.app.state.liuhen


def page_actor(request: Request) -> Actor | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    service = service_of(request)
    try:
        with service.db.read() as conn:
            return actor_for_token(conn, token, service.now())
    except Unauthorized:
        return None


@router.get("/", response_class=HTMLResponse)
def catalogue(request: Request) -> HTMLResponse:
    """Show the public power catalogue: published external power items."""
    items = publication.published_items(service_of(request), kind="external")
    return render("catalogue.html", request, items=items, actor=page_actor(request))


@router.get("/public/items/{process_id}", response_class=HTMLResponse)
def public_item(process_id: str, request: Request) -> HTMLResponse:
    """Show one published flowchart with the header fields bodies publish."""
    item = publication.published_item(service_of(request), process_id)
    if item.kind != "external":
        actor = page_actor(request)
        if actor is None or not actor.has_role("staff", "admin", "auditor", "designer"):
            raise NotFound(msg("No published flowchart has the id {process_id}.", process_id=process_id))
    return render("item.html", request, item=item, actor=page_actor(request))


@router.get("/public/items/{process_id}/diagram.{extension}")
def public_diagram(process_id: str, extension: str, request: Request) -> Response:
    """Return the published version's flowchart as SVG or PDF."""
    service = service_of(request)
    item = publication.published_item(service, process_id)
    if item.kind != "external" and page_actor(request) is None:
        raise NotFound(msg("No published flowchart has the id {process_id}.", process_id=process_id))
    from api.diagram_files import diagram_response

    return diagram_response(service, process_id, item.version, extension, request_locale(request))


@router.get("/staff/flowcharts", response_class=HTMLResponse)
def staff_flowcharts(request: Request) -> Response:
    """Published internal flowcharts, for signed-in staff."""
    actor = page_actor(request)
    if actor is None:
        return RedirectResponse("/login?next=/staff/flowcharts", status_code=303)
    items = publication.published_items(service_of(request), kind="internal")
    return render("staff.html", request, items=items, actor=actor)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = HOME_AFTER_SIGN_IN) -> HTMLResponse:
    return render("login.html", request, next=_safe_next(next), error=None, actor=None, username="")


@router.post("/login", response_model=None)
def login(request: Request, username: str = Form(...), password: str = Form(...),
          next: str = Form(HOME_AFTER_SIGN_IN)) -> Response:
    service = service_of(request)
    try:
        _actor, token, _expires = sign_in(service, username, password, client_address(request))
    except LiuhenError as exc:
        # The form keeps the username, capped like the field, so only the password needs typing again.
        page = render("login.html", request, next=_safe_next(next), error=exc.render(request_locale(request)),
                      actor=None, username=username[:64])
        page.status_code = exc.status
        page.headers.update(getattr(exc, "headers", {}))
        return page
    redirect = RedirectResponse(_safe_next(next), status_code=303)
    redirect.set_cookie(COOKIE, token, httponly=True, samesite="lax",
                        max_age=service.settings.token_ttl_minutes * 60)
    return redirect


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _safe_next(target: str) -> str:
    """Only follow local paths after sign-in, never another site."""
    return target if target.startswith("/") and not target.startswith("//") else HOME_AFTER_SIGN_IN


def sign_in_first(request: Request) -> RedirectResponse:
    """Send a signed-out visitor to the sign-in page, which brings them back to this address afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def localized_link(request: Request, path: str) -> str:
    """Keep a language chosen with ?lang= on a page's links to the signed-in pages."""
    lang = request.query_params.get("lang")
    if not lang:
        return path
    separator = "&" if "?" in path else "?"
    return f"{path}{separator}lang={quote(lang)}"
