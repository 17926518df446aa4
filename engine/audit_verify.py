"""Verify the whole trace against a checkpoint that an auditor kept outside the system.

The kept root is the evidence: if the first ``size`` events of the log, rehashed from the bodies in
trace_events today, reproduce it, none of them was changed, removed, inserted or reordered. The other
checks name the events behind a mismatch. They compare each log entry with the event body it points
to and the log order with the sealing order, look for events missing from the log, and run the
per-stream hash chains.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.engine import Connection

from engine import merkle, trace
from engine.audit import (
    DELETED,
    DELETED_NEWEST,
    EDITED,
    INSERTED,
    REORDERED,
    ROOT_MISMATCH,
    SWAPPED,
    CheckpointDocument,
    InstanceKey,
    Problem,
    check_signature,
    instance_keys,
    parse_checkpoint,
)
from engine.db import audit_log, trace_events
from engine.i18n import msg

if TYPE_CHECKING:
    from engine.service import Liuhen

logger = logging.getLogger(__name__)

SCAN_BATCH = 2000
# Problems listed per check before the rest are only counted, so mass tampering gives a readable report.
MAX_LISTED = 100

# Trust status of a key the auditor supplied (``--public-key``); the instance's own keys are active or retired.
SUPPLIED = "supplied"

# verify_stream's problem names, in this module's kinds.
_CHAIN_KINDS = {
    "edited": EDITED,
    "missing": DELETED,
    "inserted": INSERTED,
    "reordered": REORDERED,
    "moved": SWAPPED,
    "truncated": DELETED_NEWEST,
    "head_missing": DELETED,
}


@dataclass(frozen=True)
class SigningKeyTrust:
    """The trusted key that a checkpoint's signature verified with; ``status`` is active, retired or supplied."""

    key_id: str
    status: str


@dataclass
class AuditReport:
    """The outcome of verifying the trace against one kept checkpoint.

    ``signing_key`` is None when the signature did not verify with a trusted key.
    """

    checkpoint: CheckpointDocument
    log_size: int
    log_root: str
    consistency_proof: list[str]
    pending: int
    streams: int
    problems: list[Problem] = field(default_factory=list)
    signing_key: SigningKeyTrust | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Entry:
    """A log entry whose event body no longer has the sealed leaf hash."""

    index: int
    position: int
    event_id: int
    stream: str
    seq: int
    stored: str
    actual: str
    body: bytes


@dataclass
class _Scan:
    event_ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    leaves: list[bytes | None] = field(default_factory=list)
    changed: list[_Entry] = field(default_factory=list)
    missing: list[tuple[int, int, int]] = field(default_factory=list)
    gaps: list[int] = field(default_factory=list)


def verify_checkpoint(service: Liuhen, document: Any,
                      trusted_keys: Sequence[Ed25519PublicKey] = ()) -> AuditReport:
    """Verify the signature of a kept checkpoint and the current trace against it.

    The instance's active and retired keys are trusted in addition to ``trusted_keys``. Raises
    InvalidInput if ``document`` is not a checkpoint, and SigningKeyError if a key file cannot be read.
    Every problem found is in the returned report.
    """
    checkpoint = parse_checkpoint(document)
    own_keys = instance_keys(service)
    keys = [key.public_key for key in own_keys] + list(trusted_keys)
    key_path = str(service.settings.resolved_signing_key_path())
    signature_problems = check_signature(checkpoint, keys, key_path)
    with service.db.snapshot() as conn:
        report = verify_log(conn, checkpoint)
    report.problems[:0] = signature_problems
    if not signature_problems:
        report.signing_key = _signing_key_trust(checkpoint.key_id, own_keys)
    if report.ok:
        logger.info("trace verified against checkpoint of %s events", checkpoint.size,
                    extra={"size": checkpoint.size, "log_size": report.log_size, "key_id": checkpoint.key_id})
    else:
        logger.warning("trace verification against checkpoint of %s events found %s problems", checkpoint.size,
                       len(report.problems), extra={"size": checkpoint.size, "key_id": checkpoint.key_id})
    return report


def _signing_key_trust(key_id: str, own_keys: list[InstanceKey]) -> SigningKeyTrust:
    """Look up the status of the key that verified the signature; a key the instance does not have was supplied."""
    status = next((key.status for key in own_keys if key.key_id == key_id), SUPPLIED)
    return SigningKeyTrust(key_id, status)


