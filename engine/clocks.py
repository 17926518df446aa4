"""Case clocks: the statutory, promised and step time limits of cases, kept in ``case_clocks``.

A step hook that every ``Liuhen`` installs keeps the rows in step with the case, inside each stored
step's transaction:

- a case whose power item declares a statutory (法定期限) or promised (承诺期限) limit gets one clock
  for each when it starts;
- a task whose flow node has ``liuhen:timeLimit`` gets a step clock ``step:<task id>`` while it is open;
- while a task whose node has ``liuhen:clockPause`` is open, the statutory and promised clocks are
  paused, and they are extended when the last such task finishes (行政许可法 §45);
- completing a task whose node has ``liuhen:clockStart`` (the acceptance step, 受理) starts the
  statutory and promised clocks again from that moment;
- a step clock stops when its task finishes, and every clock of a case stops when the case ends.

Due times follow ``engine.deadlines``. Each row also stores when its yellow card falls due, by the
thresholds in the settings; the worker raises the cards (``engine.supervision``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from engine import trace
from engine.calendar import LOCAL_TZ, WorkingCalendar, load_calendar, local_today
from engine.db import case_clocks, case_tasks, cases
from engine.deadlines import Deadline, Pause, TimeLimit, Unit, compute_deadline
from engine.errors import LiuhenError, NotFound
from engine.i18n import msg
from engine.prepared import PreparedStatement
from engine.settings import Settings

if TYPE_CHECKING:
    from engine.definitions import ParsedDefinition
    from engine.service import Liuhen, StepContext

logger = logging.getLogger(__name__)

STATUTORY: Final = "statutory"
PROMISED: Final = "promised"
CASE_CLOCKS: Final = (STATUTORY, PROMISED)
STEP_PREFIX: Final = "step:"
# The power-item keys that hold the limit of each case clock.
_POWER_ITEM_KEYS: Final = {STATUTORY: "statutory_time_limit", PROMISED: "promised_time_limit"}

CARD_NONE: Final = "none"
CARD_YELLOW: Final = "yellow"
CARD_RED: Final = "red"
CARD_RANK: Final = {CARD_NONE: 0, CARD_YELLOW: 1, CARD_RED: 2}

_OPEN_TASK_STATUSES = ("ready", "claimed")
# Absorbs floating-point error in share × working days, so that 0.29 × 100 counts as 29.
_SHARE_EPSILON = 1e-9


def step_clock(task_id: str) -> str:
    return f"{STEP_PREFIX}{task_id}"


def clock_kind(clock: str) -> str:
    """Return ``statutory``, ``promised`` or ``step`` for a clock name."""
    return "step" if clock.startswith(STEP_PREFIX) else clock


@dataclass(frozen=True)
class YellowThreshold:
    """When a clock turns yellow: at ``days_left`` working days left, or at ``share_left`` of its working days."""

    days_left: int
    share_left: float

    @classmethod
    def from_settings(cls, settings: Settings) -> YellowThreshold:
        return cls(settings.card_yellow_days_left, settings.card_yellow_share_left)

    def days_for(self, deadline: Deadline) -> int:
        """Return the working days left at which ``deadline`` turns yellow; either threshold suffices."""
        share_days = math.floor(self.share_left * max(deadline.working_days, 1) + _SHARE_EPSILON)
        return max(self.days_left, share_days)


@dataclass(frozen=True)
class Schedule:
    """A clock's deadline as of now, and when its yellow card falls due."""

    deadline: Deadline
    yellow_at: datetime

    @property
    def due_at(self) -> datetime:
        return _utc(self.deadline.due)


def schedule(limit: TimeLimit, started_at: datetime, pauses: Iterable[tuple[datetime, datetime]],
             paused_since: datetime | None, now: datetime, calendar: WorkingCalendar,
             threshold: YellowThreshold) -> Schedule:
    """Compute a clock's deadline; a pause still running counts up to ``now``."""
    spans = [Pause(start, end) for start, end in pauses]
    if paused_since is not None:
        spans.append(Pause(paused_since, max(now, paused_since)))
    deadline = compute_deadline(started_at, limit, spans, calendar)
    return Schedule(deadline, yellow_moment(deadline, calendar, threshold))


