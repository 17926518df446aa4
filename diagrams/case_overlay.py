"""The path of one case on its flowchart: steps numbered in order, flows taken, open steps, interventions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from diagrams.dot import AttributeValue
from diagrams.flow_graph import SUBPROCESS_CLUSTERS
from diagrams.model import Cluster, Connection, Shape
from diagrams.overlay import (
    INTERVENTION_COLOR,
    PATH_COLOR,
    PATH_PENWIDTH,
    UNREACHED_BORDER,
    UNREACHED_FILL,
    add_class,
    add_style,
    append_edge_label,
    append_tooltip,
    full_time,
    grey_cluster,
    grey_edge,
    grey_node,
    number,
    short_time,
    small,
)
from diagrams.reader import EVENTS, GATEWAYS
from diagrams.risk_events import risk_event_label, risk_event_marker
from diagrams.text import escape
from engine.case_paths import CasePath, RiskEvent, Visit
from engine.i18n import dynamic, translate

# Visits listed under one shape; the tooltip lists them all.
MAX_VISIT_NOTES = 5
_VISITED_PENWIDTH = 2.5
_INTERVENTION_PENWIDTH = 3.5


@dataclass(frozen=True)
class CaseHeading:
    """Facts about the case that the overlay states above the flowchart. Times are ISO 8601 in UTC."""

    case_id: int
    title: str | None
    version: int
    status: str
    started_at: str
    started_by: str
    ended_at: str | None


class CaseOverlay:
    """Draw ``path`` on the flowchart of its case, with names from ``display_names`` and times in ``zone``."""

    def __init__(self, case: CaseHeading, path: CasePath, display_names: Mapping[str, str], locale: str,
                 zone: ZoneInfo) -> None:
        self.case = case
        self.path = path
        self.display_names = display_names
        self.locale = locale
        self.zone = zone
        self.reached = path.reached()
        self.step_risk_events: dict[str, list[RiskEvent]] = {}
        for event in path.risk_events:
            if event.element_id:
                self.step_risk_events.setdefault(event.element_id, []).append(event)

    # Text

    def _name(self, username: str | None) -> str:
        if not username:
            return "-"
        if username == "system":
            return translate(self.locale, "system")
        return self.display_names.get(username, username)

    def _number(self, visit: Visit) -> str:
        return number(visit.order, PATH_COLOR)

    def _visit_note(self, shape: Shape, visit: Visit) -> str:
        if visit.kind == "case_started":
            text = f"{self._name(visit.actor)} {short_time(visit.at, self.zone)}"
        elif visit.kind != "task_ready":
            text = short_time(visit.at, self.zone)
        elif visit.status == "open":
            text = translate(self.locale, "open since {time}", time=short_time(visit.at, self.zone))
            if visit.claimed_by:
                text += f" · {self._name(visit.claimed_by)}"
        elif visit.status == "cancelled":
            cancelled = short_time(visit.cancelled_at or visit.at, self.zone)
            text = translate(self.locale, "cancelled {time}", time=cancelled)
        else:
            text = f"{self._name(visit.actor)} {short_time(visit.completed_at or visit.at, self.zone)}"
        return f"{self._number(visit)} {small(escape(text))}"

    def _visit_tooltip(self, visit: Visit) -> str:
        order = visit.order
        if visit.kind == "case_started":
            return translate(self.locale, "Step {order}: case started {time} by {actor}", order=order,
                             time=full_time(visit.at, self.zone), actor=self._name(visit.actor))
        if visit.kind != "task_ready":
            return translate(self.locale, "Step {order}: reached {time}", order=order,
                             time=full_time(visit.at, self.zone))
        ready = full_time(visit.at, self.zone)
        if visit.status == "open" and visit.claimed_by:
            return translate(self.locale, "Step {order}: ready {ready}, still open, claimed by {actor}", order=order,
                             ready=ready, actor=self._name(visit.claimed_by))
        if visit.status == "open":
            return translate(self.locale, "Step {order}: ready {ready}, still open", order=order, ready=ready)
        if visit.status == "cancelled":
            return translate(self.locale, "Step {order}: ready {ready}, cancelled {cancelled}", order=order,
                             ready=ready, cancelled=full_time(visit.cancelled_at or visit.at, self.zone))
        return translate(self.locale, "Step {order}: ready {ready}, completed {completed} by {actor}", order=order,
                         ready=ready, completed=full_time(visit.completed_at or visit.at, self.zone),
                         actor=self._name(visit.actor))

    def _risk_event_text(self, event: RiskEvent) -> str:
        return translate(self.locale, "{label}: {actor}, {time}", label=risk_event_label(event.kind, self.locale),
                         actor=self._name(event.actor), time=short_time(event.at, self.zone))

    def _risk_event_tooltip(self, event: RiskEvent) -> str:
        return translate(self.locale, "{label}: {actor}, {time}; reason: {reason}",
                         label=risk_event_label(event.kind, self.locale), actor=self._name(event.actor),
                         time=full_time(event.at, self.zone), reason=event.reason or "-")

    # Overlay

    def notes(self, shape: Shape) -> list[str]:
        visits = self.path.visits_of(shape.element_id)
        notes = []
        if shape.kind in GATEWAYS and visits:
            # A gateway decides when the step before it completes, so its numbers alone place it.
            notes.append(" ".join(self._number(visit) for visit in visits))
        else:
            notes.extend(self._visit_note(shape, visit) for visit in visits[:MAX_VISIT_NOTES])
            if len(visits) > MAX_VISIT_NOTES:
                notes.append(small(escape(translate(self.locale, "… and {count} more; see the tooltip",
                                                    count=len(visits) - MAX_VISIT_NOTES))))
        for event in self.step_risk_events.get(shape.element_id, []):
            text = small(escape(self._risk_event_text(event)), INTERVENTION_COLOR)
            notes.append(f"{risk_event_marker(event.kind, self.locale)} {text}")
        return notes

    def style_node(self, shape: Shape, attributes: dict[str, AttributeValue]) -> None:
        if shape.kind in ("textAnnotation", "participant"):
            return
        visits = self.path.visits_of(shape.element_id)
        tooltip = [self._visit_tooltip(visit) for visit in visits]
        if visits:
            add_class(attributes, "visited", *(f"order-{visit.order}" for visit in visits))
            self._outline(shape, attributes, PATH_COLOR, _VISITED_PENWIDTH)
        elif shape.element_id in self.reached:
            add_class(attributes, "visited", "inferred")
            self._outline(shape, attributes, PATH_COLOR, _VISITED_PENWIDTH)
            tooltip.append(translate(self.locale, "Passed without a trace event; inferred from the flows around it"))
        else:
            grey_node(attributes)

        if any(visit.status == "open" for visit in visits):
            add_class(attributes, "open")
            add_style(attributes, "dashed")
            attributes["penwidth"] = max(float(attributes.get("penwidth", 1)), PATH_PENWIDTH)
        if any(visit.status == "cancelled" for visit in visits):
            add_class(attributes, "cancelled")
        events = self.step_risk_events.get(shape.element_id, [])
        if events:
            add_class(attributes, "intervention")
            self._outline(shape, attributes, INTERVENTION_COLOR, _INTERVENTION_PENWIDTH)
            tooltip.extend(self._risk_event_tooltip(event) for event in events)
        append_tooltip(attributes, tooltip)

    def _outline(self, shape: Shape, attributes: dict[str, AttributeValue], color: str, penwidth: float) -> None:
        attributes["color"] = color
        if shape.kind not in EVENTS:
            # Events keep their own border width, which distinguishes start, intermediate and end events.
            attributes["penwidth"] = max(float(attributes.get("penwidth", 1)), penwidth)

    def style_edge(self, connection: Connection, attributes: dict[str, AttributeValue]) -> None:
        if connection.kind == "attachment":
            if (connection.source, connection.target) in self.path.boundary_links:
                attributes.update({"color": PATH_COLOR, "penwidth": _VISITED_PENWIDTH})
                add_class(attributes, "taken")
            return
        if connection.kind != "sequenceFlow":
            return
        count = self.path.flow_counts.get(connection.element_id, 0)
        if not count:
            grey_edge(attributes)
            return
        attributes.update({"color": PATH_COLOR, "fontcolor": PATH_COLOR, "penwidth": PATH_PENWIDTH})
        add_class(attributes, "taken")
        if count > 1:
            append_edge_label(attributes, f"<B>×{count}</B>")
        append_tooltip(attributes, [translate(self.locale, "Times this case took the flow: {count}", count=count)])

    def style_cluster(self, cluster: Cluster, attributes: dict[str, AttributeValue]) -> None:
        if cluster.kind not in SUBPROCESS_CLUSTERS:
            return
        if self.reached & set(cluster.shape_ids()):
            add_class(attributes, "visited")
        else:
            grey_cluster(attributes)

    def heading(self) -> str:
        case = self.case
        title = translate(self.locale, "Case {case_id}: {title}", case_id=case.case_id, title=case.title or "-")
        lines = [
            f"<B>{escape(title)}</B>",
            escape(translate(self.locale, "Version {version}, {status}", version=case.version,
                             status=dynamic(case.status).render(self.locale))),
            escape(translate(self.locale, "Started {time} by {actor}", time=full_time(case.started_at, self.zone),
                             actor=self._name(case.started_by))),
        ]
        if case.ended_at:
            lines.append(escape(translate(self.locale, "Ended {time}", time=full_time(case.ended_at, self.zone))))
        rows = [f'<TR><TD ALIGN="LEFT">{line}</TD></TR>' for line in lines]
        for event in self.path.risk_events:
            if event.element_id:
                continue
            text = small(escape(self._risk_event_tooltip(event)), INTERVENTION_COLOR)
            rows.append(f'<TR><TD ALIGN="LEFT">{risk_event_marker(event.kind, self.locale)} {text}</TD></TR>')
        return '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>"

    def legend(self) -> str:
        title = escape(translate(self.locale, "Path of the case"))
        rows = [f'<TR><TD COLSPAN="2" ALIGN="LEFT"><B>{title}</B></TD></TR>']
        samples = [
            (f'<TD WIDTH="28" HEIGHT="4" FIXEDSIZE="TRUE" BGCOLOR="{PATH_COLOR}"></TD>',
             translate(self.locale, "flow taken; ×N when taken N times")),
            (f'<TD BORDER="2" COLOR="{PATH_COLOR}">{self._sample_number()}</TD>',
             translate(self.locale, "step reached, numbered in order, with who completed it and when")),
            (f'<TD BORDER="2" STYLE="dashed" COLOR="{PATH_COLOR}"> </TD>',
             translate(self.locale, "open step, still waiting")),
            (f'<TD BORDER="1" COLOR="{UNREACHED_BORDER}" BGCOLOR="{UNREACHED_FILL}"> </TD>',
             translate(self.locale, "step or flow this case did not reach")),
            (f"<TD>{risk_event_marker('step_skipped', self.locale)}</TD>",
             translate(self.locale, "administrative intervention at the step")),
        ]
        if any(event.kind.startswith("control_") for event in self.path.risk_events):
            samples.append((f"<TD>{risk_event_marker('control_failed', self.locale)}</TD>",
                            translate(self.locale, "control failed or overridden at the step")))
        for cell, meaning in samples:
            rows.append(f'<TR>{cell}<TD ALIGN="LEFT">{escape(meaning)}</TD></TR>')
        rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT">{small(escape(self._zone_note()))}</TD></TR>')
        return ('<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="3" COLOR="#888888" BGCOLOR="#ffffff">'
                + "".join(rows) + "</TABLE>")

    def _sample_number(self) -> str:
        return number(1, PATH_COLOR)

    def _zone_note(self) -> str:
        offset = self._offset()
        return translate(self.locale, "Times are in {zone} (UTC{offset}).", zone=self.zone.key, offset=offset)

    def _offset(self) -> str:
        delta = datetime.fromisoformat(self.case.started_at).astimezone(self.zone).utcoffset()
        minutes = int(delta.total_seconds() // 60) if delta is not None else 0
        sign = "+" if minutes >= 0 else "-"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

