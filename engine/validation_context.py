"""Findings of design-time validation, and the file being validated as the rules see it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lxml import etree

from engine.errors import DefinitionError
from engine.extension import BPMN_NAMESPACE
from engine.flow_reachability import FLOW_NODE_KINDS
from engine.i18n import Message, msg

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)

# A fix hint for each code of the deploy checks in engine.definitions and engine.extension, whose
# messages already describe the problem.
_HINTS: dict[str, Message] = {
    "definition_empty": msg("Export the diagram from the modeler again and upload the .bpmn file."),
    "definition_too_large": msg("Split the diagram into smaller files."),
    "definition_encoding": msg("Save the file as UTF-8."),
    "definition_doctype": msg("Remove the DOCTYPE and entity declarations from the file."),
    "definition_malformed_xml": msg("Correct the XML at the line named, or export the diagram again."),
    "definition_too_deep": msg("Flatten the nesting or split the diagram into subprocesses."),
    "definition_not_bpmn": msg("Upload a BPMN 2.0 file whose root element is bpmn:definitions."),
    "definition_duplicate_id": msg("Give each element its own id."),
    "definition_reserved_id": msg("Rename the element."),
    "definition_unsupported_element": msg("Replace the element with a user task."),
    "definition_missing_called_process": msg("Add the called process to the file or use a subprocess."),
    "definition_invalid_timer": msg("Write the timer value as ISO-8601: PT5M, 2026-12-31T09:00:00+08:00 or R3/P1D."),
    "definition_unsafe_expression": msg("Rewrite the expression over case data in Python syntax."),
    "definition_undefined_variable": msg("Declare the variable as a liuhen:formField of an earlier user task."),
    "definition_no_process": msg("Add an executable bpmn:process to the file."),
    "definition_no_start_event": msg("Add a start event to the process."),
    "definition_dangling_flow": msg("Point the sequence flow at an existing flow node."),
    "definition_invalid": msg("Correct the element in the modeler and validate the file again."),
    "extension_invalid_value": msg("Correct the attribute as the message says."),
    "extension_missing_value": msg("Add the missing liuhen element or attribute."),
    "extension_duplicate_id": msg("Give each risk checkpoint and control its own id."),
}
_DEFAULT_HINT = msg("Correct the element named in the message and validate the file again.")


@dataclass(frozen=True)
class Finding:
    """One problem of a BPMN file, with the element, line and process it is about where known."""

    severity: str
    code: str
    message: Message
    hint: Message
    element_id: str | None = None
    element_name: str | None = None
    line: int | None = None
    process_id: str | None = None

    @classmethod
    def from_error(cls, error: DefinitionError) -> Finding:
        return cls(ERROR, error.code, without_location(error.message), hint_for(error.code), error.element_id,
                   None, error.line)

    def to_json(self, locale: str | None) -> dict[str, Any]:
        return {**self.to_context(), "message": self.message.render(locale), "hint": self.hint.render(locale)}

    def to_context(self) -> dict[str, Any]:
        """Return the finding for an error's details, which the HTTP layer renders in the reader's locale."""
        return {"severity": self.severity, "code": self.code, "element_id": self.element_id,
                "element_name": self.element_name, "line": self.line, "process_id": self.process_id,
                "message": self.message, "hint": self.hint}


class ValidationContext:
    """The file being validated, what the rules have learnt of it and the findings so far."""

    def __init__(self, root: etree._Element, filename: str, processes: list[etree._Element]) -> None:
        self.root = root
        self.filename = filename
        self.processes = processes
        self.elements: dict[str, etree._Element] = {}
        for element in root.iter(f"{{{BPMN_NAMESPACE}}}*"):
            if element.get("id"):
                self.elements.setdefault(element.get("id"), element)
        # Extension data of every flow node whose liuhen elements parsed, by element id.
        self.extensions: dict[str, dict[str, Any]] = {}
        # Every declaration of each form field name in the file.
        self.fields: dict[str, list[dict[str, Any]]] = {}
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str | None, int | None]] = set()

    def add(self, severity: str, code: str, message: Message, hint: Message, element: etree._Element | None = None,
            *, element_id: str | None = None, line: int | None = None) -> None:
        """Record a finding about ``element``, or about ``element_id`` and ``line``; repeats are dropped."""
        if element is not None:
            element_id = element_id or element.get("id")
            line = line or element.sourceline
        key = (code, element_id, line)
        if key in self._seen:
            return
        self._seen.add(key)
        target = self.elements.get(element_id) if element_id else None
        target = target if target is not None else element
        self.findings.append(Finding(severity, code, message, hint, element_id, element_name(target), line,
                                     process_id(target)))

    def add_error(self, error: DefinitionError) -> None:
        self.add(ERROR, error.code, without_location(error.message), hint_for(error.code),
                 element_id=error.element_id, line=error.line)

    def sorted_findings(self) -> list[Finding]:
        """Return the findings with errors first, each group by line; the first error found stays first."""
        first_error = next((finding for finding in self.findings if finding.severity == ERROR), None)
        rest = [finding for finding in self.findings if finding is not first_error]
        rest.sort(key=lambda finding: (SEVERITIES.index(finding.severity), finding.line or 0))
        return ([first_error] if first_error is not None else []) + rest

    def flow_nodes(self, process: etree._Element) -> Iterator[etree._Element]:
        """Yield the flow nodes of ``process``, those inside its subprocesses included, in document order."""
        for element in process.iter():
            if kind_of(element) in FLOW_NODE_KINDS and element.get("id"):
                yield element


def hint_for(code: str) -> Message:
    return _HINTS.get(code, _DEFAULT_HINT)


def without_location(message: Message) -> Message:
    """Drop the "In file, line, element:" prefix of a deploy check's message; a finding has those as fields."""
    detail = getattr(message, "detail", None)
    return detail if isinstance(detail, Message) else message


def kind_of(element: etree._Element) -> str | None:
    """Return the local name of a BPMN element, or None for comments and elements of other namespaces."""
    if not isinstance(element.tag, str) or etree.QName(element).namespace != BPMN_NAMESPACE:
        return None
    return etree.QName(element).localname


def element_name(element: etree._Element | None) -> str | None:
    """Return the name of ``element`` on one line, or None when it has none."""
    if element is None:
        return None
    name = " ".join((element.get("name") or "").split())
    return name or None


def process_id(element: etree._Element | None) -> str | None:
    """Return the id of the process that contains ``element``, or of ``element`` when it is a process."""
    if element is None:
        return None
    if kind_of(element) == "process":
        return element.get("id")
    for ancestor in element.iterancestors(f"{{{BPMN_NAMESPACE}}}process"):
        return ancestor.get("id")
    return None


def label(element: etree._Element) -> str:
    """Return how a finding names an element: its name and id, or its id alone."""
    name, element_id = element_name(element), str(element.get("id"))
    return f"{name} ({element_id})" if name and name != element_id else element_id
