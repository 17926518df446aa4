"""The supervision board and statistics pages in headless Chromium, against a live server on each database.

Screenshots go to test-artifacts/<test>/ at the repository root (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from api.app import create_app
from engine import supervision
from engine.service import Liuhen
from engine.users import Actor
from tests.conftest import ADMIN, DESIGNER, LiveServer, add_user
from tests.test_clocks import complete, licence, local, open_task
from tests.test_public_pages_browser import CHROMIUM
from tests.test_workspace_browser import browser, new_page, shots, sign_in

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed; "
                                                        "`make test` installs it")

__all__ = ["browser", "shots"]


@pytest.fixture
def overdue(service: Liuhen, clock: Any) -> dict[str, int]:
    """Three running cases in two departments on 9 December 2026, after the worker raised the due cards.

    "late" is still at its first step, whose limit of 5 working days ended on 8 December, and "deciding"
    waits at a high-risk decision held by the director, 2 working days after 3 December. "calm" is on time.
    """
    clerk = add_user(service, "clerk", ["staff"], ["受理窗口", "专家组"])
    director = add_user(service, "director", ["staff"], ["局领导"])
    add_user(service, "qian_qing", ["auditor"])
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    service.deploy(licence("permit", statutory=(60, "working_day"), promised=(40, "working_day"),
                           handling_body="某区教育局"), "permit.bpmn", DESIGNER)

    late = service.start_case("licence", clerk, title="逾期办件")["id"]
    deciding = service.start_case("licence", clerk, title="待决定办件")["id"]
    complete(service, clerk, deciding, "Check", decision="accept")
    complete(service, clerk, deciding, "Review")
    service.claim(open_task(service, deciding, "Decide"), director)
    calm = service.start_case("permit", clerk, title="正常办件")["id"]
    clock.set(local(2026, 12, 2))
    complete(service, clerk, calm, "Check", decision="accept")
    clock.set(local(2026, 12, 9))
    supervision.check_deadlines(service, ADMIN)
    return {"late": late, "deciding": deciding, "calm": calm}


@pytest.fixture
def server(service: Liuhen, overdue: dict[str, int]) -> Iterator[str]:
    with LiveServer(create_app(service.settings, service)) as live:
        yield live.url


def board_row(page: Any, case_id: int) -> Any:
    return page.locator(f'#sv-board tbody tr[data-case-id="{case_id}"]')


def test_board_shows_red_cards(browser, server, overdue, shots) -> None:
    page = new_page(browser)
    sign_in(page, server, "qian_qing", "/workspace/board")
    page.wait_for_url("**/workspace/board")
    late = board_row(page, overdue["late"])
    late.wait_for()

    assert late.get_attribute("data-card") == "red"
    assert late.locator(".ws-card").first.inner_text() == "红牌"
    assert late.locator("a").get_attribute("href") == f"/workspace/audit/cases/{overdue['late']}"
    assert "某市教育局" in late.inner_text()
    assert "受理窗口" in late.inner_text()
    step_clock = late.locator('.sv-clock[data-clock="step"]')
    assert step_clock.get_attribute("data-card") == "red"
    assert "超期" in step_clock.inner_text()
    deciding = board_row(page, overdue["deciding"])
    assert deciding.get_attribute("data-card") == "red"
    assert "高" in deciding.inner_text()
    page.wait_for_function("document.querySelector('#sv-board .sv-person')?.textContent.includes('director')")
    assert board_row(page, overdue["calm"]).get_attribute("data-card") == "none"
    order = page.locator("#sv-board tbody tr").evaluate_all("rows => rows.map(row => row.dataset.card)")
    assert order == ["red", "red", "none"]
    page.screenshot(path=shots / "board.png", full_page=True)


def test_board_filters_by_card(browser, server, overdue, shots) -> None:
    page = new_page(browser)
    sign_in(page, server, "qian_qing", "/workspace/board")
    page.wait_for_url("**/workspace/board")
    board_row(page, overdue["late"]).wait_for()

    page.select_option("select[name=card]", "none")
    board_row(page, overdue["late"]).wait_for(state="detached")
    rows = page.locator("#sv-board tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-case-id") == str(overdue["calm"])
    assert "card=none" in page.url
    page.screenshot(path=shots / "board-on-time.png", full_page=True)

    page.select_option("select[name=card]", "red")
    page.select_option("select[name=department]", "某市教育局")
    page.select_option("select[name=risk_level]", "high")
    board_row(page, overdue["calm"]).wait_for(state="detached")
    board_row(page, overdue["late"]).wait_for(state="detached")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-case-id") == str(overdue["deciding"])

    # A reload keeps the filters, because the page writes them into its address.
    page.reload()
    board_row(page, overdue["deciding"]).wait_for()
    assert page.locator("select[name=card]").input_value() == "red"
    assert rows.count() == 1


def test_board_follows_new_cards(browser, server, service, overdue, clock, shots) -> None:
    # The permit reaches its decision, whose 2 working days end on Friday 11 December.
    clerk = Actor("clerk", "clerk", frozenset({"staff"}), frozenset({"受理窗口", "专家组"}))
    complete(service, clerk, overdue["calm"], "Review")
    clock.set(local(2026, 12, 11, hour=20))
    page = new_page(browser)
    sign_in(page, server, "qian_qing", quote("/workspace/board?department=某区教育局&card=red", safe=""))
    page.wait_for_url("**/workspace/board?*")
    page.locator("#sv-board-empty").wait_for()

    # After midnight a worker raises the red card. The open page shows it on its next poll, which a return
    # to the tab starts at once.
    clock.set(local(2026, 12, 12, hour=1))
    supervision.check_deadlines(service, ADMIN)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")

    calm = board_row(page, overdue["calm"])
    calm.wait_for()
    assert calm.get_attribute("data-card") == "red"
    assert page.locator("#sv-board-empty").is_hidden()
    page.screenshot(path=shots / "board-new-card.png", full_page=True)


def test_statistics_chart_and_grades(browser, server, overdue, shots) -> None:
    page = new_page(browser)
    sign_in(page, server, "qian_qing", "/workspace/statistics")
    page.wait_for_url("**/workspace/statistics")
    row = page.locator('#sv-figures tbody tr[data-group="某市教育局"]')
    row.wait_for()

    assert "2026-12-01" in page.locator("#sv-period-shown").inner_text()
    assert "2026-12-31" in page.locator("#sv-period-shown").inner_text()
    cells = row.locator("td").all_inner_texts()
    assert cells[-3:] == ["0", "2", "2"]
    medium_bar = page.locator('#sv-risk-chart svg rect[data-group="某市教育局"][data-series="medium"]')
    assert medium_bar.get_attribute("data-value") == "2"
    assert float(medium_bar.get_attribute("height")) > 0
    high_bar = page.locator('#sv-risk-chart svg rect[data-group="某市教育局"][data-series="high"]')
    assert float(high_bar.get_attribute("height")) == 0
    assert page.locator("#sv-risk-chart svg").get_attribute("role") == "img"
    step_rate = page.locator('#sv-overdue-chart svg rect[data-group="某市教育局"][data-series="steps"]')
    assert step_rate.get_attribute("data-value") == "0.5"
    assert "50%" in row.inner_text()

    grade = page.locator('#sv-grades tbody tr[data-department="某市教育局"]')
    assert grade.get_attribute("data-grade") == "good"
    assert grade.locator(".sv-grade").inner_text() == "良好"
    assert "84" in grade.locator("td").first.inner_text()
    deductions = grade.locator("li[data-rule]")
    assert deductions.evaluate_all("items => items.map(item => item.dataset.rule)") == [
        "deductions.red_card", "overdue_rate.steps"]
    assert "红牌：2 张" in deductions.first.inner_text()
    calm = page.locator('#sv-grades tbody tr[data-department="某区教育局"]')
    assert calm.get_attribute("data-grade") == "excellent"
    assert calm.locator("li[data-rule]").count() == 0
    page.screenshot(path=shots / "statistics.png", full_page=True)

    page.select_option("#sv-period select[name=kind]", "quarter")
    page.wait_for_function("document.querySelector('#sv-period-shown').textContent.includes('2026-10-01')")
    assert "from=2026-Q4" in page.url
    page.select_option("#sv-period select[name=group]", "process")
    page.locator('#sv-figures tbody tr[data-group="licence"]').wait_for()
    groups = page.locator("#sv-figures tbody tr").evaluate_all("rows => rows.map(row => row.dataset.group)")
    assert groups == ["licence", "permit"]
    assert page.locator("#sv-risk-chart svg rect[data-series=high]").count() == 2
    page.screenshot(path=shots / "statistics-by-process.png", full_page=True)


def test_pages_in_english(browser, server, overdue, shots) -> None:
    page = new_page(browser, locale="en-US")
    sign_in(page, server, "qian_qing", "/workspace/statistics?lang=en")
    page.wait_for_url("**/workspace/statistics?lang=en")
    page.locator("#sv-grades tbody tr").first.wait_for()

    assert page.locator("h1").inner_text() == "Supervision statistics"
    assert "lang=en" in page.url
    page.goto(server + "/workspace/board?lang=en")
    row = board_row(page, overdue["late"])
    row.wait_for()
    assert row.locator(".ws-card").first.inner_text() == "Red card"
    assert row.locator("a").get_attribute("href").endswith("?lang=en")
    page.screenshot(path=shots / "board-english.png", full_page=True)


def test_staff_get_forbidden(browser, server, overdue, shots) -> None:
    page = new_page(browser)
    sign_in(page, server, "clerk")
    page.wait_for_url("**/workspace/tasks")
    assert page.locator('a[href="/workspace/board"]').count() == 0

    for path in ("/workspace/board", "/workspace/statistics"):
        response = page.goto(server + path)
        assert response.status == 403
        assert page.locator("#sv-board, #sv-figures").count() == 0
    page.screenshot(path=shots / "forbidden.png", full_page=True)
    assert page.request.get(server + "/api/supervision/board", headers={"X-Requested-With": "fetch"}).status == 403
