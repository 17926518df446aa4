"""The BPMN modeler page for designers, and the drafts it saves on the server.

The page runs bpmn-js from the bundle that ``modeler/`` builds into ``api/static/modeler/``. It opens
deployed versions and validates and deploys through the definitions API, with a login token issued to
the page. Drafts are BPMN files under ``DATA_DIR/modeler-drafts``, shared by all designers: one file per
draft, plus a JSON file with its name, author and time, so no table is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from lxml import etree
from pydantic import BaseModel

from api.deps import CurrentActor, Service
from api.errors import request_locale
from api.pages import page_actor, render, service_of
from engine.errors import InvalidInput, NotFound
from engine.extension import BPMN_NAMESPACE
from engine.i18n import msg
from engine.users import Actor, issue_token, require_role

logger = logging.getLogger(__name__)

MODELER_ROLES = ("designer", "admin")
BUNDLE = Path(__file__).parent / "static" / "modeler" / "modeler.js"
DRAFT_NAME_MAX = 100
# Slashes would split the URL path; control characters cannot be typed and would hide a name.
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")

page_router = APIRouter(include_in_schema=False)
drafts_router = APIRouter(prefix="/api/modeler/drafts", tags=["modeler"])


class Draft(BaseModel):
    """A saved draft: its name, who saved it last and when, its size in bytes and the processes it defines."""

    name: str
    saved_by: str
    saved_at: datetime
    size: int
    process_ids: list[str]


class DraftStore:
    """Drafts as files in one folder. Each write replaces the file atomically, so a reader never sees half."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def list_drafts(self) -> list[Draft]:
        if not self.directory.is_dir():
            return []
        drafts = []
        for path in self.directory.glob("*.json"):
            try:
                drafts.append(Draft.model_validate_json(path.read_bytes()))
            except FileNotFoundError:
                continue  # deleted while the folder was listed
        return sorted(drafts, key=lambda draft: draft.saved_at, reverse=True)

    def read(self, name: str) -> bytes:
        content_path, _meta_path = self._paths(check_draft_name(name))
        try:
            return content_path.read_bytes()
        except FileNotFoundError:
            raise NotFound(msg("No draft is named {name}.", name=name)) from None

    def save(self, name: str, content: bytes, actor: Actor, now: datetime) -> Draft:
        name = check_draft_name(name)
        root = _parse_draft(content)
        process_ids = [process.get("id", "") for process in root.findall(f"{{{BPMN_NAMESPACE}}}process")]
        draft = Draft(name=name, saved_by=actor.username, saved_at=now, size=len(content), process_ids=process_ids)

        content_path, meta_path = self._paths(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        _replace(content_path, content)
        _replace(meta_path, draft.model_dump_json().encode())
        return draft

    def delete(self, name: str) -> None:
        content_path, meta_path = self._paths(check_draft_name(name))
        if not meta_path.exists():
            raise NotFound(msg("No draft is named {name}.", name=name))
        meta_path.unlink()
        content_path.unlink(missing_ok=True)

    def _paths(self, name: str) -> tuple[Path, Path]:
        # Names are free text (often Chinese), so files are named by a hash of the name instead.
        key = hashlib.sha256(name.encode()).hexdigest()[:40]
        return self.directory / f"{key}.bpmn", self.directory / f"{key}.json"


def check_draft_name(name: str) -> str:
    """Return the draft name without surrounding white space, or raise InvalidInput."""
    name = name.strip()
    if not name or len(name) > DRAFT_NAME_MAX or _UNSAFE_NAME.search(name):
        raise InvalidInput(msg(
            "The draft name {name!r} is invalid; use 1 to {limit} characters without / or \\.",
            name=name, limit=DRAFT_NAME_MAX))
    return name


def _parse_draft(content: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(msg("The draft is not well-formed XML ({reason}); save it again from the modeler.",
                               reason=str(exc))) from exc
    if root.tag != f"{{{BPMN_NAMESPACE}}}definitions":
        raise InvalidInput(msg("The draft's root element is {tag}, not bpmn:definitions; save a BPMN 2.0 file.",
                               tag=etree.QName(root).localname))
    return root


def _replace(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary file in the same folder, then rename it over ``path``."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".draft-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def draft_store(service: Service) -> DraftStore:
    return DraftStore(service.settings.data_dir / "modeler-drafts")


@page_router.get("/modeler", response_class=HTMLResponse)
def modeler_page(request: Request, process_id: str | None = None, version: int | None = None,
                 draft: str | None = None) -> Response:
    """Show the modeler with a deployed version (process_id and version), a draft, or a new flowchart."""
    actor = page_actor(request)
    if actor is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    require_role(actor, *MODELER_ROLES)

    # The page's script calls the API with a token of its own, so the sign-in cookie stays HttpOnly.
    service = service_of(request)
    with service.db.write() as conn:
        token, _expires = issue_token(conn, actor.username, service.now(),
                                      timedelta(minutes=service.settings.token_ttl_minutes))
    other_locale = "zh_CN" if request_locale(request) == "en" else "en"
    query = [(key, value) for key, value in request.query_params.multi_items() if key != "lang"]
    page = render("modeler.html", request, actor=actor, token=token, bundle_ready=BUNDLE.exists(),
                  process_id=process_id or "", version=version or "", draft=draft or "",
                  lang_link="?" + urlencode([*query, ("lang", other_locale)]))
    page.headers["Cache-Control"] = "no-store"
    return page


@drafts_router.get("", response_model=list[Draft])
def list_drafts(service: Service, actor: CurrentActor) -> list[Draft]:
    """List every saved draft, newest first."""
    require_role(actor, *MODELER_ROLES)
    return draft_store(service).list_drafts()


@drafts_router.get("/{name}", response_class=Response, responses={200: {"content": {"application/xml": {}}}})
def read_draft(name: str, service: Service, actor: CurrentActor) -> Response:
    """Return the BPMN text of one draft."""
    require_role(actor, *MODELER_ROLES)
    return Response(content=draft_store(service).read(name), media_type="application/xml")


@drafts_router.put("/{name}", response_model=Draft,
                   openapi_extra={"requestBody": {"required": True,
                                                  "content": {"application/xml": {"schema": {"type": "string"}}}}})
async def save_draft(name: str, request: Request, service: Service, actor: CurrentActor) -> Draft:
    """Save the BPMN text in the request body as the draft ``name``, replacing an earlier one."""
    require_role(actor, *MODELER_ROLES)
    content = await request.body()
    limit = service.settings.max_upload_bytes
    if len(content) > limit:
        raise InvalidInput(msg("The uploaded file is over the limit of {limit} bytes.", limit=limit))
    draft = draft_store(service).save(name, content, actor, service.now())
    logger.info("draft saved", extra={"draft": draft.name, "actor": actor.username, "bytes": draft.size})
    return draft


@drafts_router.delete("/{name}", status_code=204, response_class=Response)
def delete_draft(name: str, service: Service, actor: CurrentActor) -> Response:
    """Delete one draft."""
    require_role(actor, *MODELER_ROLES)
    draft_store(service).delete(name)
    logger.info("draft deleted", extra={"draft": name, "actor": actor.username})
    return Response(status_code=204)
