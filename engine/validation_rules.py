"""The rules of design-time validation; each adds its findings to a ``ValidationContext``.

Errors are raised for liuhen extension elements that do not parse and timers whose value does not fit
their kind. They are also raised for a promised time limit that is always longer than the statutory
one, gateways that no flow leaves for some form values, and nodes from which no end event can be
reached. Warnings are given for user tasks without a post, high-risk checkpoints without a
responsible post and a promised limit that is longer only for some start dates. They are also given
for gateways whose coverage cannot be proven and nodes that no start event reaches.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from lxml import etree

from engine.deadlines import TimeLimit, Unit
from engine.errors import DefinitionError, ExpressionError, InvalidInput
from engine.expressions import check_expression
from engine.extension import BPMN_NAMESPACE, HUMAN_TASK_KINDS, NAMESPACE, parse_node_extensions, parse_power_item
from engine.flow_reachability import analyse_process
from engine.gateway_coverage import OTHER_TEXT, Coverage, FieldDomain, check_coverage
from engine.i18n import Message, msg
from engine.limit_comparison import compare_limits
from engine.validation_context import ERROR, WARNING, ValidationContext, kind_of, label


def _bpmn(name: str) -> str:
    return f"{{{BPMN_NAMESPACE}}}{name}"


# Extension elements ------------------------------------------------------------------------------


def check_extensions(context: ValidationContext) -> None:
    """Parse liuhen's elements of every flow node and process, reporting every error, not only the first."""
    runnable = set(map(id, context.processes))
    for process in context.root.findall(_bpmn("process")):
        if id(process) in runnable:
            try:
                parse_power_item(process, context.filename)
            except DefinitionError as exc:
                context.add_error(exc)
        for element in context.flow_nodes(process):
            try:
                extensions = parse_node_extensions(element, context.filename)
            except DefinitionError as exc:
                context.add_error(exc)
                continue
            context.extensions[element.get("id")] = extensions
            for form_field in extensions.get("form_fields", []):
                context.fields.setdefault(form_field["name"], []).append(form_field)


# Posts and responsible posts ---------------------------------------------------------------------


def check_posts(context: ValidationContext) -> None:
    """Warn about user tasks that any business staff may take because no named lane gives them a post."""
    for process in context.processes:
        tasks = [element for element in context.flow_nodes(process) if kind_of(element) in HUMAN_TASK_KINDS]
        lanes = list(process.iter(_bpmn("lane")))
        if not tasks:
            continue
        if not lanes:
            context.add(WARNING, "validation_no_lanes", msg(
                "Process {process} has no lanes, so any business staff can take its user tasks ({count}).",
                process=label(process), count=len(tasks)),
                msg("Draw a lane for each post and put every user task in the lane of the post that handles it."),
                process)
            continue

        # A task listed by a lane and by a lane nested in it belongs to the inner one, as the engine reads them.
        lane_of: dict[str, etree._Element] = {}
        for lane in lanes:
            for reference in lane.findall(_bpmn("flowNodeRef")):
                if reference.text:
                    lane_of[reference.text.strip()] = lane
        for task in tasks:
            lane = lane_of.get(task.get("id"))
            if lane is None:
                context.add(WARNING, "validation_task_outside_lane", msg(
                    "User task {task} is in no lane, so it has no post and any business staff can take it.",
                    task=label(task)),
                    msg("Move the task into the lane of the post that handles it."), task)
            elif not (lane.get("name") or "").strip():
                context.add(WARNING, "validation_lane_without_name", msg(
                    "User task {task} is in lane {lane}, which has no name, so its post is the lane id {lane}; "
                    "users hold posts by name.", task=label(task), lane=lane.get("id")),
                    msg("Name the lane after the post that handles its tasks."), task)


def check_checkpoints(context: ValidationContext) -> None:
    """Warn about high-risk checkpoints that name no responsible post."""
    for element_id, extensions in context.extensions.items():
        node = context.elements[element_id]
        for checkpoint in extensions.get("risk_checkpoints", []):
            if checkpoint["level"] != "high" or checkpoint.get("responsible_post"):
                continue
            context.add(WARNING, "validation_checkpoint_without_post", msg(
                "High-risk checkpoint {checkpoint} on {node} names no responsible post, so the risk register "
                "cannot say which post answers for it.", checkpoint=checkpoint["id"], node=label(node)),
                msg("Add a liuhen:responsiblePost to the checkpoint."), node,
                line=_checkpoint_line(node, checkpoint["id"]))


