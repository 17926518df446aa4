"""User administration from the command line and over HTTP, recorded on the system trace stream."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from api import cli
from api.app import create_app
from api.demo import seed_users
from engine import trace
from engine.db import users
from engine.errors import Unauthorized
from engine.service import Liuhen
from engine.users import authenticate
from tests.conftest import LiveServer, add_user
from tests.test_controls import SCENARIOS, Api

PASSWORD = "pw-admin2-secret"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests sign in many times, and the hash parameters are not what they check.
    monkeypatch.setattr("engine.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def run(service: Liuhen, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run `liuhen ARGS` in English on the test database and return (exit code, stdout, stderr)."""
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("LIUHEN_LOCALE", "en")

    def run_cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = cli.main(list(args))
        output = capsys.readouterr()
        return code, output.out, output.err

    return run_cli


@pytest.fixture
def client(service: Liuhen) -> Iterator[httpx.Client]:
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/auth/login", json={"username": username, "password": password})


def headers(client: httpx.Client, username: str, password: str | None = None) -> dict[str, str]:
    response = login(client, username, password or f"pw-{username}-secret")
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}", "Accept-Language": "en"}


def system_events(service: Liuhen, prefix: str = "user_") -> list[dict[str, Any]]:
    with service.db.read() as conn:
        return [e for e in trace.read_stream(conn, trace.SYSTEM_STREAM) if e["kind"].startswith(prefix)]


def user_count(service: Liuhen) -> int:
    with service.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def can_sign_in(service: Liuhen, username: str, password: str) -> bool:
    try:
        with service.db.read() as conn:
            authenticate(conn, username, password)
    except Unauthorized:
        return False
    return True


# command line


def test_cli_add_list_change_deactivate(service, run, tmp_path) -> None:
    password_file = tmp_path / "password.txt"
    password_file.write_text(f"{PASSWORD}\nignored second line\n", encoding="utf-8")

    added = run("user", "add", "admin2", "--name", "第二管理员", "--role", "admin", "--role", "staff",
                "--post", "财务室", "--department", "财务室", "--password-file", str(password_file))
    piped = run("user", "add", "song_yu", "--name", "宋宇", "--role", "staff", stdin="pw-song_yu-secret\n")
    listed = run("users")

    assert added[0] == 0, added[2]
    assert "User admin2 is created." in added[1]
    assert piped[0] == 0, piped[2]
    assert listed[0] == 0
    assert "admin2  第二管理员  roles: staff, admin  posts: 财务室  department: 财务室  active" in listed[1]
    assert "song_yu  宋宇  roles: staff  posts: -  department: -  active" in listed[1]
    assert can_sign_in(service, "admin2", PASSWORD)
    assert not can_sign_in(service, "admin2", "ignored second line")
    assert can_sign_in(service, "song_yu", "pw-song_yu-secret")

    changed = run("user", "change", "song_yu", "--post", "财务室", "--post", "采购办", "--department", "总务处",
                  "--name", "宋 宇")
    unchanged = run("user", "change", "song_yu", "--department", "总务处")
    cleared = run("user", "change", "song_yu", "--no-posts", "--department", "")
    assert changed[0] == 0, changed[2]
    assert "User song_yu is changed: display name, posts, department." in changed[1]
    assert "posts: 财务室, 采购办  department: 总务处" in changed[1]
    assert "nothing changed" in unchanged[1]
    assert "song_yu  宋 宇  roles: staff  posts: -  department: -  active" in cleared[1]

    deactivated = run("user", "deactivate", "song_yu")
    active_only = run("users")
    everyone = run("users", "--all")
    assert deactivated[0] == 0, deactivated[2]
    assert not can_sign_in(service, "song_yu", "pw-song_yu-secret")
    assert "song_yu" not in active_only[1]
    assert "song_yu  宋 宇  roles: staff  posts: -  department: -  deactivated" in everyone[1]

    reactivated = run("user", "reactivate", "song_yu")
    assert reactivated[0] == 0, reactivated[2]
    assert can_sign_in(service, "song_yu", "pw-song_yu-secret")


