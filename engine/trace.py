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
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from engine.db import cases, trace_events, trace_heads
from engine.i18n import Message, message_from_json, msg

TRACE_FORMAT = 1
GENESIS = "0" * 64
SYSTEM_STREAM = "system"


# Built once: the hot path appends on every step, and building statements costs more than running them.
_HEAD = select(trace_heads.c.seq, trace_heads.c.hash).where(trace_heads.c.stream == bindparam("stream"))
_INSERT_EVENTS = insert(trace_events)
_INSERT_HEAD = insert(trace_heads)
_UPDATE_HEAD = update(trace_heads).where(trace_heads.c.stream == bindparam("head_stream"))


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


def canonical_bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=str).encode("utf-8")


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
        stored = conn.execute(_HEAD, {"stream": stream}).first()
        head = (stored.seq, stored.hash) if stored else (0, GENESIS)
    seq, prev = head
    rows = []
    for event in events:
        seq += 1
        record = {
            "format": TRACE_FORMAT,
            "stream": stream,
            "seq": seq,
            "kind": event.kind,
            "actor": event.actor,
            "at": canonical_time(event.at),
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
            "kind": event.kind, "element_id": event.element_id, "actor": event.actor, "at": _utc(event.at),
            "body": body, "prev_hash": prev, "hash": digest,
        })
        prev = digest
    if rows:
        conn.execute(_INSERT_EVENTS, rows)
        if keeps_head_row and stored is not None:
            conn.execute(_UPDATE_HEAD, {"head_stream": stream, "seq": seq, "hash": prev})
        elif keeps_head_row:
            conn.execute(_INSERT_HEAD, {"stream": stream, "seq": seq, "hash": prev})
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


def verify_stream(conn: Connection, stream: str) -> StreamReport:
    """Check every event of ``stream``: its hash, its link to the one before, its place and its columns."""
    rows = conn.execute(
        select(trace_events).where(trace_events.c.stream == stream).order_by(trace_events.c.seq, trace_events.c.id)
    ).all()
    head = _stored_head(conn, stream)
    prev, expected_seq = GENESIS, 1

    def finding(row: Any, problem: str, message: Message) -> StreamReport:
        return StreamReport(stream, len(rows), prev, Finding(stream, row.seq if row is not None else None,
                                                              row.id if row is not None else None, problem, message))

    for row in rows:
        body = bytes(row.body)
        if hashlib.sha256(body).hexdigest() != row.hash:
            return finding(row, "edited", msg(
                "Event {seq} (id {event_id}) of {stream} was altered: its stored bytes no longer match "
                "its hash.", seq=row.seq, event_id=row.id, stream=stream))
        try:
            record = json.loads(body)
        except ValueError:
            return finding(row, "edited", msg("Event {seq} (id {event_id}) of {stream} is not valid JSON.",
                                              seq=row.seq, event_id=row.id, stream=stream))
        if row.seq != expected_seq or record.get("seq") != row.seq:
            problem = "missing" if row.seq > expected_seq else "inserted"
            return finding(row, problem, msg(
                "Event {seq} (id {event_id}) of {stream} is out of sequence: expected number {expected}, so "
                "an event was deleted, inserted or reordered before it.",
                seq=row.seq, event_id=row.id, stream=stream, expected=expected_seq))
        if record.get("prev") != prev or row.prev_hash != prev:
            return finding(row, "reordered", msg(
                "Event {seq} (id {event_id}) of {stream} does not link to the event before it, so an "
                "event was replaced, inserted or reordered.", seq=row.seq, event_id=row.id, stream=stream))
        if record.get("stream") != stream:
            return finding(row, "moved", msg(
                "Event {seq} (id {event_id}) was written for {original}, not {stream}; events were moved "
                "between streams.", seq=row.seq, event_id=row.id, original=record.get("stream"), stream=stream))
        for column in _COLUMNS:
            if record.get(column) != getattr(row, column):
                return finding(row, "edited", msg(
                    "Event {seq} (id {event_id}) of {stream} was altered: column {column} holds {value!r} "
                    "but the hashed body says {original!r}.", seq=row.seq, event_id=row.id, stream=stream,
                    column=column, value=getattr(row, column), original=record.get(column)))
        if canonical_time(row.at) != record.get("at"):
            return finding(row, "edited", msg(
                "Event {seq} (id {event_id}) of {stream} was altered: its time column differs from the "
                "hashed body.", seq=row.seq, event_id=row.id, stream=stream))
        prev, expected_seq = row.hash, expected_seq + 1

    if head is None:
        if rows:
            return finding(None, "head_missing", msg(
                "Stream {stream} has {count} events but no head record; the head was deleted.",
                stream=stream, count=len(rows)))
        return StreamReport(stream, 0, prev, None)
    if head.seq != len(rows) or head.hash != prev:
        return finding(None, "truncated", msg(
            "Stream {stream} ends at event {found} but its head records event {expected}; the newest events "
            "were deleted or the head was changed.", stream=stream, found=len(rows), expected=head.seq))
    return StreamReport(stream, len(rows), prev, None)


def _stored_head(conn: Connection, stream: str) -> Any:
    """Read the recorded head of ``stream`` from its case row, or from trace_heads for the system stream."""
    if stream.startswith("case:") and stream[5:].isdigit():
        return conn.execute(select(cases.c.trace_seq.label("seq"), cases.c.trace_head.label("hash"))
                            .where(cases.c.id == int(stream[5:]), cases.c.trace_seq > 0)).first()
    return conn.execute(_HEAD, {"stream": stream}).first()


def all_streams(conn: Connection) -> list[str]:
    heads = {row.stream for row in conn.execute(select(trace_heads.c.stream))}
    heads |= {case_stream(row.id) for row in conn.execute(select(cases.c.id).where(cases.c.trace_seq > 0))}
    events = {row.stream for row in conn.execute(select(trace_events.c.stream).distinct())}
    return sorted(heads | events)
