"""Time limits (期限) of cases: when they end and how much of them is left.

Counting follows the Administrative Licensing Law (行政许可法) and the Civil Code (民法典):

- The day a limit starts from is not counted; counting begins the next day (民法典 §201).
- A limit in working days ends on the n-th working day after the start day (行政许可法 §82).
- A limit in days ends n days after the start day. A limit in months ends on the same day number n
  months later, or on the last day of that month when it is shorter (民法典 §202, the same dates as
  ISO 8601 date arithmetic gives).
- When a limit in days or months ends on a day that is not a working day, it ends on the next
  working day instead (民法典 §203).
- A limit ends at 23:59:59 local time on its last day.
- Hearings, tendering, testing, appraisal and expert review do not count (行政许可法 §45). Each pause
  extends the limit by the days it covered, measured like a limit: the day a pause begins is not
  counted and the day it ends is. Limits in working days are extended by working days, the others by
  days. A pause that begins after the limit has ended extends nothing.

Naive datetimes are taken as UTC, as the database stores them.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Final

from engine.calendar import LOCAL_TZ, WorkingCalendar, check_year
from engine.errors import InvalidInput
from engine.i18n import msg

END_OF_DAY: Final = time(23, 59, 59)


class Unit(StrEnum):
    WORKING_DAY = "working_day"
    DAY = "day"
    MONTH = "month"


# About ten years in each unit, far beyond any statutory limit; it bounds the day-by-day counting.
MAX_AMOUNT: Final = {Unit.WORKING_DAY: 2500, Unit.DAY: 3660, Unit.MONTH: 120}

_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class TimeLimit:
    """A limit such as 20 working days or 3 months; construction checks the amount."""

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise InvalidInput(msg("Amount {amount} is invalid: a time limit is at least 1 {unit}.",
                                   amount=self.amount, unit=self.unit.value))
        if self.amount > MAX_AMOUNT[self.unit]:
            raise InvalidInput(msg("Amount {amount} is over the maximum of {maximum} for the unit {unit}.",
                                   amount=self.amount, maximum=MAX_AMOUNT[self.unit], unit=self.unit.value))

    @classmethod
    def parse(cls, amount: str | int, unit: str) -> TimeLimit:
        """Build a limit from user input, raising InvalidInput that quotes the bad value."""
        try:
            parsed_unit = Unit(unit.strip())
        except ValueError:
            raise InvalidInput(msg("Unit {value!r} is unknown; use working_day, day or month.",
                                   value=unit)) from None
        if isinstance(amount, bool) or not _INTEGER.fullmatch(str(amount).strip()):
            raise InvalidInput(msg("Amount {value!r} is not a whole number; give the length of the limit, for "
                                   "example 20.", value=str(amount)))
        return cls(int(str(amount).strip()), parsed_unit)


@dataclass(frozen=True)
class Pause:
    """A period that does not count towards a limit (§45): expert review, a hearing, testing."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if _aware(self.end) < _aware(self.start):
            raise InvalidInput(msg("The pause from {start} to {end} ends before it begins.",
                                   start=self.start.isoformat(), end=self.end.isoformat()))


@dataclass(frozen=True)
class Deadline:
    """When a limit ends, and from what.

    ``working_days`` counts the working days from the day after the start to the last day.
    ``paused_days`` is the extension for pauses, in working days for limits in working days and in
    days otherwise. ``moved_from`` is the last day before it moved off a non-working day.
    """

    start: datetime
    limit: TimeLimit
    due: datetime
    last_day: date
    working_days: int
    paused_days: int
    moved_from: date | None
    provisional_years: tuple[int, ...]

    @property
    def provisional(self) -> bool:
        """True when a day of the limit falls in a year without official holiday data."""
        return bool(self.provisional_years)

    def is_overdue(self, now: datetime) -> bool:
        return _aware(now) > self.due


