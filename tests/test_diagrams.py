"""Flowchart diagrams drawn with Graphviz: SVG structure, CJK glyphs in PNG and PDF, the CLI and the HTTP API."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree
from PIL import Image, ImageChops

from api.app import create_app
from api.cli import main as cli_main
from diagrams import DiagramInputError, render
from diagrams.dot import DotWriter
from diagrams.output import run_dot
from diagrams.reader import FLOW_NODES, SUBPROCESSES
from diagrams.style import FONT
from engine.definitions import load_definition
from engine.service import Liuhen
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import DESIGNER, PROCESSES, LiveServer, add_user

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "realworld-bpmn"
PRIVATE_SCHOOL = PROCESSES / "private_school_establishment.bpmn"
BADGES = {"zh_CN": {"high": "高", "medium": "中", "low": "低"}, "en": {"high": "H", "medium": "M", "low": "L"}}
LEVEL_ORDER = ("high", "medium", "low")
# Seconds; the largest real-world file (about 900 KB, mostly vendor extensions) takes well under one.
LARGE_FILE_LIMIT = 60.0


def parse_svg(content: bytes) -> etree._Element:
    parser = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False)
    return etree.fromstring(content, parser)


def groups(svg: etree._Element, kind: str) -> dict[str, etree._Element]:
    """Map the <title> of every SVG group of class ``kind`` (node, edge, cluster) to the group."""
    found = {}
    for group in svg.iter(f"{SVG}g"):
        if kind in (group.get("class") or "").split():
            found[group.findtext(f"{SVG}title")] = group
    return found


def texts(element: etree._Element) -> list[str]:
    return [text.text for text in element.iter(f"{SVG}text") if text.text]


def highest_level(checkpoints: list[dict]) -> str:
    return next(level for level in LEVEL_ORDER if any(c["level"] == level for c in checkpoints))


def flow_node_count(content: bytes) -> int:
    """Count the flow nodes drawn as nodes: every flow node except subprocesses that contain flow nodes."""
    root = etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))
    count = 0
    for element in root.iter(f"{BPMN}*"):
        kind = etree.QName(element).localname
        if kind not in FLOW_NODES or element.get("id") is None:
            continue
        expanded = kind in SUBPROCESSES and any(etree.QName(c).localname in FLOW_NODES
                                                for c in element if isinstance(c.tag, str))
        count += 0 if expanded else 1
    return count


@pytest.fixture(scope="module")
def school_svg() -> etree._Element:
    return parse_svg(render(PRIVATE_SCHOOL.read_bytes(), PRIVATE_SCHOOL.name, "svg", "zh_CN"))


@pytest.fixture(scope="module")
def school() -> object:
    return load_definition(PRIVATE_SCHOOL.read_bytes(), PRIVATE_SCHOOL.name)


# --- SVG structure of a shipped flowchart ---------------------------------------------------------------------


def test_svg_has_node_per_flow_node(school_svg, school) -> None:
    nodes = groups(school_svg, "node")
    for element_id, flow_node in school.nodes.items():
        assert element_id in nodes, f"{element_id} ({flow_node.kind}) has no node group"
        assert nodes[element_id].get("id") == element_id
        assert f"bpmn-{flow_node.kind}" in nodes[element_id].get("class")


def test_svg_lanes_are_clusters_with_names(school_svg, school) -> None:
    clusters = groups(school_svg, "cluster")
    lane_names = {n.lane for n in school.nodes.values() if n.lane}
    assert lane_names == {"受理窗口", "审批科室", "分管副局长", "局务会"}
    shown = {name for cluster in clusters.values() for name in texts(cluster)}
    assert lane_names <= shown
    assert "cluster_Lane_window" in clusters
    assert "受理窗口" in texts(clusters["cluster_Lane_window"])
    assert "cluster_Participant_private_school_establishment" in clusters


def test_svg_badges_match_highest_risk_level(school_svg, school) -> None:
    nodes = groups(school_svg, "node")
    with_checkpoints = 0
    for element_id, flow_node in school.nodes.items():
        shown = set(texts(nodes[element_id]))
        checkpoints = flow_node.extensions.get("risk_checkpoints", [])
        if not checkpoints:
            assert not shown & set(BADGES["zh_CN"].values()), element_id
            continue
        with_checkpoints += 1
        level = highest_level(checkpoints)
        assert BADGES["zh_CN"][level] in shown, element_id
        assert f"risk-{level}" in nodes[element_id].get("class")
    assert with_checkpoints >= 5


def test_svg_shows_step_time_limits(school_svg, school) -> None:
    nodes = groups(school_svg, "node")
    limited = {i: n.extensions["time_limit"] for i, n in school.nodes.items() if n.extensions.get("time_limit")}
    assert limited
    for element_id, limit in limited.items():
        assert limit["unit"] == "working_day"
        assert f"期限 {limit['amount']} 个工作日" in texts(nodes[element_id]), element_id


def test_svg_has_legend(school_svg) -> None:
    shown = texts(school_svg)
    for expected in ("图例", "风险等级", "高风险", "中风险", "低风险", "期限 N 个工作日", "定时事件"):
        assert expected in shown


def test_svg_flows_show_conditions_and_defaults(school_svg, school) -> None:
    edges = {group.get("id"): group for group in groups(school_svg, "edge").values()}
    labelled = 0
    for flow_details in school.flows.values():
        text = flow_details["name"] or flow_details["condition"]
        if not text:
            continue
        labelled += 1
        edge = edges[flow_details["flow_id"]]
        assert text in "".join(texts(edge)), flow_details["flow_id"]
    assert labelled >= 4
    assert "（默认）" in texts(edges["Flow_not_accepted"])


def test_svg_text_uses_cjk_font(school_svg) -> None:
    families = {text.get("font-family") for text in school_svg.iter(f"{SVG}text")}
    assert families == {FONT}


def test_svg_in_english_uses_letter_badges() -> None:
    svg = parse_svg(render(PRIVATE_SCHOOL.read_bytes(), PRIVATE_SCHOOL.name, "svg", "en"))
    shown = texts(svg)
    assert "Legend" in shown
    assert "Time limit: 5 working days" in shown
    assert {"H", "M", "L"} <= set(shown)
    assert "高" not in shown


# --- BPMN constructs ------------------------------------------------------------------------------------------

COLLABORATION = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:liuhen="urn:liuhen:bpmn:1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="urn:test">
  <bpmn:collaboration id="C">
    <bpmn:participant id="P_bureau" name="教育局" processRef="main"/>
    <bpmn:participant id="P_applicant" name="申请人"/>
    <bpmn:messageFlow id="MF_in" sourceRef="P_applicant" targetRef="S" name="申请材料"/>
    <bpmn:messageFlow id="MF_out" sourceRef="Send" targetRef="P_applicant"/>
  </bpmn:collaboration>
  <bpmn:process id="main" name="设立审批" isExecutable="true">
    <bpmn:startEvent id="S" name="收到申请"><bpmn:messageEventDefinition/></bpmn:startEvent>
    <bpmn:userTask id="Check" name="审查">
      <bpmn:extensionElements>
        <liuhen:timeLimit amount="2" unit="month"/>
        <liuhen:riskCheckpoint id="R1" level="low" category="institutional">
          <liuhen:description>审查拖延</liuhen:description><liuhen:controlMeasure>限时办结</liuhen:controlMeasure>
        </liuhen:riskCheckpoint>
        <liuhen:riskCheckpoint id="R2" level="high" category="power_operation">
          <liuhen:description>违规审批</liuhen:description><liuhen:controlMeasure>集体决策</liuhen:controlMeasure>
        </liuhen:riskCheckpoint>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="Overdue" name="超期" attachedToRef="Check" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeDuration>P5D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:manualTask id="Remind" name="催办"/>
    <bpmn:subProcess id="Review" name="专家评审">
      <bpmn:startEvent id="RS"/>
      <bpmn:scriptTask id="Score" name="计分"/>
      <bpmn:endEvent id="RE"/>
      <bpmn:sequenceFlow id="r1" sourceRef="RS" targetRef="Score"/>
      <bpmn:sequenceFlow id="r2" sourceRef="Score" targetRef="RE"/>
    </bpmn:subProcess>
    <bpmn:boundaryEvent id="ReviewFailed" attachedToRef="Review"><bpmn:errorEventDefinition/></bpmn:boundaryEvent>
    <bpmn:parallelGateway id="Fork"/>
    <bpmn:inclusiveGateway id="Inc" default="f_default"/>
    <bpmn:eventBasedGateway id="Wait"/>
    <bpmn:sendTask id="Send" name="送达"/>
    <bpmn:callActivity id="Archive" name="归档" calledElement="archive"/>
    <bpmn:intermediateThrowEvent id="Signal"><bpmn:signalEventDefinition/></bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="E"><bpmn:terminateEventDefinition/></bpmn:endEvent>
    <bpmn:endEvent id="E2"/>
    <bpmn:textAnnotation id="Note"><bpmn:text>依据《行政许可法》第四十二条</bpmn:text></bpmn:textAnnotation>
    <bpmn:association id="A1" sourceRef="Check" targetRef="Note"/>
    <bpmn:sequenceFlow id="f1" sourceRef="S" targetRef="Check"/>
    <bpmn:sequenceFlow id="f2" sourceRef="Check" targetRef="Review">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">amount &gt; 50000</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="Overdue" targetRef="Remind"/>
    <bpmn:sequenceFlow id="f4" sourceRef="Review" targetRef="Fork"/>
    <bpmn:sequenceFlow id="f5" sourceRef="Fork" targetRef="Inc"/>
    <bpmn:sequenceFlow id="f6" sourceRef="Fork" targetRef="Wait"/>
    <bpmn:sequenceFlow id="f_default" sourceRef="Inc" targetRef="Send"/>
    <bpmn:sequenceFlow id="f7" sourceRef="Inc" targetRef="Archive" name="需归档"/>
    <bpmn:sequenceFlow id="f8" sourceRef="Wait" targetRef="Signal"/>
    <bpmn:sequenceFlow id="f9" sourceRef="Send" targetRef="E"/>
    <bpmn:sequenceFlow id="f10" sourceRef="Archive" targetRef="E2"/>
    <bpmn:sequenceFlow id="f11" sourceRef="ReviewFailed" targetRef="E2"/>
  </bpmn:process>
</bpmn:definitions>""".encode()


