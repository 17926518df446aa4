"""`liuhen calendar ...`: set, import and show the working-day calendar, and preview deadlines."""

from __future__ import annotations

import argparse
from calendar import Calendar
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import calendar_admin, deadlines
from engine.calendar import (
    SOURCE_ADMIN,
    SOURCE_IMPORT,
    SOURCE_LIBRARY,
    DayStatus,
    WorkingCalendar,
    load_calendar,
    parse_date,
    parse_year,
)
from engine.settings import Settings


def cmd_set(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    status = calendar_admin.set_day(service, parse_date(args.date), args.working, args.name,
                                    _cli_actor(service, args.as_user))
    out("{day} is now {kind}.", day=status.day.isoformat(), kind=_kind(out, status))
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    path = Path(args.file)
    try:
        content = path.read_bytes()
    except OSError as exc:
        out.error("{filename}: cannot be read: {reason}.", filename=path, reason=exc.strerror)
        return 1
    service = _service(settings)
    try:
        result = calendar_admin.import_days(service, content, _cli_actor(service, args.as_user))
    except calendar_admin.CalendarFileError as exc:
        for line, reason in exc.problems:
            out.error("{filename}, line {line}: {reason}", filename=path.name, line=line,
                      reason=reason.render(out.locale))
        out.error("{filename} was not imported: {count} lines are invalid; nothing was stored.",
                  filename=path.name, count=len(exc.problems))
        return 1
    out("Imported days: {count}, for {years}; these years are now official.", count=result.stored,
        years=", ".join(str(year) for year in result.years))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    year = parse_year(args.year)
    calendar = load_calendar(_service(settings).db)
    if year not in calendar.official_years():
        out("{year} has no official holiday data: its days follow the weekday rule and are provisional (marked ?).",
            year=year)
    if not args.list:
        out("Marks: - not a working day, + make-up working day, ? provisional.")
    weekdays = out.text("Mo Tu We Th Fr Sa Su").split()
    for month in range(1, 13):
        days = [calendar.day(day) for day in Calendar().itermonthdates(year, month) if day.month == month]
        special = [status for status in days
                   if status.name or status.is_adjusted or status.source in (SOURCE_ADMIN, SOURCE_IMPORT)]
        if args.list and not special:
            continue
        print()
        print(f"{year}-{month:02d}")
        if not args.list:
            _print_grid(days, weekdays)
        for status in special:
            out("  {day} {weekday}  {kind}  {name}  [{source}]", day=status.day.isoformat(),
                weekday=weekdays[status.day.weekday()], kind=_kind(out, status), name=status.name or "",
                source=_source(out, status))
    return 0


def _print_grid(days: list[DayStatus], weekdays: list[str]) -> None:
    # Each cell is four columns wide: a CJK weekday name takes two, like two ASCII letters.
    print("".join(" " * (4 - _width(name)) + name for name in weekdays))
    cells = ["    "] * days[0].day.weekday()
    for status in days:
        cells.append(f"{status.day.day:>3}{_mark(status)}")
    for row in range(0, len(cells), 7):
        print("".join(cells[row:row + 7]).rstrip())


def _width(text: str) -> int:
    """Count the terminal columns of ``text``, two for each character from U+2E80 on (the CJK blocks)."""
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)


def _mark(status: DayStatus) -> str:
    if status.provisional:
        return "?"
    if status.is_working_day:
        return "+" if status.is_adjusted else " "
    return "-"


def _kind(out: Any, status: DayStatus) -> str:
    if status.is_working_day:
        if status.is_adjusted:
            return out.text("a make-up working day")
        return out.text("a working day")
    if status.is_adjusted or status.name:
        return out.text("a holiday")
    return out.text("not a working day")


def _source(out: Any, status: DayStatus) -> str:
    if status.source == SOURCE_ADMIN:
        return out.text("set by an administrator")
    if status.source == SOURCE_IMPORT:
        return out.text("imported")
    if status.source == SOURCE_LIBRARY:
        return out.text("State Council schedule")
    return out.text("weekday rule")


