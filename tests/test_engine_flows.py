"""Gateways, timers, subprocesses, call activities and long cases, run through the service with a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import CaseError, InvalidInput
from engine.service import Liuhen
from tests.bpmn_builder import definitions, flow, lanes, node, process, sequence, user_task
from tests.conftest import DESIGNER, add_user


@pytest.fixture
def staff(service: Liuhen):
    return add_user(service, "staff", ["staff"], ["受理窗口"])


def deploy(service: Liuhen, content: bytes, name: str = "test.bpmn") -> None:
    service.deploy(content, name, DESIGNER)


def open_tasks(service: Liuhen, case_id: int) -> dict[str, str]:
    return {t["element_id"]: t["id"] for t in service.get_case(case_id)["tasks"] if t["status"] in ("ready", "claimed")}


def complete(service: Liuhen, actor, case_id: int, element_id: str, data: dict | None = None) -> dict:
    tasks = open_tasks(service, case_id)
    assert element_id in tasks, f"{element_id} not open; open: {sorted(tasks)}"
    return service.complete(tasks[element_id], actor, data or {})


def kinds(service: Liuhen, case_id: int) -> list[str]:
    return [event["kind"] for event in service.case_trace(case_id)]


def test_parallel_gateway_waits_for_both_branches(service, staff) -> None:
    deploy(service, definitions(process(
        "parallel",
        node("startEvent", "S"), node("parallelGateway", "Split"), user_task("A"), user_task("B"),
        node("parallelGateway", "Join"), user_task("C"), node("endEvent", "E"),
        flow("f1", "S", "Split"), flow("f2", "Split", "A"), flow("f3", "Split", "B"), flow("f4", "A", "Join"),
        flow("f5", "B", "Join"), flow("f6", "Join", "C"), flow("f7", "C", "E"),
    )))
    case = service.start_case("parallel", staff)
    assert set(open_tasks(service, case["id"])) == {"A", "B"}

    complete(service, staff, case["id"], "B")
    assert set(open_tasks(service, case["id"])) == {"A"}
    complete(service, staff, case["id"], "A")
    assert set(open_tasks(service, case["id"])) == {"C"}
    final = complete(service, staff, case["id"], "C")
    assert final["status"] == "completed"
    assert final["end_element_id"] == "E"


@pytest.mark.parametrize(("amount", "expected"), [(5, {"Small"}), (50, {"Small", "Large"}), (0, {"Other"})])
def test_inclusive_gateway_takes_every_true_flow(service, staff, amount, expected) -> None:
    deploy(service, definitions(process(
        "inclusive",
        node("startEvent", "S"), user_task("Enter", fields=[("amount", "integer")]),
        node("inclusiveGateway", "Split", default="f_other"), user_task("Small"), user_task("Large"),
        user_task("Other"), node("inclusiveGateway", "Join"), node("endEvent", "E"),
        flow("f1", "S", "Enter"), flow("f2", "Enter", "Split"),
        flow("f_small", "Split", "Small", "amount > 1"), flow("f_large", "Split", "Large", "amount > 10"),
        flow("f_other", "Split", "Other"),
        flow("f3", "Small", "Join"), flow("f4", "Large", "Join"), flow("f5", "Other", "Join"), flow("f6", "Join", "E"),
    )))
    case = service.start_case("inclusive", staff)
    complete(service, staff, case["id"], "Enter", {"amount": amount})
    assert set(open_tasks(service, case["id"])) == expected

    decision = next(e for e in service.case_trace(case["id"]) if e["kind"] == "gateway_decision")
    assert decision["element_id"] == "Split"
    assert {flow["target"] for flow in decision["payload"]["taken"]} == expected
    for element_id in sorted(expected):
        result = complete(service, staff, case["id"], element_id)
    assert result["status"] == "completed"


def test_number_field_bounds_checked(service, staff) -> None:
    bounded = '<liuhen:formField name="amount" type="decimal" label="金额" min="0.01" max="10000"/>'
    counted = '<liuhen:formField name="invoices" type="integer" label="发票张数" min="1"/>'
    deploy(service, definitions(process(
        "bounded",
        node("startEvent", "S"), user_task("Pay", extra=bounded + counted), node("endEvent", "E"),
        flow("f1", "S", "Pay"), flow("f2", "Pay", "E"),
    )))
    case = service.start_case("bounded", staff)

    for data, expected in [
        ({"amount": "-5", "invoices": 1},
         "Field amount (金额) got -5, below the minimum of 0.01; enter at least 0.01."),
        ({"amount": 10000.5, "invoices": 1}, "above the maximum of 10000"),
        ({"amount": 20, "invoices": 0}, "Field invoices (发票张数) got 0, below the minimum of 1"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            complete(service, staff, case["id"], "Pay", data)
        assert expected in caught.value.render("en")
    assert kinds(service, case["id"]).count("task_completed") == 0

    # The bounds are inclusive.
    final = complete(service, staff, case["id"], "Pay", {"amount": "0.01", "invoices": 1})
    assert final["status"] == "completed"


def test_invalid_choice_lists_labels(service, staff) -> None:
    choice = ('<liuhen:formField name="decision" type="enum" label="审批意见">'
              '<liuhen:option value="approve" label="同意"/><liuhen:option value="refuse" label="不同意"/>'
              "</liuhen:formField>")
    deploy(service, definitions(process(
        "choice", node("startEvent", "S"), user_task("Decide", extra=choice), node("endEvent", "E"),
        flow("f1", "S", "Decide"), flow("f2", "Decide", "E"),
    )))
    case = service.start_case("choice", staff)

    with pytest.raises(InvalidInput) as caught:
        complete(service, staff, case["id"], "Decide", {"decision": "maybe"})

    assert caught.value.render("en") == ("Field decision (审批意见) got 'maybe'; choose one of: approve (同意), "
                                         "refuse (不同意).")


def test_exclusive_gateway_records_condition_taken(service, staff) -> None:
    deploy(service, definitions(process(
        "exclusive",
        node("startEvent", "S"), user_task("Review", fields=[("decision", "string")]),
        node("exclusiveGateway", "Gw", default="f_refuse"), node("endEvent", "Approved"), node("endEvent", "Refused"),
        flow("f1", "S", "Review"), flow("f2", "Review", "Gw"),
        flow("f_approve", "Gw", "Approved", 'decision == "approve"'), flow("f_refuse", "Gw", "Refused"),
    )))
    case = service.start_case("exclusive", staff)
    final = complete(service, staff, case["id"], "Review", {"decision": "approve"})

    assert final["end_element_id"] == "Approved"
    decision = next(e for e in service.case_trace(case["id"]) if e["kind"] == "gateway_decision")
    assert decision["payload"]["taken"] == [
        {"flow_id": "f_approve", "name": None, "target": "Approved", "condition": 'decision == "approve"'}]


def test_gateway_without_match_keeps_case_unchanged(service, staff) -> None:
    # amount is not a form field, so validation cannot prove the gap. It only warns, and the flowchart deploys.
    deploy(service, definitions(process(
        "nomatch",
        node("startEvent", "S"), user_task("Review"),
        node("exclusiveGateway", "Gw"), node("endEvent", "E1"), node("endEvent", "E2"),
        flow("f1", "S", "Review"), flow("f2", "Review", "Gw"),
        flow("f3", "Gw", "E1", "amount > 10"), flow("f4", "Gw", "E2", "amount < 0"),
    )))
    case = service.start_case("nomatch", staff)
    before = service.case_trace(case["id"])

    with pytest.raises(CaseError) as raised:
        complete(service, staff, case["id"], "Review", {"amount": 5})

    assert "Gw" in raised.value.render("en")
    assert service.case_trace(case["id"]) == before
    assert set(open_tasks(service, case["id"])) == {"Review"}
    final = complete(service, staff, case["id"], "Review", {"amount": 50})
    assert final["end_element_id"] == "E1"


TIMER_BOUNDARY = definitions(process(
    "timer_boundary",
    node("startEvent", "S"), user_task("Resubmit"),
    node("boundaryEvent", "Deadline", body="<bpmn:timerEventDefinition><bpmn:timeDuration>PT48H"
                                          "</bpmn:timeDuration></bpmn:timerEventDefinition>",
         attachedToRef="Resubmit"),
    node("endEvent", "Done"), node("endEvent", "Withdrawn"),
    flow("f1", "S", "Resubmit"), flow("f2", "Resubmit", "Done"), flow("f3", "Deadline", "Withdrawn"),
))


def test_timer_fires_only_when_clock_passes_due_time(service, staff, clock) -> None:
    deploy(service, TIMER_BOUNDARY)
    case = service.start_case("timer_boundary", staff)
    assert service.get_case(case["id"])["next_timer_at"] == clock.now() + timedelta(hours=48)

    clock.advance(timedelta(hours=47))
    assert service.fire_due_timers() == []
    assert service.get_case(case["id"])["status"] == "running"

    clock.advance(timedelta(hours=2))
    assert service.fire_due_timers() == [case["id"]]
    final = service.get_case(case["id"])
    assert final["status"] == "completed"
    assert final["end_element_id"] == "Withdrawn"
    assert final["tasks"] == []
    history = service.list_tasks(staff, scope="all", case_id=case["id"], status="any")
    assert [t["status"] for t in history] == ["cancelled"]
    assert "timer_fired" in kinds(service, case["id"])
    assert service.verify(case["id"])[0].ok


def test_timer_is_cancelled_when_task_completes_first(service, staff, clock) -> None:
    deploy(service, TIMER_BOUNDARY)
    case = service.start_case("timer_boundary", staff)
    final = complete(service, staff, case["id"], "Resubmit")

    assert final["end_element_id"] == "Done"
    assert final["next_timer_at"] is None
    clock.advance(timedelta(days=3))
    assert service.fire_due_timers() == []


@pytest.mark.parametrize("value", ["PT5M", "'PT5M'", "R2/PT5M", "2026-12-01T09:05:00+08:00"])
def test_intermediate_timer_accepts_iso_forms(service, staff, clock, value) -> None:
    definition_kind = "timeDuration"
    if value.startswith("R"):
        definition_kind = "timeCycle"
    elif "T09" in value:
        definition_kind = "timeDate"
    deploy(service, definitions(process(
        "catch_timer",
        node("startEvent", "S"),
        node("intermediateCatchEvent", "Wait", body=f"<bpmn:timerEventDefinition><bpmn:{definition_kind}>{value}"
                                                    f"</bpmn:{definition_kind}></bpmn:timerEventDefinition>"),
        user_task("After"), node("endEvent", "E"),
        flow("f1", "S", "Wait"), flow("f2", "Wait", "After"), flow("f3", "After", "E"),
    )))
    case = service.start_case("catch_timer", staff)
    assert open_tasks(service, case["id"]) == {}
    assert service.get_case(case["id"])["next_timer_at"] is not None

    clock.advance(timedelta(minutes=6))
    assert service.fire_due_timers() == [case["id"]]
    assert set(open_tasks(service, case["id"])) == {"After"}


def test_embedded_subprocess_runs_its_tasks(service, staff) -> None:
    inner = "".join([
        node("startEvent", "SubStart"), user_task("Inner", fields=[("note", "string")]), node("endEvent", "SubEnd"),
        flow("s1", "SubStart", "Inner"), flow("s2", "Inner", "SubEnd"),
    ])
    deploy(service, definitions(process(
        "embedded",
        node("startEvent", "S"), node("subProcess", "Sub", body=inner), user_task("After"), node("endEvent", "E"),
        flow("f1", "S", "Sub"), flow("f2", "Sub", "After"), flow("f3", "After", "E"),
    )))
    case = service.start_case("embedded", staff)
    complete(service, staff, case["id"], "Inner", {"note": "材料齐全"})
    assert set(open_tasks(service, case["id"])) == {"After"}
    final = complete(service, staff, case["id"], "After")
    assert final["status"] == "completed"
    assert final["data"]["note"] == "材料齐全"


def test_call_activity_runs_called_process(service, staff) -> None:
    deploy(service, definitions(
        process("main_flow",
                node("startEvent", "S"), node("callActivity", "Call", calledElement="review_flow"),
                user_task("After"), node("endEvent", "E"),
                flow("f1", "S", "Call"), flow("f2", "Call", "After"), flow("f3", "After", "E")),
        process("review_flow",
                node("startEvent", "RS"), user_task("Review", fields=[("ok", "boolean")]), node("endEvent", "RE"),
                flow("r1", "RS", "Review"), flow("r2", "Review", "RE")),
    ))
    assert [d["process_id"] for d in service.list_definitions()] == ["main_flow"]
    case = service.start_case("main_flow", staff)
    complete(service, staff, case["id"], "Review", {"ok": True})
    final = complete(service, staff, case["id"], "After")
    assert final["status"] == "completed"
    assert final["data"]["ok"] is True


REWORK_LOOP = definitions(process(
    "rework",
    node("startEvent", "S"), user_task("Review", fields=[("ok", "boolean")]),
    node("exclusiveGateway", "Gw", default="f_back"), user_task("Correct"), node("endEvent", "E"),
    flow("f1", "S", "Review"), flow("f2", "Review", "Gw"), flow("f_ok", "Gw", "E", "ok"),
    flow("f_back", "Gw", "Correct"), flow("f3", "Correct", "Review"),
))


def test_rework_loop_thousand_rounds_reaches_end(service, staff) -> None:
    deploy(service, REWORK_LOOP)
    case_id = service.start_case("rework", staff)["id"]

    for _ in range(1000):
        complete(service, staff, case_id, "Review", {"ok": False})
        state = complete(service, staff, case_id, "Correct")
        assert state["status"] == "running"
    final = complete(service, staff, case_id, "Review", {"ok": True})

    assert final["status"] == "completed"
    assert final["end_element_id"] == "E"
    trace = service.case_trace(case_id)
    assert sum(1 for e in trace if e["kind"] == "task_completed") == 2001
    assert trace[-1]["kind"] == "case_completed"
    assert service.verify(case_id)[0].ok


def test_thousand_step_sequence_reaches_end(service, staff) -> None:
    task_ids = [f"Step_{i}" for i in range(1000)]
    deploy(service, sequence("long_line", task_ids))
    case_id = service.start_case("long_line", staff)["id"]

    for task_id in task_ids[:-1]:
        assert complete(service, staff, case_id, task_id)["status"] == "running"
    final = complete(service, staff, case_id, task_ids[-1])

    assert final["status"] == "completed"
    assert final["end_element_id"] == "EndEvent_1"


def test_lane_limits_task_to_its_post(service) -> None:
    deploy(service, definitions(process(
        "laned",
        lanes({"受理窗口": ["S", "Accept", "E"], "审批科室": ["Approve"]}),
        node("startEvent", "S"), user_task("Accept"), user_task("Approve"), node("endEvent", "E"),
        flow("f1", "S", "Accept"), flow("f2", "Accept", "Approve"), flow("f3", "Approve", "E"),
    )))
    clerk = add_user(service, "clerk", ["staff"], ["受理窗口"])
    approver = add_user(service, "approver", ["staff"], ["审批科室"])
    case = service.start_case("laned", clerk)

    assert [t["element_id"] for t in service.list_tasks(clerk)] == ["Accept"]
    assert service.list_tasks(approver) == []
    complete(service, clerk, case["id"], "Accept")
    assert [t["element_id"] for t in service.list_tasks(approver)] == ["Approve"]
    assert service.list_tasks(clerk) == []


def test_cancel_needs_admin_and_reason(service, staff) -> None:
    from engine.errors import Forbidden, InvalidInput
    from tests.conftest import ADMIN

    deploy(service, sequence("cancellable", ["A", "B"]))
    case = service.start_case("cancellable", staff)
    with pytest.raises(Forbidden):
        service.cancel_case(case["id"], staff, "申请人撤回申请")
    with pytest.raises(InvalidInput):
        service.cancel_case(case["id"], ADMIN, " ")

    cancelled = service.cancel_case(case["id"], ADMIN, "申请人书面撤回申请")

    assert cancelled["status"] == "cancelled"
    assert cancelled["tasks"] == []
    trace = service.case_trace(case["id"])
    assert [e["kind"] for e in trace][-2:] == ["task_cancelled", "case_cancelled"]
    assert trace[-1]["payload"] == {"reason": "申请人书面撤回申请"}
    assert trace[-1]["actor"] == "admin"
    assert service.verify(case["id"])[0].ok
