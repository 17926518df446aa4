"""The operations liuhen offers, each one transaction that stores state and trace together.

The HTTP API and the CLI call these methods only; permission checks for every action live here so
that both front ends enforce the same rules.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import ColumnElement, bindparam, exists, func, insert, literal, or_, select, update
from sqlalchemy.engine import Connection

from engine import controls, quorum, trace
from engine.clock import Clock, SystemClock
from engine.db import Database, case_clocks, case_tasks, cases, definition_files, definitions
from engine.definitions import Limits, ParsedDefinition, ParsedProcess, load_definition
from engine.errors import CaseError, Conflict, ControlFailed, Forbidden, InvalidInput, LiuhenError, NotFound
from engine.forms import check_keys, validate_submission
from engine.i18n import dynamic, msg
from engine.parser import node_extensions
from engine.prepared import PreparedStatement
from engine.runtime import CaseRuntime, StepEvent
from engine.settings import Settings
from engine.state import CaseStateSerializer
from engine.users import Actor, require_role
from engine.validation import Finding, ValidationReport, validate_definition

logger = logging.getLogger(__name__)

RUNTIME_CACHE_SIZE = 256

# Statements of the per-step hot path, built once, because building the expression objects anew on every
# call costs more than running them on SQLite. The step itself runs them through engine.prepared.
_TASK_BY_ID = select(case_tasks).where(case_tasks.c.id == bindparam("task_id"))
_CASE_BY_ID = select(cases).where(cases.c.id == bindparam("case_id"))
_CASE_BY_ID_LOCKED = _CASE_BY_ID.with_for_update()
_CASE_BY_ID_SKIP_LOCKED = _CASE_BY_ID.with_for_update(skip_locked=True)
_CASE_WITH_VERSION = (
    select(cases, definitions.c.version, definitions.c.name.label("process_name"))
    .join(definitions, definitions.c.id == cases.c.definition_id).where(cases.c.id == bindparam("case_id"))
)
_OPEN_TASKS_OF_CASE = (
    select(case_tasks).where(case_tasks.c.case_id == bindparam("case_id"),
                             case_tasks.c.status.in_([literal("ready"), literal("claimed")]))
    .order_by(case_tasks.c.created_at, case_tasks.c.id)
)
_TASK_AND_CASE = (
    select(cases, case_tasks.c.id.label("task_id"), case_tasks.c.element_id.label("task_element_id"),
           case_tasks.c.lane.label("task_lane"), case_tasks.c.status.label("task_status"),
           case_tasks.c.assignee.label("task_assignee"))
    .join(cases, cases.c.id == case_tasks.c.case_id).where(case_tasks.c.id == bindparam("task_id"))
)
_TASK_AND_CASE_LOCKED = _TASK_AND_CASE.with_for_update(of=cases)
_STORE_CASE = update(cases).where(cases.c.id == bindparam("b_case_id"), cases.c.revision == bindparam("b_revision"))
_INSERT_TASK = insert(case_tasks)
_UPDATE_TASK = update(case_tasks).where(case_tasks.c.id == bindparam("b_task_id"))
_LATEST_DEFINITION = (select(definitions).where(definitions.c.process_id == bindparam("process_id"))
                      .order_by(definitions.c.version.desc()).limit(1))
_DEFINITION_VERSION = select(definitions).where(definitions.c.process_id == bindparam("process_id"),
                                                definitions.c.version == bindparam("version"))
# The step runs these statements through engine.prepared.
_STEP_TASK_AND_CASE = PreparedStatement(_TASK_AND_CASE)
_STEP_TASK_AND_CASE_LOCKED = PreparedStatement(_TASK_AND_CASE_LOCKED)
# The open tasks after a step, each with whether its case has an open clock to show.
_STEP_OPEN_TASKS = PreparedStatement(_OPEN_TASKS_OF_CASE.add_columns(
    exists().where(case_clocks.c.case_id == case_tasks.c.case_id, case_clocks.c.stopped_at.is_(None))
    .label("case_has_open_clock")))
_STEP_STORE_CASE = PreparedStatement(_STORE_CASE)
_STEP_INSERT_TASK = PreparedStatement(_INSERT_TASK)
_STEP_UPDATE_TASK = PreparedStatement(_UPDATE_TASK)
_STEP_LATEST_DEFINITION = PreparedStatement(_LATEST_DEFINITION)
_STEP_DEFINITION_VERSION = PreparedStatement(_DEFINITION_VERSION)
_STEP_INSERT_CASE = PreparedStatement(insert(cases).returning(cases.c.id))
DEFINITION_CACHE_SIZE = 64


@dataclass
class DeployedProcess:
    definition_id: int
    process_id: str
    version: int
    content_hash: str
    created: bool


@dataclass
class Deployment:
    """The processes a file deployed and the warnings its validation found, which did not block it."""

    processes: list[DeployedProcess]
    warnings: list[Finding]


class _LRU:
    """A small thread-safe LRU map; ``take`` removes the entry so one request owns it at a time."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def take(self, key: Any) -> Any:
        with self._lock:
            return self._items.pop(key, None)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Liuhen:
    """Facade over the database, the engine and the trace."""

    def __init__(self, settings: Settings, clock: Clock | None = None, database: Database | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = database or Database.from_settings(settings)
        self.limits = Limits(settings.max_upload_bytes, settings.max_xml_depth, settings.max_xml_elements)
        self.serializer = CaseStateSerializer()
        self._definitions = _LRU(DEFINITION_CACHE_SIZE)
        self._runtimes = _LRU(RUNTIME_CACHE_SIZE)
        # A cached engine state of a step whose commit failed would pass for the committed one of the same revision.
        self.db.commit_failure_hooks.append(self._runtimes.clear)
        self._labels = _LRU(DEFINITION_CACHE_SIZE * 16)
        # Hooks run inside the transaction of every stored step, after the task projection is written.
        # Each may write its own rows, and returns trace events to append after the step's events.
        self.step_hooks: list[StepHook] = []
        from engine import clocks

        clocks.install(self)

    def now(self) -> datetime:
        return self.clock.now()

    # definitions

    def validate(self, content: bytes, filename: str) -> ParsedDefinition:
        return load_definition(content, filename, self.limits)

    def validation_report(self, content: bytes, filename: str) -> ValidationReport:
        """Run the deploy checks and every design-time rule on a file, listing all findings."""
        return validate_definition(content, filename, self.limits)

    def deploy(self, content: bytes, filename: str, actor: Actor) -> list[DeployedProcess]:
        """Deploy every startable process in a file as a new version, or report it as already deployed."""
        return self.deploy_file(content, filename, actor).processes

    def deploy_file(self, content: bytes, filename: str, actor: Actor) -> Deployment:
        """Deploy a file as ``deploy`` does and return the warnings of its validation too.

        A file with a validation error is refused with a DefinitionError for the first error, whose
        details list every finding.
        """
        require_role(actor, "designer", "admin")
        report = self.validation_report(content, filename)
        parsed = report.deployable()
        now = self.now()
        results = []
        with self.db.write() as conn:
            trace.lock_system_stream(conn, not self.db.is_sqlite)
            if conn.execute(select(definition_files.c.content_hash)
                            .where(definition_files.c.content_hash == parsed.content_hash)).first() is None:
                conn.execute(insert(definition_files).values(
                    content_hash=parsed.content_hash, filename=filename, content=content, size=len(content),
                    uploaded_at=now))
            events = []
            for process in parsed.processes:
                existing = conn.execute(select(definitions.c.id, definitions.c.version).where(
                    definitions.c.process_id == process.process_id,
                    definitions.c.content_hash == parsed.content_hash)).first()
                if existing:
                    results.append(DeployedProcess(existing.id, process.process_id, existing.version,
                                                   parsed.content_hash, False))
                    continue
                version = (conn.execute(select(func.max(definitions.c.version))
                                        .where(definitions.c.process_id == process.process_id)).scalar() or 0) + 1
                power_item = process.power_item
                definition_id = conn.execute(insert(definitions).values(
                    process_id=process.process_id, version=version, content_hash=parsed.content_hash,
                    name=process.name, kind=power_item["kind"] if power_item else None, power_item=power_item,
                    deployed_by=actor.username, deployed_at=now,
                ).returning(definitions.c.id)).scalar_one()
                results.append(DeployedProcess(definition_id, process.process_id, version, parsed.content_hash, True))
                events.append(trace.NewEvent(
                    "definition_deployed", actor.username, now, definition_id=definition_id,
                    element_id=process.process_id,
                    payload={"process_id": process.process_id, "version": version, "filename": filename,
                             "content_hash": parsed.content_hash, "name": process.name},
                ))
            trace.append(conn, trace.SYSTEM_STREAM, events)
        for result in results:
            if result.created:
                logger.info("deployed %s version %s", result.process_id, result.version,
                            extra={"definition_id": result.definition_id, "content_hash": result.content_hash})
        return Deployment(results, report.warnings)

    def list_definitions(self, process_id: str | None = None) -> list[dict[str, Any]]:
        query = select(definitions).order_by(definitions.c.process_id, definitions.c.version)
        if process_id:
            query = query.where(definitions.c.process_id == process_id)
        with self.db.read() as conn:
            return [_definition_dict(row) for row in conn.execute(query)]

    def get_definition(self, process_id: str, version: int | None = None) -> dict[str, Any]:
        with self.db.read() as conn:
            row = self._definition_row(conn, process_id, version)
        return _definition_dict(row)

    def definition_content(self, process_id: str, version: int | None = None) -> tuple[str, bytes]:
        with self.db.read() as conn:
            row = self._definition_row(conn, process_id, version)
            file = conn.execute(select(definition_files).where(
                definition_files.c.content_hash == row.content_hash)).one()
        return file.filename, bytes(file.content)

    def definition_nodes(self, definition_id: int) -> dict[str, Any]:
        parsed, _process = self.parsed_definition(definition_id)
        return {node_id: vars(node) for node_id, node in parsed.nodes.items()}

    def _definition_row(self, conn: Connection, process_id: str, version: int | None) -> Any:
        if version is None:
            row = _STEP_LATEST_DEFINITION.first(conn, {"process_id": process_id})
        else:
            row = _STEP_DEFINITION_VERSION.first(conn, {"process_id": process_id, "version": version})
        if row is None:
            if version is None:
                raise NotFound(msg("No process {process_id} is deployed; deploy its BPMN file first.",
                                   process_id=process_id))
            raise NotFound(msg("Process {process_id} has no version {version}.", process_id=process_id,
                               version=version))
        return row

    def parsed_definition(self, definition_id: int) -> tuple[ParsedDefinition, ParsedProcess]:
        """Parse (or take from the cache) the pinned bytes of a deployed definition."""
        cached = self._definitions.get(definition_id)
        if cached is not None:
            return cached
        with self.db.read() as conn:
            row = conn.execute(
                select(definitions.c.process_id, definition_files.c.content, definition_files.c.filename)
                .join(definition_files, definition_files.c.content_hash == definitions.c.content_hash)
                .where(definitions.c.id == definition_id)).first()
        if row is None:
            raise NotFound(msg("Definition {definition_id} does not exist.", definition_id=definition_id))
        # Stored bytes passed the checks once; parse them without the upload limits of today's settings.
        parsed = load_definition(bytes(row.content), row.filename, Limits(max_bytes=1 << 40, max_depth=1 << 20,
                                                                         max_elements=1 << 40))
        entry = (parsed, parsed.process(row.process_id))
        self._definitions.put(definition_id, entry)
        return entry

    # cases

    def start_case(self, process_id: str, actor: Actor, data: dict[str, Any] | None = None,
                   title: str | None = None, version: int | None = None) -> dict[str, Any]:
        require_role(actor, "staff", "admin")
        data = dict(data or {})
        check_keys(data)
        if title is not None and len(title) > 255:
            raise InvalidInput(msg("The case title is {length} characters long, over the limit of 255.",
                                   length=len(title)))
        now = self.now()
        with self.db.write() as conn:
            definition = self._definition_row(conn, process_id, version)
            parsed, process = self.parsed_definition(definition.id)
            runtime, step_events = CaseRuntime.start(process, parsed, self.clock, data)
            case_id = _STEP_INSERT_CASE.scalar(conn, {
                "definition_id": definition.id, "process_id": process_id, "title": title, "status": "running",
                "started_by": actor.username, "started_at": now, "revision": 0, "state": b"{}", "data": {},
                "trace_seq": 0, "trace_head": trace.GENESIS,
                "department": _case_department(actor, definition.power_item),
            })
            started = trace.NewEvent("case_started", actor.username, now, case_id=case_id,
                                     definition_id=definition.id, element_id=process_id,
                                     payload={"process_id": process_id, "version": definition.version,
                                              "title": title, "data": data})
            result = self._store(conn, _NewCase(case_id, definition.id, 0, 0, trace.GENESIS, process_id, title,
                                                actor.username, now),
                                 runtime, step_events, actor, now, leading=[started])
        logger.info("case started", extra={"case_id": case_id, "process_id": process_id,
                                            "definition_id": definition.id})
        return result

    def get_case(self, case_id: int) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(_CASE_WITH_VERSION, {"case_id": case_id}).first()
            if row is None:
                raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
            # Open tasks only: a long case has thousands of finished ones, listed by list_tasks(status="any").
            tasks = [_task_dict(task) for task in conn.execute(_OPEN_TASKS_OF_CASE, {"case_id": case_id})]
            if tasks:
                from engine.clocks import task_urgency

                task_urgency(self, conn, tasks)
        result = _case_dict(row)
        result["data"] = row.data
        result["tasks"] = tasks
        return result

    def list_cases(self, *, status: str | None = None, process_id: str | None = None,
                   limit: int = 100, offset: int = 0,
                   visible: ColumnElement[bool] | None = None) -> list[dict[str, Any]]:
        """List cases, newest first; ``visible`` is an optional condition on ``cases`` a case must meet."""
        query = (select(cases.c.id, cases.c.definition_id, cases.c.process_id, cases.c.title, cases.c.status,
                        cases.c.started_by, cases.c.started_at, cases.c.ended_at, cases.c.end_element_id,
                        cases.c.revision, cases.c.next_timer_at, definitions.c.version,
                        definitions.c.name.label("process_name"))
                 .join(definitions, definitions.c.id == cases.c.definition_id)
                 .order_by(cases.c.id.desc()).limit(min(limit, 1000)).offset(offset))
        if status:
            query = query.where(cases.c.status == status)
        if process_id:
            query = query.where(cases.c.process_id == process_id)
        if visible is not None:
            query = query.where(visible)
        with self.db.read() as conn:
            return [_case_dict(row) for row in conn.execute(query)]

    def list_tasks(self, actor: Actor, *, scope: str = "mine", case_id: int | None = None,
                   status: str = "open") -> list[dict[str, Any]]:
        """List tasks: ``mine`` (claimable by the actor's posts or assigned to them) or ``all``."""
        query = select(case_tasks).order_by(case_tasks.c.created_at, case_tasks.c.id)
        if status == "open":
            query = query.where(case_tasks.c.status.in_(("ready", "claimed")))
        elif status != "any":
            query = query.where(case_tasks.c.status == status)
        if case_id is not None:
            query = query.where(case_tasks.c.case_id == case_id)
        if scope == "mine":
            query = query.where(or_(
                case_tasks.c.assignee == actor.username,
                (case_tasks.c.status == "ready") & or_(case_tasks.c.lane.in_(sorted(actor.posts)),
                                                       case_tasks.c.lane.is_(None)),
            ))
        elif scope == "all":
            require_role(actor, "auditor", "admin", "staff")
        else:
            raise InvalidInput(msg("Task scope {scope!r} is unknown; use mine or all.", scope=scope))
        from engine.clocks import task_urgency

        with self.db.read() as conn:
            tasks = [_task_dict(row) for row in conn.execute(query.limit(1000))]
            # The staff pages sort by these: the card, due time and working days left of each open task.
            task_urgency(self, conn, tasks)
        return tasks

    def get_task(self, task_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = self._task_row(conn, task_id)
        result = _task_dict(row)
        case = self.get_case(row.case_id)
        # An open task is among the case's open tasks, which carry its card, due time and working days left.
        open_task = next((task for task in case["tasks"] if task["id"] == task_id), None)
        urgency = ("card", "due_at", "days_left")
        result.update({key: open_task[key] if open_task else None for key in urgency})
        parsed, _process = self.parsed_definition(case["definition_id"])
        node = parsed.nodes.get(row.element_id)
        result["form_fields"] = node.extensions.get("form_fields", []) if node else []
        result["risk_checkpoints"] = node.extensions.get("risk_checkpoints", []) if node else []
        result["data"] = case["data"]
        review = quorum.task_review(self, task_id, node.extensions if node else {})
        if review is not None:
            result["review"] = review
        return result

    def claim(self, task_id: str, actor: Actor) -> dict[str, Any]:
        def change(conn: Connection, row: Any, task: Any, now: datetime) -> list[trace.NewEvent]:
            if task.status == "claimed" and task.assignee == actor.username:
                raise Conflict(msg("You have already claimed task {task_id}.", task_id=task_id))
            _require_open(task)
            if task.status == "claimed":
                raise Conflict(msg("Task {task_id} is already claimed by {assignee}.", task_id=task_id,
                                   assignee=task.assignee))
            _require_post(actor, task)
            evaluated = controls.check_claim(self, conn, row, task, actor, now)
            conn.execute(update(case_tasks).where(case_tasks.c.id == task_id)
                         .values(status="claimed", assignee=actor.username))
            return [*evaluated, trace.NewEvent("task_claimed", actor.username, now, case_id=row.id,
                                               definition_id=row.definition_id, element_id=task.element_id,
                                               task_id=task_id)]

        try:
            return self._task_action(task_id, change)
        except ControlFailed as failure:
            controls.record_blocked(self, failure)
            raise

    def release(self, task_id: str, actor: Actor) -> dict[str, Any]:
        def change(conn: Connection, row: Any, task: Any, now: datetime) -> list[trace.NewEvent]:
            _require_open(task)
            if task.status != "claimed":
                raise Conflict(msg("Task {task_id} is not claimed, so there is nothing to release.",
                                   task_id=task_id))
            if task.assignee != actor.username and not actor.has_role("admin"):
                raise Forbidden(msg("Task {task_id} is claimed by {assignee}; only they or an administrator "
                                    "can release it.", task_id=task_id, assignee=task.assignee))
            conn.execute(update(case_tasks).where(case_tasks.c.id == task_id).values(status="ready", assignee=None))
            return [trace.NewEvent("task_released", actor.username, now, case_id=row.id,
                                   definition_id=row.definition_id, element_id=task.element_id, task_id=task_id,
                                   payload={"previous_assignee": task.assignee})]

        return self._task_action(task_id, change)

    def _task_action(self, task_id: str, change: Any) -> dict[str, Any]:
        with self.db.read() as conn:
            case_id = self._task_row(conn, task_id).case_id
        self.append_case_events(case_id, lambda conn, row, now: change(conn, row, self._task_row(conn, task_id), now))
        return self.get_task(task_id)

    def append_case_events(self, case_id: int, change: Callable[[Connection, Any, datetime], list[trace.NewEvent]],
                           ) -> None:
        """Run ``change(conn, row, now)`` on the locked case row and append the trace events it returns.

        One transaction for an action that moves no engine state: a claim, an override, a blocked attempt.
        """
        now = self.now()
        with self.db.write() as conn:
            row = conn.execute(self._case_locked(), {"case_id": case_id}).first()
            if row is None:
                raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
            events = change(conn, row, now)
            seq, head = trace.append(conn, trace.case_stream(case_id), events, (row.trace_seq, row.trace_head))
            conn.execute(update(cases).where(cases.c.id == case_id).values(
                revision=cases.c.revision + 1, trace_seq=seq, trace_head=head))
            # Only the revision moved; keep a cached engine state usable under its new number.
            cached = self._runtimes.take(case_id)
            if cached is not None and cached[0] == row.revision:
                self._runtimes.put(case_id, (row.revision + 1, cached[1]))

    def complete(self, task_id: str, actor: Actor, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Complete a task with submitted data and run the engine to the next wait state."""
        try:
            return self._complete(task_id, actor, data)
        except ControlFailed as failure:
            # The step was rolled back; the failed evaluations are evidence and are kept.
            controls.record_blocked(self, failure)
            raise

    def task_to_complete(self, conn: Connection, task_id: str, actor: Actor, *, lock: bool) -> tuple[Any, Any]:
        """Read an open task with its case row, and check that ``actor`` may complete it now.

        Returns the joined task-and-case row and a view of the task. With ``lock``, the case row is locked
        for the rest of the transaction (PostgreSQL). Both a completion and its dry run start here.
        """
        _check_task_id(task_id)
        statement = _STEP_TASK_AND_CASE_LOCKED if lock else _STEP_TASK_AND_CASE
        row = statement.first(conn, {"task_id": task_id})
        if row is None:
            raise NotFound(msg("Task {task_id} does not exist.", task_id=task_id))
        task_row = _TaskView(task_id, row.task_element_id, row.task_lane, row.task_status, row.task_assignee)
        _require_open(task_row)
        if task_row.status == "claimed" and task_row.assignee != actor.username:
            raise Conflict(msg("Task {task_id} is claimed by {assignee}; ask them to release it first.",
                               task_id=task_id, assignee=task_row.assignee))
        _require_post(actor, task_row)
        return row, task_row

    def _complete(self, task_id: str, actor: Actor, data: dict[str, Any] | None) -> dict[str, Any]:
        data = dict(data or {})
        now = self.now()
        with self.db.write() as conn:
            row, task_row = self.task_to_complete(conn, task_id, actor, lock=not self.db.is_sqlite)
            case_id = row.id
            runtime = self._runtime(row)
            try:
                task = runtime.task(UUID(task_id))
                if task is None or task.state != TaskState.READY:
                    raise Conflict(msg("Task {task_id} is no longer waiting to be completed.", task_id=task_id))
                fields = runtime.form_fields(task)
                submitted = validate_submission(fields, data)
                leading = []
                if task_row.status == "ready":
                    leading.append(trace.NewEvent("task_claimed", actor.username, now, case_id=case_id,
                                                  definition_id=row.definition_id, element_id=task_row.element_id,
                                                  task_id=task_id, payload={"implicit": True}))
                leading.extend(controls.check_completion(self, conn, row, node_extensions(task.task_spec), task.data,
                                                         submitted, actor, now))
                # A step that needs several approvers records a vote and completes only at the last one.
                result = quorum.complete_with_review(self, conn, row, task, runtime, actor, submitted, now, leading)
                if result is None:
                    step_events = runtime.complete(task, submitted, actor.username)
                    result = self._store(conn, row, runtime, step_events, actor, now, leading=leading)
            except BaseException:
                self._runtimes.take(case_id)
                raise
        logger.info("task completed", extra={"case_id": case_id, "task_id": task_id, "actor": actor.username})
        return result

    def cancel_case(self, case_id: int, actor: Actor, reason: str) -> dict[str, Any]:
        require_role(actor, "admin")
        if not reason or len(reason.strip()) < 2:
            raise InvalidInput(msg("Cancelling a case needs a written reason; state why."))
        now = self.now()
        with self.db.write() as conn:
            row = conn.execute(self._case_locked(), {"case_id": case_id}).first()
            if row is None:
                raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
            if row.status != "running":
                raise Conflict(msg("Case {case_id} is {status}; only running cases can be cancelled.",
                                   case_id=case_id, status=dynamic(row.status)))
            runtime = self._runtime(row)
            try:
                step_events = runtime.cancel()
                result = self._store(conn, row, runtime, step_events, actor, now,
                                     closing=trace.NewEvent("case_cancelled", actor.username, now, case_id=case_id,
                                                            definition_id=row.definition_id,
                                                            payload={"reason": reason}),
                                     status="cancelled")
            except BaseException:
                self._runtimes.take(case_id)
                raise
        return result

    def fire_due_timers(self, actor: Actor | None = None) -> list[int]:
        """Fire the timers that are due by the injected clock; returns the ids of cases that moved."""
        now = self.now()
        with self.db.read() as conn:
            due = [r.id for r in conn.execute(select(cases.c.id).where(
                cases.c.status == "running", cases.c.next_timer_at.is_not(None), cases.c.next_timer_at < now)
                .order_by(cases.c.next_timer_at))]
        moved = []
        lock = _CASE_BY_ID if self.db.is_sqlite else _CASE_BY_ID_SKIP_LOCKED
        for case_id in due:
            try:
                with self.db.write() as conn:
                    # Another worker or a request holding the case takes care of it, so skip it here.
                    row = conn.execute(lock, {"case_id": case_id}).first()
                    due_at = _utc(row.next_timer_at) if row is not None else None
                    # SpiffWorkflow fires a timer once its due time is strictly in the past.
                    if row is None or row.status != "running" or due_at is None or due_at >= now:
                        continue
                    runtime = self._runtime(row)
                    try:
                        step_events = runtime.fire_timers()
                        self._store(conn, row, runtime, step_events, actor or _system_actor(), now)
                    except BaseException:
                        self._runtimes.take(case_id)
                        raise
            except LiuhenError as exc:
                # One broken case must not stop the timers of all the others; it is retried next round.
                logger.warning("firing timers of case %s failed: %s", case_id, exc,
                               extra={"case_id": case_id, "code": exc.code})
                continue
            moved.append(case_id)
        return moved

    # trace

    def case_trace(self, case_id: int) -> list[dict[str, Any]]:
        """Return the events of a case's trace, read from the read replica when one is configured."""
        with self.db.read(replica=True) as conn:
            if conn.execute(select(cases.c.id).where(cases.c.id == case_id)).first() is None:
                raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
            return trace.read_stream(conn, trace.case_stream(case_id))

    def system_trace(self) -> list[dict[str, Any]]:
        with self.db.read(replica=True) as conn:
            return trace.read_stream(conn, trace.SYSTEM_STREAM)

    def verify(self, case_id: int | None = None) -> list[trace.StreamReport]:
        with self.db.read() as conn:
            if case_id is not None:
                if conn.execute(select(cases.c.id).where(cases.c.id == case_id)).first() is None:
                    raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
                streams = [trace.case_stream(case_id)]
            else:
                streams = trace.all_streams(conn)
            return trace.verify_streams(conn, streams)

    # internals

    def locked_case_operation(self, case_id: int, apply: Any) -> dict[str, Any]:
        """Run ``apply(conn, row, runtime, now)`` on a running case inside one locked write transaction.

        ``apply`` ends by calling ``store``; a failure drops the cached engine state so the next request
        reloads the committed one.
        """
        now = self.now()
        with self.db.write() as conn:
            row = conn.execute(self._case_locked(), {"case_id": case_id}).first()
            if row is None:
                raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
            runtime = self._runtime(row)
            try:
                return apply(conn, row, runtime, now)
            except BaseException:
                self._runtimes.take(case_id)
                raise

    def store(self, conn: Connection, row: Any, runtime: CaseRuntime, step_events: list[StepEvent], actor: Actor,
              now: datetime, **options: Any) -> dict[str, Any]:
        """Public name of ``_store`` for engine modules that add case operations."""
        return self._store(conn, row, runtime, step_events, actor, now, **options)

    def _case_locked(self) -> Any:
        return _CASE_BY_ID if self.db.is_sqlite else _CASE_BY_ID_LOCKED

    def _task_row(self, conn: Connection, task_id: str) -> Any:
        _check_task_id(task_id)
        row = conn.execute(_TASK_BY_ID, {"task_id": task_id}).first()
        if row is None:
            raise NotFound(msg("Task {task_id} does not exist.", task_id=task_id))
        return row

    def _runtime(self, row: Any) -> CaseRuntime:
        if row.status != "running":
            raise Conflict(msg("Case {case_id} is {status} and cannot take further steps.", case_id=row.id,
                               status=dynamic(row.status)))
        cached = self._runtimes.take(row.id)
        if cached is not None and cached[0] == row.revision:
            return cached[1]
        parsed, process = self.parsed_definition(row.definition_id)
        try:
            workflow = self.serializer.loads(bytes(row.state), process.spec, process.subprocess_specs)
        except (ValueError, KeyError) as exc:
            raise CaseError(msg("The stored state of case {case_id} cannot be read: {reason}.",
                                case_id=row.id, reason=str(exc))) from exc
        return CaseRuntime(workflow, parsed, self.clock)

    def _store(self, conn: Connection, row: Any, runtime: CaseRuntime, step_events: list[StepEvent], actor: Actor,
               now: datetime, *, leading: list[trace.NewEvent] | None = None,
               closing: trace.NewEvent | None = None, status: str | None = None,
               definition_id: int | None = None) -> dict[str, Any]:
        """Write the case's new state, its task projection and its trace events in the caller's transaction.

        ``row`` is the locked case row as read at the start of the step. Returns the case as get_case
        would after the commit, read inside this transaction.
        """
        case_id, revision = row.id, row.revision
        moved = definition_id is not None and definition_id != row.definition_id
        definition_id = definition_id or row.definition_id
        events = list(leading or [])
        for step in step_events:
            events.append(trace.NewEvent(step.kind, actor.username, now, case_id=case_id,
                                         definition_id=definition_id, element_id=step.element_id,
                                         task_id=step.task_id, payload=step.payload))
        self._project_tasks(conn, case_id, step_events, actor, now)

        end_element = None
        if status is None:
            if runtime.reached_end():
                status = "completed"
                ends = [s.element_id for s in step_events if s.kind == "end_event_reached"]
                end_element = ends[-1] if ends else None
                events.append(trace.NewEvent("case_completed", actor.username, now, case_id=case_id,
                                             definition_id=definition_id, element_id=end_element))
            elif runtime.workflow.is_completed():
                raise CaseError(msg("Case {case_id} ran out of steps without reaching an end event; check the "
                                    "flowchart for a dead end.", case_id=case_id))
            else:
                status = "running"
        if closing is not None:
            events.append(closing)
        if self.step_hooks:
            context = StepContext(conn, case_id, row.process_id, definition_id, step_events, status, actor, now)
            for hook in self.step_hooks:
                events.extend(hook(context))

        seq, head = trace.append(conn, trace.case_stream(case_id), events, (row.trace_seq, row.trace_head))
        data = runtime.case_data()
        next_timer_at = runtime.next_timer_due() if status == "running" else None
        ended_at = now if status != "running" else None
        values = {
            "b_case_id": case_id, "b_revision": revision,
            "state": self.serializer.dumps(runtime.workflow), "data": data, "status": status,
            "revision": revision + 1, "next_timer_at": next_timer_at, "ended_at": ended_at,
            "end_element_id": end_element, "trace_seq": seq, "trace_head": head,
        }
        if moved:
            values["definition_id"] = definition_id
        if _STEP_STORE_CASE.run(conn, values) != 1:
            raise Conflict(msg("Case {case_id} was changed by someone else at the same time; reload and try again.",
                               case_id=case_id))
        if status == "running":
            self._runtimes.put(case_id, (revision + 1, runtime))

        version, process_name = self._definition_label(conn, definition_id)
        tasks = _STEP_OPEN_TASKS.all(conn, {"case_id": case_id}) if status == "running" else []
        task_dicts = [_task_dict(task) for task in tasks]
        if tasks and not tasks[0].case_has_open_clock:
            # Without an open clock task_urgency finds no card, due time or days left either, at a higher cost.
            for task in task_dicts:
                task.update(card=None, due_at=None, days_left=None)
        elif task_dicts:
            from engine.clocks import task_urgency

            # The same card, due time and working days left as list_tasks, from the clocks this step stored.
            task_urgency(self, conn, task_dicts)
        return {
            "id": case_id, "definition_id": definition_id, "process_id": row.process_id,
            "process_name": process_name, "version": version, "title": row.title, "status": status,
            "started_by": row.started_by, "started_at": _utc(row.started_at), "ended_at": _utc(ended_at),
            "end_element_id": end_element, "revision": revision + 1, "next_timer_at": _utc(next_timer_at),
            "data": data, "tasks": task_dicts,
        }

    def _definition_label(self, conn: Connection, definition_id: int) -> tuple[int, str]:
        """Version number and process name of a definition; immutable, so cached."""
        cached = self._labels.get(definition_id)
        if cached is None:
            label = conn.execute(select(definitions.c.version, definitions.c.name)
                                 .where(definitions.c.id == definition_id)).one()
            cached = (label.version, label.name)
            self._labels.put(definition_id, cached)
        return cached

    def _project_tasks(self, conn: Connection, case_id: int, step_events: list[StepEvent], actor: Actor,
                       now: datetime) -> None:
        ready = [{"id": step.task_id, "case_id": case_id, "element_id": step.element_id,
                  "name": step.payload.get("name"), "lane": step.payload.get("lane"), "status": "ready",
                  "created_at": now}
                 for step in step_events if step.kind == "task_ready"]
        for step in step_events:
            if step.kind == "task_completed":
                _STEP_UPDATE_TASK.run(conn, {"b_task_id": step.task_id, "status": "completed", "completed_at": now,
                                             "completed_by": actor.username, "assignee": actor.username})
            elif step.kind == "task_cancelled":
                _STEP_UPDATE_TASK.run(conn, {"b_task_id": step.task_id, "status": "cancelled", "completed_at": now})
        _STEP_INSERT_TASK.run_many(conn, ready)


@dataclass
class StepContext:
    """Input of a step hook: the open transaction, the case, the engine's step events and the new status."""

    conn: Connection
    case_id: int
    process_id: str
    definition_id: int
    step_events: list[StepEvent]
    status: str
    actor: Actor
    now: datetime


StepHook = Callable[[StepContext], list[trace.NewEvent]]


@dataclass
class _NewCase:
    """The columns of a case row inserted in this transaction, as _store reads them."""

    id: int
    definition_id: int
    revision: int
    trace_seq: int
    trace_head: str
    process_id: str
    title: str | None
    started_by: str
    started_at: datetime


@dataclass
class _TaskView:
    id: str
    element_id: str
    lane: str | None
    status: str
    assignee: str | None


def _check_task_id(task_id: str) -> None:
    try:
        UUID(task_id)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(msg("Task {task_id} does not exist; task ids are UUIDs.", task_id=task_id)) from None


def _case_department(actor: Actor, power_item: dict[str, Any] | None) -> str | None:
    """Return the department a case belongs to: the starting official's, else the power item's handling body."""
    return actor.department or (power_item or {}).get("handling_body")


def _system_actor() -> Actor:
    from engine.users import SYSTEM_ACTOR

    return SYSTEM_ACTOR


def _require_open(task: Any) -> None:
    if task.status not in ("ready", "claimed"):
        raise Conflict(msg("Task {task_id} is already {status}.", task_id=task.id, status=dynamic(task.status)))


def _require_post(actor: Actor, task: Any) -> None:
    if not actor.has_role("staff"):
        raise Forbidden(msg("User {username} is not business staff and cannot act on tasks.",
                            username=actor.username))
    if task.lane is not None and task.lane not in actor.posts:
        raise Forbidden(msg("Task {task_id} belongs to the post {post}, which user {username} does not hold.",
                            task_id=task.id, post=task.lane, username=actor.username))


def _definition_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "process_id": row.process_id, "version": row.version, "name": row.name,
        "kind": row.kind, "content_hash": row.content_hash, "power_item": row.power_item,
        "deployed_by": row.deployed_by, "deployed_at": _utc(row.deployed_at),
    }


def _case_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "definition_id": row.definition_id, "process_id": row.process_id,
        "process_name": row.process_name, "version": row.version, "title": row.title, "status": row.status,
        "started_by": row.started_by, "started_at": _utc(row.started_at), "ended_at": _utc(row.ended_at),
        "end_element_id": row.end_element_id, "revision": row.revision, "next_timer_at": _utc(row.next_timer_at),
    }


def _task_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "case_id": row.case_id, "element_id": row.element_id, "name": row.name, "lane": row.lane,
        "status": row.status, "assignee": row.assignee, "created_at": _utc(row.created_at),
        "completed_at": _utc(row.completed_at), "completed_by": row.completed_by,
    }
