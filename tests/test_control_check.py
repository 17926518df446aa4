"""The dry run of a step's controls, POST /api/tasks/{id}/check, over HTTP on each database.

It must judge the typed data exactly as a completion would, and leave the case, its trace, the risk
events, the votes and the overrides as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from engine import overrides
from engine.db import control_overrides, review_votes, risk_events
from engine.service import Liuhen
from tests.conftest import DESIGNER, PROCESSES, LiveServer, add_user
from tests.test_quorum import TWO_REFUSE

SUBMITTED = {"amount": 260.5, "expense_type": "office_supplies", "purpose": "购买打印纸和墨盒", "involves_goods": False,
             "invoice_count": 2, "expense_date": "2026-11-30", "payee": "市文具商店"}
SHORT_REFUSAL = {"director_decision": "refuse", "director_opinion": "不同意"}
REASONED_REFUSAL = {"director_decision": "refuse", "director_opinion": "属个人支出，不得用公款报销，请自行承担。"}


@pytest.fixture
def client(service: Liuhen) -> Iterator[httpx.Client]:
    path = PROCESSES / "reimbursement.bpmn"
    service.deploy(path.read_bytes(), path.name, DESIGNER)
    service.deploy(TWO_REFUSE, "dual_review.bpmn", DESIGNER)
    add_user(service, "zhou_hong", ["staff"], ["经办人"])
    add_user(service, "ma_jun", ["staff"], ["总务主任"])
    add_user(service, "ma_li", ["staff"], ["总务主任"])
    add_user(service, "clerk", ["staff"], ["受理窗口"])
    for name in ("reviewer1", "reviewer2"):
        add_user(service, name, ["staff"], ["审批科室"])
    add_user(service, "qian_qing", ["auditor"])
    for name in ("admin1", "admin2"):
        add_user(service, name, ["admin"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def login(client: httpx.Client, username: str, language: str = "en") -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": language}


def director_step(client: httpx.Client) -> tuple[int, str]:
    """Start a reimbursement and submit it; return the case id and the task id of the director's approval."""
    clerk = login(client, "zhou_hong")
    case = client.post("/api/cases", json={"process_id": "reimbursement", "title": "办公用品报销"}, headers=clerk)
    assert case.status_code in (200, 201), case.text
    submitted = client.post(f"/api/tasks/{case.json()['tasks'][0]['id']}/complete", json={"data": SUBMITTED},
                            headers=clerk)
    assert submitted.status_code == 200, submitted.text
    [task] = submitted.json()["tasks"]
    assert task["element_id"] == "Task_director_approve"
    return case.json()["id"], task["id"]


def check(client: httpx.Client, task_id: str, username: str, data: dict[str, Any],
          language: str = "en") -> httpx.Response:
    return client.post(f"/api/tasks/{task_id}/check", json={"data": data}, headers=login(client, username, language))


def stored_state(client: httpx.Client, service: Liuhen, case_id: int) -> dict[str, Any]:
    """Everything a dry run must leave alone: the case, its trace, risk events, votes and overrides."""
    auditor = login(client, "qian_qing")
    with service.db.read() as conn:
        counts = {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                  for table in (risk_events, review_votes, control_overrides)}
        statuses = conn.execute(select(control_overrides.c.status).order_by(control_overrides.c.id)).scalars().all()
    return {"case": client.get(f"/api/cases/{case_id}", headers=auditor).json(),
            "trace": client.get(f"/api/cases/{case_id}/trace", headers=auditor).json(),
            "counts": counts, "override_statuses": statuses}


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {control["id"]: control for control in result["controls"]}


