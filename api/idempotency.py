"""Idempotent retries of state-changing requests: the ``Idempotency-Key`` header.

A client that sends ``Idempotency-Key: <key>`` on a request that changes state, and then loses the
response (a timeout, a dropped connection, a 503), sends the same request again with the same key.
The first request stores its response (status and JSON body) in ``idempotent_requests`` in the same
database transaction as the step it took, so the step and its stored response are saved together or
not at all. A retry gets the stored response with the header ``Idempotent-Replayed: true`` and
changes nothing.

Keys belong to the signed-in user and are kept for ``idempotency_key_hours``. Responses with a status
of 500 or more are not stored, because their transaction rolled back, so a retry runs the request
again. When the connection breaks during COMMIT, the commit may still have gone through; then the
retry finds the stored response.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from api.deps import CurrentActor, Service
from api.errors import liuhen_error_content, request_locale
from engine.db import Database, idempotent_requests
from engine.errors import Conflict, InvalidInput, LiuhenError
from engine.i18n import msg
from engine.service import Liuhen

logger = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 128
# Visible ASCII only, so a key reads the same in logs, headers and the database.
_KEY_PATTERN = re.compile(r"[\x21-\x7e]+")

KEY_DESCRIPTION = (
    "Optional key of 1 to 128 visible ASCII characters, unique per change the client means to make (a UUID "
    "works). If the response is lost, send the same request again with the same key: the change is applied "
    "once, and the retry gets the first response with the header Idempotent-Replayed: true. The same key with "
    "another body or endpoint gets 422 idempotency_key_reused; while the first request with the key still "
    "runs, another one gets 409 idempotency_key_in_use. Keys are kept for LIUHEN_IDEMPOTENCY_KEY_HOURS "
    "(24 by default)."
)

# OpenAPI entries of the endpoints that accept Idempotency-Key.
IDEMPOTENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": {REPLAYED_HEADER: {
        "description": "true when this is the stored response to an earlier request with the same "
                       "Idempotency-Key.",
        "schema": {"type": "string"}}}},
    409: {"description": "The state does not allow the change, or idempotency_key_in_use: an earlier request with "
                         "the same Idempotency-Key is still running; send the request again shortly."},
    422: {"description": "Invalid input, or idempotency_key_invalid / idempotency_key_reused: the key is malformed "
                         "or was used for another request; use a new key for a new request."},
}


class IdempotencyKeyInvalid(InvalidInput):
    code = "idempotency_key_invalid"


class IdempotencyKeyReused(InvalidInput):
    """The key was used before for another endpoint or another request body."""

    code = "idempotency_key_reused"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


# Keys of requests running in this process, as (id of the Database object, username, key). On PostgreSQL
# an advisory lock covers other processes too. On SQLite a request of another process waits for the
# database's write lock instead, and then finds the stored response.
_running: set[tuple[int, str, str]] = set()
_running_lock = threading.Lock()

Result = TypeVar("Result")


@dataclass
class Idempotency:
    """The Idempotency-Key of one request, or None, with what a retry must repeat to get the stored response."""

    service: Liuhen
    username: str
    key: str | None
    method: str
    path: str
    request_hash: str
    locale: str

    def run(self, action: Callable[[], Result], response_model: type[BaseModel],
            status_code: int = 200) -> Result | JSONResponse:
        """Run ``action`` and respond with its result, once per key; without a key, return its result unchanged.

        With a key, ``action`` runs inside one outer transaction that also stores the response, so its steps
        and the stored response commit together. ``response_model`` renders a result as the endpoint does.
        """
        if self.key is None:
            return action()
        database = self.service.db
        with _claimed(database, self.username, self.key), database.outer_write() as conn:
            self._lock_key(conn, database, self.key)
            stored = self._stored(conn)
            if stored is not None:
                return self._replay(stored)
            status, content = self._run_action(action, response_model, status_code)
            self._store(conn, status, content)
        return JSONResponse(status_code=status, content=content)

    def _lock_key(self, conn: Connection, database: Database, key: str) -> None:
        if database.is_sqlite:
            return
        # Held until the transaction ends, also when the process dies, so a crash never leaves a key locked.
        if not conn.execute(select(func.pg_try_advisory_xact_lock(advisory_lock_id(self.username, key)))).scalar():
            raise _in_use(key)

    def _stored(self, conn: Connection) -> Any:
        row = conn.execute(select(idempotent_requests).where(
            idempotent_requests.c.username == self.username, idempotent_requests.c.key == self.key)).first()
        if row is None or _utc(row.created_at) < self._cutoff():
            # An expired key starts a new request; _store deletes the old row first.
            return None
        if (row.method, row.path) != (self.method, self.path):
            raise IdempotencyKeyReused(msg(
                "The Idempotency-Key {key} was already used for {used_method} {used_path}; use a new key for "
                "{method} {path}.", key=self.key, used_method=row.method, used_path=row.path, method=self.method,
                path=self.path), key=self.key)
        if row.request_hash != self.request_hash:
            raise IdempotencyKeyReused(msg(
                "The Idempotency-Key {key} was already used for {method} {path} with a different request body; "
                "send the same body to get the first response again, or use a new key for a new request.",
                key=self.key, method=self.method, path=self.path), key=self.key)
        return row

    def _replay(self, row: Any) -> JSONResponse:
        logger.info("stored response replayed", extra={"username": self.username, "idempotency_key": self.key,
                                                        "path": self.path, "status": row.status_code})
        return JSONResponse(status_code=row.status_code, content=json.loads(row.response_body),
                            headers={REPLAYED_HEADER: "true"})

    def _run_action(self, action: Callable[[], Any], response_model: type[BaseModel],
                    status_code: int) -> tuple[int, Any]:
        try:
            result = action()
        except LiuhenError as error:
            if error.status >= 500:
                raise
            # A refusal is a response too: a retry must not try the step again, which could then succeed twice.
            return error.status, liuhen_error_content(error, self.locale)
        return status_code, response_model.model_validate(result).model_dump(mode="json")

    def _store(self, conn: Connection, status: int, content: Any) -> None:
        # Expired keys of this user go here, so the table stays small even without `liuhen worker`.
        conn.execute(delete(idempotent_requests).where(idempotent_requests.c.username == self.username,
                                                       idempotent_requests.c.created_at < self._cutoff()))
        conn.execute(insert(idempotent_requests).values(
            username=self.username, key=self.key, method=self.method, path=self.path,
            request_hash=self.request_hash, status_code=status,
            response_body=json.dumps(content, ensure_ascii=False, separators=(",", ":")),
            created_at=self.service.now()))

    def _cutoff(self) -> datetime:
        return _utc(self.service.now()) - timedelta(hours=self.service.settings.idempotency_key_hours)


async def idempotency(request: Request, service: Service, actor: CurrentActor,
                      key: Annotated[str | None, Header(alias=KEY_HEADER, description=KEY_DESCRIPTION)] = None,
                      ) -> Idempotency:
    """Read the Idempotency-Key header and fingerprint the request that a retry must repeat."""
    if key is not None and (len(key) > MAX_KEY_LENGTH or not _KEY_PATTERN.fullmatch(key)):
        raise IdempotencyKeyInvalid(msg(
            "The Idempotency-Key {key!r} is invalid; send 1 to {limit} visible ASCII characters, such as a UUID.",
            key=key[:MAX_KEY_LENGTH + 1], limit=MAX_KEY_LENGTH))
    body = await request.body()
    return Idempotency(service=service, username=actor.username, key=key, method=request.method,
                       path=request.url.path, request_hash=_request_hash(request.url.query, body),
                       locale=request_locale(request))


Idempotent = Annotated[Idempotency, Depends(idempotency)]


def _request_hash(query: str, body: bytes) -> str:
    """Return the SHA-256 of the query string and the body, with JSON bodies compared by value, not layout."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False,
                               separators=(",", ":")).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(query.encode() + b"\n" + canonical).hexdigest()


def advisory_lock_id(username: str, key: str) -> int:
    """Return the PostgreSQL advisory lock that a request with this user's key holds while it runs."""
    digest = hashlib.sha256(f"idempotency\0{username}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def _claimed(database: Database, username: str, key: str) -> Iterator[None]:
    """Mark a key as running in this process for the length of the block; raise IdempotencyKeyInUse if it is."""
    entry = (id(database), username, key)
    with _running_lock:
        if entry in _running:
            raise _in_use(key)
        _running.add(entry)
    try:
        yield
    finally:
        with _running_lock:
            _running.discard(entry)


def _in_use(key: str) -> IdempotencyKeyInUse:
    return IdempotencyKeyInUse(msg(
        "An earlier request with the Idempotency-Key {key} is still running; send this request again when it "
        "has finished to get its response.", key=key), key=key)


def _utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; SQLite returns stored times without their zone, which is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
