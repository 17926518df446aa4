"""Auditor queries read the replica that LIUHEN_READ_DATABASE_URL names; writes and steps stay on the primary.

The "replica" here is a second database of the same kind (a PostgreSQL schema or a SQLite file) that
the test fills with other cases than the primary, so each response shows which database it came from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from api.app import create_app
from engine.clock import ManualClock
from engine.db import Database, cases, trace_heads
from engine.errors import DatabaseNotReady
from engine.service import Liuhen
from engine.settings import Settings
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, PROCESSES, LiveServer, add_user, migrated_database

PROCESS_ID = "replica_flow"
PRIMARY_TITLE = "主库办件"
REPLICA_TITLES = ["副本办件 1", "副本办件 2"]


@pytest.fixture
def replica_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second migrated database of the same kind as ``database_url``."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    with migrated_database(backend, tmp_path, "replica") as url:
        yield url


def _fill(service: Liuhen, filename: str, titles: list[str]) -> list[int]:
    """Deploy the flow, add a clerk and start one case per title; the first case is taken to its end."""
    service.deploy(sequence(PROCESS_ID, ["Check", "Approve"]), filename, DESIGNER)
    clerk = add_user(service, "clerk", ["staff"])
    case_ids = [service.start_case(PROCESS_ID, clerk, title=title)["id"] for title in titles]
    for _step in ("Check", "Approve"):
        task_id = service.get_case(case_ids[0])["tasks"][0]["id"]
        service.complete(task_id, clerk, {})
    return case_ids


@pytest.fixture
def replicated(database_url: str, replica_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Liuhen]:
    """A service on the primary with a replica set, both filled with different cases."""
    filler = Liuhen(Settings(database_url=replica_url, data_dir=tmp_path, processes_dir=PROCESSES), clock=clock)
    _fill(filler, "replica.bpmn", REPLICA_TITLES)
    filler.db.dispose()

    settings = Settings(database_url=database_url, read_database_url=replica_url, data_dir=tmp_path,
                        processes_dir=PROCESSES)
    service = Liuhen(settings, clock=clock)
    _fill(service, "primary.bpmn", [PRIMARY_TITLE])
    add_user(service, "auditor", ["auditor"])
    yield service
    service.db.dispose()


def _titles(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(row["title"] for row in rows)


@contextlib.contextmanager
def _auditor_client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Accept-Language": "en"}, timeout=30) as client:
        login = client.post("/api/auth/login", json={"username": "auditor", "password": "pw-auditor-secret"})
        assert login.status_code == 200, login.text
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"
        yield client


def test_auditor_endpoints_read_replica(replicated: Liuhen) -> None:
    with LiveServer(create_app(replicated.settings, replicated)) as server, _auditor_client(server) as client:
        # Case 1 exists in both databases; its trace comes from the replica, the case itself from the primary.
        trace = client.get("/api/cases/1/trace")
        assert trace.status_code == 200, trace.text
        started = [event for event in trace.json() if event["kind"] == "case_started"]
        assert started[0]["payload"]["title"] == REPLICA_TITLES[0]
        assert client.get("/api/cases/1").json()["title"] == PRIMARY_TITLE

        exported = client.get("/api/exports/json")
        assert exported.status_code == 200, exported.text
        assert _titles(exported.json()) == REPLICA_TITLES

        search = client.get("/api/workspace/cases")
        assert search.status_code == 200, search.text
        assert _titles(search.json()["cases"]) == REPLICA_TITLES

        figures = client.get("/api/supervision/statistics")
        assert figures.status_code == 200, figures.text
        assert figures.json()["totals"]["cases"]["started"] == len(REPLICA_TITLES)

        board = client.get("/api/supervision/board")
        assert board.status_code == 200, board.text
        assert _titles(board.json()) == REPLICA_TITLES[1:]

        system = client.get("/api/trace/system").json()
        deployed = [event["payload"]["filename"] for event in system if event["kind"] == "definition_deployed"]
        assert deployed == ["replica.bpmn"]


def test_writes_and_verification_use_primary(replicated: Liuhen, replica_url: str, tmp_path: Path,
                                             clock: ManualClock) -> None:
    with LiveServer(create_app(replicated.settings, replicated)) as server, _auditor_client(server) as client:
        verification = client.get("/api/cases/1/verify").json()
    assert verification["ok"]
    with replicated.db.read() as conn:
        primary_head = conn.execute(select(cases.c.trace_head).where(cases.c.id == 1)).scalar_one()
    assert verification["streams"][0]["head"] == primary_head

    clerk = add_user(replicated, "second_clerk", ["staff"])
    started = replicated.start_case(PROCESS_ID, clerk, title="新办件")
    assert replicated.get_case(started["id"])["title"] == "新办件"

    replica = Liuhen(Settings(database_url=replica_url, data_dir=tmp_path, processes_dir=PROCESSES), clock=clock)
    try:
        assert sorted(case["title"] for case in replica.list_cases()) == REPLICA_TITLES
    finally:
        replica.db.dispose()


def test_replica_transactions_are_read_only(database_url: str, replica_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no read-only transactions; a SQLite replica is a copy for small set-ups")
    database = Database(database_url, read_url=replica_url)
    try:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            with database.read(replica=True) as conn:
                conn.execute(insert(trace_heads).values(stream="written-to-replica", seq=0, hash="0" * 64))
        with database.read(replica=True) as conn:
            assert conn.execute(select(trace_heads.c.stream)).scalars().all() == ["system"]
    finally:
        database.dispose()


def test_replica_absent_reads_primary(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert database.replica is None
        with database.read(replica=True) as conn:
            assert conn.execute(select(trace_heads.c.stream)).scalars().all() == ["system"]
    finally:
        database.dispose()


def test_unmigrated_replica_stops_start_up(database_url: str, tmp_path: Path) -> None:
    database = Database(database_url, read_url=f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(DatabaseNotReady) as raised:
            database.check_migrated()
    finally:
        database.dispose()
    message = raised.value.render("en")
    assert "read replica" in message
    assert "LIUHEN_READ_DATABASE_URL" in message


def test_replica_url_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIUHEN_READ_DATABASE_URL", "postgresql+psycopg://reader@replica.example/liuhen")
    monkeypatch.setenv("LIUHEN_DB_POOL_SIZE", "12")
    settings = Settings()
    assert settings.read_database_url == "postgresql+psycopg://reader@replica.example/liuhen"
    assert settings.db_pool_size == 12
