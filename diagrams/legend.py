"""The legend: what the risk colours, badges and borders mean, the time-limit note and the markers used."""

from __future__ import annotations

from diagrams.dot import HtmlLabel
from diagrams.labels import risk_badge
from diagrams.style import RISK_LEVELS, RISK_STYLES, SMALL_FONT_SIZE
from diagrams.text import escape
from engine.i18n import translate


def risk_level_name(level: str, locale: str) -> str:
    if level == "high":
        return translate(locale, "High risk")
    if level == "medium":
        return translate(locale, "Medium risk")
    return translate(locale, "Low risk")


def legend_label(locale: str, markers: list[tuple[str, str]]) -> HtmlLabel:
    """Build the legend table; ``markers`` lists (glyph, meaning) of the markers the diagram shows."""
    rows = [f'<TR><TD COLSPAN="3"><B>{escape(translate(locale, "Legend"))}</B></TD></TR>',
            f'<TR><TD COLSPAN="3" ALIGN="LEFT">{escape(translate(locale, "Risk level"))}</TD></TR>']
    for level in RISK_LEVELS:
        style = RISK_STYLES[level]
        # A swatch in the fill colour with the border width of the level, beside the badge.
        swatch = (f'<TD WIDTH="28" HEIGHT="14" BGCOLOR="{style.fill}" BORDER="{max(int(style.penwidth), 1)}" '
                  f'COLOR="{style.border}"> </TD>')
        rows.append(f"<TR><TD>{risk_badge(level, locale)}</TD>{swatch}"
                    f'<TD ALIGN="LEFT">{escape(risk_level_name(level, locale))}</TD></TR>')
    example = translate(locale, "Time limit: {amount} working days", amount="N")
    rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT POINT-SIZE="{SMALL_FONT_SIZE}">{escape(example)}</FONT></TD>'
                f'<TD ALIGN="LEFT">{escape(translate(locale, "time limit of the step"))}</TD></TR>')
    for glyph, meaning in markers:
        rows.append(f'<TR><TD COLSPAN="2"><B>{escape(glyph)}</B></TD><TD ALIGN="LEFT">{escape(meaning)}</TD></TR>')
    return HtmlLabel('<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3" COLOR="#888888" '
                     'BGCOLOR="#ffffff">' + "".join(rows) + "</TABLE>")
