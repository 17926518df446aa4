from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import access
from api.deps import CurrentActor, Service
from api.errors import request_locale
from api.idempotency import IDEMPOTENT_RESPONSES, Idempotent
from api.schemas import (
    CaseDetail,
    ControlCheckPublic,
    FieldProblemPublic,
    TaskCheck,
    TaskComplete,
    TaskDetail,
    TaskPublic,
    TimersFired,
)
from engine import controls
from engine.errors import Forbidden
from engine.i18n import msg
from engine.users import require_role

router = APIRouter(prefix="/api", tags=["tasks"])


@router.get("/tasks", response_model=list[TaskPublic])
def list_tasks(service: Service, actor: CurrentActor, scope: str = "mine", case_id: int | None = None,
               status: str = "open") -> list[dict]:
    """Tasks: ``mine`` lists those the user's posts may claim or already holds; ``all`` lists every one.

    Staff may list ``all`` tasks of one case they can see, given as ``case_id``.
    """
    if scope == "all" and not access.sees_all_cases(actor) and actor.has_role("staff"):
        if case_id is None:
            raise Forbidden(msg("Task scope all lists the tasks of every case and is for auditors and "
                                "administrators; add case_id of a case you can see, or use scope mine."))
        access.require_case_visible(service, actor, case_id)
    return service.list_tasks(actor, scope=scope, case_id=case_id, status=status)


@router.get("/tasks/{task_id}", response_model=TaskDetail)
def get_task(task_id: str, service: Service, actor: CurrentActor) -> dict:
    """Return one task with its form fields, risk checkpoints and the case data it reads."""
    access.require_task_visible(service, actor, task_id)
    return service.get_task(task_id)


@router.post("/tasks/{task_id}/claim", response_model=TaskDetail, responses=IDEMPOTENT_RESPONSES)
def claim(task_id: str, service: Service, actor: CurrentActor, idempotency: Idempotent) -> dict | Response:
    """Claim a ready task for the signed-in user."""
    access.require_task_visible(service, actor, task_id)
    return idempotency.run(lambda: service.claim(task_id, actor), TaskDetail)


@router.post("/tasks/{task_id}/release", response_model=TaskDetail, responses=IDEMPOTENT_RESPONSES)
def release(task_id: str, service: Service, actor: CurrentActor, idempotency: Idempotent) -> dict | Response:
    """Give a claimed task back to its post."""
    access.require_task_visible(service, actor, task_id)
    return idempotency.run(lambda: service.release(task_id, actor), TaskDetail)


@router.post("/tasks/{task_id}/complete", response_model=CaseDetail, responses=IDEMPOTENT_RESPONSES)
def complete(task_id: str, body: TaskComplete, service: Service, actor: CurrentActor,
             idempotency: Idempotent) -> dict | Response:
    """Complete a task with its form data; returns the case after the engine has moved on.

    Send an Idempotency-Key to retry safely: a completion whose response was lost is applied once.
    """
    access.require_task_visible(service, actor, task_id)
    return idempotency.run(lambda: service.complete(task_id, actor, body.data), CaseDetail)


@router.post("/tasks/{task_id}/check", response_model=TaskCheck)
def check_task(task_id: str, body: TaskComplete, request: Request, service: Service, actor: CurrentActor) -> TaskCheck:
    """Evaluate the step's controls with the form data typed so far, as completing it now would. Nothing is stored."""
    access.require_task_visible(service, actor, task_id)
    result = controls.dry_run_completion(service, task_id, actor, body.data)
    locale = request_locale(request)
    return TaskCheck(
        task_id=result.task_id, blocked=result.blocked,
        controls=[ControlCheckPublic(id=check.control_id, type=check.control_type,
                                     rule=controls.RULE_NAMES[check.control_type].render(locale),
                                     checkpoint_id=check.checkpoint_id, enforcement=check.enforcement,
                                     passed=check.passed, overridden=check.overridden,
                                     message=check.message.render(locale) if check.message else None)
                  for check in result.controls],
        field_problems=[FieldProblemPublic(field=problem.field, message=problem.message.render(locale))
                        for problem in result.field_problems],
    )


@router.post("/timers/fire", response_model=TimersFired)
def fire_timers(service: Service, actor: CurrentActor) -> TimersFired:
    """Fire every timer that is due now (administrators; the worker does this on a schedule)."""
    require_role(actor, "admin")
    return TimersFired(cases=service.fire_due_timers(actor))
