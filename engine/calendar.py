"""The working-day calendar (工作日历): which dates count towards limits measured in working days.

A date is decided, in this order, by

1. an administrator's entry for that date (table ``calendar_days``), set one at a time or imported;
2. the statutory holidays and make-up working days (调休) the State Council announced, as the
   ``chinesecalendar`` package records them;
3. for a year that neither covers, Monday to Friday are working days. Such dates are *provisional*,
   and every result that depends on one is marked provisional.

A year is official when ``chinesecalendar`` has data for it or an administrator has imported
entries for it. Writing entries is in ``engine.calendar_admin``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import chinese_calendar
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from engine.db import Database, calendar_days
from engine.errors import InvalidInput
from engine.i18n import msg

# Time limits are counted on the dates of mainland China.
LOCAL_TZ: Final = ZoneInfo("Asia/Shanghai")

SOURCE_ADMIN: Final = "admin"
SOURCE_IMPORT: Final = "import"
SOURCE_LIBRARY: Final = "chinese_calendar"
SOURCE_WEEKDAYS: Final = "weekdays"

# The calendar covers these years only. They reach far past any case's lifetime and keep date
# arithmetic away from date.max.
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2199

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class CalendarEntry:
    """An administrator's entry for one date, as stored in ``calendar_days``."""

    day: date
    is_working_day: bool
    name: str | None
    source: str
    entered_by: str
    entered_at: datetime


@dataclass(frozen=True)
class DayStatus:
    """The calendar's decision on one date and its ground: ``source`` is one of the SOURCE_* values."""

    day: date
    is_working_day: bool
    name: str | None
    source: str
    provisional: bool

    @property
    def is_adjusted(self) -> bool:
        """True for a holiday on a weekday and for a make-up working day on a weekend."""
        return self.is_working_day != (self.day.weekday() < 5)


def parse_date(value: str) -> date:
    """Parse a date written as YYYY-MM-DD, raising InvalidInput that quotes ``value``."""
    text = value.strip()
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(msg("Date {value!r} is invalid; write it as YYYY-MM-DD, for example 2027-01-01.",
                               value=value)) from None
    check_year(day.year)
    return day


def parse_year(value: str | int) -> int:
    """Parse a year such as 2027, raising InvalidInput that quotes ``value``."""
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidInput(msg("Year {value!r} is invalid; give a year such as 2027.", value=str(value)))
    year = int(text)
    check_year(year)
    return year


def check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(msg("Year {year} is outside the calendar, which covers {first} to {last}.",
                               year=year, first=MIN_YEAR, last=MAX_YEAR))


@functools.cache
def library_years() -> frozenset[int]:
    """Years the installed ``chinesecalendar`` has holiday data for; it raises for the others."""
    years = set()
    for year in range(MIN_YEAR, MAX_YEAR + 1):
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            continue
        years.add(year)
    return frozenset(years)


def library_version() -> str | None:
    try:
        return importlib.metadata.version("chinesecalendar")
    except importlib.metadata.PackageNotFoundError:
        return None


def _library_day(day: date) -> tuple[bool, str | None]:
    """Return whether ``day`` is a working day by ``chinesecalendar``, and the Chinese name of its holiday."""
    working = chinese_calendar.is_workday(day)
    _on_holiday, english = chinese_calendar.get_holiday_detail(day)
    if english is None:
        return working, None
    try:
        return working, chinese_calendar.Holiday(english).chinese
    except ValueError:
        return working, english


