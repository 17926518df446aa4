"""The heat map of a process version: how often each step and flow was taken, time per step, risk events.

Each reached step is filled by one of five levels of a light-to-dark purple scale. One measure
chooses the level: times reached, average time or risk events. The step also carries the level's
number as a circled digit (❶ to ❺), so the scale reads in grey print too. Purple stays apart from the risk colours,
which keep the border and badge they have on the plain flowchart. Flows get thicker the more often
cases took them.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from diagrams.dot import AttributeValue
from diagrams.flow_graph import SUBPROCESS_CLUSTERS
from diagrams.model import Cluster, Connection, Diagram, Shape
from diagrams.overlay import (
    INTERVENTION_COLOR,
    UNREACHED_BORDER,
    UNREACHED_FILL,
    add_class,
    append_edge_label,
    append_tooltip,
    grey_cluster,
    grey_edge,
    grey_node,
    small,
)
from diagrams.reader import FLOW_NODES
from diagrams.risk_events import risk_event_label
from diagrams.style import FONT_SIZE, INK
from diagrams.text import escape
from engine.i18n import dynamic, translate
from engine.path_statistics import StepStatistics, VersionStatistics

HeatMeasure = Literal["visits", "time", "risk"]
MEASURES: tuple[str, ...] = get_args(HeatMeasure)

# Fill of levels 1 to 5, light to dark. Each is lighter than the one after it in grey print too, and
# the darkest keeps a contrast ratio above 4.5 with the label text (#222222).
SCALE = ("#f3effa", "#e0d7f0", "#cbbde5", "#b49fd8", "#9b7fcb")
# Width of the most often taken flow, in points; the others scale down to MIN_FLOW_PENWIDTH.
MAX_FLOW_PENWIDTH = 7.0
MIN_FLOW_PENWIDTH = 1.2


def format_duration(seconds: float, locale: str) -> str:
    """Write a duration in the largest unit that fits: seconds, minutes, hours or calendar days."""
    if seconds < 60:
        return translate(locale, "{value} s", value=round(seconds))
    if seconds < 3600:
        return translate(locale, "{value} min", value=round(seconds / 60))
    if seconds < 86400:
        return translate(locale, "{value} h", value=f"{seconds / 3600:.1f}")
    return translate(locale, "{value} d", value=f"{seconds / 86400:.1f}")


def level_of(value: float, maximum: float) -> int:
    """Return the scale level 1–5 of ``value``, or 0 when it is not positive.

    Level k contains the values above (k-1)/5 of ``maximum`` and up to k/5 of it.
    """
    if value <= 0 or maximum <= 0:
        return 0
    if isinstance(value, int) and isinstance(maximum, int):
        return min(len(SCALE), -(-len(SCALE) * value // maximum))
    return min(len(SCALE), max(1, math.ceil(len(SCALE) * value / maximum - 1e-9)))


class HeatmapOverlay:
    """Draw ``statistics`` of one version on its flowchart, with nodes filled by ``measure``."""

    def __init__(self, diagram: Diagram, statistics: VersionStatistics, version: int, measure: str,
                 locale: str) -> None:
        if measure not in MEASURES:
            raise ValueError(f"unknown heat measure {measure!r}; use one of {', '.join(MEASURES)}")
        self.statistics = statistics
        self.version = version
        self.measure = measure
        self.locale = locale
        drawn = [shape_id for shape_id, shape in diagram.shapes.items() if shape.kind in FLOW_NODES]
        self.maximum = max((self._value(statistics.step(shape_id)) or 0 for shape_id in drawn), default=0)
        flow_ids = [c.element_id for c in diagram.connections if c.kind == "sequenceFlow"]
        self.max_flow = max((statistics.flows.get(flow_id, 0) for flow_id in flow_ids), default=0)

    def _value(self, step: StepStatistics) -> float | int | None:
        if self.measure == "time":
            return step.mean_seconds
        if self.measure == "risk":
            return step.risk_event_count
        return step.visits

    def _level(self, step: StepStatistics) -> int:
        value = self._value(step)
        return level_of(value, self.maximum) if value is not None else 0

    def _level_marker(self, level: int) -> str:
        """Return the level as a negative circled digit (❶ to ❺), which reads in grey print."""
        return f'<FONT POINT-SIZE="{FONT_SIZE}" COLOR="{INK}">{chr(0x2776 + level - 1)}</FONT>'

    # Overlay

    def notes(self, shape: Shape) -> list[str]:
        if shape.kind not in FLOW_NODES:
            return []
        step = self.statistics.step(shape.element_id)
        level = self._level(step)
        lines: dict[str, str] = {"visits": escape(translate(self.locale, "{count}×", count=step.visits))}
        if step.mean_seconds is not None:
            duration = format_duration(step.mean_seconds, self.locale)
            lines["time"] = escape(translate(self.locale, "avg {duration}", duration=duration))
        if step.risk_event_count:
            risk = translate(self.locale, "risk events: {count}", count=step.risk_event_count)
            lines["risk"] = f"<B>{escape(risk)}</B>"

        notes = []
        for measure, text in lines.items():
            colour = INTERVENTION_COLOR if measure == "risk" else None
            if measure == self.measure and level:
                notes.append(f"{self._level_marker(level)} {small(text, colour)}")
            else:
                notes.append(small(text, colour))
        return notes

    def style_node(self, shape: Shape, attributes: dict[str, AttributeValue]) -> None:
        if shape.kind not in FLOW_NODES:
            return
        step = self.statistics.step(shape.element_id)
        if not step.visits:
            grey_node(attributes)
            add_class(attributes, "heat-0")
            return
        level = self._level(step)
        add_class(attributes, "visited", f"heat-{level}")
        if level:
            attributes["fillcolor"] = SCALE[level - 1]
        if step.risk_event_count:
            add_class(attributes, "risk-events")
        append_tooltip(attributes, self._tooltip(step))

    def _tooltip(self, step: StepStatistics) -> list[str]:
        lines = [translate(self.locale, "Times reached: {count}; cases: {cases}", count=step.visits,
                           cases=step.cases)]
        if step.mean_seconds is not None and step.median_seconds is not None:
            lines.append(translate(self.locale, "Time from ready to completed: average {mean}, median {median}; "
                                                "completions: {count}",
                                   mean=format_duration(step.mean_seconds, self.locale),
                                   median=format_duration(step.median_seconds, self.locale),
                                   count=len(step.durations)))
        for kind, count in sorted(step.risk_events.items()):
            lines.append(f"{risk_event_label(kind, self.locale)}: {count}")
        return lines

    def style_edge(self, connection: Connection, attributes: dict[str, AttributeValue]) -> None:
        if connection.kind != "sequenceFlow":
            return
        count = self.statistics.flows.get(connection.element_id, 0)
        if not count:
            grey_edge(attributes)
            return
        share = count / self.max_flow if self.max_flow else 0
        attributes["penwidth"] = round(MIN_FLOW_PENWIDTH + (MAX_FLOW_PENWIDTH - MIN_FLOW_PENWIDTH) * share, 2)
        add_class(attributes, "taken")
        append_edge_label(attributes, f"<B>{escape(translate(self.locale, '{count}×', count=count))}</B>")
        append_tooltip(attributes, [translate(self.locale, "Times taken: {count}; cases: {cases}", count=count,
                                              cases=self.statistics.flow_cases.get(connection.element_id, 0))])

    def style_cluster(self, cluster: Cluster, attributes: dict[str, AttributeValue]) -> None:
        if cluster.kind in SUBPROCESS_CLUSTERS and not any(self.statistics.step(shape_id).visits
                                                           for shape_id in cluster.shape_ids()):
            grey_cluster(attributes)

    def heading(self) -> str:
        statistics = self.statistics
        title = translate(self.locale, "Heat map of version {version}; cases: {cases}", version=self.version,
                          cases=statistics.cases)
        lines = [f"<B>{escape(title)}</B>"]
        separator = translate(self.locale, ", ")
        if statistics.by_status:
            statuses = separator.join(f"{dynamic(status).render(self.locale)} {count}"
                                      for status, count in statistics.by_status.items())
            lines.append(escape(statuses))
        if statistics.case_risk_events:
            events = separator.join(f"{risk_event_label(kind, self.locale)} {count}"
                                    for kind, count in sorted(statistics.case_risk_events.items()))
            lines.append(small(escape(translate(self.locale, "Risk events on whole cases: {events}", events=events)),
                               INTERVENTION_COLOR))
        rows = "".join(f'<TR><TD ALIGN="LEFT">{line}</TD></TR>' for line in lines)
        return f'<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>'

    def legend(self) -> str:
        rows = [f'<TR><TD COLSPAN="3" ALIGN="LEFT"><B>{escape(self._scale_title())}</B></TD></TR>']
        for level in range(len(SCALE), 0, -1):
            value_range = self._range_text(level)
            if value_range is None:
                continue
            rows.append(f"<TR><TD>{self._level_marker(level)}</TD>"
                        f'<TD WIDTH="28" BGCOLOR="{SCALE[level - 1]}" BORDER="1" COLOR="#888888"> </TD>'
                        f'<TD ALIGN="LEFT">{escape(value_range)}</TD></TR>')
        unreached = escape(translate(self.locale, "not reached by any case"))
        rows.append(f'<TR><TD></TD><TD WIDTH="28" BGCOLOR="{UNREACHED_FILL}" BORDER="1" COLOR="{UNREACHED_BORDER}">'
                    f' </TD><TD ALIGN="LEFT">{unreached}</TD></TR>')
        notes = [translate(self.locale, "Flow width and number: how often cases took the flow."),
                 translate(self.locale, "Average time: calendar time from ready to completed, over completed tasks."),
                 translate(self.locale, "Risk events: failed or overridden controls and administrative "
                                        "interventions at the step.")]
        # The notes go in a table of their own, so that their width does not widen the columns of the scale.
        scale = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">' + "".join(rows) + "</TABLE>"
        explained = "".join(f'<TR><TD ALIGN="LEFT">{small(escape(text))}</TD></TR>' for text in notes)
        return ('<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" COLOR="#888888" BGCOLOR="#ffffff">'
                f'<TR><TD ALIGN="LEFT">{scale}</TD></TR><TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLBORDER="0" '
                f'CELLSPACING="1" CELLPADDING="1">{explained}</TABLE></TD></TR></TABLE>')

    def _scale_title(self) -> str:
        if self.measure == "time":
            return translate(self.locale, "Fill: average time per step")
        if self.measure == "risk":
            return translate(self.locale, "Fill: risk events per step")
        return translate(self.locale, "Fill: times each step was reached")

    def _range_text(self, level: int) -> str | None:
        """Describe the values of ``level``, or return None when no value can fall in it."""
        count = len(SCALE)
        if not self.maximum:
            return None
        if self.measure == "time":
            low = self.maximum * (level - 1) / count
            high = self.maximum * level / count
            return f"{format_duration(low, self.locale)} – {format_duration(high, self.locale)}"
        maximum = int(self.maximum)
        low, high = maximum * (level - 1) // count + 1, maximum * level // count
        if low > high:
            return None
        return str(low) if low == high else f"{low}–{high}"
