from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from api import access
from api.deps import CurrentActor, Service
from api.errors import request_locale
from api.idempotency import IDEMPOTENT_RESPONSES, Idempotent
from api.schemas import (
    CaseCancel,
    CaseDetail,
    CaseStart,
    CaseSummary,
    StreamVerification,
    TraceEventPublic,
    VerifyResponse,
)
from engine.trace import StreamReport, event_message
from engine.users import Actor, require_role

router = APIRouter(prefix="/api", tags=["cases"])


def _require_reader(actor: Actor) -> None:
    require_role(actor, "staff", "auditor", "admin", "designer")


@router.post("/cases", response_model=CaseDetail, status_code=201,
             responses={201: IDEMPOTENT_RESPONSES[200], 409: IDEMPOTENT_RESPONSES[409], 422: IDEMPOTENT_RESPONSES[422]})
def start_case(body: CaseStart, service: Service, actor: CurrentActor, idempotency: Idempotent) -> dict | Response:
    """Start a case of the newest (or the named) version of a process.

    Send an Idempotency-Key to retry safely: a start whose response was lost creates one case, not two.
    """
    return idempotency.run(lambda: service.start_case(body.process_id, actor, body.data, body.title, body.version),
                           CaseDetail, status_code=201)


@router.get("/cases", response_model=list[CaseSummary])
def list_cases(service: Service, actor: CurrentActor, status: str | None = None, process_id: str | None = None,
               limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict]:
    """Cases, newest first, filtered by status (running, completed, cancelled) or process.

    Staff get only the cases of their department, the ones they started and the ones with a task of theirs.
    """
    _require_reader(actor)
    if not access.sees_all_cases(actor):
        return access.list_visible_cases(service, actor, status=status, process_id=process_id, limit=limit,
                                         offset=offset)
    return service.list_cases(status=status, process_id=process_id, limit=limit, offset=offset)


@router.get("/cases/{case_id}", response_model=CaseDetail)
def get_case(case_id: int, service: Service, actor: CurrentActor) -> dict:
    """Return one case with its data and its open tasks."""
    _require_reader(actor)
    access.require_case_visible(service, actor, case_id)
    return service.get_case(case_id)


@router.post("/cases/{case_id}/cancel", response_model=CaseDetail, responses=IDEMPOTENT_RESPONSES)
def cancel_case(case_id: int, body: CaseCancel, service: Service, actor: CurrentActor,
                idempotency: Idempotent) -> dict | Response:
    """Cancel a running case (administrators only, with a written reason)."""
    return idempotency.run(lambda: service.cancel_case(case_id, actor, body.reason), CaseDetail)


@router.get("/cases/{case_id}/trace", response_model=list[TraceEventPublic])
def case_trace(case_id: int, request: Request, service: Service, actor: CurrentActor) -> list[dict]:
    """List every trace event of a case in order, with its hash chain and its message in the reader's language."""
    _require_reader(actor)
    access.require_case_visible(service, actor, case_id)
    return [{**event, "message": event_message(event, request_locale(request))}
            for event in service.case_trace(case_id)]


def _verification(reports: list[StreamReport], locale: str) -> VerifyResponse:
    streams = []
    for report in reports:
        finding = report.finding
        streams.append(StreamVerification(
            stream=report.stream, events=report.events, head=report.head, ok=report.ok,
            problem=finding.problem if finding else None, seq=finding.seq if finding else None,
            event_id=finding.event_id if finding else None,
            message=finding.message.render(locale) if finding else None,
        ))
    return VerifyResponse(ok=all(s.ok for s in streams), streams=streams)


@router.get("/cases/{case_id}/verify", response_model=VerifyResponse)
def verify_case(case_id: int, request: Request, service: Service, actor: CurrentActor) -> VerifyResponse:
    """Recompute the hash chain of one case and report the first altered, missing or extra event."""
    _require_reader(actor)
    access.require_case_visible(service, actor, case_id)
    return _verification(service.verify(case_id), request_locale(request))


@router.get("/verify", response_model=VerifyResponse)
def verify_all(request: Request, service: Service, actor: CurrentActor) -> VerifyResponse:
    """Verify every trace stream: all cases and the system stream of deployments."""
    require_role(actor, "auditor", "admin")
    return _verification(service.verify(), request_locale(request))


@router.get("/trace/system", response_model=list[TraceEventPublic])
def system_trace(service: Service, actor: CurrentActor) -> list[dict]:
    """List the system stream: deployments, user and calendar changes and other events outside any case.

    Auditors and administrators only.
    """
    require_role(actor, "auditor", "admin")
    return service.system_trace()
