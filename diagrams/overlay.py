"""Overlays: what a case did, or what all cases of a version did, drawn on top of the flowchart.

``build_dot`` takes an overlay's notes under each shape, lets it restyle shapes, flows and
subprocesses, and puts its heading and legend beside the flowchart's own. This module contains the
protocol, the colours and helpers both overlays share, and ``draw``, which lays the result out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from diagrams.dot import AttributeValue, HtmlLabel
from diagrams.graph import build_dot
from diagrams.model import Cluster, Connection, Diagram, Shape
from diagrams.output import run_dot
from diagrams.style import FONT_SIZE, SMALL_FONT_SIZE
from diagrams.text import escape
from engine.errors import InvalidInput
from engine.i18n import msg

# Local time of the public bodies liuhen serves; China has one time zone.
DEFAULT_TIMEZONE = "Asia/Shanghai"

# Taken flows and reached steps. Teal stays apart from the red, orange and blue of the risk levels,
# and taken flows are also drawn thicker, so the path still reads in grey print.
PATH_COLOR = "#00695c"
PATH_PENWIDTH = 3.0
# Administrative interventions and failed or overridden controls.
INTERVENTION_COLOR = "#6a1b9a"
# Colours of the steps and flows that the case, or every case of the version, never reached.
UNREACHED_BORDER = "#bdbdbd"
UNREACHED_FILL = "#f4f4f4"
UNREACHED_TEXT = "#9e9e9e"
NOTE_FONT_SIZE = SMALL_FONT_SIZE + 1


class Overlay(Protocol):
    """Adds notes, styles and a legend to a flowchart; every text it returns is in its own locale."""

    def heading(self) -> str:
        """Return an HTML-like table shown under the flowchart's title."""
        ...

    def legend(self) -> str:
        """Return an HTML-like table shown to the right of the flowchart's legend."""
        ...

    def notes(self, shape: Shape) -> list[str]:
        """Return the rows to add under the caption of ``shape``, as escaped HTML-like fragments."""
        ...

    def style_node(self, shape: Shape, attributes: dict[str, AttributeValue]) -> None: ...

    def style_edge(self, connection: Connection, attributes: dict[str, AttributeValue]) -> None: ...

    def style_cluster(self, cluster: Cluster, attributes: dict[str, AttributeValue]) -> None: ...


def draw(diagram: Diagram, fmt: str, locale: str, overlay: Overlay) -> bytes:
    """Lay out ``diagram`` with ``overlay`` and return it as ``fmt`` (svg, png or pdf)."""
    return run_dot(build_dot(diagram, locale, overlay=overlay), fmt)


def parse_timezone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name``, or raise InvalidInput naming the value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(msg("Time zone {value!r} is unknown; use an IANA name such as Asia/Shanghai or UTC.",
                               value=name)) from exc


def local_time(value: str, zone: ZoneInfo) -> datetime:
    """Convert an ISO 8601 time from the trace, which is in UTC, to ``zone``."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def short_time(value: str, zone: ZoneInfo) -> str:
    return local_time(value, zone).strftime("%m-%d %H:%M")


def full_time(value: str, zone: ZoneInfo) -> str:
    return local_time(value, zone).strftime("%Y-%m-%d %H:%M")


def circled(number: int) -> str:
    """Return ``number`` as a circled numeral (①…㊿) as Noto Sans CJK draws them, else in brackets."""
    if 1 <= number <= 20:
        return chr(0x2460 + number - 1)
    if 21 <= number <= 35:
        return chr(0x3251 + number - 21)
    if 36 <= number <= 50:
        return chr(0x32B1 + number - 36)
    return f"({number})"


def number(value: int, color: str) -> str:
    """Return the circled order number of a step, bold and at the label font size."""
    return f'<FONT POINT-SIZE="{FONT_SIZE}" COLOR="{color}"><B>{circled(value)}</B></FONT>'


def small(html: str, color: str | None = None) -> str:
    """Wrap an escaped fragment in the note font size, optionally coloured."""
    colour = f' COLOR="{color}"' if color else ""
    return f'<FONT POINT-SIZE="{NOTE_FONT_SIZE}"{colour}>{html}</FONT>'


def marker(text: str, color: str) -> str:
    """Return a bold marker such as 【干预】 to put before a note.

    Markers are text, not boxes, because Graphviz 2.43 stretches a nested table to the width of its
    cell and ignores the alignment of the cells inside, which would open a gap between box and note.
    """
    return f'<FONT POINT-SIZE="{NOTE_FONT_SIZE}" COLOR="{color}"><B>{escape(text)}</B></FONT>'


def add_class(attributes: dict[str, AttributeValue], *names: str) -> None:
    """Add SVG class names; Graphviz writes them after its own ``node``, ``edge`` or ``cluster``."""
    existing = str(attributes.get("class", "")).split()
    attributes["class"] = " ".join(existing + [name for name in names if name not in existing])


def append_tooltip(attributes: dict[str, AttributeValue], lines: list[str]) -> None:
    if lines:
        current = str(attributes.get("tooltip", ""))
        attributes["tooltip"] = "\n".join([current, *lines] if current else lines)


def append_edge_label(attributes: dict[str, AttributeValue], html: str) -> None:
    """Add a line under a flow's label, keeping its name or condition."""
    current = attributes.get("label")
    line = small(html)
    attributes["label"] = HtmlLabel(f"{current}<BR/>{line}" if isinstance(current, HtmlLabel) else line)


def grey_node(attributes: dict[str, AttributeValue]) -> None:
    """Draw a shape as not reached: grey border and text, pale fill. Risk badges keep their colour."""
    attributes.update({"color": UNREACHED_BORDER, "fontcolor": UNREACHED_TEXT, "fillcolor": UNREACHED_FILL})
    add_class(attributes, "unreached")


def grey_edge(attributes: dict[str, AttributeValue]) -> None:
    attributes.update({"color": UNREACHED_BORDER, "fontcolor": UNREACHED_TEXT})
    add_class(attributes, "untaken")


def grey_cluster(attributes: dict[str, AttributeValue]) -> None:
    attributes.update({"color": UNREACHED_BORDER, "fontcolor": UNREACHED_TEXT, "fillcolor": UNREACHED_FILL})
    add_class(attributes, "unreached")


def add_style(attributes: dict[str, AttributeValue], style: str) -> None:
    styles = [part for part in str(attributes.get("style", "")).split(",") if part]
    if style not in styles:
        attributes["style"] = ",".join([*styles, style])
