"""The worker: timers fire once even with two workers, and checkpoints follow their schedule."""

from __future__ import annotations

import threading
from datetime import timedelta

from engine.service import Liuhen
from engine.worker import WorkerState, run_round
from tests.conftest import DESIGNER, add_user
from tests.test_engine_flows import TIMER_BOUNDARY


def start_timer_cases(service: Liuhen, count: int) -> list[int]:
    service.deploy(TIMER_BOUNDARY, "timer.bpmn", DESIGNER)
    staff = add_user(service, "staff", ["staff"])
    return [service.start_case("timer_boundary", staff)["id"] for _ in range(count)]


def test_round_fires_due_timers_and_checkpoints(service, clock) -> None:
    case_ids = start_timer_cases(service, 2)
    state = WorkerState(checkpoint_every=timedelta(hours=1))

    assert run_round(service, state) == []
    first = state.last_checkpoint
    assert first is not None

    clock.advance(timedelta(minutes=30))
    run_round(service, state)
    assert state.last_checkpoint == first

    clock.advance(timedelta(hours=48))
    assert sorted(run_round(service, state)) == case_ids
    assert state.last_checkpoint > first
    assert all(service.get_case(case_id)["end_element_id"] == "Withdrawn" for case_id in case_ids)


def test_two_workers_fire_each_timer_once(service, settings, clock) -> None:
    case_ids = start_timer_cases(service, 12)
    clock.advance(timedelta(hours=49))
    other = Liuhen(settings, clock=clock)
    barrier = threading.Barrier(2)
    results: dict[str, list[int]] = {}

    def work(name: str, liuhen: Liuhen) -> None:
        barrier.wait()
        results[name] = run_round(liuhen, WorkerState(checkpoint_every=None))

    threads = [threading.Thread(target=work, args=("a", service)), threading.Thread(target=work, args=("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    other.db.dispose()

    assert sorted(results["a"] + results["b"]) == case_ids
    assert set(results["a"]).isdisjoint(results["b"])
    for case_id in case_ids:
        fired = [e for e in service.case_trace(case_id) if e["kind"] == "timer_fired"]
        assert len(fired) == 1, case_id
        assert service.verify(case_id)[0].ok
