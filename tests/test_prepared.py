"""Prepared statements write and read the same values as Connection.execute, inside the caller's transaction."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError, InvalidRequestError

from engine import trace
from engine.db import case_tasks, cases, trace_events
from engine.prepared import PreparedStatement
from engine.service import _OPEN_TASKS_OF_CASE, _TASK_AND_CASE, Liuhen
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, add_user


@pytest.fixture
def case(service: Liuhen) -> dict:
    staff = add_user(service, "staff", ["staff"])
    service.deploy(sequence("two_steps", ["A", "B"], fields=[("note", "string")]), "two.bpmn", DESIGNER)
    return service.start_case("two_steps", staff, {"note": "申请材料", "amount": 12.5}, title="示例办件")


def test_select_rows_match_execute(service: Liuhen, case: dict) -> None:
    task_id = case["tasks"][0]["id"]
    with service.db.read() as conn:
        expected = conn.execute(_TASK_AND_CASE, {"task_id": task_id}).one()
        row = PreparedStatement(_TASK_AND_CASE).first(conn, {"task_id": task_id})
        open_tasks = PreparedStatement(_OPEN_TASKS_OF_CASE).all(conn, {"case_id": case["id"]})
        expected_tasks = conn.execute(_OPEN_TASKS_OF_CASE, {"case_id": case["id"]}).all()

    assert tuple(row) == tuple(expected)
    assert row._fields == tuple(expected._fields)
    assert row.data == expected.data
    assert row.started_at == expected.started_at
    assert row.task_element_id == "A"
    assert bytes(row.state) == bytes(expected.state)
    assert [tuple(task) for task in open_tasks] == [tuple(task) for task in expected_tasks]


def test_insert_values_read_back_through_execute(service: Liuhen, case: dict) -> None:
    moment = datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=UTC)
    statement = PreparedStatement(insert(case_tasks))
    with service.db.write() as conn:
        statement.run_many(conn, [
            {"id": f"00000000-0000-4000-8000-00000000000{index}", "case_id": case["id"], "element_id": "X",
             "name": "补正", "lane": None, "status": "ready", "created_at": moment + timedelta(seconds=index)}
            for index in range(2)
        ])
    with service.db.read() as conn:
        rows = conn.execute(select(case_tasks).where(case_tasks.c.element_id == "X")
                            .order_by(case_tasks.c.created_at)).all()

    assert [row.name for row in rows] == ["补正", "补正"]
    assert [row.created_at.replace(tzinfo=UTC) for row in rows] == [moment, moment + timedelta(seconds=1)]


def test_update_returns_matched_rows(service: Liuhen, case: dict) -> None:
    statement = PreparedStatement(cases.update().where(cases.c.id == bindparam("b_id"),
                                                       cases.c.revision == bindparam("b_revision")))
    with service.db.write() as conn:
        stale = statement.run(conn, {"b_id": case["id"], "b_revision": case["revision"] + 5, "title": "旧"})
        matched = statement.run(conn, {"b_id": case["id"], "b_revision": case["revision"], "title": "新标题",
                                       "data": {"note": "改"}})

    assert stale == 0
    assert matched == 1
    assert service.get_case(case["id"])["title"] == "新标题"
    assert service.get_case(case["id"])["data"] == {"note": "改"}


def test_driver_error_raises_sqlalchemy_error(service: Liuhen, case: dict) -> None:
    duplicate = {"id": case["tasks"][0]["id"], "case_id": case["id"], "element_id": "A", "name": "A", "lane": None,
                 "status": "ready", "created_at": service.now()}
    with pytest.raises(IntegrityError), service.db.write() as conn:
        PreparedStatement(insert(case_tasks)).run(conn, duplicate)


def test_statements_roll_back_with_transaction(service: Liuhen, case: dict) -> None:
    statement = PreparedStatement(cases.update().where(cases.c.id == bindparam("b_id")))
    with pytest.raises(RuntimeError), service.db.write() as conn:
        statement.run(conn, {"b_id": case["id"], "title": "未提交"})
        raise RuntimeError("abort the transaction")

    assert service.get_case(case["id"])["title"] == "示例办件"


def test_missing_parameter_rejected(service: Liuhen, case: dict) -> None:
    statement = PreparedStatement(select(cases.c.id).where(cases.c.id == bindparam("case_id"),
                                                           cases.c.status == bindparam("status")))
    with service.db.read() as conn, pytest.raises(InvalidRequestError, match="status"):
        statement.first(conn, {"case_id": case["id"]})


def test_expanding_in_list_rejected(service: Liuhen) -> None:
    statement = PreparedStatement(select(cases.c.id).where(cases.c.status.in_(("running", "completed"))))
    with service.db.read() as conn, pytest.raises(ValueError, match="literal"):
        statement.all(conn)


def test_trace_rows_match_canonical_bodies(service: Liuhen, case: dict) -> None:
    with service.db.read() as conn:
        rows = conn.execute(select(trace_events).where(trace_events.c.case_id == case["id"])
                            .order_by(trace_events.c.seq)).all()

    assert rows
    for row in rows:
        record = json.loads(bytes(row.body))
        assert trace.canonical_bytes(record) == bytes(row.body)
        assert trace.canonical_time(row.at) == record["at"]
    assert service.verify(case["id"])[0].ok


@pytest.mark.parametrize("payload", [
    {"note": "材料齐全", "amount": 12.5, "items": [1, 2.0, None, True], "nested": {"b": 1, "a": "\u2028\n\t"}},
    {"when": datetime(2026, 12, 1, tzinfo=UTC), "ratio": 1e-05, "big": 10**20, "empty": {}},
    {3: "integer keys", 10: "引号\"与反斜杠\\"},
])
def test_canonical_bytes_match_json_dumps(payload) -> None:
    record = {"format": 1, "stream": "case:1", "seq": 1, "payload": payload, "prev": trace.GENESIS}
    expected = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=str).encode("utf-8")

    assert trace.canonical_bytes(record) == expected


def test_canonical_bytes_reject_nan() -> None:
    with pytest.raises(ValueError):
        trace.canonical_bytes({"payload": {"amount": math.nan}})
