"""The risk register (风险台账) of the shipped flowcharts, as auditors and designers download it."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from api.app import create_app
from engine import interventions
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.register import build_register
from engine.register_formats import export_register
from engine.service import Liuhen
from engine.users import Actor
from tests.conftest import ADMIN, DESIGNER, PROCESSES, ROOT, LiveServer, add_user

LIUHEN = "{urn:liuhen:bpmn:1.0}"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
AUDITOR = Actor("auditor", "审计员", frozenset({"auditor"}))

HEADERS_ZH = ["序号", "风险点编号", "职权事项", "事项编码", "版本", "环节", "环节标识", "单位/科室", "岗位", "风险类别",
              "风险点", "表现形式", "风险等级", "防控措施", "部门负责人", "责任领导", "监测指标", "累计事件数"]
HEADERS_EN = ["No.", "Risk point id", "Power item", "Power item code", "Version", "Step", "Step id",
              "Unit / department", "Post", "Risk category", "Risk point", "Manifestation", "Risk level",
              "Control measures", "Responsible post", "Supervising leader", "Monitoring indicator", "Events so far"]
COLUMN = {title: index for index, title in enumerate(HEADERS_ZH)}
LEVELS_ZH = {"high": "高", "medium": "中", "low": "低"}
CATEGORIES_ZH = {"power_operation": "权力运行风险", "institutional": "制度机制风险",
                 "external_environment": "外部环境风险"}


@dataclass
class Checkpoint:
    """A risk checkpoint as the BPMN file states it, read with lxml apart from liuhen's parser."""

    id: str
    process_id: str
    power_item_code: str
    element_id: str
    level: str
    category: str
    description: str
    measures: list[str]


def read_checkpoints(path: Path) -> list[Checkpoint]:
    root = etree.parse(str(path)).getroot()
    found = []
    for process in root.iter(f"{BPMN}process"):
        code = process.find(f"{BPMN}extensionElements/{LIUHEN}powerItem").get("code")
        for element in process.iter(f"{LIUHEN}riskCheckpoint"):
            node = element.getparent().getparent()
            found.append(Checkpoint(
                id=element.get("id"), process_id=process.get("id"), power_item_code=code,
                element_id=node.get("id"), level=element.get("level"), category=element.get("category"),
                description=element.findtext(f"{LIUHEN}description").strip(),
                measures=[m.text.strip() for m in element.findall(f"{LIUHEN}controlMeasure")]))
    return found


def shipped_checkpoints() -> list[Checkpoint]:
    """Every checkpoint of the shipped files, sorted by power item code and then file order."""
    files = sorted(PROCESSES.glob("*.bpmn"))
    by_file = [read_checkpoints(path) for path in files]
    by_file.sort(key=lambda checkpoints: checkpoints[0].power_item_code)
    return [checkpoint for checkpoints in by_file for checkpoint in checkpoints]


def deploy_shipped(service: Liuhen) -> None:
    for path in sorted(PROCESSES.glob("*.bpmn")):
        service.deploy(path.read_bytes(), path.name, DESIGNER)


def reimbursement_without(checkpoint_id: str) -> bytes:
    """The shipped reimbursement flowchart with one risk checkpoint removed: a second version."""
    tree = etree.parse(str(PROCESSES / "reimbursement.bpmn"))
    element = next(e for e in tree.iter(f"{LIUHEN}riskCheckpoint") if e.get("id") == checkpoint_id)
    element.getparent().remove(element)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def register_bytes(service: Liuhen, register_format: str, locale: str = "zh_CN", **options: Any) -> bytes:
    _register, content = export_register(service, AUDITOR, register_format, locale, **options)
    return content


def workbook_rows(content: bytes) -> tuple[Worksheet, list[list[Any]]]:
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    return sheet, [list(row) for row in sheet.iter_rows(values_only=True)]


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


@pytest.fixture
def deployed(service: Liuhen) -> Liuhen:
    deploy_shipped(service)
    return service


# The workbook

