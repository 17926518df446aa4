"""The two ways of running the benchmark flow: bare SpiffWorkflow in memory, and liuhen's service.

Each variant runs whole cases of ``two_user_tasks.bpmn`` (start, two user tasks, end) and raises
``BenchmarkError`` when a case does not finish, so a timing is never taken of a run that went wrong.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from time import perf_counter
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import create_engine, text

from engine.clock import SystemClock
from engine.migrate import upgrade
from engine.service import Liuhen
from engine.settings import Settings
from engine.users import Actor, create_user

BPMN_FILE = Path(__file__).with_name("two_user_tasks.bpmn")
PROCESS_ID = "two_user_tasks"
USER_TASKS_PER_CASE = 2
SUBMISSION = {"opinion": "同意"}
STAFF_POSTS = ["受理窗口", "审批科室"]
DESIGNER = Actor("designer", "d", frozenset({"designer"}))


class BenchmarkError(RuntimeError):
    """A case did not run as the benchmark flow prescribes, so its timing would mean nothing."""


class BareSpiff:
    """Bare SpiffWorkflow, which parses the spec once and keeps each case in memory only."""

    name = "bare SpiffWorkflow, in memory"
    backend = None

    def __init__(self) -> None:
        parser = BpmnParser()
        parser.add_bpmn_file(str(BPMN_FILE))
        self.spec = parser.get_spec(PROCESS_ID)
        # Seconds per user task: task.run() plus the engine steps up to the next wait state.
        self.step_seconds: list[float] = []

    def run_case(self) -> None:
        workflow = BpmnWorkflow(self.spec)
        workflow.do_engine_steps()
        completed = 0
        while not workflow.is_completed():
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                raise BenchmarkError("The bare SpiffWorkflow case stopped with no ready user task.")
            started = perf_counter()
            task = ready[0]
            task.data.update(SUBMISSION)
            task.run()
            workflow.do_engine_steps()
            self.step_seconds.append(perf_counter() - started)
            completed += 1
        if completed != USER_TASKS_PER_CASE:
            raise BenchmarkError(f"The bare SpiffWorkflow case completed {completed} user tasks, "
                                 f"expected {USER_TASKS_PER_CASE}.")

    def run(self, cases: int) -> float:
        """Run ``cases`` cases one after another and return the elapsed seconds."""
        started = perf_counter()
        for _ in range(cases):
            self.run_case()
        return perf_counter() - started

    def clear_samples(self) -> None:
        self.step_seconds.clear()

    def close(self) -> None:
        pass


class LiuhenVariant:
    """liuhen's service on a migrated, empty database, with the flow deployed and one staff user."""

    def __init__(self, backend: str, url: str, data_dir: Path) -> None:
        self.backend = backend
        self.name = f"liuhen, {backend}, with trace"
        upgrade(url)
        self.service = Liuhen(Settings(database_url=url, data_dir=data_dir), clock=SystemClock())
        self.service.deploy(BPMN_FILE.read_bytes(), BPMN_FILE.name, DESIGNER)
        with self.service.db.write() as conn:
            self.staff = create_user(conn, username="staff", display_name="办事员", password="bench-password",
                                     roles=["staff"], posts=STAFF_POSTS, department=None, now=self.service.now())
        self.start_seconds: list[float] = []
        self.complete_seconds: list[float] = []

    def run_case(self) -> int:
        """Start one case, complete its two user tasks and return the case id."""
        started = perf_counter()
        case = self.service.start_case(PROCESS_ID, self.staff)
        self.start_seconds.append(perf_counter() - started)

        for _ in range(USER_TASKS_PER_CASE):
            # start_case and complete both return get_case(), so the next task is already at hand.
            task_id = _ready_task_id(case)
            started = perf_counter()
            case = self.service.complete(task_id, self.staff, SUBMISSION)
            self.complete_seconds.append(perf_counter() - started)

        if case["status"] != "completed":
            raise BenchmarkError(f"Case {case['id']} ended in status {case['status']!r} after "
                                 f"{USER_TASKS_PER_CASE} user tasks, expected 'completed'.")
        return int(case["id"])

    def run(self, cases: int) -> float:
        """Run ``cases`` cases one after another and return the elapsed seconds."""
        started = perf_counter()
        for _ in range(cases):
            self.run_case()
        return perf_counter() - started

    def clear_samples(self) -> None:
        self.start_seconds.clear()
        self.complete_seconds.clear()

    def close(self) -> None:
        self.service.db.dispose()


def _ready_task_id(case: dict[str, Any]) -> str:
    ready = [task["id"] for task in case["tasks"] if task["status"] == "ready"]
    if len(ready) != 1:
        raise BenchmarkError(f"Case {case['id']} has {len(ready)} ready tasks, expected exactly 1.")
    return str(ready[0])


@contextlib.contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """Create a private schema on ``server_url``, yield a URL that uses it, and drop it afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in server_url else "?"
        try:
            yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()


def postgres_version(server_url: str) -> str:
    admin = create_engine(server_url)
    try:
        with admin.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    finally:
        admin.dispose()
