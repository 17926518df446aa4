"""The staff and auditor workspace in headless Chromium, against a live server on each database.

Screenshots of the key steps go to test-artifacts/<test>/ at the repository root (git-ignored).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from engine.service import Liuhen
from tests import bpmn_builder as b
from tests.conftest import DESIGNER, PROCESSES, ROOT, LiveServer, add_user
from tests.test_public_pages_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed; "
                                                        "`make test` installs it")

ARTIFACTS = ROOT / "test-artifacts"
WAIT_MS = 15_000
REIMBURSEMENT_FORM = {
    "amount": "260.50", "expense_type": "office_supplies", "purpose": "购买打印纸和墨盒", "involves_goods": "false",
    "invoice_count": "2", "expense_date": "2026-11-30", "payee": "市文具商店",
}


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A folder for screenshots, copied to test-artifacts/ when the test ends, whatever its outcome."""
    folder = tmp_path / "screens"
    folder.mkdir()
    yield folder
    target = ARTIFACTS / request.node.name.replace("[", "-").replace("]", "")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser: Any, locale: str = "zh-CN") -> Any:
    page = browser.new_page(locale=locale, viewport={"width": 1366, "height": 768})
    page.set_default_timeout(WAIT_MS)
    return page


def sign_in(page: Any, server: str, username: str, next_path: str = "") -> None:
    page.goto(server + "/login" + (f"?next={next_path}" if next_path else ""))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"pw-{username}-secret")
    page.click("form.login button")


@pytest.fixture
def reimbursement(service: Liuhen) -> Liuhen:
    path = PROCESSES / "reimbursement.bpmn"
    service.deploy(path.read_bytes(), path.name, DESIGNER)
    add_user(service, "zhou_hong", ["staff"], ["经办人"])
    add_user(service, "ma_jun", ["staff"], ["总务主任"])
    add_user(service, "qian_qing", ["auditor"])
    return service


@pytest.fixture
def server(reimbursement: Liuhen) -> Iterator[str]:
    with LiveServer(create_app(reimbursement.settings, reimbursement)) as live:
        yield live.url


def start_reimbursement(service: Liuhen, title: str = "办公用品报销") -> dict[str, Any]:
    return service.start_case("reimbursement", actor_of(service, "zhou_hong"), {}, title)


def actor_of(service: Liuhen, username: str) -> Any:
    from engine.users import get_actor

    with service.db.read() as conn:
        return get_actor(conn, username)


def submit_first_step(service: Liuhen, case: dict[str, Any]) -> dict[str, Any]:
    data = {**REIMBURSEMENT_FORM, "involves_goods": False, "invoice_count": 2}
    return service.complete(case["tasks"][0]["id"], actor_of(service, "zhou_hong"), data)


def fill_reimbursement_form(page: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f'.ws-field[data-field="{name}"]')
        kind = field.get_attribute("data-type")
        if kind == "boolean":
            field.locator(f'input[value="{value}"]').check()
        elif kind == "enum":
            field.locator("select").select_option(value)
        else:
            field.locator("input, textarea").fill(value)


def unlabelled_controls(page: Any) -> list[str]:
    """Ids or names of the visible form controls and buttons that have no accessible name."""
    return page.evaluate("""() => Array.from(document.querySelectorAll(
            '.ws input, .ws select, .ws textarea, .ws button'))
        .filter((node) => node.offsetParent !== null)
        .filter((node) => !(node.labels && node.labels.length) && !node.getAttribute('aria-label')
                          && !(node.tagName === 'BUTTON' && node.textContent.trim()))
        .map((node) => node.id || node.name || node.outerHTML.slice(0, 60))""")


