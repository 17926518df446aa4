"""Which cases and tasks a signed-in user may see, as docs/security.md states the policy.

Auditors, administrators and designers see every case. A user whose only reading role is ``staff``
sees a case when it belongs to their department, when they started it, or when one of its tasks is
theirs: a task of one of their posts, a task without a post (any staff may take it), or a task they
hold or completed. A case they may not see is answered as if it did not exist (404), so its id
reveals nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.engine import Connection

from engine.db import case_tasks, cases, supervision_notices
from engine.errors import NotFound
from engine.i18n import msg
from engine.service import Liuhen
from engine.users import Actor

# Roles that read every case. Staff read the cases this module allows them.
ALL_CASE_READERS = ("auditor", "admin", "designer")


def sees_all_cases(actor: Actor) -> bool:
    return actor.has_role(*ALL_CASE_READERS)


def visible_case_condition(actor: Actor) -> ColumnElement[bool]:
    """Return a condition on ``cases`` that holds for the cases a staff user may see."""
    if not actor.has_role("staff"):
        return false()
    theirs = exists().where(and_(
        case_tasks.c.case_id == cases.c.id,
        or_(case_tasks.c.lane.in_(sorted(actor.posts)), case_tasks.c.lane.is_(None),
            case_tasks.c.assignee == actor.username, case_tasks.c.completed_by == actor.username),
    ))
    conditions = [cases.c.started_by == actor.username, theirs]
    if actor.department:
        conditions.append(cases.c.department == actor.department)
    return or_(*conditions)


def _can_see(conn: Connection, actor: Actor, case_id: int) -> bool:
    if sees_all_cases(actor):
        return True
    query = select(cases.c.id).where(cases.c.id == case_id, visible_case_condition(actor))
    return conn.execute(query).first() is not None


def require_case_visible(service: Liuhen, actor: Actor, case_id: int) -> None:
    """Raise NotFound, worded as for a missing case, unless ``actor`` may see case ``case_id``."""
    if sees_all_cases(actor):
        return
    with service.db.read() as conn:
        if not _can_see(conn, actor, case_id):
            raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))


def require_task_visible(service: Liuhen, actor: Actor, task_id: str) -> None:
    """Raise NotFound, worded as for a missing task, unless ``actor`` may see the case of task ``task_id``.

    An unknown task id passes, so the operation itself reports it as it always does.
    """
    if sees_all_cases(actor):
        return
    with service.db.read() as conn:
        case_id = conn.execute(select(case_tasks.c.case_id).where(case_tasks.c.id == task_id)).scalar()
        if case_id is not None and not _can_see(conn, actor, case_id):
            raise NotFound(msg("Task {task_id} does not exist.", task_id=task_id))


def require_notice_visible(service: Liuhen, actor: Actor, notice_id: int) -> None:
    """Raise NotFound, worded as for a missing notice, unless ``actor`` may see the notice's case."""
    if sees_all_cases(actor):
        return
    with service.db.read() as conn:
        case_id = conn.execute(select(supervision_notices.c.case_id)
                               .where(supervision_notices.c.id == notice_id)).scalar()
        if case_id is not None and not _can_see(conn, actor, case_id):
            raise NotFound(msg("Supervision notice {notice_id} does not exist.", notice_id=notice_id))


def list_visible_cases(service: Liuhen, actor: Actor, *, status: str | None, process_id: str | None, limit: int,
                       offset: int) -> list[dict[str, Any]]:
    """List the cases a staff user may see, newest first, with the fields of ``Liuhen.list_cases``."""
    return service.list_cases(status=status, process_id=process_id, limit=limit, offset=offset,
                              visible=visible_case_condition(actor))
