"""Several `liuhen serve` processes on one database: many clients start cases and race for the same tasks.

On PostgreSQL three API processes share one schema; on SQLite two share one file, the most that
docs/deployment.md describes for the embedded database. Every client thread talks to all processes,
so each process sees cases that another one moved on.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engine.service import Liuhen
from engine.settings import Settings
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import DESIGNER, PROCESSES, add_user

PROCESS_ID = "load_parallel"
# One post per stage, so a clerk acts on a task through the lane of its post.
INTAKE, REVIEW, APPROVAL = "受理窗口", "审核科室", "审批领导"
STEPS = ("Intake", "ReviewLegal", "ReviewTechnical", "Approve")
# Per backend: API processes, client threads and cases. SQLite runs fewer, because it has one writer at a time.
LOAD = {"postgresql": (3, 12, 60), "sqlite": (2, 6, 20)}
START_TIMEOUT = 90.0
REQUEST_TIMEOUT = 60.0


def _flow() -> bytes:
    """Intake, then two reviews on parallel branches, then approval."""
    fields = [("opinion", "string")]
    elements = [
        lanes({INTAKE: ["Intake"], REVIEW: ["ReviewLegal", "ReviewTechnical"], APPROVAL: ["Approve"]}),
        node("startEvent", "StartEvent_1"),
        user_task("Intake", "受理", fields),
        node("parallelGateway", "Split"),
        user_task("ReviewLegal", "法制审核", fields),
        user_task("ReviewTechnical", "技术审核", fields),
        node("parallelGateway", "Join"),
        user_task("Approve", "审批", fields),
        node("endEvent", "EndEvent_1"),
        flow("F1", "StartEvent_1", "Intake"), flow("F2", "Intake", "Split"),
        flow("F3", "Split", "ReviewLegal"), flow("F4", "Split", "ReviewTechnical"),
        flow("F5", "ReviewLegal", "Join"), flow("F6", "ReviewTechnical", "Join"),
        flow("F7", "Join", "Approve"), flow("F8", "Approve", "EndEvent_1"),
    ]
    return definitions(process(PROCESS_ID, *elements, name="并行审核负载测试"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ApiProcess:
    """One `liuhen serve` process on 127.0.0.1, its output kept in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = Path(sys.executable).with_name("liuhen")
        self._log = log_path.open("wb")
        self.process = subprocess.Popen([str(command), "serve", "--port", str(self.port), "--quiet"],
                                        env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"liuhen serve on port {self.port} exited with {self.process.returncode}:\n"
                                     f"{self.log()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"liuhen serve on port {self.port} was not ready in {START_TIMEOUT} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]


