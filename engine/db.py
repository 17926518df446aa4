"""Database schema (owned by alembic migrations) and connection handling for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
)
from sqlalchemy import exc as sqlalchemy_errors
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from engine.errors import DatabaseNotReady, LiuhenError
from engine.i18n import msg

if TYPE_CHECKING:
    from engine.settings import Settings


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    roles: Mapped[list[str]] = mapped_column(JSON)
    posts: Mapped[list[str]] = mapped_column(JSON)
    department: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuthToken(Base):
    __tablename__ = "auth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DefinitionFile(Base):
    """The exact bytes a designer deployed, addressed by their SHA-256."""

    __tablename__ = "definition_files"

    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Definition(Base):
    """One immutable numbered version of one process."""

    __tablename__ = "definitions"
    __table_args__ = (
        UniqueConstraint("process_id", "version"),
        UniqueConstraint("process_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(ForeignKey("definition_files.content_hash"))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(16))
    power_item: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deployed_by: Mapped[str] = mapped_column(String(64))
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Case(Base):
    __tablename__ = "cases"
    # Split detection reads the cases of one process started within a window; exports and searches read the
    # cases of all processes started within a period.
    __table_args__ = (Index("ix_cases_process_started", "process_id", "started_at"),
                      Index("ix_cases_started_at", "started_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("definitions.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    title: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_element_id: Mapped[str | None] = mapped_column(String(255))
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    next_timer_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # Head of the case's trace stream, written in the same UPDATE as the state it records.
    trace_seq: Mapped[int] = mapped_column(Integer, default=0)
    trace_head: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(128), index=True)


class CaseTask(Base):
    """Projection of a case's human tasks, kept in step with the engine state for fast task lists."""

    __tablename__ = "case_tasks"
    __table_args__ = (
        Index("ix_case_tasks_status_lane", "status", "lane"),
        Index("ix_case_tasks_assignee", "assignee"),
        Index("ix_case_tasks_case_status", "case_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    element_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    lane: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    assignee: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_by: Mapped[str | None] = mapped_column(String(64))


class TraceEvent(Base):
    """One append-only trace event. ``body`` contains the canonical bytes that ``hash`` covers."""

    __tablename__ = "trace_events"
    # (stream, seq) serves reads of one stream in order, and (kind, definition_id, element_id) the risk
    # register's counts of rare event kinds.
    __table_args__ = (UniqueConstraint("stream", "seq"),
                      Index("ix_trace_events_kind", "kind", "definition_id", "element_id"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    definition_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    element_id: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TraceHead(Base):
    """Latest sequence number and hash of the ``system`` stream; cases keep theirs on the case row."""

    __tablename__ = "trace_heads"

    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditLogEntry(Base):
    """One sealed trace event at its fixed place in the Merkle log; triggers reject UPDATE and DELETE.

    ``position`` is dense from 0 and sealing appends in ``event_id`` order, so positions and event ids
    rise together. ``event_id`` refers to trace_events.id without a foreign key, so that deleting an
    event leaves its entry behind as evidence.
    """

    __tablename__ = "audit_log"

    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                          autoincrement=False)
    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Checkpoint(Base):
    """A signed Merkle root over the first ``size`` entries of audit_log, as issued."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    root: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(16))


class Publication(Base):
    """One act of publishing a version of a process, or of withdrawing it (``definition_id`` NULL)."""

    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    definition_id: Mapped[int | None] = mapped_column(ForeignKey("definitions.id"))
    version: Mapped[int | None] = mapped_column(Integer)
    acted_by: Mapped[str] = mapped_column(String(64))
    acted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CalendarDayEntry(Base):
    """An administrator's ruling on one date; the newest row of a date wins, older rows are its history.

    Triggers reject UPDATE and DELETE. ``source`` is ``admin`` for a single entry and ``import`` for a
    row of an imported file.
    """

    __tablename__ = "calendar_days"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    is_working_day: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ControlOverride(Base):
    """A request to let one task pass one failed control: asked by one administrator, decided by another.

    ``status`` moves pending → approved → used, or pending → rejected.
    """

    __tablename__ = "control_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36), index=True)
    element_id: Mapped[str] = mapped_column(String(255))
    control_id: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReviewVote(Base):
    """One approver's vote on a step that needs several distinct approvers."""

    __tablename__ = "review_votes"
    __table_args__ = (UniqueConstraint("task_id", "actor"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    voted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RiskEvent(Base):
    """A risk event, stored for statistics. The case trace contains the same event as evidence."""

    __tablename__ = "risk_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    department: Mapped[str | None] = mapped_column(String(128), index=True)
    element_id: Mapped[str | None] = mapped_column(String(255))
    task_id: Mapped[str | None] = mapped_column(String(36))
    post: Mapped[str | None] = mapped_column(String(255))
    checkpoint_id: Mapped[str | None] = mapped_column(String(255))
    control_id: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(8))
    actor: Mapped[str] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CaseClock(Base):
    """One time limit of a case: ``clock`` is ``statutory``, ``promised`` or ``step:<task id>``.

    ``pauses`` lists finished pauses as [start, end] ISO strings; ``paused_since`` is set while a pausing
    step runs. ``stopped_at`` is set when the case or step ends; ``card`` is none, yellow or red.
    """

    __tablename__ = "case_clocks"
    __table_args__ = (UniqueConstraint("case_id", "clock"), Index("ix_case_clocks_open", "stopped_at", "card"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    clock: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pauses: Mapped[list[Any]] = mapped_column(JSON)
    paused_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the yellow card falls due; the worker looks for clocks past it or past ``due_at``.
    yellow_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_day: Mapped[date] = mapped_column(Date)
    provisional: Mapped[bool] = mapped_column(Boolean)
    card: Mapped[str] = mapped_column(String(8))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Card(Base):
    """A yellow or red card, raised once per clock and colour."""

    __tablename__ = "cards"
    __table_args__ = (UniqueConstraint("case_id", "clock", "colour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    clock: Mapped[str] = mapped_column(String(64))
    colour: Mapped[str] = mapped_column(String(8))
    task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(255))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SupervisionNotice(Base):
    """A supervision notice (督办) opened by a red card, addressed to the step's holder and a leader."""

    __tablename__ = "supervision_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(255))
    holder: Mapped[str | None] = mapped_column(String(64))
    post: Mapped[str | None] = mapped_column(String(255))
    leader: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answer: Mapped[str | None] = mapped_column(Text)



class IdempotentRequest(Base):
    """Stored response to a request sent with an Idempotency-Key, returned to a retry instead of running it twice."""

    __tablename__ = "idempotent_requests"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginAttempt(Base):
    """Record of one sign-in attempt, kept for a while so that every API process can throttle repeated failures."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client_address: Mapped[str] = mapped_column(String(64), index=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)

users = cast(Table, User.__table__)
auth_tokens = cast(Table, AuthToken.__table__)
definition_files = cast(Table, DefinitionFile.__table__)
definitions = cast(Table, Definition.__table__)
cases = cast(Table, Case.__table__)
case_tasks = cast(Table, CaseTask.__table__)
trace_events = cast(Table, TraceEvent.__table__)
trace_heads = cast(Table, TraceHead.__table__)
publications = cast(Table, Publication.__table__)
audit_log = cast(Table, AuditLogEntry.__table__)
checkpoints = cast(Table, Checkpoint.__table__)
calendar_days = cast(Table, CalendarDayEntry.__table__)
control_overrides = cast(Table, ControlOverride.__table__)
review_votes = cast(Table, ReviewVote.__table__)
risk_events = cast(Table, RiskEvent.__table__)
case_clocks = cast(Table, CaseClock.__table__)
cards = cast(Table, Card.__table__)
supervision_notices = cast(Table, SupervisionNotice.__table__)
idempotent_requests = cast(Table, IdempotentRequest.__table__)
login_attempts = cast(Table, LoginAttempt.__table__)

REQUIRED_TABLES = {table.name for table in Base.metadata.sorted_tables}

logger = logging.getLogger(__name__)

# SQLite reports these OperationalErrors when its file is busy or cannot be used. Its other
# OperationalErrors, such as a missing table or a syntax error, are faults of the program.
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk I/O error")


class DatabaseUnavailable(LiuhenError):
    """The database could not be reached or the connection broke; a change in progress may or may not be saved."""

    code = "database_unavailable"
    status = 503
    # Sent with the HTTP response: the seconds a client should wait before it sends the request again.
    headers = {"Retry-After": "1"}


def database_unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """Translate an SQLAlchemy error that means the database is out of reach, or return None for other errors."""
    if isinstance(error, sqlalchemy_errors.TimeoutError):
        unavailable = True  # no pooled connection became free in time
    elif not isinstance(error, sqlalchemy_errors.DBAPIError):
        unavailable = False
    elif error.connection_invalidated:
        unavailable = True
    elif not isinstance(error, sqlalchemy_errors.OperationalError):
        unavailable = False
    elif type(error.orig).__module__.startswith("sqlite3"):
        unavailable = any(text in str(error.orig) for text in _SQLITE_UNAVAILABLE)
    else:
        # PostgreSQL's OperationalErrors are lost connections, shutdowns, lock and statement timeouts,
        # deadlocks and serialization failures: all worth a retry.
        unavailable = True
    if not unavailable:
        return None
    return DatabaseUnavailable(msg("The database cannot be reached at the moment; try again shortly. A change that was "
                                   "being saved when the connection broke may have been saved."))


@dataclass
class _OuterTransaction:
    """The transaction of an ``outer_write`` block, which the ``write`` and ``read`` blocks inside it join."""

    database: Database
    connection: Connection
    # Set once a joined write() block has finished, so its changes now depend on the outer COMMIT.
    released_writes: bool = False


_outer_transaction: contextvars.ContextVar[_OuterTransaction | None] = contextvars.ContextVar(
    "liuhen_outer_transaction", default=None)


class Database:
    """An SQLAlchemy engine plus transaction helpers that lock correctly on SQLite and PostgreSQL."""

    def __init__(self, url: str, *, echo: bool = False, read_url: str | None = None, pool_size: int = 5,
                 max_overflow: int = 10, pool_timeout: float = 30, read_only: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # A replica's read transactions are READ ONLY on PostgreSQL, so a misplaced write fails there.
        self.read_only = read_only
        options: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            options["pool_pre_ping"] = True
            options.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout)
        self.engine: Engine = create_engine(url, **options)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        # Where read(replica=True) and snapshot(replica=True) go; None keeps them on this database.
        self.replica: Database | None = None
        # Called when the changes of finished write() blocks were not committed, or may not have been: the
        # COMMIT failed, or the outer_write() transaction they joined rolled back. Caches built from those
        # changes must be dropped.
        self.commit_failure_hooks: list[Callable[[], None]] = []
        if read_url:
            self.replica = Database(read_url, echo=echo, pool_size=pool_size, max_overflow=max_overflow,
                                    pool_timeout=pool_timeout, read_only=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """Open the primary database, and the read replica when ``LIUHEN_READ_DATABASE_URL`` names one."""
        return cls(settings.resolved_database_url(), read_url=settings.read_database_url or None,
                   pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
                   pool_timeout=settings.db_pool_timeout)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """Open one write transaction. On SQLite it takes the write lock at BEGIN, which avoids upgrade deadlocks.

        Inside an ``outer_write`` block of the same database the block is a savepoint of that transaction
        instead. A database out of reach raises DatabaseUnavailable.
        """
        outer = self._joined()
        if outer is not None:
            with self._unavailable_raised(), outer.connection.begin_nested():
                yield outer.connection
            outer.released_writes = True
            return
        with self._unavailable_raised(), self.engine.connect() as conn:
            body_done = False
            try:
                with conn.begin():
                    yield conn
                    body_done = True
            except BaseException:
                if body_done:
                    self._commit_failed()
                raise

    @contextlib.contextmanager
    def outer_write(self) -> Iterator[Connection]:
        """Open one write transaction that every ``write``, ``read`` and ``snapshot`` block in this context joins.

        The context is the calling thread's (a context variable), so a request handled in one thread
        commits its steps and whatever it stores beside them together, or none of them. A joined write()
        is a savepoint: when it fails, only its own changes roll back.
        """
        if _outer_transaction.get() is not None:
            raise RuntimeError("outer_write() blocks cannot be nested")
        with self._unavailable_raised(), self.engine.connect() as conn:
            outer = _OuterTransaction(self, conn)
            token = _outer_transaction.set(outer)
            try:
                with conn.begin():
                    yield conn
            except BaseException:
                if outer.released_writes:
                    self._commit_failed()
                raise
            finally:
                _outer_transaction.reset(token)

    def _joined(self) -> _OuterTransaction | None:
        outer = _outer_transaction.get()
        return outer if outer is not None and outer.database is self else None

    def _commit_failed(self) -> None:
        for hook in self.commit_failure_hooks:
            hook()

    @contextlib.contextmanager
    def _unavailable_raised(self) -> Iterator[None]:
        """Turn errors that mean the database is out of reach into DatabaseUnavailable, chained to the cause."""
        try:
            yield
        except (sqlalchemy_errors.DBAPIError, sqlalchemy_errors.TimeoutError) as error:
            translated = database_unavailable(error)
            if translated is None:
                raise
            # The driver's message only: SQLAlchemy's own text repeats the statement's parameters, which hold case data.
            cause = error.orig if isinstance(error, sqlalchemy_errors.DBAPIError) else error
            logger.warning("database unavailable: %s", cause,
                           extra={"database": self.engine.url.render_as_string(hide_password=True)})
            raise translated from error

    @contextlib.contextmanager
    def read(self, *, replica: bool = False) -> Iterator[Connection]:
        """Open one read transaction, on the read replica when ``replica`` is true and one is configured.

        Pass ``replica=True`` only for auditor queries that tolerate replication lag. Reads inside a step,
        and reads whose result a following write depends on, stay on the primary.
        """
        with self._read_transaction(replica=replica, one_snapshot=False) as conn:
            yield conn

    @contextlib.contextmanager
    def snapshot(self, *, replica: bool = False) -> Iterator[Connection]:
        """Open a read transaction whose statements all see one snapshot (REPEATABLE READ on PostgreSQL).

        Checks that compare several tables need it: under PostgreSQL's default READ COMMITTED a commit
        between two statements would look like a mismatch. SQLite's deferred BEGIN already keeps one
        snapshot from the first read on. ``replica`` works as in ``read``.
        """
        with self._read_transaction(replica=replica, one_snapshot=True) as conn:
            yield conn

    @contextlib.contextmanager
    def _read_transaction(self, *, replica: bool, one_snapshot: bool) -> Iterator[Connection]:
        if replica and self.replica is not None:
            with self.replica._read_transaction(replica=False, one_snapshot=one_snapshot) as conn:
                yield conn
            return
        outer = self._joined()
        if outer is not None:
            # One transaction already: its statements see its own changes, at READ COMMITTED on PostgreSQL.
            with self._unavailable_raised():
                yield outer.connection
            return
        with self._unavailable_raised(), self.engine.connect() as conn:
            options = self._read_options()
            if one_snapshot and not self.is_sqlite:
                options["isolation_level"] = "REPEATABLE READ"
            conn = conn.execution_options(**options)
            with conn.begin():
                yield conn

    def _read_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"liuhen_read_only": True}
        if self.read_only and not self.is_sqlite:
            options["postgresql_readonly"] = True
        return options

    def for_update(self, statement: Any) -> Any:
        """Add a row lock where the database has one; SQLite's write lock already covers the transaction."""
        return statement if self.is_sqlite else statement.with_for_update()

    def check_migrated(self) -> None:
        """Raise DatabaseNotReady unless alembic has created every table at the newest revision."""
        from engine.migrate import current_revision, head_revision

        with self._unavailable_raised(), self.engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            current = current_revision(conn) if "alembic_version" in present else None
        head = head_revision()
        url = self.engine.url.render_as_string(hide_password=True)
        if (current != head or not REQUIRED_TABLES <= present) and self.read_only:
            raise DatabaseNotReady(
                msg("The read replica {url} is at schema revision {current}, not {head}; check that "
                    "LIUHEN_READ_DATABASE_URL names a replica of the migrated primary database.",
                    url=url, current=current or "none", head=head)
            )
        if current != head or not REQUIRED_TABLES <= present:
            raise DatabaseNotReady(
                msg("The database {url} is not migrated (revision {current}, expected {head}); "
                    "run `liuhen migrate` first.",
                    url=url, current=current or "none", head=head)
            )
        if self.replica is not None:
            self.replica.check_migrated()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.replica is not None:
            self.replica.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        statement = "BEGIN" if conn.get_execution_options().get("liuhen_read_only") else "BEGIN IMMEDIATE"
        # The BEGIN runs on the driver's connection, because exec_driver_sql would cost more than the BEGIN
        # itself. A failure, such as a busy timeout, still goes through SQLAlchemy's error handling.
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        try:
            dbapi_connection.execute(statement)  # type: ignore[attr-defined]
        except BaseException as error:
            conn._handle_dbapi_exception(error, statement, (), None, None)
