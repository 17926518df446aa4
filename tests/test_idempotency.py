"""Idempotency-Key on state-changing requests, over a real uvicorn server on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from api import idempotency
from api.app import create_app
from engine.db import idempotent_requests
from engine.replay import replay_case
from engine.service import Liuhen
from engine.worker import prune_idempotent_requests
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, LiveServer, add_user

REPLAYED = "Idempotent-Replayed"


@pytest.fixture
def api(service: Liuhen) -> Iterator[httpx.Client]:
    service.deploy(sequence("steps", ["A", "B", "C"]), "steps.bpmn", DESIGNER)
    add_user(service, "clerk", ["staff"])
    add_user(service, "other", ["staff"])
    add_user(service, "boss", ["admin"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=60, headers={"Accept-Language": "en"}) as client:
        yield client


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def start(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post("/api/cases", json={"process_id": "steps"}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def kinds(service: Liuhen, case_id: int) -> list[str]:
    return [event["kind"] for event in service.case_trace(case_id)]


def stored_keys(service: Liuhen) -> int:
    with service.db.read() as conn:
        return conn.execute(select(func.count()).select_from(idempotent_requests)).scalar_one()


def test_completion_retry_returns_stored_response(api, service) -> None:
    clerk = login(api, "clerk")
    case = start(api, clerk)
    task_id = case["tasks"][0]["id"]

    first = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"note": "ok"}}, headers=keyed(clerk, "k-1"))
    again = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"note": "ok"}}, headers=keyed(clerk, "k-1"))

    assert first.status_code == 200, first.text
    assert REPLAYED not in first.headers
    assert again.status_code == 200
    assert again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert first.json()["tasks"][0]["element_id"] == "B"
    assert kinds(service, case["id"]).count("task_completed") == 1
    assert service.get_case(case["id"])["revision"] == first.json()["revision"]
    assert stored_keys(service) == 1


def test_start_retry_creates_one_case(api, service) -> None:
    clerk = login(api, "clerk")
    body = {"process_id": "steps", "title": "申请"}

    first = api.post("/api/cases", json=body, headers=keyed(clerk, "start-1"))
    # The same JSON with other spacing and key order is the same request.
    again = api.post("/api/cases", content=b'{ "title": "\\u7533\\u8bf7",  "process_id": "steps" }',
                     headers={**keyed(clerk, "start-1"), "Content-Type": "application/json"})

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.headers[REPLAYED] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert [case["id"] for case in service.list_cases()] == [first.json()["id"]]


def test_claim_release_cancel_replay(api, service) -> None:
    clerk, boss = login(api, "clerk"), login(api, "boss")
    case = start(api, clerk)
    task_id = case["tasks"][0]["id"]

    for path, headers, body in [(f"/api/tasks/{task_id}/claim", keyed(clerk, "claim"), None),
                                (f"/api/tasks/{task_id}/release", keyed(clerk, "release"), None),
                                (f"/api/cases/{case['id']}/cancel", keyed(boss, "cancel"), {"reason": "撤回申请"})]:
        first = api.post(path, json=body, headers=headers)
        again = api.post(path, json=body, headers=headers)
        assert first.status_code == 200, (path, first.text)
        assert again.status_code == 200, (path, again.text)
        assert again.headers[REPLAYED] == "true", path
        assert again.json() == first.json(), path

    recorded = kinds(service, case["id"])
    assert recorded.count("task_claimed") == 1
    assert recorded.count("task_released") == 1
    assert recorded.count("case_cancelled") == 1
    assert service.get_case(case["id"])["status"] == "cancelled"


def test_key_reused_with_other_body_is_rejected(api, service) -> None:
    clerk = login(api, "clerk")
    case = start(api, clerk)
    first_task = case["tasks"][0]["id"]
    first = api.post(f"/api/tasks/{first_task}/complete", json={"data": {"note": "x"}}, headers=keyed(clerk, "k"))
    assert first.status_code == 200, first.text
    events = len(service.case_trace(case["id"]))

    other_body = api.post(f"/api/tasks/{first_task}/complete", json={"data": {"note": "y"}},
                          headers=keyed(clerk, "k"))
    next_task = first.json()["tasks"][0]["id"]
    other_path = api.post(f"/api/tasks/{next_task}/complete", json={"data": {"note": "x"}},
                          headers=keyed(clerk, "k"))

    assert other_body.status_code == 422
    assert other_body.json()["error"]["code"] == "idempotency_key_reused"
    assert other_body.json()["error"]["message"] == (
        f"The Idempotency-Key k was already used for POST /api/tasks/{first_task}/complete with a different "
        "request body; send the same body to get the first response again, or use a new key for a new request.")
    assert other_path.status_code == 422
    assert other_path.json()["error"]["message"] == (
        f"The Idempotency-Key k was already used for POST /api/tasks/{first_task}/complete; use a new key for "
        f"POST /api/tasks/{next_task}/complete.")
    assert len(service.case_trace(case["id"])) == events


def test_keys_belong_to_their_user(api, service) -> None:
    clerk, other = login(api, "clerk"), login(api, "other")

    first = api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(clerk, "same"))
    second = api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(other, "same"))

    assert first.status_code == second.status_code == 201
    assert REPLAYED not in second.headers
    assert first.json()["id"] != second.json()["id"]


def test_refusal_is_stored_and_replayed(api, service) -> None:
    clerk, other = login(api, "clerk"), login(api, "other")
    case = start(api, clerk)
    task_id = case["tasks"][0]["id"]
    assert api.post(f"/api/tasks/{task_id}/claim", headers=clerk).status_code == 200

    refused = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers=keyed(other, "try"))
    assert api.post(f"/api/tasks/{task_id}/release", headers=clerk).status_code == 200
    # The task could be completed now, but the retry gets the first response and does not act.
    again = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers=keyed(other, "try"))

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    assert again.status_code == 409
    assert again.headers[REPLAYED] == "true"
    assert again.json() == refused.json()
    assert "task_completed" not in kinds(service, case["id"])


def test_reused_key_message_in_chinese(api, service) -> None:
    clerk = login(api, "clerk")
    headers = {**keyed(clerk, "zh"), "Accept-Language": "zh-CN"}
    assert api.post("/api/cases", json={"process_id": "steps"}, headers=headers).status_code == 201

    reused = api.post("/api/cases", json={"process_id": "steps", "title": "别的"}, headers=headers)

    assert reused.status_code == 422
    assert reused.json()["error"]["message"] == (
        "幂等键 zh 已用于 POST /api/cases，但请求内容不同；要再次取得第一次的应答，请发送相同的内容；"
        "新的请求请换用新的键。")


def test_invalid_key_is_rejected(api, service) -> None:
    clerk = login(api, "clerk")

    for key in ["has space", "x" * 129, ""]:
        response = api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(clerk, key))
        assert response.status_code == 422, key
        assert response.json()["error"]["code"] == "idempotency_key_invalid", key
    response = api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(clerk, "has space"))
    assert response.json()["error"]["message"] == (
        "The Idempotency-Key 'has space' is invalid; send 1 to 128 visible ASCII characters, such as a UUID.")
    assert service.list_cases() == []


def test_request_without_key_stores_nothing(api, service) -> None:
    clerk = login(api, "clerk")
    case = start(api, clerk)
    response = api.post(f"/api/tasks/{case['tasks'][0]['id']}/complete", json={"data": {}}, headers=clerk)

    assert response.status_code == 200
    assert REPLAYED not in response.headers
    assert stored_keys(service) == 0


def test_key_expires_after_configured_hours(api, service, clock) -> None:
    first = api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(login(api, "clerk"), "daily"))
    clock.advance(timedelta(hours=23))
    # Login tokens expire sooner than keys, so each request signs in again.
    within = api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(login(api, "clerk"), "daily"))
    clock.advance(timedelta(hours=2))
    after = api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(login(api, "clerk"), "daily"))

    assert within.headers[REPLAYED] == "true"
    assert within.json()["id"] == first.json()["id"]
    assert after.status_code == 201
    assert REPLAYED not in after.headers
    assert after.json()["id"] != first.json()["id"]
    assert stored_keys(service) == 1


def test_worker_prunes_expired_keys(api, service, clock) -> None:
    clerk = login(api, "clerk")
    for key in ("a", "b"):
        assert api.post("/api/cases", json={"process_id": "steps"}, headers=keyed(clerk, key)).status_code == 201
    clock.advance(timedelta(hours=12))
    later = keyed(login(api, "clerk"), "c")
    assert api.post("/api/cases", json={"process_id": "steps"}, headers=later).status_code == 201

    clock.advance(timedelta(hours=13))

    assert prune_idempotent_requests(service) == 2
    assert stored_keys(service) == 1


def block_stored_responses(service: Liuhen) -> None:
    """Make every INSERT into idempotent_requests fail, as a crash before COMMIT would leave it."""
    with service.db.write() as conn:
        if service.db.is_sqlite:
            conn.execute(text("CREATE TRIGGER block_responses BEFORE INSERT ON idempotent_requests "
                              "BEGIN SELECT RAISE(ABORT, 'stored responses are blocked'); END"))
        else:
            conn.execute(text("CREATE FUNCTION block_responses() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'stored responses are blocked'; END $$"))
            conn.execute(text("CREATE TRIGGER block_responses BEFORE INSERT ON idempotent_requests "
                              "FOR EACH ROW EXECUTE FUNCTION block_responses()"))


def unblock_stored_responses(service: Liuhen) -> None:
    with service.db.write() as conn:
        conn.execute(text("DROP TRIGGER block_responses" if service.db.is_sqlite
                          else "DROP TRIGGER block_responses ON idempotent_requests"))


def test_step_and_stored_response_commit_together(api, service) -> None:
    clerk = login(api, "clerk")
    case = start(api, clerk)
    task_id = case["tasks"][0]["id"]
    events = service.case_trace(case["id"])
    block_stored_responses(service)

    failed = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers=keyed(clerk, "k"))

    assert failed.status_code == 500
    assert service.case_trace(case["id"]) == events
    assert [task["id"] for task in service.get_case(case["id"])["tasks"]] == [task_id]

    unblock_stored_responses(service)
    retried = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers=keyed(clerk, "k"))

    assert retried.status_code == 200, retried.text
    assert REPLAYED not in retried.headers
    assert kinds(service, case["id"]).count("task_completed") == 1
    assert replay_case(service, case["id"]).ok


def test_rolled_back_step_leaves_no_cached_state(api, service, settings, clock) -> None:
    # A second server process: its own pool and its own cache of engine states.
    other = Liuhen(settings, clock=clock)
    clerk = login(api, "clerk")
    case = start(api, clerk)
    first_task = case["tasks"][0]["id"]
    block_stored_responses(service)
    failed = api.post(f"/api/tasks/{first_task}/complete", json={"data": {"who": "first server"}},
                      headers=keyed(clerk, "k"))
    assert failed.status_code == 500
    unblock_stored_responses(service)

    with LiveServer(create_app(settings, other)) as second:
        moved = httpx.post(f"{second.url}/api/tasks/{first_task}/complete", json={"data": {"who": "second server"}},
                           headers=clerk, timeout=60)
    other.db.dispose()
    assert moved.status_code == 200, moved.text
    next_task = moved.json()["tasks"][0]["id"]
    finished = api.post(f"/api/tasks/{next_task}/complete", json={"data": {}}, headers=clerk)

    assert finished.status_code == 200, finished.text
    assert finished.json()["data"]["who"] == "second server"
    assert replay_case(service, case["id"]).ok


def wait_until(condition: Any, awaited: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {awaited}")
        time.sleep(0.01)


def first_request_running(service: Liuhen) -> bool:
    """Tell whether the first request holds its key: on PostgreSQL its advisory lock, on SQLite this process's mark."""
    if service.db.is_sqlite:
        return any(entry[1:] == ("clerk", "k") for entry in idempotency._running)
    # A bigint advisory lock shows in pg_locks as its high and low 32 bits, with objsubid 1.
    lock_id = idempotency.advisory_lock_id("clerk", "k") & 0xFFFF_FFFF_FFFF_FFFF
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :high "
                 "AND objid = :low AND objsubid = 1")
    with service.db.read() as conn:
        return conn.execute(query, {"high": lock_id >> 32, "low": lock_id & 0xFFFF_FFFF}).scalar_one() > 0