@dataclass
class Outcomes:
    """What the clients saw, collected from all threads under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cases: list[int] = field(default_factory=list)
    # Task ids whose completion got a 200 response, per case.
    completed: dict[int, list[str]] = field(default_factory=dict)
    races: int = 0
    conflicts: list[tuple[int, str]] = field(default_factory=list)
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)

    def record(self, method: str, path: str, response: httpx.Response, expected: tuple[int, ...]) -> None:
        if response.status_code not in expected:
            with self.lock:
                self.unexpected.append((f"{method} {path}", response.status_code, response.text[:500]))


class Clerk:
    """A signed-in client with one HTTP connection to each API process."""

    def __init__(self, urls: list[str], token: str, username: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
        self.username = username
        self.clients = [httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT) for url in urls]

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def complete(self, server: int, task_id: str, outcomes: Outcomes) -> httpx.Response:
        path = f"/api/tasks/{task_id}/complete"
        response = self.clients[server % len(self.clients)].post(path, json={"data": {"opinion": self.username}})
        if response.status_code == 409:
            body = response.json()
            with outcomes.lock:
                outcomes.conflicts.append((response.status_code, body.get("error", {}).get("code", "")))
        else:
            outcomes.record("POST", path, response, (200,))
        return response


def _open_tasks(case: dict[str, Any]) -> dict[str, str]:
    return {task["element_id"]: task["id"] for task in case["tasks"]}


def _run_case(clerks: list[Clerk], index: int, servers: int, outcomes: Outcomes) -> None:
    """Take one case from start to end: race two clerks for one step, complete the parallel reviews at once."""
    clerk, rival = clerks[index % len(clerks)], clerks[(index + 1) % len(clerks)]
    response = clerk.clients[index % servers].post("/api/cases", json={"process_id": PROCESS_ID,
                                                                        "title": f"负载办件 {index}"})
    outcomes.record("POST", "/api/cases", response, (201,))
    if response.status_code != 201:
        return
    case = response.json()
    case_id = case["id"]
    with outcomes.lock:
        outcomes.cases.append(case_id)
        outcomes.completed[case_id] = []

    def done(response: httpx.Response, task_id: str) -> None:
        if response.status_code == 200:
            with outcomes.lock:
                outcomes.completed[case_id].append(task_id)

    def race(task_id: str) -> dict[str, Any] | None:
        """Two clerks complete one task through two processes at the same moment; one of them must win."""
        barrier = threading.Barrier(2)
        answers: list[httpx.Response] = []

        def attempt(person: Clerk, server: int) -> None:
            barrier.wait(timeout=REQUEST_TIMEOUT)
            answer = person.complete(server, task_id, outcomes)
            done(answer, task_id)
            answers.append(answer)

        threads = [threading.Thread(target=_guarded, args=(outcomes, attempt, clerk, index + 1)),
                   threading.Thread(target=_guarded, args=(outcomes, attempt, rival, index + 2))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with outcomes.lock:
            outcomes.races += 1
        winners = [answer.json() for answer in answers if answer.status_code == 200]
        return winners[0] if winners else None

    def review(task_id: str, server: int) -> None:
        done(clerk.complete(server, task_id, outcomes), task_id)

    def both_reviews(tasks: dict[str, str]) -> None:
        """Complete the two parallel reviews at once, each through another process."""
        threads = [threading.Thread(target=_guarded, args=(outcomes, review, tasks[element], server))
                   for server, element in enumerate(("ReviewLegal", "ReviewTechnical"), start=index)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # Even cases race for the intake step, odd ones for the approval.
    tasks = _open_tasks(case)
    if index % 2 == 0:
        after_intake = race(tasks["Intake"])
    else:
        answer = clerk.complete(index + 1, tasks["Intake"], outcomes)
        done(answer, tasks["Intake"])
        after_intake = answer.json() if answer.status_code == 200 else None
    if after_intake is None:
        return
    both_reviews(_open_tasks(after_intake))

    response = rival.clients[(index + 2) % servers].get(f"/api/cases/{case_id}")
    outcomes.record("GET", "/api/cases/{id}", response, (200,))
    approval = _open_tasks(response.json()).get("Approve") if response.status_code == 200 else None
    if approval is None:
        with outcomes.lock:
            outcomes.unexpected.append(("approval task", case_id, response.text[:500]))
        return
    if index % 2 == 1:
        race(approval)
    else:
        done(clerk.complete(index, approval, outcomes), approval)


def _guarded(outcomes: Outcomes, action: Callable[..., None], *args: Any) -> None:
    """Run ``action`` in a client thread and record an exception as an unexpected outcome."""
    try:
        action(*args)
    except (httpx.HTTPError, threading.BrokenBarrierError, ValueError, KeyError) as exc:
        with outcomes.lock:
            outcomes.unexpected.append(("client error", 0, repr(exc)))


def _client(clerks: list[Clerk], indexes: list[int], servers: int, outcomes: Outcomes) -> None:
    for index in indexes:
        _guarded(outcomes, _run_case, clerks, index, servers, outcomes)


def test_parallel_cases_across_processes(database_url: str, tmp_path: Path) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    servers, client_count, case_count = LOAD[backend]

    # Deploy and create the clerks in this process; the API processes only ever see the database.
    settings = Settings(database_url=database_url, data_dir=tmp_path, processes_dir=PROCESSES)
    setup = Liuhen(settings)
    setup.deploy(_flow(), "load.bpmn", DESIGNER)
    usernames = [f"clerk_{number}" for number in range(client_count)]
    for username in usernames:
        add_user(setup, username, ["staff"], [INTAKE, REVIEW, APPROVAL])
    add_user(setup, "auditor", ["auditor"])
    setup.db.dispose()

    env = {**os.environ, "LIUHEN_DATABASE_URL": database_url, "LIUHEN_DATA_DIR": str(tmp_path),
           "LIUHEN_PROCESSES_DIR": str(PROCESSES), "LIUHEN_LOCALE": "en",
           # Small pools: three processes must fit beside other clients of the test server.
           "LIUHEN_DB_POOL_SIZE": "4", "LIUHEN_DB_MAX_OVERFLOW": "6"}
    env.pop("LIUHEN_READ_DATABASE_URL", None)
    api = [ApiProcess(env, tmp_path / f"serve-{number}.log") for number in range(servers)]
    clerks: list[Clerk] = []
    auditor: Clerk | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        for server in api:
            server.wait_ready(deadline)
        urls = [server.url for server in api]
        for number, username in enumerate([*usernames, "auditor"]):
            login = httpx.post(f"{urls[number % servers]}/api/auth/login",
                               json={"username": username, "password": f"pw-{username}-secret"}, timeout=30)
            assert login.status_code == 200, login.text
            clerks.append(Clerk(urls, login.json()["token"], username))
        auditor = clerks.pop()

        outcomes = Outcomes()
        threads = [threading.Thread(target=_client, args=(clerks, list(range(number, case_count, client_count)),
                                                          servers, outcomes))
                   for number in range(client_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=150)
        assert not any(thread.is_alive() for thread in threads), "client threads did not finish in 150 s"

        assert outcomes.unexpected == []
        assert len(outcomes.cases) == case_count
        # Each race has one loser, which gets 409 with the JSON error code; nothing else conflicted.
        assert outcomes.races == case_count
        assert Counter(outcomes.conflicts) == Counter({(409, "conflict"): case_count})

        for number, case_id in enumerate(sorted(outcomes.cases)):
            client = auditor.clients[number % servers]
            case = client.get(f"/api/cases/{case_id}").json()
            assert case["status"] == "completed", case
            assert case["end_element_id"] == "EndEvent_1"

            events = client.get(f"/api/cases/{case_id}/trace").json()
            trace_completed = [event["task_id"] for event in events if event["kind"] == "task_completed"]
            steps = sorted(event["element_id"] for event in events if event["kind"] == "task_completed")
            assert steps == sorted(STEPS), case_id
            assert sorted(trace_completed) == sorted(outcomes.completed[case_id]), case_id
            assert len(set(trace_completed)) == len(STEPS)
            assert [event["kind"] for event in events].count("case_completed") == 1

            projection = client.get("/api/tasks", params={"case_id": case_id, "scope": "all",
                                                          "status": "any"}).json()
            assert sorted(task["id"] for task in projection if task["status"] == "completed") == \
                sorted(trace_completed)

            verification = client.get(f"/api/cases/{case_id}/verify").json()
            assert verification["ok"], verification

        everything = auditor.clients[-1].get("/api/verify").json()
        assert everything["ok"]
        assert len(everything["streams"]) == case_count + 1
    finally:
        for clerk in clerks:
            clerk.close()
        if auditor is not None:
            auditor.close()
        for server in api:
            server.stop()

    for server in api:
        log = server.log_path.read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in log, log[-4000:]
        assert re.search(r'HTTP/1\.1" 5\d\d', log) is None, log[-4000:]
        # Every process completed tasks and returned 409 to a loser, so the cases really crossed processes.
        assert re.search(r'"POST /api/tasks/[0-9a-f-]+/complete HTTP/1\.1" 200', log), log[-4000:]
        assert re.search(r'"POST /api/tasks/[0-9a-f-]+/complete HTTP/1\.1" 409', log), log[-4000:]
