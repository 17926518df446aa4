"""The BPMN modeler (/modeler) in headless Chromium, and its drafts API.

A designer adds a risk checkpoint with a control through the properties panel, saves a draft, deploys,
and finds both through the API. Every shipped flowchart and every real-world file with a diagram opens
and saves back with the same content. Files without a diagram open laid out automatically.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from lxml import etree

from api.app import create_app
from engine.clock import ManualClock
from engine.migrate import upgrade
from engine.service import Liuhen
from engine.settings import Settings
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import DESIGNER, PROCESSES, ROOT, START, LiveServer, add_user

CHROMIUM = shutil.which("chromium")
BUNDLE = ROOT / "api" / "static" / "modeler" / "modeler.js"
CORPUS = ROOT.parent / "shared" / "realworld-bpmn"
# Without these flags Chromium tries to reach Google's servers at start and on every page.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or not BUNDLE.exists(),
    reason="needs Debian's chromium and the modeler bundle; `make test` installs both (the bundle needs npm)")

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
# Attribute values that the BPMN 2.0 schema defines as defaults. bpmn-js leaves them out when it writes
# a file, which changes nothing about the model.
BPMN_DEFAULTS = {
    "behavior": "All", "cancelActivity": "true", "cancelRemainingInstances": "true", "completionQuantity": "1",
    "eventGatewayType": "Exclusive", "expressionLanguage": "http://www.w3.org/1999/XPath",
    "gatewayDirection": "Unspecified", "instantiate": "false", "isCollection": "false",
    "isForCompensation": "false", "isInterrupting": "true", "isReference": "false", "isSequential": "false",
    "isUnlimited": "true", "loopType": "None", "maximum": "1", "minimum": "0", "mustUnderstand": "false",
    "parallelMultiple": "false", "startQuantity": "1", "testBefore": "false", "textFormat": "text/plain",
    "triggeredByEvent": "false", "typeLanguage": "http://www.w3.org/2001/XMLSchema", "waitForCompletion": "true",
}
# The same for diagram elements, by element and attribute.
DI_DEFAULTS = {
    ("BPMNEdge", "messageVisibleKind"): "initiating",
    ("Bounds", "x"): "0", ("Bounds", "y"): "0", ("waypoint", "x"): "0", ("waypoint", "y"): "0",
}


def corpus_files(with_diagram: bool) -> list[str]:
    if not CORPUS.is_dir():
        return []
    files = sorted(path for path in CORPUS.rglob("*") if path.suffix in (".bpmn", ".xml"))
    return [str(path.relative_to(CORPUS)) for path in files if (b"BPMNDiagram" in path.read_bytes()) == with_diagram]


# Comparing BPMN files

def _parse(content: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True)
    return etree.fromstring(content, parser)


NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _normal_text(text: str | None) -> str:
    return " ".join((text or "").split())


def _normal_value(value: str) -> str:
    """Collapse white space, and write numbers one way: bpmn-js reads 30.0 in dc:Bounds and writes 30."""
    return repr(float(value)) if NUMBER.fullmatch(value.strip()) else _normal_text(value)


def _qualified(element: etree._Element, value: str) -> str:
    """Resolve the prefix of a QName value such as xsi:type="semantic:tFormalExpression"."""
    prefix, _, local = value.rpartition(":")
    return f"{{{element.nsmap.get(prefix or None, '')}}}{local}"


def _canonical(element: etree._Element, geometry: bool = True) -> tuple[Any, ...]:
    """A comparable form of an element: tags and attribute names with namespace URIs, not prefixes."""
    tag = element.tag
    # The BPMN 2.0 schema names this child messagePath; SpiffWorkflow writes formalExpression.
    if tag == f"{{{BPMN}}}formalExpression" and etree.QName(element.getparent()).localname == \
            "correlationPropertyRetrievalExpression":
        tag = f"{{{BPMN}}}messagePath"
    attributes = {}
    local_name = etree.QName(tag).localname
    for name, value in element.attrib.items():
        if BPMN_DEFAULTS.get(name) == value:
            continue
        default = DI_DEFAULTS.get((local_name, name))
        if default is not None and _normal_value(default) == _normal_value(value):
            continue
        if name == XSI_TYPE:
            if local_name == "waypoint":
                continue  # dc:Point is the only type a waypoint can have
            value = _qualified(element, value)
        attributes[name] = _normal_value(value)
    children = tuple(_canonical(child, geometry) for child in element if isinstance(child.tag, str)
                     and (geometry or etree.QName(child).localname not in ("Bounds", "waypoint", "BPMNLabel")))
    # bpmn-js writes the shapes and edges of a plane in the order it draws them.
    if tag == f"{{{BPMNDI}}}BPMNPlane":
        children = tuple(sorted(children, key=repr))
    return tag, tuple(sorted(attributes.items())), _normal_text(element.text), children


def _difference(before: tuple[Any, ...], after: tuple[Any, ...], path: str = "") -> str | None:
    """Describe the first difference between two canonical elements, or return None when they are equal."""
    tag, attributes, text, children = before
    location = f"{path}/{etree.QName(tag).localname}"
    element_id = dict(attributes).get("id")
    if element_id:
        location += f"[@id={element_id!r}]"
    if tag != after[0]:
        return f"{location}: element became {after[0]}"
    if attributes != after[1]:
        lost = {key: value for key, value in attributes if dict(after[1]).get(key) != value}
        added = {key: value for key, value in after[1] if dict(attributes).get(key) != value}
        return f"{location}: attributes {lost} became {added}"
    if text != after[2]:
        return f"{location}: text {text!r} became {after[2]!r}"
    if len(children) != len(after[3]):
        return f"{location}: {len(children)} child elements became {len(after[3])}"
    for child_before, child_after in zip(children, after[3], strict=True):
        found = _difference(child_before, child_after, location)
        if found:
            return found
    return None


def _without_diagrams(root: etree._Element) -> etree._Element:
    copy = etree.fromstring(etree.tostring(root))
    for diagram in copy.findall(f"{{{BPMNDI}}}BPMNDiagram"):
        copy.remove(diagram)
    return copy


def _diagram_elements(root: etree._Element) -> dict[tuple[str, ...], etree._Element]:
    """The shapes and edges of every plane, keyed by id (or by element and target when they have none)."""
    found = {}
    for plane in root.iter(f"{{{BPMNDI}}}BPMNPlane"):
        for element in plane:
            if isinstance(element.tag, str):
                key = (element.get("id"),) if element.get("id") else (element.tag, element.get("bpmnElement", ""))
                found[key] = element
    return found


def _collapsed_contents(root: etree._Element) -> tuple[set[str], set[str]]:
    """Return the ids of the collapsed sub-processes and of every element inside them.

    bpmn-js gives each collapsed sub-process a diagram of its own and moves the shapes of its contents
    there, to new coordinates, so those shapes keep their element but not their position.
    """
    shapes = {shape.get("bpmnElement"): shape for shape in root.iter(f"{{{BPMNDI}}}BPMNShape")}
    collapsed: set[str] = set()
    inside: set[str] = set()
    for kind in ("subProcess", "transaction", "adHocSubProcess"):
        for sub_process in root.iter(f"{{{BPMN}}}{kind}"):
            shape = shapes.get(sub_process.get("id"))
            if shape is not None and shape.get("isExpanded") != "true":
                collapsed.add(sub_process.get("id"))
                inside.update(node.get("id") for node in sub_process.iterdescendants() if node.get("id"))
    return collapsed, inside


def _extension_elements(root: etree._Element) -> list[tuple[Any, ...]]:
    return [_canonical(element) for element in root.iter(f"{{{BPMN}}}extensionElements")]


def assert_same_bpmn(before: bytes, after: bytes) -> None:
    """Assert that saving kept every element, attribute and text: extension elements first, then the
    process model, then the diagram."""
    original, saved = _parse(before), _parse(after)

    original_extensions, saved_extensions = _extension_elements(original), _extension_elements(saved)
    assert len(original_extensions) == len(saved_extensions), "extension elements were added or removed"
    for extension_before, extension_after in zip(original_extensions, saved_extensions, strict=True):
        assert _difference(extension_before, extension_after) is None, \
            _difference(extension_before, extension_after)

    model_before, model_after = _canonical(_without_diagrams(original)), _canonical(_without_diagrams(saved))
    assert _difference(model_before, model_after) is None, _difference(model_before, model_after)

    collapsed, inside = _collapsed_contents(original)
    shapes_before, shapes_after = _diagram_elements(original), _diagram_elements(saved)
    assert sorted(shapes_after.keys() - shapes_before.keys()) == [], "diagram elements were added"
    for key, element in shapes_before.items():
        assert key in shapes_after, f"diagram element {key} was dropped"
        moved = element.get("bpmnElement") in inside
        expected, actual = _canonical(element, geometry=not moved), _canonical(shapes_after[key], geometry=not moved)
        # bpmn-js writes isMarkerVisible="true" on exclusive gateways, whose marker it always shows.
        if ("isMarkerVisible", "true") in actual[1] and "isMarkerVisible" not in dict(expected[1]):
            actual = (actual[0], tuple(item for item in actual[1] if item[0] != "isMarkerVisible"), *actual[2:])
        assert _difference(expected, actual) is None, _difference(expected, actual)

    # bpmn-js adds the diagrams of collapsed sub-processes after the ones the file had.
    diagrams_before = original.findall(f"{{{BPMNDI}}}BPMNDiagram")
    diagrams_after = saved.findall(f"{{{BPMNDI}}}BPMNDiagram")
    assert len(diagrams_after) >= len(diagrams_before), "diagrams were dropped"
    ids = {node.get("id") for node in original.iter() if node.get("id")}
    for diagram_before, diagram_after in zip(diagrams_before, diagrams_after, strict=False):
        plane_before = diagram_before.find(f"{{{BPMNDI}}}BPMNPlane")
        plane_after = diagram_after.find(f"{{{BPMNDI}}}BPMNPlane")
        assert dict(diagram_before.attrib) == dict(diagram_after.attrib)
        assert plane_before is not None and plane_after is not None
        target_before, target_after = plane_before.get("bpmnElement"), plane_after.get("bpmnElement")
        # A plane that shows an element the file lacks is pointed at the process bpmn-js displays instead.
        if target_before is not None and target_before not in ids:
            assert original.find(f"{{{BPMN}}}*[@id='{target_after}']") is not None
            target_before = target_after
        assert (dict(plane_before.attrib) | {"bpmnElement": target_before}) == dict(plane_after.attrib)
    for diagram in diagrams_after[len(diagrams_before):]:
        plane = diagram.find(f"{{{BPMNDI}}}BPMNPlane")
        assert plane is not None and plane.get("bpmnElement") in collapsed, \
            f"a diagram was added for {plane.get('bpmnElement') if plane is not None else None}"


# Browser and server

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser: Any, locale: str = "zh-CN") -> Any:
    page = browser.new_page(locale=locale, viewport={"width": 1500, "height": 950})
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.script_errors = errors
    return page


def sign_in(page: Any, base: str, target: str, username: str = "des") -> None:
    page.goto(f"{base}{target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"pw-{username}-secret")
    page.click("form.login button")
    page.wait_for_url(re.compile(r".*/modeler.*"))


def wait_for_status(page: Any, kinds: str = "info, warning, success") -> str:
    """Wait until the current action has finished and return its message. Fail on an error message."""
    selector = ", ".join(f"#modeler-status.{kind.strip()}" for kind in kinds.split(","))
    page.wait_for_selector(f"{selector}, #modeler-status.error")
    status = page.locator("#modeler-status")
    assert status.get_attribute("data-kind") != "error", status.inner_text()
    return status.inner_text()


def api_token(base: str, username: str = "des") -> dict[str, str]:
    response = httpx.post(f"{base}/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def designer_server(service: Liuhen) -> Iterator[str]:
    for path in sorted(PROCESSES.glob("*.bpmn")):
        service.deploy(path.read_bytes(), path.name, DESIGNER)
    add_user(service, "des", ["designer"])
    add_user(service, "clerk", ["staff"], ["经办人"])
    with LiveServer(create_app(service.settings, service)) as live:
        yield live.url


@pytest.fixture(scope="module")
def round_trip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for every round-trip test: these only open and save files, so SQLite is enough."""
    folder = tmp_path_factory.mktemp("modeler")
    url = f"sqlite:///{folder / 'liuhen.db'}"
    upgrade(url)
    service = Liuhen(Settings(database_url=url, data_dir=folder, processes_dir=PROCESSES), clock=ManualClock(START))
    add_user(service, "des", ["designer"])
    with LiveServer(create_app(service.settings, service)) as live:
        yield live.url
    service.db.dispose()


