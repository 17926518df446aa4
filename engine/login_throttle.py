"""Slow down password guessing by counting failed sign-ins per username and per client address.

Attempts are rows of the table ``login_attempts``, so every API process sees the same failures. After
``login_max_failures`` failures for one username, or ``login_max_failures_per_address`` failures from
one client address, within ``login_window_seconds``, further sign-ins are rejected with
``TooManyAttempts`` (HTTP 429) until the oldest counted failure leaves the window. A successful
sign-in resets the count of its username, but not the count of its address, so signing in to one's
own account between guesses at another does not help. Rejected attempts are not recorded, so waiting
out the window always works. Rows older than the window are deleted at each attempt.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, delete, func, insert, select
from sqlalchemy.engine import Connection

from engine.calendar import LOCAL_TZ
from engine.db import login_attempts
from engine.errors import LiuhenError, Unauthorized
from engine.i18n import Message, msg
from engine.users import Actor, authenticate, issue_token

if TYPE_CHECKING:
    from engine.service import Liuhen

logger = logging.getLogger(__name__)

# Maximum stored length of a username and a client address, the width of their columns.
_MAX_KEY_LENGTH = 64


class TooManyAttempts(LiuhenError):
    """Sign-in rejected for now, because of recent failures; ``retry_after`` is the number of seconds to wait."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, message: Message, *, retry_after: int, retry_at: datetime) -> None:
        super().__init__(message, retry_after=retry_after, retry_at=retry_at.isoformat())
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class ThrottleLimits:
    max_failures: int
    max_failures_per_address: int
    window: timedelta


def _limits(service: Liuhen) -> ThrottleLimits:
    settings = service.settings
    return ThrottleLimits(settings.login_max_failures, settings.login_max_failures_per_address,
                          timedelta(seconds=settings.login_window_seconds))


def _key(value: str) -> str:
    return value[:_MAX_KEY_LENGTH]


def _aware(moment: datetime) -> datetime:
    # SQLite returns stored times without their offset; they are UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def sign_in(service: Liuhen, username: str, password: str, client_address: str) -> tuple[Actor, str, datetime]:
    """Check the password of ``username`` and issue a login token, unless too many attempts failed lately.

    Return the user, the token and its expiry. Raise TooManyAttempts without checking the password
    while the username or the address is throttled, and Unauthorized for a wrong password. A failure
    is recorded in a transaction of its own, so it stays when the sign-in transaction rolls back.
    """
    limits = _limits(service)
    now = service.now().astimezone(UTC)
    username_key, address_key = _key(username), _key(client_address or "unknown")
    with service.db.write() as conn:
        conn.execute(delete(login_attempts).where(login_attempts.c.attempted_at < now - limits.window))
        check_allowed(conn, limits, username_key, address_key, now)

    try:
        with service.db.write() as conn:
            actor = authenticate(conn, username, password)
            token, expires = issue_token(conn, actor.username, now,
                                         timedelta(minutes=service.settings.token_ttl_minutes))
            record_attempt(conn, username_key, address_key, now, succeeded=True)
    except Unauthorized:
        with service.db.write() as conn:
            record_attempt(conn, username_key, address_key, now, succeeded=False)
        logger.info("sign-in failed", extra={"username": username_key, "client_address": address_key})
        raise
    return actor, token, expires


def record_attempt(conn: Connection, username: str, client_address: str, now: datetime, *, succeeded: bool) -> None:
    conn.execute(insert(login_attempts).values(username=username, client_address=client_address,
                                               attempted_at=now, succeeded=succeeded))


def check_allowed(conn: Connection, limits: ThrottleLimits, username: str, client_address: str,
                  now: datetime) -> None:
    """Raise TooManyAttempts when the username or the address has too many recent failures."""
    window_start = now - limits.window
    last_success = conn.execute(select(func.max(login_attempts.c.attempted_at)).where(
        login_attempts.c.username == username, login_attempts.c.succeeded.is_(True))).scalar_one_or_none()
    user_since = max(window_start, _aware(last_success)) if last_success is not None else window_start

    user_block = _blocked_until(conn, and_(login_attempts.c.username == username,
                                           login_attempts.c.attempted_at > user_since),
                                limits.max_failures, limits.window)
    address_block = _blocked_until(conn, and_(login_attempts.c.client_address == client_address,
                                              login_attempts.c.attempted_at > window_start),
                                   limits.max_failures_per_address, limits.window)
    if user_block is None and address_block is None:
        return

    retry_at = max(moment for moment in (user_block, address_block) if moment is not None)
    retry_after = max(1, math.ceil((retry_at - now).total_seconds()))
    local = retry_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")
    if user_block is not None and user_block == retry_at:
        message = msg("Too many failed sign-ins for user {username}; try again after {time} Beijing time, "
                      "in {seconds} seconds.", username=username, time=local, seconds=retry_after)
    else:
        message = msg("Too many failed sign-ins from address {address}; try again after {time} Beijing time, "
                      "in {seconds} seconds.", address=client_address, time=local, seconds=retry_after)
    logger.warning("sign-in throttled", extra={"username": username, "client_address": client_address,
                                               "retry_after": retry_after})
    raise TooManyAttempts(message, retry_after=retry_after, retry_at=retry_at)


def _blocked_until(conn: Connection, condition: ColumnElement[bool], limit: int, window: timedelta) -> datetime | None:
    """Return when the failures matching ``condition`` drop below ``limit``, or None if they already are."""
    newest = conn.execute(
        select(login_attempts.c.attempted_at)
        .where(condition, login_attempts.c.succeeded.is_(False))
        .order_by(login_attempts.c.attempted_at.desc())
        .limit(limit)
    ).scalars().all()
    if len(newest) < limit:
        return None
    # Once the limit-th newest failure leaves the window, fewer than ``limit`` remain in it.
    return _aware(newest[-1]) + window