@pytest.fixture(scope="module")
def collaboration_svg() -> etree._Element:
    return parse_svg(render(COLLABORATION, "collaboration.bpmn", "svg", "zh_CN"))


def test_pools_subprocesses_and_black_box_participants(collaboration_svg) -> None:
    clusters = groups(collaboration_svg, "cluster")
    nodes = groups(collaboration_svg, "node")
    assert "教育局" in texts(clusters["cluster_P_bureau"])
    assert "专家评审" in texts(clusters["cluster_Review"])
    assert {"RS", "Score", "RE"} <= nodes.keys()
    assert "Review" not in nodes
    assert "申请人" in texts(nodes["P_applicant"])


def test_event_shapes_and_markers(collaboration_svg) -> None:
    nodes = groups(collaboration_svg, "node")
    # A start event is one thin circle, an end event one thick circle, intermediate events two circles.
    assert len(list(nodes["S"].iter(f"{SVG}ellipse"))) == 1
    assert len(list(nodes["E"].iter(f"{SVG}ellipse"))) == 1
    end_stroke = next(nodes["E2"].iter(f"{SVG}ellipse")).get("stroke-width")
    assert float(end_stroke) > 3
    assert len(list(nodes["Overdue"].iter(f"{SVG}ellipse"))) == 2
    assert len(list(nodes["Signal"].iter(f"{SVG}ellipse"))) == 2
    assert "✉" in texts(nodes["S"])
    assert "◷" in texts(nodes["Overdue"])
    assert "⚡" in texts(nodes["ReviewFailed"])
    assert "▲" in texts(nodes["Signal"])
    assert "●" in texts(nodes["E"])
    # A non-interrupting boundary event has a dashed outline.
    assert all(e.get("stroke-dasharray") for e in nodes["Overdue"].iter(f"{SVG}ellipse"))