def test_staff_journey_claim_fill_complete(browser, server, reimbursement, shots) -> None:
    case = start_reimbursement(reimbursement)
    page = new_page(browser)

    # Sign in: staff land on their tasks, with the new case's first step waiting in their post.
    sign_in(page, server, "zhou_hong")
    page.wait_for_url("**/workspace/tasks")
    row = page.locator("#ws-pool tbody tr").first
    row.wait_for()
    assert row.get_attribute("data-case-id") == str(case["id"])
    assert "经办人提交报销单" in row.inner_text()
    assert "办公用品报销" in row.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    page.screenshot(path=shots / "01-my-tasks.png", full_page=True)

    # Claim it: the row moves to the tasks I hold without a reload.
    task_id = row.get_attribute("data-task-id")
    row.locator("button").click()
    held_row = page.locator(f'#ws-held tr[data-task-id="{task_id}"]')
    held_row.wait_for()
    assert page.locator("#ws-pool tbody tr").count() == 0
    page.screenshot(path=shots / "02-claimed.png", full_page=True)

    # The task page: a generated form with a label on every control.
    held_row.locator("a.ws-button").click()
    page.wait_for_url(f"**/workspace/tasks/{task_id}")
    page.locator('#ws-task-status[data-status="claimed"]').wait_for()
    assert page.locator(".ws-field").count() == 7
    assert unlabelled_controls(page) == []

    # Mistakes are shown next to their fields before anything is sent.
    fill_reimbursement_form(page, {**REIMBURSEMENT_FORM, "invoice_count": "两张", "purpose": ""})
    page.click("#ws-submit")
    page.locator('#ws-errors[data-code="form"]').wait_for()
    assert page.locator('.ws-field[data-field="invoice_count"] .ws-field-error').is_visible()
    assert page.locator('.ws-field[data-field="purpose"] .ws-field-error').is_visible()
    assert page.locator('.ws-field[data-field="amount"] .ws-field-error').is_hidden()
    page.screenshot(path=shots / "03-form-errors.png", full_page=True)

    # Complete: the page shows where the case went.
    fill_reimbursement_form(page, REIMBURSEMENT_FORM)
    page.click("#ws-submit")
    next_step = page.locator('#ws-outcome li[data-element="Task_director_approve"]')
    next_step.wait_for()
    assert next_step.get_attribute("data-post") == "总务主任"
    assert "总务主任审批" in next_step.inner_text()
    page.screenshot(path=shots / "04-completed.png", full_page=True)

    stored = reimbursement.get_case(case["id"])
    assert stored["data"]["amount"] == 260.5
    assert stored["data"]["involves_goods"] is False
    assert stored["data"]["invoice_count"] == 2
    assert [task["element_id"] for task in stored["tasks"]] == ["Task_director_approve"]

    # The next holder signs in and finds the step in their post.
    page.locator("header.site form.inline button").click()
    sign_in(page, server, "ma_jun")
    page.wait_for_url("**/workspace/tasks")
    row = page.locator("#ws-pool tbody tr").first
    row.wait_for()
    assert "总务主任审批" in row.inner_text()
    assert row.get_attribute("data-case-id") == str(case["id"])
    page.screenshot(path=shots / "05-next-holder.png", full_page=True)


def test_staff_start_case_on_page(browser, server, reimbursement, shots) -> None:
    page = new_page(browser)
    sign_in(page, server, "zhou_hong", "/workspace/start")
    page.wait_for_url("**/workspace/start")

    # The only flowchart is chosen already, and its first step is marked as one of the user's posts.
    choice = page.locator('.ws-start-choice[data-process="reimbursement"]')
    assert choice.get_attribute("data-mine") == "true"
    assert "经办人提交报销单" in choice.inner_text()
    # A case needs a title, so the page shows an error and starts nothing.
    page.click("#ws-start button[type=submit]")
    page.locator("#ws-errors").filter(has_text="请为办件填写标题").wait_for()
    assert reimbursement.list_cases() == []
    page.screenshot(path=shots / "start.png", full_page=True)

    page.fill("#ws-start-title", "购买实验耗材报销")
    page.click("#ws-start button[type=submit]")
    # The starter has the first step's post, so the page opens that task.
    page.wait_for_url("**/workspace/tasks/*")
    [case] = reimbursement.list_cases()
    assert case["title"] == "购买实验耗材报销"
    assert case["started_by"] == "zhou_hong"
    [task] = reimbursement.get_case(case["id"])["tasks"]
    assert page.url.endswith(f"/workspace/tasks/{task['id']}")


