"""Audit endpoints: replay a case, look at it as of one trace event, check conformance to the model.

Every route here is open to auditors and administrators only, checked once for the whole router.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from api.deps import CurrentActor, Service
from api.errors import request_locale
from engine.conformance import case_conformance, deviation_label, version_conformance
from engine.replay import replay_case, state_at
from engine.users import require_role


def require_auditor(actor: CurrentActor) -> None:
    require_role(actor, "auditor", "admin")


router = APIRouter(prefix="/api", tags=["audit"], dependencies=[Depends(require_auditor)])


class DivergencePublic(BaseModel):
    kind: str
    seq: int | None
    message: str
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None


class InterventionPublic(BaseModel):
    seq: int
    kind: str
    actor: str
    at: str
    element_id: str | None
    reason: str | None


class ReplayResponse(BaseModel):
    case_id: int
    process_id: str | None
    version: int | None
    definition_id: int | None
    content_hash: str | None
    status: str
    ok: bool
    events: int
    checked: int
    steps: int
    divergence: DivergencePublic | None
    interventions: list[InterventionPublic]


class OpenTaskPublic(BaseModel):
    task_id: str | None
    element_id: str
    name: str | None
    lane: str | None
    assignee: str | None
    ready_at: str | None


class TimerPublic(BaseModel):
    element_id: str
    name: str | None
    due: str


class CaseStateResponse(BaseModel):
    case_id: int
    definition_id: int
    process_id: str
    version: int
    seq: int
    through_seq: int
    at: str
    status: str
    elapsed_seconds: float
    open_tasks: list[OpenTaskPublic]
    timers: list[TimerPublic]
    data: dict[str, Any]


class PathStepPublic(BaseModel):
    seq: int
    kind: str
    element_id: str | None
    name: str | None


class DeviationPublic(BaseModel):
    category: str
    kind: str
    label: str
    seq: int
    element_id: str | None
    actor: str
    at: str
    message: str


class StepTimePublic(BaseModel):
    element_id: str
    task_id: str
    ready_at: str
    completed_at: str
    seconds: float


class CaseConformanceResponse(BaseModel):
    case_id: int
    process_id: str
    version: int
    definition_id: int
    status: str
    conforms: bool
    definition_intact: bool
    path: list[PathStepPublic]
    repeated_steps: dict[str, int]
    deviations: list[DeviationPublic]
    step_times: list[StepTimePublic]


class DeviationCount(BaseModel):
    kind: str
    label: str
    element_id: str | None
    count: int


class RepeatedStep(BaseModel):
    element_id: str
    cases: int
    max_count: int
    executions: int


class StepTimeSummary(BaseModel):
    element_id: str
    name: str | None
    count: int
    mean_seconds: float
    median_seconds: float


class VersionConformanceResponse(BaseModel):
    process_id: str
    version: int
    definition_id: int
    definition_intact: bool
    cases: int
    by_status: dict[str, int]
    conforming: int
    deviating: int
    conforming_share: float | None
    deviations: list[DeviationCount]
    repeated_steps: list[RepeatedStep]
    step_times: list[StepTimeSummary]


def _labelled(items: list[dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    return [{**item, "label": deviation_label(item["kind"]).render(locale)} for item in items]


@router.get("/cases/{case_id}/replay", response_model=ReplayResponse)
def replay(case_id: int, request: Request, service: Service) -> dict[str, Any]:
    """Re-run a case from its trace on its pinned definition and report the first divergence."""
    return replay_case(service, case_id).as_dict(request_locale(request))


@router.get("/cases/{case_id}/state", response_model=CaseStateResponse)
def case_state(case_id: int, service: Service,
               at: int = Query(..., ge=1, description="Trace event number; the state is the one just after it.")
               ) -> dict[str, Any]:
    """Compute the case as it stood just after one trace event: open steps, data, timers, status, elapsed time."""
    return state_at(service, case_id, at)


@router.get("/cases/{case_id}/conformance", response_model=CaseConformanceResponse)
def case_conformance_report(case_id: int, request: Request, service: Service) -> dict[str, Any]:
    """List the path a case took, its repeated steps and every deviation from its model."""
    locale = request_locale(request)
    result = case_conformance(service, case_id).as_dict(locale)
    result["deviations"] = _labelled(result["deviations"], locale)
    return result


@router.get("/definitions/{process_id}/versions/{version}/conformance", response_model=VersionConformanceResponse)
def version_conformance_report(process_id: str, version: int, request: Request, service: Service) -> dict[str, Any]:
    """Summarise how the cases of one version followed the model: share, deviations, time per step."""
    summary = version_conformance(service, process_id, version)
    summary["deviations"] = _labelled(summary["deviations"], request_locale(request))
    return summary
