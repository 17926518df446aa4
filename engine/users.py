"""Users, roles, posts and login tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, VerifyMismatchError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from engine.db import auth_tokens, users
from engine.errors import Conflict, Forbidden, InvalidInput, Unauthorized
from engine.i18n import Message, message_list, msg

ROLES = ("staff", "auditor", "designer", "admin")
MIN_PASSWORD_LENGTH = 8
# POST /api/auth/login accepts no longer password, so a longer one could never be used to sign in.
MAX_PASSWORD_LENGTH = 256
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Actor:
    """The signed-in user an action is recorded against."""

    username: str
    display_name: str
    roles: frozenset[str]
    posts: frozenset[str] = field(default_factory=frozenset)
    department: str | None = None

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


SYSTEM_ACTOR = Actor("system", "system", frozenset({"admin"}))


def require_role(actor: Actor, *roles: str) -> None:
    """Raise Forbidden unless ``actor`` has one of ``roles``."""
    if not actor.has_role(*roles):
        raise Forbidden(msg("User {username} lacks the role for this action; it needs one of: {roles}.",
                            username=actor.username, roles=message_list(role_name(role) for role in roles)))


def role_name(role: str) -> Message | str:
    """Return the name of a role for people to read; an unknown role stays as it is."""
    names = {"staff": msg("Business staff"), "auditor": msg("Auditor"), "designer": msg("Designer"),
             "admin": msg("Administrator")}
    return names.get(role, role)


def check_password(username: str, password: str) -> None:
    """Raise InvalidInput unless ``password`` has MIN_PASSWORD_LENGTH to MAX_PASSWORD_LENGTH characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(msg("The password of {username} is shorter than 8 characters; choose a longer one.",
                               username=username))
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(msg("The password of {username} is longer than {limit} characters; choose a shorter "
                               "one.", username=username, limit=MAX_PASSWORD_LENGTH))


def _actor(row: Any) -> Actor:
    return Actor(row.username, row.display_name, frozenset(row.roles), frozenset(row.posts), row.department)


def create_user(conn: Connection, *, username: str, display_name: str, password: str, roles: list[str],
                posts: list[str], department: str | None, now: datetime) -> Actor:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidInput(msg("Role {role!r} is unknown; use one of: {allowed}.", role=unknown[0],
                               allowed=", ".join(ROLES)))
    check_password(username, password)
    if conn.execute(select(users.c.id).where(users.c.username == username)).first():
        raise Conflict(msg("User {username} already exists.", username=username))
    conn.execute(insert(users).values(
        username=username, display_name=display_name, password_hash=_hasher.hash(password), roles=roles,
        posts=posts, department=department, active=True, created_at=now,
    ))
    return Actor(username, display_name, frozenset(roles), frozenset(posts), department)


def authenticate(conn: Connection, username: str, password: str) -> Actor:
    row = conn.execute(select(users).where(users.c.username == username)).first()
    invalid = Unauthorized(msg("Username or password is wrong."))
    if row is None or not row.active:
        _hasher.hash(password)  # spend the same time as a real check, so usernames cannot be probed
        raise invalid
    try:
        _hasher.verify(row.password_hash, password)
    except (VerifyMismatchError, VerificationError):
        raise invalid from None
    return _actor(row)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: Connection, username: str, now: datetime, ttl: timedelta) -> tuple[str, datetime]:
    user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
    token = secrets.token_urlsafe(32)
    expires = now + ttl
    conn.execute(delete(auth_tokens).where(auth_tokens.c.user_id == user_id, auth_tokens.c.expires_at < now))
    conn.execute(insert(auth_tokens).values(token_hash=_token_hash(token), user_id=user_id, created_at=now,
                                            expires_at=expires))
    return token, expires


def actor_for_token(conn: Connection, token: str, now: datetime) -> Actor:
    row = conn.execute(
        select(users, auth_tokens.c.expires_at)
        .join(auth_tokens, auth_tokens.c.user_id == users.c.id)
        .where(auth_tokens.c.token_hash == _token_hash(token))
    ).first()
    if row is None:
        raise Unauthorized(msg("The login token is invalid; sign in again."))
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=now.tzinfo)
    if expires <= now or not row.active:
        raise Unauthorized(msg("The login token has expired; sign in again."))
    return _actor(row)


def revoke_token(conn: Connection, token: str) -> None:
    conn.execute(delete(auth_tokens).where(auth_tokens.c.token_hash == _token_hash(token)))


def get_actor(conn: Connection, username: str, *, active_only: bool = False) -> Actor | None:
    """Return the user ``username``, or None when there is none (or, with ``active_only``, it is deactivated)."""
    query = select(users).where(users.c.username == username)
    if active_only:
        query = query.where(users.c.active.is_(True))
    row = conn.execute(query).first()
    return _actor(row) if row else None


def set_password(conn: Connection, username: str, password: str) -> None:
    """Store the argon2 hash of a new password; the password itself is never stored."""
    check_password(username, password)
    conn.execute(update(users).where(users.c.username == username).values(password_hash=_hasher.hash(password)))
