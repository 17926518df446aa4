"""The annual review of risk checkpoints (动态管理): how long each has stood unchanged, and what happened since.

The report covers every risk checkpoint of the newest version of each process. It gives the version
since which the checkpoint, its controls and its step are unchanged, and the risk events by level and
the cases that completed the step since then. It also gives the last time a designer marked the
checkpoint reviewed. A mark is a ``checkpoint_reviewed`` event in the system trace stream, so it is
kept with the same evidence as a deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from engine import trace
from engine.db import case_tasks, cases, definitions, risk_events, trace_events
from engine.errors import InvalidInput, NotFound
from engine.extension import RISK_LEVELS
from engine.i18n import msg
from engine.service import Liuhen
from engine.users import Actor, require_role
from engine.versions import snapshot

REVIEW_INTERVAL = timedelta(days=365)
"""A checkpoint is due for review when neither a change nor a review of it is more recent than this."""
MAX_NOTE_LENGTH = 2000
EVENT_KIND = "checkpoint_reviewed"


@dataclass
class Review:
    """A designer's mark that a checkpoint was reviewed, as the system trace records it."""

    process_id: str
    checkpoint_id: str
    version: int
    reviewed_by: str
    reviewed_at: datetime
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "checkpoint_id": self.checkpoint_id, "version": self.version,
                "reviewed_by": self.reviewed_by, "reviewed_at": self.reviewed_at.isoformat(), "note": self.note}


@dataclass
class CheckpointStatus:
    """One row of the review report."""

    process_id: str
    process_name: str
    version: int
    element_id: str
    step_name: str
    checkpoint_id: str
    level: str
    category: str
    description: str
    responsible_post: str | None
    unchanged_since_version: int
    unchanged_since: datetime
    unchanged_days: int
    risk_events: dict[str, int] = field(default_factory=dict)
    cases_passed: int = 0
    last_review: Review | None = None
    review_due: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id, "process_name": self.process_name, "version": self.version,
            "element_id": self.element_id, "step_name": self.step_name, "checkpoint_id": self.checkpoint_id,
            "level": self.level, "category": self.category, "description": self.description,
            "responsible_post": self.responsible_post, "unchanged_since_version": self.unchanged_since_version,
            "unchanged_since": self.unchanged_since.isoformat(), "unchanged_days": self.unchanged_days,
            "risk_events": {**self.risk_events, "total": sum(self.risk_events.values())},
            "cases_passed": self.cases_passed,
            "last_review": self.last_review.to_json() if self.last_review else None,
            "review_due": self.review_due,
        }


def review_report(service: Liuhen, actor: Actor, process_id: str | None = None) -> list[CheckpointStatus]:
    """Report on every risk checkpoint of the newest version of each process, or of ``process_id``.

    Raises Forbidden unless the actor is a designer, auditor or administrator, and NotFound when
    ``process_id`` names no deployed process.
    """
    require_role(actor, "designer", "auditor", "admin")
    now = _utc(service.now())
    with service.db.snapshot() as conn:
        versions = _versions_by_process(conn, process_id)
        reviews = _latest_reviews(conn)
    # Parsing reads the stored files through connections of its own, so it runs between the two reads.
    rows = [status for process_versions in versions.values()
            for status in _process_statuses(service, process_versions, now)]
    with service.db.snapshot() as conn:
        for status in rows:
            status.risk_events = _risk_event_counts(conn, status)
            status.cases_passed = _cases_passed(conn, status)
            status.last_review = reviews.get((status.process_id, status.checkpoint_id))
            status.review_due = _is_due(status, now)
    return rows


def mark_reviewed(service: Liuhen, actor: Actor, checkpoint_id: str, note: str,
                  process_id: str | None = None) -> Review:
    """Record that ``actor`` reviewed a checkpoint of the newest version of its process, with a note.

    ``process_id`` is needed only when the newest versions of several processes have a checkpoint
    with this id.
    """
    require_role(actor, "designer", "admin")
    note = (note or "").strip()
    if not note:
        raise InvalidInput(msg("The review note is empty; write what was reviewed and what was concluded."))
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(msg("The review note is {length} characters long, over the limit of {limit}.",
                               length=len(note), limit=MAX_NOTE_LENGTH))

    with service.db.read() as conn:
        versions = _versions_by_process(conn, process_id)
    now = _utc(service.now())
    matches = [status for process_versions in versions.values()
               for status in _process_statuses(service, process_versions[-1:], now)
               if status.checkpoint_id == checkpoint_id]
    if not matches:
        raise NotFound(msg("No risk checkpoint {checkpoint} is in the newest version of {processes}; check the id "
                           "with `liuhen review report`.", checkpoint=checkpoint_id,
                           processes=process_id or msg("any deployed process")))
    if len(matches) > 1:
        raise InvalidInput(msg("Risk checkpoint {checkpoint} is in several processes: {processes}; name the process "
                               "as well.", checkpoint=checkpoint_id,
                               processes=", ".join(status.process_id for status in matches)))
    status = matches[0]
    definition_id = versions[status.process_id][-1].id
    event = trace.NewEvent(EVENT_KIND, actor.username, now, definition_id=definition_id, element_id=status.element_id,
                           payload={"process_id": status.process_id, "version": status.version,
                                    "checkpoint_id": checkpoint_id, "level": status.level, "note": note})
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        trace.append(conn, trace.SYSTEM_STREAM, [event])
    return Review(status.process_id, checkpoint_id, status.version, actor.username, now, note)


