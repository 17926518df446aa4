"""`liuhen keys list` and `liuhen keys rotate`, and `liuhen audit verify` across a rotation."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api import cli
from api.app import create_app
from engine import audit, signing, signing_keys, trace
from engine.i18n import translate
from engine.service import Liuhen
from engine.users import Actor, get_actor
from tests.conftest import LiveServer, add_user

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The HTTP test signs in, and the hash parameters are not what these tests check.
    monkeypatch.setattr("engine.users._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def run(service: Liuhen, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `liuhen ARGS` on the test database, in English unless --lang sets another language.

    Returns the exit code, the standard output and the standard error.
    """
    monkeypatch.setenv("LIUHEN_DATABASE_URL", service.settings.database_url)
    monkeypatch.setenv("LIUHEN_DATA_DIR", str(service.settings.data_dir))
    monkeypatch.setenv("LIUHEN_LOCALE", "en")
    monkeypatch.delenv("LIUHEN_SIGNING_KEY_PATH", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    def run_cli(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        output = capsys.readouterr()
        return code, output.out, output.err

    return run_cli


@pytest.fixture
def admin(service: Liuhen) -> str:
    add_user(service, "zhao_min", ["admin"])
    return "zhao_min"


def key_path(service: Liuhen) -> Path:
    return service.settings.resolved_signing_key_path()


def actor_named(service: Liuhen, username: str) -> Actor:
    with service.db.read() as conn:
        actor = get_actor(conn, username)
    assert actor is not None
    return actor


def retired_path(service: Liuhen) -> Path:
    return signing_keys.retired_keys_path(key_path(service))


def rotations(service: Liuhen) -> list[dict[str, Any]]:
    with service.db.read() as conn:
        return [event for event in trace.read_stream(conn, trace.SYSTEM_STREAM)
                if event["kind"] == signing_keys.EVENT_KIND]


def checkpoint_file(run: Run, folder: Path, name: str) -> Path:
    path = folder / name
    code, _out, err = run("checkpoint", "create", "--output", str(path))
    assert code == 0, err
    return path


def resigned(path: Path, folder: Path) -> Path:
    """Write a copy of the checkpoint at ``path`` signed with a key this instance never had."""
    document = json.loads(path.read_text(encoding="utf-8"))
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    document.update(key_id=signing.key_id(public), public_key=signing.public_key_pem(public))
    message = audit.signed_message(document["size"], document["root"], document["created_at"], document["key_id"])
    document["signature"] = signing.sign(key, message)
    foreign = folder / "foreign.json"
    foreign.write_text(json.dumps(document), encoding="utf-8")
    return foreign


# keys rotate


def test_rotate_prints_new_key(service: Liuhen, run: Run, admin: str) -> None:
    old = audit.create_checkpoint(service)

    code, out, err = run("keys", "rotate", "--as", admin)

    assert code == 0, err
    active = signing_keys.list_keys(service, actor_named(service, admin))[0]
    assert active["key_id"] != old["key_id"]
    lines = out.splitlines()
    assert lines[0] == f"The signing key was rotated. New checkpoints are signed with key {active['key_id']}."
    assert lines[1] == f"  SHA-256 fingerprint: {active['fingerprint']}"
    assert lines[2] == (f"The retired key {old['key_id']} stays trusted for `liuhen audit verify`: its public key is "
                        f"kept in {retired_path(service)}.")
    assert [event["actor"] for event in rotations(service)] == [admin]
    assert "PRIVATE" not in out


def test_rotate_first_key(service: Liuhen, run: Run, admin: str) -> None:
    code, out, err = run("keys", "rotate", "--as", admin)

    assert code == 0, err
    assert len(out.splitlines()) == 2
    assert key_path(service).exists()
    assert not retired_path(service).exists()


def test_rotate_without_as_records_cli_user(service: Liuhen, run: Run) -> None:
    code, _out, err = run("keys", "rotate")

    assert code == 0, err
    assert rotations(service)[0]["actor"].startswith("cli:")


@pytest.mark.parametrize(("username", "roles", "message"), [
    ("qian_qing", ["auditor"], "Administrator"),
    ("nobody", None, "User nobody does not exist."),
])
def test_rotate_refused(service: Liuhen, run: Run, username: str, roles: list[str] | None, message: str) -> None:
    if roles is not None:
        add_user(service, username, roles)
    audit.create_checkpoint(service)
    before = key_path(service).read_bytes()

    code, out, err = run("keys", "rotate", "--as", username)

    assert code == 1
    assert out == ""
    assert err.startswith("Error: ")
    assert message in err
    assert key_path(service).read_bytes() == before
    assert not retired_path(service).exists()
    assert rotations(service) == []


def test_rotate_stops_on_corrupt_retired_file(service: Liuhen, run: Run, admin: str) -> None:
    audit.create_checkpoint(service)
    run("keys", "rotate", "--as", admin)
    retired_path(service).write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n", encoding="ascii")
    before = key_path(service).read_bytes()

    code, _out, err = run("keys", "rotate", "--as", admin)

    assert code == 1
    assert f"The retired signing keys file {retired_path(service)} is invalid at line 1" in err
    assert key_path(service).read_bytes() == before
    assert len(rotations(service)) == 1


# keys list


def test_list_shows_active_then_retired(service: Liuhen, run: Run, admin: str) -> None:
    audit.create_checkpoint(service)
    run("keys", "rotate", "--as", admin)
    audit.create_checkpoint(service)
    audit.create_checkpoint(service)
    keys = signing_keys.list_keys(service, actor_named(service, admin))

    code, out, err = run("keys", "list", "--as", admin)

    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith(f"{keys[0]['key_id']}  active  created ")
    assert lines[0].endswith(f" by {admin}  checkpoints: 2")
    assert lines[1] == f"  SHA-256 fingerprint: {keys[0]['fingerprint']}"
    # The first key was made by the system for the first checkpoint, not by an administrator.
    assert lines[2].startswith(f"{keys[1]['key_id']}  retired  generated by the system on first use, ")
    assert lines[2].endswith("  checkpoints: 1")
    assert lines[3].startswith("  retired ")
    assert lines[3].endswith(f" by {admin}")
    assert lines[4] == f"  SHA-256 fingerprint: {keys[1]['fingerprint']}"


def test_list_empty(service: Liuhen, run: Run) -> None:
    code, out, _err = run("keys", "list")

    assert code == 0
    assert out == "No signing key exists yet; the first checkpoint creates one.\n"
    assert not key_path(service).exists()


def test_list_json_matches_http(service: Liuhen, run: Run, admin: str) -> None:
    audit.create_checkpoint(service)
    run("keys", "rotate", "--as", admin)

    code, out, err = run("keys", "list", "--json", "--as", admin)
    with LiveServer(create_app(service.settings, service)) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        login = client.post("/api/auth/login", json={"username": admin, "password": f"pw-{admin}-secret"})
        listed = client.get("/api/admin/keys", headers={"Authorization": f"Bearer {login.json()['token']}"})

    assert code == 0, err
    assert listed.status_code == 200, listed.text
    printed = json.loads(out)
    assert [set(key) for key in printed] == [set(key) for key in listed.json()]
    fields = ("key_id", "algorithm", "fingerprint", "public_key", "status", "created_by", "retired_by", "checkpoints")
    assert [[key[name] for name in fields] for key in printed] == [[key[name] for name in fields]
                                                                  for key in listed.json()]


def test_list_refused_to_auditor(service: Liuhen, run: Run) -> None:
    add_user(service, "qian_qing", ["auditor"])

    code, out, err = run("keys", "list", "--as", "qian_qing")

    assert code == 1
    assert out == ""
    assert "Administrator" in err


def test_chinese_output(service: Liuhen, run: Run, admin: str) -> None:
    audit.create_checkpoint(service)

    rotated = run("--lang", "zh_CN", "keys", "rotate", "--as", admin)
    listed = run("--lang", "zh_CN", "keys", "list", "--as", admin)

    assert rotated[0] == 0, rotated[2]
    active = signing_keys.list_keys(service, actor_named(service, admin))[0]
    assert rotated[1].splitlines()[:2] == [
        translate("zh_CN", "The signing key was rotated. New checkpoints are signed with key {key_id}.",
                  key_id=active["key_id"]),
        translate("zh_CN", "  SHA-256 fingerprint: {fingerprint}", fingerprint=active["fingerprint"]),
    ]
    assert listed[0] == 0, listed[2]
    assert listed[1].splitlines()[0].startswith(f"{active['key_id']}  启用  ")


# audit verify across a rotation


def test_verify_across_rotation(service: Liuhen, run: Run, admin: str, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    before = checkpoint_file(run, kept, "before.json")
    assert run("keys", "rotate", "--as", admin)[0] == 0
    after = checkpoint_file(run, kept, "after.json")
    old_id = json.loads(before.read_text(encoding="utf-8"))["key_id"]
    new_id = json.loads(after.read_text(encoding="utf-8"))["key_id"]

    old = run("audit", "verify", "--checkpoint", str(before))
    new = run("audit", "verify", "--checkpoint", str(after))
    foreign = run("audit", "verify", "--checkpoint", str(resigned(after, kept)))

    assert old[0] == 0, old[2]
    assert (f"Key {old_id} is a retired signing key of this instance, trusted through {retired_path(service)}."
            in old[1].splitlines())
    assert new[0] == 0, new[2]
    assert f"Key {new_id} is the active signing key of this instance." in new[1].splitlines()
    assert foreign[0] == 1
    assert "[unknown_key] The checkpoint was signed with key " in foreign[2]
    assert old_id in foreign[2]
    assert new_id in foreign[2]


def test_verify_with_supplied_key(service: Liuhen, run: Run, tmp_path: Path) -> None:
    kept = checkpoint_file(run, tmp_path, "kept.json")
    foreign = resigned(kept, tmp_path)
    public = tmp_path / "foreign.pem"
    public.write_text(json.loads(foreign.read_text(encoding="utf-8"))["public_key"], encoding="ascii")

    code, out, err = run("audit", "verify", "--checkpoint", str(foreign), "--public-key", str(public))

    assert code == 0, err
    foreign_id = json.loads(foreign.read_text(encoding="utf-8"))["key_id"]
    assert f"Key {foreign_id} is trusted because it was given with --public-key." in out.splitlines()


def test_verify_corrupt_retired_file(service: Liuhen, run: Run, admin: str, tmp_path: Path) -> None:
    kept = checkpoint_file(run, tmp_path, "kept.json")
    run("keys", "rotate", "--as", admin)
    path = retired_path(service)
    path.write_text(path.read_text(encoding="ascii") + "trailing text\n", encoding="ascii")

    code, out, err = run("audit", "verify", "--checkpoint", str(kept))

    assert code == 1
    assert "Verified" not in out
    assert err.startswith(f"Error: The retired signing keys file {path} is invalid at line 5: it is neither part of "
                          "a PEM public key block nor a comment starting with #. Restore the file from a backup")


def test_rotate_help(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run("keys", "rotate", "--help")

    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert "--as AS_USER" in help_text
    assert "Administrator to record the rotation against." in help_text
