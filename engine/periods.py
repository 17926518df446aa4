"""Reporting periods: a span of whole dates in China, written as a date range or as a year, quarter or month.

A period covers every moment from 00:00 on its first date to 24:00 on its last date, local time in
Asia/Shanghai. The database stores UTC, so queries use ``start`` and ``end``, which are UTC.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from engine.calendar import LOCAL_TZ, check_year
from engine.errors import InvalidInput
from engine.i18n import msg

_YEAR = re.compile(r"(\d{4})")
_QUARTER = re.compile(r"(\d{4})-[Qq]([1-4])")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Period:
    """The dates from ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        """The first moment of the period, in UTC."""
        return datetime.combine(self.first, time(), LOCAL_TZ).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first moment after the period, in UTC."""
        return datetime.combine(self.last + timedelta(days=1), time(), LOCAL_TZ).astimezone(UTC)

    def to_json(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def parse_span(value: str) -> Period:
    """Parse one period bound: a year (2026), a quarter (2026-Q4), a month (2026-12) or a date (2026-12-05)."""
    text = value.strip()
    try:
        if _YEAR.fullmatch(text):
            year = _checked_year(int(text))
            return Period(date(year, 1, 1), date(year, 12, 31))
        if quarter := _QUARTER.fullmatch(text):
            year = _checked_year(int(quarter.group(1)))
            first_month = 3 * int(quarter.group(2)) - 2
            return Period(date(year, first_month, 1), _month_end(year, first_month + 2))
        if month := _MONTH.fullmatch(text):
            year = _checked_year(int(month.group(1)))
            number = int(month.group(2))
            return Period(date(year, number, 1), _month_end(year, number))
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text)
            _checked_year(day.year)
            return Period(day, day)
    except ValueError:
        pass
    raise InvalidInput(msg("Period {value!r} is invalid; write a year (2026), a quarter (2026-Q4), a month "
                           "(2026-12) or a date (2026-12-05).", value=value))


def parse_period(first: str | None, last: str | None, today: date) -> Period:
    """Build the period from ``first`` to ``last``; each bound may name a year, quarter, month or date.

    ``first`` starts at the beginning of what it names and ``last`` ends at the end of what it names, so
    ``2026-10`` to ``2026-12`` is the fourth quarter. Without ``last`` the period ends where ``first``
    ends, so ``2026-Q4`` alone is also the fourth quarter. Without either bound it is the month of ``today``.
    """
    first = first.strip() if first else None
    last = last.strip() if last else None
    if not first and not last:
        return Period(today.replace(day=1), _month_end(today.year, today.month))
    if not first:
        raise InvalidInput(msg("The period has an end ({value}) but no start; give the start as well.",
                               value=last))
    start = parse_span(first)
    end = parse_span(last) if last else start
    if end.last < start.first:
        raise InvalidInput(msg("The period starts on {first} but ends earlier, on {last}; swap the two bounds.",
                               first=start.first.isoformat(), last=end.last.isoformat()))
    return Period(start.first, end.last)


def _checked_year(year: int) -> int:
    check_year(year)
    return year


def _month_end(year: int, month: int) -> date:
    return date(year, month, monthrange(year, month)[1])
