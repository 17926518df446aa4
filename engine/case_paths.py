"""The path a case took through its flowchart, read from its trace: steps in order, flows taken, interventions.

The trace records a case arriving at human tasks (``task_ready``), decision and splitting gateways
(``gateway_decision``), timer events (``timer_fired``) and end events (``end_event_reached``).
Other flow nodes, such as start events, parallel joins, untimed intermediate events and
subprocess boundaries, leave no event; the case passes them silently. For every arrival this
module finds the sequence flows that led there: backwards from the arrival, through silent nodes
only, to a flow that an earlier step left on. A flow becomes available when its source task
completes, its timer fires, its gateway takes it, or, for the flows of a start event, when the
case starts. Where several routes fit, the one from the most recent departure wins, so a rework
loop is drawn along the loop and not along the first pass.

NOTE: tokens are not replayed, so the flows marked here are a best fit in two cases: parallel
branches that meet without a join gateway, and a case that left its model. ``engine.replay``
re-runs a case on the engine when exact token positions matter.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Trace events with which a case arrives at a flow node.
ARRIVAL_KINDS = ("task_ready", "gateway_decision", "timer_fired", "end_event_reached")
# Administrative interventions, and the kinds of risk event that controls record.
INTERVENTION_KINDS = ("task_reassigned", "step_skipped", "data_edited", "case_migrated", "case_cancelled")
CONTROL_KINDS = ("control_failed", "control_overridden")
RISK_EVENT_KINDS = INTERVENTION_KINDS + CONTROL_KINDS
# Suffix of the node that stands for leaving an expanded subprocess. Entering and leaving are two
# nodes, so that a route cannot skip the subprocess by going in and straight out again.
EXIT_SUFFIX = "#exit"


@dataclass(frozen=True)
class Edge:
    """A way from one flow node to the next: a sequence flow, or a link the model implies.

    Implied links have no ``flow_id``: a subprocess to its start events, its end events to its exit,
    and an activity to its boundary events.
    """

    source: str
    target: str
    flow_id: str | None = None


@dataclass
class FlowGraph:
    """The flow nodes of one flowchart and the edges between them, as far as path finding needs them.

    ``recorded`` contains the nodes the trace records arriving at; the case passes every other node
    silently. ``joins`` contains silent gateways that wait for all their incoming branches.
    ``boundary_edges`` maps an activity to its implied links to its boundary events, which become
    available when the activity is ready instead of when it completes.
    """

    edges: list[Edge]
    recorded: set[str]
    starts: set[str]
    joins: set[str] = field(default_factory=set)
    boundary_edges: dict[str, list[Edge]] = field(default_factory=dict)
    incoming: dict[str, list[Edge]] = field(init=False)
    outgoing: dict[str, list[Edge]] = field(init=False)

    def __post_init__(self) -> None:
        self.incoming = defaultdict(list)
        self.outgoing = defaultdict(list)
        for edge in self.edges:
            self.incoming[edge.target].append(edge)
            self.outgoing[edge.source].append(edge)
        for edges in self.boundary_edges.values():
            for edge in edges:
                self.incoming[edge.target].append(edge)


@dataclass
class Visit:
    """One arrival of the case at a flow node, numbered in the order of arrival from 1.

    ``status`` is ``completed`` for a step that was done or passed, ``open`` for a task still
    waiting, ``cancelled`` for a task the case left undone. Times are ISO 8601 in UTC, as the trace
    writes them. ``actor`` is the user who completed the step, or for a start event the user who
    started the case.
    """

    element_id: str
    seq: int
    kind: str
    at: str
    actor: str | None
    task_id: str | None = None
    status: str = "completed"
    order: int = 0
    ready_at: str | None = None
    claimed_by: str | None = None
    completed_at: str | None = None
    cancelled_at: str | None = None


@dataclass(frozen=True)
class RiskEvent:
    """An administrative intervention or a failed or overridden control, as the trace records it."""

    seq: int
    kind: str
    actor: str
    at: str
    element_id: str | None
    reason: str | None
    payload: dict[str, Any]


@dataclass
class CasePath:
    """The path of one case: its arrivals in order, the flows it took, its risk events and step times."""

    visits: list[Visit]
    # Traversals per sequence flow id; a flow taken again in a loop counts again.
    flow_counts: Counter[str]
    # Passes per silent flow node, inferred from the flows around it.
    passes: Counter[str]
    risk_events: list[RiskEvent]
    # (element id, seconds from task_ready to task_completed) per completed task.
    durations: list[tuple[str, float]]
    # Implied links to boundary events that fired, as (activity, boundary event) pairs.
    boundary_links: set[tuple[str, str]] = field(default_factory=set)

    def visits_of(self, element_id: str) -> list[Visit]:
        return [visit for visit in self.visits if visit.element_id == element_id]

    def reached(self) -> set[str]:
        """Return every flow node the case arrived at or passed."""
        return {visit.element_id for visit in self.visits} | set(self.passes)

    def open_visits(self) -> list[Visit]:
        return [visit for visit in self.visits if visit.status == "open"]


@dataclass(frozen=True)
class _Route:
    """Edges and silent nodes that lead to one arrival, each with the trace seq of the departure it came from."""

    origin: int
    edges: tuple[tuple[Edge, int], ...]
    nodes: tuple[tuple[str, int], ...]


def _seconds_between(start: str, end: str) -> float:
    return (_parse_time(end) - _parse_time(start)).total_seconds()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


class _PathFinder:
    def __init__(self, graph: FlowGraph) -> None:
        self.graph = graph
        # Seq of the latest departure along each edge.
        self.available: dict[Edge, int] = {}
        self.traversed: set[tuple[Edge, int]] = set()
        self.passed: set[tuple[str, int]] = set()

    def depart(self, edges: list[Edge], seq: int) -> None:
        for edge in edges:
            self.available[edge] = seq

    def arrive(self, element_id: str) -> None:
        route = self._route_into(element_id, frozenset({element_id}))
        if route is None:
            return
        self.traversed.update(route.edges)
        self.passed.update(route.nodes)

    def _route_into(self, node: str, visiting: frozenset[str]) -> _Route | None:
        """Find how the case reached ``node``, through silent nodes not yet in ``visiting``."""
        candidates = []
        for edge in self.graph.incoming.get(node, ()):
            departed = self.available.get(edge)
            if departed is not None:
                candidates.append(_Route(departed, ((edge, departed),), ()))
                continue
            source = edge.source
            if source in self.graph.recorded or source in visiting:
                continue
            inner = self._route_into(source, visiting | {source})
            if inner is not None:
                candidates.append(_Route(inner.origin, inner.edges + ((edge, inner.origin),),
                                         inner.nodes + ((source, inner.origin),)))
        if not candidates:
            return None
        if node in self.graph.joins:
            # A join waits for each of its branches, so every branch that reached it belongs to the route.
            return _Route(max(route.origin for route in candidates),
                          tuple(item for route in candidates for item in route.edges),
                          tuple(item for route in candidates for item in route.nodes))
        return max(candidates, key=lambda route: route.origin)


def trace_case_path(events: list[dict[str, Any]], graph: FlowGraph) -> CasePath:
    """Read the steps, flows, interventions and step times of one case from its trace ``events``."""
    finder = _PathFinder(graph)
    visits: list[Visit] = []
    by_task: dict[str, Visit] = {}
    risk_events: list[RiskEvent] = []
    durations: list[tuple[str, float]] = []
    boundary_links: set[tuple[str, str]] = set()
    started: Visit | None = None

    for event in events:
        kind, seq, element = event["kind"], event["seq"], event.get("element_id")
        task_id = event.get("task_id")
        payload = event.get("payload") or {}

        if kind == "case_started":
            started = Visit("", seq, kind, event["at"], event["actor"])
            finder.depart([edge for start in graph.starts for edge in graph.outgoing.get(start, ())], seq)
        elif kind in ARRIVAL_KINDS and element:
            finder.arrive(element)
            visit = Visit(element, seq, kind, event["at"], event["actor"], task_id)
            visits.append(visit)
            if kind == "task_ready":
                visit.status, visit.ready_at, visit.actor = "open", event["at"], None
                by_task[task_id or f"seq:{seq}"] = visit
                finder.depart(graph.boundary_edges.get(element, []), seq)
            else:
                visit.completed_at = event["at"]
                finder.depart(_leaving(graph, element, kind, payload), seq)
            if kind == "timer_fired":
                boundary_links.update((host, element) for host, edges in graph.boundary_edges.items()
                                      if any(edge.target == element for edge in edges))
        elif kind == "task_claimed" and task_id in by_task:
            by_task[task_id].claimed_by = event["actor"]
        elif kind == "task_reassigned" and task_id in by_task:
            by_task[task_id].claimed_by = payload.get("assignee") or by_task[task_id].claimed_by
        elif kind == "task_completed" and task_id in by_task:
            visit = by_task[task_id]
            visit.status, visit.actor, visit.completed_at = "completed", event["actor"], event["at"]
            durations.append((visit.element_id, _seconds_between(visit.at, event["at"])))
            finder.depart(graph.outgoing.get(visit.element_id, []), seq)
        elif kind == "task_cancelled" and task_id in by_task:
            by_task[task_id].status, by_task[task_id].cancelled_at = "cancelled", event["at"]

        # A risk event recorded by a control counts under what raised it.
        risk_kind = payload.get("risk_kind") if kind == "risk_event" else kind
        if risk_kind in RISK_EVENT_KINDS:
            risk_events.append(RiskEvent(seq, risk_kind, event["actor"], event["at"], element,
                                         payload.get("reason") or (payload.get("details") or {}).get("reason"),
                                         payload))

    start_visit = _start_visit(started, finder, graph)
    if start_visit is not None:
        visits.insert(0, start_visit)
    for order, visit in enumerate(sorted(visits, key=lambda visit: visit.seq), start=1):
        visit.order = order
    visits.sort(key=lambda visit: visit.order)

    flow_counts = Counter(edge.flow_id for edge, _origin in finder.traversed if edge.flow_id)
    passes = Counter(node for node, _origin in finder.passed if not node.endswith(EXIT_SUFFIX))
    return CasePath(visits, flow_counts, passes, risk_events, durations, boundary_links)


def _leaving(graph: FlowGraph, element: str, kind: str, payload: dict[str, Any]) -> list[Edge]:
    """Return the edges a case leaves ``element`` by after a gateway decision, timer or end event."""
    outgoing = graph.outgoing.get(element, [])
    if kind != "gateway_decision":
        return list(outgoing)
    leaving = []
    for taken in payload.get("taken") or []:
        flow_id, target = taken.get("flow_id"), taken.get("target")
        match = next((edge for edge in outgoing if flow_id and edge.flow_id == flow_id), None) or \
            next((edge for edge in outgoing if edge.target == target), None)
        if match is not None:
            leaving.append(match)
    return leaving


def _start_visit(started: Visit | None, finder: _PathFinder, graph: FlowGraph) -> Visit | None:
    """Place the case's start on the start event whose flows the case left by."""
    if started is None:
        return None
    used = sorted({edge.source for edge, origin in finder.traversed
                   if edge.source in graph.starts and origin == started.seq})
    if not used:
        return None
    started.element_id = used[0]
    started.completed_at = started.at
    return started

