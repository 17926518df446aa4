"""The floor under liuhen's engine: the writes of each step in raw SQL, with none of the service around them.

A floor variant runs the benchmark flow with SpiffWorkflow and stores, per step, what liuhen stores:
the case row, the ``case_tasks`` projection and the hash-chained trace events, in one transaction on
the database liuhen migrates. It skips everything else liuhen does in a step: SQLAlchemy, the
permission, form, control and clock checks, the version and revision bookkeeping, and the task and
case dictionaries returned to the caller. Its rate is therefore an upper bound on what any
implementation of liuhen's storage design can reach on this machine. It stores fewer details than
liuhen does, never more, so it can only err towards a higher rate.

The variants differ in two ways. ``state`` also serializes the whole workflow into ``cases.state`` at
each step, as liuhen does so that another process or a restart can take up the case. ``memory``
copies the migrated database into an SQLite database in memory, so no step touches the disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.util.task import TaskState

from bench.variants import BPMN_FILE, DESIGNER, PROCESS_ID, SUBMISSION, USER_TASKS_PER_CASE, BenchmarkError
from engine.migrate import upgrade
from engine.service import Liuhen
from engine.settings import Settings
from engine.state import CaseStateSerializer
from engine.trace import GENESIS, TRACE_FORMAT, canonical_bytes, canonical_time

_INSERT_CASE = (
    "INSERT INTO cases (definition_id, process_id, status, started_by, started_at, revision, state, data, "
    "trace_seq, trace_head) VALUES (?, ?, 'running', ?, ?, 0, ?, '{}', 0, ?) RETURNING id"
)
_INSERT_EVENT = (
    "INSERT INTO trace_events (stream, seq, case_id, definition_id, kind, element_id, actor, at, body, "
    "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TASK = (
    "INSERT INTO case_tasks (id, case_id, element_id, name, lane, status, created_at) "
    "VALUES (?, ?, ?, ?, ?, 'ready', ?)"
)
_COMPLETE_TASK = (
    "UPDATE case_tasks SET status = 'completed', completed_at = ?, completed_by = ?, assignee = ? WHERE id = ?"
)
_TASK_AND_CASE = (
    "SELECT cases.id, cases.revision, cases.trace_seq, cases.trace_head, case_tasks.status "
    "FROM case_tasks JOIN cases ON cases.id = case_tasks.case_id WHERE case_tasks.id = ?"
)
_STORE_CASE = (
    "UPDATE cases SET revision = ?, status = ?, trace_seq = ?, trace_head = ?, state = ?, data = ?, "
    "ended_at = ? WHERE id = ? AND revision = ?"
)
_OPEN_TASKS = "SELECT id FROM case_tasks WHERE case_id = ? AND status IN ('ready', 'claimed') ORDER BY created_at"

# One step's trace events before they are chained: kind, element id, task id and payload.
_Event = tuple[str, str | None, str | None, dict[str, Any]]


class FloorVariant:
    """SpiffWorkflow plus liuhen's per-step writes in raw SQL on a migrated SQLite database."""

    backend = "floor"

    def __init__(self, work_dir: Path, *, state: bool, memory: bool) -> None:
        self.state = state
        where = "SQLite in memory" if memory else "SQLite file"
        self.name = f"floor: raw SQL on {where}, {'with' if state else 'without'} case state"
        path = work_dir / f"floor-{'state' if state else 'nostate'}-{'memory' if memory else 'file'}.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        service = Liuhen(Settings(database_url=url, data_dir=work_dir))
        self.definition_id = service.deploy(BPMN_FILE.read_bytes(), BPMN_FILE.name, DESIGNER)[0].definition_id
        service.db.dispose()

        if memory:
            self.conn = sqlite3.connect(":memory:", isolation_level=None)
            with contextlib.closing(sqlite3.connect(path)) as source:
                source.backup(self.conn)
        else:
            self.conn = sqlite3.connect(path, isolation_level=None)
            # The settings liuhen's engine uses for SQLite.
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")

        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN_FILE))
        self.spec = parser.get_spec(PROCESS_ID)
        self.serializer = CaseStateSerializer()

    def run(self, cases: int) -> float:
        """Run ``cases`` cases one after another and return the elapsed seconds."""
        started = perf_counter()
        for _ in range(cases):
            self.run_case()
        return perf_counter() - started

    def run_case(self) -> int:
        """Start one case, complete its two user tasks with one transaction per step, and return the case id."""
        workflow, case_id = self._start()
        for _ in range(USER_TASKS_PER_CASE):
            rows = self.conn.execute(_OPEN_TASKS, (case_id,)).fetchall()
            if len(rows) != 1:
                raise BenchmarkError(f"Floor case {case_id} has {len(rows)} open tasks, expected exactly 1.")
            self._complete(workflow, rows[0][0])
        if not workflow.is_completed():
            raise BenchmarkError(f"Floor case {case_id} did not finish after {USER_TASKS_PER_CASE} user tasks.")
        return case_id

    def _start(self) -> tuple[BpmnWorkflow, int]:
        now = datetime.now(UTC)
        self.conn.execute("BEGIN IMMEDIATE")
        workflow = BpmnWorkflow(self.spec)
        events = _advance(workflow, {}, lambda: None, {})
        case_id = self.conn.execute(_INSERT_CASE, (self.definition_id, PROCESS_ID, "staff", now, b"{}",
                                                   GENESIS)).fetchone()[0]
        started: _Event = ("case_started", PROCESS_ID, None,
                           {"process_id": PROCESS_ID, "version": 1, "title": None, "data": {}})
        self._project(case_id, events, now)
        head = self._append(case_id, (0, GENESIS), [started, *events], now)
        self._store(case_id, 0, head, workflow, now)
        self.conn.execute("COMMIT")
        return workflow, case_id

    def _complete(self, workflow: BpmnWorkflow, task_id: str) -> None:
        now = datetime.now(UTC)
        self.conn.execute("BEGIN IMMEDIATE")
        case_id, revision, seq, head, _status = self.conn.execute(_TASK_AND_CASE, (task_id,)).fetchone()
        task = workflow.get_task_from_id(UUID(task_id))
        previous = {key: task.data[key] for key in SUBMISSION if key in task.data}
        task.data.update(SUBMISSION)
        completed = {task.id: {"data": SUBMISSION, "previous": previous}}
        events = _advance(workflow, _states(workflow), task.run, completed)
        claimed: _Event = ("task_claimed", task.task_spec.bpmn_id, task_id, {"implicit": True})
        self._project(case_id, events, now)
        if workflow.is_completed():
            events.append(("case_completed", events[-1][1], None, {}))
        head = self._append(case_id, (seq, head), [claimed, *events], now)
        self._store(case_id, revision, head, workflow, now)
        self.conn.execute("COMMIT")

    def _project(self, case_id: int, events: list[_Event], now: datetime) -> None:
        for kind, element_id, task_id, payload in events:
            if kind == "task_ready":
                self.conn.execute(_INSERT_TASK, (task_id, case_id, element_id, payload["name"], payload["lane"], now))
            elif kind == "task_completed":
                self.conn.execute(_COMPLETE_TASK, (now, "staff", "staff", task_id))

    def _append(self, case_id: int, head: tuple[int, str], events: list[_Event], now: datetime) -> tuple[int, str]:
        seq, prev = head
        stream, at = f"case:{case_id}", canonical_time(now)
        rows = []
        for kind, element_id, task_id, payload in events:
            seq += 1
            body = canonical_bytes({
                "format": TRACE_FORMAT, "stream": stream, "seq": seq, "kind": kind, "actor": "staff", "at": at,
                "case_id": case_id, "definition_id": self.definition_id, "element_id": element_id,
                "task_id": task_id, "payload": payload, "prev": prev,
            })
            digest = hashlib.sha256(body).hexdigest()
            rows.append((stream, seq, case_id, self.definition_id, kind, element_id, "staff", now, body, prev, digest))
            prev = digest
        self.conn.executemany(_INSERT_EVENT, rows)
        return seq, prev

    def _store(self, case_id: int, revision: int, head: tuple[int, str], workflow: BpmnWorkflow,
               now: datetime) -> None:
        finished = workflow.is_completed()
        state = self.serializer.dumps(workflow) if self.state else b"{}"
        self.conn.execute(_STORE_CASE, (revision + 1, "completed" if finished else "running", head[0], head[1], state,
                                        "{}", now if finished else None, case_id, revision))

    def clear_samples(self) -> None:
        pass

    def close(self) -> None:
        self.conn.close()


