"""Signed Merkle checkpoints over the whole trace, and inclusion proofs against them.

Sealing gives every committed trace event a fixed position in ``audit_log``. A checkpoint is the
RFC 6962 Merkle root over the first ``size`` leaves, ``leaf_hash(event body)`` in position order,
signed with the instance's Ed25519 key. An auditor keeps the checkpoint file outside the system. Later,
``engine.audit_verify`` shows that every event it covers is still there unchanged and in order. An
inclusion proof shows a third party, without the database, that one event is covered.

Sealing keeps one invariant that verification relies on: positions and event ids rise together, and
after a seal every event whose id is at most the highest sealed id is sealed. On PostgreSQL the sealer
therefore waits for all transactions that are inserting trace events to commit (see ``seal``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from engine import merkle, signing, signing_keys
from engine.db import audit_log, checkpoints, trace_events
from engine.errors import Conflict, InvalidInput, NotFound
from engine.i18n import Message, msg
from engine.trace import canonical_time

if TYPE_CHECKING:
    from engine.service import Liuhen

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "liuhen-checkpoint"
PROOF_FORMAT = "liuhen-inclusion-proof"
FORMAT_VERSION = 1
SIGNED_HEADER = "liuhen-checkpoint-v1"
SEAL_BATCH = 1000

# Problem kinds, as reported by verification and proof checks.
EDITED = "edited"
DELETED = "deleted"
DELETED_NEWEST = "deleted_newest"
REORDERED = "reordered"
INSERTED = "inserted"
SWAPPED = "swapped"
SIGNATURE_INVALID = "signature_invalid"
UNKNOWN_KEY = "unknown_key"
ROOT_MISMATCH = "root_mismatch"

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Problem:
    """One finding of a verification or proof check, with the ids of the event it concerns where known."""

    kind: str
    message: Message
    event_id: int | None = None
    stream: str | None = None
    seq: int | None = None
    position: int | None = None


@dataclass(frozen=True)
class CheckpointDocument:
    """A checkpoint as issued and kept by an auditor: the signed fields plus the public key."""

    size: int
    root: str
    created_at: str
    key_id: str
    signature: str
    public_key: str

    def signed_message(self) -> bytes:
        return signed_message(self.size, self.root, self.created_at, self.key_id)

    def to_json(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION, "size": self.size, "root": self.root,
                "created_at": self.created_at, "key_id": self.key_id, "signature": self.signature,
                "public_key": self.public_key}


def signed_message(size: int, root: str, created_at: str, key_id: str) -> bytes:
    return f"{SIGNED_HEADER}\n{size}\n{root}\n{created_at}\n{key_id}".encode("ascii")


# documents


def _field(document: dict[str, Any], name: str, kind: type, prefix: str = "", hex_digits: int = 0) -> Any:
    """Return ``document[name]`` after checking its JSON type; ``prefix`` makes the field path in messages."""
    path = prefix + name
    if name not in document:
        raise InvalidInput(msg("Field {field} is missing.", field=path))
    value = document[name]
    if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise InvalidInput(msg("Field {field} must be a whole number of at least 0; it is {value!r}.",
                               field=path, value=value))
    if kind is str and not isinstance(value, str):
        raise InvalidInput(msg("Field {field} must be a string; it is {value!r}.", field=path, value=value))
    if kind is str and hex_digits and not re.fullmatch(f"[0-9a-f]{{{hex_digits}}}", value):
        raise InvalidInput(msg("Field {field} must be {digits} lower-case hex digits; it is {value!r}.",
                               field=path, digits=hex_digits, value=value))
    if kind is dict and not isinstance(value, dict):
        raise InvalidInput(msg("Field {field} must be a JSON object.", field=path))
    if kind is list and not isinstance(value, list):
        raise InvalidInput(msg("Field {field} must be a JSON array.", field=path))
    return value


def _check_format(document: Any, expected: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InvalidInput(msg("The document must be a JSON object of format {expected!r}.", expected=expected))
    found = (document.get("format"), document.get("version"))
    if found != (expected, FORMAT_VERSION):
        raise InvalidInput(msg("The document has format {format!r} version {version!r}; expected {expected!r} "
                               "version {expected_version}.", format=found[0], version=found[1],
                               expected=expected, expected_version=FORMAT_VERSION))
    return document


def parse_checkpoint(document: Any, prefix: str = "") -> CheckpointDocument:
    """Check the fields of a checkpoint JSON object. check_signature checks the signature."""
    document = _check_format(document, CHECKPOINT_FORMAT)
    return CheckpointDocument(
        size=_field(document, "size", int, prefix),
        root=_field(document, "root", str, prefix, hex_digits=64),
        created_at=_field(document, "created_at", str, prefix),
        key_id=_field(document, "key_id", str, prefix, hex_digits=signing.KEY_ID_LENGTH),
        signature=_field(document, "signature", str, prefix, hex_digits=128),
        public_key=_field(document, "public_key", str, prefix),
    )


def check_signature(checkpoint: CheckpointDocument, trusted_keys: Sequence[Ed25519PublicKey] = (),
                    instance_key_path: str | None = None) -> list[Problem]:
    """Check the signature with the key in the file and, where one has the same key id, a trusted key.

    ``trusted_keys`` are keys known independently of the file: the instance's own key, or a public key
    the auditor exported earlier. When any are given the checkpoint must be signed by one of them, so a
    file re-signed with another key is rejected. ``instance_key_path`` only improves the message when
    there is no trusted key at all.
    """
    problems = []
    embedded = signing.parse_public_key(checkpoint.public_key)
    message = checkpoint.signed_message()
    if signing.key_id(embedded) != checkpoint.key_id:
        problems.append(Problem(SIGNATURE_INVALID, msg(
            "The checkpoint names key {key_id}, but its public key has id {actual}: the file was altered.",
            key_id=checkpoint.key_id, actual=signing.key_id(embedded))))
    elif not signing.signature_valid(embedded, checkpoint.signature, message):
        problems.append(Problem(SIGNATURE_INVALID, msg(
            "The checkpoint signature is invalid: its size, root, time or key id was changed after signing.")))

    trusted = {signing.key_id(key): key for key in trusted_keys}
    if not trusted and instance_key_path is not None:
        problems.append(Problem(UNKNOWN_KEY, msg(
            "This instance has no signing key at {path}, so key {key_id} of the checkpoint cannot be confirmed "
            "as its own. Pass the public key exported earlier with --public-key.",
            path=instance_key_path, key_id=checkpoint.key_id)))
    elif trusted and checkpoint.key_id not in trusted:
        problems.append(Problem(UNKNOWN_KEY, msg(
            "The checkpoint was signed with key {key_id}, but the trusted keys are {trusted}: it was not "
            "issued by this system.", key_id=checkpoint.key_id, trusted=", ".join(sorted(trusted)))))
    elif trusted and not signing.signature_valid(trusted[checkpoint.key_id], checkpoint.signature, message):
        problems.append(Problem(SIGNATURE_INVALID, msg(
            "The checkpoint signature does not verify with trusted key {key_id}.", key_id=checkpoint.key_id)))
    return problems


def instance_public_key(service: Liuhen) -> Ed25519PublicKey | None:
    """Return the instance's public key, or None if no key file exists yet; never creates the key."""
    private_key = signing.load_private_key(service.settings.resolved_signing_key_path())
    return private_key.public_key() if private_key is not None else None