def compute_deadline(start: datetime, limit: TimeLimit, pauses: Iterable[Pause | tuple[datetime, datetime]],
                     calendar: WorkingCalendar, tz: tzinfo = LOCAL_TZ) -> Deadline:
    """Compute when ``limit`` ends for a case started at ``start``, extended by ``pauses``.

    A pause still running is passed with the current time as its end.
    """
    start = _aware(start)
    start_day = start.astimezone(tz).date()
    check_year(start_day.year)
    spans = _merge([pause if isinstance(pause, Pause) else Pause(*pause) for pause in pauses])
    for pause in spans:
        if pause.start < start:
            raise InvalidInput(msg("The pause from {pause_start} begins before the limit starts at {start}.",
                                   pause_start=pause.start.isoformat(), start=start.isoformat()))

    # Each pause that begins by the last day found so far extends the limit, which may let a later
    # pause begin in time too.
    extension = 0
    last_day, moved_from = _last_day(start_day, limit, extension, calendar)
    counted_pauses = []
    for pause in spans:
        first, last = pause.start.astimezone(tz).date(), pause.end.astimezone(tz).date()
        if first > last_day:
            break
        if limit.unit is Unit.WORKING_DAY:
            extension += calendar.working_days_between(first, last)
        else:
            extension += (last - first).days
        last_day, moved_from = _last_day(start_day, limit, extension, calendar)
        counted_pauses.append((first, last))

    # The days counted are those after the start day up to the last day, and those after each
    # pause's first day up to its last, which may run past the limit's last day.
    provisional: set[int] = set()
    for first, last in [(start_day, last_day), *counted_pauses]:
        if first < last:
            provisional.update(calendar.provisional_years(first + timedelta(days=1), last))
    due = datetime.combine(last_day, END_OF_DAY, tzinfo=tz)
    return Deadline(start, limit, due, last_day, calendar.working_days_between(start_day, last_day), extension,
                    moved_from, tuple(sorted(provisional)))


def time_left(now: datetime, deadline: Deadline, calendar: WorkingCalendar) -> int:
    """Count the working days from today to the last day: 0 on the last day, negative after it.

    After the last day it is minus the working days from the last day up to but excluding today, so
    it is -1 from the day after the last day through the next working day.
    """
    tz = deadline.due.tzinfo or LOCAL_TZ
    today = _aware(now).astimezone(tz).date()
    return calendar.working_days_between(today, deadline.last_day)


def share_left(now: datetime, deadline: Deadline, calendar: WorkingCalendar) -> float:
    """Return ``time_left`` as a share of the limit's working days: 1.0 at the start, 0.0 on the last day."""
    return time_left(now, deadline, calendar) / max(deadline.working_days, 1)


def parse_moment(value: str, tz: tzinfo = LOCAL_TZ) -> datetime:
    """Parse a date or an ISO 8601 time; a date means its start and a time without offset is local."""
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", text):
            moment = datetime.fromisoformat(text)
        else:
            raise ValueError(text)
    except ValueError:
        raise InvalidInput(msg("Time {value!r} is invalid; write a date as YYYY-MM-DD or a time as "
                               "YYYY-MM-DDTHH:MM, optionally with an offset such as +08:00.", value=value)) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
    check_year(moment.astimezone(tz).year)
    return moment


def parse_pause(value: str, tz: tzinfo = LOCAL_TZ) -> Pause:
    """Parse a pause written as START/END, each a date or a time as ``parse_moment`` takes them."""
    start, separator, end = value.partition("/")
    if not separator:
        raise InvalidInput(msg("Pause {value!r} is invalid; write it as START/END, for example "
                               "2025-01-20T09:00/2025-02-10T17:00.", value=value))
    return Pause(parse_moment(start, tz), parse_moment(end, tz))


def _last_day(start_day: date, limit: TimeLimit, extension: int,
              calendar: WorkingCalendar) -> tuple[date, date | None]:
    """Find the last day of ``limit`` from ``start_day`` plus ``extension``, and where it moved from, if it did."""
    if limit.unit is Unit.WORKING_DAY:
        return calendar.add_working_days(start_day, limit.amount + extension), None
    if limit.unit is Unit.DAY:
        nominal = _add_days(start_day, limit.amount + extension)
    else:
        nominal = _add_days(_add_months(start_day, limit.amount), extension)
    # The first working day on or after the nominal day.
    last_day = calendar.add_working_days(nominal - timedelta(days=1), 1)
    return last_day, nominal if last_day != nominal else None


def _add_days(day: date, days: int) -> date:
    try:
        result = day + timedelta(days=days)
    except OverflowError:
        result = date.max
    check_year(result.year)
    return result


def _add_months(day: date, months: int) -> date:
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    check_year(year)
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def _merge(pauses: list[Pause]) -> list[Pause]:
    """Sort pauses and join overlapping ones, so no day is counted twice."""
    merged: list[Pause] = []
    for pause in sorted(pauses, key=lambda p: _aware(p.start)):
        start, end = _aware(pause.start), _aware(pause.end)
        if merged and start <= merged[-1].end:
            merged[-1] = Pause(merged[-1].start, max(merged[-1].end, end))
        else:
            merged.append(Pause(start, end))
    return merged


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
