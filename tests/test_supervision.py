"""Yellow and red cards, supervision notices (督办) and the supervision board, raised by real workers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from api.cli import main
from engine.db import cards, risk_events, supervision_notices
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.service import Liuhen
from engine.supervision import BoardFilter, answer_notice, board, check_deadlines, list_notices
from engine.users import Actor
from engine.worker import WorkerState, run_round
from tests.bpmn_builder import definitions, flow, node, process, user_task
from tests.conftest import DESIGNER, LiveServer, add_user
from tests.test_clocks import complete, licence, local, open_task, power_item
from tests.test_engine_flows import TIMER_BOUNDARY

AUDITOR = Actor("auditor", "纪检监察员", frozenset({"auditor"}))


@pytest.fixture
def clerk(service: Liuhen) -> Actor:
    return add_user(service, "clerk", ["staff"], ["受理窗口", "专家组"])


@pytest.fixture
def director(service: Liuhen) -> Actor:
    return add_user(service, "director", ["staff"], ["局领导"])


def rounds(service: Liuhen, count: int = 2) -> None:
    state = WorkerState(checkpoint_every=None)
    for _ in range(count):
        run_round(service, state)


def raised(service: Liuhen, case_id: int) -> list[tuple[str, str]]:
    """Cards raised in a case's trace as (clock kind, colour), step clocks as step:<element id>."""
    result = []
    for event in service.case_trace(case_id):
        if event["kind"] == "card_raised":
            clock = event["payload"]["clock"]
            name = f"step:{event['element_id']}" if clock.startswith("step:") else clock
            result.append((name, event["payload"]["colour"]))
    return result


def risk_levels(service: Liuhen, case_id: int) -> list[tuple[str, str]]:
    with service.db.read() as conn:
        return [(row.kind, row.level) for row in conn.execute(
            select(risk_events.c.kind, risk_events.c.level).where(risk_events.c.case_id == case_id)
            .order_by(risk_events.c.id))]


# Cards.

def test_worker_raises_each_card_once(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]

    # Tuesday 1 December 2026: the check has 5 working days, the promised limit 10 and the statutory 20.
    clock.set(local(2026, 12, 4))
    rounds(service)
    assert raised(service, case_id) == []

    clock.set(local(2026, 12, 7))
    rounds(service)
    assert raised(service, case_id) == [("step:Check", "yellow")]

    clock.set(local(2026, 12, 9))
    rounds(service)
    assert raised(service, case_id)[1:] == [("step:Check", "red")]

    clock.set(local(2026, 12, 11))
    rounds(service)
    assert raised(service, case_id)[2:] == [("promised", "yellow")]

    clock.set(local(2026, 12, 16))
    rounds(service)
    assert raised(service, case_id)[3:] == [("promised", "red")]

    # The statutory limit ends on 29 December; a worker that only looks again after it raises the red card alone.
    clock.set(local(2026, 12, 30))
    rounds(service, 3)
    assert raised(service, case_id)[4:] == [("statutory", "red")]

    assert risk_levels(service, case_id) == [("deadline_exceeded", "medium"), ("deadline_exceeded", "medium"),
                                             ("deadline_exceeded", "high")]
    with service.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(cards)).scalar_one() == 5
        assert conn.execute(select(func.count()).select_from(supervision_notices)).scalar_one() == 3
    card = next(e for e in service.case_trace(case_id) if e["kind"] == "card_raised")
    assert card["payload"]["days_left"] == 1
    assert card["actor"] == "system"
    assert service.verify(case_id)[0].ok


def test_step_card_while_case_on_time(service, clerk, director, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]
    complete(service, clerk, case_id, "Check", decision="accept")
    complete(service, clerk, case_id, "Review")
    service.claim(open_task(service, case_id, "Decide"), director)

    # The decision had 2 working days, so it is overdue on Friday while the case has 7 left.
    clock.set(local(2026, 12, 4))
    cards_raised = check_deadlines(service)

    assert [(card.clock.startswith("step:"), card.colour) for card in cards_raised] == [(True, "red")]
    assert raised(service, case_id) == [("step:Decide", "red")]
    [notice] = list_notices(service, director)
    assert notice["holder"] == "director"
    assert notice["post"] == "局领导"
    assert notice["leader"] == "分管副局长"
    assert notice["element_id"] == "Decide"
    assert notice["status"] == "open"
    with service.db.read() as conn:
        risk = conn.execute(select(risk_events)).one()
    assert (risk.kind, risk.level, risk.checkpoint_id, risk.post) == ("deadline_exceeded", "medium",
                                                                      "RC-licence-decide", "局领导")
    assert risk.details["notice_id"] == notice["id"]
    [entry] = board(service, AUDITOR)
    assert entry["card"] == "red"
    assert {c["kind"]: c["card"] for c in entry["clocks"]} == {"statutory": "none", "promised": "none",
                                                              "step": "red"}
    kinds = [event["kind"] for event in service.case_trace(case_id)]
    assert kinds[-3:] == ["card_raised", "supervision_notice_opened", "risk_event"]


