"""Administrative interventions: reassign a task, skip a step, edit case data, move a case to a new version.

Each is open to administrators only, needs a written reason, and is recorded in the case's trace with
the administrator who approved it, so auditors see it as evidence and conformance counts it as a
deviation from the model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from engine import controls, trace
from engine.db import case_tasks, definitions
from engine.errors import Conflict, ControlFailed, InvalidInput, NotFound
from engine.forms import check_keys
from engine.i18n import dynamic, msg
from engine.parser import node_extensions
from engine.runtime import CaseRuntime, StepEvent
from engine.service import Liuhen
from engine.users import Actor, get_actor, require_role

MIN_REASON_LENGTH = 4


def _require_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < MIN_REASON_LENGTH:
        raise InvalidInput(msg("An administrative intervention needs a written reason of at least {count} "
                               "characters; state why.", count=MIN_REASON_LENGTH))
    return text


def _open_task(conn: Connection, task_id: str) -> Any:
    try:
        UUID(task_id)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(msg("Task {task_id} does not exist; task ids are UUIDs.", task_id=task_id)) from None
    row = conn.execute(select(case_tasks).where(case_tasks.c.id == task_id)).first()
    if row is None:
        raise NotFound(msg("Task {task_id} does not exist.", task_id=task_id))
    if row.status not in ("ready", "claimed"):
        raise Conflict(msg("Task {task_id} is already {status}.", task_id=task_id, status=dynamic(row.status)))
    return row


def _event(kind: str, admin: Actor, now: datetime, row: Any, reason: str, element_id: str | None = None,
           task_id: str | None = None, **payload: Any) -> trace.NewEvent:
    return trace.NewEvent(kind, admin.username, now, case_id=row.id, definition_id=row.definition_id,
                          element_id=element_id, task_id=task_id,
                          payload={"reason": reason, "approved_by": admin.username, **payload})


def _case_of_task(service: Liuhen, task_id: str) -> int:
    with service.db.read() as conn:
        return int(_open_task(conn, task_id).case_id)


def reassign_task(service: Liuhen, task_id: str, admin: Actor, assignee: str, reason: str) -> dict[str, Any]:
    """Give an open task to a named user of the task's post."""
    require_role(admin, "admin")
    reason = _require_reason(reason)

    def apply(conn: Connection, row: Any, runtime: CaseRuntime, now: datetime) -> dict[str, Any]:
        task = _open_task(conn, task_id)
        target = get_actor(conn, assignee)
        if target is None:
            raise NotFound(msg("User {username} does not exist.", username=assignee))
        if get_actor(conn, assignee, active_only=True) is None:
            raise InvalidInput(msg("User {username} is deactivated and cannot take task {task_id}; choose an active "
                                   "user of the same post.", username=assignee, task_id=task_id))
        if not target.has_role("staff") or (task.lane is not None and task.lane not in target.posts):
            raise InvalidInput(msg("User {username} does not hold the post {post} of task {task_id}; choose a "
                                   "user of that post.", username=assignee, post=task.lane or "-", task_id=task_id))
        conn.execute(update(case_tasks).where(case_tasks.c.id == task_id)
                     .values(status="claimed", assignee=target.username))
        event = _event("task_reassigned", admin, now, row, reason, task.element_id, task_id,
                       previous_assignee=task.assignee, assignee=target.username)
        return service.store(conn, row, runtime, [], admin, now, leading=[event])

    return service.locked_case_operation(_case_of_task(service, task_id), apply)


