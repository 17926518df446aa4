"""Versions of a process: their semantic diff as JSON, table and drawing, and the annual checkpoint review."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from lxml import etree

from api.app import create_app
from api.cli import main
from api.diff_rendering import diff_diagram
from diagrams.diff_overlay import ADDED_FILL, CHANGED_FILL, REMOVED_FILL
from engine.checkpoint_review import mark_reviewed, review_report
from engine.clock import ManualClock
from engine.db import risk_events
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.risk_events import RiskEvent, record
from engine.service import Liuhen
from engine.versions import diff_versions
from tests.bpmn_builder import definitions, flow, node, process, user_task
from tests.conftest import DESIGNER, PROCESSES, LiveServer, add_user

SVG = "{http://www.w3.org/2000/svg}"
SHIPPED = (PROCESSES / "reimbursement.bpmn").read_bytes()


def revised(content: bytes = SHIPPED) -> bytes:
    """The shipped reimbursement flowchart with a changed checkpoint, an added step and a shorter promised limit."""
    text = content.decode("utf-8")
    replacements = [
        ('<liuhen:riskCheckpoint id="RC-BX-04" level="low"', '<liuhen:riskCheckpoint id="RC-BX-04" level="medium"'),
        ('<liuhen:promisedTimeLimit amount="10" unit="working_day"/>',
         '<liuhen:promisedTimeLimit amount="8" unit="working_day"/>'),
        ("<bpmn:flowNodeRef>EndEvent_paid</bpmn:flowNodeRef>",
         "<bpmn:flowNodeRef>EndEvent_paid</bpmn:flowNodeRef><bpmn:flowNodeRef>Task_archive</bpmn:flowNodeRef>"),
        ('sourceRef="Gateway_finance" targetRef="EndEvent_paid">',
         'sourceRef="Gateway_finance" targetRef="Task_archive">'),
        ('<bpmn:endEvent id="EndEvent_paid"',
         '<bpmn:userTask id="Task_archive" name="归档"/>'
         '<bpmn:sequenceFlow id="Flow_archived" sourceRef="Task_archive" targetRef="EndEvent_paid"/>'
         '<bpmn:endEvent id="EndEvent_paid"'),
    ]
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode("utf-8")


@pytest.fixture
def two_versions(service: Liuhen, clock: ManualClock) -> Liuhen:
    service.deploy(SHIPPED, "reimbursement.bpmn", DESIGNER)
    clock.advance(timedelta(days=200))
    service.deploy(revised(), "reimbursement.bpmn", DESIGNER)
    return service


def changes(diff_json: dict) -> list[tuple[str, str, str]]:
    return [(change["section"], change["change"], change["key"]) for change in diff_json["changes"]]


# Diff


def test_diff_of_two_versions(two_versions: Liuhen) -> None:
    diff = diff_versions(two_versions, "reimbursement", 1, 2).to_json()

    assert changes(diff) == [
        ("nodes", "added", "Task_archive"),
        ("flows", "added", "Flow_archived"),
        ("flows", "changed", "Flow_paid"),
        ("lanes", "changed", "Lane_finance"),
        ("checkpoints", "changed", "RC-BX-04"),
        ("time_limits", "changed", "promised_time_limit"),
    ]
    checkpoint = diff["changes"][4]
    assert checkpoint["fields"] == ["level"]
    assert (checkpoint["before"]["level"], checkpoint["after"]["level"]) == ("low", "medium")
    assert checkpoint["element_id"] == "Task_director_approve"
    limit = diff["changes"][5]
    assert (limit["before"], limit["after"]) == ({"amount": 10, "unit": "working_day"},
                                                 {"amount": 8, "unit": "working_day"})
    assert diff["changes"][2]["fields"] == ["target"]
    assert diff["summary"]["nodes"] == {"added": 1, "removed": 0, "changed": 0}
    assert (diff["from"]["version"], diff["to"]["version"]) == (1, 2)
    assert diff["from"]["deployed_by"] == "designer"
    assert diff["identical"] is False


def test_diff_backwards_lists_removals(two_versions: Liuhen) -> None:
    diff = diff_versions(two_versions, "reimbursement", 2, 1).to_json()

    assert ("nodes", "removed", "Task_archive") in changes(diff)
    assert ("flows", "removed", "Flow_archived") in changes(diff)
    removed = next(change for change in diff["changes"] if change["key"] == "Task_archive")
    assert (removed["before"]["name"], removed["after"]) == ("归档", None)


def test_diff_of_controls_and_form_fields(service: Liuhen) -> None:
    def version(control: str, field_type: str) -> bytes:
        checkpoint = ('<liuhen:riskCheckpoint id="RC_1" level="medium" category="power_operation">'
                      "<liuhen:description>理由不充分</liuhen:description><liuhen:controlMeasure>写明理由"
                      f"</liuhen:controlMeasure>{control}</liuhen:riskCheckpoint>")
        form = (f'<liuhen:formField name="decision" type="{field_type}" label="决定" required="true">'
                '<liuhen:option value="approve" label="同意"/><liuhen:option value="refuse" label="不同意"/>'
                '</liuhen:formField><liuhen:formField name="reason" type="text" label="理由"/>')
        return definitions(process(
            "decision", node("startEvent", "S"), user_task("Decide", extra=form + checkpoint), node("endEvent", "E"),
            flow("f1", "S", "Decide"), flow("f2", "Decide", "E")))

    reasoned = ('<liuhen:control id="C_reason" type="reasonedDecision" decisionField="decision" '
                'reasonField="reason" decisions="refuse" minLength="{length}"/>')
    service.deploy(version(reasoned.format(length=10), "enum"), "decision.bpmn", DESIGNER)
    service.deploy(version(reasoned.format(length=20), "string"), "decision.bpmn", DESIGNER)

    diff = diff_versions(service, "decision", 1, 2).to_json()

    assert changes(diff) == [("controls", "changed", "C_reason"), ("form_fields", "changed", "Decide.decision")]
    control = diff["changes"][0]
    assert control["fields"] == ["params"]
    assert (control["before"]["params"]["minLength"], control["after"]["params"]["minLength"]) == ("10", "20")
    assert diff["changes"][1]["fields"] == ["type"]


def test_cli_diff_shows_changed_parameters_in_full(service: Liuhen, tmp_path, monkeypatch, capsys) -> None:
    def version(threshold: str) -> bytes:
        control = ('<liuhen:control id="C_amount" type="amountThreshold" '
                   f'field="requested_amount_in_yuan_including_tax" threshold="{threshold}">'
                   '<liuhen:step ref="Meeting"/></liuhen:control>')
        checkpoint = ('<liuhen:riskCheckpoint id="RC_1" level="high" category="power_operation">'
                      "<liuhen:description>大额未经集体决策</liuhen:description><liuhen:controlMeasure>集体决策"
                      f"</liuhen:controlMeasure>{control}</liuhen:riskCheckpoint>")
        return definitions(process(
            "purchase", node("startEvent", "S"), user_task("Meeting"), user_task("Approve", extra=checkpoint),
            node("endEvent", "E"), flow("f1", "S", "Meeting"), flow("f2", "Meeting", "Approve"),
            flow("f3", "Approve", "E")))

    service.deploy(version("10000"), "purchase.bpmn", DESIGNER)
    service.deploy(version("5000.50"), "purchase.bpmn", DESIGNER)
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(tmp_path))

    assert main(["--lang", "en", "diff", "purchase", "1", "2"]) == 0
    table = capsys.readouterr().out

    assert "[changed]  control  C_amount" in table
    assert 'params.threshold: "10000" → "5000.50"' in table
    assert "params.field" not in table
    assert "…" not in table


def test_diff_needs_two_existing_versions(two_versions: Liuhen) -> None:
    with pytest.raises(NotFound):
        diff_versions(two_versions, "reimbursement", 1, 3)
    with pytest.raises(InvalidInput) as caught:
        diff_versions(two_versions, "reimbursement", 2, 2)
    assert "two different versions" in caught.value.render("en")


def svg_groups(content: bytes) -> dict[str, etree._Element]:
    svg = etree.fromstring(content, etree.XMLParser(no_network=True, resolve_entities=False))
    return {group.get("id"): group for group in svg.iter(f"{SVG}g") if group.get("id")}


def fills(group: etree._Element) -> set[str]:
    return {shape.get("fill") for shape in group.iter(f"{SVG}path", f"{SVG}polygon", f"{SVG}ellipse")}


def test_diff_diagram_colours_changes(two_versions: Liuhen) -> None:
    forward = svg_groups(diff_diagram(two_versions, diff_versions(two_versions, "reimbursement", 1, 2), "svg", "en"))
    backward = svg_groups(diff_diagram(two_versions, diff_versions(two_versions, "reimbursement", 2, 1), "svg", "en"))

    assert "diff-added" in forward["Task_archive"].get("class", "")
    assert ADDED_FILL in fills(forward["Task_archive"])
    assert "diff-changed" in forward["Task_director_approve"].get("class", "")
    assert CHANGED_FILL in fills(forward["Task_director_approve"])
    assert "diff-unchanged" in forward["Task_principal"].get("class", "")
    assert "diff-added" in forward["Flow_archived"].get("class", "")
    assert "diff-changed" in forward["Flow_paid"].get("class", "")
    assert "diff-removed" in backward["Task_archive"].get("class", "")
    assert REMOVED_FILL in fills(backward["Task_archive"])
    assert "diff-removed" in backward["Flow_archived"].get("class", "")
    texts = " ".join(text.text or "" for text in forward["Task_director_approve"].iter(f"{SVG}text"))
    assert "RC-BX-04" in texts


# HTTP API and command line


@pytest.fixture
def api(two_versions: Liuhen) -> Iterator[httpx.Client]:
    add_user(two_versions, "designer", ["designer"])
    add_user(two_versions, "clerk", ["staff"], ["经办人"])
    with LiveServer(create_app(two_versions.settings, two_versions)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"}


def test_diff_endpoints(api: httpx.Client) -> None:
    headers = login(api, "designer")

    diff = api.get("/api/definitions/reimbursement/diff", params={"from": 1, "to": 2}, headers=headers)
    drawing = api.get("/api/definitions/reimbursement/diff.svg", params={"from": 1, "to": 2}, headers=headers)
    missing = api.get("/api/definitions/reimbursement/diff", params={"from": 1, "to": 9}, headers=headers)

    assert diff.status_code == 200
    assert ("checkpoints", "changed", "RC-BX-04") in changes(diff.json())
    assert drawing.status_code == 200
    assert drawing.headers["content-type"].startswith("image/svg+xml")
    assert "diff-added" in svg_groups(drawing.content)["Task_archive"].get("class", "")
    assert missing.status_code == 404


def test_review_endpoints(api: httpx.Client) -> None:
    designer, clerk = login(api, "designer"), login(api, "clerk")

    marked = api.post("/api/review/checkpoints/RC-BX-05/reviewed", json={"note": "年度复核：措施有效"},
                      headers=designer)
    refused = api.post("/api/review/checkpoints/RC-BX-05/reviewed", json={"note": "x"}, headers=clerk)
    report = api.get("/api/review/checkpoints", params={"process_id": "reimbursement"}, headers=designer)

    assert marked.status_code == 200
    assert (marked.json()["reviewed_by"], marked.json()["version"]) == ("designer", 2)
    assert refused.status_code == 403
    row = next(item for item in report.json() if item["checkpoint_id"] == "RC-BX-05")
    assert row["last_review"]["note"] == "年度复核：措施有效"
    assert row["unchanged_since_version"] == 1


def test_cli_diff_table_and_diagram(two_versions: Liuhen, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LIUHEN_DATABASE_URL", two_versions.settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(tmp_path))
    drawing = tmp_path / "diff.svg"

    assert main(["--lang", "en", "diff", "reimbursement", "1", "2", "--diagram", str(drawing)]) == 0
    table = capsys.readouterr().out
    assert main(["--lang", "en", "diff", "reimbursement", "1", "2", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert main(["--lang", "en", "versions", "reimbursement"]) == 0
    versions = capsys.readouterr().out

    assert "reimbursement: version 1 (designer," in table
    assert "[changed]  risk checkpoint  RC-BX-04" in table
    assert 'level: "low" → "medium"' in table
    assert "[added]  step  Task_archive  归档" in table
    assert "amount: 10 → 8" in table
    assert "diff-added" in svg_groups(drawing.read_bytes())["Task_archive"].get("class", "")
    assert document["summary"]["checkpoints"]["changed"] == 1
    assert "Version 1" in versions
    assert "Version 2" in versions
    assert "deployed by designer" in versions


# Annual review


def submit(service: Liuhen) -> int:
    """Start a reimbursement case and complete its first step, which carries RC-BX-01 and RC-BX-02."""
    clerk = add_user(service, "zhou", ["staff"], ["经办人"])
    case = service.start_case("reimbursement", clerk)
    data = {"amount": 120, "expense_type": "office_supplies", "purpose": "打印纸", "involves_goods": False,
            "invoice_count": 1, "expense_date": "2026-11-30", "payee": "周红"}
    service.complete(case["tasks"][0]["id"], clerk, data)
    return int(case["id"])


def raise_risk_event(service: Liuhen, case_id: int, level: str, checkpoint_id: str, element_id: str) -> None:
    with service.db.write() as conn:
        record(conn, RiskEvent(case_id=case_id, process_id="reimbursement", kind="control_failed", level=level,
                               actor="zhou", at=service.now(), checkpoint_id=checkpoint_id, element_id=element_id))


def test_review_report_counts_since_last_change(service: Liuhen, clock: ManualClock) -> None:
    service.deploy(SHIPPED, "reimbursement.bpmn", DESIGNER)
    case_id = submit(service)
    raise_risk_event(service, case_id, "high", "RC-BX-01", "Task_submit")
    raise_risk_event(service, case_id, "low", "RC-BX-04", "Task_director_approve")
    clock.advance(timedelta(days=200))
    service.deploy(revised(), "reimbursement.bpmn", DESIGNER)
    clock.advance(timedelta(days=10))

    rows = {row.checkpoint_id: row for row in review_report(service, DESIGNER)}

    assert set(rows) == {f"RC-BX-0{number}" for number in range(1, 8)}
    submitted = rows["RC-BX-01"]
    assert (submitted.version, submitted.unchanged_since_version, submitted.unchanged_days) == (2, 1, 210)
    assert submitted.risk_events == {"high": 1, "medium": 0, "low": 0}
    assert submitted.cases_passed == 1
    assert submitted.step_name == "经办人提交报销单"
    changed = rows["RC-BX-04"]
    assert (changed.unchanged_since_version, changed.unchanged_days, changed.level) == (2, 10, "medium")
    assert changed.risk_events == {"high": 0, "medium": 0, "low": 0}
    assert changed.cases_passed == 0
    assert submitted.last_review is None
    assert submitted.review_due is False
    with service.db.read() as conn:
        assert len(conn.execute(risk_events.select()).all()) == 2


def test_review_mark_is_traced_and_shown(service: Liuhen, clock: ManualClock) -> None:
    service.deploy(SHIPPED, "reimbursement.bpmn", DESIGNER)
    clock.advance(timedelta(days=400))
    assert next(row for row in review_report(service, DESIGNER) if row.checkpoint_id == "RC-BX-06").review_due

    review = mark_reviewed(service, DESIGNER, "RC-BX-06", "  措施仍然有效，无需调整  ")

    assert (review.process_id, review.version, review.note) == ("reimbursement", 1, "措施仍然有效，无需调整")
    event = service.system_trace()[-1]
    assert event["kind"] == "checkpoint_reviewed"
    assert event["actor"] == "designer"
    assert event["element_id"] == "Task_principal"
    assert event["payload"] == {"process_id": "reimbursement", "version": 1, "checkpoint_id": "RC-BX-06",
                                "level": "high", "note": "措施仍然有效，无需调整"}
    row = next(row for row in review_report(service, DESIGNER) if row.checkpoint_id == "RC-BX-06")
    assert row.last_review is not None
    assert (row.last_review.reviewed_by, row.last_review.note) == ("designer", "措施仍然有效，无需调整")
    assert row.last_review.reviewed_at == clock.now()
    assert row.review_due is False
    assert all(report.ok for report in service.verify())


def test_review_mark_rejects_bad_requests(service: Liuhen) -> None:
    checkpoint = ('<liuhen:riskCheckpoint id="RC_same" level="low" category="institutional">'
                  "<liuhen:description>登记不全</liuhen:description><liuhen:controlMeasure>核对</liuhen:controlMeasure>"
                  "</liuhen:riskCheckpoint>")
    for process_id in ("first", "second"):
        service.deploy(definitions(process(
            process_id, node("startEvent", "S"), user_task("A", extra=checkpoint), node("endEvent", "E"),
            flow("f1", "S", "A"), flow("f2", "A", "E"))), f"{process_id}.bpmn", DESIGNER)
    clerk = add_user(service, "clerk", ["staff"])

    with pytest.raises(InvalidInput) as ambiguous:
        mark_reviewed(service, DESIGNER, "RC_same", "复核")
    with pytest.raises(NotFound):
        mark_reviewed(service, DESIGNER, "RC_unknown", "复核")
    with pytest.raises(InvalidInput):
        mark_reviewed(service, DESIGNER, "RC_same", "   ", "first")
    with pytest.raises(Forbidden):
        mark_reviewed(service, clerk, "RC_same", "复核", "first")

    assert "first, second" in ambiguous.value.render("en")
    assert [event["kind"] for event in service.system_trace()] == ["definition_deployed", "definition_deployed"]
    assert mark_reviewed(service, DESIGNER, "RC_same", "复核", "second").process_id == "second"


def test_cli_review_report_and_mark(service: Liuhen, tmp_path, monkeypatch, capsys) -> None:
    service.deploy(SHIPPED, "reimbursement.bpmn", DESIGNER)
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(tmp_path))

    assert main(["--lang", "en", "review", "mark", "RC-BX-07", "--note", "已复核付款审核措施"]) == 0
    marked = capsys.readouterr().out
    assert main(["--lang", "en", "review", "report", "--process", "reimbursement"]) == 0
    report = capsys.readouterr().out
    assert main(["--lang", "en", "review", "report", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)

    assert "RC-BX-07 of reimbursement version 1 is marked reviewed" in marked
    assert "reimbursement v1  RC-BX-07 (high)" in report
    assert ": 已复核付款审核措施" in report
    assert "never marked reviewed" in report
    reviewed = next(row for row in rows if row["checkpoint_id"] == "RC-BX-07")
    assert reviewed["last_review"]["note"] == "已复核付款审核措施"
    assert reviewed["risk_events"]["total"] == 0