@dataclass(frozen=True)
class InstanceKey:
    """A public key the instance trusts as its own; ``status`` is ``active`` or ``retired``."""

    key_id: str
    public_key: Ed25519PublicKey
    status: str


def instance_keys(service: Liuhen) -> list[InstanceKey]:
    """Return the active key, if any, then every key that rotations retired, oldest first.

    Both come from files: the key file and the retired keys file beside it. Keys recorded in the
    database are never trusted, because anyone able to rewrite the trace could add one there. Raises
    SigningKeyError when either file cannot be read.
    """
    path = service.settings.resolved_signing_key_path()
    keys = []
    active = instance_public_key(service)
    if active is not None:
        keys.append(InstanceKey(signing.key_id(active), active, signing_keys.ACTIVE))
    for retired in signing_keys.load_retired_keys(path):
        keys.append(InstanceKey(signing.key_id(retired), retired, signing_keys.RETIRED))
    return keys


# sealing


def seal(conn: Connection, now: datetime) -> int:
    """Append every committed trace event not yet in audit_log, in id order; returns how many.

    Runs inside the caller's write transaction. On PostgreSQL it first takes two table locks.
    EXCLUSIVE on audit_log serializes sealers. SHARE on trace_events waits until every transaction
    that has inserted trace events commits or rolls back, and holds off new inserts until this
    transaction ends. So no event with a lower id can commit after this seal, and the next seal only
    needs the events above the highest sealed id. On SQLite the write transaction already excludes
    every other writer.
    """
    # NOTE: a transaction that inserts trace events and then waits for a row lock can deadlock with a
    # sealer queued on trace_events; PostgreSQL then aborts one of them. No code in engine/ does that
    # today, because each write locks its case row or the system stream head before it appends.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE audit_log IN EXCLUSIVE MODE")
        conn.exec_driver_sql("LOCK TABLE trace_events IN SHARE MODE")
    last_position, last_event = conn.execute(
        select(func.max(audit_log.c.position), func.max(audit_log.c.event_id))).one()
    position = -1 if last_position is None else last_position
    events = select(trace_events.c.id, trace_events.c.body).order_by(trace_events.c.id)
    if last_event is not None:
        events = events.where(trace_events.c.id > last_event)

    sealed = 0
    batch: list[dict[str, Any]] = []
    for row in conn.execute(events.execution_options(yield_per=SEAL_BATCH)):
        position += 1
        batch.append({"position": position, "event_id": row.id, "sealed_at": now,
                      "leaf_hash": merkle.leaf_hash(bytes(row.body)).hex()})
        if len(batch) == SEAL_BATCH:
            conn.execute(insert(audit_log), batch)
            sealed += len(batch)
            batch = []
    if batch:
        conn.execute(insert(audit_log), batch)
        sealed += len(batch)
    return sealed


