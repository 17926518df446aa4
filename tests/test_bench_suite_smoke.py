"""Smoke tests of the benchmark suite (bench/suite.py): every workload runs at a tiny size on SQLite.

They check that each workload finishes, that its cases end where their flow prescribes and that
its output lands in place. They assert nothing about speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bench import suite
from bench.fill import fill, make_template
from bench.flows import TWO_USER_TASKS, bench_service
from bench.report import render_results, replace_section
from engine import trace

TINY = suite.Sizes(engine_cases=2, engine_rounds=1, engine_warmup=1, http_warmup=0.2, http_seconds=0.5,
                   long_cases=1, long_late_step=20, long_cold_repeats=1, start_sizes=(0, 5, 20), start_calls=3,
                   trace_cases=20)


@pytest.mark.parametrize("name", sorted(suite.WORKLOADS))
def test_workload_runs_at_tiny_size(name: str, tmp_path: Path) -> None:
    [result] = suite.run_suite(TINY, [name], tmp_path, None)

    assert result.error is None
    assert result.rows
    assert all(row.value for row in result.rows)
    assert result.details


def test_engine_workload_compares_every_layer(tmp_path: Path) -> None:
    [result] = suite.run_suite(TINY, ["engine"], tmp_path, None)

    layers = {(row.workload, row.layer) for row in result.rows}
    for flow in ("straight through", "two user tasks"):
        assert (flow, "bare SpiffWorkflow, in memory") in layers
        assert (flow, "bare + serialization round trip per step") in layers
        assert (flow, "liuhen, SQLite, with trace") in layers
    targeted = [row for row in result.rows if row.target is not None]
    assert [(row.workload, row.layer) for row in targeted] == [("two user tasks", "liuhen, SQLite, with trace")]


def test_http_workload_measures_levels_and_paced_run(tmp_path: Path) -> None:
    [result] = suite.run_suite(TINY, ["http"], tmp_path, None)

    layers = [row.layer for row in result.rows]
    assert any(layer.startswith("SQLite, 1 client") for layer in layers)
    assert any(layer.startswith("SQLite, 4 clients") for layer in layers)
    assert any(layer.startswith("SQLite, 8 clients") for layer in layers)
    assert any("(half the peak)" in layer for layer in layers)
    assert sum("(peak)" in layer for layer in layers) == 1


def test_start_workload_measures_every_size(tmp_path: Path) -> None:
    [result] = suite.run_suite(TINY, ["start"], tmp_path, None)

    assert [row.layer for row in result.rows] == [
        "liuhen, SQLite, 0 finished cases", "liuhen, SQLite, 5 finished cases", "liuhen, SQLite, 20 finished cases"]


def test_filled_cases_verify_and_new_cases_follow(tmp_path: Path) -> None:
    service, [staff] = bench_service(f"sqlite:///{tmp_path / 'liuhen.db'}", tmp_path, flows=(TWO_USER_TASKS,))
    try:
        fill(service, make_template(service, staff), 30)
        case = service.start_case(TWO_USER_TASKS.process_id, staff)
        statuses = [row["status"] for row in service.list_cases(limit=1000)]
        reports = service.verify()
    finally:
        service.db.dispose()

    assert case["id"] == 32
    assert statuses.count("completed") == 31
    assert statuses.count("running") == 1
    assert all(report.ok for report in reports)


def test_verify_streams_matches_verify_stream(database_url: str, tmp_path: Path) -> None:
    service, [staff] = bench_service(database_url, tmp_path, flows=(TWO_USER_TASKS,))
    try:
        fill(service, make_template(service, staff), 4)
        with service.db.engine.begin() as conn:
            if service.db.is_sqlite:
                conn.execute(text("DROP TRIGGER trace_events_no_update"))
            else:
                conn.execute(text("ALTER TABLE trace_events DISABLE TRIGGER trace_events_append_only"))
            conn.execute(text("UPDATE trace_events SET actor = 'someone_else' WHERE stream = 'case:3' AND seq = 4"))
        with service.db.read() as conn:
            streams = trace.all_streams(conn)
            one_by_one = [trace.verify_stream(conn, stream) for stream in streams]
            together = trace.verify_streams(conn)
            named = trace.verify_streams(conn, ["case:3", "case:99", "system"])
    finally:
        service.db.dispose()

    assert together == one_by_one
    assert [report.stream for report in together if not report.ok] == ["case:3"]
    broken = next(report for report in together if report.stream == "case:3")
    assert broken.finding is not None
    assert broken.finding.seq == 4
    assert broken.finding.problem == "edited"
    assert [report.stream for report in named] == ["case:3", "case:99", "system"]
    assert named[1].events == 0
    assert named[1].ok


def test_suite_section_replaces_markers(tmp_path: Path) -> None:
    [result] = suite.run_suite(TINY, ["long"], tmp_path, None)
    section = render_results([result], "python -m bench.suite --only long", None, 1.0, 0.5)
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nBefore.\n\n{suite.SECTION_START}\nold numbers\n{suite.SECTION_END}\n\nAfter.\n",
                   encoding="utf-8")

    replace_section(doc, suite.SECTION_START, suite.SECTION_END, section)

    written = doc.read_text(encoding="utf-8")
    assert "old numbers" not in written
    assert written.startswith("# Benchmarks\n\nBefore.\n\n")
    assert written.endswith(f"{suite.SECTION_END}\n\nAfter.\n")
    assert written.count(suite.SECTION_START) == 1
    assert "| rework loop, long case |" in written


def test_write_needs_every_workload(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        suite.main(["--only", "trace", "--write"])

    assert exit_info.value.code == 2
    assert "--write replaces the whole suite section" in capsys.readouterr().err
