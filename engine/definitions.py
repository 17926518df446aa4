"""Check and parse an uploaded BPMN file into deployable process definitions.

Every rejection is a ``DefinitionError`` naming the file, and the element id and line where known.
Nothing here touches the database, so a rejected file leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
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
from engine.extension import (
    NAMESPACE as LIUHEN_NAMESPACE,
)
from engine.i18n import Message, msg
from engine.parser import LiuhenBpmnParser, deep_recursion

_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
# ASCII is a subset of UTF-8, so files declared ASCII are accepted, and lxml rejects any byte above 0x7F in them.
_UTF8_NAMES = {"utf-8", "utf8", "us-ascii", "ascii"}
_LIBXML_DEPTH_ERROR = re.compile(r"Excessive depth in document: (\d+)")
# A JUEL/EL expression such as ${day > 3} or #{approved}, as Camunda, Flowable and Activiti write them.
_EL_EXPRESSION = re.compile(r"^\s*[$#]\{.*\}\s*$", re.DOTALL)

# Elements liuhen cannot run safely or at all, with the reason shown when one is rejected. Only the processes
# liuhen may run are checked (see _runnable_processes).
_UNSUPPORTED = {
    "scriptTask": "liuhen does not run scripts from BPMN files; replace the script task with a user task "
    "or remove it.",
    "serviceTask": "liuhen has no service connectors; replace the service task with a user task.",
    "businessRuleTask": "liuhen does not evaluate decision tables; replace the business rule task with a "
    "user task or an exclusive gateway.",
}

# SpiffWorkflow names its own task specs with these; a BPMN element with such an id would replace them.
_RESERVED_IDS = {"Start", "End", "Root"}
_RESERVED_SUFFIXES = (".EndJoin", ".BoundaryEventSplit", ".BoundaryEventJoin", ".StartEventSplit",
                      ".StartEventJoin")
# NOTE: one lxml crash was seen while API threads parsed at once, and whether one shared XMLSchema object
# is safe across threads was not established. So each thread builds its own validator once.
_validators = threading.local()
# libxml2 sets up its built-in schema types lazily on the first schema it parses, and not thread-safely: API
# threads building validators at once after a restart failed with "xmlSchemaPValAttrNodeValue, the given type
# is not a built-in type". Validators are therefore built one at a time.
_VALIDATOR_BUILD_LOCK = threading.Lock()

# Namespaces whose id attributes must be unique in a file. ADONIS and Trisotech exports repeat a BPMN id in
# their own extension elements to point at it, so ids in other namespaces are not BPMN ids. They are
# removed by _drop_foreign_ids before SpiffWorkflow indexes ids.
_ID_NAMESPACES = {BPMN_NAMESPACE, "http://www.omg.org/spec/BPMN/20100524/DI", LIUHEN_NAMESPACE}
_CONTROL_MATERIAL = f"{{{LIUHEN_NAMESPACE}}}material"


def _bpmn(name: str) -> str:
    return f"{{{BPMN_NAMESPACE}}}{name}"


@dataclass
class FlowNode:
    """Index entry for one BPMN flow node, used by task lists, traces and diagrams."""

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


@contextlib.contextmanager
def _located(filename: str) -> Iterator[None]:
    """Put the file, line and element in front of messages from engine.extension, which name none of them."""
    try:
        yield
    except DefinitionError as exc:
        raise DefinitionError(_prefixed(exc.message, filename, exc.line, exc.element_id), code=exc.code,
                              filename=filename, element_id=exc.element_id, line=exc.line) from exc


@dataclass(frozen=True)
class _LocatedMessage(Message):
    """Location message followed by ``detail``, a message from another module, each translated on its own."""

    detail: Message = field(default_factory=lambda: Message(""))

    def render(self, locale: str | None) -> str:
        return f"{super().render(locale)} {self.detail.render(locale)}"

    def __str__(self) -> str:
        return f"{super().__str__()} {self.detail}"


def _prefixed(message: Message, filename: str, line: int | None, element_id: str | None) -> Message:
    """Return ``message`` preceded by the file, line and element it is about."""
    if element_id is None:
        location = msg("In {filename}, line {line}:", filename=filename, line=line)
    else:
        location = msg("In {filename}, line {line}, element {element_id}:", filename=filename, line=line,
                       element_id=element_id)
    return _LocatedMessage(location.msgid, location.params, message)


def _power_item(process: etree._Element, filename: str) -> dict[str, Any] | None:
    with _located(filename):
        return parse_power_item(process, filename)


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
    # XML 1.0 forbids the character U+0000, so a NUL byte at the start means UTF-16 or UTF-32 without a BOM.
    if content.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in content[:4]:
        raise _error(
            msg("File {filename} is encoded in UTF-16 or UTF-32; save it as UTF-8 and upload it again.",
                filename=filename),
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
        # libxml2 stops at its own nesting limit (256 levels in 2.14 without XML_PARSE_HUGE) before ours is checked.
        depth_limit = _LIBXML_DEPTH_ERROR.search(exc.msg or "")
        if depth_limit:
            raise _error(
                msg("File {filename} nests XML elements more than {limit} levels deep (line {line}); "
                    "flatten the nesting or split the diagram.",
                    filename=filename, limit=min(int(depth_limit.group(1)), limits.max_depth), line=exc.lineno),
                "definition_too_deep", filename, line=exc.lineno) from exc
        raise _error(
            msg("File {filename} is not well-formed XML: {reason} (line {line}). Fix the XML and upload it again.",
                filename=filename, reason=exc.msg, line=exc.lineno),
            "definition_malformed_xml", filename, line=exc.lineno) from exc
    for count, _element in enumerate(root.iter(), start=1):
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
        if not isinstance(element.tag, str) or etree.QName(element).namespace not in _ID_NAMESPACES:
            continue
        if element.tag == _CONTROL_MATERIAL:
            # A control's material id names a document that several controls and the power item may list;
            # engine.extension checks that it differs from every BPMN id.
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
        if element_id in _RESERVED_IDS or element_id.endswith(_RESERVED_SUFFIXES):
            raise _error(
                msg("Element id {element_id} in {filename} is reserved by the workflow engine; rename the "
                    "element, for example to {suggestion}.", element_id=element_id, filename=filename,
                    suggestion=f"{element_id}_1".replace(".", "_")),
                "definition_reserved_id", filename, element)
    with _located(filename):
        check_unique_checkpoint_ids(root, filename)


def _drop_foreign_ids(root: etree._Element) -> None:
    """Remove the id attributes of elements outside _ID_NAMESPACES from the parsed tree.

    SpiffWorkflow maps every element with an id in a process to that id, the last one winning, so a vendor
    element repeating a task's id would stand in for the task. liuhen reads no other vendor's extensions.
    """
    for element in root.iter():
        if isinstance(element.tag, str) and "id" in element.attrib \
                and etree.QName(element).namespace not in _ID_NAMESPACES:
            del element.attrib["id"]


def _runnable_processes(root: etree._Element) -> list[etree._Element]:
    """List the processes liuhen may run: the executable ones and those a call activity names.

    A process with isExecutable="false" only documents a participant, so what it contains is not checked.
    """
    called = {e.get("calledElement") for e in root.iter(_bpmn("callActivity"))}
    return [p for p in root.findall(_bpmn("process"))
            if p.get("isExecutable", "true") == "true" or p.get("id") in called]


def _check_unsupported(root: etree._Element, filename: str) -> None:
    for error in unsupported_element_errors(root, filename):
        raise error


def unsupported_element_errors(root: etree._Element, filename: str) -> list[DefinitionError]:
    """List an error for each element of a runnable process that liuhen cannot run, kind by kind."""
    errors = []
    for process in _runnable_processes(root):
        for tag, reason in _UNSUPPORTED.items():
            for element in process.iter(_bpmn(tag)):
                errors.append(_error(
                    msg("Element {element_id} ({tag}) on line {line} of {filename} cannot be deployed: " + reason,
                        element_id=element.get("id"), tag=tag, line=element.sourceline, filename=filename),
                    "definition_unsupported_element", filename, element))
    return errors


def _check_call_activities(root: etree._Element, filename: str) -> None:
    # Each upload is parsed on its own, so a called process must be defined in the same file.
    defined = {p.get("id") for p in root.findall(_bpmn("process"))}
    for process in _runnable_processes(root):
        for element in process.iter(_bpmn("callActivity")):
            called = element.get("calledElement")
            if called in defined:
                continue
            raise _error(
                msg("Call activity {element_id} on line {line} of {filename} calls the process {called!r}, which "
                    "is not defined in this file; liuhen runs a call activity only when the called process is in "
                    "the same file. Add that process to the file or replace the call activity with a subprocess.",
                    element_id=element.get("id"), line=element.sourceline, filename=filename,
                    called=called or ""),
                "definition_missing_called_process", filename, element)


def _check_data_stores(root: etree._Element, filename: str) -> None:
    # SpiffWorkflow rejects a data store anywhere in the file unless an implementation is registered for it.
    for element in root.iter(_bpmn("dataStore")):
        raise _error(
            msg("Element {element_id} (dataStore) on line {line} of {filename} cannot be deployed: liuhen keeps "
                "data only in the case and has no data store implementations; remove the data store and the "
                "references to it.", element_id=element.get("id"), line=element.sourceline, filename=filename),
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
    for error in expression_errors(root, filename, declared):
        raise error


def expression_errors(root: etree._Element, filename: str, declared: set[str]) -> list[DefinitionError]:
    """List an error for each expression of a runnable process that cannot be evaluated safely.

    ``declared`` names the form fields of the file; with none declared, undefined names are not checked.
    """
    errors = []
    expressions = [found for process in _runnable_processes(root) for found in _expressions(process)]
    for owner, expression, kind in expressions:
        error = _expression_error(owner, expression, kind, filename, declared)
        if error is not None:
            errors.append(error)
    return errors


def _expression_error(owner: etree._Element, expression: str, kind: str, filename: str,
                      declared: set[str]) -> DefinitionError | None:
    if kind == "timer" and not expression:
        return _error(
            msg("Timer event {element_id} on line {line} of {filename} has an empty timer value; write an "
                "ISO-8601 duration, date or cycle such as PT5M, 2026-12-31T09:00:00 or R3/P1D.",
                element_id=owner.get("id"), line=owner.sourceline, filename=filename),
            "definition_invalid_timer", filename, owner)
    if _EL_EXPRESSION.match(expression):
        return _error(
            msg("Element {element_id} on line {line} of {filename} has the expression {expression!r}, written "
                "in the JUEL syntax of Camunda, Flowable and Activiti. liuhen evaluates expressions over case "
                "data in Python syntax; remove the JUEL delimiters and rewrite the expression in that syntax.",
                element_id=owner.get("id"), line=owner.sourceline, filename=filename, expression=expression),
            "definition_unsafe_expression", filename, owner)
    try:
        check_expression(expression, kind=kind)
    except ExpressionError as exc:
        # The evaluator's message names neither the file nor the element, so both are put in front of it.
        error = _error(_prefixed(exc.message, filename, owner.sourceline, owner.get("id")),
                       "definition_unsafe_expression", filename, owner)
        error.__cause__ = exc
        return error
    if kind != "condition" or not declared:
        return None
    undefined = sorted(expression_names(expression) - declared)
    if undefined:
        return _error(
            msg("Condition {expression!r} on {element_id} (line {line}) uses the undefined variable {name!r}; "
                "no form field in {filename} defines it. Add a liuhen:formField named {name} to an "
                "earlier user task or correct the condition.",
                expression=expression, element_id=owner.get("id"), line=owner.sourceline,
                name=undefined[0], filename=filename),
            "definition_undefined_variable", filename, owner)
    return None


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


def _check_flow_references(root: etree._Element, filename: str) -> None:
    """Reject a sequence flow whose source or target names no element of its process."""
    for process in root.iter(_bpmn("process")):
        known = {element.get("id") for element in process.iter() if isinstance(element.tag, str)}
        for flow in process.iter(_bpmn("sequenceFlow")):
            for attribute in ("sourceRef", "targetRef"):
                reference = flow.get(attribute)
                if reference not in known:
                    raise _error(
                        msg("Sequence flow {element_id} in {filename} has {attribute}={reference!r}, which names "
                            "no element of its process; point it at an existing flow node.",
                            element_id=flow.get("id"), filename=filename, attribute=attribute,
                            reference=reference or ""),
                        "definition_dangling_flow", filename, flow)


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
        first = next((p for p in processes if p.find(_bpmn("startEvent")) is None), processes[0])
        raise _error(
            msg("Process {element_id} on line {line} of {filename} has no start event; add a bpmn:startEvent "
                "so cases can start.", element_id=first.get("id"), line=first.sourceline, filename=filename),
            "definition_no_start_event", filename, first)
    return startable


def _spiff_error(exc: SpiffWorkflowException, filename: str, root: etree._Element) -> DefinitionError:
    reason = (str(exc).splitlines()[0] if str(exc) else "").rstrip(". ") or type(exc).__name__
    element_id = getattr(exc, "id", None) or None
    line = getattr(exc, "line_number", None)
    if not isinstance(line, int) and element_id is not None:
        # SpiffWorkflow often leaves line_number empty; the element is found by its id instead.
        line = next((e.sourceline for e in root.iter(f"{{{BPMN_NAMESPACE}}}*") if e.get("id") == element_id),
                    None)
    if element_id is None:
        message = msg("File {filename} is not a valid BPMN definition: {reason}. Correct it and upload the file "
                      "again.", filename=filename, reason=reason)
    elif not isinstance(line, int):
        message = msg("Element {element_id} in {filename} is not valid BPMN: {reason}. Correct the element and "
                      "upload the file again.", element_id=element_id, filename=filename, reason=reason)
    else:
        message = msg("Element {element_id} on line {line} of {filename} is not valid BPMN: {reason}. Correct "
                      "the element and upload the file again.",
                      element_id=element_id, line=line, filename=filename, reason=reason)
    return DefinitionError(message, code="definition_invalid", filename=filename, element_id=element_id,
                           line=line if isinstance(line, int) else None)


def _schema_validator() -> BpmnValidator:
    validator: BpmnValidator | None = getattr(_validators, "validator", None)
    if validator is None:
        with _VALIDATOR_BUILD_LOCK:
            validator = _validators.validator = BpmnValidator()
    return validator


def prepare_schema_validation() -> None:
    """Build the calling thread's BPMN validator now, so libxml2 sets up its schema types before threads start."""
    _schema_validator()


