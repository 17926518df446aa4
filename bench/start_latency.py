"""Start latency with 0, 100,000 and 1,000,000 finished cases stored, on SQLite and PostgreSQL.

Each size gets a database of its own per backend, with the benchmark flow and a staff user, filled
by bench/fill.py with finished cases of the two-user-task flow. Every batch of rows is generated
once and inserted into each database that still needs cases. Then ``service.start_case`` of that
flow is timed in turns across the sizes, one call per database in each turn, so a slow spell of
the machine hits every size alike. SQLite files live in the run's temporary folder and each
PostgreSQL database is a private schema; the run removes both.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

from bench.fill import Batch, Filler, batches, finish, make_template, next_ids
from bench.flows import TWO_USER_TASKS, BenchmarkError, bench_service
from bench.report import Row, WorkloadResult, at_most, latency_text, percentiles_ms
from engine.service import Liuhen
from engine.users import Actor

TARGET_RATIO = 1.5
WARMUP_STARTS = 10


@dataclass
class Database:
    """One database of one backend, to be filled with ``size`` finished cases."""

    backend: str
    size: int
    service: Liuhen
    staff: Actor
    filler: Filler
    fill_seconds: float = 0.0
    # Seconds per timed start_case call.
    samples: list[float] = field(default_factory=list)

    def start(self) -> float:
        started = perf_counter()
        self.service.start_case(TWO_USER_TASKS.process_id, self.staff)
        return perf_counter() - started


def fill_all(databases: Sequence[Database]) -> None:
    """Fill every database to its size, generating each batch of rows once.

    SQLite databases are filled in this thread, PostgreSQL ones in a second thread, so PostgreSQL's
    server works while this process generates and inserts the next batch.
    """
    templates = [make_template(database.service, database.staff) for database in databases]
    if len({template.case["definition_id"] for template in templates}) != 1:
        raise BenchmarkError("The databases deployed the benchmark flow under different definition ids.")
    first_case = max(next_ids(database.service)[0] for database in databases)
    first_event = max(next_ids(database.service)[1] for database in databases)
    total = max(database.size for database in databases)
    local = [database for database in databases if database.backend == "SQLite"]
    remote = [database for database in databases if database.backend != "SQLite"]

    source: queue.Queue[tuple[int, Batch] | None] = queue.Queue(maxsize=2)
    failures: list[BaseException] = []

    def insert_remote() -> None:
        try:
            while (item := source.get()) is not None:
                _insert(remote, *item)
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            failures.append(exc)
            while source.get() is not None:
                pass

    worker = threading.Thread(target=insert_remote)
    worker.start()
    try:
        offset = 0
        for batch in batches(templates[0], first_case, total, first_event):
            if failures:
                break
            if remote:
                source.put((offset, batch))
            _insert(local, offset, batch)
            offset += len(batch.cases)
    finally:
        source.put(None)
        worker.join()
    if failures:
        raise failures[0]
    for database in databases:
        finish(database.service)


def _insert(databases: Sequence[Database], offset: int, batch: Batch) -> None:
    """Insert the part of ``batch`` each database still needs; ``offset`` cases came before the batch."""
    for database in databases:
        wanted = database.size - offset
        if wanted <= 0:
            continue
        started = perf_counter()
        database.filler.insert(batch if wanted >= len(batch.cases) else batch.first(wanted))
        database.fill_seconds += perf_counter() - started


def time_in_turns(databases: Sequence[Database], starts: int) -> None:
    for database in databases:
        for _ in range(WARMUP_STARTS):
            database.start()
    for turn in range(starts):
        order = databases if turn % 2 == 0 else list(reversed(databases))
        for database in order:
            database.samples.append(database.start())


def measure(sizes: Sequence[int], starts: int, work_dir: Path, postgres_url: str | None) -> WorkloadResult:
    from bench.variants import postgres_schema

    result = WorkloadResult("start", "Start latency with finished cases stored")
    sizes = sorted(set(sizes))
    databases: list[Database] = []
    with contextlib.ExitStack() as stack:
        urls = []
        for size in sizes:
            folder = work_dir / f"start-sqlite-{size}"
            folder.mkdir()
            urls.append(("SQLite", size, f"sqlite:///{folder / 'liuhen.db'}", folder))
            if postgres_url:
                urls.append(("PostgreSQL", size, stack.enter_context(postgres_schema(postgres_url)), folder))
        for backend, size, url, folder in urls:
            service, [staff] = bench_service(url, folder, flows=(TWO_USER_TASKS,))
            stack.callback(service.db.dispose)
            filler = Filler(service)
            stack.callback(filler.close)
            databases.append(Database(backend, size, service, staff, filler))

        fill_all(databases)
        for backend in ("SQLite", "PostgreSQL"):
            time_in_turns([database for database in databases if database.backend == backend], starts)

    result.details += [
        f"{starts} timed `start_case` calls per database, in turns across the sizes, after {WARMUP_STARTS} "
        "unmeasured ones each. Fill time: inserting that database's rows, without generating them.",
        "",
        "| database | finished cases stored | `start_case` latency | fill time |",
        "|---|---:|---|---:|",
    ]
    for backend in ("SQLite", "PostgreSQL"):
        group = [database for database in databases if database.backend == backend]
        if not group:
            continue
        empty = percentiles_ms(group[0].samples)[0]
        for database in group:
            p50 = percentiles_ms(database.samples)[0]
            row = Row("start a case", f"liuhen, {backend}, {database.size:,} finished cases", f"p50 {p50:.2f} ms",
                      f"{group[0].size:,} stored: p50 {empty:.2f} ms", p50 / empty)
            if database is not group[0]:
                row.target = at_most(TARGET_RATIO, f"≤ {TARGET_RATIO}× empty")
                row.checked = p50 / empty
            result.rows.append(row)
            fill = f"{database.fill_seconds:.0f} s" if database.size else ""
            result.details.append(f"| {backend} | {database.size:,} | {latency_text(database.samples)} | {fill} |")
    return result
