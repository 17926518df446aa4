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


def run_round(service: Liuhen, state: WorkerState) -> list[int]:
    """Fire due timers, raise due cards and create a checkpoint when one is due; return the cases that moved."""
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
    return moved


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
