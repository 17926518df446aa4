"""Case clocks through real cases: start, pause, restart, stop, recompute, and the time left on tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest
from sqlalchemy import select, update

from engine.calendar import LOCAL_TZ, library_years
from engine.calendar_admin import import_days, set_day
from engine.clocks import clocks_of_case
from engine.db import case_clocks, trace_events
from engine.errors import DefinitionError
from engine.service import Liuhen
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import ADMIN, DESIGNER, add_user

# The first year chinesecalendar has no data for.
MISSING_YEAR = max(library_years()) + 1

DECISION = ('<liuhen:formField name="decision" type="enum" label="受理意见" required="true">'
            '<liuhen:option value="accept" label="受理"/><liuhen:option value="return" label="一次性告知补正"/>'
            '</liuhen:formField>')
LEADER_CHECKPOINT = ('<liuhen:riskCheckpoint id="RC-{process_id}-decide" level="high" category="power_operation">'
                     '<liuhen:description>超期作出决定</liuhen:description>'
                     '<liuhen:controlMeasure>电子监察系统实时预警</liuhen:controlMeasure>'
                     '<liuhen:supervisingLeader>分管副局长</liuhen:supervisingLeader></liuhen:riskCheckpoint>')
LOW_CHECKPOINT = ('<liuhen:riskCheckpoint id="RC-{process_id}-review" level="low" category="institutional">'
                  '<liuhen:description>评审组织不规范</liuhen:description>'
                  '<liuhen:controlMeasure>评审专家随机抽取</liuhen:controlMeasure></liuhen:riskCheckpoint>')


def power_item(code: str, statutory: tuple[int, str] | None, promised: tuple[int, str] | None,
               handling_body: str = "某市教育局") -> str:
    limits = ""
    if statutory:
        limits += f'<liuhen:statutoryTimeLimit amount="{statutory[0]}" unit="{statutory[1]}"/>'
    if promised:
        limits += f'<liuhen:promisedTimeLimit amount="{promised[0]}" unit="{promised[1]}"/>'
    return (f'<liuhen:powerItem code="{code}" kind="external" category="行政许可">'
            f"<liuhen:name>{code} 许可</liuhen:name>"
            f"<liuhen:handlingBody>{handling_body}</liuhen:handlingBody>"
            "<liuhen:responsibleSubject>局长</liuhen:responsibleSubject>"
            f"<liuhen:legalBasis>《中华人民共和国行政许可法》</liuhen:legalBasis>{limits}</liuhen:powerItem>")


def licence(process_id: str = "licence", statutory: tuple[int, str] | None = (20, "working_day"),
            promised: tuple[int, str] | None = (10, "working_day"), handling_body: str = "某市教育局") -> bytes:
    """An external licence: acceptance check (with a correction loop), expert review, decision.

    Completing the check restarts the case clocks, the expert review pauses them, and the check and the
    decision have step limits of 5 and 2 working days.
    """
    return definitions(process(
        process_id,
        lanes({"受理窗口": ["S", "Check", "G", "Correct"], "专家组": ["Review"], "局领导": ["Decide", "E"]}),
        node("startEvent", "S"),
        user_task("Check", "受理审查", extra=DECISION + '<liuhen:timeLimit amount="5" unit="working_day"/>'
                                           "<liuhen:clockStart/>"),
        node("exclusiveGateway", "G", default="Flow_accepted"),
        user_task("Correct", "补正材料"),
        user_task("Review", "专家评审", extra='<liuhen:clockPause reason="expert_review"/>'
                                          + LOW_CHECKPOINT.format(process_id=process_id)),
        user_task("Decide", "作出决定", extra='<liuhen:timeLimit amount="2" unit="working_day"/>'
                                          + LEADER_CHECKPOINT.format(process_id=process_id)),
        node("endEvent", "E"),
        flow("f1", "S", "Check"), flow("f2", "Check", "G"),
        flow("Flow_returned", "G", "Correct", 'decision == "return"'), flow("f3", "Correct", "Check"),
        flow("Flow_accepted", "G", "Review"), flow("f4", "Review", "Decide"), flow("f5", "Decide", "E"),
        extensions=power_item(process_id.upper(), statutory, promised, handling_body),
    ))


def local(year: int, month: int, day: int, hour: int = 10) -> datetime:
    """A moment in China, given to the ManualClock in UTC as the database stores it."""
    return datetime(year, month, day, hour, tzinfo=LOCAL_TZ).astimezone(UTC)


def nth_working_day(start: date, count: int) -> date:
    """Find the count-th working day after ``start`` with chinesecalendar alone, as an independent check."""
    day = start
    while count:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            count -= 1
    return day


def working_days_in(first: date, last: date) -> int:
    """Count the working days after ``first`` up to and including ``last`` with chinesecalendar alone."""
    return len(chinese_calendar.get_workdays(first + timedelta(days=1), last)) if last > first else 0


@pytest.fixture
def clerk(service: Liuhen):
    return add_user(service, "clerk", ["staff"], ["受理窗口", "专家组", "局领导"])


def open_task(service: Liuhen, case_id: int, element_id: str) -> str:
    tasks = {task["element_id"]: task["id"] for task in service.get_case(case_id)["tasks"]}
    assert element_id in tasks, f"{element_id} not open; open: {sorted(tasks)}"
    return tasks[element_id]


def complete(service: Liuhen, actor, case_id: int, element_id: str, **data: str) -> dict:
    return service.complete(open_task(service, case_id, element_id), actor, data)


def clocks(service: Liuhen, case_id: int) -> dict[str, dict]:
    """The clocks of a case by name, step clocks under step:<element id>."""
    return {(f"step:{c['element_id']}" if c["kind"] == "step" else c["clock"]): c
            for c in clocks_of_case(service, case_id)}


def clock_events(service: Liuhen, case_id: int) -> list[tuple[str, str | None]]:
    return [(event["kind"], event["payload"].get("clock")) for event in service.case_trace(case_id)
            if event["kind"].startswith("clock_")]


# Starting and stopping.

def test_clocks_start_with_case(service, clerk, clock) -> None:
    clock.set(local(2025, 1, 20))
    service.deploy(licence(), "licence.bpmn", DESIGNER)

    case = service.start_case("licence", clerk)

    started = clocks(service, case["id"])
    assert sorted(started) == ["promised", "statutory", "step:Check"]
    statutory = started["statutory"]
    assert statutory["last_day"] == nth_working_day(date(2025, 1, 20), 20) == date(2025, 2, 21)
    assert statutory["due_at"] == datetime(2025, 2, 21, 23, 59, 59, tzinfo=LOCAL_TZ)
    assert statutory["days_left"] == 20
    assert statutory["provisional"] is False
    # Ten working days end on the make-up Saturday after the Spring Festival.
    assert started["promised"]["last_day"] == nth_working_day(date(2025, 1, 20), 10) == date(2025, 2, 8)
    # Five working days end on the make-up Sunday before it.
    assert started["step:Check"]["last_day"] == date(2025, 1, 26)
    assert clock_events(service, case["id"]) == [("clock_started", "statutory"), ("clock_started", "promised"),
                                                 ("clock_started", started["step:Check"]["clock"])]
    event = next(e for e in service.case_trace(case["id"]) if e["kind"] == "clock_started")
    assert event["payload"]["last_day"] == "2025-02-21"
    assert event["payload"]["amount"] == 20
    assert event["payload"]["unit"] == "working_day"


def test_process_without_limits_has_no_clocks(service, clerk) -> None:
    service.deploy(licence("plain", statutory=None, promised=None), "plain.bpmn", DESIGNER)

    case = service.start_case("plain", clerk)

    assert sorted(clocks(service, case["id"])) == ["step:Check"]


def test_step_clock_stops_with_step(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)

    clock.advance(timedelta(hours=3))
    complete(service, clerk, case["id"], "Check", decision="accept")

    check = clocks(service, case["id"])["step:Check"]
    assert check["stopped_at"] == clock.now()
    assert check["days_left"] is None


def test_clocks_stop_when_case_ends(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    complete(service, clerk, case["id"], "Check", decision="accept")
    clock.advance(timedelta(days=1))
    complete(service, clerk, case["id"], "Review")
    clock.advance(timedelta(days=1))
    complete(service, clerk, case["id"], "Decide")

    stopped = clocks(service, case["id"])
    assert stopped["statutory"]["stopped_at"] == clock.now()
    assert stopped["promised"]["stopped_at"] == clock.now()
    assert stopped["step:Decide"]["stopped_at"] == clock.now()
    assert stopped["step:Check"]["stopped_at"] == clock.now() - timedelta(days=2)
    assert all(c["paused"] is False for c in stopped.values())


def test_cancelled_case_closes_pause(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    complete(service, clerk, case["id"], "Check", decision="accept")
    paused_from = clock.now()
    clock.advance(timedelta(days=2))

    service.cancel_case(case["id"], ADMIN, "申请人撤回申请")

    with service.db.read() as conn:
        row = conn.execute(select(case_clocks).where(case_clocks.c.case_id == case["id"],
                                                     case_clocks.c.clock == "statutory")).one()
    assert row.paused_since is None
    assert [datetime.fromisoformat(moment) for moment in row.pauses[0]] == [paused_from, clock.now()]


# Pausing (行政许可法 §45) and restarting.

def test_pause_across_national_day_2026(service, clerk, clock) -> None:
    clock.set(local(2026, 9, 24))
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    clock.advance(timedelta(hours=1))
    complete(service, clerk, case["id"], "Check", decision="accept")
    accepted = date(2026, 9, 24)

    paused = clocks(service, case["id"])["promised"]
    assert paused["paused"] is True
    assert paused["last_day"] == nth_working_day(accepted, 10)

    # The expert review runs over the Mid-Autumn Festival and National Day, until Friday 9 October.
    clock.set(local(2026, 10, 9))
    complete(service, clerk, case["id"], "Review")

    lost = working_days_in(accepted, date(2026, 10, 9))
    assert lost == 5
    resumed = clocks(service, case["id"])
    assert resumed["promised"]["paused"] is False
    # 15 working days after 24 September count the make-up Saturday 10 October.
    assert resumed["promised"]["last_day"] == nth_working_day(accepted, 10 + lost) == date(2026, 10, 22)
    assert chinese_calendar.is_workday(date(2026, 10, 10))
    assert resumed["statutory"]["last_day"] == nth_working_day(accepted, 20 + lost)
    assert resumed["promised"]["days_left"] == working_days_in(date(2026, 10, 9), date(2026, 10, 22))
    kinds = clock_events(service, case["id"])
    assert kinds.count(("clock_paused", "promised")) == 1
    assert kinds.count(("clock_resumed", "statutory")) == 1
    resumed_events = {e["payload"]["clock"]: e["payload"] for e in service.case_trace(case["id"])
                      if e["kind"] == "clock_resumed"}
    assert resumed_events["promised"]["last_day"] == "2026-10-22"
    assert resumed_events["statutory"]["paused_from"] == local(2026, 9, 24, 11).isoformat()
    paused_event = next(e for e in service.case_trace(case["id"]) if e["kind"] == "clock_paused")
    assert paused_event["payload"]["reason"] == "expert_review"
    assert paused_event["element_id"] == "Review"


def test_paused_clock_moves_due_time(service, clerk, clock) -> None:
    clock.set(local(2025, 3, 3))
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    complete(service, clerk, case["id"], "Check", decision="accept")
    before = clocks(service, case["id"])["promised"]

    # Two weeks into the review, ten working days are not counted.
    clock.set(local(2025, 3, 17))

    during = clocks(service, case["id"])["promised"]
    assert during["paused"] is True
    assert during["days_left"] == before["days_left"] == 10
    assert during["last_day"] == nth_working_day(date(2025, 3, 3), 20)
    assert during["card"] == "none"


def test_pause_across_spring_festival_2026(service, clerk, clock) -> None:
    clock.set(local(2026, 2, 9))
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    complete(service, clerk, case["id"], "Check", decision="accept")

    clock.set(local(2026, 2, 24))
    complete(service, clerk, case["id"], "Review")

    # Of the days after 9 February up to 24 February, the Spring Festival leaves 10 to 13 February, the
    # make-up Saturday 14 February and the 24th.
    lost = working_days_in(date(2026, 2, 9), date(2026, 2, 24))
    assert lost == 6
    resumed = clocks(service, case["id"])
    assert resumed["promised"]["last_day"] == nth_working_day(date(2026, 2, 9), 10 + lost)
    # The make-up Saturday 28 February counts as well.
    assert date(2026, 2, 28) < resumed["promised"]["last_day"]
    assert resumed["statutory"]["last_day"] == nth_working_day(date(2026, 2, 9), 20 + lost)


def test_correction_loop_restarts_clock(service, clerk, clock) -> None:
    clock.set(local(2025, 9, 22))
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)

    # One notice lists every missing material; the applicant resubmits after National Day.
    clock.advance(timedelta(hours=2))
    complete(service, clerk, case["id"], "Check", decision="return")
    clock.set(local(2025, 10, 9))
    complete(service, clerk, case["id"], "Correct")
    clock.set(local(2025, 10, 10))
    complete(service, clerk, case["id"], "Check", decision="accept")
    accepted = clock.now()

    restarted = clocks(service, case["id"])
    assert restarted["statutory"]["started_at"] == accepted
    assert restarted["statutory"]["last_day"] == nth_working_day(date(2025, 10, 10), 20)
    # The make-up Saturday 11 October is the first working day counted.
    assert nth_working_day(date(2025, 10, 10), 1) == date(2025, 10, 11)
    assert restarted["promised"]["started_at"] == accepted
    events = [e for e in service.case_trace(case["id"]) if e["kind"] == "clock_restarted"]
    assert [(e["payload"]["clock"], e["element_id"]) for e in events] == [
        ("statutory", "Check"), ("promised", "Check"), ("statutory", "Check"), ("promised", "Check")]
    last_statutory = events[-2]["payload"]
    assert last_statutory["started_at"] == accepted.isoformat()
    assert last_statutory["last_day"] == nth_working_day(date(2025, 10, 10), 20).isoformat()
    assert events[0]["payload"]["previous_started_at"] == local(2025, 9, 22).isoformat()
    assert last_statutory["previous_started_at"] == events[0]["payload"]["started_at"]
    # The returned check and the resubmitted one each had their own step clock.
    steps = [c for c in clocks_of_case(service, case["id"]) if c["element_id"] == "Check"]
    assert len(steps) == 2
    assert service.verify(case["id"])[0].ok


def test_restart_during_open_pause_keeps_pause(service, clerk, clock) -> None:
    # A parallel branch keeps an expert review open while the acceptance restarts the clocks.
    service.deploy(definitions(process(
        "parallel_review",
        node("startEvent", "S"), node("parallelGateway", "Split"),
        user_task("Accept", extra="<liuhen:clockStart/>"),
        user_task("Test", extra='<liuhen:clockPause reason="testing"/>'),
        node("parallelGateway", "Join"), node("endEvent", "E"),
        flow("f1", "S", "Split"), flow("f2", "Split", "Accept"), flow("f3", "Split", "Test"),
        flow("f4", "Accept", "Join"), flow("f5", "Test", "Join"), flow("f6", "Join", "E"),
        extensions=power_item("PR", (20, "working_day"), None),
    )), "parallel.bpmn", DESIGNER)
    case = service.start_case("parallel_review", clerk)
    assert clocks(service, case["id"])["statutory"]["paused"] is True

    clock.advance(timedelta(days=1))
    complete(service, clerk, case["id"], "Accept")

    statutory = clocks(service, case["id"])["statutory"]
    assert statutory["started_at"] == clock.now()
    assert statutory["paused"] is True


# Time left on tasks.

def test_task_list_shows_urgency(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)

    [check] = service.list_tasks(clerk, case_id=case["id"])
    assert check["due_at"] == datetime(2026, 12, 8, 23, 59, 59, tzinfo=LOCAL_TZ)
    assert check["days_left"] == 5
    assert check["card"] == "none"

    clock.set(local(2026, 12, 7))
    [check] = service.list_tasks(clerk, case_id=case["id"])
    assert check["days_left"] == 1
    assert check["card"] == "yellow"

    complete(service, clerk, case["id"], "Check", decision="accept")
    # The review has no limit of its own, so it shows the case's most urgent clock, the promised one.
    [review] = service.list_tasks(clerk, case_id=case["id"])
    assert review["element_id"] == "Review"
    assert review["due_at"] == datetime(2026, 12, 21, 23, 59, 59, tzinfo=LOCAL_TZ)
    assert review["card"] == "none"

    finished = service.list_tasks(clerk, case_id=case["id"], status="completed")
    assert finished[0]["card"] is None
    assert finished[0]["days_left"] is None


def test_start_and_complete_replies_show_urgency(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)

    started = service.start_case("licence", clerk)
    [listed] = service.list_tasks(clerk, case_id=started["id"])
    [check] = started["tasks"]
    assert (check["card"], check["due_at"], check["days_left"]) == \
        (listed["card"], listed["due_at"], listed["days_left"]) == \
        ("none", datetime(2026, 12, 8, 23, 59, 59, tzinfo=LOCAL_TZ), 5)

    clock.set(local(2026, 12, 4))
    moved = complete(service, clerk, started["id"], "Check", decision="accept")
    [review] = moved["tasks"]
    [listed] = service.list_tasks(clerk, case_id=started["id"])
    assert review["element_id"] == "Review"
    assert (review["card"], review["due_at"], review["days_left"]) == \
        (listed["card"], listed["due_at"], listed["days_left"])
    assert review["due_at"] is not None
    for shown in (service.get_case(started["id"])["tasks"][0], service.get_task(review["id"])):
        assert (shown["card"], shown["due_at"], shown["days_left"]) == \
            (listed["card"], listed["due_at"], listed["days_left"])


def test_task_without_clock_has_no_urgency(service, clerk) -> None:
    service.deploy(definitions(process("bare", node("startEvent", "S"), user_task("A"), node("endEvent", "E"),
                                       flow("f1", "S", "A"), flow("f2", "A", "E"))), "bare.bpmn", DESIGNER)
    case = service.start_case("bare", clerk)

    [task] = service.list_tasks(clerk, case_id=case["id"])
    assert (task["card"], task["due_at"], task["days_left"]) == (None, None, None)


# The calendar.

def test_import_recomputes_provisional_clock(service, clerk, clock) -> None:
    service.deploy(licence("long", statutory=None, promised=(60, "working_day")), "long.bpmn", DESIGNER)
    case = service.start_case("long", clerk)
    provisional = clocks(service, case["id"])["promised"]
    assert provisional["provisional"] is True
    assert provisional["last_day"] == date(MISSING_YEAR, 2, 23)

    holidays = "".join(f"{MISSING_YEAR}-02-{day:02d},holiday,春节\n" for day in range(8, 13))
    import_days(service, f"date,type,name\n{holidays}".encode(), ADMIN)

    official = clocks(service, case["id"])["promised"]
    assert official["provisional"] is False
    assert official["last_day"] == date(MISSING_YEAR, 3, 2)
    with service.db.read() as conn:
        row = conn.execute(select(case_clocks).where(case_clocks.c.case_id == case["id"],
                                                     case_clocks.c.clock == "promised")).one()
    assert row.last_day == date(MISSING_YEAR, 3, 2)
    assert row.provisional is False


def test_single_day_moves_clock(service, clerk) -> None:
    service.deploy(licence("long", statutory=None, promised=(60, "working_day")), "long.bpmn", DESIGNER)
    case = service.start_case("long", clerk)

    set_day(service, date(MISSING_YEAR, 2, 1), False, "调整", ADMIN)

    moved = clocks(service, case["id"])["promised"]
    assert moved["last_day"] == date(MISSING_YEAR, 2, 24)
    # One entry does not make the year official.
    assert moved["provisional"] is True


def test_calendar_leaves_stopped_clocks(service, clerk, clock) -> None:
    service.deploy(licence("long", statutory=None, promised=(60, "working_day")), "long.bpmn", DESIGNER)
    case = service.start_case("long", clerk)
    clock.advance(timedelta(hours=1))
    service.cancel_case(case["id"], ADMIN, "申请人撤回申请")

    import_days(service, f"{MISSING_YEAR}-02-08,holiday,春节\n".encode(), ADMIN)

    stopped = clocks(service, case["id"])["promised"]
    assert stopped["last_day"] == date(MISSING_YEAR, 2, 23)
    assert stopped["provisional"] is True


# Robustness.

def test_broken_clock_does_not_block_step(service, clerk) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    # A limit of 100,000 working days is past what the deadline arithmetic counts.
    with service.db.write() as conn:
        conn.execute(update(case_clocks).where(case_clocks.c.case_id == case["id"]).values(amount=100_000))

    complete(service, clerk, case["id"], "Check", decision="accept")

    assert service.get_case(case["id"])["tasks"][0]["element_id"] == "Review"
    assert service.verify(case["id"])[0].ok


def test_clock_rows_survive_restart_of_service(service, settings, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    other = Liuhen(settings, clock=clock)
    try:
        complete(other, clerk, case["id"], "Check", decision="accept")
        assert clocks(other, case["id"])["promised"]["paused"] is True
    finally:
        other.db.dispose()
    assert clocks(service, case["id"])["promised"]["paused"] is True


def test_clock_events_in_verified_trace(service, clerk) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case = service.start_case("licence", clerk)
    complete(service, clerk, case["id"], "Check", decision="accept")

    with service.db.read() as conn:
        kinds = [row.kind for row in conn.execute(select(trace_events.c.kind)
                                                  .where(trace_events.c.case_id == case["id"]))]
    assert kinds.count("clock_started") == 3
    assert kinds.count("clock_restarted") == 2
    assert kinds.count("clock_paused") == 2
    assert service.verify(case["id"])[0].ok


# The extension elements.

@pytest.mark.parametrize(("extra", "kind", "expected"), [
    ('<liuhen:clockPause reason="lunch"/>', "userTask", "invalid value 'lunch'"),
    ("<liuhen:clockPause/>", "userTask", "invalid value ''"),
    ('<liuhen:clockPause reason="hearing"/>', "task", "put it on a user task"),
    ("<liuhen:clockStart/>", "intermediateThrowEvent", "put it on a user task"),
])
def test_clock_elements_validated(service, extra, kind, expected) -> None:
    content = definitions(process(
        "bad", node("startEvent", "S"),
        node(kind, "Node", "节点", f"<bpmn:extensionElements>{extra}</bpmn:extensionElements>"),
        node("endEvent", "E"), flow("f1", "S", "Node"), flow("f2", "Node", "E"),
    ))

    with pytest.raises(DefinitionError, match=expected) as caught:
        service.validate(content, "bad.bpmn")
    assert caught.value.code == "extension_invalid_value"


def test_clock_elements_parsed(service) -> None:
    parsed = service.validate(licence(), "licence.bpmn")

    assert parsed.nodes["Review"].extensions["clock_pause"] == {"reason": "expert_review"}
    assert parsed.nodes["Check"].extensions["clock_start"] is True
    assert "clock_pause" not in parsed.nodes["Decide"].extensions


def test_moved_case_stops_old_clocks_at_end(service, clerk) -> None:
    from engine import interventions

    service.deploy(licence(), "licence.bpmn", DESIGNER)
    # Version 2 keeps every step but declares no limits, so its own plan starts and stops no clock.
    service.deploy(definitions(process(
        "licence",
        lanes({"受理窗口": ["S", "Check", "G", "Correct"], "专家组": ["Review"], "局领导": ["Decide", "E"]}),
        node("startEvent", "S"), user_task("Check", "受理审查", extra=DECISION),
        node("exclusiveGateway", "G", default="Flow_accepted"), user_task("Correct", "补正材料"),
        user_task("Review", "专家评审"), user_task("Decide", "作出决定"), node("endEvent", "E"),
        flow("f1", "S", "Check"), flow("f2", "Check", "G"),
        flow("Flow_returned", "G", "Correct", 'decision == "return"'), flow("f3", "Correct", "Check"),
        flow("Flow_accepted", "G", "Review"), flow("f4", "Review", "Decide"), flow("f5", "Decide", "E"),
    )), "licence-v2.bpmn", DESIGNER)
    case = service.start_case("licence", clerk, version=1)
    interventions.migrate_case(service, case["id"], ADMIN, 2, "新版流程取消期限")

    complete(service, clerk, case["id"], "Check", decision="accept")
    complete(service, clerk, case["id"], "Review")
    final = complete(service, clerk, case["id"], "Decide")

    assert final["status"] == "completed"
    assert sorted(clocks(service, case["id"])) == ["promised", "statutory", "step:Check"]
    assert all(c["stopped_at"] is not None for c in clocks(service, case["id"]).values())
