"""Flowcharts with what cases did on them: one case's path, and a heat map over all cases of a version.

A case's path shows the same facts as its trace (who completed which step, and when), so it is open
to the users who may read the case's trace: auditors, administrators, designers, and staff for the
cases api/access.py lets them see. The heat map summarises every case of a version and is for
auditors and administrators.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api import access
from api.deps import CurrentActor, Service
from api.diagram_files import image_response
from api.errors import request_locale
from api.overlay_rendering import case_diagram, version_heatmap
from diagrams import MEDIA_TYPES, DiagramFormat
from diagrams.heatmap import HeatMeasure
from diagrams.overlay import DEFAULT_TIMEZONE, parse_timezone
from engine.users import require_role


def require_trace_reader(actor: CurrentActor) -> None:
    require_role(actor, "staff", "auditor", "admin", "designer")


def require_auditor(actor: CurrentActor) -> None:
    require_role(actor, "auditor", "admin")


router = APIRouter(prefix="/api", tags=["diagrams"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}},
}


def _image_response(body: bytes, fmt: str, filename: str) -> Response:
    # Both drawings change whenever a case moves on, and they name the people who acted.
    return image_response(body, fmt, filename, "private, no-cache")


@router.get("/cases/{case_id}/diagram.{fmt}", response_class=Response, responses=_RESPONSES,
            dependencies=[Depends(require_trace_reader)])
def case_path_diagram(case_id: int, fmt: DiagramFormat, request: Request, service: Service, actor: CurrentActor,
                      tz: str = Query(DEFAULT_TIMEZONE, description="IANA time zone of the times shown.")
                      ) -> Response:
    """The flowchart version a case runs on, with the steps it took numbered in order and the flows it took."""
    access.require_case_visible(service, actor, case_id)
    body = case_diagram(service, case_id, fmt, request_locale(request), parse_timezone(tz))
    return _image_response(body, fmt, f"case-{case_id}.{fmt}")


@router.get("/definitions/{process_id}/versions/{version}/heatmap.{fmt}", response_class=Response,
            responses=_RESPONSES, dependencies=[Depends(require_auditor)])
def version_heatmap_diagram(process_id: str, version: int, fmt: DiagramFormat, request: Request, service: Service,
                            measure: HeatMeasure = Query("visits", description="What fills the steps: visits, "
                                                                               "average time or risk events.")
                            ) -> Response:
    """A process version with how often cases took each step and flow, time per step and risk events."""
    body = version_heatmap(service, process_id, version, fmt, request_locale(request), measure)
    return _image_response(body, fmt, f"{process_id}-v{version}-heatmap.{fmt}")
