"""The trace (留痕): append-only, hash-chained events, one chain per case plus a ``system`` chain.

Each event is stored as canonical JSON bytes (sorted keys, no spaces, UTF-8). Its hash is the
SHA-256 of those bytes, and the bytes include the hash of the event before it in the same stream.
Columns beside ``body`` are copies for querying; verification checks them against the body.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from json.scanner import make_scanner
from typing import Any

from sqlalchemy import String, bindparam, insert, select, type_coerce, update
from sqlalchemy.engine import Connection

from engine.db import cases, trace_events, trace_heads
from engine.i18n import Message, message_from_json, msg
from engine.prepared import PreparedStatement

TRACE_FORMAT = 1
GENESIS = "0" * 64
SYSTEM_STREAM = "system"


# Built once: the hot path appends on every step, and building statements costs more than running them.
# append() runs them through engine.prepared.
_HEAD = select(trace_heads.c.seq, trace_heads.c.hash).where(trace_heads.c.stream == bindparam("stream"))
_READ_HEAD = PreparedStatement(_HEAD)
_INSERT_EVENTS = PreparedStatement(insert(trace_events))
_INSERT_HEAD = PreparedStatement(insert(trace_heads))
_UPDATE_HEAD = PreparedStatement(update(trace_heads).where(trace_heads.c.stream == bindparam("head_stream")))


def lock_system_stream(conn: Connection, row_locks: bool) -> None:
    """Serialize writers of the system stream: a row lock on PostgreSQL; SQLite's write lock covers it."""
    if row_locks:
        conn.execute(_HEAD.with_for_update(), {"stream": SYSTEM_STREAM})