def verify_log(conn: Connection, checkpoint: CheckpointDocument) -> AuditReport:
    """Check the log and the trace in ``conn`` against ``checkpoint``; the signature is not checked here."""
    scan = _scan_log(conn)
    problems: list[Problem] = []
    problems += _capped(_gap_problems(scan))
    problems += _capped(_missing_problems(scan))
    problems += _capped(_changed_problems(scan.changed))
    problems += _capped(_order_problems(conn, scan, checkpoint))
    unsealed, pending = _unsealed_problems(conn, max(scan.event_ids, default=0))
    problems += _capped(unsealed)

    current = [leaf for leaf in scan.leaves if leaf is not None]
    size_problems, proof = _size_problems(checkpoint, len(scan.event_ids), current)
    problems += size_problems

    # The chains report the first problem of each stream; skip events the log checks already named.
    problems = _deduplicated(problems)
    named = {problem.event_id for problem in problems if problem.event_id is not None}
    streams = trace.all_streams(conn)
    problems += [problem for problem in _capped(_chain_problems(conn, streams)) if problem.event_id not in named]
    return AuditReport(checkpoint, len(scan.event_ids), merkle.root_from_hashes(current).hex(),
                       [node.hex() for node in proof], pending, len(streams), problems)


def _scan_log(conn: Connection) -> _Scan:
    """Read the log in position order with the current body of each event, rehashing the bodies."""
    query = (
        select(audit_log.c.position, audit_log.c.event_id, audit_log.c.leaf_hash,
               trace_events.c.id.label("found_id"), trace_events.c.stream, trace_events.c.seq, trace_events.c.body)
        .select_from(audit_log.outerjoin(trace_events, trace_events.c.id == audit_log.c.event_id))
        .order_by(audit_log.c.position)
    )
    scan = _Scan()
    expected = 0
    for row in conn.execute(query.execution_options(yield_per=SCAN_BATCH)):
        scan.gaps.extend(range(expected, row.position))
        expected = row.position + 1
        index = len(scan.event_ids)
        scan.event_ids.append(row.event_id)
        scan.positions.append(row.position)
        if row.found_id is None:
            scan.leaves.append(None)
            scan.missing.append((index, row.position, row.event_id))
            continue
        body = bytes(row.body)
        leaf = merkle.leaf_hash(body)
        scan.leaves.append(leaf)
        if leaf.hex() != row.leaf_hash:
            scan.changed.append(_Entry(index, row.position, row.event_id, row.stream, row.seq, row.leaf_hash,
                                       leaf.hex(), body))
    return scan


def _gap_problems(scan: _Scan) -> Iterable[Problem]:
    for position in scan.gaps:
        yield Problem(DELETED, msg("Log position {position} is empty: its entry was deleted from the audit log.",
                                   position=position), position=position)


def _missing_problems(scan: _Scan) -> Iterable[Problem]:
    """Events the log points to that are gone from trace_events; a run of them at the end is the newest."""
    tail_start = len(scan.event_ids)
    while tail_start > 0 and scan.leaves[tail_start - 1] is None:
        tail_start -= 1
    for index, position, event_id in scan.missing:
        if index >= tail_start:
            yield Problem(DELETED_NEWEST, msg(
                "Trace event {event_id}, sealed at log position {position}, was deleted; it was one of the newest "
                "sealed events.", event_id=event_id, position=position), event_id, position=position)
        else:
            yield Problem(DELETED, msg(
                "Trace event {event_id}, sealed at log position {position}, was deleted from the trace.",
                event_id=event_id, position=position), event_id, position=position)


def _changed_problems(changed: list[_Entry]) -> Iterable[Problem]:
    """Name each event whose body changed: edited, or holding another sealed event's body (reordered, swapped)."""
    by_body = {entry.actual: entry for entry in changed}
    for entry in changed:
        holder = by_body.get(entry.stored)
        if holder is None or holder is entry:
            yield Problem(EDITED, msg(
                "Trace event {event_id} ({stream} #{seq}) was edited after it was sealed at log position "
                "{position}: its body no longer matches the sealed leaf hash.", event_id=entry.event_id,
                stream=entry.stream, seq=entry.seq, position=entry.position),
                entry.event_id, entry.stream, entry.seq, entry.position)
        elif _body_stream(holder.body) != _body_stream(entry.body):
            yield Problem(SWAPPED, msg(
                "Trace event {event_id} ({stream} #{seq}) holds a body written for {written_for}, and its own sealed "
                "body is now in event {other_id} of {other_stream}: events were swapped between cases.",
                event_id=entry.event_id, stream=entry.stream, seq=entry.seq, written_for=_body_stream(entry.body),
                other_id=holder.event_id, other_stream=holder.stream),
                entry.event_id, entry.stream, entry.seq, entry.position)
        else:
            yield Problem(REORDERED, msg(
                "Trace event {event_id} ({stream} #{seq}) no longer holds the body sealed for it at log position "
                "{position}; that body is now in event {other_id}: the events were reordered.",
                event_id=entry.event_id, stream=entry.stream, seq=entry.seq, position=entry.position,
                other_id=holder.event_id), entry.event_id, entry.stream, entry.seq, entry.position)


