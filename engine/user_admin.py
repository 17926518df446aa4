"""User administration (administrators): create users, change them, set passwords, deactivate them.

Each change is stored together with one event on the system trace stream, in one transaction:
``user_created``, ``user_changed``, ``user_deactivated`` or ``user_reactivated``. The events name the
user and the fields that changed, with old and new values. A password change is recorded by name
only, so no event, log line or return value contains a password or its hash.

Users are never deleted, because the trace names them. A user who leaves is deactivated, and from
then on their logins and login tokens are rejected.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from engine import trace
from engine.db import auth_tokens, users
from engine.errors import Conflict, InvalidInput, NotFound
from engine.i18n import msg
from engine.users import ROLES, Actor, check_password, create_user, require_role, set_password

if TYPE_CHECKING:
    from engine.service import Liuhen

logger = logging.getLogger(__name__)

# Column sizes of the users table.
MAX_USERNAME_LENGTH = 64
MAX_NAME_LENGTH = 128
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# The engine records its own actions as "system", so no user may take that name.
RESERVED_USERNAMES = frozenset({"system"})
# The fields an administrator can change besides the password and the active flag.
CHANGEABLE_FIELDS = ("display_name", "roles", "posts", "department")


@dataclass(frozen=True)
class UserChanges:
    """New values for some fields of a user: None leaves a field as it is, and department "" clears it."""

    display_name: str | None = None
    roles: list[str] | None = None
    posts: list[str] | None = None
    department: str | None = None


# Checking input.

def check_username(username: str) -> str:
    """Return ``username`` if it is a valid new username, else raise InvalidInput saying how to fix it."""
    if not username:
        raise InvalidInput(msg("The username is empty; choose one such as zhang_wei."))
    if len(username) > MAX_USERNAME_LENGTH:
        raise InvalidInput(msg("Username {username!r} is {length} characters long, over the limit of {limit}; "
                               "choose a shorter one.", username=username, length=len(username),
                               limit=MAX_USERNAME_LENGTH))
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(msg("Username {username!r} is invalid: use only ASCII letters, digits, '_', '.' and "
                               "'-', starting with a letter or digit, such as zhang_wei.", username=username))
    if username.lower() in RESERVED_USERNAMES:
        raise InvalidInput(msg("Username {username!r} is reserved for the engine's own actions; choose another "
                               "one.", username=username))
    return username


def clean_display_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise InvalidInput(msg("The display name is empty; give the person's name, such as 张伟."))
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(msg("The display name {name!r} is {length} characters long, over the limit of {limit}.",
                               name=name, length=len(name), limit=MAX_NAME_LENGTH))
    return name


def clean_department(value: str | None) -> str | None:
    """Strip a department name; an empty one becomes None."""
    name = (value or "").strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(msg("The department {name!r} is {length} characters long, over the limit of {limit}.",
                               name=name, length=len(name), limit=MAX_NAME_LENGTH))
    return name or None


def clean_roles(roles: list[str]) -> list[str]:
    """Check that every role is known and return them without repeats, in the order of ROLES."""
    cleaned = {role.strip() for role in roles}
    if not cleaned:
        raise InvalidInput(msg("A user needs at least one role; use one or more of: {allowed}.",
                               allowed=", ".join(ROLES)))
    unknown = sorted(cleaned - set(ROLES))
    if unknown:
        raise InvalidInput(msg("Role {role!r} is unknown; use one of: {allowed}.", role=unknown[0],
                               allowed=", ".join(ROLES)))
    return [role for role in ROLES if role in cleaned]


def clean_posts(posts: list[str]) -> list[str]:
    """Strip each post (a BPMN lane name) and drop repeats, keeping the given order."""
    cleaned: list[str] = []
    for post in posts:
        name = post.strip()
        if not name:
            raise InvalidInput(msg("A post name is empty; give the lane name of the post, such as 受理窗口."))
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(msg("The post {name!r} is {length} characters long, over the limit of {limit}.",
                                   name=name, length=len(name), limit=MAX_NAME_LENGTH))
        if name not in cleaned:
            cleaned.append(name)
    return cleaned


@dataclass(frozen=True)
class NewUser:
    username: str
    display_name: str
    roles: list[str]
    posts: list[str]
    department: str | None


def check_new_user(service: Liuhen, admin: Actor, *, username: str, display_name: str, roles: list[str],
                   posts: list[str], department: str | None) -> NewUser:
    """Check everything about a new user but the password, so a caller can ask for it only when the rest is valid."""
    require_role(admin, "admin")
    new_user = NewUser(check_username(username), clean_display_name(display_name), clean_roles(roles),
                       clean_posts(posts), clean_department(department))
    with service.db.read() as conn:
        _check_unused(conn, new_user.username)
    return new_user


def _check_unused(conn: Connection, username: str) -> None:
    # Usernames that differ only in case look like one person in the trace, so they count as taken.
    existing = conn.execute(select(users.c.username)
                         .where(func.lower(users.c.username) == username.lower())).first()
    if existing is None:
        return
    if existing.username != username:
        raise Conflict(msg("Username {username!r} differs from the existing user {existing} only in letter case; "
                           "choose another username.", username=username, existing=existing.username))
    raise Conflict(msg("User {username} already exists; choose another username, or change the existing user with "
                       "`liuhen user change {username}`.", username=username))


# Reading.

def user_dict(row: Any) -> dict[str, Any]:
    """Return the public fields of a users row; the password hash is left out."""
    created_at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return {"username": row.username, "display_name": row.display_name, "roles": list(row.roles),
            "posts": list(row.posts), "department": row.department, "active": bool(row.active),
            "created_at": created_at}


def list_users(service: Liuhen, admin: Actor) -> list[dict[str, Any]]:
    """List every user, deactivated ones included, by username (administrators)."""
    require_role(admin, "admin")
    with service.db.read() as conn:
        return [user_dict(row) for row in conn.execute(select(users).order_by(users.c.username))]


def get_user(service: Liuhen, admin: Actor, username: str) -> dict[str, Any]:
    require_role(admin, "admin")
    with service.db.read() as conn:
        return user_dict(_row(conn, username, lock=False))


def _row(conn: Connection, username: str, *, lock: bool) -> Any:
    query = select(users).where(users.c.username == username)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(msg("User {username} does not exist; `liuhen users` lists every user.", username=username))
    return row


# Changing.

def add_user(service: Liuhen, admin: Actor, *, username: str, display_name: str, password: str, roles: list[str],
             posts: list[str], department: str | None) -> dict[str, Any]:
    """Create an active user with an argon2-hashed password (administrators)."""
    new_user = check_new_user(service, admin, username=username, display_name=display_name, roles=roles,
                              posts=posts, department=department)
    check_password(new_user.username, password)
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        _check_unused(conn, new_user.username)
        create_user(conn, username=new_user.username, display_name=new_user.display_name, password=password,
                    roles=new_user.roles, posts=new_user.posts, department=new_user.department, now=now)
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "user_created", admin.username, now,
            payload={"username": new_user.username, "display_name": new_user.display_name,
                     "roles": new_user.roles, "posts": new_user.posts, "department": new_user.department},
        )])
        row = _row(conn, new_user.username, lock=False)
    logger.info("user %s created", new_user.username, extra={"actor": admin.username, "roles": new_user.roles})
    return user_dict(row)


def change_user(service: Liuhen, admin: Actor, username: str, changes: UserChanges) -> tuple[dict[str, Any], list[str]]:
    """Change the display name, roles, posts or department of a user (administrators).

    Returns the user and the names of the fields whose value changed. When none changed, nothing is
    recorded. Roles and posts take effect on the user's next request, because tokens carry neither.
    """
    require_role(admin, "admin")
    new_values = _cleaned_changes(changes)
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        row = _row(conn, username, lock=not service.db.is_sqlite)
        current = user_dict(row)
        changed = [name for name in CHANGEABLE_FIELDS if name in new_values and new_values[name] != current[name]]
        if not changed:
            return current, []
        if "roles" in changed and "admin" not in new_values["roles"] and row.active:
            _check_other_admin(conn, username)

        conn.execute(update(users).where(users.c.id == row.id).values({name: new_values[name] for name in changed}))
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "user_changed", admin.username, now,
            payload={"username": username, "fields": changed,
                     "before": {name: current[name] for name in changed},
                     "after": {name: new_values[name] for name in changed}},
        )])
        updated = user_dict(_row(conn, username, lock=False))
    logger.info("user %s changed", username, extra={"actor": admin.username, "fields": changed})
    return updated, changed


def _cleaned_changes(changes: UserChanges) -> dict[str, Any]:
    new_values: dict[str, Any] = {}
    if changes.display_name is not None:
        new_values["display_name"] = clean_display_name(changes.display_name)
    if changes.roles is not None:
        new_values["roles"] = clean_roles(changes.roles)
    if changes.posts is not None:
        new_values["posts"] = clean_posts(changes.posts)
    if changes.department is not None:
        new_values["department"] = clean_department(changes.department)
    if not new_values:
        raise InvalidInput(msg("Nothing to change: give a new display name, roles, posts or department."))
    return new_values


def set_user_password(service: Liuhen, admin: Actor, username: str, password: str) -> None:
    """Set a new password for a user and sign them out everywhere by revoking their login tokens."""
    require_role(admin, "admin")
    check_password(username, password)
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        row = _row(conn, username, lock=not service.db.is_sqlite)
        set_password(conn, username, password)
        revoked = _revoke_tokens(conn, row.id)
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "user_changed", admin.username, now,
            payload={"username": username, "fields": ["password"], "tokens_revoked": revoked},
        )])
    logger.info("password of user %s set", username, extra={"actor": admin.username})


def deactivate_user(service: Liuhen, admin: Actor, username: str) -> dict[str, Any]:
    """Deactivate a user: their logins and login tokens are rejected from now on (administrators)."""
    require_role(admin, "admin")
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        row = _row(conn, username, lock=not service.db.is_sqlite)
        if not row.active:
            raise Conflict(msg("User {username} is already deactivated; `liuhen user reactivate {username}` lets "
                               "them sign in again.", username=username))
        if "admin" in row.roles:
            _check_other_admin(conn, username)
        conn.execute(update(users).where(users.c.id == row.id).values(active=False))
        revoked = _revoke_tokens(conn, row.id)
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "user_deactivated", admin.username, now, payload={"username": username, "tokens_revoked": revoked},
        )])
        updated = user_dict(_row(conn, username, lock=False))
    logger.info("user %s deactivated", username, extra={"actor": admin.username})
    return updated


def reactivate_user(service: Liuhen, admin: Actor, username: str) -> dict[str, Any]:
    """Let a deactivated user sign in again (administrators)."""
    require_role(admin, "admin")
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        row = _row(conn, username, lock=not service.db.is_sqlite)
        if row.active:
            raise Conflict(msg("User {username} is already active.", username=username))
        conn.execute(update(users).where(users.c.id == row.id).values(active=True))
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "user_reactivated", admin.username, now, payload={"username": username},
        )])
        updated = user_dict(_row(conn, username, lock=False))
    logger.info("user %s reactivated", username, extra={"actor": admin.username})
    return updated


def _check_other_admin(conn: Connection, username: str) -> None:
    """Raise Conflict unless an active administrator other than ``username`` remains."""
    # roles is a JSON column, which SQLite and PostgreSQL query differently, so the filter runs here.
    rows = conn.execute(select(users.c.username, users.c.roles).where(users.c.active.is_(True))).all()
    if not any("admin" in row.roles for row in rows if row.username != username):
        raise Conflict(msg("User {username} is the last active administrator; create another one with `liuhen "
                           "user add USERNAME --name NAME --role admin` first.", username=username))


def _revoke_tokens(conn: Connection, user_id: int) -> int:
    return conn.execute(delete(auth_tokens).where(auth_tokens.c.user_id == user_id)).rowcount or 0