def yellow_moment(deadline: Deadline, calendar: WorkingCalendar, threshold: YellowThreshold) -> datetime:
    """Return the start of the first day on which the working days left reach the yellow threshold.

    ``add_working_days(last_day, -n)`` is the one day from which exactly n working days are left, and
    every earlier day has more left. A clock already inside its threshold turns yellow when it starts.
    """
    day = calendar.add_working_days(deadline.last_day, -threshold.days_for(deadline))
    moment = datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)
    return max(moment, _utc(deadline.start))


def live_card(now: datetime, due_at: datetime, yellow_at: datetime | None) -> str:
    """Return the colour a clock shows at ``now``: red past its due time, yellow inside its threshold."""
    if now > due_at:
        return CARD_RED
    if yellow_at is not None and now >= yellow_at:
        return CARD_YELLOW
    return CARD_NONE


def worst_card(colours: Iterable[str]) -> str:
    return max(colours, key=CARD_RANK.__getitem__, default=CARD_NONE)


def case_limits(power_item: dict[str, Any] | None) -> dict[str, TimeLimit]:
    """Return the statutory and promised limits a power item declares, by clock name."""
    limits = {}
    for clock, key in _POWER_ITEM_KEYS.items():
        declared = (power_item or {}).get(key)
        if declared:
            limits[clock] = TimeLimit(int(declared["amount"]), Unit(declared["unit"]))
    return limits


def row_limit(row: Any) -> TimeLimit:
    return TimeLimit(int(row.amount), Unit(row.unit))


def row_pauses(row: Any) -> list[tuple[datetime, datetime]]:
    return [(_parse_utc(start), _parse_utc(end)) for start, end in row.pauses or []]


def row_schedule(row: Any, now: datetime, calendar: WorkingCalendar, threshold: YellowThreshold) -> Schedule:
    """Compute the schedule of a stored clock as of ``now``."""
    return schedule(row_limit(row), _utc(row.started_at), row_pauses(row), _utc_or_none(row.paused_since), now,
                    calendar, threshold)


# The step hook.

@dataclass(frozen=True)
class _ClockPlan:
    """The limits, restarts and pauses one deployed definition declares; cached because definitions never change."""

    limits: dict[str, TimeLimit]
    step_limits: dict[str, TimeLimit]
    clock_starts: frozenset[str]
    pausing_nodes: dict[str, str]

    @classmethod
    def of(cls, parsed: ParsedDefinition, power_item: dict[str, Any] | None) -> _ClockPlan:
        step_limits, starts, pausing = {}, set(), {}
        for element_id, node in parsed.nodes.items():
            declared = node.extensions.get("time_limit")
            if declared:
                step_limits[element_id] = TimeLimit(int(declared["amount"]), Unit(declared["unit"]))
            if node.extensions.get("clock_start"):
                starts.add(element_id)
            if node.extensions.get("clock_pause"):
                pausing[element_id] = node.extensions["clock_pause"]["reason"]
        return cls(case_limits(power_item), step_limits, frozenset(starts), pausing)


