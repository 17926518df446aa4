"""Names and markers of the risk events an overlay shows: administrative interventions and control events."""

from __future__ import annotations

from diagrams.overlay import INTERVENTION_COLOR, marker
from engine.case_paths import CONTROL_KINDS
from engine.i18n import Message, msg

RISK_EVENT_LABELS: dict[str, Message] = {
    "task_reassigned": msg("task reassigned by an administrator"),
    "step_skipped": msg("step completed by an administrator without its checks"),
    "data_edited": msg("case data edited by an administrator"),
    "case_migrated": msg("case moved to another version"),
    "case_cancelled": msg("case cancelled before an end event"),
    "control_failed": msg("control failed"),
    "control_overridden": msg("control overridden"),
}


def risk_event_label(kind: str, locale: str) -> str:
    label = RISK_EVENT_LABELS.get(kind)
    return label.render(locale) if label is not None else kind


def risk_event_marker(kind: str, locale: str) -> str:
    """Return the marker of a risk event, 【干预】 (intervention) or 【控制】 (control), in purple."""
    if kind in CONTROL_KINDS:
        return marker(msg("[control]").render(locale), INTERVENTION_COLOR)
    return marker(msg("[intervention]").render(locale), INTERVENTION_COLOR)