def log_leaves(conn: Connection, size: int | None = None) -> list[bytes]:
    """Return the stored leaf hashes of audit_log in position order, the first ``size`` only if given."""
    query = select(audit_log.c.leaf_hash).order_by(audit_log.c.position)
    if size is not None:
        query = query.limit(size)
    return [bytes.fromhex(row.leaf_hash) for row in conn.execute(query)]


# checkpoints


def create_checkpoint(service: Liuhen) -> dict[str, Any]:
    """Seal new trace events, then sign and store the Merkle root over the whole log.

    Sealing commits on its own so that PostgreSQL writers wait only for the seal, not for the hashing.
    """
    private_key = signing.load_or_create_private_key(service.settings.resolved_signing_key_path())
    public_key = private_key.public_key()
    key_id = signing.key_id(public_key)
    now = service.now()
    with service.db.write() as conn:
        sealed = seal(conn, now)

    with service.db.write() as conn:
        leaves = log_leaves(conn)
        size, root = len(leaves), merkle.root_from_hashes(leaves).hex()
        created_at = canonical_time(now)
        signature = signing.sign(private_key, signed_message(size, root, created_at, key_id))
        checkpoint_id = conn.execute(insert(checkpoints).values(
            size=size, root=root, created_at=now, signature=signature, key_id=key_id,
        ).returning(checkpoints.c.id)).scalar_one()
    logger.info("checkpoint %s created over %s events", checkpoint_id, size,
                extra={"checkpoint_id": checkpoint_id, "size": size, "sealed": sealed, "key_id": key_id})
    return CheckpointDocument(size, root, created_at, key_id, signature, signing.public_key_pem(public_key)).to_json()


