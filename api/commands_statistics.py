"""`liuhen stats` and `liuhen grades`: supervision statistics and department grades as tables."""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from engine.calendar import local_today
from engine.grading import grade_departments, load_grade_rules
from engine.periods import Period, parse_period
from engine.settings import Settings
from engine.statistics import GROUPS, GroupStatistics, compute_statistics


def cmd_stats(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    period = _period(args, local_today(service.now()))
    result = compute_statistics(service, _cli_actor(service, None), args.group, period)
    if args.group == "department":
        out("Statistics by department, {first} to {last}", first=period.first, last=period.last)
    elif args.group == "post":
        out("Statistics by post, {first} to {last}", first=period.first, last=period.last)
    else:
        out("Statistics by power item, {first} to {last}", first=period.first, last=period.last)
    if not result.groups:
        out("Nothing happened in this period.")
        return 0

    headers = [_group_header(out, args.group), out.text("Started"), out.text("Completed"), out.text("Cancelled"),
               out.text("Running"), out.text("Case overdue rate"), out.text("Step overdue rate"),
               out.text("Yellow cards"), out.text("Red cards"), out.text("Risk events (high/medium/low)")]
    rows = [_figures_row(out, _group_label(out, group), group) for group in result.groups]
    rows.append(_figures_row(out, out.text("Total"), result.totals))
    print_table(headers, rows)

    if args.steps:
        print()
        out("Handling time per step (steps completed in the period):")
        step_headers = [_group_header(out, args.group), out.text("Process"), out.text("Step"),
                        out.text("Completed"), out.text("Mean hours"), out.text("Median hours"),
                        out.text("Mean working days"), out.text("Median working days")]
        step_rows = []
        for group in result.groups:
            for key in sorted(group.step_times):
                times = group.step_times[key].summary()
                step_rows.append([_group_label(out, group), times["process_id"],
                                  f"{times['name'] or ''} [{times['element_id']}]", str(times["completed"]),
                                  _decimal(times["mean_hours"]), _decimal(times["median_hours"]),
                                  _decimal(times["mean_working_days"]), _decimal(times["median_working_days"])])
        print_table(step_headers, step_rows)
    if result.provisional_years:
        out("Provisional: {years} has no official holiday data, so weekdays were counted as working days.",
            years=", ".join(str(year) for year in result.provisional_years))
    return 0


def cmd_grades(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    rules = load_grade_rules(Path(args.rules) if args.rules else settings.grade_rules)
    period = _period(args, local_today(service.now()))
    report = grade_departments(service, _cli_actor(service, None), period, rules)
    out("Department grades, {first} to {last} (rules: {source})", first=period.first, last=period.last,
        source=rules.source)
    if not report.departments:
        out("Nothing happened in this period.")
        return 0

    headers = [out.text("Department"), out.text("Cases handled"), out.text("Score"), out.text("Grade")]
    rows = [[_group_label(out, grade.figures), str(grade.figures.cases.handled if grade.figures.cases else 0),
             _decimal(grade.score), grade.grade_name().render(out.locale)]
            for grade in report.departments]
    print_table(headers, rows)

    deductions = [[_group_label(out, grade.figures), _decimal(deduction.points),
                   deduction.description.render(out.locale)]
                  for grade in report.departments for deduction in grade.deductions]
    if deductions:
        print()
        out("Deductions behind each score:")
        print_table([out.text("Department"), out.text("Points deducted"), out.text("Reason")], deductions)
    return 0


def _period(args: argparse.Namespace, today: date) -> Period:
    return parse_period(args.first, args.last, today)


def _group_header(out: Any, group: str) -> str:
    if group == "post":
        return str(out.text("Post"))
    if group == "process":
        return str(out.text("Power item"))
    return str(out.text("Department"))


def _group_label(out: Any, group: GroupStatistics) -> str:
    if group.key is None:
        return str(out.text("(none)"))
    if group.power_item_code:
        return f"{group.power_item_code} {group.name} ({group.key})"
    if group.name and group.name != group.key:
        return f"{group.name} ({group.key})"
    return group.key


def _figures_row(out: Any, label: str, group: GroupStatistics) -> list[str]:
    by_level = group.risk_events_by_level
    levels = "/".join(str(by_level[level]) for level in ("high", "medium", "low"))
    if group.cases is None:
        case_cells = ["-", "-", "-", "-", "-"]
    else:
        figures = group.cases
        case_cells = [str(figures.started), str(figures.completed), str(figures.cancelled), str(figures.running),
                      _percent(figures.overdue_rate)]
    return [label, *case_cells, _percent(group.steps.overdue_rate), str(group.yellow_cards), str(group.red_cards),
            levels]


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _decimal(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def display_width(text: str) -> int:
    """Count the terminal columns of ``text``: two for wide and full-width characters such as Chinese."""
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in text)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``headers`` in columns two spaces apart, numbers aligned right."""
    widths = [max(display_width(str(row[index])) for row in [headers, *rows]) for index in range(len(headers))]
    numeric = [index > 0 and all(_looks_numeric(row[index]) for row in rows) for index in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for index, cell in enumerate(cells):
            padding = " " * (widths[index] - display_width(cell))
            parts.append(padding + cell if numeric[index] else cell + padding)
        return "  ".join(parts).rstrip()

    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))


def _looks_numeric(cell: str) -> bool:
    return cell == "-" or cell.rstrip("%").replace(".", "", 1).replace("/", "").isdigit()


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    period_help = t("Start of the period: a date (2026-12-05), month (2026-12), quarter (2026-Q4) or year (2026); "
                    "by default the current month.")
    to_help = t("End of the period, written like the start; by default the end of what the start names.")

    stats = add("stats", cmd_stats, t("Show supervision statistics per department, post or power item."))
    stats.add_argument("--group", choices=GROUPS, default="department",
                       help=t("Group by department (default), post or process."))
    stats.add_argument("--from", dest="first", metavar="PERIOD", help=period_help)
    stats.add_argument("--to", dest="last", metavar="PERIOD", help=to_help)
    stats.add_argument("--steps", action="store_true",
                       help=t("Also show the mean and median handling time of every step."))

    grades = add("grades", cmd_grades, t("Grade each department (excellent, good, pass, fail) for a period."))
    grades.add_argument("--from", dest="first", metavar="PERIOD", help=period_help)
    grades.add_argument("--to", dest="last", metavar="PERIOD", help=to_help)
    grades.add_argument("--rules", metavar="FILE",
                        help=t("TOML file of grade rules; by default LIUHEN_GRADE_RULES or the shipped rules."))
