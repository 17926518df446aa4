"""Rendered flowcharts for the pages and the static site, cached because deployed bytes never change."""

from __future__ import annotations

import functools

from fastapi.responses import Response

from engine.errors import InvalidInput
from engine.i18n import msg
from engine.service import Liuhen

MEDIA_TYPES = {"svg": "image/svg+xml", "pdf": "application/pdf", "png": "image/png"}


@functools.lru_cache(maxsize=128)
def _rendered(content: bytes, filename: str, extension: str, locale: str) -> bytes:
    from diagrams import render

    return render(content, filename, extension, locale)


def render_diagram(service: Liuhen, process_id: str, version: int, extension: str, locale: str) -> bytes:
    if extension not in MEDIA_TYPES:
        raise InvalidInput(msg("Diagram format {value!r} is not supported; use svg, png or pdf.", value=extension))
    filename, content = service.definition_content(process_id, version)
    return _rendered(content, filename, extension, locale)


def diagram_response(service: Liuhen, process_id: str, version: int, extension: str, locale: str) -> Response:
    body = render_diagram(service, process_id, version, extension, locale)
    return Response(body, media_type=MEDIA_TYPES[extension],
                    headers={"Cache-Control": "public, max-age=300"})
