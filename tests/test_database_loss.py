"""Losing PostgreSQL: 503 with a stable code, recovery on the next request, exactly-once retries.

A TCP proxy on 127.0.0.1 sits between the API and the shared PostgreSQL server, so a test can cut the
connection at a chosen statement without touching the server itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from api.app import create_app
from engine.db import DatabaseUnavailable, idempotent_requests
from engine.replay import replay_case
from engine.service import Liuhen
from engine.worker import WorkerState, run_round
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, LiveServer, add_user
from tests.tcp_proxy import TcpProxy
from tests.test_engine_flows import TIMER_BOUNDARY

REPLAYED = "Idempotent-Replayed"
UNAVAILABLE_EN = ("The database cannot be reached at the moment; try again shortly. A change that was being saved "
                  "when the connection broke may have been saved.")
UNAVAILABLE_ZH = "暂时无法连接数据库，请稍后重试。连接中断时正在保存的更改可能已经保存。"


@pytest.fixture
def proxy(service: Liuhen) -> Iterator[TcpProxy]:
    if service.db.is_sqlite:
        pytest.skip("SQLite is a file in the same process; there is no connection to cut")
    url = service.db.engine.url
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def proxied(service: Liuhen, settings, clock, proxy: TcpProxy) -> Iterator[Liuhen]:
    """A second service, as an API process has, that reaches PostgreSQL through the proxy."""
    url = make_url(settings.database_url).set(host="127.0.0.1", port=proxy.port)
    url = url.update_query_dict({"sslmode": "disable"})
    liuhen = Liuhen(settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)}),
                    clock=clock)
    yield liuhen
    liuhen.db.dispose()


@pytest.fixture
def api(service: Liuhen, proxied: Liuhen) -> Iterator[httpx.Client]:
    service.deploy(sequence("steps", ["A", "B"]), "steps.bpmn", DESIGNER)
    add_user(service, "clerk", ["staff"])
    with LiveServer(create_app(proxied.settings, proxied)) as server, \
            httpx.Client(base_url=server.url, timeout=60, headers={"Accept-Language": "en"}) as client:
        yield client


def login(client: httpx.Client) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": "clerk", "password": "pw-clerk-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def send_until_done(client: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]
                        ) -> httpx.Response:
    """Send a POST again while the database is unavailable or the key is still held, as a client would."""
    deadline = time.monotonic() + 30
    while True:
        response = client.post(path, json=body, headers=headers)
        retry = response.status_code in (409, 503) and response.json()["error"]["code"] in (
            "database_unavailable", "idempotency_key_in_use")
        if not retry or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def completions(service: Liuhen, case_id: int) -> int:
    return [event["kind"] for event in service.case_trace(case_id)].count("task_completed")


def stored_keys(service: Liuhen) -> int:
    with service.db.read() as conn:
        return conn.execute(select(func.count()).select_from(idempotent_requests)).scalar_one()


def test_unreachable_database_returns_503(api, service, proxy) -> None:
    clerk = login(api)
    case = api.post("/api/cases", json={"process_id": "steps"}, headers=clerk).json()
    task_id = case["tasks"][0]["id"]

    proxy.cut()
    listed = api.get("/api/cases", headers=clerk)
    completed = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}},
                         headers={**clerk, "Idempotency-Key": "k"})
    in_chinese = api.get("/api/cases", headers={**clerk, "Accept-Language": "zh-CN"})
    health = api.get("/api/health")

    for response in (listed, completed, health):
        assert response.status_code == 503, response.text
        assert response.json() == {"error": {"code": "database_unavailable", "message": UNAVAILABLE_EN,
                                             "details": {}}}
        assert response.headers["Retry-After"] == "1"
    assert in_chinese.status_code == 503
    assert in_chinese.json()["error"]["message"] == UNAVAILABLE_ZH

    proxy.restore()
    # The pool's connections died with the cut; the first request afterwards gets a fresh one.
    assert api.get("/api/cases", headers=clerk).status_code == 200
    retried = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers={**clerk, "Idempotency-Key": "k"})
    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers
    assert completions(service, case["id"]) == 1


def test_drop_before_commit_applies_nothing(api, service, proxy) -> None:
    clerk = login(api)
    case = api.post("/api/cases", json={"process_id": "steps"}, headers=clerk).json()
    task_id = case["tasks"][0]["id"]
    events = service.case_trace(case["id"])
    headers = {**clerk, "Idempotency-Key": "k"}

    proxy.cut_when_sent(b"UPDATE cases SET")
    lost = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers=headers)

    assert proxy.tripped.is_set()
    assert lost.status_code == 503
    assert lost.json()["error"]["code"] == "database_unavailable"
    assert service.case_trace(case["id"]) == events
    assert stored_keys(service) == 0

    proxy.restore()
    retried = send_until_done(api, f"/api/tasks/{task_id}/complete", {"data": {}}, headers)

    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers
    assert completions(service, case["id"]) == 1
    assert replay_case(service, case["id"]).ok


def test_drop_after_commit_replays_stored_response(api, service, proxy) -> None:
    clerk = login(api)
    case = api.post("/api/cases", json={"process_id": "steps"}, headers=clerk).json()
    task_id = case["tasks"][0]["id"]
    headers = {**clerk, "Idempotency-Key": "k"}

    proxy.cut_after_commit(b"INSERT INTO idempotent_requests")
    lost = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"note": "一次"}}, headers=headers)

    assert proxy.tripped.is_set()
    assert lost.status_code == 503
    # The server committed the step and its response before the connection broke.
    assert completions(service, case["id"]) == 1
    assert stored_keys(service) == 1

    proxy.restore()
    retried = send_until_done(api, f"/api/tasks/{task_id}/complete", {"data": {"note": "一次"}}, headers)

    assert retried.status_code == 200, retried.text
    assert retried.headers[REPLAYED] == "true"
    assert retried.json()["revision"] == service.get_case(case["id"])["revision"]
    assert [task["element_id"] for task in retried.json()["tasks"]] == ["B"]
    assert completions(service, case["id"]) == 1

    next_task = retried.json()["tasks"][0]["id"]
    finished = api.post(f"/api/tasks/{next_task}/complete", json={"data": {}}, headers=clerk)
    assert finished.status_code == 200, finished.text
    assert finished.json()["status"] == "completed"
    assert replay_case(service, case["id"]).ok


def test_start_lost_after_commit_creates_one_case(api, service, proxy) -> None:
    clerk = login(api)
    headers = {**clerk, "Idempotency-Key": "start"}

    proxy.cut_after_commit(b"INSERT INTO idempotent_requests")
    lost = api.post("/api/cases", json={"process_id": "steps"}, headers=headers)
    assert lost.status_code == 503
    proxy.restore()
    retried = send_until_done(api, "/api/cases", {"process_id": "steps"}, headers)

    assert retried.status_code == 201, retried.text
    assert retried.headers[REPLAYED] == "true"
    assert [case["id"] for case in service.list_cases()] == [retried.json()["id"]]


def test_worker_round_survives_database_loss(service, proxied, proxy, clock) -> None:
    service.deploy(TIMER_BOUNDARY, "timer.bpmn", DESIGNER)
    staff = add_user(service, "staff", ["staff"])
    case_id = service.start_case("timer_boundary", staff)["id"]
    clock.advance(timedelta(hours=49))
    state = WorkerState(checkpoint_every=None)

    proxy.cut()
    with pytest.raises(DatabaseUnavailable):
        run_round(proxied, state)
    proxy.restore()

    assert run_round(proxied, state) == [case_id]
    assert service.get_case(case_id)["end_element_id"] == "Withdrawn"
