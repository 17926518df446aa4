"""Conformance: how each case's recorded path compares with its model, and statistics per version.

A case's path is the sequence of steps its trace records: completed tasks, gateway decisions, fired
timers and reached end events. A step follows the model when the model leads to it from some earlier
step of the same case, or from the start event when no step came before. A task is checked when it
became ready, and a completed task must have been recorded as ready. The way to a step may pass only
through nodes that leave no event in the trace, such as parallel joins, subprocess boundaries and
untimed events. Administrative interventions, cancellations and failed or overridden controls count
as deviations wherever they appear.

NOTE: tokens are not replayed here, so in parallel branches a step taken out of turn can pass this
check. `engine.replay` re-runs the case on the engine and catches that.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree
from sqlalchemy import select

from engine import trace
from engine.db import cases, definitions, trace_events
from engine.definitions import ParsedDefinition
from engine.errors import NotFound
from engine.extension import BPMN_NAMESPACE
from engine.i18n import Message, msg
from engine.service import Liuhen

STEP_KINDS = ("task_completed", "gateway_decision", "timer_fired", "end_event_reached")
INTERVENTION_KINDS = ("task_reassigned", "step_skipped", "data_edited", "case_migrated", "case_cancelled")
CONTROL_KINDS = ("control_failed", "control_overridden")

_HUMAN_TASKS = {"userTask", "manualTask", "task"}
_DECISION_GATEWAYS = {"exclusiveGateway", "inclusiveGateway"}
_SCOPES = ("subProcess", "transaction", "adHocSubProcess")


def _bpmn(name: str) -> str:
    return f"{{{BPMN_NAMESPACE}}}{name}"


@dataclass
class ModelGraph:
    """The flow nodes of one process and the ways a case can move between them.

    ``recorded`` contains the nodes that leave an event in the trace when a case passes them.
    ``attached`` maps an activity to its boundary events, which can fire while the activity waits.
    """

    successors: dict[str, set[str]]
    attached: dict[str, set[str]]
    recorded: set[str]
    starts: set[str]
    anytime_starts: set[str]
    _reached: dict[str, set[str]] = field(default_factory=dict)

    def reached_from(self, source: str) -> set[str]:
        """Return the nodes a case at ``source`` can reach before it passes another recorded node."""
        cached = self._reached.get(source)
        if cached is not None:
            return cached
        reached: set[str] = set()
        pending = list(self.successors.get(source, ()))
        while pending:
            node = pending.pop()
            if node in reached:
                continue
            reached.add(node)
            if node in self.recorded:
                # The case waits at a recorded node, so only its boundary events lead on from here.
                pending.extend(self.attached.get(node, ()))
            else:
                pending.extend(self.successors.get(node, ()))
        self._reached[source] = reached
        return reached

    def leads_to(self, source: str, target: str) -> bool:
        return target in self.reached_from(source)

    def entry_leads_to(self, target: str, *, first: bool) -> bool:
        """Return True when a start event leads to ``target``.

        The process's start events count for the first step only, event subprocess starts for any step.
        """
        entries = self.anytime_starts | (self.starts if first else set())
        return any(target == entry or self.leads_to(entry, target) for entry in entries)


def build_graph(parsed: ParsedDefinition, process_id: str) -> ModelGraph:
    """Build the flow graph of ``process_id`` from a parsed definition and the BPMN bytes it came from."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(parsed.content, parser)
    successors: dict[str, set[str]] = defaultdict(set)
    flow_targets: dict[str, set[str]] = defaultdict(set)
    for source, target in parsed.flows:
        successors[source].add(target)
        flow_targets[source].add(target)

    attached: dict[str, set[str]] = defaultdict(set)
    for boundary in root.iter(_bpmn("boundaryEvent")):
        host = boundary.get("attachedToRef")
        if host:
            attached[host].add(boundary.get("id"))
            successors[host].add(boundary.get("id"))

    # A case enters a subprocess or a called process at its start events. Its end events lead on along
    # the outgoing flows of the subprocess or call activity.
    anytime_starts: set[str] = set()
    processes = {process.get("id"): process for process in root.iter(_bpmn("process"))}
    for scope in root.iter(*(_bpmn(tag) for tag in _SCOPES)):
        scope_id = scope.get("id")
        for start in scope.findall(_bpmn("startEvent")):
            if scope.get("triggeredByEvent") == "true":
                anytime_starts.add(start.get("id"))
            else:
                successors[scope_id].add(start.get("id"))
        for end in scope.findall(_bpmn("endEvent")):
            successors[end.get("id")].update(flow_targets[scope_id])
    for call in root.iter(_bpmn("callActivity")):
        called = processes.get(call.get("calledElement"))
        if called is None:
            continue
        for start in called.findall(_bpmn("startEvent")):
            successors[call.get("id")].add(start.get("id"))
        for end in called.findall(_bpmn("endEvent")):
            successors[end.get("id")].update(flow_targets[call.get("id")])

    timed = {element.getparent().get("id") for element in root.iter(_bpmn("timerEventDefinition"))}
    for cycle in root.iter(_bpmn("timeCycle")):
        # A cycle timer fires again while it waits, so each firing can follow the one before.
        event_id = cycle.getparent().getparent().get("id")
        successors[event_id].add(event_id)
    recorded = set()
    for node_id, node in parsed.nodes.items():
        if node.kind in _HUMAN_TASKS or node.kind in _DECISION_GATEWAYS or node.kind == "endEvent" \
                or node_id in timed:
            recorded.add(node_id)
        elif node.kind.endswith("Gateway") and len(flow_targets[node_id]) > 1:
            recorded.add(node_id)

    process = processes.get(process_id)
    starts = {start.get("id") for start in process.findall(_bpmn("startEvent"))} if process is not None else set()
    return ModelGraph(dict(successors), dict(attached), recorded, starts, anytime_starts)