def test_cli_password_from_terminal_prompts(service, run, monkeypatch) -> None:
    answers = iter(["pw-song_yu-secret", "pw-song_yu-secret", "new-password-1", "new-password-2"])
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr("api.commands_users.sys.stdin", Terminal())
    added = cli.main(["user", "add", "song_yu", "--name", "宋宇", "--role", "staff"])
    differing = cli.main(["user", "password", "song_yu"])

    assert (added, differing) == (0, 1)
    assert prompts == ["New password for song_yu: ", "Repeat the password: "] * 2
    assert can_sign_in(service, "song_yu", "pw-song_yu-secret")
    assert not can_sign_in(service, "song_yu", "new-password-1")


def test_cli_password_change_and_stdin(service, run) -> None:
    add_user(service, "song_yu", ["staff"])

    changed = run("user", "password", "song_yu", stdin="another-secret\n")
    empty = run("user", "password", "song_yu", stdin="")

    assert changed[0] == 0, changed[2]
    assert "The password of song_yu is changed" in changed[1]
    assert can_sign_in(service, "song_yu", "another-secret")
    assert not can_sign_in(service, "song_yu", "pw-song_yu-secret")
    assert empty[0] == 1
    assert "No password was given on standard input" in empty[2]


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["user", "add", "li na", "--name", "李娜", "--role", "staff"], "pw-li_na-secret",
     "Username 'li na' is invalid: use only ASCII letters, digits, '_', '.' and '-'"),
    (["user", "add", "a" * 65, "--name", "李娜", "--role", "staff"], "pw-li_na-secret",
     "is 65 characters long, over the limit of 64; choose a shorter one."),
    (["user", "add", "system", "--name", "李娜", "--role", "staff"], "pw-li_na-secret",
     "Username 'system' is reserved"),
    (["user", "add", "admin", "--name", "李娜", "--role", "staff"], "pw-li_na-secret",
     "User admin already exists; choose another username"),
    (["user", "add", "Admin", "--name", "李娜", "--role", "staff"], "pw-li_na-secret",
     "Username 'Admin' differs from the existing user admin only in letter case"),
    (["user", "add", "li_na", "--name", " ", "--role", "staff"], "pw-li_na-secret",
     "The display name is empty"),
    (["user", "add", "li_na", "--name", "李娜", "--role", "staff"], "short",
     "The password of li_na is shorter than 8 characters; choose a longer one."),
    (["user", "add", "li_na", "--name", "李娜", "--role", "staff"], "x" * 257,
     "The password of li_na is longer than 256 characters"),
    (["user", "add", "li_na", "--name", "李娜", "--role", "staff", "--post", " "], "pw-li_na-secret",
     "A post name is empty"),
    (["user", "change", "nobody", "--role", "staff"], "",
     "User nobody does not exist; `liuhen users` lists every user."),
    (["user", "change", "admin"], "", "Nothing to change"),
    (["user", "change", "admin", "--role", "staff"], "", "User admin is the last active administrator"),
    (["user", "deactivate", "admin"], "", "User admin is the last active administrator"),
    (["user", "reactivate", "admin"], "", "User admin is already active."),
    (["user", "add", "li_na", "--name", "李娜", "--role", "staff", "--password-file", "/nonexistent/pw"], "",
     "/nonexistent/pw: cannot be read"),
])
def test_cli_bad_input_stores_nothing(service, run, args, stdin, message) -> None:
    add_user(service, "admin", ["admin"])
    before = (user_count(service), system_events(service, ""))

    code, _out, err = run(*args, stdin=stdin)

    assert code == 1
    assert message in err
    assert (user_count(service), system_events(service, "")) == before


