"""Executable controls over the HTTP API: hard ones block, soft ones raise risk events, overrides need two admins."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from sqlalchemy import select

from api import cli
from api.app import create_app
from engine.conformance import case_conformance
from engine.db import control_overrides, risk_events
from engine.definitions import load_definition
from engine.errors import DefinitionError
from engine.extension import NAMESPACE
from engine.i18n import message_from_json, message_list, message_to_json, msg
from engine.parser import node_extensions
from engine.service import Liuhen
from engine.trace import event_message
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import ROOT, LiveServer, add_user

CHECKPOINT = ('<liuhen:riskCheckpoint id="RC_approve" level="medium" category="power_operation">'
              "<liuhen:description>审批人违规审批</liuhen:description>"
              "<liuhen:controlMeasure>审批前由系统校验控制规则</liuhen:controlMeasure>{controls}"
              "</liuhen:riskCheckpoint>")
POWER_ITEM = ('<liuhen:powerItem code="T-XK-001" kind="external"><liuhen:name>测试许可</liuhen:name>'
              "<liuhen:handlingBody>测试科</liuhen:handlingBody><liuhen:legalBasis>《测试办法》</liuhen:legalBasis>"
              '<liuhen:requiredMaterial id="M_application" name="申请书"/>'
              '<liuhen:requiredMaterial id="M_assets" name="资产证明"/></liuhen:powerItem>')


def flowchart(controls: str, approve_node: str = "userTask") -> bytes:
    """Accept, an optional collective decision, then Approve, which carries ``controls`` and may return the case."""
    extra = f"<bpmn:extensionElements>{CHECKPOINT.format(controls=controls)}</bpmn:extensionElements>"
    return definitions(process(
        "controlled",
        lanes({"受理窗口": ["S", "Accept", "G"], "领导班子": ["Collective"], "审批科室": ["Approve", "G2", "E"]}),
        node("startEvent", "S"), user_task("Accept"), node("exclusiveGateway", "G", default="f_direct"),
        user_task("Collective"), node(approve_node, "Approve", "审批", extra),
        node("exclusiveGateway", "G2", default="f_end"), node("endEvent", "E"),
        flow("f1", "S", "Accept"), flow("f2", "Accept", "G"),
        flow("f_collective", "G", "Collective", "collective == True"), flow("f_direct", "G", "Approve"),
        flow("f3", "Collective", "Approve"), flow("f4", "Approve", "G2"),
        flow("f_return", "G2", "Accept", 'decision == "return"'), flow("f_end", "G2", "E"),
        extensions=POWER_ITEM,
    ))


@dataclass
class Scenario:
    """A control on Approve and a way through the flowchart that breaks it."""

    control: str
    accept: dict[str, Any] = field(default_factory=dict)
    accept_user: str = "clerk"
    approver: str = "approver"
    decision: dict[str, Any] = field(default_factory=dict)
    earlier_cases: int = 0

    def xml(self, enforcement: str) -> str:
        return self.control.format(enforcement=f' enforcement="{enforcement}"' if enforcement else "")


SCENARIOS = {
    "separationOfDuties": Scenario(
        '<liuhen:control id="C_rule" type="separationOfDuties"{enforcement}><liuhen:step ref="Accept"/>'
        "</liuhen:control>", accept_user="both", approver="both"),
    "reasonedDecision": Scenario(
        '<liuhen:control id="C_rule" type="reasonedDecision"{enforcement} decisionField="decision" '
        'reasonField="decision_reason" decisions="refuse return" minLength="15"/>',
        decision={"decision": "refuse", "decision_reason": "不符合条件"}),
    "amountThreshold": Scenario(
        '<liuhen:control id="C_rule" type="amountThreshold"{enforcement} field="amount" threshold="10000">'
        '<liuhen:step ref="Collective"/></liuhen:control>', accept={"amount": 20000}),
    "splitDetection": Scenario(
        '<liuhen:control id="C_rule" type="splitDetection"{enforcement} field="amount" partyField="supplier" '
        'threshold="10000" windowDays="30"/>', accept={"amount": 6000, "supplier": "甲公司"}, earlier_cases=2),
    "recusal": Scenario(
        '<liuhen:control id="C_rule" type="recusal"{enforcement} field="recusal_declaration"/>',
        decision={"recusal_declaration": "申请人是我的表弟"}),
    "publicityPeriod": Scenario(
        '<liuhen:control id="C_rule" type="publicityPeriod"{enforcement} workingDays="5">'
        '<liuhen:step ref="Accept"/></liuhen:control>'),
    "requiredMaterials": Scenario(
        '<liuhen:control id="C_rule" type="requiredMaterials"{enforcement} field="materials_present" '
        'decisionField="decision" correctionValue="return"/>', decision={"materials_present": ["M_application"]}),
}
HARD_TYPES = [name for name in SCENARIOS if name != "splitDetection"]


class Api:
    """An HTTP client that signs in as the test users, in English."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tokens: dict[str, str] = {}

    def headers(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            response = self.client.post("/api/auth/login", json={"username": username,
                                                                 "password": f"pw-{username}-secret"})
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["token"]
        return {"Authorization": f"Bearer {self.tokens[username]}", "Accept-Language": "en"}

    def post(self, path: str, username: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.headers(username))

    def get(self, path: str, username: str = "auditor", **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers(username))

    def deploy(self, controls: str, approve_node: str = "userTask") -> httpx.Response:
        return self.client.post("/api/definitions", params={"filename": "controlled.bpmn"},
                                content=flowchart(controls, approve_node),
                                headers={**self.headers("designer"), "Content-Type": "application/xml"})

    def case(self, case_id: int) -> dict[str, Any]:
        return self.get(f"/api/cases/{case_id}").json()

    def task_id(self, case_id: int, element_id: str) -> str:
        return next(t["id"] for t in self.case(case_id)["tasks"] if t["element_id"] == element_id)

    def complete(self, case_id: int, element_id: str, username: str, data: dict[str, Any]) -> httpx.Response:
        return self.post(f"/api/tasks/{self.task_id(case_id, element_id)}/complete", username, {"data": data})

    def trace(self, case_id: int) -> list[dict[str, Any]]:
        return self.get(f"/api/cases/{case_id}/trace").json()

    def start_at_approve(self, scenario: Scenario) -> int:
        """Start a case and complete Accept with the scenario's data; returns the case id."""
        case_id = self.post("/api/cases", "clerk", {"process_id": "controlled"}).json()["id"]
        done = self.complete(case_id, "Accept", scenario.accept_user, {"collective": False, **scenario.accept})
        assert done.status_code == 200, done.text
        return int(case_id)

    def prepare(self, scenario: Scenario, enforcement: str) -> int:
        deployed = self.deploy(scenario.xml(enforcement))
        assert deployed.status_code == 200, deployed.text
        for _ in range(scenario.earlier_cases):
            self.start_at_approve(scenario)
        return self.start_at_approve(scenario)

    def break_control(self, scenario: Scenario, case_id: int) -> httpx.Response:
        return self.complete(case_id, "Approve", scenario.approver, {"decision": "approve", **scenario.decision})


@pytest.fixture
def api(service: Liuhen, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    # Cheap password hashing: these tests sign in eight users each and are not about passwords.
    monkeypatch.setattr("engine.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    add_user(service, "designer", ["designer"])
    add_user(service, "clerk", ["staff"], ["受理窗口"])
    add_user(service, "both", ["staff"], ["受理窗口", "审批科室"])
    add_user(service, "approver", ["staff"], ["审批科室"])
    add_user(service, "leader", ["staff"], ["领导班子"])
    add_user(service, "auditor", ["auditor"])
    add_user(service, "admin", ["admin"])
    add_user(service, "admin2", ["admin"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield Api(client)


def risk_rows(service: Liuhen) -> list[Any]:
    with service.db.read() as conn:
        return conn.execute(select(risk_events).order_by(risk_events.c.id)).all()


def evaluations(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["payload"] for event in trace if event["kind"] == "control_evaluated"]


def completed_steps(trace: list[dict[str, Any]]) -> list[str]:
    return [event["element_id"] for event in trace if event["kind"] == "task_completed"]


# hard controls


@pytest.mark.parametrize("control_type", HARD_TYPES)
def test_hard_control_blocks_completion(api, service, control_type) -> None:
    scenario = SCENARIOS[control_type]
    case_id = api.prepare(scenario, "hard")
    before = api.case(case_id)

    response = api.break_control(scenario, case_id)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "control_failed"
    assert "Step 审批 cannot be completed" in error["message"]
    assert "Control C_rule" in error["message"]
    assert [(c["control_id"], c["control_type"], c["checkpoint_id"]) for c in error["details"]["controls"]] == \
        [("C_rule", control_type, "RC_approve")]
    assert error["details"]["controls"][0]["message"].startswith("Control C_rule")
    after = api.case(case_id)
    assert after["status"] == "running"
    assert after["data"] == before["data"]
    assert [t["element_id"] for t in after["tasks"]] == ["Approve"]
    trace = api.trace(case_id)
    assert completed_steps(trace) == ["Accept"]
    failed = evaluations(trace)[-1]
    assert (failed["control_id"], failed["outcome"], failed["at"]) == ("C_rule", "failed", "complete")
    assert failed["message"]
    assert risk_rows(service) == []
    assert api.get(f"/api/cases/{case_id}/verify").json()["ok"] is True


@pytest.mark.parametrize("control_type", ["separationOfDuties", "amountThreshold"])
def test_hard_control_blocks_claim(api, control_type) -> None:
    scenario = SCENARIOS[control_type]
    case_id = api.prepare(scenario, "hard")
    task_id = api.task_id(case_id, "Approve")

    response = api.post(f"/api/tasks/{task_id}/claim", scenario.approver)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "control_failed"
    assert "Step 审批 cannot be claimed" in response.json()["error"]["message"]
    task = api.get(f"/api/tasks/{task_id}").json()
    assert (task["status"], task["assignee"]) == ("ready", None)
    trace = api.trace(case_id)
    assert "task_claimed" not in [e["kind"] for e in trace if e["element_id"] == "Approve"]
    failed = evaluations(trace)[-1]
    assert (failed["control_id"], failed["outcome"], failed["at"]) == ("C_rule", "failed", "claim")


def test_control_messages_name_rule_and_remedy(api) -> None:
    scenario = SCENARIOS["amountThreshold"]
    case_id = api.prepare(scenario, "hard")

    message = api.break_control(scenario, case_id).json()["error"]["message"]

    assert message == ("Step 审批 cannot be completed; nothing was saved. Control C_rule (amount threshold) "
                       "failed: the amount 20000 in field amount is above the threshold of 10000, so step "
                       "Collective must be completed in this case first.")


def test_trace_shows_control_message_in_reader_language(api) -> None:
    scenario = SCENARIOS["amountThreshold"]
    case_id = api.prepare(scenario, "hard")
    api.break_control(scenario, case_id)

    english = api.trace(case_id)
    chinese = api.client.get(f"/api/cases/{case_id}/trace",
                             headers={**api.headers("auditor"), "Accept-Language": "zh-CN"}).json()

    failed_en = [event for event in english if event["kind"] == "control_evaluated"][-1]
    failed_zh = [event for event in chinese if event["kind"] == "control_evaluated"][-1]
    msgid = ("the amount {amount} in field {field} is above the threshold of {threshold}, so step {steps} must be "
             "completed in this case first.")
    assert failed_en["payload"]["message_id"] == msgid
    assert failed_en["payload"]["message_params"] == {"amount": "20000", "field": "amount", "threshold": "10000",
                                                      "steps": "Collective"}
    assert failed_en["message"] == failed_en["payload"]["message"]
    assert failed_en["message"].startswith("the amount 20000 in field amount")
    assert failed_zh["message"] == "“amount”中的金额 20000 超过限额 10000，本办件须先办结“Collective”环节。"
    assert failed_zh["payload"] == failed_en["payload"]


def test_stored_material_list_renders_like_original(api) -> None:
    scenario = SCENARIOS["requiredMaterials"]
    case_id = api.prepare(scenario, "hard")
    api.break_control(scenario, case_id)

    failed = evaluations(api.trace(case_id))[-1]
    stored = message_from_json(failed)

    assert stored is not None
    assert failed["message_params"]["materials"] == {"message_list": [
        {"message_id": "{name} ({id})", "message_params": {"name": "资产证明", "id": "M_assets"}}]}
    assert stored.render("en") == failed["message"]
    assert failed["message"].startswith("materials 资产证明 (M_assets) are not marked as received")
    two = msg("materials {materials} are missing.", materials=message_list(
        [msg("{name} ({id})", name="申请书", id="M_application"), "M_assets"]))
    assert message_from_json(message_to_json(two)) == two
    assert str(two) == "materials 申请书 (M_application), M_assets are missing."


def test_event_message_falls_back_to_stored_text() -> None:
    older = {"payload": {"control_id": "C_rule", "outcome": "failed", "message": "the rule is not met."}}
    mismatched = {"payload": {"message": "stored text", "message_id": "value {missing}", "message_params": {}}}

    assert event_message(older, "zh_CN") == "the rule is not met."
    assert event_message(mismatched, "zh_CN") == "stored text"
    assert event_message({"payload": {"control_id": "C_rule"}}, "en") is None


def test_controls_pass_when_rules_are_met(api, service) -> None:
    controls = "".join(SCENARIOS[name].xml("hard") for name in ("separationOfDuties", "amountThreshold"))
    api.deploy(controls.replace('id="C_rule" type="amountThreshold"', 'id="C_amount" type="amountThreshold"'))
    case_id = api.start_at_approve(Scenario("", accept={"amount": 500}))

    claimed = api.post(f"/api/tasks/{api.task_id(case_id, 'Approve')}/claim", "approver")
    done = api.complete(case_id, "Approve", "approver", {"decision": "approve"})

    assert claimed.status_code == 200, claimed.text
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    outcomes = [(e["control_id"], e["at"], e["outcome"]) for e in evaluations(api.trace(case_id))]
    assert outcomes == [("C_rule", "claim", "passed"), ("C_amount", "claim", "passed"),
                        ("C_rule", "complete", "passed"), ("C_amount", "complete", "passed")]
    assert risk_rows(service) == []


def test_amount_above_threshold_passes_after_collective_step(api) -> None:
    scenario = SCENARIOS["amountThreshold"]
    api.deploy(scenario.xml("hard"))
    case_id = api.post("/api/cases", "clerk", {"process_id": "controlled"}).json()["id"]
    api.complete(case_id, "Accept", "clerk", {"amount": 20000, "collective": True})
    api.complete(case_id, "Collective", "leader", {})

    done = api.complete(case_id, "Approve", "approver", {"decision": "approve"})

    assert done.status_code == 200, done.text
    assert evaluations(api.trace(case_id))[-1]["outcome"] == "passed"


def test_amount_that_is_not_a_number_fails(api) -> None:
    scenario = Scenario(SCENARIOS["amountThreshold"].control, accept={"amount": "两万元"})
    case_id = api.prepare(scenario, "hard")

    response = api.break_control(scenario, case_id)

    assert response.status_code == 422
    assert "field amount contains '两万元', which is not an amount" in response.json()["error"]["message"]


def test_publicity_period_counts_working_days(api, clock) -> None:
    scenario = SCENARIOS["publicityPeriod"]
    case_id = api.prepare(scenario, "hard")  # Accept completed on Tuesday 2026-12-01, Beijing time

    clock.advance(timedelta(days=7))
    api.tokens.clear()  # sign in again: the tokens expired while the clock moved
    last_day = api.break_control(scenario, case_id)
    clock.advance(timedelta(days=1))
    api.tokens.clear()
    next_day = api.break_control(scenario, case_id)

    assert last_day.status_code == 422
    assert "runs to the end of 2026-12-08" in last_day.json()["error"]["message"]
    assert next_day.status_code == 200, next_day.text


def test_missing_materials_get_one_correction_notice(api, service) -> None:
    scenario = SCENARIOS["requiredMaterials"]
    case_id = api.prepare(scenario, "hard")

    response = api.complete(case_id, "Approve", "approver", {"decision": "return", "materials_present": []})

    assert response.status_code == 200, response.text
    assert [t["element_id"] for t in response.json()["tasks"]] == ["Accept"]
    trace = api.trace(case_id)
    notices = [e["payload"] for e in trace if e["kind"] == "correction_notice"]
    assert len(notices) == 1
    assert notices[0]["missing_materials"] == [{"id": "M_application", "name": "申请书"},
                                               {"id": "M_assets", "name": "资产证明"}]
    assert evaluations(trace)[-1]["outcome"] == "passed"
    assert risk_rows(service) == []


def test_materials_accepted_as_text_list(api) -> None:
    scenario = SCENARIOS["requiredMaterials"]
    case_id = api.prepare(scenario, "hard")

    response = api.complete(case_id, "Approve", "approver",
                            {"decision": "approve", "materials_present": "M_application，M_assets"})

    assert response.status_code == 200, response.text


# soft controls


@pytest.mark.parametrize("control_type", list(SCENARIOS))
def test_soft_control_records_risk_event(api, service, control_type) -> None:
    scenario = SCENARIOS[control_type]
    case_id = api.prepare(scenario, "soft")

    response = api.break_control(scenario, case_id)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    expected_kind = "split_suspected" if control_type == "splitDetection" else "control_failed"
    rows = risk_rows(service)
    assert [(r.case_id, r.kind, r.level, r.control_id, r.checkpoint_id, r.element_id, r.post, r.actor)
            for r in rows] == [(case_id, expected_kind, "medium", "C_rule", "RC_approve", "Approve", "审批科室",
                                scenario.approver)]
    trace = api.trace(case_id)
    risk = [e for e in trace if e["kind"] == "risk_event"]
    assert [(e["payload"]["risk_kind"], e["payload"]["level"], e["payload"]["control_id"]) for e in risk] == \
        [(expected_kind, "medium", "C_rule")]
    failed = evaluations(trace)[-1]
    assert (failed["outcome"], failed["enforcement"], failed["at"]) == ("failed", "soft", "complete")
    assert completed_steps(trace)[-1] == "Approve"


def test_split_detection_lists_related_cases(api, service) -> None:
    scenario = SCENARIOS["splitDetection"]
    case_id = api.prepare(scenario, "")

    api.break_control(scenario, case_id)

    details = risk_rows(service)[0].details
    assert details["cases"] == [case_id - 2, case_id - 1]
    assert details["total"] == "18000"
    assert details["party"] == "甲公司"


def test_split_detection_ignores_cases_outside_window(api, service, clock) -> None:
    scenario = SCENARIOS["splitDetection"]
    api.deploy(scenario.xml(""))
    api.start_at_approve(scenario)
    api.start_at_approve(scenario)
    clock.advance(timedelta(days=31))
    api.tokens.clear()  # sign in again: the tokens expired while the clock moved
    case_id = api.start_at_approve(scenario)

    response = api.break_control(scenario, case_id)

    assert response.status_code == 200, response.text
    assert risk_rows(service) == []
    assert evaluations(api.trace(case_id))[-1]["outcome"] == "passed"


def test_soft_claim_failure_only_traced(api, service) -> None:
    scenario = SCENARIOS["separationOfDuties"]
    case_id = api.prepare(scenario, "soft")

    claimed = api.post(f"/api/tasks/{api.task_id(case_id, 'Approve')}/claim", "both")

    assert claimed.status_code == 200, claimed.text
    assert [(e["at"], e["outcome"]) for e in evaluations(api.trace(case_id))] == [("claim", "failed")]
    assert risk_rows(service) == []


# overrides


def request_override(api: Api, case_id: int, username: str = "admin",
                     reason: str = "申请人急需办理，已由分管领导书面同意") -> httpx.Response:
    task_id = api.task_id(case_id, "Approve")
    return api.post(f"/api/tasks/{task_id}/overrides", username, {"control_id": "C_rule", "reason": reason})


@pytest.mark.parametrize("control_type", HARD_TYPES)
def test_override_lets_hard_control_pass_once(api, service, control_type) -> None:
    scenario = SCENARIOS[control_type]
    case_id = api.prepare(scenario, "hard")
    assert api.break_control(scenario, case_id).status_code == 422
    override_id = request_override(api, case_id).json()["id"]
    assert api.post(f"/api/overrides/{override_id}/approve", "admin2").status_code == 200

    response = api.break_control(scenario, case_id)

    assert response.status_code == 200, response.text
    trace = api.trace(case_id)
    overridden = evaluations(trace)[-1]
    assert (overridden["outcome"], overridden["override_id"]) == ("overridden", override_id)
    rows = risk_rows(service)
    assert [(r.kind, r.level, r.control_id) for r in rows] == [("control_overridden", "high", "C_rule")]
    assert rows[0].details["approved_by"] == "admin2"
    assert rows[0].details["requested_by"] == "admin"
    assert api.get(f"/api/overrides/{override_id}").json()["status"] == "used"
    deviations = case_conformance(service, case_id).deviations
    assert [(d.category, d.kind) for d in deviations] == [("control", "control_overridden")]
    assert "已由分管领导书面同意" in deviations[0].message.render("en")


def test_override_needs_two_different_admins(api, service) -> None:
    scenario = SCENARIOS["separationOfDuties"]
    case_id = api.prepare(scenario, "hard")

    by_staff = request_override(api, case_id, "approver")
    too_short = request_override(api, case_id, reason="急用")
    requested = request_override(api, case_id)
    override_id = requested.json()["id"]
    twice = request_override(api, case_id)
    own = api.post(f"/api/overrides/{override_id}/approve", "admin")
    by_other = api.post(f"/api/overrides/{override_id}/approve", "admin2")
    again = api.post(f"/api/overrides/{override_id}/approve", "admin2")

    assert by_staff.status_code == 403
    assert too_short.status_code == 422
    assert "at least 10 characters" in too_short.json()["error"]["message"]
    assert requested.status_code == 201, requested.text
    assert requested.json()["status"] == "pending"
    assert twice.status_code == 409
    assert own.status_code == 403
    assert "a different administrator" in own.json()["error"]["message"]
    assert by_other.status_code == 200
    assert (by_other.json()["status"], by_other.json()["decided_by"]) == ("approved", "admin2")
    assert again.status_code == 409
    kinds = [(e["kind"], e["actor"]) for e in api.trace(case_id) if e["kind"].startswith("override_")]
    assert kinds == [("override_requested", "admin"), ("override_decided", "admin2")]


def test_override_is_not_reused_for_next_round(api, service) -> None:
    scenario = SCENARIOS["separationOfDuties"]
    case_id = api.prepare(scenario, "hard")
    override_id = request_override(api, case_id).json()["id"]
    api.post(f"/api/overrides/{override_id}/approve", "admin2")
    returned = api.complete(case_id, "Approve", "both", {"decision": "return"})
    assert returned.status_code == 200, returned.text
    api.complete(case_id, "Accept", "both", {"collective": False})

    second_round = api.complete(case_id, "Approve", "both", {"decision": "approve"})

    assert second_round.status_code == 422
    assert [e["outcome"] for e in evaluations(api.trace(case_id))] == ["overridden", "failed"]
    assert len(risk_rows(service)) == 1


def test_override_waits_while_another_control_blocks(api, service) -> None:
    controls = SCENARIOS["separationOfDuties"].xml("hard") + SCENARIOS["recusal"].xml("hard").replace(
        'id="C_rule"', 'id="C_recusal"')
    api.deploy(controls)
    case_id = api.start_at_approve(Scenario("", accept_user="both"))
    override_id = request_override(api, case_id).json()["id"]
    api.post(f"/api/overrides/{override_id}/approve", "admin2")

    blocked = api.complete(case_id, "Approve", "both", {"decision": "approve"})
    still_approved = api.get(f"/api/overrides/{override_id}").json()["status"]
    done = api.complete(case_id, "Approve", "both", {"decision": "approve", "recusal_declaration": "none"})

    assert blocked.status_code == 422
    assert [c["control_id"] for c in blocked.json()["error"]["details"]["controls"]] == ["C_recusal"]
    assert still_approved == "approved"
    assert done.status_code == 200, done.text
    assert api.get(f"/api/overrides/{override_id}").json()["status"] == "used"


def test_rejected_override_is_not_used(api) -> None:
    scenario = SCENARIOS["recusal"]
    case_id = api.prepare(scenario, "hard")
    override_id = request_override(api, case_id).json()["id"]

    rejected = api.post(f"/api/overrides/{override_id}/reject", "admin2", {"note": "关系密切，应当回避"})

    assert rejected.json()["status"] == "rejected"
    assert api.break_control(scenario, case_id).status_code == 422
    decided = [e for e in api.trace(case_id) if e["kind"] == "override_decided"][0]["payload"]
    assert (decided["decision"], decided["note"]) == ("rejected", "关系密切，应当回避")


def test_soft_or_unknown_control_cannot_be_overridden(api) -> None:
    scenario = SCENARIOS["recusal"]
    case_id = api.prepare(scenario, "soft")
    task_id = api.task_id(case_id, "Approve")

    soft = request_override(api, case_id)
    unknown = api.post(f"/api/tasks/{task_id}/overrides", "admin", {"control_id": "C_none",
                                                                     "reason": "没有这个控制规则的申请"})

    assert soft.status_code == 422
    assert "soft" in soft.json()["error"]["message"]
    assert unknown.status_code == 404
    assert "its controls are: C_rule" in unknown.json()["error"]["message"]


def test_override_list_for_admins_and_auditors(api) -> None:
    scenario = SCENARIOS["recusal"]
    case_id = api.prepare(scenario, "hard")
    override_id = request_override(api, case_id).json()["id"]

    listed = api.get("/api/overrides", "auditor", status="pending")
    by_staff = api.get("/api/overrides", "approver")

    assert [o["id"] for o in listed.json()] == [override_id]
    assert api.get("/api/overrides", "admin", status="used").json() == []
    assert by_staff.status_code == 403


# deployment


BAD_CONTROLS = [
    ('<liuhen:control id="C_bad" type="fourEyes"/>', "extension_invalid_value", "invalid type 'fourEyes'"),
    ('<liuhen:control id="C_bad" type="amountThreshold" field="amount"><liuhen:step ref="Collective"/>'
     "</liuhen:control>", "extension_missing_value", "no threshold attribute"),
    ('<liuhen:control id="C_bad" type="amountThreshold" field="amount" threshold="1万">'
     '<liuhen:step ref="Collective"/></liuhen:control>', "extension_invalid_value", "write a number"),
    ('<liuhen:control id="C_bad" type="separationOfDuties"><liuhen:step ref="Task_gone"/></liuhen:control>',
     "extension_invalid_value", "names step Task_gone"),
    ('<liuhen:control id="C_bad" type="separationOfDuties"/>', "extension_missing_value", "names no step"),
    ('<liuhen:control id="C_bad" type="splitDetection" enforcement="hard" field="amount" partyField="supplier" '
     'threshold="10000" windowDays="30"/>', "extension_invalid_value", "always soft"),
    ('<liuhen:control id="C_bad" type="recusal" field="recusal" treshold="3"/>', "extension_invalid_value",
     "attribute treshold"),
    ('<liuhen:control id="C_bad" type="publicityPeriod" workingDays="five"/>', "extension_invalid_value",
     "whole number of at least 1"),
    ('<liuhen:control id="C_bad" type="reasonedDecision" decisionField="decision" reasonField="理由" '
     'decisions="refuse"/>', "extension_invalid_value", "not a case-data field name"),
    ('<liuhen:control id="C_bad" type="requiredMaterials" field="materials" decisionField="decision"/>',
     "extension_missing_value", "decisionField and correctionValue together"),
    ('<liuhen:control id="C_bad" type="requiredMaterials" field="materials"><liuhen:material id="Approve" '
     'name="申请书"/></liuhen:control>', "extension_invalid_value", "also the id of the BPMN element"),
    ('<liuhen:control id="C_bad" type="quorum" approvers="2" decisionField="decision"/>',
     "extension_missing_value", "no onDisagreement attribute"),
    ('<liuhen:control id="C_bad" type="recusal" enforcement="strict" field="recusal"/>',
     "extension_invalid_value", "invalid enforcement 'strict'"),
]


@pytest.mark.parametrize(("control", "code", "fragment"), BAD_CONTROLS,
                         ids=[f"{i}-{case[2][:20]}" for i, case in enumerate(BAD_CONTROLS)])
def test_bad_control_is_refused_at_deploy(control, code, fragment) -> None:
    with pytest.raises(DefinitionError) as refused:
        load_definition(flowchart(control), "bad.bpmn")

    assert refused.value.code == code
    text = refused.value.render("en")
    assert "C_bad" in text
    assert fragment in text


def test_control_on_gateway_is_refused() -> None:
    content = flowchart(SCENARIOS["recusal"].xml("hard")).replace(
        b'<bpmn:exclusiveGateway id="G2" default="f_end"></bpmn:exclusiveGateway>',
        b'<bpmn:exclusiveGateway id="G2" default="f_end"><bpmn:extensionElements>'
        + CHECKPOINT.format(controls='<liuhen:control id="C_gate" type="recusal" field="r"/>').replace(
            "RC_approve", "RC_gate").encode()
        + b"</bpmn:extensionElements></bpmn:exclusiveGateway>")

    with pytest.raises(DefinitionError) as refused:
        load_definition(content, "gate.bpmn")

    assert "C_gate is on element G2 (exclusiveGateway)" in refused.value.render("en")


def test_bad_control_upload_gets_clear_http_error(api) -> None:
    response = api.deploy('<liuhen:control id="C_bad" type="amountThreshold" field="amount">'
                          '<liuhen:step ref="Collective"/></liuhen:control>')

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "extension_missing_value"
    assert error["details"]["element_id"] == "C_bad"
    assert 'threshold="10000"' in error["message"]
    assert api.get("/api/definitions", "designer").json() == []


def test_material_shared_with_power_item_is_accepted() -> None:
    control = ('<liuhen:control id="C_materials" type="requiredMaterials" field="materials">'
               '<liuhen:material id="M_application" name="申请书"/></liuhen:control>')

    parsed = load_definition(flowchart(control), "materials.bpmn")

    checkpoint = parsed.nodes["Approve"].extensions["risk_checkpoints"][0]
    assert checkpoint["controls"][0]["materials"] == [{"id": "M_application", "name": "申请书"}]


def test_parsed_controls_have_the_agreed_shape() -> None:
    controls = "".join(SCENARIOS[name].xml("") for name in SCENARIOS)
    controls = controls.replace('id="C_rule"', 'id="C_{n}"')
    for index in range(len(SCENARIOS)):
        controls = controls.replace("C_{n}", f"C_{index}", 1)

    parsed = load_definition(flowchart(controls), "all.bpmn")

    declared = parsed.nodes["Approve"].extensions["risk_checkpoints"][0]["controls"]
    assert [c["type"] for c in declared] == list(SCENARIOS)
    assert declared[0] == {"id": "C_0", "type": "separationOfDuties", "enforcement": "hard", "params": {},
                           "steps": ["Accept"], "materials": []}
    assert declared[2]["params"] == {"field": "amount", "threshold": "10000"}
    assert declared[3]["enforcement"] == "soft"
    # Without its own list, requiredMaterials checks the power item's required materials.
    assert [m["id"] for m in declared[6]["materials"]] == ["M_application", "M_assets"]


def test_parsed_controls_survive_serialization() -> None:
    controls = SCENARIOS["amountThreshold"].xml("soft") + SCENARIOS["requiredMaterials"].xml("hard").replace(
        'id="C_rule"', 'id="C_materials"')
    parsed = load_definition(flowchart(controls), "round.bpmn")
    process_spec = parsed.process("controlled")
    workflow = BpmnWorkflow(process_spec.spec, process_spec.subprocess_specs)
    serializer = BpmnWorkflowSerializer()

    restored = serializer.deserialize_json(serializer.serialize_json(workflow))

    original = node_extensions(process_spec.spec.task_specs["Approve"])
    assert node_extensions(restored.spec.task_specs["Approve"]) == original
    assert [c["id"] for c in original["risk_checkpoints"][0]["controls"]] == ["C_rule", "C_materials"]


# command line


def test_cli_override_then_trace_and_verify(api, service, settings, monkeypatch, capsys) -> None:
    scenario = SCENARIOS["separationOfDuties"]
    case_id = api.prepare(scenario, "hard")
    task_id = api.task_id(case_id, "Approve")
    monkeypatch.setenv("LIUHEN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("LIUHEN_LOCALE", "en")

    requested = cli.main(["override", "request", task_id, "C_rule", "--reason", "申请人急需办理，已书面报批",
                          "--as", "admin"])
    with service.db.read() as conn:
        override_id = conn.execute(select(control_overrides.c.id)).scalar_one()
    own = cli.main(["override", "approve", str(override_id), "--as", "admin"])
    approved = cli.main(["override", "approve", str(override_id), "--as", "admin2"])
    listed = cli.main(["overrides", "--status", "approved"])
    output = capsys.readouterr()

    assert (requested, own, approved, listed) == (0, 1, 0, 0)
    assert f"Override {override_id} is requested" in output.out
    assert "a different administrator" in output.err
    assert f"Override {override_id}  case {case_id}" in output.out
    assert "decided by admin2" in output.out

    assert api.break_control(scenario, case_id).status_code == 200
    assert cli.main(["trace", str(case_id)]) == 0
    assert cli.main(["verify", str(case_id)]) == 0
    output = capsys.readouterr()
    for kind in ("control_evaluated", "override_requested", "override_decided", "risk_event"):
        assert kind in output.out
    assert "no event was altered" in output.out


def test_control_declarations_match_xsd() -> None:
    schema = etree.XMLSchema(etree.parse(str(ROOT / "engine" / "schema" / "liuhen.xsd")))
    controls = "".join(SCENARIOS[name].xml("soft" if name == "splitDetection" else "hard") for name in SCENARIOS)
    controls += ('<liuhen:control id="C_materials" type="requiredMaterials" field="materials">'
                 '<liuhen:material id="M_application" name="申请书"/></liuhen:control>')
    root = etree.fromstring(flowchart(controls))

    checkpoint = next(root.iter(f"{{{NAMESPACE}}}riskCheckpoint"))
    duplicate = etree.fromstring(etree.tostring(checkpoint))
    material = next(duplicate.iter(f"{{{NAMESPACE}}}material"))
    material.addnext(etree.fromstring(etree.tostring(material)))

    assert schema.validate(checkpoint), schema.error_log.last_error
    assert not schema.validate(duplicate)
