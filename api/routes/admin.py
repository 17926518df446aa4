"""Administrative interventions; each needs a written reason and is recorded in the case's trace."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CurrentActor, Service
from api.schemas import CaseDetail
from engine import interventions

router = APIRouter(prefix="/api", tags=["administration"])


class Reassign(BaseModel):
    assignee: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)


class Skip(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    data: dict[str, Any] = Field(default_factory=dict)


class EditData(BaseModel):
    changes: dict[str, Any]
    reason: str = Field(min_length=1, max_length=2000)


class Migrate(BaseModel):
    version: int = Field(ge=1)
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/tasks/{task_id}/reassign", response_model=CaseDetail)
def reassign(task_id: str, body: Reassign, service: Service, actor: CurrentActor) -> dict:
    """Give an open task to a named user of its post (administrators)."""
    return interventions.reassign_task(service, task_id, actor, body.assignee, body.reason)


@router.post("/tasks/{task_id}/skip", response_model=CaseDetail)
def skip(task_id: str, body: Skip, service: Service, actor: CurrentActor) -> dict:
    """Complete an open task as an administrator, bypassing its post and form checks."""
    return interventions.skip_step(service, task_id, actor, body.reason, body.data)


@router.post("/cases/{case_id}/data", response_model=CaseDetail)
def edit_data(case_id: int, body: EditData, service: Service, actor: CurrentActor) -> dict:
    """Change case data as the next steps see it; the trace keeps the old values."""
    return interventions.edit_case_data(service, case_id, actor, body.changes, body.reason)


@router.post("/cases/{case_id}/migrate", response_model=CaseDetail)
def migrate(case_id: int, body: Migrate, service: Service, actor: CurrentActor) -> dict:
    """Move a running case to another version of its process, where its position still exists."""
    return interventions.migrate_case(service, case_id, actor, body.version, body.reason)
