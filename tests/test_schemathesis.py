"""Schemathesis against the app's OpenAPI document: no 500 and no response that breaks its documented schema.

Every operation runs signed in as an administrator and as business staff, on a database with a
deployed flowchart, cases and users, so generated ids sometimes hit real records. The run is bounded
(few examples per operation, derandomized) to keep the file within about three minutes on two cores.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from engine import publication
from engine.clock import ManualClock
from engine.service import Liuhen
from engine.settings import Settings
from engine.users import create_user, issue_token
from tests.conftest import PROCESSES, START, migrated_database
from tests.test_authz_matrix import flowchart

CALLERS = {"admin": (["admin"], []), "staff": (["staff"], ["受理窗口"])}
EXAMPLES_PER_OPERATION = 6
# Status codes of the generated requests, per caller, to show that signed-in requests reached the endpoints.
STATUSES: dict[str, Counter[int]] = {caller: Counter() for caller in CALLERS}


@dataclass
class Target:
    app: FastAPI
    service: Liuhen

    def token(self, username: str) -> str:
        with self.service.db.write() as conn:
            token, _expires = issue_token(conn, username, self.service.now(), timedelta(hours=8))
        return token


@pytest.fixture(scope="module", params=[pytest.param("sqlite", id="sqlite"),
                                        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("schemathesis")
    with migrated_database(request.param, folder) as url:
        settings_ = Settings(database_url=url, data_dir=folder, processes_dir=PROCESSES)
        service = Liuhen(settings_, clock=ManualClock(START))
        try:
            with service.db.write() as conn:
                actors = {name: create_user(conn, username=name, display_name=name, password=f"pw-{name}-secret",
                                            roles=roles, posts=posts, department="甲股", now=service.now())
                          for name, (roles, posts) in CALLERS.items()}
            service.deploy(flowchart("matrix"), "matrix.bpmn", actors["admin"])
            publication.publish(service, "matrix", 1, actors["admin"])
            for _ in range(2):
                service.start_case("matrix", actors["staff"], {}, "样例办件")
            app = create_app(settings_, service)
            with TestClient(app):  # runs the lifespan once, which checks the schema is migrated
                DISPATCHER.app = app
                yield Target(app, service)
        finally:
            service.db.dispose()


class Dispatcher:
    """An ASGI app that passes each request on to the app of the current database."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _document() -> dict[str, Any]:
    """Return the OpenAPI document, which does not depend on the database."""
    folder = Path(tempfile.mkdtemp(prefix="liuhen-openapi-"))
    return create_app(Settings(database_url=f"sqlite:///{folder / 'unused.db'}", data_dir=folder)).openapi()


DISPATCHER = Dispatcher()
schema = schemathesis.openapi.from_dict(_document())
schema.app = DISPATCHER


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms(case: Any, target: Target) -> None:
    for caller in CALLERS:
        # A fresh token for each request, so a generated call of /api/auth/logout revokes only its own.
        headers = {"Authorization": f"Bearer {target.token(caller)}"}
        response = case.call_and_validate(headers=headers,
                                          checks=[not_a_server_error, response_schema_conformance])
        STATUSES[caller][response.status_code] += 1


def test_generated_requests_were_signed_in() -> None:
    if not any(STATUSES.values()):
        pytest.skip("test_api_conforms did not run in this session")

    for caller, statuses in STATUSES.items():
        assert sum(count for status, count in statuses.items() if status < 300) > 50, (caller, statuses)
        assert statuses[401] < sum(statuses.values()) / 4, (caller, statuses)


def test_schema_names_every_operation(target: Target) -> None:
    document = target.app.openapi()

    assert len(document["paths"]) > 50
    assert document["paths"]["/api/auth/login"]["post"]["responses"]["429"]

