"""Supervision statistics, risk event lists and department grades, in the engine, over HTTP and on the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from api.app import create_app
from api.cli import main
from engine import risk_events
from engine.calendar import WorkingCalendar
from engine.clock import ManualClock
from engine.db import cards
from engine.errors import Forbidden, InvalidInput
from engine.grading import (
    DEFAULT_RULES_PATH,
    GradeRulesError,
    deductions_for,
    grade_departments,
    load_grade_rules,
    parse_grade_rules,
)
from engine.i18n import translate
from engine.periods import Period, parse_period, parse_span
from engine.service import Liuhen
from engine.settings import Settings
from engine.statistics import (
    CaseFigures,
    GroupStatistics,
    RiskEventFilter,
    StepFigures,
    compute_statistics,
    list_risk_events,
    working_days_elapsed,
)
from engine.users import Actor, create_user
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import ADMIN, DESIGNER, LiveServer, add_user

AUDITOR = Actor("auditor", "auditor", frozenset({"auditor"}))
FINANCE = "财务科"
GENERAL = "总务科"
WINDOW = "受理窗口"
REVIEW = "审批科室"
DECEMBER = Period(date(2026, 12, 1), date(2026, 12, 31))
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))

LEAVE = definitions(process(
    "leave_approval",
    lanes({WINDOW: ["S", "Accept"], REVIEW: ["Approve", "E"]}),
    node("startEvent", "S"), user_task("Accept", "受理"), user_task("Approve", "审批"), node("endEvent", "E"),
    flow("f1", "S", "Accept"), flow("f2", "Accept", "Approve"), flow("f3", "Approve", "E"),
    name="请假审批",
    extensions='<liuhen:powerItem code="NB-001" kind="internal"><liuhen:name>内部请假审批</liuhen:name>'
               "</liuhen:powerItem>",
))


def _staff(service: Liuhen, username: str, department: str) -> Actor:
    with service.db.write() as conn:
        return create_user(conn, username=username, display_name=username, password=f"pw-{username}-secret",
                           roles=["staff"], posts=[WINDOW, REVIEW], department=department, now=service.now())


def _complete_open(service: Liuhen, case_id: int, actor: Actor) -> dict[str, Any]:
    task = service.get_case(case_id)["tasks"][0]
    return service.complete(task["id"], actor)


def _task_id(service: Liuhen, case_id: int, element_id: str) -> str:
    tasks = service.list_tasks(ADMIN, scope="all", case_id=case_id, status="any")
    return next(task["id"] for task in tasks if task["element_id"] == element_id)


def _card(service: Liuhen, case_id: int, clock: str, colour: str, raised_at: datetime,
          task_id: str | None = None) -> None:
    with service.db.write() as conn:
        conn.execute(insert(cards).values(case_id=case_id, clock=clock, colour=colour, task_id=task_id,
                                          element_id=None, due_at=raised_at, raised_at=raised_at))


def _risk_event(service: Liuhen, case_id: int, department: str | None, level: str, at: datetime,
                kind: str = "control_failed", post: str | None = None) -> None:
    with service.db.write() as conn:
        risk_events.record(conn, risk_events.RiskEvent(
            case_id=case_id, process_id="leave_approval", kind=kind, level=level, actor="system", at=at,
            department=department, post=post))


@pytest.fixture
def fabricated(service: Liuhen, clock: ManualClock) -> dict[str, Any]:
    """Four cases in December 2026: three of the finance office, one of the general office.

    The clock starts on Tuesday 2026-12-01 at 09:00 in Shanghai. Finance: case 1 completed (Accept 2 h,
    Approve 4 h), case 2 running with Accept done in 1 h and a red card on the case and on Approve, case 3
    cancelled. General office: case 4 running with a yellow card on Accept.
    """
    service.deploy(LEAVE, "leave.bpmn", DESIGNER)
    finance = _staff(service, "clerk_a", FINANCE)
    general = _staff(service, "clerk_b", GENERAL)

    first = service.start_case("leave_approval", finance)["id"]
    clock.advance(timedelta(hours=2))
    _complete_open(service, first, finance)
    clock.advance(timedelta(hours=4))
    _complete_open(service, first, finance)

    second = service.start_case("leave_approval", finance)["id"]
    clock.advance(timedelta(hours=1))
    _complete_open(service, second, finance)
    third = service.start_case("leave_approval", finance)["id"]
    service.cancel_case(third, ADMIN, "duplicate application")
    fourth = service.start_case("leave_approval", general)["id"]

    day = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    approve = _task_id(service, second, "Approve")
    _card(service, second, "promised", "red", day)
    _card(service, second, f"step:{approve}", "red", day + timedelta(days=1), approve)
    accept = _task_id(service, fourth, "Accept")
    _card(service, fourth, f"step:{accept}", "yellow", day, accept)
    _risk_event(service, first, FINANCE, "high", day, post=WINDOW)
    _risk_event(service, second, FINANCE, "medium", day, post=REVIEW)
    _risk_event(service, second, FINANCE, "high", day, kind="deadline_exceeded")
    _risk_event(service, fourth, GENERAL, "low", day, post=WINDOW)
    return {"cases": [first, second, third, fourth], "finance": finance, "general": general}


def _group(result: Any, key: str | None) -> GroupStatistics:
    return next(group for group in result.groups if group.key == key)


# Periods


def test_period_spans() -> None:
    assert parse_span("2026") == Period(date(2026, 1, 1), date(2026, 12, 31))
    assert parse_span("2026-Q1") == Period(date(2026, 1, 1), date(2026, 3, 31))
    assert parse_span("2026-q4") == Period(date(2026, 10, 1), date(2026, 12, 31))
    assert parse_span("2028-02") == Period(date(2028, 2, 1), date(2028, 2, 29))
    assert parse_span(" 2026-12-05 ") == Period(date(2026, 12, 5), date(2026, 12, 5))


def test_period_from_and_to() -> None:
    today = date(2026, 12, 17)
    assert parse_period(None, None, today) == DECEMBER
    assert parse_period("2026-Q4", None, today) == Period(date(2026, 10, 1), date(2026, 12, 31))
    assert parse_period("2026-10", "2026-11", today) == Period(date(2026, 10, 1), date(2026, 11, 30))
    assert parse_period("2026-12-05", "2027", today) == Period(date(2026, 12, 5), date(2027, 12, 31))


@pytest.mark.parametrize(("first", "last", "expected"), [
    ("2026-13", None, "Period '2026-13' is invalid; write a year (2026), a quarter (2026-Q4), a month (2026-12) "
                      "or a date (2026-12-05)."),
    ("2026-Q5", None, "Period '2026-Q5' is invalid"),
    ("2026-02-30", None, "Period '2026-02-30' is invalid"),
    ("last month", None, "Period 'last month' is invalid"),
    (None, "2026-12", "The period has an end (2026-12) but no start; give the start as well."),
    ("2026-12", "2026-11", "The period starts on 2026-12-01 but ends earlier, on 2026-11-30; swap the two bounds."),
    ("1850", None, "Year 1850 is outside the calendar"),
])
def test_period_rejects_bad_bounds(first: str | None, last: str | None, expected: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_period(first, last, date(2026, 12, 1))
    assert error.value.render("en").startswith(expected)


def test_period_bounds_in_shanghai() -> None:
    assert DECEMBER.start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert DECEMBER.end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


def test_working_days_skip_weekend() -> None:
    calendar = WorkingCalendar()
    friday_evening = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    monday_morning = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert working_days_elapsed(calendar, friday_evening, monday_morning) == pytest.approx(16 / 24)
    assert working_days_elapsed(calendar, monday_morning, monday_morning + timedelta(hours=6)) == pytest.approx(0.25)
    assert working_days_elapsed(calendar, monday_morning, friday_evening) == 0.0


# Statistics


def test_department_case_counts(service: Liuhen, fabricated: dict[str, Any]) -> None:
    result = compute_statistics(service, AUDITOR, "department", DECEMBER)
    assert [group.key for group in result.groups] == sorted([GENERAL, FINANCE])
    finance = _group(result, FINANCE).cases
    assert finance is not None
    assert (finance.started, finance.completed, finance.cancelled, finance.running) == (3, 1, 1, 1)
    assert finance.handled == 3
    assert finance.overdue == 1
    assert finance.overdue_rate == pytest.approx(1 / 3)
    general = _group(result, GENERAL).cases
    assert general is not None
    assert (general.started, general.running, general.handled, general.overdue) == (1, 1, 1, 0)
    assert result.totals.cases is not None
    assert result.totals.cases.started == 4


def test_department_steps_and_cards(service: Liuhen, fabricated: dict[str, Any]) -> None:
    result = compute_statistics(service, AUDITOR, "department", DECEMBER)
    finance = _group(result, FINANCE)
    # The cancelled case's Accept task is left out; case 2's Approve is open and has a red step card.
    assert (finance.steps.handled, finance.steps.completed, finance.steps.overdue) == (4, 3, 1)
    assert finance.steps.overdue_rate == pytest.approx(0.25)
    assert (finance.red_cards, finance.yellow_cards) == (2, 0)
    assert finance.risk_events_by_level == {"high": 2, "medium": 1}
    assert finance.risk_events_by_kind == {"control_failed": 2, "deadline_exceeded": 1}
    general = _group(result, GENERAL)
    assert (general.red_cards, general.yellow_cards) == (0, 1)
    assert general.risk_events == 1


def test_step_handling_times(service: Liuhen, fabricated: dict[str, Any]) -> None:
    result = compute_statistics(service, AUDITOR, "department", DECEMBER)
    times = _group(result, FINANCE).step_times
    accept = times[("leave_approval", "Accept")].summary()
    assert accept["name"] == "受理"
    assert accept["completed"] == 2
    assert (accept["mean_hours"], accept["median_hours"]) == (1.5, 1.5)
    # Tuesday 2026-12-01 is a working day, so 1.5 hours are 1.5 / 24 working days.
    assert accept["mean_working_days"] == round(1.5 / 24, 2)
    approve = times[("leave_approval", "Approve")].summary()
    assert (approve["completed"], approve["mean_hours"], approve["median_hours"]) == (1, 4.0, 4.0)
    assert ("leave_approval", "Accept") not in _group(result, GENERAL).step_times
    listed = next(group for group in result.to_json()["groups"] if group["key"] == FINANCE)["step_times"]
    assert [item["element_id"] for item in listed] == ["Accept", "Approve"]


def test_grouping_by_post(service: Liuhen, fabricated: dict[str, Any]) -> None:
    result = compute_statistics(service, AUDITOR, "post", DECEMBER)
    window, review = _group(result, WINDOW), _group(result, REVIEW)
    assert window.cases is None
    assert (window.steps.handled, window.steps.completed, window.steps.overdue) == (3, 2, 0)
    assert (review.steps.handled, review.steps.completed, review.steps.overdue) == (2, 1, 1)
    assert (window.yellow_cards, review.red_cards) == (1, 1)
    # The red card on the case's promised time limit and the event without a post count under no post.
    unposted = _group(result, None)
    assert unposted.red_cards == 1
    assert unposted.risk_events_by_kind == {"deadline_exceeded": 1}
    assert window.risk_events_by_level == {"high": 1, "low": 1}
    assert [group.key for group in result.groups][-1] is None
    assert result.to_json()["totals"]["cases"] is None


def test_grouping_by_power_item(service: Liuhen, fabricated: dict[str, Any]) -> None:
    result = compute_statistics(service, AUDITOR, "process", DECEMBER)
    assert [group.key for group in result.groups] == ["leave_approval"]
    item = result.groups[0]
    assert (item.power_item_code, item.name) == ("NB-001", "内部请假审批")
    assert item.cases is not None
    assert (item.cases.started, item.cases.handled, item.cases.overdue) == (4, 4, 1)
    assert item.risk_events == 4


def test_statistics_period_boundaries_shanghai(service: Liuhen, clock: ManualClock) -> None:
    service.deploy(LEAVE, "leave.bpmn", DESIGNER)
    clerk = _staff(service, "clerk_a", FINANCE)
    clock.set(datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC))  # 23:59:59 on 30 November in Shanghai
    november = service.start_case("leave_approval", clerk)["id"]
    clock.set(datetime(2026, 11, 30, 16, 0, tzinfo=UTC))  # midnight, 1 December in Shanghai
    december = service.start_case("leave_approval", clerk)["id"]
    _risk_event(service, november, FINANCE, "low", datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC))
    _risk_event(service, december, FINANCE, "high", datetime(2026, 11, 30, 16, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    _complete_open(service, november, clerk)
    _complete_open(service, november, clerk)

    in_november = _group(compute_statistics(service, AUDITOR, "department", NOVEMBER), FINANCE)
    in_december = _group(compute_statistics(service, AUDITOR, "department", DECEMBER), FINANCE)
    assert in_november.cases is not None and in_december.cases is not None
    assert (in_november.cases.started, in_november.cases.completed, in_november.cases.running) == (1, 0, 1)
    assert in_november.cases.handled == 1
    # The November case finished in December, so both months handled it; December completed it.
    assert (in_december.cases.started, in_december.cases.completed, in_december.cases.handled) == (1, 1, 2)
    assert in_november.risk_events_by_level == {"low": 1}
    assert in_december.risk_events_by_level == {"high": 1}
    # Accept of the November case became ready in November and was completed in December.
    assert in_november.steps.completed == 0
    assert in_december.steps.completed == 2
    assert compute_statistics(service, AUDITOR, "department", Period(date(2026, 10, 1), date(2026, 10, 31))).groups \
        == []


def test_overdue_counts_red_cards_until_period_end(service: Liuhen, fabricated: dict[str, Any]) -> None:
    first_of_december = Period(date(2026, 12, 1), date(2026, 12, 1))
    finance = _group(compute_statistics(service, AUDITOR, "department", first_of_december), FINANCE)
    assert finance.cases is not None
    # The red cards came on 2 and 3 December, after this one-day period.
    assert (finance.cases.overdue, finance.steps.overdue, finance.red_cards) == (0, 0, 0)


def test_statistics_need_auditor_or_admin(service: Liuhen, fabricated: dict[str, Any]) -> None:
    with pytest.raises(Forbidden):
        compute_statistics(service, fabricated["finance"], "department", DECEMBER)
    assert compute_statistics(service, ADMIN, "department", DECEMBER).groups
    with pytest.raises(InvalidInput) as bad_group:
        compute_statistics(service, AUDITOR, "lane", DECEMBER)
    assert bad_group.value.render("en") == "Grouping 'lane' is unknown; use department, post or process."


# Risk events


def test_list_risk_events_filters(service: Liuhen, fabricated: dict[str, Any]) -> None:
    every = list_risk_events(service, AUDITOR, RiskEventFilter())
    assert every["total"] == 4
    assert [item["level"] for item in every["items"]].count("high") == 2
    assert list_risk_events(service, AUDITOR, RiskEventFilter(level="high"))["total"] == 2
    assert list_risk_events(service, AUDITOR, RiskEventFilter(department=GENERAL))["total"] == 1
    assert list_risk_events(service, AUDITOR, RiskEventFilter(kind="deadline_exceeded"))["total"] == 1
    second = fabricated["cases"][1]
    assert list_risk_events(service, AUDITOR, RiskEventFilter(case_id=second))["total"] == 2
    assert list_risk_events(service, AUDITOR, RiskEventFilter(post=WINDOW, level="low"))["total"] == 1
    assert list_risk_events(service, AUDITOR, RiskEventFilter(period=NOVEMBER))["total"] == 0
    assert list_risk_events(service, AUDITOR, RiskEventFilter(process_id="other"))["total"] == 0


def test_list_risk_events_pages(service: Liuhen, fabricated: dict[str, Any]) -> None:
    first = list_risk_events(service, AUDITOR, RiskEventFilter(), limit=3)
    rest = list_risk_events(service, AUDITOR, RiskEventFilter(), limit=3, offset=3)
    assert (first["total"], len(first["items"]), len(rest["items"])) == (4, 3, 1)
    ids = [item["id"] for item in first["items"] + rest["items"]]
    assert len(set(ids)) == 4
    assert first["items"][0]["at"].tzinfo is not None
    with pytest.raises(InvalidInput) as error:
        list_risk_events(service, AUDITOR, RiskEventFilter(), limit=0)
    assert error.value.render("en") == "Page size 0 is invalid; give a number from 1 to 500."


def test_risk_event_filter_rejects_unknown_values() -> None:
    with pytest.raises(InvalidInput) as level:
        RiskEventFilter(level="severe")
    assert level.value.render("en") == "Risk level 'severe' is unknown; use one of: high, medium, low."
    with pytest.raises(InvalidInput) as kind:
        RiskEventFilter(kind="late")
    assert kind.value.render("en").startswith("Risk event kind 'late' is unknown; use one of: control_failed")


# Grades


def test_default_rules_load() -> None:
    rules = load_grade_rules(None)
    assert rules.source == str(DEFAULT_RULES_PATH)
    assert rules.thresholds == {"excellent": 90, "good": 80, "pass": 60}
    assert [band.above_percent for band in rules.case_overdue_bands] == [5, 10, 20]


@pytest.mark.parametrize(("score", "grade"), [
    (100, "excellent"), (90, "excellent"), (89.99, "good"), (80, "good"), (79.99, "pass"), (60, "pass"),
    (59.99, "fail"), (0, "fail"),
])
def test_grade_boundaries(score: float, grade: str) -> None:
    assert load_grade_rules(None).grade_for(score) == grade


def test_grades_of_departments(service: Liuhen, fabricated: dict[str, Any]) -> None:
    report = grade_departments(service, AUDITOR, DECEMBER, load_grade_rules(None))
    grades = {grade.department: grade for grade in report.departments}
    finance = grades[FINANCE]
    points = {deduction.rule: deduction.points for deduction in finance.deductions}
    # The red card's own deadline_exceeded risk event is not deducted a second time.
    assert points == {"deductions.red_card": 10, "deductions.risk_event.high": 5,
                      "deductions.risk_event.medium": 2, "overdue_rate.cases": 20, "overdue_rate.steps": 6}
    assert (finance.score, finance.grade) == (57, "fail")
    descriptions = [deduction.description.render("en") for deduction in finance.deductions]
    assert descriptions == ["Red cards: 2; points per card: 5", "Risk events of level high: 1; points per event: 5",
                            "Risk events of level medium: 1; points per event: 2",
                            "Case overdue rate 33.3% is above 20%", "Step overdue rate 25% is above 20%"]
    general = grades[GENERAL]
    assert (general.score, general.grade) == (98, "excellent")
    assert general.grade_name().render("en") == "Excellent"


def test_overdue_band_at_threshold() -> None:
    rules = parse_grade_rules(DEFAULT_RULES_PATH.read_text(encoding="utf-8"), "test")
    at_five = GroupStatistics("x", cases=CaseFigures(handled=20, overdue=1), steps=StepFigures(handled=10))
    assert deductions_for(at_five, rules) == []
    at_ten = GroupStatistics("x", cases=CaseFigures(handled=20, overdue=2), steps=StepFigures(handled=10, overdue=3))
    found = {deduction.rule: deduction.points for deduction in deductions_for(at_ten, rules)}
    assert found == {"overdue_rate.cases": 5, "overdue_rate.steps": 6}


def test_department_without_cases_not_graded(service: Liuhen, fabricated: dict[str, Any]) -> None:
    _risk_event(service, fabricated["cases"][0], "监察室", "high", datetime(2026, 12, 5, tzinfo=UTC))
    report = grade_departments(service, AUDITOR, DECEMBER, load_grade_rules(None))
    unstaffed = next(grade for grade in report.departments if grade.department == "监察室")
    assert (unstaffed.score, unstaffed.grade) == (95, None)
    assert unstaffed.grade_name().render("en") == "Not graded"


def test_custom_rules_change_grades(service: Liuhen, fabricated: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(_rules(red_card="10", excellent="40", good="30", passing="20"), encoding="utf-8")
    report = grade_departments(service, AUDITOR, DECEMBER, load_grade_rules(path))
    finance = next(grade for grade in report.departments if grade.department == FINANCE)
    # Red cards 2 × 10, risk events 5 + 2, the one case band 5: 100 - 32.
    assert (finance.score, finance.grade) == (68, "excellent")
    assert report.rules.source == str(path)


def test_grade_rules_setting_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIUHEN_GRADE_RULES", str(tmp_path / "rules.toml"))
    assert Settings().grade_rules == tmp_path / "rules.toml"
    monkeypatch.setenv("LIUHEN_GRADE_RULES", "")
    assert Settings().grade_rules is None


def _rules(*, version: str = "1", red_card: str = "5", yellow_card: str = "1", high: str = "5",
           bands: str = "[[overdue_rate.cases]]\nabove_percent = 5\npoints = 5\n", excellent: str = "90",
           good: str = "80", passing: str = "60", extra: str = "") -> str:
    return (f"version = {version}\nbase_score = 100\n{extra}\n"
            f"[deductions]\nred_card = {red_card}\nyellow_card = {yellow_card}\n"
            f"[deductions.risk_event]\nhigh = {high}\nmedium = 2\nlow = 1\n"
            f"{bands}\n"
            f"[grades]\nexcellent = {excellent}\ngood = {good}\n" + (f"pass = {passing}\n" if passing else ""))


@pytest.mark.parametrize(("text", "key", "expected"), [
    (_rules(extra="bonus = 3"), "bonus",
     "key bonus is unknown; the keys allowed here are version, base_score, min_cases, deductions, overdue_rate, "
     "grades."),
    (_rules(red_card='"five"'), "deductions.red_card",
     "key deductions.red_card must be a number such as 5, not 'five'."),
    (_rules(yellow_card="-1"), "deductions.yellow_card", "key deductions.yellow_card must be zero or more, not -1."),
    (_rules(high="true"), "deductions.risk_event.high",
     "key deductions.risk_event.high must be a number such as 2, not True."),
    (_rules(passing=""), "grades.pass", "key grades.pass is missing; add it, for example: pass = 60"),
    (_rules(good="90"), "grades.excellent",
     "key grades.excellent (90) must be higher than grades.good (90), because a better grade needs a higher score."),
    (_rules(excellent="120"), "grades.excellent",
     "key grades.excellent (120) is above base_score (100), so no department could reach it; lower it."),
    (_rules(version="2"), "version", "has version 2, which this release cannot read; write version = 1."),
    (_rules(bands="[[overdue_rate.cases]]\nabove_percent = 150\npoints = 5\n"), "overdue_rate.cases[1].above_percent",
     "key overdue_rate.cases[1].above_percent must be a percentage from 0 to 100, not 150."),
    (_rules(bands="[[overdue_rate.cases]]\nabove_percent = 5\npoints = 5\n"
                  "[[overdue_rate.cases]]\nabove_percent = 5.0\npoints = 9\n"), "overdue_rate.cases",
     "key overdue_rate.cases has two bands above 5%; give each band its own above_percent."),
    (_rules(bands="[[overdue_rate.cases]]\nabove_percent = 5\n"), "overdue_rate.cases[1].points",
     "key overdue_rate.cases[1].points is missing; add it, for example: points = 5"),
    (_rules(bands="[overdue_rate]\ncases = 5\n"), "overdue_rate.cases",
     "key overdue_rate.cases must be a list of bands, each written as [[overdue_rate.cases]] followed by "
     "above_percent and points."),
    (_rules(passing="").split("[grades]")[0] + "\n", "grades",
     "key grades is missing; add it, for example: [grades]"),
    ("grades = 3\n" + _rules(passing="").split("[grades]")[0], "grades",
     "key grades must be a table, written as [grades] on a line of its own with its keys below it."),
])
def test_rule_file_errors_name_the_key(text: str, key: str, expected: str) -> None:
    with pytest.raises(GradeRulesError) as error:
        parse_grade_rules(text, "rules.toml")
    assert error.value.key == key
    assert error.value.render("en").endswith(expected)
    assert error.value.render("en").startswith("The grade rule file rules.toml")


def test_rule_file_syntax_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GradeRulesError) as syntax:
        parse_grade_rules("base_score = = 100", "rules.toml")
    assert "is not valid TOML: " in syntax.value.render("en")
    assert "(at line 1, column 14)" in syntax.value.render("en")
    with pytest.raises(GradeRulesError) as missing:
        load_grade_rules(tmp_path / "absent.toml")
    assert missing.value.render("en") == (
        f"The grade rule file {tmp_path / 'absent.toml'} cannot be read: No such file or directory. Set "
        "LIUHEN_GRADE_RULES to a readable TOML file, or leave it unset to use the shipped rules.")
    with pytest.raises(GradeRulesError) as twice:
        parse_grade_rules(_rules(extra="deductions = 4"), "rules.toml")
    assert twice.value.render("en").startswith("The grade rule file rules.toml is not valid TOML: ")


# HTTP


@pytest.fixture
def api(service: Liuhen, fabricated: dict[str, Any]) -> Iterator[httpx.Client]:
    add_user(service, "auditor", ["auditor"])
    add_user(service, "admin", ["admin"])
    add_user(service, "staff", ["staff"], [WINDOW])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def _login(client: httpx.Client, username: str, language: str = "en") -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": language}


def test_http_statistics_roles(api: httpx.Client) -> None:
    query = {"group": "department", "from": "2026-12"}
    staff = api.get("/api/supervision/statistics", params=query, headers=_login(api, "staff"))
    assert staff.status_code == 403
    assert staff.json()["error"]["code"] == "forbidden"
    for username in ("auditor", "admin"):
        response = api.get("/api/supervision/statistics", params=query, headers=_login(api, username))
        assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {"from": "2026-12-01", "to": "2026-12-31"}
    finance = next(group for group in body["groups"] if group["key"] == FINANCE)
    assert finance["cases"]["overdue_rate"] == 0.3333
    assert finance["risk_events"]["by_level"] == {"high": 2, "medium": 1, "low": 0}
    assert body["totals"]["cases"]["started"] == 4


def test_http_statistics_groups_and_errors(api: httpx.Client) -> None:
    headers = _login(api, "auditor")
    posts = api.get("/api/supervision/statistics", params={"group": "post", "from": "2026-Q4"}, headers=headers)
    assert posts.status_code == 200
    assert {group["key"] for group in posts.json()["groups"]} == {WINDOW, REVIEW, None}
    processes = api.get("/api/supervision/statistics", params={"group": "process", "from": "2026"}, headers=headers)
    assert processes.json()["groups"][0]["power_item_code"] == "NB-001"
    bad_group = api.get("/api/supervision/statistics", params={"group": "lane"}, headers=headers)
    assert bad_group.status_code == 422
    assert bad_group.json()["error"]["message"] == "Grouping 'lane' is unknown; use department, post or process."
    backwards = api.get("/api/supervision/statistics", params={"from": "2026-12", "to": "2026-11"}, headers=headers)
    assert backwards.status_code == 422
    default = api.get("/api/supervision/statistics", headers=headers)
    # The service clock is in December 2026, so the default period is that month.
    assert default.json()["period"] == {"from": "2026-12-01", "to": "2026-12-31"}


def test_http_risk_events(api: httpx.Client) -> None:
    headers = _login(api, "auditor")
    page = api.get("/api/risk-events", params={"level": "high", "limit": 1}, headers=headers)
    assert page.status_code == 200, page.text
    assert (page.json()["total"], len(page.json()["items"])) == (2, 1)
    filtered = api.get("/api/risk-events", params={"department": GENERAL, "from": "2026-12"}, headers=headers)
    assert [item["level"] for item in filtered.json()["items"]] == ["low"]
    assert api.get("/api/risk-events", params={"from": "2026-11"}, headers=headers).json()["total"] == 0
    bad = api.get("/api/risk-events", params={"level": "severe"}, headers=headers)
    assert bad.status_code == 422
    assert "Risk level 'severe' is unknown" in bad.json()["error"]["message"]
    too_many = api.get("/api/risk-events", params={"limit": 501}, headers=headers)
    assert too_many.status_code == 422
    assert api.get("/api/risk-events", headers=_login(api, "staff")).status_code == 403


def test_http_grades(api: httpx.Client, service: Liuhen) -> None:
    english = api.get("/api/supervision/grades", params={"from": "2026-12"}, headers=_login(api, "auditor"))
    assert english.status_code == 200, english.text
    general = next(item for item in english.json()["departments"] if item["department"] == GENERAL)
    assert (general["score"], general["grade"], general["grade_name"]) == (98, "excellent", "Excellent")
    assert [item["description"] for item in general["deductions"]] == [
        "Yellow cards: 1; points per card: 1", "Risk events of level low: 1; points per event: 1"]
    chinese = api.get("/api/supervision/grades", params={"from": "2026-12"}, headers=_login(api, "auditor", "zh-CN"))
    finance = next(item for item in chinese.json()["departments"] if item["department"] == FINANCE)
    assert finance["grade_name"] == translate("zh_CN", "Fail")
    assert api.get("/api/supervision/grades", headers=_login(api, "staff")).status_code == 403


def test_http_grades_with_bad_rule_file(api: httpx.Client, service: Liuhen, tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(_rules(red_card='"five"'), encoding="utf-8")
    service.settings.grade_rules = path
    response = api.get("/api/supervision/grades", headers=_login(api, "admin"))
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "grade_rules_invalid"
    assert error["details"]["key"] == "deductions.red_card"
    assert error["message"].endswith("key deductions.red_card must be a number such as 5, not 'five'.")


# Command line


def _cli(monkeypatch: pytest.MonkeyPatch, service: Liuhen, *args: str) -> int:
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.resolved_database_url())
    monkeypatch.setenv("LIUHEN_LOCALE", "en")
    return main(list(args))


def test_cli_stats_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], service: Liuhen,
                         fabricated: dict[str, Any]) -> None:
    assert _cli(monkeypatch, service, "stats", "--from", "2026-12", "--steps") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Statistics by department, 2026-12-01 to 2026-12-31"
    assert lines[1].split()[:3] == ["Department", "Started", "Completed"]
    finance = next(line for line in lines if line.startswith(FINANCE))
    assert finance.split()[1:6] == ["3", "1", "1", "1", "33.3%"]
    assert finance.split()[-1] == "2/1/0"
    assert next(line for line in lines if line.startswith("Total")).split()[1] == "4"
    accept = next(line for line in lines if "[Accept]" in line and line.startswith(FINANCE))
    assert accept.split()[-4:] == ["1.50", "1.50", "0.06", "0.06"]


def test_cli_stats_by_post(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], service: Liuhen,
                           fabricated: dict[str, Any]) -> None:
    assert _cli(monkeypatch, service, "stats", "--group", "post", "--from", "2026-12-01", "--to", "2026-12-31") == 0
    lines = capsys.readouterr().out.splitlines()
    review = next(line for line in lines if line.startswith(REVIEW))
    assert review.split()[1:7] == ["-", "-", "-", "-", "-", "50.0%"]
    assert any(line.startswith("(none)") for line in lines)


def test_cli_grades(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], service: Liuhen,
                    fabricated: dict[str, Any], tmp_path: Path) -> None:
    assert _cli(monkeypatch, service, "grades", "--from", "2026-12") == 0
    output = capsys.readouterr().out
    general = next(line for line in output.splitlines() if line.startswith(GENERAL))
    assert general.split()[-2:] == ["98.00", "Excellent"]
    deductions = output.split("Deductions behind each score:")[1].splitlines()
    assert deductions[1].split() == ["Department", "Points", "deducted", "Reason"]
    assert [FINANCE, "20.00", "Case", "overdue", "rate", "33.3%", "is", "above", "20%"] in \
        [line.split() for line in deductions]

    bad = tmp_path / "bad.toml"
    bad.write_text(_rules(extra="bonus = 3"), encoding="utf-8")
    assert _cli(monkeypatch, service, "grades", "--rules", str(bad)) == 1
    assert "key bonus is unknown" in capsys.readouterr().err


def test_cli_stats_empty_period(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                service: Liuhen, fabricated: dict[str, Any]) -> None:
    assert _cli(monkeypatch, service, "stats", "--from", "2025") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Nothing happened in this period."