def test_notice_to_post_and_responsible_subject(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]

    clock.set(local(2026, 12, 9))
    check_deadlines(service)

    [notice] = list_notices(service, clerk)
    assert notice["holder"] is None
    assert notice["post"] == "受理窗口"
    # The check has no risk checkpoint with a supervising leader, so the power item's responsible subject leads.
    assert notice["leader"] == "局长"
    assert notice["case_id"] == case_id
    assert list_notices(service, add_user(service, "other", ["staff"], ["局领导"])) == []


def test_case_clock_notice_goes_to_current_step(service, clerk, director, clock) -> None:
    service.deploy(licence(statutory=(3, "working_day"), promised=None), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]
    complete(service, clerk, case_id, "Check", decision="accept")
    complete(service, clerk, case_id, "Review")
    service.claim(open_task(service, case_id, "Decide"), director)

    clock.set(local(2026, 12, 7))
    check_deadlines(service)

    notices = {n["clock"].split(":")[0]: n for n in list_notices(service, AUDITOR, scope="all")}
    assert notices["statutory"]["holder"] == "director"
    assert notices["statutory"]["element_id"] == "Decide"
    assert ("deadline_exceeded", "high") in risk_levels(service, case_id)


def test_paused_clock_raises_no_card(service, clerk, clock) -> None:
    service.deploy(licence(statutory=None), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]
    complete(service, clerk, case_id, "Check", decision="accept")

    # The expert review outlasts the promised limit, which does not run meanwhile.
    clock.set(local(2026, 12, 30))
    assert check_deadlines(service) == []

    # Resumed, the promised limit runs 20 more working days; only the decision's own clock turns yellow.
    complete(service, clerk, case_id, "Review")
    clock.advance(timedelta(days=1))
    check_deadlines(service)
    assert raised(service, case_id) == [("step:Decide", "yellow")]


def test_pause_after_due_time_still_red(service, clerk, clock) -> None:
    service.deploy(definitions(process(
        "late_review",
        node("startEvent", "S"), user_task("Prepare"),
        user_task("Review", extra='<liuhen:clockPause reason="appraisal"/>'), node("endEvent", "E"),
        flow("f1", "S", "Prepare"), flow("f2", "Prepare", "Review"), flow("f3", "Review", "E"),
        extensions=power_item("LATE", None, (2, "working_day")),
    )), "late.bpmn", DESIGNER)
    case_id = service.start_case("late_review", clerk)["id"]

    # The appraisal begins on Monday 7 December, after the limit ended on Thursday 3 December, so it
    # extends nothing and the clock is overdue although paused.
    clock.set(local(2026, 12, 7))
    complete(service, clerk, case_id, "Prepare")
    clock.set(local(2026, 12, 8))
    cards_raised = check_deadlines(service)

    assert [(card.case_id, card.colour) for card in cards_raised] == [(case_id, "red")]
    assert raised(service, case_id) == [("promised", "red")]
    assert check_deadlines(service) == []


def test_pause_after_yellow_time_still_yellow(service, clerk, clock) -> None:
    service.deploy(definitions(process(
        "late_review",
        node("startEvent", "S"), user_task("Prepare"),
        user_task("Review", extra='<liuhen:clockPause reason="hearing"/>'), node("endEvent", "E"),
        flow("f1", "S", "Prepare"), flow("f2", "Prepare", "Review"), flow("f3", "Review", "E"),
        extensions=power_item("LATE", None, (10, "working_day")),
    )), "late.bpmn", DESIGNER)
    case_id = service.start_case("late_review", clerk)["id"]

    # Two working days are left on Friday 11 December, when the hearing begins before any worker ran.
    clock.set(local(2026, 12, 11))
    complete(service, clerk, case_id, "Prepare")
    clock.set(local(2026, 12, 14))
    check_deadlines(service)

    assert raised(service, case_id) == [("promised", "yellow")]
    clock.set(local(2026, 12, 31))
    assert check_deadlines(service) == []


