"""How the `liuhen` command prints: times in Beijing time, and quietly into a pipe closed early."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from api.cli import EXIT_BROKEN_PIPE, main
from engine.clock import ManualClock
from engine.service import Liuhen
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, ROOT, add_user

# 16:04 UTC on 4 December is 00:04 on 5 December in Beijing, so the date differs between the two zones.
LATE_EVENING_UTC = datetime(2026, 12, 4, 16, 4, tzinfo=UTC)


@pytest.fixture
def cli_env(service: Liuhen, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Liuhen:
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(tmp_path))
    return service


def test_listings_print_beijing_time(cli_env: Liuhen, clock: ManualClock, capsys) -> None:
    clock.set(LATE_EVENING_UTC)
    cli_env.deploy(sequence("leave", ["Apply"]), "leave.bpmn", DESIGNER)
    case = cli_env.start_case("leave", add_user(cli_env, "zhou", ["staff"]), title="请假")

    assert main(["--lang", "en", "cases"]) == 0
    cases = capsys.readouterr().out
    assert main(["--lang", "en", "versions", "leave"]) == 0
    versions = capsys.readouterr().out
    assert main(["--lang", "en", "trace", str(case["id"])]) == 0
    trace = capsys.readouterr().out
    assert main(["--lang", "en", "trace", str(case["id"]), "--json"]) == 0
    events = json.loads(capsys.readouterr().out)

    assert "started by zhou at 2026-12-05 00:04" in cases
    assert "deployed by designer at 2026-12-05 00:04" in versions
    assert trace.splitlines()[0].startswith("#1  2026-12-05 00:04:00  case_started")
    assert "2026-12-04" not in cases + versions + trace
    assert events[0]["at"] == "2026-12-04T16:04:00.000000Z"


def test_closed_pipe_ends_quietly(cli_env: Liuhen) -> None:
    env = {**os.environ, "LIUHEN_LOCALE": "en"}
    for args, status in ((["cases"], EXIT_BROKEN_PIPE), (["--help"], 0)):
        # The reading end is closed before the command starts, so its first write finds no reader.
        reader, writer = os.pipe()
        os.close(reader)
        try:
            result = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env, stdout=writer,
                                    stderr=subprocess.PIPE, text=True, timeout=120)
        finally:
            os.close(writer)

        assert "Traceback" not in result.stderr, args
        assert "BrokenPipeError" not in result.stderr, args
        assert result.returncode == status, args
