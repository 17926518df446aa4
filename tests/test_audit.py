"""Signed checkpoints: a kept checkpoint catches and names every kind of change to the trace.

The tampering helpers act as an insider with write access to the database would: they switch off the
append-only triggers first and may rewrite several tables so that the hash chains still look right.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, DBAPIError

from api.app import create_app
from engine import audit, merkle, signing, trace
from engine.audit import (
    DELETED,
    DELETED_NEWEST,
    EDITED,
    INSERTED,
    REORDERED,
    ROOT_MISMATCH,
    SIGNATURE_INVALID,
    SWAPPED,
    UNKNOWN_KEY,
    check_proof,
    create_checkpoint,
    prove,
    seal,
)
from engine.audit_verify import AuditReport, verify_checkpoint
from engine.db import audit_log, cases, checkpoints, trace_events
from engine.errors import Conflict, InvalidInput, NotFound
from engine.service import Liuhen
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, ROOT, LiveServer, add_user

THREE_STEPS = sequence("three_steps", ["A", "B", "C"], fields=[("note", "string")])


@pytest.fixture
def trail(service: Liuhen) -> dict[str, int]:
    """A deployment, a finished case and a case one step in: three trace streams."""
    staff = add_user(service, "staff", ["staff"])
    service.deploy(THREE_STEPS, "three.bpmn", DESIGNER)
    first = service.start_case("three_steps", staff)["id"]
    for index in range(3):
        task = service.get_case(first)["tasks"][-1]
        service.complete(task["id"], staff, {"note": f"第{index}步"})
    second = service.start_case("three_steps", staff)["id"]
    service.complete(service.get_case(second)["tasks"][0]["id"], staff, {"note": "第二件"})
    return {"first": first, "second": second}


@pytest.fixture
def kept(service: Liuhen, trail: dict[str, int]) -> dict[str, Any]:
    """The checkpoint file an auditor took away, read back from JSON."""
    return json.loads(json.dumps(create_checkpoint(service)))


@contextlib.contextmanager
def insider(service: Liuhen) -> Iterator[Connection]:
    """A transaction with the append-only triggers of the trace, the log and the checkpoints switched off."""
    with service.db.engine.begin() as conn:
        for table in ("trace_events", "audit_log", "checkpoints"):
            if service.db.is_sqlite:
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
            else:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        yield conn


def event_rows(service: Liuhen, stream: str | None = None) -> list[Any]:
    query = select(trace_events).order_by(trace_events.c.id)
    if stream is not None:
        query = query.where(trace_events.c.stream == stream).order_by(trace_events.c.seq)
    with service.db.engine.connect() as conn:
        return conn.execute(query).all()


def event_at(service: Liuhen, case_id: int, seq: int) -> Any:
    return next(row for row in event_rows(service, trace.case_stream(case_id)) if row.seq == seq)


def rewritten(row: Any, **changes: Any) -> bytes:
    record = json.loads(bytes(row.body))
    record.update(changes)
    return trace.canonical_bytes(record)


def verify(service: Liuhen, document: dict[str, Any], trusted: list[Any] | None = None) -> AuditReport:
    return verify_checkpoint(service, document, trusted or [])


def kinds(report: AuditReport) -> set[str]:
    return {problem.kind for problem in report.problems}


def named(report: AuditReport, kind: str) -> list[audit.Problem]:
    return [problem for problem in report.problems if problem.kind == kind]


def english(problem: audit.Problem) -> str:
    return problem.message.render("en")


def resigned(document: dict[str, Any], key: Ed25519PrivateKey, **changes: Any) -> dict[str, Any]:
    """The checkpoint with ``changes`` applied and signed again with ``key``, key id and public key included."""
    public = key.public_key()
    signed = {**document, **changes, "key_id": signing.key_id(public), "public_key": signing.public_key_pem(public)}
    message = audit.signed_message(signed["size"], signed["root"], signed["created_at"], signed["key_id"])
    signed["signature"] = signing.sign(key, message)
    return signed


# clean trace


def test_clean_trace_verifies(service, kept) -> None:
    report = verify(service, kept)
    assert report.ok, [english(p) for p in report.problems]
    assert report.log_size == kept["size"] == len(event_rows(service))
    assert report.log_root == kept["root"]
    assert report.pending == 0
    assert report.streams == 3


def test_newer_events_and_checkpoints_extend_kept_one(service, trail, kept) -> None:
    staff = add_user(service, "late", ["staff"])
    service.complete(service.get_case(trail["second"])["tasks"][-1]["id"], staff, {"note": "后来"})
    pending = verify(service, kept)
    assert pending.ok, [english(p) for p in pending.problems]
    assert pending.pending > 0

    newer = create_checkpoint(service)
    report = verify(service, kept)
    assert report.ok, [english(p) for p in report.problems]
    assert report.pending == 0
    assert report.log_size == newer["size"] > kept["size"]
    assert report.log_root == newer["root"]
    assert report.consistency_proof
    assert verify(service, newer).ok


def test_checkpoint_document_and_key(service, kept) -> None:
    assert (kept["format"], kept["version"]) == ("liuhen-checkpoint", 1)
    assert set(kept) == {"format", "version", "size", "root", "created_at", "key_id", "signature", "public_key"}
    assert kept["created_at"] == "2026-12-01T01:00:00.000000Z"
    key_path = service.settings.resolved_signing_key_path()
    assert key_path == service.settings.data_dir / "signing-key.pem"
    assert key_path.stat().st_mode & 0o777 == 0o600
    public = signing.parse_public_key(kept["public_key"])
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert kept["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    message = f"liuhen-checkpoint-v1\n{kept['size']}\n{kept['root']}\n{kept['created_at']}\n{kept['key_id']}"
    assert signing.signature_valid(public, kept["signature"], message.encode())

    listed = audit.list_checkpoints(service)
    assert [entry["root"] for entry in listed] == [kept["root"]]
    assert listed[0]["id"] == 1
    assert listed[0]["public_key"] == kept["public_key"]


def test_log_follows_event_ids(service, kept) -> None:
    with service.db.engine.connect() as conn:
        log = conn.execute(select(audit_log).order_by(audit_log.c.position)).all()
    rows = event_rows(service)
    assert [entry.position for entry in log] == list(range(len(rows)))
    assert [entry.event_id for entry in log] == [row.id for row in rows]
    assert [entry.leaf_hash for entry in log] == [merkle.leaf_hash(bytes(row.body)).hex() for row in rows]


def test_second_seal_appends_nothing(service, kept) -> None:
    with service.db.write() as conn:
        assert seal(conn, service.now()) == 0
    assert create_checkpoint(service)["root"] == kept["root"]


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET leaf_hash = 'x'", "DELETE FROM audit_log",
                                       "UPDATE checkpoints SET size = 0", "DELETE FROM checkpoints"])
def test_database_rejects_changes_to_log(service, kept, statement) -> None:
    with pytest.raises(DatabaseError, match="append-only"):
        with service.db.engine.begin() as conn:
            conn.execute(text(statement))
    assert verify(service, kept).ok


# edited


def test_edited_body_is_named(service, trail, kept) -> None:
    target = event_at(service, trail["first"], 4)
    with insider(service) as conn:
        conn.execute(update(trace_events).where(trace_events.c.id == target.id)
                     .values(body=rewritten(target, actor="forger")))
    report = verify(service, kept)
    edited = named(report, EDITED)
    assert [(p.event_id, p.stream, p.seq) for p in edited] == [(target.id, f"case:{trail['first']}", 4)]
    assert f"Trace event {target.id} (case:{trail['first']} #4) was edited" in english(edited[0])
    assert ROOT_MISMATCH in kinds(report)


def test_edit_covered_in_every_table_breaks_root(service, trail, kept) -> None:
    """An insider who rehashes the event and rewrites its log entry still cannot reproduce the kept root."""
    target = event_at(service, trail["first"], 4)
    body = rewritten(target, actor="forger")
    with insider(service) as conn:
        conn.execute(update(trace_events).where(trace_events.c.id == target.id)
                     .values(body=body, hash=hashlib.sha256(body).hexdigest(), actor="forger"))
        conn.execute(update(audit_log).where(audit_log.c.event_id == target.id)
                     .values(leaf_hash=merkle.leaf_hash(body).hex()))
    report = verify(service, kept)
    assert ROOT_MISMATCH in kinds(report)
    assert EDITED not in kinds(report)
    # The chain names the event after the rewritten one, whose link no longer matches.
    assert any(p.stream == f"case:{trail['first']}" and p.seq == 5 for p in report.problems)


# deleted


def test_deleted_middle_event_is_named(service, trail, kept) -> None:
    target = event_at(service, trail["first"], 3)
    with insider(service) as conn:
        conn.execute(trace_events.delete().where(trace_events.c.id == target.id))
    report = verify(service, kept)
    deleted = [p for p in named(report, DELETED) if p.event_id == target.id]
    assert len(deleted) == 1
    assert f"Trace event {target.id}, sealed at log position" in english(deleted[0])
    assert "was deleted" in english(deleted[0])
    # The hash chain names the stream and the place of the gap.
    assert any(p.kind == DELETED and p.stream == f"case:{trail['first']}" and p.seq == 4 for p in report.problems)


def test_deleted_log_entry_is_named(service, trail, kept) -> None:
    with insider(service) as conn:
        conn.execute(audit_log.delete().where(audit_log.c.position == 2))
    report = verify(service, kept)
    assert any(p.kind == DELETED and p.position == 2 and "Log position 2 is empty" in english(p)
               for p in report.problems)


def test_deleted_newest_events_shorten_log(service, trail, kept) -> None:
    """The insider removes the two newest events from trace and log and rewinds the case head to match."""
    stream = trace.case_stream(trail["second"])
    rows = event_rows(service, stream)
    removed, survivor = rows[-2:], rows[-3]
    assert [row.id for row in removed] == [row.id for row in event_rows(service)[-2:]]
    with insider(service) as conn:
        ids = [row.id for row in removed]
        conn.execute(trace_events.delete().where(trace_events.c.id.in_(ids)))
        conn.execute(audit_log.delete().where(audit_log.c.event_id.in_(ids)))
        conn.execute(update(cases).where(cases.c.id == trail["second"])
                     .values(trace_seq=survivor.seq, trace_head=survivor.hash))
    report = verify(service, kept)
    assert kinds(report) == {DELETED_NEWEST, ROOT_MISMATCH}
    message = english(named(report, DELETED_NEWEST)[0])
    assert f"has {kept['size'] - 2} entries but the checkpoint covers {kept['size']}" in message


def test_deleted_newest_events_are_named(service, trail, kept) -> None:
    newest = event_rows(service)[-2:]
    with insider(service) as conn:
        conn.execute(trace_events.delete().where(trace_events.c.id.in_([row.id for row in newest])))
    report = verify(service, kept)
    assert {p.event_id for p in named(report, DELETED_NEWEST)} >= {row.id for row in newest}
    # The case head still records the deleted events, so the chain reports the truncation too.
    assert any(p.kind == DELETED_NEWEST and p.stream == trace.case_stream(trail["second"]) for p in report.problems)


# reordered


def test_reordered_log_entries_are_named(service, kept) -> None:
    with service.db.engine.connect() as conn:
        second, third = conn.execute(select(audit_log).where(audit_log.c.position.in_([2, 3]))
                                     .order_by(audit_log.c.position)).all()
    with insider(service) as conn:
        conn.execute(update(audit_log).where(audit_log.c.position == 2).values(event_id=-1))
        conn.execute(update(audit_log).where(audit_log.c.position == 3)
                     .values(event_id=second.event_id, leaf_hash=second.leaf_hash))
        conn.execute(update(audit_log).where(audit_log.c.position == 2)
                     .values(event_id=third.event_id, leaf_hash=third.leaf_hash))
    report = verify(service, kept)
    reordered = named(report, REORDERED)
    assert len(reordered) == 1
    assert reordered[0].event_id in (second.event_id, third.event_id)
    assert "out of sealing order" in english(reordered[0])
    assert ROOT_MISMATCH in kinds(report)


def test_swapped_bodies_in_one_case_are_reordered(service, trail, kept) -> None:
    third, fourth = event_at(service, trail["first"], 3), event_at(service, trail["first"], 4)
    with insider(service) as conn:
        for row, other in ((third, fourth), (fourth, third)):
            conn.execute(update(trace_events).where(trace_events.c.id == row.id)
                         .values(body=other.body, hash=other.hash))
    report = verify(service, kept)
    assert {p.event_id for p in named(report, REORDERED)} == {third.id, fourth.id}
    assert f"that body is now in event {fourth.id}" in english(
        next(p for p in report.problems if p.event_id == third.id))


def test_swapped_sequence_numbers_are_reordered(service, trail, kept) -> None:
    """Only the columns change, so the Merkle tree still matches; the hash chain names the event."""
    stream = trace.case_stream(trail["first"])
    with insider(service) as conn:
        for statement in ("UPDATE trace_events SET seq = -1 WHERE stream = :s AND seq = 3",
                          "UPDATE trace_events SET seq = 3 WHERE stream = :s AND seq = 4",
                          "UPDATE trace_events SET seq = 4 WHERE stream = :s AND seq = -1"):
            conn.execute(text(statement), {"s": stream})
    report = verify(service, kept)
    assert [(p.kind, p.stream, p.seq) for p in report.problems] == [(REORDERED, stream, 3)]
    assert "holds the body written as #4" in english(report.problems[0])


# inserted


def test_forged_event_chained_into_case_is_named(service, trail, kept) -> None:
    """A well-formed event appended to a case chain, with an id below the sealed ones, is caught by the log."""
    case_id = trail["first"]
    stream = trace.case_stream(case_id)
    last = event_rows(service, stream)[-1]
    body = rewritten(last, seq=last.seq + 1, prev=last.hash, kind="task_completed", actor="forger",
                     payload={"data": {"note": "伪造的批准"}})
    digest = hashlib.sha256(body).hexdigest()
    with insider(service) as conn:
        conn.execute(insert(trace_events).values(
            id=0, stream=stream, seq=last.seq + 1, case_id=case_id, definition_id=last.definition_id,
            kind="task_completed", element_id=last.element_id, actor="forger", at=last.at, body=body,
            prev_hash=last.hash, hash=digest))
        conn.execute(update(cases).where(cases.c.id == case_id).values(trace_seq=last.seq + 1, trace_head=digest))
    assert all(report.ok for report in service.verify())

    report = verify(service, kept)
    assert [(p.kind, p.event_id, p.stream, p.seq) for p in report.problems] == [
        (INSERTED, 0, stream, last.seq + 1)]
    assert "inserted after sealing" in english(report.problems[0])


def test_forged_event_in_middle_of_log_is_named(service, trail, kept) -> None:
    source = event_at(service, trail["first"], 2)
    body = rewritten(source, seq=99, actor="forger")
    with insider(service) as conn:
        forged_id = conn.execute(insert(trace_events).values(
            stream=source.stream, seq=99, case_id=source.case_id, definition_id=source.definition_id,
            kind=source.kind, element_id=source.element_id, actor="forger", at=source.at, body=body,
            prev_hash=source.prev_hash, hash=hashlib.sha256(body).hexdigest(),
        ).returning(trace_events.c.id)).scalar_one()
        conn.execute(text("UPDATE audit_log SET position = -(position + 1) WHERE position >= 3"))
        conn.execute(text("UPDATE audit_log SET position = -position WHERE position < 0"))
        conn.execute(insert(audit_log).values(position=3, event_id=forged_id, leaf_hash=merkle.leaf_hash(body).hex(),
                                              sealed_at=service.now()))
    report = verify(service, kept)
    inserted = named(report, INSERTED)
    assert [(p.event_id, p.position) for p in inserted] == [(forged_id, 3)]
    assert "was inserted into the audit log" in english(inserted[0])
    assert ROOT_MISMATCH in kinds(report)


def test_copied_event_is_inserted(service, trail, kept) -> None:
    stream = trace.case_stream(trail["first"])
    with insider(service) as conn:
        conn.execute(text(
            "INSERT INTO trace_events (stream, seq, case_id, definition_id, kind, element_id, actor, at, body, "
            "prev_hash, hash) SELECT stream, 100, case_id, definition_id, kind, element_id, actor, at, body, "
            "prev_hash, hash FROM trace_events WHERE stream = :s AND seq = 2"), {"s": stream})
    report = verify(service, kept)
    original = event_at(service, trail["first"], 2)
    assert [(p.kind, p.stream, p.seq) for p in report.problems] == [(INSERTED, stream, 100)]
    assert f"is a copy of event {original.id}" in english(report.problems[0])


# swapped between cases


def test_bodies_swapped_between_cases_are_named(service, trail, kept) -> None:
    first, second = event_at(service, trail["first"], 2), event_at(service, trail["second"], 2)
    with insider(service) as conn:
        for row, other in ((first, second), (second, first)):
            conn.execute(update(trace_events).where(trace_events.c.id == row.id)
                         .values(body=other.body, hash=other.hash))
    report = verify(service, kept)
    swapped = named(report, SWAPPED)
    assert {p.event_id for p in swapped} == {first.id, second.id}
    message = english(next(p for p in swapped if p.event_id == first.id))
    assert f"holds a body written for case:{trail['second']}" in message
    assert "swapped between cases" in message


def test_streams_swapped_between_cases_are_named(service, trail, kept) -> None:
    source, target = trace.case_stream(trail["first"]), trace.case_stream(trail["second"])
    with insider(service) as conn:
        for statement in ("UPDATE trace_events SET seq = -2 WHERE stream = :target AND seq = 2",
                          "UPDATE trace_events SET stream = :target WHERE stream = :source AND seq = 2",
                          "UPDATE trace_events SET stream = :source, seq = 2 WHERE stream = :target AND seq = -2"):
            conn.execute(text(statement), {"source": source, "target": target})
    report = verify(service, kept)
    assert {(p.kind, p.stream, p.seq) for p in report.problems} == {(SWAPPED, source, 2), (SWAPPED, target, 2)}


# signatures


def test_changed_checkpoint_field_invalidates_signature(service, kept) -> None:
    report = verify(service, {**kept, "size": kept["size"] - 1})
    assert SIGNATURE_INVALID in kinds(report)
    assert "changed after signing" in english(named(report, SIGNATURE_INVALID)[0])


def test_wrong_signature_is_rejected(service, kept) -> None:
    signature = ("0" if kept["signature"][0] != "0" else "1") + kept["signature"][1:]
    report = verify(service, {**kept, "signature": signature})
    assert kinds(report) == {SIGNATURE_INVALID}


def test_checkpoint_of_another_key_is_rejected(service, kept) -> None:
    other = Ed25519PrivateKey.generate()
    foreign = resigned(kept, other)
    report = verify(service, foreign)
    assert kinds(report) == {UNKNOWN_KEY}
    assert f"signed with key {foreign['key_id']}" in english(report.problems[0])
    # An auditor who trusts that key explicitly (after a key change, say) can still use the checkpoint.
    assert verify(service, foreign, [other.public_key()]).ok


def test_key_id_must_belong_to_public_key(service, kept) -> None:
    report = verify(service, {**kept, "key_id": "0" * 16})
    assert SIGNATURE_INVALID in kinds(report)


def test_forged_checkpoint_over_rewritten_log_is_rejected(service, trail, kept) -> None:
    """Rewriting the trace and signing a fresh root with a new key fails on the key, not just the root."""
    target = event_at(service, trail["first"], 4)
    with insider(service) as conn:
        conn.execute(update(trace_events).where(trace_events.c.id == target.id)
                     .values(body=rewritten(target, actor="forger")))
    report = verify(service, resigned(kept, Ed25519PrivateKey.generate()))
    assert {UNKNOWN_KEY, EDITED, ROOT_MISMATCH} <= kinds(report)


@pytest.mark.parametrize(("change", "field"), [
    ({"format": "other"}, "format"), ({"size": -1}, "size"), ({"root": "zz"}, "root"),
    ({"signature": 5}, "signature"), ({"public_key": "not a key"}, "public_key"),
])
def test_malformed_checkpoint_is_invalid_input(service, kept, change, field) -> None:
    with pytest.raises(InvalidInput) as caught:
        verify(service, {**kept, **change})
    assert field in str(caught.value)


# inclusion proofs


def test_inclusion_proof_checks_offline(service, trail, kept) -> None:
    target = event_at(service, trail["first"], 3)
    document = json.loads(json.dumps(prove(service, target.id)))
    assert document["checkpoint"] == kept
    assert document["event"]["body"].encode("utf-8") == bytes(target.body)
    assert len(audit.list_checkpoints(service)) == 1

    result = check_proof(document)
    assert result.ok, [english(p) for p in result.problems]
    assert (result.event_id, result.stream, result.seq) == (target.id, f"case:{trail['first']}", 3)
    trusted = signing.parse_public_key(kept["public_key"])
    assert check_proof(document, [trusted]).ok


def test_inclusion_proof_fails_for_changed_event_text(service, trail, kept) -> None:
    document = prove(service, event_at(service, trail["first"], 4).id)
    assert "第0步" in document["event"]["body"]
    document["event"]["body"] = document["event"]["body"].replace("第0步", "第9步")
    result = check_proof(document)
    assert {p.kind for p in result.problems} == {EDITED, ROOT_MISMATCH}
    assert "the event text was changed" in english(result.problems[0])


def test_inclusion_proof_fails_for_changed_path_or_label(service, trail, kept) -> None:
    document = prove(service, event_at(service, trail["first"], 3).id)
    damaged = json.loads(json.dumps(document))
    damaged["audit_path"][0] = "0" * 64
    assert {p.kind for p in check_proof(damaged).problems} == {ROOT_MISMATCH}
    relabelled = json.loads(json.dumps(document))
    relabelled["event"]["seq"] = 1
    assert {p.kind for p in check_proof(relabelled).problems} == {EDITED}


def test_inclusion_proof_rejects_other_trusted_key(service, trail, kept) -> None:
    document = prove(service, event_at(service, trail["first"], 3).id)
    result = check_proof(document, [Ed25519PrivateKey.generate().public_key()])
    assert {p.kind for p in result.problems} == {UNKNOWN_KEY}


def test_proof_of_newer_event_creates_checkpoint(service, trail, kept) -> None:
    staff = add_user(service, "late", ["staff"])
    service.complete(service.get_case(trail["second"])["tasks"][-1]["id"], staff, {"note": "后来"})
    newest = event_rows(service)[-1]
    document = prove(service, newest.id)
    assert document["checkpoint"]["size"] > kept["size"]
    assert document["position"] == document["checkpoint"]["size"] - 1
    assert len(audit.list_checkpoints(service)) == 2
    assert check_proof(document).ok


def test_proof_of_missing_event_is_not_found(service, kept) -> None:
    with pytest.raises(NotFound, match="Trace event 999999 does not exist"):
        prove(service, 999999)


def test_proof_refused_for_edited_event(service, trail, kept) -> None:
    target = event_at(service, trail["first"], 3)
    with insider(service) as conn:
        conn.execute(update(trace_events).where(trace_events.c.id == target.id)
                     .values(body=rewritten(target, actor="forger")))
    with pytest.raises(Conflict, match="was changed after it was sealed"):
        prove(service, target.id)


def test_malformed_proof_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="format"):
        check_proof({"format": "liuhen-checkpoint", "version": 1})
    with pytest.raises(InvalidInput, match="checkpoint"):
        check_proof({"format": "liuhen-inclusion-proof", "version": 1})


# concurrency


def test_concurrent_sealers_give_each_event_one_position(service, trail) -> None:
    """Two service objects seal while a third writes; the log stays dense, ordered and complete."""
    sealers = [Liuhen(service.settings, clock=service.clock) for _ in range(2)]
    writer = Liuhen(service.settings, clock=service.clock)
    staff = add_user(service, "busy", ["staff"])
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def seal_repeatedly(liuhen: Liuhen) -> None:
        start.wait()
        try:
            for _ in range(6):
                create_checkpoint(liuhen)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    def write_cases() -> None:
        start.wait()
        try:
            for _ in range(4):
                case_id = writer.start_case("three_steps", staff)["id"]
                for _ in range(3):
                    writer.complete(writer.get_case(case_id)["tasks"][-1]["id"], staff, {"note": "并发"})
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=seal_repeatedly, args=(liuhen,)) for liuhen in sealers]
    threads.append(threading.Thread(target=write_cases))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for liuhen in (*sealers, writer):
        liuhen.db.dispose()
    assert errors == []

    create_checkpoint(service)
    with service.db.engine.connect() as conn:
        log = conn.execute(select(audit_log.c.position, audit_log.c.event_id).order_by(audit_log.c.position)).all()
        event_ids = conn.execute(select(trace_events.c.id).order_by(trace_events.c.id)).scalars().all()
        issued = conn.execute(select(func.count()).select_from(checkpoints)).scalar_one()
    assert [entry.position for entry in log] == list(range(len(log)))
    assert [entry.event_id for entry in log] == event_ids
    assert issued == 13
    for document in audit.list_checkpoints(service):
        report = verify(service, {key: value for key, value in document.items() if key != "id"})
        assert report.ok, [english(p) for p in report.problems]


def test_seal_waits_for_uncommitted_events(service, trail) -> None:
    if service.db.is_sqlite:
        pytest.skip("SQLite admits one writer at a time, so no event can be uncommitted during a seal")
    create_checkpoint(service)
    with service.db.engine.connect() as writer:
        transaction = writer.begin()
        trace.append(writer, trace.SYSTEM_STREAM, [trace.NewEvent("definition_deployed", "designer", service.now())])
        with service.db.engine.connect() as sealer, sealer.begin():
            sealer.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
            with pytest.raises(DBAPIError, match="lock timeout"):
                seal(sealer, service.now())
        transaction.commit()
    with service.db.write() as conn:
        assert seal(conn, service.now()) == 1


# HTTP


@pytest.fixture
def api(service: Liuhen, trail: dict[str, int]) -> Iterator[httpx.Client]:
    add_user(service, "auditor", ["auditor"])
    add_user(service, "clerk", ["staff"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30, headers={"Accept-Language": "en"}) as client:
        yield client


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_http_checkpoint_verify_and_proof(api, service, trail) -> None:
    auditor = login(api, "auditor")
    created = api.post("/api/audit/checkpoints", headers=auditor)
    assert created.status_code == 201, created.text
    kept = created.json()
    assert "id" not in kept

    listed = api.get("/api/audit/checkpoints", headers=auditor).json()
    assert [(entry["id"], entry["root"]) for entry in listed] == [(1, kept["root"])]

    clean = api.post("/api/audit/verify", json=kept, headers=auditor)
    assert clean.status_code == 200, clean.text
    assert clean.json()["ok"] is True
    assert clean.json()["log_size"] == kept["size"]

    target = event_at(service, trail["first"], 4)
    proof = api.get(f"/api/audit/events/{target.id}/proof", headers=auditor)
    assert proof.status_code == 200, proof.text
    assert check_proof(proof.json()).ok

    with insider(service) as conn:
        conn.execute(update(trace_events).where(trace_events.c.id == target.id)
                     .values(body=rewritten(target, actor="forger")))
    tampered = api.post("/api/audit/verify", json=kept, headers=auditor).json()
    assert tampered["ok"] is False
    edited = next(p for p in tampered["problems"] if p["kind"] == EDITED)
    assert (edited["event_id"], edited["stream"], edited["seq"]) == (target.id, target.stream, 4)
    assert "was edited after it was sealed" in edited["message"]


def test_http_audit_needs_auditor_or_admin(api) -> None:
    clerk = login(api, "clerk")
    assert api.post("/api/audit/checkpoints", headers=clerk).status_code == 403
    assert api.get("/api/audit/checkpoints", headers=clerk).status_code == 403
    assert api.get("/api/audit/events/1/proof", headers=clerk).status_code == 403
    assert api.get("/api/audit/checkpoints").status_code == 401


def test_http_rejects_foreign_and_malformed_checkpoints(api, service) -> None:
    auditor = login(api, "auditor")
    kept = api.post("/api/audit/checkpoints", headers=auditor).json()
    foreign = api.post("/api/audit/verify", json=resigned(kept, Ed25519PrivateKey.generate()), headers=auditor)
    assert foreign.status_code == 200
    assert [p["kind"] for p in foreign.json()["problems"]] == [UNKNOWN_KEY]

    missing = api.post("/api/audit/verify", json={k: v for k, v in kept.items() if k != "root"}, headers=auditor)
    assert missing.status_code == 422
    wrong = api.post("/api/audit/verify", json={**kept, "root": "abc"}, headers=auditor)
    assert wrong.status_code == 422
    assert "root" in wrong.json()["error"]["message"]
    absent = api.get("/api/audit/events/999999/proof", headers=auditor)
    assert absent.status_code == 404


# command line


def run_cli(home: Path, *args: str, lang: str | None = "en") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIUHEN_DATA_DIR": str(home)}
    env.pop("LIUHEN_DATABASE_URL", None)
    env.pop("LIUHEN_SIGNING_KEY_PATH", None)
    if lang:
        env["LIUHEN_LOCALE"] = lang
    else:
        env.pop("LIUHEN_LOCALE", None)
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_checkpoint_verify_and_proof_round_trip(tmp_path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "migrate").returncode == 0
    flowchart = tmp_path / "three.bpmn"
    flowchart.write_bytes(THREE_STEPS)
    other = tmp_path / "two.bpmn"
    other.write_bytes(sequence("two_steps", ["A", "B"]))
    deployed = run_cli(home, "deploy", str(flowchart), str(other))
    assert deployed.returncode == 0, deployed.stderr

    kept = tmp_path / "kept" / "checkpoint.json"
    kept.parent.mkdir()
    created = run_cli(home, "checkpoint", "create", "--output", str(kept))
    assert created.returncode == 0, created.stderr
    assert "Checkpoint of 2 trace events" in created.stdout
    assert json.loads(kept.read_text(encoding="utf-8"))["size"] == 2
    assert (home / "signing-key.pem").stat().st_mode & 0o777 == 0o600

    verified = run_cli(home, "audit", "verify", "--checkpoint", str(kept))
    assert verified.returncode == 0, verified.stderr
    assert "every event it covers is unchanged and in order" in verified.stdout
    chinese = run_cli(home, "audit", "verify", "--checkpoint", str(kept), lang=None)
    assert chinese.returncode == 0, chinese.stderr
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.stdout), chinese.stdout

    public = tmp_path / "kept" / "public.pem"
    exported = run_cli(home, "keys", "export-public", "--output", str(public))
    assert exported.returncode == 0, exported.stderr
    proof = tmp_path / "kept" / "proof.json"
    proved = run_cli(home, "audit", "prove", "1", "--output", str(proof))
    assert proved.returncode == 0, proved.stderr
    checked = run_cli(tmp_path / "elsewhere", "audit", "check-proof", str(proof), "--public-key", str(public))
    assert checked.returncode == 0, checked.stderr
    assert "The proof is valid: trace event 1 (system #1)" in checked.stdout
    assert not (tmp_path / "elsewhere").exists()

    with contextlib.closing(sqlite3.connect(home / "liuhen.db")) as db:
        db.execute("DROP TRIGGER trace_events_no_update")
        db.execute("UPDATE trace_events SET body = CAST(replace(CAST(body AS TEXT), 'three_steps', 'four_steps') "
                   "AS BLOB) WHERE id = 1")
        db.commit()
    failed = run_cli(home, "audit", "verify", "--checkpoint", str(kept))
    assert failed.returncode == 1
    assert "[edited] Trace event 1 (system #1) was edited after it was sealed" in failed.stderr
    assert "Verification against the checkpoint of 2 events failed" in failed.stderr

    document = json.loads(proof.read_text(encoding="utf-8"))
    document["event"]["body"] = document["event"]["body"].replace("cli:", "xx:")
    proof.write_text(json.dumps(document), encoding="utf-8")
    rejected = run_cli(tmp_path, "audit", "check-proof", str(proof))
    assert rejected.returncode == 1
    assert "the event text was changed" in rejected.stderr


def test_cli_reports_unreadable_checkpoint(tmp_path) -> None:
    missing = run_cli(tmp_path, "audit", "verify", "--checkpoint", str(tmp_path / "none.json"))
    assert missing.returncode == 1
    assert "none.json: cannot be read" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert "is not valid JSON" in run_cli(tmp_path, "audit", "check-proof", str(broken)).stderr


def test_clock_moves_created_at(service, trail, clock) -> None:
    clock.advance(timedelta(days=2))
    assert create_checkpoint(service)["created_at"] == "2026-12-03T01:00:00.000000Z"