def _body_stream(body: bytes) -> Any:
    try:
        record = json.loads(body)
    except ValueError:
        return None
    return record.get("stream") if isinstance(record, dict) else None


def _order_problems(conn: Connection, scan: _Scan, checkpoint: CheckpointDocument) -> list[Problem]:
    """Name log entries out of sealing order, which is rising event id.

    An entry is out of order if it is not on one longest rising run of event ids. Inside the range the
    checkpoint covers, the entry was inserted if dropping the out-of-order entries reproduces the kept
    root, and reordered otherwise. After that range, an entry with a lower id than one inside it was
    inserted afterwards, because sealing puts every event up to the highest sealed id in the log at once.
    """
    ids = scan.event_ids
    if all(a < b for a, b in zip(ids, ids[1:], strict=False)):
        return []
    in_order = _longest_rising(ids)
    out_of_order = [index for index in range(len(ids)) if index not in in_order]
    kept_root = bytes.fromhex(checkpoint.root)
    remaining = [leaf for index, leaf in enumerate(scan.leaves) if index in in_order and leaf is not None]
    dropping_restores = (len(remaining) >= checkpoint.size
                         and merkle.root_from_hashes(remaining[:checkpoint.size]) == kept_root)
    highest_covered = max(ids[:checkpoint.size], default=0)
    labels = _event_labels(conn, [ids[index] for index in out_of_order[:MAX_LISTED + 1]])

    problems = []
    for index in out_of_order:
        event_id, position = ids[index], scan.positions[index]
        stream, seq = labels.get(event_id, (None, None))
        covered = index < checkpoint.size
        inserted = dropping_restores if covered else event_id < highest_covered
        if inserted:
            problems.append(Problem(INSERTED, msg(
                "Trace event {event_id} ({stream} #{seq}) at log position {position} was inserted into the audit "
                "log: it is out of sealing order, and the checkpoint does not include it.",
                event_id=event_id, stream=stream, seq=seq, position=position), event_id, stream, seq, position))
        else:
            problems.append(Problem(REORDERED, msg(
                "Trace event {event_id} ({stream} #{seq}) is out of sealing order at log position {position}: "
                "the audit log was reordered.", event_id=event_id, stream=stream, seq=seq, position=position),
                event_id, stream, seq, position))
    return problems


def _longest_rising(values: list[int]) -> set[int]:
    """Indexes of one longest strictly rising subsequence of ``values``, in O(n log n)."""
    tail_values: list[int] = []
    tail_indexes: list[int] = []
    previous = [-1] * len(values)
    for index, value in enumerate(values):
        length = bisect.bisect_left(tail_values, value)
        if length > 0:
            previous[index] = tail_indexes[length - 1]
        if length == len(tail_values):
            tail_values.append(value)
            tail_indexes.append(index)
        else:
            tail_values[length] = value
            tail_indexes[length] = index
    chosen = set()
    index = tail_indexes[-1] if tail_indexes else -1
    while index >= 0:
        chosen.add(index)
        index = previous[index]
    return chosen


def _event_labels(conn: Connection, event_ids: list[int]) -> dict[int, tuple[str, int]]:
    if not event_ids:
        return {}
    rows = conn.execute(select(trace_events.c.id, trace_events.c.stream, trace_events.c.seq)
                        .where(trace_events.c.id.in_(event_ids)))
    return {row.id: (row.stream, row.seq) for row in rows}


def _unsealed_problems(conn: Connection, highest_sealed: int) -> tuple[list[Problem], int]:
    """Report events missing from the log although newer ones are sealed; count the rest as pending."""
    query = (
        select(trace_events.c.id, trace_events.c.stream, trace_events.c.seq)
        .select_from(trace_events.outerjoin(audit_log, audit_log.c.event_id == trace_events.c.id))
        .where(audit_log.c.event_id.is_(None)).order_by(trace_events.c.id)
    )
    problems, pending = [], 0
    for row in conn.execute(query.execution_options(yield_per=SCAN_BATCH)):
        if row.id > highest_sealed:
            pending += 1
            continue
        problems.append(Problem(INSERTED, msg(
            "Trace event {event_id} ({stream} #{seq}) is not in the audit log although newer events are: it was "
            "inserted after sealing.", event_id=row.id, stream=row.stream, seq=row.seq),
            row.id, row.stream, row.seq))
    return problems, pending


