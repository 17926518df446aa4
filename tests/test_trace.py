"""The trace: hash chain verification finds every kind of tampering, and rows cannot be changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from engine.service import Liuhen
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, ROOT, add_user


@pytest.fixture
def finished_case(service: Liuhen) -> int:
    staff = add_user(service, "staff", ["staff"])
    service.deploy(sequence("three_steps", ["A", "B", "C"], fields=[("note", "string")]), "t.bpmn", DESIGNER)
    case_id = service.start_case("three_steps", staff)["id"]
    for index in range(3):
        task = service.get_case(case_id)["tasks"][0]
        service.complete(task["id"], staff, {"note": f"第{index}步"})
    return case_id


def tamper(service: Liuhen, *statements: str, **params: object) -> None:
    """Run SQL as an insider with database access would, switching off the append-only trigger first."""
    with service.db.engine.begin() as conn:
        if service.db.is_sqlite:
            conn.execute(text("DROP TRIGGER IF EXISTS trace_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS trace_events_no_delete"))
        else:
            conn.execute(text("ALTER TABLE trace_events DISABLE TRIGGER trace_events_append_only"))
        for statement in statements:
            conn.execute(text(statement), params)


def finding(service: Liuhen, case_id: int):
    report = service.verify(case_id)[0]
    assert not report.ok
    return report.finding


def test_untouched_trace_verifies(service, finished_case) -> None:
    reports = service.verify()
    assert {r.stream for r in reports} == {"system", f"case:{finished_case}"}
    assert all(r.ok for r in reports)
    events = service.case_trace(finished_case)
    assert events[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in zip(events, events[1:], strict=False))


def test_completed_event_keeps_submitted_and_previous_values(service, finished_case) -> None:
    completed = [e for e in service.case_trace(finished_case) if e["kind"] == "task_completed"]
    assert [e["payload"]["data"] for e in completed] == [{"note": "第0步"}, {"note": "第1步"}, {"note": "第2步"}]
    assert completed[1]["payload"]["previous"] == {"note": "第0步"}
    assert all(e["actor"] == "staff" and e["definition_id"] for e in completed)


def test_edited_body_is_detected(service, finished_case) -> None:
    stream = f"case:{finished_case}"
    tamper(service, "UPDATE trace_events SET body = :body WHERE stream = :s AND seq = 5",
           body=b'{"forged": true}', s=stream)
    found = finding(service, finished_case)
    assert (found.problem, found.seq) == ("edited", 5)
    assert "altered" in found.message.render("en")


def test_edited_and_rehashed_event_breaks_the_link(service, finished_case) -> None:
    import hashlib
    import json

    stream = f"case:{finished_case}"
    with service.db.engine.connect() as conn:
        body = conn.execute(text("SELECT body FROM trace_events WHERE stream = :s AND seq = 4"), {"s": stream}).scalar()
    record = json.loads(bytes(body))
    record["actor"] = "forger"
    forged = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    tamper(service,
           "UPDATE trace_events SET body = :body, hash = :hash, actor = 'forger' WHERE stream = :s AND seq = 4",
           body=forged, hash=hashlib.sha256(forged).hexdigest(), s=stream)
    found = finding(service, finished_case)
    assert (found.problem, found.seq) == ("reordered", 5)


def test_deleted_middle_event_is_detected(service, finished_case) -> None:
    tamper(service, "DELETE FROM trace_events WHERE stream = :s AND seq = 3", s=f"case:{finished_case}")
    found = finding(service, finished_case)
    assert (found.problem, found.seq) == ("missing", 4)


def test_deleted_newest_event_is_detected(service, finished_case) -> None:
    stream = f"case:{finished_case}"
    with service.db.engine.connect() as conn:
        last = conn.execute(text("SELECT max(seq) FROM trace_events WHERE stream = :s"), {"s": stream}).scalar()
    tamper(service, "DELETE FROM trace_events WHERE stream = :s AND seq = :seq", s=stream, seq=last)
    found = finding(service, finished_case)
    assert found.problem == "truncated"
    assert str(last) in found.message.render("en")


def test_inserted_event_is_detected(service, finished_case) -> None:
    stream = f"case:{finished_case}"
    tamper(service,
           "INSERT INTO trace_events (stream, seq, case_id, definition_id, kind, element_id, actor, at, body, "
           "prev_hash, hash) SELECT stream, 100, case_id, definition_id, kind, element_id, actor, at, body, "
           "prev_hash, hash FROM trace_events WHERE stream = :s AND seq = 2", s=stream)
    found = finding(service, finished_case)
    assert found.problem in ("inserted", "missing")
    assert found.seq == 100


def test_reordered_events_are_detected(service, finished_case) -> None:
    stream = f"case:{finished_case}"
    tamper(service,
           "UPDATE trace_events SET seq = -1 WHERE stream = :s AND seq = 3",
           "UPDATE trace_events SET seq = 3 WHERE stream = :s AND seq = 4",
           "UPDATE trace_events SET seq = 4 WHERE stream = :s AND seq = -1", s=stream)
    found = finding(service, finished_case)
    assert found.seq == 3
    assert found.problem == "inserted"


def test_event_moved_between_cases_is_detected(service, finished_case) -> None:
    staff = add_user(service, "other", ["staff"])
    second = service.start_case("three_steps", staff)["id"]
    # Swap event 2 of the two cases.
    tamper(service,
           "UPDATE trace_events SET seq = -2 WHERE stream = :target AND seq = 2",
           "UPDATE trace_events SET stream = :target WHERE stream = :source AND seq = 2",
           "UPDATE trace_events SET stream = :source, seq = 2 WHERE stream = :target AND seq = -2",
           target=f"case:{second}", source=f"case:{finished_case}")
    assert not service.verify(finished_case)[0].ok
    assert not service.verify(second)[0].ok


@pytest.mark.parametrize("statement", ["UPDATE trace_events SET actor = 'x'", "DELETE FROM trace_events"])
def test_database_rejects_changes_to_trace(service, finished_case, statement) -> None:
    with pytest.raises(DatabaseError, match="append-only"):
        with service.db.engine.begin() as conn:
            conn.execute(text(statement))
    assert service.verify(finished_case)[0].ok


def test_no_code_path_updates_or_deletes_trace_rows() -> None:
    pattern = re.compile(r"(update|delete)\(\s*trace_events|(UPDATE|DELETE FROM)\s+trace_events", re.IGNORECASE)
    offenders = []
    for folder in ("engine", "api", "diagrams"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
    assert Path(ROOT / "engine" / "trace.py").exists()
