"""Cases per second of each layer on the same flows, in one run: the cost of each layer added.

1. bare SpiffWorkflow in memory;
2. plus a serialization round trip after every engine step, with liuhen's ``CaseStateSerializer``
   (the JSON liuhen stores, without the process spec): ``dumps``, then ``loads``, and the case goes
   on from the restored workflow;
3. liuhen's service, which stores state, task list and trace in one transaction per step, on SQLite
   and, when configured, on PostgreSQL.

The order of the layers alternates from round to round, and each rate is the median over rounds.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.util.task import TaskState

from bench.flows import (
    STRAIGHT_THROUGH,
    TWO_USER_TASKS,
    BenchmarkError,
    Flow,
    bench_service,
    check_completed,
    ready_task_id,
)
from bench.layers import LAYERS, layer_timing
from bench.report import Row, WorkloadResult, at_least, latency_text
from engine.state import CaseStateSerializer

# liuhen with SQLite and the trace should reach at least this share of bare SpiffWorkflow's rate.
TARGET_RATIO = 0.5


class Layer(Protocol):
    name: str
    # Seconds per engine stop: the start of a case, then each user task.
    step_seconds: list[float]

    def run_case(self) -> None: ...


class BareSpiff:
    """SpiffWorkflow's own parser and workflow, with nothing stored."""

    name = "bare SpiffWorkflow, in memory"

    def __init__(self, flow: Flow) -> None:
        parser = BpmnParser()
        parser.add_bpmn_file(str(flow.file))
        self.flow = flow
        self.spec = parser.get_spec(flow.process_id)
        self.subprocess_specs = parser.get_subprocess_specs(flow.process_id)
        self.step_seconds: list[float] = []

    def after_step(self, workflow: BpmnWorkflow) -> BpmnWorkflow:
        return workflow

    def run_case(self) -> None:
        started = perf_counter()
        workflow = BpmnWorkflow(self.spec, self.subprocess_specs)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(self.flow.start_data)
        workflow.do_engine_steps()
        workflow = self.after_step(workflow)
        self.step_seconds.append(perf_counter() - started)

        for submission in self.flow.submissions:
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            if len(ready) != 1:
                raise BenchmarkError(f"The bare SpiffWorkflow case has {len(ready)} ready user tasks, expected 1.")
            started = perf_counter()
            ready[0].data.update(submission)
            ready[0].run()
            workflow.do_engine_steps()
            workflow = self.after_step(workflow)
            self.step_seconds.append(perf_counter() - started)
        if not workflow.is_completed():
            raise BenchmarkError(f"The bare SpiffWorkflow case of {self.flow.process_id} did not complete.")


class SerializedSpiff(BareSpiff):
    """Bare SpiffWorkflow that serializes its state after every step and continues from the copy read back."""

    name = "bare + serialization round trip per step"

    def __init__(self, flow: Flow) -> None:
        super().__init__(flow)
        self.serializer = CaseStateSerializer()

    def after_step(self, workflow: BpmnWorkflow) -> BpmnWorkflow:
        stored = self.serializer.dumps(workflow)
        return self.serializer.loads(stored, self.spec, self.subprocess_specs)


class ServiceLayer:
    """liuhen's service on a fresh, migrated database with the benchmark flows deployed."""

    def __init__(self, flow: Flow, backend: str, url: str, data_dir: Path) -> None:
        self.flow = flow
        self.backend = backend
        self.name = f"liuhen, {backend}, with trace"
        self.service, [self.staff] = bench_service(url, data_dir)
        self.step_seconds: list[float] = []

    def run_case(self) -> None:
        started = perf_counter()
        case = self.service.start_case(self.flow.process_id, self.staff, dict(self.flow.start_data))
        self.step_seconds.append(perf_counter() - started)
        for submission in self.flow.submissions:
            task_id = ready_task_id(case)
            started = perf_counter()
            case = self.service.complete(task_id, self.staff, submission)
            self.step_seconds.append(perf_counter() - started)
        check_completed(case, self.flow)

    def close(self) -> None:
        self.service.db.dispose()


