"""Graphviz edge attributes for sequence flows, message flows, associations and boundary attachments."""

from __future__ import annotations

from diagrams.dot import AttributeValue
from diagrams.labels import flow_label
from diagrams.model import Connection, Shape
from diagrams.reader import GATEWAYS
from diagrams.style import ANNOTATION_COLOR, MUTED


def edge_attributes(connection: Connection, source: Shape | None, locale: str) -> dict[str, AttributeValue]:
    """Return the attributes that draw ``connection``; ``source`` is None when it leaves a cluster."""
    if connection.kind == "messageFlow":
        # Message flows cross pools, so they must not pull the pools' ranks into line with each other.
        attributes: dict[str, AttributeValue] = {
            "style": "dashed", "color": MUTED, "dir": "both", "arrowtail": "odot", "arrowhead": "onormal",
            "constraint": False}
        if connection.name:
            attributes["xlabel"] = connection.name
        return attributes
    if connection.kind == "association":
        return {"style": "dotted", "color": ANNOTATION_COLOR, "arrowhead": "none"}
    if connection.kind == "attachment":
        return {"style": "dotted", "color": MUTED, "arrowhead": "none", "weight": 4}

    attributes = {}
    label = flow_label(connection, locale)
    if label is not None:
        attributes["label"] = label
    tooltip = connection.condition or connection.name
    if tooltip:
        attributes["tooltip"] = tooltip
    from_gateway = source is not None and source.kind in GATEWAYS
    if connection.is_default:
        # BPMN marks a default flow with a slash at its source. Graphviz has no slash arrow, so a bar marks it.
        attributes.update({"dir": "both", "arrowtail": "tee"})
    elif connection.condition and not from_gateway:
        attributes.update({"dir": "both", "arrowtail": "odiamond"})
    return attributes