def list_checkpoints(service: Liuhen) -> list[dict[str, Any]]:
    """Return every checkpoint issued, newest first, with its id and, if signed by the current key, the public key."""
    current = instance_public_key(service)
    current_id = signing.key_id(current) if current is not None else None
    with service.db.read() as conn:
        rows = conn.execute(select(checkpoints).order_by(checkpoints.c.id.desc())).all()
    listed = []
    for row in rows:
        document = _row_document(row, current if row.key_id == current_id else None)
        listed.append({"id": row.id, **document})
    return listed


def _row_document(row: Any, public_key: Ed25519PublicKey | None) -> dict[str, Any]:
    """Build the document of a stored checkpoint, with public_key None if the row's key is no longer in use."""
    pem = signing.public_key_pem(public_key) if public_key is not None else ""
    document = CheckpointDocument(row.size, row.root, canonical_time(row.created_at), row.key_id, row.signature,
                                  pem).to_json()
    if public_key is None:
        document["public_key"] = None
    return document


# inclusion proofs


@dataclass
class ProofCheck:
    """The outcome of checking an inclusion proof offline."""

    event_id: int | None
    stream: str | None
    seq: int | None
    position: int
    checkpoint: CheckpointDocument
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def prove(service: Liuhen, event_id: int) -> dict[str, Any]:
    """Build a self-contained inclusion proof of one trace event against a signed checkpoint.

    Uses the newest checkpoint signed with the current key if it covers the event, and otherwise creates
    a new checkpoint first.
    """
    with service.db.read() as conn:
        if conn.execute(select(trace_events.c.id).where(trace_events.c.id == event_id)).first() is None:
            raise NotFound(msg("Trace event {event_id} does not exist.", event_id=event_id), event_id=event_id)
    private_key = signing.load_or_create_private_key(service.settings.resolved_signing_key_path())
    public_key = private_key.public_key()
    covering = _covering_checkpoint(service, event_id, signing.key_id(public_key))
    if covering is None:
        create_checkpoint(service)
        covering = _covering_checkpoint(service, event_id, signing.key_id(public_key))
    if covering is None:
        raise Conflict(msg("Trace event {event_id} is not in the audit log although newer events are, so it "
                           "was added after sealing. Run `liuhen audit verify` against a kept checkpoint.",
                           event_id=event_id), event_id=event_id)
    checkpoint, position = covering

    with service.db.snapshot() as conn:
        leaves = log_leaves(conn, checkpoint.size)
        event = conn.execute(select(trace_events.c.stream, trace_events.c.seq, trace_events.c.body)
                             .where(trace_events.c.id == event_id)).one()
    body = bytes(event.body)
    if len(leaves) != checkpoint.size or merkle.root_from_hashes(leaves).hex() != checkpoint.root:
        raise Conflict(msg("The audit log no longer reproduces the root of the checkpoint of {size} events, so no "
                           "proof can be built. Run `liuhen audit verify` against a kept checkpoint.",
                           size=checkpoint.size))
    if merkle.leaf_hash(body) != leaves[position]:
        raise Conflict(msg("Trace event {event_id} was changed after it was sealed, so no proof can be built. "
                           "Run `liuhen audit verify` against a kept checkpoint.", event_id=event_id),
                       event_id=event_id)
    return {
        "format": PROOF_FORMAT,
        "version": FORMAT_VERSION,
        "event": {"id": event_id, "stream": event.stream, "seq": event.seq, **_encode_body(body)},
        "position": position,
        "leaf_hash": leaves[position].hex(),
        "audit_path": [node.hex() for node in merkle.inclusion_proof(leaves, position)],
        "checkpoint": checkpoint.to_json(),
    }


