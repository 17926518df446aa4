"""The workspace case search filtered by department, card and risk event, over HTTP on each database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app
from engine.service import Liuhen
from tests.conftest import LiveServer, add_user
from tests.test_supervision_pages_browser import overdue

__all__ = ["overdue"]


@pytest.fixture
def client(service: Liuhen, overdue: dict[str, int]) -> Iterator[httpx.Client]:
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.post("/api/auth/login", json={"username": "qian_qing", "password": "pw-qian_qing-secret"})
        assert response.status_code == 200, response.text
        http.headers.update({"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"})
        yield http


@pytest.mark.parametrize(("params", "expected"), [
    ({"department": "某市教育局"}, ["deciding", "late"]),
    ({"department": "某区教育局"}, ["calm"]),
    ({"card": "red"}, ["deciding", "late"]),
    ({"card": "none"}, ["calm"]),
    ({"card": "yellow"}, []),
    ({"risk_event": "any"}, ["deciding", "late"]),
    ({"risk_event": "deadline_exceeded", "department": "某区教育局"}, []),
    ({"risk_event": "control_overridden"}, []),
])
def test_case_search_filters(client, overdue, params, expected) -> None:
    response = client.get("/api/workspace/cases", params=params)

    assert response.status_code == 200, response.text
    assert [hit["id"] for hit in response.json()["cases"]] == sorted(
        (overdue[name] for name in expected), reverse=True)


@pytest.mark.parametrize(("params", "quoted"), [
    ({"card": "green"}, "Card 'green' is unknown; use one of: red, yellow, none."),
    ({"risk_event": "bribery"}, "Risk event kind 'bribery' is unknown"),
])
def test_case_search_bad_filter(client, params, quoted) -> None:
    response = client.get("/api/workspace/cases", params=params)

    assert response.status_code == 422
    assert quoted in response.json()["error"]["message"]


def test_case_search_needs_auditor(client, service) -> None:
    add_user(service, "window", ["staff"])
    response = client.post("/api/auth/login", json={"username": "window", "password": "pw-window-secret"})
    headers = {"Authorization": f"Bearer {response.json()['token']}"}

    assert client.get("/api/workspace/cases", params={"card": "red"}, headers=headers).status_code == 403
