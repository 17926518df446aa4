"""The risk register (风险台账) as a download for auditors, designers and administrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentActor, Service
from api.errors import request_locale
from engine.register_formats import MEDIA_TYPES, export_register

router = APIRouter(prefix="/api", tags=["register"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}},
}


@router.get("/register", response_class=Response, responses=_RESPONSES)
def risk_register(request: Request, service: Service, actor: CurrentActor,
                  register_format: str = Query("xlsx", alias="format"), process: str | None = None,
                  all_versions: bool = False, bom: bool = False) -> Response:
    """Download the risk register as xlsx, CSV or JSON, labelled in the language of the request."""
    _register, content = export_register(service, actor, register_format, request_locale(request),
                                         process_id=process or None, all_versions=all_versions, bom=bom)
    stamp = service.now().strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "Content-Disposition": f'attachment; filename="liuhen-risk-register-{stamp}.{register_format}"',
        # The register lists internal flowcharts and their risk points, so shared caches must not keep it.
        "Cache-Control": "private, no-store",
        "Vary": "Accept-Language, Authorization",
    }
    return Response(content=content, media_type=MEDIA_TYPES[register_format], headers=headers)
