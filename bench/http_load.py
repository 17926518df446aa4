"""The two-user-task flow through HTTP: a real ``liuhen serve`` process on 127.0.0.1 and httpx clients.

Each client signs in once as its own staff user and then runs whole cases: ``POST /api/cases``
and ``POST /api/tasks/{id}/complete`` twice, taking the next task id from each response.

- **Closed loop**: 1, 4 and 8 clients each start the next case as soon as the last one ends. The
  highest throughput among them is the peak.
- **Paced**: cases arrive on a fixed schedule at half the peak rate (open loop), whatever the
  responses. Each case runs on a thread of a 64-thread pool, so an arrival waits for a thread only
  while 64 cases are in flight. The report counts such late starts.

The clients run in this process, in threads, and share the machine's cores with the server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import httpx

from bench.flows import STAFF_PASSWORD, TWO_USER_TASKS, BenchmarkError, bench_service, check_completed, ready_task_id
from bench.report import Row, WorkloadResult, at_least, at_most, latency_text, percentiles_ms
from engine.clock import SystemClock
from engine.service import Liuhen
from engine.settings import Settings
from engine.users import authenticate

TARGET_CASES_PER_SECOND = 100.0
TARGET_P99_MS = 50.0
CLIENT_COUNTS = (1, 4, 8)
PACED_WORKERS = 64
# Cases run in process on the server's database after the load runs, for comparison.
IN_PROCESS_CASES = 30
FLOOR_REQUESTS = 100
LATE_START = 0.01
SERVER_START_TIMEOUT = 60.0
LIUHEN = Path(sys.executable).with_name("liuhen")


@dataclass
class LoadStats:
    """Calls and cases of one load run, counted inside its measured window only."""

    label: str
    seconds: float
    cases: int = 0
    start_seconds: list[float] = field(default_factory=list)
    complete_seconds: list[float] = field(default_factory=list)
    # Seconds from a paced case's scheduled arrival to the end of its last request.
    case_seconds: list[float] = field(default_factory=list)
    # Paced cases of the measured window whose first request went out more than LATE_START seconds late.
    late_starts: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rate(self) -> float:
        return self.cases / self.seconds


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def liuhen_server(url: str, data_dir: Path, users: int) -> Iterator[str]:
    """Prepare the database at ``url`` and run ``liuhen serve`` on it; yield the server's base URL.

    The database gets the benchmark flows and ``users`` staff users. The server's output goes to
    ``data_dir/server.log``. The server is stopped with SIGTERM when the block ends.
    """
    service, _staff = bench_service(url, data_dir, staff_users=users)
    service.db.dispose()
    port = _free_port()
    env = {**os.environ, "LIUHEN_DATABASE_URL": url, "LIUHEN_DATA_DIR": str(data_dir), "LIUHEN_LOCALE": "en"}
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen([str(LIUHEN), "serve", "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, process, data_dir / "server.log")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"liuhen serve exited with code {process.returncode} before it responded; "
                                 f"see {log}.")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/api/auth/me", timeout=2).status_code == 401:
                return
        time.sleep(0.2)
    raise BenchmarkError(f"liuhen serve did not respond on {base_url} within {SERVER_START_TIMEOUT:.0f} s; "
                         f"see {log}.")


def sign_in(base_url: str, users: int) -> list[str]:
    """Sign in as ``staff``, ``staff2``... and return one bearer token per user."""
    tokens = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for number in range(1, users + 1):
            username = "staff" if number == 1 else f"staff{number}"
            response = client.post("/api/auth/login", json={"username": username, "password": STAFF_PASSWORD})
            if response.status_code != 200:
                raise BenchmarkError(f"Signing in as {username} failed with {response.status_code}: "
                                     f"{response.text}")
            tokens.append(response.json()["token"])
    return tokens


def _client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})


def _call(client: httpx.Client, path: str, body: dict[str, object], expected: int) -> tuple[dict, float, float]:
    """POST ``body`` to ``path`` and return the decoded response, the send time and the seconds it took."""
    sent = perf_counter()
    response = client.post(path, json=body)
    elapsed = perf_counter() - sent
    if response.status_code != expected:
        raise BenchmarkError(f"POST {path} returned {response.status_code}, expected {expected}: {response.text}")
    return response.json(), sent, elapsed


def run_case(client: httpx.Client, stats: LoadStats, window: tuple[float, float], arrival: float | None = None) -> None:
    """Run one case over HTTP and record its calls that started inside ``window`` (perf_counter times)."""
    flow = TWO_USER_TASKS
    begin, end = window
    case, sent, elapsed = _call(client, "/api/cases", {"process_id": flow.process_id}, 201)
    starts = [(sent, elapsed)]
    completes = []
    for submission in flow.submissions:
        case, sent, elapsed = _call(client, f"/api/tasks/{ready_task_id(case)}/complete", {"data": submission}, 200)
        completes.append((sent, elapsed))
    check_completed(case, flow)
    finished = perf_counter()
    with stats.lock:
        stats.start_seconds += [seconds for sent, seconds in starts if begin <= sent < end]
        stats.complete_seconds += [seconds for sent, seconds in completes if begin <= sent < end]
        if begin <= finished < end:
            stats.cases += 1
        if arrival is not None and begin <= arrival < end:
            stats.case_seconds.append(finished - arrival)


def closed_loop(base_url: str, tokens: list[str], clients: int, warmup: float, duration: float) -> LoadStats:
    """Run ``clients`` threads that each run cases back to back; measure after ``warmup`` seconds."""
    stats = LoadStats(f"{clients} client{'s' if clients > 1 else ''}, closed loop", duration)
    begin = perf_counter() + warmup
    window = (begin, begin + duration)

    def client_loop(token: str) -> None:
        with _client(base_url, token) as client:
            try:
                while perf_counter() < window[1]:
                    run_case(client, stats, window)
            except (BenchmarkError, httpx.HTTPError) as exc:
                with stats.lock:
                    stats.errors.append(str(exc))

    threads = [threading.Thread(target=client_loop, args=(tokens[number % len(tokens)],))
               for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats


def paced(base_url: str, tokens: list[str], rate: float, warmup: float, duration: float) -> LoadStats:
    """Start cases at a fixed ``rate`` per second whatever the answers, for ``warmup`` + ``duration`` seconds."""
    stats = LoadStats(f"paced at {rate:.0f} cases/s", duration)
    local = threading.local()
    clients: list[httpx.Client] = []
    clients_lock = threading.Lock()
    first = perf_counter() + 0.1
    window = (first + warmup, first + warmup + duration)

    def job(number: int, arrival: float) -> None:
        if window[0] <= arrival < window[1] and perf_counter() - arrival > LATE_START:
            with stats.lock:
                stats.late_starts += 1
        if not hasattr(local, "client"):
            local.client = _client(base_url, tokens[number % len(tokens)])
            with clients_lock:
                clients.append(local.client)
        try:
            run_case(local.client, stats, window, arrival)
        except (BenchmarkError, httpx.HTTPError) as exc:
            with stats.lock:
                stats.errors.append(str(exc))

    with ThreadPoolExecutor(max_workers=PACED_WORKERS) as pool:
        number = 0
        while True:
            arrival = first + number / rate
            if arrival >= window[1]:
                break
            delay = arrival - perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(job, number, arrival)
            number += 1
    for client in clients:
        client.close()
    return stats


def _stats_row(stats: LoadStats) -> str:
    return (f"| {stats.label} | {stats.rate:.1f} | {stats.cases} | {latency_text(stats.complete_seconds)} | "
            f"{latency_text(stats.start_seconds)} | {len(stats.errors)} |")


def measure_backend(backend: str, url: str, data_dir: Path, warmup: float, duration: float,
                    result: WorkloadResult) -> None:
    """Run the closed-loop levels and the paced run against one server; add rows and details to ``result``."""
    users = max(CLIENT_COUNTS)
    with liuhen_server(url, data_dir, users) as base_url:
        tokens = sign_in(base_url, users)
        floor = request_floor_seconds(base_url, tokens[0], FLOOR_REQUESTS)
        runs = [closed_loop(base_url, tokens, clients, warmup, duration) for clients in CLIENT_COUNTS]
        peak = max(runs, key=lambda stats: stats.rate)
        half = paced(base_url, tokens, peak.rate / 2, warmup, duration) if peak.rate > 0 else None

    in_process = in_process_complete_seconds(url, data_dir, IN_PROCESS_CASES)

    all_runs = [*runs, *([half] if half else [])]
    errors = [error for stats in all_runs for error in stats.errors]
    if errors:
        raise BenchmarkError(f"{len(errors)} HTTP cases failed on {backend}; the first: {errors[0]}")

    single = runs[0].rate
    for stats in runs:
        row = Row("two user tasks over HTTP", f"{backend}, {stats.label}", f"{stats.rate:.1f} cases/s",
                  "1 client", stats.rate / single if single else None)
        if stats is peak:
            row.layer += " (peak)"
            if backend == "SQLite":
                row.target = at_least(TARGET_CASES_PER_SECOND, f"≥ {TARGET_CASES_PER_SECOND:.0f} cases/s")
                row.checked = stats.rate
                if not row.target.met(stats.rate):
                    row.cause = _peak_cause(runs, in_process, floor)
        result.rows.append(row)
    if half is not None:
        p99 = percentiles_ms(half.complete_seconds)[2]
        row = Row("two user tasks over HTTP", f"{backend}, {half.label} (half the peak)",
                  f"complete p99 {p99:.1f} ms", "closed loop, 1 client: p99 "
                  f"{percentiles_ms(runs[0].complete_seconds)[2]:.1f} ms")
        if backend == "SQLite":
            row.target = at_most(TARGET_P99_MS, f"p99 ≤ {TARGET_P99_MS:.0f} ms")
            row.checked = p99
            if not row.target.met(p99):
                row.cause = (f"p50 {percentiles_ms(half.complete_seconds)[0]:.1f} ms, and {half.late_starts} measured "
                           f"cases waited more than {LATE_START * 1000:.0f} ms for a client thread. In process, "
                           f"`service.complete` on the same database: {latency_text(in_process)}.")
        result.rows.append(row)

    result.details += [
        "",
        f"{backend}: measured for {duration:.0f} s after {warmup:.0f} s of warm-up per run.",
        "",
        "| run | cases/s | cases | `complete` latency | `POST /api/cases` latency | failed |",
        "|---|---:|---:|---|---|---:|",
        *[_stats_row(stats) for stats in all_runs],
        "",
        f"In process afterwards, {IN_PROCESS_CASES} cases on the same database: `service.complete` "
        f"{latency_text(in_process)}. Before the runs, {FLOOR_REQUESTS} signed-in `GET /api/auth/me` requests "
        f"from one client: {latency_text(floor)}.",
    ]
    if half is not None:
        result.details += ["", f"Paced run, from each case's scheduled arrival to its last response: "
                               f"{latency_text(half.case_seconds)} over {len(half.case_seconds)} cases; "
                               f"{half.late_starts} of them started more than {LATE_START * 1000:.0f} ms late."]


def _peak_cause(runs: list[LoadStats], in_process: list[float], floor: list[float]) -> str:
    rates = ", ".join(f"{stats.label.split(',')[0]}: {stats.rate:.0f}" for stats in runs)
    http = percentiles_ms(runs[0].complete_seconds)[0]
    direct = percentiles_ms(in_process)[0]
    return (f"cases/s by clients: {rates}. With 1 client a `complete` takes p50 {http:.1f} ms over HTTP against "
            f"{direct:.1f} ms in process on the same database, and a signed-in `GET /api/auth/me` alone "
            f"p50 {percentiles_ms(floor)[0]:.1f} ms. One server process, SQLite takes one writer at a time, and the "
            "clients share the 2 cores with it.")


def request_floor_seconds(base_url: str, token: str, requests: int) -> list[float]:
    """Time ``GET /api/auth/me``: the sign-in check and the HTTP round trip, with no case work."""
    samples = []
    with _client(base_url, token) as client:
        for _ in range(requests):
            started = perf_counter()
            response = client.get("/api/auth/me")
            samples.append(perf_counter() - started)
            if response.status_code != 200:
                raise BenchmarkError(f"GET /api/auth/me returned {response.status_code}: {response.text}")
    return samples


def in_process_complete_seconds(url: str, data_dir: Path, cases: int) -> list[float]:
    """Time ``service.complete`` for ``cases`` cases run in this process on the server's database."""
    service = Liuhen(Settings(database_url=url, data_dir=data_dir), clock=SystemClock())
    try:
        with service.db.write() as conn:
            staff = authenticate(conn, "staff", STAFF_PASSWORD)
        samples = []
        for _ in range(cases):
            case = service.start_case(TWO_USER_TASKS.process_id, staff)
            for submission in TWO_USER_TASKS.submissions:
                started = perf_counter()
                case = service.complete(ready_task_id(case), staff, submission)
                samples.append(perf_counter() - started)
            check_completed(case, TWO_USER_TASKS)
    finally:
        service.db.dispose()
    return samples


def measure(warmup: float, duration: float, work_dir: Path, postgres_url: str | None) -> WorkloadResult:
    from bench.variants import postgres_schema

    result = WorkloadResult("http", "The two-user-task flow through HTTP")
    result.details.append(
        "A `liuhen serve` process on 127.0.0.1 (one uvicorn worker, access log on, as `liuhen serve` runs it) "
        "and httpx clients in threads of the benchmark process; each client signs in once as its own staff user.")
    sqlite_dir = work_dir / "http-sqlite"
    sqlite_dir.mkdir()
    measure_backend("SQLite", f"sqlite:///{sqlite_dir / 'liuhen.db'}", sqlite_dir, warmup, duration, result)
    if postgres_url:
        postgres_dir = work_dir / "http-postgresql"
        postgres_dir.mkdir()
        with postgres_schema(postgres_url) as schema_url:
            measure_backend("PostgreSQL", schema_url, postgres_dir, warmup, duration, result)
    return result
