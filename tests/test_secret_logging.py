"""No password, login token or database password reaches a log record, even with every logger at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from api.app import create_app
from api.cli import main
from engine.clock import ManualClock
from engine.service import Liuhen
from engine.settings import Settings
from tests.conftest import LiveServer, add_user

DATABASE_PASSWORD = "db-pass-7Qx2"
ADMIN_PASSWORD = "pw-admin-secret"
FIRST_PASSWORD = "first-Secret-9931"
SECOND_PASSWORD = "second-Secret-4410"
WRONG_PASSWORD = "wrong-Secret-5521"
# The test's own HTTP client logs the headers it sends and receives at DEBUG, the sign-in cookie included.
# It runs in this process but is no part of the server, so its records are left out.
CLIENT_LOGGERS = ("httpx", "httpcore")


class Capture(logging.Handler):
    """Keep every record with all its text: message, arguments, extra fields and traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(CLIENT_LOGGERS):
            return
        texts = [record.getMessage(), repr(record.args)]
        texts.extend(repr(value) for value in vars(record).values())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
        self.texts.append("\n".join(texts))


@pytest.fixture
def capture() -> Iterator[Capture]:
    """Set every logger, the root and uvicorn's access log included, to DEBUG and collect their records."""
    handler = Capture()
    root = logging.getLogger()
    saved = {name: (logger.level, logger.propagate) for name, logger in logging.root.manager.loggerDict.items()
             if isinstance(logger, logging.Logger)}
    root_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in saved:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
    yield handler
    root.removeHandler(handler)
    root.setLevel(root_level)
    for name, (level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def secret_settings(settings: Settings) -> Settings:
    """The test database, with a password in its URL where the server accepts one (PostgreSQL, trust auth)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password=DATABASE_PASSWORD)
    return settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})


class DebugServer(LiveServer):
    """The usual test server, logging at DEBUG through the root logger, with the access log on."""

    def __init__(self, app: object) -> None:
        super().__init__(app)
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="debug", access_log=True))
        # The parent's configuration gave uvicorn's loggers handlers of their own that do not propagate.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            logger.handlers = []
            logger.propagate = True


def sign_in(client: httpx.Client, username: str, password: str) -> str:
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def exercise(client: httpx.Client) -> list[str]:
    """Sign in, create a user, change a password and use every token; return the tokens issued."""
    admin = sign_in(client, "admin", ADMIN_PASSWORD)
    headers = {"Authorization": f"Bearer {admin}"}
    created = client.post("/api/users", headers=headers, json={
        "username": "chen_jing", "display_name": "陈静", "password": FIRST_PASSWORD, "roles": ["staff"],
        "posts": ["受理窗口"], "department": "基础教育股"})
    assert created.status_code == 201, created.text
    first = sign_in(client, "chen_jing", FIRST_PASSWORD)

    changed = client.post("/api/users/chen_jing/password", headers=headers, json={"password": SECOND_PASSWORD})
    assert changed.status_code == 204, changed.text
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    wrong = client.post("/api/auth/login", json={"username": "chen_jing", "password": WRONG_PASSWORD})
    assert wrong.status_code == 401
    too_short = client.post("/api/users/chen_jing/password", headers=headers, json={"password": "short"})
    assert too_short.status_code == 422
    second = sign_in(client, "chen_jing", SECOND_PASSWORD)
    assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {second}"}).status_code == 200
    assert client.get("/api/tasks", headers={"Authorization": f"Bearer {second}"}).status_code == 200

    page = client.post("/login", data={"username": "chen_jing", "password": SECOND_PASSWORD, "next": "/workspace"})
    assert page.status_code == 303
    cookie = page.cookies["liuhen_token"]
    client.cookies.set("liuhen_token", cookie)
    assert client.get("/workspace/tasks").status_code == 200
    client.cookies.clear()
    assert client.post("/api/auth/logout", headers={"Authorization": f"Bearer {second}"}).status_code == 204
    return [admin, first, second, cookie]


def leaks(texts: list[str], secrets: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, text[:200]) for text in texts for name, secret in secrets.items() if secret in text]


def test_no_secret_in_logs(capture: Capture, secret_settings: Settings, clock: ManualClock,
                           capsys: pytest.CaptureFixture[str]) -> None:
    service = Liuhen(secret_settings, clock=clock)
    add_user(service, "admin", ["admin"])
    try:
        with DebugServer(create_app(secret_settings, service)) as server, \
                httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
            tokens = exercise(client)
    finally:
        service.db.dispose()

    secrets: dict[str, Any] = {"admin password": ADMIN_PASSWORD, "first password": FIRST_PASSWORD,
                               "second password": SECOND_PASSWORD, "wrong password": WRONG_PASSWORD,
                               "database password": DATABASE_PASSWORD}
    secrets.update({f"token {index}": token for index, token in enumerate(tokens)})
    printed = capsys.readouterr()
    assert any("liuhen API ready" in text for text in capture.texts)
    assert any("INSERT INTO auth_tokens" in text for text in capture.texts), "SQL statements were not logged"
    assert any("POST /api/auth/login" in text for text in capture.texts), "the access log was not captured"
    assert leaks(capture.texts, secrets) == []
    assert leaks([printed.out, printed.err], secrets) == []


def test_migrate_masks_database_password(capture: Capture, secret_settings: Settings,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LIUHEN_DATABASE_URL", secret_settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(secret_settings.data_dir))

    assert main(["--lang", "en", "migrate"]) == 0

    printed = capsys.readouterr()
    assert "is migrated to the newest schema" in printed.out
    assert DATABASE_PASSWORD not in printed.out + printed.err
    assert leaks(capture.texts, {"database password": DATABASE_PASSWORD}) == []