def cmd_status(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    status = calendar_admin.calendar_status(_service(settings))
    out("Official holiday data from chinesecalendar {version}: {years}.", version=status.library_version or "?",
        years=_year_ranges(status.library_years) or "-")
    out("Imported by administrators: {years}.", years=_year_ranges(status.imported_years) or "-")
    out("Administrator entries in force: {count}.", count=status.entries)
    for warning in status.warnings:
        out("Warning: {message}", message=warning.message.render(out.locale))
    return 0


def _year_ranges(years: tuple[int, ...]) -> str:
    """Write consecutive years as ranges: 2004-2026, 2028."""
    ranges: list[list[int]] = []
    for year in years:
        if ranges and year == ranges[-1][1] + 1:
            ranges[-1][1] = year
        else:
            ranges.append([year, year])
    return ", ".join(str(first) if first == last else f"{first}-{last}" for first, last in ranges)


def cmd_deadline(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    limit = deadlines.TimeLimit.parse(args.amount, args.unit)
    start = deadlines.parse_moment(args.start)
    pauses = [deadlines.parse_pause(pause) for pause in args.pause or []]
    calendar: WorkingCalendar = load_calendar(_service(settings).db)
    deadline = deadlines.compute_deadline(start, limit, pauses, calendar)
    out("Due {due} ({working_days} working days after {start_day}).", due=deadline.due.strftime("%Y-%m-%d %H:%M:%S"),
        working_days=deadline.working_days, start_day=deadline.start.astimezone(deadline.due.tzinfo).date())
    if deadline.paused_days and deadline.limit.unit is deadlines.Unit.WORKING_DAY:
        out("Pauses extended the limit; working days added: {days}.", days=deadline.paused_days)
    elif deadline.paused_days:
        out("Pauses extended the limit; days added: {days}.", days=deadline.paused_days)
    if deadline.moved_from:
        out("{day} is not a working day, so the limit ends on the next working day.",
            day=deadline.moved_from.isoformat())
    if deadline.provisional:
        out("Provisional: {years} has no official holiday data, so weekdays were counted instead.",
            years=", ".join(str(year) for year in deadline.provisional_years))
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    command = add("calendar", cmd_status, t("Manage the working-day calendar (holidays and make-up working days)."))
    actions = command.add_subparsers(dest="calendar_action", required=True, metavar="ACTION")

    def action(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        return parser

    set_day = action("set", cmd_set, t("Make one date a working day or a holiday; this overrides every other "
                                       "source."))
    set_day.add_argument("date", metavar="DATE", help=t("The date, as YYYY-MM-DD."))
    kind = set_day.add_mutually_exclusive_group(required=True)
    kind.add_argument("--working", dest="working", action="store_true", help=t("Make it a working day."))
    kind.add_argument("--holiday", dest="working", action="store_false", help=t("Make it a holiday."))
    set_day.add_argument("--name", help=t("Name of the holiday, such as 春节 or 国庆节."))
    set_day.add_argument("--as", dest="as_user", help=t("Administrator to record the entry against."))

    import_days = action("import", cmd_import, t("Import a CSV file of date,type,name lines (type: working or "
                                                 "holiday); one invalid line rejects the whole file."))
    import_days.add_argument("file", metavar="FILE")
    import_days.add_argument("--as", dest="as_user", help=t("Administrator to record the entries against."))

    show = action("show", cmd_show, t("Show the days of one year month by month, provisional days marked."))
    show.add_argument("year", metavar="YEAR")
    show.add_argument("--list", action="store_true", help=t("List the special days only, without month grids."))

    action("status", cmd_status, t("Show which years have official holiday data and warn about missing ones."))

    deadline = action("deadline", cmd_deadline, t("Preview when a time limit ends."))
    deadline.add_argument("start", metavar="START", help=t("Start date or time, such as 2025-01-20."))
    deadline.add_argument("amount", metavar="AMOUNT", help=t("Length of the limit, such as 20."))
    deadline.add_argument("--unit", default="working_day",
                          help=t("Unit of the limit: working_day (default), day or month."))
    deadline.add_argument("--pause", action="append", metavar="START/END",
                          help=t("A period that does not count, such as expert review; may be repeated."))