class ClockKeeper:
    """The step hook that keeps ``case_clocks`` in step with each stored step of a case."""

    def __init__(self, service: Liuhen) -> None:
        self.service = service
        self._plans: dict[int, _ClockPlan] = {}

    def __call__(self, context: StepContext) -> list[trace.NewEvent]:
        ended = context.status != "running"
        step = _Step(self.service, context)
        try:
            # A clock that cannot be computed must not stop the step, so its writes roll back on their own.
            plan = self._plan(context.definition_id)
            if not plan.limits and not plan.step_limits and (not ended or not _has_open_clock(context)):
                return []
            with context.conn.begin_nested():
                self._apply(step, plan, ended)
        except LiuhenError as exc:
            logger.warning("keeping the clocks of case %s failed: %s", context.case_id, exc,
                           extra={"case_id": context.case_id, "code": exc.code})
            return []
        return step.events

    def _plan(self, definition_id: int) -> _ClockPlan:
        plan = self._plans.get(definition_id)
        if plan is None:
            parsed, process = self.service.parsed_definition(definition_id)
            plan = self._plans[definition_id] = _ClockPlan.of(parsed, process.power_item)
        return plan

    def _apply(self, step: _Step, plan: _ClockPlan, ended: bool) -> None:
        events = step.context.step_events
        ready = [event for event in events if event.kind == "task_ready"]
        finished = [event for event in events if event.kind in ("task_completed", "task_cancelled")]
        restarts = [event for event in events
                    if event.kind == "task_completed" and event.element_id in plan.clock_starts]

        if plan.limits:
            rows = step.case_clock_rows()
            if not ended:
                for clock, limit in plan.limits.items():
                    if clock not in rows:
                        rows[clock] = step.start_case_clock(clock, limit)
            for event in restarts:
                for clock in CASE_CLOCKS:
                    if clock in rows:
                        step.restart(rows[clock], event)
            touched = any(event.element_id in plan.pausing_nodes for event in ready + finished)
            if not ended and plan.pausing_nodes and (touched or restarts):
                step.reconcile_pauses(rows, plan.pausing_nodes)

        if not ended:
            for event in ready:
                if event.element_id in plan.step_limits:
                    step.start_step_clock(event, plan.step_limits[event.element_id])
        stopped = [step_clock(event.task_id) for event in finished
                   if event.task_id and event.element_id in plan.step_limits]
        if stopped:
            step.stop(stopped)
        if ended:
            step.stop_all()


_OPEN_CLOCK_OF_CASE = PreparedStatement(
    select(case_clocks.c.id).where(case_clocks.c.case_id == bindparam("case_id"), case_clocks.c.stopped_at.is_(None))
    .limit(1))


def _has_open_clock(context: StepContext) -> bool:
    """Tell whether the case has a clock to stop: a case moved from a version with limits may keep one."""
    return _OPEN_CLOCK_OF_CASE.first(context.conn, {"case_id": context.case_id}) is not None