def read_root(content: bytes, filename: str, limits: Limits) -> etree._Element:
    """Check the bytes of an upload and parse them into an XML tree of BPMN, or raise DefinitionError."""
    _check_bytes(content, filename, limits)
    return _parse_xml(content, filename, limits)


def runnable_processes(root: etree._Element) -> list[etree._Element]:
    """List the processes liuhen may run: the executable ones and those a call activity names."""
    return _runnable_processes(root)


def located_message(message: Message, filename: str, line: int | None, element_id: str | None) -> Message:
    """Return ``message`` preceded by the file, line and element it is about."""
    return _prefixed(message, filename, line, element_id)


def load_definition(content: bytes, filename: str, limits: Limits | None = None) -> ParsedDefinition:
    """Check ``content`` and parse every startable process in it, or raise DefinitionError."""
    limits = limits or Limits()
    _check_bytes(content, filename, limits)
    root = _parse_xml(content, filename, limits)
    _check_ids(root, filename)
    _check_unsupported(root, filename)
    with _located(filename):
        nodes = _index_nodes(root, filename)
    _check_expressions(root, filename, _declared_fields(nodes))
    startable = _startable_processes(root, filename)
    _check_call_activities(root, filename)
    _check_data_stores(root, filename)
    _check_flow_references(root, filename)
    _drop_foreign_ids(root)

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
                    power_item=_power_item(process, filename),
                ))
    except ValidationException as exc:
        raise _spiff_error(exc, filename, root) from exc
    except SpiffWorkflowException as exc:
        raise _spiff_error(exc, filename, root) from exc
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