def hold_case(service: Liuhen, case_id: int) -> Any:
    """Return a write block that keeps a step on case ``case_id`` waiting until it ends."""
    block = service.db.write()
    conn = block.__enter__()
    if not service.db.is_sqlite:
        conn.execute(text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id})
    return block


def test_key_in_use_gets_409(api, service, settings, clock) -> None:
    clerk = login(api, "clerk")
    case = start(api, clerk)
    task_id = case["tasks"][0]["id"]
    outcomes: dict[str, httpx.Response] = {}
    block = hold_case(service, case["id"])

    def first_request() -> None:
        outcomes["first"] = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers=keyed(clerk, "k"))

    thread = threading.Thread(target=first_request)
    try:
        thread.start()
        wait_until(lambda: first_request_running(service), "the first request runs")
        second = api.post(f"/api/tasks/{task_id}/complete", json={"data": {}}, headers=keyed(clerk, "k"))
    finally:
        block.__exit__(None, None, None)
        thread.join(timeout=60)

    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_key_in_use"
    assert second.json()["error"]["message"] == (
        "An earlier request with the Idempotency-Key k is still running; send this request again when it has "
        "finished to get its response.")
    assert outcomes["first"].status_code == 200, outcomes["first"].text
    assert kinds(service, case["id"]).count("task_completed") == 1