@pytest.fixture(scope="module")
def modeler_page(browser: Any, round_trip_server: str) -> Iterator[Any]:
    page = new_page(browser)
    sign_in(page, round_trip_server, "/modeler")
    wait_for_status(page)
    yield page
    page.close()


def open_and_save(page: Any, base: str, path: Path, draft: str) -> tuple[str, bytes]:
    """Open ``path`` through the file input, save it as a draft, and return the status and the saved bytes."""
    page.set_input_files("#modeler-file", str(path))
    page.wait_for_selector(f"#modeler-status:has-text({path.name!r})")
    status = wait_for_status(page)
    assert not page.script_errors, page.script_errors
    page.fill("#modeler-draft-name", draft)
    page.click("#modeler-save-draft")
    page.wait_for_selector(f"#modeler-status.success:has-text({draft!r}), #modeler-status.error")
    wait_for_status(page, "success")
    response = httpx.get(f"{base}/api/modeler/drafts/{quote(draft, safe='')}", headers=api_token(base))
    assert response.status_code == 200, response.text
    return status, response.content


# The designer's path through the modeler

@needs_browser
def test_checkpoint_with_control_deploys(browser, designer_server, service) -> None:
    page = new_page(browser)
    sign_in(page, designer_server, "/modeler?process_id=reimbursement&version=1")
    assert "reimbursement" in wait_for_status(page)

    page.click("[data-element-id=Task_principal]")
    group = page.locator("[data-group-id=group-liuhen-checkpoints]")
    existing = group.locator(".bio-properties-panel-list-item").count()
    group.locator(".bio-properties-panel-add-entry").first.click()
    assert group.locator(".bio-properties-panel-list-item").count() == existing + 1

    item = f"liuhen-checkpoint-{existing}"
    checkpoint_id = page.input_value(f"#bio-properties-panel-{item}-id")
    page.select_option(f"#bio-properties-panel-{item}-level", "high")
    page.fill(f"#bio-properties-panel-{item}-description", "一万元以上支出未经校务会集体决策")
    page.fill(f"#bio-properties-panel-{item}-controlMeasure",
              "一万元以上支出须经校务会集体决策\n校长审批前核对会议纪要")
    page.fill(f"#bio-properties-panel-{item}-responsiblePost", "校长")
    page.press(f"#bio-properties-panel-{item}-responsiblePost", "Tab")

    page.locator(f"[data-entry-id={item}-controls] .bio-properties-panel-add-entry").click()
    control = f"{item}-controls-0"
    control_id = page.input_value(f"#bio-properties-panel-{control}-id")
    page.select_option(f"#bio-properties-panel-{control}-type", "amountThreshold")
    page.fill(f"#bio-properties-panel-{control}-field", "amount")
    page.fill(f"#bio-properties-panel-{control}-threshold", "10000")
    page.press(f"#bio-properties-panel-{control}-threshold", "Tab")
    page.locator(f"[data-entry-id={control}-steps] .bio-properties-panel-add-entry").click()
    page.select_option(f"#bio-properties-panel-{control}-steps-0", "Task_meeting")
    assert page.locator("#modeler-dirty").inner_text() != ""

    page.fill("#modeler-draft-name", "报销-集体决策")
    page.click("#modeler-save-draft")
    assert "报销-集体决策" in wait_for_status(page, "success")
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.click("#modeler-deploy")
    deployed = wait_for_status(page, "success")
    assert "2" in deployed, deployed
    assert page.locator("#modeler-dirty").inner_text() == ""
    assert len(questions) == 1
    assert "财务报销（reimbursement） 第 2 版" in questions[0]
    assert "没有任何修改" not in questions[0]
    assert not page.script_errors, page.script_errors

    headers = api_token(designer_server)
    nodes = httpx.get(f"{designer_server}/api/definitions/reimbursement/versions/2", headers=headers).json()["nodes"]
    checkpoints = {cp["id"]: cp for cp in nodes["Task_principal"]["extensions"]["risk_checkpoints"]}
    added = checkpoints[checkpoint_id]
    assert added["level"] == "high"
    assert added["description"] == "一万元以上支出未经校务会集体决策"
    assert added["control_measures"] == ["一万元以上支出须经校务会集体决策", "校长审批前核对会议纪要"]
    assert added["responsible_post"] == "校长"
    assert [c["id"] for c in added["controls"]] == [control_id]
    assert added["controls"][0]["type"] == "amountThreshold"
    assert added["controls"][0]["enforcement"] == "hard"
    assert added["controls"][0]["params"] == {"field": "amount", "threshold": "10000"}
    assert added["controls"][0]["steps"] == ["Task_meeting"]

    drafts = httpx.get(f"{designer_server}/api/modeler/drafts", headers=headers).json()
    assert [draft["name"] for draft in drafts] == ["报销-集体决策"]
    assert drafts[0]["process_ids"] == ["reimbursement"]
    page.close()


