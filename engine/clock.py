"""Injected time for the engine, including SpiffWorkflow's timer events.

SpiffWorkflow 3.2 reads ``datetime.now(timezone.utc)`` inside its timer module and offers no hook
for another clock. ``use_clock`` swaps that module's ``datetime`` name for a subclass whose
``now()`` reads the clock of the operation in progress (a context variable), so timers fire against
the same clock as the rest of liuhen and tests can move time without sleeping.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol

from SpiffWorkflow.bpmn.specs.event_definitions import timer as spiff_timer


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when advanced or set explicitly, used by tests, the demo and replay."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


_current: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("liuhen_clock", default=None)


class _ClockDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
        clock = _current.get()
        moment = clock.now() if clock is not None else datetime.now(UTC)
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


spiff_timer.datetime = _ClockDatetime  # type: ignore[misc]


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[None]:
    """Run SpiffWorkflow timer code inside this block against ``clock``."""
    token = _current.set(clock)
    try:
        yield
    finally:
        _current.reset(token)
