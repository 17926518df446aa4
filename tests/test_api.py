"""HTTP API behaviour on a real uvicorn server: sign-in, roles, posts, errors in Chinese and English."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from api.app import create_app
from engine.errors import DatabaseNotReady
from engine.service import Liuhen
from engine.settings import Settings
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import LiveServer, add_user

LANED = definitions(process(
    "laned",
    lanes({"受理窗口": ["S", "Accept"], "审批科室": ["Approve", "E"]}),
    node("startEvent", "S"), user_task("Accept", fields=[("amount", "integer")]), user_task("Approve"),
    node("endEvent", "E"),
    flow("f1", "S", "Accept"), flow("f2", "Accept", "Approve"), flow("f3", "Approve", "E"),
))


@pytest.fixture
def api(service: Liuhen) -> Iterator[httpx.Client]:
    add_user(service, "designer", ["designer"])
    add_user(service, "clerk", ["staff"], ["受理窗口"], department="行政审批科")
    add_user(service, "colleague", ["staff"], ["审批科室"], department="行政审批科")
    add_user(service, "approver", ["staff"], ["审批科室"])
    add_user(service, "auditor", ["auditor"])
    add_user(service, "admin", ["admin"])
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def deploy(client: httpx.Client, content: bytes = LANED, name: str = "laned.bpmn") -> httpx.Response:
    return client.post("/api/definitions", params={"filename": name}, content=content,
                       headers={**login(client, "designer"), "Content-Type": "application/xml"})


def test_login_rejects_wrong_password_in_chinese_and_english(api) -> None:
    chinese = api.post("/api/auth/login", json={"username": "clerk", "password": "wrong-password"})
    english = api.post("/api/auth/login", json={"username": "clerk", "password": "wrong-password"},
                       headers={"Accept-Language": "en-US,en;q=0.8"})
    assert chinese.status_code == english.status_code == 401
    assert chinese.json()["error"]["code"] == "unauthorized"
    assert english.json()["error"]["message"] == "Username or password is wrong."
    assert chinese.json()["error"]["message"] != english.json()["error"]["message"]


def test_request_without_token_is_unauthorized(api) -> None:
    response = api.get("/api/cases", headers={"Accept-Language": "en"})
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]["message"]


def test_token_expires(api, service, clock) -> None:
    headers = login(api, "clerk")
    assert api.get("/api/auth/me", headers=headers).json()["posts"] == ["受理窗口"]
    clock.advance(timedelta(minutes=service.settings.token_ttl_minutes + 1))
    response = api.get("/api/auth/me", headers={**headers, "Accept-Language": "en"})
    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_deploy_twice_reports_no_change(api) -> None:
    first = deploy(api).json()["processes"][0]
    second = deploy(api).json()["processes"][0]
    assert (first["version"], first["created"]) == (1, True)
    assert (second["version"], second["created"]) == (1, False)
    assert "已" in second["message"]


def test_staff_cannot_deploy_and_auditor_cannot_start(api) -> None:
    response = api.post("/api/definitions", params={"filename": "x.bpmn"}, content=LANED,
                        headers={**login(api, "clerk"), "Accept-Language": "en"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    deploy(api)
    started = api.post("/api/cases", json={"process_id": "laned"}, headers=login(api, "auditor"))
    assert started.status_code == 403


def test_tasks_follow_posts_and_auditor_reads_only(api) -> None:
    deploy(api)
    clerk, approver, auditor = login(api, "clerk"), login(api, "approver"), login(api, "auditor")
    case = api.post("/api/cases", json={"process_id": "laned", "title": "测试办件"}, headers=clerk).json()
    task_id = case["tasks"][0]["id"]

    assert [t["id"] for t in api.get("/api/tasks", headers=clerk).json()] == [task_id]
    assert api.get("/api/tasks", headers=approver).json() == []
    # The approver has no task in this case and another department, so the case is hidden from them.
    hidden = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": 5}},
                      headers={**approver, "Accept-Language": "en"})
    assert hidden.status_code == 404
    # A colleague of the clerk's department sees the case but does not hold the task's post.
    colleague = login(api, "colleague")
    wrong_post = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": 5}},
                          headers={**colleague, "Accept-Language": "en"})
    assert wrong_post.status_code == 403
    assert "受理窗口" in wrong_post.json()["error"]["message"]
    assert api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": 5}}, headers=auditor).status_code == 403

    bad_value = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": "五"}},
                         headers={**clerk, "Accept-Language": "en"})
    assert bad_value.status_code == 422
    assert bad_value.json()["error"]["code"] == "invalid_input"
    assert "'五'" in bad_value.json()["error"]["message"]

    done = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": 5}}, headers=clerk)
    assert done.status_code == 200
    assert [t["element_id"] for t in done.json()["tasks"]] == ["Approve"]
    again = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": 5}}, headers=clerk)
    assert again.status_code == 409

    trace = api.get(f"/api/cases/{case['id']}/trace", headers=auditor).json()
    assert [e["kind"] for e in trace][:3] == ["case_started", "task_ready", "task_claimed"]
    assert all(e["actor"] in ("clerk",) for e in trace)
    assert api.get(f"/api/cases/{case['id']}/verify", headers=auditor).json()["ok"] is True


def test_bpmn_download_returns_deployed_bytes(api) -> None:
    deploy(api)
    response = api.get("/api/definitions/laned/versions/1/bpmn", headers=login(api, "auditor"))
    assert response.status_code == 200
    assert response.content == LANED
    detail = api.get("/api/definitions/laned/versions/1", headers=login(api, "auditor")).json()
    assert detail["nodes"]["Accept"]["lane"] == "受理窗口"
    missing = api.get("/api/definitions/laned/versions/9", headers={**login(api, "auditor"), "Accept-Language": "en"})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Process laned has no version 9."


def test_invalid_bpmn_upload_names_line(api) -> None:
    response = api.post("/api/definitions", params={"filename": "broken.bpmn"}, content=LANED[:-40],
                        headers={**login(api, "designer"), "Content-Type": "application/xml", "Accept-Language": "en"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "definition_malformed_xml"
    assert error["details"]["filename"] == "broken.bpmn"
    assert "broken.bpmn" in error["message"]


def test_multipart_upload_deploys(api) -> None:
    response = api.post("/api/definitions", files={"file": ("laned.bpmn", LANED, "application/xml")},
                        headers=login(api, "designer"))
    assert response.status_code == 200
    assert response.json()["processes"][0]["process_id"] == "laned"


def test_request_validation_error_is_translated(api) -> None:
    response = api.post("/api/cases", json={"title": "x"}, headers={**login(api, "clerk"), "Accept-Language": "en"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert "process_id" in response.json()["error"]["message"]


def test_validation_reason_in_reader_language(api) -> None:
    body = {"username": "clerk", "password": "x" * 300}

    chinese = api.post("/api/auth/login", json=body, headers={"Accept-Language": "zh-CN"})
    english = api.post("/api/auth/login", json=body, headers={"Accept-Language": "en"})

    assert chinese.status_code == 422
    assert chinese.json()["error"]["message"] == "请求字段 password 无效：长度超过 256 个字符。请更正后重新发送请求。"
    assert english.json()["error"]["message"] == ("Request field password is invalid: it is longer than 256 "
                                                  "characters. Correct it and send the request again.")


def test_oversized_body_is_rejected_before_reading(service, api) -> None:
    headers = {**login(api, "designer"), "Content-Type": "application/xml", "Accept-Language": "en"}
    big = b"<" * (service.settings.max_upload_bytes + 200_000)
    response = api.post("/api/definitions", params={"filename": "big.bpmn"}, content=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_unmigrated_database_refuses_to_start(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", data_dir=tmp_path)
    service = Liuhen(settings)
    with pytest.raises(DatabaseNotReady) as raised:
        service.db.check_migrated()
    assert "liuhen migrate" in raised.value.render("en")
    assert "liuhen migrate" in raised.value.render("zh_CN")
    service.db.dispose()


def test_docs_page_needs_no_internet(api) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text
    assert api.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert api.get("/openapi.json").json()["info"]["title"] == "liuhen 留痕"


def test_number_below_minimum_over_http(api, service) -> None:
    bounded = definitions(process(
        "bounded", lanes({"受理窗口": ["S", "Pay", "E"]}),
        node("startEvent", "S"),
        user_task("Pay", extra='<liuhen:formField name="amount" type="decimal" label="金额" min="0.01"/>'),
        node("endEvent", "E"), flow("f1", "S", "Pay"), flow("f2", "Pay", "E"),
    ))
    assert deploy(api, bounded, "bounded.bpmn").status_code == 200
    clerk = login(api, "clerk")
    case = api.post("/api/cases", json={"process_id": "bounded", "title": "负数金额"}, headers=clerk).json()
    task_id = case["tasks"][0]["id"]

    refused = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": -5}}, headers=clerk)

    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == "字段 amount（金额）的值 -5 小于最小值 0.01；请填写不小于 0.01 的数。"
    # Nothing was stored: the task still waits.
    assert service.get_task(task_id)["status"] == "ready"
    done = api.post(f"/api/tasks/{task_id}/complete", json={"data": {"amount": "0.01"}}, headers=clerk)
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
