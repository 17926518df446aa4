"""Overrides of hard controls: requested by one administrator, decided by another, used once.

An administrator requests to let one task pass one hard control, with a written reason. A second,
different administrator approves or rejects the request. The next completion of that task whose
control fails uses the approved override. Its control_evaluated event has the outcome
``overridden``, and a risk event of kind control_overridden, always at level high, records who
requested and who approved it. Requests and decisions are trace events of the case
(override_requested, override_decided).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from engine import trace
from engine.db import case_tasks, cases, control_overrides
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.i18n import dynamic, msg
from engine.users import Actor, require_role

if TYPE_CHECKING:
    from engine.service import Liuhen

logger = logging.getLogger(__name__)

MIN_REASON_LENGTH = 10
STATUSES = ("pending", "approved", "rejected", "used")
# Control types whose failures engine.quorum settles; no override applies to them. Soft controls are
# refused separately, because they never block a step.
_NOT_OVERRIDABLE_TYPES = ("quorum",)


def approved_override(conn: Connection, task_id: str, control_id: str) -> Any:
    """Return the approved, unused override of one control of one task, or None."""
    return conn.execute(select(control_overrides).where(
        control_overrides.c.task_id == task_id, control_overrides.c.control_id == control_id,
        control_overrides.c.status == "approved").order_by(control_overrides.c.id).limit(1)).first()


def mark_used(conn: Connection, override_id: int, now: datetime) -> None:
    conn.execute(update(control_overrides).where(control_overrides.c.id == override_id,
                                                 control_overrides.c.status == "approved")
                 .values(status="used", used_at=now))


def request_override(service: Liuhen, task_id: str, control_id: str, reason: str, admin: Actor) -> dict[str, Any]:
    """Ask to let ``task_id`` pass the hard control ``control_id`` once (administrators)."""
    require_role(admin, "admin")
    text = (reason or "").strip()
    if len(text) < MIN_REASON_LENGTH:
        raise InvalidInput(msg("An override needs a written reason of at least {count} characters; state why the "
                               "control should not apply to this task.", count=MIN_REASON_LENGTH))
    task = _task(service, task_id)
    checkpoint, control = _control_of_task(service, task, control_id)
    created: dict[str, Any] = {}

    def change(conn: Connection, row: Any, now: datetime) -> list[trace.NewEvent]:
        current = _task_row(conn, task_id)
        if current.status not in ("ready", "claimed"):
            raise Conflict(msg("Task {task_id} is already {status}; only an open task can get an override.",
                               task_id=task_id, status=dynamic(current.status)))
        open_request = conn.execute(select(control_overrides.c.id, control_overrides.c.status).where(
            control_overrides.c.task_id == task_id, control_overrides.c.control_id == control_id,
            control_overrides.c.status.in_(("pending", "approved")))).first()
        if open_request is not None:
            raise Conflict(msg("Override {override_id} for control {control} of task {task_id} is already "
                               "{status}; decide or use it before asking again.", override_id=open_request.id,
                               control=control_id, task_id=task_id, status=dynamic(open_request.status)))
        override_id = conn.execute(insert(control_overrides).values(
            case_id=row.id, task_id=task_id, element_id=current.element_id, control_id=control_id, reason=text,
            status="pending", requested_by=admin.username, requested_at=now,
        ).returning(control_overrides.c.id)).scalar_one()
        created["id"] = override_id
        return [trace.NewEvent("override_requested", admin.username, now, case_id=row.id,
                               definition_id=row.definition_id, element_id=current.element_id, task_id=task_id,
                               payload={"override_id": override_id, "control_id": control_id,
                                        "control_type": control["type"], "checkpoint_id": checkpoint["id"],
                                        "reason": text})]

    service.append_case_events(task.case_id, change)
    logger.info("override requested", extra={"override_id": created["id"], "task_id": task_id,
                                             "control_id": control_id, "actor": admin.username})
    return get_override(service, created["id"])


def decide_override(service: Liuhen, override_id: int, admin: Actor, approve: bool,
                    note: str | None = None) -> dict[str, Any]:
    """Approve or reject a pending override; the deciding administrator must not be the one who requested it."""
    require_role(admin, "admin")
    with service.db.read() as conn:
        case_id = _override_row(conn, override_id).case_id
    decision = "approved" if approve else "rejected"

    def change(conn: Connection, row: Any, now: datetime) -> list[trace.NewEvent]:
        override = _override_row(conn, override_id)
        if override.status != "pending":
            raise Conflict(msg("Override {override_id} is already {status}; only a pending override can be "
                               "decided.", override_id=override_id, status=dynamic(override.status)))
        if override.requested_by == admin.username:
            raise Forbidden(msg("You requested override {override_id}; a different administrator must approve or "
                                "reject it.", override_id=override_id))
        if approve:
            task = _task_row(conn, override.task_id)
            if task.status not in ("ready", "claimed"):
                raise Conflict(msg("Task {task_id} is already {status}, so override {override_id} could never be "
                                   "used; reject it instead.", task_id=override.task_id,
                                   status=dynamic(task.status), override_id=override_id))
        conn.execute(update(control_overrides).where(control_overrides.c.id == override_id)
                     .values(status=decision, decided_by=admin.username, decided_at=now))
        payload: dict[str, Any] = {"override_id": override_id, "control_id": override.control_id,
                                   "decision": decision, "requested_by": override.requested_by}
        if note and note.strip():
            payload["note"] = note.strip()
        return [trace.NewEvent("override_decided", admin.username, now, case_id=row.id,
                               definition_id=row.definition_id, element_id=override.element_id,
                               task_id=override.task_id, payload=payload)]

    service.append_case_events(case_id, change)
    logger.info("override %s", decision, extra={"override_id": override_id, "actor": admin.username})
    return get_override(service, override_id)


def get_override(service: Liuhen, override_id: int) -> dict[str, Any]:
    with service.db.read() as conn:
        return _override_dict(_override_row(conn, override_id))


def list_overrides(service: Liuhen, actor: Actor, *, status: str | None = None, case_id: int | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
    """List overrides, newest first (administrators and auditors)."""
    require_role(actor, "admin", "auditor")
    query = select(control_overrides).order_by(control_overrides.c.id.desc()).limit(min(limit, 1000))
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(msg("Override status {status!r} is unknown; use one of: {allowed}.", status=status,
                                   allowed=", ".join(STATUSES)))
        query = query.where(control_overrides.c.status == status)
    if case_id is not None:
        query = query.where(control_overrides.c.case_id == case_id)
    with service.db.read() as conn:
        return [_override_dict(row) for row in conn.execute(query)]


# lookups


def _task_row(conn: Connection, task_id: str) -> Any:
    try:
        UUID(task_id)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(msg("Task {task_id} does not exist; task ids are UUIDs.", task_id=task_id)) from None
    row = conn.execute(select(case_tasks).where(case_tasks.c.id == task_id)).first()
    if row is None:
        raise NotFound(msg("Task {task_id} does not exist.", task_id=task_id))
    return row


def _task(service: Liuhen, task_id: str) -> Any:
    with service.db.read() as conn:
        return _task_row(conn, task_id)


def _override_row(conn: Connection, override_id: int) -> Any:
    row = conn.execute(select(control_overrides).where(control_overrides.c.id == override_id)).first()
    if row is None:
        raise NotFound(msg("Override {override_id} does not exist.", override_id=override_id))
    return row


def _control_of_task(service: Liuhen, task: Any, control_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Find the control ``control_id`` among the risk checkpoints of the task's step; it must be overridable."""
    from engine.controls import declared_controls

    with service.db.read() as conn:
        definition_id = conn.execute(select(cases.c.definition_id).where(cases.c.id == task.case_id)).scalar_one()
    parsed, _process = service.parsed_definition(definition_id)
    node = parsed.nodes.get(task.element_id)
    declared = declared_controls(node.extensions if node else {})
    for checkpoint, control in declared:
        if control["id"] != control_id:
            continue
        if control["type"] in _NOT_OVERRIDABLE_TYPES:
            raise InvalidInput(msg("Control {control} is a {type} control, which counts approvers' votes and cannot "
                                   "be overridden.", control=control_id, type=control["type"]))
        if control["enforcement"] != "hard":
            raise InvalidInput(msg("Control {control} is soft: it never blocks the step, so it needs no override.",
                                   control=control_id))
        return checkpoint, control
    raise NotFound(msg("Step {step} of task {task_id} has no control {control}; its controls are: {controls}.",
                       step=task.element_id, task_id=task.id, control=control_id,
                       controls=", ".join(control["id"] for _checkpoint, control in declared) or "-"))


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _override_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "case_id": row.case_id, "task_id": row.task_id, "element_id": row.element_id,
        "control_id": row.control_id, "reason": row.reason, "status": row.status,
        "requested_by": row.requested_by, "requested_at": _utc(row.requested_at),
        "decided_by": row.decided_by, "decided_at": _utc(row.decided_at), "used_at": _utc(row.used_at),
    }
