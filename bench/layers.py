"""Where liuhen's time goes on the benchmark flow: wall-clock time per layer, and cProfile by package.

The layer timer wraps a handful of liuhen's methods for the length of one measurement. It charges
each call its exclusive time, which is its own duration minus that of the wrapped calls inside it,
so the layers add up to the time spent in ``start_case`` and ``complete``. It costs about two
``perf_counter`` calls per wrapped call. cProfile instead records every Python call. Its overhead
inflates code made of many small calls, such as SQLAlchemy's statement building, so its shares are
a rough picture only.
"""

from __future__ import annotations

import contextlib
import cProfile
import functools
import pstats
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any
from unittest import mock

from sqlalchemy import bindparam, select

import engine.trace
from bench.variants import BPMN_FILE, PROCESS_ID, LiuhenVariant, postgres_schema
from engine.db import case_tasks, cases
from engine.definitions import load_definition
from engine.runtime import CaseRuntime

OTHER = "rest of start_case/complete: case row INSERT or locking SELECT, permission and form checks"
TRANSACTIONS = "transactions: pool checkout, BEGIN, COMMIT (Database.write/read)"
ENGINE = "SpiffWorkflow steps and event diff (CaseRuntime.start/complete)"
SERIALIZE = "serialize case state (CaseStateSerializer.dumps)"
TRACE = "trace: canonical JSON, SHA-256, INSERT, head UPDATE (trace.append)"
PROJECTION = "task projection (Liuhen._project_tasks)"
STORE = "case row UPDATE, event list, runtime cache (rest of Liuhen._store)"
DEFINITION = "definition lookup (Liuhen._definition_row)"
LAYERS = (ENGINE, SERIALIZE, TRACE, PROJECTION, STORE, DEFINITION, TRANSACTIONS, OTHER)


class LayerTimer:
    """Exclusive wall-clock seconds per layer, for calls made through ``wrap``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        # For each wrapped call in progress, the time spent so far in the wrapped calls inside it.
        self._inner: list[float] = []

    def measure(self, layer: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._inner.append(0.0)
        started = perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = perf_counter() - started
            inner = self._inner.pop()
            self.seconds[layer] += elapsed - inner
            if self._inner:
                self._inner[-1] += elapsed

    def wrap(self, layer: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            return self.measure(layer, function, *args, **kwargs)

        return timed

    def wrap_transaction(self, layer: str, factory: Callable[[], Any]) -> Callable[[], Any]:
        """Charge opening and closing a transaction to ``layer``, and the transaction's body to the caller."""

        @contextlib.contextmanager
        def timed() -> Iterator[Any]:
            manager = factory()
            conn = self.measure(layer, manager.__enter__)
            try:
                yield conn
            except BaseException:
                if not self.measure(layer, manager.__exit__, *sys.exc_info()):
                    raise
            else:
                self.measure(layer, manager.__exit__, None, None, None)

        return timed


@contextlib.contextmanager
def layer_timing(variant: LiuhenVariant) -> Iterator[LayerTimer]:
    """Wrap the service's layers in a LayerTimer until the block ends."""
    timer = LayerTimer()
    service = variant.service
    with contextlib.ExitStack() as patches:
        for owner, name, layer in (
            (service, "start_case", OTHER),
            (service, "complete", OTHER),
            (service, "_store", STORE),
            (service, "_definition_row", DEFINITION),
            (service, "_project_tasks", PROJECTION),
            (service.serializer, "dumps", SERIALIZE),
            (engine.trace, "append", TRACE),
        ):
            patches.enter_context(mock.patch.object(owner, name, timer.wrap(layer, getattr(owner, name))))
        # CaseRuntime.start is a classmethod. The wrapper calls the bound original, so it is stored as static.
        patches.enter_context(mock.patch.object(CaseRuntime, "start",
                                                staticmethod(timer.wrap(ENGINE, CaseRuntime.start))))
        patches.enter_context(mock.patch.object(CaseRuntime, "complete", timer.wrap(ENGINE, CaseRuntime.complete)))
        for name in ("write", "read"):
            patches.enter_context(mock.patch.object(
                service.db, name, timer.wrap_transaction(TRANSACTIONS, getattr(service.db, name))))
        yield timer


PACKAGES = (
    ("SQLAlchemy (Python)", "/sqlalchemy/"),
    ("SpiffWorkflow (Python)", "/SpiffWorkflow/"),
    ("liuhen engine (Python)", f"{Path(engine.trace.__file__).parent}/"),
    ("json (stdlib)", "/json/"),
    ("psycopg driver (Python, including the wait for the server)", "/psycopg/"),
)


def _package(filename: str, function: str) -> str:
    for package, marker in PACKAGES:
        if marker in filename:
            return package
    if filename == "~":
        if "sqlite3" in function:
            return "sqlite3 driver and SQLite (C)"
        if "psycopg" in function:
            return "psycopg driver (C)"
        if "hashlib" in function or "sha256" in function:
            return "hashlib (C)"
        if "json" in function:
            return "json (stdlib)"
        return "other built-ins (C)"
    return "other Python (stdlib, pydantic, ...)"


def seconds_by_package(profile: cProfile.Profile) -> dict[str, float]:
    """Sum cProfile's own time (tottime) of every function by the package it belongs to."""
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, function), (_calls, _primitive, own, _cumulative, _callers) in \
            pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        totals[_package(filename, function)] += own
    return dict(totals)


@dataclass
class ProfileReport:
    backend: str
    cases: int
    wall_seconds: float
    layer_seconds: dict[str, float]
    profiled_seconds: float
    package_seconds: dict[str, float]
    state_bytes: int
    load_seconds: float
    statement_seconds: dict[str, float]


