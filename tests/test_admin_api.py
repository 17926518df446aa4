"""The administrators' JSON endpoints: the organisation overview, current publications and signing keys."""

from __future__ import annotations

import contextlib
import json
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from api.app import create_app
from engine import audit, publication, signing, signing_keys, trace
from engine.audit import UNKNOWN_KEY
from engine.audit_verify import verify_checkpoint
from engine.db import users
from engine.errors import Forbidden
from engine.organisation import organisation_overview
from engine.service import Liuhen
from engine.signing_keys import RetiredKeysError
from engine.users import Actor, create_user
from tests.bpmn_builder import definitions, flow, lanes, node, process, user_task
from tests.conftest import ADMIN, DESIGNER, LiveServer, add_user
from tests.test_clocks import licence

AUDITOR = Actor("qian_qing", "钱清", frozenset({"auditor"}))
CLERK = Actor("clerk", "clerk", frozenset({"staff"}), frozenset({"受理窗口"}), "某市教育局")


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests sign in several times, and the hash parameters are not what they check.
    monkeypatch.setattr("engine.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def two_step(process_id: str, review_lane: str) -> bytes:
    """A check at the acceptance window, then a review in ``review_lane``."""
    return definitions(process(
        process_id,
        lanes({"受理窗口": ["S", "Check"], review_lane: ["Review", "E"]}),
        node("startEvent", "S"), user_task("Check", "受理审查"), user_task("Review", "专家评审"),
        node("endEvent", "E"),
        flow("f1", "S", "Check"), flow("f2", "Check", "Review"), flow("f3", "Review", "E"),
        name="资格审查",
    ))


def add_person(service: Liuhen, username: str, roles: list[str], posts: list[str],
               department: str | None = None) -> None:
    with service.db.write() as conn:
        create_user(conn, username=username, display_name=username, password=f"pw-{username}-secret", roles=roles,
                    posts=posts, department=department, now=service.now())


@pytest.fixture
def organisation(service: Liuhen) -> Liuhen:
    """Version 1 reviews in 专家组 and has a running case; version 2 reviews in 评审专家 instead.

    The clerk of 某市教育局 holds 受理窗口. The only holder of 专家组 is an auditor, who cannot take tasks.
    """
    add_person(service, "clerk", ["staff"], ["受理窗口"], "某市教育局")
    add_person(service, "expert", ["auditor"], ["专家组"])
    add_person(service, "archivist", ["staff"], ["档案室"], "办公室")
    add_person(service, "admin", ["admin"], [])
    service.deploy(two_step("qualification", "专家组"), "v1.bpmn", DESIGNER)
    service.start_case("qualification", CLERK, title="申请")
    service.deploy(two_step("qualification", "评审专家"), "v2.bpmn", DESIGNER)
    return service


def post_named(overview: dict[str, Any], name: str) -> dict[str, Any]:
    return next(post for post in overview["posts"] if post["name"] == name)


# The organisation overview.

def test_overview_posts_and_needs(organisation: Liuhen) -> None:
    overview = organisation_overview(organisation, ADMIN)

    assert [post["name"] for post in overview["posts"]] == sorted(["受理窗口", "专家组", "评审专家", "档案室"])
    window = post_named(overview, "受理窗口")
    assert [holder["username"] for holder in window["holders"]] == ["clerk"]
    assert window["active_holders"] == 1
    assert window["needed_by"] == [{"process_id": "qualification", "process_name": "资格审查", "versions": [1, 2],
                                    "steps": ["受理审查"], "running_cases": 1}]
    assert window["open_tasks"] == 1
    assert window["unheld"] is False


def test_overview_flags_unheld_posts(organisation: Liuhen) -> None:
    overview = organisation_overview(organisation, ADMIN)

    # The running case on version 1 still needs 专家组, held only by an auditor.
    experts = post_named(overview, "专家组")
    assert [holder["username"] for holder in experts["holders"]] == ["expert"]
    assert experts["active_holders"] == 0
    assert experts["needed_by"][0]["versions"] == [1]
    assert experts["unheld"] is True
    assert post_named(overview, "评审专家")["unheld"] is True
    assert post_named(overview, "评审专家")["holders"] == []
    # A post no flowchart needs is never flagged.
    assert post_named(overview, "档案室")["needed_by"] == []
    assert post_named(overview, "档案室")["unheld"] is False
    assert overview["unheld_posts"] == ["专家组", "评审专家"]


def test_overview_ignores_old_versions_without_cases(organisation: Liuhen) -> None:
    with organisation.db.write() as conn:
        from engine.db import cases

        conn.execute(update(cases).values(status="cancelled"))

    overview = organisation_overview(organisation, ADMIN)

    assert post_named(overview, "受理窗口")["needed_by"][0]["versions"] == [2]
    assert post_named(overview, "专家组")["needed_by"] == []
    assert overview["unheld_posts"] == ["评审专家"]


def test_overview_deactivated_holder(organisation: Liuhen) -> None:
    with organisation.db.write() as conn:
        conn.execute(update(users).where(users.c.username == "clerk").values(active=False))

    overview = organisation_overview(organisation, ADMIN)

    window = post_named(overview, "受理窗口")
    assert window["holders"][0]["active"] is False
    assert window["unheld"] is True
    assert "受理窗口" in overview["unheld_posts"]


def test_overview_departments_and_roles(organisation: Liuhen) -> None:
    overview = organisation_overview(organisation, AUDITOR)

    departments = {group["name"]: [user["username"] for user in group["users"]] for group in overview["departments"]}
    assert departments == {"办公室": ["archivist"], "某市教育局": ["clerk"], None: ["admin", "expert"]}
    assert overview["departments"][-1]["name"] is None
    roles = {group["role"]: [user["username"] for user in group["users"]] for group in overview["roles"]}
    assert roles == {"staff": ["archivist", "clerk"], "auditor": ["expert"], "designer": [], "admin": ["admin"]}


def test_overview_forbidden_to_staff(organisation: Liuhen) -> None:
    with pytest.raises(Forbidden):
        organisation_overview(organisation, CLERK)


# Signing keys.

def key_path(service: Liuhen) -> Any:
    return service.settings.resolved_signing_key_path()


def retired_path(service: Liuhen) -> Any:
    return signing_keys.retired_keys_path(key_path(service))


def retired_ids(service: Liuhen) -> list[str]:
    return [signing.key_id(key) for key in signing_keys.load_retired_keys(key_path(service))]


def foreign_checkpoint(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` signed again with a key this instance never had."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    signed = {**document, "key_id": signing.key_id(public), "public_key": signing.public_key_pem(public)}
    message = audit.signed_message(signed["size"], signed["root"], signed["created_at"], signed["key_id"])
    return {**signed, "signature": signing.sign(key, message)}


def test_keys_empty_before_first_use(service: Liuhen) -> None:
    assert signing_keys.list_keys(service, ADMIN) == []
    assert not key_path(service).exists()


def test_keys_first_key(service: Liuhen) -> None:
    document = audit.create_checkpoint(service)

    keys = signing_keys.list_keys(service, ADMIN)

    assert len(keys) == 1
    key = keys[0]
    assert key["key_id"] == document["key_id"]
    assert key["status"] == "active"
    assert key["public_key"] == document["public_key"]
    assert key["fingerprint"].startswith(key["key_id"])
    assert len(key["fingerprint"]) == 64
    assert key["checkpoints"] == 1
    assert key["created_at"] == service.now().isoformat()
    assert key["created_by"] is None
    assert key["generated_on_first_use"] is True
    assert key["retired_at"] is None


def test_keys_unused_key_dated_by_file(service: Liuhen) -> None:
    # `liuhen keys export-public` creates the key without signing anything.
    signing.load_or_create_private_key(key_path(service))

    keys = signing_keys.list_keys(service, ADMIN)

    modified = datetime.fromtimestamp(key_path(service).stat().st_mtime, tz=UTC)
    assert [(key["status"], key["created_at"], key["checkpoints"]) for key in keys] == [
        ("active", modified.isoformat(), 0)]


def test_rotation_retires_old_key(service: Liuhen, clock: Any) -> None:
    old = audit.create_checkpoint(service)
    clock.advance(timedelta(hours=1))

    new = signing_keys.rotate_key(service, ADMIN)

    assert new["key_id"] != old["key_id"]
    assert new["status"] == "active"
    keys = signing_keys.list_keys(service, ADMIN)
    assert [(key["key_id"], key["status"]) for key in keys] == [(new["key_id"], "active"), (old["key_id"], "retired")]
    active, retired = keys
    assert active["created_at"] == service.now().isoformat()
    assert active["created_by"] == "admin"
    assert active["generated_on_first_use"] is False
    assert active["checkpoints"] == 0
    assert retired["public_key"] == old["public_key"]
    assert retired["retired_at"] == service.now().isoformat()
    assert retired["retired_by"] == "admin"
    assert retired["generated_on_first_use"] is True
    assert retired["checkpoints"] == 1
    assert retired["created_at"] == (service.now() - timedelta(hours=1)).isoformat()
    assert signing.key_id(signing.load_private_key(key_path(service)).public_key()) == new["key_id"]
    assert stat.S_IMODE(key_path(service).stat().st_mode) == 0o600
    assert new["previous_key_id"] == old["key_id"]


def test_rotation_writes_retired_keys_file(service: Liuhen) -> None:
    old = audit.create_checkpoint(service)

    signing_keys.rotate_key(service, ADMIN)

    path = retired_path(service)
    assert path.parent == key_path(service).parent
    assert path.name == "signing-key.pem.retired.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    content = path.read_text(encoding="ascii")
    assert old["public_key"] in content
    assert f"# key {old['key_id']}, retired " in content
    assert "PRIVATE" not in content
    assert retired_ids(service) == [old["key_id"]]


def test_first_rotation_retires_nothing(service: Liuhen) -> None:
    rotated = signing_keys.rotate_key(service, ADMIN)

    assert rotated["previous_key_id"] is None
    assert not retired_path(service).exists()


def test_rotation_recorded_in_trace(service: Liuhen) -> None:
    old = audit.create_checkpoint(service)

    new = signing_keys.rotate_key(service, ADMIN)

    with service.db.read() as conn:
        events = [event for event in trace.read_stream(conn, trace.SYSTEM_STREAM)
                  if event["kind"] == "signing_key_rotated"]
    assert len(events) == 1
    assert events[0]["actor"] == "admin"
    payload = events[0]["payload"]
    assert payload["key_id"] == new["key_id"]
    assert payload["previous_key_id"] == old["key_id"]
    assert payload["previous_public_key"] == old["public_key"]
    assert "PRIVATE" not in json.dumps(events[0])
    assert all(report.ok for report in service.verify())


def test_rotation_twice_keeps_history(service: Liuhen, clock: Any) -> None:
    signing_keys.rotate_key(service, ADMIN)
    first_rotation = service.now()
    clock.advance(timedelta(days=30))
    signing_keys.rotate_key(service, ADMIN)

    keys = signing_keys.list_keys(service, ADMIN)

    assert [key["status"] for key in keys] == ["active", "retired"]
    assert keys[1]["created_at"] == first_rotation.isoformat()
    assert keys[1]["retired_at"] == service.now().isoformat()
    assert retired_ids(service) == [keys[1]["key_id"]]


def test_parallel_rotations_form_chain(service: Liuhen, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each rotation waits inside its transaction for the others. Only without a lock could all three meet there;
    # with it, the wait times out and they go on one by one.
    meeting = threading.Barrier(3, timeout=2)
    payload_of = signing_keys._rotation_payload

    def wait_for_others(*args: Any) -> dict[str, Any]:
        with contextlib.suppress(threading.BrokenBarrierError):
            meeting.wait()
        return payload_of(*args)

    monkeypatch.setattr(signing_keys, "_rotation_payload", wait_for_others)
    with ThreadPoolExecutor(max_workers=3) as pool:
        rotated = [future.result() for future in [pool.submit(signing_keys.rotate_key, service, ADMIN)
                                                  for _ in range(3)]]

    assert meeting.broken

    with service.db.read() as conn:
        payloads = [event["payload"] for event in trace.read_stream(conn, trace.SYSTEM_STREAM)]
    assert [payload["previous_key_id"] for payload in payloads] == [None] + [p["key_id"] for p in payloads[:-1]]
    assert {payload["key_id"] for payload in payloads} == {key["key_id"] for key in rotated}
    active = signing.key_id(signing.load_private_key(key_path(service)).public_key())
    assert active == payloads[-1]["key_id"]
    assert [key["status"] for key in signing_keys.list_keys(service, ADMIN)] == ["active", "retired", "retired"]
    assert retired_ids(service) == [payload["previous_key_id"] for payload in payloads[1:]]


def test_rotation_creates_first_key(service: Liuhen) -> None:
    new = signing_keys.rotate_key(service, ADMIN)

    assert key_path(service).exists()
    assert [key["key_id"] for key in signing_keys.list_keys(service, ADMIN)] == [new["key_id"]]
    with service.db.read() as conn:
        event = trace.read_stream(conn, trace.SYSTEM_STREAM)[-1]
    assert event["payload"]["previous_key_id"] is None


def test_old_checkpoint_verifies_after_rotation(service: Liuhen) -> None:
    old = audit.create_checkpoint(service)
    signing_keys.rotate_key(service, ADMIN)
    new = audit.create_checkpoint(service)

    old_report = verify_checkpoint(service, old)
    new_report = verify_checkpoint(service, new)

    assert old_report.ok, old_report.problems
    assert (old_report.signing_key.key_id, old_report.signing_key.status) == (old["key_id"], "retired")
    assert new_report.ok, new_report.problems
    assert (new_report.signing_key.key_id, new_report.signing_key.status) == (new["key_id"], "active")
    assert new["key_id"] == signing_keys.list_keys(service, ADMIN)[0]["key_id"]


def test_foreign_key_unknown_after_rotation(service: Liuhen) -> None:
    old = audit.create_checkpoint(service)
    signing_keys.rotate_key(service, ADMIN)
    signing_keys.rotate_key(service, ADMIN)

    report = verify_checkpoint(service, foreign_checkpoint(old))

    assert [problem.kind for problem in report.problems] == [UNKNOWN_KEY]
    assert report.signing_key is None
    message = str(report.problems[0].message)
    for key_id in retired_ids(service):
        assert key_id in message


def test_supplied_key_reported_as_supplied(service: Liuhen) -> None:
    audit.create_checkpoint(service)
    document = foreign_checkpoint(audit.create_checkpoint(service))

    report = verify_checkpoint(service, document, [signing.parse_public_key(document["public_key"])])

    assert report.ok, report.problems
    assert (report.signing_key.key_id, report.signing_key.status) == (document["key_id"], "supplied")


def test_database_keys_not_trusted(service: Liuhen) -> None:
    # A key recorded only in the trace, as a forged rotation event would record it, is not trusted.
    kept = audit.create_checkpoint(service)
    forged = foreign_checkpoint(kept)
    with service.db.write() as conn:
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            signing_keys.EVENT_KIND, "admin", service.now(),
            payload={"key_id": "0" * 16, "public_key": None, "previous_key_id": forged["key_id"],
                     "previous_public_key": forged["public_key"], "previous_key_created_at": None})])

    report = verify_checkpoint(service, forged)

    assert [problem.kind for problem in report.problems] == [UNKNOWN_KEY]


def test_failed_rotation_keeps_key(service: Liuhen, monkeypatch: pytest.MonkeyPatch) -> None:
    old = audit.create_checkpoint(service)
    before = key_path(service).read_bytes()
    replace = signing_keys._replace_key_file

    def replace_then_fail(path: Any, key: Any) -> None:
        replace(path, key)
        raise OSError("disk full")

    monkeypatch.setattr(signing_keys, "_replace_key_file", replace_then_fail)
    with pytest.raises(OSError):
        signing_keys.rotate_key(service, ADMIN)

    assert key_path(service).read_bytes() == before
    assert not retired_path(service).exists()
    assert [key["key_id"] for key in signing_keys.list_keys(service, ADMIN)] == [old["key_id"]]
    with service.db.read() as conn:
        assert not [e for e in trace.read_stream(conn, trace.SYSTEM_STREAM) if e["kind"] == "signing_key_rotated"]


def test_failed_commit_restores_retired_file(service: Liuhen, monkeypatch: pytest.MonkeyPatch) -> None:
    audit.create_checkpoint(service)
    signing_keys.rotate_key(service, ADMIN)
    key_before = key_path(service).read_bytes()
    retired_before = retired_path(service).read_bytes()
    replace = signing_keys._replace_key_file

    def replace_then_fail(path: Any, key: Any) -> None:
        replace(path, key)
        assert retired_path(service).read_bytes() != retired_before
        raise OSError("disk full")

    monkeypatch.setattr(signing_keys, "_replace_key_file", replace_then_fail)
    with pytest.raises(OSError):
        signing_keys.rotate_key(service, ADMIN)

    assert key_path(service).read_bytes() == key_before
    assert retired_path(service).read_bytes() == retired_before
    assert stat.S_IMODE(retired_path(service).stat().st_mode) == 0o644
    assert len(retired_ids(service)) == 1


CORRUPTIONS = [
    pytest.param(lambda pem: pem.replace("-----END PUBLIC KEY-----\n", ""), 2, "has no END line", id="unterminated"),
    pytest.param(lambda pem: pem + "garbage\n", 5, "neither part of a PEM public key block", id="stray-text"),
    pytest.param(lambda pem: pem.replace("MCowBQYDK2VwAyEA", "MCowBQYDK2VwAyEB!"), 2, "cannot be decoded",
                 id="bad-base64"),
    pytest.param(lambda pem: pem + "# 密钥\n", 5, "not ASCII", id="non-ascii"),
]


@pytest.mark.parametrize(("corrupt", "line", "problem"), CORRUPTIONS)
def test_corrupt_retired_file_named(service: Liuhen, corrupt: Any, line: int, problem: str) -> None:
    old = audit.create_checkpoint(service)
    signing_keys.rotate_key(service, ADMIN)
    path = retired_path(service)
    path.write_bytes(corrupt(path.read_text(encoding="ascii")).encode("utf-8"))

    with pytest.raises(RetiredKeysError) as verifying:
        verify_checkpoint(service, old)

    message = str(verifying.value)
    assert message.startswith(f"The retired signing keys file {path} is invalid at line {line}: ")
    assert problem in message
    assert verifying.value.context == {"path": str(path), "line": line}


def test_corrupt_retired_file_stops_rotation(service: Liuhen) -> None:
    audit.create_checkpoint(service)
    signing_keys.rotate_key(service, ADMIN)
    retired_path(service).write_text("not a key\n", encoding="ascii")
    key_before = key_path(service).read_bytes()

    with pytest.raises(RetiredKeysError, match="is invalid at line 1"):
        signing_keys.rotate_key(service, ADMIN)

    assert key_path(service).read_bytes() == key_before
    assert retired_path(service).read_text(encoding="ascii") == "not a key\n"
    assert len(signing_keys.list_keys(service, ADMIN)) == 2


def test_retired_file_of_other_key_type(service: Liuhen) -> None:
    audit.create_checkpoint(service)
    signing_keys.rotate_key(service, ADMIN)
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    with retired_path(service).open("a", encoding="ascii") as file:
        file.write(rsa_pem)

    with pytest.raises(RetiredKeysError, match="at line 5: the public key that starts there is not an Ed25519 key"):
        signing_keys.load_retired_keys(key_path(service))


def test_retired_key_put_back_not_duplicated(service: Liuhen) -> None:
    # An administrator who restores a retired key file and rotates again retires that key a second time.
    audit.create_checkpoint(service)
    first = key_path(service).read_bytes()
    signing_keys.rotate_key(service, ADMIN)
    key_path(service).write_bytes(first)

    signing_keys.rotate_key(service, ADMIN)

    assert len(retired_ids(service)) == 1


@pytest.mark.parametrize("actor", [AUDITOR, CLERK, DESIGNER])
def test_keys_only_for_admins(service: Liuhen, actor: Actor) -> None:
    with pytest.raises(Forbidden):
        signing_keys.list_keys(service, actor)
    with pytest.raises(Forbidden):
        signing_keys.rotate_key(service, actor)
    assert not key_path(service).exists()


# Over HTTP.

@pytest.fixture
def client(organisation: Liuhen) -> Iterator[httpx.Client]:
    add_user(organisation, "qian_qing", ["auditor"])
    with LiveServer(create_app(organisation.settings, organisation)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def headers(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": f"pw-{username}-secret"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"}


def test_http_organisation(client: httpx.Client) -> None:
    admin = client.get("/api/admin/organisation", headers=headers(client, "admin"))
    auditor = client.get("/api/admin/organisation", headers=headers(client, "qian_qing"))
    staff = client.get("/api/admin/organisation", headers=headers(client, "clerk"))

    assert admin.status_code == 200, admin.text
    assert admin.json()["unheld_posts"] == ["专家组", "评审专家"]
    assert auditor.status_code == 200
    assert staff.status_code == 403
    assert staff.json()["error"]["code"] == "forbidden"


def test_http_publications(client: httpx.Client, organisation: Liuhen) -> None:
    organisation.deploy(licence(), "licence.bpmn", DESIGNER)
    publication.publish(organisation, "licence", 1, ADMIN)
    publication.publish(organisation, "qualification", 2, ADMIN)

    response = client.get("/api/admin/publications", headers=headers(client, "admin"))
    staff = client.get("/api/admin/publications", headers=headers(client, "clerk"))

    assert response.status_code == 200, response.text
    listed = {item["process_id"]: (item["version"], item["kind"], item["published_by"]) for item in response.json()}
    assert listed == {"licence": (1, "external", "admin"), "qualification": (2, None, "admin")}
    assert staff.status_code == 403


def test_http_verify_after_rotation(client: httpx.Client, organisation: Liuhen) -> None:
    admin = headers(client, "admin")
    auditor = headers(client, "qian_qing")
    first = client.post("/api/audit/checkpoints", headers=admin).json()
    assert client.post("/api/admin/keys/rotate", headers=admin).status_code == 201
    second = client.post("/api/audit/checkpoints", headers=admin).json()

    old = client.post("/api/audit/verify", json=first, headers=auditor)
    new = client.post("/api/audit/verify", json=second, headers=auditor)
    foreign = client.post("/api/audit/verify", json=foreign_checkpoint(second), headers=auditor)

    assert old.status_code == 200, old.text
    assert old.json()["ok"], old.json()["problems"]
    assert old.json()["signing_key"] == {"key_id": first["key_id"], "status": "retired"}
    assert new.json()["ok"], new.json()["problems"]
    assert new.json()["signing_key"] == {"key_id": second["key_id"], "status": "active"}
    assert foreign.status_code == 200
    assert [problem["kind"] for problem in foreign.json()["problems"]] == [UNKNOWN_KEY]
    assert foreign.json()["signing_key"] is None


def test_http_verify_corrupt_retired_file(client: httpx.Client, organisation: Liuhen) -> None:
    admin = headers(client, "admin")
    first = client.post("/api/audit/checkpoints", headers=admin).json()
    client.post("/api/admin/keys/rotate", headers=admin)
    retired_path(organisation).write_text("-----BEGIN PUBLIC KEY-----\n", encoding="ascii")

    response = client.post("/api/audit/verify", json=first, headers=admin)
    chinese = client.post("/api/audit/verify", json=first, headers={**admin, "Accept-Language": "zh-CN"})

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "retired_keys_invalid"
    assert str(retired_path(organisation)) in error["message"]
    assert "has no END line" in error["message"]
    assert chinese.status_code == 500
    assert str(retired_path(organisation)) in chinese.json()["error"]["message"]


def test_http_keys_rotate(client: httpx.Client, organisation: Liuhen) -> None:
    admin = headers(client, "admin")
    first = client.post("/api/audit/checkpoints", headers=admin).json()

    rotated = client.post("/api/admin/keys/rotate", headers=admin)
    listed = client.get("/api/admin/keys", headers=admin)

    assert rotated.status_code == 201, rotated.text
    assert listed.status_code == 200
    assert [key["status"] for key in listed.json()] == ["active", "retired"]
    assert listed.json()[1]["key_id"] == first["key_id"]
    assert listed.json()[0]["key_id"] == rotated.json()["key_id"]
    assert "PRIVATE" not in listed.text
    assert "PRIVATE" not in rotated.text
    second = client.post("/api/audit/checkpoints", headers=admin).json()
    assert second["key_id"] == rotated.json()["key_id"]


@pytest.mark.parametrize("username", ["qian_qing", "clerk"])
def test_http_keys_forbidden(client: httpx.Client, organisation: Liuhen, username: str) -> None:
    caller = headers(client, username)

    listed = client.get("/api/admin/keys", headers=caller)
    rotated = client.post("/api/admin/keys/rotate", headers=caller)

    assert listed.status_code == 403
    assert rotated.status_code == 403
    assert "Administrator" in rotated.json()["error"]["message"]
    assert not key_path(organisation).exists()


def test_http_keys_need_sign_in(client: httpx.Client) -> None:
    assert client.get("/api/admin/keys").status_code == 401
    assert client.post("/api/admin/keys/rotate").status_code == 401
    assert client.get("/api/admin/organisation").status_code == 401


def test_overview_writes_nothing(organisation: Liuhen) -> None:
    with organisation.db.read() as conn:
        before = len(trace.read_stream(conn, trace.SYSTEM_STREAM))

    organisation_overview(organisation, ADMIN)

    with organisation.db.read() as conn:
        assert len(trace.read_stream(conn, trace.SYSTEM_STREAM)) == before