def test_staff_case_list(browser, server, reimbursement) -> None:
    running = start_reimbursement(reimbursement, "差旅费报销")
    finished = start_reimbursement(reimbursement, "办公用品报销")
    submit_first_step(reimbursement, finished)
    page = new_page(browser)
    sign_in(page, server, "zhou_hong", "/workspace/cases")
    page.wait_for_url("**/workspace/cases")

    rows = page.locator("#ws-my-cases tbody tr")
    assert [rows.nth(i).get_attribute("data-case-id") for i in range(rows.count())] == [
        str(finished["id"]), str(running["id"])]
    assert "办件 " + str(running["id"]) + "：差旅费报销" in rows.nth(1).inner_text()
    # Times are shown in the page's format, not as ISO text.
    assert "T" not in rows.nth(1).locator(".ws-time").first.inner_text()

    page.select_option("select[name=status]", "completed")
    page.click(".ws-search button[type=submit]")
    page.wait_for_url("**/workspace/cases?status=completed")
    assert page.locator("#ws-my-cases").count() == 0
    assert page.locator(".ws-empty").inner_text() == "没有符合条件的办件。"


def test_header_links_keep_english(browser, server, reimbursement) -> None:
    page = new_page(browser, locale="en-US")
    sign_in(page, server, "qian_qing", "/workspace/audit?lang=en")
    page.wait_for_url("**/workspace/audit?lang=en")
    board = page.locator('header nav a[href^="/workspace/board"]')
    assert board.get_attribute("href") == "/workspace/board?lang=en"
    board.click()
    page.wait_for_url("**/workspace/board?lang=en")
    assert page.locator("h1").inner_text() == "Supervision board"


def test_task_list_updates_without_reload(browser, server, reimbursement, shots) -> None:
    page = new_page(browser)
    sign_in(page, server, "ma_jun")
    page.wait_for_url("**/workspace/tasks")
    page.locator("#ws-pool-empty").wait_for()

    submit_first_step(reimbursement, start_reimbursement(reimbursement))

    row = page.locator("#ws-pool tbody tr").first
    row.wait_for()
    assert "总务主任审批" in row.inner_text()
    assert page.locator("#ws-pool-empty").is_hidden()


def test_case_page_path_timeline_clocks(browser, server, reimbursement, shots) -> None:
    case = start_reimbursement(reimbursement)
    submit_first_step(reimbursement, case)
    page = new_page(browser)
    sign_in(page, server, "zhou_hong", f"/workspace/cases/{case['id']}")
    page.wait_for_url(f"**/workspace/cases/{case['id']}")

    page.locator('#ws-timeline li[data-kind="task_completed"]').wait_for()
    completed = page.locator('#ws-timeline li[data-kind="task_completed"]').inner_text()
    assert "经办人提交报销单" in completed
    assert "市文具商店" in completed
    assert "zhou_hong" in completed
    # A gateway decision names the flow it took (否), not the flow's condition.
    decision = page.locator('#ws-timeline li[data-kind="gateway_decision"]').first.inner_text()
    assert "是否购置物品" in decision
    assert "(否)" in decision
    assert "involves_goods" not in page.locator("#ws-timeline").inner_text()
    # A paused clock is explained by its reason, not shown as the reason's code.
    config = json.loads(page.locator("#ws-config").text_content() or "{}")
    assert config["pauseReasons"]["expert_review"] == "专家评审时间不计入办理时限。"
    # A clock event names its clock and due time.
    started = page.locator('#ws-timeline li[data-kind="clock_started"]').first.inner_text()
    assert "承诺期限" in started
    assert "到期" in started
    page.locator('#ws-open-tasks li').wait_for()
    assert "总务主任审批" in page.locator("#ws-open-tasks").inner_text()
    page.wait_for_function("() => { const image = document.getElementById('ws-case-diagram');"
                           " return image.complete && image.naturalWidth > 0; }")
    # The promised time limit of the power item starts a clock when the case starts.
    page.locator('#ws-clocks tr[data-clock="promised"]').wait_for()
    page.screenshot(path=shots / "case.png", full_page=True)


