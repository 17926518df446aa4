"""The background worker: fires due BPMN timers, raises deadline cards and creates trace checkpoints.

Several workers and API processes may run against one PostgreSQL database: each due case is taken
with ``FOR UPDATE SKIP LOCKED`` (see ``Liuhen.fire_due_timers`` and ``supervision.check_deadlines``),
so a timer fires once and a card is raised once, and a case locked by another worker is left to that
worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete

from engine.clock import Clock
from engine.db import idempotent_requests
from engine.errors import LiuhenError
from engine.service import Liuhen
from engine.supervision import check_deadlines
from engine.users import SYSTEM_ACTOR

logger = logging.getLogger(__name__)


@dataclass
class WorkerState:
    """State one worker keeps between rounds."""

    checkpoint_every: timedelta | None
    last_checkpoint: datetime | None = None
    rounds: int = 0
    fired: list[int] = field(default_factory=list)
    cards_raised: int = 0


class OffsetClock:
    """Another clock moved by a fixed offset: the worker's clock under ``LIUHEN_WORKER_CLOCK_OFFSET_SECONDS``."""

    def __init__(self, base: Clock, offset: timedelta) -> None:
        self.base = base
        self.offset = offset

    def now(self) -> datetime:
        return self.base.now() + self.offset


def run_round(service: Liuhen, state: WorkerState) -> list[int]:
    """Fire due timers, raise due cards and create a checkpoint when one is due; return the cases that moved.

    Stored responses of idempotent requests older than ``idempotency_key_hours`` are deleted too.
    """
    _apply_clock_offset(service)
    moved = service.fire_due_timers(SYSTEM_ACTOR)
    state.cards_raised += len(check_deadlines(service, SYSTEM_ACTOR))
    state.rounds += 1
    state.fired.extend(moved)
    now = service.now()
    due = state.checkpoint_every is not None and (
        state.last_checkpoint is None or now - state.last_checkpoint >= state.checkpoint_every)
    if due:
        from engine.audit import create_checkpoint

        document = create_checkpoint(service)
        state.last_checkpoint = now
        logger.info("checkpoint created", extra={"size": document.get("size"), "root": document.get("root")})
    prune_idempotent_requests(service)
    return moved


def prune_idempotent_requests(service: Liuhen) -> int:
    """Delete the stored responses to Idempotency-Key requests past their retention time; return how many."""
    cutoff = service.now() - timedelta(hours=service.settings.idempotency_key_hours)
    with service.db.write() as conn:
        deleted = conn.execute(delete(idempotent_requests).where(idempotent_requests.c.created_at < cutoff)).rowcount
    if deleted:
        logger.debug("pruned idempotency keys", extra={"deleted": deleted})
    return deleted


def _apply_clock_offset(service: Liuhen) -> None:
    offset = service.settings.worker_clock_offset_seconds
    if offset and not isinstance(service.clock, OffsetClock):
        # Applied at the first round, before the worker caches engine states: each keeps the clock it was built with.
        service.clock = OffsetClock(service.clock, timedelta(seconds=offset))


def run_forever(service: Liuhen, state: WorkerState, interval: float) -> None:
    """Run rounds every ``interval`` seconds until interrupted; an error in one round is logged, not fatal."""
    logger.info("worker started", extra={"interval": interval})
    try:
        while True:
            try:
                moved = run_round(service, state)
                if moved:
                    logger.info("fired timers", extra={"cases": moved})
            except LiuhenError as exc:
                logger.warning("worker round failed: %s", exc, extra={"code": exc.code})
            time.sleep(interval)
    except KeyboardInterrupt:
        logger.info("worker stopped", extra={"rounds": state.rounds})
