"""Stored case state: the bytes match SpiffWorkflow's own serialization, and cases reload from them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer

from engine.clock import ManualClock
from engine.definitions import load_definition
from engine.runtime import CaseRuntime
from engine.service import Liuhen
from engine.state import STATE_FORMAT, CaseStateSerializer, _SpeclessWorkflowConverter
from tests.bpmn_builder import definitions, flow, node, process, user_task
from tests.conftest import DESIGNER, START, add_user

REWORK = definitions(process(
    "rework",
    node("startEvent", "S"), user_task("Review", fields=[("ok", "boolean")]),
    node("exclusiveGateway", "Gw", default="f_back"), user_task("Correct", fields=[("note", "string")]),
    node("endEvent", "E"),
    flow("f1", "S", "Review"), flow("f2", "Review", "Gw"), flow("f_ok", "Gw", "E", "ok"),
    flow("f_back", "Gw", "Correct"), flow("f3", "Correct", "Review"),
))
PARALLEL = definitions(process(
    "parallel",
    node("startEvent", "S"), node("parallelGateway", "Split"), user_task("A", fields=[("a", "string")]),
    user_task("B", fields=[("b", "integer")]), node("parallelGateway", "Join"), user_task("C"), node("endEvent", "E"),
    flow("f1", "S", "Split"), flow("f2", "Split", "A"), flow("f3", "Split", "B"), flow("f4", "A", "Join"),
    flow("f5", "B", "Join"), flow("f6", "Join", "C"), flow("f7", "C", "E"),
))
EMBEDDED = definitions(process(
    "embedded",
    node("startEvent", "S"),
    node("subProcess", "Sub", body="".join([
        node("startEvent", "SubStart"), user_task("Inner", fields=[("note", "string")]), node("endEvent", "SubEnd"),
        flow("s1", "SubStart", "Inner"), flow("s2", "Inner", "SubEnd"),
    ])),
    user_task("After"), node("endEvent", "E"),
    flow("f1", "S", "Sub"), flow("f2", "Sub", "After"), flow("f3", "After", "E"),
))
TIMER = definitions(process(
    "timer_boundary",
    node("startEvent", "S"), user_task("Resubmit", fields=[("note", "string")]),
    node("boundaryEvent", "Deadline", body="<bpmn:timerEventDefinition><bpmn:timeDuration>PT48H"
                                          "</bpmn:timeDuration></bpmn:timerEventDefinition>",
         attachedToRef="Resubmit"),
    user_task("Late"), node("endEvent", "Done"), node("endEvent", "Withdrawn"),
    flow("f1", "S", "Resubmit"), flow("f2", "Resubmit", "Done"), flow("f3", "Deadline", "Late"),
    flow("f4", "Late", "Withdrawn"),
))

# Data for every form field of the flows above. run_steps sets Review's ok, which decides when the loop ends.
SUBMISSIONS = {"Review": {"ok": False}, "Correct": {"note": "补正材料"}, "A": {"a": "甲"}, "B": {"b": 3},
               "Inner": {"note": "材料齐全"}, "Resubmit": {"note": "已补交"}}


def reference_dumps(workflow: BpmnWorkflow) -> bytes:
    """Serialize with a new serializer and json.dumps, SpiffWorkflow's own path, as CaseStateSerializer's reference."""
    config = dict(DEFAULT_CONFIG)
    config[BpmnWorkflow] = _SpeclessWorkflowConverter
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
    serializer.registry._encoder_mode = True
    try:
        dct = serializer.registry.convert(workflow)
    finally:
        serializer.registry._encoder_mode = False
    dct["liuhen_state_format"] = STATE_FORMAT
    dct[serializer.VERSION_KEY] = serializer.VERSION
    return json.dumps(dct, separators=(",", ":"), cls=serializer._encoder_cls).encode()


def run_steps(content: bytes, process_id: str, clock: ManualClock, rounds: int = 3) -> Iterator[CaseRuntime]:
    """Start a case in memory and yield its runtime after the start and after each completed task."""
    parsed = load_definition(content, f"{process_id}.bpmn")
    runtime, _events = CaseRuntime.start(parsed.process(process_id), parsed, clock, {"applicant": "张三"})
    yield runtime
    reviews = 0
    while not runtime.workflow.is_completed():
        task = runtime.ready_human_tasks()[0]
        if task.task_spec.bpmn_id == "Resubmit":
            # Let the 48-hour boundary timer fire, which cancels Resubmit and opens Late.
            clock.advance(timedelta(hours=49))
            runtime.fire_timers()
            yield runtime
            continue
        data = dict(SUBMISSIONS.get(task.task_spec.bpmn_id, {}))
        if task.task_spec.bpmn_id == "Review":
            reviews += 1
            data["ok"] = reviews > rounds
        runtime.complete(task, data, "staff")
        yield runtime


@pytest.mark.parametrize(("content", "process_id", "rounds"), [
    (REWORK, "rework", 3), (REWORK, "rework", 40), (PARALLEL, "parallel", 0), (EMBEDDED, "embedded", 0),
    (TIMER, "timer_boundary", 0),
], ids=["rework", "rework-compacted", "parallel", "embedded-subprocess", "timer"])
def test_stored_bytes_match_spiffworkflow(content, process_id, rounds) -> None:
    serializer = CaseStateSerializer()
    steps = 0
    for runtime in run_steps(content, process_id, ManualClock(START), rounds):
        stored = serializer.dumps(runtime.workflow)
        assert stored == reference_dumps(runtime.workflow)
        steps += 1
    assert steps > 2


def test_timer_flow_fires_timer() -> None:
    # The timer case above must really store a waiting timer and then fire it, or it checks too little.
    clock = ManualClock(START)
    fired = [runtime for runtime in run_steps(TIMER, "timer_boundary", clock) if runtime.ready_human_tasks()
             and runtime.ready_human_tasks()[0].task_spec.bpmn_id == "Late"]
    assert fired


@pytest.mark.parametrize(("content", "process_id"), [(REWORK, "rework"), (PARALLEL, "parallel"),
                                                     (EMBEDDED, "embedded"), (TIMER, "timer_boundary")])
def test_state_round_trip_keeps_bytes(content, process_id) -> None:
    serializer = CaseStateSerializer()
    parsed = load_definition(content, f"{process_id}.bpmn")
    process_spec = parsed.process(process_id)
    for runtime in run_steps(content, process_id, ManualClock(START), rounds=30):
        stored = serializer.dumps(runtime.workflow)
        restored = serializer.loads(stored, process_spec.spec, process_spec.subprocess_specs)
        assert serializer.dumps(restored) == stored


def test_case_continues_from_stored_state_each_step(service: Liuhen) -> None:
    staff = add_user(service, "staff", ["staff"])
    service.deploy(REWORK, "rework.bpmn", DESIGNER)
    case = service.start_case("rework", staff)

    for round_number in range(30):
        # Drop the in-process engine states, so every step loads the case from the database.
        service._runtimes.clear()
        review = case["tasks"][0]
        assert review["element_id"] == "Review"
        case = service.complete(review["id"], staff, {"ok": round_number == 29})
        if round_number < 29:
            service._runtimes.clear()
            correct = case["tasks"][0]
            assert correct["element_id"] == "Correct"
            case = service.complete(correct["id"], staff, {"note": f"第{round_number}次补正"})

    assert case["status"] == "completed"
    assert case["end_element_id"] == "E"
    assert service.verify(case["id"])[0].ok
