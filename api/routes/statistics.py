"""Supervision statistics, risk events and department grades, for auditors and administrators.

Periods are given as ``from`` and ``to``. Each names a date (2026-12-05), a month (2026-12), a quarter
(2026-Q4) or a year (2026) in Asia/Shanghai dates. Without ``to`` the period ends where ``from`` ends, and
without both it is the current month.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from api.deps import CurrentActor, Service
from api.errors import request_locale
from engine.calendar import local_today
from engine.grading import grade_departments, load_grade_rules
from engine.periods import Period, parse_period
from engine.statistics import MAX_PAGE_SIZE, RiskEventFilter, compute_statistics, list_risk_events
from engine.users import Actor, require_role

router = APIRouter(prefix="/api", tags=["supervision"])


def _auditor(actor: CurrentActor) -> Actor:
    # Checked before the period and the rule file are read, so a user without the role gets 403 and nothing else.
    require_role(actor, "auditor", "admin")
    return actor


Auditor = Annotated[Actor, Depends(_auditor)]


class CaseFiguresPublic(BaseModel):
    started: int
    completed: int
    cancelled: int
    running: int
    handled: int
    overdue: int
    overdue_rate: float | None


class StepFiguresPublic(BaseModel):
    handled: int
    completed: int
    overdue: int
    overdue_rate: float | None


class RiskEventCounts(BaseModel):
    total: int
    by_level: dict[str, int]
    by_kind: dict[str, int]


class StepTimePublic(BaseModel):
    process_id: str
    element_id: str
    name: str | None
    completed: int
    mean_hours: float | None
    median_hours: float | None
    mean_working_days: float | None
    median_working_days: float | None


class GroupStatisticsPublic(BaseModel):
    """Figures of one group. The group with key null collects rows without a department, post or process."""

    key: str | None
    name: str | None
    power_item_code: str | None
    cases: CaseFiguresPublic | None
    steps: StepFiguresPublic
    risk_events: RiskEventCounts
    yellow_cards: int
    red_cards: int
    supervision_notices: int
    step_times: list[StepTimePublic]


class StatisticsResponse(BaseModel):
    group: str
    period: dict[str, str]
    groups: list[GroupStatisticsPublic]
    totals: GroupStatisticsPublic
    provisional_years: list[int]


class RiskEventPublic(BaseModel):
    id: int
    case_id: int
    process_id: str
    department: str | None
    element_id: str | None
    task_id: str | None
    post: str | None
    checkpoint_id: str | None
    control_id: str | None
    kind: str
    level: str
    actor: str
    details: dict[str, Any]
    at: datetime


class RiskEventPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[RiskEventPublic]


class DeductionPublic(BaseModel):
    rule: str
    points: float
    count: int | None
    points_each: float | None
    description: str


class DepartmentGradePublic(BaseModel):
    department: str | None
    score: float
    grade: str | None
    grade_name: str
    cases_handled: int
    deductions: list[DeductionPublic]
    figures: GroupStatisticsPublic


class GradesResponse(BaseModel):
    period: dict[str, str]
    rules: str
    base_score: float
    thresholds: dict[str, float]
    min_cases: int
    departments: list[DepartmentGradePublic]


def _period(service: Service, first: str | None, last: str | None) -> Period:
    return parse_period(first, last, local_today(service.now()))


@router.get("/supervision/statistics", response_model=StatisticsResponse)
def supervision_statistics(service: Service, actor: Auditor, group: str = "department",
                           first: str | None = Query(None, alias="from"),
                           last: str | None = Query(None, alias="to")) -> dict[str, Any]:
    """Cases, steps, overdue rates, handling times, cards and risk events per department, post or process."""
    result = compute_statistics(service, actor, group, _period(service, first, last))
    return result.to_json()


@router.get("/risk-events", response_model=RiskEventPage)
def risk_events(service: Service, actor: Auditor, department: str | None = None, post: str | None = None,
                process: str | None = None, level: str | None = None, kind: str | None = None,
                case: int | None = None, first: str | None = Query(None, alias="from"),
                last: str | None = Query(None, alias="to"),
                limit: int = Query(100, ge=1, le=MAX_PAGE_SIZE), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    """Risk events, newest first, filtered by department, post, process, level, kind, case and period."""
    period = _period(service, first, last) if first or last else None
    where = RiskEventFilter(department=department, post=post, process_id=process, level=level, kind=kind,
                            case_id=case, period=period)
    return list_risk_events(service, actor, where, limit=limit, offset=offset)


@router.get("/supervision/grades", response_model=GradesResponse)
def department_grades(request: Request, service: Service, actor: Auditor,
                      first: str | None = Query(None, alias="from"),
                      last: str | None = Query(None, alias="to")) -> dict[str, Any]:
    """Grade of each department for the period, with its score and every deduction behind it."""
    period = _period(service, first, last)
    rules = load_grade_rules(service.settings.grade_rules)
    return grade_departments(service, actor, period, rules).to_json(request_locale(request))