def test_xlsx_one_row_per_checkpoint(deployed: Liuhen) -> None:
    expected = shipped_checkpoints()
    sheet, rows = workbook_rows(register_bytes(deployed, "xlsx"))

    assert sheet.title == "风险台账"
    assert rows[0] == HEADERS_ZH
    body = rows[1:]
    assert len(body) == len(expected)
    assert [row[COLUMN["风险点编号"]] for row in body] == [checkpoint.id for checkpoint in expected]
    assert [row[COLUMN["序号"]] for row in body] == list(range(1, len(expected) + 1))
    for row, checkpoint in zip(body, expected, strict=True):
        assert row[COLUMN["环节标识"]] == checkpoint.element_id
        assert row[COLUMN["事项编码"]] == checkpoint.power_item_code
        assert row[COLUMN["版本"]] == 1
        assert row[COLUMN["风险等级"]] == LEVELS_ZH[checkpoint.level]
        assert row[COLUMN["风险类别"]] == CATEGORIES_ZH[checkpoint.category]
        assert row[COLUMN["风险点"]] == checkpoint.description
        assert row[COLUMN["防控措施"]].splitlines() == [
            f"{number}. {measure}" for number, measure in enumerate(checkpoint.measures, start=1)]
        assert row[COLUMN["累计事件数"]] == 0
        assert "风险事件和行政干预" in row[COLUMN["监测指标"]]


def test_xlsx_layout(deployed: Liuhen) -> None:
    sheet, rows = workbook_rows(register_bytes(deployed, "xlsx"))
    last_column = chr(ord("A") + len(HEADERS_ZH) - 1)

    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{last_column}{len(rows)}"
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet[1][0].fill.fgColor.rgb.endswith("D9E1F2")
    assert sheet.column_dimensions["N"].width == 50
    assert sheet.cell(row=2, column=COLUMN["防控措施"] + 1).alignment.wrap_text

    fills: dict[str, set[str]] = {}
    for row in sheet.iter_rows(min_row=2):
        level_cell = row[COLUMN["风险等级"]]
        fills.setdefault(level_cell.value, set()).add(level_cell.fill.fgColor.rgb)
    assert set(fills) == {"高", "中", "低"}
    assert all(len(colours) == 1 for colours in fills.values())
    assert len({next(iter(colours)) for colours in fills.values()}) == 3


def test_xlsx_summary_totals(deployed: Liuhen) -> None:
    expected = shipped_checkpoints()
    summary = load_workbook(io.BytesIO(register_bytes(deployed, "xlsx"))).worksheets[1]
    rows = [list(row) for row in summary.iter_rows(values_only=True)]

    assert summary.title == "汇总"
    assert rows[0] == ["风险类别", "高", "中", "低", "合计"]
    for row, category in zip(rows[1:4], CATEGORIES_ZH, strict=True):
        counts = Counter(c.level for c in expected if c.category == category)
        assert row == [CATEGORIES_ZH[category], counts["high"], counts["medium"], counts["low"],
                       sum(counts.values())]
    levels = Counter(c.level for c in expected)
    assert rows[4] == ["合计", levels["high"], levels["medium"], levels["low"], len(expected)]
    assert ["版本范围", "每个流程的最新版本"] == rows[6][:2]


def test_xlsx_english_locale(deployed: Liuhen) -> None:
    workbook = load_workbook(io.BytesIO(register_bytes(deployed, "xlsx", "en")))
    rows = [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]

    assert workbook.sheetnames == ["Risk register", "Summary"]
    assert rows[0] == HEADERS_EN
    assert {row[COLUMN["风险等级"]] for row in rows[1:]} == {"High", "Medium", "Low"}
    assert "Power-operation risk" in {row[COLUMN["风险类别"]] for row in rows[1:]}


# CSV and JSON

def test_csv_and_json_match_xlsx(deployed: Liuhen) -> None:
    _sheet, xlsx = workbook_rows(register_bytes(deployed, "xlsx"))
    table = csv_rows(register_bytes(deployed, "csv"))
    document = json.loads(register_bytes(deployed, "json"))

    assert table[0] == HEADERS_ZH
    assert table[1:] == [["" if value is None else str(value) for value in row] for row in xlsx[1:]]
    assert [row["checkpoint_id"] for row in document["rows"]] == [row[COLUMN["风险点编号"]] for row in xlsx[1:]]
    for row, cells in zip(document["rows"], xlsx[1:], strict=True):
        assert row["number"] == cells[COLUMN["序号"]]
        assert row["level_label"] == cells[COLUMN["风险等级"]]
        assert row["description"] == cells[COLUMN["风险点"]]
        assert row["events"] == cells[COLUMN["累计事件数"]]
    assert document["summary"]["total"] == len(xlsx) - 1


def test_csv_bom_and_english(deployed: Liuhen) -> None:
    plain = register_bytes(deployed, "csv", "en")
    with_bom = register_bytes(deployed, "csv", "en", bom=True)

    assert not plain.startswith(b"\xef\xbb\xbf")
    assert with_bom == b"\xef\xbb\xbf" + plain
    assert csv_rows(plain)[0] == HEADERS_EN