@needs_browser
def test_unchanged_deploy_asks_and_can_be_cancelled(browser, designer_server) -> None:
    page = new_page(browser, locale="en-US")
    sign_in(page, designer_server, "/modeler?process_id=reimbursement&version=1&lang=en")
    wait_for_status(page)
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))

    page.click("#modeler-deploy")

    assert "nothing was deployed" in wait_for_status(page, "info")
    assert len(questions) == 1
    assert "version 2 of 财务报销 (reimbursement)" in questions[0]
    assert "has not changed since you opened deployed version 1 of reimbursement" in questions[0]
    headers = api_token(designer_server)
    versions = httpx.get(f"{designer_server}/api/definitions", headers=headers).json()
    assert [d["version"] for d in versions if d["process_id"] == "reimbursement"] == [1]
    assert not page.script_errors, page.script_errors
    page.close()


@needs_browser
def test_power_item_fields_edit_and_validate(browser, designer_server) -> None:
    page = new_page(browser)
    sign_in(page, designer_server, "/modeler?process_id=teacher_qualification&version=1")
    wait_for_status(page)

    page.click("[data-element-id=Participant_teacher_qualification]", position={"x": 12, "y": 40})
    assert page.input_value("#bio-properties-panel-liuhen-power-item-code") != ""
    page.fill("#bio-properties-panel-liuhen-power-item-fee", "不收费（示例）")
    page.fill("#bio-properties-panel-liuhen-power-item-promised-amount", "15")
    page.press("#bio-properties-panel-liuhen-power-item-promised-amount", "Tab")
    page.click("#modeler-validate")
    assert "teacher_qualification" in wait_for_status(page, "success")

    # A required field left empty is reported by the server, with the problem named.
    page.fill("#bio-properties-panel-liuhen-power-item-name", "")
    page.press("#bio-properties-panel-liuhen-power-item-name", "Tab")
    page.click("#modeler-validate")
    page.wait_for_selector("#modeler-status.error")
    assert "powerItem" in page.locator("#modeler-status").inner_text()
    page.close()


