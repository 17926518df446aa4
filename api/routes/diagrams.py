"""Flowchart diagrams of deployed versions for signed-in users, drawn by the diagrams package."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import CurrentActor, Service
from api.diagram_files import image_response, render_diagram
from api.errors import request_locale
from diagrams import MEDIA_TYPES, DiagramFormat

router = APIRouter(prefix="/api/definitions", tags=["diagrams"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}},
}


@router.get("/{process_id}/versions/{version}/diagram.{fmt}", response_class=Response, responses=_RESPONSES)
def diagram(process_id: str, version: int, fmt: DiagramFormat, request: Request, service: Service,
            actor: CurrentActor) -> Response:
    """Return the flowchart of this version as SVG, PNG or PDF, labelled in the language of the request."""
    body = render_diagram(service, process_id, version, fmt, request_locale(request))
    # Internal flowcharts are for signed-in staff, so shared caches must not keep a copy.
    return image_response(body, fmt, f"{process_id}-v{version}.{fmt}", "private, max-age=300")