def _covering_checkpoint(service: Liuhen, event_id: int, key_id: str) -> tuple[CheckpointDocument, int] | None:
    """Find the newest checkpoint of key ``key_id`` that covers the event, and the event's position in it."""
    with service.db.read() as conn:
        position = conn.execute(select(audit_log.c.position).where(audit_log.c.event_id == event_id)).scalar()
        row = conn.execute(select(checkpoints).where(checkpoints.c.key_id == key_id)
                           .order_by(checkpoints.c.size.desc(), checkpoints.c.id.desc()).limit(1)).first()
    if position is None or row is None or position >= row.size:
        return None
    public_key = instance_public_key(service)
    return parse_checkpoint(_row_document(row, public_key)), position


def _encode_body(body: bytes) -> dict[str, str]:
    try:
        return {"body": body.decode("utf-8"), "body_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}


def _decode_body(event: dict[str, Any]) -> bytes:
    body = _field(event, "body", str, "event.")
    encoding = event.get("body_encoding", "utf-8")
    if encoding == "utf-8":
        return body.encode("utf-8")
    if encoding == "base64":
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise InvalidInput(msg("Field event.body is not valid base64.")) from exc
    raise InvalidInput(msg("Field event.body_encoding is {encoding!r}; expected 'utf-8' or 'base64'.",
                           encoding=encoding))


def check_proof(document: Any, trusted_keys: Sequence[Ed25519PublicKey] = ()) -> ProofCheck:
    """Check an inclusion proof without a database: the checkpoint signature, the leaf and the audit path.

    Raises InvalidInput when the document is not a proof at all; problems found in a well-formed proof
    are returned in ``ProofCheck.problems``.
    """
    document = _check_format(document, PROOF_FORMAT)
    checkpoint = parse_checkpoint(_field(document, "checkpoint", dict), "checkpoint.")
    event = _field(document, "event", dict)
    position = _field(document, "position", int)
    claimed_leaf = _field(document, "leaf_hash", str, hex_digits=64)
    path_hex = _field(document, "audit_path", list)
    if not all(isinstance(node, str) and _HEX64.fullmatch(node) for node in path_hex):
        raise InvalidInput(msg("Field audit_path must list hashes of 64 lower-case hex digits."))
    body = _decode_body(event)
    event_id, stream, seq = event.get("id"), event.get("stream"), event.get("seq")
    result = ProofCheck(event_id, stream, seq, position, checkpoint)

    result.problems.extend(check_signature(checkpoint, trusted_keys))
    leaf = merkle.leaf_hash(body)
    if leaf.hex() != claimed_leaf:
        result.problems.append(Problem(EDITED, msg(
            "The body of event {event_id} ({stream} #{seq}) does not match the leaf hash of the proof: the event "
            "text was changed.", event_id=event_id, stream=stream, seq=seq), event_id, stream, seq, position))
    path = [bytes.fromhex(node) for node in path_hex]
    if not merkle.verify_inclusion(leaf, position, checkpoint.size, path, bytes.fromhex(checkpoint.root)):
        result.problems.append(Problem(ROOT_MISMATCH, msg(
            "The audit path does not lead from event {event_id} at position {position} to the checkpoint root: "
            "the event or the proof was altered.", event_id=event_id, position=position),
            event_id, stream, seq, position))
    result.problems.extend(_check_labels(body, event_id, stream, seq, position))
    return result


def _check_labels(body: bytes, event_id: Any, stream: Any, seq: Any, position: int) -> list[Problem]:
    """The stream and seq printed beside the body are not hashed, so they must match the hashed body."""
    try:
        record = json.loads(body)
    except ValueError:
        record = None
    if not isinstance(record, dict) or (record.get("stream"), record.get("seq")) != (stream, seq):
        return [Problem(EDITED, msg(
            "The proof labels event {event_id} as {stream} #{seq}, which its hashed body does not say.",
            event_id=event_id, stream=stream, seq=seq), event_id, stream, seq, position)]
    return []