LIUHEN = "urn:liuhen:bpmn:1.0"


def open_group(page: Any, group_id: str) -> None:
    """Expand a panel group unless it is open already, because the panel keeps that state across elements."""
    header = page.locator(f"[data-group-id=group-{group_id}] .bio-properties-panel-group-header")
    if "open" not in (header.get_attribute("class") or "").split():
        header.click()


def liuhen_children(root: etree._Element, node_id: str) -> list[etree._Element]:
    """Return the liuhen elements inside the extensionElements of the flow node ``node_id``, in file order."""
    node = root.find(f".//{{{BPMN}}}*[@id='{node_id}']")
    assert node is not None, f"no element {node_id}"
    container = node.find(f"{{{BPMN}}}extensionElements")
    assert container is not None, f"{node_id} has no extensionElements"
    return [child for child in container if isinstance(child.tag, str) and etree.QName(child).namespace == LIUHEN]


@needs_browser
def test_form_fields_and_clocks_deploy(browser, designer_server, service) -> None:
    page = new_page(browser)
    sign_in(page, designer_server, "/modeler?process_id=reimbursement&version=1")
    wait_for_status(page)

    page.click("[data-element-id=Task_submit]")
    group = page.locator("[data-group-id=group-liuhen-form-fields]")
    assert group.locator(".bio-properties-panel-group-header-title").inner_text() == "表单字段"
    existing = group.locator(".bio-properties-panel-list-item").count()
    assert existing == 7
    assert page.input_value("#bio-properties-panel-liuhen-form-field-0-name") == "amount"
    # The amount's bounds: the shipped minimum shows, a maximum below it is refused, a larger one is kept.
    assert page.input_value("#bio-properties-panel-liuhen-form-field-0-min") == "0.01"
    group.locator(".bio-properties-panel-list-item").first.locator(
        ".bio-properties-panel-collapsible-entry-header").click()
    page.fill("#bio-properties-panel-liuhen-form-field-0-max", "-1")
    page.press("#bio-properties-panel-liuhen-form-field-0-max", "Tab")
    assert "最小值大于最大值" in page.locator("[data-entry-id=liuhen-form-field-0-max]").inner_text()
    page.fill("#bio-properties-panel-liuhen-form-field-0-max", "50000")
    page.press("#bio-properties-panel-liuhen-form-field-0-max", "Tab")

    # An enum field with two options.
    group.locator(".bio-properties-panel-add-entry").first.click()
    assert group.locator(".bio-properties-panel-list-item").count() == existing + 1
    enum_field = f"liuhen-form-field-{existing}"
    page.fill(f"#bio-properties-panel-{enum_field}-name", "payment method")
    page.press(f"#bio-properties-panel-{enum_field}-name", "Tab")
    name_entry = page.locator(f"[data-entry-id={enum_field}-name]")
    assert "字母、数字和下划线" in name_entry.locator(".bio-properties-panel-error").inner_text()
    page.fill(f"#bio-properties-panel-{enum_field}-name", "payment_method")
    page.fill(f"#bio-properties-panel-{enum_field}-label", "支付方式")
    page.press(f"#bio-properties-panel-{enum_field}-label", "Tab")
    page.select_option(f"#bio-properties-panel-{enum_field}-type", "enum")
    options = page.locator(f"[data-entry-id={enum_field}-options]")
    # The list's message sits beside the list entry, in their common parent.
    assert "至少添加一个选项" in options.locator("..").inner_text()
    for index, (value, label) in enumerate([("transfer", "银行转账"), ("card", "公务卡")]):
        options.locator(".bio-properties-panel-add-entry").click()
        option = f"{enum_field}-options-{index}"
        page.fill(f"#bio-properties-panel-{option}-value", value)
        page.fill(f"#bio-properties-panel-{option}-label", label)
        page.press(f"#bio-properties-panel-{option}-label", "Tab")
    page.check(f"#bio-properties-panel-{enum_field}-required")

    # A required text field, added after it and then moved above it.
    group.locator(".bio-properties-panel-add-entry").first.click()
    text_field = f"liuhen-form-field-{existing + 1}"
    page.fill(f"#bio-properties-panel-{text_field}-name", "remark")
    page.fill(f"#bio-properties-panel-{text_field}-label", "备注")
    page.press(f"#bio-properties-panel-{text_field}-label", "Tab")
    page.select_option(f"#bio-properties-panel-{text_field}-type", "text")
    page.check(f"#bio-properties-panel-{text_field}-required")
    page.click(f"[data-entry-id={text_field}-move-up] button")
    assert page.input_value(f"#bio-properties-panel-{enum_field}-name") == "remark"

    # Completing the submission restarts the clocks, and the asset check pauses them.
    open_group(page, "liuhen-clocks")
    assert page.locator("[data-group-id=group-liuhen-clocks]").inner_text().startswith("时限计时")
    page.check("#bio-properties-panel-liuhen-clock-start")
    page.click("[data-element-id=Task_checkin]")
    open_group(page, "liuhen-clocks")
    assert not page.is_checked("#bio-properties-panel-liuhen-clock-start")
    page.select_option("#bio-properties-panel-liuhen-clock-pause", "appraisal")
    # Gateways take neither form fields nor clocks.
    page.click("[data-element-id=Gateway_large]")
    assert page.locator("[data-group-id=group-liuhen-form-fields]").count() == 0
    assert page.locator("[data-group-id=group-liuhen-clocks]").count() == 0

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#modeler-deploy")
    assert "2" in wait_for_status(page, "success")
    assert not page.script_errors, page.script_errors

    # The stored file: the new fields follow the old ones, before the risk checkpoints.
    _filename, content = service.definition_content("reimbursement", 2)
    root = _parse(content)
    submit = liuhen_children(root, "Task_submit")
    kinds = [etree.QName(child).localname for child in submit]
    assert kinds[:9] == ["formField"] * 9
    assert "formField" not in kinds[9:]
    assert kinds[-1] == "clockStart"
    assert kinds.count("clockStart") == 1
    added = {field.get("name"): field for field in submit[7:9]}
    assert [field.get("name") for field in submit[7:9]] == ["remark", "payment_method"]
    assert dict(added["remark"].attrib) == {"name": "remark", "type": "text", "label": "备注", "required": "true"}
    assert dict(added["payment_method"].attrib) == \
        {"name": "payment_method", "type": "enum", "label": "支付方式", "required": "true"}
    assert [dict(option.attrib) for option in added["payment_method"]] == \
        [{"value": "transfer", "label": "银行转账"}, {"value": "card", "label": "公务卡"}]
    assert all(etree.QName(option).localname == "option" for option in added["payment_method"])
    checkin = liuhen_children(root, "Task_checkin")
    pauses = [child for child in checkin if etree.QName(child).localname == "clockPause"]
    assert [dict(pause.attrib) for pause in pauses] == [{"reason": "appraisal"}]
    assert not [child for child in checkin if etree.QName(child).localname == "clockStart"]

    # What the engine reads from the deployed version.
    definition = service.get_definition("reimbursement", 2)
    nodes = service.definition_nodes(definition["id"])
    fields = {field["name"]: field for field in nodes["Task_submit"]["extensions"]["form_fields"]}
    assert list(fields)[7:] == ["remark", "payment_method"]
    assert (fields["amount"]["min"], fields["amount"]["max"]) == ("0.01", "50000")
    assert fields["remark"] == {"name": "remark", "type": "text", "label": "备注", "required": True, "options": []}
    assert fields["payment_method"] == {
        "name": "payment_method", "type": "enum", "label": "支付方式", "required": True,
        "options": [{"value": "transfer", "label": "银行转账"}, {"value": "card", "label": "公务卡"}],
    }
    assert nodes["Task_submit"]["extensions"]["clock_start"] is True
    assert "clock_pause" not in nodes["Task_submit"]["extensions"]
    assert nodes["Task_checkin"]["extensions"]["clock_pause"] == {"reason": "appraisal"}
    assert "clock_start" not in nodes["Task_checkin"]["extensions"]
    page.close()