def _checkpoint_line(node: etree._Element, checkpoint_id: str) -> int | None:
    for element in node.iter(f"{{{NAMESPACE}}}riskCheckpoint"):
        if element.get("id") == checkpoint_id:
            return element.sourceline
    return None


# Timers ------------------------------------------------------------------------------------------

_CYCLE = re.compile(r"R\d*/")
_DURATION = re.compile(r"P[0-9TWYMDHS.,]+")
_POINT_IN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(T.*)?")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def check_timers(context: ValidationContext) -> None:
    """Report timer values of another kind than their timer, and date-times without a time zone."""
    for process in context.processes:
        for tag in ("timeDate", "timeDuration", "timeCycle"):
            for element in process.iter(_bpmn(tag)):
                value = _literal_value(element.text or "")
                definition = element.getparent()
                owner = definition.getparent() if definition is not None else None
                if value is None or owner is None:
                    continue
                _check_timer(context, tag, value, owner)


def _check_timer(context: ValidationContext, tag: str, value: str, owner: etree._Element) -> None:
    shape = ("cycle" if _CYCLE.match(value) else "duration" if _DURATION.fullmatch(value)
             else "point" if _POINT_IN_TIME.fullmatch(value) else None)
    expected = {"timeDate": "point", "timeDuration": "duration", "timeCycle": "cycle"}[tag]
    if shape is None:
        return  # engine.definitions reports values that are not ISO-8601 at all.
    examples = {"point": "2026-12-31T09:00:00+08:00", "duration": "PT5M", "cycle": "R3/P1D"}
    hint = msg("Write a value of the kind the timer has, or change the timer's kind in the modeler.")
    if shape == "cycle" and expected == "duration":
        context.add(WARNING, "validation_timer_kind", msg(
            "Timer event {event} has the repeating interval {value!r} as its {kind}, so it fires once, after the "
            "first period, and never repeats.", event=label(owner), value=value, kind=tag), hint, owner)
    elif shape != expected:
        context.add(ERROR, "definition_invalid_timer", msg(
            "Timer event {event} has the value {value!r} as its {kind}, which takes a value such as {example}; "
            "the timer would fail when a case reaches it.", event=label(owner), value=value, kind=tag,
            example=examples[expected]), hint, owner)
    elif _naive_time(value):
        context.add(WARNING, "validation_timer_without_zone", msg(
            "Timer event {event} has the date-time {value!r} without a time zone, which liuhen reads as UTC, eight "
            "hours behind Beijing time.", event=label(owner), value=value),
            msg("Add the offset of Beijing time, +08:00, to each date-time of the value."), owner)


def _naive_time(value: str) -> bool:
    """Return whether a date-time in ``value``, such as the start of a repeating interval, lacks an offset."""
    return any(_POINT_IN_TIME.fullmatch(part) and "T" in part and not _OFFSET.search(part)
               for part in value.split("/"))


def _literal_value(text: str) -> str | None:
    """Return the text of a bare ISO-8601 value or a quoted string, or None when the value is computed."""
    text = text.strip()
    if _CYCLE.match(text) or _DURATION.fullmatch(text) or _POINT_IN_TIME.fullmatch(text):
        return text
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return None
    if isinstance(tree.body, ast.Constant) and isinstance(tree.body.value, str):
        return tree.body.value.strip()
    return None


# Time limits -------------------------------------------------------------------------------------


def check_limits(context: ValidationContext) -> None:
    """Report a promised time limit that is longer than the statutory one, always or on some start dates."""
    for process in context.processes:
        try:
            power_item = parse_power_item(process, context.filename)
        except DefinitionError:
            continue  # reported by check_extensions
        if not power_item or not power_item["promised_time_limit"] or not power_item["statutory_time_limit"]:
            continue
        promised = _time_limit(power_item["promised_time_limit"])
        statutory = _time_limit(power_item["statutory_time_limit"])
        if promised is None or statutory is None:
            continue
        element = next(process.iter(f"{{{NAMESPACE}}}promisedTimeLimit"))
        _compare(context, process, element, promised, statutory)