def test_gateway_and_task_markers(collaboration_svg) -> None:
    nodes = groups(collaboration_svg, "node")
    assert "+" in texts(nodes["Fork"])
    assert "○" in texts(nodes["Inc"])
    assert "⬠" in texts(nodes["Wait"])
    assert "用户任务" in texts(nodes["Check"])
    assert "手工任务" in texts(nodes["Remind"])
    assert "脚本任务" in texts(nodes["Score"])
    assert "发送任务" in texts(nodes["Send"])
    assert "调用活动" in texts(nodes["Archive"])
    assert "期限 2 个月" in texts(nodes["Check"])


def test_highest_of_several_checkpoints_wins(collaboration_svg) -> None:
    check = groups(collaboration_svg, "node")["Check"]
    assert "高" in texts(check)
    assert "低" not in texts(check)
    assert "risk-high" in check.get("class")
    tooltip = next(check.iter(f"{SVG}a")).get(f"{XLINK}title")
    assert "[低] R1: 审查拖延" in tooltip
    assert "[高] R2: 违规审批" in tooltip


def test_flows_boundaries_and_message_flows(collaboration_svg) -> None:
    edges = {group.get("id"): group for group in groups(collaboration_svg, "edge").values()}
    assert "amount > 50000" in texts(edges["f2"])
    assert "需归档" in texts(edges["f7"])
    assert "（默认）" in texts(edges["f_default"])
    assert "申请材料" in texts(edges["MF_in"])
    assert next(edges["MF_out"].iter(f"{SVG}path")).get("stroke-dasharray")
    titles = groups(collaboration_svg, "edge").keys()
    # The boundary event is tied to its task by an edge without an arrowhead.
    assert "Check->Overdue" in titles
    assert "Check->Note" in titles