@needs_browser
def test_enum_type_change_drops_options(browser, designer_server) -> None:
    page = new_page(browser, locale="en-US")
    sign_in(page, designer_server, "/modeler?process_id=reimbursement&version=1&lang=en")
    wait_for_status(page)
    page.click("[data-element-id=Task_meeting]")
    group = page.locator("[data-group-id=group-liuhen-form-fields]")
    assert group.locator(".bio-properties-panel-group-header-title").inner_text() == "Form fields"
    field = "liuhen-form-field-3"
    assert page.input_value(f"#bio-properties-panel-{field}-name") == "meeting_decision"
    assert page.locator(f"[data-entry-id={field}-options] .bio-properties-panel-list-entry-item").count() == 2
    group.locator(".bio-properties-panel-list-item").nth(3).locator(
        ".bio-properties-panel-collapsible-entry-header").first.click()

    page.select_option(f"#bio-properties-panel-{field}-type", "string")
    assert page.locator(f"[data-entry-id={field}-options]").count() == 0
    page.select_option(f"#bio-properties-panel-{field}-type", "enum")
    assert "Add at least one option." in page.locator(f"[data-entry-id={field}-options]").locator("..").inner_text()

    # The last field has no move-down button, and removing it takes it out of the list.
    last = "liuhen-form-field-4"
    assert page.locator(f"[data-entry-id={last}-move-down]").count() == 0
    assert page.locator(f"[data-entry-id={last}-move-up]").count() == 1
    count = group.locator(".bio-properties-panel-list-item").count()
    # The remove button shows while the pointer is over the item's header.
    last_item = group.locator(".bio-properties-panel-list-item").nth(count - 1)
    last_item.locator(".bio-properties-panel-collapsible-entry-header").first.hover()
    last_item.locator(".bio-properties-panel-remove-entry").first.click()
    assert group.locator(".bio-properties-panel-list-item").count() == count - 1
    assert not page.script_errors, page.script_errors
    page.close()


