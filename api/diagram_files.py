"""Rendered flowcharts for the pages and the static site, cached because deployed bytes never change."""

from __future__ import annotations

import functools
from urllib.parse import quote

from fastapi.responses import Response

from diagrams import MEDIA_TYPES
from engine.errors import InvalidInput
from engine.i18n import msg
from engine.service import Liuhen


@functools.lru_cache(maxsize=128)
def _rendered(content: bytes, filename: str, extension: str, locale: str) -> bytes:
    from diagrams import render

    return render(content, filename, extension, locale)


def render_diagram(service: Liuhen, process_id: str, version: int, extension: str, locale: str) -> bytes:
    if extension not in MEDIA_TYPES:
        raise InvalidInput(msg("Diagram format {value!r} is not supported; use svg, png or pdf.", value=extension))
    filename, content = service.definition_content(process_id, version)
    return _rendered(content, filename, extension, locale)


def image_response(body: bytes, fmt: str, filename: str, cache_control: str) -> Response:
    """Wrap a rendered drawing in a response with its media type, file name and safety headers."""
    headers = {
        # Process ids may contain any Unicode letter, so the file name goes in RFC 5987 form (headers are Latin-1).
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": cache_control,
        "Vary": "Accept-Language, Authorization",
        "X-Content-Type-Options": "nosniff",
    }
    if fmt == "svg":
        # The SVG contains names from the BPMN file and the case as text. This policy stops a browser from
        # running scripts or loading resources from it.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(content=body, media_type=MEDIA_TYPES[fmt], headers=headers)


def diagram_response(service: Liuhen, process_id: str, version: int, extension: str, locale: str) -> Response:
    """Return a published flowchart; its bytes never change, so any cache may keep it for a while."""
    body = render_diagram(service, process_id, version, extension, locale)
    return image_response(body, extension, f"{process_id}-v{version}.{extension}", "public, max-age=300")
