"""Authorization matrix: every route of the app, called by every kind of user, against the policy of docs/security.md.

The routes are read from the app itself, so a route added without an entry in ROUTES fails
``test_every_route_has_a_policy``. Each entry gives the expected status per caller and builds the
request: read routes share records made once per module, and each allowed change gets a fresh record
of its own, so the cells do not depend on their order. A denied request must leave the trace unchanged.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.routing import Mount

from api.app import create_app
from engine import overrides, publication
from engine.clock import ManualClock
from engine.db import trace_events
from engine.service import Liuhen
from engine.settings import Settings
from engine.supervision import check_deadlines
from engine.users import Actor, create_user, get_actor, issue_token
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import PROCESSES, START, migrated_database

POSTGRES_URL = os.environ.get("LIUHEN_TEST_POSTGRES_URL")
CALLERS = ("anonymous", "staff_a", "staff_b", "auditor", "designer", "admin")
SIGNED_IN = CALLERS[1:]
# A redirect of an HTML page to its sign-in form.
SIGN_IN = 303

POWER_ITEM = ('<liuhen:powerItem code="MATRIX-1" kind="external" category="行政许可">'
              "<liuhen:name>矩阵许可</liuhen:name><liuhen:handlingBody>某市测试局</liuhen:handlingBody>"
              "<liuhen:responsibleSubject>局长</liuhen:responsibleSubject>"
              "<liuhen:legalBasis>《测试办法》</liuhen:legalBasis></liuhen:powerItem>")
CHECKPOINT = ('<liuhen:riskCheckpoint id="RC_approve" level="medium" category="power_operation">'
              "<liuhen:description>审批人违规审批</liuhen:description>"
              "<liuhen:controlMeasure>不予批准须说明理由</liuhen:controlMeasure>"
              '<liuhen:control id="C_reason" type="reasonedDecision" decisionField="decision" '
              'reasonField="decision_reason" decisions="refuse" minLength="15"/></liuhen:riskCheckpoint>')


def flowchart(process_id: str, approve_name: str = "审批") -> bytes:
    """Accept at the window (one working day), then Approve in the approval section under a hard control."""
    return definitions(process(
        process_id,
        lanes({"受理窗口": ["S", "Accept"], "审批科室": ["Approve", "E"]}),
        node("startEvent", "S"),
        user_task("Accept", "受理", extra='<liuhen:timeLimit amount="1" unit="working_day"/>'),
        node("userTask", "Approve", approve_name, f"<bpmn:extensionElements>{CHECKPOINT}</bpmn:extensionElements>"),
        node("endEvent", "E"),
        flow("f1", "S", "Accept"), flow("f2", "Accept", "Approve"), flow("f3", "Approve", "E"),
        extensions=POWER_ITEM,
    ))


USERS = {
    "staff_a": (["staff"], ["受理窗口"], "甲股"),
    "staff_b": (["staff"], ["审批科室"], "乙股"),
    "auditor": (["auditor"], [], "纪检监察组"),
    "designer": (["designer"], [], "信息中心"),
    "admin": (["admin"], [], "信息中心"),
    "admin2": (["admin"], [], "信息中心"),
    "member": (["staff"], ["受理窗口"], "甲股"),
}


def password(username: str) -> str:
    return f"pw-{username}-secret"


# The world: records made once per module.

@dataclass
class World:
    service: Liuhen
    clock: ManualClock
    client: TestClient
    actors: dict[str, Actor]
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    def new_case(self) -> int:
        """Start a case of department 甲股 that waits at Accept, a step of staff_a's post."""
        return int(self.service.start_case("matrix", self.actors["staff_a"], {}, "矩阵办件")["id"])

    def old_case(self) -> int:
        """Start a case on version 1, which can move to version 2."""
        return int(self.service.start_case("matrix", self.actors["staff_a"], {}, "旧版办件", 1)["id"])

    def task(self, case_id: int, element_id: str = "Accept") -> str:
        tasks = self.service.list_tasks(self.actors["admin"], scope="all", case_id=case_id)
        return str(next(task["id"] for task in tasks if task["element_id"] == element_id))

    def new_task(self) -> str:
        return self.task(self.new_case())

    def claimed_task(self) -> str:
        task_id = self.new_task()
        self.service.claim(task_id, self.actors["staff_a"])
        return task_id

    def approve_task(self) -> str:
        case_id = self.new_case()
        self.service.complete(self.task(case_id), self.actors["staff_a"], {})
        return self.task(case_id, "Approve")

    def pending_override(self) -> int:
        override = overrides.request_override(self.service, self.approve_task(), "C_reason",
                                              "申请人材料已由上级机关核实无误", self.actors["admin2"])
        return int(override["id"])

    def token(self, username: str) -> str:
        with self.service.db.write() as conn:
            token, _expires = issue_token(conn, username, self.service.now(), timedelta(hours=8))
        return token

    def unique(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:8]}"

    def new_user(self, active: bool = True) -> str:
        username = self.unique("user")
        with self.service.db.write() as conn:
            create_user(conn, username=username, display_name=username, password=password(username),
                        roles=["staff"], posts=["受理窗口"], department="甲股", now=self.service.now())
        if not active:
            from engine import user_admin

            user_admin.deactivate_user(self.service, self.actors["admin"], username)
        return username

    def trace_size(self) -> int:
        with self.service.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(trace_events)).scalar_one())