def test_names_are_drawn_literally() -> None:
    tricky = '<b>"A\\N" & 审批</b>'
    content = definitions(process("tricky", node("startEvent", "S"), user_task("T", tricky), node("endEvent", "E"),
                                  flow("f1", "S", "T", condition="x < 3 and y > 'a\\\\b'"), flow("f2", "T", "E")))
    svg = parse_svg(render(content, "tricky.bpmn", "svg", "en"))
    shown = texts(svg)
    assert tricky in shown
    assert "x < 3 and y > 'a\\\\b'" in shown


def test_invalid_extension_still_draws() -> None:
    extra = ('<liuhen:riskCheckpoint id="R" level="severe" category="institutional"><liuhen:description>d'
             "</liuhen:description><liuhen:controlMeasure>m</liuhen:controlMeasure></liuhen:riskCheckpoint>")
    content = definitions(process("bad", node("startEvent", "S"), user_task("T", "审批", extra=extra),
                                  flow("f1", "S", "T")))
    nodes = groups(parse_svg(render(content, "bad.bpmn", "svg", "zh_CN")), "node")
    assert "审批" in texts(nodes["T"])
    assert "risk-" not in nodes["T"].get("class")


def test_not_bpmn_is_rejected() -> None:
    with pytest.raises(DiagramInputError) as not_xml:
        render(b"hello", "hello.bpmn", "svg", "en")
    assert not_xml.value.render("en").startswith("File hello.bpmn is not well-formed XML")
    with pytest.raises(DiagramInputError) as not_bpmn:
        render(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.bpmn", "svg", "en")
    assert "root element is svg" in not_bpmn.value.render("en")


def test_partial_di_is_ignored() -> None:
    content = PRIVATE_SCHOOL.read_bytes()
    # Drop every other BPMNShape so that only part of the diagram interchange remains.
    shapes = re.findall(rb"<bpmndi:BPMNShape .*?</bpmndi:BPMNShape>", content, re.DOTALL)
    assert shapes
    for shape in shapes[::2]:
        content = content.replace(shape, b"")
    nodes = groups(parse_svg(render(content, "partial.bpmn", "svg", "zh_CN")), "node")
    assert len(nodes) == flow_node_count(content)


def test_large_generated_flowchart() -> None:
    steps = [f"T{i}" for i in range(300)]
    chain = ["S", *steps, "E"]
    elements = [node("startEvent", "S"), *(user_task(s, f"第{s}步审批") for s in steps), node("endEvent", "E")]
    elements += [flow(f"F{i}", a, b) for i, (a, b) in enumerate(zip(chain, chain[1:], strict=False))]
    elements += [flow(f"B{i}", f"T{i}", f"T{i - 5}") for i in range(20, 300, 20)]
    posts = {f"岗位{k}": [x for j, x in enumerate(chain) if j % 6 == k] for k in range(6)}
    content = definitions(process("large", lanes(posts), *elements))
    svg = parse_svg(render(content, "large.bpmn", "svg", "zh_CN"))
    assert len(groups(svg, "node")) == len(chain)
    assert {f"cluster_Lane_{k}" for k in range(6)} <= groups(svg, "cluster").keys()


# --- every shipped and real-world file ------------------------------------------------------------------------

def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.suffix in (".bpmn", ".xml") and p.is_file())


