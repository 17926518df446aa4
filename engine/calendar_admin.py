"""Administering the working-day calendar: single entries, imported files and the state of its data.

Each entry becomes a new row of ``calendar_days`` and a ``calendar_day_set`` event on the system
stream, written in one transaction. An imported file is stored whole or not at all.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert, select

from engine import trace
from engine.calendar import (
    SOURCE_ADMIN,
    SOURCE_IMPORT,
    DayStatus,
    WorkingCalendar,
    check_year,
    entry_from_row,
    forget_calendar,
    library_version,
    library_years,
    load_calendar,
    local_today,
    parse_date,
)
from engine.clocks import recompute_open_clocks
from engine.db import calendar_days
from engine.errors import InvalidInput
from engine.i18n import Message, msg
from engine.service import Liuhen
from engine.users import Actor, require_role

logger = logging.getLogger(__name__)

DAY_TYPES = {"working": True, "holiday": False}
MAX_NAME_LENGTH = 64
# From this month on, the status warns when next year has no official data. The State Council
# announces the next year's holidays in the autumn, mostly in October or November.
WARN_FROM_MONTH = 11


@dataclass(frozen=True)
class DayRow:
    """One date to store, from the command line, the API or line ``line`` of an imported file."""

    day: date
    is_working_day: bool
    name: str | None
    line: int | None = None


@dataclass(frozen=True)
class ImportResult:
    stored: int
    years: tuple[int, ...]


class CalendarFileError(InvalidInput):
    """An imported calendar file has invalid lines; ``problems`` lists each as (line number, reason)."""

    code = "calendar_file_invalid"

    def __init__(self, problems: list[tuple[int, Message]]) -> None:
        line, reason = problems[0]
        if len(problems) == 1:
            message = msg("Line {line} of the calendar file is invalid: {reason} Nothing was imported; correct "
                          "the file and import it again.", line=line, reason=reason)
        else:
            message = msg("Line {line} of the calendar file is invalid: {reason} The file has {count} invalid "
                          "lines in all, so nothing was imported; correct them and import the file again.",
                          line=line, reason=reason, count=len(problems))
        super().__init__(message, line=line, invalid_lines=len(problems))
        self.problems = problems


def parse_day_type(value: str) -> bool:
    """Map ``working`` to True and ``holiday`` to False, raising InvalidInput for anything else."""
    key = value.strip().lower()
    if key not in DAY_TYPES:
        raise InvalidInput(msg("Day type {value!r} is unknown; use working or holiday.", value=value))
    return DAY_TYPES[key]


def clean_name(value: str | None) -> str | None:
    """Strip a holiday name; an empty one becomes None."""
    name = (value or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(msg("The name {name!r} is {length} characters long, over the limit of {limit}.",
                               name=name, length=len(name), limit=MAX_NAME_LENGTH))
    return name or None


def parse_calendar_csv(content: bytes) -> list[DayRow]:
    """Read a UTF-8 CSV file of ``date,type,name`` lines; raise CalendarFileError listing every bad line.

    ``type`` is ``working`` or ``holiday`` and ``name`` may be left out. A first line
    ``date,type,name``, blank lines and lines starting with ``#`` are skipped.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(msg("The calendar file is not UTF-8 text (invalid byte at position {position}); save "
                               "it as CSV in UTF-8 and import it again.", position=exc.start)) from None

    rows: list[DayRow] = []
    problems: list[tuple[int, Message]] = []
    first_line_of: dict[date, int] = {}
    reader = csv.reader(io.StringIO(text, newline=""))
    seen_content = False
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((reader.line_num, msg("The line is not valid CSV: {reason}.", reason=str(exc))))
            break
        line = reader.line_num
        cells = [cell.strip() for cell in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        is_header = not seen_content and cells[0].lower() == "date"
        seen_content = True
        if is_header:
            continue

        try:
            row = _parse_row(cells, line)
        except InvalidInput as exc:
            problems.append((line, exc.message))
            continue
        if row.day in first_line_of:
            problems.append((line, msg("Date {day} is already listed on line {first}.", day=row.day.isoformat(),
                                       first=first_line_of[row.day])))
            continue
        first_line_of[row.day] = line
        rows.append(row)

    if problems:
        raise CalendarFileError(problems)
    if not rows:
        raise InvalidInput(msg("The calendar file contains no dates; write one line per date as "
                               "date,type,name, for example 2027-02-06,holiday,春节."))
    return rows


def _parse_row(cells: list[str], line: int) -> DayRow:
    if len(cells) not in (2, 3):
        raise InvalidInput(msg("Expected the columns date,type,name (the name may be left out), found {count} "
                               "columns.", count=len(cells)))
    day = parse_date(cells[0])
    working = parse_day_type(cells[1])
    name = clean_name(cells[2] if len(cells) == 3 else None)
    return DayRow(day, working, name, line)


def set_day(service: Liuhen, day: date, is_working_day: bool, name: str | None, admin: Actor) -> DayStatus:
    """Enter one date as a working day or a holiday (administrators); it overrides every other source."""
    require_role(admin, "admin")
    check_year(day.year)
    _store(service, [DayRow(day, is_working_day, clean_name(name))], SOURCE_ADMIN, admin)
    logger.info("calendar day %s set", day.isoformat(), extra={"actor": admin.username})
    return load_calendar(service.db).day(day)


def import_days(service: Liuhen, content: bytes, admin: Actor) -> ImportResult:
    """Store every date of a CSV file (administrators), or none when any line is invalid.

    Each year the file covers counts as official from then on; its dates not in the file follow the
    weekday rule.

    NOTE: a schedule whose New Year holiday begins in late December also makes that earlier year
    official. This matters only when the earlier year has no data of its own.
    """
    require_role(admin, "admin")
    rows = parse_calendar_csv(content)
    _store(service, rows, SOURCE_IMPORT, admin)
    years = tuple(sorted({row.day.year for row in rows}))
    logger.info("imported %d calendar days", len(rows), extra={"actor": admin.username, "years": years})
    return ImportResult(len(rows), years)


def _store(service: Liuhen, rows: list[DayRow], source: str, admin: Actor) -> None:
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        previous = _previous_days(conn, [row.day for row in rows])
        conn.execute(insert(calendar_days), [
            {"day": row.day, "is_working_day": row.is_working_day, "name": row.name, "source": source,
             "entered_by": admin.username, "entered_at": now}
            for row in rows
        ])
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "calendar_day_set", admin.username, now,
            payload={"date": row.day.isoformat(), "is_working_day": row.is_working_day, "name": row.name,
                     "source": source, "previous": _status_payload(previous.day(row.day))},
        ) for row in rows])
    forget_calendar(service.db)
    # Due times of open clocks counted across these dates change with them.
    recompute_open_clocks(service, {row.day.year for row in rows})


