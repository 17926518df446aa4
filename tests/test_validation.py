"""Design-time validation: every finding of a file at once, errors blocking deployment, warnings not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import httpx
import pytest

from api.app import create_app
from api.cli import main
from engine.calendar import LOCAL_TZ, WorkingCalendar
from engine.deadlines import TimeLimit, Unit, compute_deadline
from engine.errors import DefinitionError
from engine.limit_comparison import _working_days, compare_limits, last_day
from engine.service import Liuhen
from engine.validation import ValidationReport
from tests.bpmn_builder import definitions, flow, lanes, node, process, sequence, user_task
from tests.conftest import DESIGNER, PROCESSES, LiveServer, add_user


def field(name: str, kind: str, *, required: bool = True, options: tuple[str, ...] = ()) -> str:
    body = "".join(f'<liuhen:option value="{option}" label="{option}"/>' for option in options)
    return (f'<liuhen:formField name="{name}" type="{kind}" label="{name}" required="{str(required).lower()}">'
            f"{body}</liuhen:formField>")


def gateway_file(form: str, *conditions: str, default: bool = False, kind: str = "exclusiveGateway") -> bytes:
    """Enter (with ``form``), a gateway with one flow per condition, each to its own end event."""
    ends = [node("endEvent", f"E{index}") for index in range(len(conditions))]
    flows = [flow(f"f_{index}", "G", f"E{index}", condition) for index, condition in enumerate(conditions)]
    gateway = node(kind, "G", "审核结果", default="f_0") if default else node(kind, "G", "审核结果")
    task = node("userTask", "Enter", "填写", f"<bpmn:extensionElements>{form}</bpmn:extensionElements>")
    return definitions(process(
        "gated", lanes({"窗口": ["S", "Enter", "G", *(f"E{index}" for index in range(len(conditions)))]}),
        node("startEvent", "S"), task, gateway, *ends, flow("f_s", "S", "Enter"), flow("f_g", "Enter", "G"),
        *flows,
    ))


def codes(report: ValidationReport) -> list[tuple[str, str, str | None]]:
    return [(finding.severity, finding.code, finding.element_id) for finding in report.findings]


def english(report: ValidationReport, code: str) -> str:
    return next(finding.message.render("en") for finding in report.findings if finding.code == code)


# Posts


def test_process_without_lanes_warns(service: Liuhen) -> None:
    report = service.validation_report(sequence("plain", ["A", "B"]), "plain.bpmn")

    assert report.valid
    assert codes(report) == [("warning", "validation_no_lanes", "plain")]
    assert "(2)" in english(report, "validation_no_lanes")


def test_task_outside_lane_and_unnamed_lane_warn(service: Liuhen) -> None:
    lane_set = ('<bpmn:laneSet id="LaneSet_1"><bpmn:lane id="Lane_window" name="受理窗口">'
                "<bpmn:flowNodeRef>S</bpmn:flowNodeRef><bpmn:flowNodeRef>A</bpmn:flowNodeRef>"
                '<bpmn:flowNodeRef>E</bpmn:flowNodeRef></bpmn:lane><bpmn:lane id="Lane_x">'
                "<bpmn:flowNodeRef>C</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>")
    content = definitions(process(
        "posts", lane_set, node("startEvent", "S"), user_task("A"), user_task("B", "复核"), user_task("C"),
        node("endEvent", "E"),
        flow("f1", "S", "A"), flow("f2", "A", "B"), flow("f3", "B", "C"), flow("f4", "C", "E"),
    ))

    report = service.validation_report(content, "posts.bpmn")

    assert report.valid
    assert codes(report) == [("warning", "validation_task_outside_lane", "B"),
                             ("warning", "validation_lane_without_name", "C")]
    outside = report.findings[0]
    assert outside.element_name == "复核"
    assert outside.line is not None
    assert outside.process_id == "posts"
    assert "any business staff" in outside.message.render("en")
    assert "Lane_x" in english(report, "validation_lane_without_name")


# Risk checkpoints


HIGH_CHECKPOINT = ('<liuhen:riskCheckpoint id="RC_1" level="high" category="power_operation">'
                   "<liuhen:description>一人决定大额支出</liuhen:description>{measure}{post}"
                   "</liuhen:riskCheckpoint>")


def checkpoint_file(measure: str = "<liuhen:controlMeasure>集体决策</liuhen:controlMeasure>", post: str = "") -> bytes:
    checkpoint = HIGH_CHECKPOINT.format(measure=measure, post=post)
    return definitions(process(
        "decide", lanes({"领导班子": ["S", "Decide", "E"]}),
        node("startEvent", "S"), user_task("Decide", "集体决策", extra=checkpoint), node("endEvent", "E"),
        flow("f1", "S", "Decide"), flow("f2", "Decide", "E"),
    ))


def test_high_risk_checkpoint_without_post_warns(service: Liuhen) -> None:
    report = service.validation_report(checkpoint_file(), "decide.bpmn")

    assert codes(report) == [("warning", "validation_checkpoint_without_post", "Decide")]
    assert "RC_1" in english(report, "validation_checkpoint_without_post")
    assert report.findings[0].line is not None

    with_post = checkpoint_file(post="<liuhen:responsiblePost>领导班子</liuhen:responsiblePost>")
    assert service.validation_report(with_post, "decide.bpmn").findings == []


def test_high_risk_checkpoint_without_measures_blocks_deploy(service: Liuhen) -> None:
    report = service.validation_report(checkpoint_file(measure=""), "decide.bpmn")

    assert not report.valid
    assert ("error", "extension_missing_value", "RC_1") in codes(report)
    with pytest.raises(DefinitionError) as caught:
        service.deploy(checkpoint_file(measure=""), "decide.bpmn", DESIGNER)
    assert caught.value.code == "extension_missing_value"
    assert service.list_definitions() == []


# Time limits


def limits_file(promised: tuple[int, str], statutory: tuple[int, str]) -> bytes:
    power_item = ('<liuhen:powerItem code="XK-1" kind="external"><liuhen:name>许可</liuhen:name>'
                  f'<liuhen:statutoryTimeLimit amount="{statutory[0]}" unit="{statutory[1]}"/>'
                  f'<liuhen:promisedTimeLimit amount="{promised[0]}" unit="{promised[1]}"/></liuhen:powerItem>')
    return definitions(process(
        "licence", lanes({"窗口": ["S", "A", "E"]}), node("startEvent", "S"), user_task("A"), node("endEvent", "E"),
        flow("f1", "S", "A"), flow("f2", "A", "E"), extensions=power_item,
    ))


def test_promised_longer_than_statutory_blocks_deploy(service: Liuhen) -> None:
    content = limits_file((25, "working_day"), (20, "working_day"))

    report = service.validation_report(content, "licence.bpmn")

    assert codes(report) == [("error", "validation_promised_exceeds_statutory", "licence")]
    assert "25 working days" in english(report, "validation_promised_exceeds_statutory")
    with pytest.raises(DefinitionError) as caught:
        service.deploy(content, "licence.bpmn", DESIGNER)
    assert caught.value.code == "validation_promised_exceeds_statutory"
    assert caught.value.element_id == "licence"
    assert service.list_definitions() == []


def test_limits_in_other_units_compared_per_start_date(service: Liuhen) -> None:
    always = service.validation_report(limits_file((30, "working_day"), (20, "day")), "licence.bpmn")
    sometimes = service.validation_report(limits_file((20, "working_day"), (1, "month")), "licence.bpmn")
    never = service.validation_report(limits_file((30, "working_day"), (3, "month")), "licence.bpmn")

    assert codes(always) == [("error", "validation_promised_exceeds_statutory", "licence")]
    assert "every start date" in english(always, "validation_promised_exceeds_statutory")
    assert codes(sometimes) == [("warning", "validation_promised_may_exceed_statutory", "licence")]
    message = english(sometimes, "validation_promised_may_exceed_statutory")
    assert "different units" in message
    assert "20 working days" in message
    assert "1 months" in message
    assert never.findings == []


def test_limit_comparison_agrees_with_deadlines() -> None:
    calendar = WorkingCalendar()
    working_days = _working_days(date(2025, 1, 1), date(2026, 12, 31))
    limits = [TimeLimit(20, Unit.WORKING_DAY), TimeLimit(30, Unit.DAY), TimeLimit(2, Unit.MONTH)]
    for offset in range(0, 365, 9):
        start = date(2025, 1, 1) + timedelta(days=offset)
        for limit in limits:
            expected = compute_deadline(datetime.combine(start, time(10), LOCAL_TZ), limit, [], calendar).last_day
            assert last_day(start, limit, working_days) == expected, (start, limit)


def test_limit_comparison_counts_start_dates() -> None:
    comparison = compare_limits(TimeLimit(20, Unit.WORKING_DAY), TimeLimit(1, Unit.MONTH))

    assert 0 < comparison.longer_on < comparison.starts
    assert comparison.example is not None
    start, promised_end, statutory_end = comparison.example
    assert promised_end > statutory_end > start


# Timers


def timer_file(kind: str, value: str) -> bytes:
    timer = node("intermediateCatchEvent", "Wait", "等待",
                 f"<bpmn:timerEventDefinition><bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition>")
    return definitions(process(
        "timed", lanes({"窗口": ["S", "Wait", "A", "E"]}), node("startEvent", "S"), timer, user_task("A"),
        node("endEvent", "E"), flow("f1", "S", "Wait"), flow("f2", "Wait", "A"), flow("f3", "A", "E"),
    ))


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("timeDuration", "PT5M", []),
    ("timeDate", "2026-12-31T09:00:00+08:00", []),
    ("timeCycle", "R3/PT1H", []),
    ("timeDate", "PT5M", [("error", "definition_invalid_timer", "Wait")]),
    ("timeCycle", "PT5M", [("error", "definition_invalid_timer", "Wait")]),
    ("timeDuration", "2026-12-31T09:00:00+08:00", [("error", "definition_invalid_timer", "Wait")]),
    ("timeDuration", "R3/PT1H", [("warning", "validation_timer_kind", "Wait")]),
    ("timeDate", "2026-12-31T09:00:00", [("warning", "validation_timer_without_zone", "Wait")]),
    ("timeDuration", "every day", [("error", "definition_unsafe_expression", "Wait")]),
])
def test_timer_values(service: Liuhen, kind: str, value: str, expected: list[tuple[str, str, str]]) -> None:
    report = service.validation_report(timer_file(kind, value), "timed.bpmn")

    assert codes(report) == expected


def test_wrong_timer_kind_names_an_example(service: Liuhen) -> None:
    report = service.validation_report(timer_file("timeDate", "PT5M"), "timed.bpmn")

    message = english(report, "definition_invalid_timer")
    assert "'PT5M'" in message
    assert "2026-12-31T09:00:00+08:00" in message


# Conditions and gateways


def test_every_rejected_condition_listed(service: Liuhen) -> None:
    content = gateway_file(field("amount", "integer"), "__import__('os')", "amount.real > 1", default=True)

    report = service.validation_report(content, "gated.bpmn")

    assert [code for _, code, _ in codes(report)] == ["definition_unsafe_expression", "definition_unsafe_expression"]
    assert [finding.element_id for finding in report.findings] == ["f_0", "f_1"]
    assert "__import__" in report.findings[0].message.render("en")
    assert report.findings[0].hint.render("en")


def test_enum_gap_blocks_deploy(service: Liuhen) -> None:
    form = field("decision", "enum", options=("approve", "refuse", "return"))
    content = gateway_file(form, "decision == 'approve'", "decision == 'refuse'")

    report = service.validation_report(content, "gated.bpmn")

    assert codes(report) == [("error", "validation_gateway_gap", "G")]
    assert "decision == 'return'" in english(report, "validation_gateway_gap")
    assert report.findings[0].element_name == "审核结果"


def test_numeric_gap_names_a_value_in_it(service: Liuhen) -> None:
    content = gateway_file(field("amount", "integer"), "amount < 100", "amount > 200")

    report = service.validation_report(content, "gated.bpmn")

    assert codes(report) == [("error", "validation_gateway_gap", "G")]
    message = english(report, "validation_gateway_gap")
    value = int(message.split("amount == ")[1].split(";")[0])
    assert 100 <= value <= 200


@pytest.mark.parametrize(("form", "conditions"), [
    (field("amount", "integer"), ("amount <= 100", "amount > 100")),
    (field("amount", "integer", required=False), ("amount <= 100", "amount > 100")),
    (field("amount", "decimal"), ("amount < 0.5", "amount >= 0.5")),
    (field("amount", "integer"), ("amount < 10", "10 <= amount <= 20", "amount > 20")),
    (field("approved", "boolean"), ("approved", "not approved")),
    (field("decision", "enum", options=("approve", "refuse")), ("decision == 'approve'", "decision != 'approve'")),
    (field("decision", "enum", options=("approve", "refuse")), ("decision in ('approve', 'refuse')",)),
    (field("submitted", "date"), ("submitted < '2026-01-01'", "submitted >= '2026-01-01'")),
])
def test_exhaustive_conditions_pass(service: Liuhen, form: str, conditions: tuple[str, ...]) -> None:
    report = service.validation_report(gateway_file(form, *conditions), "gated.bpmn")

    assert report.findings == []


def test_default_flow_needs_no_coverage(service: Liuhen) -> None:
    content = gateway_file(field("amount", "integer"), "amount < 100", "amount > 200", default=True)

    assert service.validation_report(content, "gated.bpmn").findings == []


def test_optional_field_gap_warns(service: Liuhen) -> None:
    form = field("decision", "enum", required=False, options=("approve", "refuse"))
    content = gateway_file(form, "decision == 'approve'", "decision == 'refuse'")

    report = service.validation_report(content, "gated.bpmn")

    assert codes(report) == [("warning", "validation_gateway_gap_when_empty", "G")]
    message = english(report, "validation_gateway_gap_when_empty")
    assert "decision is None" in message
    assert "optional field decision" in message


def test_undeclared_variable_gap_warns(service: Liuhen) -> None:
    content = definitions(process(
        "start_data", lanes({"窗口": ["S", "G", "A", "B"]}),
        node("startEvent", "S"), node("exclusiveGateway", "G"), node("endEvent", "A"), node("endEvent", "B"),
        flow("f1", "S", "G"), flow("f_a", "G", "A", "kind == 'a'"), flow("f_b", "G", "B", "kind == 'b'"),
    ))

    report = service.validation_report(content, "start.bpmn")

    assert codes(report) == [("warning", "validation_gateway_gap_possible", "G")]
    message = english(report, "validation_gateway_gap_possible")
    assert "kind not in ('a', 'b')" in message
    assert "kind is not a form field" in message


def test_unprovable_conditions_warn(service: Liuhen) -> None:
    content = gateway_file(field("note", "text"), "len(note) > 3", "len(note) <= 3")

    report = service.validation_report(content, "gated.bpmn")

    assert codes(report) == [("warning", "validation_gateway_unproven", "G")]
    assert "cannot prove" in english(report, "validation_gateway_unproven")


def test_inclusive_gateway_gap_checked(service: Liuhen) -> None:
    content = gateway_file(field("amount", "integer"), "amount > 10", "amount > 100", kind="inclusiveGateway")

    report = service.validation_report(content, "gated.bpmn")

    assert codes(report) == [("error", "validation_gateway_gap", "G")]


# Reachability and unsupported elements


def test_unreachable_node_warns_and_dead_end_blocks(service: Liuhen) -> None:
    content = definitions(process(
        "paths", lanes({"窗口": ["S", "A", "Orphan", "Stuck", "G", "E"]}),
        node("startEvent", "S"), user_task("A"), node("exclusiveGateway", "G", default="f_end"), user_task("Stuck"),
        user_task("Orphan", "无人到达"), node("endEvent", "E"),
        flow("f1", "S", "A"), flow("f2", "A", "G"), flow("f_end", "G", "E"),
        flow("f_stuck", "G", "Stuck", "False"), flow("f_orphan", "Orphan", "E"),
    ))

    report = service.validation_report(content, "paths.bpmn")

    assert codes(report) == [("error", "validation_dead_end", "Stuck"),
                             ("warning", "validation_unreachable_node", "Orphan")]
    assert "无人到达 (Orphan)" in english(report, "validation_unreachable_node")
    with pytest.raises(DefinitionError) as caught:
        service.deploy(content, "paths.bpmn", DESIGNER)
    assert caught.value.code == "validation_dead_end"
    assert caught.value.element_id == "Stuck"
    assert "paths.bpmn" in caught.value.render("en")


def test_loop_without_exit_is_dead_end(service: Liuhen) -> None:
    content = definitions(process(
        "loop", lanes({"窗口": ["S", "A", "B", "G", "E"]}),
        node("startEvent", "S"), user_task("A"), user_task("B"), node("exclusiveGateway", "G", default="f_ok"),
        node("endEvent", "E"),
        flow("f1", "S", "G"), flow("f_ok", "G", "E"), flow("f_loop", "G", "A", "False"),
        flow("f2", "A", "B"), flow("f3", "B", "A"),
    ))

    report = service.validation_report(content, "loop.bpmn")

    assert codes(report) == [("error", "validation_dead_end", "A"), ("error", "validation_dead_end", "B")]


def test_subprocess_and_boundary_paths_reach_end(service: Liuhen) -> None:
    inner = (node("startEvent", "In_S") + user_task("Inner") + node("endEvent", "In_E")
             + flow("i1", "In_S", "Inner") + flow("i2", "Inner", "In_E"))
    boundary = node("boundaryEvent", "Late", attachedToRef="Sub", body="<bpmn:timerEventDefinition><bpmn:timeDuration>"
                                                                      "P5D</bpmn:timeDuration></bpmn:timerEventDefinition>")
    content = definitions(process(
        "nested", node("startEvent", "S"), node("subProcess", "Sub", body=inner), boundary, user_task("Remind"),
        node("endEvent", "E"), node("endEvent", "E_late"),
        flow("f1", "S", "Sub"), flow("f2", "Sub", "E"), flow("f3", "Late", "Remind"), flow("f4", "Remind", "E_late"),
    ))

    report = service.validation_report(content, "nested.bpmn")

    assert report.valid, codes(report)
    assert [code for _, code, _ in codes(report)] == ["validation_no_lanes"]


def test_every_script_task_listed(service: Liuhen) -> None:
    content = definitions(process(
        "scripted", node("startEvent", "S"), node("scriptTask", "Calc1"), node("scriptTask", "Calc2"),
        node("endEvent", "E"), flow("f1", "S", "Calc1"), flow("f2", "Calc1", "Calc2"), flow("f3", "Calc2", "E"),
    ))

    report = service.validation_report(content, "scripted.bpmn")

    assert [(code, element) for severity, code, element in codes(report) if severity == "error"] == [
        ("definition_unsupported_element", "Calc1"), ("definition_unsupported_element", "Calc2")]


# Deploying


def test_blocked_deploy_keeps_first_error_and_lists_all(service: Liuhen) -> None:
    content = definitions(process(
        "mixed", node("startEvent", "S"), node("scriptTask", "Calc"), user_task("Stuck"), node("endEvent", "E"),
        flow("f1", "S", "Calc"), flow("f2", "Calc", "E"), flow("f3", "S", "Stuck"),
    ))

    with pytest.raises(DefinitionError) as caught:
        service.deploy(content, "mixed.bpmn", DESIGNER)

    error = caught.value
    assert error.code == "definition_unsupported_element"
    assert error.element_id == "Calc"
    findings = error.context["findings"]
    assert [(item["severity"], item["code"], item["element_id"]) for item in findings] == [
        ("error", "definition_unsupported_element", "Calc"), ("error", "validation_dead_end", "Stuck"),
        ("warning", "validation_no_lanes", "mixed")]
    assert all(item["hint"].render("en") for item in findings)
    assert service.list_definitions() == []
    assert service.system_trace() == []


def test_deploy_with_warnings_succeeds(service: Liuhen) -> None:
    deployment = service.deploy_file(sequence("plain", ["A"]), "plain.bpmn", DESIGNER)

    assert [(process.process_id, process.version, process.created) for process in deployment.processes] == [
        ("plain", 1, True)]
    assert [finding.code for finding in deployment.warnings] == ["validation_no_lanes"]
    assert [definition["process_id"] for definition in service.list_definitions()] == ["plain"]


def test_shipped_flowcharts_have_no_errors(service: Liuhen) -> None:
    for path in sorted(PROCESSES.glob("*.bpmn")):
        report = service.validation_report(path.read_bytes(), path.name)
        assert report.errors == [], (path.name, codes(report))


def test_messages_are_chinese_by_default(service: Liuhen) -> None:
    finding = service.validation_report(sequence("plain", ["A"]), "plain.bpmn").findings[0]

    assert finding.to_json(None)["message"] == finding.message.render("zh_CN")


# HTTP API and command line


@pytest.fixture
def api(service: Liuhen) -> Iterator[httpx.Client]:
    add_user(service, "designer", ["designer"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.post("/api/auth/login", json={"username": "designer", "password": "pw-designer-secret"})
        client.headers.update({"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en",
                               "Content-Type": "application/xml"})
        yield client


def test_validate_endpoint_lists_warnings(api: httpx.Client) -> None:
    response = api.post("/api/definitions/validate", params={"filename": "plain.bpmn"},
                        content=sequence("plain", ["A"]))

    assert response.status_code == 200
    body = response.json()
    assert (body["valid"], body["processes"]) == (True, ["plain"])
    assert [(item["severity"], item["code"], item["element_id"]) for item in body["findings"]] == [
        ("warning", "validation_no_lanes", "plain")]
    assert body["findings"][0]["hint"].startswith("Draw a lane")


def test_validate_endpoint_refuses_errors_with_findings(api: httpx.Client) -> None:
    content = gateway_file(field("amount", "integer"), "amount < 100", "amount > 200")

    refused = api.post("/api/definitions/validate", params={"filename": "gated.bpmn"}, content=content)
    reported = api.post("/api/definitions/validate", params={"filename": "gated.bpmn", "report": "true"},
                        content=content)

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert (error["code"], error["details"]["element_id"]) == ("validation_gateway_gap", "G")
    assert [item["code"] for item in error["details"]["findings"]] == ["validation_gateway_gap"]
    assert "amount ==" in error["details"]["findings"][0]["message"]
    assert reported.status_code == 200
    assert (reported.json()["valid"], reported.json()["processes"]) == (False, [])
    assert reported.json()["findings"][0]["code"] == "validation_gateway_gap"


def test_deploy_endpoint_returns_warnings(api: httpx.Client) -> None:
    response = api.post("/api/definitions", params={"filename": "plain.bpmn"}, content=sequence("plain", ["A"]))

    assert response.status_code == 200
    assert response.json()["processes"][0]["created"] is True
    assert [item["code"] for item in response.json()["findings"]] == ["validation_no_lanes"]


def test_cli_validate_lists_findings(service: Liuhen, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(tmp_path))
    good, bad = tmp_path / "good.bpmn", tmp_path / "bad.bpmn"
    good.write_bytes(sequence("plain", ["A"]))
    bad.write_bytes(gateway_file(field("amount", "integer"), "amount < 100", "amount > 200"))

    status = main(["--lang", "en", "validate", str(good), str(bad)])
    output = capsys.readouterr()

    assert status == 1
    assert "good.bpmn: valid; processes: plain." in output.out
    assert "validation_no_lanes" not in output.out
    assert "Process plain has no lanes" in output.out
    assert "Fix: Draw a lane" in output.out
    assert "bad.bpmn: errors: 1, warnings: 0; the file cannot be deployed." in output.err
    assert "G (审核结果)" in output.err
    assert "amount == " in output.err

    assert main(["--lang", "en", "validate", "--json", str(good)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document[0]["valid"] is True
    assert [item["code"] for item in document[0]["findings"]] == ["validation_no_lanes"]