@pytest.mark.parametrize("path", sorted(PROCESSES.glob("*.bpmn")), ids=lambda p: p.name)
def test_shipped_flowchart_renders(path: Path) -> None:
    svg = parse_svg(render(path.read_bytes(), path.name, "svg", "zh_CN"))
    assert len(groups(svg, "node")) == flow_node_count(path.read_bytes())


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the real-world BPMN corpus is not at {CORPUS}")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_realworld_file_renders(path: Path) -> None:
    content = path.read_bytes()
    started = time.monotonic()
    try:
        output = render(content, path.name, "svg", "en")
    except DiagramInputError as exc:
        if "not well-formed" in exc.render("en"):
            pytest.skip(f"{path.name} is not well-formed XML: {exc.render('en')}")
        raise
    elapsed = time.monotonic() - started

    assert elapsed < LARGE_FILE_LIMIT, f"{path.name} took {elapsed:.1f} s"
    assert len(groups(parse_svg(output), "node")) >= flow_node_count(content)


def test_largest_realworld_file_is_fast() -> None:
    path = CORPUS / "miwg" / "tool-exports" / "adonis-17.0" / "B.2.0-export.bpmn"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    assert path.stat().st_size > 800_000
    started = time.monotonic()
    for fmt in ("svg", "png", "pdf"):
        render(path.read_bytes(), path.name, fmt, "zh_CN")
    elapsed = time.monotonic() - started
    print(f"{path.name}: SVG, PNG and PDF in {elapsed:.2f} s")
    assert elapsed < LARGE_FILE_LIMIT


# --- fonts in PNG and PDF -------------------------------------------------------------------------------------

def _label_png(label: str, font: str, environment: dict[str, str] | None = None) -> Image.Image:
    """Draw one fixed-size box whose only label is ``label`` in ``font``."""
    writer = DotWriter()
    writer.defaults("graph", {"pad": 0.1, "dpi": 96})
    writer.node("label", {"label": label, "fontname": font, "fontsize": 28, "shape": "box", "fixedsize": True,
                          "width": 2.5, "height": 0.9})
    return Image.open(io.BytesIO(run_dot(writer.source(), "png", environment=environment))).convert("L")


def _font_file(family: str) -> str | None:
    if shutil.which("fc-match") is None:
        return None
    found = subprocess.run(["fc-match", "-f", "%{file}", family], capture_output=True, text=True, check=False)
    return found.stdout.strip() or None