@needs_browser
def test_saving_over_another_draft_asks(browser, designer_server) -> None:
    page = new_page(browser)
    sign_in(page, designer_server, "/modeler?process_id=reimbursement&version=1")
    wait_for_status(page)
    page.fill("#modeler-draft-name", "共用草稿")
    page.click("#modeler-save-draft")
    wait_for_status(page, "success")

    page.select_option("#modeler-definitions", '{"process":"procurement","version":1}')
    page.click("#modeler-open-definition")
    assert "procurement" in wait_for_status(page)
    page.fill("#modeler-draft-name", "共用草稿")
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("#modeler-save-draft")
    page.wait_for_selector("#modeler-status:not(.busy)")
    assert len(questions) == 1
    assert "共用草稿" in questions[0]
    headers = api_token(designer_server)
    kept = httpx.get(f"{designer_server}/api/modeler/drafts", headers=headers).json()
    assert kept[0]["process_ids"] == ["reimbursement"]

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#modeler-save-draft")
    wait_for_status(page, "success")
    replaced = httpx.get(f"{designer_server}/api/modeler/drafts", headers=headers).json()
    assert replaced[0]["process_ids"] == ["procurement"]
    page.close()


@needs_browser
def test_modeler_needs_designer_sign_in(browser, designer_server) -> None:
    page = new_page(browser)
    page.goto(f"{designer_server}/modeler")
    assert "/login" in page.url
    page.fill("input[name=username]", "clerk")
    page.fill("input[name=password]", "pw-clerk-secret")
    page.click("form.login button")
    page.wait_for_load_state("load")
    assert "流程设计人员" in page.locator("p.error").inner_text()
    assert page.locator("#modeler-canvas").count() == 0
    page.close()


@needs_browser
def test_english_panel(browser, designer_server) -> None:
    page = new_page(browser, locale="en-US")
    sign_in(page, designer_server, "/modeler?process_id=reimbursement&version=1&lang=en")
    assert "Opened deployed version 1 of reimbursement." in wait_for_status(page)
    page.click("[data-element-id=Task_principal]")
    assert page.locator("[data-group-id=group-liuhen-checkpoints]").inner_text().startswith("Risk checkpoints")
    page.close()


# A flowchart with liuhen's elements and no diagram, as a script or another tool writes it.
VEHICLE_USE = definitions(process(
    "vehicle_use",
    lanes({"经办人": ["Start_1", "Apply"], "办公室主任": ["Approve", "End_1"]}),
    node("startEvent", "Start_1", "申请用车"),
    user_task("Apply", "填写用车申请", fields=[("destination", "string")]),
    user_task("Approve", "办公室主任审批", fields=[("opinion", "text")], extra=(
        '<liuhen:timeLimit amount="1" unit="working_day"/>'
        '<liuhen:riskCheckpoint id="RC-YC-01" level="low" category="power_operation">'
        "<liuhen:description>公车私用</liuhen:description>"
        "<liuhen:controlMeasure>每月核对派车单</liuhen:controlMeasure>"
        '<liuhen:control id="C-YC-01" type="separationOfDuties"><liuhen:step ref="Apply"/></liuhen:control>'
        "</liuhen:riskCheckpoint>")),
    node("endEvent", "End_1", "结束"),
    flow("Flow_1", "Start_1", "Apply"), flow("Flow_2", "Apply", "Approve"), flow("Flow_3", "Approve", "End_1"),
    name="公务用车审批",
    extensions=('<liuhen:powerItem code="XX-NB-YC-001" kind="internal"><liuhen:name>公务用车审批</liuhen:name>'
                "<liuhen:handlingBody>某中学办公室</liuhen:handlingBody>"
                "<liuhen:legalBasis>《党政机关公务用车管理办法》</liuhen:legalBasis></liuhen:powerItem>"),
))


