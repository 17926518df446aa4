"""Long cases: what a step costs late in a case, and what loading a long case costs after a cache miss.

A case of ``rework_loop.bpmn`` alternates review and correction until the review passes, so it can
take any number of steps. Each step is one ``service.complete`` call. An old case is driven to a few
steps before step ``late``, then single steps of a young case near step 10 and of the old case near
step ``late`` alternate for ten steps each, and the medians are compared.

Cold load: once a case is past step ``late``, the next step is taken by a service that has not seen
the case. "Cache miss" is a second ``Liuhen`` on the same database engine, with the definition
already parsed, so the step also reads and deserializes the stored case state. "Restart" is a new
``Liuhen`` with a new engine and empty caches, as for the first request after a process restart:
the step also opens a connection, compiles its SQL statements and parses the deployed BPMN file.
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlalchemy import select

from bench.flows import REWORK_LOOP, REWORK_SUBMISSIONS, BenchmarkError, bench_service, ready_task
from bench.report import Row, WorkloadResult, at_most, latency_text
from engine.clock import SystemClock
from engine.db import cases
from engine.service import Liuhen
from engine.users import Actor

EARLY_STEP = 10
WINDOW = 10
TARGET_RATIO = 1.5


@dataclass
class LongCaseRun:
    backend: str
    late_step: int
    # Seconds of the steps near step 10 of young cases, and of the steps near ``late_step`` of old ones.
    early_seconds: list[float] = field(default_factory=list)
    late_seconds: list[float] = field(default_factory=list)
    # Seconds of each step of the old cases, by step number from 1.
    drive_seconds: dict[int, list[float]] = field(default_factory=dict)
    warm_seconds: list[float] = field(default_factory=list)
    miss_seconds: list[float] = field(default_factory=list)
    restart_seconds: list[float] = field(default_factory=list)
    load_seconds: list[float] = field(default_factory=list)
    state_bytes: int = 0


def _step(service: Liuhen, staff: Actor, case: dict[str, Any]) -> tuple[dict[str, Any], float]:
    task = ready_task(case)
    submission = REWORK_SUBMISSIONS[task["element_id"]]
    started = perf_counter()
    case = service.complete(task["id"], staff, submission)
    elapsed = perf_counter() - started
    if case["status"] != "running":
        raise BenchmarkError(f"Rework case {case['id']} ended in status {case['status']!r} while still looping.")
    return case, elapsed


def run_long_cases(url: str, data_dir: Path, backend: str, cases_count: int, late_step: int,
                   cold_repeats: int) -> LongCaseRun:
    """Drive ``cases_count`` rework cases past ``late_step`` steps, then time cold loads of the last one."""
    run = LongCaseRun(backend, late_step)
    service, [staff] = bench_service(url, data_dir)
    services = [service]
    try:
        first_timed = late_step - WINDOW // 2
        case: dict[str, Any] = {}
        for _ in range(cases_count):
            case = service.start_case(REWORK_LOOP.process_id, staff)
            for number in range(1, first_timed):
                case, elapsed = _step(service, staff, case)
                run.drive_seconds.setdefault(number, []).append(elapsed)

            # Alternate single steps of a young case and of the old one, so both see the same machine.
            young = service.start_case(REWORK_LOOP.process_id, staff)
            for _number in range(1, EARLY_STEP - WINDOW // 2):
                young, _elapsed = _step(service, staff, young)
            for offset in range(WINDOW):
                young, elapsed = _step(service, staff, young)
                run.early_seconds.append(elapsed)
                case, elapsed = _step(service, staff, case)
                run.late_seconds.append(elapsed)
                run.drive_seconds.setdefault(first_timed + offset, []).append(elapsed)

        with service.db.read() as conn:
            run.state_bytes = len(bytes(conn.execute(select(cases.c.state).where(cases.c.id == case["id"]))
                                        .scalar_one()))
        definition_id = case["definition_id"]

        def cache_miss() -> Liuhen:
            # A second facade on the same engine: warm connections and compiled statements, empty case cache.
            other = Liuhen(service.settings, clock=SystemClock(), database=service.db)
            other.parsed_definition(definition_id)
            return other

        def restart() -> Liuhen:
            other = Liuhen(service.settings, clock=SystemClock())
            services.append(other)
            return other

        # Rotate the three kinds of step, so a slow spell of the machine hits each of them. The steps
        # taken elsewhere leave this service's cached state stale, so an untimed step reloads it first.
        for _ in range(cold_repeats):
            case, _elapsed = _step(service, staff, case)
            case, elapsed = _step(service, staff, case)
            run.warm_seconds.append(elapsed)
            case = _timed_on(cache_miss(), staff, case, run.miss_seconds)
            case = _timed_on(restart(), staff, case, run.restart_seconds)
        run.load_seconds = _load_seconds(service, case["id"], cold_repeats)
    finally:
        for item in services:
            item.db.dispose()
    return run


def _timed_on(other: Liuhen, staff: Actor, case: dict[str, Any], samples: list[float]) -> dict[str, Any]:
    case, elapsed = _step(other, staff, case)
    samples.append(elapsed)
    return case


def _load_seconds(service: Liuhen, case_id: int, repeats: int) -> list[float]:
    """Time ``CaseStateSerializer.loads`` of the case's stored state alone."""
    with service.db.read() as conn:
        row = conn.execute(select(cases.c.state, cases.c.definition_id).where(cases.c.id == case_id)).one()
    _parsed, process = service.parsed_definition(row.definition_id)
    state = bytes(row.state)
    samples = []
    for _ in range(repeats):
        started = perf_counter()
        service.serializer.loads(state, process.spec, process.subprocess_specs)
        samples.append(perf_counter() - started)
    return samples