def case_stream(case_id: int) -> str:
    return f"case:{case_id}"


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def canonical_time(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
# builds an encoder with these options on every call. One encoder built once writes the same bytes.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                      default=str)


def canonical_bytes(record: dict[str, Any]) -> bytes:
    return _CANONICAL_ENCODER.encode(record).encode("utf-8")


@dataclass
class NewEvent:
    kind: str
    actor: str
    at: datetime
    case_id: int | None = None
    definition_id: int | None = None
    element_id: str | None = None
    task_id: str | None = None
    payload: dict[str, Any] | None = None


def append(conn: Connection, stream: str, events: list[NewEvent],
           head: tuple[int, str] | None = None) -> tuple[int, str]:
    """Append ``events`` to ``stream`` inside the caller's transaction; returns the new (seq, hash) head.

    With ``head`` given (a case stream, whose head lives on the locked case row) the caller stores the
    returned head; without it the head row in trace_heads is read and updated. Either way the caller
    must hold the stream's lock so sequence numbers cannot collide; the unique (stream, seq) constraint
    backs this up.
    """
    stored = None
    keeps_head_row = head is None
    if head is None:
        stored = _READ_HEAD.first(conn, {"stream": stream})
        head = (stored.seq, stored.hash) if stored else (0, GENESIS)
    seq, prev = head
    rows = []
    # The events of one step share one time, so each distinct time is formatted once.
    times: dict[datetime, tuple[str, datetime]] = {}
    for event in events:
        seq += 1
        at = times.get(event.at)
        if at is None:
            at = times[event.at] = (canonical_time(event.at), _utc(event.at))
        record = {
            "format": TRACE_FORMAT,
            "stream": stream,
            "seq": seq,
            "kind": event.kind,
            "actor": event.actor,
            "at": at[0],
            "case_id": event.case_id,
            "definition_id": event.definition_id,
            "element_id": event.element_id,
            "task_id": event.task_id,
            "payload": event.payload or {},
            "prev": prev,
        }
        body = canonical_bytes(record)
        digest = hashlib.sha256(body).hexdigest()
        rows.append({
            "stream": stream, "seq": seq, "case_id": event.case_id, "definition_id": event.definition_id,
            "kind": event.kind, "element_id": event.element_id, "actor": event.actor, "at": at[1],
            "body": body, "prev_hash": prev, "hash": digest,
        })
        prev = digest
    if rows:
        _INSERT_EVENTS.run_many(conn, rows)
        if keeps_head_row and stored is not None:
            _UPDATE_HEAD.run(conn, {"head_stream": stream, "seq": seq, "hash": prev})
        elif keeps_head_row:
            _INSERT_HEAD.run(conn, {"stream": stream, "seq": seq, "hash": prev})
    return seq, prev


def read_stream(conn: Connection, stream: str) -> list[dict[str, Any]]:
    """Return the decoded events of ``stream`` in sequence order, with their row id and hash."""
    rows = conn.execute(
        select(trace_events.c.id, trace_events.c.body, trace_events.c.hash)
        .where(trace_events.c.stream == stream).order_by(trace_events.c.seq, trace_events.c.id)
    ).all()
    events = []
    for row in rows:
        record = json.loads(bytes(row.body))
        record["id"] = row.id
        record["hash"] = row.hash
        events.append(record)
    return events


def event_message(event: dict[str, Any], locale: str | None) -> str | None:
    """Render the message an event's payload stores in ``locale``, or return None when it stores none.

    A payload with ``message_id`` and ``message_params`` is translated through the catalogue. An older
    payload with only the English ``message``, or one whose stored values no longer fit the msgid, shows
    that English text.
    """
    payload = event.get("payload") or {}
    text = payload.get("message")
    stored = message_from_json(payload)
    if stored is not None:
        try:
            return stored.render(locale)
        except (KeyError, IndexError, ValueError):
            pass
    return str(text) if text is not None else None


@dataclass
class Finding:
    """The first problem found in a stream; ``seq`` and ``event_id`` point at the bad event."""

    stream: str
    seq: int | None
    event_id: int | None
    problem: str
    message: Message


@dataclass
class StreamReport:
    stream: str
    events: int
    head: str
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None


_COLUMNS = ("kind", "actor", "case_id", "definition_id", "element_id")
# Events are verified from plain tuples of these columns, in this order; ``at`` is replaced per dialect.
_VERIFY_COLUMNS = (trace_events.c.id, trace_events.c.stream, trace_events.c.seq, trace_events.c.kind,
                   trace_events.c.actor, trace_events.c.case_id, trace_events.c.definition_id,
                   trace_events.c.element_id, trace_events.c.at, trace_events.c.body, trace_events.c.prev_hash,
                   trace_events.c.hash)
VERIFY_BATCH = 5000
# From this many streams on, one scan of the whole table is cheaper than asking for each stream by name.
_SCAN_ALL_FROM = 500


def verify_stream(conn: Connection, stream: str) -> StreamReport:
    """Check every event of ``stream``: its hash, its link to the one before, its place and its columns."""
    return verify_streams(conn, [stream])[0]


def verify_streams(conn: Connection, streams: list[str] | None = None) -> list[StreamReport]:
    """Check ``streams`` (by default every stream ``all_streams`` lists) as ``verify_stream`` checks one.

    Reads the events of all of them in one scan ordered by stream and sequence number, and the heads
    in one query per kind of stream, instead of two queries per stream. Returns one report per
    stream, in the order given.
    """
    wanted = all_streams(conn) if streams is None else list(streams)
    if not wanted:
        return []
    checks = {stream: _StreamCheck(stream) for stream in wanted}
    scan_all = len(checks) >= _SCAN_ALL_FROM
    check = None
    current = None
    for row in conn.execute(_verify_query(conn, None if scan_all else list(checks))):
        if row[1] != current:
            current = row[1]
            check = checks.get(current)
        if check is not None:
            check.add(conn, row)
    heads = _stored_heads(conn, list(checks), scan_all)
    return [checks[stream].report(heads.get(stream)) for stream in wanted]


def _verify_query(conn: Connection, streams: list[str] | None) -> Any:
    columns: list[Any] = list(_VERIFY_COLUMNS)
    if conn.dialect.name == "sqlite":
        # SQLite keeps the time as text; comparing that text saves parsing a datetime for every event.
        columns[8] = type_coerce(trace_events.c.at, String).label("at")
    query = select(*columns).order_by(trace_events.c.stream, trace_events.c.seq, trace_events.c.id)
    if streams is not None:
        return query.where(trace_events.c.stream.in_(streams))
    # Read the whole table in batches; on PostgreSQL that opens a server-side cursor.
    return query.execution_options(yield_per=VERIFY_BATCH)


class _StreamCheck:
    """The verification of one stream so far; ``add`` takes its events in (seq, id) order."""

    __slots__ = ("stream", "prev", "expected", "events", "finding")

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.prev = GENESIS
        self.expected = 1
        self.events = 0
        self.finding: Finding | None = None

    def add(self, conn: Connection, row: Any) -> None:
        self.events += 1
        if self.finding is None:
            self.finding = _check_event(conn, self.stream, row, self.prev, self.expected)
            if self.finding is None:
                self.prev, self.expected = row[11], self.expected + 1

    def report(self, head: tuple[int, str] | None) -> StreamReport:
        stream, events, prev = self.stream, self.events, self.prev
        if self.finding is not None:
            return StreamReport(stream, events, prev, self.finding)
        if head is None:
            if events:
                return StreamReport(stream, events, prev, Finding(stream, None, None, "head_missing", msg(
                    "Stream {stream} has {count} events but no head record; the head was deleted.",
                    stream=stream, count=events)))
            return StreamReport(stream, 0, prev, None)
        if head[0] != events or head[1] != prev:
            return StreamReport(stream, events, prev, Finding(stream, None, None, "truncated", msg(
                "Stream {stream} ends at event {found} but its head records event {expected}; the newest events "
                "were deleted or the head was changed.", stream=stream, found=events, expected=head[0])))
        return StreamReport(stream, events, prev, None)


def _check_event(conn: Connection, stream: str, row: Any, prev: str, expected_seq: int) -> Finding | None:
    """Return the first problem of one event, given the hash of the event before it and its expected number.

    Checks a sound event with one expression, then leaves a failed one to ``_first_problem``, which
    runs the same checks one by one to name the first that fails.
    """
    _event_id, _stream, seq, kind, actor, case_id, definition_id, element_id, at, body, prev_hash, digest = row
    body = bytes(body)
    if _sha256(body).hexdigest() == digest:
        try:
            record = _decode(body)
        except ValueError:
            return _first_problem(conn, stream, row, prev, expected_seq)
        hashed_at = record.get("at")
        if (seq == expected_seq and prev_hash == prev and record.get("seq") == seq and record.get("prev") == prev
                and record.get("stream") == stream and record.get("kind") == kind and record.get("actor") == actor
                and record.get("case_id") == case_id and record.get("definition_id") == definition_id
                and record.get("element_id") == element_id
                and (_same_text_time(at, hashed_at) if isinstance(at, str) else canonical_time(at) == hashed_at)):
            return None
    return _first_problem(conn, stream, row, prev, expected_seq)


_sha256 = hashlib.sha256


def _first_problem(conn: Connection, stream: str, row: Any, prev: str, expected_seq: int) -> Finding | None:
    event_id, _stream, seq, kind, actor, case_id, definition_id, element_id, at, body, prev_hash, digest = row
    body = bytes(body)

    def finding(problem: str, message: Message) -> Finding:
        return Finding(stream, seq, event_id, problem, message)

    if hashlib.sha256(body).hexdigest() != digest:
        return finding("edited", msg(
            "Event {seq} (id {event_id}) of {stream} was altered: its stored bytes no longer match "
            "its hash.", seq=seq, event_id=event_id, stream=stream))
    try:
        record = _decode(body)
    except ValueError:
        return finding("edited", msg("Event {seq} (id {event_id}) of {stream} is not valid JSON.",
                                     seq=seq, event_id=event_id, stream=stream))
    if seq != expected_seq or record.get("seq") != seq:
        problem = "missing" if seq > expected_seq else "inserted"
        return finding(problem, msg(
            "Event {seq} (id {event_id}) of {stream} is out of sequence: expected number {expected}, so "
            "an event was deleted, inserted or reordered before it.",
            seq=seq, event_id=event_id, stream=stream, expected=expected_seq))
    if record.get("prev") != prev or prev_hash != prev:
        return finding("reordered", msg(
            "Event {seq} (id {event_id}) of {stream} does not link to the event before it, so an "
            "event was replaced, inserted or reordered.", seq=seq, event_id=event_id, stream=stream))
    if record.get("stream") != stream:
        return finding("moved", msg(
            "Event {seq} (id {event_id}) was written for {original}, not {stream}; events were moved "
            "between streams.", seq=seq, event_id=event_id, original=record.get("stream"), stream=stream))
    for column, value in zip(_COLUMNS, (kind, actor, case_id, definition_id, element_id), strict=True):
        if record.get(column) != value:
            return finding("edited", msg(
                "Event {seq} (id {event_id}) of {stream} was altered: column {column} holds {value!r} "
                "but the hashed body says {original!r}.", seq=seq, event_id=event_id, stream=stream,
                column=column, value=value, original=record.get(column)))
    if not _same_time(conn, event_id, at, record.get("at")):
        return finding("edited", msg(
            "Event {seq} (id {event_id}) of {stream} was altered: its time column differs from the "
            "hashed body.", seq=seq, event_id=event_id, stream=stream))
    return None


# typeshed declares the C scanner as taking itself; it takes the decoder whose settings it copies.
_SCAN_JSON = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _decode(body: bytes) -> Any:
    """Return ``json.loads(body)``, faster for the usual body: UTF-8 text that is one JSON value and nothing else.

    json.loads(bytes) first detects the encoding and skips whitespace around the value. A body that
    needs either takes that slower path, so the result is always the same as json.loads(body).
    """
    try:
        text = body.decode()
        record, end = _SCAN_JSON(text, 0)
        if end == len(text):
            return record
    except (ValueError, StopIteration):
        pass
    return json.loads(body)


def _same_time(conn: Connection, event_id: int, at: Any, hashed: Any) -> bool:
    """Compare an event's time column with the canonical time in its body.

    ``at`` is SQLite's stored text, or a datetime on other databases. Text in SQLAlchemy's usual
    format is compared as text; any other text is read back as a datetime first.
    """
    if isinstance(at, str):
        if _same_text_time(at, hashed):
            return True
        at = conn.execute(select(trace_events.c.at).where(trace_events.c.id == event_id)).scalar_one()
    return canonical_time(at) == hashed


def _same_text_time(stored: str, hashed: Any) -> bool:
    """Compare SQLite's text ``2026-12-01 09:30:00.000000`` with the canonical ``2026-12-01T09:30:00.000000Z``."""
    return isinstance(hashed, str) and len(hashed) == 27 and stored == f"{hashed[:10]} {hashed[11:26]}"


def _stored_heads(conn: Connection, streams: list[str], all_cases: bool) -> dict[str, tuple[int, str]]:
    """Read the recorded heads of ``streams``: case streams from their case rows, the others from trace_heads.

    With ``all_cases`` the heads of every case are read in one query instead of by case id.
    """
    case_ids = {stream: int(stream[5:]) for stream in streams if stream.startswith("case:") and stream[5:].isdigit()}
    others = [stream for stream in streams if stream not in case_ids]
    heads: dict[str, tuple[int, str]] = {}
    if case_ids:
        query = select(cases.c.id, cases.c.trace_seq, cases.c.trace_head).where(cases.c.trace_seq > 0)
        if not all_cases:
            query = query.where(cases.c.id.in_(sorted(set(case_ids.values()))))
        by_case = {row[0]: (row[1], row[2]) for row in conn.execute(query)}
        for stream, case_id in case_ids.items():
            if case_id in by_case:
                heads[stream] = by_case[case_id]
    if others:
        query = select(trace_heads.c.stream, trace_heads.c.seq, trace_heads.c.hash).where(
            trace_heads.c.stream.in_(others))
        heads.update({row[0]: (row[1], row[2]) for row in conn.execute(query)})
    return heads


def all_streams(conn: Connection) -> list[str]:
    heads = {row.stream for row in conn.execute(select(trace_heads.c.stream))}
    heads |= {case_stream(row.id) for row in conn.execute(select(cases.c.id).where(cases.c.trace_seq > 0))}
    events = {row.stream for row in conn.execute(select(trace_events.c.stream).distinct())}
    return sorted(heads | events)