@needs_browser
def test_deployed_version_without_diagram_opens(browser, designer_server, service) -> None:
    service.deploy(VEHICLE_USE, "vehicle_use.bpmn", DESIGNER)
    page = new_page(browser)
    sign_in(page, designer_server, "/modeler?process_id=vehicle_use&version=1")
    assert "自动排版" in wait_for_status(page)
    assert page.locator("[data-element-id=Approve]").count() == 1

    page.click("[data-element-id=Approve]")
    assert page.input_value("#bio-properties-panel-liuhen-checkpoint-0-id") == "RC-YC-01"
    assert page.input_value("#bio-properties-panel-liuhen-checkpoint-0-controls-0-id") == "C-YC-01"
    page.click("#modeler-save-draft")
    wait_for_status(page, "success")
    saved = httpx.get(f"{designer_server}/api/modeler/drafts/vehicle_use", headers=api_token(designer_server))
    model_before, model_after = _canonical(_parse(VEHICLE_USE)), _canonical(_without_diagrams(_parse(saved.content)))
    assert _difference(model_before, model_after) is None, _difference(model_before, model_after)
    page.close()


# Opening and saving files without losing data

@needs_browser
@pytest.mark.parametrize("name", sorted(path.name for path in PROCESSES.glob("*.bpmn")))
def test_shipped_flowchart_round_trip(modeler_page, round_trip_server, name) -> None:
    path = PROCESSES / name
    _status, saved = open_and_save(modeler_page, round_trip_server, path, f"shipped {name}")
    assert_same_bpmn(path.read_bytes(), saved)


@needs_browser
def test_form_fields_and_clocks_round_trip(modeler_page, round_trip_server) -> None:
    page = modeler_page
    path = PROCESSES / "private_school_establishment.bpmn"
    page.set_input_files("#modeler-file", str(path))
    page.wait_for_selector(f"#modeler-status:has-text({path.name!r})")
    wait_for_status(page)

    page.click("[data-element-id=Task_acceptance]")
    group = page.locator("[data-group-id=group-liuhen-form-fields]")
    assert group.locator(".bio-properties-panel-list-item").count() == 7
    names = [page.input_value(f"#bio-properties-panel-liuhen-form-field-{index}-name") for index in range(7)]
    assert names == ["received_on", "applicant_name", "school_name", "school_level", "within_powers",
                     "materials_complete", "acceptance_opinion"]
    assert page.input_value("#bio-properties-panel-liuhen-form-field-3-type") == "enum"
    assert page.input_value("#bio-properties-panel-liuhen-form-field-3-label") == "办学层次"
    assert page.is_checked("#bio-properties-panel-liuhen-form-field-3-required")
    option_values = [page.input_value(f"#bio-properties-panel-liuhen-form-field-3-options-{index}-value")
                     for index in range(3)]
    assert option_values == ["preschool", "compulsory", "non_degree"]
    open_group(page, "liuhen-clocks")
    assert page.is_checked("#bio-properties-panel-liuhen-clock-start")
    assert page.input_value("#bio-properties-panel-liuhen-clock-pause") == ""

    page.click("[data-element-id=Task_expert_assessment]")
    open_group(page, "liuhen-clocks")
    assert page.input_value("#bio-properties-panel-liuhen-clock-pause") == "expert_review"
    assert not page.is_checked("#bio-properties-panel-liuhen-clock-start")
    assert page.locator("[data-group-id=group-liuhen-form-fields] .bio-properties-panel-list-item").count() == 4
    assert not page.script_errors, page.script_errors

    _status, saved = open_and_save(page, round_trip_server, path, "form fields and clocks")
    assert_same_bpmn(path.read_bytes(), saved)


@needs_browser
@pytest.mark.parametrize("name", corpus_files(with_diagram=True))
def test_realworld_file_round_trip(modeler_page, round_trip_server, name) -> None:
    path = CORPUS / name
    _status, saved = open_and_save(modeler_page, round_trip_server, path, f"corpus {name.replace('/', ' ')}")
    assert_same_bpmn(path.read_bytes(), saved)


@needs_browser
@pytest.mark.parametrize("name", corpus_files(with_diagram=False))
def test_file_without_diagram_is_laid_out(modeler_page, round_trip_server, name) -> None:
    path = CORPUS / name
    status, saved = open_and_save(modeler_page, round_trip_server, path, f"layout {name.replace('/', ' ')}")
    assert "自动排版" in status
    assert modeler_page.locator("#modeler-canvas .djs-shape").count() > 0

    # The saved file has a diagram now that draws every node and flow of the first process, and the rest
    # is what was read.
    root = _parse(saved)
    drawn = {element.get("bpmnElement") for element in root.iter(f"{{{BPMNDI}}}BPMNShape", f"{{{BPMNDI}}}BPMNEdge")}
    first_process = root.find(f"{{{BPMN}}}process")
    assert first_process is not None
    elements = [child.get("id") for child in first_process
                if etree.QName(child).localname.endswith(("Task", "Event", "Gateway", "Flow", "Process", "task"))]
    assert elements
    assert sorted(set(elements) - drawn) == []
    model_before = _canonical(_without_diagrams(_parse(path.read_bytes())))
    model_after = _canonical(_without_diagrams(root))
    assert _difference(model_before, model_after) is None, _difference(model_before, model_after)