class _Step:
    """The clock changes of one stored step, with the calendar loaded only when a due time is computed."""

    def __init__(self, service: Liuhen, context: StepContext) -> None:
        self.service = service
        self.context = context
        self.conn: Connection = context.conn
        self.now = _utc(context.now)
        self.threshold = YellowThreshold.from_settings(service.settings)
        self.events: list[trace.NewEvent] = []
        self._calendar: WorkingCalendar | None = None

    @property
    def calendar(self) -> WorkingCalendar:
        if self._calendar is None:
            self._calendar = load_calendar(self.service.db, self.conn)
        return self._calendar

    def event(self, kind: str, payload: dict[str, Any], element_id: str | None = None,
              task_id: str | None = None) -> None:
        self.events.append(trace.NewEvent(kind, self.context.actor.username, self.context.now,
                                          case_id=self.context.case_id, definition_id=self.context.definition_id,
                                          element_id=element_id, task_id=task_id, payload=payload))

    def case_clock_rows(self) -> dict[str, _Clock]:
        rows = self.conn.execute(select(case_clocks).where(case_clocks.c.case_id == self.context.case_id,
                                                           case_clocks.c.clock.in_(CASE_CLOCKS))).all()
        return {row.clock: _Clock.from_row(row) for row in rows}

    def start_case_clock(self, clock: str, limit: TimeLimit) -> _Clock:
        # A case started before its clocks were kept gets them now, counted from its real start.
        started_at = self.conn.execute(select(cases.c.started_at)
                                       .where(cases.c.id == self.context.case_id)).scalar_one()
        state = _Clock(None, clock, None, None, limit, _utc(started_at), [], None, CARD_NONE)
        self._insert(state)
        self.event("clock_started", self._payload(state))
        return state

    def start_step_clock(self, event: Any, limit: TimeLimit) -> None:
        state = _Clock(None, step_clock(event.task_id), event.task_id, event.element_id, limit, self.now, [], None,
                       CARD_NONE)
        self._insert(state)
        self.event("clock_started", self._payload(state), event.element_id, event.task_id)

    def restart(self, state: _Clock, event: Any) -> None:
        previous = state.started_at
        state.started_at = self.now
        state.pauses = []
        state.paused_since = None
        state.stopped_at = None
        self._write(state)
        # NOTE: a card colour raised before the restart is not raised again, because cards are unique per
        # clock and colour.
        self.event("clock_restarted", {**self._payload(state), "previous_started_at": _iso(previous)},
                   event.element_id, event.task_id)

    def reconcile_pauses(self, rows: dict[str, _Clock], pausing_nodes: dict[str, str]) -> None:
        """Pause the case clocks while a pausing task is open and resume them once none is."""
        pausing = self.conn.execute(
            select(case_tasks.c.id, case_tasks.c.element_id)
            .where(case_tasks.c.case_id == self.context.case_id, case_tasks.c.status.in_(_OPEN_TASK_STATUSES),
                   case_tasks.c.element_id.in_(sorted(pausing_nodes)))
            .order_by(case_tasks.c.created_at, case_tasks.c.id)).first()
        for clock in CASE_CLOCKS:
            state = rows.get(clock)
            if state is None or state.stopped_at is not None:
                continue
            if pausing is not None and state.paused_since is None:
                state.paused_since = self.now
                self._write(state)
                self.event("clock_paused", {"clock": clock, "reason": pausing_nodes[pausing.element_id]},
                           pausing.element_id, pausing.id)
            elif pausing is None and state.paused_since is not None:
                paused_from = state.paused_since
                state.pauses.append((paused_from, self.now))
                state.paused_since = None
                self._write(state)
                self.event("clock_resumed", {**self._payload(state), "paused_from": _iso(paused_from)})

    def stop(self, clocks: list[str]) -> None:
        self.conn.execute(update(case_clocks).where(
            case_clocks.c.case_id == self.context.case_id, case_clocks.c.clock.in_(clocks),
            case_clocks.c.stopped_at.is_(None)).values(stopped_at=self.now, updated_at=self.now))

    def stop_all(self) -> None:
        """Stop every open clock of the ended case, closing a running pause at the same moment."""
        rows = self.conn.execute(select(case_clocks).where(case_clocks.c.case_id == self.context.case_id,
                                                           case_clocks.c.stopped_at.is_(None))).all()
        for row in rows:
            values: dict[str, Any] = {"stopped_at": self.now, "updated_at": self.now}
            if row.paused_since is not None:
                values["pauses"] = [*(row.pauses or []), [_iso(_utc(row.paused_since)), _iso(self.now)]]
                values["paused_since"] = None
            self.conn.execute(update(case_clocks).where(case_clocks.c.id == row.id).values(**values))

    def _insert(self, state: _Clock) -> None:
        values = self._schedule_values(state)
        state.id = self.conn.execute(insert(case_clocks).values(
            case_id=self.context.case_id, clock=state.clock, task_id=state.task_id, element_id=state.element_id,
            amount=state.limit.amount, unit=state.limit.unit.value, started_at=state.started_at, pauses=[],
            paused_since=None, card=CARD_NONE, stopped_at=None, **values,
        ).returning(case_clocks.c.id)).scalar_one()

    def _write(self, state: _Clock) -> None:
        values = self._schedule_values(state)
        self.conn.execute(update(case_clocks).where(case_clocks.c.id == state.id).values(
            started_at=state.started_at, pauses=[[_iso(start), _iso(end)] for start, end in state.pauses],
            paused_since=state.paused_since, stopped_at=state.stopped_at, **values))

    def _schedule_values(self, state: _Clock) -> dict[str, Any]:
        state.schedule = schedule(state.limit, state.started_at, state.pauses, state.paused_since, self.now,
                                  self.calendar, self.threshold)
        return _schedule_columns(state.schedule, self.now)

    def _payload(self, state: _Clock) -> dict[str, Any]:
        assert state.schedule is not None
        deadline = state.schedule.deadline
        return {"clock": state.clock, "amount": state.limit.amount, "unit": state.limit.unit.value,
                "started_at": _iso(state.started_at), "due_at": _iso(state.schedule.due_at),
                "last_day": deadline.last_day.isoformat(), "provisional": deadline.provisional}


