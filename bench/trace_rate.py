"""Trace verification rate: events per second of liuhen's verifiers against raw hashlib on the same bytes.

The database is filled by bench/fill.py with finished cases of the two-user-task flow (nine events
each, with valid hash chains), then:

- **raw hashlib**: ``hashlib.sha256(body).hexdigest()`` over every stored body, already in memory;
- **bodies read by the driver, hashed**: the same, reading the bodies with the driver's cursor first;
- **``trace.verify_streams``**: every stream in one ordered scan, as ``liuhen audit verify`` runs it;
- **``trace.verify_stream`` stream by stream**: as ``Liuhen.verify()`` (``liuhen verify``,
  ``GET /api/verify``) runs it, timed on the first ``PER_STREAM_LIMIT`` streams;
- **``verify_checkpoint``**: the whole trace against a checkpoint over all of it (Merkle leaves,
  log order and the chains), as ``liuhen audit verify --checkpoint`` runs it.

Each verifier runs in one thread, so its rate is also its rate per core. On PostgreSQL the server's
own work runs in another process and is not counted.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlalchemy import select

from bench.fill import fill, make_template
from bench.flows import TWO_USER_TASKS, BenchmarkError, bench_service
from bench.report import Row, WorkloadResult, at_least
from engine import trace
from engine.audit import create_checkpoint
from engine.audit_verify import verify_checkpoint
from engine.db import trace_events
from engine.service import Liuhen

TARGET_EVENTS_PER_SECOND = 1_000_000
TARGET_RATIO = 0.4
# Verifying stream by stream takes two queries per stream, so it is timed on this many streams only.
PER_STREAM_LIMIT = 2_000


def _events_per_second(events: int, run: Callable[[], Any]) -> tuple[float, Any]:
    started = perf_counter()
    outcome = run()
    return events / (perf_counter() - started), outcome


def _bodies(service: Liuhen) -> list[bytes]:
    with service.db.read() as conn:
        return [bytes(row[0]) for row in conn.execute(select(trace_events.c.body))]


def _driver_read_and_hash(service: Liuhen) -> int:
    with service.db.read() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SELECT body FROM trace_events")
        count = 0
        while rows := cursor.fetchmany(5000):
            for (body,) in rows:
                hashlib.sha256(body).hexdigest()
            count += len(rows)
        cursor.close()
    return count


def _raw_hashlib(bodies: list[bytes]) -> None:
    sha256 = hashlib.sha256
    for body in bodies:
        sha256(body).hexdigest()


def _json_decode(bodies: list[bytes]) -> None:
    for body in bodies:
        trace._decode(body)


def _scan_only(service: Liuhen) -> None:
    with service.db.read() as conn:
        for _row in conn.execute(trace._verify_query(conn, None)):
            pass


def _verify_each_stream(service: Liuhen, limit: int) -> list[trace.StreamReport]:
    """Verify the first ``limit`` streams one by one, as ``Liuhen.verify()`` verifies every stream."""
    with service.db.read() as conn:
        return [trace.verify_stream(conn, stream) for stream in trace.all_streams(conn)[:limit]]


def _verify_streams(service: Liuhen) -> list[trace.StreamReport]:
    with service.db.read() as conn:
        return trace.verify_streams(conn)


def _require_sound(sound: bool, verifier: str, backend: str) -> None:
    if not sound:
        raise BenchmarkError(f"{verifier} found problems in the filled {backend} database, so bench/fill.py no longer "
                             "writes what the service writes; compare its rows with those of a real case.")


def measure_backend(backend: str, url: str, data_dir: Path, cases_count: int, result: WorkloadResult) -> None:
    service, [staff] = bench_service(url, data_dir, flows=(TWO_USER_TASKS,))
    try:
        fill(service, make_template(service, staff), cases_count)
        bodies = _bodies(service)
        events = len(bodies)

        raw, _ = _events_per_second(events, lambda: _raw_hashlib(bodies))
        driver, _ = _events_per_second(events, lambda: _driver_read_and_hash(service))
        decode, _ = _events_per_second(events, lambda: _json_decode(bodies))
        scan, _ = _events_per_second(events, lambda: _scan_only(service))
        batch, reports = _events_per_second(events, lambda: _verify_streams(service))
        _require_sound(all(report.ok for report in reports), "trace.verify_streams", backend)
        started = perf_counter()
        reports = _verify_each_stream(service, PER_STREAM_LIMIT)
        per_stream = sum(report.events for report in reports) / (perf_counter() - started)
        _require_sound(all(report.ok for report in reports), "trace.verify_stream", backend)
        checkpoint = create_checkpoint(service)
        audit, report = _events_per_second(events, lambda: verify_checkpoint(service, checkpoint))
        _require_sound(report.ok, "verify_checkpoint", backend)
    finally:
        service.db.dispose()

    cause = (f"per event: reading the row through SQLAlchemy {1e6 / scan:.1f} µs, decoding its JSON "
           f"{1e6 / decode:.1f} µs, SHA-256 {1e6 / raw:.1f} µs. Even reading the bodies with the driver's cursor and "
           f"hashing them reaches only {driver / raw:.2f}× raw hashlib.")
    other_cause = "as for the one-scan verifier, plus its own queries"
    for label, rate, reason in (("`trace.verify_streams` (one scan)", batch, cause),
                                ("`verify_stream` per stream, as `Liuhen.verify()`", per_stream, other_cause),
                                ("`verify_checkpoint` (log and chains)", audit, other_cause)):
        result.rows.append(Row("trace verification", f"{backend}: {label}", f"{rate:,.0f} events/s",
                               f"raw hashlib: {raw:,.0f} events/s", rate / raw,
                               at_least(TARGET_RATIO, f"≥ {TARGET_RATIO}× raw hashlib"), rate / raw,
                               reason))
    result.rows.append(Row("trace verification", f"{backend}: `trace.verify_streams`, per core",
                           f"{batch:,.0f} events/s", "", None,
                           at_least(TARGET_EVENTS_PER_SECOND, "≥ 1,000,000 events/s per core"), batch,
                           "as above: it runs in one thread"))
    result.details += [
        "",
        f"{backend}: {events:,} events, {sum(map(len, bodies)) / events:.0f} bytes per body on average.",
        "",
        "| pass over all events | events/s | µs per event |",
        "|---|---:|---:|",
        *[f"| {label} | {rate:,.0f} | {1e6 / rate:.2f} |" for label, rate in (
            ("raw hashlib over the bodies in memory", raw),
            ("bodies read with the driver's cursor, then hashed", driver),
            ("JSON decoding of the bodies in memory (`trace._decode`)", decode),
            ("reading the verifier's rows through SQLAlchemy, no checks", scan),
            ("`trace.verify_streams`, all streams in one scan", batch),
            (f"`verify_stream` stream by stream, as `Liuhen.verify()` (first {PER_STREAM_LIMIT:,} streams)",
             per_stream),
            ("`verify_checkpoint` against a checkpoint over every event", audit),
        )],
    ]


def measure(cases_count: int, work_dir: Path, postgres_url: str | None) -> WorkloadResult:
    from bench.variants import postgres_schema

    result = WorkloadResult("trace", "Trace verification rate")
    sqlite_dir = work_dir / "trace-sqlite"
    sqlite_dir.mkdir()
    measure_backend("SQLite", f"sqlite:///{sqlite_dir / 'liuhen.db'}", sqlite_dir, cases_count, result)
    if postgres_url:
        with contextlib.ExitStack() as stack:
            schema_url = stack.enter_context(postgres_schema(postgres_url))
            measure_backend("PostgreSQL", schema_url, sqlite_dir, cases_count, result)
    return result
