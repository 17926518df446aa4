"""Smoke tests of bench/engine_vs_spiff.py, which check that it runs, that its cases finish and
that its output lands in place. They use two cases on SQLite only and assert nothing about speed.
"""

from __future__ import annotations

from pathlib import Path

from bench.engine_vs_spiff import (
    FLOOR_VARIANTS,
    SECTION_END,
    SECTION_START,
    render_section,
    run_benchmark,
    write_section,
)
from bench.layers import LAYERS, run_profile
from engine.service import Liuhen
from engine.settings import Settings
from engine.trace import StreamReport


def stored_cases(folder: Path, name: str) -> tuple[list[str], list[StreamReport]]:
    """Open the SQLite file ``name`` in ``folder`` with liuhen; return its case statuses and trace reports."""
    service = Liuhen(Settings(database_url=f"sqlite:///{folder / name}", data_dir=folder))
    try:
        return [case["status"] for case in service.list_cases()], service.verify()
    finally:
        service.db.dispose()


def test_benchmark_completes_cases(tmp_path: Path) -> None:
    result = run_benchmark(cases=2, rounds=1, warmup=1, work_dir=tmp_path)

    assert len(result.bare.rates) == 1
    assert result.bare.rates[0] > 0
    assert len(result.bare.step_seconds) == 4
    [sqlite] = result.liuhen
    assert sqlite.backend == "SQLite"
    assert len(sqlite.rates) == 1
    assert sqlite.rates[0] > 0
    assert len(sqlite.step_seconds) == 4
    assert len(sqlite.start_seconds) == 2

    # The bench leaves its SQLite file in work_dir, so check that every case finished and its trace verifies.
    statuses, reports = stored_cases(tmp_path, "bench.db")
    assert statuses == ["completed"] * 3
    assert all(report.ok for report in reports)


def test_benchmark_section_replaces_markers(tmp_path: Path) -> None:
    result = run_benchmark(cases=2, rounds=1, warmup=0, work_dir=tmp_path)
    section = render_section(result, "python -m bench.engine_vs_spiff --cases 2")
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nBefore.\n\n{SECTION_START}\nold numbers\n{SECTION_END}\n\nAfter.\n",
                   encoding="utf-8")

    write_section(doc, section)

    text = doc.read_text(encoding="utf-8")
    assert "old numbers" not in text
    assert text.startswith("# Benchmarks\n\nBefore.\n\n")
    assert text.endswith(f"{SECTION_END}\n\nAfter.\n")
    assert text.count(SECTION_START) == 1
    assert "| liuhen, SQLite, with trace |" in text
    assert "| floor: raw SQL on SQLite file, with case state |" in text
    assert "The floor of this design" in text


def test_floor_variants_store_a_trace_liuhen_verifies(tmp_path: Path) -> None:
    result = run_benchmark(cases=2, rounds=1, warmup=1, work_dir=tmp_path)

    assert [floor.backend for floor in result.floors] == ["floor"] * len(FLOOR_VARIANTS)
    assert all(floor.rates[0] > 0 for floor in result.floors)
    # The floor on a file writes the rows liuhen writes, so liuhen reads its cases and verifies their traces.
    for name in ("floor-state-file.db", "floor-nostate-file.db"):
        statuses, reports = stored_cases(tmp_path, name)
        assert statuses == ["completed"] * 3
        assert [report.ok for report in reports if report.stream.startswith("case:")] == [True] * 3


def test_profile_times_every_layer(tmp_path: Path) -> None:
    [report] = run_profile(cases=2, warmup=1, work_dir=tmp_path)

    assert report.backend == "SQLite"
    assert report.wall_seconds > 0
    assert set(report.layer_seconds) == set(LAYERS)
    assert report.profiled_seconds > 0
    assert report.load_seconds > 0
    assert all(seconds > 0 for seconds in report.statement_seconds.values())