def test_auditor_search_verify_replay(browser, server, reimbursement, shots) -> None:
    other = start_reimbursement(reimbursement, "差旅费报销")
    case = start_reimbursement(reimbursement)
    submit_first_step(reimbursement, case)
    events = reimbursement.case_trace(case["id"])
    page = new_page(browser)

    # Auditors land on the case search.
    sign_in(page, server, "qian_qing")
    page.wait_for_url("**/workspace/audit")
    page.locator(f'#ws-results tr[data-case-id="{other["id"]}"]').wait_for()
    page.select_option("#ws-search select[name=process]", "reimbursement")
    page.fill("#ws-search input[name=text]", "市文具")
    page.click("#ws-search button[type=submit]")
    page.locator(f'#ws-results tr[data-case-id="{other["id"]}"]').wait_for(state="detached")
    assert page.locator("#ws-results tbody tr").count() == 1
    assert page.locator("#ws-results tbody tr").get_attribute("data-case-id") == str(case["id"])
    assert "process=reimbursement" in page.locator('#ws-exports a[data-format="csv"]').get_attribute("href")
    page.screenshot(path=shots / "01-search.png", full_page=True)

    # The case: the trace verifies and the replay matches.
    page.locator("#ws-results tbody tr a").click()
    page.wait_for_url(f"**/workspace/audit/cases/{case['id']}")
    page.locator('#ws-verify[data-state="ok"]').wait_for()
    page.locator('#ws-replay-result[data-state="ok"]').wait_for()
    assert str(len(events)) in page.locator("#ws-verify").inner_text()

    # Step through the replay on the flowchart, from the first event to the last.
    page.locator(f'#ws-step-event[data-seq="{len(events)}"]').wait_for()
    page.locator("#ws-replay-diagram svg #Task_director_approve.ws-open").wait_for()
    assert "ws-reached" in page.locator("#ws-replay-diagram svg #Task_submit").get_attribute("class")
    page.screenshot(path=shots / "02-replay-last.png", full_page=True)

    page.click('#ws-stepper button[data-step="first"]')
    page.locator('#ws-step-event[data-seq="1"]').wait_for()
    page.click('#ws-stepper button[data-step="next"]')
    page.locator('#ws-step-event[data-seq="2"]').wait_for()
    page.locator("#ws-replay-diagram svg #Task_submit.ws-open.ws-current").wait_for()
    assert "ws-pending" in page.locator("#ws-replay-diagram svg #Task_director_approve").get_attribute("class")
    assert "经办人提交报销单" in page.locator("#ws-step-open").inner_text()
    page.screenshot(path=shots / "03-replay-step-2.png", full_page=True)

    completed = next(event["seq"] for event in events if event["kind"] == "task_completed")
    page.fill("#ws-step-range", str(completed))
    page.locator(f'#ws-step-event[data-seq="{completed}"]').wait_for()
    page.locator('#ws-step-data dd[data-field="payee"]').wait_for()
    assert page.locator('#ws-step-data dd[data-field="payee"]').inner_text() == "市文具商店"


