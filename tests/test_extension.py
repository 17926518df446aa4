"""liuhen's BPMN extension: parsed onto task specs, kept through serialization, valid against the XSD."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer

from engine.definitions import load_definition
from engine.extension import NAMESPACE
from engine.parser import node_extensions
from tests.conftest import PROCESSES, ROOT

SHIPPED = sorted(PROCESSES.glob("*.bpmn"))
SCHEMA = etree.XMLSchema(etree.parse(str(ROOT / "engine" / "schema" / "liuhen.xsd")))


def test_checkpoints_are_on_task_specs() -> None:
    parsed = load_definition((PROCESSES / "private_school_establishment.bpmn").read_bytes(), "school.bpmn")
    spec = parsed.process("private_school_establishment").spec
    acceptance = node_extensions(spec.task_specs["Task_acceptance"])

    levels = {checkpoint["level"] for checkpoint in acceptance["risk_checkpoints"]}
    assert levels <= {"high", "medium", "low"}
    assert all(checkpoint["control_measures"] for checkpoint in acceptance["risk_checkpoints"])
    assert acceptance["form_fields"][0]["name"]
    power_item = parsed.process("private_school_establishment").power_item
    assert power_item["kind"] == "external"
    assert power_item["promised_time_limit"] == {"amount": 30, "unit": "working_day"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_extensions_survive_spiff_serialization(path: Path) -> None:
    parsed = load_definition(path.read_bytes(), path.name)
    process = parsed.processes[0]
    workflow = BpmnWorkflow(process.spec, process.subprocess_specs)
    serializer = BpmnWorkflowSerializer()

    restored = serializer.deserialize_json(serializer.serialize_json(workflow))

    for name, task_spec in process.spec.task_specs.items():
        assert node_extensions(restored.spec.task_specs[name]) == node_extensions(task_spec), name
    assert any(node_extensions(s).get("risk_checkpoints") for s in restored.spec.task_specs.values())


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_extension_elements_match_xsd(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    elements = [e for e in root.iter() if isinstance(e.tag, str) and e.tag.startswith(f"{{{NAMESPACE}}}")
                and not e.getparent().tag.startswith(f"{{{NAMESPACE}}}")]
    assert elements
    for element in elements:
        assert SCHEMA.validate(element), f"line {element.sourceline}: {SCHEMA.error_log.last_error}"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_flowcharts_have_lanes_and_diagram(path: Path) -> None:
    root = etree.parse(str(path)).getroot()
    bpmn = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
    shapes = {e.get("bpmnElement") for e in root.iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape")}
    lane_refs = {ref.text for ref in root.iter(f"{bpmn}flowNodeRef")}
    for task in root.iter(f"{bpmn}userTask"):
        assert task.get("id") in lane_refs, task.get("id")
        assert task.get("id") in shapes, task.get("id")
