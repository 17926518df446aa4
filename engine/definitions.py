"""Check and parse an uploaded BPMN file into deployable process definitions.

Every rejection is a ``DefinitionError`` naming the file, and the element id and line where known.
Nothing here touches the database, so a rejected file leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.errors import DefinitionError, ExpressionError
from engine.expressions import check_expression, expression_names
from engine.extension import (
    BPMN_NAMESPACE,
    check_unique_checkpoint_ids,
    parse_node_extensions,
    parse_power_item,
)
from engine.i18n import msg
from engine.parser import LiuhenBpmnParser, deep_recursion

_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_UTF8_NAMES = {"utf-8", "utf8"}

# Elements liuhen cannot run safely or at all; each is rejected at deploy with this reason.
_UNSUPPORTED = {
    "scriptTask": "liuhen does not run scripts from BPMN files; replace the script task with a user task "
    "or remove it.",
    "serviceTask": "liuhen has no service connectors; replace the service task with a user task.",
    "businessRuleTask": "liuhen does not evaluate decision tables; replace the business rule task with a "
    "user task or an exclusive gateway.",
}

_HUMAN_TAGS = {"userTask", "manualTask", "task"}
_validator: BpmnValidator | None = None


def _bpmn(name: str) -> str:
    return f"{{{BPMN_NAMESPACE}}}{name}"


@dataclass
class FlowNode:
    """What liuhen keeps about one BPMN flow node for task lists, traces and diagrams."""

    element_id: str
    name: str | None
    kind: str
    lane: str | None
    extensions: dict[str, Any]


@dataclass
class ParsedProcess:
    process_id: str
    name: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    power_item: dict[str, Any] | None


@dataclass
class ParsedDefinition:
    filename: str
    content: bytes
    content_hash: str
    processes: list[ParsedProcess]
    nodes: dict[str, FlowNode] = field(default_factory=dict)
    # (source element id, target element id) -> sequence flow id and condition text
    flows: dict[tuple[str, str], dict[str, str | None]] = field(default_factory=dict)

    def process(self, process_id: str) -> ParsedProcess:
        for process in self.processes:
            if process.process_id == process_id:
                return process
        raise KeyError(process_id)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5 * 1024 * 1024
    max_depth: int = 256
    max_elements: int = 200_000


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _error(message: Any, code: str, filename: str, element: Any = None, line: int | None = None,
           element_id: str | None = None) -> DefinitionError:
    if element is not None:
        element_id = element_id or element.get("id")
        line = line or element.sourceline
    return DefinitionError(message, code=code, filename=filename, element_id=element_id, line=line)


def _check_bytes(content: bytes, filename: str, limits: Limits) -> None:
    if not content.strip():
        raise _error(msg("File {filename} is empty; upload a BPMN 2.0 XML file.", filename=filename),
                     "definition_empty", filename)
    if len(content) > limits.max_bytes:
        raise _error(
            msg("File {filename} is {size} bytes, over the limit of {limit} bytes; split the diagram "
                "or ask an administrator to raise LIUHEN_MAX_UPLOAD_BYTES.",
                filename=filename, size=len(content), limit=limits.max_bytes),
            "definition_too_large", filename)
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _error(
            msg("File {filename} is encoded in UTF-16; save it as UTF-8 and upload it again.", filename=filename),
            "definition_encoding", filename)
    declared = _XML_DECLARATION.match(content)
    if declared and declared.group(1).decode("ascii").lower() not in _UTF8_NAMES:
        raise _error(
            msg("File {filename} declares the encoding {encoding}; liuhen accepts UTF-8 only. "
                "Save the file as UTF-8 and upload it again.",
                filename=filename, encoding=declared.group(1).decode("ascii")),
            "definition_encoding", filename, line=1)
    if _DOCTYPE.search(content):
        raise _error(
            msg("File {filename} contains a DOCTYPE or entity declaration; BPMN files must not declare "
                "entities. Remove the declaration and upload it again.", filename=filename),
            "definition_doctype", filename)


def _parse_xml(content: bytes, filename: str, limits: Limits) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        raise _error(
            msg("File {filename} is not well-formed XML: {reason} (line {line}). Fix the XML and upload it again.",
                filename=filename, reason=exc.msg, line=exc.lineno),
            "definition_malformed_xml", filename, line=exc.lineno) from exc
    count = 0
    for element in root.iter():
        count += 1
        if count > limits.max_elements:
            raise _error(
                msg("File {filename} has more than {limit} XML elements; split the diagram.",
                    filename=filename, limit=limits.max_elements),
                "definition_too_large", filename)
    deepest = max((len(list(e.iterancestors())) for e in root.iter() if len(e) == 0), default=0)
    if deepest > limits.max_depth:
        raise _error(
            msg("File {filename} nests XML elements {depth} levels deep, over the limit of {limit}.",
                filename=filename, depth=deepest, limit=limits.max_depth),
            "definition_too_deep", filename)
    if root.tag != _bpmn("definitions"):
        raise _error(
            msg("File {filename} is XML but not BPMN 2.0: its root element is {tag}, expected "
                "bpmn:definitions in namespace {namespace}.",
                filename=filename, tag=etree.QName(root).localname, namespace=BPMN_NAMESPACE),
            "definition_not_bpmn", filename, line=root.sourceline)
    return root


def _check_ids(root: etree._Element, filename: str) -> None:
    seen: dict[str, int | None] = {}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        element_id = element.get("id")
        if element_id is None:
            continue
        if element_id in seen:
            raise _error(
                msg("Element id {element_id} is used twice in {filename} (lines {first} and {second}); "
                    "ids must be unique.", element_id=element_id, filename=filename,
                    first=seen[element_id], second=element.sourceline),
                "definition_duplicate_id", filename, element)
        seen[element_id] = element.sourceline
    check_unique_checkpoint_ids(root, filename)


def _check_unsupported(root: etree._Element, filename: str) -> None:
    for tag, reason in _UNSUPPORTED.items():
        for element in root.iter(_bpmn(tag)):
            raise _error(
                msg("Element {element_id} ({tag}) in {filename} cannot be deployed: " + reason,
                    element_id=element.get("id"), tag=tag, filename=filename),
                "definition_unsupported_element", filename, element)


def _expressions(root: etree._Element) -> list[tuple[etree._Element, str, str]]:
    """List (owning element, expression text, kind) for every expression in the file."""
    found = []
    for flow in root.iter(_bpmn("sequenceFlow")):
        condition = flow.find(_bpmn("conditionExpression"))
        if condition is not None and (condition.text or "").strip():
            found.append((flow, condition.text.strip(), "condition"))
    for timer_tag in ("timeDuration", "timeDate", "timeCycle"):
        for element in root.iter(_bpmn(timer_tag)):
            owner = element.getparent().getparent()
            found.append((owner, (element.text or "").strip(), "timer"))
    for tag in ("loopCardinality", "completionCondition", "loopCondition"):
        for element in root.iter(_bpmn(tag)):
            if (element.text or "").strip():
                found.append((element.getparent().getparent(), element.text.strip(), "condition"))
    for element in root.iter(_bpmn("conditionalEventDefinition")):
        condition = element.find(_bpmn("condition"))
        if condition is not None and (condition.text or "").strip():
            found.append((element.getparent(), condition.text.strip(), "condition"))
    return found


def _check_expressions(root: etree._Element, filename: str, declared: set[str]) -> None:
    for owner, expression, kind in _expressions(root):
        if kind == "timer" and not expression:
            raise _error(
                msg("Timer event {element_id} in {filename} has an empty timer value; write an ISO-8601 "
                    "duration, date or cycle such as PT5M, 2026-12-31T09:00:00 or R3/P1D.",
                    element_id=owner.get("id"), filename=filename),
                "definition_invalid_timer", filename, owner)
        try:
            check_expression(expression, element_id=owner.get("id"), kind=kind)
        except ExpressionError as exc:
            raise DefinitionError(exc.message, code="definition_unsafe_expression", filename=filename,
                                  element_id=owner.get("id"), line=owner.sourceline) from exc
        if kind != "condition" or not declared:
            continue
        undefined = sorted(expression_names(expression) - declared)
        if undefined:
            raise _error(
                msg("Condition {expression!r} on {element_id} uses the undefined variable {name!r}; no "
                    "form field in {filename} defines it. Add a liuhen:formField named {name} to an "
                    "earlier user task or correct the condition.",
                    expression=expression, element_id=owner.get("id"), name=undefined[0], filename=filename),
                "definition_undefined_variable", filename, owner)


def _index_nodes(root: etree._Element, filename: str) -> dict[str, FlowNode]:
    lanes: dict[str, str | None] = {}
    for lane in root.iter(_bpmn("lane")):
        for ref in lane.findall(_bpmn("flowNodeRef")):
            if ref.text:
                lanes[ref.text.strip()] = lane.get("name") or lane.get("id")
    nodes = {}
    for process in root.iter(_bpmn("process"), _bpmn("subProcess"), _bpmn("transaction"),
                             _bpmn("adHocSubProcess")):
        for element in process:
            if not isinstance(element.tag, str) or element.get("id") is None:
                continue
            kind = etree.QName(element).localname
            if kind in ("sequenceFlow", "laneSet", "extensionElements", "documentation", "dataObject",
                        "dataObjectReference", "dataStoreReference", "textAnnotation", "association",
                        "ioSpecification", "property"):
                continue
            nodes[element.get("id")] = FlowNode(
                element_id=element.get("id"),
                name=element.get("name"),
                kind=kind,
                lane=lanes.get(element.get("id")),
                extensions=parse_node_extensions(element, filename),
            )
    return nodes


def _index_flows(root: etree._Element) -> dict[tuple[str, str], dict[str, str | None]]:
    flows = {}
    for flow in root.iter(_bpmn("sequenceFlow")):
        condition = flow.find(_bpmn("conditionExpression"))
        flows[(flow.get("sourceRef"), flow.get("targetRef"))] = {
            "flow_id": flow.get("id"),
            "name": flow.get("name"),
            "condition": condition.text.strip() if condition is not None and condition.text else None,
        }
    return flows


def _declared_fields(nodes: dict[str, FlowNode]) -> set[str]:
    return {f["name"] for node in nodes.values() for f in node.extensions.get("form_fields", [])}


def _startable_processes(root: etree._Element, filename: str) -> list[etree._Element]:
    processes = [p for p in root.findall(_bpmn("process")) if p.get("isExecutable", "true") == "true"]
    if not processes:
        raise _error(
            msg("File {filename} contains no executable bpmn:process; add a process with "
                "isExecutable=\"true\".", filename=filename),
            "definition_no_process", filename)
    called = {e.get("calledElement") for e in root.iter(_bpmn("callActivity"))}
    startable = [p for p in processes
                 if p.find(_bpmn("startEvent")) is not None and p.get("id") not in called]
    if not startable:
        first = processes[0]
        raise _error(
            msg("Process {element_id} in {filename} has no start event; add a bpmn:startEvent so cases "
                "can start.", element_id=first.get("id"), filename=filename),
            "definition_no_start_event", filename, first)
    return startable


def _spiff_error(exc: SpiffWorkflowException, filename: str) -> DefinitionError:
    line = getattr(exc, "line_number", None)
    return DefinitionError(
        msg("File {filename} is not a valid BPMN definition: {reason}. Correct the element named and "
            "upload it again.", filename=filename, reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__),
        code="definition_invalid",
        filename=filename,
        element_id=getattr(exc, "id", None) or None,
        line=line if isinstance(line, int) else None,
    )


def _schema_validator() -> BpmnValidator:
    global _validator
    if _validator is None:
        _validator = BpmnValidator()
    return _validator


def load_definition(content: bytes, filename: str, limits: Limits | None = None) -> ParsedDefinition:
    """Check ``content`` and parse every startable process in it, or raise DefinitionError."""
    limits = limits or Limits()
    _check_bytes(content, filename, limits)
    root = _parse_xml(content, filename, limits)
    _check_ids(root, filename)
    _check_unsupported(root, filename)
    nodes = _index_nodes(root, filename)
    _check_expressions(root, filename, _declared_fields(nodes))
    startable = _startable_processes(root, filename)

    parser = LiuhenBpmnParser(validator=_schema_validator())
    try:
        with deep_recursion():
            parser.add_bpmn_xml(root, filename)
            processes = []
            for process in startable:
                process_id = process.get("id")
                spec = parser.get_spec(process_id)
                subprocess_specs = parser.get_subprocess_specs(process_id)
                processes.append(ParsedProcess(
                    process_id=process_id,
                    name=process.get("name") or process_id,
                    spec=spec,
                    subprocess_specs=subprocess_specs,
                    power_item=parse_power_item(process, filename),
                ))
    except ValidationException as exc:
        raise _spiff_error(exc, filename) from exc
    except SpiffWorkflowException as exc:
        raise _spiff_error(exc, filename) from exc
    except RecursionError as exc:
        raise _error(msg("File {filename} nests flows too deeply to parse; split it into subprocesses.",
                         filename=filename), "definition_too_deep", filename) from exc

    return ParsedDefinition(
        filename=filename,
        content=content,
        content_hash=content_hash(content),
        processes=processes,
        nodes=nodes,
        flows=_index_flows(root),
    )
