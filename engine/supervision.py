"""Cards and supervision notices (督办): raised from case clocks by the worker, answered by the step's holder.

``check_deadlines`` looks for clocks that reached their yellow threshold or passed their due time and
raises each card once, as a ``cards`` row and a ``card_raised`` trace event in the case's stream. A red
card also opens a supervision notice addressed to the holder of the step and a leader, and records a
``deadline_exceeded`` risk event.

Several workers and API processes may check at the same time: each case is taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, its clocks are read again under that lock, and the unique
(case, clock, colour) constraint on ``cards`` backs this up. A case locked by someone else is left
for the next round, so no card is missed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from engine import risk_events, trace
from engine.calendar import load_calendar, local_today
from engine.clocks import (
    CARD_NONE,
    CARD_RANK,
    CARD_RED,
    CARD_YELLOW,
    STATUTORY,
    ClockReader,
    YellowThreshold,
    clock_kind,
    live_card,
    row_schedule,
    worst_card,
)
from engine.db import cards, case_clocks, case_tasks, cases, definitions, supervision_notices
from engine.errors import Conflict, Forbidden, InvalidInput, LiuhenError, NotFound
from engine.extension import RISK_LEVELS
from engine.i18n import msg
from engine.service import Liuhen
from engine.users import SYSTEM_ACTOR, Actor, require_role

logger = logging.getLogger(__name__)

NOTICE_OPEN: Final = "open"
NOTICE_ANSWERED: Final = "answered"
MIN_ANSWER_LENGTH: Final = 4
MAX_ANSWER_LENGTH: Final = 4000

_OPEN_TASK_STATUSES = ("ready", "claimed")


@dataclass(frozen=True)
class RaisedCard:
    """A card raised by one check, with the notice a red card opened."""

    card_id: int
    case_id: int
    clock: str
    colour: str
    notice_id: int | None


# Raising cards.

def check_deadlines(service: Liuhen, actor: Actor | None = None) -> list[RaisedCard]:
    """Raise every card that is due by the injected clock, each once; return the cards raised."""
    now = _utc(service.now())
    actor = actor or SYSTEM_ACTOR
    with service.db.read() as conn:
        due = [row.case_id for row in conn.execute(_due_clocks(now).with_only_columns(case_clocks.c.case_id)
                                                   .distinct().order_by(case_clocks.c.case_id))]
    if not due:
        return []
    threshold = YellowThreshold.from_settings(service.settings)
    raised: list[RaisedCard] = []
    for case_id in due:
        try:
            with service.db.write() as conn:
                raised.extend(_check_case(service, conn, case_id, now, actor, threshold))
        except LiuhenError as exc:
            # One broken case must not stop the cards of all the others; it is retried next round.
            logger.warning("checking the deadlines of case %s failed: %s", case_id, exc,
                           extra={"case_id": case_id, "code": exc.code})
    for card in raised:
        logger.info("%s card raised", card.colour, extra={"case_id": card.case_id, "clock": card.clock,
                                                          "card_id": card.card_id})
    return raised


def _due_clocks(now: datetime) -> Any:
    """Select open clocks whose yellow or red card may be due.

    A paused clock stores the due and yellow times from when it paused. It is a candidate only when it
    paused after one of them, because a pause that began earlier moves that time past ``now``.
    """
    paused_since = case_clocks.c.paused_since
    yellow_due = (case_clocks.c.card == CARD_NONE) & (case_clocks.c.yellow_at <= now) \
        & or_(paused_since.is_(None), paused_since >= case_clocks.c.yellow_at)
    red_due = (case_clocks.c.card != CARD_RED) & (case_clocks.c.due_at < now) \
        & or_(paused_since.is_(None), paused_since > case_clocks.c.due_at)
    return (select(case_clocks).join(cases, cases.c.id == case_clocks.c.case_id)
            .where(cases.c.status == "running", case_clocks.c.stopped_at.is_(None), or_(yellow_due, red_due)))


def _check_case(service: Liuhen, conn: Connection, case_id: int, now: datetime, actor: Actor,
                threshold: YellowThreshold) -> list[RaisedCard]:
    lock = select(cases).where(cases.c.id == case_id)
    # Another worker or a request holding the case takes care of it, so skip it here.
    case = conn.execute(lock if service.db.is_sqlite else lock.with_for_update(skip_locked=True)).first()
    if case is None or case.status != "running":
        return []
    rows = conn.execute(_due_clocks(now).where(case_clocks.c.case_id == case_id)
                        .order_by(case_clocks.c.started_at, case_clocks.c.id)).all()
    if not rows:
        return []
    calendar = load_calendar(service.db, conn)
    raising = _Raising(service, conn, case, now, actor)
    for row in rows:
        due_at, yellow_at = _utc(row.due_at), _utc(row.yellow_at) if row.yellow_at else None
        last_day = row.last_day
        if row.paused_since is not None:
            computed = row_schedule(row, now, calendar, threshold)
            due_at, yellow_at, last_day = computed.due_at, computed.yellow_at, computed.deadline.last_day
        colour = live_card(now, due_at, yellow_at)
        # A clock that passed its due time before anyone warned gets the red card only.
        if CARD_RANK[colour] > CARD_RANK[row.card]:
            raising.raise_card(row, colour, due_at, calendar.working_days_between(local_today(now), last_day))
    if raising.events:
        seq, head = trace.append(conn, trace.case_stream(case_id), raising.events, (case.trace_seq, case.trace_head))
        conn.execute(update(cases).where(cases.c.id == case_id).values(
            revision=cases.c.revision + 1, trace_seq=seq, trace_head=head))
    return raising.raised


class _Raising:
    """Collector of the cards, notices and risk events raised for one locked case, with their trace events."""

    def __init__(self, service: Liuhen, conn: Connection, case: Any, now: datetime, actor: Actor) -> None:
        self.service = service
        self.conn = conn
        self.case = case
        self.now = now
        self.actor = actor
        self.events: list[trace.NewEvent] = []
        self.raised: list[RaisedCard] = []

    def event(self, kind: str, payload: dict[str, Any], element_id: str | None = None,
              task_id: str | None = None) -> None:
        self.events.append(trace.NewEvent(kind, self.actor.username, self.now, case_id=self.case.id,
                                          definition_id=self.case.definition_id, element_id=element_id,
                                          task_id=task_id, payload=payload))

    def raise_card(self, clock: Any, colour: str, due_at: datetime, days_left: int) -> None:
        card_id = _insert_card(self.conn, self.service.db.is_sqlite, {
            "case_id": self.case.id, "clock": clock.clock, "colour": colour, "task_id": clock.task_id,
            "element_id": clock.element_id, "due_at": due_at, "raised_at": self.now})
        if card_id is None:
            # Raised before, though the clock row did not show it; keep the two in step.
            self.conn.execute(update(case_clocks).where(case_clocks.c.id == clock.id).values(card=colour))
            return
        self.conn.execute(update(case_clocks).where(case_clocks.c.id == clock.id)
                          .values(card=colour, updated_at=self.now))
        self.event("card_raised", {"card_id": card_id, "clock": clock.clock, "colour": colour,
                                   "due_at": due_at.isoformat(), "days_left": days_left,
                                   "provisional": bool(clock.provisional)}, clock.element_id, clock.task_id)
        notice_id = self.open_notice(clock, card_id, due_at) if colour == CARD_RED else None
        self.raised.append(RaisedCard(card_id, self.case.id, clock.clock, colour, notice_id))

    def open_notice(self, clock: Any, card_id: int, due_at: datetime) -> int:
        """Open the notice of a red card and record its risk event."""
        step = self._step(clock)
        parsed, process = self.service.parsed_definition(self.case.definition_id)
        node = parsed.nodes.get(step.element_id or "") if step is not None else None
        checkpoints = node.extensions.get("risk_checkpoints", []) if node is not None else []
        led = next((checkpoint for checkpoint in checkpoints if checkpoint.get("supervising_leader")), None)
        leader = led["supervising_leader"] if led else (process.power_item or {}).get("responsible_subject")
        checkpoint = led or (checkpoints[0] if checkpoints else None)
        holder = step.assignee if step is not None else None
        post = step.lane if step is not None else None
        task_id = step.id if step is not None else None
        element_id = step.element_id if step is not None else None

        notice_id = self.conn.execute(insert(supervision_notices).values(
            case_id=self.case.id, card_id=card_id, task_id=task_id, element_id=element_id, holder=holder,
            post=post, leader=leader, status=NOTICE_OPEN, opened_at=self.now,
        ).returning(supervision_notices.c.id)).scalar_one()
        self.event("supervision_notice_opened", {"notice_id": notice_id, "card_id": card_id, "clock": clock.clock,
                                                 "holder": holder, "post": post, "leader": leader},
                   element_id, task_id)
        self.events.append(risk_events.record(self.conn, risk_events.RiskEvent(
            case_id=self.case.id, process_id=self.case.process_id, kind="deadline_exceeded",
            level="high" if clock.clock == STATUTORY else "medium", actor=self.actor.username, at=self.now,
            definition_id=self.case.definition_id, department=self.case.department, element_id=element_id,
            task_id=task_id, post=post, checkpoint_id=checkpoint["id"] if checkpoint else None,
            details={"clock": clock.clock, "card_id": card_id, "notice_id": notice_id,
                     "due_at": due_at.isoformat()},
        )))
        return notice_id

    def _step(self, clock: Any) -> Any:
        """Return the task the card is about: a step clock's own, else the case's longest-waiting open task."""
        query = select(case_tasks).where(case_tasks.c.case_id == self.case.id)
        if clock_kind(clock.clock) == "step":
            return self.conn.execute(query.where(case_tasks.c.id == clock.task_id)).first()
        return self.conn.execute(query.where(case_tasks.c.status.in_(_OPEN_TASK_STATUSES))
                                 .order_by(case_tasks.c.created_at, case_tasks.c.id).limit(1)).first()


def _insert_card(conn: Connection, is_sqlite: bool, values: dict[str, Any]) -> int | None:
    """Insert a card unless its case, clock and colour were raised before; return its id or None."""
    dialect_insert = sqlite.insert if is_sqlite else postgresql.insert
    statement = (dialect_insert(cards).values(**values)
                 .on_conflict_do_nothing(index_elements=["case_id", "clock", "colour"])
                 .returning(cards.c.id))
    return conn.execute(statement).scalar_one_or_none()


# The board.

BOARD_CARDS: Final = (CARD_RED, CARD_YELLOW, CARD_NONE)
MAX_BOARD_ROWS: Final = 1000
_RISK_RANK: Final = {level: len(RISK_LEVELS) - index for index, level in enumerate(RISK_LEVELS)}


@dataclass(frozen=True)
class BoardFilter:
    """Filters of the supervision board; None means any."""

    department: str | None = None
    process_id: str | None = None
    power_item: str | None = None
    risk_level: str | None = None
    card: str | None = None
    limit: int = 200

    def __post_init__(self) -> None:
        if self.risk_level is not None and self.risk_level not in RISK_LEVELS:
            raise InvalidInput(msg("Risk level {value!r} is unknown; use one of: {allowed}.", value=self.risk_level,
                                   allowed=", ".join(RISK_LEVELS)))
        if self.card is not None and self.card not in BOARD_CARDS:
            raise InvalidInput(msg("Card {value!r} is unknown; use one of: {allowed}.", value=self.card,
                                   allowed=", ".join(BOARD_CARDS)))
        if not 1 <= self.limit <= MAX_BOARD_ROWS:
            raise InvalidInput(msg("The board shows 1 to {maximum} cases; {value} is out of range.",
                                   maximum=MAX_BOARD_ROWS, value=self.limit))


def board(service: Liuhen, actor: Actor, filters: BoardFilter | None = None) -> list[dict[str, Any]]:
    """List running cases with the worst card of their clocks, the time left and who holds each current step.

    Auditors and administrators only. Cases come most urgent first: red before yellow, then by the
    working days left on their most urgent clock.
    """
    require_role(actor, "auditor", "admin")
    filters = filters or BoardFilter()
    query = (select(cases.c.id, cases.c.title, cases.c.process_id, cases.c.definition_id, cases.c.department,
                    cases.c.started_at, definitions.c.version, definitions.c.name.label("process_name"),
                    definitions.c.power_item)
             .join(definitions, definitions.c.id == cases.c.definition_id)
             .where(cases.c.status == "running").order_by(cases.c.id))
    if filters.department is not None:
        query = query.where(cases.c.department == filters.department)
    if filters.process_id is not None:
        query = query.where(cases.c.process_id == filters.process_id)
    with service.db.read(replica=True) as conn:
        rows = [row for row in conn.execute(query)
                if filters.power_item is None or (row.power_item or {}).get("code") == filters.power_item]
        case_ids = [row.id for row in rows]
        clocks = _rows_by_case(conn, select(case_clocks).where(case_clocks.c.stopped_at.is_(None))
                               .order_by(case_clocks.c.started_at, case_clocks.c.id), case_clocks.c.case_id, case_ids)
        steps = _rows_by_case(conn, select(case_tasks).where(case_tasks.c.status.in_(_OPEN_TASK_STATUSES))
                              .order_by(case_tasks.c.created_at, case_tasks.c.id), case_tasks.c.case_id, case_ids)
        reader = ClockReader(service, conn)

    entries = []
    for row in rows:
        views = [reader.view(clock) for clock in clocks.get(row.id, [])]
        views.sort(key=lambda view: (view.kind == "step", view.started_at))
        current = [_step_dict(service, row.definition_id, step) for step in steps.get(row.id, [])]
        levels = [step["risk_level"] for step in current if step["risk_level"]]
        entry = {
            "case_id": row.id, "title": row.title, "process_id": row.process_id, "process_name": row.process_name,
            "version": row.version, "power_item_code": (row.power_item or {}).get("code"),
            "power_item_name": (row.power_item or {}).get("name"), "department": row.department,
            "started_at": _utc(row.started_at), "card": worst_card(view.card for view in views),
            "days_left": min((view.days_left for view in views if view.days_left is not None), default=None),
            "risk_level": max(levels, key=_RISK_RANK.__getitem__, default=None),
            "clocks": [view.as_dict() for view in views], "steps": current,
        }
        if filters.risk_level is not None and entry["risk_level"] != filters.risk_level:
            continue
        if filters.card is not None and entry["card"] != filters.card:
            continue
        entries.append(entry)
    entries.sort(key=lambda entry: (-CARD_RANK[entry["card"]], entry["days_left"] is None,
                                    entry["days_left"] or 0, entry["case_id"]))
    return entries[:filters.limit]



def _rows_by_case(conn: Connection, query: Any, case_column: Any, case_ids: list[int]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    # Chunks keep the IN lists well below the bound-parameter limits of SQLite and PostgreSQL.
    for offset in range(0, len(case_ids), 500):
        for row in conn.execute(query.where(case_column.in_(case_ids[offset:offset + 500]))):
            grouped.setdefault(row.case_id, []).append(row)
    return grouped


def _step_dict(service: Liuhen, definition_id: int, task: Any) -> dict[str, Any]:
    parsed, _process = service.parsed_definition(definition_id)
    node = parsed.nodes.get(task.element_id)
    checkpoints = node.extensions.get("risk_checkpoints", []) if node is not None else []
    level = max((checkpoint["level"] for checkpoint in checkpoints), key=_RISK_RANK.__getitem__, default=None)
    return {"task_id": task.id, "element_id": task.element_id, "name": task.name, "post": task.lane,
            "assignee": task.assignee, "status": task.status, "risk_level": level}


# Notices.

def list_notices(service: Liuhen, actor: Actor, *, scope: str = "mine", status: str = "open",
                 case_id: int | None = None) -> list[dict[str, Any]]:
    """List notices: ``mine`` are those addressed to the actor or to a post they hold; ``all`` (auditors)."""
    query = (select(supervision_notices, cards.c.clock, cards.c.due_at, cases.c.title, cases.c.process_id)
             .join(cards, cards.c.id == supervision_notices.c.card_id)
             .join(cases, cases.c.id == supervision_notices.c.case_id)
             .order_by(supervision_notices.c.opened_at.desc(), supervision_notices.c.id.desc()))
    if status in (NOTICE_OPEN, NOTICE_ANSWERED):
        query = query.where(supervision_notices.c.status == status)
    elif status != "any":
        raise InvalidInput(msg("Notice status {status!r} is unknown; use open, answered or any.", status=status))
    if case_id is not None:
        query = query.where(supervision_notices.c.case_id == case_id)
    if scope == "mine":
        query = query.where(or_(
            supervision_notices.c.holder == actor.username,
            supervision_notices.c.holder.is_(None) & supervision_notices.c.post.in_(sorted(actor.posts)),
        ))
    elif scope == "all":
        require_role(actor, "auditor", "admin")
    else:
        raise InvalidInput(msg("Notice scope {scope!r} is unknown; use mine or all.", scope=scope))
    with service.db.read() as conn:
        return [_notice_dict(row) for row in conn.execute(query.limit(1000))]


def answer_notice(service: Liuhen, notice_id: int, actor: Actor, answer: str) -> dict[str, Any]:
    """Record the holder's written answer to an open notice and trace it in the case's stream."""
    text = (answer or "").strip()
    if len(text) < MIN_ANSWER_LENGTH:
        raise InvalidInput(msg("An answer to a supervision notice needs at least {count} characters; state what "
                               "was done about the delay.", count=MIN_ANSWER_LENGTH))
    if len(text) > MAX_ANSWER_LENGTH:
        raise InvalidInput(msg("The answer is {length} characters long, over the limit of {limit}.",
                               length=len(text), limit=MAX_ANSWER_LENGTH))
    now = _utc(service.now())
    with service.db.write() as conn:
        found = conn.execute(select(supervision_notices.c.case_id)
                             .where(supervision_notices.c.id == notice_id)).first()
        if found is None:
            raise NotFound(msg("Supervision notice {notice_id} does not exist.", notice_id=notice_id))
        case = conn.execute(service.db.for_update(select(cases).where(cases.c.id == found.case_id))).one()
        notice = conn.execute(select(supervision_notices).where(supervision_notices.c.id == notice_id)).one()
        if not _addressed_to(notice, actor):
            raise Forbidden(msg("Supervision notice {notice_id} is addressed to {holder}; only they can answer "
                                "it.", notice_id=notice_id, holder=notice.holder or notice.post or "-"))
        if notice.status != NOTICE_OPEN:
            raise Conflict(msg("Supervision notice {notice_id} was already answered by {username}.",
                               notice_id=notice_id, username=notice.answered_by))
        conn.execute(update(supervision_notices).where(supervision_notices.c.id == notice_id).values(
            status=NOTICE_ANSWERED, answered_by=actor.username, answered_at=now, answer=text))
        event = trace.NewEvent("supervision_notice_answered", actor.username, now, case_id=case.id,
                               definition_id=case.definition_id, element_id=notice.element_id,
                               task_id=notice.task_id, payload={"notice_id": notice_id, "answer": text})
        seq, head = trace.append(conn, trace.case_stream(case.id), [event], (case.trace_seq, case.trace_head))
        conn.execute(update(cases).where(cases.c.id == case.id).values(
            revision=cases.c.revision + 1, trace_seq=seq, trace_head=head))
        row = conn.execute(select(supervision_notices, cards.c.clock, cards.c.due_at, cases.c.title,
                                  cases.c.process_id)
                           .join(cards, cards.c.id == supervision_notices.c.card_id)
                           .join(cases, cases.c.id == supervision_notices.c.case_id)
                           .where(supervision_notices.c.id == notice_id)).one()
    logger.info("supervision notice answered", extra={"notice_id": notice_id, "case_id": case.id,
                                                      "actor": actor.username})
    return _notice_dict(row)


def _addressed_to(notice: Any, actor: Actor) -> bool:
    if notice.holder is not None:
        return bool(notice.holder == actor.username)
    return notice.post is not None and notice.post in actor.posts


def _notice_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "case_id": row.case_id, "case_title": row.title, "process_id": row.process_id,
        "card_id": row.card_id, "clock": row.clock, "due_at": _utc(row.due_at), "task_id": row.task_id,
        "element_id": row.element_id, "holder": row.holder, "post": row.post, "leader": row.leader,
        "status": row.status, "opened_at": _utc(row.opened_at), "answered_by": row.answered_by,
        "answered_at": _utc(row.answered_at) if row.answered_at else None, "answer": row.answer,
    }


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