def _versions_by_process(conn: Connection, process_id: str | None) -> dict[str, list[Any]]:
    """List the deployed versions of each process, oldest first."""
    query = (select(definitions.c.id, definitions.c.process_id, definitions.c.version, definitions.c.name,
                    definitions.c.power_item, definitions.c.deployed_at)
             .order_by(definitions.c.process_id, definitions.c.version))
    if process_id is not None:
        query = query.where(definitions.c.process_id == process_id)
    grouped: dict[str, list[Any]] = {}
    for row in conn.execute(query):
        grouped.setdefault(row.process_id, []).append(row)
    if process_id is not None and not grouped:
        raise NotFound(msg("No process {process_id} is deployed; deploy its BPMN file first.", process_id=process_id))
    return grouped


def _checkpoints(service: Liuhen, version: Any) -> dict[str, tuple[dict[str, Any], list[Any]]]:
    """Map each checkpoint id of a version to its values (the step included) and its controls."""
    parsed, _process = service.parsed_definition(version.id)
    sections = snapshot(parsed, version.process_id, version.power_item)
    controls: dict[str, list[Any]] = {}
    for control_id, entry in sections["controls"].items():
        controls.setdefault(entry.values["checkpoint"], []).append((control_id, entry.values))
    return {checkpoint_id: (entry.values, sorted(controls.get(checkpoint_id, []), key=lambda item: item[0]))
            for checkpoint_id, entry in sections["checkpoints"].items()}


def _process_statuses(service: Liuhen, versions: list[Any], now: datetime) -> list[CheckpointStatus]:
    """Build the report rows of a process's newest version, finding how far back each checkpoint is unchanged."""
    newest = versions[-1]
    parsed, _process = service.parsed_definition(newest.id)
    current = _checkpoints(service, newest)
    older = [_checkpoints(service, version) for version in versions[:-1]]

    statuses = []
    for checkpoint_id, (values, _controls) in current.items():
        since = newest
        for version, checkpoints in zip(reversed(versions[:-1]), reversed(older), strict=True):
            if checkpoints.get(checkpoint_id) != current[checkpoint_id]:
                break
            since = version
        node = parsed.nodes[values["node"]]
        since_at = _utc(since.deployed_at)
        statuses.append(CheckpointStatus(
            process_id=newest.process_id, process_name=newest.name, version=newest.version,
            element_id=values["node"], step_name=node.name or values["node"], checkpoint_id=checkpoint_id,
            level=values["level"], category=values["category"], description=values["description"],
            responsible_post=values.get("responsible_post"), unchanged_since_version=since.version,
            unchanged_since=since_at, unchanged_days=max((now - since_at).days, 0),
        ))
    return statuses


def _risk_event_counts(conn: Connection, status: CheckpointStatus) -> dict[str, int]:
    """Count the risk events at a checkpoint since it last changed, by level.

    An event names its checkpoint, or names none but happened at the checkpoint's step (a red card).
    """
    at_checkpoint = or_(risk_events.c.checkpoint_id == status.checkpoint_id,
                        and_(risk_events.c.checkpoint_id.is_(None), risk_events.c.element_id == status.element_id))
    query = (select(risk_events.c.level, func.count().label("events"))
             .where(risk_events.c.process_id == status.process_id, risk_events.c.at >= status.unchanged_since,
                    at_checkpoint)
             .group_by(risk_events.c.level))
    counts = dict.fromkeys(RISK_LEVELS, 0)
    for row in conn.execute(query):
        counts[row.level] = row.events
    return counts


def _cases_passed(conn: Connection, status: CheckpointStatus) -> int:
    """Count the cases that completed the checkpoint's step since the checkpoint last changed."""
    query = (select(func.count(func.distinct(case_tasks.c.case_id)))
             .join(cases, cases.c.id == case_tasks.c.case_id)
             .where(cases.c.process_id == status.process_id, case_tasks.c.element_id == status.element_id,
                    case_tasks.c.status == "completed", case_tasks.c.completed_at >= status.unchanged_since))
    return int(conn.execute(query).scalar_one())


def _latest_reviews(conn: Connection) -> dict[tuple[str, str], Review]:
    """Read the checkpoint_reviewed events of the system stream; the newest per process and checkpoint wins."""
    query = (select(trace_events.c.body, trace_events.c.actor, trace_events.c.at)
             .where(trace_events.c.stream == trace.SYSTEM_STREAM, trace_events.c.kind == EVENT_KIND)
             .order_by(trace_events.c.seq))
    reviews = {}
    for row in conn.execute(query):
        payload = json.loads(bytes(row.body))["payload"]
        review = Review(payload["process_id"], payload["checkpoint_id"], payload["version"], row.actor,
                        _utc(row.at), payload.get("note", ""))
        reviews[(review.process_id, review.checkpoint_id)] = review
    return reviews


def _is_due(status: CheckpointStatus, now: datetime) -> bool:
    latest = status.unchanged_since
    if status.last_review is not None and status.last_review.reviewed_at > latest:
        latest = status.last_review.reviewed_at
    return now - latest > REVIEW_INTERVAL


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