def _time_limit(value: dict[str, Any]) -> TimeLimit | None:
    """Return the limit, or None when its amount is beyond what liuhen counts (about ten years)."""
    try:
        return TimeLimit(value["amount"], Unit(value["unit"]))
    except InvalidInput:
        return None


def _compare(context: ValidationContext, process: etree._Element, element: etree._Element, promised: TimeLimit,
             statutory: TimeLimit) -> None:
    names = {"promised": _limit_text(promised), "statutory": _limit_text(statutory), "process": label(process)}
    hint = msg("Shorten the promised time limit to at most the statutory one.")
    if promised.unit is statutory.unit:
        if promised.amount > statutory.amount:
            context.add(ERROR, "validation_promised_exceeds_statutory", msg(
                "The promised time limit of {process}, {promised}, is longer than its statutory time limit of "
                "{statutory}.", **names), hint, process, line=element.sourceline)
        return

    comparison = compare_limits(promised, statutory)
    years = {"first": comparison.first_year, "last": comparison.last_year}
    if comparison.always_longer:
        context.add(ERROR, "validation_promised_exceeds_statutory", msg(
            "The promised time limit of {process}, {promised}, ends after its statutory time limit of {statutory} "
            "for every start date from {first} to {last}, counted with the official holidays of those years.",
            **names, **years), hint, process, line=element.sourceline)
    elif not comparison.never_longer and comparison.example is not None:
        start, promised_end, statutory_end = comparison.example
        context.add(WARNING, "validation_promised_may_exceed_statutory", msg(
            "The promised time limit of {process}, {promised}, ends after its statutory time limit of {statutory} "
            "for {count} of {total} start dates from {first} to {last}; for a case started on {start} the "
            "promised limit ends on {promised_end} and the statutory one on {statutory_end}. The two limits are "
            "counted in different units, so liuhen compared them for every start date with the official "
            "holidays of those years.", **names, **years, count=comparison.longer_on, total=comparison.starts,
            start=start.isoformat(), promised_end=promised_end.isoformat(),
            statutory_end=statutory_end.isoformat()),
            msg("Shorten the promised time limit, or state it in the unit of the statutory one."), process,
            line=element.sourceline)


def _limit_text(limit: TimeLimit) -> Message:
    if limit.unit is Unit.WORKING_DAY:
        return msg("{amount} working days", amount=limit.amount)
    if limit.unit is Unit.DAY:
        return msg("{amount} days", amount=limit.amount)
    return msg("{amount} months", amount=limit.amount)


# Gateways ----------------------------------------------------------------------------------------


def check_gateways(context: ValidationContext) -> None:
    """Report exclusive and inclusive gateways without a default flow whose conditions can all be false."""
    domains = _field_domains(context)
    for process in context.processes:
        flows_from: dict[str, list[etree._Element]] = {}
        for flow in process.iter(_bpmn("sequenceFlow")):
            flows_from.setdefault(flow.get("sourceRef") or "", []).append(flow)
        for gateway in process.iter(_bpmn("exclusiveGateway"), _bpmn("inclusiveGateway")):
            conditions = _conditions(gateway, flows_from.get(gateway.get("id") or "", []))
            if conditions is None:
                continue
            coverage = check_coverage(conditions, domains)
            _report_coverage(context, gateway, coverage)


def _conditions(gateway: etree._Element, flows: list[etree._Element]) -> list[str] | None:
    """Return the conditions of a gateway's outgoing flows, or None when the gateway needs no check.

    A gateway with a default flow always has a way out. With one outgoing flow without a condition,
    that flow is the default. A non-default flow without a condition, and a condition the safe
    evaluator rejects, are deploy errors of their own.
    """
    flow_ids = {flow.get("id") for flow in flows}
    if not flows or gateway.get("default") in flow_ids:
        return None
    conditions = []
    for flow in flows:
        element = flow.find(_bpmn("conditionExpression"))
        text = (element.text or "").strip() if element is not None else ""
        if not text:
            return None
        try:
            check_expression(text)
        except ExpressionError:
            return None
        conditions.append(text)
    return conditions