def test_json_keeps_codes_and_labels(deployed: Liuhen) -> None:
    expected = {checkpoint.id: checkpoint for checkpoint in shipped_checkpoints()}
    rows = json.loads(register_bytes(deployed, "json", "en"))["rows"]

    for row in rows:
        checkpoint = expected[row["checkpoint_id"]]
        assert row["level"] == checkpoint.level
        assert row["category"] == checkpoint.category
        assert row["control_measures"] == checkpoint.measures
        assert row["level_label"] in {"High", "Medium", "Low"}
        assert row["event_counts"] == {}


# Selection

def test_newest_and_all_versions(deployed: Liuhen) -> None:
    shipped = [c.id for c in read_checkpoints(PROCESSES / "reimbursement.bpmn")]
    [second] = deployed.deploy(reimbursement_without("RC-BX-02"), "reimbursement.bpmn", DESIGNER)
    assert second.version == 2

    newest = build_register(deployed, AUDITOR, process_id="reimbursement")
    everything = build_register(deployed, AUDITOR, process_id="reimbursement", all_versions=True)

    assert [(row.version, row.checkpoint_id) for row in newest.rows] == [
        (2, checkpoint_id) for checkpoint_id in shipped if checkpoint_id != "RC-BX-02"]
    assert [(row.version, row.checkpoint_id) for row in everything.rows] == (
        [(1, checkpoint_id) for checkpoint_id in shipped]
        + [(2, checkpoint_id) for checkpoint_id in shipped if checkpoint_id != "RC-BX-02"])
    assert len(build_register(deployed, AUDITOR).rows) == len(shipped_checkpoints()) - 1
    assert len(build_register(deployed, AUDITOR, all_versions=True).rows) == (
        len(shipped_checkpoints()) + len(shipped) - 1)


def test_events_count_interventions(deployed: Liuhen) -> None:
    handler = add_user(deployed, "handler", ["staff"], ["经办人"])
    add_user(deployed, "handler2", ["staff"], ["经办人"])
    case = deployed.start_case("reimbursement", handler, title="报销打印纸")
    task_id = case["tasks"][0]["id"]
    interventions.reassign_task(deployed, task_id, ADMIN, "handler2", "原经办人出差")
    interventions.skip_step(deployed, task_id, ADMIN, "票据已线下核验，经批准跳过",
                            {"amount": 260, "involves_goods": False})

    rows = {row.checkpoint_id: row for row in build_register(deployed, AUDITOR, process_id="reimbursement").rows}

    for checkpoint_id in ("RC-BX-01", "RC-BX-02"):
        assert rows[checkpoint_id].element_id == "Task_submit"
        assert rows[checkpoint_id].event_counts == {"task_reassigned": 1, "step_skipped": 1}
        assert rows[checkpoint_id].events == 2
    assert all(row.events == 0 for key, row in rows.items() if key not in ("RC-BX-01", "RC-BX-02"))

    _sheet, xlsx = workbook_rows(register_bytes(deployed, "xlsx", process_id="reimbursement"))
    assert [row[COLUMN["累计事件数"]] for row in xlsx[1:3]] == [2, 2]


def test_events_stay_with_their_version(deployed: Liuhen) -> None:
    handler = add_user(deployed, "handler", ["staff"], ["经办人"])
    case = deployed.start_case("reimbursement", handler)
    interventions.skip_step(deployed, case["tasks"][0]["id"], ADMIN, "经批准跳过提交环节",
                            {"amount": 260, "involves_goods": False})
    deployed.deploy(reimbursement_without("RC-BX-02"), "reimbursement.bpmn", DESIGNER)

    newest = build_register(deployed, AUDITOR, process_id="reimbursement")
    everything = build_register(deployed, AUDITOR, process_id="reimbursement", all_versions=True)

    assert next(r for r in newest.rows if r.checkpoint_id == "RC-BX-01").events == 0
    first = next(r for r in everything.rows if r.checkpoint_id == "RC-BX-01" and r.version == 1)
    assert first.event_counts == {"step_skipped": 1}


