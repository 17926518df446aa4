"""Quorum review (双人复核, 集体审议): a step that needs several distinct approvers.

A ``quorum`` control in a risk checkpoint names how many approvers the step needs (``approvers``), the
form field that contains each approver's decision (``decisionField``) and how a disagreement is settled
(``onDisagreement``: ``majority``, with ``tieBreak`` for a tie, or one decision value that any
disagreement leads to). Each completion of such a task records a vote in ``review_votes`` and a
``review_recorded`` trace event. The task stays open until enough distinct approvers have voted, and
only the last vote completes the engine task, with the combined decision in the decision field. The
replay therefore sees one completion, at the last vote.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.task import Task
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from engine import risk_events, trace
from engine.db import case_tasks, review_votes
from engine.errors import CaseError, Conflict, InvalidInput
from engine.i18n import Message, msg
from engine.parser import node_extensions
from engine.runtime import CaseRuntime
from engine.users import Actor

if TYPE_CHECKING:
    from engine.service import Liuhen

QUORUM = "quorum"
MAJORITY = "majority"
# Length of review_votes.decision.
MAX_DECISION_LENGTH = 64


@dataclass(frozen=True)
class QuorumRule:
    """A quorum control as the engine applies it, with its checkpoint's id and risk level."""

    control_id: str
    checkpoint_id: str
    level: str
    approvers: int
    decision_field: str
    on_disagreement: str
    tie_break: str | None
    reason_field: str | None