def test_failing_hard_control_reported(client, service) -> None:
    case_id, task_id = director_step(client)
    before = stored_state(client, service, case_id)

    response = check(client, task_id, "ma_jun", SHORT_REFUSAL)

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["blocked"] is True
    assert result["field_problems"] == []
    control = by_id(result)["C-BX-director-reason"]
    assert control["type"] == "reasonedDecision"
    assert control["rule"] == "reasoned decision"
    assert control["checkpoint_id"] == "RC-BX-04"
    assert control["enforcement"] == "hard"
    assert control["passed"] is False
    assert control["overridden"] is False
    # The message names the decision and the field by the labels the form shows.
    assert control["message"] == ("the decision 不同意 needs a written reason of at least 10 characters in field "
                                  "审批说明, and the reason given has 3; state the reasons in full.")
    assert stored_state(client, service, case_id) == before


def test_message_in_reader_language(client, service) -> None:
    _case_id, task_id = director_step(client)

    result = check(client, task_id, "ma_jun", SHORT_REFUSAL, language="zh-CN").json()

    control = by_id(result)["C-BX-director-reason"]
    assert control["rule"] == "决定须说明理由"
    assert "决定“不同意”须在“审批说明”中书面说明理由，至少 10 个字" in control["message"]


def test_passing_data_not_blocked(client, service) -> None:
    case_id, task_id = director_step(client)
    before = stored_state(client, service, case_id)

    for data in ({}, {"director_decision": "approve"}, REASONED_REFUSAL):
        result = check(client, task_id, "ma_jun", data).json()
        assert result["blocked"] is False, data
        assert [control["passed"] for control in result["controls"]] == [True], data
    assert stored_state(client, service, case_id) == before


def test_check_agrees_with_completion(client, service) -> None:
    _case_id, task_id = director_step(client)
    director = login(client, "ma_jun")

    checked = check(client, task_id, "ma_jun", SHORT_REFUSAL).json()
    completed = client.post(f"/api/tasks/{task_id}/complete", json={"data": SHORT_REFUSAL}, headers=director)

    assert completed.status_code == 422
    failures = completed.json()["error"]["details"]["controls"]
    assert [failure["control_id"] for failure in failures] == [
        control["id"] for control in checked["controls"] if not control["passed"]]
    assert checked["controls"][0]["message"] in failures[0]["message"]

    checked = check(client, task_id, "ma_jun", REASONED_REFUSAL).json()
    completed = client.post(f"/api/tasks/{task_id}/complete", json={"data": REASONED_REFUSAL}, headers=director)
    assert checked["blocked"] is False
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "completed"


def test_soft_failure_records_no_risk_event(client, service, clock) -> None:
    clerk = login(client, "zhou_hong")
    split = {**SUBMITTED, "amount": 6000, "payee": "某县图书发行有限公司"}
    first = client.post("/api/cases", json={"process_id": "reimbursement"}, headers=clerk).json()
    assert client.post(f"/api/tasks/{first['tasks'][0]['id']}/complete", json={"data": split},
                       headers=clerk).status_code == 200
    clock.advance(timedelta(days=3))
    # Three days on, the first login token has expired.
    clerk = login(client, "zhou_hong")
    second = client.post("/api/cases", json={"process_id": "reimbursement"}, headers=clerk).json()
    task_id = second["tasks"][0]["id"]
    before = stored_state(client, service, second["id"])

    result = check(client, task_id, "zhou_hong", split).json()

    control = by_id(result)["C-BX-split"]
    assert control["enforcement"] == "soft"
    assert control["passed"] is False
    assert f"cases {first['id']}" in control["message"]
    assert result["blocked"] is False
    assert stored_state(client, service, second["id"]) == before

    # The completion with the same data goes ahead and records the risk event the dry run left out.
    completed = client.post(f"/api/tasks/{task_id}/complete", json={"data": split}, headers=clerk)
    assert completed.status_code == 200, completed.text
    with service.db.read() as conn:
        kinds = conn.execute(select(risk_events.c.kind).where(risk_events.c.case_id == second["id"])).scalars().all()
    assert kinds == ["split_suspected"]


def test_invalid_value_is_field_problem(client, service) -> None:
    clerk = login(client, "zhou_hong")
    case = client.post("/api/cases", json={"process_id": "reimbursement"}, headers=clerk).json()

    result = check(client, case["tasks"][0]["id"], "zhou_hong", {"amount": "两百", "payee": "市文具商店"}).json()

    assert [problem["field"] for problem in result["field_problems"]] == ["amount"]
    assert "'两百'" in result["field_problems"][0]["message"]
    assert {control["id"] for control in result["controls"]} == {"C-BX-split"}
    assert result["blocked"] is False