class WorkingCalendar:
    """An immutable view of the calendar; build it with ``load_calendar`` or from entries directly.

    ``entries`` are taken in the order they were entered, so a later entry for a date replaces an
    earlier one. Dates outside MIN_YEAR..MAX_YEAR raise InvalidInput.
    """

    def __init__(self, entries: Iterable[CalendarEntry] = ()) -> None:
        self._entries: dict[date, CalendarEntry] = {}
        imported = set()
        for entry in entries:
            self._entries[entry.day] = entry
            if entry.source == SOURCE_IMPORT:
                imported.add(entry.day.year)
        # A year stays imported even where later single entries replaced some of its imported rows.
        self._imported_years = frozenset(imported)
        self._library_years = library_years()
        self._official_years = self._library_years | self._imported_years

    def __repr__(self) -> str:
        return f"WorkingCalendar({len(self._entries)} entries, imported years {sorted(self._imported_years)})"

    def day(self, day: date) -> DayStatus:
        """Return the calendar's decision on ``day`` and its source."""
        check_year(day.year)
        entry = self._entries.get(day)
        if entry is not None:
            return DayStatus(day, entry.is_working_day, entry.name, entry.source, False)
        if day.year in self._library_years:
            working, name = _library_day(day)
            return DayStatus(day, working, name, SOURCE_LIBRARY, False)
        return DayStatus(day, day.weekday() < 5, None, SOURCE_WEEKDAYS, day.year not in self._imported_years)

    def is_working_day(self, day: date) -> bool:
        check_year(day.year)
        entry = self._entries.get(day)
        if entry is not None:
            return entry.is_working_day
        if day.year in self._library_years:
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def is_provisional(self, day: date) -> bool:
        """True when no administrator's entry and no official data for its year decide ``day``."""
        check_year(day.year)
        return day not in self._entries and day.year not in self._official_years

    def official_years(self) -> tuple[int, ...]:
        return tuple(sorted(self._official_years))

    def imported_years(self) -> tuple[int, ...]:
        return tuple(sorted(self._imported_years))

    def entries(self) -> list[CalendarEntry]:
        """Return the administrators' entries in force, one per date, ordered by date."""
        return [self._entries[day] for day in sorted(self._entries)]

    def add_working_days(self, start: date, count: int) -> date:
        """Return the ``count``-th working day after ``start``, or before it when ``count`` is negative.

        ``start`` itself is never counted, so ``add_working_days(start, 0)`` is ``start``.
        """
        step = timedelta(days=1 if count >= 0 else -1)
        day = start
        remaining = abs(count)
        while remaining:
            day = _shift(day, step)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, first: date, last: date) -> int:
        """Count the working days after ``first`` up to and including ``last``.

        When ``last`` is earlier, return minus the working days from ``last`` up to but excluding
        ``first``, so that ``working_days_between(a, add_working_days(a, n)) == n`` for every n.
        """
        if last < first:
            return -self.working_days_between(last - timedelta(days=1), first - timedelta(days=1))
        count = 0
        day = first
        while day < last:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count

    def provisional_years(self, first: date, last: date) -> tuple[int, ...]:
        """Years with at least one provisional date from ``first`` to ``last``, both included."""
        years = []
        for year in range(first.year, last.year + 1):
            if year in self._official_years:
                continue
            low, high = max(first, date(year, 1, 1)), min(last, date(year, 12, 31))
            entered = sum(1 for day in self._entries if low <= day <= high)
            if entered < (high - low).days + 1:
                years.append(year)
        return tuple(years)


def _shift(day: date, step: timedelta) -> date:
    try:
        moved = day + step
    except OverflowError:
        moved = None
    if moved is None or not MIN_YEAR <= moved.year <= MAX_YEAR:
        raise InvalidInput(msg("Counting working days from {day} runs past the years the calendar covers "
                               "({first} to {last}).", day=day.isoformat(), first=MIN_YEAR, last=MAX_YEAR))
    return moved


# Loading, with a cache per database.

_cache: weakref.WeakKeyDictionary[Database, tuple[Any, WorkingCalendar]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def load_calendar(db: Database, conn: Connection | None = None) -> WorkingCalendar:
    """Return the calendar as stored in ``db``, read again only when ``calendar_days`` has changed.

    Each call costs one query for the row count and the newest id. Rows are never updated or deleted,
    so an unchanged pair means unchanged entries, also after another process wrote to the table.
    With ``conn`` it reads inside the caller's open transaction instead of taking a second connection.
    """
    if conn is None:
        with db.read() as own:
            return load_calendar(db, own)
    marker = tuple(conn.execute(select(func.count(), func.max(calendar_days.c.id))).one())
    with _cache_lock:
        cached = _cache.get(db)
    if cached is not None and cached[0] == marker:
        return cached[1]
    rows = conn.execute(select(calendar_days).order_by(calendar_days.c.id)).all()
    calendar = WorkingCalendar(entry_from_row(row) for row in rows)
    with _cache_lock:
        _cache[db] = (marker, calendar)
    return calendar


def forget_calendar(db: Database) -> None:
    """Drop the cached calendar of ``db``; writers call it after their transaction commits."""
    with _cache_lock:
        _cache.pop(db, None)


def entry_from_row(row: Any) -> CalendarEntry:
    entered_at = row.entered_at if row.entered_at.tzinfo else row.entered_at.replace(tzinfo=UTC)
    return CalendarEntry(row.day, row.is_working_day, row.name, row.source, row.entered_by, entered_at)


def local_today(moment: datetime) -> date:
    """Return the date of ``moment`` in China; a naive ``moment`` is taken as UTC, as the database stores it."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(LOCAL_TZ).date()
