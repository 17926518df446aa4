"""The flows the benchmark suite runs, and the set-up of a liuhen service that runs them.

Each flow is a BPMN file in this folder with the data a case starts with and the data submitted to
each user task in turn. ``straight_through.bpmn`` has no user task, so a case ends inside
``start_case``. ``rework_loop.bpmn`` sends a case back from review to correction until the review
passes, so one case can take any number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.clock import SystemClock
from engine.migrate import upgrade
from engine.service import Liuhen
from engine.settings import Settings
from engine.users import Actor, create_user

HERE = Path(__file__).resolve().parent
STAFF_POSTS = ["受理窗口", "审批科室"]
DESIGNER = Actor("designer", "d", frozenset({"designer"}))
STAFF_PASSWORD = "bench-password"


class BenchmarkError(RuntimeError):
    """A case did not run as its flow prescribes, so its timing would mean nothing."""


@dataclass(frozen=True)
class Flow:
    name: str
    file: Path
    process_id: str
    end_element_id: str
    start_data: dict[str, Any] = field(default_factory=dict)
    # Data submitted to the user tasks of a case, in the order they become ready.
    submissions: tuple[dict[str, Any], ...] = ()


TWO_USER_TASKS = Flow("two user tasks", HERE / "two_user_tasks.bpmn", "two_user_tasks", "EndEvent_done",
                      submissions=({"opinion": "同意"}, {"opinion": "同意"}))
STRAIGHT_THROUGH = Flow("straight through", HERE / "straight_through.bpmn", "straight_through", "EndEvent_done",
                        start_data={"amount": 800})
REWORK_LOOP = Flow("rework loop", HERE / "rework_loop.bpmn", "rework_loop", "EndEvent_done")
REWORK_SUBMISSIONS = {"Task_review": {"passed": False}, "Task_correct": {"opinion": "已补正"}}


def bench_service(url: str, data_dir: Path, flows: tuple[Flow, ...] = (TWO_USER_TASKS, STRAIGHT_THROUGH,
                                                                        REWORK_LOOP),
                  staff_users: int = 1) -> tuple[Liuhen, list[Actor]]:
    """Migrate ``url``, deploy ``flows`` and create staff users ``staff``, ``staff2``...; returns them.

    Every staff user holds both posts of the flows and the password ``STAFF_PASSWORD``.
    """
    upgrade(url)
    service = Liuhen(Settings(database_url=url, data_dir=data_dir), clock=SystemClock())
    for flow in flows:
        service.deploy(flow.file.read_bytes(), flow.file.name, DESIGNER)
    staff = []
    with service.db.write() as conn:
        for number in range(1, staff_users + 1):
            username = "staff" if number == 1 else f"staff{number}"
            staff.append(create_user(conn, username=username, display_name="办事员", password=STAFF_PASSWORD,
                                     roles=["staff"], posts=STAFF_POSTS, department=None, now=service.now()))
    return service, staff


def ready_task_id(case: dict[str, Any]) -> str:
    """Return the id of the one ready task of a case as ``get_case`` returns it."""
    ready = [task["id"] for task in case["tasks"] if task["status"] == "ready"]
    if len(ready) != 1:
        raise BenchmarkError(f"Case {case['id']} has {len(ready)} ready tasks, expected exactly 1.")
    return str(ready[0])


def ready_task(case: dict[str, Any]) -> dict[str, Any]:
    ready = [task for task in case["tasks"] if task["status"] == "ready"]
    if len(ready) != 1:
        raise BenchmarkError(f"Case {case['id']} has {len(ready)} ready tasks, expected exactly 1.")
    return ready[0]


def check_completed(case: dict[str, Any], flow: Flow) -> None:
    if case["status"] != "completed" or case.get("end_element_id") != flow.end_element_id:
        raise BenchmarkError(f"Case {case['id']} of {flow.process_id} ended in status {case['status']!r} at "
                             f"{case.get('end_element_id')!r}, expected 'completed' at {flow.end_element_id!r}.")
