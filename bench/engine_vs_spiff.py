"""Cases per second of liuhen's engine against bare SpiffWorkflow, on a flow with two user tasks.

Run from the repository root::

    .venv/bin/python -m bench.engine_vs_spiff            # print the results
    .venv/bin/python -m bench.engine_vs_spiff --write    # also replace the section in docs/benchmarks.md
    .venv/bin/python -m bench.engine_vs_spiff --profile  # where liuhen's time goes

Set LIUHEN_BENCH_POSTGRES_URL (an SQLAlchemy URL of a server the user may create schemas on) to
measure liuhen on PostgreSQL as well. The order of the variants alternates from round to round, so
a slow spell of the machine affects all of them alike. Each rate is the median over the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url

from bench.floor import FloorVariant
from bench.layers import render_profile, run_profile
from bench.variants import BareSpiff, LiuhenVariant, postgres_schema, postgres_version

ROOT = Path(__file__).resolve().parent.parent
DOC_FILE = ROOT / "docs" / "benchmarks.md"
SECTION_START = "<!-- engine-vs-spiff:start -->"
SECTION_END = "<!-- engine-vs-spiff:end -->"
POSTGRES_ENV = "LIUHEN_BENCH_POSTGRES_URL"
# liuhen with SQLite and the trace should reach at least this share of bare SpiffWorkflow's rate.
TARGET_RATIO = 0.5

# The floor variants measured beside liuhen, as (state, memory): see bench/floor.py.
FLOOR_VARIANTS = [(True, False), (False, False), (True, True), (False, True)]

DEFAULT_CASES = 300
DEFAULT_ROUNDS = 5
DEFAULT_WARMUP = 30


class Variant(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def backend(self) -> str | None: ...

    def run(self, cases: int) -> float: ...

    def clear_samples(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class VariantResult:
    name: str
    backend: str | None
    rates: list[float] = field(default_factory=list)  # cases per second, one per round
    # Seconds per user task: bare SpiffWorkflow's task.run() and engine steps, or one service.complete call.
    step_seconds: list[float] = field(default_factory=list)
    # Seconds per service.start_case call; empty for bare SpiffWorkflow.
    start_seconds: list[float] = field(default_factory=list)

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates)


@dataclass
class BenchmarkResult:
    cases: int
    rounds: int
    warmup: int
    bare: VariantResult
    liuhen: list[VariantResult]
    postgres_version: str | None = None
    # The floor variants of bench/floor.py: liuhen's writes in raw SQL, with none of the service around them.
    floors: list[VariantResult] = field(default_factory=list)

    def ratio(self, result: VariantResult) -> float:
        """Median rate of a liuhen variant divided by the median rate of bare SpiffWorkflow."""
        return result.median_rate / self.bare.median_rate

    def round_ratios(self, result: VariantResult) -> list[float]:
        return [mine / bare for mine, bare in zip(result.rates, self.bare.rates, strict=True)]


def run_rounds(variants: Sequence[Variant], cases: int, rounds: int, warmup: int) -> list[VariantResult]:
    """Warm every variant up, then run ``rounds`` rounds of ``cases`` cases, alternating the order."""
    for variant in variants:
        variant.run(warmup)
        variant.clear_samples()

    results = {id(variant): VariantResult(variant.name, variant.backend) for variant in variants}
    for round_number in range(rounds):
        order = list(variants) if round_number % 2 == 0 else list(reversed(variants))
        for variant in order:
            elapsed = variant.run(cases)
            results[id(variant)].rates.append(cases / elapsed)

    for variant in variants:
        result = results[id(variant)]
        if isinstance(variant, BareSpiff):
            result.step_seconds = list(variant.step_seconds)
        elif isinstance(variant, LiuhenVariant):
            result.step_seconds = list(variant.complete_seconds)
            result.start_seconds = list(variant.start_seconds)
    return [results[id(variant)] for variant in variants]


def run_benchmark(cases: int, rounds: int, warmup: int, work_dir: Path,
                  postgres_url: str | None = None, *, floors: bool = True) -> BenchmarkResult:
    """Measure bare SpiffWorkflow, liuhen on a fresh SQLite file in ``work_dir`` and, if given, on PostgreSQL.

    With ``floors`` the floor variants of bench/floor.py run in the same rounds.
    """
    with contextlib.ExitStack() as stack:
        variants: list[Variant] = [BareSpiff()]
        sqlite = LiuhenVariant("SQLite", f"sqlite:///{work_dir / 'bench.db'}", work_dir)
        stack.callback(sqlite.close)
        variants.append(sqlite)
        server_version = None
        if postgres_url:
            server_version = postgres_version(postgres_url)
            schema_url = stack.enter_context(postgres_schema(postgres_url))
            postgres = LiuhenVariant("PostgreSQL", schema_url, work_dir)
            # Registered after the schema, so it runs first and closes the pool before DROP SCHEMA.
            stack.callback(postgres.close)
            variants.append(postgres)
        liuhen_count = len(variants) - 1
        if floors:
            for state, memory in FLOOR_VARIANTS:
                floor = FloorVariant(work_dir, state=state, memory=memory)
                stack.callback(floor.close)
                variants.append(floor)

        results = run_rounds(variants, cases, rounds, warmup)
    return BenchmarkResult(cases, rounds, warmup, results[0], results[1:1 + liuhen_count], server_version,
                           results[1 + liuhen_count:])


def percentiles_ms(samples: Sequence[float]) -> tuple[float, float, float]:
    """Return p50, p95 and p99 of ``samples`` (seconds) in milliseconds."""
    cut = statistics.quantiles(samples, n=100, method="inclusive")
    return cut[49] * 1000, cut[94] * 1000, cut[98] * 1000


def source_revision() -> str:
    """Return the checked-out commit of the repository, marked when tracked files have changed since."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        changed = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (git failed or this is not a checkout)"
    return f"{commit} with uncommitted changes" if changed else commit


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def machine_info(postgres: str | None) -> list[tuple[str, str]]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return [
        ("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("liuhen commit", source_revision()),
        ("CPU", cpu),
        ("cores", str(os.cpu_count())),
        ("load average (1 min) at the end", f"{os.getloadavg()[0]:.2f}"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("SpiffWorkflow", importlib.metadata.version("SpiffWorkflow")),
        ("SQLAlchemy", importlib.metadata.version("SQLAlchemy")),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", postgres or f"not measured ({POSTGRES_ENV} unset)"),
    ]


def render_section(result: BenchmarkResult, command: str) -> str:
    """Format the results as the Markdown section between the engine-vs-spiff markers."""
    lines = [
        SECTION_START,
        "### Results",
        "",
        "The command below generated this section. Rerun it to refresh the numbers.",
        "",
        "```sh",
        command,
        "```",
        "",
        f"{result.rounds} rounds of {result.cases} cases per variant, after {result.warmup} warm-up cases each.",
        *_load_warning(),
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in machine_info(result.postgres_version)],
        "",
        "| variant | median cases/s | cases/s per round | liuhen / bare |",
        "|---|---:|---|---:|",
        _rate_row(result.bare, "1"),
    ]
    for measured in result.liuhen + result.floors:
        per_round = ", ".join(f"{ratio:.3f}" for ratio in result.round_ratios(measured))
        lines.append(_rate_row(measured, f"{result.ratio(measured):.3f} (per round: {per_round})"))
    lines += [
        "",
        "| call | p50 ms | p95 ms | p99 ms | samples |",
        "|---|---:|---:|---:|---:|",
        _latency_row("bare: one user task (`task.run()` + `do_engine_steps()`)", result.bare.step_seconds),
    ]
    for liuhen in result.liuhen:
        lines.append(_latency_row(f"{liuhen.backend}: `service.complete`", liuhen.step_seconds))
        lines.append(_latency_row(f"{liuhen.backend}: `service.start_case`", liuhen.start_seconds))
    sqlite = next(r for r in result.liuhen if r.backend == "SQLite")
    verdict = "met" if result.ratio(sqlite) >= TARGET_RATIO else "missed"
    lines += [
        "",
        (f"Target (liuhen with SQLite and trace at least {TARGET_RATIO}× bare SpiffWorkflow): "
         f"**{verdict}**, at {result.ratio(sqlite):.3f}×."),
        *_floor_summary(result),
        SECTION_END,
    ]
    return "\n".join(lines)


def _floor_summary(result: BenchmarkResult) -> list[str]:
    """Say how close to the target the floor variants came, which no implementation of the design can beat."""
    if not result.floors:
        return []
    design = result.floors[0]
    best = max(result.floors, key=result.ratio)
    return ["", (f"The floor of this design, liuhen's writes in raw SQL on an SQLite file with the case state "
                 f"and nothing else around them, reached {result.ratio(design):.3f}×. The fastest floor variant, "
                 f"\"{best.name}\", reached {result.ratio(best):.3f}×.")]


def _load_warning() -> list[str]:
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load <= cores:
        return []
    return ["", (f"The 1-minute load average ({load:.2f}) was above the number of cores ({cores}), so other work "
                 "competed for the CPU and the rates scatter more than on an idle machine.")]


def _rate_row(result: VariantResult, ratio: str) -> str:
    per_round = ", ".join(f"{rate:.0f}" for rate in result.rates)
    return f"| {result.name} | {result.median_rate:.1f} | {per_round} | {ratio} |"


def _latency_row(label: str, samples: Sequence[float]) -> str:
    p50, p95, p99 = percentiles_ms(samples)
    return f"| {label} | {p50:.3f} | {p95:.3f} | {p99:.3f} | {len(samples)} |"


def write_section(doc: Path, section: str) -> None:
    """Replace the text between the markers in ``doc`` with ``section``, or append it if they are missing."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    start, end = text.find(SECTION_START), text.find(SECTION_END)
    if start == -1 and end == -1:
        text = f"{text.rstrip()}\n\n{section}\n" if text.strip() else f"{section}\n"
    elif start == -1 or end < start:
        raise ValueError(f"{doc} contains an invalid engine-vs-spiff section because a marker is missing or "
                         f"out of order. Put {SECTION_START} before {SECTION_END}, or remove both to have the "
                         "section appended.")
    else:
        text = text[:start] + section + text[end + len(SECTION_END):]
    doc.write_text(text, encoding="utf-8")


def _command(argv: Sequence[str], postgres_url: str | None) -> str:
    command = ".venv/bin/python -m bench.engine_vs_spiff"
    if argv:
        command += " " + shlex.join(argv)
    if postgres_url:
        masked_url = make_url(postgres_url).render_as_string(hide_password=True)
        command = f"{POSTGRES_ENV}={shlex.quote(masked_url)} {command}"
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.engine_vs_spiff", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES,
                        help=f"cases per variant and round (default {DEFAULT_CASES})")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"measured rounds (default {DEFAULT_ROUNDS})")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                        help=f"unmeasured cases per variant before the first round (default {DEFAULT_WARMUP})")
    parser.add_argument("--write", action="store_true",
                        help=f"replace the engine-vs-spiff section of {DOC_FILE.relative_to(ROOT)}")
    parser.add_argument("--profile", action="store_true",
                        help="instead of comparing, show where liuhen's time goes for --cases cases, "
                             f"on SQLite and, if {POSTGRES_ENV} is set, on PostgreSQL")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.cases < 2 or args.rounds < 1 or args.warmup < 0:
        _parser().error("--cases must be at least 2, --rounds at least 1 and --warmup at least 0")

    postgres_url = os.environ.get(POSTGRES_ENV) or None
    with tempfile.TemporaryDirectory(prefix="liuhen-bench-") as tmp:
        if args.profile:
            reports = run_profile(args.cases, args.warmup, Path(tmp), postgres_url)
            print("\n\n".join(render_profile(report) for report in reports))
            return 0
        result = run_benchmark(args.cases, args.rounds, args.warmup, Path(tmp), postgres_url)

    section = render_section(result, _command(argv, postgres_url))
    print(section)
    if args.write:
        write_section(DOC_FILE, section)
        print(f"Wrote the results into {DOC_FILE}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
