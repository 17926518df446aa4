"""The controls and clock pauses that the shipped flowcharts declare, exercised on their demo scenarios."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from api.app import create_app
from api.demo import iso_duration, load_json, scenario_files, seed_users
from engine import interventions, overrides
from engine.calendar import load_calendar, local_today
from engine.clock import ManualClock
from engine.clocks import clocks_of_case
from engine.db import risk_events
from engine.errors import ControlFailed
from engine.service import Liuhen
from engine.users import Actor, get_actor
from tests.conftest import ADMIN, DESIGNER, PROCESSES, LiveServer, add_user

DOCUMENTS = {document["process_id"]: document for document in map(load_json, scenario_files(PROCESSES))}
DEMO_PASSWORDS = {user["username"]: user["password"] for user in load_json(PROCESSES / "demo-users.json")}


@pytest.fixture
def shipped(service: Liuhen, monkeypatch: pytest.MonkeyPatch) -> Liuhen:
    """The service with the demo users and every shipped flowchart deployed."""
    # Cheap password hashing: seeding the demo users is not what these tests are about.
    monkeypatch.setattr("engine.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    seed_users(service, PROCESSES / "demo-users.json")
    for path in sorted(PROCESSES.glob("*.bpmn")):
        service.deploy(path.read_bytes(), path.name, DESIGNER)
    return service


def actor(service: Liuhen, username: str) -> Actor:
    with service.db.read() as conn:
        found = get_actor(conn, username)
    assert found is not None, username
    return found


def steps_of(process_id: str, scenario: str) -> list[dict[str, Any]]:
    return next(s["steps"] for s in DOCUMENTS[process_id]["scenarios"] if s["name"] == scenario)


def step_data(process_id: str, scenario: str, task: str) -> dict[str, Any]:
    """Return the data the scenario submits at the first occurrence of ``task``."""
    return dict(next(step["data"] for step in steps_of(process_id, scenario) if step.get("task") == task))


def step_user(process_id: str, scenario: str, task: str) -> str:
    return str(next(step["user"] for step in steps_of(process_id, scenario) if step.get("task") == task))


def open_task(service: Liuhen, case_id: int, element_id: str) -> str:
    tasks = service.get_case(case_id)["tasks"]
    found = [task["id"] for task in tasks if task["element_id"] == element_id]
    assert found, f"case {case_id} has no open {element_id}; open: {[task['element_id'] for task in tasks]}"
    return found[0]


def complete(service: Liuhen, case_id: int, element_id: str, username: str, data: dict[str, Any]) -> dict[str, Any]:
    return service.complete(open_task(service, case_id, element_id), actor(service, username), data)


def drive(service: Liuhen, clock: ManualClock, process_id: str, scenario: str, until: str, *,
          users: dict[str, str] | None = None, advances: bool = True) -> int:
    """Start a case of a demo scenario and run its steps up to, not including, the first ``until`` step.

    ``users`` maps a task id to the user who completes it instead of the scenario's user. With
    ``advances`` False the scenario's clock advances are left out. Returns the case id.
    """
    steps = steps_of(process_id, scenario)
    case_id = int(service.start_case(process_id, actor(service, steps[0]["user"]), title=scenario)["id"])
    for step in steps:
        if step.get("task") == until:
            return case_id
        if "advance" in step:
            if advances:
                clock.advance(iso_duration(step["advance"]))
                service.fire_due_timers()
            continue
        username = (users or {}).get(step["task"], step["user"])
        complete(service, case_id, step["task"], username, step["data"])
    raise AssertionError(f"scenario {scenario} has no step {until}")


def blocked(attempt: Callable[[], object]) -> ControlFailed:
    with pytest.raises(ControlFailed) as caught:
        attempt()
    return caught.value


def evaluations(service: Liuhen, case_id: int) -> list[dict[str, Any]]:
    return [event["payload"] for event in service.case_trace(case_id) if event["kind"] == "control_evaluated"]


def risk_rows(service: Liuhen) -> list[Any]:
    with service.db.read() as conn:
        return list(conn.execute(select(risk_events).order_by(risk_events.c.id)).all())


def open_steps(service: Liuhen, case_id: int) -> list[str]:
    return sorted(task["element_id"] for task in service.get_case(case_id)["tasks"])


# 民办学校设立审批


def test_school_acceptor_cannot_assess_own_case(shipped, clock) -> None:
    add_user(shipped, "window_and_office", ["staff"], ["受理窗口", "审批科室"])
    case_id = drive(shipped, clock, "private_school_establishment", "refused_after_assessment",
                    "Task_expert_assessment", users={"Task_acceptance": "window_and_office"})
    task_id = open_task(shipped, case_id, "Task_expert_assessment")

    failure = blocked(lambda: shipped.claim(task_id, actor(shipped, "window_and_office")))

    assert failure.code == "control_failed"
    assert [f["control_id"] for f in failure.failures] == ["C-SCH-assessment-sod"]
    assert "completed step 受理审查" in str(failure.failures[0]["message"])
    task = shipped.get_task(task_id)
    assert (task["status"], task["assignee"]) == ("ready", None)
    failed = evaluations(shipped, case_id)[-1]
    assert (failed["control_id"], failed["outcome"], failed["at"]) == ("C-SCH-assessment-sod", "failed", "claim")

    data = step_data("private_school_establishment", "refused_after_assessment", "Task_expert_assessment")
    complete(shipped, case_id, "Task_expert_assessment", "zhang_wei", data)
    assert open_steps(shipped, case_id) == ["Task_deputy_review"]


def test_school_refusal_needs_full_reason(shipped, clock) -> None:
    case_id = drive(shipped, clock, "private_school_establishment", "refused_after_assessment",
                    "Task_meeting_decision")
    data = step_data("private_school_establishment", "refused_after_assessment", "Task_meeting_decision")

    failure = blocked(lambda: complete(shipped, case_id, "Task_meeting_decision", "he_jing",
                                       {**data, "decision_reason": "不符合设置标准。"}))

    assert [f["control_id"] for f in failure.failures] == ["C-SCH-decision-reason"]
    assert "at least 15 characters" in str(failure.failures[0]["message"])
    case = shipped.get_case(case_id)
    assert "decision" not in case["data"]
    assert open_steps(shipped, case_id) == ["Task_meeting_decision"]

    complete(shipped, case_id, "Task_meeting_decision", "he_jing", data)
    assert open_steps(shipped, case_id) == ["Task_refusal_decision"]


# Clock pauses (行政许可法 §45) and restarts at acceptance


@pytest.mark.parametrize(("process_id", "scenario", "pausing_step"), [
    ("private_school_establishment", "refused_after_assessment", "Task_expert_assessment"),
    ("teacher_qualification", "correction_then_certified", "Task_committee_review"),
])
def test_case_clocks_pause_during_expert_review(shipped, clock, process_id, scenario, pausing_step) -> None:
    case_id = drive(shipped, clock, process_id, scenario, pausing_step)
    trace = shipped.case_trace(case_id)
    restarted = [event for event in trace if event["kind"] == "clock_restarted"]
    assert {event["element_id"] for event in restarted} == {"Task_acceptance"}
    assert {event["payload"]["clock"] for event in restarted} == {"statutory", "promised"}
    paused = [event for event in trace if event["kind"] == "clock_paused"]
    assert sorted(event["payload"]["clock"] for event in paused) == ["promised", "statutory"]
    assert {(event["element_id"], event["payload"]["reason"]) for event in paused} == \
        {(pausing_step, "expert_review")}

    before = {view["clock"]: view for view in clocks_of_case(shipped, case_id) if view["kind"] != "step"}
    assert set(before) == {"statutory", "promised"}
    assert all(view["paused"] for view in before.values())
    paused_on = local_today(clock.now())
    clock.advance(timedelta(days=10))
    complete(shipped, case_id, pausing_step, step_user(process_id, scenario, pausing_step),
             step_data(process_id, scenario, pausing_step))

    resumed = [event for event in shipped.case_trace(case_id) if event["kind"] == "clock_resumed"]
    assert sorted(event["payload"]["clock"] for event in resumed) == ["promised", "statutory"]
    after = {view["clock"]: view for view in clocks_of_case(shipped, case_id) if view["kind"] != "step"}
    calendar = load_calendar(shipped.db)
    paused_working_days = calendar.working_days_between(paused_on, local_today(clock.now()))
    assert paused_working_days > 0
    for name, view in after.items():
        assert not view["paused"], name
        assert view["last_day"] > before[name]["last_day"], name
        if view["unit"] == "working_day":
            assert calendar.working_days_between(before[name]["last_day"], view["last_day"]) == \
                paused_working_days, name


# 教师资格认定


def test_teacher_acceptor_cannot_review_qualification(shipped, clock) -> None:
    add_user(shipped, "window_and_certification", ["staff"], ["受理窗口", "认定科室"])
    case_id = drive(shipped, clock, "teacher_qualification", "review_failed", "Task_qualification_review",
                    users={"Task_acceptance": "window_and_certification"})
    data = step_data("teacher_qualification", "review_failed", "Task_qualification_review")

    failure = blocked(lambda: complete(shipped, case_id, "Task_qualification_review", "window_and_certification",
                                       data))

    assert [f["control_id"] for f in failure.failures] == ["C-JSZG-review-sod"]
    assert open_steps(shipped, case_id) == ["Task_qualification_review"]


def test_teacher_refusal_needs_full_reason(shipped, clock) -> None:
    case_id = drive(shipped, clock, "teacher_qualification", "review_failed", "Task_decision")

    failure = blocked(lambda: complete(shipped, case_id, "Task_decision", "wu_min",
                                       {"decision": "refuse", "decision_reason": "不符合认定条件。"}))

    assert [f["control_id"] for f in failure.failures] == ["C-JSZG-decision-reason"]
    assert "at least 15 characters" in str(failure.failures[0]["message"])
    complete(shipped, case_id, "Task_decision", "wu_min",
             step_data("teacher_qualification", "review_failed", "Task_decision"))
    assert open_steps(shipped, case_id) == ["Task_refusal_decision"]


# 财务报销


def test_reimbursement_refusal_needs_reason(shipped, clock) -> None:
    case_id = drive(shipped, clock, "reimbursement", "small_refused_by_director", "Task_director_approve")

    failure = blocked(lambda: complete(shipped, case_id, "Task_director_approve", "ma_jun",
                                       {"director_decision": "refuse", "director_opinion": "不同意。"}))

    assert [f["control_id"] for f in failure.failures] == ["C-BX-director-reason"]
    assert "at least 10 characters" in str(failure.failures[0]["message"])
    failed = evaluations(shipped, case_id)[-1]
    assert (failed["control_id"], failed["outcome"], failed["at"]) == ("C-BX-director-reason", "failed", "complete")

    done = complete(shipped, case_id, "Task_director_approve", "ma_jun",
                    step_data("reimbursement", "small_refused_by_director", "Task_director_approve"))
    assert done["end_element_id"] == "EndEvent_director_refused"


def test_reimbursement_handler_cannot_pay_own_claim(shipped, clock) -> None:
    add_user(shipped, "handler_and_cashier", ["staff"], ["经办人", "财务室"])
    case_id = drive(shipped, clock, "reimbursement", "training_fee_mid", "Task_finance",
                    users={"Task_submit": "handler_and_cashier"})
    task_id = open_task(shipped, case_id, "Task_finance")

    failure = blocked(lambda: shipped.claim(task_id, actor(shipped, "handler_and_cashier")))

    assert [f["control_id"] for f in failure.failures] == ["C-BX-finance-sod"]
    done = complete(shipped, case_id, "Task_finance", "song_yu",
                    step_data("reimbursement", "training_fee_mid", "Task_finance"))
    assert done["end_element_id"] == "EndEvent_paid"


def test_reimbursement_raised_amount_needs_collective_decision(shipped, clock) -> None:
    case_id = drive(shipped, clock, "reimbursement", "training_fee_mid", "Task_finance")
    # The principal approved ¥4,800, and then an administrator raises the amount above ¥10,000.
    interventions.edit_case_data(shipped, case_id, ADMIN, {"amount": 38600}, "发票金额更正为38600元")
    data = {**step_data("reimbursement", "training_fee_mid", "Task_finance"), "paid_amount": 38600}

    failure = blocked(lambda: complete(shipped, case_id, "Task_finance", "song_yu", data))

    assert [f["control_id"] for f in failure.failures] == ["C-BX-collective"]
    message = str(failure.failures[0]["message"])
    assert "above the threshold of 10000" in message
    assert "so step 校务会集体决策 must be completed" in message
    assert open_steps(shipped, case_id) == ["Task_finance"]


def test_reimbursement_skipped_meeting_blocks_payment(shipped, clock) -> None:
    case_id = drive(shipped, clock, "reimbursement", "large_equipment_collective", "Task_meeting")
    interventions.skip_step(shipped, open_task(shipped, case_id, "Task_meeting"), ADMIN, "校务会暂未召开，先行办理",
                            {"meeting_decision": "approve"})
    complete(shipped, case_id, "Task_principal", "lin_hai",
             step_data("reimbursement", "large_equipment_collective", "Task_principal"))

    failure = blocked(lambda: complete(shipped, case_id, "Task_finance", "song_yu",
                                       step_data("reimbursement", "large_equipment_collective", "Task_finance")))

    assert [f["control_id"] for f in failure.failures] == ["C-BX-collective"]


def test_one_admin_cannot_skip_past_hard_control(shipped, clock) -> None:
    case_id = drive(shipped, clock, "reimbursement", "large_equipment_collective", "Task_meeting")
    interventions.skip_step(shipped, open_task(shipped, case_id, "Task_meeting"), ADMIN, "校务会暂未召开，先行办理",
                            {"meeting_decision": "approve"})
    complete(shipped, case_id, "Task_principal", "lin_hai",
             step_data("reimbursement", "large_equipment_collective", "Task_principal"))
    payment = open_task(shipped, case_id, "Task_finance")
    payment_data = step_data("reimbursement", "large_equipment_collective", "Task_finance")

    failure = blocked(lambda: interventions.skip_step(shipped, payment, ADMIN, "财务人员休假，管理员代为支付",
                                                      payment_data))

    assert [f["control_id"] for f in failure.failures] == ["C-BX-collective"]
    assert open_steps(shipped, case_id) == ["Task_finance"]
    assert risk_rows(shipped) == []

    second_admin = Actor("admin2", "第二管理员", frozenset({"admin"}))
    requested = overrides.request_override(shipped, payment, "C-BX-collective", "校务会已线下表决，纪要补录中", ADMIN)
    overrides.decide_override(shipped, requested["id"], second_admin, True)
    finished = interventions.skip_step(shipped, payment, ADMIN, "财务人员休假，管理员代为支付", payment_data)

    assert finished["status"] == "completed"
    assert [(row.kind, row.level) for row in risk_rows(shipped)] == [("control_overridden", "high")]


def test_reimbursement_split_payments_raise_risk_event(shipped, clock) -> None:
    data = {**step_data("reimbursement", "training_fee_mid", "Task_submit"), "amount": 6000,
            "payee": "某县图书发行有限公司", "purpose": "图书馆购置教辅图书"}
    cases = []
    for _ in range(2):
        case = shipped.start_case("reimbursement", actor(shipped, "zhou_hong"), title="图书费报销")
        complete(shipped, case["id"], "Task_submit", "zhou_hong", data)
        cases.append(case["id"])
        clock.advance(timedelta(days=3))

    rows = risk_rows(shipped)
    assert len(rows) == 1
    row = rows[0]
    assert (row.case_id, row.kind, row.level) == (cases[1], "split_suspected", "medium")
    assert (row.checkpoint_id, row.control_id, row.element_id) == ("RC-BX-01", "C-BX-split", "Task_submit")
    assert row.details["cases"] == [cases[0]]
    assert row.details["total"] == "12000"
    traced = [event for event in shipped.case_trace(cases[1]) if event["kind"] == "risk_event"]
    assert [event["payload"]["risk_kind"] for event in traced] == ["split_suspected"]
    # The control is soft: the second reimbursement goes on to the signatures.
    assert open_steps(shipped, cases[1]) == ["Task_director_sign", "Task_leader_sign"]


# 学校自行采购


def test_procurement_declared_conflict_blocks_evaluation(shipped, clock) -> None:
    case_id = drive(shipped, clock, "procurement", "small_inquiry_completed", "Task_evaluation")
    data = step_data("procurement", "small_inquiry_completed", "Task_evaluation")

    failure = blocked(lambda: complete(shipped, case_id, "Task_evaluation", "feng_bo",
                                       {**data, "recusal_declaration": "kinship"}))

    assert [f["control_id"] for f in failure.failures] == ["C-CG-recusal"]
    assert "declared a relation" in str(failure.failures[0]["message"])
    complete(shipped, case_id, "Task_evaluation", "feng_bo", data)
    assert open_steps(shipped, case_id) == ["Task_result_publicity"]


def test_procurement_contract_waits_for_publicity(shipped, clock) -> None:
    case_id = drive(shipped, clock, "procurement", "small_inquiry_completed", "Task_contract", advances=False)
    data = step_data("procurement", "small_inquiry_completed", "Task_contract")
    published_on = local_today(clock.now())
    last_day = load_calendar(shipped.db).add_working_days(published_on, 1)

    failure = blocked(lambda: complete(shipped, case_id, "Task_contract", "huang_qiang", data))

    assert [f["control_id"] for f in failure.failures] == ["C-CG-publicity"]
    assert f"runs to the end of {last_day.isoformat()}" in str(failure.failures[0]["message"])

    # Still inside the period on its last day, open the day after.
    clock.advance(timedelta(days=(last_day - published_on).days))
    blocked(lambda: complete(shipped, case_id, "Task_contract", "huang_qiang", data))
    clock.advance(timedelta(days=1))
    complete(shipped, case_id, "Task_contract", "huang_qiang", data)
    assert open_steps(shipped, case_id) == ["Task_acceptance_check"]
    outcomes = [e["outcome"] for e in evaluations(shipped, case_id) if e["control_id"] == "C-CG-publicity"]
    assert outcomes == ["failed", "failed", "passed"]


def test_procurement_requester_cannot_accept_delivery(shipped, clock) -> None:
    add_user(shipped, "requester_and_keeper", ["staff"], ["使用部门", "资产管理员"])
    case_id = drive(shipped, clock, "procurement", "small_inquiry_completed", "Task_acceptance_check",
                    users={"Task_request": "requester_and_keeper"})
    task_id = open_task(shipped, case_id, "Task_acceptance_check")

    failure = blocked(lambda: shipped.claim(task_id, actor(shipped, "requester_and_keeper")))

    assert [f["control_id"] for f in failure.failures] == ["C-CG-acceptance-sod"]
    assert "completed step 提出采购申请" in str(failure.failures[0]["message"])


@pytest.fixture
def http(shipped: Liuhen) -> Iterator[httpx.Client]:
    with LiveServer(create_app(shipped.settings, shipped)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_http_rejects_contract_during_publicity(shipped, clock, http) -> None:
    case_id = drive(shipped, clock, "procurement", "single_source_completed", "Task_contract", advances=False)
    login = http.post("/api/auth/login", json={"username": "huang_qiang", "password": DEMO_PASSWORDS["huang_qiang"]})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}", "Accept-Language": "en"}
    task_id = open_task(shipped, case_id, "Task_contract")

    response = http.post(f"/api/tasks/{task_id}/complete", headers=headers,
                         json={"data": step_data("procurement", "single_source_completed", "Task_contract")})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "control_failed"
    assert "Step 审核签订采购合同 cannot be completed" in error["message"]
    assert [(c["control_id"], c["control_type"], c["checkpoint_id"]) for c in error["details"]["controls"]] == \
        [("C-CG-publicity", "publicityPeriod", "RC-CG-07")]
    case = http.get(f"/api/cases/{case_id}", headers=headers).json()
    assert [task["element_id"] for task in case["tasks"]] == ["Task_contract"]
    assert "contract_no" not in case["data"]
