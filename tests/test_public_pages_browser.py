"""The public pages in headless Chromium: only published versions show, with their header and diagram."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from api.app import create_app
from engine import publication
from engine.service import Liuhen
from tests.conftest import ADMIN, DESIGNER, PROCESSES, LiveServer, add_user

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed; "
                                                        "`make test` installs it")
# Without these flags Chromium tries to reach Google's servers at start and on every page.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="zh-CN")
        yield page
        browser.close()


@pytest.fixture
def server(service: Liuhen) -> Iterator[str]:
    for name in ("private_school_establishment", "reimbursement", "teacher_qualification"):
        path = PROCESSES / f"{name}.bpmn"
        service.deploy(path.read_bytes(), path.name, DESIGNER)
    add_user(service, "clerk", ["staff"], ["经办人"])
    publication.publish(service, "private_school_establishment", 1, ADMIN)
    publication.publish(service, "reimbursement", 1, ADMIN)
    # A newer version exists but stays unpublished: the public must keep seeing version 1.
    school = PROCESSES / "private_school_establishment.bpmn"
    service.deploy(school.read_bytes() + b"\n<!-- draft -->\n", school.name, DESIGNER)
    with LiveServer(create_app(service.settings, service)) as live:
        yield live.url


def test_catalogue_shows_only_published_external_items(browser_page, server) -> None:
    browser_page.goto(server + "/")
    rows = browser_page.locator("table.catalogue tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-process") == "private_school_establishment"
    assert "民办学校设立" in rows.first.inner_text()
    assert "财务报销" not in browser_page.content()


def test_flowchart_page_shows_header_and_published_version(browser_page, server) -> None:
    browser_page.goto(server + "/")
    browser_page.locator("table.catalogue a").first.click()
    browser_page.wait_for_load_state("load")

    article = browser_page.locator("article.item")
    assert article.get_attribute("data-version") == "1"
    header = browser_page.locator("dl.header").inner_text()
    assert "3 个月" in header
    assert "30 个工作日" in header
    assert browser_page.locator("ol.materials li").count() >= 1
    loaded = browser_page.locator("img.diagram").evaluate("image => image.complete && image.naturalWidth > 0")
    assert loaded, "the flowchart image did not load"


def test_internal_flowcharts_need_staff_sign_in(browser_page, server) -> None:
    browser_page.goto(server + "/staff/flowcharts")
    assert "/login" in browser_page.url
    browser_page.fill("input[name=username]", "clerk")
    browser_page.fill("input[name=password]", "pw-clerk-secret")
    browser_page.click("form.login button")
    browser_page.wait_for_url("**/staff/flowcharts")
    assert browser_page.locator("ul.internal li").first.get_attribute("data-process") == "reimbursement"


def test_english_pages(browser_page, server) -> None:
    browser_page.goto(server + "/?lang=en")
    assert browser_page.locator("h1").inner_text() == "Power catalogue"