def test_cli_unknown_role_names_choices(service, run, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("user", "add", "li_na", "--name", "李娜", "--role", "boss")

    assert exit_info.value.code == 2
    assert "invalid choice: 'boss' (choose from 'staff', 'auditor', 'designer', 'admin')" in capsys.readouterr().err
    assert user_count(service) == 0


def test_cli_refuses_acting_as_deactivated_user(service, run) -> None:
    add_user(service, "admin", ["admin"])
    add_user(service, "admin2", ["admin"])
    run("user", "deactivate", "admin2")

    code, _out, err = run("user", "add", "li_na", "--name", "李娜", "--role", "staff", "--as", "admin2",
                          stdin="pw-li_na-secret\n")

    assert code == 1
    assert "User admin2 is deactivated" in err


# HTTP


def test_http_create_list_change_deactivate(service, client) -> None:
    add_user(service, "admin", ["admin"])
    admin = headers(client, "admin")

    created = client.post("/api/users", headers=admin, json={
        "username": "li_na", "display_name": "李娜", "password": "pw-li_na-secret", "roles": ["staff"],
        "posts": ["受理窗口"], "department": "政策法规股"})
    listed = client.get("/api/users", headers=admin)
    changed = client.patch("/api/users/li_na", headers=admin, json={"posts": ["受理窗口", "审批科室"],
                                                                     "department": None})
    renamed = client.patch("/api/users/li_na", headers=admin, json={"display_name": "李 娜"})

    assert created.status_code == 201, created.text
    assert created.json() | {"created_at": None} == {
        "username": "li_na", "display_name": "李娜", "roles": ["staff"], "posts": ["受理窗口"],
        "department": "政策法规股", "active": True, "created_at": None}
    assert [u["username"] for u in listed.json()] == ["admin", "li_na"]
    assert changed.status_code == 200, changed.text
    assert (changed.json()["posts"], changed.json()["department"]) == (["受理窗口", "审批科室"], None)
    assert (renamed.json()["display_name"], renamed.json()["posts"]) == ("李 娜", ["受理窗口", "审批科室"])

    li_na = headers(client, "li_na")
    assert client.get("/api/auth/me", headers=li_na).json()["posts"] == ["受理窗口", "审批科室"]

    deactivated = client.post("/api/users/li_na/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    assert deactivated.json()["active"] is False
    assert login(client, "li_na", "pw-li_na-secret").status_code == 401
    assert client.get("/api/auth/me", headers=li_na).status_code == 401

    reactivated = client.post("/api/users/li_na/reactivate", headers=admin)
    assert reactivated.json()["active"] is True
    assert login(client, "li_na", "pw-li_na-secret").status_code == 200


def test_http_password_change_revokes_tokens(service, client) -> None:
    add_user(service, "admin", ["admin"])
    add_user(service, "li_na", ["staff"])
    admin = headers(client, "admin")
    li_na = headers(client, "li_na")

    changed = client.post("/api/users/li_na/password", headers=admin, json={"password": "another-secret"})

    assert changed.status_code == 204, changed.text
    assert client.get("/api/auth/me", headers=li_na).status_code == 401
    assert login(client, "li_na", "pw-li_na-secret").status_code == 401
    assert login(client, "li_na", "another-secret").status_code == 200


def test_http_responses_hold_no_password(service, client) -> None:
    add_user(service, "admin", ["admin"])
    admin = headers(client, "admin")
    client.post("/api/users", headers=admin, json={"username": "li_na", "display_name": "李娜",
                                                   "password": "pw-li_na-secret", "roles": ["staff"]})
    with service.db.read() as conn:
        hashes = [row.password_hash for row in conn.execute(select(users.c.password_hash))]

    responses = [client.get("/api/users", headers=admin), client.get("/api/users/li_na", headers=admin),
                 client.patch("/api/users/li_na", headers=admin, json={"roles": ["staff", "auditor"]}),
                 client.post("/api/users/li_na/deactivate", headers=admin)]

    for response in responses:
        assert response.status_code == 200, response.text
        assert "password" not in response.text
        assert "pw-li_na-secret" not in response.text
        assert not any(stored in response.text for stored in hashes)


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"username": "li na"}, 422, "Username 'li na' is invalid"),
    ({"username": "x" * 65}, 422, "over the limit of 64"),
    ({"username": "admin"}, 409, "User admin already exists"),
    ({"roles": ["boss"]}, 422, "Role 'boss' is unknown; use one of: staff, auditor, designer, admin."),
    ({"roles": []}, 422, "A user needs at least one role"),
    ({"password": "1234567"}, 422, "The password of li_na is shorter than 8 characters"),
    ({"display_name": ""}, 422, "The display name is empty"),
    ({"department": "部" * 129}, 422, "over the limit of 128"),
])
def test_http_bad_input_is_explained(service, client, body, status, message) -> None:
    add_user(service, "admin", ["admin"])
    valid = {"username": "li_na", "display_name": "李娜", "password": "pw-li_na-secret", "roles": ["staff"]}

    response = client.post("/api/users", headers=headers(client, "admin"), json=valid | body)

    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert user_count(service) == 1
    assert system_events(service) == []