@dataclass
class LayerRates:
    layer: Layer
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def run_rounds(layers: Sequence[Layer], cases: int, rounds: int, warmup: int) -> list[LayerRates]:
    """Warm every layer up, then run ``rounds`` rounds of ``cases`` cases each, alternating the order."""
    for layer in layers:
        for _ in range(warmup):
            layer.run_case()
        layer.step_seconds.clear()
    results = [LayerRates(layer) for layer in layers]
    for round_number in range(rounds):
        order = results if round_number % 2 == 0 else list(reversed(results))
        for result in order:
            started = perf_counter()
            for _ in range(cases):
                result.layer.run_case()
            result.rates.append(cases / (perf_counter() - started))
    return results


def layer_breakdown(layer: ServiceLayer, cases: int) -> str:
    """Run ``cases`` more cases under bench/layers.py's layer timer; name the three costliest layers."""
    with layer_timing(layer) as timer:  # type: ignore[arg-type]
        started = perf_counter()
        for _ in range(cases):
            layer.run_case()
        wall = perf_counter() - started
    top = sorted(LAYERS, key=lambda name: -timer.seconds.get(name, 0.0))[:3]
    parts = [f"{name.split(' (')[0]} {timer.seconds.get(name, 0.0) * 1000 / cases:.2f} ms" for name in top]
    return (f"{wall * 1000 / cases:.2f} ms per case under the layer timer; most: " + "; ".join(parts)
            + ".")


def measure(cases: int, rounds: int, warmup: int, work_dir: Path, postgres_url: str | None,
            flows: Sequence[Flow] = (STRAIGHT_THROUGH, TWO_USER_TASKS)) -> WorkloadResult:
    from bench.variants import postgres_schema

    result = WorkloadResult("engine", "Layers on the same flows, in process")
    result.details += [
        f"{rounds} rounds of {cases} cases per layer and flow after {warmup} warm-up cases; rates are medians over "
        "rounds. Step latency: one engine stop, that is the start of a case or one user task, including the "
        "layer's storage.",
        "",
        "| flow | layer | median cases/s | cases/s per round | step latency |",
        "|---|---|---:|---|---|",
    ]
    for flow in flows:
        with contextlib.ExitStack() as stack:
            layers: list[Any] = [BareSpiff(flow), SerializedSpiff(flow)]
            sqlite_dir = work_dir / f"engine-{flow.process_id}"
            sqlite_dir.mkdir()
            sqlite = ServiceLayer(flow, "SQLite", f"sqlite:///{sqlite_dir / 'bench.db'}", sqlite_dir)
            stack.callback(sqlite.close)
            layers.append(sqlite)
            if postgres_url:
                schema_url = stack.enter_context(postgres_schema(postgres_url))
                postgres = ServiceLayer(flow, "PostgreSQL", schema_url, sqlite_dir)
                stack.callback(postgres.close)
                layers.append(postgres)

            measured = run_rounds(layers, cases, rounds, warmup)
            bare = measured[0].median
            for item in measured:
                layer = item.layer
                ratio = item.median / bare
                per_round = ", ".join(f"{rate:.0f}" for rate in item.rates)
                result.details.append(f"| {flow.name} | {layer.name} | {item.median:.1f} | {per_round} | "
                                      f"{latency_text(layer.step_seconds)} |")
                row = Row(flow.name, layer.name, f"{item.median:.0f} cases/s", "bare SpiffWorkflow", ratio)
                if flow is TWO_USER_TASKS and getattr(layer, "backend", None) == "SQLite":
                    row.target = at_least(TARGET_RATIO, f"≥ {TARGET_RATIO}× bare")
                    row.checked = ratio
                    if not row.target.met(ratio):
                        # Profiled after the measurement, so the timer's overhead stays out of the rates.
                        row.cause = layer_breakdown(layer, max(cases, 20))
                result.rows.append(row)
    return result