REVIEW_BPMN = b.definitions(b.process(
    "review",
    b.node("startEvent", "StartEvent_1"),
    b.node("userTask", "Task_review", "审核", (
        '<bpmn:extensionElements>'
        '<liuhen:formField name="decision" type="enum" label="审核结论" required="true">'
        '<liuhen:option value="approve" label="同意"/><liuhen:option value="refuse" label="不同意"/>'
        '</liuhen:formField>'
        '<liuhen:formField name="decision_reason" type="text" label="理由"/>'
        '<liuhen:riskCheckpoint id="RC_review" level="high" category="power_operation">'
        '<liuhen:description>不说明理由即作出不予许可决定</liuhen:description>'
        '<liuhen:controlMeasure>不同意时须写明理由</liuhen:controlMeasure>'
        '<liuhen:control id="C_reason" type="reasonedDecision" enforcement="hard" decisionField="decision" '
        'reasonField="decision_reason" decisions="refuse" minLength="15"/>'
        '</liuhen:riskCheckpoint>'
        '</bpmn:extensionElements>')),
    b.node("endEvent", "EndEvent_1"),
    b.flow("Flow_1", "StartEvent_1", "Task_review"),
    b.flow("Flow_2", "Task_review", "EndEvent_1"),
    name="审核",
))


def test_failed_control_shown_at_submit(browser, server, reimbursement, shots) -> None:
    reimbursement.deploy(REVIEW_BPMN, "review.bpmn", DESIGNER)
    case = reimbursement.start_case("review", actor_of(reimbursement, "zhou_hong"), {}, "审核")
    task_id = case["tasks"][0]["id"]
    page = new_page(browser)
    sign_in(page, server, "zhou_hong", f"/workspace/tasks/{task_id}")
    page.wait_for_url(f"**/workspace/tasks/{task_id}")
    page.locator('#ws-task-status[data-status="ready"]').wait_for()

    page.locator('.ws-field[data-field="decision"] select').select_option("refuse")
    page.fill("#ws-f-decision_reason", "不符合")
    page.click("#ws-submit")
    errors = page.locator('#ws-errors[data-code="control_failed"]')
    errors.wait_for()
    assert errors.locator('li[data-control="C_reason"]').count() == 1
    field_note = page.locator('.ws-field[data-field="decision_reason"] .ws-field-error')
    assert field_note.is_visible()
    # The field points to the failed rule, and the message itself appears once, in the list above.
    assert field_note.inner_text() == "控制规则 C_reason 在此字段未通过，详见上方说明。"
    # The rules box is checked again with the submitted data, so it agrees with the failure.
    page.locator('#ws-control-list li[data-control="C_reason"][data-state="failed"]').wait_for()
    page.screenshot(path=shots / "control-failed.png", full_page=True)
    assert reimbursement.get_case(case["id"])["tasks"][0]["status"] == "ready"

    page.fill("#ws-f-decision_reason", "申请材料中的资产证明与实际不符，不予同意")
    page.click("#ws-submit")
    page.locator('#ws-outcome [data-outcome="completed"]').wait_for()
    assert reimbursement.get_case(case["id"])["status"] == "completed"

    # The timeline shows the failed evaluation in the page's language, from the msgid the trace stores.
    page.goto(f"{server}/workspace/cases/{case['id']}")
    evaluated = page.locator('#ws-timeline li[data-kind="control_evaluated"]')
    evaluated.first.wait_for()
    failed = evaluated.first.inner_text()
    assert "C_reason" in failed
    assert "决定“不同意”须在“理由”中书面说明理由，至少 15 个字" in failed
    assert "needs a written reason" not in failed


def test_supervision_notice_reaches_post(browser, server, reimbursement, clock, shots) -> None:
    from engine import supervision

    case = start_reimbursement(reimbursement)
    clock.advance(timedelta(days=40))
    supervision.check_deadlines(reimbursement)
    page = new_page(browser)
    sign_in(page, server, "zhou_hong")
    page.wait_for_url("**/workspace/tasks")

    notice = page.locator("#ws-notices li").first
    notice.wait_for()
    assert f"/workspace/cases/{case['id']}" in notice.locator("a").get_attribute("href")
    assert notice.get_attribute("data-status") == "open"
    assert "经办人" in notice.inner_text()
    row = page.locator(f'#ws-pool tr[data-case-id="{case["id"]}"]')
    assert row.get_attribute("data-card") == "red"
    page.screenshot(path=shots / "notice.png", full_page=True)


