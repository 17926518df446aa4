"""Replaying recorded cases on a fresh engine, and looking at a case as it stood after one event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from api.app import create_app
from api.demo import load_json, run_scenario, scenario_files, seed_users
from engine import interventions
from engine.clock import ManualClock
from engine.db import definitions
from engine.errors import InvalidInput, NotFound
from engine.replay import ReplayDiverged, replay_case, state_at
from engine.replay_compare import compare_step
from engine.service import Liuhen
from tests.bpmn_builder import definitions as bpmn_definitions
from tests.bpmn_builder import flow, lanes, node, process, sequence, user_task
from tests.conftest import ADMIN, DESIGNER, PROCESSES, ROOT, LiveServer, add_user

SHIPPED = sorted(path.stem for path in PROCESSES.glob("*.bpmn"))


def deploy_shipped(service: Liuhen) -> None:
    seed_users(service, PROCESSES / "demo-users.json")
    for path in sorted(PROCESSES.glob("*.bpmn")):
        service.deploy(path.read_bytes(), path.name, DESIGNER)


def run_demo(service: Liuhen, clock: ManualClock, process_id: str | None = None,
             scenario: str | None = None) -> dict[str, int]:
    """Run the shipped scenarios (all, or one process or scenario) and return their case ids by name."""
    case_ids = {}
    for path in scenario_files(PROCESSES):
        document = load_json(path)
        if process_id is not None and document["process_id"] != process_id:
            continue
        for entry in document["scenarios"]:
            if scenario is not None and entry["name"] != scenario:
                continue
            result = run_scenario(service, clock, document["process_id"], entry)
            assert result.ok, result
            case_ids[entry["name"]] = result.case_id
    return case_ids


def event(service: Liuhen, case_id: int, kind: str, element_id: str | None = None, nth: int = 0) -> dict[str, Any]:
    matches = [e for e in service.case_trace(case_id)
               if e["kind"] == kind and (element_id is None or e["element_id"] == element_id)]
    return matches[nth]


def alter_definition(service: Liuhen, process_id: str, old: bytes, new: bytes) -> None:
    """Change the deployed bytes of a process in place, as someone with database access could."""
    with service.db.write() as conn:
        content_hash = conn.execute(select(definitions.c.content_hash)
                                    .where(definitions.c.process_id == process_id)).scalar_one()
        content = bytes(conn.execute(text("SELECT content FROM definition_files WHERE content_hash = :h"),
                                     {"h": content_hash}).scalar_one())
        assert old in content
        conn.execute(text("UPDATE definition_files SET content = :c WHERE content_hash = :h"),
                     {"c": content.replace(old, new), "h": content_hash})


def tamper_trace(service: Liuhen, statement: str, **params: Any) -> None:
    """Run SQL on the trace as an insider would, switching off the append-only trigger first."""
    with service.db.write() as conn:
        if service.db.is_sqlite:
            conn.execute(text("DROP TRIGGER IF EXISTS trace_events_no_update"))
        else:
            conn.execute(text("ALTER TABLE trace_events DISABLE TRIGGER trace_events_append_only"))
        conn.execute(text(statement), params)


# Shipped flowcharts

def test_every_demo_case_replays_without_divergence(service, clock) -> None:
    deploy_shipped(service)
    case_ids = run_demo(service, clock)

    replayed_processes = set()
    for name, case_id in case_ids.items():
        report = replay_case(service, case_id)
        assert report.divergence is None, f"{name}: {report.divergence}"
        assert report.status == "consistent"
        assert report.checked == report.events == len(service.case_trace(case_id))
        replayed_processes.add(report.process_id)

    assert replayed_processes == set(SHIPPED)
    timer_case = case_ids["withdrawn_no_resubmission"]
    assert event(service, timer_case, "timer_fired")["element_id"] == "Event_no_resubmission"


def test_altered_definition_fails_hash_check(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]
    alter_definition(service, "procurement", b"budget_amount &gt; 50000", b"budget_amount &gt; 5000")

    report = replay_case(service, case_id)

    assert report.status == "diverged"
    assert report.divergence.kind == "definition_altered"
    assert report.divergence.seq is None
    assert report.steps == 0
    message = report.divergence.message.render("en")
    assert "procurement version 1" in message
    assert "no longer matches its content hash" in message


def test_altered_condition_diverges_at_gateway(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]
    decision = event(service, case_id, "gateway_decision", "Gateway_collective")
    alter_definition(service, "procurement", b"budget_amount &gt; 50000", b"budget_amount &gt; 5000")

    report = replay_case(service, case_id, check_definition_hash=False)

    divergence = report.divergence
    assert divergence.kind == "event_mismatch"
    assert divergence.seq == decision["seq"]
    assert divergence.expected["taken"][0]["target"] == "Task_procurement_plan"
    assert divergence.actual["taken"][0]["target"] == "Task_collective_decision"
    assert divergence.actual["taken"][0]["condition"] == "budget_amount > 5000"
    assert divergence.message.render("en").startswith(f"Event {decision['seq']}: the trace records that gateway")
    assert f"事件 {decision['seq']}" in divergence.message.render("zh_CN")


def test_altered_condition_text_alone_is_reported(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "collective_rejected")["collective_rejected"]
    decision = event(service, case_id, "gateway_decision", "Gateway_collective")
    alter_definition(service, "procurement", b"budget_amount &gt; 50000", b"budget_amount &gt;= 50001")

    report = replay_case(service, case_id, check_definition_hash=False)

    assert report.divergence.seq == decision["seq"]
    assert "budget_amount >= 50001" in report.divergence.message.render("en")


def test_broken_trace_is_reported_before_replaying(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "need_rejected")["need_rejected"]
    tamper_trace(service, "UPDATE trace_events SET actor = 'forger' WHERE stream = :s AND seq = 4",
                 s=f"case:{case_id}")

    report = replay_case(service, case_id)

    assert report.divergence.kind == "trace_broken"
    assert report.divergence.seq == 4
    assert "failed verification" in report.divergence.message.render("en")


def test_edited_case_data_column_is_reported(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "need_rejected")["need_rejected"]
    stored = service.get_case(case_id)["data"]
    with service.db.write() as conn:
        conn.execute(text("UPDATE cases SET data = :d WHERE id = :id"),
                     {"d": json.dumps({**stored, "budget_amount": 1200}), "id": case_id})

    report = replay_case(service, case_id)

    assert report.divergence.kind == "data_mismatch"
    assert report.divergence.seq == len(service.case_trace(case_id))
    message = report.divergence.message.render("en")
    assert "field budget_amount" in message
    assert "holds 1200" in message
    assert "computes 12000" in message


# Engine shapes beyond the shipped flowcharts

PARALLEL = bpmn_definitions(process(
    "parallel",
    node("startEvent", "S"), node("parallelGateway", "Split"), user_task("A", fields=[("a", "integer")]),
    user_task("B", fields=[("b", "integer")]), node("parallelGateway", "Join"), user_task("C"), node("endEvent", "E"),
    flow("f1", "S", "Split"), flow("f2", "Split", "A"), flow("f3", "Split", "B"), flow("f4", "A", "Join"),
    flow("f5", "B", "Join"), flow("f6", "Join", "C"), flow("f7", "C", "E"),
))

REWORK = bpmn_definitions(process(
    "rework",
    node("startEvent", "S"), user_task("Submit", fields=[("attempt", "integer")]),
    user_task("Review", fields=[("ok", "boolean")]), node("exclusiveGateway", "Check", default="f_back"),
    node("endEvent", "E"),
    flow("f1", "S", "Submit"), flow("f2", "Submit", "Review"), flow("f3", "Review", "Check"),
    flow("f_ok", "Check", "E", "ok"), flow("f_back", "Check", "Submit"),
))

SUBPROCESS_AND_TIMER = bpmn_definitions(process(
    "nested",
    node("startEvent", "S"),
    node("subProcess", "Sub", body="".join([
        node("startEvent", "SubStart"), user_task("Inner"), node("endEvent", "SubEnd"),
        flow("s1", "SubStart", "Inner"), flow("s2", "Inner", "SubEnd"),
    ])),
    node("intermediateCatchEvent", "Wait", body="<bpmn:timerEventDefinition><bpmn:timeDuration>PT2H"
                                                "</bpmn:timeDuration></bpmn:timerEventDefinition>"),
    user_task("After"), node("endEvent", "E"),
    flow("f1", "S", "Sub"), flow("f2", "Sub", "Wait"), flow("f3", "Wait", "After"), flow("f4", "After", "E"),
))


REMINDER = bpmn_definitions(process(
    "reminder",
    node("startEvent", "S"), user_task("Work"),
    node("boundaryEvent", "Remind", attachedToRef="Work", cancelActivity="false",
         body="<bpmn:timerEventDefinition><bpmn:timeCycle>R3/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition>"),
    user_task("Chase", fields=[("note", "string")]), node("endEvent", "E"), node("endEvent", "E_chased"),
    flow("f1", "S", "Work"), flow("f2", "Work", "E"), flow("f3", "Remind", "Chase"), flow("f4", "Chase", "E_chased"),
))


@pytest.fixture
def staff(service: Liuhen):
    return add_user(service, "staff", ["staff"])


def complete(service: Liuhen, actor, case_id: int, element_id: str, data: dict | None = None) -> dict:
    task = next(t for t in service.get_case(case_id)["tasks"] if t["element_id"] == element_id)
    return service.complete(task["id"], actor, data or {})


def test_parallel_branches_replay_in_recorded_order(service, staff, clock) -> None:
    service.deploy(PARALLEL, "parallel.bpmn", DESIGNER)
    case = service.start_case("parallel", staff)
    clock.advance(timedelta(minutes=3))
    complete(service, staff, case["id"], "B", {"b": 2})
    clock.advance(timedelta(minutes=3))
    complete(service, staff, case["id"], "A", {"a": 1})
    clock.advance(timedelta(minutes=3))
    complete(service, staff, case["id"], "C")

    report = replay_case(service, case["id"])

    assert report.ok, report.divergence
    assert report.steps == 4


def test_rework_loop_replays_each_round(service, staff, clock) -> None:
    service.deploy(REWORK, "rework.bpmn", DESIGNER)
    case = service.start_case("rework", staff)
    for round_number in range(1, 6):
        clock.advance(timedelta(hours=1))
        complete(service, staff, case["id"], "Submit", {"attempt": round_number})
        clock.advance(timedelta(hours=1))
        complete(service, staff, case["id"], "Review", {"ok": round_number == 5})

    report = replay_case(service, case["id"])

    assert report.ok, report.divergence
    assert report.steps == 11
    assert service.get_case(case["id"])["status"] == "completed"


def test_subprocess_and_intermediate_timer_replay(service, staff, clock) -> None:
    service.deploy(SUBPROCESS_AND_TIMER, "nested.bpmn", DESIGNER)
    case = service.start_case("nested", staff)
    clock.advance(timedelta(minutes=10))
    complete(service, staff, case["id"], "Inner")
    clock.advance(timedelta(hours=3))
    assert service.fire_due_timers() == [case["id"]]
    clock.advance(timedelta(minutes=10))
    complete(service, staff, case["id"], "After")

    report = replay_case(service, case["id"])

    assert report.ok, report.divergence
    assert event(service, case["id"], "timer_fired")["element_id"] == "Wait"


def test_same_step_ready_twice_replays_by_task(service, staff, clock) -> None:
    service.deploy(REMINDER, "reminder.bpmn", DESIGNER)
    case = service.start_case("reminder", staff)
    for _ in range(2):
        clock.advance(timedelta(minutes=61))
        assert service.fire_due_timers() == [case["id"]]
    chases = [t for t in service.get_case(case["id"])["tasks"] if t["element_id"] == "Chase"]
    assert len(chases) == 2
    # Completing the newer reminder first checks that the replay completes the same task, not the oldest.
    clock.advance(timedelta(minutes=5))
    service.complete(chases[1]["id"], staff, {"note": "second"})
    clock.advance(timedelta(minutes=5))
    service.complete(chases[0]["id"], staff, {"note": "first"})

    report = replay_case(service, case["id"])

    assert report.ok, report.divergence
    first_chase = state_at(service, case["id"], event(service, case["id"], "task_completed", "Chase")["seq"])
    assert [t["element_id"] for t in first_chase["open_tasks"]] == ["Work", "Chase"]
    assert first_chase["open_tasks"][1]["task_id"] == chases[0]["id"]


def test_cancelled_case_replays(service, staff, clock) -> None:
    service.deploy(PARALLEL, "parallel.bpmn", DESIGNER)
    case = service.start_case("parallel", staff)
    clock.advance(timedelta(minutes=3))
    complete(service, staff, case["id"], "A", {"a": 1})
    clock.advance(timedelta(minutes=3))
    service.cancel_case(case["id"], ADMIN, "申请人撤回申请")

    report = replay_case(service, case["id"])

    assert report.ok, report.divergence
    assert event(service, case["id"], "task_cancelled")["element_id"] == "B"


def test_running_case_replays_to_its_current_state(service, staff, clock) -> None:
    service.deploy(PARALLEL, "parallel.bpmn", DESIGNER)
    case = service.start_case("parallel", staff)
    clock.advance(timedelta(minutes=3))
    complete(service, staff, case["id"], "A", {"a": 1})

    report = replay_case(service, case["id"])

    assert report.ok, report.divergence
    assert report.events == len(service.case_trace(case["id"]))


LANED = bpmn_definitions(process(
    "laned",
    lanes({"受理窗口": ["S", "Accept"], "审批科室": ["Approve", "Check", "E", "E_no"]}),
    node("startEvent", "S"), user_task("Accept", fields=[("amount", "integer")]), user_task("Approve"),
    node("exclusiveGateway", "Check", default="f_no"), node("endEvent", "E"), node("endEvent", "E_no"),
    flow("f1", "S", "Accept"), flow("f2", "Accept", "Approve"), flow("f3", "Approve", "Check"),
    flow("f_yes", "Check", "E", "amount > 10"), flow("f_no", "Check", "E_no"),
))


def test_interventions_are_replayed_and_listed(service, clock) -> None:
    service.deploy(LANED, "laned.bpmn", DESIGNER)
    clerk = add_user(service, "clerk", ["staff"], ["受理窗口"])
    add_user(service, "clerk2", ["staff"], ["受理窗口"])
    approver = add_user(service, "approver", ["staff"], ["审批科室"])
    case = service.start_case("laned", clerk, {"amount": 5})
    task_id = case["tasks"][0]["id"]
    clock.advance(timedelta(minutes=5))
    interventions.reassign_task(service, task_id, ADMIN, "clerk2", "原经办人休假")
    clock.advance(timedelta(minutes=5))
    interventions.skip_step(service, task_id, ADMIN, "窗口系统故障", {"amount": 5})
    clock.advance(timedelta(minutes=5))
    # The edit decides the gateway below, so a replay that ignored it would take the other end event.
    interventions.edit_case_data(service, case["id"], ADMIN, {"amount": 50}, "更正录入错误")
    clock.advance(timedelta(minutes=5))
    final = complete(service, approver, case["id"], "Approve")
    assert final["end_element_id"] == "E"

    report = replay_case(service, case["id"])

    assert report.ok, report.divergence
    assert [item["kind"] for item in report.interventions] == ["task_reassigned", "step_skipped", "data_edited"]
    assert report.interventions[0]["reason"] == "原经办人休假"


def test_version_move_stops_replay_as_incomplete(service, clock) -> None:
    service.deploy(sequence("moving", ["A", "B"]), "moving.bpmn", DESIGNER)
    service.deploy(sequence("moving", ["A", "B"]) + b"\n<!-- v2 -->", "moving-2.bpmn", DESIGNER)
    staff = add_user(service, "staff", ["staff"])
    case = service.start_case("moving", staff, version=1)
    clock.advance(timedelta(minutes=5))
    interventions.migrate_case(service, case["id"], ADMIN, 2, "切换到新版本")
    moved = event(service, case["id"], "case_migrated")

    report = replay_case(service, case["id"])

    assert report.status == "incomplete"
    assert not report.ok
    assert report.divergence.kind == "not_replayable"
    assert report.divergence.seq == moved["seq"]
    assert report.checked == moved["seq"] - 1


def test_unknown_case_is_not_found(service) -> None:
    with pytest.raises(NotFound):
        replay_case(service, 999)


# State at an event

def test_state_at_follows_timer_case(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "private_school_establishment",
                       "withdrawn_no_resubmission")["withdrawn_no_resubmission"]
    scenario = next(s for s in load_json(PROCESSES / "scenarios" / "private_school_establishment.json")["scenarios"]
                    if s["name"] == "withdrawn_no_resubmission")
    trace = service.case_trace(case_id)

    start = state_at(service, case_id, 1)
    assert start["status"] == "running"
    assert start["elapsed_seconds"] == 0
    assert [t["element_id"] for t in start["open_tasks"]] == ["Task_acceptance"]
    assert start["open_tasks"][0]["lane"] == "受理窗口"
    assert start["open_tasks"][0]["task_id"] == event(service, case_id, "task_ready", "Task_acceptance")["task_id"]
    assert start["data"] == scenario.get("start_data", {})
    assert start["timers"] == []
    assert start["through_seq"] == 2

    claim = event(service, case_id, "task_claimed", "Task_correction_notice")
    claimed = state_at(service, case_id, claim["seq"])
    assert claimed["through_seq"] == claim["seq"]
    assert [(t["element_id"], t["assignee"]) for t in claimed["open_tasks"]] == [
        ("Task_correction_notice", claim["actor"])]

    waiting_event = event(service, case_id, "task_ready", "Task_resubmit")
    fired = event(service, case_id, "timer_fired")
    waiting = state_at(service, case_id, waiting_event["seq"])
    assert [t["element_id"] for t in waiting["open_tasks"]] == ["Task_resubmit"]
    assert waiting["open_tasks"][0]["assignee"] is None
    assert [t["element_id"] for t in waiting["timers"]] == ["Event_no_resubmission"]
    assert datetime.fromisoformat(waiting["timers"][0]["due"]) == datetime.fromisoformat(fired["payload"]["due"])
    correction = event(service, case_id, "task_completed", "Task_correction_notice")["payload"]["data"]
    assert waiting["data"]["missing_materials"] == correction["missing_materials"]

    after = state_at(service, case_id, fired["seq"])
    assert after["status"] == "completed"
    assert after["open_tasks"] == []
    assert after["timers"] == []
    assert after["through_seq"] == trace[-1]["seq"]
    elapsed = datetime.fromisoformat(fired["at"]) - datetime.fromisoformat(trace[0]["at"])
    assert after["elapsed_seconds"] == elapsed.total_seconds()


def test_state_at_shows_rework_round(service, clock) -> None:
    deploy_shipped(service)
    name = "large_tender_retender_and_rectification"
    case_id = run_demo(service, clock, "procurement", name)[name]
    failed_tender = event(service, case_id, "task_completed", "Task_evaluation", nth=0)

    state = state_at(service, case_id, failed_tender["seq"])

    assert [t["element_id"] for t in state["open_tasks"]] == ["Task_procurement_plan"]
    assert state["data"]["bid_count"] == 2
    assert state["data"]["procurement_method"] == "open_tender"


def test_state_at_rejects_event_out_of_range(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "need_rejected")["need_rejected"]
    last = len(service.case_trace(case_id))

    for seq in (0, last + 1):
        with pytest.raises(InvalidInput) as error:
            state_at(service, case_id, seq)
        assert f"events 1 to {last}" in error.value.render("en")


def test_state_at_refuses_altered_definition(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]
    alter_definition(service, "procurement", b"budget_amount &gt; 50000", b"budget_amount &gt; 5000")

    with pytest.raises(ReplayDiverged) as error:
        state_at(service, case_id, 3)

    assert error.value.status == 409
    assert "no longer matches its content hash" in error.value.render("en")


# HTTP and command line

def login(http: httpx.Client, username: str) -> dict[str, str]:
    response = http.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_replay_and_state_endpoints_for_auditors_only(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "need_rejected")["need_rejected"]
    users = {role: add_user(service, f"{role}_user", [role]) for role in ("auditor", "admin", "staff", "designer")}

    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        headers = {role: login(http, actor.username) for role, actor in users.items()}
        for role in ("auditor", "admin"):
            replay = http.get(f"/api/cases/{case_id}/replay", headers=headers[role])
            assert replay.status_code == 200, replay.text
            assert replay.json()["status"] == "consistent"
            assert replay.json()["divergence"] is None

            state = http.get(f"/api/cases/{case_id}/state", params={"at": 2}, headers=headers[role])
            assert state.status_code == 200, state.text
            assert [t["element_id"] for t in state.json()["open_tasks"]] == ["Task_request"]
        for role in ("staff", "designer"):
            for path in (f"/api/cases/{case_id}/replay", f"/api/cases/{case_id}/state?at=2"):
                response = http.get(path, headers=headers[role])
                assert response.status_code == 403, f"{role} {path}: {response.text}"
                assert response.json()["error"]["code"] == "forbidden"
        assert http.get(f"/api/cases/{case_id}/replay").status_code == 401

        missing_at = http.get(f"/api/cases/{case_id}/state", headers=headers["auditor"])
        assert missing_at.status_code == 422
        past_end = http.get(f"/api/cases/{case_id}/state", params={"at": 999}, headers=headers["auditor"])
        assert past_end.status_code == 422
        assert past_end.json()["error"]["code"] == "invalid_input"
        assert http.get("/api/cases/999/replay", headers=headers["auditor"]).status_code == 404

        alter_definition(service, "procurement", b"budget_amount &gt; 50000", b"budget_amount &gt; 5000")
        diverged = http.get(f"/api/cases/{case_id}/replay", headers={**headers["auditor"], "Accept-Language": "en"})
        assert diverged.status_code == 200
        body = diverged.json()
        assert body["status"] == "diverged"
        assert body["ok"] is False
        assert body["divergence"]["kind"] == "definition_altered"
        assert "content hash" in body["divergence"]["message"]
        conflict = http.get(f"/api/cases/{case_id}/state", params={"at": 2}, headers=headers["auditor"])
        assert conflict.status_code == 409
        assert conflict.json()["error"]["code"] == "replay_diverged"


def run_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIUHEN_DATABASE_URL": settings.resolved_database_url(),
           "LIUHEN_DATA_DIR": str(settings.data_dir), "LIUHEN_PROCESSES_DIR": str(PROCESSES)}
    return subprocess.run([sys.executable, "-m", "api.cli", "--lang", "en", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_replay_and_state(service, settings, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]
    events = len(service.case_trace(case_id))

    replay = run_cli(settings, "replay", str(case_id))
    assert replay.returncode == 0, replay.stderr
    assert f"all {events} events match" in replay.stdout

    state = run_cli(settings, "state", str(case_id), "--at", "2")
    assert state.returncode == 0, state.stderr
    assert "Open steps:" in state.stdout
    assert "[Task_request]" in state.stdout
    as_json = run_cli(settings, "state", str(case_id), "--at", str(events), "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["status"] == "completed"

    with service.db.write() as conn:
        conn.execute(text("UPDATE cases SET data = :d WHERE id = :id"),
                     {"d": json.dumps({**service.get_case(case_id)["data"], "budget_amount": 1}), "id": case_id})
    diverged = run_cli(settings, "replay", str(case_id))
    assert diverged.returncode == 1
    assert f"Case {case_id} diverges from its record ({events} of {events} events matched first)" in diverged.stderr
    assert "field budget_amount" in diverged.stderr

    alter_definition(service, "procurement", b"budget_amount &gt; 50000", b"budget_amount &gt; 5000")
    not_replayed = run_cli(settings, "replay", str(case_id))
    assert not_replayed.returncode == 1
    assert f"Case {case_id} was not replayed" in not_replayed.stderr
    assert "no longer matches its content hash" in not_replayed.stderr
    report = run_cli(settings, "replay", str(case_id), "--json")
    assert report.returncode == 1
    assert json.loads(report.stdout)["divergence"]["kind"] == "definition_altered"


def test_gateway_flow_name_not_compared() -> None:
    # Traces written before gateway decisions named their flows still match a replay that names them.
    flow_taken = {"flow_id": "Flow_no", "target": "End", "condition": None}
    recorded = {"kind": "gateway_decision", "element_id": "Gw", "payload": {"name": "是否", "taken": [flow_taken]}}
    produced = {"kind": "gateway_decision", "element_id": "Gw",
                "payload": {"name": "是否", "taken": [{**flow_taken, "name": "否"}]}}

    assert compare_step([recorded], [produced]) is None
