"""Event-log exports (XES, CSV, JSON) of the shipped flowcharts' sample cases, as an auditor reads them."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from lxml import etree

from api.app import create_app
from api.demo import load_json, run_scenario, scenario_files, seed_users
from engine import interventions
from engine.clock import ManualClock
from engine.errors import InvalidInput
from engine.exports import LIFECYCLE, ExportFilter, export_chunks, write_export
from engine.service import Liuhen
from engine.users import Actor, get_actor
from tests.conftest import PROCESSES, ROOT, LiveServer

XES = "{http://www.xes-standard.org/}"
SCHEMA = etree.XMLSchema(etree.parse(str(ROOT / "engine" / "schema" / "xes.xsd")))
DEMO_USERS = json.loads((PROCESSES / "demo-users.json").read_text(encoding="utf-8"))
PASSWORDS = {user["username"]: user["password"] for user in DEMO_USERS}
ATTRIBUTE_TAGS = {f"{XES}{tag}" for tag in ("string", "date", "int", "float", "boolean", "id", "list", "container")}
STANDARD_TRANSITIONS = {"schedule", "assign", "withdraw", "reassign", "start", "suspend", "resume", "pi_abort",
                        "ate_abort", "complete", "autoskip", "manualskip", "unknown"}
TIMEZONE = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
DESIGNER = Actor("designer", "设计员", frozenset({"designer"}))


@dataclass
class Demo:
    service: Liuhen
    clock: ManualClock
    cases: dict[int, dict[str, Any]]
    titles: dict[int, str]


def _actor(service: Liuhen, username: str) -> Actor:
    with service.db.read() as conn:
        actor = get_actor(conn, username)
    assert actor is not None, username
    return actor


@pytest.fixture
def demo(service: Liuhen, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Demo:
    """Every scenario of every shipped flowchart, each flowchart's cases starting three days after the last."""
    # The default Argon2 cost makes seeding the 23 demo users take most of this fixture's time.
    monkeypatch.setattr("engine.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    seed_users(service, PROCESSES / "demo-users.json")
    for path in sorted(PROCESSES.glob("*.bpmn")):
        service.deploy(path.read_bytes(), path.name, DESIGNER)
    titles = {}
    for path in scenario_files(PROCESSES):
        document = load_json(path)
        for scenario in document["scenarios"]:
            result = run_scenario(service, clock, document["process_id"], scenario)
            assert result.ok, result
            titles[result.case_id] = scenario["title"]
        clock.advance(timedelta(days=3))
    cases = {case["id"]: case for case in service.list_cases(limit=1000)}
    return Demo(service, clock, cases, titles)


def _export(service: Liuhen, export_format: str, filters: ExportFilter | None = None, *, bom: bool = False) -> str:
    handle = io.StringIO(newline="")
    write_export(service, export_format, filters or ExportFilter(), handle, bom=bom)
    return handle.getvalue()


def _attributes(element: etree._Element) -> dict[str, str]:
    """Map the keys of the direct child attributes of a log, trace or event to their values."""
    return {child.get("key"): child.get("value") for child in element if child.tag in ATTRIBUTE_TAGS}


def _parse_xes(text: str) -> etree._Element:
    root = etree.fromstring(text.encode("utf-8"))
    assert SCHEMA.validate(root), SCHEMA.error_log
    return root


def _traces(root: etree._Element) -> dict[int, etree._Element]:
    return {int(_attributes(trace)["concept:name"]): trace for trace in root.iter(f"{XES}trace")}


def _case_ids(service: Liuhen, filters: ExportFilter) -> set[int]:
    return {case["case_id"] for case in json.loads(_export(service, "json", filters))}


# XES

def test_xes_validates_against_schema(demo: Demo) -> None:
    root = _parse_xes(_export(demo.service, "xes"))

    assert root.get("xes.version") == "1849-2016"
    assert "nested-attributes" in root.get("xes.features")
    prefixes = {extension.get("prefix"): extension.get("uri") for extension in root.iter(f"{XES}extension")}
    assert prefixes == {
        "concept": "http://www.xes-standard.org/concept.xesext",
        "time": "http://www.xes-standard.org/time.xesext",
        "lifecycle": "http://www.xes-standard.org/lifecycle.xesext",
        "org": "http://www.xes-standard.org/org.xesext",
        "identity": "http://www.xes-standard.org/identity.xesext",
    }
    assert {element.get("scope") for element in root.iter(f"{XES}global")} == {"trace", "event"}
    assert any(c.get("keys") == "concept:name" for c in root.iter(f"{XES}classifier"))


def test_xes_one_trace_per_case(demo: Demo) -> None:
    traces = _traces(_parse_xes(_export(demo.service, "xes")))

    assert set(traces) == set(demo.cases)
    for case_id, trace in traces.items():
        case = demo.cases[case_id]
        attributes = _attributes(trace)
        assert attributes["liuhen:process_id"] == case["process_id"]
        assert attributes["liuhen:version"] == str(case["version"])
        assert attributes["liuhen:status"] == case["status"]
        assert attributes["liuhen:started_by"] == case["started_by"]
        assert attributes["liuhen:power_item_code"]
        assert attributes["liuhen:power_item_name"]


def test_xes_events_match_trace(demo: Demo) -> None:
    traces = _traces(_parse_xes(_export(demo.service, "xes")))

    for case_id, trace in traces.items():
        stored = demo.service.case_trace(case_id)
        events = [_attributes(event) for event in trace.iter(f"{XES}event")]
        assert len(events) == len(stored), case_id
        assert [int(e["liuhen:seq"]) for e in events] == [k["seq"] for k in stored]
        assert [e["liuhen:hash"] for e in events] == [k["hash"] for k in stored]
        assert [e["liuhen:kind"] for e in events] == [k["kind"] for k in stored]
        assert [e["org:resource"] for e in events] == [k["actor"] for k in stored]
        assert [e["lifecycle:transition"] for e in events] == [LIFECYCLE[k["kind"]] for k in stored]
        assert {e["lifecycle:transition"] for e in events} <= STANDARD_TRANSITIONS
        assert all(e["identity:id"].replace("-", "") == e["liuhen:hash"][:32] for e in events)


def test_xes_names_work_items(demo: Demo) -> None:
    """Every event of a work item carries the step's name and post, even events whose payload has neither."""
    traces = _traces(_parse_xes(_export(demo.service, "xes")))

    for case_id, trace in traces.items():
        tasks = {task["id"]: task for task in demo.service.list_tasks(
            _actor(demo.service, "admin"), scope="all", case_id=case_id, status="any")}
        for event in trace.iter(f"{XES}event"):
            attributes = _attributes(event)
            task = tasks.get(attributes.get("concept:instance"))
            if task is None:
                continue
            assert attributes["concept:name"] == (task["name"] or task["element_id"])
            assert attributes["org:group"] == task["lane"]
            assert attributes["liuhen:element_id"] == task["element_id"]


def test_xes_chinese_text_round_trips(demo: Demo) -> None:
    traces = _traces(_parse_xes(_export(demo.service, "xes")))

    for case_id, title in demo.titles.items():
        assert _attributes(traces[case_id])["liuhen:title"] == title
    names = {_attributes(event)["concept:name"] for trace in traces.values() for event in trace.iter(f"{XES}event")}
    assert "财务报销" in names
    assert "受理审查" in names


def test_xes_escapes_markup_and_control_characters(demo: Demo) -> None:
    title = '报销 <b>"A&B"</b>\n第二行\t制表 \x01'
    case = demo.service.start_case("reimbursement", _actor(demo.service, "zhou_hong"), {}, title)

    trace = _traces(_parse_xes(_export(demo.service, "xes")))[case["id"]]

    assert _attributes(trace)["liuhen:title"] == title.replace("\x01", "\ufffd")


def test_xes_timestamps_carry_time_zones(demo: Demo) -> None:
    root = _parse_xes(_export(demo.service, "xes"))

    dates = [element.get("value") for element in root.iter(f"{XES}date")]
    assert len(dates) > len(demo.cases)
    for value in dates:
        assert TIMEZONE.search(value), value
        assert datetime.fromisoformat(value).tzinfo is not None
    for case_id, trace in _traces(root).items():
        stored = demo.service.case_trace(case_id)
        stamps = [datetime.fromisoformat(_attributes(event)["time:timestamp"]) for event in trace.iter(f"{XES}event")]
        assert stamps == [datetime.fromisoformat(event["at"]) for event in stored]


def test_xes_payload_keeps_value_types(demo: Demo) -> None:
    traces = _traces(_parse_xes(_export(demo.service, "xes")))
    types = {bool: "boolean", int: "int", float: "float", str: "string"}

    checked = 0
    for case_id, trace in traces.items():
        stored = {event["seq"]: event for event in demo.service.case_trace(case_id)}
        for event in trace.iter(f"{XES}event"):
            submitted = stored[int(_attributes(event)["liuhen:seq"])]["payload"].get("data")
            if submitted is None or submitted == {}:
                continue
            data = event.find(f"{XES}container[@key='liuhen:payload']/{XES}container[@key='data']")
            for key, value in submitted.items():
                if value is None:
                    continue
                element = data.find(f"{XES}*[@key='{key}']")
                assert element.tag == f"{XES}{types[type(value)]}", (case_id, key)
                expected = str(value).lower() if isinstance(value, bool) else str(value)
                assert element.get("value") == expected, (case_id, key)
                checked += 1
    assert checked > 100


def test_xes_interventions_map_to_lifecycle(demo: Demo) -> None:
    service = demo.service
    admin, handler = _actor(service, "admin"), _actor(service, "zhou_hong")
    case = service.start_case("reimbursement", handler, {}, "干预测试")
    task_id = case["tasks"][0]["id"]
    service.claim(task_id, handler)
    service.release(task_id, handler)
    interventions.reassign_task(service, task_id, admin, "xu_tao", "经办人休假")
    skip_data = {"amount": 80, "expense_type": "other", "purpose": "邮寄公函", "involves_goods": False,
                 "invoice_count": 1, "expense_date": "2025-03-05", "payee": "某县邮政局"}
    after_skip = interventions.skip_step(service, task_id, admin, "系统故障，管理员代为提交", skip_data)
    interventions.edit_case_data(service, case["id"], admin, {"purpose": "邮寄公函（更正）"}, "更正用途")
    service.cancel_case(case["id"], admin, "申请人撤回")

    trace = _traces(_parse_xes(_export(service, "xes")))[case["id"]]

    events = [_attributes(event) for event in trace.iter(f"{XES}event")]
    pairs = [(e["liuhen:kind"], e["lifecycle:transition"]) for e in events]
    assert ("clock_started", "unknown") in pairs
    assert ("control_evaluated", "unknown") in pairs
    # Clock and control events sit between the work items' transitions; the order of those is checked.
    pairs = [pair for pair in pairs if not pair[0].startswith(("clock_", "control_"))]
    assert pairs[:7] == [("case_started", "start"), ("task_ready", "schedule"), ("task_claimed", "assign"),
                         ("task_released", "reassign"), ("task_reassigned", "reassign"),
                         ("step_skipped", "manualskip"), ("task_completed", "complete")]
    assert ("data_edited", "unknown") in pairs
    assert pairs[-2:] == [("task_cancelled", "withdraw"), ("case_cancelled", "pi_abort")]
    submit = [e for e in events if e.get("concept:instance") == task_id
              and not e["liuhen:kind"].startswith(("clock_", "control_"))]
    assert [e["liuhen:kind"] for e in submit] == ["task_ready", "task_claimed", "task_released", "task_reassigned",
                                                  "step_skipped", "task_completed"]
    assert {e["concept:name"] for e in submit} == {case["tasks"][0]["name"]}
    assert {e["org:group"] for e in submit} == {"经办人"}
    assert after_skip["tasks"], "the skipped step should lead to a next task that the cancellation withdraws"


def test_schema_rejects_broken_logs() -> None:
    header = '<log xmlns="http://www.xes-standard.org/" xes.version="1849-2016">'
    broken = [
        '<trace><event><string value="no key"/></event></trace>',
        '<trace><event><string key="a" value="1"/><string key="a" value="2"/></event></trace>',
        '<trace><event><date key="time:timestamp" value="yesterday"/></event></trace>',
        '<trace><event><int key="n" value="1.5"/></event></trace>',
        '<trace><event><id key="identity:id" value="not-a-uuid"/></event></trace>',
        '<trace><event/><string key="late" value="after the events"/></trace>',
        '<trace><event><list key="l"><string key="0" value="outside values"/></list></event></trace>',
        '<global scope="case"/>',
    ]
    for body in broken:
        document = etree.fromstring(f"{header}{body}</log>".encode())
        assert not SCHEMA.validate(document), body


# CSV and JSON

def test_csv_matches_trace(demo: Demo) -> None:
    text = _export(demo.service, "csv")

    assert not text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == sum(len(demo.service.case_trace(case_id)) for case_id in demo.cases)
    assert {int(row["case_id"]) for row in rows} == set(demo.cases)
    for case_id, case in demo.cases.items():
        stored = demo.service.case_trace(case_id)
        mine = [row for row in rows if int(row["case_id"]) == case_id]
        assert [row["hash"] for row in mine] == [event["hash"] for event in stored]
        assert [row["lifecycle"] for row in mine] == [LIFECYCLE[event["kind"]] for event in stored]
        assert {row["process_id"] for row in mine} == {case["process_id"]}
        assert all(TIMEZONE.search(row["timestamp"]) for row in mine)
    assert "受理审查" in {row["activity"] for row in rows}


def test_csv_byte_order_mark(demo: Demo) -> None:
    text = _export(demo.service, "csv", bom=True)

    assert text.startswith("\ufeffcase_id,activity,")
    data = text.encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == ["case_id", "activity", "timestamp", "lifecycle", "resource", "group", "process_id",
                             "version", "element_id", "kind", "seq", "hash"]


def test_json_matches_trace(demo: Demo) -> None:
    exported = json.loads(_export(demo.service, "json"))

    assert [case["case_id"] for case in exported] == sorted(demo.cases)
    for case in exported:
        stored = demo.service.case_trace(case["case_id"])
        assert [event["hash"] for event in case["events"]] == [event["hash"] for event in stored]
        assert [event["payload"] for event in case["events"]] == [event["payload"] for event in stored]
        assert case["title"] == demo.titles[case["case_id"]]
        assert case["power_item"]["code"]
        assert TIMEZONE.search(case["started_at"])


def test_empty_selection_is_valid(demo: Demo) -> None:
    filters = ExportFilter.parse(since="2999-01-01")

    assert _traces(_parse_xes(_export(demo.service, "xes", filters))) == {}
    assert json.loads(_export(demo.service, "json", filters)) == []
    assert _export(demo.service, "csv", filters).strip() == ",".join(
        ["case_id", "activity", "timestamp", "lifecycle", "resource", "group", "process_id", "version",
         "element_id", "kind", "seq", "hash"])


# Filters

def test_filter_by_process_and_power_item(demo: Demo) -> None:
    reimbursement = {case_id for case_id, case in demo.cases.items() if case["process_id"] == "reimbursement"}

    assert _case_ids(demo.service, ExportFilter.parse(process="reimbursement")) == reimbursement
    assert _case_ids(demo.service, ExportFilter.parse(power_item="XX-NB-CW-001")) == reimbursement
    assert 0 < len(reimbursement) < len(demo.cases)


def test_filter_by_version(demo: Demo) -> None:
    content = (PROCESSES / "reimbursement.bpmn").read_bytes() + b"<!-- version 2 -->\n"
    deployed = demo.service.deploy(content, "reimbursement.bpmn", DESIGNER)
    assert deployed[0].version == 2
    scenario = load_json(PROCESSES / "scenarios" / "reimbursement.json")["scenarios"][0]
    second = run_scenario(demo.service, demo.clock, "reimbursement", scenario).case_id
    first = {case_id for case_id, case in demo.cases.items() if case["process_id"] == "reimbursement"}

    assert _case_ids(demo.service, ExportFilter.parse(process="reimbursement", version="2")) == {second}
    assert _case_ids(demo.service, ExportFilter.parse(process="reimbursement", version="1")) == first
    trace = _traces(_parse_xes(_export(demo.service, "xes", ExportFilter.parse(version="2"))))[second]
    assert _attributes(trace)["liuhen:version"] == "2"


def test_filter_by_period(demo: Demo) -> None:
    started = {case_id: case["started_at"] for case_id, case in demo.cases.items()}
    days = sorted({moment.date() for moment in started.values()})
    assert len(days) >= 3
    day = days[1]
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)

    since = _case_ids(demo.service, ExportFilter.parse(since=day.isoformat()))
    until = _case_ids(demo.service, ExportFilter.parse(until=day.isoformat()))
    both = _case_ids(demo.service, ExportFilter.parse(since=day.isoformat(), until=day.isoformat()))

    assert since == {c for c, moment in started.items() if moment >= midnight}
    assert until == {c for c, moment in started.items() if moment < midnight + timedelta(days=1)}
    assert both == {c for c, moment in started.items() if moment.date() == day}
    assert 0 < len(both) < len(started)


