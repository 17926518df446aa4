"""The checkpoint signing keys over time: list them and rotate the active one (administrators).

The active key is the private key file of ``engine.signing``. Rotating writes a new key in its place
and records a ``signing_key_rotated`` event on the system trace stream, in the same transaction. The
event carries the public keys of both the new and the retired key, so the public part of every key
that ever signed a checkpoint stays readable after its private part is gone. A retired private key is
deleted, not kept.

The rotation also appends the retired public key to a file beside the key file
(``<key file>.retired.pem``, see ``retired_keys_path``). Verification trusts the keys in that file as
the instance's own. They come from the same place as the active key, so whoever can replace them can
replace the active key too. The copies in the trace are for reading only, because anyone with write
access to the database could add a key there.

No function here returns or logs a private key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select

from engine import signing, trace
from engine.db import checkpoints, trace_events
from engine.i18n import Message, msg
from engine.users import Actor, require_role

if TYPE_CHECKING:
    from engine.service import Liuhen

logger = logging.getLogger(__name__)

EVENT_KIND = "signing_key_rotated"
ACTIVE = "active"
RETIRED = "retired"
RETIRED_KEYS_SUFFIX = ".retired.pem"
_PEM_BEGIN = "-----BEGIN PUBLIC KEY-----"
_PEM_END = "-----END PUBLIC KEY-----"
_CHECKPOINTS_PER_KEY = select(checkpoints.c.key_id, func.count().label("total")).group_by(checkpoints.c.key_id)


class RetiredKeysError(signing.SigningKeyError):
    """The file of retired public keys exists but cannot be read, or contains something other than Ed25519 keys."""

    code = "retired_keys_invalid"


@dataclass
class SigningKey:
    """One signing key as the system records it; ``public_key`` is None for a key known only from checkpoints."""

    key_id: str
    public_key: str | None
    status: str = RETIRED
    created_at: datetime | None = None
    created_by: str | None = None
    retired_at: datetime | None = None
    retired_by: str | None = None
    checkpoints: int = 0
    # True for the first key, which the system generated when it first needed one, not a rotation.
    generated_on_first_use: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "algorithm": "Ed25519", "fingerprint": _fingerprint(self.public_key),
                "public_key": self.public_key, "status": self.status,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "created_by": self.created_by,
                "retired_at": self.retired_at.isoformat() if self.retired_at else None,
                "retired_by": self.retired_by, "checkpoints": self.checkpoints,
                "generated_on_first_use": self.generated_on_first_use}


def list_keys(service: Liuhen, actor: Actor) -> list[dict[str, Any]]:
    """List every signing key, the active one first, then retired ones from the most recently retired.

    A key's creation time comes from the rotation that created it. The first key, made on first use,
    has no such event: its time is that of the first checkpoint it signed, or else the key file's
    modification time, and after its retirement the time the rotation recorded.
    """
    require_role(actor, "admin")
    path = service.settings.resolved_signing_key_path()
    private_key = signing.load_private_key(path)
    with service.db.snapshot() as conn:
        known = _keys_from_rotations(_rotations(conn))
        counts = {row.key_id: row.total for row in conn.execute(_CHECKPOINTS_PER_KEY)}
        if private_key is not None:
            current_id = signing.key_id(private_key.public_key())
            current = known.setdefault(current_id,
                                       SigningKey(current_id, signing.public_key_pem(private_key.public_key())))
            current.status = ACTIVE
            current.retired_at = current.retired_by = None
            if current.created_at is None:
                current.created_at = _first_use(conn, current_id, path)
                current.generated_on_first_use = True
    for key_id, count in counts.items():
        known.setdefault(key_id, SigningKey(key_id, None)).checkpoints = count

    def order(key: SigningKey) -> tuple[int, float]:
        moment = key.retired_at or key.created_at
        return (0 if key.status == ACTIVE else 1, -moment.timestamp() if moment else 0.0)

    return [key.to_json() for key in sorted(known.values(), key=order)]


def rotate_key(service: Liuhen, admin: Actor) -> dict[str, Any]:
    """Replace the active signing key with a new one and record the rotation in the system trace.

    Returns the new key as ``list_keys`` shows it, plus ``previous_key_id``, the retired key's id or
    None. The retired public key is appended to the retired keys file, and the key file is replaced,
    inside the database transaction that records the event. When that transaction fails, both files
    are put back as they were, so the trace and the files do not disagree. A retired keys file that
    cannot be read stops the rotation before anything changes.
    """
    require_role(admin, "admin")
    path = service.settings.resolved_signing_key_path()
    retired_path = retired_keys_path(path)
    new_key = Ed25519PrivateKey.generate()
    new_public = new_key.public_key()
    now = service.now()
    previous_bytes: bytes | None = None
    retired_bytes: bytes | None = None
    changing = False
    try:
        with service.db.write() as conn:
            # The system stream lock also serializes rotations, so each one retires the key the one before it made.
            trace.lock_system_stream(conn, not service.db.is_sqlite)
            previous = signing.load_private_key(path)
            if previous is not None:
                previous_bytes = path.read_bytes()
            retired_bytes = _read_retired_file(retired_path)
            retired = _parse_retired_keys(retired_path, retired_bytes) if retired_bytes is not None else []
            payload = _rotation_payload(conn, new_public, previous.public_key() if previous else None, path)
            trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(EVENT_KIND, admin.username, now,
                                                                    payload=payload)])
            # From here on the files may have changed, so a failure puts the previous ones back. The retired
            # public key is written first: if the process dies between the two writes, it is still trusted.
            changing = True
            if previous is not None:
                _append_retired_key(retired_path, retired_bytes, retired, previous.public_key(), now)
            _replace_key_file(path, new_key)
    except BaseException:
        if changing:
            if previous is not None:
                _restore_file(retired_path, retired_bytes, 0o644)
            _restore_file(path, previous_bytes, 0o600)
        raise
    logger.info("signing key rotated", extra={"actor": admin.username, "key_id": payload["key_id"],
                                               "previous_key_id": payload["previous_key_id"]})
    rotated = SigningKey(payload["key_id"], payload["public_key"], ACTIVE, now, admin.username).to_json()
    return {**rotated, "previous_key_id": payload["previous_key_id"]}


def retired_keys_path(key_path: Path) -> Path:
    """Return the file of retired public keys kept beside the signing key file ``key_path``."""
    return key_path.with_name(key_path.name + RETIRED_KEYS_SUFFIX)


def load_retired_keys(key_path: Path) -> list[Ed25519PublicKey]:
    """Read the public keys retired by rotations of the key at ``key_path``, oldest first.

    Returns an empty list when the file does not exist. Raises RetiredKeysError, naming the file and
    line, when it cannot be read or contains anything but Ed25519 public keys in PEM form and ``#`` comments.
    """
    path = retired_keys_path(key_path)
    data = _read_retired_file(path)
    return _parse_retired_keys(path, data) if data is not None else []


def _rotation_payload(conn: Any, new_public: Ed25519PublicKey, previous: Ed25519PublicKey | None,
                      path: Path) -> dict[str, Any]:
    previous_id = signing.key_id(previous) if previous is not None else None
    previous_created = None
    if previous_id is not None:
        created_by_rotation = any(event["payload"].get("key_id") == previous_id for event in _rotations(conn))
        # A key made on first use has no event of its own, so its first use is the best record of its creation.
        previous_created = None if created_by_rotation else trace.canonical_time(_first_use(conn, previous_id, path))
    return {"key_id": signing.key_id(new_public), "public_key": signing.public_key_pem(new_public),
            "previous_key_id": previous_id,
            "previous_public_key": signing.public_key_pem(previous) if previous is not None else None,
            "previous_key_created_at": previous_created}


def _rotations(conn: Any) -> list[dict[str, Any]]:
    rows = conn.execute(select(trace_events.c.body)
                        .where(trace_events.c.stream == trace.SYSTEM_STREAM, trace_events.c.kind == EVENT_KIND)
                        .order_by(trace_events.c.seq)).all()
    return [json.loads(bytes(row.body)) for row in rows]


def _keys_from_rotations(rotations: list[dict[str, Any]]) -> dict[str, SigningKey]:
    known: dict[str, SigningKey] = {}
    for event in rotations:
        payload, at = event["payload"], _parse_time(event["at"])
        previous_id = payload.get("previous_key_id")
        if previous_id:
            retired = known.setdefault(previous_id, SigningKey(previous_id, payload.get("previous_public_key")))
            if retired.created_at is None and payload.get("previous_key_created_at"):
                # Only the first key, which no rotation created, has its creation time recorded here.
                retired.created_at = _parse_time(payload["previous_key_created_at"])
                retired.generated_on_first_use = True
            retired.retired_at, retired.retired_by = at, event["actor"]
        known[payload["key_id"]] = SigningKey(payload["key_id"], payload["public_key"], RETIRED, at, event["actor"])
    return known


def _replace_key_file(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write_atomically(path, pem, 0o600)


def _append_retired_key(path: Path, before: bytes | None, retired: list[Ed25519PublicKey],
                        public_key: Ed25519PublicKey, now: datetime) -> None:
    """Add ``public_key`` to the retired keys file, unless it is there already because an old key file was restored."""
    retired_id = signing.key_id(public_key)
    if any(signing.key_id(key) == retired_id for key in retired):
        return
    entry = f"# key {retired_id}, retired {trace.canonical_time(now)}\n{signing.public_key_pem(public_key)}"
    content = before or b""
    if content and not content.endswith(b"\n"):
        content += b"\n"
    _write_atomically(path, content + entry.encode("ascii"), 0o644)


def _restore_file(path: Path, previous: bytes | None, mode: int) -> None:
    if previous is None:
        path.unlink(missing_ok=True)
    else:
        _write_atomically(path, previous, mode)
    logger.warning("signing key rotation failed; %s was put back", path, extra={"path": str(path)})


def _write_atomically(path: Path, content: bytes, mode: int) -> None:
    """Write ``content`` to a new file with ``mode`` and rename it over ``path``, so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_retired_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RetiredKeysError(msg("The retired signing keys file {path} cannot be read: {reason}. Make it "
                                   "readable by the user that runs liuhen.", path=str(path), reason=exc.strerror),
                               path=str(path)) from exc


