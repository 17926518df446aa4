"""Steps that need several distinct approvers: votes, the combined decision, risk events and replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from engine.clock import ManualClock
from engine.db import review_votes, risk_events
from engine.replay import replay_case, state_at
from engine.service import Liuhen
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import LiveServer, add_user

REVIEWERS = ("reviewer1", "reviewer2", "reviewer3")


def review_process(quorum: str) -> bytes:
    """Acceptance, then a review step with the given quorum control, then a gateway on the decision."""
    form = (
        '<liuhen:formField name="decision" type="enum" label="审核意见" required="true">'
        '<liuhen:option value="approve" label="同意"/><liuhen:option value="refuse" label="不同意"/>'
        '<liuhen:option value="return" label="退回"/></liuhen:formField>'
        '<liuhen:formField name="decision_reason" type="text" label="理由"/>'
    )
    checkpoint = (
        '<liuhen:riskCheckpoint id="RC_review" level="high" category="power_operation">'
        "<liuhen:description>一人审批即可决定结果</liuhen:description>"
        "<liuhen:controlMeasure>双人复核</liuhen:controlMeasure>"
        f'<liuhen:control id="C_quorum" type="quorum" decisionField="decision" reasonField="decision_reason" {quorum}/>'
        "</liuhen:riskCheckpoint>"
    )
    review = node("userTask", "Review", "复核", f"<bpmn:extensionElements>{form}{checkpoint}</bpmn:extensionElements>")
    return definitions(process(
        "dual_review",
        lanes({"受理窗口": ["S", "Accept"], "审批科室": ["Review", "Decide", "Issue", "Approved", "Returned",
                                                         "Refused"]}),
        node("startEvent", "S"), user_task("Accept", "受理", fields=[("amount", "integer")]), review,
        node("exclusiveGateway", "Decide", "审核结果"), user_task("Issue", "发证"),
        node("endEvent", "Approved"), node("endEvent", "Returned"), node("endEvent", "Refused"),
        flow("f1", "S", "Accept"), flow("f2", "Accept", "Review"), flow("f3", "Review", "Decide"),
        flow("f4", "Decide", "Issue", "decision == 'approve'"), flow("f5", "Issue", "Approved"),
        flow("f6", "Decide", "Returned", "decision == 'return'"),
        flow("f7", "Decide", "Refused", "decision == 'refuse'"),
    ))


TWO_REFUSE = review_process('approvers="2" onDisagreement="refuse"')
TWO_MAJORITY = review_process('approvers="2" onDisagreement="majority" tieBreak="return"')
THREE_MAJORITY = review_process('approvers="3" onDisagreement="majority" tieBreak="return"')


@pytest.fixture
def api(service: Liuhen) -> Iterator[httpx.Client]:
    add_user(service, "designer", ["designer"])
    add_user(service, "clerk", ["staff"], ["受理窗口"])
    for name in REVIEWERS:
        add_user(service, name, ["staff"], ["审批科室"])
    add_user(service, "auditor", ["auditor"])
    add_user(service, "admin", ["admin"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"}


def start_review(client: httpx.Client, content: bytes) -> tuple[int, str]:
    """Deploy ``content``, start a case, complete its acceptance; return the case id and the review task id."""
    deployed = client.post("/api/definitions", params={"filename": "dual_review.bpmn"}, content=content,
                           headers={**login(client, "designer"), "Content-Type": "application/xml"})
    assert deployed.status_code in (200, 201), deployed.text
    clerk = login(client, "clerk")
    case = client.post("/api/cases", json={"process_id": "dual_review"}, headers=clerk).json()
    accepted = client.post(f"/api/tasks/{case['tasks'][0]['id']}/complete", json={"data": {"amount": 500}},
                           headers=clerk)
    assert accepted.status_code == 200, accepted.text
    [review] = accepted.json()["tasks"]
    assert review["element_id"] == "Review"
    return case["id"], review["id"]


def vote(client: httpx.Client, task_id: str, username: str, decision: str | None,
         reason: str = "材料齐全，符合条件") -> httpx.Response:
    data: dict[str, Any] = {"decision": decision, "decision_reason": reason}
    return client.post(f"/api/tasks/{task_id}/complete", json={"data": data}, headers=login(client, username))


def case_trace(client: httpx.Client, case_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/cases/{case_id}/trace", headers=login(client, "auditor"))
    assert response.status_code == 200, response.text
    return response.json()


def stored_votes(service: Liuhen, task_id: str) -> list[Any]:
    with service.db.read() as conn:
        return conn.execute(select(review_votes).where(review_votes.c.task_id == task_id)
                            .order_by(review_votes.c.id)).all()


def stored_risk_events(service: Liuhen, case_id: int) -> list[Any]:
    with service.db.read() as conn:
        return conn.execute(select(risk_events).where(risk_events.c.case_id == case_id)
                            .order_by(risk_events.c.id)).all()


def test_first_vote_leaves_task_open(api, service) -> None:
    case_id, task_id = start_review(api, TWO_REFUSE)

    first = vote(api, task_id, "reviewer1", "approve")

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "running"
    assert body["review"]["needed"] == 2
    assert [v["actor"] for v in body["review"]["votes"]] == ["reviewer1"]
    assert body["review"]["complete"] is False
    [task] = body["tasks"]
    assert (task["id"], task["status"], task["assignee"]) == (task_id, "ready", None)
    assert body["data"].get("decision") is None
    [row] = stored_votes(service, task_id)
    assert (row.actor, row.decision, row.reason, row.element_id) == ("reviewer1", "approve", "材料齐全，符合条件",
                                                                     "Review")
    assert row.data == {"decision": "approve", "decision_reason": "材料齐全，符合条件"}
    kinds = [e["kind"] for e in case_trace(api, case_id)]
    assert kinds[-1] == "review_recorded"
    assert kinds.count("task_completed") == 1


def test_task_shows_votes_so_far(api) -> None:
    _case_id, task_id = start_review(api, TWO_REFUSE)
    before = api.get(f"/api/tasks/{task_id}", headers=login(api, "reviewer2")).json()
    assert before["review"]["needed"] == 2
    assert before["review"]["votes"] == []

    vote(api, task_id, "reviewer1", "approve")
    task = api.get(f"/api/tasks/{task_id}", headers=login(api, "reviewer2")).json()

    [first] = task["review"]["votes"]
    assert (first["actor"], first["decision"], first["reason"]) == ("reviewer1", "approve", "材料齐全，符合条件")
    assert task["review"]["decision"] is None
    assert task["status"] == "ready"


def test_same_actor_twice_conflicts(api, service) -> None:
    case_id, task_id = start_review(api, TWO_REFUSE)
    vote(api, task_id, "reviewer1", "approve")
    events_before = len(case_trace(api, case_id))

    again = vote(api, task_id, "reviewer1", "refuse")

    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "conflict"
    assert error["message"] == (f"You have already voted on task {task_id}. Step Review needs votes from 2 different "
                                "approvers and has 1, so the next vote must come from another approver.")
    assert [row.decision for row in stored_votes(service, task_id)] == ["approve"]
    assert len(case_trace(api, case_id)) == events_before


def test_claimed_vote_returns_task_to_post(api) -> None:
    _case_id, task_id = start_review(api, TWO_REFUSE)
    claimed = api.post(f"/api/tasks/{task_id}/claim", headers=login(api, "reviewer1"))
    assert claimed.json()["assignee"] == "reviewer1"

    voted = vote(api, task_id, "reviewer1", "approve")

    [task] = voted.json()["tasks"]
    assert (task["status"], task["assignee"]) == ("ready", None)
    assert task_id in [t["id"] for t in api.get("/api/tasks", headers=login(api, "reviewer2")).json()]


def test_each_vote_validates_form(api, service) -> None:
    _case_id, task_id = start_review(api, TWO_REFUSE)

    missing = vote(api, task_id, "reviewer1", None)
    unknown = vote(api, task_id, "reviewer1", "maybe")

    assert missing.status_code == 422
    assert missing.json()["error"]["message"] == "Field decision (审核意见) is required; fill it in."
    assert unknown.status_code == 422
    assert "'maybe'" in unknown.json()["error"]["message"]
    assert stored_votes(service, task_id) == []
    vote(api, task_id, "reviewer1", "approve")
    second_invalid = vote(api, task_id, "reviewer2", "maybe")
    assert second_invalid.status_code == 422
    assert len(stored_votes(service, task_id)) == 1


def test_second_distinct_actor_completes(api, service) -> None:
    case_id, task_id = start_review(api, TWO_REFUSE)
    vote(api, task_id, "reviewer1", "approve")

    second = vote(api, task_id, "reviewer2", "approve", "同意发证")

    assert second.status_code == 200, second.text
    body = second.json()
    assert [t["element_id"] for t in body["tasks"]] == ["Issue"]
    assert body["data"]["decision"] == "approve"
    assert body["data"]["decision_reason"] == "同意发证"
    assert body["review"]["complete"] is True
    assert body["review"]["decision"] == "approve"
    assert body["review"]["unanimous"] is True
    assert [v["actor"] for v in body["review"]["votes"]] == ["reviewer1", "reviewer2"]
    task = api.get(f"/api/tasks/{task_id}", headers=login(api, "auditor")).json()
    assert (task["status"], task["completed_by"]) == ("completed", "reviewer2")

    events = case_trace(api, case_id)
    assert [e["actor"] for e in events if e["kind"] == "review_recorded"] == ["reviewer1", "reviewer2"]
    [completed] = [e for e in events if e["kind"] == "task_completed" and e["element_id"] == "Review"]
    listed = [(v["actor"], v["decision"]) for v in completed["payload"]["votes"]]
    assert listed == [("reviewer1", "approve"), ("reviewer2", "approve")]
    assert not [e for e in events if e["kind"] == "risk_event"]
    assert stored_risk_events(service, case_id) == []


def test_disagreement_takes_rule_decision(api) -> None:
    _case_id, task_id = start_review(api, TWO_REFUSE)
    vote(api, task_id, "reviewer1", "approve")

    second = vote(api, task_id, "reviewer2", "return", "缺少资产证明")

    body = second.json()
    assert body["status"] == "completed"
    assert body["end_element_id"] == "Refused"
    assert body["data"]["decision"] == "refuse"
    assert body["review"]["decision"] == "refuse"
    assert body["review"]["unanimous"] is False


def test_disagreement_records_risk_event(api, service) -> None:
    case_id, task_id = start_review(api, TWO_REFUSE)
    vote(api, task_id, "reviewer1", "approve")
    vote(api, task_id, "reviewer2", "return")

    [row] = stored_risk_events(service, case_id)
    assert (row.kind, row.level, row.checkpoint_id, row.control_id) == ("review_disagreement", "high", "RC_review",
                                                                       "C_quorum")
    assert (row.element_id, row.task_id, row.post, row.actor) == ("Review", task_id, "审批科室", "reviewer2")
    assert row.details["decision"] == "refuse"
    assert row.details["settled_by"] == "rule"
    assert row.details["votes"] == [{"actor": "reviewer1", "decision": "approve"},
                                    {"actor": "reviewer2", "decision": "return"}]
    [event] = [e for e in case_trace(api, case_id) if e["kind"] == "risk_event"]
    assert event["payload"]["risk_kind"] == "review_disagreement"
    assert event["payload"]["level"] == "high"
    assert event["task_id"] == task_id


def test_majority_decides(api, service) -> None:
    case_id, task_id = start_review(api, THREE_MAJORITY)
    vote(api, task_id, "reviewer1", "approve")
    vote(api, task_id, "reviewer2", "refuse")
    assert api.get(f"/api/tasks/{task_id}", headers=login(api, "auditor")).json()["status"] == "ready"

    third = vote(api, task_id, "reviewer3", "approve")

    body = third.json()
    assert body["data"]["decision"] == "approve"
    assert [t["element_id"] for t in body["tasks"]] == ["Issue"]
    assert len(body["review"]["votes"]) == 3
    [row] = stored_risk_events(service, case_id)
    assert row.details["settled_by"] == "majority"


def test_majority_tie_takes_tie_break(api, service) -> None:
    case_id, task_id = start_review(api, TWO_MAJORITY)
    vote(api, task_id, "reviewer1", "approve")

    second = vote(api, task_id, "reviewer2", "refuse")

    body = second.json()
    assert body["end_element_id"] == "Returned"
    assert body["data"]["decision"] == "return"
    [row] = stored_risk_events(service, case_id)
    assert (row.kind, row.details["settled_by"], row.details["decision"]) == ("review_disagreement", "tie_break",
                                                                              "return")


def test_majority_unanimous_has_no_risk_event(api, service) -> None:
    case_id, task_id = start_review(api, TWO_MAJORITY)
    vote(api, task_id, "reviewer1", "refuse")

    second = vote(api, task_id, "reviewer2", "refuse")

    assert second.json()["end_element_id"] == "Refused"
    assert stored_risk_events(service, case_id) == []


def test_votes_of_cancelled_task_stay(api, service) -> None:
    case_id, task_id = start_review(api, TWO_REFUSE)
    vote(api, task_id, "reviewer1", "approve")

    cancelled = api.post(f"/api/cases/{case_id}/cancel", json={"reason": "申请人撤回申请"},
                         headers=login(api, "admin"))

    assert cancelled.status_code == 200, cancelled.text
    assert [row.actor for row in stored_votes(service, task_id)] == ["reviewer1"]
    task = api.get(f"/api/tasks/{task_id}", headers=login(api, "auditor")).json()
    assert task["status"] == "cancelled"
    assert [v["actor"] for v in task["review"]["votes"]] == ["reviewer1"]


def test_replay_and_verify_pass(api, service, clock: ManualClock) -> None:
    case_id, task_id = start_review(api, THREE_MAJORITY)
    clock.advance(timedelta(hours=1))
    api.post(f"/api/tasks/{task_id}/claim", headers=login(api, "reviewer1"))
    vote(api, task_id, "reviewer1", "approve")
    clock.advance(timedelta(hours=2))
    vote(api, task_id, "reviewer2", "return")
    clock.advance(timedelta(days=1))
    third = vote(api, task_id, "reviewer3", "approve")
    issue = third.json()["tasks"][0]["id"]
    api.post(f"/api/tasks/{issue}/complete", json={"data": {}}, headers=login(api, "reviewer1"))
    auditor = login(api, "auditor")

    replayed = api.get(f"/api/cases/{case_id}/replay", headers=auditor)
    verified = api.get(f"/api/cases/{case_id}/verify", headers=auditor)
    conformance = api.get(f"/api/cases/{case_id}/conformance", headers=auditor)

    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["status"] == "consistent", replayed.json()["divergence"]
    assert verified.json()["ok"] is True
    assert conformance.json()["conforms"] is True
    assert [step["element_id"] for step in conformance.json()["path"]] == ["Accept", "Review", "Decide", "Issue",
                                                                          "Approved"]


def test_replay_of_open_review(api, service) -> None:
    case_id, task_id = start_review(api, TWO_REFUSE)
    api.post(f"/api/tasks/{task_id}/claim", headers=login(api, "reviewer1"))
    vote(api, task_id, "reviewer1", "approve")

    report = replay_case(service, case_id)
    [recorded] = [e for e in service.case_trace(case_id) if e["kind"] == "review_recorded"]
    state = state_at(service, case_id, recorded["seq"])

    assert report.status == "consistent", report.divergence
    [task] = state["open_tasks"]
    assert (task["task_id"], task["assignee"]) == (task_id, None)


def test_majority_without_tie_break_rejected(api) -> None:
    content = review_process('approvers="2" onDisagreement="majority"')

    response = api.post("/api/definitions", params={"filename": "dual_review.bpmn"}, content=content,
                        headers={**login(api, "designer"), "Content-Type": "application/xml"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "extension_invalid_value"
    assert error["message"].endswith("Control C_quorum: A quorum control that settles disagreements by majority "
                                     "needs a tieBreak attribute; write the decision that a tie leads to.")


def test_reason_from_reasoned_decision_control(api, service) -> None:
    content = review_process('approvers="2" onDisagreement="refuse"').replace(
        b' reasonField="decision_reason" approvers', b" approvers").replace(
        b"</liuhen:riskCheckpoint>",
        b'<liuhen:control id="C_reason" type="reasonedDecision" decisionField="decision" '
        b'reasonField="decision_reason" decisions="refuse return" minLength="4"/></liuhen:riskCheckpoint>')
    assert b'type="quorum" decisionField="decision" approvers' in content
    _case_id, task_id = start_review(api, content)

    voted = vote(api, task_id, "reviewer1", "return", "缺少资产证明材料")

    assert voted.status_code == 200, voted.text
    [row] = stored_votes(service, task_id)
    assert row.reason == "缺少资产证明材料"


def test_tie_break_without_majority_rejected(api) -> None:
    content = review_process('approvers="2" onDisagreement="refuse" tieBreak="return"')

    response = api.post("/api/definitions", params={"filename": "dual_review.bpmn"}, content=content,
                        headers={**login(api, "designer"), "Content-Type": "application/xml"})

    assert response.status_code == 422
    assert response.json()["error"]["message"].endswith(
        'Control C_quorum: Attribute tieBreak applies only when onDisagreement is majority; remove it, or write '
        'onDisagreement="majority".')


def test_every_voter_counts_for_separation_of_duties(api) -> None:
    separated = TWO_REFUSE.replace(
        '<bpmn:userTask id="Issue" name="发证"></bpmn:userTask>'.encode(),
        ('<bpmn:userTask id="Issue" name="发证"><bpmn:extensionElements>'
         '<liuhen:riskCheckpoint id="RC_issue" level="medium" category="power_operation">'
         "<liuhen:description>复核人自行发证</liuhen:description><liuhen:controlMeasure>审发分离</liuhen:controlMeasure>"
         '<liuhen:control id="C_sod" type="separationOfDuties"><liuhen:step ref="Review"/></liuhen:control>'
         "</liuhen:riskCheckpoint></bpmn:extensionElements></bpmn:userTask>").encode())
    assert separated != TWO_REFUSE
    case_id, task_id = start_review(api, separated)
    vote(api, task_id, "reviewer1", "approve")
    issue_id = vote(api, task_id, "reviewer2", "approve").json()["tasks"][0]["id"]

    by_first_voter = api.post(f"/api/tasks/{issue_id}/complete", json={"data": {}},
                              headers=login(api, "reviewer1"))
    by_outsider = api.post(f"/api/tasks/{issue_id}/complete", json={"data": {}}, headers=login(api, "reviewer3"))

    assert by_first_voter.status_code == 422, by_first_voter.text
    assert by_first_voter.json()["error"]["code"] == "control_failed"
    assert by_outsider.status_code == 200, by_outsider.text
