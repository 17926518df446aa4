"""Derive the flow graph that path finding walks (``engine.case_paths.FlowGraph``) from a drawn Diagram.

Building it from the Diagram, not from the engine's parsed definition, keeps the element ids of the
path and of the drawing the same by construction.
"""

from __future__ import annotations

from diagrams.model import Cluster, Diagram, Shape
from diagrams.reader import GATEWAYS
from engine.case_paths import EXIT_SUFFIX, Edge, FlowGraph

SUBPROCESS_CLUSTERS = ("subProcess", "transaction", "adHocSubProcess", "eventSubProcess")
# Tasks the engine hands to people; the trace records a case arriving at them with task_ready.
HUMAN_TASKS = {"userTask", "manualTask", "task"}
# Gateways the engine records with gateway_decision whatever the number of their outgoing flows.
DECISION_GATEWAYS = {"exclusiveGateway", "inclusiveGateway"}
JOINING_GATEWAYS = {"parallelGateway", "inclusiveGateway", "complexGateway"}


def flow_graph(diagram: Diagram) -> FlowGraph:
    """Return the sequence flows of ``diagram`` with the links a subprocess and a boundary event imply."""
    scope_of: dict[str, Cluster | None] = {}
    _assign_scopes(diagram.root, None, scope_of)
    subprocesses = {cluster_id: cluster for cluster_id, cluster in diagram.clusters.items()
                    if cluster.kind in SUBPROCESS_CLUSTERS}

    edges = []
    for connection in diagram.connections:
        if connection.kind != "sequenceFlow":
            continue
        # A flow out of an expanded subprocess leaves from its exit, which its end events lead to.
        source = connection.source + EXIT_SUFFIX if connection.source in subprocesses else connection.source
        edges.append(Edge(source, connection.target, connection.element_id))
    for cluster_id, cluster in subprocesses.items():
        if cluster.kind == "eventSubProcess":
            continue
        for shape_id, scope in scope_of.items():
            if scope is not cluster:
                continue
            if diagram.shapes[shape_id].kind == "startEvent":
                edges.append(Edge(cluster_id, shape_id))
            elif diagram.shapes[shape_id].kind == "endEvent":
                edges.append(Edge(shape_id, cluster_id + EXIT_SUFFIX))

    boundary_edges: dict[str, list[Edge]] = {}
    for shape in diagram.shapes.values():
        if shape.kind == "boundaryEvent" and shape.attached_to:
            boundary_edges.setdefault(shape.attached_to, []).append(Edge(shape.attached_to, shape.element_id))

    outgoing_count: dict[str, int] = {}
    incoming_count: dict[str, int] = {}
    for edge in edges:
        outgoing_count[edge.source] = outgoing_count.get(edge.source, 0) + 1
        incoming_count[edge.target] = incoming_count.get(edge.target, 0) + 1
    recorded = {shape_id for shape_id, shape in diagram.shapes.items()
                if _is_recorded(shape, outgoing_count.get(shape_id, 0))}
    joins = {shape_id for shape_id, shape in diagram.shapes.items()
             if shape.kind in JOINING_GATEWAYS and incoming_count.get(shape_id, 0) > 1}
    starts = {shape_id for shape_id, shape in diagram.shapes.items()
              if shape.kind == "startEvent" and scope_of.get(shape_id) is None}
    return FlowGraph(edges, recorded, starts, joins, boundary_edges)


def _is_recorded(shape: Shape, outgoing: int) -> bool:
    """Tell whether the trace records a case arriving at ``shape``; see engine.runtime for the events."""
    if shape.kind in HUMAN_TASKS or shape.kind == "endEvent" or shape.kind in DECISION_GATEWAYS:
        return True
    if shape.kind in GATEWAYS:
        return outgoing > 1
    return "timerEventDefinition" in shape.event_definitions


def _assign_scopes(cluster: Cluster, scope: Cluster | None, scope_of: dict[str, Cluster | None]) -> None:
    """Map every shape to the innermost expanded subprocess that contains it, or None at process level."""
    inner = cluster if cluster.kind in SUBPROCESS_CLUSTERS else scope
    for shape_id in cluster.shapes:
        scope_of[shape_id] = inner
    for child in cluster.clusters:
        _assign_scopes(child, inner, scope_of)
