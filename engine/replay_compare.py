"""Comparison of the events a replay produced with the events the trace recorded for the same step.

Both sides are plain records with ``kind``, ``element_id``, ``task_id`` and ``payload``. Task ids are
never compared, because a replay creates new ones. Within one step the events are compared as a
multiset: every event of a step is written in one transaction at one instant, and their order comes
from SpiffWorkflow's state-change timestamps, which may tie differently in a second run.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from engine.i18n import Message, msg
from engine.runtime import StepEvent
from engine.trace import canonical_bytes

# Event kinds the engine writes as the outcome of a step; a replay must produce each of them again.
OUTPUT_KINDS = frozenset({
    "task_ready", "task_completed", "gateway_decision", "timer_fired", "end_event_reached", "task_cancelled",
    "case_completed",
})


def jsonable(value: Any) -> Any:
    """Return ``value`` as it reads back from the trace, after the trace's own JSON encoding."""
    return json.loads(canonical_bytes(value))


def produced_record(step: StepEvent) -> dict[str, Any]:
    return {"kind": step.kind, "element_id": step.element_id, "task_id": step.task_id,
            "payload": jsonable(step.payload)}


def compared_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Select the payload fields that must be equal between trace and replay for this kind of event."""
    payload = record.get("payload") or {}
    kind = record["kind"]
    if kind == "task_ready":
        return {"name": payload.get("name"), "lane": payload.get("lane")}
    if kind == "task_completed":
        return {"name": payload.get("name"), "data": payload.get("data"), "previous": payload.get("previous")}
    if kind == "gateway_decision":
        # The flow's name is shown to readers only, and traces written before it was recorded lack it.
        taken = sorted(({key: flow.get(key) for key in ("flow_id", "target", "condition")}
                        for flow in payload.get("taken") or []),
                       key=lambda flow: (str(flow.get("flow_id")), str(flow.get("target"))))
        return {"name": payload.get("name"), "taken": taken}
    if kind == "timer_fired":
        return {"name": payload.get("name"), "due": payload.get("due")}
    if kind == "end_event_reached":
        return {"name": payload.get("name")}
    if kind == "task_cancelled":
        return {"reason": payload.get("reason")}
    return {}


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """Return the compared part of an event, for reports."""
    result: dict[str, Any] = {"kind": record["kind"], "element_id": record.get("element_id")}
    if record.get("seq") is not None:
        result["seq"] = record["seq"]
    result.update(compared_fields(record))
    return result


def _signature(record: dict[str, Any]) -> str:
    return canonical_bytes({"kind": record["kind"], "element_id": record.get("element_id"),
                            "fields": compared_fields(record)}).decode("utf-8")


def _label(element_id: str | None, name: str | None) -> str:
    return f"{element_id} ({name})" if name else str(element_id)


def _flow_label(flow: dict[str, Any]) -> str:
    label = f"{flow.get('flow_id')} → {flow.get('target')}"
    return f"{label} [{flow['condition']}]" if flow.get("condition") else label


def describe(record: dict[str, Any]) -> Message:
    """Describe an event as a clause that completes "the trace records that ..."."""
    payload = record.get("payload") or {}
    element = _label(record.get("element_id"), payload.get("name"))
    kind = record["kind"]
    if kind == "task_ready":
        if payload.get("lane"):
            return msg("step {step} became ready in lane {lane}", step=element, lane=payload["lane"])
        return msg("step {step} became ready", step=element)
    if kind == "task_completed":
        return msg("step {step} was completed", step=element)
    if kind == "gateway_decision":
        taken = compared_fields(record)["taken"]
        if not taken:
            return msg("gateway {gateway} took no flow", gateway=element)
        flows = ", ".join(_flow_label(flow) for flow in taken)
        return msg("gateway {gateway} took {flows}", gateway=element, flows=flows)
    if kind == "timer_fired":
        return msg("timer {timer} fired, due at {due}", timer=element, due=payload.get("due"))
    if kind == "end_event_reached":
        return msg("end event {event} was reached", event=element)
    if kind == "task_cancelled":
        return msg("step {step} was cancelled", step=element)
    if kind == "case_completed":
        return msg("the case completed at end event {event}", event=record.get("element_id"))
    return msg("an event of kind {kind} occurred at {element}", kind=kind, element=record.get("element_id"))


@dataclass
class Mismatch:
    """The first difference between a recorded step and its replay.

    ``recorded`` is the trace event the replay did not reproduce (None when the replay produced an extra
    event), ``produced`` the replay's closest counterpart (None when it produced nothing in its place).
    """

    recorded: dict[str, Any] | None
    produced: dict[str, Any] | None


def compare_step(recorded: list[dict[str, Any]], produced: list[dict[str, Any]]) -> Mismatch | None:
    """Compare one step's recorded events with the replay's; return None when they match as a multiset."""
    recorded_signatures = [_signature(record) for record in recorded]
    produced_signatures = [_signature(record) for record in produced]
    if Counter(recorded_signatures) == Counter(produced_signatures):
        return None

    unmatched = Counter(produced_signatures)
    missing = []
    for record, signature in zip(recorded, recorded_signatures, strict=True):
        if unmatched[signature] > 0:
            unmatched[signature] -= 1
        else:
            missing.append(record)
    extra = []
    for record, signature in zip(produced, produced_signatures, strict=True):
        if unmatched[signature] > 0:
            unmatched[signature] -= 1
            extra.append(record)

    if not missing:
        return Mismatch(None, extra[0])
    first = missing[0]
    return Mismatch(first, _counterpart(first, extra))


def _counterpart(record: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Pick the produced event that most likely corresponds to ``record``: same element, then same kind."""
    for candidate in candidates:
        if candidate["kind"] == record["kind"] and candidate.get("element_id") == record.get("element_id"):
            return candidate
    for candidate in candidates:
        if candidate["kind"] == record["kind"]:
            return candidate
    return candidates[0] if candidates else None
