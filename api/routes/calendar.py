"""The working-day calendar: read it, correct it (administrators) and preview deadlines."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentActor, Service
from api.errors import request_locale
from engine import calendar_admin, deadlines
from engine.calendar import DayStatus, load_calendar, parse_date, parse_year
from engine.errors import InvalidInput
from engine.i18n import msg

router = APIRouter(prefix="/api/calendar", tags=["calendar"])


class CalendarDayPublic(BaseModel):
    date: dt.date
    is_working_day: bool
    name: str | None
    source: str = Field(description="admin, import, chinese_calendar or weekdays")
    provisional: bool


class CalendarYearPublic(BaseModel):
    year: int
    official: bool
    days: list[CalendarDayPublic]


class CalendarDaySet(BaseModel):
    type: str = Field(description="working or holiday")
    name: str | None = None


class CalendarImportPublic(BaseModel):
    stored: int
    years: list[int]


class CalendarWarningPublic(BaseModel):
    code: str
    year: int
    message: str


class CalendarStatusPublic(BaseModel):
    today: date
    library_version: str | None
    library_years: list[int]
    imported_years: list[int]
    official_years: list[int]
    entries: int
    warnings: list[CalendarWarningPublic]


class DeadlinePublic(BaseModel):
    start: datetime
    amount: int
    unit: str
    due: datetime
    last_day: date
    working_days: int
    paused_days: int
    moved_from: date | None
    provisional: bool
    provisional_years: list[int]
    working_days_left: int
    overdue: bool


def _day(status: DayStatus) -> CalendarDayPublic:
    return CalendarDayPublic(date=status.day, is_working_day=status.is_working_day, name=status.name,
                             source=status.source, provisional=status.provisional)


@router.get("/status", response_model=CalendarStatusPublic)
def status(request: Request, service: Service, actor: CurrentActor) -> CalendarStatusPublic:
    """Report which years have official holiday data, with warnings about missing ones."""
    report = calendar_admin.calendar_status(service)
    locale = request_locale(request)
    return CalendarStatusPublic(
        today=report.today, library_version=report.library_version, library_years=list(report.library_years),
        imported_years=list(report.imported_years), official_years=list(report.official_years),
        entries=report.entries,
        warnings=[CalendarWarningPublic(code=w.code, year=w.year, message=w.message.render(locale))
                  for w in report.warnings])


@router.get("/deadline", response_model=DeadlinePublic)
def deadline(service: Service, actor: CurrentActor, start: str, amount: str, unit: str = "working_day",
             pause: list[str] | None = Query(default=None, description="START/END, may be repeated")
             ) -> DeadlinePublic:
    """Preview when a time limit ends; a start without offset is China time."""
    limit = deadlines.TimeLimit.parse(amount, unit)
    begin = deadlines.parse_moment(start)
    pauses = [deadlines.parse_pause(value) for value in pause or []]
    calendar = load_calendar(service.db)
    result = deadlines.compute_deadline(begin, limit, pauses, calendar)
    now = service.now()
    return DeadlinePublic(
        start=result.start, amount=limit.amount, unit=limit.unit.value, due=result.due, last_day=result.last_day,
        working_days=result.working_days, paused_days=result.paused_days, moved_from=result.moved_from,
        provisional=result.provisional, provisional_years=list(result.provisional_years),
        working_days_left=deadlines.time_left(now, result, calendar), overdue=result.is_overdue(now))


@router.put("/days/{day}", response_model=CalendarDayPublic)
def set_day(day: str, body: CalendarDaySet, service: Service, actor: CurrentActor) -> CalendarDayPublic:
    """Make one date a working day or a holiday (administrators); it overrides every other source."""
    working = calendar_admin.parse_day_type(body.type)
    return _day(calendar_admin.set_day(service, parse_date(day), working, body.name, actor))


@router.post("/import", response_model=CalendarImportPublic, openapi_extra={
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}})
async def import_days(request: Request, service: Service, actor: CurrentActor) -> CalendarImportPublic:
    """Import a CSV body of date,type,name lines (administrators); one invalid line rejects all of it."""
    content = await request.body()
    if len(content) > service.settings.max_upload_bytes:
        raise InvalidInput(msg("The uploaded file is over the limit of {limit} bytes.",
                               limit=service.settings.max_upload_bytes))
    result = await run_in_threadpool(calendar_admin.import_days, service, content, actor)
    return CalendarImportPublic(stored=result.stored, years=list(result.years))


@router.get("/{year}", response_model=CalendarYearPublic)
def year_days(year: str, service: Service, actor: CurrentActor) -> CalendarYearPublic:
    """List every day of a year as the calendar decides it; provisional days are marked."""
    number = parse_year(year)
    calendar = load_calendar(service.db)
    first = date(number, 1, 1)
    days = [calendar.day(date.fromordinal(first.toordinal() + offset))
            for offset in range((date(number, 12, 31) - first).days + 1)]
    return CalendarYearPublic(year=number, official=number in calendar.official_years(),
                              days=[_day(status) for status in days])
