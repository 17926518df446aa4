"""Two users completing the same task at once: exactly one wins, the other gets a conflict."""

from __future__ import annotations

import threading

from engine.errors import Conflict
from engine.service import Liuhen
from tests.bpmn_builder import sequence
from tests.conftest import DESIGNER, add_user


def test_same_task_completed_twice_at_once(service: Liuhen, settings, clock) -> None:
    service.deploy(sequence("race", ["A", "B"], fields=[("opinion", "string")]), "race.bpmn", DESIGNER)
    first_user = add_user(service, "first", ["staff"])
    second_user = add_user(service, "second", ["staff"])
    case = service.start_case("race", first_user)
    task_id = case["tasks"][0]["id"]

    # A second service object has its own connection pool and caches, as a second API process would.
    other = Liuhen(settings, clock=clock)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def attempt(name: str, liuhen: Liuhen, actor) -> None:
        barrier.wait()
        try:
            outcomes[name] = liuhen.complete(task_id, actor, {"opinion": name})
        except Conflict as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=attempt, args=("first", service, first_user)),
               threading.Thread(target=attempt, args=("second", other, second_user))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other.db.dispose()

    winners = [name for name, result in outcomes.items() if isinstance(result, dict)]
    losers = [result for result in outcomes.values() if isinstance(result, Conflict)]
    assert len(winners) == 1
    assert len(losers) == 1

    trace = service.case_trace(case["id"])
    completed = [e for e in trace if e["kind"] == "task_completed"]
    assert len(completed) == 1
    assert completed[0]["payload"]["data"] == {"opinion": winners[0]}
    assert [t["element_id"] for t in service.get_case(case["id"])["tasks"]] == ["B"]
    assert service.verify(case["id"])[0].ok


def test_claimed_task_cannot_be_completed_by_another(service: Liuhen) -> None:
    service.deploy(sequence("claimed", ["A"]), "c.bpmn", DESIGNER)
    holder = add_user(service, "holder", ["staff"])
    other = add_user(service, "other", ["staff"])
    case = service.start_case("claimed", holder)
    task_id = case["tasks"][0]["id"]

    service.claim(task_id, holder)
    try:
        service.complete(task_id, other, {})
    except Conflict as exc:
        assert "holder" in exc.render("en")
    else:
        raise AssertionError("completing a task claimed by someone else must fail")

    service.release(task_id, holder)
    assert service.complete(task_id, other, {})["status"] == "completed"
    kinds = [e["kind"] for e in service.case_trace(case["id"])]
    assert kinds.count("task_claimed") == 2
    assert "task_released" in kinds