def test_http_missing_user_is_404(service, client) -> None:
    add_user(service, "admin", ["admin"])
    admin = headers(client, "admin")

    for response in (client.patch("/api/users/nobody", headers=admin, json={"roles": ["staff"]}),
                     client.post("/api/users/nobody/deactivate", headers=admin),
                     client.post("/api/users/nobody/password", headers=admin, json={"password": "pw-nobody-1"})):
        assert response.status_code == 404, response.text
        assert "User nobody does not exist" in response.json()["error"]["message"]


@pytest.mark.parametrize("role", ["staff", "auditor", "designer"])
def test_http_non_admins_get_403(service, client, role) -> None:
    add_user(service, "admin", ["admin"])
    add_user(service, "someone", [role])
    someone = headers(client, "someone")

    responses = [
        client.get("/api/users", headers=someone),
        client.get("/api/users/admin", headers=someone),
        client.post("/api/users", headers=someone, json={"username": "li_na", "display_name": "李娜",
                                                         "password": "pw-li_na-secret", "roles": ["admin"]}),
        client.patch("/api/users/someone", headers=someone, json={"roles": ["admin"]}),
        client.post("/api/users/admin/password", headers=someone, json={"password": "taken-over-1"}),
        client.post("/api/users/admin/deactivate", headers=someone),
        client.post("/api/users/admin/reactivate", headers=someone),
    ]

    assert [r.status_code for r in responses] == [403] * len(responses)
    assert "lacks the role" in responses[0].json()["error"]["message"]
    assert client.get("/api/users", headers=headers(client, "admin")).json()[1]["roles"] == [role]
    assert login(client, "admin", "pw-admin-secret").status_code == 200
    assert system_events(service) == []


def test_http_without_login_gets_401(client) -> None:
    assert client.get("/api/users").status_code == 401


# trace


def test_changes_are_traced_without_passwords(service, run, client) -> None:
    add_user(service, "admin", ["admin"])
    admin = headers(client, "admin")
    run("user", "add", "song_yu", "--name", "宋宇", "--role", "staff", stdin="pw-song_yu-secret\n")
    client.patch("/api/users/song_yu", headers=admin, json={"roles": ["staff", "auditor"], "posts": ["财务室"]})
    client.post("/api/users/song_yu/password", headers=admin, json={"password": "another-secret"})
    client.post("/api/users/song_yu/deactivate", headers=admin)
    client.post("/api/users/song_yu/reactivate", headers=admin)

    events = system_events(service)

    assert [e["kind"] for e in events] == ["user_created", "user_changed", "user_changed", "user_deactivated",
                                           "user_reactivated"]
    assert events[0]["actor"].startswith("cli:")
    assert {e["actor"] for e in events[1:]} == {"admin"}
    assert events[0]["payload"] == {"username": "song_yu", "display_name": "宋宇", "roles": ["staff"], "posts": [],
                                    "department": None}
    assert events[1]["payload"] == {"username": "song_yu", "fields": ["roles", "posts"],
                                    "before": {"roles": ["staff"], "posts": []},
                                    "after": {"roles": ["staff", "auditor"], "posts": ["财务室"]}}
    assert events[2]["payload"] == {"username": "song_yu", "fields": ["password"], "tokens_revoked": 0}
    assert events[3]["payload"]["username"] == "song_yu"
    with service.db.read() as conn:
        stored_hash = conn.execute(select(users.c.password_hash).where(users.c.username == "song_yu")).scalar_one()
    text = json.dumps(events, ensure_ascii=False, default=str)
    for secret in ("pw-song_yu-secret", "another-secret", stored_hash, "password_hash"):
        assert secret not in text

    code, out, err = run("verify")
    assert code == 0, err
    assert "no event was altered" in out


