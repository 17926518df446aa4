"""Conformance of recorded cases to their model: per case, and statistics per process version."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from api.app import create_app
from engine import interventions
from engine.conformance import build_graph, case_conformance, version_conformance
from engine.errors import NotFound
from engine.replay import replay_case
from engine.service import Liuhen
from tests.bpmn_builder import definitions, flow, lanes, node, process, sequence, user_task
from tests.conftest import ADMIN, DESIGNER, LiveServer, add_user
from tests.test_replay import (
    PARALLEL,
    REMINDER,
    alter_definition,
    deploy_shipped,
    event,
    login,
    run_cli,
    run_demo,
)

LANED = definitions(process(
    "laned",
    lanes({"受理窗口": ["S", "Accept"], "审批科室": ["Approve", "E"]}),
    node("startEvent", "S"), user_task("Accept", fields=[("amount", "integer")]), user_task("Approve"),
    node("endEvent", "E"),
    flow("f1", "S", "Accept"), flow("f2", "Accept", "Approve"), flow("f3", "Approve", "E"),
))


def open_task(service: Liuhen, case_id: int, element_id: str) -> str:
    return next(t["id"] for t in service.get_case(case_id)["tasks"] if t["element_id"] == element_id)


# Shipped flowcharts

def test_normal_case_conforms(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]

    result = case_conformance(service, case_id)

    assert result.conforms
    assert result.deviations == []
    assert result.repeated_steps == {}
    assert [step["element_id"] for step in result.path] == [
        "Task_request", "Task_leader_review", "Gateway_need", "Gateway_collective", "Task_procurement_plan",
        "Task_evaluation", "Gateway_bids", "Task_result_publicity", "Task_contract", "Task_acceptance_check",
        "Gateway_acceptance", "Task_payment", "EndEvent_completed",
    ]
    assert len(result.step_times) == 8
    seconds = {step["element_id"]: step["seconds"] for step in result.step_times}
    # The contract waits out the result publicity period: the scenario advances 14 days, plus two step gaps.
    assert seconds.pop("Task_contract") == (14 * 24 * 60 + 2 * 17) * 60
    assert set(seconds.values()) == {17 * 60}


def test_rework_case_lists_repeated_steps(service, clock) -> None:
    deploy_shipped(service)
    name = "large_tender_retender_and_rectification"
    case_id = run_demo(service, clock, "procurement", name)[name]

    result = case_conformance(service, case_id)

    assert result.conforms
    assert result.repeated_steps == {"Task_acceptance_check": 2, "Task_evaluation": 2, "Task_procurement_plan": 2}


def test_every_demo_case_conforms(service, clock) -> None:
    deploy_shipped(service)
    case_ids = run_demo(service, clock)

    results = {name: case_conformance(service, case_id) for name, case_id in case_ids.items()}

    assert {name: [d.kind for d in result.deviations] for name, result in results.items() if not result.conforms} \
        == {}
    assert results["withdrawn_no_resubmission"].path[-2]["element_id"] == "Event_no_resubmission"


def test_shipped_version_statistics(service, clock) -> None:
    deploy_shipped(service)
    run_demo(service, clock, "procurement")

    summary = version_conformance(service, "procurement", 1)

    assert summary["cases"] == 5
    assert summary["conforming"] == 5
    assert summary["conforming_share"] == 1.0
    assert summary["by_status"] == {"completed": 5}
    assert summary["deviations"] == []
    repeated = {step["element_id"]: step for step in summary["repeated_steps"]}
    assert repeated["Task_evaluation"] == {"element_id": "Task_evaluation", "cases": 1, "max_count": 2,
                                           "executions": 2}
    times = {step["element_id"]: step for step in summary["step_times"]}
    assert times["Task_request"]["count"] == 5
    assert times["Task_request"]["name"] == "提出采购申请"


# Deviations

def test_interventions_and_cancellation_are_deviations(service, clock) -> None:
    service.deploy(LANED, "laned.bpmn", DESIGNER)
    clerk = add_user(service, "clerk", ["staff"], ["受理窗口"])
    add_user(service, "clerk2", ["staff"], ["受理窗口"])
    case = service.start_case("laned", clerk)
    task_id = case["tasks"][0]["id"]
    interventions.reassign_task(service, task_id, ADMIN, "clerk2", "原经办人休假")
    interventions.skip_step(service, task_id, ADMIN, "窗口系统故障", {"amount": 5})
    interventions.edit_case_data(service, case["id"], ADMIN, {"amount": 50}, "更正录入错误")
    service.cancel_case(case["id"], ADMIN, "申请人撤回申请")

    result = case_conformance(service, case["id"])

    assert not result.conforms
    assert [(d.category, d.kind) for d in result.deviations] == [
        ("intervention", "task_reassigned"), ("intervention", "step_skipped"), ("intervention", "data_edited"),
        ("intervention", "case_cancelled")]
    assert [d.element_id for d in result.deviations[:2]] == ["Accept", "Accept"]
    messages = [d.message.render("en") for d in result.deviations]
    assert "reassigned step Accept to clerk2; reason: 原经办人休假" in messages[0]
    assert "edited the case data fields amount" in messages[2]
    assert "管理员 admin" in result.deviations[1].message.render("zh_CN")


def test_migrated_case_lists_the_move(service, clock) -> None:
    service.deploy(sequence("moving", ["A", "B"]), "moving.bpmn", DESIGNER)
    service.deploy(sequence("moving", ["A", "Extra", "B"]), "moving-2.bpmn", DESIGNER)
    staff = add_user(service, "staff", ["staff"])
    case = service.start_case("moving", staff, version=1)
    service.complete(open_task(service, case["id"], "A"), staff)
    interventions.migrate_case(service, case["id"], ADMIN, 2, "切换到新版本")
    service.complete(open_task(service, case["id"], "B"), staff)

    result = case_conformance(service, case["id"])

    # B became ready on version 1, where A leads to it, so only the move itself is a deviation.
    assert [(d.kind, d.element_id) for d in result.deviations] == [("case_migrated", None)]
    assert "moved the case to version 2" in result.deviations[0].message.render("en")
    assert result.version == 2


def test_altered_flow_breaks_recorded_path(service, settings, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]
    alter_definition(service, "procurement", b'sourceRef="Task_procurement_plan" targetRef="Task_evaluation"',
                     b'sourceRef="Task_procurement_plan" targetRef="Task_contract"')
    evaluation_ready = event(service, case_id, "task_ready", "Task_evaluation")
    fresh = Liuhen(settings, clock=clock)

    result = case_conformance(fresh, case_id)

    assert result.definition_intact is False
    assert [(d.kind, d.seq, d.element_id) for d in result.deviations] == [
        ("unexpected_step", evaluation_ready["seq"], "Task_evaluation")]
    assert version_conformance(fresh, "procurement", 1)["definition_intact"] is False
    fresh.db.dispose()


def test_model_graph_follows_boundary_and_parallel_flows(service) -> None:
    private_school = (service.settings.processes_dir / "private_school_establishment.bpmn").read_bytes()
    parsed = service.validate(private_school, "private_school_establishment.bpmn")
    graph = build_graph(parsed, "private_school_establishment")

    assert graph.leads_to("Task_correction_notice", "Event_no_resubmission")
    assert graph.leads_to("Task_correction_notice", "Task_resubmit")
    assert not graph.leads_to("Task_correction_notice", "EndEvent_approved")

    parallel = build_graph(service.validate(PARALLEL, "parallel.bpmn"), "parallel")
    assert "Join" not in parallel.recorded
    assert {"Split", "A", "B", "C", "E"} <= parallel.recorded
    assert parallel.leads_to("Split", "A")
    assert parallel.leads_to("Split", "B")
    assert parallel.leads_to("A", "C")
    assert parallel.leads_to("B", "C")
    assert not parallel.leads_to("A", "B")
    assert parallel.entry_leads_to("Split", first=True)
    assert not parallel.entry_leads_to("C", first=True)


def test_parallel_case_conforms(service, clock) -> None:
    service.deploy(PARALLEL, "parallel.bpmn", DESIGNER)
    staff = add_user(service, "staff", ["staff"])
    case = service.start_case("parallel", staff)
    for element_id, data in (("B", {"b": 1}), ("A", {"a": 2}), ("C", {})):
        service.complete(open_task(service, case["id"], element_id), staff, data)

    result = case_conformance(service, case["id"])

    assert result.conforms, [d.message.render("en") for d in result.deviations]
    assert [step["element_id"] for step in result.path] == ["Split", "B", "A", "C", "E"]


def test_repeated_cycle_timer_conforms(service, clock) -> None:
    service.deploy(REMINDER, "reminder.bpmn", DESIGNER)
    staff = add_user(service, "staff", ["staff"])
    case = service.start_case("reminder", staff)
    for _ in range(3):
        clock.advance(timedelta(minutes=61))
        service.fire_due_timers()
    for task in [t for t in service.get_case(case["id"])["tasks"] if t["element_id"] == "Chase"]:
        service.complete(task["id"], staff, {"note": "done"})
    service.complete(open_task(service, case["id"], "Work"), staff)

    result = case_conformance(service, case["id"])

    fired = [e for e in service.case_trace(case["id"]) if e["kind"] == "timer_fired"]
    chased = [e for e in service.case_trace(case["id"]) if e["kind"] == "task_completed" and e["element_id"] == "Chase"]
    assert result.conforms, [d.message.render("en") for d in result.deviations]
    assert [step["element_id"] for step in result.path].count("Remind") == len(fired)
    assert len(fired) >= 3
    assert result.repeated_steps == {"Chase": len(chased)}
    assert replay_case(service, case["id"]).ok


# Statistics of one version

def test_version_statistics_add_up(service, clock) -> None:
    service.deploy(LANED, "laned.bpmn", DESIGNER)
    clerk = add_user(service, "clerk", ["staff"], ["受理窗口"])
    approver = add_user(service, "approver", ["staff"], ["审批科室"])

    durations = (10, 30, 50)
    for minutes in durations:
        case = service.start_case("laned", clerk)
        clock.advance(timedelta(minutes=minutes))
        service.complete(open_task(service, case["id"], "Accept"), clerk, {"amount": minutes})
        clock.advance(timedelta(minutes=5))
        service.complete(open_task(service, case["id"], "Approve"), approver)
    skipped = service.start_case("laned", clerk)
    interventions.skip_step(service, open_task(service, skipped["id"], "Accept"), ADMIN, "窗口系统故障")
    cancelled = service.start_case("laned", clerk)
    service.cancel_case(cancelled["id"], ADMIN, "申请人撤回申请")
    service.start_case("laned", clerk)

    summary = version_conformance(service, "laned", 1)

    assert summary["cases"] == 6
    assert summary["conforming"] + summary["deviating"] == summary["cases"]
    assert summary["conforming"] == 4
    assert summary["conforming_share"] == pytest.approx(4 / 6)
    assert sum(summary["by_status"].values()) == summary["cases"]
    assert summary["by_status"] == {"cancelled": 1, "completed": 3, "running": 2}
    assert summary["deviations"] == [{"kind": "case_cancelled", "element_id": None, "count": 1},
                                     {"kind": "step_skipped", "element_id": "Accept", "count": 1}]
    times = {step["element_id"]: step for step in summary["step_times"]}
    # The skipped Accept counts too: it was completed, by an administrator, at once.
    assert times["Accept"]["count"] == 4
    assert times["Accept"]["mean_seconds"] == sum(durations) * 60 / 4
    assert times["Accept"]["median_seconds"] == 20 * 60
    assert times["Approve"] == {"element_id": "Approve", "name": "Approve", "count": 3, "mean_seconds": 300.0,
                                "median_seconds": 300.0}
    per_case = [case_conformance(service, case["id"]) for case in service.list_cases(process_id="laned")]
    assert sum(len(result.deviations) for result in per_case) == \
        sum(item["count"] for item in summary["deviations"])


def test_unknown_version_is_not_found(service) -> None:
    service.deploy(LANED, "laned.bpmn", DESIGNER)

    with pytest.raises(NotFound):
        version_conformance(service, "laned", 2)
    with pytest.raises(NotFound):
        version_conformance(service, "missing", 1)


# HTTP and command line

def test_conformance_endpoints_for_auditors_only(service, clock) -> None:
    deploy_shipped(service)
    name = "large_tender_retender_and_rectification"
    case_id = run_demo(service, clock, "procurement", name)[name]
    users = {role: add_user(service, f"{role}_user", [role]) for role in ("auditor", "admin", "staff", "designer")}
    case_path = f"/api/cases/{case_id}/conformance"
    version_path = "/api/definitions/procurement/versions/1/conformance"

    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        headers = {role: login(http, actor.username) for role, actor in users.items()}
        for role in ("auditor", "admin"):
            case = http.get(case_path, headers=headers[role])
            assert case.status_code == 200, case.text
            assert case.json()["conforms"] is True
            assert case.json()["repeated_steps"]["Task_evaluation"] == 2
            version = http.get(version_path, headers=headers[role])
            assert version.status_code == 200, version.text
            assert version.json()["cases"] == 1
            assert version.json()["conforming_share"] == 1.0
        for role in ("staff", "designer"):
            for path in (case_path, version_path):
                assert http.get(path, headers=headers[role]).status_code == 403, f"{role} {path}"
        assert http.get("/api/definitions/procurement/versions/9/conformance",
                        headers=headers["auditor"]).status_code == 404

        interventions.skip_step(service, open_task(service, service.start_case(
            "procurement", add_user(service, "requester", ["staff"]), {})["id"], "Task_request"), ADMIN, "系统故障",
            {"item_name": "打印纸", "budget_amount": 800, "specification": "A4", "budget_source": "公用经费"})
        version = http.get(version_path, headers={**headers["auditor"], "Accept-Language": "en"}).json()
        assert version["deviations"] == [{"kind": "step_skipped", "label": "step completed by an administrator "
                                          "without its checks", "element_id": "Task_request", "count": 1}]


def test_cli_conformance(service, settings, clock) -> None:
    deploy_shipped(service)
    name = "large_tender_retender_and_rectification"
    case_id = run_demo(service, clock, "procurement", name)[name]

    case = run_cli(settings, "conformance", str(case_id))
    assert case.returncode == 0, case.stderr
    assert "followed its model without deviation" in case.stdout
    assert "Task_evaluation ×2" in case.stdout

    version = run_cli(settings, "conformance", "--process", "procurement")
    assert version.returncode == 0, version.stderr
    assert "procurement version 1: 1 cases, 1 of them followed the model without deviation (100%)." \
        in version.stdout
    assert "Time per step, from ready to completed:" in version.stdout
    as_json = run_cli(settings, "conformance", "--process", "procurement", "--version", "1", "--json")
    assert json.loads(as_json.stdout)[0]["conforming"] == 1

    both = run_cli(settings, "conformance", str(case_id), "--process", "procurement")
    assert both.returncode == 2
    assert "not both" in both.stderr
