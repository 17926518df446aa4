"""Turn a Diagram into Graphviz DOT source: clusters for pools, lanes and subprocesses, then the edges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diagrams.connections import edge_attributes
from diagrams.dot import AttributeValue, DotWriter, HtmlLabel
from diagrams.labels import risk_badge, time_limit_text
from diagrams.legend import legend_label
from diagrams.markers import EVENT_GLYPHS, GATEWAY_GLYPHS, MARKER_MEANINGS, event_glyph
from diagrams.model import Cluster, Diagram
from diagrams.shapes import node_attributes
from diagrams.style import (
    FONT,
    FONT_SIZE,
    INK,
    LABEL_WIDTH,
    LANE_COLOR,
    LANE_FILL,
    POOL_COLOR,
    RISK_STYLES,
    SMALL_FONT_SIZE,
    SUBPROCESS_COLOR,
    TASK_FILL,
    TITLE_FONT_SIZE,
    highest_risk_level,
)
from diagrams.text import escape, html_lines, wrap
from engine.i18n import translate

if TYPE_CHECKING:
    from diagrams.overlay import Overlay

# Prefix Graphviz requires for a subgraph to be drawn as a box; the rest of the name is the element id.
CLUSTER_PREFIX = "cluster_"


def build_dot(diagram: Diagram, locale: str, *, legend: bool = True, overlay: Overlay | None = None) -> str:
    """Return the DOT source that draws ``diagram`` left to right, with text in ``locale``.

    An ``overlay`` adds notes to shapes, restyles shapes, flows and subprocesses, and adds a heading
    and a legend of its own, to draw a case's path or a version's statistics on the flowchart.
    """
    writer = DotWriter()
    writer.defaults("graph", {
        "rankdir": "LR", "compound": True, "newrank": True, "forcelabels": True,
        "fontname": FONT, "fontsize": FONT_SIZE, "fontcolor": INK,
        "nodesep": 0.3, "ranksep": 0.45, "pad": 0.2, "bgcolor": "white",
        "labelloc": "t", "labeljust": "l", "label": _graph_label(diagram, locale, legend, overlay),
    })
    writer.defaults("node", {"fontname": FONT, "fontsize": FONT_SIZE, "fontcolor": INK, "color": INK})
    writer.defaults("edge", {"fontname": FONT, "fontsize": SMALL_FONT_SIZE + 1, "fontcolor": INK, "color": INK,
                             "arrowsize": 0.7})

    lane_sets: list[list[Cluster]] = []
    _write_cluster_body(writer, diagram, diagram.root, locale, overlay, lane_sets)
    _write_lane_bands(writer, lane_sets)
    for connection in diagram.connections:
        tail, tail_cluster = _endpoint(diagram, connection.source, entering=False)
        head, head_cluster = _endpoint(diagram, connection.target, entering=True)
        if tail is None or head is None:
            continue
        attributes = edge_attributes(connection, diagram.shapes.get(connection.source), locale)
        if connection.kind != "attachment":
            attributes["id"] = connection.element_id
        if tail_cluster:
            attributes["ltail"] = tail_cluster
        if head_cluster:
            attributes["lhead"] = head_cluster
        if overlay is not None:
            overlay.style_edge(connection, attributes)
        writer.edge(tail, head, attributes)
    return writer.source()


def _write_cluster_body(writer: DotWriter, diagram: Diagram, cluster: Cluster, locale: str,
                        overlay: Overlay | None, lane_sets: list[list[Cluster]]) -> None:
    lanes = [child for child in cluster.clusters if child.kind == "lane" and child.shape_ids()]
    banded = len(lanes) > 1
    if banded:
        lane_sets.append(lanes)
    for child in cluster.clusters:
        if not child.shape_ids():
            continue
        writer.begin_subgraph(CLUSTER_PREFIX + child.element_id)
        attributes = {**_cluster_attributes(child, locale), "id": child.element_id}
        if overlay is not None:
            overlay.style_cluster(child, attributes)
        writer.defaults("graph", attributes)
        if banded and child in lanes:
            writer.node(_lane_anchor(child, "head"), _ANCHOR)
            writer.node(_lane_anchor(child, "tail"), _ANCHOR)
        _write_cluster_body(writer, diagram, child, locale, overlay, lane_sets)
        writer.end_subgraph()

    for shape_id in cluster.shapes:
        shape = diagram.shapes[shape_id]
        if overlay is None:
            writer.node(shape_id, {**node_attributes(shape, locale), "id": shape_id})
            continue
        attributes = {**node_attributes(shape, locale, overlay.notes(shape)), "id": shape_id}
        overlay.style_node(shape, attributes)
        writer.node(shape_id, attributes)

    # A boundary event shares the rank of its activity, so Graphviz draws it right beside the activity.
    for shape_id in cluster.shapes:
        attached_to = diagram.shapes[shape_id].attached_to
        if attached_to in cluster.shapes:
            writer.begin_subgraph()
            writer.defaults("graph", {"rank": "same"})
            writer.node(attached_to, {})
            writer.node(shape_id, {})
            writer.end_subgraph()


# An invisible point at either end of a lane; the anchors stretch every lane of a pool to one width.
_ANCHOR: dict[str, AttributeValue] = {"shape": "point", "style": "invis", "width": 0, "height": 0, "label": ""}
_INVISIBLE: dict[str, AttributeValue] = {"style": "invis", "weight": 0, "arrowhead": "none"}


def _lane_anchor(lane: Cluster, end: str) -> str:
    return f"__lane_{end}_{lane.element_id}"


def _write_lane_bands(writer: DotWriter, lane_sets: list[list[Cluster]]) -> None:
    """Draw the lanes of each pool as horizontal bands of one width, in their BPMN order.

    Each lane has a head anchor before all its shapes and a tail anchor after them; the heads of a pool
    share one rank, as do the tails, so every lane spans from the pool's first column to its last.
    """
    for lanes in lane_sets:
        for end in ("head", "tail"):
            writer.begin_subgraph()
            writer.defaults("graph", {"rank": "same"})
            for lane in lanes:
                writer.node(_lane_anchor(lane, end), {})
            writer.end_subgraph()
        for lane in lanes:
            for shape_id in lane.shape_ids():
                writer.edge(_lane_anchor(lane, "head"), shape_id, _INVISIBLE)
                writer.edge(shape_id, _lane_anchor(lane, "tail"), _INVISIBLE)
        for upper, lower in zip(lanes, lanes[1:], strict=False):
            writer.edge(_lane_anchor(upper, "head"), _lane_anchor(lower, "head"), _INVISIBLE)


def _cluster_attributes(cluster: Cluster, locale: str) -> dict[str, AttributeValue]:
    name = cluster.name or cluster.element_id
    if cluster.kind == "pool":
        return {"label": HtmlLabel(f"<B>{escape(name)}</B>"), "labeljust": "l", "labelloc": "t", "style": "solid",
                "color": POOL_COLOR, "penwidth": 1.5, "fontsize": FONT_SIZE + 1, "margin": 10}
    if cluster.kind == "lane":
        return {"label": cluster.name or "", "labeljust": "l", "labelloc": "t", "style": "filled",
                "fillcolor": LANE_FILL, "color": LANE_COLOR, "penwidth": 1, "margin": 10}

    attributes: dict[str, AttributeValue] = {
        "label": _subprocess_label(cluster, locale), "labeljust": "l", "labelloc": "t",
        "style": "rounded,filled", "fillcolor": TASK_FILL, "color": SUBPROCESS_COLOR, "penwidth": 1.2, "margin": 8,
    }
    if cluster.kind == "eventSubProcess":
        attributes["style"] = "rounded,filled,dotted"
    elif cluster.kind == "transaction":
        attributes["penwidth"] = 2.5
    level = highest_risk_level(cluster.extensions.get("risk_checkpoints", []))
    if level:
        style = RISK_STYLES[level]
        attributes.update({"fillcolor": style.fill, "color": style.border, "penwidth": style.penwidth})
    return attributes


def _subprocess_label(cluster: Cluster, locale: str) -> HtmlLabel:
    """Label an expanded subprocess like a task: risk badge, name and time limit."""
    cells = []
    level = highest_risk_level(cluster.extensions.get("risk_checkpoints", []))
    if level:
        cells.append(f"<TD>{risk_badge(level, locale)}</TD>")
    name = (cluster.name or cluster.element_id) + (" ~" if cluster.kind == "adHocSubProcess" else "")
    cells.append(f"<TD>{html_lines(wrap(name, LABEL_WIDTH * 2))}</TD>")
    time_limit = cluster.extensions.get("time_limit")
    if time_limit:
        text = escape(time_limit_text(time_limit, locale))
        cells.append(f'<TD><FONT POINT-SIZE="{SMALL_FONT_SIZE}">{text}</FONT></TD>')
    return HtmlLabel('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"><TR>'
                     + "".join(cells) + "</TR></TABLE>")


def _endpoint(diagram: Diagram, element_id: str, *, entering: bool) -> tuple[str | None, str | None]:
    """Return the node an edge attaches to and, for a pool or subprocess, the cluster it is clipped at.

    Graphviz draws edges only between nodes, so an edge to a cluster goes to a node inside it (a start
    event when entering, an end event when leaving) and is cut at the cluster's border.
    """
    if element_id in diagram.shapes:
        return element_id, None
    cluster = diagram.clusters.get(element_id)
    inside = cluster.shape_ids() if cluster is not None else []
    if cluster is None or not inside:
        return None, None
    wanted = "startEvent" if entering else "endEvent"
    matching = [shape_id for shape_id in inside if diagram.shapes[shape_id].kind == wanted]
    if matching:
        anchor = matching[0]
    elif entering:
        anchor = inside[0]
    else:
        anchor = inside[-1]
    return anchor, CLUSTER_PREFIX + element_id


def _graph_label(diagram: Diagram, locale: str, legend: bool, overlay: Overlay | None = None) -> HtmlLabel:
    """Put the title and, below it, the legend above the diagram, outside the layout.

    An overlay's heading goes under the title, and its legend to the right of the flowchart's legend.
    """
    rows = [f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="{TITLE_FONT_SIZE}"><B>'
            f"{html_lines(wrap(diagram.title, LABEL_WIDTH * 4))}</B></FONT></TD></TR>"]
    if overlay is not None:
        rows.append(f'<TR><TD ALIGN="LEFT">{overlay.heading()}</TD></TR>')
    if legend and overlay is not None:
        rows.append('<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>'
                    f'<TD ALIGN="LEFT" VALIGN="TOP">{legend_label(locale, _markers_used(diagram, locale))}</TD>'
                    f'<TD ALIGN="LEFT" VALIGN="TOP">{overlay.legend()}</TD></TR></TABLE></TD></TR>')
    elif legend:
        rows.append(f'<TR><TD ALIGN="LEFT">{legend_label(locale, _markers_used(diagram, locale))}</TD></TR>')
    return HtmlLabel('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="4">' + "".join(rows) + "</TABLE>")


def _markers_used(diagram: Diagram, locale: str) -> list[tuple[str, str]]:
    """List (glyph, meaning) for each event trigger and gateway type the diagram shows, once each."""
    found: dict[str, str] = {}
    for shape in diagram.shapes.values():
        if shape.kind in GATEWAY_GLYPHS:
            found.setdefault(GATEWAY_GLYPHS[shape.kind], MARKER_MEANINGS[shape.kind].render(locale))
            continue
        if not shape.event_definitions:
            continue
        glyph = event_glyph(shape.event_definitions, shape.throwing)
        known = len(shape.event_definitions) == 1 and shape.event_definitions[0] in EVENT_GLYPHS
        meaning = MARKER_MEANINGS[shape.event_definitions[0] if known else "multiple"].render(locale)
        if shape.throwing and glyph != event_glyph(shape.event_definitions, False):
            meaning = translate(locale, "{marker}, thrown", marker=meaning)
        found.setdefault(glyph, meaning)
    return sorted(found.items(), key=lambda item: item[1])
