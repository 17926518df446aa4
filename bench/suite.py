"""The benchmark suite: every workload side by side in one run, as ratios to a reference measured in the same run.

Run from the repository root::

    .venv/bin/python -m bench.suite                  # every workload, print the results as Markdown
    .venv/bin/python -m bench.suite --quick          # small sizes, under a minute on an idle 2-core machine
    .venv/bin/python -m bench.suite --only http      # one workload
    .venv/bin/python -m bench.suite --write          # also replace the suite section in docs/benchmarks.md

Set LIUHEN_BENCH_POSTGRES_URL (an SQLAlchemy URL of a server the user may create schemas on) to
measure PostgreSQL as well. Every database lives in a temporary folder or a private PostgreSQL
schema that the run removes at its end.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from sqlalchemy.engine import make_url

from bench import engine_layers, http_load, long_cases, start_latency, trace_rate
from bench.flows import BenchmarkError
from bench.report import WorkloadResult, render_results, replace_section
from bench.variants import postgres_version

ROOT = Path(__file__).resolve().parent.parent
DOC_FILE = ROOT / "docs" / "benchmarks.md"
SECTION_START = "<!-- bench-suite:start -->"
SECTION_END = "<!-- bench-suite:end -->"
POSTGRES_ENV = "LIUHEN_BENCH_POSTGRES_URL"


@dataclass(frozen=True)
class Sizes:
    """How much each workload runs."""

    engine_cases: int
    engine_rounds: int
    engine_warmup: int
    http_warmup: float
    http_seconds: float
    long_cases: int
    long_late_step: int
    long_cold_repeats: int
    start_sizes: tuple[int, ...]
    start_calls: int
    trace_cases: int


FULL = Sizes(engine_cases=200, engine_rounds=5, engine_warmup=20, http_warmup=2, http_seconds=10, long_cases=2,
             long_late_step=1000, long_cold_repeats=20, start_sizes=(0, 100_000, 1_000_000), start_calls=200,
             trace_cases=30_000)
QUICK = Sizes(engine_cases=15, engine_rounds=2, engine_warmup=3, http_warmup=0.3, http_seconds=1.0, long_cases=1,
              long_late_step=60, long_cold_repeats=3, start_sizes=(0, 1_000, 5_000), start_calls=20,
              trace_cases=500)

Workload = Callable[[Sizes, Path, "str | None"], WorkloadResult]
WORKLOADS: dict[str, Workload] = {
    "engine": lambda sizes, work_dir, postgres: engine_layers.measure(
        sizes.engine_cases, sizes.engine_rounds, sizes.engine_warmup, work_dir, postgres),
    "http": lambda sizes, work_dir, postgres: http_load.measure(
        sizes.http_warmup, sizes.http_seconds, work_dir, postgres),
    "long": lambda sizes, work_dir, postgres: long_cases.measure(
        sizes.long_cases, sizes.long_late_step, sizes.long_cold_repeats, work_dir, postgres),
    "start": lambda sizes, work_dir, postgres: start_latency.measure(
        sizes.start_sizes, sizes.start_calls, work_dir, postgres),
    "trace": lambda sizes, work_dir, postgres: trace_rate.measure(sizes.trace_cases, work_dir, postgres),
}


def run_suite(sizes: Sizes, names: Sequence[str], work_dir: Path, postgres_url: str | None) -> list[WorkloadResult]:
    """Run the named workloads one after another in ``work_dir``.

    A workload that fails is reported as a row saying so, and the others still run.
    """
    results = []
    for name in names:
        workload_dir = work_dir / name
        workload_dir.mkdir()
        started = perf_counter()
        print(f"running {name}...", file=sys.stderr, flush=True)
        try:
            result = WORKLOADS[name](sizes, workload_dir, postgres_url)
        except BenchmarkError as exc:
            result = WorkloadResult(name, name, error=str(exc))
        finally:
            # The start workload leaves gigabytes of SQLite files; free the disk before the next workload.
            shutil.rmtree(workload_dir, ignore_errors=True)
        result.seconds = perf_counter() - started
        print(f"{name} took {result.seconds:.0f} s", file=sys.stderr, flush=True)
        results.append(result)
    return results


def _command(argv: Sequence[str], postgres_url: str | None) -> str:
    command = ".venv/bin/python -m bench.suite"
    if argv:
        command += " " + shlex.join(argv)
    if postgres_url:
        masked_url = make_url(postgres_url).render_as_string(hide_password=True)
        command = f"{POSTGRES_ENV}={shlex.quote(masked_url)} {command}"
    return command


def _exit_on_signal(signal_number: int, _frame: object) -> None:
    raise SystemExit(128 + signal_number)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run every workload at small sizes")
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append",
                        help="run only this workload; repeat the option for several")
    parser.add_argument("--write", action="store_true",
                        help=f"replace the suite section of {DOC_FILE.relative_to(ROOT)}; needs every workload")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.write and args.only:
        parser.error("--write replaces the whole suite section, so it needs every workload; drop --only")
    # The service logs every step at INFO; the suite keeps stderr for its own progress lines.
    logging.getLogger("engine").setLevel(logging.WARNING)
    # On SIGTERM, unwind like Ctrl+C does, so the server stops and the temporary databases are removed.
    signal.signal(signal.SIGTERM, _exit_on_signal)

    postgres_url = os.environ.get(POSTGRES_ENV) or None
    names = args.only or list(WORKLOADS)
    sizes = QUICK if args.quick else FULL
    load_at_start = os.getloadavg()[0]
    started = perf_counter()
    with tempfile.TemporaryDirectory(prefix="liuhen-suite-") as tmp:
        results = run_suite(sizes, names, Path(tmp), postgres_url)
    server = postgres_version(postgres_url) if postgres_url else None

    section = render_results(results, _command(argv, postgres_url), server, perf_counter() - started, load_at_start)
    print(section)
    failures = [result.name for result in results if result.error is not None]
    if failures:
        print(f"Workloads failed: {', '.join(failures)}; {DOC_FILE.relative_to(ROOT)} was not changed.",
              file=sys.stderr)
        return 1
    if args.write:
        replace_section(DOC_FILE, SECTION_START, SECTION_END, section)
        print(f"Wrote the results into {DOC_FILE}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