@pytest.fixture(scope="module", params=[pytest.param("sqlite", id="sqlite"),
                                        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("matrix")
    with migrated_database(request.param, folder) as url:
        clock = ManualClock(START)
        settings = Settings(database_url=url, data_dir=folder, processes_dir=PROCESSES)
        service = Liuhen(settings, clock=clock)
        try:
            with TestClient(create_app(settings, service), raise_server_exceptions=False,
                            follow_redirects=False) as client:
                yield _build_world(service, clock, client)
        finally:
            service.db.dispose()


def _build_world(service: Liuhen, clock: ManualClock, client: TestClient) -> World:
    actors = {}
    with service.db.write() as conn:
        for username, (roles, posts, department) in USERS.items():
            actors[username] = create_user(conn, username=username, display_name=username,
                                           password=password(username), roles=roles, posts=posts,
                                           department=department, now=service.now())
    world = World(service, clock, client, actors)
    designer = actors["designer"]
    service.deploy(flowchart("matrix"), "matrix.bpmn", designer)
    service.deploy(flowchart("matrix", "审批决定"), "matrix.bpmn", designer)
    service.deploy(flowchart("withdrawable"), "withdrawable.bpmn", designer)
    publication.publish(service, "matrix", 1, actors["admin"])
    publication.publish(service, "withdrawable", 1, actors["admin"])

    # Cases started before the clock moves on are a working day late at Accept, so they carry a notice.
    world.ids["case"] = world.new_case()
    world.ids["task"] = world.task(world.ids["case"])
    world.ids["claimed_task"] = world.claimed_task()
    clock.advance(timedelta(days=3))
    check_deadlines(service)
    world.ids["notice"] = next(notice["id"] for notice in
                               _notices(client, world, "auditor") if notice["case_id"] == world.ids["case"])
    world.ids["override"] = world.pending_override()
    world.ids["event"] = service.case_trace(world.ids["case"])[0]["id"]
    world.ids["checkpoint"] = client.post("/api/audit/checkpoints", headers=_bearer(world, "auditor")).json()
    client.put("/api/modeler/drafts/kept", content=flowchart("draft"), headers=_bearer(world, "designer"))
    return world


def _notices(client: TestClient, world: World, caller: str) -> list[dict[str, Any]]:
    response = client.get("/api/supervision/notices", params={"scope": "all"}, headers=_bearer(world, caller))
    assert response.status_code == 200, response.text
    return list(response.json())


def _bearer(world: World, caller: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller not in world.tokens:
        response = world.client.post("/api/auth/login", json={"username": caller, "password": password(caller)})
        assert response.status_code == 200, response.text
        world.tokens[caller] = response.json()["token"]
    return {"Authorization": f"Bearer {world.tokens[caller]}"}


# Requests and expectations.

@dataclass(frozen=True)
class Call:
    """One request: its path and the keyword arguments of TestClient.request."""

    path: str
    options: dict[str, Any] = field(default_factory=dict)
    # Sign in with this token instead of the caller's usual one (for requests that revoke it).
    token: str | None = None


Build = Callable[[World, str], Call]


def fixed(path: str, **options: Any) -> Build:
    """A request to ``path``, where {name} is filled from the world's records."""
    return lambda world, caller: Call(path.format(**world.ids), options)


def fresh(make: Callable[[World], Any], path: str, shared: str | None = None, **options: Any) -> Build:
    """A request on a new record for a caller the policy allows, and on a shared one for the others."""

    def build(world: World, caller: str) -> Call:
        if caller in allowed_callers(world, build):
            value = make(world)
        elif shared:
            value = world.ids[shared]
        else:
            value = None
        return Call(path.format(**world.ids, new=value), options)

    return build


def allowed_callers(world: World, build: Build) -> set[str]:
    rule = next(entry.expected for entry in ROUTES.values() if entry.build is build)
    return {caller for caller, status in rule.items() if 200 <= status < 300}


def rule(allowed: str, ok: int = 200, hidden: str = "", anonymous: int = 401, denied: int = 403) -> dict[str, int]:
    """Expected statuses: ``ok`` for the allowed callers, 404 for the hidden ones, ``denied`` for the rest."""
    names = set(SIGNED_IN) if allowed == "everyone" else set(allowed.split())
    hidden_names = set(hidden.split())
    expected = {"anonymous": anonymous}
    for caller in SIGNED_IN:
        if caller in names:
            expected[caller] = ok
        elif caller in hidden_names:
            expected[caller] = 404
        else:
            expected[caller] = denied
    return expected


def public(ok: int = 200) -> dict[str, int]:
    return dict.fromkeys(CALLERS, ok)


def page(allowed: str, hidden: str = "") -> dict[str, int]:
    return rule(allowed, hidden=hidden, anonymous=SIGN_IN)


EVERYONE = rule("everyone")
AUDITORS = rule("auditor admin")
ADMINS = rule("admin")
DESIGNERS = rule("designer admin")
CASE_READERS = rule("staff_a auditor designer admin", hidden="staff_b")


@dataclass(frozen=True)
class Entry:
    expected: dict[str, int]
    build: Build
    # Cells where the product does not follow the policy yet; each becomes a strict expected failure.
    gaps: frozenset[str] = frozenset()


def _login_form(world: World, caller: str) -> Call:
    return Call("/login", {"data": {"username": "member", "password": password("member"), "next": "/workspace"}})


def _logout(world: World, caller: str) -> Call:
    return Call("/api/auth/logout", token=None if caller == "anonymous" else world.token(caller))


def _draft_to_delete(world: World) -> str:
    name = world.unique("draft")
    world.client.put(f"/api/modeler/drafts/{name}", content=flowchart("draft"), headers=_bearer(world, "designer"))
    return name


def _change(world: World) -> int:
    return world.new_case()


ROUTES: dict[tuple[str, str], Entry] = {
    # Sign-in, documentation and public pages.
    ("POST", "/api/auth/login"): Entry(public(), fixed("/api/auth/login", json={"username": "member",
                                                                            "password": password("member")})),
    ("POST", "/api/auth/logout"): Entry(rule("everyone", ok=204), _logout),
    ("GET", "/api/auth/me"): Entry(EVERYONE, fixed("/api/auth/me")),
    ("GET", "/api/health"): Entry(public(), fixed("/api/health")),
    ("GET", "/api/catalogue"): Entry(public(), fixed("/api/catalogue")),
    ("GET", "/openapi.json"): Entry(public(), fixed("/openapi.json")),
    ("GET", "/docs"): Entry(public(), fixed("/docs")),
    ("GET", "/"): Entry(public(), fixed("/")),
    ("GET", "/public/items/{process_id}"): Entry(public(), fixed("/public/items/matrix")),
    ("GET", "/public/items/{process_id}/diagram.{extension}"): Entry(public(),
                                                                     fixed("/public/items/matrix/diagram.svg")),
    ("GET", "/login"): Entry(public(), fixed("/login")),
    ("POST", "/login"): Entry(public(303), _login_form),
    ("POST", "/logout"): Entry(public(303), fixed("/logout")),

    # Definitions and diagrams.
    ("POST", "/api/definitions"): Entry(DESIGNERS, fixed("/api/definitions", params={"filename": "matrix.bpmn"},
                                                         content=flowchart("matrix"),
                                                         headers={"Content-Type": "application/xml"})),
    ("POST", "/api/definitions/validate"): Entry(DESIGNERS, fixed("/api/definitions/validate",
                                                                  content=flowchart("matrix"),
                                                                  headers={"Content-Type": "application/xml"})),
    ("GET", "/api/definitions"): Entry(EVERYONE, fixed("/api/definitions")),
    ("GET", "/api/definitions/{process_id}"): Entry(EVERYONE, fixed("/api/definitions/matrix")),
    ("GET", "/api/definitions/{process_id}/versions/{version}"): Entry(EVERYONE,
                                                                       fixed("/api/definitions/matrix/versions/1")),
    ("GET", "/api/definitions/{process_id}/versions/{version}/bpmn"): Entry(
        EVERYONE, fixed("/api/definitions/matrix/versions/1/bpmn")),
    ("GET", "/api/definitions/{process_id}/versions/{version}/diagram.{fmt}"): Entry(
        EVERYONE, fixed("/api/definitions/matrix/versions/1/diagram.svg")),
    ("GET", "/api/definitions/{process_id}/diff"): Entry(EVERYONE, fixed("/api/definitions/matrix/diff",
                                                                         params={"from": 1, "to": 2})),
    ("GET", "/api/definitions/{process_id}/diff.{fmt}"): Entry(EVERYONE, fixed("/api/definitions/matrix/diff.svg",
                                                                               params={"from": 1, "to": 2})),
    ("GET", "/api/definitions/{process_id}/versions/{version}/heatmap.{fmt}"): Entry(
        AUDITORS, fixed("/api/definitions/matrix/versions/1/heatmap.svg")),
    ("GET", "/api/definitions/{process_id}/versions/{version}/conformance"): Entry(
        AUDITORS, fixed("/api/definitions/matrix/versions/1/conformance")),
    ("POST", "/api/definitions/{process_id}/versions/{version}/publish"): Entry(
        ADMINS, fixed("/api/definitions/matrix/versions/2/publish")),
    ("DELETE", "/api/definitions/{process_id}/publication"): Entry(
        rule("admin", ok=204), fixed("/api/definitions/withdrawable/publication")),
    ("GET", "/api/review/checkpoints"): Entry(rule("auditor designer admin"), fixed("/api/review/checkpoints")),
    ("POST", "/api/review/checkpoints/{checkpoint_id}/reviewed"): Entry(
        DESIGNERS, fixed("/api/review/checkpoints/RC_approve/reviewed",
                         json={"note": "控制措施仍然有效", "process_id": "matrix"})),
    ("GET", "/api/register"): Entry(rule("auditor designer admin"), fixed("/api/register", params={"format": "json"})),

    # Cases.
    ("POST", "/api/cases"): Entry(rule("staff_a staff_b admin", ok=201),
                                  fixed("/api/cases", json={"process_id": "matrix", "title": "新办件"})),
    ("GET", "/api/cases"): Entry(rule("staff_a staff_b auditor designer admin"), fixed("/api/cases")),
    ("GET", "/api/cases/{case_id}"): Entry(CASE_READERS, fixed("/api/cases/{case}")),
    ("GET", "/api/cases/{case_id}/trace"): Entry(CASE_READERS, fixed("/api/cases/{case}/trace")),
    ("GET", "/api/cases/{case_id}/verify"): Entry(CASE_READERS, fixed("/api/cases/{case}/verify")),
    ("GET", "/api/cases/{case_id}/clocks"): Entry(CASE_READERS, fixed("/api/cases/{case}/clocks")),
    ("GET", "/api/cases/{case_id}/diagram.{fmt}"): Entry(CASE_READERS, fixed("/api/cases/{case}/diagram.svg")),
    ("GET", "/api/cases/{case_id}/replay"): Entry(AUDITORS, fixed("/api/cases/{case}/replay")),
    ("GET", "/api/cases/{case_id}/state"): Entry(AUDITORS, fixed("/api/cases/{case}/state", params={"at": 1})),
    ("GET", "/api/cases/{case_id}/conformance"): Entry(AUDITORS, fixed("/api/cases/{case}/conformance")),
    ("POST", "/api/cases/{case_id}/cancel"): Entry(ADMINS, fresh(_change, "/api/cases/{new}/cancel", "case",
                                                                 json={"reason": "申请人撤回申请"})),
    ("POST", "/api/cases/{case_id}/data"): Entry(ADMINS, fresh(_change, "/api/cases/{new}/data", "case",
                                                               json={"changes": {"amount": 1},
                                                                     "reason": "更正录入错误"})),
    ("POST", "/api/cases/{case_id}/migrate"): Entry(ADMINS, fresh(World.old_case, "/api/cases/{new}/migrate", "case",
                                                                  json={"version": 2, "reason": "改用新版流程"})),
    ("GET", "/api/verify"): Entry(AUDITORS, fixed("/api/verify")),
    ("GET", "/api/trace/system"): Entry(AUDITORS, fixed("/api/trace/system")),

    # Tasks.
    ("GET", "/api/tasks"): Entry(EVERYONE, fixed("/api/tasks")),
    ("GET", "/api/tasks/{task_id}"): Entry(CASE_READERS, fixed("/api/tasks/{task}")),
    ("POST", "/api/tasks/{task_id}/claim"): Entry(rule("staff_a", hidden="staff_b"),
                                                  fresh(World.new_task, "/api/tasks/{new}/claim", "task")),
    ("POST", "/api/tasks/{task_id}/release"): Entry(rule("staff_a admin", hidden="staff_b"),
                                                    fresh(World.claimed_task, "/api/tasks/{new}/release",
                                                          "claimed_task")),
    ("POST", "/api/tasks/{task_id}/complete"): Entry(rule("staff_a", hidden="staff_b"),
                                                     fresh(World.new_task, "/api/tasks/{new}/complete", "task",
                                                           json={"data": {}})),
    ("POST", "/api/tasks/{task_id}/check"): Entry(rule("staff_a", hidden="staff_b"),
                                                  fixed("/api/tasks/{task}/check", json={"data": {}})),
    ("POST", "/api/tasks/{task_id}/reassign"): Entry(ADMINS, fresh(World.new_task, "/api/tasks/{new}/reassign",
                                                                   "task", json={"assignee": "member",
                                                                                 "reason": "原经办人休假"})),
    ("POST", "/api/tasks/{task_id}/skip"): Entry(ADMINS, fresh(World.new_task, "/api/tasks/{new}/skip", "task",
                                                               json={"reason": "系统故障补录"})),
    ("POST", "/api/timers/fire"): Entry(ADMINS, fixed("/api/timers/fire")),

    # Controls and overrides.
    ("POST", "/api/tasks/{task_id}/overrides"): Entry(rule("admin", ok=201), fresh(
        World.approve_task, "/api/tasks/{new}/overrides", "task",
        json={"control_id": "C_reason", "reason": "申请人材料已由上级机关核实无误"})),
    ("POST", "/api/overrides/{override_id}/approve"): Entry(ADMINS, fresh(World.pending_override,
                                                                          "/api/overrides/{new}/approve", "override")),
    ("POST", "/api/overrides/{override_id}/reject"): Entry(ADMINS, fresh(World.pending_override,
                                                                         "/api/overrides/{new}/reject", "override")),
    ("GET", "/api/overrides"): Entry(AUDITORS, fixed("/api/overrides")),
    ("GET", "/api/overrides/{override_id}"): Entry(AUDITORS, fixed("/api/overrides/{override}")),

    # Supervision and statistics.
    ("GET", "/api/supervision/board"): Entry(AUDITORS, fixed("/api/supervision/board")),
    ("GET", "/api/supervision/notices"): Entry(EVERYONE, fixed("/api/supervision/notices")),
    ("POST", "/api/supervision/notices/{notice_id}/answer"): Entry(
        rule("staff_a", hidden="staff_b"), fixed("/api/supervision/notices/{notice}/answer",
                                                 json={"answer": "已联系申请人补齐材料，今日办结"})),
    ("POST", "/api/supervision/check"): Entry(ADMINS, fixed("/api/supervision/check")),
    ("GET", "/api/supervision/statistics"): Entry(AUDITORS, fixed("/api/supervision/statistics")),
    ("GET", "/api/supervision/grades"): Entry(AUDITORS, fixed("/api/supervision/grades")),
    ("GET", "/api/risk-events"): Entry(AUDITORS, fixed("/api/risk-events")),

    # Audit.
    ("GET", "/api/exports/{export_format}"): Entry(AUDITORS, fixed("/api/exports/json")),
    ("GET", "/api/audit/checkpoints"): Entry(AUDITORS, fixed("/api/audit/checkpoints")),
    ("POST", "/api/audit/checkpoints"): Entry(rule("auditor admin", ok=201), fixed("/api/audit/checkpoints")),
    ("POST", "/api/audit/verify"): Entry(AUDITORS, lambda world, caller: Call("/api/audit/verify", {
        "json": world.ids["checkpoint"]})),
    ("GET", "/api/audit/events/{event_id}/proof"): Entry(AUDITORS, fixed("/api/audit/events/{event}/proof")),

    # Calendar.
    ("GET", "/api/calendar/status"): Entry(EVERYONE, fixed("/api/calendar/status")),
    ("GET", "/api/calendar/deadline"): Entry(EVERYONE, fixed("/api/calendar/deadline",
                                                             params={"start": "2026-12-01", "amount": "5"})),
    ("GET", "/api/calendar/{year}"): Entry(EVERYONE, fixed("/api/calendar/2026")),
    ("PUT", "/api/calendar/days/{day}"): Entry(ADMINS, fixed("/api/calendar/days/2026-12-26",
                                                             json={"type": "holiday", "name": "周六"})),
    ("POST", "/api/calendar/import"): Entry(ADMINS, fixed("/api/calendar/import", content="2027-01-01,holiday,元旦\n",
                                                          headers={"Content-Type": "text/csv"})),

    # Users.
    ("GET", "/api/users"): Entry(ADMINS, fixed("/api/users")),
    ("POST", "/api/users"): Entry(rule("admin", ok=201), lambda world, caller: Call("/api/users", {"json": {
        "username": world.unique("new"), "display_name": "新用户", "password": "long-enough-password",
        "roles": ["staff"], "posts": ["受理窗口"], "department": "甲股"}})),
    ("GET", "/api/users/{username}"): Entry(ADMINS, fixed("/api/users/member")),
    ("PATCH", "/api/users/{username}"): Entry(ADMINS, fresh(World.new_user, "/api/users/{new}", None,
                                                            json={"display_name": "改名"})),
    ("POST", "/api/users/{username}/password"): Entry(rule("admin", ok=204), fresh(
        World.new_user, "/api/users/{new}/password", None, json={"password": "another-long-password"})),
    ("POST", "/api/users/{username}/deactivate"): Entry(ADMINS, fresh(World.new_user, "/api/users/{new}/deactivate")),
    ("POST", "/api/users/{username}/reactivate"): Entry(ADMINS, fresh(lambda world: world.new_user(active=False),
                                                                      "/api/users/{new}/reactivate")),

    # Workspace and modeler JSON.
    ("GET", "/api/workspace/cases"): Entry(AUDITORS, fixed("/api/workspace/cases")),
    ("GET", "/api/workspace/people"): Entry(EVERYONE, fixed("/api/workspace/people", params={"username": "member"})),
    ("GET", "/api/modeler/drafts"): Entry(DESIGNERS, fixed("/api/modeler/drafts")),
    ("GET", "/api/modeler/drafts/{name}"): Entry(DESIGNERS, fixed("/api/modeler/drafts/kept")),
    ("PUT", "/api/modeler/drafts/{name}"): Entry(DESIGNERS, fixed("/api/modeler/drafts/kept",
                                                                  content=flowchart("draft"))),
    ("DELETE", "/api/modeler/drafts/{name}"): Entry(rule("designer admin", ok=204),
                                                    fresh(_draft_to_delete, "/api/modeler/drafts/{new}", None)),

    # Administration.
    ("GET", "/api/admin/organisation"): Entry(AUDITORS, fixed("/api/admin/organisation")),
    ("GET", "/api/admin/publications"): Entry(ADMINS, fixed("/api/admin/publications")),
    ("GET", "/api/admin/keys"): Entry(ADMINS, fixed("/api/admin/keys")),
    ("POST", "/api/admin/keys/rotate"): Entry(rule("admin", ok=201), fixed("/api/admin/keys/rotate")),
    ("GET", "/workspace/admin"): Entry(rule("admin", ok=303, anonymous=SIGN_IN), fixed("/workspace/admin")),
    ("GET", "/workspace/admin/users"): Entry(page("admin"), fixed("/workspace/admin/users")),
    ("GET", "/workspace/admin/organisation"): Entry(page("admin"), fixed("/workspace/admin/organisation")),
    ("GET", "/workspace/admin/calendar"): Entry(page("admin"), fixed("/workspace/admin/calendar")),
    ("GET", "/workspace/admin/publishing"): Entry(page("admin"), fixed("/workspace/admin/publishing")),
    ("GET", "/workspace/admin/keys"): Entry(page("admin"), fixed("/workspace/admin/keys")),
    ("GET", "/workspace/admin/review"): Entry(page("admin"), fixed("/workspace/admin/review")),

    # Pages, signed in with the pages' cookie.
    ("GET", "/staff/flowcharts"): Entry(page("everyone"), fixed("/staff/flowcharts")),
    ("GET", "/workspace"): Entry(rule("everyone", ok=303, anonymous=SIGN_IN), fixed("/workspace")),
    ("GET", "/workspace/tasks"): Entry(page("staff_a staff_b"), fixed("/workspace/tasks")),
    ("GET", "/workspace/start"): Entry(page("staff_a staff_b"), fixed("/workspace/start")),
    ("GET", "/workspace/cases"): Entry(page("staff_a staff_b"), fixed("/workspace/cases")),
    ("GET", "/workspace/tasks/{task_id}"): Entry(page("staff_a", hidden="staff_b"), fixed("/workspace/tasks/{task}")),
    ("GET", "/workspace/cases/{case_id}"): Entry(page("staff_a auditor designer admin", hidden="staff_b"),
                                                 fixed("/workspace/cases/{case}")),
    ("GET", "/workspace/audit"): Entry(page("auditor admin"), fixed("/workspace/audit")),
    ("GET", "/workspace/audit/cases/{case_id}"): Entry(page("auditor admin"), fixed("/workspace/audit/cases/{case}")),
    ("GET", "/workspace/board"): Entry(page("auditor admin"), fixed("/workspace/board")),
    ("GET", "/workspace/statistics"): Entry(page("auditor admin"), fixed("/workspace/statistics")),
    ("GET", "/modeler"): Entry(page("designer admin"), fixed("/modeler")),
}
# Mounted folders of static files, public by design.
MOUNTS = {"/static", "/docs-assets"}
API_PREFIXES = ("/api/", "/openapi.json", "/docs")


def app_routes(app: Any) -> tuple[set[tuple[str, str]], set[str]]:
    """Return every (method, path) the app serves, and the paths of its mounts."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before routers were included lazily
        contexts: list[Any] = list(app.routes)
    else:
        contexts = list(iter_route_contexts(app.routes))
    routes, mounts = set(), set()
    for context in contexts:
        route = getattr(context, "original_route", context)
        if isinstance(route, Mount):
            mounts.add(context.path)
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                routes.add((method, context.path))
    return routes, mounts


def test_every_route_has_a_policy(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", data_dir=tmp_path))
    routes, mounts = app_routes(app)

    assert sorted(routes - set(ROUTES)) == [], "add these routes to ROUTES with their policy"
    assert sorted(set(ROUTES) - routes) == [], "these ROUTES entries name no route of the app"
    assert mounts == MOUNTS


def test_openapi_lists_every_api_route(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", data_dir=tmp_path))
    documented = {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
                  for method in operations}
    api_routes = {key for key in ROUTES if key[1].startswith("/api/")}

    assert api_routes == documented


def _send(world: World, method: str, path: str, caller: str, call: Call) -> Any:
    options = dict(call.options)
    headers = dict(options.pop("headers", {}))
    cookies: dict[str, str] = {}
    if caller != "anonymous":
        token = call.token or world.tokens.get(caller) or _bearer(world, caller)["Authorization"].split()[1]
        if path.startswith(API_PREFIXES):
            headers["Authorization"] = f"Bearer {token}"
        else:
            cookies["liuhen_token"] = token
            headers["Accept"] = "text/html"
    world.client.cookies.clear()
    for name, value in cookies.items():
        world.client.cookies.set(name, value)
    try:
        return world.client.request(method, call.path, headers=headers, **options)
    finally:
        world.client.cookies.clear()


@pytest.mark.parametrize("route", list(ROUTES), ids=[f"{method} {path}" for method, path in ROUTES])
def test_route_policy(world: World, route: tuple[str, str]) -> None:
    method, template = route
    entry = ROUTES[route]
    failures, fixed_gaps = [], []
    for caller in CALLERS:
        expected = entry.expected[caller]
        call = entry.build(world, caller)
        before = world.trace_size()
        response = _send(world, method, template, caller, call)
        matched = response.status_code == expected
        if caller in entry.gaps and matched:
            fixed_gaps.append(caller)
        elif caller not in entry.gaps and not matched:
            failures.append(f"{caller}: expected {expected}, got {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            assert world.trace_size() == before, f"{caller}: a denied {method} {call.path} changed the trace"

    assert failures == []
    assert fixed_gaps == [], "the product follows the policy for these callers now; remove them from gaps"
    if entry.gaps:
        pytest.xfail(f"known gap for {', '.join(sorted(entry.gaps))}: the page shows a record it should hide")


def test_staff_list_only_visible_cases(world: World) -> None:
    own = _send(world, "GET", "/api/cases", "staff_a", Call("/api/cases"))
    other = _send(world, "GET", "/api/cases", "staff_b", Call("/api/cases"))

    assert world.ids["case"] in {case["id"] for case in own.json()}
    assert world.ids["case"] not in {case["id"] for case in other.json()}


def test_staff_see_cases_reaching_their_post(world: World) -> None:
    approve_task = world.approve_task()
    case_id = world.service.get_task(approve_task)["case_id"]

    listed = _send(world, "GET", "/api/cases", "staff_b", Call("/api/cases"))
    detail = _send(world, "GET", "/api/cases/{case_id}", "staff_b", Call(f"/api/cases/{case_id}"))

    assert case_id in {case["id"] for case in listed.json()}
    assert detail.status_code == 200


def test_staff_all_tasks_need_a_visible_case(world: World) -> None:
    everything = _send(world, "GET", "/api/tasks", "staff_a", Call("/api/tasks", {"params": {"scope": "all"}}))
    own_case = _send(world, "GET", "/api/tasks", "staff_a", Call("/api/tasks", {"params": {
        "scope": "all", "case_id": world.ids["case"], "status": "any"}}))
    other_case = _send(world, "GET", "/api/tasks", "staff_b", Call("/api/tasks", {"params": {
        "scope": "all", "case_id": world.ids["case"]}}))

    assert everything.status_code == 403
    assert own_case.status_code == 200
    assert {task["case_id"] for task in own_case.json()} == {world.ids["case"]}
    assert other_case.status_code == 404


def test_hidden_case_reads_as_missing(world: World) -> None:
    hidden = _send(world, "GET", "/api/cases/{case_id}", "staff_b", Call(f"/api/cases/{world.ids['case']}",
                                                                         {"headers": {"Accept-Language": "en"}}))
    missing = _send(world, "GET", "/api/cases/{case_id}", "staff_b", Call("/api/cases/999999",
                                                                         {"headers": {"Accept-Language": "en"}}))

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["message"] == f"Case {world.ids['case']} does not exist."


def test_deactivated_user_token_is_rejected(world: World) -> None:
    username = world.new_user()
    token = world.token(username)
    from engine import user_admin

    user_admin.deactivate_user(world.service, world.actors["admin"], username)
    response = world.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    with world.service.db.read() as conn:
        assert get_actor(conn, username, active_only=True) is None