@dataclass(frozen=True)
class Deviation:
    """One place where a case left its model: ``category`` is path, intervention or control."""

    category: str
    kind: str
    seq: int
    element_id: str | None
    actor: str
    at: str
    message: Message

    def as_dict(self, locale: str | None) -> dict[str, Any]:
        return {"category": self.category, "kind": self.kind, "seq": self.seq, "element_id": self.element_id,
                "actor": self.actor, "at": self.at, "message": self.message.render(locale)}


@dataclass
class CaseConformance:
    case_id: int
    process_id: str
    version: int
    definition_id: int
    status: str
    path: list[dict[str, Any]]
    repeated_steps: dict[str, int]
    deviations: list[Deviation]
    step_times: list[dict[str, Any]]
    # False when the stored BPMN bytes no longer match the content hash recorded at deployment.
    definition_intact: bool = True

    @property
    def conforms(self) -> bool:
        return not self.deviations

    def as_dict(self, locale: str | None) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "process_id": self.process_id, "version": self.version,
            "definition_id": self.definition_id, "status": self.status, "conforms": self.conforms,
            "definition_intact": self.definition_intact, "path": self.path, "repeated_steps": self.repeated_steps,
            "deviations": [deviation.as_dict(locale) for deviation in self.deviations],
            "step_times": self.step_times,
        }


def deviation_label(kind: str) -> Message:
    """Name a deviation kind for readers; the kind itself is a stable code for programs."""
    if kind == "unexpected_step":
        return msg("step the model does not lead to")
    if kind == "unknown_flow":
        return msg("flow the model does not contain")
    if kind == "task_reassigned":
        return msg("task reassigned by an administrator")
    if kind == "step_skipped":
        return msg("step completed by an administrator without its checks")
    if kind == "data_edited":
        return msg("case data edited by an administrator")
    if kind == "case_migrated":
        return msg("case moved to another version")
    if kind == "case_cancelled":
        return msg("case cancelled before an end event")
    if kind == "control_failed":
        return msg("control failed")
    if kind == "control_overridden":
        return msg("control overridden")
    return msg("deviation {kind}", kind=kind)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _reason(event: dict[str, Any]) -> str:
    return event["payload"].get("reason") or "-"