def _size_problems(checkpoint: CheckpointDocument, entries: int,
                   current: list[bytes]) -> tuple[list[Problem], list[bytes]]:
    """Check that the log still reproduces the kept root and only grew since; returns the consistency proof."""
    size, kept_root = checkpoint.size, bytes.fromhex(checkpoint.root)
    problems = []
    if entries < size:
        problems.append(Problem(DELETED_NEWEST, msg(
            "The audit log has {entries} entries but the checkpoint covers {size}: the newest {missing} sealed "
            "events were removed from the log.", entries=entries, size=size, missing=size - entries)))
    if len(current) < size or merkle.root_from_hashes(current[:size]) != kept_root:
        problems.append(Problem(ROOT_MISMATCH, msg(
            "The first {size} events of the audit log, hashed from the trace as it is now, do not reproduce the "
            "checkpoint root {root}: events it covers were changed, removed, inserted or reordered.",
            size=size, root=checkpoint.root)))
        return problems, []
    if size == 0:
        return problems, []
    proof = merkle.consistency_proof(current, size)
    if not merkle.verify_consistency(size, len(current), kept_root, merkle.root_from_hashes(current), proof):
        problems.append(Problem(ROOT_MISMATCH, msg(
            "The audit log of {entries} entries does not extend the checkpoint of {size}: the consistency proof "
            "fails.", entries=len(current), size=size)))
    return problems, proof


def _chain_problems(conn: Connection, streams: list[str]) -> Iterable[Problem]:
    for report in trace.verify_streams(conn, streams):
        if report.finding is not None:
            yield _chain_problem(conn, report.stream, report.finding)


def _chain_problem(conn: Connection, stream: str, finding: trace.Finding) -> Problem:
    """Name the first broken link of a stream, looking at the event's body to tell moves from edits."""
    kind = _CHAIN_KINDS.get(finding.problem, EDITED)
    if finding.event_id is None:
        return Problem(kind, finding.message, None, stream, finding.seq)
    row = conn.execute(select(trace_events.c.id, trace_events.c.seq, trace_events.c.body, trace_events.c.hash)
                       .where(trace_events.c.id == finding.event_id)).one()
    try:
        record = json.loads(bytes(row.body))
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return Problem(kind, finding.message, row.id, stream, row.seq)

    if record.get("stream") != stream:
        return Problem(SWAPPED, msg(
            "Trace event {event_id} ({stream} #{seq}) was written for {written_for}: events were swapped between "
            "cases.", event_id=row.id, stream=stream, seq=row.seq, written_for=record.get("stream")),
            row.id, stream, row.seq)
    if record.get("seq") != row.seq:
        original = conn.execute(select(trace_events.c.id).where(trace_events.c.hash == row.hash,
                                                                trace_events.c.id != row.id).limit(1)).scalar()
        if original is not None:
            return Problem(INSERTED, msg(
                "Trace event {event_id} ({stream} #{seq}) is a copy of event {original_id} inserted into the "
                "stream.", event_id=row.id, stream=stream, seq=row.seq, original_id=original),
                row.id, stream, row.seq)
        return Problem(REORDERED, msg(
            "Trace event {event_id} ({stream} #{seq}) holds the body written as #{written_seq} of the same stream: "
            "events were reordered.", event_id=row.id, stream=stream, seq=row.seq, written_seq=record.get("seq")),
            row.id, stream, row.seq)
    return Problem(kind, finding.message, row.id, stream, row.seq)


def _capped(problems: Iterable[Problem]) -> list[Problem]:
    listed: list[Problem] = []
    more = 0
    for problem in problems:
        if len(listed) < MAX_LISTED:
            listed.append(problem)
        else:
            more += 1
    if more:
        last = listed[-1]
        listed.append(Problem(last.kind, msg("{count} more problems of kind {kind} are not listed.", count=more,
                                             kind=last.kind)))
    return listed


def _deduplicated(problems: list[Problem]) -> list[Problem]:
    """Keep the first report of each kind per event; later checks often see the same change again."""
    seen = set()
    kept = []
    for problem in problems:
        if problem.event_id is not None:
            key = (problem.kind, problem.event_id)
            if key in seen:
                continue
            seen.add(key)
        kept.append(problem)
    return kept
