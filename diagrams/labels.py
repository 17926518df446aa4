"""HTML-like labels and tooltips of shapes and flows, in the reader's language."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from diagrams.dot import HtmlLabel
from diagrams.markers import TASK_TAGS, activity_markers
from diagrams.model import Connection, Shape
from diagrams.style import (
    CONDITION_LIMIT,
    FLOW_LABEL_WIDTH,
    LABEL_WIDTH,
    MUTED,
    RISK_STYLES,
    SMALL_FONT_SIZE,
    highest_risk_level,
)
from diagrams.text import escape, html_lines, truncate, wrap
from engine.i18n import translate

# Points; room for one bold CJK character or Latin capital at the default font size.
_BADGE_WIDTH = 20
_BADGE_HEIGHT = 16
# Estimated line heights, in points, of Noto Sans CJK at the label and small font sizes.
_LINE_HEIGHT = 16
_SMALL_LINE_HEIGHT = 12
# Estimated height, in points, of one note row that an overlay adds below a caption.
_NOTE_HEIGHT = 16


def risk_badge_text(level: str, locale: str) -> str:
    """Return the one-character badge of a risk level: 高/中/低 in Chinese, H/M/L in English."""
    if level == "high":
        return translate(locale, "H")
    if level == "medium":
        return translate(locale, "M")
    return translate(locale, "L")


def risk_badge(level: str, locale: str) -> str:
    """Return the badge of ``level`` as a fixed-size table: white bold text on the level's colour.

    A table of fixed size keeps the badge small even when its cell is stretched by a wider row.
    """
    style = RISK_STYLES[level]
    return (f'<TABLE ALIGN="RIGHT" FIXEDSIZE="TRUE" WIDTH="{_BADGE_WIDTH}" HEIGHT="{_BADGE_HEIGHT}" BORDER="0" '
            f'CELLSPACING="0" CELLPADDING="0"><TR><TD FIXEDSIZE="TRUE" WIDTH="{_BADGE_WIDTH}" '
            f'HEIGHT="{_BADGE_HEIGHT}" BGCOLOR="{style.badge}"><FONT COLOR="#ffffff"><B>'
            f"{escape(risk_badge_text(level, locale))}</B></FONT></TD></TR></TABLE>")


def time_limit_text(time_limit: dict[str, Any], locale: str) -> str:
    amount = time_limit["amount"]
    if time_limit["unit"] == "working_day":
        return translate(locale, "Time limit: {amount} working days", amount=amount)
    if time_limit["unit"] == "month":
        return translate(locale, "Time limit: {amount} months", amount=amount)
    return translate(locale, "Time limit: {amount} days", amount=amount)


def _small(text: str, color: str = MUTED) -> str:
    return f'<FONT POINT-SIZE="{SMALL_FONT_SIZE}" COLOR="{color}">{escape(text)}</FONT>'


def activity_label(shape: Shape, locale: str, notes: Sequence[str] = ()) -> HtmlLabel:
    """Label a task or collapsed subprocess: type tag and risk badge, name, time limit, markers.

    ``notes`` are rows that an overlay adds at the bottom, each an HTML-like fragment already escaped.
    """
    level = highest_risk_level(shape.extensions.get("risk_checkpoints", []))
    tag = TASK_TAGS[shape.kind].render(locale) if shape.kind in TASK_TAGS else ""
    rows = []
    if tag or level:
        badge = f'<TD ALIGN="RIGHT">{risk_badge(level, locale)}</TD>' if level else "<TD></TD>"
        rows.append(f'<TR><TD ALIGN="LEFT">{_small(tag) if tag else ""}</TD>{badge}</TR>')
    name = shape.name or shape.element_id
    rows.append(f'<TR><TD COLSPAN="2">{html_lines(wrap(name, LABEL_WIDTH))}</TD></TR>')
    time_limit = shape.extensions.get("time_limit")
    if time_limit:
        rows.append(f'<TR><TD COLSPAN="2">{_small(time_limit_text(time_limit, locale))}</TD></TR>')
    markers = activity_markers(shape.loop, shape.collapsed, shape.is_compensation, shape.kind)
    if markers:
        rows.append(f'<TR><TD COLSPAN="2">{escape(markers)}</TD></TR>')
    rows.extend(f'<TR><TD COLSPAN="2">{note}</TD></TR>' for note in notes)
    return HtmlLabel('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
                     + "".join(rows) + "</TABLE>")


def symbol_label(shape: Shape, glyph: str, glyph_size: int, diameter: int, locale: str,
                 notes: Sequence[str] = ()) -> HtmlLabel | str:
    """Label an event or gateway: its marker in the symbol, and risk badge, name and time limit below it.

    The symbol is drawn at the centre of the label, so a blank row as tall as the caption goes above
    it. The caption then counts as part of the node, and Graphviz keeps it inside its lane and pool.
    """
    caption, caption_height = _caption(shape, locale, notes)
    marker = f'<FONT POINT-SIZE="{glyph_size}"><B>{escape(glyph)}</B></FONT>' if glyph else ""
    if not caption and not marker:
        # Graphviz rejects an empty HTML-like label as a syntax error.
        return ""
    rows = [f'<TR><TD FIXEDSIZE="TRUE" WIDTH="{diameter}" HEIGHT="{diameter}">{marker}</TD></TR>']
    if caption:
        rows.insert(0, f'<TR><TD HEIGHT="{caption_height}"></TD></TR>')
        rows.append(f"<TR><TD>{caption}</TD></TR>")
    return HtmlLabel('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">'
                     + "".join(rows) + "</TABLE>")


def _caption(shape: Shape, locale: str, notes: Sequence[str] = ()) -> tuple[str, int]:
    """Return the caption table of an event or gateway and its estimated height in points."""
    level = highest_risk_level(shape.extensions.get("risk_checkpoints", []))
    time_limit = shape.extensions.get("time_limit")
    if not (shape.name or level or time_limit or notes):
        return "", 0
    cells = []
    height = 0
    if level:
        cells.append(f"<TD>{risk_badge(level, locale)}</TD>")
        height = _BADGE_HEIGHT
    if shape.name:
        lines = wrap(shape.name, LABEL_WIDTH)
        cells.append(f"<TD>{html_lines(lines)}</TD>")
        height = max(height, len(lines) * _LINE_HEIGHT)
    rows = [f"<TR>{''.join(cells)}</TR>"] if cells else []
    if time_limit:
        rows.append(f'<TR><TD COLSPAN="{max(len(cells), 1)}">{_small(time_limit_text(time_limit, locale))}</TD></TR>')
        height += _SMALL_LINE_HEIGHT
    for note in notes:
        rows.append(f'<TR><TD COLSPAN="{max(len(cells), 1)}">{note}</TD></TR>')
        height += _NOTE_HEIGHT
    table = ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>")
    return table, height + 2 * len(rows)


def annotation_label(shape: Shape) -> HtmlLabel:
    return HtmlLabel(_small_block(shape.name or ""))


def _small_block(text: str) -> str:
    lines = wrap(truncate(text, LABEL_WIDTH * 6), LABEL_WIDTH)
    return f'<FONT POINT-SIZE="{SMALL_FONT_SIZE + 1}">{html_lines(lines)}</FONT>'


def flow_label(connection: Connection, locale: str) -> HtmlLabel | None:
    """Label a sequence flow with its name, or else its condition, and mark a default flow."""
    text = connection.name or (truncate(connection.condition, CONDITION_LIMIT) if connection.condition else "")
    lines = wrap(text, FLOW_LABEL_WIDTH) if text else []
    if connection.is_default:
        lines.append(translate(locale, "(default)"))
    if not lines:
        return None
    return HtmlLabel(f'<FONT POINT-SIZE="{SMALL_FONT_SIZE + 1}">{html_lines(lines)}</FONT>')


def shape_tooltip(shape: Shape, locale: str) -> str:
    """Describe a shape for SVG viewers: name and id, then one line per risk checkpoint."""
    lines = [f"{shape.name} ({shape.element_id})" if shape.name else shape.element_id]
    for checkpoint in shape.extensions.get("risk_checkpoints", []):
        badge = risk_badge_text(checkpoint["level"], locale)
        lines.append(f"[{badge}] {checkpoint['id']}: {checkpoint['description']}")
    return "\n".join(lines)