def _deviation_kind(event: dict[str, Any]) -> str:
    """Return the kind a deviation is filed under; a risk event counts under its source."""
    if event["kind"] == "risk_event":
        return str(event["payload"].get("risk_kind") or "risk_event")
    return str(event["kind"])


def _recorded_deviation(event: dict[str, Any]) -> Deviation | None:
    """Turn an intervention, a cancellation or a control event into a deviation; None for other kinds."""
    kind, seq, actor = _deviation_kind(event), event["seq"], event["actor"]
    step = event.get("element_id") or "-"
    payload = event["payload"]
    if kind == "task_reassigned":
        message = msg("Event {seq}: administrator {actor} reassigned step {step} to {assignee}; reason: {reason}",
                      seq=seq, actor=actor, step=step, assignee=payload.get("assignee") or "-",
                      reason=_reason(event))
    elif kind == "step_skipped":
        message = msg("Event {seq}: administrator {actor} completed step {step} without its form checks; "
                      "reason: {reason}", seq=seq, actor=actor, step=step, reason=_reason(event))
    elif kind == "data_edited":
        message = msg("Event {seq}: administrator {actor} edited the case data fields {fields}; reason: {reason}",
                      seq=seq, actor=actor, fields=", ".join(sorted(payload.get("changes") or {})) or "-",
                      reason=_reason(event))
    elif kind == "case_migrated":
        message = msg("Event {seq}: administrator {actor} moved the case to version {version}; reason: {reason}",
                      seq=seq, actor=actor, version=payload.get("to_version", "-"), reason=_reason(event))
    elif kind == "case_cancelled":
        message = msg("Event {seq}: {actor} cancelled the case before it reached an end event; reason: {reason}",
                      seq=seq, actor=actor, reason=_reason(event))
    elif kind == "control_failed":
        message = msg("Event {seq}: a control failed at step {step}.", seq=seq, step=step)
    elif kind == "control_overridden":
        reason = (payload.get("details") or {}).get("reason") or _reason(event)
        message = msg("Event {seq}: {actor} overrode a control at step {step}; reason: {reason}",
                      seq=seq, actor=actor, step=step, reason=reason)
    else:
        return None
    category = "control" if kind in CONTROL_KINDS else "intervention"
    return Deviation(category, kind, seq, event.get("element_id"), actor, event["at"], message)


# Events where a case arrives at a node. A human task is checked when it becomes ready, because the
# case reached it then, and what completes in between (parallel branches, reminders) does not lead to it.
_ARRIVAL_KINDS = ("task_ready", "gateway_decision", "timer_fired", "end_event_reached")


def _path_deviations(events: list[dict[str, Any]], graphs: dict[int, ModelGraph],
                     flows: dict[int, dict[tuple[str, str], dict[str, str | None]]]) -> list[Deviation]:
    deviations = []
    earlier: list[str] = []
    ready: set[str | None] = set()
    for event in events:
        kind, element, seq = event["kind"], event["element_id"], event["seq"]
        if kind not in _ARRIVAL_KINDS and kind != "task_completed":
            continue
        graph = graphs[event["definition_id"]]

        if kind == "task_completed" and event.get("task_id") not in ready:
            deviations.append(Deviation("path", "unexpected_step", seq, element, event["actor"], event["at"], msg(
                "Event {seq}: step {step} was completed, but the trace never recorded it as ready.",
                seq=seq, step=element)))
        elif kind in _ARRIVAL_KINDS and not (graph.entry_leads_to(element, first=not earlier)
                                             or any(graph.leads_to(previous, element) for previous in earlier)):
            deviations.append(Deviation("path", "unexpected_step", seq, element, event["actor"], event["at"], msg(
                "Event {seq}: the model leads to step {step} from no earlier step of the case.",
                seq=seq, step=element)))

        if kind == "task_ready":
            ready.add(event.get("task_id"))
        if kind == "gateway_decision":
            deviations.extend(_unknown_flows(event, flows[event["definition_id"]]))
        if kind in STEP_KINDS and element not in earlier:
            earlier.append(element)
    return deviations