def test_ended_case_raises_nothing(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]
    complete(service, clerk, case_id, "Check", decision="accept")
    complete(service, clerk, case_id, "Review")
    complete(service, add_user(service, "director", ["staff"], ["局领导"]), case_id, "Decide")

    clock.set(local(2027, 3, 1))
    rounds(service)

    assert raised(service, case_id) == []


# Several workers.

def test_two_workers_raise_each_card_once(service, settings, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    service.deploy(TIMER_BOUNDARY, "timer.bpmn", DESIGNER)
    licences = [service.start_case("licence", clerk)["id"] for _ in range(6)]
    timers = [service.start_case("timer_boundary", clerk)["id"] for _ in range(6)]
    other = Liuhen(settings, clock=clock)
    workers = {"a": (service, WorkerState(checkpoint_every=None)), "b": (other, WorkerState(checkpoint_every=None))}
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def work(name: str) -> None:
        liuhen, state = workers[name]
        try:
            for _ in range(3):
                barrier.wait(timeout=120)
                run_round(liuhen, state)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            barrier.abort()

    try:
        # Monday 7 December: the checks turn yellow and the 48-hour timers are due.
        for moment in (local(2026, 12, 7), local(2026, 12, 30)):
            clock.set(moment)
            threads = [threading.Thread(target=work, args=(name,)) for name in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
            assert failures == []
    finally:
        other.db.dispose()

    for case_id in licences:
        assert Counter(raised(service, case_id)) == Counter({
            ("step:Check", "yellow"): 1, ("step:Check", "red"): 1, ("promised", "red"): 1, ("statutory", "red"): 1})
        assert len(list_notices(service, AUDITOR, scope="all", case_id=case_id)) == 3
        assert len(risk_levels(service, case_id)) == 3
        assert service.verify(case_id)[0].ok
    for case_id in timers:
        fired = [e for e in service.case_trace(case_id) if e["kind"] == "timer_fired"]
        assert len(fired) == 1, case_id
        assert service.get_case(case_id)["end_element_id"] == "Withdrawn"
    total_raised = workers["a"][1].cards_raised + workers["b"][1].cards_raised
    assert total_raised == 4 * len(licences)
    assert sorted(workers["a"][1].fired + workers["b"][1].fired) == timers


# Notices.

def test_holder_answers_notice(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]
    clock.set(local(2026, 12, 9))
    check_deadlines(service)
    [notice] = list_notices(service, clerk)

    with pytest.raises(InvalidInput, match="at least 4 characters"):
        answer_notice(service, notice["id"], clerk, "  好 ")
    outsider = add_user(service, "outsider", ["staff"], ["局领导"])
    with pytest.raises(Forbidden, match=f"Supervision notice {notice['id']} is addressed to 受理窗口"):
        answer_notice(service, notice["id"], outsider, "材料已补齐，今日办结。")
    answered = answer_notice(service, notice["id"], clerk, "申请人补正材料延误，今日办结。")

    assert answered["status"] == "answered"
    assert answered["answered_by"] == "clerk"
    assert answered["answer"] == "申请人补正材料延误，今日办结。"
    assert answered["answered_at"] == clock.now()
    with pytest.raises(Conflict, match="already answered by clerk"):
        answer_notice(service, notice["id"], clerk, "再次答复督办事项。")
    assert list_notices(service, clerk) == []
    assert [n["id"] for n in list_notices(service, clerk, status="answered")] == [notice["id"]]
    event = service.case_trace(case_id)[-1]
    assert event["kind"] == "supervision_notice_answered"
    assert event["actor"] == "clerk"
    assert event["payload"] == {"notice_id": notice["id"], "answer": "申请人补正材料延误，今日办结。"}
    assert service.verify(case_id)[0].ok


def test_notice_listing_scopes(service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    service.start_case("licence", clerk)
    clock.set(local(2026, 12, 9))
    check_deadlines(service)

    assert len(list_notices(service, AUDITOR, scope="all")) == 1
    with pytest.raises(Forbidden):
        list_notices(service, clerk, scope="all")
    with pytest.raises(InvalidInput, match="Notice scope 'everyone' is unknown"):
        list_notices(service, AUDITOR, scope="everyone")
    with pytest.raises(InvalidInput, match="Notice status 'closed' is unknown"):
        list_notices(service, AUDITOR, scope="all", status="closed")


# The board.

@pytest.fixture
def board_cases(service: Liuhen, clerk: Actor, director: Actor, clock) -> dict[str, int]:
    """Three running cases in two departments, on 9 December 2026."""
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    service.deploy(licence("permit", statutory=(60, "working_day"), promised=(40, "working_day"),
                           handling_body="某区教育局"), "permit.bpmn", DESIGNER)
    late = service.start_case("licence", clerk, title="逾期")["id"]
    deciding = service.start_case("licence", clerk, title="决定中")["id"]
    complete(service, clerk, deciding, "Check", decision="accept")
    complete(service, clerk, deciding, "Review")
    service.claim(open_task(service, deciding, "Decide"), director)
    calm = service.start_case("permit", clerk, title="正常")["id"]
    clock.set(local(2026, 12, 2))
    complete(service, clerk, calm, "Check", decision="accept")
    clock.set(local(2026, 12, 3))
    done = service.start_case("licence", clerk)["id"]
    service.cancel_case(done, Actor("admin", "管理员", frozenset({"admin"})), "重复申请，予以撤销")
    clock.set(local(2026, 12, 9))
    return {"late": late, "deciding": deciding, "calm": calm}


def test_board_lists_running_cases(service, board_cases) -> None:
    entries = board(service, AUDITOR)

    assert [e["case_id"] for e in entries] == [board_cases["deciding"], board_cases["late"], board_cases["calm"]]
    deciding, late, calm = entries
    assert (deciding["card"], late["card"], calm["card"]) == ("red", "red", "none")
    assert late["department"] == "某市教育局"
    assert calm["department"] == "某区教育局"
    assert late["power_item_code"] == "LICENCE"
    assert late["steps"] == [{"task_id": late["steps"][0]["task_id"], "element_id": "Check", "name": "受理审查",
                              "post": "受理窗口", "assignee": None, "status": "ready", "risk_level": None}]
    assert deciding["steps"][0]["assignee"] == "director"
    assert deciding["risk_level"] == "high"
    assert calm["risk_level"] == "low"
    promised = next(c for c in late["clocks"] if c["kind"] == "promised")
    assert promised["days_left"] == 4
    assert promised["provisional"] is False
    assert late["days_left"] == -1


@pytest.mark.parametrize(("filters", "expected"), [
    ({"department": "某区教育局"}, ["calm"]),
    ({"process_id": "licence"}, ["deciding", "late"]),
    ({"power_item": "PERMIT"}, ["calm"]),
    ({"risk_level": "high"}, ["deciding"]),
    ({"risk_level": "low"}, ["calm"]),
    ({"risk_level": "medium"}, []),
    ({"card": "red"}, ["deciding", "late"]),
    ({"card": "none"}, ["calm"]),
    ({"card": "yellow"}, []),
    ({"department": "某市教育局", "risk_level": "high"}, ["deciding"]),
    ({"limit": 1}, ["deciding"]),
])
def test_board_filters(service, board_cases, filters, expected) -> None:
    entries = board(service, AUDITOR, BoardFilter(**filters))

    assert [e["case_id"] for e in entries] == [board_cases[name] for name in expected]


@pytest.mark.parametrize(("filters", "quoted"), [
    ({"risk_level": "critical"}, "Risk level 'critical' is unknown"),
    ({"card": "green"}, "Card 'green' is unknown"),
    ({"limit": 0}, "0 is out of range"),
])
def test_board_bad_filter_names_value(filters, quoted) -> None:
    with pytest.raises(InvalidInput, match=quoted):
        BoardFilter(**filters)


def test_board_needs_auditor(service, clerk) -> None:
    with pytest.raises(Forbidden):
        board(service, clerk)


# The HTTP API and the command line.

@pytest.fixture
def api(service: Liuhen) -> Iterator[httpx.Client]:
    add_user(service, "auditor", ["auditor"])
    add_user(service, "admin", ["admin"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"}


def test_http_board_and_clocks(api, service, board_cases) -> None:
    auditor = login(api, "auditor")

    response = api.get("/api/supervision/board", params={"card": "red", "process_id": "licence"}, headers=auditor)
    assert response.status_code == 200, response.text
    assert [e["case_id"] for e in response.json()] == [board_cases["deciding"], board_cases["late"]]
    assert api.get("/api/supervision/board", headers=login(api, "clerk")).status_code == 403
    bad = api.get("/api/supervision/board", params={"risk_level": "critical"}, headers=auditor)
    assert bad.status_code == 422
    assert "Risk level 'critical' is unknown" in bad.text

    clocks = api.get(f"/api/cases/{board_cases['late']}/clocks", headers=login(api, "clerk"))
    assert clocks.status_code == 200
    by_kind = {c["kind"]: c for c in clocks.json()}
    assert by_kind["statutory"]["last_day"] == "2026-12-29"
    assert by_kind["step"]["card"] == "red"
    assert api.get("/api/cases/9999/clocks", headers=auditor).status_code == 404

    tasks = api.get("/api/tasks", params={"case_id": board_cases["late"]}, headers=login(api, "clerk")).json()
    assert [(t["card"], t["days_left"]) for t in tasks] == [("red", -1)]


def test_http_notices_and_answer(api, service, clerk, clock) -> None:
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk)["id"]
    clock.set(local(2026, 12, 9))
    admin = login(api, "admin")

    checked = api.post("/api/supervision/check", headers=admin)
    assert checked.status_code == 200, checked.text
    assert [(card["colour"], card["notice_id"] is not None) for card in checked.json()] == [("red", True)]
    assert api.post("/api/supervision/check", headers=admin).json() == []
    assert api.post("/api/supervision/check", headers=login(api, "clerk")).status_code == 403

    mine = api.get("/api/supervision/notices", headers=login(api, "clerk")).json()
    assert [(n["case_id"], n["post"], n["status"]) for n in mine] == [(case_id, "受理窗口", "open")]
    everything = api.get("/api/supervision/notices", params={"scope": "all"}, headers=login(api, "auditor"))
    assert len(everything.json()) == 1
    assert api.get("/api/supervision/notices", params={"scope": "all"},
                   headers=login(api, "clerk")).status_code == 403

    path = f"/api/supervision/notices/{mine[0]['id']}/answer"
    assert api.post(path, json={"answer": "好"}, headers=login(api, "clerk")).status_code == 422
    answered = api.post(path, json={"answer": "已电话联系申请人，明日办结。"}, headers=login(api, "clerk"))
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "answered"
    again = api.post(path, json={"answer": "已电话联系申请人，明日办结。"}, headers=login(api, "clerk"))
    assert again.status_code == 409
    assert api.post("/api/supervision/notices/9999/answer", json={"answer": "无此督办事项"},
                    headers=admin).status_code == 404


def run_cli(monkeypatch, capsys, service: Liuhen, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.resolved_database_url())
    code = main(["--lang", "en", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_check_board_notices(service, clerk, clock, monkeypatch, capsys) -> None:
    # The command line runs on the real clock, long after this case's limits ended.
    clock.set(local(2025, 3, 3))
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    case_id = service.start_case("licence", clerk, title="旧申请")["id"]

    code, out, _err = run_cli(monkeypatch, capsys, service, "check-deadlines")
    assert code == 0
    assert "Raised cards: 0 yellow, 3 red." in out
    code, out, _err = run_cli(monkeypatch, capsys, service, "check-deadlines")
    assert "Raised cards: 0 yellow, 0 red." in out

    code, out, _err = run_cli(monkeypatch, capsys, service, "board", "--card", "red")
    assert code == 0
    assert f"Case {case_id}  red card  licence  旧申请  department: 某市教育局  risk: -" in out
    assert "statutory time limit: due 2025-03-31 23:59" in out
    assert "Step 受理审查 [Check]  post: 受理窗口  holder: -" in out
    code, out, _err = run_cli(monkeypatch, capsys, service, "board", "--card", "yellow")
    assert "No running cases match." in out

    code, out, _err = run_cli(monkeypatch, capsys, service, "notices")
    assert code == 0
    assert out.count("Notice ") == 3
    assert "leader: 局长  open" in out
    code, out, _err = run_cli(monkeypatch, capsys, service, "notices", "--as", "clerk", "--status", "answered")
    assert "No supervision notices." in out