def _inner_region(image: Image.Image) -> Image.Image:
    """Cut away the box outline and keep the middle, where the label is."""
    width, height = image.size
    return image.crop((width // 6, height // 4, width * 5 // 6, height * 3 // 4))


def _ink(image: Image.Image) -> int:
    """Count the pixels darker than mid-grey in a greyscale image."""
    return sum(image.histogram()[:128])


def test_png_draws_cjk_glyphs_not_boxes(tmp_path: Path) -> None:
    latin_font = _font_file("DejaVu Sans")
    if latin_font is None or "CJK" in latin_font:
        pytest.skip("no font without CJK glyphs is installed to draw the missing-glyph boxes")

    # fontconfig limited to the folder of a font without CJK glyphs has nothing to fall back to, so pango
    # draws its missing-glyph boxes: the rendering a machine without fonts-noto-cjk would produce.
    config = tmp_path / "fonts.conf"
    config.write_text(f"<?xml version='1.0'?><fontconfig><dir>{Path(latin_font).parent}</dir>"
                      f"<cachedir>{tmp_path / 'cache'}</cachedir></fontconfig>", encoding="utf-8")
    boxes = _label_png("权力运行", "DejaVu Sans", {**os.environ, "FONTCONFIG_FILE": str(config)})
    glyphs = _label_png("权力运行", FONT)

    assert glyphs.size == boxes.size
    glyph_region, box_region = _inner_region(glyphs), _inner_region(boxes)
    assert _ink(glyph_region) > 200
    difference = ImageChops.difference(glyph_region, box_region)
    changed = sum(difference.histogram()[65:])
    assert changed > _ink(glyph_region) // 4


def test_png_of_shipped_flowchart_is_an_image() -> None:
    image = Image.open(io.BytesIO(render(PRIVATE_SCHOOL.read_bytes(), PRIVATE_SCHOOL.name, "png", "zh_CN")))
    assert image.format == "PNG"
    assert image.size[0] > 800


def test_pdf_embeds_cjk_font() -> None:
    pdf = render(PRIVATE_SCHOOL.read_bytes(), PRIVATE_SCHOOL.name, "pdf", "zh_CN")
    assert pdf.startswith(b"%PDF")
    assert re.search(rb"/FontName\s*/[A-Z]{6}\+NotoSansCJK", pdf)


# --- command line ---------------------------------------------------------------------------------------------

def test_cli_renders_undeployed_file(tmp_path: Path, capsys) -> None:
    target = tmp_path / "school.pdf"
    assert cli_main(["--lang", "en", "render", "--file", str(PRIVATE_SCHOOL), "--output", str(target)]) == 0
    assert target.read_bytes().startswith(b"%PDF")
    assert f"Wrote {target}" in capsys.readouterr().out


def test_cli_renders_deployed_version(service: Liuhen, monkeypatch, tmp_path: Path, capsys) -> None:
    service.deploy(PRIVATE_SCHOOL.read_bytes(), PRIVATE_SCHOOL.name, DESIGNER)
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.resolved_database_url())
    monkeypatch.chdir(tmp_path)

    assert cli_main(["render", "private_school_establishment", "--format", "svg"]) == 0
    svg = parse_svg((tmp_path / "private_school_establishment-v1.svg").read_bytes())
    assert "图例" in texts(svg)
    assert cli_main(["--lang", "en", "render", "private_school_establishment@2"]) == 1
    assert "has no version 2" in capsys.readouterr().err


def test_cli_rejects_process_and_file_together(capsys) -> None:
    assert cli_main(["--lang", "en", "render", "x", "--file", str(PRIVATE_SCHOOL)]) == 2
    assert "but not both" in capsys.readouterr().err
    assert cli_main(["--lang", "en", "render", "x@0"]) == 2
    assert "whole number from 1 up" in capsys.readouterr().err


# --- HTTP -----------------------------------------------------------------------------------------------------

@pytest.fixture
def client(service: Liuhen) -> Iterator[httpx.Client]:
    service.deploy(PRIVATE_SCHOOL.read_bytes(), PRIVATE_SCHOOL.name, DESIGNER)
    add_user(service, "clerk", ["staff"], ["受理窗口"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        token = http.post("/api/auth/login", json={"username": "clerk", "password": "pw-clerk-secret"}).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


def test_http_diagram_svg(client: httpx.Client) -> None:
    response = client.get("/api/definitions/private_school_establishment/versions/1/diagram.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"].startswith("private")
    assert response.headers["content-disposition"] == "inline; filename*=UTF-8''private_school_establishment-v1.svg"
    svg = parse_svg(response.content)
    assert "Task_acceptance" in groups(svg, "node")
    assert "图例" in texts(svg)

    english = client.get("/api/definitions/private_school_establishment/versions/1/diagram.svg",
                         headers={"Accept-Language": "en"})
    assert "Legend" in texts(parse_svg(english.content))


def test_http_diagram_png_and_pdf(client: httpx.Client) -> None:
    png = client.get("/api/definitions/private_school_establishment/versions/1/diagram.png")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    pdf = client.get("/api/definitions/private_school_establishment/versions/1/diagram.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_http_diagram_errors(client: httpx.Client) -> None:
    missing = client.get("/api/definitions/private_school_establishment/versions/7/diagram.svg",
                         headers={"Accept-Language": "en"})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Process private_school_establishment has no version 7."
    wrong_format = client.get("/api/definitions/private_school_establishment/versions/1/diagram.gif")
    assert wrong_format.status_code == 422
    anonymous = httpx.get(f"{client.base_url}/api/definitions/private_school_establishment/versions/1/diagram.svg")
    assert anonymous.status_code == 401


def test_lanes_are_full_width_bands_in_order() -> None:
    source = Path(__file__).resolve().parents[1] / "processes" / "reimbursement.bpmn"
    svg = etree.fromstring(render(source.read_bytes(), source.name, "svg", "zh_CN"))
    bpmn = etree.parse(str(source)).getroot()
    lane_ids = [lane.get("id") for lane in bpmn.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}lane")]
    assert len(lane_ids) > 2

    extents = {}
    for lane_id in lane_ids:
        group = svg.find(f".//{{http://www.w3.org/2000/svg}}g[@id='{lane_id}']")
        assert group is not None, lane_id
        points = group.find("{http://www.w3.org/2000/svg}polygon").get("points").split()
        xs = [float(point.split(",")[0]) for point in points]
        ys = [float(point.split(",")[1]) for point in points]
        extents[lane_id] = (min(xs), max(xs), min(ys))

    lefts = {round(left) for left, _right, _top in extents.values()}
    rights = {round(right) for _left, right, _top in extents.values()}
    assert len(lefts) == 1, extents
    assert len(rights) == 1, extents
    tops = [extents[lane_id][2] for lane_id in lane_ids]
    assert tops == sorted(tops), "lanes are not drawn top to bottom in their BPMN order"
