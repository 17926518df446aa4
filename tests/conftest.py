"""Shared fixtures: a migrated database per test on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import create_engine, text

from engine.clock import ManualClock
from engine.db import Database
from engine.migrate import upgrade
from engine.service import Liuhen
from engine.settings import Settings
from engine.users import Actor, create_user

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
SHARED = ROOT.parent / "shared"
POSTGRES_URL = os.environ.get("LIUHEN_TEST_POSTGRES_URL")
START = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)

DESIGNER = Actor("designer", "设计员", frozenset({"designer"}))
ADMIN = Actor("admin", "管理员", frozenset({"admin"}))


def _backends() -> list:
    backends = [pytest.param("sqlite", id="sqlite")]
    backends.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))
    return backends


@contextlib.contextmanager
def migrated_database(backend: str, folder: Path, name: str = "liuhen") -> Iterator[str]:
    """Give a freshly migrated, empty database: a SQLite file in ``folder``, or a private PostgreSQL schema."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / f'{name}.db'}"
        upgrade(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip("LIUHEN_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty database: a SQLite file, or a private PostgreSQL schema."""
    with migrated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path, processes_dir=PROCESSES)


@pytest.fixture
def service(settings: Settings, clock: ManualClock) -> Iterator[Liuhen]:
    liuhen = Liuhen(settings, clock=clock)
    yield liuhen
    liuhen.db.dispose()


def add_user(service: Liuhen, username: str, roles: list[str], posts: list[str] | None = None,
             department: str | None = None) -> Actor:
    with service.db.write() as conn:
        return create_user(conn, username=username, display_name=username, password=f"pw-{username}-secret",
                           roles=roles, posts=posts or [], department=department, now=service.now())


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread.

    The listening socket is bound before the thread starts, so requests sent right away wait in the
    kernel's backlog until uvicorn accepts them; no test has to poll or sleep for start-up.
    """

    def __init__(self, app: object) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()
