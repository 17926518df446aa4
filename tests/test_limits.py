"""Request body limits over a real uvicorn server, and sign-in throttling counted in the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from engine.clock import ManualClock
from engine.db import cases, login_attempts
from engine.i18n import translate
from engine.service import Liuhen
from engine.settings import Settings
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, LiveServer, add_user

REQUEST_LIMIT = 2048
UPLOAD_LIMIT = 8192
MULTIPART_OVERHEAD = 64 * 1024
MAX_FAILURES = 3
MAX_FAILURES_PER_ADDRESS = 5
WINDOW = timedelta(minutes=10)


@pytest.fixture
def limited(settings: Settings, clock: ManualClock) -> Iterator[Liuhen]:
    """A service with small limits, so a test reaches them with a few requests."""
    tight = settings.model_copy(update={
        "max_request_bytes": REQUEST_LIMIT, "max_upload_bytes": UPLOAD_LIMIT, "login_max_failures": MAX_FAILURES,
        "login_max_failures_per_address": MAX_FAILURES_PER_ADDRESS,
        "login_window_seconds": int(WINDOW.total_seconds()),
    })
    service = Liuhen(tight, clock=clock)
    add_user(service, "clerk", ["staff"], ["受理窗口"])
    service.deploy(sequence("plain", ["A"]), "plain.bpmn", DESIGNER)
    yield service
    service.db.dispose()


@pytest.fixture
def server(limited: Liuhen) -> Iterator[httpx.Client]:
    with LiveServer(create_app(limited.settings, limited)) as live, \
            httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def bearer(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def case_count(service: Liuhen) -> int:
    with service.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(cases)).scalar_one())


# Request body limits.

def test_declared_json_body_over_limit(server: httpx.Client, limited: Liuhen) -> None:
    headers = {**bearer(server, "clerk"), "Accept-Language": "en"}
    body = {"process_id": "plain", "title": "x", "data": {"note": "字" * REQUEST_LIMIT}}

    response = server.post("/api/cases", json=body, headers=headers)

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large"
    assert f"over the limit of {REQUEST_LIMIT} bytes" in error["message"]
    assert "LIUHEN_MAX_REQUEST_BYTES" in error["message"]
    assert error["details"] == {"limit": REQUEST_LIMIT, "setting": "LIUHEN_MAX_REQUEST_BYTES"}
    assert case_count(limited) == 0


def test_chunked_json_body_over_limit(server: httpx.Client, limited: Liuhen) -> None:
    headers = {**bearer(server, "clerk"), "Content-Type": "application/json", "Accept-Language": "en"}
    payload = b'{"process_id": "plain", "data": {"note": "' + b"x" * (REQUEST_LIMIT * 2) + b'"}}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 512):
            yield payload[start:start + 512]

    response = server.post("/api/cases", content=chunks(), headers=headers)

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large"
    assert error["message"] == (f"The request body is over the limit of {REQUEST_LIMIT} bytes for this endpoint; "
                                "send a smaller body. The server setting LIUHEN_MAX_REQUEST_BYTES sets the limit.")
    assert case_count(limited) == 0


def test_body_limit_message_in_chinese(server: httpx.Client) -> None:
    response = server.post("/api/auth/login", content=b"{" + b" " * REQUEST_LIMIT + b"}",
                           headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["error"]["message"] == translate(
        "zh_CN", "The request body is {size} bytes, over the limit of {limit} bytes for this endpoint; send a "
                 "smaller body. The server setting {setting} sets the limit.",
        size=REQUEST_LIMIT + 2, limit=REQUEST_LIMIT, setting="LIUHEN_MAX_REQUEST_BYTES")


def test_json_body_under_limit_works(server: httpx.Client, limited: Liuhen) -> None:
    body = {"process_id": "plain", "title": "x", "data": {"note": "x" * (REQUEST_LIMIT // 2)}}

    response = server.post("/api/cases", json=body, headers=bearer(server, "clerk"))

    assert response.status_code == 201, response.text
    assert case_count(limited) == 1


def test_form_login_has_request_limit(server: httpx.Client) -> None:
    response = server.post("/login", data={"username": "clerk", "password": "x" * (REQUEST_LIMIT * 2)})

    assert response.status_code == 413


def test_form_over_limit_gets_error_page(server: httpx.Client) -> None:
    # A browser posting the sign-in form gets the error page in its language, not a JSON document.
    headers = {"Accept": "text/html,application/xhtml+xml", "Accept-Language": "zh-CN"}
    declared = server.post("/login", data={"username": "clerk", "password": "x" * (REQUEST_LIMIT * 2)},
                           headers=headers)

    def chunks() -> Iterator[bytes]:
        yield b"username=clerk&password="
        for _ in range(REQUEST_LIMIT // 256 + 2):
            yield b"x" * 512

    streamed = server.post("/login", content=chunks(),
                           headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("text/html")
        assert "LIUHEN_MAX_REQUEST_BYTES" in response.text
        assert "请求体" in response.text


def test_upload_has_its_own_limit(server: httpx.Client, limited: Liuhen) -> None:
    add_user(limited, "designer", ["designer"])
    headers = {**bearer(server, "designer"), "Content-Type": "application/xml", "Accept-Language": "en"}
    # Over the JSON limit but within the upload limit: a BPMN file with a long comment.
    content = sequence("upload", ["A"]).replace(b"<bpmn:process", b"<!--" + b"x" * 4000 + b"--><bpmn:process")
    too_large = b" " * (UPLOAD_LIMIT + MULTIPART_OVERHEAD + 1)

    accepted = server.post("/api/definitions", params={"filename": "upload.bpmn"}, content=content, headers=headers)
    refused = server.post("/api/definitions", params={"filename": "big.bpmn"}, content=too_large, headers=headers)

    assert len(content) > REQUEST_LIMIT
    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 413
    assert refused.json()["error"]["details"]["setting"] == "LIUHEN_MAX_UPLOAD_BYTES"


# Sign-in throttling.

def login(client: TestClient, username: str, password: str | None = None) -> httpx.Response:
    return client.post("/api/auth/login", json={"username": username,
                                                "password": password or f"pw-{username}-secret"},
                       headers={"Accept-Language": "en"})


def attempts(service: Liuhen) -> int:
    with service.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(login_attempts)).scalar_one())


@pytest.fixture
def api(limited: Liuhen) -> Iterator[TestClient]:
    with TestClient(create_app(limited.settings, limited)) as client:
        yield client


def test_failures_for_username_throttle(api: TestClient, clock: ManualClock) -> None:
    for _ in range(MAX_FAILURES):
        assert login(api, "clerk", "wrong-password").status_code == 401
    clock.advance(timedelta(minutes=4))

    refused = login(api, "clerk")

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "360"
    error = refused.json()["error"]
    assert error["code"] == "too_many_attempts"
    assert error["message"] == ("Too many failed sign-ins for user clerk; try again after 2026-12-01 09:10:00 "
                                "Beijing time, in 360 seconds.")
    assert error["details"]["retry_after"] == 360


def test_throttle_lifts_after_window(api: TestClient, clock: ManualClock) -> None:
    for _ in range(MAX_FAILURES):
        login(api, "clerk", "wrong-password")
    assert login(api, "clerk").status_code == 429

    clock.advance(WINDOW)

    assert login(api, "clerk").status_code == 200


def test_success_resets_username_count(api: TestClient) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert login(api, "clerk", "wrong-password").status_code == 401
    assert login(api, "clerk").status_code == 200
    for _ in range(MAX_FAILURES - 1):
        assert login(api, "clerk", "wrong-password").status_code == 401

    assert login(api, "clerk").status_code == 200


def test_refused_attempts_are_not_counted(api: TestClient, limited: Liuhen) -> None:
    for _ in range(MAX_FAILURES):
        login(api, "clerk", "wrong-password")
    recorded = attempts(limited)

    for _ in range(3):
        assert login(api, "clerk", "wrong-password").status_code == 429

    assert attempts(limited) == recorded


def test_failures_from_address_throttle(api: TestClient) -> None:
    # Different usernames from one address: each stays under the per-user limit.
    for index in range(MAX_FAILURES_PER_ADDRESS):
        assert login(api, f"guess{index}", "wrong-password").status_code == 401

    refused = login(api, "clerk")

    assert refused.status_code == 429
    assert refused.json()["error"]["message"].startswith("Too many failed sign-ins from address testclient;")
    assert int(refused.headers["Retry-After"]) == WINDOW.total_seconds()


def test_success_keeps_address_count(api: TestClient) -> None:
    for index in range(MAX_FAILURES_PER_ADDRESS - 1):
        login(api, f"guess{index}", "wrong-password")
    assert login(api, "clerk").status_code == 200

    assert login(api, "other", "wrong-password").status_code == 401
    assert login(api, "clerk").status_code == 429


def test_throttle_holds_across_processes(limited: Liuhen, clock: ManualClock) -> None:
    # A second service object on the same database stands for a second API process.
    other = Liuhen(limited.settings, clock=clock)
    try:
        with TestClient(create_app(limited.settings, limited)) as first, \
                TestClient(create_app(other.settings, other)) as second:
            for client in (first, second, first):
                assert login(client, "clerk", "wrong-password").status_code == 401

            assert login(second, "clerk").status_code == 429
            assert login(first, "clerk").status_code == 429
    finally:
        other.db.dispose()


def test_old_attempts_are_pruned(api: TestClient, limited: Liuhen, clock: ManualClock) -> None:
    login(api, "clerk", "wrong-password")
    login(api, "clerk")
    assert attempts(limited) == 2

    clock.advance(WINDOW + timedelta(seconds=1))
    login(api, "clerk")

    assert attempts(limited) == 1


def test_sign_in_page_is_throttled(api: TestClient) -> None:
    for _ in range(MAX_FAILURES):
        page = api.post("/login", data={"username": "clerk", "password": "wrong-password"},
                        headers={"Accept-Language": "en"}, follow_redirects=False)
        assert page.status_code == 401

    refused = api.post("/login", data={"username": "clerk", "password": "pw-clerk-secret"},
                       headers={"Accept-Language": "en"}, follow_redirects=False)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(int(WINDOW.total_seconds()))
    assert "Too many failed sign-ins for user clerk" in refused.text


def test_long_username_on_sign_in_page(api: TestClient) -> None:
    response = api.post("/login", data={"username": "u" * 500, "password": "wrong-password"},
                        follow_redirects=False)

    assert response.status_code == 401


def test_failed_sign_in_keeps_username(api: TestClient) -> None:
    page = api.post("/login", data={"username": "clerk", "password": "wrong-password"}, follow_redirects=False)

    assert page.status_code == 401
    assert 'name="username" autocomplete="username" required value="clerk"' in page.text
    # The password is never written back into the page.
    assert "wrong-password" not in page.text
