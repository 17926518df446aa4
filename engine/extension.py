"""liuhen's BPMN extension namespace: risk checkpoints, power items, form fields and step limits.

The elements are documented in ``docs/extension.md`` and ``engine/schema/liuhen.xsd``. Parsed values
are plain JSON-compatible dicts so that they travel inside SpiffWorkflow's serialized task specs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
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
# Periods that do not count towards the statutory and promised limits (行政许可法 §45).
CLOCK_PAUSE_REASONS = ("expert_review", "hearing", "testing", "appraisal", "tendering", "other")
# The explanation of each pause reason that pages show beside a clock_paused event.
CLOCK_PAUSE_REASON_TEXTS = {
    "expert_review": msg("Expert review does not count towards the time limit."),
    "hearing": msg("The hearing does not count towards the time limit."),
    "testing": msg("Testing does not count towards the time limit."),
    "appraisal": msg("Appraisal does not count towards the time limit."),
    "tendering": msg("Tendering and auction do not count towards the time limit."),
    "other": msg("A period the law excludes does not count towards the time limit."),
}
CLOCK_TASK_KINDS = ("userTask", "manualTask")
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
        "controls": [parse_control(child, checkpoint_id, filename) for child in element.findall(_tag("control"))],
    }


# Executable controls (控制规则) inside a risk checkpoint.

CONTROL_TYPES = ("separationOfDuties", "reasonedDecision", "quorum", "amountThreshold", "splitDetection",
                 "recusal", "publicityPeriod", "requiredMaterials")
ENFORCEMENTS = ("hard", "soft")
# BPMN task kinds that people claim and complete; controls run only there and steps refer to them.
HUMAN_TASK_KINDS = ("userTask", "manualTask", "task")


@dataclass(frozen=True)
class _ControlShape:
    """The attributes and children that one control type takes."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    # "none", "one" (at most one step) or "some" (one or more steps)
    steps: str = "none"
    materials: bool = False
    always_soft: bool = False


_CONTROL_SHAPES = {
    "separationOfDuties": _ControlShape(steps="some"),
    "reasonedDecision": _ControlShape(required=("decisionField", "reasonField", "decisions"),
                                      optional=("minLength",)),
    "quorum": _ControlShape(required=("approvers", "decisionField", "onDisagreement"),
                            optional=("tieBreak", "reasonField")),
    "amountThreshold": _ControlShape(required=("field", "threshold"), steps="some"),
    "splitDetection": _ControlShape(required=("field", "partyField", "threshold", "windowDays"), always_soft=True),
    "recusal": _ControlShape(required=("field",)),
    "publicityPeriod": _ControlShape(required=("workingDays",), steps="one"),
    "requiredMaterials": _ControlShape(required=("field",), optional=("decisionField", "correctionValue"),
                                       materials=True),
}
# Attributes that name a case-data field.
_FIELD_ATTRIBUTES = ("decisionField", "reasonField", "field", "partyField")
# Whole-number attributes and their smallest allowed value.
_WHOLE_NUMBER_MINIMUMS = {"minLength": 1, "approvers": 1, "windowDays": 1, "workingDays": 1}
_AMOUNT_ATTRIBUTES = ("threshold",)
_ATTRIBUTE_EXAMPLES = {
    "decisionField": 'decisionField="decision"',
    "reasonField": 'reasonField="decision_reason"',
    "decisions": 'decisions="refuse return"',
    "approvers": 'approvers="2"',
    "onDisagreement": 'onDisagreement="majority"',
    "field": 'field="amount"',
    "partyField": 'partyField="supplier"',
    "threshold": 'threshold="10000"',
    "windowDays": 'windowDays="30"',
    "workingDays": 'workingDays="5"',
}
_OWN_ATTRIBUTES = ("id", "type", "enforcement")


def _control_fail(element: etree._Element, filename: str | None, message: Any,
                  code: str = "extension_invalid_value") -> DefinitionError:
    return _fail(element, filename, message, code)


