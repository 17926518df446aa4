"""Supervision statistics over a period, grouped by department, post or process (power item).

The figures of one group:

- cases started, completed and cancelled in the period, and cases running at its end. A case is
  *handled* in the period when it finished in it or was running at its end. The case overdue rate is
  the share of handled cases that got a red card on a case time limit (statutory or promised) by the
  end of the period.
- the same for steps (the human tasks in ``case_tasks``, cancelled ones left out), with red cards on
  step time limits;
- risk events, yellow and red cards and supervision notices dated in the period;
- the handling time of each step completed in the period, from becoming ready to completion, in hours
  and in working days.

Cases have no post, so grouped by post the case figures are None. A card on a case time limit has no
post either and counts under no post. Risk events count under the department, post and process
recorded on the event itself.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from engine.calendar import LOCAL_TZ, WorkingCalendar, load_calendar
from engine.db import cards as cards_table
from engine.db import case_tasks, cases, definitions, risk_events, supervision_notices
from engine.errors import InvalidInput
from engine.extension import RISK_LEVELS
from engine.i18n import msg
from engine.periods import Period
from engine.risk_events import RISK_EVENT_KINDS
from engine.service import Liuhen
from engine.users import Actor, require_role

GROUPS = ("department", "post", "process")
# Clock names of step time limits start with this prefix. The other clocks time the whole case.
STEP_CLOCK_PREFIX = "step:"
MAX_PAGE_SIZE = 500


@dataclass
class CaseFigures:
    started: int = 0
    completed: int = 0
    cancelled: int = 0
    # Running at the end of the period.
    running: int = 0
    # Finished in the period or running at its end: the denominator of the overdue rate.
    handled: int = 0
    overdue: int = 0

    @property
    def overdue_rate(self) -> float | None:
        return self.overdue / self.handled if self.handled else None

    def add(self, other: CaseFigures) -> None:
        for name in ("started", "completed", "cancelled", "running", "handled", "overdue"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class StepFigures:
    # Completed in the period or open at its end: the denominator of the overdue rate.
    handled: int = 0
    completed: int = 0
    overdue: int = 0

    @property
    def overdue_rate(self) -> float | None:
        return self.overdue / self.handled if self.handled else None

    def add(self, other: StepFigures) -> None:
        self.handled += other.handled
        self.completed += other.completed
        self.overdue += other.overdue


@dataclass
class StepTime:
    """Handling times of one step (a flow node of one process) completed in the period."""

    process_id: str
    element_id: str
    name: str | None
    hours: list[float] = field(default_factory=list)
    working_days: list[float] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.hours)

    def summary(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id, "element_id": self.element_id, "name": self.name,
            "completed": self.count,
            "mean_hours": _rounded(statistics.fmean(self.hours)),
            "median_hours": _rounded(statistics.median(self.hours)),
            "mean_working_days": _rounded(statistics.fmean(self.working_days)),
            "median_working_days": _rounded(statistics.median(self.working_days)),
        }


@dataclass
class GroupStatistics:
    """The figures of one department, post or process. The group with ``key`` None collects rows without one."""

    key: str | None
    # For processes: the name and code of the power item, or the process name when it declares none.
    name: str | None = None
    power_item_code: str | None = None
    cases: CaseFigures | None = field(default_factory=CaseFigures)
    steps: StepFigures = field(default_factory=StepFigures)
    # Risk events per (risk level, kind).
    risk_event_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    yellow_cards: int = 0
    red_cards: int = 0
    supervision_notices: int = 0
    step_times: dict[tuple[str, str], StepTime] = field(default_factory=dict)

    @property
    def risk_events(self) -> int:
        return sum(self.risk_event_counts.values())

    @property
    def risk_events_by_level(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (level, _kind), count in self.risk_event_counts.items():
            counts[level] += count
        return counts

    @property
    def risk_events_by_kind(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (_level, kind), count in self.risk_event_counts.items():
            counts[kind] += count
        return counts

    def to_json(self) -> dict[str, Any]:
        by_level = self.risk_events_by_level
        case_figures = None
        if self.cases is not None:
            case_figures = {**vars(self.cases), "overdue_rate": _rounded(self.cases.overdue_rate, 4)}
        return {
            "key": self.key, "name": self.name, "power_item_code": self.power_item_code,
            "cases": case_figures,
            "steps": {**vars(self.steps), "overdue_rate": _rounded(self.steps.overdue_rate, 4)},
            "risk_events": {"total": self.risk_events,
                            "by_level": {level: by_level[level] for level in RISK_LEVELS},
                            "by_kind": dict(sorted(self.risk_events_by_kind.items()))},
            "yellow_cards": self.yellow_cards, "red_cards": self.red_cards,
            "supervision_notices": self.supervision_notices,
            "step_times": [self.step_times[key].summary() for key in sorted(self.step_times)],
        }


@dataclass
class Statistics:
    group: str
    period: Period
    groups: list[GroupStatistics]
    totals: GroupStatistics
    # Years whose dates counted as working days by the weekday rule, without official holiday data.
    provisional_years: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "period": self.period.to_json(),
                "groups": [group.to_json() for group in self.groups], "totals": self.totals.to_json(),
                "provisional_years": list(self.provisional_years)}


def check_group(group: str) -> str:
    if group not in GROUPS:
        raise InvalidInput(msg("Grouping {group!r} is unknown; use department, post or process.", group=group))
    return group


def compute_statistics(service: Liuhen, actor: Actor, group: str, period: Period) -> Statistics:
    """Compute the figures of every department, post or process with anything to count in ``period``."""
    require_role(actor, "auditor", "admin")
    check_group(group)
    calendar = load_calendar(service.db)
    groups: dict[str | None, GroupStatistics] = {}

    def entry(key: str | None) -> GroupStatistics:
        if key not in groups:
            groups[key] = GroupStatistics(key, cases=None if group == "post" else CaseFigures())
        return groups[key]

    with service.db.snapshot(replica=True) as conn:
        if group != "post":
            for key, figures in _case_figures(conn, group, period):
                entry(key).cases = figures
        for key, step_figures in _step_figures(conn, group, period):
            entry(key).steps = step_figures
        for key, level, kind, count in _risk_event_counts(conn, group, period):
            entry(key).risk_event_counts[(level, kind)] += count
        for key, colour, count in _card_counts(conn, group, period):
            if colour == "red":
                entry(key).red_cards += count
            elif colour == "yellow":
                entry(key).yellow_cards += count
        for key, count in _notice_counts(conn, group, period):
            entry(key).supervision_notices += count
        provisional: set[int] = set()
        for key, process_id, element_id, name, created_at, completed_at in _completed_steps(conn, group, period):
            times = entry(key).step_times.setdefault((process_id, element_id), StepTime(process_id, element_id, name))
            started, finished = _aware(created_at), _aware(completed_at)
            times.hours.append((finished - started).total_seconds() / 3600)
            times.working_days.append(working_days_elapsed(calendar, started, finished))
            provisional.update(calendar.provisional_years(_local_date(started), _local_date(finished)))
        if group == "process":
            _label_processes(conn, groups)

    ordered = [groups[key] for key in sorted(groups, key=lambda key: (key is None, key or ""))]
    return Statistics(group, period, ordered, _totals(ordered, group), tuple(sorted(provisional)))


def working_days_elapsed(calendar: WorkingCalendar, started: datetime, finished: datetime) -> float:
    """Measure the time from ``started`` to ``finished`` that falls on working days, in days of 24 hours.

    A step ready on Friday at 17:00 and completed on Monday at 09:00 took 16 hours of working days, so
    0.67, because the weekend does not count.
    """
    if finished <= started:
        return 0.0
    local_start, local_end = started.astimezone(LOCAL_TZ), finished.astimezone(LOCAL_TZ)
    seconds = 0.0
    day = local_start.date()
    while day <= local_end.date():
        if calendar.is_working_day(day):
            day_start = datetime.combine(day, time(), LOCAL_TZ)
            day_end = datetime.combine(day + timedelta(days=1), time(), LOCAL_TZ)
            seconds += (min(local_end, day_end) - max(local_start, day_start)).total_seconds()
        day += timedelta(days=1)
    return seconds / 86400


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _aware(moment: datetime) -> datetime:
    """Read a stored time: SQLite returns naive datetimes, which are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _local_date(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def _within(column: Any, period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _case_key(group: str) -> Any:
    return cases.c.department if group == "department" else cases.c.process_id


def _case_figures(conn: Connection, group: str, period: Period) -> Iterable[tuple[str | None, CaseFigures]]:
    key = _case_key(group)
    red_card = exists().where(cards_table.c.case_id == cases.c.id, cards_table.c.colour == "red",
                              ~cards_table.c.clock.startswith(STEP_CLOCK_PREFIX),
                              cards_table.c.raised_at < period.end)
    query = (
        select(key.label("key"),
               _count_if(_within(cases.c.started_at, period)).label("started"),
               _count_if(and_(cases.c.status == "completed", _within(cases.c.ended_at, period))).label("completed"),
               _count_if(and_(cases.c.status == "cancelled", _within(cases.c.ended_at, period))).label("cancelled"),
               _count_if(or_(cases.c.ended_at.is_(None), cases.c.ended_at >= period.end)).label("running"),
               func.count().label("handled"),
               _count_if(red_card).label("overdue"))
        .where(cases.c.started_at < period.end, or_(cases.c.ended_at.is_(None), cases.c.ended_at >= period.start))
        .group_by(key)
    )
    for row in conn.execute(query):
        yield row.key, CaseFigures(int(row.started), int(row.completed), int(row.cancelled), int(row.running),
                                   int(row.handled), int(row.overdue))


def _step_figures(conn: Connection, group: str, period: Period) -> Iterable[tuple[str | None, StepFigures]]:
    key = case_tasks.c.lane if group == "post" else _case_key(group)
    red_card = exists().where(cards_table.c.task_id == case_tasks.c.id, cards_table.c.colour == "red",
                              cards_table.c.clock.startswith(STEP_CLOCK_PREFIX),
                              cards_table.c.raised_at < period.end)
    query = (
        select(key.label("key"), func.count().label("handled"),
               _count_if(and_(case_tasks.c.status == "completed", _within(case_tasks.c.completed_at, period)))
               .label("completed"),
               _count_if(red_card).label("overdue"))
        .select_from(case_tasks.join(cases, cases.c.id == case_tasks.c.case_id))
        .where(case_tasks.c.status != "cancelled", case_tasks.c.created_at < period.end,
               or_(case_tasks.c.completed_at.is_(None), case_tasks.c.completed_at >= period.start))
        .group_by(key)
    )
    for row in conn.execute(query):
        yield row.key, StepFigures(int(row.handled), int(row.completed), int(row.overdue))


def _risk_event_counts(conn: Connection, group: str, period: Period) -> Iterable[tuple[str | None, str, str, int]]:
    key = {"department": risk_events.c.department, "post": risk_events.c.post,
           "process": risk_events.c.process_id}[group]
    query = (select(key.label("key"), risk_events.c.level, risk_events.c.kind, func.count().label("number"))
             .where(_within(risk_events.c.at, period))
             .group_by(key, risk_events.c.level, risk_events.c.kind))
    for row in conn.execute(query):
        yield row.key, row.level, row.kind, int(row.number)


def _card_counts(conn: Connection, group: str, period: Period) -> Iterable[tuple[str | None, str, int]]:
    key = case_tasks.c.lane if group == "post" else _case_key(group)
    query = (select(key.label("key"), cards_table.c.colour, func.count().label("number"))
             .select_from(cards_table.join(cases, cases.c.id == cards_table.c.case_id)
                          .outerjoin(case_tasks, case_tasks.c.id == cards_table.c.task_id))
             .where(_within(cards_table.c.raised_at, period))
             .group_by(key, cards_table.c.colour))
    for row in conn.execute(query):
        yield row.key, row.colour, int(row.number)


def _notice_counts(conn: Connection, group: str, period: Period) -> Iterable[tuple[str | None, int]]:
    key = supervision_notices.c.post if group == "post" else _case_key(group)
    query = (select(key.label("key"), func.count().label("number"))
             .select_from(supervision_notices.join(cases, cases.c.id == supervision_notices.c.case_id))
             .where(_within(supervision_notices.c.opened_at, period))
             .group_by(key))
    for row in conn.execute(query):
        yield row.key, int(row.number)


def _completed_steps(conn: Connection, group: str, period: Period) -> Iterable[Any]:
    key = case_tasks.c.lane if group == "post" else _case_key(group)
    query = (select(key.label("key"), cases.c.process_id, case_tasks.c.element_id, case_tasks.c.name,
                    case_tasks.c.created_at, case_tasks.c.completed_at)
             .select_from(case_tasks.join(cases, cases.c.id == case_tasks.c.case_id))
             .where(case_tasks.c.status == "completed", _within(case_tasks.c.completed_at, period))
             .order_by(case_tasks.c.completed_at, case_tasks.c.id))
    return conn.execute(query).all()


def _label_processes(conn: Connection, groups: dict[str | None, GroupStatistics]) -> None:
    """Name each process after the power item of its newest version, or after the process itself."""
    rows = conn.execute(select(definitions.c.process_id, definitions.c.name, definitions.c.power_item)
                        .where(definitions.c.process_id.in_([key for key in groups if key is not None]))
                        .order_by(definitions.c.process_id, definitions.c.version)).all()
    for row in rows:
        entry = groups[row.process_id]
        power_item = row.power_item or {}
        entry.name = power_item.get("name") or row.name
        entry.power_item_code = power_item.get("code")


def _totals(groups: list[GroupStatistics], group: str) -> GroupStatistics:
    totals = GroupStatistics(None, cases=None if group == "post" else CaseFigures())
    for entry in groups:
        if totals.cases is not None and entry.cases is not None:
            totals.cases.add(entry.cases)
        totals.steps.add(entry.steps)
        totals.risk_event_counts.update(entry.risk_event_counts)
        totals.yellow_cards += entry.yellow_cards
        totals.red_cards += entry.red_cards
        totals.supervision_notices += entry.supervision_notices
        for step_key, times in entry.step_times.items():
            merged = totals.step_times.setdefault(step_key, StepTime(times.process_id, times.element_id, times.name))
            merged.hours.extend(times.hours)
            merged.working_days.extend(times.working_days)
    return totals


# Listing risk events.


@dataclass(frozen=True)
class RiskEventFilter:
    """Conditions a listed risk event meets; None leaves a condition out."""

    department: str | None = None
    post: str | None = None
    process_id: str | None = None
    level: str | None = None
    kind: str | None = None
    case_id: int | None = None
    period: Period | None = None

    def __post_init__(self) -> None:
        if self.level is not None and self.level not in RISK_LEVELS:
            raise InvalidInput(msg("Risk level {level!r} is unknown; use one of: {allowed}.", level=self.level,
                                   allowed=", ".join(RISK_LEVELS)))
        if self.kind is not None and self.kind not in RISK_EVENT_KINDS:
            raise InvalidInput(msg("Risk event kind {kind!r} is unknown; use one of: {allowed}.", kind=self.kind,
                                   allowed=", ".join(RISK_EVENT_KINDS)))

    def conditions(self) -> list[ColumnElement[bool]]:
        columns = {"department": risk_events.c.department, "post": risk_events.c.post,
                   "process_id": risk_events.c.process_id, "level": risk_events.c.level,
                   "kind": risk_events.c.kind, "case_id": risk_events.c.case_id}
        result = [column == getattr(self, name) for name, column in columns.items() if getattr(self, name) is not None]
        if self.period is not None:
            result.append(_within(risk_events.c.at, self.period))
        return result


def list_risk_events(service: Liuhen, actor: Actor, where: RiskEventFilter, *, limit: int = 100,
                     offset: int = 0) -> dict[str, Any]:
    """Return one page of the risk events that match ``where``, newest first, and how many match in all."""
    require_role(actor, "auditor", "admin")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(msg("Page size {limit} is invalid; give a number from 1 to {maximum}.", limit=limit,
                               maximum=MAX_PAGE_SIZE))
    if offset < 0:
        raise InvalidInput(msg("Offset {offset} is invalid; give 0 or more.", offset=offset))
    conditions = where.conditions()
    with service.db.snapshot(replica=True) as conn:
        total = conn.execute(select(func.count()).select_from(risk_events).where(*conditions)).scalar_one()
        rows = conn.execute(select(risk_events).where(*conditions)
                            .order_by(risk_events.c.at.desc(), risk_events.c.id.desc())
                            .limit(limit).offset(offset)).all()
    items = [{**row._asdict(), "at": _aware(row.at)} for row in rows]
    return {"total": int(total), "limit": limit, "offset": offset, "items": items}