@needs_browser
def test_dangling_references_are_kept(modeler_page, round_trip_server, tmp_path) -> None:
    # SpiffWorkflow reads loopDataInputRef as the name of a case data variable, not as an element id.
    path = tmp_path / "dangling.bpmn"
    path.write_bytes((CORPUS / "spiffworkflow" / "parallel_multiinstance_loop_input.bpmn").read_bytes())
    status, saved = open_and_save(modeler_page, round_trip_server, path, "dangling")
    assert "2 处引用" in status
    assert b"<bpmn:loopDataInputRef>input_data</bpmn:loopDataInputRef>" in saved


# The modeler's description of liuhen's namespace

XS = "{http://www.w3.org/2001/XMLSchema}"
DESCRIPTOR = ROOT / "modeler" / "src" / "liuhen-moddle.json"
SCHEMA = ROOT / "engine" / "schema" / "liuhen.xsd"


def _schema_shape(schema: etree._Element, element: etree._Element) -> tuple[set[str], list[tuple[str, Any]]]:
    """Return the attribute names and the (child name, child element) sequence of an XSD element."""
    complex_type = element.find(f"{XS}complexType")
    if complex_type is None and element.get("type", "").startswith("liuhen:"):
        complex_type = schema.find(f"{XS}complexType[@name='{element.get('type', '').split(':')[1]}']")
    if complex_type is None:
        return set(), []
    attributes = {attribute.get("name") for attribute in complex_type.iter(f"{XS}attribute")}
    sequence = complex_type.find(f"{XS}sequence")
    children = [(child.get("name"), child) for child in (sequence if sequence is not None else [])]
    return attributes, children


def test_descriptor_matches_xsd() -> None:
    # bpmn-js drops every liuhen element or child its descriptor lacks, so saving would lose it.
    import json

    descriptor = {kind["name"]: kind for kind in json.loads(DESCRIPTOR.read_text(encoding="utf-8"))["types"]}
    schema = etree.parse(str(SCHEMA)).getroot()

    def check(element: etree._Element, type_name: str, path: str) -> None:
        assert type_name in descriptor, f"{path}: the descriptor has no type {type_name}"
        properties = descriptor[type_name]["properties"]
        attributes, children = _schema_shape(schema, element)
        assert {p["name"] for p in properties if p.get("isAttr")} == attributes, f"{path}: attributes differ"
        assert [p["name"] for p in properties if not p.get("isAttr")] == [name for name, _ in children], \
            f"{path}: child elements differ or are in another order"
        for name, child in children:
            child_type = next(p["type"] for p in properties if p["name"] == name)
            if child_type != "String":
                check(child, child_type, f"{path}/{name}")

    for element in schema.findall(f"{XS}element"):
        name = element.get("name", "")
        check(element, name[0].upper() + name[1:], name)


# Drafts API

@pytest.fixture
def api(service: Liuhen) -> Iterator[httpx.Client]:
    add_user(service, "des", ["designer"])
    add_user(service, "clerk", ["staff"])
    with LiveServer(create_app(service.settings, service)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def _login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"}


def test_draft_save_list_read_delete(api, clock) -> None:
    headers = _login(api, "des")
    content = (PROCESSES / "reimbursement.bpmn").read_bytes()

    saved = api.put("/api/modeler/drafts/报销 草稿", content=content, headers=headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["process_ids"] == ["reimbursement"]
    assert saved.json()["saved_by"] == "des"
    assert saved.json()["size"] == len(content)

    clock.advance(timedelta(minutes=5))
    api.put("/api/modeler/drafts/second", content=content, headers=headers)
    assert [draft["name"] for draft in api.get("/api/modeler/drafts", headers=headers).json()] == \
        ["second", "报销 草稿"]
    assert api.get("/api/modeler/drafts/报销 草稿", headers=headers).content == content

    assert api.delete("/api/modeler/drafts/报销 草稿", headers=headers).status_code == 204
    missing = api.get("/api/modeler/drafts/报销 草稿", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No draft is named 报销 草稿."


def test_draft_rejects_what_is_not_bpmn(api) -> None:
    headers = _login(api, "des")

    broken = api.put("/api/modeler/drafts/broken", content=b"<bpmn:definitions", headers=headers)
    assert broken.status_code == 422
    assert broken.json()["error"]["message"].startswith("The draft is not well-formed XML")

    other = api.put("/api/modeler/drafts/other", content=b"<html/>", headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["message"] == \
        "The draft's root element is html, not bpmn:definitions; save a BPMN 2.0 file."

    blank = api.put("/api/modeler/drafts/%20", content=(PROCESSES / "procurement.bpmn").read_bytes(), headers=headers)
    assert blank.status_code == 422
    assert "The draft name" in blank.json()["error"]["message"]
    assert api.get("/api/modeler/drafts", headers=headers).json() == []


def test_drafts_need_designer_role(api) -> None:
    headers = _login(api, "clerk")
    response = api.get("/api/modeler/drafts", headers=headers)
    assert response.status_code == 403
    assert "Designer" in response.json()["error"]["message"]