def test_notice_answered_from_page(browser, server, reimbursement, clock, shots) -> None:
    from engine import supervision

    case = start_reimbursement(reimbursement)
    clock.advance(timedelta(days=40))
    supervision.check_deadlines(reimbursement)
    page = new_page(browser)
    sign_in(page, server, "zhou_hong")
    page.wait_for_url("**/workspace/tasks")
    notice = page.locator("#ws-notices li").first
    notice.wait_for()
    notice_id = notice.get_attribute("data-notice")
    answer = notice.locator("textarea")
    assert answer.get_attribute("required") is not None
    assert unlabelled_controls(page) == []
    page.evaluate("window.answeredWithoutReload = true")

    # An empty answer is caught on the page, and a too short one by the server, whose message is shown.
    notice.locator("button[type=submit]").click()
    error = notice.locator(".ws-field-error")
    error.wait_for()
    assert answer.get_attribute("aria-invalid") == "true"
    answer.fill("已办")
    notice.locator("button[type=submit]").click()
    page.wait_for_function("document.querySelector('#ws-notices .ws-field-error').textContent.includes('4')")
    assert "督办" in error.inner_text()
    page.screenshot(path=shots / "notice-answer-refused.png", full_page=True)

    answer.fill("已与申请人联系，补齐发票后今日办结。")
    notice.locator("button[type=submit]").click()
    answered = page.locator(f'#ws-notices li[data-notice="{notice_id}"][data-status="answered"]')
    answered.wait_for()
    assert "已与申请人联系，补齐发票后今日办结。" in answered.locator(".ws-answer-text").inner_text()
    assert answered.locator("textarea").count() == 0
    assert page.evaluate("window.answeredWithoutReload") is True
    page.screenshot(path=shots / "notice-answered.png", full_page=True)

    [stored] = supervision.list_notices(reimbursement, actor_of(reimbursement, "zhou_hong"), status="any")
    assert stored["status"] == "answered"
    assert stored["answer"] == "已与申请人联系，补齐发票后今日办结。"
    assert stored["case_id"] == case["id"]

    # The next poll no longer lists the notice as open, and the page keeps it shown as answered.
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    assert page.locator("#ws-notices ul").get_attribute("aria-busy") == "true"
    page.locator('#ws-notices ul[aria-busy="false"]').wait_for(state="attached")
    assert answered.count() == 1


def test_step_controls_checked_before_submit(browser, server, reimbursement, shots) -> None:
    case = start_reimbursement(reimbursement)
    task_id = submit_first_step(reimbursement, case)["tasks"][0]["id"]
    trace_before = reimbursement.case_trace(case["id"])
    page = new_page(browser)
    sign_in(page, server, "ma_jun", f"/workspace/tasks/{task_id}")
    page.wait_for_url(f"**/workspace/tasks/{task_id}")

    # On load, before anything is typed, the step's control is listed and passes.
    control = page.locator('#ws-control-list li[data-control="C-BX-director-reason"]')
    control.wait_for()
    assert control.get_attribute("data-state") == "passed"
    assert control.get_attribute("data-enforcement") == "hard"
    assert "决定须说明理由" in control.inner_text()

    # A refusal with a short reason fails the hard control, and its message shows before any submit.
    page.locator('.ws-field[data-field="director_decision"] select').select_option("refuse")
    page.fill("#ws-f-director_opinion", "不同意")
    page.locator('#ws-control-list li[data-control="C-BX-director-reason"][data-state="failed"]').wait_for()
    message = control.locator(".ws-control-message")
    assert message.is_visible()
    assert "决定“不同意”须在“审批说明”中书面说明理由，至少 10 个字" in message.inner_text()
    assert page.locator("#ws-step-controls").get_attribute("data-blocked") == "true"
    assert page.locator("#ws-errors").is_hidden()
    page.screenshot(path=shots / "controls-failing.png", full_page=True)

    page.fill("#ws-f-director_opinion", "属个人支出，不得用公款报销，请自行承担。")
    page.locator('#ws-control-list li[data-control="C-BX-director-reason"][data-state="passed"]').wait_for()
    assert page.locator("#ws-step-controls").get_attribute("data-blocked") == "false"
    page.screenshot(path=shots / "controls-passing.png", full_page=True)

    # The checks stored nothing: the trace and the task are as they were.
    assert reimbursement.case_trace(case["id"]) == trace_before
    assert reimbursement.get_task(task_id)["status"] == "ready"