def test_override_stays_unused(client, service) -> None:
    case_id, task_id = director_step(client)
    admin1, admin2 = service_actor(service, "admin1"), service_actor(service, "admin2")
    requested = overrides.request_override(service, task_id, "C-BX-director-reason", "校长已当面说明拒绝理由", admin1)
    overrides.decide_override(service, requested["id"], admin2, True)
    before = stored_state(client, service, case_id)

    result = check(client, task_id, "ma_jun", SHORT_REFUSAL).json()

    control = by_id(result)["C-BX-director-reason"]
    assert control["passed"] is False
    assert control["overridden"] is True
    assert result["blocked"] is False
    assert stored_state(client, service, case_id) == before
    assert before["override_statuses"] == ["approved"]


def test_quorum_vote_checked(client, service) -> None:
    clerk = login(client, "clerk")
    case = client.post("/api/cases", json={"process_id": "dual_review"}, headers=clerk).json()
    accepted = client.post(f"/api/tasks/{case['tasks'][0]['id']}/complete", json={"data": {"amount": 500}},
                           headers=clerk).json()
    task_id = accepted["tasks"][0]["id"]
    vote = {"decision": "approve", "decision_reason": "材料齐全，符合条件"}
    voted = client.post(f"/api/tasks/{task_id}/complete", json={"data": vote}, headers=login(client, "reviewer1"))
    assert voted.status_code == 200, voted.text
    before = stored_state(client, service, case["id"])

    again = by_id(check(client, task_id, "reviewer1", vote).json())["C_quorum"]
    other = check(client, task_id, "reviewer2", vote).json()
    undecided = by_id(check(client, task_id, "reviewer2", {}).json())["C_quorum"]

    assert again["passed"] is False
    assert "You have already voted on task" in again["message"]
    assert other["blocked"] is False
    assert by_id(other)["C_quorum"]["message"] == ("1 of the 2 approvers this step needs have voted; this vote would "
                                                   "be number 2.")
    assert undecided["passed"] is False
    assert "needs each approver's decision in field decision" in undecided["message"]
    assert stored_state(client, service, case["id"]) == before


@pytest.mark.parametrize(("username", "data", "status", "quoted"), [
    ("ma_jun", {"colour": "red"}, 422, "This step has no field 'colour'"),
    ("zhou_hong", {}, 403, "belongs to the post 总务主任, which user zhou_hong does not hold"),
    ("qian_qing", {}, 403, "is not business staff"),
])
def test_check_refused_like_completion(client, service, username, data, status, quoted) -> None:
    _case_id, task_id = director_step(client)

    response = check(client, task_id, username, data)

    assert response.status_code == status, response.text
    assert quoted in response.json()["error"]["message"]


def test_check_of_claimed_or_closed_task(client, service) -> None:
    _case_id, task_id = director_step(client)
    director = login(client, "ma_jun")
    assert client.post(f"/api/tasks/{task_id}/claim", headers=director).status_code == 200

    held = check(client, task_id, "ma_li", {})
    assert held.status_code == 409
    assert "is claimed by ma_jun" in held.json()["error"]["message"]

    done = client.post(f"/api/tasks/{task_id}/complete", json={"data": {"director_decision": "approve",
                                                                        "director_opinion": "同意"}},
                       headers=director)
    assert done.status_code == 200, done.text
    closed = check(client, task_id, "ma_jun", {})
    assert closed.status_code == 409
    assert "is already completed" in closed.json()["error"]["message"]

    missing = check(client, "00000000-0000-0000-0000-000000000000", "ma_jun", {})
    assert missing.status_code == 404


def service_actor(service: Liuhen, username: str) -> Any:
    from engine.users import get_actor

    with service.db.read() as conn:
        return get_actor(conn, username)