def test_key_in_use_by_another_process(api, service, settings, clock) -> None:
    clerk = login(api, "clerk")
    case = start(api, clerk)
    task_id = case["tasks"][0]["id"]
    other = Liuhen(settings, clock=clock)
    outcomes: dict[str, httpx.Response] = {}
    block = hold_case(service, case["id"])

    with LiveServer(create_app(settings, other)) as second:
        def request(name: str, url: str) -> None:
            outcomes[name] = httpx.post(f"{url}/api/tasks/{task_id}/complete", json={"data": {}},
                                        headers=keyed(clerk, "k"), timeout=60)

        first = threading.Thread(target=request, args=("first", str(api.base_url).rstrip("/")))
        retry = threading.Thread(target=request, args=("retry", second.url))
        try:
            first.start()
            wait_until(lambda: first_request_running(service), "the first request runs")
            retry.start()
            if not service.db.is_sqlite:
                retry.join(timeout=60)
        finally:
            block.__exit__(None, None, None)
            first.join(timeout=60)
            retry.join(timeout=60)
    other.db.dispose()

    assert outcomes["first"].status_code == 200, outcomes["first"].text
    if service.db.is_sqlite:
        # SQLite lets one writer in at a time: both wait for the write lock, and whichever gets it second
        # gets the stored response of the other.
        assert outcomes["retry"].status_code == 200, outcomes["retry"].text
        assert outcomes["retry"].json() == outcomes["first"].json()
        assert sorted(REPLAYED in outcomes[name].headers for name in outcomes) == [False, True]
    else:
        assert outcomes["retry"].status_code == 409, outcomes["retry"].text
        assert outcomes["retry"].json()["error"]["code"] == "idempotency_key_in_use"
    assert kinds(service, case["id"]).count("task_completed") == 1


def test_openapi_documents_key_and_503(api, service) -> None:
    schema = api.get("/openapi.json").json()
    operations = [("/api/cases", "post"), ("/api/cases/{case_id}/cancel", "post"),
                  ("/api/tasks/{task_id}/claim", "post"), ("/api/tasks/{task_id}/release", "post"),
                  ("/api/tasks/{task_id}/complete", "post")]

    for path, method in operations:
        operation = schema["paths"][path][method]
        header = [p for p in operation["parameters"] if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert len(header) == 1, path
        assert "applied once" in header[0]["description"], path
        assert "database_unavailable" in operation["responses"]["503"]["description"], path
        assert "idempotency_key_in_use" in operation["responses"]["409"]["description"], path
    assert "503" in schema["paths"]["/api/cases"]["get"]["responses"]
