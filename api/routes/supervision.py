"""The supervision board, case clocks and supervision notices (督办)."""

from __future__ import annotations

import datetime as dt
from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api import access
from api.deps import CurrentActor, Service
from engine import supervision
from engine.clocks import clocks_of_case
from engine.users import require_role

router = APIRouter(prefix="/api", tags=["supervision"])


class ClockPublic(BaseModel):
    clock: str = Field(description="statutory, promised or step:<task id>")
    kind: str = Field(description="statutory, promised or step")
    task_id: str | None
    element_id: str | None
    amount: int
    unit: str = Field(description="working_day, day or month")
    started_at: datetime
    due_at: datetime
    last_day: dt.date
    days_left: int | None = Field(description="Working days from today to the last day: 0 on it, negative after "
                                              "it; None once the clock has stopped.")
    provisional: bool = Field(description="True when a day counted lies in a year without official holiday data.")
    paused: bool
    card: str = Field(description="Colour now: red, yellow or none.")
    card_raised: str = Field(description="The highest card raised so far: red, yellow or none.")
    stopped_at: datetime | None


class BoardStep(BaseModel):
    task_id: str
    element_id: str
    name: str | None
    post: str | None
    assignee: str | None
    status: str
    risk_level: str | None = Field(description="Highest level of the step's risk checkpoints.")


class BoardCase(BaseModel):
    case_id: int
    title: str | None
    process_id: str
    process_name: str
    version: int
    power_item_code: str | None
    power_item_name: str | None
    department: str | None
    started_at: datetime
    card: str = Field(description="Worst colour of the case's open clocks: red, yellow or none.")
    days_left: int | None = Field(description="Working days left on the case's most urgent clock.")
    risk_level: str | None = Field(description="Highest level of the current steps' risk checkpoints.")
    clocks: list[ClockPublic]
    steps: list[BoardStep]


class NoticePublic(BaseModel):
    id: int
    case_id: int
    case_title: str | None
    process_id: str
    card_id: int
    clock: str
    due_at: datetime
    task_id: str | None
    element_id: str | None
    holder: str | None = Field(description="The user who held the step, or None when it was waiting for its post.")
    post: str | None
    leader: str | None = Field(description="The supervising leader, or the power item's responsible subject.")
    status: str = Field(description="open or answered")
    opened_at: datetime
    answered_by: str | None
    answered_at: datetime | None
    answer: str | None


class NoticeAnswer(BaseModel):
    answer: str = Field(min_length=1, max_length=supervision.MAX_ANSWER_LENGTH)


class CardPublic(BaseModel):
    card_id: int
    case_id: int
    clock: str
    colour: str
    notice_id: int | None


@router.get("/supervision/board", response_model=list[BoardCase])
def get_board(service: Service, actor: CurrentActor, department: str | None = None, process_id: str | None = None,
              power_item: str | None = None, risk_level: str | None = None, card: str | None = None,
              limit: int = Query(200, ge=1, le=supervision.MAX_BOARD_ROWS)) -> list[dict]:
    """Running cases, most urgent first, with their card, clocks and current steps (auditors, administrators)."""
    filters = supervision.BoardFilter(department=department, process_id=process_id, power_item=power_item,
                                      risk_level=risk_level, card=card, limit=limit)
    return supervision.board(service, actor, filters)


@router.get("/cases/{case_id}/clocks", response_model=list[ClockPublic])
def get_case_clocks(case_id: int, service: Service, actor: CurrentActor) -> list[dict]:
    """Every clock of one case, open and stopped, with the time left on the open ones."""
    require_role(actor, "staff", "auditor", "admin", "designer")
    access.require_case_visible(service, actor, case_id)
    return clocks_of_case(service, case_id)


@router.get("/supervision/notices", response_model=list[NoticePublic])
def get_notices(service: Service, actor: CurrentActor, scope: str = "mine", status: str = "open",
                case_id: int | None = None) -> list[dict]:
    """Supervision notices: ``mine`` are addressed to the user or their post; ``all`` is for auditors."""
    return supervision.list_notices(service, actor, scope=scope, status=status, case_id=case_id)


@router.post("/supervision/notices/{notice_id}/answer", response_model=NoticePublic)
def answer_notice(notice_id: int, body: NoticeAnswer, service: Service, actor: CurrentActor) -> dict:
    """Answer an open notice addressed to the signed-in user, saying what was done about the delay."""
    access.require_notice_visible(service, actor, notice_id)
    return supervision.answer_notice(service, notice_id, actor, body.answer)


@router.post("/supervision/check", response_model=list[CardPublic])
def check_deadlines(service: Service, actor: CurrentActor) -> list[dict]:
    """Raise every card that is due now (administrators; the worker does this every round)."""
    require_role(actor, "admin")
    return [vars(card) for card in supervision.check_deadlines(service, actor)]
