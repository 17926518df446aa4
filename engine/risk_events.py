"""Risk events: a soft control that failed, an override, a split purchase, a tie in a review.

Each risk event is stored twice in one transaction: as a ``risk_event`` trace event in the case's
stream, which is the evidence, and as a row of ``risk_events``, which statistics and the supervision
board query. ``record`` writes the row and returns the trace event for the caller to append with the
rest of its step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from engine import trace
from engine.db import risk_events
from engine.extension import RISK_LEVELS
from engine.i18n import msg

# Sources of a risk event. The ``kind`` column and the trace payload contain one of these.
RISK_EVENT_KINDS = (
    "control_failed",      # a soft control did not pass; the step went ahead
    "control_overridden",  # a hard control was overridden with two administrators' approval
    "split_suspected",     # several cases for one party below a threshold, together above it
    "review_disagreement", # the approvers of a step disagreed
    "deadline_exceeded",   # a red card
)
# The name that pages show for each kind of risk event.
RISK_EVENT_KIND_TEXTS = {
    "control_failed": msg("Soft control failed"),
    "control_overridden": msg("Hard control overridden"),
    "split_suspected": msg("Suspected split of one matter"),
    "review_disagreement": msg("Approvers disagreed"),
    "deadline_exceeded": msg("Time limit exceeded (red card)"),
}


@dataclass(frozen=True)
class RiskEvent:
    """One risk event about to be recorded for a case."""

    case_id: int
    process_id: str
    kind: str
    level: str
    actor: str
    at: datetime
    definition_id: int | None = None
    department: str | None = None
    element_id: str | None = None
    task_id: str | None = None
    post: str | None = None
    checkpoint_id: str | None = None
    control_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in RISK_EVENT_KINDS:
            raise ValueError(f"unknown risk event kind {self.kind!r}")
        if self.level not in RISK_LEVELS:
            raise ValueError(f"unknown risk level {self.level!r}")


def record(conn: Connection, event: RiskEvent) -> trace.NewEvent:
    """Insert ``event`` into risk_events and return its trace event, which the caller must append."""
    conn.execute(insert(risk_events).values(
        case_id=event.case_id, process_id=event.process_id, department=event.department,
        element_id=event.element_id, task_id=event.task_id, post=event.post, checkpoint_id=event.checkpoint_id,
        control_id=event.control_id, kind=event.kind, level=event.level, actor=event.actor,
        details=event.details, at=event.at,
    ))
    payload = {"risk_kind": event.kind, "level": event.level, "checkpoint_id": event.checkpoint_id,
               "control_id": event.control_id, "post": event.post, **({"details": event.details}
                                                                      if event.details else {})}
    return trace.NewEvent("risk_event", event.actor, event.at, case_id=event.case_id,
                          definition_id=event.definition_id, element_id=event.element_id, task_id=event.task_id,
                          payload=payload)