def _field_domains(context: ValidationContext) -> dict[str, FieldDomain]:
    """Merge the declarations of each form field: a type they disagree on is unknown, and one optional
    declaration makes the field optional."""
    domains = {}
    for name, declarations in context.fields.items():
        types = {declaration["type"] for declaration in declarations}
        field_type = types.pop() if len(types) == 1 else None
        options = tuple(dict.fromkeys(option["value"] for declaration in declarations
                                      for option in declaration.get("options", [])))
        required = all(declaration.get("required") for declaration in declarations)
        domains[name] = FieldDomain(field_type, options, required)
    return domains


def _report_coverage(context: ValidationContext, gateway: etree._Element, coverage: Coverage) -> None:
    if coverage.exhaustive:
        return
    names = {"gateway": label(gateway)}
    default_hint = msg("Mark one outgoing flow as the gateway's default flow, so that every case can leave it.")
    if coverage.counterexample is not None:
        values = _values_text(coverage.counterexample, coverage.texts)
        if coverage.certain:
            context.add(ERROR, "validation_gateway_gap", msg(
                "Gateway {gateway} has no default flow, and none of its outgoing conditions holds when {values}; "
                "a case with these values would stop at the gateway with an error.", **names, values=values),
                msg("Mark one outgoing flow as the default flow, or add a flow whose condition covers {values}.",
                    values=values), gateway)
        elif coverage.empty_fields and all(name in context.fields for name in coverage.counterexample):
            fields = ", ".join(coverage.empty_fields)
            context.add(WARNING, "validation_gateway_gap_when_empty", msg(
                "Gateway {gateway} has no default flow, and none of its outgoing conditions holds when {values}, "
                "which is the case when the optional field {fields} is left empty.", **names, values=values,
                fields=fields),
                msg("Make {fields} required, or mark one outgoing flow as the default flow.", fields=fields), gateway)
        else:
            unknown = ", ".join(sorted(name for name in coverage.counterexample if name not in context.fields))
            context.add(WARNING, "validation_gateway_gap_possible", msg(
                "Gateway {gateway} has no default flow, and none of its outgoing conditions holds when {values}. "
                "{names} is not a form field of this file, so liuhen cannot tell whether a case can have these "
                "values.", **names, values=values, names=unknown or "-"), default_hint, gateway)
        return
    reasons = {
        "too_many_combinations": msg("the conditions read too many variables and constants to try every "
                                     "combination"),
        "complex_conditions": msg("the conditions do more than compare a variable with constants"),
        "evaluation_failed": msg("some conditions fail on values of the declared types"),
    }
    context.add(WARNING, "validation_gateway_unproven", msg(
        "Gateway {gateway} has no default flow, and liuhen cannot prove that one of its outgoing conditions "
        "always holds: {reason}.", **names, reason=reasons.get(coverage.reason or "", reasons["complex_conditions"])),
        default_hint, gateway)


def _values_text(values: dict[str, Any], texts: dict[str, tuple[str, ...]]) -> str:
    """Write the values of a counterexample as a condition in the expression syntax of the flowchart."""
    parts = []
    for name, value in sorted(values.items()):
        if value is None:
            parts.append(f"{name} is None")
        elif value == OTHER_TEXT:
            parts.append(f"{name} not in {tuple(texts.get(name, ()))!r}")
        else:
            parts.append(f"{name} == {value!r}")
    return " and ".join(parts)


# Reachability ------------------------------------------------------------------------------------


def check_reachability(context: ValidationContext) -> None:
    """Warn about nodes no start event reaches, and report nodes from which no end event can be reached."""
    for process in context.processes:
        if process.find(_bpmn("startEvent")) is None:
            continue  # only called by another process, or rejected by the deploy checks
        reachability = analyse_process(process)
        for node_id in reachability.unreachable:
            node = reachability.nodes[node_id]
            context.add(WARNING, "validation_unreachable_node", msg(
                "{node} cannot be reached from any start event of process {process}, so no case will ever get "
                "there.", node=label(node), process=label(process)),
                msg("Connect it with a sequence flow from an earlier step, or remove it."), node)
        for node_id in reachability.dead_ends:
            node = reachability.nodes[node_id]
            context.add(ERROR, "validation_dead_end", msg(
                "No path leads from {node} to an end event of process {process}, so a case that gets there cannot "
                "finish.", node=label(node), process=label(process)),
                msg("Add a sequence flow from it towards an end event."), node)