def state_load_seconds(variant: LiuhenVariant, repeats: int) -> tuple[int, float]:
    """Time rebuilding a waiting case from its stored state, as liuhen does on a runtime-cache miss.

    Returns the size of the stored state in bytes and the mean seconds per load.
    """
    service = variant.service
    case = service.start_case(PROCESS_ID, variant.staff)
    with service.db.read() as conn:
        state = bytes(conn.execute(select(cases.c.state).where(cases.c.id == case["id"])).scalar_one())
    process = load_definition(BPMN_FILE.read_bytes(), BPMN_FILE.name).process(PROCESS_ID)

    started = perf_counter()
    for _ in range(repeats):
        service.serializer.loads(state, process.spec, process.subprocess_specs)
    return len(state), (perf_counter() - started) / repeats


def _mean_seconds(call: Callable[[], Any], repeats: int) -> float:
    started = perf_counter()
    for _ in range(repeats):
        call()
    return (perf_counter() - started) / repeats


def statement_seconds(variant: LiuhenVariant, repeats: int) -> dict[str, float]:
    """Time one task-row SELECT by primary key, built per call as liuhen does, prebuilt, and as raw SQL.

    Returns the mean seconds per execution of each, keyed by a label.
    """
    db = variant.service.db
    placeholder = "?" if db.is_sqlite else "%s"
    raw_sql = f"SELECT * FROM case_tasks WHERE id = {placeholder}"
    prebuilt = select(case_tasks).where(case_tasks.c.id == bindparam("task_id"))
    with db.read() as conn:
        task_id = conn.execute(select(case_tasks.c.id).limit(1)).scalar_one()
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return {
            "built per call (select(...).where(...))": _mean_seconds(
                lambda: conn.execute(select(case_tasks).where(case_tasks.c.id == task_id)).first(), repeats),
            "prebuilt once with bindparam()": _mean_seconds(
                lambda: conn.execute(prebuilt, {"task_id": task_id}).first(), repeats),
            "raw SQL on the driver's cursor": _mean_seconds(
                lambda: cursor.execute(raw_sql, (task_id,)).fetchone(), repeats),
        }


def profile_liuhen(variant: LiuhenVariant, cases: int, warmup: int) -> ProfileReport:
    """Run ``cases`` cases under the layer timer, then as many under cProfile."""
    variant.run(warmup)
    with layer_timing(variant) as timer:
        wall_seconds = variant.run(cases)

    profile = cProfile.Profile()
    profile.enable()
    variant.run(cases)
    profile.disable()
    package_seconds = seconds_by_package(profile)

    state_bytes, load_seconds = state_load_seconds(variant, repeats=max(cases, 10))
    return ProfileReport(
        backend=variant.backend, cases=cases, wall_seconds=wall_seconds, layer_seconds=dict(timer.seconds),
        profiled_seconds=sum(package_seconds.values()), package_seconds=package_seconds,
        state_bytes=state_bytes, load_seconds=load_seconds,
        statement_seconds=statement_seconds(variant, repeats=max(10 * cases, 100)),
    )


def render_profile(report: ProfileReport) -> str:
    """Format a ProfileReport as Markdown tables, milliseconds per case."""
    per_case = 1000 / report.cases
    layered = sum(report.layer_seconds.values())
    lines = [
        (f"Layer timer, liuhen on {report.backend}, {report.cases} cases "
         f"({report.wall_seconds * per_case:.2f} ms per case wall-clock, "
         f"{layered * per_case:.2f} ms of it inside the service):"),
        "",
        "| layer | ms per case | share |",
        "|---|---:|---:|",
    ]
    for layer in sorted(LAYERS, key=lambda name: -report.layer_seconds.get(name, 0.0)):
        seconds = report.layer_seconds.get(layer, 0.0)
        lines.append(f"| {layer} | {seconds * per_case:.3f} | {100 * seconds / layered:.0f} % |")
    lines += [
        "",
        (f"cProfile, own time by package, same number of cases ({report.profiled_seconds * per_case:.2f} ms "
         "per case under the profiler):"),
        "",
        "| package | ms per case | share |",
        "|---|---:|---:|",
    ]
    for package, seconds in sorted(report.package_seconds.items(), key=lambda item: -item[1]):
        lines.append(f"| {package} | {seconds * per_case:.3f} | {100 * seconds / report.profiled_seconds:.0f} % |")
    lines += [
        "",
        (f"Rebuilding a waiting case from its stored state ({report.state_bytes} bytes), which happens only "
         f"on a runtime-cache miss: {report.load_seconds * 1000:.3f} ms per load."),
        "",
        "One SELECT of a case_tasks row by primary key, in one read transaction:",
        "",
        "| statement | µs per execution |",
        "|---|---:|",
        *[f"| {label} | {seconds * 1e6:.1f} |" for label, seconds in report.statement_seconds.items()],
    ]
    return "\n".join(lines)


def run_profile(cases: int, warmup: int, work_dir: Path, postgres_url: str | None = None) -> list[ProfileReport]:
    """Profile liuhen on a fresh SQLite file in ``work_dir`` and, if given, in a private PostgreSQL schema."""
    reports = []
    sqlite = LiuhenVariant("SQLite", f"sqlite:///{work_dir / 'profile.db'}", work_dir)
    try:
        reports.append(profile_liuhen(sqlite, cases, warmup))
    finally:
        sqlite.close()
    if postgres_url:
        with postgres_schema(postgres_url) as schema_url:
            postgres = LiuhenVariant("PostgreSQL", schema_url, work_dir)
            try:
                reports.append(profile_liuhen(postgres, cases, warmup))
            finally:
                postgres.close()
    return reports
