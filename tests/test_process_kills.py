"""SIGKILL of real `liuhen serve` and `liuhen worker` processes in the middle of steps loses and repeats nothing.

Clients drive cases over HTTP with an Idempotency-Key on every change and send a request again, with
the same key, whenever its response is lost. The test kills the server again and again while they
work. Then it checks every case: its trace verifies, a replay of the trace reaches the stored state,
the task rows agree with the stored engine state, and every step was applied exactly once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from engine.db import case_tasks, cases
from engine.replay import replay_case
from engine.runtime import CaseRuntime
from engine.service import Liuhen
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, ROOT, add_user
from tests.test_engine_flows import TIMER_BOUNDARY

KILLS = 5
STEPS = ["Receive", "Review", "Approve", "Notify"]
CLIENTS = 3
CASES_PER_CLIENT = 5
# Steps committed between a restart and the next kill, so that every kill finds the server at work.
STEPS_BETWEEN_KILLS = 4
# Each kill lets a worker fire a few timers (more on a fast machine), so there are enough for every kill.
TIMER_CASES = 150
# Far enough ahead of the time the cases start that their 48-hour timers are due for the worker.
WORKER_OFFSET_SECONDS = 49 * 3600
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], awaited: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting until {awaited}")
        time.sleep(0.02)


@dataclass
class Processes:
    """The liuhen processes of one test, all started with the same settings and killed by their own pid."""

    env: dict[str, str]
    log: Path
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        self.running.remove(process)

    def stop_all(self) -> None:
        for process in list(self.running):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
            self.running.remove(process)


@pytest.fixture
def processes(settings, tmp_path: Path) -> Iterator[Processes]:
    env = {**os.environ, "LIUHEN_DATABASE_URL": settings.resolved_database_url(), "LIUHEN_DATA_DIR": str(tmp_path),
           "LIUHEN_LOCALE": "en", "LIUHEN_PROCESSES_DIR": str(settings.processes_dir),
           # A process that crashes in C code writes the Python stacks of its threads into the log.
           "PYTHONFAULTHANDLER": "1"}
    running = Processes(env, tmp_path / "processes.log")
    try:
        yield running
    finally:
        running.stop_all()


def server_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def start_server(processes: Processes, port: int) -> subprocess.Popen[bytes]:
    server = processes.start("serve", "--host", "127.0.0.1", "--port", str(port), "--quiet")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: server.poll() is not None or server_up(url), "the server responds")
    assert server.poll() is None, (f"the server exited with status {server.returncode}: "
                                   + processes.log.read_text(encoding="utf-8", errors="replace")[-3000:])
    return server


@dataclass
class Client:
    """Drives its cases through every step and counts what the kills did to its requests."""

    name: str
    url: str
    token: str
    # Set by the test when it gives up, so that a client stops sending instead of waiting for a server.
    stop: threading.Event
    case_ids: list[int] = field(default_factory=list)
    lost_responses: int = 0
    error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=60,
                              headers={"Authorization": f"Bearer {self.token}", "Accept-Language": "en"}) as http:
                for index in range(CASES_PER_CLIENT):
                    self.drive(http, index)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            self.error = error

    def drive(self, http: httpx.Client, index: int) -> None:
        case = self.send(http, "/api/cases", {"process_id": "kills", "title": f"{self.name}-{index}"},
                         f"{self.name}-start-{index}", 201)
        self.case_ids.append(case["id"])
        while case["status"] == "running":
            task = case["tasks"][0]
            case = self.send(http, f"/api/tasks/{task['id']}/complete", {"data": {"step": task["element_id"]}},
                             f"{self.name}-{case['id']}-{task['element_id']}", 200)

    def send(self, http: httpx.Client, path: str, body: dict[str, Any], key: str, expected: int) -> Any:
        """POST until a response arrives, with the same key each time, as a client that must not act twice."""
        deadline = time.monotonic() + 4 * START_TIMEOUT
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                response = http.post(path, json=body, headers={"Idempotency-Key": key})
            except httpx.ConnectError:
                time.sleep(0.02)  # the server is being restarted
                continue
            except httpx.TransportError:
                self.lost_responses += 1
                continue
            if response.status_code in (409, 503) and response.json()["error"]["code"] in (
                    "idempotency_key_in_use", "database_unavailable"):
                time.sleep(0.02)
                continue
            assert response.status_code == expected, (path, response.status_code, response.text)
            return response.json()
        raise AssertionError(f"no response to {path} with key {key}")


def login(url: str, username: str) -> str:
    response = httpx.post(f"{url}/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"},
                          timeout=60)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def committed_steps(service: Liuhen) -> int:
    with service.db.read() as conn:
        return conn.execute(select(func.count()).select_from(case_tasks)
                            .where(case_tasks.c.status == "completed")).scalar_one()


def steps_reached(service: Liuhen, target: int) -> bool:
    return committed_steps(service) >= target


def worker_progressed(worker: subprocess.Popen[bytes], fired: Callable[[], int], target: int) -> bool:
    """Tell whether the worker fired ``target`` timers in all, or exited, which the caller reports."""
    return worker.poll() is not None or fired() >= target


def check_case(service: Liuhen, case_id: int) -> list[dict[str, Any]]:
    """Check one case after the kills and return its trace events."""
    events = service.case_trace(case_id)
    assert service.verify(case_id)[0].ok, case_id
    report = replay_case(service, case_id)
    assert report.ok, (case_id, report.as_dict("en"))

    with service.db.read() as conn:
        row = conn.execute(select(cases).where(cases.c.id == case_id)).one()
        tasks = {task.id: task for task in conn.execute(select(case_tasks).where(case_tasks.c.case_id == case_id))}
    # The case row names the last event of its trace: no step stored its state without its events.
    assert (row.trace_seq, row.trace_head) == (events[-1]["seq"], events[-1]["hash"]), case_id

    # The task rows are the ones the trace made ready, in the state its completions and cancellations record.
    assert sorted(tasks) == sorted(e["task_id"] for e in events if e["kind"] == "task_ready"), case_id
    completed = {e["task_id"]: e["actor"] for e in events if e["kind"] == "task_completed"}
    cancelled = {e["task_id"] for e in events if e["kind"] == "task_cancelled"}
    for task_id, task in tasks.items():
        if task_id in completed:
            assert (task.status, task.completed_by) == ("completed", completed[task_id]), (case_id, task_id)
        elif task_id in cancelled:
            assert task.status == "cancelled", (case_id, task_id)
        else:
            assert task.status in ("ready", "claimed"), (case_id, task_id)

    # The open task rows are the tasks the stored engine state waits on.
    parsed, process = service.parsed_definition(row.definition_id)
    workflow = service.serializer.loads(bytes(row.state), process.spec, process.subprocess_specs)
    waiting = {str(task.id) for task in CaseRuntime(workflow, parsed, service.clock).ready_human_tasks()}
    assert waiting == {task_id for task_id, task in tasks.items() if task.status in ("ready", "claimed")}, case_id
    return events


def test_server_kills_apply_each_step_once(service, processes) -> None:
    service.deploy(sequence("kills", STEPS), "kills.bpmn", DESIGNER)
    names = [f"clerk{index}" for index in range(CLIENTS)]
    for name in names:
        add_user(service, name, ["staff"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(processes, port)
    stop = threading.Event()
    clients = [Client(name, url, login(url, name), stop) for name in names]
    threads = [threading.Thread(target=client.run) for client in clients]
    for thread in threads:
        thread.start()

    try:
        for kill in range(KILLS):
            target = committed_steps(service) + STEPS_BETWEEN_KILLS
            wait_for(partial(steps_reached, service, target), f"kill {kill + 1} finds steps under way")
            processes.kill(server)
            server = start_server(processes, port)
        for thread in threads:
            thread.join(timeout=4 * START_TIMEOUT)
    finally:
        stop.set()
        processes.stop_all()
        for thread in threads:
            thread.join(timeout=4 * START_TIMEOUT)

    for client in clients:
        assert client.error is None, f"{client.name}: {client.error!r}"
    assert sum(client.lost_responses for client in clients) >= 1
    started = [case_id for client in clients for case_id in client.case_ids]
    # A start retried after a kill found its stored response instead of opening a second case.
    assert sorted(case["id"] for case in service.list_cases()) == sorted(started)
    assert len(started) == CLIENTS * CASES_PER_CLIENT
    for case_id in started:
        events = check_case(service, case_id)
        steps = [e["element_id"] for e in events if e["kind"] == "task_completed"]
        assert steps == STEPS, (case_id, steps)
        assert service.get_case(case_id)["status"] == "completed"


def test_worker_kills_fire_each_timer_once(service, processes, clock) -> None:
    clock.set(datetime.now(UTC))
    service.deploy(TIMER_BOUNDARY, "timer.bpmn", DESIGNER)
    staff = add_user(service, "staff", ["staff"])
    case_ids = [service.start_case("timer_boundary", staff)["id"] for _ in range(TIMER_CASES)]
    processes.env["LIUHEN_WORKER_CLOCK_OFFSET_SECONDS"] = str(WORKER_OFFSET_SECONDS)

    def fired() -> int:
        with service.db.read() as conn:
            return conn.execute(select(func.count()).select_from(cases)
                                .where(cases.c.status != "running")).scalar_one()

    for kill in range(KILLS):
        target = fired() + 2
        worker = processes.start("worker", "--interval", "0.05")
        wait_for(partial(worker_progressed, worker, fired, target), f"kill {kill + 1} finds timers firing")
        assert worker.poll() is None, (f"the worker exited with status {worker.returncode}: "
                                       + processes.log.read_text(encoding="utf-8", errors="replace")[-3000:])
        processes.kill(worker)
        assert fired() < len(case_ids), f"the worker fired every timer before kill {kill + 1}; start more cases"
    processes.start("worker", "--interval", "0.05")
    wait_for(lambda: fired() == len(case_ids), "the last worker fires the remaining timers")
    processes.stop_all()

    for case_id in case_ids:
        events = check_case(service, case_id)
        assert [e["kind"] for e in events].count("timer_fired") == 1, case_id
        assert service.get_case(case_id)["end_element_id"] == "Withdrawn", case_id