def test_step_without_controls_explained(browser, server, reimbursement, shots) -> None:
    add_user(reimbursement, "wu_bin", ["staff"], ["资产管理员"])
    case = start_reimbursement(reimbursement, "购置投影仪")
    data = {**REIMBURSEMENT_FORM, "involves_goods": True, "invoice_count": 1}
    moved = reimbursement.complete(case["tasks"][0]["id"], actor_of(reimbursement, "zhou_hong"), data)
    [checkin] = moved["tasks"]
    assert checkin["element_id"] == "Task_checkin"
    page = new_page(browser)
    sign_in(page, server, "wu_bin", f"/workspace/tasks/{checkin['id']}")

    # The asset check-in step has a risk checkpoint but no rule the system checks, and the page states this.
    summary = page.locator("#ws-control-summary")
    summary.filter(has_text="本环节没有由系统检查的控制规则").wait_for()
    assert page.locator("#ws-step-controls").get_attribute("data-empty") == "true"
    assert page.locator("#ws-control-list li").count() == 0
    assert page.locator("#ws-step-controls .ws-hint").is_hidden()
    assert "RC-BX-03" in page.locator("#ws-risk-title + div, .ws-risk").first.inner_text()
    page.screenshot(path=shots / "step-without-controls.png", full_page=True)


def test_english_workspace_keeps_language(browser, server, reimbursement, shots) -> None:
    start_reimbursement(reimbursement)
    page = new_page(browser, locale="en-US")
    sign_in(page, server, "zhou_hong", "/workspace/tasks?lang=en")
    page.wait_for_url("**/workspace/tasks?lang=en")
    assert page.locator("h1").inner_text() == "My tasks"
    row = page.locator("#ws-pool tbody tr").first
    row.wait_for()
    assert row.locator("button").inner_text() == "Claim"
    assert row.locator("a").first.get_attribute("href").endswith("?lang=en")


def test_api_cookie_needs_script_header(browser, server, reimbursement, shots) -> None:
    case = start_reimbursement(reimbursement)
    task_id = case["tasks"][0]["id"]
    page = new_page(browser)
    sign_in(page, server, "zhou_hong")
    page.wait_for_url("**/workspace/tasks")

    assert page.request.get(server + f"/api/tasks/{task_id}").ok
    plain = page.request.post(server + f"/api/tasks/{task_id}/claim")
    assert plain.status == 401
    assert "X-Requested-With" in plain.json()["error"]["message"]
    scripted = page.request.post(server + f"/api/tasks/{task_id}/claim", headers={"X-Requested-With": "fetch"})
    assert scripted.ok
    assert scripted.json()["assignee"] == "zhou_hong"


def test_workspace_needs_sign_in_and_role(browser, server, reimbursement, shots) -> None:
    page = new_page(browser)
    page.goto(server + "/workspace/audit")
    assert "/login?next=" in page.url
    sign_in(page, server, "zhou_hong", "/workspace/audit")
    page.wait_for_url("**/workspace/audit")
    assert page.locator("#ws-search").count() == 0
    assert "审计监督人员" in page.content()