@dataclass
class _Clock:
    """A clock row as the hook changes it within one step."""

    id: int | None
    clock: str
    task_id: str | None
    element_id: str | None
    limit: TimeLimit
    started_at: datetime
    pauses: list[tuple[datetime, datetime]]
    paused_since: datetime | None
    card: str
    stopped_at: datetime | None = None
    schedule: Schedule | None = None

    @classmethod
    def from_row(cls, row: Any) -> _Clock:
        return cls(row.id, row.clock, row.task_id, row.element_id, row_limit(row), _utc(row.started_at),
                   row_pauses(row), _utc_or_none(row.paused_since), row.card, _utc_or_none(row.stopped_at))


def _schedule_columns(computed: Schedule, now: datetime) -> dict[str, Any]:
    return {"due_at": computed.due_at, "last_day": computed.deadline.last_day, "yellow_at": computed.yellow_at,
            "provisional": computed.deadline.provisional, "updated_at": now}


def install(service: Liuhen) -> None:
    """Add the clock hook to ``service``; every Liuhen calls this once when it is built."""
    service.step_hooks.append(ClockKeeper(service))


# After a calendar change.

def recompute_open_clocks(service: Liuhen, years: Iterable[int]) -> int:
    """Recompute the due times of the open clocks whose counting touches ``years``; return how many changed.

    Each case is locked while its clocks are recomputed, so a step running at the same time does not
    overwrite the new due times with ones from the old calendar.
    """
    changed_years = set(years)
    if not changed_years:
        return 0
    now = _utc(service.now())
    with service.db.read() as conn:
        rows = conn.execute(select(case_clocks.c.case_id, case_clocks.c.started_at, case_clocks.c.last_day)
                            .where(case_clocks.c.stopped_at.is_(None))).all()
    today = local_today(now)
    affected = sorted({row.case_id for row in rows
                       if _touches(_utc(row.started_at).astimezone(LOCAL_TZ).date(), max(row.last_day, today),
                                   changed_years)})
    calendar = load_calendar(service.db)
    threshold = YellowThreshold.from_settings(service.settings)
    changed = 0
    for case_id in affected:
        try:
            with service.db.write() as conn:
                conn.execute(service.db.for_update(select(cases.c.id).where(cases.c.id == case_id))).first()
                for row in conn.execute(select(case_clocks).where(case_clocks.c.case_id == case_id,
                                                                  case_clocks.c.stopped_at.is_(None))).all():
                    values = _schedule_columns(row_schedule(row, now, calendar, threshold), now)
                    if values["due_at"] != _utc(row.due_at) or values["provisional"] != row.provisional \
                            or values["yellow_at"] != _utc_or_none(row.yellow_at):
                        conn.execute(update(case_clocks).where(case_clocks.c.id == row.id).values(**values))
                        changed += 1
        except LiuhenError as exc:
            # A clock that no longer fits the calendar keeps its old due time; the others go on.
            logger.warning("recomputing the clocks of case %s failed: %s", case_id, exc,
                           extra={"case_id": case_id, "code": exc.code})
    if changed:
        logger.info("recomputed %d clocks after a calendar change", changed, extra={"years": sorted(changed_years)})
    return changed


def _touches(first: date, last: date, years: set[int]) -> bool:
    return any(first.year <= year <= last.year for year in years)


# Reading clocks.

