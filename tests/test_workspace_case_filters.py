"""The workspace case search filtered by department, card and risk event, over HTTP and in headless Chromium,
on each database. Screenshots go to test-artifacts/<test>/ at the repository root (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from api.app import create_app
from engine.service import Liuhen
from tests.conftest import LiveServer, add_user
from tests.test_public_pages_browser import CHROMIUM
from tests.test_supervision_pages_browser import overdue, server
from tests.test_workspace_browser import browser, new_page, shots, sign_in, unlabelled_controls

__all__ = ["browser", "overdue", "server", "shots"]

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed; "
                                                             "`make test` installs it")


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
    ({"risk_level": "medium"}, ["deciding", "late"]),
    ({"risk_level": "high"}, []),
    ({"risk_event": "deadline_exceeded", "risk_level": "medium"}, ["deciding", "late"]),
    ({"risk_event": "any", "risk_level": "low"}, []),
])
def test_case_search_filters(client, overdue, params, expected) -> None:
    response = client.get("/api/workspace/cases", params=params)

    assert response.status_code == 200, response.text
    assert [hit["id"] for hit in response.json()["cases"]] == sorted(
        (overdue[name] for name in expected), reverse=True)


@pytest.mark.parametrize(("params", "quoted"), [
    ({"card": "green"}, "Card 'green' is unknown; use one of: red, yellow, none."),
    ({"risk_event": "bribery"}, "Risk event kind 'bribery' is unknown"),
    ({"risk_level": "severe"}, "Risk level 'severe' is unknown; use one of: high, medium, low."),
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


def shown_cases(page: Any) -> list[int]:
    return [int(case_id) for case_id in page.locator("#ws-results tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.caseId)")]


def search(page: Any, **choices: str) -> None:
    """Choose each filter in the search form, submit it and wait until the result shows the new search."""
    for name, value in choices.items():
        page.select_option(f"#ws-search select[name={name}]", value)
    with page.expect_response(lambda response: "/api/workspace/cases?" in response.url):
        page.click("#ws-search button[type=submit]")
    page.wait_for_function("!document.querySelector('#ws-results').getAttribute('aria-busy')")


@needs_chromium
def test_search_filters_narrow_result(browser, server, overdue, shots) -> None:
    everyone = sorted(overdue.values(), reverse=True)
    page = new_page(browser)
    sign_in(page, server, "qian_qing", "/workspace/audit")
    page.wait_for_url("**/workspace/audit")
    page.locator(f'#ws-results tr[data-case-id="{overdue["calm"]}"]').wait_for()
    assert shown_cases(page) == everyone
    assert unlabelled_controls(page) == []

    search(page, department="某区教育局")
    assert shown_cases(page) == [overdue["calm"]]
    assert "department=" + quote("某区教育局") in page.url
    assert page.locator("#ws-exports-partial").is_visible()
    page.screenshot(path=shots / "department.png", full_page=True)

    search(page, department="", card="red")
    assert shown_cases(page) == [overdue["deciding"], overdue["late"]]
    search(page, card="none")
    assert shown_cases(page) == [overdue["calm"]]

    search(page, card="", risk_event="any")
    assert shown_cases(page) == [overdue["deciding"], overdue["late"]]
    search(page, risk_event="control_overridden")
    assert shown_cases(page) == []
    search(page, risk_event="", risk_level="medium")
    assert shown_cases(page) == [overdue["deciding"], overdue["late"]]
    search(page, risk_level="high")
    assert shown_cases(page) == []
    assert "risk_level=high" in page.url

    search(page, risk_level="")
    assert shown_cases(page) == everyone
    assert page.locator("#ws-exports-partial").is_hidden()


@needs_chromium
def test_search_link_can_be_shared(browser, server, overdue, shots) -> None:
    address = "/workspace/audit?department=" + quote("某市教育局") + "&card=red&risk_event=deadline_exceeded"
    page = new_page(browser)
    sign_in(page, server, "qian_qing", quote(address, safe=""))
    page.wait_for_url("**/workspace/audit?*")
    page.locator(f'#ws-results tr[data-case-id="{overdue["late"]}"]').wait_for()

    assert shown_cases(page) == [overdue["deciding"], overdue["late"]]
    assert page.locator("#ws-search select[name=department]").input_value() == "某市教育局"
    assert page.locator("#ws-search select[name=card]").input_value() == "red"
    assert page.locator("#ws-search select[name=risk_event]").input_value() == "deadline_exceeded"
    page.screenshot(path=shots / "shared-search.png", full_page=True)

    # The link keeps working after a reload, and narrows the search as before.
    search(page, card="none")
    assert shown_cases(page) == []
    page.reload()
    page.locator("#ws-result-count").wait_for()
    page.wait_for_function("document.querySelector('#ws-result-count').textContent !== ''")
    assert shown_cases(page) == []
    assert page.locator("#ws-search select[name=card]").input_value() == "none"
