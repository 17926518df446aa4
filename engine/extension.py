"""liuhen's BPMN extension namespace: risk checkpoints, power items, form fields and step limits.

The elements are documented in ``docs/extension.md`` and ``engine/schema/liuhen.xsd``. Parsed values
are plain JSON-compatible dicts so that they travel inside SpiffWorkflow's serialized task specs.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from engine.errors import DefinitionError
from engine.i18n import msg

NAMESPACE = "urn:liuhen:bpmn:1.0"
BPMN_NAMESPACE = "http://www.omg.org/spec/BPMN/20100524/MODEL"
EXTENSION_KEY = "liuhen"

RISK_LEVELS = ("high", "medium", "low")
RISK_CATEGORIES = ("power_operation", "institutional", "external_environment")
POWER_ITEM_KINDS = ("external", "internal")
TIME_UNITS = ("working_day", "day", "month")
FIELD_TYPES = ("string", "text", "boolean", "integer", "decimal", "date", "enum")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


def _text(element: etree._Element, name: str) -> str | None:
    child = element.find(_tag(name))
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _texts(element: etree._Element, name: str) -> list[str]:
    return [child.text.strip() for child in element.findall(_tag(name)) if child.text and child.text.strip()]


def _fail(element: etree._Element, filename: str | None, message: Any, code: str) -> DefinitionError:
    owner = element.getparent()
    while owner is not None and owner.get("id") is None:
        owner = owner.getparent()
    return DefinitionError(
        message,
        code=code,
        filename=filename,
        element_id=element.get("id") or (owner.get("id") if owner is not None else None),
        line=element.sourceline,
    )


def _choice(element: etree._Element, attribute: str, allowed: tuple[str, ...], filename: str | None) -> str:
    value = element.get(attribute)
    if value not in allowed:
        raise _fail(
            element,
            filename,
            msg(
                "Attribute {attribute} of liuhen:{element} has the invalid value {value!r}; "
                "use one of: {allowed}.",
                attribute=attribute,
                element=etree.QName(element).localname,
                value=value if value is not None else "",
                allowed=", ".join(allowed),
            ),
            "extension_invalid_value",
        )
    return value


def _time_limit(element: etree._Element | None, filename: str | None) -> dict[str, Any] | None:
    if element is None:
        return None
    raw = element.get("amount", "")
    try:
        amount = int(raw)
    except ValueError:
        amount = -1
    if amount <= 0:
        raise _fail(
            element,
            filename,
            msg(
                "Time limit amount {value!r} is invalid; write a whole number above zero.",
                value=raw,
            ),
            "extension_invalid_value",
        )
    return {"amount": amount, "unit": _choice(element, "unit", TIME_UNITS, filename)}


def _extension_elements(node: etree._Element) -> etree._Element | None:
    return node.find(f"{{{BPMN_NAMESPACE}}}extensionElements")


def parse_risk_checkpoint(element: etree._Element, filename: str | None) -> dict[str, Any]:
    checkpoint_id = element.get("id")
    if not checkpoint_id:
        raise _fail(
            element,
            filename,
            msg("A liuhen:riskCheckpoint has no id; give each checkpoint an id unique in the file."),
            "extension_missing_value",
        )
    description = _text(element, "description")
    measures = _texts(element, "controlMeasure")
    if description is None:
        raise _fail(
            element,
            filename,
            msg("Risk checkpoint {checkpoint} has no liuhen:description; describe the risk point.",
                checkpoint=checkpoint_id),
            "extension_missing_value",
        )
    if not measures:
        raise _fail(
            element,
            filename,
            msg("Risk checkpoint {checkpoint} has no liuhen:controlMeasure; add at least one control measure.",
                checkpoint=checkpoint_id),
            "extension_missing_value",
        )
    return {
        "id": checkpoint_id,
        "level": _choice(element, "level", RISK_LEVELS, filename),
        "category": _choice(element, "category", RISK_CATEGORIES, filename),
        "description": description,
        "manifestation": _text(element, "manifestation"),
        "control_measures": measures,
        "responsible_post": _text(element, "responsiblePost"),
        "supervising_leader": _text(element, "supervisingLeader"),
    }


def parse_form_field(element: etree._Element, filename: str | None) -> dict[str, Any]:
    name = element.get("name", "")
    if not FIELD_NAME.match(name):
        raise _fail(
            element,
            filename,
            msg("Form field name {value!r} is invalid; use letters, digits and underscores, "
                "starting with a letter.", value=name),
            "extension_invalid_value",
        )
    field_type = _choice(element, "type", FIELD_TYPES, filename)
    options = [
        {"value": option.get("value", ""), "label": option.get("label") or option.get("value", "")}
        for option in element.findall(_tag("option"))
    ]
    if field_type == "enum" and not options:
        raise _fail(
            element,
            filename,
            msg("Form field {name} is of type enum but lists no liuhen:option; add its allowed values.",
                name=name),
            "extension_missing_value",
        )
    return {
        "name": name,
        "type": field_type,
        "label": element.get("label") or name,
        "required": element.get("required", "false") == "true",
        "options": options,
    }


def parse_node_extensions(node: etree._Element, filename: str | None) -> dict[str, Any]:
    """Read liuhen's elements from a flow node's ``extensionElements``; empty dict when none."""
    container = _extension_elements(node)
    if container is None:
        return {}
    checkpoints = [parse_risk_checkpoint(e, filename) for e in container.findall(_tag("riskCheckpoint"))]
    fields = [parse_form_field(e, filename) for e in container.findall(_tag("formField"))]
    time_limit = _time_limit(container.find(_tag("timeLimit")), filename)
    result: dict[str, Any] = {}
    if checkpoints:
        result["risk_checkpoints"] = checkpoints
    if fields:
        result["form_fields"] = fields
    if time_limit:
        result["time_limit"] = time_limit
    return result


def parse_power_item(process: etree._Element, filename: str | None) -> dict[str, Any] | None:
    """Read the ``liuhen:powerItem`` of a process; None when the process declares none."""
    container = _extension_elements(process)
    element = container.find(_tag("powerItem")) if container is not None else None
    if element is None:
        return None
    code = element.get("code")
    name = _text(element, "name")
    if not code or not name:
        raise _fail(
            element,
            filename,
            msg("liuhen:powerItem needs a code attribute and a liuhen:name element; add the missing one."),
            "extension_missing_value",
        )
    channel = element.find(_tag("supervisionChannel"))
    return {
        "code": code,
        "name": name,
        "kind": _choice(element, "kind", POWER_ITEM_KINDS, filename),
        "category": element.get("category"),
        "handling_body": _text(element, "handlingBody"),
        "responsible_subject": _text(element, "responsibleSubject"),
        "legal_basis": _texts(element, "legalBasis"),
        "statutory_time_limit": _time_limit(element.find(_tag("statutoryTimeLimit")), filename),
        "promised_time_limit": _time_limit(element.find(_tag("promisedTimeLimit")), filename),
        "supervision_channel": (
            {key: channel.get(key) for key in ("phone", "mailbox", "address") if channel.get(key)}
            if channel is not None
            else None
        ),
        "required_materials": [
            {"id": item.get("id"), "name": item.get("name")} for item in element.findall(_tag("requiredMaterial"))
        ],
        "fee": _text(element, "fee"),
    }


def check_unique_checkpoint_ids(root: etree._Element, filename: str | None) -> None:
    seen: dict[str, int | None] = {}
    for element in root.iter(_tag("riskCheckpoint")):
        checkpoint_id = element.get("id")
        if checkpoint_id in seen:
            raise _fail(
                element,
                filename,
                msg("Risk checkpoint id {checkpoint} is used twice (first on line {line}); "
                    "give each checkpoint its own id.", checkpoint=checkpoint_id, line=seen[checkpoint_id]),
                "extension_duplicate_id",
            )
        if checkpoint_id:
            seen[checkpoint_id] = element.sourceline