@dataclass(frozen=True)
class ClockView:
    """A clock as the board and the task lists show it, computed at ``now``."""

    clock: str
    kind: str
    task_id: str | None
    element_id: str | None
    amount: int
    unit: str
    started_at: datetime
    due_at: datetime
    last_day: date
    days_left: int | None
    provisional: bool
    paused: bool
    card: str
    card_raised: str
    stopped_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class ClockReader:
    """Computes views of stored clocks at one moment, reusing working-day counts across clocks."""

    def __init__(self, service: Liuhen, conn: Connection | None = None, now: datetime | None = None) -> None:
        self.now = _utc(now or service.now())
        self.today = local_today(self.now)
        self.calendar = load_calendar(service.db, conn)
        self.threshold = YellowThreshold.from_settings(service.settings)
        self._days_left: dict[date, int] = {}

    def view(self, row: Any) -> ClockView:
        due_at, last_day, yellow_at = _utc(row.due_at), row.last_day, _utc_or_none(row.yellow_at)
        provisional = bool(row.provisional)
        paused = row.paused_since is not None and row.stopped_at is None
        if paused:
            # The due time of a paused clock moves on with the pause, so compute it as of now.
            computed = row_schedule(row, self.now, self.calendar, self.threshold)
            due_at, last_day, yellow_at = computed.due_at, computed.deadline.last_day, computed.yellow_at
            provisional = computed.deadline.provisional
        if row.stopped_at is None:
            card = live_card(self.now, due_at, yellow_at)
            days_left: int | None = self.days_left(last_day)
        else:
            card, days_left = row.card, None
        return ClockView(row.clock, clock_kind(row.clock), row.task_id, row.element_id, row.amount, row.unit,
                         _utc(row.started_at), due_at, last_day, days_left, provisional, paused, card, row.card,
                         _utc_or_none(row.stopped_at))

    def days_left(self, last_day: date) -> int:
        """Count the working days from today to ``last_day``: 0 on it, negative after it."""
        if last_day not in self._days_left:
            self._days_left[last_day] = self.calendar.working_days_between(self.today, last_day)
        return self._days_left[last_day]


def clocks_of_case(service: Liuhen, case_id: int) -> list[dict[str, Any]]:
    """List every clock of a case, open and stopped, case clocks first."""
    with service.db.read() as conn:
        if conn.execute(select(cases.c.id).where(cases.c.id == case_id)).first() is None:
            raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
        rows = conn.execute(select(case_clocks).where(case_clocks.c.case_id == case_id)
                            .order_by(case_clocks.c.started_at, case_clocks.c.id)).all()
        reader = ClockReader(service, conn)
    views = [reader.view(row) for row in rows]
    views.sort(key=lambda view: (view.kind == "step", view.started_at))
    return [view.as_dict() for view in views]


def task_urgency(service: Liuhen, conn: Connection, tasks: list[dict[str, Any]]) -> None:
    """Add ``card``, ``due_at`` and ``days_left`` to open task dicts, in place.

    They describe the task's own step clock, or when it has none, the most urgent open clock of its
    case. Finished tasks and tasks without any clock get None.
    """
    open_tasks = [task for task in tasks if task["status"] in _OPEN_TASK_STATUSES]
    for task in tasks:
        task.update(card=None, due_at=None, days_left=None)
    if not open_tasks:
        return
    case_ids = sorted({task["case_id"] for task in open_tasks})
    rows: list[Any] = []
    # Chunks keep the IN lists well below the bound-parameter limits of SQLite and PostgreSQL.
    for offset in range(0, len(case_ids), 500):
        rows.extend(conn.execute(select(case_clocks).where(case_clocks.c.case_id.in_(case_ids[offset:offset + 500]),
                                                           case_clocks.c.stopped_at.is_(None))).all())
    if not rows:
        return
    reader = ClockReader(service, conn)
    by_clock: dict[tuple[int, str], ClockView] = {}
    most_urgent: dict[int, ClockView] = {}
    for row in rows:
        view = reader.view(row)
        by_clock[(row.case_id, row.clock)] = view
        if view.kind != "step":
            current = most_urgent.get(row.case_id)
            if current is None or _urgency(view) < _urgency(current):
                most_urgent[row.case_id] = view
    for task in open_tasks:
        found = by_clock.get((task["case_id"], step_clock(task["id"]))) or most_urgent.get(task["case_id"])
        if found is not None:
            task.update(card=found.card, due_at=found.due_at, days_left=found.days_left)


def _urgency(view: ClockView) -> tuple[int, datetime]:
    return (-CARD_RANK[view.card], view.due_at)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat()


def _parse_utc(value: str) -> datetime:
    return _utc(datetime.fromisoformat(value))