# the override that needed a second administrator


def test_second_admin_created_by_cli_approves_override(service, run, client) -> None:
    for username, roles, posts in (("designer", ["designer"], []), ("both", ["staff"], ["受理窗口", "审批科室"]),
                                   ("clerk", ["staff"], ["受理窗口"]), ("auditor", ["auditor"], []),
                                   ("admin", ["admin"], [])):
        add_user(service, username, roles, posts)
    api = Api(client)
    scenario = SCENARIOS["separationOfDuties"]
    case_id = api.prepare(scenario, "hard")
    assert api.break_control(scenario, case_id).status_code == 422
    task_id = api.task_id(case_id, "Approve")
    requested = api.post(f"/api/tasks/{task_id}/overrides", "admin",
                         {"control_id": "C_rule", "reason": "申请人急需办理，已书面报批"})
    override_id = requested.json()["id"]

    added = run("user", "add", "admin2", "--name", "第二管理员", "--role", "admin", stdin=f"{PASSWORD}\n")
    approved = api.post(f"/api/overrides/{override_id}/approve", "admin2")

    assert added[0] == 0, added[2]
    assert approved.status_code == 200, approved.text
    assert api.break_control(scenario, case_id).status_code == 200
    decided = [e for e in api.trace(case_id) if e["kind"] == "override_decided"]
    assert [e["actor"] for e in decided] == ["admin2"]


def test_deactivated_admin_cannot_approve_override(service, run, client) -> None:
    for username, roles, posts in (("designer", ["designer"], []), ("both", ["staff"], ["受理窗口", "审批科室"]),
                                   ("clerk", ["staff"], ["受理窗口"]), ("auditor", ["auditor"], []),
                                   ("admin", ["admin"], []), ("admin2", ["admin"], [])):
        add_user(service, username, roles, posts)
    api = Api(client)
    case_id = api.prepare(SCENARIOS["separationOfDuties"], "hard")
    task_id = api.task_id(case_id, "Approve")
    override_id = api.post(f"/api/tasks/{task_id}/overrides", "admin",
                           {"control_id": "C_rule", "reason": "申请人急需办理，已书面报批"}).json()["id"]
    api.headers("admin2")

    run("user", "deactivate", "admin2")
    by_token = api.post(f"/api/overrides/{override_id}/approve", "admin2")
    by_cli = run("override", "approve", str(override_id), "--as", "admin2")

    assert by_token.status_code == 401
    assert by_cli[0] == 1
    assert "User admin2 is deactivated" in by_cli[2]
    assert api.get(f"/api/overrides/{override_id}").json()["status"] == "pending"



def test_demo_users_in_system_trace(service, tmp_path) -> None:
    users_file = tmp_path / "users.json"
    users_file.write_text(json.dumps([
        {"username": "demo_clerk", "display_name": "示例经办人", "password": "demo-pass-1", "roles": ["staff"],
         "posts": ["受理窗口"], "department": "行政审批科"},
        {"username": "demo_auditor", "display_name": "示例监察员", "password": "demo-pass-2", "roles": ["auditor"]},
    ], ensure_ascii=False), encoding="utf-8")

    seed_users(service, users_file)
    seed_users(service, users_file)

    created = [e for e in service.system_trace() if e["kind"] == "user_created"]
    assert [(e["actor"], e["payload"]["username"]) for e in created] == [
        ("system", "demo_clerk"), ("system", "demo_auditor")]
    assert created[0]["payload"]["posts"] == ["受理窗口"]
    assert created[0]["payload"]["demo"] is True
    assert all("demo-pass" not in json.dumps(e, ensure_ascii=False) for e in created)
    assert all(report.ok for report in service.verify())