def _parse_retired_keys(path: Path, data: bytes) -> list[Ed25519PublicKey]:
    """Parse PEM public key blocks, allowing blank lines and ``#`` comment lines between them."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        number = data[:exc.start].count(b"\n") + 1
        raise _invalid_retired_file(path, number, msg("it contains a byte that is not ASCII")) from exc
    keys: list[Ed25519PublicKey] = []
    block: list[str] = []
    block_start = 0
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if block:
            block.append(line)
            if line == _PEM_END:
                keys.append(_parse_retired_block(path, block_start, block))
                block = []
        elif line == _PEM_BEGIN:
            block, block_start = [line], number
        elif line and not line.startswith("#"):
            raise _invalid_retired_file(path, number, msg(
                "it is neither part of a PEM public key block nor a comment starting with #"))
    if block:
        raise _invalid_retired_file(path, block_start, msg("the public key block that starts there has no END line"))
    return keys


def _parse_retired_block(path: Path, line: int, block: list[str]) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key("\n".join(block).encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        problem = msg("the public key block that starts there cannot be decoded")
        raise _invalid_retired_file(path, line, problem) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise _invalid_retired_file(path, line, msg("the public key that starts there is not an Ed25519 key"))
    return key


def _invalid_retired_file(path: Path, line: int, problem: Message) -> RetiredKeysError:
    return RetiredKeysError(msg(
        "The retired signing keys file {path} is invalid at line {line}: {problem}. Restore the file from a "
        "backup; the signing_key_rotated events of the system trace list every retired public key.",
        path=str(path), line=line, problem=problem), path=str(path), line=line)


def _fingerprint(pem: str | None) -> str | None:
    """Return the SHA-256 of the raw public key in hex; its first 16 digits are the key id."""
    if pem is None:
        return None
    raw = signing.parse_public_key(pem).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _first_use(conn: Any, key_id: str, path: Path) -> datetime:
    """Return when the key signed its first checkpoint, or else when its file was last written."""
    first = conn.execute(select(func.min(checkpoints.c.created_at)).where(checkpoints.c.key_id == key_id)).scalar()
    if first is not None:
        return first if first.tzinfo else first.replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