def _previous_days(conn: Any, days: list[date]) -> WorkingCalendar:
    """Build a calendar of the entries in force for ``days``, read inside the writing transaction."""
    found = []
    # Chunks keep the IN lists well below the bound-parameter limits of SQLite and PostgreSQL.
    for offset in range(0, len(days), 500):
        chunk = days[offset:offset + 500]
        found.extend(conn.execute(select(calendar_days).where(calendar_days.c.day.in_(chunk))).all())
    return WorkingCalendar(entry_from_row(row) for row in sorted(found, key=lambda row: row.id))


def _status_payload(status: DayStatus) -> dict[str, Any]:
    return {"is_working_day": status.is_working_day, "name": status.name, "source": status.source}


# The state of the data.

@dataclass(frozen=True)
class CalendarWarning:
    """A gap in the calendar data: ``code`` is ``year_missing`` or ``next_year_missing``."""

    code: str
    year: int
    message: Message


@dataclass(frozen=True)
class CalendarStatus:
    today: date
    library_version: str | None
    library_years: tuple[int, ...]
    imported_years: tuple[int, ...]
    official_years: tuple[int, ...]
    entries: int
    warnings: tuple[CalendarWarning, ...]


def calendar_status(service: Liuhen) -> CalendarStatus:
    """Report which years have official data and warn about the ones deadlines will soon need."""
    calendar = load_calendar(service.db)
    today = local_today(service.now())
    official = set(calendar.official_years())

    warnings = []
    if today.year not in official:
        warnings.append(CalendarWarning("year_missing", today.year, msg(
            "{year} has no official holiday data; deadlines in it are counted on weekdays only and are "
            "provisional. Import the State Council's holiday schedule for {year}.", year=today.year)))
    if today.month >= WARN_FROM_MONTH and today.year + 1 not in official:
        warnings.append(CalendarWarning("next_year_missing", today.year + 1, msg(
            "{year} has no official holiday data yet; deadlines reaching into it are provisional. Import the "
            "State Council's holiday schedule for {year} once it is announced.", year=today.year + 1)))

    return CalendarStatus(today, library_version(), tuple(sorted(library_years())), calendar.imported_years(),
                          calendar.official_years(), len(calendar.entries()), tuple(warnings))
