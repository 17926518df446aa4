"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UserPublic(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    posts: list[str]
    department: str | None = None


class LoginResponse(BaseModel):
    token: str
    expires_at: datetime
    user: UserPublic


class DeployedProcessPublic(BaseModel):
    definition_id: int
    process_id: str
    version: int
    content_hash: str
    created: bool
    message: str


class FindingPublic(BaseModel):
    severity: str = Field(description="error (blocks deployment) or warning (does not).")
    code: str
    element_id: str | None
    element_name: str | None
    line: int | None
    process_id: str | None
    message: str
    hint: str = Field(description="What to change to fix it.")


class DeployResponse(BaseModel):
    filename: str
    processes: list[DeployedProcessPublic]
    findings: list[FindingPublic] = Field(default_factory=list, description="Warnings of the file's validation.")


class ValidateResponse(BaseModel):
    filename: str
    valid: bool
    content_hash: str
    processes: list[str]
    findings: list[FindingPublic] = Field(default_factory=list, description="Every finding, errors first.")


class DefinitionPublic(BaseModel):
    id: int
    process_id: str
    version: int
    name: str
    kind: str | None
    content_hash: str
    power_item: dict[str, Any] | None
    deployed_by: str
    deployed_at: datetime


class DefinitionDetail(DefinitionPublic):
    nodes: dict[str, Any]


class CaseStart(BaseModel):
    process_id: str = Field(min_length=1, max_length=255)
    version: int | None = Field(default=None, ge=1)
    title: str | None = Field(default=None, max_length=255)
    data: dict[str, Any] = Field(default_factory=dict)


class CaseCancel(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class TaskPublic(BaseModel):
    id: str
    case_id: int
    element_id: str
    name: str | None
    lane: str | None
    status: str
    assignee: str | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    # Set for open tasks wherever they are returned, and None for finished tasks.
    card: str | None = Field(default=None, description="Red, yellow or none for the task's own clock, else the "
                                                       "case's most urgent clock; None without a clock.")
    due_at: datetime | None = Field(default=None, description="The due time of that clock.")
    days_left: int | None = Field(default=None, description="Working days left on that clock.")


REVIEW_DESCRIPTION = ("Only for a step that needs several distinct approvers: the number of votes needed, the "
                      "votes so far and, once complete, the combined decision.")


class TaskDetail(TaskPublic):
    form_fields: list[dict[str, Any]]
    risk_checkpoints: list[dict[str, Any]]
    data: dict[str, Any]
    review: dict[str, Any] | None = Field(default=None, description=REVIEW_DESCRIPTION)


class CaseSummary(BaseModel):
    id: int
    definition_id: int
    process_id: str
    process_name: str
    version: int
    title: str | None
    status: str
    started_by: str
    started_at: datetime
    ended_at: datetime | None
    end_element_id: str | None
    revision: int
    next_timer_at: datetime | None


class CaseDetail(CaseSummary):
    data: dict[str, Any]
    tasks: list[TaskPublic] = Field(description="Open tasks; GET /api/tasks?case_id=…&status=any lists all.")
    review: dict[str, Any] | None = Field(default=None, description=REVIEW_DESCRIPTION)


class TaskComplete(BaseModel):
    data: dict[str, Any] = Field(default_factory=dict)


class TraceEventPublic(BaseModel):
    id: int
    seq: int
    stream: str
    kind: str
    actor: str
    at: str
    case_id: int | None
    definition_id: int | None
    element_id: str | None
    task_id: str | None
    payload: dict[str, Any]
    prev: str
    hash: str
    # The message the payload stores, rendered in the reader's language. It is not part of the hashed record.
    message: str | None = None


class StreamVerification(BaseModel):
    stream: str
    events: int
    head: str
    ok: bool
    problem: str | None = None
    seq: int | None = None
    event_id: int | None = None
    message: str | None = None


class VerifyResponse(BaseModel):
    ok: bool
    streams: list[StreamVerification]


class TimersFired(BaseModel):
    cases: list[int]


class ControlCheckPublic(BaseModel):
    id: str
    type: str
    rule: str = Field(description="The control type's name in the reader's language.")
    checkpoint_id: str
    enforcement: str = Field(description="hard: a failure blocks the step; soft: a failure lets it go ahead and "
                                         "records a risk event.")
    passed: bool
    overridden: bool = Field(description="True for a failed hard control that an approved override lets through "
                                         "once.")
    message: str | None = Field(description="Why the control failed, or a note on a passed one; None otherwise.")


class FieldProblemPublic(BaseModel):
    field: str
    message: str


class TaskCheck(BaseModel):
    task_id: str
    blocked: bool = Field(description="True when a failed hard control would stop the completion.")
    controls: list[ControlCheckPublic] = Field(description="Every control of the step, in document order; the "
                                                           "quorum control comes last.")
    field_problems: list[FieldProblemPublic] = Field(description="Typed values the form would reject; the controls "
                                                                 "judged them as empty.")