def parse_control(element: etree._Element, checkpoint_id: str, filename: str | None) -> dict[str, Any]:
    """Read one ``liuhen:control`` of a risk checkpoint and check it against the rules of its type."""
    control_id = element.get("id")
    if not control_id:
        raise _control_fail(element, filename, msg(
            "A liuhen:control in risk checkpoint {checkpoint} has no id; give each control an id unique in the "
            "file.", checkpoint=checkpoint_id), "extension_missing_value")
    control_type = element.get("type")
    if control_type not in _CONTROL_SHAPES:
        raise _control_fail(element, filename, msg(
            "Control {control} has the invalid type {value!r}; use one of: {allowed}.", control=control_id,
            value=control_type or "", allowed=", ".join(CONTROL_TYPES)))
    shape = _CONTROL_SHAPES[control_type]
    enforcement = _enforcement(element, control_id, control_type, shape, filename)
    params = {name: value for name, value in element.attrib.items()
              if isinstance(name, str) and not name.startswith("{") and name not in _OWN_ATTRIBUTES}

    _check_task_node(element, control_id, filename)
    _check_attributes(element, control_id, control_type, shape, params, filename)
    steps = _control_steps(element, control_id, control_type, shape, filename)
    materials = _control_materials(element, control_id, control_type, shape, params, filename)
    return {"id": control_id, "type": control_type, "enforcement": enforcement, "params": params,
            "steps": steps, "materials": materials}


def _enforcement(element: etree._Element, control_id: str, control_type: str, shape: _ControlShape,
                 filename: str | None) -> str:
    value = element.get("enforcement")
    if value is None:
        return "soft" if shape.always_soft else "hard"
    if value not in ENFORCEMENTS:
        raise _control_fail(element, filename, msg(
            "Control {control} has the invalid enforcement {value!r}; use hard (the step is blocked) or soft "
            "(a risk event is recorded).", control=control_id, value=value))
    if shape.always_soft and value != "soft":
        raise _control_fail(element, filename, msg(
            "Control {control} of type {type} is always soft: it records a risk event and never blocks a step. "
            "Remove enforcement=\"{value}\".", control=control_id, type=control_type, value=value))
    return value


def _check_task_node(element: etree._Element, control_id: str, filename: str | None) -> None:
    """Reject a control whose checkpoint is on an event, gateway or subprocess, which no user claims or completes."""
    checkpoint = element.getparent()
    container = checkpoint.getparent() if checkpoint is not None else None
    node = container.getparent() if container is not None else None
    if node is None or not isinstance(node.tag, str):
        return
    kind = etree.QName(node).localname
    if etree.QName(node).namespace == BPMN_NAMESPACE and kind not in HUMAN_TASK_KINDS:
        raise _control_fail(element, filename, msg(
            "Control {control} is on element {node} ({kind}), which no user claims or completes, so the control "
            "would never run; put it in a risk checkpoint of a user task.", control=control_id,
            node=node.get("id") or "-", kind=kind))


def _check_attributes(element: etree._Element, control_id: str, control_type: str, shape: _ControlShape,
                      params: dict[str, str], filename: str | None) -> None:
    allowed = shape.required + shape.optional
    for name in params:
        if name not in allowed:
            raise _control_fail(element, filename, msg(
                "Control {control} ({type}) has the attribute {attribute}, which this type does not use; remove "
                "it. A {type} control takes: {allowed}.", control=control_id, type=control_type, attribute=name,
                allowed=", ".join(allowed) or "-"))
    for name in shape.required:
        if not params.get(name, "").strip():
            raise _control_fail(element, filename, msg(
                "Control {control} ({type}) has no {attribute} attribute; add one, for example {example}.",
                control=control_id, type=control_type, attribute=name,
                example=_ATTRIBUTE_EXAMPLES.get(name, f'{name}="…"')), "extension_missing_value")
    for name, value in params.items():
        if name in _FIELD_ATTRIBUTES and not FIELD_NAME.match(value):
            raise _control_fail(element, filename, msg(
                "Attribute {attribute} of control {control} is {value!r}, which is not a case-data field name; "
                "use letters, digits and underscores, starting with a letter.", attribute=name,
                control=control_id, value=value))
        if name in _WHOLE_NUMBER_MINIMUMS and parse_whole_number(value) < _WHOLE_NUMBER_MINIMUMS[name]:
            raise _control_fail(element, filename, msg(
                "Attribute {attribute} of control {control} is {value!r}; write a whole number of at least "
                "{minimum}.", attribute=name, control=control_id, value=value,
                minimum=_WHOLE_NUMBER_MINIMUMS[name]))
        if name in _AMOUNT_ATTRIBUTES and parse_amount(value) is None:
            raise _control_fail(element, filename, msg(
                "Attribute {attribute} of control {control} is {value!r}; write a number of at least 0 without "
                "thousands separators, for example 10000 or 2500.50.", attribute=name, control=control_id,
                value=value))
    if control_type == "requiredMaterials" and bool(params.get("decisionField")) != bool(params.get("correctionValue")):
        raise _control_fail(element, filename, msg(
            "Control {control} (requiredMaterials) needs decisionField and correctionValue together: the "
            "correction notice is issued when the decision field holds the correction value. Write both, or "
            "neither.", control=control_id), "extension_missing_value")
    if control_type == "quorum":
        from engine.quorum import quorum_problem

        problem = quorum_problem(params)
        if problem is not None:
            raise _control_fail(element, filename, msg("Control {control}: {problem}", control=control_id,
                                                       problem=problem))