def measure(cases_count: int, late_step: int, cold_repeats: int, work_dir: Path,
            postgres_url: str | None) -> WorkloadResult:
    from bench.variants import postgres_schema

    result = WorkloadResult("long", "Long cases and cold loads")
    runs = []
    sqlite_dir = work_dir / "long-sqlite"
    sqlite_dir.mkdir()
    runs.append(run_long_cases(f"sqlite:///{sqlite_dir / 'liuhen.db'}", sqlite_dir, "SQLite", cases_count,
                               late_step, cold_repeats))
    if postgres_url:
        with contextlib.ExitStack() as stack:
            schema_url = stack.enter_context(postgres_schema(postgres_url))
            runs.append(run_long_cases(schema_url, sqlite_dir, "PostgreSQL", cases_count, late_step, cold_repeats))

    result.details += [
        f"{cases_count} old case(s) of `bench/rework_loop.bpmn` per database. Steps {EARLY_STEP - WINDOW // 2} to "
        f"{EARLY_STEP + WINDOW // 2 - 1} of a young case alternate with steps {late_step - WINDOW // 2} to "
        f"{late_step + WINDOW // 2 - 1} of each old one; the columns give the medians. Then {cold_repeats} rounds "
        "of a warm step, a cache-miss step and a restart step on the last old case.",
        "",
        "| database | step ~10 | step ~" + str(late_step) + " | warm step | cache-miss step | restart step "
        "| `loads` of the state | state size |",
        "|---|---:|---:|---|---|---|---|---:|",
    ]
    for run in runs:
        early, late = statistics.median(run.early_seconds), statistics.median(run.late_seconds)
        ratio = late / early
        target = at_most(TARGET_RATIO, f"≤ {TARGET_RATIO}× step 10")
        row = Row("rework loop, long case", f"liuhen, {run.backend}: step {late_step}", f"{late * 1000:.2f} ms",
                  f"step 10: {early * 1000:.2f} ms", ratio, target, ratio)
        if not target.met(ratio):
            row.cause = _growth_cause(run)
        result.rows.append(row)
        warm = statistics.median(run.warm_seconds)
        for label, samples in (("cache miss", run.miss_seconds), ("restart", run.restart_seconds)):
            cold = statistics.median(samples)
            result.rows.append(Row("rework loop, cold load", f"liuhen, {run.backend}: {label} at step "
                                   f"{late_step}+", f"{cold * 1000:.2f} ms", f"warm step: {warm * 1000:.2f} ms",
                                   cold / warm))
        result.details.append(
            f"| {run.backend} | {early * 1000:.2f} ms | {late * 1000:.2f} ms | {latency_text(run.warm_seconds)} | "
            f"{latency_text(run.miss_seconds)} | {latency_text(run.restart_seconds)} | "
            f"{latency_text(run.load_seconds)} | {run.state_bytes} B |")
    return result


def _growth_cause(run: LongCaseRun) -> str:
    steps = sorted(run.drive_seconds)

    def quarter(index: int) -> float:
        return statistics.median(run.drive_seconds[steps[index]]) * 1000

    return (f"step cost grows along the case: {quarter(len(steps) // 4):.2f} ms at a quarter, "
            f"{quarter(len(steps) // 2):.2f} ms at half, {quarter(-1):.2f} ms at the end; stored state "
            f"{run.state_bytes} B.")