@dataclass(frozen=True)
class Vote:
    actor: str
    decision: str
    value: Any
    reason: str | None
    data: dict[str, Any]
    voted_at: datetime

    def as_dict(self, *, with_data: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = {"actor": self.actor, "decision": self.decision, "reason": self.reason,
                                  "voted_at": trace.canonical_time(self.voted_at)}
        if with_data:
            result["data"] = self.data
        return result


@dataclass(frozen=True)
class Outcome:
    """The combined decision of a complete set of votes."""

    decision: str
    unanimous: bool
    # "majority", "tie_break" or "rule" when the votes disagreed; None when they agreed.
    settled_by: str | None


# rules


def quorum_problem(params: dict[str, str]) -> Message | None:
    """Describe what is wrong with a quorum control's attributes, or return None when they are usable."""
    raw = params.get("approvers", "")
    try:
        approvers = int(raw)
    except ValueError:
        approvers = 0
    if approvers < 1:
        return msg("Attribute approvers {value!r} is invalid; write the number of distinct approvers the step "
                   "needs, a whole number of at least 1.", value=raw)
    if not params.get("decisionField"):
        return msg("A quorum control needs a decisionField attribute; name the form field that contains each "
                   "approver's decision.")
    rule = params.get("onDisagreement")
    if not rule:
        return msg("A quorum control needs an onDisagreement attribute; write majority, or the decision that any "
                   "disagreement leads to (for example refuse).")
    if rule != MAJORITY and params.get("tieBreak"):
        return msg("Attribute tieBreak applies only when onDisagreement is majority; remove it, or write "
                   "onDisagreement=\"majority\".")
    if rule == MAJORITY and not params.get("tieBreak"):
        return msg("A quorum control that settles disagreements by majority needs a tieBreak attribute; write the "
                   "decision that a tie leads to.")
    return None


def quorum_rule(extensions: dict[str, Any]) -> QuorumRule | None:
    """Return the quorum control of a flow node from its parsed liuhen extension data, or None without one.

    NOTE: a node with several quorum controls is not rejected at deployment, and only the first one applies.
    """
    for checkpoint in extensions.get("risk_checkpoints", []):
        for control in checkpoint.get("controls", []):
            if control.get("type") != QUORUM:
                continue
            params = control.get("params", {})
            problem = quorum_problem(params)
            if problem is not None:
                # Deployment checks the attributes, so this only guards definitions deployed before that check.
                raise CaseError(msg("Control {control} cannot be applied: {problem}", control=control["id"],
                                    problem=problem))
            return QuorumRule(
                control_id=control["id"], checkpoint_id=checkpoint["id"], level=checkpoint["level"],
                approvers=int(params["approvers"]), decision_field=params["decisionField"],
                on_disagreement=params["onDisagreement"], tie_break=params.get("tieBreak"),
                reason_field=params.get("reasonField") or _reason_field(checkpoint),
            )
    return None


def _reason_field(checkpoint: dict[str, Any]) -> str | None:
    """Take the reason field from a reasonedDecision control of the same checkpoint, if there is one."""
    for control in checkpoint.get("controls", []):
        if control.get("type") == "reasonedDecision":
            return control.get("params", {}).get("reasonField") or None
    return None


def combine(rule: QuorumRule, decisions: list[str]) -> Outcome:
    """Settle the decisions of all approvers into one, by the rule's onDisagreement."""
    counts = Counter(decisions)
    if len(counts) == 1:
        return Outcome(decisions[0], True, None)
    if rule.on_disagreement != MAJORITY:
        return Outcome(rule.on_disagreement, False, "rule")
    ranked = counts.most_common()
    if ranked[0][1] > ranked[1][1]:
        return Outcome(ranked[0][0], False, MAJORITY)
    if rule.tie_break is None:
        raise RuntimeError("a majority quorum rule without tieBreak passed quorum_problem")
    return Outcome(rule.tie_break, False, "tie_break")


# votes


def _decision_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_votes(conn: Connection, task_id: str, decision_field: str) -> list[Vote]:
    rows = conn.execute(select(review_votes).where(review_votes.c.task_id == task_id)
                        .order_by(review_votes.c.voted_at, review_votes.c.id)).all()
    return [Vote(row.actor, row.decision, (row.data or {}).get(decision_field, row.decision), row.reason,
                 row.data or {}, _as_utc(row.voted_at))
            for row in rows]


def _check_vote(rule: QuorumRule, task: Task, task_id: str, actor: Actor, votes: list[Vote],
                submitted: dict[str, Any]) -> str:
    """Check that ``actor`` may vote with ``submitted``, and return the decision as stored text."""
    if any(vote.actor == actor.username for vote in votes):
        raise Conflict(msg("You have already voted on task {task_id}. Step {step} needs votes from {needed} "
                           "different approvers and has {count}, so the next vote must come from another "
                           "approver.", task_id=task_id, step=task.task_spec.bpmn_id, needed=rule.approvers,
                           count=len(votes)))
    value = submitted.get(rule.decision_field)
    if value is None or value == "":
        raise InvalidInput(msg("Step {step} needs each approver's decision in field {field}; fill it in.",
                               step=task.task_spec.bpmn_id, field=rule.decision_field))
    decision = _decision_text(value)
    if len(decision) > MAX_DECISION_LENGTH:
        raise InvalidInput(msg("The decision in field {field} is {length} characters long, over the limit of "
                               "{limit}; choose a shorter decision value.", field=rule.decision_field,
                               length=len(decision), limit=MAX_DECISION_LENGTH))
    return decision


def _combined_value(outcome: Outcome, votes: list[Vote]) -> Any:
    """Return the decision as a form value: an approver's own value when one chose it, else the rule's text."""
    for vote in votes:
        if vote.decision == outcome.decision:
            return vote.value
    return outcome.decision


def review_summary(rule: QuorumRule, votes: list[Vote], outcome: Outcome | None = None) -> dict[str, Any]:
    """Build the ``review`` object of API results: how many votes are needed, the votes so far, the outcome."""
    return {
        "control_id": rule.control_id, "checkpoint_id": rule.checkpoint_id, "needed": rule.approvers,
        "votes": [vote.as_dict() for vote in votes], "complete": outcome is not None,
        "decision": outcome.decision if outcome else None,
        "unanimous": outcome.unanimous if outcome else None,
    }


def complete_with_review(service: Liuhen, conn: Connection, row: Any, task: Task, runtime: CaseRuntime,
                         actor: Actor, submitted: dict[str, Any], now: datetime,
                         leading: list[trace.NewEvent]) -> dict[str, Any] | None:
    """Record ``actor``'s vote on a task that needs a quorum, and complete the task at the last vote.

    ``row`` is the locked case row joined with the task's columns, as Liuhen.complete reads it, and
    ``submitted`` the validated form data. Returns the stored case with a ``review`` object, or None
    when the task's step has no quorum control and should be completed as usual.
    """
    rule = quorum_rule(node_extensions(task.task_spec))
    if rule is None:
        return None
    task_id = str(task.id)
    votes = read_votes(conn, task_id, rule.decision_field)
    decision = _check_vote(rule, task, task_id, actor, votes, submitted)

    reason = submitted.get(rule.reason_field) if rule.reason_field else None
    vote = Vote(actor.username, decision, submitted.get(rule.decision_field),
                None if reason is None else str(reason), dict(submitted), now)
    conn.execute(insert(review_votes).values(
        case_id=row.id, task_id=task_id, element_id=row.task_element_id, actor=vote.actor, decision=vote.decision,
        reason=vote.reason, data=vote.data, voted_at=now))
    votes.append(vote)
    recorded = trace.NewEvent("review_recorded", actor.username, now, case_id=row.id,
                              definition_id=row.definition_id, element_id=row.task_element_id, task_id=task_id,
                              payload={"control_id": rule.control_id, "checkpoint_id": rule.checkpoint_id,
                                       "decision": vote.decision, "reason": vote.reason, "data": vote.data,
                                       "votes": len(votes), "needed": rule.approvers})
    events = [*leading, recorded]

    if len(votes) < rule.approvers:
        # The task goes back to its post for the next approver; the engine does not move.
        conn.execute(update(case_tasks).where(case_tasks.c.id == task_id).values(status="ready", assignee=None))
        result = service.store(conn, row, runtime, [], actor, now, leading=events)
        result["review"] = review_summary(rule, votes)
        return result

    # The last vote: complete the engine task with this vote's data and the combined decision.
    outcome = combine(rule, [v.decision for v in votes])
    data = {**submitted, rule.decision_field: _combined_value(outcome, votes)}
    if not outcome.unanimous:
        events.append(risk_events.record(conn, risk_events.RiskEvent(
            case_id=row.id, process_id=row.process_id, kind="review_disagreement", level=rule.level,
            actor=actor.username, at=now, definition_id=row.definition_id, department=row.department,
            element_id=row.task_element_id, task_id=task_id, post=row.task_lane, checkpoint_id=rule.checkpoint_id,
            control_id=rule.control_id,
            details={"decision": outcome.decision, "settled_by": outcome.settled_by,
                     "votes": [{"actor": v.actor, "decision": v.decision} for v in votes]})))
    step_events = runtime.complete(task, data, actor.username)
    for step in step_events:
        if step.kind == "task_completed" and step.task_id == task_id:
            step.payload["votes"] = [v.as_dict(with_data=False) for v in votes]
    result = service.store(conn, row, runtime, step_events, actor, now, leading=events)
    result["review"] = review_summary(rule, votes, outcome)
    return result


def task_review(service: Liuhen, task_id: str, extensions: dict[str, Any]) -> dict[str, Any] | None:
    """Return the ``review`` object of a task whose step needs a quorum, or None for other steps."""
    rule = quorum_rule(extensions)
    if rule is None:
        return None
    with service.db.read() as conn:
        votes = read_votes(conn, task_id, rule.decision_field)
    outcome = combine(rule, [v.decision for v in votes]) if len(votes) >= rule.approvers else None
    return review_summary(rule, votes, outcome)