def test_filter_moment_with_offset(demo: Demo) -> None:
    started = {case_id: case["started_at"] for case_id, case in demo.cases.items()}
    middle = sorted(started.values())[len(started) // 2]
    beijing = middle.astimezone(timezone(timedelta(hours=8))).isoformat()

    assert _case_ids(demo.service, ExportFilter.parse(since=beijing)) == \
        {c for c, moment in started.items() if moment >= middle}
    assert _case_ids(demo.service, ExportFilter.parse(until=beijing)) == \
        {c for c, moment in started.items() if moment <= middle}


def test_filter_by_status(demo: Demo) -> None:
    case = demo.service.start_case("reimbursement", _actor(demo.service, "zhou_hong"), {}, "待撤销")
    demo.service.cancel_case(case["id"], _actor(demo.service, "admin"), "测试撤销")
    running = demo.service.start_case("reimbursement", _actor(demo.service, "zhou_hong"), {}, "办理中")

    assert _case_ids(demo.service, ExportFilter.parse(status="cancelled")) == {case["id"]}
    assert _case_ids(demo.service, ExportFilter.parse(status="running")) == {running["id"]}
    assert _case_ids(demo.service, ExportFilter.parse(status="completed")) == set(demo.cases)


@pytest.mark.parametrize(("options", "expected"), [
    ({"since": "2025-13-01"}, "Filter since='2025-13-01' is not a date"),
    ({"until": "yesterday"}, "Filter until='yesterday' is not a date"),
    ({"since": "2025-03-02", "until": "2025-03-01"},
     "Filter since=2025-03-02 is not before until=2025-03-01, so no case can match"),
    ({"version": "two"}, "Filter version='two' is not a version number"),
    ({"version": "0"}, "Filter version='0' is not a version number"),
    ({"status": "done"}, "Filter status='done' is not a case status; use one of: running, completed, cancelled."),
])
def test_filter_rejects_bad_values(options: dict[str, str], expected: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        ExportFilter.parse(**options)

    assert expected in raised.value.render("en")


@pytest.mark.parametrize(("export_format", "filters", "bom", "expected"), [
    ("pdf", ExportFilter(), False, "Export format 'pdf' is unknown; use one of: xes, csv, json."),
    ("xes", ExportFilter(), True, "A byte order mark can only start a CSV export, not a xes export."),
    ("xes", ExportFilter(process_id="no_such_process"), False, "Filter process='no_such_process' matches no"),
    ("csv", ExportFilter(power_item_code="XX-0"), False, "Filter power_item='XX-0' matches no power item code"),
    ("json", ExportFilter(process_id="reimbursement", version=7), False, "Filter version=7 matches no deployed"),
])
def test_export_rejects_unknown_values(demo: Demo, export_format: str, filters: ExportFilter, bom: bool,
                                       expected: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        export_chunks(demo.service, export_format, filters, bom=bom)

    assert expected in raised.value.render("en")


# Command line and HTTP

def test_cli_export_writes_file(demo: Demo, tmp_path: Path) -> None:
    target = tmp_path / "报销.csv"
    env = {**os.environ, "LIUHEN_DATABASE_URL": demo.service.settings.resolved_database_url(),
           "LIUHEN_DATA_DIR": str(tmp_path), "LIUHEN_LOCALE": "en"}

    result = subprocess.run([sys.executable, "-m", "api.cli", "export", "csv", "--output", str(target),
                             "--process", "reimbursement", "--bom"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    reimbursement = [case_id for case_id, case in demo.cases.items() if case["process_id"] == "reimbursement"]
    events = sum(len(demo.service.case_trace(case_id)) for case_id in reimbursement)
    assert f"Exported to {target}: cases {len(reimbursement)}, events {events}." in result.stdout
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert not (tmp_path / "报销.csv.part").exists()

    bad = subprocess.run([sys.executable, "-m", "api.cli", "export", "xes", "--output", str(tmp_path / "x.xes"),
                          "--since", "2025-02-30"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    assert "Filter since='2025-02-30' is not a date" in bad.stderr
    assert not (tmp_path / "x.xes").exists()


def _login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORDS[username]})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_http_export_streams_file(demo: Demo) -> None:
    with LiveServer(create_app(demo.service.settings, demo.service)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        auditor = _login(client, "qian_qing")

        xes = client.get("/api/exports/xes", headers=auditor)
        assert xes.status_code == 200, xes.text
        assert xes.headers["content-type"].startswith("application/xml")
        assert re.fullmatch(r'attachment; filename="liuhen-events-\d{8}T\d{6}Z\.xes"',
                            xes.headers["content-disposition"])
        assert set(_traces(_parse_xes(xes.text))) == set(demo.cases)

        with client.stream("GET", "/api/exports/csv", headers=auditor,
                           params={"process": "reimbursement", "bom": "true"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/csv; charset=utf-8"
            body = b"".join(response.iter_bytes())
        assert body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
        assert {row["process_id"] for row in rows} == {"reimbursement"}

        exported = client.get("/api/exports/json", headers=_login(client, "admin"), params={"status": "completed"})
        assert exported.headers["content-type"] == "application/json"
        assert len(exported.json()) == len(demo.cases)


def test_http_export_rejects(demo: Demo) -> None:
    with LiveServer(create_app(demo.service.settings, demo.service)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        staff = client.get("/api/exports/xes", headers=_login(client, "li_na"))
        assert staff.status_code == 403
        assert staff.json()["error"]["code"] == "forbidden"

        assert client.get("/api/exports/xes").status_code == 401

        auditor = _login(client, "qian_qing")
        bad = client.get("/api/exports/csv", headers={**auditor, "Accept-Language": "en"},
                         params={"until": "2025-3-1"})
        assert bad.status_code == 422
        assert "Filter until='2025-3-1' is not a date" in bad.json()["error"]["message"]

        unknown = client.get("/api/exports/pdf", headers={**auditor, "Accept-Language": "en"})
        assert unknown.status_code == 422
        assert "'pdf'" in unknown.json()["error"]["message"]


# Process-mining interoperability (development only: pm4py is AGPL and lives in the "mining" extra)

@pytest.mark.filterwarnings("ignore:Install the optional requirement:UserWarning")
def test_pm4py_reads_xes(demo: Demo, tmp_path: Path) -> None:
    pm4py = pytest.importorskip("pm4py")
    path = tmp_path / "log.xes"
    path.write_text(_export(demo.service, "xes"), encoding="utf-8")

    log = pm4py.read_xes(str(path), return_legacy_log_object=True)

    assert len(log) == len(demo.cases)
    assert sum(len(trace) for trace in log) == sum(len(demo.service.case_trace(c)) for c in demo.cases)
    names = {event["concept:name"] for trace in log for event in trace}
    assert "受理审查" in names
    assert all(event["time:timestamp"].tzinfo is not None for trace in log for event in trace)


def test_every_case_event_kind_has_a_lifecycle_transition() -> None:
    from engine.catalog import EVENT_KIND_MSGIDS
    from engine.exports import SYSTEM_KINDS

    case_kinds = set(EVENT_KIND_MSGIDS) - SYSTEM_KINDS
    assert case_kinds == set(LIFECYCLE)
    assert set(LIFECYCLE.values()) <= STANDARD_TRANSITIONS
