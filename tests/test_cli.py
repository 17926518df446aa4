"""The `liuhen` command as a user runs it, in Chinese by default and in English with --lang en."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bpmn_builder import sequence
from tests.conftest import PROCESSES, ROOT


def run(home: Path, *args: str, lang: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIUHEN_DATA_DIR": str(home), "LIUHEN_PROCESSES_DIR": str(PROCESSES)}
    env.pop("LIUHEN_DATABASE_URL", None)
    if lang:
        env["LIUHEN_LOCALE"] = lang
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("liuhen-home")
    result = run(home, "setup")
    assert result.returncode == 0, result.stderr
    return home


def test_unmigrated_database_says_which_command_to_run(tmp_path) -> None:
    result = run(tmp_path, "cases", lang="en")
    assert result.returncode == 1
    assert "liuhen migrate" in result.stderr


def test_setup_deploys_shipped_flowcharts_once(home) -> None:
    again = run(home, "setup", lang="en")
    assert again.returncode == 0, again.stderr
    shipped = sorted(p.stem for p in PROCESSES.glob("*.bpmn"))
    for process_id in shipped:
        assert f"{process_id} is already deployed as version 1" in again.stdout


def test_demo_then_verify_and_trace(home) -> None:
    demo = run(home, "demo", lang="en")
    assert demo.returncode == 0, demo.stderr
    assert "reached 准予设立，办结" in demo.stdout
    # One case is left waiting past its step's time limit, so the board and notices have something to show.
    assert "waits at 资产管理员验收入库" in demo.stdout
    assert "Raised cards for the cases past their time limits: 0 yellow, 1 red." in demo.stdout
    notices = run(home, "notices", lang="en")
    assert "time limit of step 资产管理员验收入库" in notices.stdout
    # The holder's task list shows the card and how far the step is overdue, as the web pages do.
    tasks = run(home, "tasks", "--as", "wang_fang", lang="en")
    assert "red card  due " in tasks.stdout
    assert re.search(r"overdue by \d+ working days", tasks.stdout), tasks.stdout
    board = run(home, "board", lang="en")
    assert re.search(r"time limit of step 资产管理员验收入库: due .*, overdue by \d+ working days  red card",
                     board.stdout), board.stdout

    verify = run(home, "verify", lang="en")
    assert verify.returncode == 0, verify.stderr
    assert "no event was altered" in verify.stdout

    trace = run(home, "--lang", "en", "trace", "1")
    assert trace.returncode == 0, trace.stderr
    assert trace.stdout.splitlines()[0].startswith("#1 ")
    assert "case_started" in trace.stdout

    cases = run(home, "cases", "--status", "completed", lang="en")
    assert "Case 1" in cases.stdout


def test_output_is_chinese_by_default(home) -> None:
    verify = run(home, "verify")
    assert verify.returncode == 0
    assert any("\u4e00" <= ch <= "\u9fff" for ch in verify.stdout), verify.stdout


def test_start_and_complete_from_command_line(home) -> None:
    started = run(home, "start", "reimbursement", "--as", "zhou_hong", "--title", "CLI 报销", lang="en")
    assert started.returncode == 0, started.stderr
    case_id = started.stdout.split()[2]

    tasks = run(home, "tasks", "--as", "zhou_hong", "--case", case_id, lang="en")
    assert tasks.returncode == 0, tasks.stderr
    line = next(line for line in tasks.stdout.splitlines() if "[Task_submit]" in line)
    task_id = line.split()[1]

    data = ('{"amount": 120, "expense_type": "office_supplies", "purpose": "打印纸", "involves_goods": false, '
            '"invoice_count": 1, "expense_date": "2026-11-30", "payee": "周红"}')
    completed = run(home, "complete", task_id, "--as", "zhou_hong", "--data", data, lang="en")
    assert completed.returncode == 0, completed.stderr
    assert f"Case {case_id} is now running" in completed.stdout
    assert "next:" in completed.stdout


def test_validate_reports_bad_file(home, tmp_path) -> None:
    good = tmp_path / "good.bpmn"
    good.write_bytes(sequence("cli_flow", ["A"]))
    bad = tmp_path / "bad.bpmn"
    bad.write_bytes(b"<definitions>")
    result = run(home, "validate", str(good), str(bad), lang="en")
    assert result.returncode == 1
    assert "good.bpmn: valid; processes: cli_flow." in result.stdout
    assert "bad.bpmn" in result.stderr
    assert "not well-formed" in result.stderr


def test_complete_rejects_invalid_json(home) -> None:
    result = run(home, "complete", "00000000-0000-0000-0000-000000000000", "--as", "li_na", "--data", "{oops",
                 lang="en")
    assert result.returncode == 2
    assert "--data is not valid JSON" in result.stderr


def test_task_shows_form_and_missing_fields(home) -> None:
    started = run(home, "start", "reimbursement", "--as", "xu_tao", lang="en")
    assert started.returncode == 0, started.stderr
    case_id = started.stdout.split()[2]
    tasks = run(home, "tasks", "--as", "xu_tao", "--case", case_id, lang="en")
    task_id = next(line for line in tasks.stdout.splitlines() if "[Task_submit]" in line).split()[1]

    shown = run(home, "task", task_id, lang="en")
    assert shown.returncode == 0, shown.stderr
    assert "amount (" in shown.stdout
    assert "required" in shown.stdout
    assert "office_supplies=" in shown.stdout

    empty = run(home, "complete", task_id, "--as", "xu_tao", "--data", "{}", lang="en")
    assert empty.returncode == 1
    assert "Required fields are missing" in empty.stderr
    assert "amount" in empty.stderr
    assert "payee" in empty.stderr


def test_argparse_headings_and_errors_follow_the_locale(tmp_path) -> None:
    chinese = run(tmp_path, "--help")
    assert chinese.returncode == 0
    assert chinese.stdout.startswith("用法：liuhen")
    assert "选项" in chinese.stdout
    assert "显示本帮助并退出" in chinese.stdout
    assert "\n位置参数：\n" in chinese.stdout
    assert "\n选项：\n" in chinese.stdout
    assert ":\n" not in chinese.stdout
    wrong = run(tmp_path, "cases", "--bogus")
    assert wrong.returncode == 2
    assert "错误：无法识别的参数：--bogus" in wrong.stderr
    english = run(tmp_path, "cases", "--bogus", lang="en")
    assert "error: unrecognized arguments: --bogus" in english.stderr
