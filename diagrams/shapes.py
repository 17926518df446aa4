"""Graphviz node attributes for each kind of shape: events, gateways, activities, annotations, pools."""

from __future__ import annotations

from collections.abc import Sequence

from diagrams.dot import Attributes, AttributeValue, HtmlLabel
from diagrams.labels import activity_label, annotation_label, shape_tooltip, symbol_label
from diagrams.markers import GATEWAY_GLYPHS, event_glyph
from diagrams.model import Shape
from diagrams.reader import EVENTS, GATEWAYS
from diagrams.style import ANNOTATION_COLOR, INK, LANE_FILL, RISK_STYLES, TASK_FILL, highest_risk_level
from diagrams.text import html_lines, wrap

_EVENT_SIZE = 0.42
_INTERMEDIATE_EVENT_SIZE = 0.36
_GATEWAY_SIZE = 0.55
_CALL_ACTIVITY_PENWIDTH = 3.0


def node_attributes(shape: Shape, locale: str, notes: Sequence[str] = ()) -> dict[str, AttributeValue]:
    """Return the Graphviz attributes that draw ``shape``, with an overlay's ``notes`` below its caption."""
    if shape.kind in EVENTS:
        attributes = _event(shape, locale, notes)
    elif shape.kind in GATEWAYS:
        # fixedsize="shape" sizes the diamond alone; the caption below it may be wider.
        attributes = {"shape": "diamond", "fixedsize": "shape", "width": _GATEWAY_SIZE, "height": _GATEWAY_SIZE,
                      "label": symbol_label(shape, GATEWAY_GLYPHS.get(shape.kind, ""), 16,
                                            int(_GATEWAY_SIZE * 72), locale, notes)}
    elif shape.kind == "textAnnotation":
        return {"shape": "note", "color": ANNOTATION_COLOR, "fontcolor": ANNOTATION_COLOR,
                "label": annotation_label(shape), "tooltip": shape.name or shape.element_id,
                "class": "bpmn-textAnnotation"}
    elif shape.kind == "participant":
        label = HtmlLabel(f"<B>{html_lines(wrap(shape.name or shape.element_id, 40))}</B>")
        return {"shape": "box", "style": "filled", "fillcolor": LANE_FILL, "width": 3, "label": label,
                "tooltip": shape_tooltip(shape, locale), "class": "bpmn-participant"}
    else:
        attributes = _activity(shape, locale, notes)

    attributes.update(_risk_colours(shape))
    attributes["tooltip"] = shape_tooltip(shape, locale)
    attributes["class"] = _css_class(shape)
    return attributes


def _event(shape: Shape, locale: str, notes: Sequence[str]) -> dict[str, AttributeValue]:
    glyph = event_glyph(shape.event_definitions, shape.throwing)
    styles = ["filled"] if shape.interrupting else ["filled", "dashed"]
    if shape.kind == "startEvent":
        attributes: dict[str, AttributeValue] = {"shape": "circle", "width": _EVENT_SIZE, "penwidth": 1.2}
    elif shape.kind == "endEvent":
        attributes = {"shape": "circle", "width": _EVENT_SIZE, "penwidth": 3.5}
    else:
        attributes = {"shape": "doublecircle", "width": _INTERMEDIATE_EVENT_SIZE, "penwidth": 1.2}
    size = float(attributes["width"])
    attributes.update({"fixedsize": "shape", "height": size, "style": ",".join(styles), "fillcolor": TASK_FILL,
                       "label": symbol_label(shape, glyph, 12, int(size * 72), locale, notes)})
    return attributes


def _activity(shape: Shape, locale: str, notes: Sequence[str]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "shape": "box", "style": "rounded,filled", "fillcolor": TASK_FILL, "penwidth": 1.2, "margin": "0.08,0.04",
        "label": activity_label(shape, locale, notes),
    }
    if shape.kind == "callActivity":
        attributes["penwidth"] = _CALL_ACTIVITY_PENWIDTH
    if shape.kind == "transaction":
        attributes["peripheries"] = 2
    return attributes


def _risk_colours(shape: Shape) -> Attributes:
    """Fill and border of a shape with risk checkpoints; events keep the border width of their kind."""
    level = highest_risk_level(shape.extensions.get("risk_checkpoints", []))
    if level is None:
        return {"color": INK}
    style = RISK_STYLES[level]
    colours: dict[str, AttributeValue] = {"fillcolor": style.fill, "color": style.border}
    if shape.kind not in EVENTS:
        penwidth = _CALL_ACTIVITY_PENWIDTH if shape.kind == "callActivity" else 0.0
        colours["penwidth"] = max(style.penwidth, penwidth)
    return colours


def _css_class(shape: Shape) -> str:
    """Return SVG classes naming the BPMN kind and the highest risk level, for styling and scripts."""
    classes = [f"bpmn-{shape.kind}"]
    level = highest_risk_level(shape.extensions.get("risk_checkpoints", []))
    if level:
        classes.append(f"risk-{level}")
    return " ".join(classes)
