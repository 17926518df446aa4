"""Fonts, sizes and colours of the drawn diagram.

Every risk level is shown three ways so that it survives grey print and colour blindness: a fill
colour, a border width and a text badge (高/中/低, or H/M/L in English).
"""

from __future__ import annotations

from dataclasses import dataclass

# Noto Sans CJK SC comes from Debian's fonts-noto-cjk. Graphviz looks it up with fontconfig when writing
# PNG and PDF, and names it in SVG text elements for the viewer to find. fontconfig falls back to
# another installed font for glyphs it lacks, such as ✉ and ◷, which DejaVu Sans has.
FONT = "Noto Sans CJK SC"
FONT_SIZE = 11
SMALL_FONT_SIZE = 8
TITLE_FONT_SIZE = 16
# Display cells per label line: a CJK character takes two, a Latin letter one.
LABEL_WIDTH = 20
FLOW_LABEL_WIDTH = 24
# Maximum length of a condition shown on a flow, in display cells. The full text is in the flow's tooltip.
CONDITION_LIMIT = 48

INK = "#222222"
MUTED = "#555555"
TASK_FILL = "#ffffff"
POOL_COLOR = "#444444"
LANE_COLOR = "#888888"
LANE_FILL = "#f7f7f7"
SUBPROCESS_COLOR = "#444444"
ANNOTATION_COLOR = "#777777"


@dataclass(frozen=True)
class RiskStyle:
    """Drawing style of the nodes whose highest risk checkpoint has one level."""

    fill: str
    border: str
    penwidth: float
    # Background of the text badge; its text is white.
    badge: str


RISK_LEVELS = ("high", "medium", "low")
RISK_STYLES = {
    "high": RiskStyle(fill="#fbd5d5", border="#b00020", penwidth=3.0, badge="#b00020"),
    "medium": RiskStyle(fill="#fde7c2", border="#b35900", penwidth=2.0, badge="#b35900"),
    "low": RiskStyle(fill="#dbe9f7", border="#1f5f9f", penwidth=1.5, badge="#1f5f9f"),
}


def highest_risk_level(checkpoints: list[dict[str, object]]) -> str | None:
    """Return the highest ``level`` among ``checkpoints``, or None when there are none."""
    levels = {checkpoint.get("level") for checkpoint in checkpoints}
    return next((level for level in RISK_LEVELS if level in levels), None)
