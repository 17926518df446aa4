"""The changes between two versions of a process, drawn on the newer version's flowchart.

Added steps and flows are filled or drawn green, changed ones yellow, and removed ones, taken over
from the older version's drawing, grey and dashed. Each changed step also carries a text marker
(【新增】, 【修改】, 【删除】 in Chinese) so that the diff reads in grey print. The risk level keeps the
border and badge it has on the plain flowchart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from diagrams.dot import AttributeValue
from diagrams.model import Cluster, Connection, Diagram, Shape
from diagrams.overlay import add_class, add_style, append_tooltip, marker, small
from diagrams.text import escape
from engine.i18n import Message, msg, translate

ADDED_COLOR = "#2e7d32"
ADDED_FILL = "#dff0d8"
CHANGED_COLOR = "#8a6d00"
CHANGED_FILL = "#fff2b3"
REMOVED_COLOR = "#757575"
REMOVED_FILL = "#eeeeee"

STATUS_MARKERS: dict[str, Message] = {"added": msg("[added]"), "changed": msg("[changed]"),
                                      "removed": msg("[removed]")}
SECTION_LABELS: dict[str, Message] = {
    "nodes": msg("step"), "flows": msg("flow"), "lanes": msg("lane"), "checkpoints": msg("risk checkpoint"),
    "controls": msg("control"), "form_fields": msg("form field"), "time_limits": msg("time limit"),
}
# Notes listed under one shape; the tooltip lists them all.
MAX_NOTES = 4


@dataclass(frozen=True)
class DiffItem:
    """One change as the overlay shows it: its section, kind, key and the names of the values that differ."""

    section: str
    kind: str
    key: str
    fields: tuple[str, ...] = ()


@dataclass
class DiffStatus:
    """Changes by flow node and flow id: ``elements`` maps each id to its status, ``items`` to its changes."""

    old_version: int
    new_version: int
    elements: dict[str, str] = field(default_factory=dict)
    items: dict[str, list[DiffItem]] = field(default_factory=dict)
    # Changes that belong to no flow node, such as a lane or the process's statutory time limit.
    other: list[DiffItem] = field(default_factory=list)


def merge_removed(new: Diagram, old: Diagram, removed: set[str]) -> Diagram:
    """Add the shapes in ``removed`` and the flows between drawn shapes from ``old`` to ``new``.

    A removed shape goes into the cluster (lane, pool or subprocess) of the same id it had in the old
    drawing when the new one still has it, and into the top level otherwise.
    """
    clusters = _clusters_by_id(new.root)
    old_holders = _holders(old.root)
    for shape_id in removed:
        shape = old.shapes.get(shape_id)
        if shape is None or shape_id in new.shapes:
            continue
        new.shapes[shape_id] = shape
        holder = old_holders.get(shape_id)
        target = clusters.get(holder.element_id) if holder is not None else None
        (target or new.root).shapes.append(shape_id)

    drawn = new.shapes.keys() | new.clusters.keys()
    present = {connection.element_id for connection in new.connections if connection.kind == "sequenceFlow"}
    for connection in old.connections:
        if connection.kind not in ("sequenceFlow", "attachment") or connection.element_id in present:
            continue
        if connection.kind == "attachment" and connection.target not in removed:
            continue
        if connection.source in drawn and connection.target in drawn:
            new.connections.append(connection)
    return new


def _clusters_by_id(cluster: Cluster) -> dict[str, Cluster]:
    found = {cluster.element_id: cluster}
    for child in cluster.clusters:
        found.update(_clusters_by_id(child))
    return found


def _holders(cluster: Cluster) -> dict[str, Cluster]:
    """Map each shape id to the innermost cluster that contains it."""
    holders = dict.fromkeys(cluster.shapes, cluster)
    for child in cluster.clusters:
        holders.update(_holders(child))
    return holders


class DiffOverlay:
    """Colour the steps and flows of a flowchart by how they changed from one version to the next."""

    def __init__(self, status: DiffStatus, locale: str) -> None:
        self.status = status
        self.locale = locale

    def _item_text(self, item: DiffItem) -> str:
        section = SECTION_LABELS[item.section].render(self.locale)
        kind = STATUS_MARKERS[item.kind].render(self.locale)
        details = f": {', '.join(item.fields)}" if item.fields else ""
        return f"{kind} {section} {item.key}{details}"

    def _colours(self, element_id: str) -> tuple[str, str] | None:
        kind = self.status.elements.get(element_id)
        if kind == "added":
            return ADDED_COLOR, ADDED_FILL
        if kind == "changed":
            return CHANGED_COLOR, CHANGED_FILL
        if kind == "removed":
            return REMOVED_COLOR, REMOVED_FILL
        return None

    # Overlay

    def notes(self, shape: Shape) -> list[str]:
        kind = self.status.elements.get(shape.element_id)
        colours = self._colours(shape.element_id)
        if kind is None or colours is None:
            return []
        notes = [marker(STATUS_MARKERS[kind].render(self.locale), colours[0])]
        if kind == "changed":
            items = [item for item in self.status.items.get(shape.element_id, []) if item.section != "nodes"
                     or item.fields]
            notes.extend(small(escape(self._item_text(item)), colours[0]) for item in items[:MAX_NOTES])
            if len(items) > MAX_NOTES:
                notes.append(small(escape(translate(self.locale, "… and {count} more; see the tooltip",
                                                    count=len(items) - MAX_NOTES))))
        return notes

    def style_node(self, shape: Shape, attributes: dict[str, AttributeValue]) -> None:
        kind = self.status.elements.get(shape.element_id)
        colours = self._colours(shape.element_id)
        if kind is None or colours is None:
            add_class(attributes, "diff-unchanged")
            return
        add_class(attributes, f"diff-{kind}")
        attributes["fillcolor"] = colours[1]
        add_style(attributes, "filled")
        if kind == "removed":
            attributes.update({"color": REMOVED_COLOR, "fontcolor": REMOVED_COLOR})
            add_style(attributes, "dashed")
        elif kind == "added" and not shape.extensions.get("risk_checkpoints"):
            attributes["color"] = ADDED_COLOR
        append_tooltip(attributes, [self._item_text(item) for item in self.status.items.get(shape.element_id, [])])

    def style_edge(self, connection: Connection, attributes: dict[str, AttributeValue]) -> None:
        if connection.kind == "attachment":
            if self.status.elements.get(connection.target) == "removed":
                attributes.update({"color": REMOVED_COLOR, "style": "dashed"})
            return
        if connection.kind != "sequenceFlow":
            return
        kind = self.status.elements.get(connection.element_id)
        colours = self._colours(connection.element_id)
        if kind is None or colours is None:
            return
        add_class(attributes, f"diff-{kind}")
        attributes.update({"color": colours[0], "fontcolor": colours[0], "penwidth": 2.5})
        if kind == "removed":
            add_style(attributes, "dashed")
            attributes["penwidth"] = 1.5
        append_tooltip(attributes, [self._item_text(item) for item in self.status.items.get(connection.element_id,
                                                                                             [])])

    def style_cluster(self, cluster: Cluster, attributes: dict[str, AttributeValue]) -> None:
        kind = self.status.elements.get(cluster.element_id)
        colours = self._colours(cluster.element_id)
        if kind is None or colours is None:
            return
        add_class(attributes, f"diff-{kind}")
        attributes["fillcolor"] = colours[1]
        append_tooltip(attributes, [self._item_text(item) for item in self.status.items.get(cluster.element_id,
                                                                                             [])])

    def heading(self) -> str:
        counts = _count(self.status.elements)
        title = translate(self.locale, "Changes from version {old} to version {new}", old=self.status.old_version,
                          new=self.status.new_version)
        totals = translate(self.locale, "Steps and flows: {added} added, {changed} changed, {removed} removed",
                           **counts)
        lines = [f"<B>{escape(title)}</B>", escape(totals)]
        lines.extend(small(escape(self._item_text(item))) for item in self.status.other)
        rows = "".join(f'<TR><TD ALIGN="LEFT">{line}</TD></TR>' for line in lines)
        return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>'

    def legend(self) -> str:
        title = escape(translate(self.locale, "Changes"))
        rows = [f'<TR><TD COLSPAN="3" ALIGN="LEFT"><B>{title}</B></TD></TR>']
        samples = (
            ("added", ADDED_COLOR, ADDED_FILL, "solid", translate(self.locale, "added in the newer version")),
            ("changed", CHANGED_COLOR, CHANGED_FILL, "solid",
             translate(self.locale, "changed: the step, its checkpoints, controls, form or time limit")),
            ("removed", REMOVED_COLOR, REMOVED_FILL, "dashed", translate(self.locale, "removed in the newer version")),
        )
        for kind, colour, fill, style, meaning in samples:
            rows.append(f'<TR><TD>{marker(STATUS_MARKERS[kind].render(self.locale), colour)}</TD>'
                        f'<TD WIDTH="28" BGCOLOR="{fill}" BORDER="1" STYLE="{style}" COLOR="{colour}"> </TD>'
                        f'<TD ALIGN="LEFT">{escape(meaning)}</TD></TR>')
        return ('<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3" COLOR="#888888" BGCOLOR="#ffffff">'
                + "".join(rows) + "</TABLE>")


def _count(elements: Mapping[str, str]) -> dict[str, int]:
    counts = {"added": 0, "changed": 0, "removed": 0}
    for kind in elements.values():
        counts[kind] += 1
    return counts
