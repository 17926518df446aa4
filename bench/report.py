"""Result rows of the benchmark suite and their Markdown form.

Every workload returns a ``WorkloadResult``: rows for the summary table (one measured number each,
with its reference, ratio and target) and optional detail lines, such as latency tables.
"""

from __future__ import annotations

import importlib.metadata
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.engine_vs_spiff import machine_info


@dataclass(frozen=True)
class Target:
    """A goal for a measured value: at least (``higher_is_better``) or at most ``limit``."""

    limit: float
    higher_is_better: bool
    text: str

    def met(self, value: float) -> bool:
        return value >= self.limit if self.higher_is_better else value <= self.limit

    def verdict(self, value: float) -> str:
        """Return "met", or "missed by" with the factor between the value and the limit."""
        if self.met(value):
            return "met"
        if value <= 0:
            return "missed"
        factor = self.limit / value if self.higher_is_better else value / self.limit
        return f"missed by {factor:.1f}×"


def at_least(limit: float, text: str) -> Target:
    return Target(limit, True, text)


def at_most(limit: float, text: str) -> Target:
    return Target(limit, False, text)


@dataclass
class Row:
    """One line of the summary table.

    ``checked`` is the value the target applies to: the ratio when the target is a ratio, the
    value itself otherwise.
    """

    workload: str
    layer: str
    value: str
    reference: str = ""
    ratio: float | None = None
    target: Target | None = None
    checked: float | None = None
    # Why the target was missed, from a profile or the measurements; empty where it was met.
    cause: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None or self.checked is None:
            return ""
        return self.target.verdict(self.checked)


@dataclass
class WorkloadResult:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Why the workload stopped before it measured everything, if it did.
    error: str | None = None


def percentiles_ms(samples: Sequence[float]) -> tuple[float, float, float]:
    """Return p50, p95 and p99 of ``samples`` (seconds) in milliseconds; one sample stands for all three."""
    if not samples:
        return (float("nan"),) * 3
    if len(samples) == 1:
        return (samples[0] * 1000,) * 3
    cut = statistics.quantiles(samples, n=100, method="inclusive")
    return cut[49] * 1000, cut[94] * 1000, cut[98] * 1000


def latency_text(samples: Sequence[float]) -> str:
    p50, p95, p99 = percentiles_ms(samples)
    return f"p50 {p50:.2f} / p95 {p95:.2f} / p99 {p99:.2f} ms"


def render_summary(results: Sequence[WorkloadResult]) -> list[str]:
    lines = [
        "| workload | layer | measured | reference | ratio | target | verdict | why, where missed |",
        "|---|---|---|---|---:|---|---|---|",
    ]
    for result in results:
        if result.error is not None:
            lines.append(f"| {result.title} | | **failed** | | | | | {result.error} |")
        for row in result.rows:
            ratio = f"{row.ratio:.3f}" if row.ratio is not None else ""
            target = row.target.text if row.target is not None else ""
            verdict = f"**{row.verdict}**" if row.verdict else ""
            lines.append(f"| {row.workload} | {row.layer} | {row.value} | {row.reference} | {ratio} | {target} | "
                         f"{verdict} | {row.cause} |")
    return lines


def render_results(results: Sequence[WorkloadResult], command: str, postgres: str | None,
                   total_seconds: float, load_at_start: float) -> str:
    """Format the whole run as Markdown: machine, summary table, then each workload's details."""
    versions = [("httpx", _version("httpx")), ("uvicorn", _version("uvicorn")), ("psycopg", _version("psycopg"))]
    lines = [
        "### Suite results",
        "",
        "The command below generated this section. Rerun it to refresh the numbers.",
        "",
        "```sh",
        command,
        "```",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in machine_info(postgres)],
        *[f"| {name} | {version} |" for name, version in versions],
        f"| load average (1 min) at the start | {load_at_start:.2f} |",
        f"| duration of the run | {total_seconds / 60:.1f} min |",
        "",
        *render_summary(results),
    ]
    for result in results:
        if result.details:
            lines += ["", f"#### {result.title}", "", f"Took {result.seconds:.0f} s.", "", *result.details]
    return "\n".join(lines)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def replace_section(doc: Path, start_marker: str, end_marker: str, section: str) -> None:
    """Replace the text between the markers in ``doc`` with ``section``, or append the markers and section."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    start, end = text.find(start_marker), text.find(end_marker)
    block = f"{start_marker}\n{section}\n{end_marker}"
    if start == -1 and end == -1:
        text = f"{text.rstrip()}\n\n{block}\n" if text.strip() else f"{block}\n"
    elif start == -1 or end < start:
        raise ValueError(f"{doc} contains an invalid section because a marker is missing or out of order. "
                         f"Put {start_marker} before {end_marker}, or remove both to have the section appended.")
    else:
        text = text[:start] + block + text[end + len(end_marker):]
    doc.write_text(text, encoding="utf-8")

