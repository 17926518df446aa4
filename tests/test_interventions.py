"""Administrative interventions: admin only, with a reason, recorded in the trace with the approver."""

from __future__ import annotations

import pytest

from engine import interventions
from engine.errors import Conflict, Forbidden, InvalidInput
from engine.service import Liuhen
from engine.user_admin import deactivate_user
from tests.bpmn_builder import definitions, flow, lanes, node, process, sequence, user_task
from tests.conftest import ADMIN, DESIGNER, add_user

LANED = definitions(process(
    "laned",
    lanes({"受理窗口": ["S", "Accept"], "审批科室": ["Approve", "E"]}),
    node("startEvent", "S"), user_task("Accept", fields=[("amount", "integer")]), user_task("Approve"),
    node("endEvent", "E"),
    flow("f1", "S", "Accept"), flow("f2", "Accept", "Approve"), flow("f3", "Approve", "E"),
))


@pytest.fixture
def case(service: Liuhen) -> dict:
    service.deploy(LANED, "laned.bpmn", DESIGNER)
    clerk = add_user(service, "clerk", ["staff"], ["受理窗口"])
    add_user(service, "clerk2", ["staff"], ["受理窗口"])
    add_user(service, "approver", ["staff"], ["审批科室"])
    return service.start_case("laned", clerk)


def last_event(service: Liuhen, case_id: int, kind: str) -> dict:
    return [e for e in service.case_trace(case_id) if e["kind"] == kind][-1]


def test_reassign_records_approver_and_checks_post(service, case) -> None:
    task_id = case["tasks"][0]["id"]
    with pytest.raises(InvalidInput) as wrong_post:
        interventions.reassign_task(service, task_id, ADMIN, "approver", "原经办人休假")
    assert "受理窗口" in wrong_post.value.render("en")
    with pytest.raises(Forbidden):
        interventions.reassign_task(service, task_id, add_user(service, "boss", ["staff"]), "clerk2", "原经办人休假")
    with pytest.raises(InvalidInput):
        interventions.reassign_task(service, task_id, ADMIN, "clerk2", "")

    result = interventions.reassign_task(service, task_id, ADMIN, "clerk2", "原经办人休假")

    assert result["tasks"][0]["assignee"] == "clerk2"
    event = last_event(service, case["id"], "task_reassigned")
    assert event["payload"] == {"reason": "原经办人休假", "approved_by": "admin", "previous_assignee": None,
                                "assignee": "clerk2"}
    assert event["actor"] == "admin"


def test_reassign_to_deactivated_user_rejected(service, case) -> None:
    task_id = case["tasks"][0]["id"]
    deactivate_user(service, ADMIN, "clerk2")
    with pytest.raises(InvalidInput) as rejected:
        interventions.reassign_task(service, task_id, ADMIN, "clerk2", "原经办人休假")
    message = rejected.value.render("en")
    assert "clerk2" in message
    assert "deactivated" in message
    assert service.get_case(case["id"])["tasks"][0]["assignee"] is None


def test_skip_step_moves_case_on(service, case) -> None:
    result = interventions.skip_step(service, case["tasks"][0]["id"], ADMIN, "申请人当场补正，经批准跳过")
    assert [t["element_id"] for t in result["tasks"]] == ["Approve"]
    kinds = [e["kind"] for e in service.case_trace(case["id"])]
    assert kinds[-3:] == ["step_skipped", "task_completed", "task_ready"]
    assert service.verify(case["id"])[0].ok


def test_edit_data_keeps_previous_values(service, case) -> None:
    clerk = add_user(service, "third", ["staff"], ["受理窗口"])
    service.complete(case["tasks"][0]["id"], clerk, {"amount": 5})

    result = interventions.edit_case_data(service, case["id"], ADMIN, {"amount": 50}, "金额录入错误，按发票更正")

    assert result["data"]["amount"] == 50
    event = last_event(service, case["id"], "data_edited")
    assert event["payload"]["previous"] == {"amount": 5}
    assert event["payload"]["changes"] == {"amount": 50}


def test_migrate_to_version_with_added_step(service) -> None:
    service.deploy(sequence("evolving", ["A", "B"]), "v1.bpmn", DESIGNER)
    service.deploy(sequence("evolving", ["A", "B", "C"]), "v2.bpmn", DESIGNER)
    staff = add_user(service, "worker", ["staff"])
    case = service.start_case("evolving", staff, version=1)
    case = service.complete(case["tasks"][0]["id"], staff, {})

    moved = interventions.migrate_case(service, case["id"], ADMIN, 2, "新版流程增加复核环节")

    assert moved["version"] == 2
    assert [t["element_id"] for t in moved["tasks"]] == ["B"]
    after_b = service.complete(moved["tasks"][0]["id"], staff, {})
    assert [t["element_id"] for t in after_b["tasks"]] == ["C"]
    done = service.complete(after_b["tasks"][0]["id"], staff, {})
    assert done["status"] == "completed"
    event = last_event(service, case["id"], "case_migrated")
    assert event["payload"]["to_version"] == 2
    assert service.verify(case["id"])[0].ok


def test_migrate_refused_when_step_removed(service) -> None:
    service.deploy(sequence("shrinking", ["A", "B"]), "v1.bpmn", DESIGNER)
    service.deploy(sequence("shrinking", ["A"]), "v2.bpmn", DESIGNER)
    staff = add_user(service, "worker", ["staff"])
    case = service.start_case("shrinking", staff, version=1)
    case = service.complete(case["tasks"][0]["id"], staff, {})

    with pytest.raises(Conflict) as refused:
        interventions.migrate_case(service, case["id"], ADMIN, 2, "尝试迁移到删减后的版本")

    assert "B" in refused.value.render("en")
    assert service.get_case(case["id"])["version"] == 1
    assert "case_migrated" not in [e["kind"] for e in service.case_trace(case["id"])]
