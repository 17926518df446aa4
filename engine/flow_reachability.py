"""Which flow nodes of a process a case can reach, and from which it can still reach an end event.

The graph is read from the BPMN XML of one process. It follows sequence flows, enters an expanded
subprocess at its start events and leaves it after one of its end events, reaches a boundary event
from the activity it is attached to, reaches an event subprocess whenever its parent scope is
entered, and joins a link throw event to the link catch events of the same name in its scope.
Compensation handlers and compensation boundary events are left out, because only an association,
not a sequence flow, leads to them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from engine.extension import BPMN_NAMESPACE

EVENTS = ("startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent")
GATEWAYS = ("exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway")
ACTIVITIES = ("task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
              "businessRuleTask", "callActivity")
SCOPES = ("subProcess", "transaction", "adHocSubProcess")
FLOW_NODE_KINDS = frozenset(EVENTS + GATEWAYS + ACTIVITIES + SCOPES)

# Suffix of the graph node that stands for "the subprocess has completed"; flows out of it leave from there.
_EXIT = "#exit"


def _bpmn(name: str) -> str:
    return f"{{{BPMN_NAMESPACE}}}{name}"


def _kind(element: etree._Element) -> str | None:
    if not isinstance(element.tag, str) or etree.QName(element).namespace != BPMN_NAMESPACE:
        return None
    return etree.QName(element).localname


def _has_definition(element: etree._Element, name: str) -> bool:
    return element.find(_bpmn(name)) is not None


def _is_compensation(element: etree._Element) -> bool:
    return element.get("isForCompensation") == "true" or (
        _kind(element) == "boundaryEvent" and _has_definition(element, "compensateEventDefinition"))


@dataclass
class Reachability:
    """The flow nodes of one process that no start event leads to, and those that lead to no end event."""

    nodes: dict[str, etree._Element] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)
    dead_ends: list[str] = field(default_factory=list)


class _Graph:
    def __init__(self) -> None:
        self.edges: dict[str, set[str]] = {}
        self.nodes: dict[str, etree._Element] = {}
        self.roots: set[str] = set()
        self.ends: set[str] = set()

    def edge(self, source: str, target: str) -> None:
        self.edges.setdefault(source, set()).add(target)

    def reached_from(self, starts: Iterable[str]) -> set[str]:
        return _walk(starts, self.edges)

    def reaching(self, targets: Iterable[str]) -> set[str]:
        backwards: dict[str, set[str]] = {}
        for source, followers in self.edges.items():
            for target in followers:
                backwards.setdefault(target, set()).add(source)
        return _walk(targets, backwards)


def _walk(starts: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    seen = set(starts)
    pending = deque(seen)
    while pending:
        for follower in edges.get(pending.popleft(), ()):
            if follower not in seen:
                seen.add(follower)
                pending.append(follower)
    return seen


def analyse_process(process: etree._Element) -> Reachability:
    """Find the unreachable nodes and the dead ends of ``process``, each listed in document order."""
    graph = _Graph()
    _read_scope(process, graph, is_process=True)

    reachable = graph.reached_from(graph.roots)
    finishing = graph.reaching(graph.ends)
    ordered = list(graph.nodes)
    unreachable = [node_id for node_id in ordered if node_id not in reachable]
    # A node nobody reaches is reported as unreachable only, since no case can get stuck there.
    dead_ends = [node_id for node_id in ordered
                 if node_id in reachable and node_id not in finishing and node_id not in graph.ends]
    return Reachability(nodes=graph.nodes, unreachable=unreachable, dead_ends=dead_ends)


def _read_scope(scope: etree._Element, graph: _Graph, *, is_process: bool) -> list[str]:
    """Add the flow nodes and flows directly inside ``scope`` and return the ids of its entry nodes."""
    children = [child for child in scope if _kind(child) in FLOW_NODE_KINDS and child.get("id")
                and not _is_compensation(child)]
    event_scopes = [child for child in children if _kind(child) == "subProcess"
                    and child.get("triggeredByEvent") == "true"]
    plain = [child for child in children if child not in event_scopes]
    for child in plain:
        graph.nodes[child.get("id")] = child

    incoming = _read_flows(scope, graph)
    _read_boundary_events(plain, graph)
    _read_links(plain, graph)
    for child in plain:
        if _kind(child) in SCOPES and _has_flow_nodes(child):
            _read_subprocess(child, graph)

    starts = [child.get("id") for child in plain if _kind(child) == "startEvent"]
    if not starts and not is_process:
        # An ad hoc subprocess, or one drawn without a start event, begins at every node nothing flows into.
        starts = [child.get("id") for child in plain
                  if child.get("id") not in incoming and _kind(child) != "boundaryEvent"]
    entries = list(starts)
    for event_scope in event_scopes:
        entries.extend(_read_event_subprocess(event_scope, graph))
    if is_process:
        graph.roots.update(entries)
        graph.ends.update(child.get("id") for child in plain if _kind(child) == "endEvent")
    return entries


def _read_flows(scope: etree._Element, graph: _Graph) -> set[str]:
    """Add the sequence flows directly inside ``scope``; return the ids of the nodes they lead to."""
    targets = set()
    for flow in scope.findall(_bpmn("sequenceFlow")):
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        if source not in graph.nodes or target not in graph.nodes:
            continue
        if _kind(graph.nodes[source]) in SCOPES and _has_flow_nodes(graph.nodes[source]):
            source += _EXIT
        graph.edge(source, target)
        targets.add(target)
    return targets


def _read_boundary_events(children: list[etree._Element], graph: _Graph) -> None:
    for child in children:
        attached_to = child.get("attachedToRef")
        if _kind(child) == "boundaryEvent" and attached_to in graph.nodes:
            graph.edge(attached_to, child.get("id"))


def _read_links(children: list[etree._Element], graph: _Graph) -> None:
    catches: dict[str, list[str]] = {}
    for child in children:
        link = child.find(_bpmn("linkEventDefinition"))
        if link is not None and _kind(child) == "intermediateCatchEvent":
            catches.setdefault(link.get("name") or "", []).append(child.get("id"))
    for child in children:
        link = child.find(_bpmn("linkEventDefinition"))
        if link is not None and _kind(child) == "intermediateThrowEvent":
            for target in catches.get(link.get("name") or "", []):
                graph.edge(child.get("id"), target)


def _read_subprocess(subprocess: etree._Element, graph: _Graph) -> None:
    subprocess_id = subprocess.get("id")
    for entry in _read_scope(subprocess, graph, is_process=False):
        graph.edge(subprocess_id, entry)
    for child in subprocess:
        if _kind(child) == "endEvent" and child.get("id") in graph.nodes:
            graph.edge(child.get("id"), subprocess_id + _EXIT)


def _read_event_subprocess(event_scope: etree._Element, graph: _Graph) -> list[str]:
    """Add an event subprocess, which is entered whenever its parent scope is; return its id.

    Its end events count as ends, because an interrupting one ends its parent scope and a
    non-interrupting one ends only its own path.
    """
    event_scope_id = event_scope.get("id")
    graph.nodes[event_scope_id] = event_scope
    graph.ends.add(event_scope_id)
    for entry in _read_scope(event_scope, graph, is_process=False):
        graph.edge(event_scope_id, entry)
    for child in event_scope:
        if _kind(child) == "endEvent" and child.get("id") in graph.nodes:
            graph.ends.add(child.get("id"))
    return [event_scope_id]


def _has_flow_nodes(element: etree._Element) -> bool:
    return any(_kind(child) in FLOW_NODE_KINDS for child in element)
