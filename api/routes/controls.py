"""Overrides of hard controls: one administrator requests, a different one approves or rejects."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import CurrentActor, Service
from engine import overrides
from engine.users import require_role

router = APIRouter(prefix="/api", tags=["controls"])


class OverrideRequest(BaseModel):
    control_id: str = Field(min_length=1, max_length=255)
    reason: str = Field(min_length=1, max_length=2000,
                        description=f"Why the control should not apply, at least {overrides.MIN_REASON_LENGTH} "
                                    "characters.")


class OverrideDecision(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class OverridePublic(BaseModel):
    id: int
    case_id: int
    task_id: str
    element_id: str
    control_id: str
    reason: str
    status: str = Field(description="pending, approved, rejected or used")
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    used_at: datetime | None


@router.post("/tasks/{task_id}/overrides", response_model=OverridePublic, status_code=201)
def request_override(task_id: str, body: OverrideRequest, service: Service, actor: CurrentActor) -> dict:
    """Ask to let this task pass one hard control once (administrators; another administrator decides)."""
    return overrides.request_override(service, task_id, body.control_id, body.reason, actor)


@router.post("/overrides/{override_id}/approve", response_model=OverridePublic)
def approve_override(override_id: int, service: Service, actor: CurrentActor,
                     body: OverrideDecision | None = None) -> dict:
    """Approve a pending override (an administrator other than the one who requested it)."""
    return overrides.decide_override(service, override_id, actor, True, body.note if body else None)


@router.post("/overrides/{override_id}/reject", response_model=OverridePublic)
def reject_override(override_id: int, service: Service, actor: CurrentActor,
                    body: OverrideDecision | None = None) -> dict:
    """Reject a pending override (an administrator other than the one who requested it)."""
    return overrides.decide_override(service, override_id, actor, False, body.note if body else None)


@router.get("/overrides", response_model=list[OverridePublic])
def list_overrides(service: Service, actor: CurrentActor, status: str | None = None, case_id: int | None = None,
                   limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    """Overrides, newest first, filtered by status or case (administrators and auditors)."""
    return overrides.list_overrides(service, actor, status=status, case_id=case_id, limit=limit)


@router.get("/overrides/{override_id}", response_model=OverridePublic)
def get_override(override_id: int, service: Service, actor: CurrentActor) -> dict:
    """Return one override (administrators and auditors)."""
    require_role(actor, "admin", "auditor")
    return overrides.get_override(service, override_id)
