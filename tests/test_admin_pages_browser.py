"""The administrator pages in headless Chromium, against a live server on each database.

Screenshots go to test-artifacts/<test>/ at the repository root (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from api.app import create_app
from engine.service import Liuhen
from tests.conftest import DESIGNER, LiveServer, add_user
from tests.test_clocks import licence
from tests.test_public_pages_browser import CHROMIUM
from tests.test_workspace_browser import browser, new_page, shots, sign_in, unlabelled_controls

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed; "
                                                        "`make test` installs it")

__all__ = ["browser", "shots"]

CALENDAR_FILE = b"date,type,name\n2027-01-01,holiday,\xe5\x85\x83\xe6\x97\xa6\n2027-02-07,working,\n"


@pytest.fixture
def office(service: Liuhen) -> Liuhen:
    """The licence flowchart, deployed but not published. Only 受理窗口 of its three posts has a holder."""
    service.deploy(licence(), "licence.bpmn", DESIGNER)
    add_user(service, "admin", ["admin"])
    add_user(service, "clerk", ["staff"], ["受理窗口"])
    return service


@pytest.fixture
def server(office: Liuhen) -> Iterator[str]:
    with LiveServer(create_app(office.settings, office)) as live:
        yield live.url


def admin_page(browser: Any, server: str, section: str, lang: str = "") -> Any:
    """Sign the administrator in straight to one administration page, in English when ``lang`` is "en"."""
    page = new_page(browser, locale="en-US" if lang == "en" else "zh-CN")
    target = f"/workspace/admin/{section}" + (f"?lang={lang}" if lang else "")
    sign_in(page, server, "admin", quote(target, safe=""))
    page.wait_for_url(lambda url: url.endswith(target))
    return page


def open_section(page: Any, section: str) -> None:
    page.locator(f'.ad-nav a[href^="/workspace/admin/{section}"]').click()
    page.wait_for_url(f"**/workspace/admin/{section}*")


def fits_width(page: Any) -> bool:
    """Tell whether the page fits the 1366 pixels of the test window without scrolling sideways."""
    return page.evaluate("document.documentElement.scrollWidth") <= 1366


def test_admin_walk(browser, server, office, shots) -> None:
    page = new_page(browser)

    # Sign in: the workspace shows administrators the way to the administration pages.
    sign_in(page, server, "admin")
    page.wait_for_url("**/workspace/audit")
    page.locator('nav a[href="/workspace/admin"]').click()
    page.wait_for_url("**/workspace/admin/users")
    page.locator('#ad-users tr[data-username="clerk"]').wait_for()
    assert page.locator('.ad-nav a[aria-current="page"]').get_attribute("href") == "/workspace/admin/users"
    assert unlabelled_controls(page) == []
    assert fits_width(page)

    # Create a user who holds the expert post: the post is offered because the licence flowchart needs it.
    form = page.locator("#ad-create-form")
    form.locator("input[name=username]").fill("wang_zhuan")
    form.locator("input[name=password]").fill("pw-wang_zhuan-secret")
    form.locator("input[name=display_name]").fill("王专家")
    form.locator("input[name=department]").fill("专家委员会")
    form.locator('input[name=roles][value="staff"]').check()
    form.locator('input[name=posts][value="专家组"]').check()
    form.locator("button[type=submit]").click()
    row = page.locator('#ad-users tr[data-username="wang_zhuan"]')
    row.wait_for()
    assert "专家组" in row.inner_text()
    assert "专家委员会" in row.inner_text()
    assert page.locator("#ad-create-errors").is_hidden()
    page.screenshot(path=shots / "01-user-created.png", full_page=True)

    # The same username again: the API's error is shown inline, with its code.
    form.locator("input[name=username]").fill("wang_zhuan")
    form.locator("input[name=password]").fill("pw-wang_zhuan-secret")
    form.locator("input[name=display_name]").fill("王专家")
    form.locator('input[name=roles][value="staff"]').check()
    form.locator("button[type=submit]").click()
    errors = page.locator('#ad-create-errors[data-code="conflict"]')
    errors.wait_for()
    assert "wang_zhuan" in errors.inner_text()
    assert "conflict" in errors.inner_text()
    page.screenshot(path=shots / "02-create-error.png", full_page=True)

    # The organisation: the expert post is held now, the leaders' post still is not.
    open_section(page, "organisation")
    experts = page.locator('#ad-posts tr[data-post="专家组"]')
    experts.wait_for()
    assert experts.get_attribute("data-unheld") == "false"
    assert experts.locator('li[data-username="wang_zhuan"]').get_attribute("data-able") == "true"
    assert "作出决定" in page.locator('#ad-posts tr[data-post="局领导"]').inner_text()
    assert page.locator('#ad-posts tr[data-post="局领导"]').get_attribute("data-unheld") == "true"
    assert "局领导" in page.locator("#ad-unheld").inner_text()
    assert "专家组" not in page.locator("#ad-unheld").inner_text()
    assert page.locator('#ad-departments [data-department="专家委员会"] li[data-username="wang_zhuan"]').count() == 1
    assert fits_width(page)
    page.screenshot(path=shots / "03-organisation.png", full_page=True)

    # The calendar: Saturday 12 December 2026 becomes a make-up working day, marked as an administrator's entry.
    open_section(page, "calendar")
    day = page.locator('#ad-months button[data-date="2026-12-12"]')
    day.wait_for()
    assert day.get_attribute("data-kind") == "rest"
    day.click()
    assert page.locator("#ad-day-date").input_value() == "2026-12-12"
    page.select_option("#ad-day-type", "working")
    page.fill("#ad-day-name", "调休上班")
    page.locator("#ad-day-form button[type=submit]").click()
    page.locator('#ad-months button[data-date="2026-12-12"][data-source="admin"]').wait_for()
    assert day.get_attribute("data-kind") == "makeup"
    assert "调休上班" in day.get_attribute("aria-label")
    assert unlabelled_controls(page) == []
    assert fits_width(page)
    page.screenshot(path=shots / "04-calendar-day.png", full_page=True)

    # Publishing: version 1 of the licence goes on the public catalogue.
    open_section(page, "publishing")
    licence_row = page.locator('#ad-processes tr[data-process="licence"]')
    licence_row.wait_for()
    assert licence_row.get_attribute("data-published") == ""
    licence_row.locator("button.ws-primary").click()
    page.locator('#ad-processes tr[data-process="licence"][data-published="1"]').wait_for()
    assert licence_row.locator('a[href="/public/items/licence"]').count() == 1
    assert fits_width(page)
    page.screenshot(path=shots / "05-published.png", full_page=True)
    page.goto(server + "/")
    assert page.locator('a[href="/public/items/licence"]').count() >= 1
    assert "LICENCE" in page.content()
    page.screenshot(path=shots / "06-public-catalogue.png", full_page=True)

    # Withdrawing takes it off the catalogue again.
    page.goto(server + "/workspace/admin/publishing")
    licence_row.locator("button:not(.ws-primary)").click()
    page.locator('#ad-processes tr[data-process="licence"][data-published=""]').wait_for()
    page.goto(server + "/")
    assert page.locator('a[href="/public/items/licence"]').count() == 0
    page.goto(server + "/workspace/admin/publishing")
    licence_row.locator("button.ws-primary").click()
    page.locator('#ad-processes tr[data-process="licence"][data-published="1"]').wait_for()

    # Keys: a first checkpoint creates the key, a rotation retires it, the next checkpoint uses the new key.
    page.goto(server + "/workspace/admin/keys")
    page.locator("#ad-keys-empty").wait_for()
    page.click("#ad-create-checkpoint")
    page.locator('#ad-keys tr[data-status="active"]').wait_for()
    page.locator("#ad-checkpoints tbody tr").first.wait_for()
    first_key = page.locator('#ad-keys tr[data-status="active"]').get_attribute("data-key-id")
    # No administrator created the first key, and the page shows that the system generated it.
    assert "系统首次使用时自动生成" in page.locator('#ad-keys tr[data-status="active"]').inner_text()
    page.click("#ad-rotate")
    page.click("#ad-rotate-now")
    page.locator(f'#ad-keys tr[data-key-id="{first_key}"][data-status="retired"]').wait_for()
    second_key = page.locator('#ad-keys tr[data-status="active"]').get_attribute("data-key-id")
    assert second_key != first_key
    page.click("#ad-create-checkpoint")
    page.locator(f'#ad-checkpoints tr[data-key-id="{second_key}"]').wait_for()
    assert page.locator("#ad-checkpoints tbody tr").count() == 2
    # The older checkpoint's file carries the retired key's public key, so it verifies after the rotation.
    download = page.locator(f'#ad-checkpoints tr[data-key-id="{first_key}"] a[download]').get_attribute("href")
    assert "BEGIN%20PUBLIC%20KEY" in download
    assert "PRIVATE" not in page.content()
    assert unlabelled_controls(page) == []
    assert fits_width(page)
    page.screenshot(path=shots / "07-keys.png", full_page=True)

    # The annual review: mark the leaders' checkpoint reviewed, with a note.
    open_section(page, "review")
    checkpoint = page.locator('#ad-review tr[data-checkpoint="RC-licence-decide"]')
    checkpoint.wait_for()
    checkpoint.locator("button").click()
    page.fill("#ad-review-note", "  ")
    page.locator("#ad-review-form button[type=submit]").click()
    page.locator('#ad-review-errors[data-code="invalid_input"]').wait_for()
    page.fill("#ad-review-note", "核对了预警规则，继续有效")
    page.locator("#ad-review-form button[type=submit]").click()
    page.wait_for_function("document.querySelector('#ad-review tr[data-checkpoint=\"RC-licence-decide\"]')"
                           "?.textContent.includes('核对了预警规则')")
    assert page.locator("#ad-review-panel").is_hidden()
    assert unlabelled_controls(page) == []
    assert fits_width(page)
    page.screenshot(path=shots / "08-review.png", full_page=True)


def test_user_change_and_deactivate(browser, server, office, shots) -> None:
    page = admin_page(browser, server, "users")
    row = page.locator('#ad-users tr[data-username="clerk"]')
    row.wait_for()

    row.locator("button").click()
    panel = page.locator('#ad-edit[data-username="clerk"]')
    panel.wait_for()
    assert page.locator("#ad-edit-form input[name=display_name]").input_value() == "clerk"
    assert page.locator('#ad-edit-form input[name=posts][value="受理窗口"]').is_checked()

    # Without any role the API rejects the change, and the page shows why next to the form.
    page.locator('#ad-edit-form input[name=roles][value="staff"]').uncheck()
    page.locator("#ad-edit-form button[type=submit]").click()
    page.locator('#ad-edit-errors[data-code="invalid_input"]').wait_for()
    page.screenshot(path=shots / "01-change-error.png", full_page=True)

    page.locator('#ad-edit-form input[name=roles][value="staff"]').check()
    page.locator("#ad-edit-form input[name=display_name]").fill("陈静")
    page.locator("#ad-edit-form input[name=other_posts]").fill("档案室，收发室")
    page.locator("#ad-edit-form button[type=submit]").click()
    page.wait_for_function("document.querySelector('#ad-users tr[data-username=\"clerk\"]')"
                           "?.textContent.includes('陈静')")
    assert "档案室" in row.inner_text()
    assert "收发室" in row.inner_text()
    assert page.locator("#ad-edit-errors").is_hidden()

    page.fill("#ad-new-password", "short")
    page.locator("#ad-password-form button[type=submit]").click()
    page.locator('#ad-password-errors[data-code="invalid_input"]').wait_for()
    page.fill("#ad-new-password", "a-new-long-password")
    page.locator("#ad-password-form button[type=submit]").click()
    page.wait_for_function("document.querySelector('#ad-new-password').value === ''")
    assert page.locator("#ad-password-errors").is_hidden()
    assert "clerk" in page.locator("#ws-status").inner_text()

    page.click("#ad-deactivate")
    page.locator('#ad-users tr[data-username="clerk"][data-active="false"]').wait_for()
    assert page.locator("#ad-reactivate").is_visible()
    page.screenshot(path=shots / "02-deactivated.png", full_page=True)
    page.click("#ad-reactivate")
    page.locator('#ad-users tr[data-username="clerk"][data-active="true"]').wait_for()


def test_calendar_import_and_year(browser, server, office, shots) -> None:
    page = admin_page(browser, server, "calendar")
    page.locator('#ad-months button[data-date="2026-01-01"]').wait_for()

    page.set_input_files("#ad-import-file", files=[{"name": "2027.csv", "mimeType": "text/csv",
                                                    "buffer": CALENDAR_FILE}])
    page.locator("#ad-import-form button[type=submit]").click()
    page.wait_for_function("document.querySelector('#ws-status').textContent.includes('2027')")
    page.click("#ad-year-next")
    new_year = page.locator('#ad-months button[data-date="2027-01-01"]')
    new_year.wait_for()
    assert new_year.get_attribute("data-source") == "import"
    assert new_year.get_attribute("data-kind") == "holiday"
    assert page.locator('#ad-months button[data-date="2027-02-07"]').get_attribute("data-kind") == "makeup"
    assert "year=2027" in page.url
    page.screenshot(path=shots / "01-imported-year.png", full_page=True)

    # A file with a bad line is rejected whole, and the page shows the line.
    page.set_input_files("#ad-import-file", files=[{"name": "bad.csv", "mimeType": "text/csv",
                                                    "buffer": b"2027-03-01,holiday\n2027-13-01,holiday\n"}])
    page.locator("#ad-import-form button[type=submit]").click()
    errors = page.locator('#ad-import-errors[data-code="calendar_file_invalid"]')
    errors.wait_for()
    assert "2" in errors.inner_text()
    assert page.locator('#ad-months button[data-date="2027-03-01"]').get_attribute("data-kind") == "working"


def test_pages_forbidden_to_staff(browser, server, office, shots) -> None:
    page = new_page(browser)
    sign_in(page, server, "clerk")
    page.wait_for_url("**/workspace/tasks")
    assert page.locator('nav a[href="/workspace/admin"]').count() == 0

    for section in ("", "/users", "/organisation", "/calendar", "/publishing", "/keys", "/review"):
        response = page.goto(server + "/workspace/admin" + section)
        assert response.status == 403, section
        assert page.locator("#ad-users, #ad-posts, #ws-config").count() == 0
    assert "系统管理员" in page.locator("p.error").inner_text()
    page.screenshot(path=shots / "01-forbidden.png", full_page=True)

    response = page.goto(server + "/api/admin/organisation")
    assert response.status == 403


def test_pages_in_english(browser, server, office, shots) -> None:
    page = admin_page(browser, server, "organisation", lang="en")
    page.locator('#ad-posts tr[data-post="局领导"]').wait_for()

    assert page.locator("h1").inner_text() == "Departments, posts and roles"
    assert page.locator("#ad-unheld").inner_text().startswith("2 posts that deployed flowcharts need")
    assert page.locator('.ad-nav a[href^="/workspace/admin/keys"]').get_attribute("href").endswith("?lang=en")
    page.screenshot(path=shots / "01-english.png", full_page=True)

    open_section(page, "users")
    clerk = page.locator('#ad-users tr[data-username="clerk"]')
    clerk.wait_for()
    assert clerk.locator("td").nth(2).inner_text() == "Business staff"
    assert "lang=en" in page.url