def _unknown_flows(event: dict[str, Any], flows: dict[tuple[str, str], dict[str, str | None]]) -> list[Deviation]:
    deviations = []
    element = event["element_id"]
    for flow in event["payload"].get("taken") or []:
        modelled = flows.get((element, flow.get("target")))
        if modelled is None or modelled.get("flow_id") != flow.get("flow_id"):
            deviations.append(Deviation(
                "path", "unknown_flow", event["seq"], element, event["actor"], event["at"],
                msg("Event {seq}: gateway {gateway} took flow {flow_id} to {target}, which the model does "
                    "not contain.", seq=event["seq"], gateway=element, flow_id=flow.get("flow_id"),
                    target=flow.get("target"))))
    return deviations


def _step_times(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair each task_ready with the task_completed of the same task, in seconds between the two."""
    ready: dict[str, str] = {}
    times = []
    for event in events:
        task_id = event.get("task_id")
        if event["kind"] == "task_ready" and task_id:
            ready[task_id] = event["at"]
        elif event["kind"] == "task_completed" and task_id in ready:
            times.append({"element_id": event["element_id"], "task_id": task_id, "ready_at": ready[task_id],
                          "completed_at": event["at"],
                          "seconds": (_time(event["at"]) - _time(ready[task_id])).total_seconds()})
    return times


class _Models:
    """Parsed definitions and their graphs, built once per definition for a batch of cases."""

    def __init__(self, service: Liuhen) -> None:
        self.service = service
        self.graphs: dict[int, ModelGraph] = {}
        self.flows: dict[int, dict[tuple[str, str], dict[str, str | None]]] = {}
        self.names: dict[int, dict[str, str | None]] = {}
        self.intact: dict[int, bool] = {}

    def load(self, definition_ids: Iterable[int]) -> None:
        missing = set(definition_ids) - set(self.graphs)
        if not missing:
            return
        with self.service.db.read() as conn:
            rows = conn.execute(select(definitions.c.id, definitions.c.content_hash)
                                .where(definitions.c.id.in_(missing)))
            recorded = {row.id: row.content_hash for row in rows}
        for definition_id in missing:
            parsed, process = self.service.parsed_definition(definition_id)
            self.intact[definition_id] = parsed.content_hash == recorded.get(definition_id)
            self.graphs[definition_id] = build_graph(parsed, process.process_id)
            self.flows[definition_id] = parsed.flows
            self.names[definition_id] = {node_id: node.name for node_id, node in parsed.nodes.items()}


def _check_events(case: Any, events: list[dict[str, Any]], models: _Models) -> CaseConformance:
    for event in events:
        if event.get("definition_id") is None:
            event["definition_id"] = case.definition_id
    models.load(event["definition_id"] for event in events)

    path = [{"seq": e["seq"], "kind": e["kind"], "element_id": e["element_id"],
             "name": e["payload"].get("name")} for e in events if e["kind"] in STEP_KINDS]
    completed = Counter(e["element_id"] for e in events if e["kind"] == "task_completed")
    deviations = _path_deviations(events, models.graphs, models.flows)
    deviations.extend(d for d in map(_recorded_deviation, events) if d is not None)
    deviations.sort(key=lambda deviation: deviation.seq)
    return CaseConformance(
        case_id=case.id, process_id=case.process_id, version=case.version, definition_id=case.definition_id,
        status=case.status, path=path,
        repeated_steps={element: count for element, count in sorted(completed.items()) if count > 1},
        deviations=deviations, step_times=_step_times(events),
        definition_intact=all(models.intact[event["definition_id"]] for event in events),
    )


_CASE_COLUMNS = (cases.c.id, cases.c.definition_id, cases.c.process_id, cases.c.status, definitions.c.version)


def case_conformance(service: Liuhen, case_id: int) -> CaseConformance:
    """Check one case's recorded path against its model and list its deviations."""
    with service.db.read() as conn:
        case = conn.execute(select(*_CASE_COLUMNS).join(definitions, definitions.c.id == cases.c.definition_id)
                            .where(cases.c.id == case_id)).first()
        if case is None:
            raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
        events = trace.read_stream(conn, trace.case_stream(case_id))
    return _check_events(case, events, _Models(service))


class _Summary:
    """Running totals over the cases of one version, so that no case's events are kept after its check."""

    def __init__(self) -> None:
        self.cases = 0
        self.conforming = 0
        self.statuses: Counter[str] = Counter()
        self.deviations: Counter[tuple[str, str | None]] = Counter()
        self.repeats: dict[str, list[int]] = defaultdict(list)
        self.durations: dict[str, list[float]] = defaultdict(list)

    def add(self, result: CaseConformance) -> None:
        self.cases += 1
        self.conforming += result.conforms
        self.statuses[result.status] += 1
        self.deviations.update((deviation.kind, deviation.element_id) for deviation in result.deviations)
        for element, count in result.repeated_steps.items():
            self.repeats[element].append(count)
        for step in result.step_times:
            self.durations[step["element_id"]].append(step["seconds"])

    def as_dict(self, names: dict[str, str | None]) -> dict[str, Any]:
        most_common_first = sorted(self.deviations.items(), key=lambda item: (-item[1], item[0][0], str(item[0][1])))
        return {
            "cases": self.cases,
            "by_status": dict(sorted(self.statuses.items())),
            "conforming": self.conforming,
            "deviating": self.cases - self.conforming,
            "conforming_share": self.conforming / self.cases if self.cases else None,
            "deviations": [{"kind": kind, "element_id": element, "count": count}
                           for (kind, element), count in most_common_first],
            "repeated_steps": [{"element_id": element, "cases": len(counts), "max_count": max(counts),
                                "executions": sum(counts)} for element, counts in sorted(self.repeats.items())],
            "step_times": [{"element_id": element, "name": names.get(element), "count": len(values),
                            "mean_seconds": statistics.fmean(values), "median_seconds": statistics.median(values)}
                           for element, values in sorted(self.durations.items())],
        }


def version_conformance(service: Liuhen, process_id: str, version: int) -> dict[str, Any]:
    """Check every case of one process version and summarise: conformance share, deviations, step times.

    Cases count under the version they run on now, so a case moved to another version counts there.
    """
    definition = service.get_definition(process_id, version)
    of_version = cases.c.definition_id == definition["id"]
    models = _Models(service)
    models.load([definition["id"]])
    summary = _Summary()
    with service.db.read() as conn:
        case_rows = {row.id: row for row in conn.execute(
            select(*_CASE_COLUMNS).join(definitions, definitions.c.id == cases.c.definition_id).where(of_version))}
        bodies = conn.execution_options(yield_per=1000).execute(
            select(trace_events.c.case_id, trace_events.c.body)
            .where(trace_events.c.case_id.in_(select(cases.c.id).where(of_version)))
            .order_by(trace_events.c.case_id, trace_events.c.seq))
        for case_id, rows in itertools.groupby(bodies, key=lambda row: row.case_id):
            # A case started after the case list was read has no row here; it belongs to a later summary.
            if case_id in case_rows:
                events = [json.loads(bytes(row.body)) for row in rows]
                summary.add(_check_events(case_rows[case_id], events, models))
    return {"process_id": process_id, "version": version, "definition_id": definition["id"],
            "definition_intact": models.intact[definition["id"]], **summary.as_dict(models.names[definition["id"]])}
