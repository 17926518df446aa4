"""Diffs between two versions of a process, and the annual review of its risk checkpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import CurrentActor, Service
from api.diagram_files import image_response
from api.diff_rendering import diff_diagram
from api.errors import request_locale
from diagrams import MEDIA_TYPES, DiagramFormat
from engine.checkpoint_review import MAX_NOTE_LENGTH, mark_reviewed, review_report
from engine.versions import diff_versions

router = APIRouter(prefix="/api", tags=["versions"])

_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}},
}
_FROM = Query(alias="from", ge=1, description="The older version.")
_TO = Query(alias="to", ge=1, description="The newer version.")


class ReviewMark(BaseModel):
    note: str = Field(min_length=1, max_length=MAX_NOTE_LENGTH, description="What was reviewed and concluded.")
    process_id: str | None = Field(default=None, max_length=255,
                                   description="Needed when several processes have a checkpoint with this id.")


@router.get("/definitions/{process_id}/diff")
def version_diff(process_id: str, service: Service, actor: CurrentActor, old: int = _FROM,
                 new: int = _TO) -> dict[str, Any]:
    """List the nodes, flows, lanes, checkpoints, controls, form fields and time limits added, removed or changed."""
    return diff_versions(service, process_id, old, new).to_json()


@router.get("/definitions/{process_id}/diff.{fmt}", response_class=Response, responses=_IMAGE_RESPONSES)
def version_diff_diagram(process_id: str, fmt: DiagramFormat, request: Request, service: Service,
                         actor: CurrentActor, old: int = _FROM, new: int = _TO) -> Response:
    """Draw the newer version's flowchart with its added, changed and removed steps and flows coloured."""
    diff = diff_versions(service, process_id, old, new)
    body = diff_diagram(service, diff, fmt, request_locale(request))
    # The labels follow the request's language, so a cache must ask again rather than reuse another's drawing.
    return image_response(body, fmt, f"{process_id}-v{old}-v{new}-diff.{fmt}", "private, no-cache")


@router.get("/review/checkpoints")
def checkpoint_review(service: Service, actor: CurrentActor,
                      process_id: str | None = Query(None, description="Only this process.")) -> list[dict[str, Any]]:
    """List each risk checkpoint of the newest versions: unchanged since when, events and cases since, last review."""
    return [status.to_json() for status in review_report(service, actor, process_id)]


@router.post("/review/checkpoints/{checkpoint_id}/reviewed")
def checkpoint_reviewed(checkpoint_id: str, body: ReviewMark, service: Service,
                        actor: CurrentActor) -> dict[str, Any]:
    """Mark a checkpoint of the newest version reviewed, with a note; recorded in the system trace."""
    return mark_reviewed(service, actor, checkpoint_id, body.note, body.process_id).to_json()