def skip_step(service: Liuhen, task_id: str, admin: Actor, reason: str,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Complete an open task on behalf of its post, without its form checks; the engine then moves on."""
    require_role(admin, "admin")
    reason = _require_reason(reason)
    data = dict(data or {})
    check_keys(data)

    def apply(conn: Connection, row: Any, runtime: CaseRuntime, now: datetime) -> dict[str, Any]:
        task_row = _open_task(conn, task_id)
        task = runtime.task(UUID(task_id))
        if task is None or task.state != TaskState.READY:
            raise Conflict(msg("Task {task_id} is no longer waiting to be completed.", task_id=task_id))
        event = _event("step_skipped", admin, now, row, reason, task_row.element_id, task_id, data=data)
        checked = controls.check_skip(service, conn, row, task_row, node_extensions(task.task_spec), task.data,
                                      data, admin, now)
        step_events = runtime.complete(task, data, admin.username)
        return service.store(conn, row, runtime, step_events, admin, now, leading=[event, *checked])

    try:
        return service.locked_case_operation(_case_of_task(service, task_id), apply)
    except ControlFailed as failure:
        controls.record_blocked(service, failure)
        raise


def edit_case_data(service: Liuhen, case_id: int, admin: Actor, changes: dict[str, Any],
                   reason: str) -> dict[str, Any]:
    """Change case data as the next steps will see it; the trace keeps old and new values."""
    require_role(admin, "admin")
    reason = _require_reason(reason)
    if not changes:
        raise InvalidInput(msg("No data changes were given; name at least one field and its new value."))
    check_keys(changes)

    def apply(conn: Connection, row: Any, runtime: CaseRuntime, now: datetime) -> dict[str, Any]:
        current = runtime.case_data()
        previous = {key: current.get(key) for key in changes}
        waiting = [t for t in runtime.workflow.get_tasks() if t.state in (TaskState.READY, TaskState.WAITING,
                                                                          TaskState.STARTED)]
        for subprocess in runtime.workflow.subprocesses.values():
            waiting.extend(t for t in subprocess.tasks.values()
                           if t.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED))
        for task in waiting:
            task.data.update(changes)
        event = _event("data_edited", admin, now, row, reason, changes=changes, previous=previous)
        return service.store(conn, row, runtime, [], admin, now, leading=[event])

    return service.locked_case_operation(case_id, apply)


def migrate_case(service: Liuhen, case_id: int, admin: Actor, version: int, reason: str) -> dict[str, Any]:
    """Move a running case to another version of its process where its position still exists.

    Rejected, with the reason, when the case waits on a timer (moving would restart it), runs inside a
    subprocess, or is at or has passed through a step the target version removed.
    """
    require_role(admin, "admin")
    reason = _require_reason(reason)

    def apply(conn: Connection, row: Any, runtime: CaseRuntime, now: datetime) -> dict[str, Any]:
        target = conn.execute(select(definitions.c.id, definitions.c.version).where(
            definitions.c.process_id == row.process_id, definitions.c.version == version)).first()
        if target is None:
            raise NotFound(msg("Process {process_id} has no version {version}.", process_id=row.process_id,
                               version=version))
        if target.id == row.definition_id:
            raise Conflict(msg("Case {case_id} already runs on version {version}.", case_id=case_id,
                               version=version))
        workflow = runtime.workflow
        if workflow.subprocesses:
            raise Conflict(msg("Case {case_id} is inside a subprocess or call activity; it can move to another "
                               "version only when no subprocess is running.", case_id=case_id))
        if runtime.next_timer_due() is not None:
            raise Conflict(msg("Case {case_id} waits on a timer; moving it would restart the timer, so finish or "
                               "cancel that step first.", case_id=case_id))
        parsed, process = service.parsed_definition(target.id)
        diff, _subprocess_diffs = diff_workflow(service.serializer._serializer.registry, workflow, process.spec,
                                                process.subprocess_specs)
        removed = sorted({t.task_spec.bpmn_id or t.task_spec.name for t in diff.removed})
        if removed:
            raise Conflict(msg("Case {case_id} cannot move to version {version}: the case is at or has passed "
                               "through steps that version removed: {steps}.", case_id=case_id, version=version,
                               steps=", ".join(removed)))

        before = {str(t.id): t for t in runtime.ready_human_tasks()}
        migrate_workflow(diff, workflow, process.spec)
        workflow.subprocess_specs = process.subprocess_specs
        moved = CaseRuntime(workflow, parsed, runtime.clock)
        step_events = moved.refresh()
        after = {str(t.id) for t in moved.ready_human_tasks()}
        cancelled = [StepEvent("task_cancelled", task.task_spec.bpmn_id, task_id, {"reason": "migrated"})
                     for task_id, task in before.items() if task_id not in after]
        event = trace.NewEvent("case_migrated", admin.username, now, case_id=case_id, definition_id=target.id,
                               payload={"reason": reason, "approved_by": admin.username,
                                        "from_definition_id": row.definition_id, "to_definition_id": target.id,
                                        "to_version": version})
        ready_again = [s for s in step_events if not (s.kind == "task_ready" and s.task_id in before)]
        return service.store(conn, row, moved, cancelled + ready_again, admin, now, leading=[event],
                             definition_id=target.id)

    return service.locked_case_operation(case_id, apply)

