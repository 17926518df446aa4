"""Read the shapes, connections, pools, lanes and subprocesses of a BPMN file into a Diagram.

Reading is lenient: a file that liuhen would not deploy (script tasks, vendor expressions, no start
event) is still drawn. Only XML that is not well-formed or not BPMN is rejected. Diagram
interchange (DI) coordinates are ignored because Graphviz lays the diagram out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from lxml import etree

from diagrams.lanes import read_lanes
from diagrams.model import Cluster, ClusterKind, Connection, Diagram, Shape
from diagrams.xml import bpmn_tag, is_bpmn, local_name, parse_bpmn
from engine.errors import DefinitionError
from engine.extension import parse_node_extensions

logger = logging.getLogger(__name__)

EVENTS = {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
GATEWAYS = {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
TASKS = {"task", "userTask", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask",
         "businessRuleTask", "callActivity"}
SUBPROCESSES = {"subProcess", "transaction", "adHocSubProcess"}
FLOW_NODES = EVENTS | GATEWAYS | TASKS | SUBPROCESSES
_THROWING = {"endEvent", "intermediateThrowEvent"}
_SUBPROCESS_KINDS: dict[str, ClusterKind] = {kind: kind for kind in ("subProcess", "transaction", "adHocSubProcess")}


def read_diagram(content: bytes, filename: str) -> Diagram:
    """Parse ``content`` and return what to draw; raise DiagramInputError when it is not BPMN XML."""
    root = parse_bpmn(content, filename)
    return _Reader(filename).read(root)


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.diagram = Diagram(title=filename)
        self.default_flows: set[str] = set()
        self.boundary_events: list[etree._Element] = []
        # The cluster each shape or expanded subprocess was put in, to place boundary events beside it.
        self.holder: dict[str, Cluster] = {}

    def read(self, root: etree._Element) -> Diagram:
        processes = [p for p in root.findall(bpmn_tag("process")) if _has_flow_nodes(p)]
        participants = {p.get("processRef"): p for p in root.iter(bpmn_tag("participant")) if p.get("processRef")}
        pooled = bool(participants) or len(processes) > 1

        for process in processes:
            target = self.diagram.root
            if pooled:
                participant = participants.get(process.get("id"))
                pool_id = participant.get("id") if participant is not None else process.get("id")
                name = (participant.get("name") if participant is not None else None) or process.get("name")
                target = Cluster(pool_id, "pool", name)
                self.diagram.root.clusters.append(target)
                self.diagram.clusters[pool_id] = target
            self._read_container(process, target)

        self._read_black_box_pools(root, {p.get("id") for p in processes})
        self._place_boundary_events()
        self._read_sequence_flows(root)
        self._read_collaboration_flows(root)
        self.diagram.title = _title(root, processes) or self.filename
        return self.diagram

    def _read_container(self, container: etree._Element, cluster: Cluster) -> None:
        """Read the flow nodes and text annotations directly inside ``container`` into ``cluster``."""
        lanes, lane_of = read_lanes(container)
        cluster.clusters.extend(lanes)
        for element in _children(container):
            kind = local_name(element)
            element_id = element.get("id")
            if element_id is None:
                continue
            if element.get("default"):
                self.default_flows.add(element.get("default", ""))
            if kind == "boundaryEvent":
                self.boundary_events.append(element)
                continue
            holder = lane_of.get(element_id, cluster)

            if kind in SUBPROCESSES and _has_flow_nodes(element):
                sub_kind = "eventSubProcess" if element.get("triggeredByEvent") == "true" else _SUBPROCESS_KINDS[kind]
                sub = Cluster(element_id, sub_kind, element.get("name"), extensions=self._extensions(element))
                holder.clusters.append(sub)
                self.diagram.clusters[element_id] = sub
                self.holder[element_id] = holder
                self._read_container(element, sub)
            elif kind in FLOW_NODES or kind == "textAnnotation":
                self.diagram.shapes[element_id] = self._shape(element, kind)
                holder.shapes.append(element_id)
                self.holder[element_id] = holder

    def _shape(self, element: etree._Element, kind: str) -> Shape:
        definitions = tuple(local_name(child) for child in element
                            if is_bpmn(child) and local_name(child).endswith("EventDefinition"))
        if element.find(bpmn_tag("eventDefinitionRef")) is not None and not definitions:
            definitions = ("eventDefinitionRef",)
        interrupting = element.get("cancelActivity", "true") == "true" and \
            element.get("isInterrupting", "true") == "true"
        name = element.get("name")
        if kind == "textAnnotation":
            text = element.find(bpmn_tag("text"))
            name = (text.text or "").strip() if text is not None else ""
        return Shape(
            element_id=element.get("id", ""),
            kind=kind,
            name=name,
            event_definitions=definitions,
            throwing=kind in _THROWING,
            interrupting=interrupting,
            attached_to=element.get("attachedToRef"),
            loop=_loop(element),
            collapsed=kind in SUBPROCESSES or kind == "callActivity",
            is_compensation=element.get("isForCompensation") == "true",
            extensions=self._extensions(element) if kind != "textAnnotation" else {},
        )

    def _extensions(self, element: etree._Element) -> dict[str, Any]:
        try:
            return parse_node_extensions(element, self.filename)
        except DefinitionError as exc:
            # Drawing goes on without the broken extension; deploying the same file reports it in full.
            logger.warning("invalid liuhen extension left out of the diagram: %s", exc,
                           extra={"bpmn_file": self.filename, "element_id": element.get("id")})
            return {}

    def _place_boundary_events(self) -> None:
        for element in self.boundary_events:
            element_id = element.get("id", "")
            attached_to = element.get("attachedToRef", "")
            holder = self.holder.get(attached_to, self.diagram.root)
            self.diagram.shapes[element_id] = self._shape(element, "boundaryEvent")
            holder.shapes.append(element_id)
            self.holder[element_id] = holder
            if attached_to in self.diagram.shapes or attached_to in self.diagram.clusters:
                self.diagram.connections.append(Connection(element_id, "attachment", attached_to, element_id))

    def _read_black_box_pools(self, root: etree._Element, drawn_processes: set[str | None]) -> None:
        """Draw each participant without a drawn process as one shape that message flows can reach."""
        for participant in root.iter(bpmn_tag("participant")):
            element_id = participant.get("id")
            if element_id is None or participant.get("processRef") in drawn_processes:
                continue
            self.diagram.shapes[element_id] = Shape(element_id, "participant", participant.get("name"))
            self.diagram.root.shapes.append(element_id)

    def _read_sequence_flows(self, root: etree._Element) -> None:
        for flow in root.iter(bpmn_tag("sequenceFlow")):
            condition = flow.find(bpmn_tag("conditionExpression"))
            condition_text = (condition.text or "").strip() if condition is not None else ""
            self._connect(flow, "sequenceFlow", name=flow.get("name"), condition=condition_text or None,
                          is_default=flow.get("id") in self.default_flows)

    def _read_collaboration_flows(self, root: etree._Element) -> None:
        for flow in root.iter(bpmn_tag("messageFlow")):
            self._connect(flow, "messageFlow", name=flow.get("name"))
        for association in root.iter(bpmn_tag("association")):
            self._connect(association, "association")

    def _connect(self, element: etree._Element, kind: Any, **details: Any) -> None:
        source, target = element.get("sourceRef"), element.get("targetRef")
        drawn = self.diagram.shapes.keys() | self.diagram.clusters.keys()
        if source not in drawn or target not in drawn:
            # Data objects, data stores and groups are not drawn, so flows to them are left out too.
            return
        self.diagram.connections.append(Connection(element.get("id", ""), kind, source, target, **details))


def _children(container: etree._Element) -> Iterator[etree._Element]:
    return (child for child in container if is_bpmn(child))


def _has_flow_nodes(container: etree._Element) -> bool:
    return any(local_name(child) in FLOW_NODES for child in _children(container))


def _loop(element: etree._Element) -> str | None:
    multi = element.find(bpmn_tag("multiInstanceLoopCharacteristics"))
    if multi is not None:
        return "sequential" if multi.get("isSequential") == "true" else "parallel"
    if element.find(bpmn_tag("standardLoopCharacteristics")) is not None:
        return "standard"
    return None


def _title(root: etree._Element, processes: list[etree._Element]) -> str | None:
    """Name the diagram after its one process, or else after its collaboration; None leaves the file name."""
    if len(processes) == 1 and processes[0].get("name"):
        return processes[0].get("name")
    collaboration = root.find(bpmn_tag("collaboration"))
    if collaboration is not None and collaboration.get("name"):
        return collaboration.get("name")
    return None
