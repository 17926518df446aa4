"""What a diagram shows of a BPMN file: shapes, connections and the clusters that group them.

The model is read from the BPMN XML alone (see ``diagrams.reader``) and has no Graphviz specifics.
Element ids are kept as the BPMN file writes them, so a drawn node can be traced back to its element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ClusterKind = Literal["diagram", "pool", "lane", "subProcess", "transaction", "adHocSubProcess", "eventSubProcess"]
ConnectionKind = Literal["sequenceFlow", "messageFlow", "association", "attachment"]


@dataclass
class Shape:
    """One BPMN element drawn as a node: a flow node, a black-box pool or a text annotation."""

    element_id: str
    kind: str
    name: str | None = None
    # Local names of the event definitions, such as "timerEventDefinition", in document order.
    event_definitions: tuple[str, ...] = ()
    # True for throw events: intermediateThrowEvent and endEvent.
    throwing: bool = False
    # False for a non-interrupting boundary event or event subprocess start event.
    interrupting: bool = True
    attached_to: str | None = None
    # "parallel", "sequential" or "standard" for multi-instance and loop activities.
    loop: str | None = None
    # A subprocess or call activity drawn as one node, with the "+" marker.
    collapsed: bool = False
    is_compensation: bool = False
    # Output of engine.extension.parse_node_extensions: risk_checkpoints, form_fields, time_limit.
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass
class Connection:
    """A sequence flow, message flow, association, or the tie between a boundary event and its activity."""

    element_id: str
    kind: ConnectionKind
    source: str
    target: str
    name: str | None = None
    condition: str | None = None
    is_default: bool = False


@dataclass
class Cluster:
    """A pool, lane or expanded subprocess: a labelled box around shapes and nested clusters."""

    element_id: str
    kind: ClusterKind
    name: str | None = None
    shapes: list[str] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    # liuhen extensions of an expanded subprocess, as on Shape; empty for pools and lanes.
    extensions: dict[str, Any] = field(default_factory=dict)

    def shape_ids(self) -> list[str]:
        """List the shapes in this cluster and in every cluster nested in it, depth first."""
        found = list(self.shapes)
        for child in self.clusters:
            found.extend(child.shape_ids())
        return found


@dataclass
class Diagram:
    """Everything to draw for one BPMN file, with the top-level shapes and clusters in ``root``."""

    title: str
    shapes: dict[str, Shape] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    root: Cluster = field(default_factory=lambda: Cluster("", "diagram"))
    # Cluster of every expanded subprocess and every pool with a process, by element id.
    clusters: dict[str, Cluster] = field(default_factory=dict)
