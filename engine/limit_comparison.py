"""Compare a promised time limit with a statutory one when the two are counted in different units.

The last day of a limit in months or days depends on the start date and the calendar. The last day
of a limit in working days also depends on the holidays, so 30 working days may end before or after
40 days. The comparison therefore takes every start date of the last ``YEARS_COMPARED`` years that
have official holiday data and works out both last days the way ``engine.deadlines`` does:

- n working days end on the n-th working day after the start day;
- n days end n days after the start day, and n months on the same day number n months later (or
  the last day of a shorter month); either moves to the next working day when it is not one.

Pauses (行政许可法 §45) are left out, because they depend on the case. NOTE: a pause extends a
limit in working days by working days and the others by days, so it can change the outcome.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta

from engine.calendar import WorkingCalendar, library_years
from engine.deadlines import TimeLimit, Unit

YEARS_COMPARED = 10
"""Number of the latest years with official holiday data whose start dates are compared."""
FALLBACK_LAST_YEAR = 2026
"""Last year compared when the installed ``chinesecalendar`` has no holiday data at all."""


@dataclass(frozen=True)
class LimitComparison:
    """How often the promised limit ends after the statutory one, over ``starts`` start dates.

    ``example`` is a start date on which the promised limit ends later, with both last days, or None
    when there is no such date.
    """

    longer_on: int
    starts: int
    first_year: int
    last_year: int
    example: tuple[date, date, date] | None

    @property
    def always_longer(self) -> bool:
        return self.longer_on == self.starts

    @property
    def never_longer(self) -> bool:
        return self.longer_on == 0


@functools.cache
def compare_limits(promised: TimeLimit, statutory: TimeLimit) -> LimitComparison:
    """Compare the last days of ``promised`` and ``statutory`` for every start date compared."""
    first_year, last_year = compared_years()
    first_start, last_start = date(first_year, 1, 1), date(last_year, 12, 31)
    horizon = last_start + timedelta(days=max(_horizon_days(promised), _horizon_days(statutory)))
    working_days = _working_days(first_start, date(horizon.year, 12, 31))

    longer_on, starts = 0, 0
    example = None
    start = first_start
    while start <= last_start:
        promised_end = last_day(start, promised, working_days)
        statutory_end = last_day(start, statutory, working_days)
        starts += 1
        if promised_end > statutory_end:
            longer_on += 1
            example = example or (start, promised_end, statutory_end)
        start += timedelta(days=1)
    return LimitComparison(longer_on, starts, first_year, last_year, example)


def compared_years() -> tuple[int, int]:
    """Return the first and last year whose start dates are compared."""
    official = sorted(library_years())
    if not official:
        # Without holiday data every year counts Monday to Friday, so any ten years compare the same.
        return FALLBACK_LAST_YEAR - YEARS_COMPARED + 1, FALLBACK_LAST_YEAR
    last_year = official[-1]
    return max(last_year - YEARS_COMPARED + 1, official[0]), last_year


def last_day(start: date, limit: TimeLimit, working_days: tuple[date, ...]) -> date:
    """Return the last day of ``limit`` started on ``start``; ``working_days`` must reach far enough."""
    if limit.unit is Unit.WORKING_DAY:
        return working_days[bisect_right(working_days, start) + limit.amount - 1]
    if limit.unit is Unit.DAY:
        nominal = start + timedelta(days=limit.amount)
    else:
        nominal = _add_months(start, limit.amount)
    return working_days[bisect_left(working_days, nominal)]


def _horizon_days(limit: TimeLimit) -> int:
    """Return an upper bound of the calendar days ``limit`` can span, with room for a long holiday."""
    if limit.unit is Unit.WORKING_DAY:
        return limit.amount * 2 + 30
    if limit.unit is Unit.DAY:
        return limit.amount + 30
    return limit.amount * 31 + 30


@functools.cache
def _working_days(first: date, last: date) -> tuple[date, ...]:
    """List the working days from ``first`` to ``last`` by the official holiday data, weekdays beyond it."""
    calendar = WorkingCalendar()
    days = []
    day = first
    while day <= last:
        if calendar.is_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def _add_months(day: date, months: int) -> date:
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))