def test_export_rejects_bad_requests(deployed: Liuhen) -> None:
    with pytest.raises(InvalidInput) as bad_format:
        export_register(deployed, AUDITOR, "xls", "en")
    assert bad_format.value.render("en") == "Register format 'xls' is unknown; use one of: xlsx, csv, json."

    with pytest.raises(NotFound) as unknown:
        export_register(deployed, AUDITOR, "csv", "en", process_id="vehicle_use")
    assert unknown.value.render("en") == "No process vehicle_use is deployed; deploy its BPMN file first."

    with pytest.raises(InvalidInput) as bom:
        export_register(deployed, AUDITOR, "json", "en", bom=True)
    assert "not a json register" in bom.value.render("en")

    with pytest.raises(Forbidden):
        build_register(deployed, Actor("clerk", "经办", frozenset({"staff"})))


def test_xlsx_keeps_formula_text(service: Liuhen) -> None:
    tree = etree.parse(str(PROCESSES / "reimbursement.bpmn"))
    description = next(tree.iter(f"{LIUHEN}description"))
    description.text = "=SUM(1,2) 拆分报销"
    service.deploy(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), "reimbursement.bpmn", DESIGNER)

    sheet, rows = workbook_rows(register_bytes(service, "xlsx"))

    assert rows[1][COLUMN["风险点"]] == "=SUM(1,2) 拆分报销"
    assert sheet.cell(row=2, column=COLUMN["风险点"] + 1).data_type == "s"


def test_empty_register(service: Liuhen) -> None:
    _sheet, rows = workbook_rows(register_bytes(service, "xlsx"))
    assert rows == [HEADERS_ZH]
    assert json.loads(register_bytes(service, "json"))["summary"]["total"] == 0


# Front ends

def _login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_http_register_roles(deployed: Liuhen) -> None:
    for username, roles in (("clerk", ["staff"]), ("auditor", ["auditor"]), ("designer", ["designer"]),
                            ("admin", ["admin"])):
        add_user(deployed, username, roles)
    expected = len(shipped_checkpoints())

    with LiveServer(create_app(deployed.settings, deployed)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/api/register").status_code == 401
        staff = client.get("/api/register", headers=_login(client, "clerk"))
        assert staff.status_code == 403
        assert staff.json()["error"]["code"] == "forbidden"

        workbook = client.get("/api/register", headers=_login(client, "auditor"))
        assert workbook.status_code == 200
        assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert workbook.headers["content-disposition"].endswith('.xlsx"')
        _sheet, rows = workbook_rows(workbook.content)
        assert len(rows) == expected + 1

        table = client.get("/api/register", headers={**_login(client, "designer"), "Accept-Language": "en"},
                           params={"format": "csv", "bom": "true"})
        assert table.status_code == 200
        assert table.content.startswith(b"\xef\xbb\xbf")
        assert csv_rows(table.content)[0] == HEADERS_EN

        admin = _login(client, "admin")
        document = client.get("/api/register", headers=admin,
                              params={"format": "json", "process": "reimbursement", "all_versions": "true"})
        assert document.status_code == 200
        assert {row["process_id"] for row in document.json()["rows"]} == {"reimbursement"}


def test_http_register_errors(deployed: Liuhen) -> None:
    add_user(deployed, "auditor", ["auditor"])

    with LiveServer(create_app(deployed.settings, deployed)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        auditor = {**_login(client, "auditor"), "Accept-Language": "en"}
        bad = client.get("/api/register", headers=auditor, params={"format": "pdf"})
        assert bad.status_code == 422
        assert "'pdf'" in bad.json()["error"]["message"]

        unknown = client.get("/api/register", headers=auditor, params={"process": "vehicle_use"})
        assert unknown.status_code == 404
        assert "vehicle_use" in unknown.json()["error"]["message"]


def test_cli_register_export(deployed: Liuhen, tmp_path: Path) -> None:
    env = {**os.environ, "LIUHEN_DATABASE_URL": deployed.settings.resolved_database_url(),
           "LIUHEN_DATA_DIR": str(tmp_path)}
    output = tmp_path / "台账.xlsx"

    written = subprocess.run([sys.executable, "-m", "api.cli", "register", "export", "--output", str(output)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert written.returncode == 0, written.stderr
    assert f"{len(shipped_checkpoints())} 个风险点" in written.stdout
    _sheet, rows = workbook_rows(output.read_bytes())
    assert rows[0] == HEADERS_ZH

    rejected = subprocess.run([sys.executable, "-m", "api.cli", "--lang", "en", "register", "export", "--format",
                              "xls", "--output", str(tmp_path / "out.xls")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert rejected.returncode == 1
    assert "Register format 'xls' is unknown" in rejected.stderr
    assert not (tmp_path / "out.xls").exists()
