"""Every shipped flowchart driven to its end events over HTTP against a real uvicorn server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app
from api.demo import iso_duration, seed_users
from engine.clock import ManualClock
from engine.service import Liuhen
from tests.conftest import PROCESSES, LiveServer

SCENARIO_FILES = sorted((PROCESSES / "scenarios").glob("*.json"))
DEMO_USERS = json.loads((PROCESSES / "demo-users.json").read_text(encoding="utf-8"))
PASSWORDS = {user["username"]: user["password"] for user in DEMO_USERS}
ADMIN_NAME = next(user["username"] for user in DEMO_USERS if "admin" in user["roles"])
AUDITOR_NAME = next(user["username"] for user in DEMO_USERS if "auditor" in user["roles"])
DESIGNER_NAME = next(user["username"] for user in DEMO_USERS if "designer" in user["roles"])


class Client:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.tokens: dict[str, str] = {}

    def as_user(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            response = self.http.post("/api/auth/login", json={"username": username, "password": PASSWORDS[username]})
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def call(self, method: str, path: str, username: str, expected: int = 200, headers: dict | None = None,
             **kwargs: object) -> object:
        response = self.http.request(method, path, headers={**self.as_user(username), **(headers or {})}, **kwargs)
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


@pytest.fixture
def live(service: Liuhen) -> Iterator[Client]:
    seed_users(service, PROCESSES / "demo-users.json")
    with LiveServer(create_app(service.settings, service)) as server:
        client = Client(server.url)
        for path in sorted(PROCESSES.glob("*.bpmn")):
            response = client.http.post("/api/definitions", params={"filename": path.name},
                                        content=path.read_bytes(),
                                        headers={**client.as_user(DESIGNER_NAME), "Content-Type": "application/xml"})
            assert response.status_code == 200, response.text
        yield client
        client.http.close()


def _drive(client: Client, clock: ManualClock, process_id: str, scenario: dict) -> dict:
    steps = scenario["steps"]
    starter = next(step["user"] for step in steps if "user" in step)
    case = client.call("POST", "/api/cases", starter, 201,
                       json={"process_id": process_id, "title": scenario.get("title"),
                             "data": scenario.get("start_data", {})})
    for step in steps:
        if "advance" in step:
            clock.advance(iso_duration(step["advance"]))
            client.tokens.clear()  # login tokens expire as the clock moves on by days
            client.call("POST", "/api/timers/fire", ADMIN_NAME)
            continue
        mine = client.call("GET", "/api/tasks", step["user"], params={"case_id": case["id"]})
        task = next((t for t in mine if t["element_id"] == step["task"]), None)
        assert task is not None, f"{scenario['name']}: {step['user']} sees no task {step['task']} in {mine}"
        detail = client.call("GET", f"/api/tasks/{task['id']}", step["user"])
        assert detail["element_id"] == step["task"]
        client.call("POST", f"/api/tasks/{task['id']}/complete", step["user"], json={"data": step.get("data", {})})
    return client.call("GET", f"/api/cases/{case['id']}", starter)


@pytest.mark.parametrize("scenario_file", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_shipped_flowchart_scenarios(scenario_file, live: Client, clock: ManualClock) -> None:
    document = json.loads(scenario_file.read_text(encoding="utf-8"))
    for scenario in document["scenarios"]:
        case = _drive(live, clock, document["process_id"], scenario)
        assert case["status"] == "completed", scenario["name"]
        assert case["end_element_id"] == scenario["expect_end"], scenario["name"]
        assert case["tasks"] == [], scenario["name"]

        trace = live.call("GET", f"/api/cases/{case['id']}/trace", AUDITOR_NAME)
        assert trace[0]["kind"] == "case_started"
        assert trace[-1]["kind"] == "case_completed"
        assert [event["seq"] for event in trace] == list(range(1, len(trace) + 1))
        completed = [event for event in trace if event["kind"] == "task_completed"]
        assert len(completed) == sum(1 for step in scenario["steps"] if "task" in step)

    report = live.call("GET", "/api/verify", AUDITOR_NAME)
    assert report["ok"] is True
    assert all(stream["ok"] for stream in report["streams"])


def test_verify_over_http_names_tampered_event(live: Client, service: Liuhen, clock: ManualClock) -> None:
    document = json.loads(SCENARIO_FILES[0].read_text(encoding="utf-8"))
    case = _drive(live, clock, document["process_id"], document["scenarios"][0])
    assert live.call("GET", f"/api/cases/{case['id']}/verify", AUDITOR_NAME)["ok"] is True

    # An insider with database access rewrites who completed a step, bypassing the append-only trigger.
    with service.db.engine.begin() as conn:
        if service.db.is_sqlite:
            conn.execute(text("DROP TRIGGER trace_events_no_update"))
        else:
            conn.execute(text("ALTER TABLE trace_events DISABLE TRIGGER trace_events_append_only"))
        conn.execute(text("UPDATE trace_events SET actor = 'someone_else' WHERE stream = :s AND seq = 4"),
                     {"s": f"case:{case['id']}"})

    report = live.call("GET", f"/api/cases/{case['id']}/verify", AUDITOR_NAME, headers={"Accept-Language": "en"})
    assert report["ok"] is False
    stream = report["streams"][0]
    assert stream["seq"] == 4
    assert stream["problem"] == "edited"
    assert "column actor" in stream["message"]