def parse_whole_number(value: str) -> int:
    """Return ``value`` as a whole number, or -1 when it is not one (ASCII digits only)."""
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else -1


def parse_amount(value: Any) -> Decimal | None:
    """Return ``value`` as a finite number of at least 0, or None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _control_steps(element: etree._Element, control_id: str, control_type: str, shape: _ControlShape,
                   filename: str | None) -> list[str]:
    children = element.findall(_tag("step"))
    if shape.steps == "none" and children:
        raise _control_fail(children[0], filename, msg(
            "Control {control} ({type}) takes no liuhen:step; remove it.", control=control_id, type=control_type))
    if shape.steps == "some" and not children:
        raise _control_fail(element, filename, msg(
            "Control {control} ({type}) names no step; add <liuhen:step ref=\"…\"/> with the id of the earlier "
            "task it depends on.", control=control_id, type=control_type), "extension_missing_value")
    if shape.steps == "one" and len(children) > 1:
        raise _control_fail(children[1], filename, msg(
            "Control {control} ({type}) names {count} steps; name at most one, the step whose completion starts "
            "the period.", control=control_id, type=control_type, count=len(children)))
    tasks = _process_task_ids(element)
    refs = []
    for child in children:
        ref = (child.get("ref") or "").strip()
        if not ref:
            raise _control_fail(child, filename, msg(
                "A liuhen:step of control {control} has no ref; write the id of a task of this process.",
                control=control_id), "extension_missing_value")
        if tasks is not None and ref not in tasks:
            raise _control_fail(child, filename, msg(
                "Control {control} names step {ref}, which is not a task of this process; write the id of a user "
                "task, manual task or task of the same process.", control=control_id, ref=ref))
        refs.append(ref)
    return refs


def _process_of(element: etree._Element) -> etree._Element | None:
    for ancestor in element.iterancestors(f"{{{BPMN_NAMESPACE}}}process"):
        return ancestor
    return None


def _process_task_ids(element: etree._Element) -> set[str] | None:
    """Ids of the human tasks of the process around ``element``, subprocesses included; None outside one."""
    process = _process_of(element)
    if process is None:
        return None
    kinds = {f"{{{BPMN_NAMESPACE}}}{kind}" for kind in HUMAN_TASK_KINDS}
    return {node.get("id") for node in process.iter(*kinds) if node.get("id")}


def _control_materials(element: etree._Element, control_id: str, control_type: str, shape: _ControlShape,
                       params: dict[str, str], filename: str | None) -> list[dict[str, str]]:
    children = element.findall(_tag("material"))
    if not shape.materials:
        if children:
            raise _control_fail(children[0], filename, msg(
                "Control {control} ({type}) takes no liuhen:material; remove it.", control=control_id,
                type=control_type))
        return []
    bpmn_ids = {node.get("id"): node.sourceline for node in element.getroottree().getroot().iter(
        f"{{{BPMN_NAMESPACE}}}*") if node.get("id")}
    materials: list[dict[str, str]] = []
    for child in children:
        material_id, name = (child.get("id") or "").strip(), (child.get("name") or "").strip()
        if not material_id or not name:
            raise _control_fail(child, filename, msg(
                "A liuhen:material of control {control} needs an id and a name; add the missing one.",
                control=control_id), "extension_missing_value")
        if any(material["id"] == material_id for material in materials):
            raise _control_fail(child, filename, msg(
                "Control {control} lists material {material} twice; list each material once.",
                control=control_id, material=material_id))
        if material_id in bpmn_ids:
            raise _control_fail(child, filename, msg(
                "Material id {material} of control {control} is also the id of the BPMN element on line {line}; "
                "give the material an id that no BPMN element uses.", material=material_id, control=control_id,
                line=bpmn_ids[material_id]))
        materials.append({"id": material_id, "name": name})
    if materials:
        return materials
    # Without its own list the control checks every required material of the process's power item.
    process = _process_of(element)
    container = _extension_elements(process) if process is not None else None
    power_item = container.find(_tag("powerItem")) if container is not None else None
    if power_item is not None:
        materials = [{"id": item.get("id", ""), "name": item.get("name", "")}
                     for item in power_item.findall(_tag("requiredMaterial")) if item.get("id")]
    if not materials:
        raise _control_fail(element, filename, msg(
            "Control {control} (requiredMaterials) lists no liuhen:material, and the process's liuhen:powerItem "
            "lists no liuhen:requiredMaterial to fall back on; add a <liuhen:material id=\"…\" name=\"…\"/> for "
            "each material the step checks.", control=control_id), "extension_missing_value")
    return materials


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
    parsed = {
        "name": name,
        "type": field_type,
        "label": element.get("label") or name,
        "required": element.get("required", "false") == "true",
        "options": options,
    }
    parsed.update(_field_bounds(element, name, field_type, filename))
    return parsed


def _field_bounds(element: etree._Element, name: str, field_type: str, filename: str | None) -> dict[str, str]:
    """Read the inclusive min and max of a number field, kept as the decimal text the flowchart gives."""
    bounds = {}
    for attribute in ("min", "max"):
        value = element.get(attribute)
        if value is None:
            continue
        if field_type not in ("integer", "decimal"):
            raise _fail(element, filename, msg(
                "Form field {name} is of type {type}, which takes no {attribute}; only integer and decimal fields "
                "have bounds.", name=name, type=field_type, attribute=attribute), "extension_invalid_value")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise _fail(element, filename, msg(
                "Form field {name} has {attribute}={value!r}, which is not a number; write a number such as 0.01.",
                name=name, attribute=attribute, value=value), "extension_invalid_value")
        bounds[attribute] = str(number)
    if "min" in bounds and "max" in bounds and Decimal(bounds["min"]) > Decimal(bounds["max"]):
        raise _fail(element, filename, msg(
            "Form field {name} has min {min} above max {max}; swap them or correct one.",
            name=name, min=bounds["min"], max=bounds["max"]), "extension_invalid_value")
    return bounds


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
    result.update(parse_clock_elements(node, container, filename))
    return result


def parse_clock_elements(node: etree._Element, container: etree._Element, filename: str | None) -> dict[str, Any]:
    """Read ``liuhen:clockPause`` and ``liuhen:clockStart``, which only a user or manual task may carry."""
    result: dict[str, Any] = {}
    pause = container.find(_tag("clockPause"))
    start = container.find(_tag("clockStart"))
    for element in (pause, start):
        if element is not None and etree.QName(node).localname not in CLOCK_TASK_KINDS:
            raise _fail(
                element,
                filename,
                msg("liuhen:{element} sits on {node}, a {kind}; put it on a user task or a manual task, because "
                    "the clocks follow how long such a task is open.", element=etree.QName(element).localname,
                    node=node.get("id") or "", kind=etree.QName(node).localname),
                "extension_invalid_value",
            )
    if pause is not None:
        result["clock_pause"] = {"reason": _choice(pause, "reason", CLOCK_PAUSE_REASONS, filename)}
    if start is not None:
        result["clock_start"] = True
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
