from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentActor, Service
from api.schemas import CaseDetail, TaskComplete, TaskDetail, TaskPublic, TimersFired
from engine.users import require_role

router = APIRouter(prefix="/api", tags=["tasks"])


@router.get("/tasks", response_model=list[TaskPublic])
def list_tasks(service: Service, actor: CurrentActor, scope: str = "mine", case_id: int | None = None,
               status: str = "open") -> list[dict]:
    """Tasks: ``mine`` lists those the user's posts may claim or already holds; ``all`` lists every one."""
    return service.list_tasks(actor, scope=scope, case_id=case_id, status=status)


@router.get("/tasks/{task_id}", response_model=TaskDetail)
def get_task(task_id: str, service: Service, actor: CurrentActor) -> dict:
    """Return one task with its form fields, risk checkpoints and the case data it reads."""
    return service.get_task(task_id)


@router.post("/tasks/{task_id}/claim", response_model=TaskDetail)
def claim(task_id: str, service: Service, actor: CurrentActor) -> dict:
    """Claim a ready task for the signed-in user."""
    return service.claim(task_id, actor)


@router.post("/tasks/{task_id}/release", response_model=TaskDetail)
def release(task_id: str, service: Service, actor: CurrentActor) -> dict:
    """Give a claimed task back to its post."""
    return service.release(task_id, actor)


@router.post("/tasks/{task_id}/complete", response_model=CaseDetail)
def complete(task_id: str, body: TaskComplete, service: Service, actor: CurrentActor) -> dict:
    """Complete a task with its form data; returns the case after the engine has moved on."""
    return service.complete(task_id, actor, body.data)


@router.post("/timers/fire", response_model=TimersFired)
def fire_timers(service: Service, actor: CurrentActor) -> TimersFired:
    """Fire every timer that is due now (administrators; the worker does this on a schedule)."""
    require_role(actor, "admin")
    return TimersFired(cases=service.fire_due_timers(actor))
