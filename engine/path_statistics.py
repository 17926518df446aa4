"""Figures over the cases of one process version: visits and time per step, traversals per flow, risk events.

The figures come from the traces alone, through the paths ``engine.case_paths`` reads from them.
A case counts under the version it runs on now, as in ``engine.conformance``, so a case moved to
another version counts there with its whole trace.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from engine.case_paths import CasePath
from engine.db import cases, trace_events
from engine.service import Liuhen


@dataclass
class StepStatistics:
    """Figures of one flow node over all cases: arrivals, cases, step times and risk events by kind."""

    visits: int = 0
    cases: int = 0
    # Seconds from task_ready to task_completed, one value per completed task.
    durations: list[float] = field(default_factory=list)
    risk_events: Counter[str] = field(default_factory=Counter)

    @property
    def mean_seconds(self) -> float | None:
        return statistics.fmean(self.durations) if self.durations else None

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None

    @property
    def risk_event_count(self) -> int:
        return sum(self.risk_events.values())


@dataclass
class VersionStatistics:
    """Figures of all cases of one process version, per flow node and per sequence flow."""

    cases: int
    by_status: dict[str, int]
    steps: dict[str, StepStatistics]
    # Traversals per sequence flow id, and the number of cases that took it at least once.
    flows: Counter[str]
    flow_cases: Counter[str]
    # Risk events that concern a whole case rather than one step, such as data edits and cancellations.
    case_risk_events: Counter[str]

    def step(self, element_id: str) -> StepStatistics:
        return self.steps.get(element_id) or StepStatistics()


def summarize_paths(paths: Iterable[tuple[str, CasePath]]) -> VersionStatistics:
    """Add up the (case status, path) pairs of the cases of one version."""
    steps: dict[str, StepStatistics] = defaultdict(StepStatistics)
    flows: Counter[str] = Counter()
    flow_cases: Counter[str] = Counter()
    case_risk_events: Counter[str] = Counter()
    statuses: Counter[str] = Counter()

    for status, path in paths:
        statuses[status] += 1
        arrivals = Counter(visit.element_id for visit in path.visits) + path.passes
        for element_id, count in arrivals.items():
            steps[element_id].visits += count
            steps[element_id].cases += 1
        for element_id, seconds in path.durations:
            steps[element_id].durations.append(seconds)
        for event in path.risk_events:
            if event.element_id:
                steps[event.element_id].risk_events[event.kind] += 1
            else:
                case_risk_events[event.kind] += 1
        flows.update(path.flow_counts)
        flow_cases.update(path.flow_counts.keys())

    return VersionStatistics(cases=sum(statuses.values()), by_status=dict(sorted(statuses.items())),
                             steps=dict(steps), flows=flows, flow_cases=flow_cases,
                             case_risk_events=case_risk_events)


def version_traces(service: Liuhen, definition_id: int) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Return (case row, trace events) for every case that runs on ``definition_id``, oldest case first."""
    case_ids = select(cases.c.id).where(cases.c.definition_id == definition_id)
    with service.db.read() as conn:
        case_rows = conn.execute(select(cases.c.id, cases.c.status).where(cases.c.definition_id == definition_id)
                                 .order_by(cases.c.id)).all()
        bodies = conn.execute(select(trace_events.c.case_id, trace_events.c.body)
                              .where(trace_events.c.case_id.in_(case_ids))
                              .order_by(trace_events.c.case_id, trace_events.c.seq)).all()
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in bodies:
        events[row.case_id].append(json.loads(bytes(row.body)))
    return [(row, events[row.id]) for row in case_rows]
