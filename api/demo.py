"""Demo data: seed users and run the sample scenarios shipped beside each flowchart."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine import trace
from engine.clock import ManualClock
from engine.errors import InvalidInput
from engine.i18n import msg
from engine.service import Liuhen
from engine.users import SYSTEM_ACTOR, Actor, create_user, get_actor

logger = logging.getLogger(__name__)

# Gap between two demo steps, so the demo trace reads like work spread over a day.
STEP_GAP = timedelta(minutes=17)


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(msg("File {path} cannot be read as JSON: {reason}.", path=str(path), reason=str(exc))) \
            from exc


def seed_users(service: Liuhen, path: Path) -> list[dict[str, Any]]:
    """Create the demo users listed in ``path`` that do not exist yet; returns all listed users."""
    listed = load_json(path)
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        created = []
        for user in listed:
            if get_actor(conn, user["username"]) is None:
                create_user(conn, username=user["username"], display_name=user["display_name"],
                            password=user["password"], roles=user["roles"], posts=user.get("posts", []),
                            department=user.get("department"), now=now)
                # Recorded like a user an administrator adds, so the system trace names every account.
                created.append(trace.NewEvent("user_created", SYSTEM_ACTOR.username, now, payload={
                    "username": user["username"], "display_name": user["display_name"], "roles": user["roles"],
                    "posts": user.get("posts", []), "department": user.get("department"), "demo": True}))
        if created:
            trace.append(conn, trace.SYSTEM_STREAM, created)
    return listed


def iso_duration(text: str) -> timedelta:
    parsed = TimerEventDefinition.parse_iso_duration(text)
    return TimerEventDefinition.get_timedelta_from_start(parsed)


@dataclass
class ScenarioResult:
    process_id: str
    scenario: str
    case_id: int
    status: str
    end_element_id: str | None
    expected_end: str | None
    # For a case the demo leaves open: the step it should wait at, and the steps it does wait at.
    expected_waiting: str | None = None
    waiting_at: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        if self.expected_waiting is not None:
            return self.status == "running" and self.expected_waiting in self.waiting_at
        return self.status == "completed" and (self.expected_end is None or self.end_element_id == self.expected_end)


def _actor(service: Liuhen, username: str) -> Actor:
    with service.db.read() as conn:
        actor = get_actor(conn, username)
    if actor is None:
        raise InvalidInput(msg("Demo user {username} does not exist; run `liuhen setup` first.", username=username))
    return actor


def run_scenario(service: Liuhen, clock: ManualClock, process_id: str, scenario: dict[str, Any]) -> ScenarioResult:
    """Start one case and drive it through the scenario's steps with ``clock`` moving between steps."""
    steps = scenario["steps"]
    starter = next((s["user"] for s in steps if "user" in s), None)
    if starter is None:
        raise InvalidInput(msg("Scenario {name} names no user.", name=scenario.get("name")))
    case = service.start_case(process_id, _actor(service, starter), scenario.get("start_data", {}),
                              scenario.get("title"))
    for step in steps:
        clock.advance(STEP_GAP)
        if "advance" in step:
            clock.advance(iso_duration(step["advance"]))
            service.fire_due_timers()
            continue
        actor = _actor(service, step["user"])
        task = next((t for t in service.get_case(case["id"])["tasks"]
                     if t["element_id"] == step["task"] and t["status"] in ("ready", "claimed")), None)
        if task is None:
            raise InvalidInput(msg("Scenario {name}: no open task {task} in case {case_id}.",
                                   name=scenario["name"], task=step["task"], case_id=case["id"]))
        service.complete(task["id"], actor, step.get("data", {}))
    final = service.get_case(case["id"])
    return ScenarioResult(process_id, scenario["name"], case["id"], final["status"], final["end_element_id"],
                          scenario.get("expect_end"), scenario.get("expect_waiting_at"),
                          tuple(task["element_id"] for task in final["tasks"]))


def scenario_files(processes_dir: Path) -> list[Path]:
    return sorted((processes_dir / "scenarios").glob("*.json"))


def total_advance(document: dict[str, Any]) -> timedelta:
    """Return how far the clock moves while the document's scenarios and open cases run."""
    total = timedelta()
    for scenario in document["scenarios"] + document.get("open_cases", []):
        for step in scenario["steps"]:
            total += STEP_GAP
            if "advance" in step:
                total += iso_duration(step["advance"])
    return total
