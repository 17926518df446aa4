"""Flowchart diagrams of deployed versions for signed-in users, drawn by the diagrams package."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from api.deps import CurrentActor, Service
from api.diagram_files import render_diagram
from api.errors import request_locale
from diagrams import MEDIA_TYPES, DiagramFormat

router = APIRouter(prefix="/api/definitions", tags=["diagrams"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}},
}


@router.get("/{process_id}/versions/{version}/diagram.{fmt}", response_class=Response, responses=_RESPONSES)
def diagram(process_id: str, version: int, fmt: DiagramFormat, request: Request, service: Service,
            actor: CurrentActor) -> Response:
    """The flowchart of this version as SVG, PNG or PDF, labelled in the language of the request."""
    body = render_diagram(service, process_id, version, fmt, request_locale(request))
    headers = {
        # Process ids may contain any Unicode letter, so the file name goes in RFC 5987 form (headers are Latin-1).
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(f'{process_id}-v{version}.{fmt}')}",
        # Internal flowcharts are for signed-in staff, so shared caches must not keep a copy.
        "Cache-Control": "private, max-age=300",
        "Vary": "Accept-Language, Authorization",
        "X-Content-Type-Options": "nosniff",
    }
    if fmt == "svg":
        # The SVG contains BPMN names and conditions as text. This policy stops a browser from running scripts
        # or loading resources from it.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(content=body, media_type=MEDIA_TYPES[fmt], headers=headers)
