"""Read the lanes of a process or subprocess as nested clusters."""

from __future__ import annotations

from lxml import etree

from diagrams.model import Cluster
from diagrams.xml import bpmn_tag


def read_lanes(container: etree._Element) -> tuple[list[Cluster], dict[str, Cluster]]:
    """Return the top-level lane clusters of ``container`` and the innermost lane of each flow node.

    A flow node that several lanes list stays in the first innermost lane that lists it. The lane
    clusters are returned empty: the caller puts each shape into the lane the map names.
    """
    lanes: list[Cluster] = []
    lane_of: dict[str, Cluster] = {}
    for lane_set in container.findall(bpmn_tag("laneSet")):
        lanes.extend(_read_lane_set(lane_set, lane_of))
    return lanes, lane_of


def _read_lane_set(lane_set: etree._Element, lane_of: dict[str, Cluster]) -> list[Cluster]:
    clusters = []
    for lane in lane_set.findall(bpmn_tag("lane")):
        lane_id = lane.get("id")
        if lane_id is None:
            continue
        cluster = Cluster(lane_id, "lane", lane.get("name"))
        clusters.append(cluster)

        # Child lanes first, so that a node listed by a lane and by its child lane ends up in the child.
        for child_set in lane.findall(bpmn_tag("childLaneSet")):
            cluster.clusters.extend(_read_lane_set(child_set, lane_of))
        for ref in lane.findall(bpmn_tag("flowNodeRef")):
            node_id = (ref.text or "").strip()
            if node_id:
                lane_of.setdefault(node_id, cluster)
    return clusters