def _states(workflow: BpmnWorkflow) -> dict[UUID, TaskState]:
    return {task.id: task.state for task in workflow.tasks.values()}


def _advance(workflow: BpmnWorkflow, before: dict[UUID, TaskState], operation: Any,
             completed: dict[UUID, dict[str, Any]]) -> list[_Event]:
    """Run ``operation`` and the engine steps after it, and list the events liuhen's trace would contain."""
    operation()
    workflow.do_engine_steps()
    events: list[_Event] = []
    for task in workflow.tasks.values():
        if before.get(task.id) == task.state:
            continue
        spec = task.task_spec
        if task.state == TaskState.READY and spec.manual:
            events.append(("task_ready", spec.bpmn_id, str(task.id), {"name": spec.bpmn_name, "lane": spec.lane}))
        elif task.state == TaskState.COMPLETED and task.id in completed:
            events.append(("task_completed", spec.bpmn_id, str(task.id), {"name": spec.bpmn_name,
                                                                          **completed[task.id]}))
        elif (task.state == TaskState.COMPLETED and isinstance(spec, EndEvent)
              and isinstance(spec.event_definition, NoneEventDefinition) and spec.bpmn_id):
            events.append(("end_event_reached", spec.bpmn_id, None, {"name": spec.bpmn_name}))
    return events
