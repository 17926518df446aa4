"""Executable controls (控制规则): the rules of a risk checkpoint that the engine enforces at a step.

A claim evaluates the controls that can be judged before any work is done: separationOfDuties and
amountThreshold. A completion evaluates every control except ``quorum``, whose votes engine.quorum
counts. Each evaluation becomes a ``control_evaluated`` trace event. A failed hard control blocks the
step with ControlFailed, unless two administrators approved an override for it (engine.overrides). A
failed soft control lets the step go ahead and records a risk event at the checkpoint's level.

The controls' declarations are parsed and checked at deployment by engine.extension.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.engine import Connection

from engine import overrides, quorum, risk_events, trace
from engine.calendar import load_calendar, local_today
from engine.db import case_tasks, cases, review_votes, trace_events
from engine.errors import Conflict, ControlFailed, InvalidInput
from engine.extension import parse_whole_number
from engine.forms import validate_submission
from engine.i18n import Message, message_list, message_to_json, msg
from engine.parser import node_extensions
from engine.users import Actor

if TYPE_CHECKING:
    from engine.service import Liuhen

# The control types a claim evaluates. A completion evaluates every type except those engine.quorum handles.
CLAIM_TYPES = ("separationOfDuties", "amountThreshold")
EVALUATED_BY_QUORUM = ("quorum",)
DEFAULT_MIN_REASON_LENGTH = 10
# A recusal declaration with this value declares no relation to the applicant.
NO_RELATION = "none"
_ID_SEPARATORS = re.compile(r"[\s,;，；、]+")

RULE_NAMES = {
    "separationOfDuties": msg("separation of duties"),
    "reasonedDecision": msg("reasoned decision"),
    "quorum": msg("quorum review"),
    "amountThreshold": msg("amount threshold"),
    "splitDetection": msg("split detection"),
    "recusal": msg("recusal"),
    "publicityPeriod": msg("publicity period"),
    "requiredMaterials": msg("required materials"),
}


@dataclass(frozen=True)
class _Joined(Message):
    """Several messages shown one after another, each translated on its own."""

    parts: tuple[Message, ...] = ()

    def render(self, locale: str | None) -> str:
        return " ".join(part.render(locale) for part in self.parts)

    def __str__(self) -> str:
        return " ".join(str(part) for part in self.parts)


@dataclass
class Attempt:
    """One claim or completion of a task, as the controls see it; ``data`` is case data plus submitted data."""

    service: Liuhen
    conn: Connection
    case_id: int
    process_id: str
    definition_id: int
    department: str | None
    task_id: str
    element_id: str
    post: str | None
    actor: Actor
    now: datetime
    at: str
    data: dict[str, Any]

    def field_label(self, name: str) -> str:
        """Return the label the form shows for field ``name``, or the name when no step declares the field."""
        declared = self._form_field(name)
        return str(declared.get("label") or name) if declared else name

    def value_label(self, name: str, value: Any) -> str:
        """Return the label of ``value`` among the options of field ``name``, or the value as text."""
        declared = self._form_field(name) or {}
        for option in declared.get("options") or []:
            if option["value"] == str(value):
                return str(option.get("label") or value)
        return str(value)

    def step_label(self, element_id: str) -> str:
        """Return the name the flowchart gives step ``element_id``, or its id when the step has no name."""
        node = self.service.parsed_definition(self.definition_id)[0].nodes.get(element_id)
        return node.name if node is not None and node.name else element_id

    def _form_field(self, name: str) -> dict[str, Any] | None:
        # The step's own fields first: another step may declare a field of the same name with another label.
        nodes = self.service.parsed_definition(self.definition_id)[0].nodes
        own = nodes.get(self.element_id)
        for node in ([own] if own is not None else []) + list(nodes.values()):
            for declared in node.extensions.get("form_fields", []):
                if declared["name"] == name:
                    return dict(declared)
        return None


@dataclass
class Verdict:
    """The result of one control: ``details`` go into the risk event, ``notice`` lists materials to correct."""

    passed: bool
    message: Message | None = None
    details: dict[str, Any] = field(default_factory=dict)
    notice: list[dict[str, str]] | None = None


@dataclass
class _Evaluation:
    checkpoint: dict[str, Any]
    control: dict[str, Any]
    verdict: Verdict
    override: Any = None

    @property
    def blocking(self) -> bool:
        return not self.verdict.passed and self.control["enforcement"] == "hard"


# entry points


def check_claim(service: Liuhen, conn: Connection, case: Any, task: Any, actor: Actor,
                now: datetime) -> list[trace.NewEvent]:
    """Evaluate the claim-time controls of ``task`` (a case_tasks row) in the claim's transaction.

    Returns the trace events to append before task_claimed, or raises ControlFailed.
    """
    parsed, _process = service.parsed_definition(case.definition_id)
    node = parsed.nodes.get(task.element_id)
    attempt = Attempt(service, conn, case.id, case.process_id, case.definition_id, case.department, task.id,
                      task.element_id, task.lane, actor, now, "claim", dict(case.data or {}))
    return _run(attempt, node.extensions if node else {}, CLAIM_TYPES)


def check_completion(service: Liuhen, conn: Connection, row: Any, extensions: dict[str, Any],
                     task_data: dict[str, Any], submitted: dict[str, Any], actor: Actor,
                     now: datetime) -> list[trace.NewEvent]:
    """Evaluate every control of a task being completed, in the completion's transaction.

    ``row`` is the locked case row joined with the task's columns, as Liuhen.complete reads it. Returns
    the trace events to append before the step's own events, or raises ControlFailed.
    """
    attempt = Attempt(service, conn, row.id, row.process_id, row.definition_id, row.department, row.task_id,
                      row.task_element_id, row.task_lane, actor, now, "complete", {**task_data, **submitted})
    return _run(attempt, extensions, None)


def check_skip(service: Liuhen, conn: Connection, row: Any, task_row: Any, extensions: dict[str, Any],
               task_data: dict[str, Any], submitted: dict[str, Any], admin: Actor,
               now: datetime) -> list[trace.NewEvent]:
    """Evaluate the controls of a task an administrator completes by skipping it.

    Skipping passes over the form checks only: a hard control still blocks unless a second administrator
    approved an override, so one administrator alone cannot take a case past it.
    """
    attempt = Attempt(service, conn, row.id, row.process_id, row.definition_id, row.department, task_row.id,
                      task_row.element_id, task_row.lane, admin, now, "complete", {**task_data, **submitted})
    return _run(attempt, extensions, None)


def record_blocked(service: Liuhen, failure: ControlFailed) -> None:
    """Store the control_evaluated events of a blocked attempt after its own transaction rolled back."""
    if failure.events:
        service.append_case_events(failure.case_id, lambda _conn, _row, _now: failure.events)


def declared_controls(extensions: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """List (checkpoint, control) for every control of a flow node, in document order."""
    return [(checkpoint, control) for checkpoint in extensions.get("risk_checkpoints", [])
            for control in checkpoint.get("controls", [])]


# the dry run


@dataclass(frozen=True)
class ControlCheck:
    """The verdict one control would give if the task were completed now with the data typed so far."""

    control_id: str
    control_type: str
    checkpoint_id: str
    enforcement: str
    passed: bool
    message: Message | None = None
    # True for a failed hard control that an approved override lets through once.
    overridden: bool = False

    @property
    def blocking(self) -> bool:
        return not self.passed and self.enforcement == "hard" and not self.overridden


@dataclass(frozen=True)
class FieldProblem:
    """A typed value the step's form would reject, such as text in a number field."""

    field: str
    message: Message


@dataclass(frozen=True)
class CompletionCheck:
    """The dry run of a completion: each control's verdict and the typed values the form would reject."""

    task_id: str
    controls: list[ControlCheck]
    field_problems: list[FieldProblem]

    @property
    def blocked(self) -> bool:
        return any(check.blocking for check in self.controls)


def dry_run_completion(service: Liuhen, task_id: str, actor: Actor, data: dict[str, Any] | None) -> CompletionCheck:
    """Evaluate the controls of an open task as completing it with ``data`` now would, and store nothing.

    The task, its post and its holder are checked as Liuhen.complete checks them, and the same rules judge
    the same data: the task's data with the typed values on top. Everything runs in a read transaction, so
    no trace event, risk event, vote or correction notice is written and an approved override stays unused.
    Unlike a completion, required fields may still be empty, and a value the form would reject is reported
    in ``field_problems`` and judged as empty.
    """
    now = service.now()
    with service.db.read() as conn:
        row, _task_row = service.task_to_complete(conn, task_id, actor, lock=False)
        runtime = service._runtime(row)
        try:
            task = runtime.task(UUID(task_id))
            if task is None or task.state != TaskState.READY:
                raise Conflict(msg("Task {task_id} is no longer waiting to be completed.", task_id=task_id))
            extensions = node_extensions(task.task_spec)
            submitted, problems = _typed_values(extensions.get("form_fields", []), dict(data or {}))
            attempt = Attempt(service, conn, row.id, row.process_id, row.definition_id, row.department, task_id,
                              row.task_element_id, row.task_lane, actor, now, "complete", {**task.data, **submitted})
            checks = [_control_check(evaluation) for evaluation in _evaluate(attempt, extensions, None)]
            rule = quorum.quorum_rule(extensions)
            if rule is not None:
                checks.append(_quorum_check(conn, rule, task, actor, submitted))
        finally:
            # The dry run only read the engine state, so it goes back to the cache that Liuhen.complete takes
            # it from. Until then no other request can change it.
            service._runtimes.put(row.id, (row.revision, runtime))
    return CompletionCheck(task_id, checks, problems)


def _typed_values(fields: list[dict[str, Any]], data: dict[str, Any]) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Convert the typed values as a completion would, with every field optional, and collect the rejected ones.

    A rejected value counts as empty. Keys the step does not have raise InvalidInput, as at completion.
    """
    optional = [{**form_field, "required": False} for form_field in fields]
    try:
        return validate_submission(optional, data), []
    except InvalidInput as whole:
        first_error = whole

    values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for form_field in optional:
        name = form_field["name"]
        try:
            values.update(validate_submission([form_field], {name: data[name]} if name in data else {}))
        except InvalidInput as error:
            problems.append(FieldProblem(name, error.message))
            values[name] = None
    if not problems:
        # No single value was wrong, so the data as a whole was: an unknown or invalid key.
        raise first_error
    return values, problems


def _control_check(evaluation: _Evaluation) -> ControlCheck:
    control = evaluation.control
    return ControlCheck(control["id"], control["type"], evaluation.checkpoint["id"], control["enforcement"],
                        evaluation.verdict.passed, evaluation.verdict.message,
                        overridden=evaluation.override is not None)


def _quorum_check(conn: Connection, rule: quorum.QuorumRule, task: Task, actor: Actor,
                  submitted: dict[str, Any]) -> ControlCheck:
    """Check the vote ``actor`` would cast with the rule that rejects a vote at completion."""
    task_id = str(task.id)
    votes = quorum.read_votes(conn, task_id, rule.decision_field)
    try:
        quorum._check_vote(rule, task, task_id, actor, votes, submitted)
    except (Conflict, InvalidInput) as refused:
        # A rejected vote blocks the step like a failed hard control.
        return ControlCheck(rule.control_id, quorum.QUORUM, rule.checkpoint_id, "hard", False, refused.message)
    return ControlCheck(rule.control_id, quorum.QUORUM, rule.checkpoint_id, "hard", True,
                        msg("{votes} of the {needed} approvers this step needs have voted; this vote would be "
                            "number {number}.", votes=len(votes), needed=rule.approvers, number=len(votes) + 1))


# the pipeline


def _evaluate(attempt: Attempt, extensions: dict[str, Any], types: tuple[str, ...] | None) -> list[_Evaluation]:
    """Judge each control of ``types`` (None: all but quorum) and find the approved override of a blocking one.

    It only reads, so the dry run of a completion shares it with the real one.
    """
    evaluations = []
    for checkpoint, control in declared_controls(extensions):
        if control["type"] in EVALUATED_BY_QUORUM or (types is not None and control["type"] not in types):
            continue
        evaluation = _Evaluation(checkpoint, control, RULES[control["type"]](attempt, control))
        if evaluation.blocking:
            evaluation.override = overrides.approved_override(attempt.conn, attempt.task_id, control["id"])
        evaluations.append(evaluation)
    return evaluations


def _run(attempt: Attempt, extensions: dict[str, Any], types: tuple[str, ...] | None) -> list[trace.NewEvent]:
    evaluations = _evaluate(attempt, extensions, types)

    blocking = [e for e in evaluations if e.blocking and e.override is None]
    if blocking:
        raise _failure(attempt, blocking, [_evaluated_event(attempt, e, used=False) for e in evaluations])

    # The step goes ahead. Overrides are used at completion only, and a claim lets an approved one through.
    events = []
    for evaluation in evaluations:
        used = evaluation.override is not None and attempt.at == "complete"
        events.append(_evaluated_event(attempt, evaluation, used=used))
        if evaluation.verdict.notice:
            events.append(_correction_notice(attempt, evaluation))
        if used:
            overrides.mark_used(attempt.conn, evaluation.override.id, attempt.now)
            events.append(_risk_event(attempt, evaluation, "control_overridden", "high", {
                "override_id": evaluation.override.id, "requested_by": evaluation.override.requested_by,
                "approved_by": evaluation.override.decided_by, "reason": evaluation.override.reason}))
        elif not evaluation.verdict.passed and evaluation.control["enforcement"] == "soft" \
                and attempt.at == "complete":
            # At a claim a soft failure is only traced. Its risk event follows if the step is completed.
            kind = "split_suspected" if evaluation.control["type"] == "splitDetection" else "control_failed"
            events.append(_risk_event(attempt, evaluation, kind, evaluation.checkpoint["level"],
                                      evaluation.verdict.details))
    return events


def _failure_line(evaluation: _Evaluation) -> Message:
    control = evaluation.control
    return msg("Control {control} ({rule}) failed: {reason}", control=control["id"], rule=RULE_NAMES[control["type"]],
               reason=evaluation.verdict.message or msg("the rule is not met."))


def _failure(attempt: Attempt, blocking: list[_Evaluation], events: list[trace.NewEvent]) -> ControlFailed:
    reasons = _Joined("", {}, tuple(_failure_line(e) for e in blocking))
    if attempt.at == "claim":
        message = msg("Step {step} cannot be claimed. {reasons}", step=attempt.step_label(attempt.element_id),
                      reasons=reasons)
    else:
        message = msg("Step {step} cannot be completed; nothing was saved. {reasons}",
                      step=attempt.step_label(attempt.element_id), reasons=reasons)
    failures = [{"control_id": e.control["id"], "control_type": e.control["type"],
                 "checkpoint_id": e.checkpoint["id"], "message": _failure_line(e)} for e in blocking]
    return ControlFailed(message, case_id=attempt.case_id, task_id=attempt.task_id, failures=failures,
                         events=events)


def _evaluated_event(attempt: Attempt, evaluation: _Evaluation, *, used: bool) -> trace.NewEvent:
    control, verdict = evaluation.control, evaluation.verdict
    if used:
        outcome = "overridden"
    elif verdict.passed:
        outcome = "passed"
    else:
        outcome = "failed"
    payload: dict[str, Any] = {"control_id": control["id"], "control_type": control["type"],
                               "checkpoint_id": evaluation.checkpoint["id"], "enforcement": control["enforcement"],
                               "outcome": outcome, "at": attempt.at}
    if verdict.message is not None:
        # The English text keeps the trace readable without the catalogue; the msgid and its values let a
        # page render the message in its reader's language. Events stored before carry the text only.
        payload["message"] = str(verdict.message)
        payload.update(message_to_json(verdict.message))
    if evaluation.override is not None:
        payload["override_id"] = evaluation.override.id
    return trace.NewEvent("control_evaluated", attempt.actor.username, attempt.now, case_id=attempt.case_id,
                          definition_id=attempt.definition_id, element_id=attempt.element_id,
                          task_id=attempt.task_id, payload=payload)


def _correction_notice(attempt: Attempt, evaluation: _Evaluation) -> trace.NewEvent:
    return trace.NewEvent("correction_notice", attempt.actor.username, attempt.now, case_id=attempt.case_id,
                          definition_id=attempt.definition_id, element_id=attempt.element_id,
                          task_id=attempt.task_id,
                          payload={"control_id": evaluation.control["id"],
                                   "checkpoint_id": evaluation.checkpoint["id"],
                                   "missing_materials": evaluation.verdict.notice})


def _risk_event(attempt: Attempt, evaluation: _Evaluation, kind: str, level: str,
                details: dict[str, Any]) -> trace.NewEvent:
    if evaluation.verdict.message is not None:
        details = {**details, "message": str(evaluation.verdict.message)}
    return risk_events.record(attempt.conn, risk_events.RiskEvent(
        case_id=attempt.case_id, process_id=attempt.process_id, kind=kind, level=level,
        actor=attempt.actor.username, at=attempt.now, definition_id=attempt.definition_id,
        department=attempt.department, element_id=attempt.element_id, task_id=attempt.task_id, post=attempt.post,
        checkpoint_id=evaluation.checkpoint["id"], control_id=evaluation.control["id"], details=details))


# the rules


def _number(value: Any) -> Decimal | None:
    """Return a case-data value as a finite number, or None when it is not one (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        # Through str, so that a float such as 0.1 keeps its written digits.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _party(value: Any) -> str | None:
    """Return the party of a case as compared by split detection: its text without surrounding white space."""
    return None if value is None else str(value).strip()


def _completed_steps(attempt: Attempt, steps: list[str]) -> dict[str, Any]:
    """Map each of ``steps`` completed in this case to its latest completion time and who completed it.

    A step an administrator skipped was not done: the meeting that should have decided did not meet.
    """
    rows = attempt.conn.execute(
        select(case_tasks.c.id, case_tasks.c.element_id, case_tasks.c.completed_by, case_tasks.c.completed_at)
        .where(case_tasks.c.case_id == attempt.case_id, case_tasks.c.element_id.in_(steps),
               case_tasks.c.status == "completed")
        .order_by(case_tasks.c.completed_at)).all()
    skipped = _skipped_tasks(attempt, steps) if rows else set()
    return {row.element_id: row for row in rows if row.id not in skipped}


def _skipped_tasks(attempt: Attempt, steps: list[str]) -> set[str]:
    """Ids of the tasks of ``steps`` in this case that an administrator completed with ``step_skipped``."""
    bodies = attempt.conn.execute(
        select(trace_events.c.body)
        .where(trace_events.c.case_id == attempt.case_id, trace_events.c.kind == "step_skipped",
               trace_events.c.element_id.in_(steps))).scalars()
    return {json.loads(bytes(body))["task_id"] for body in bodies}


def separation_of_duties(attempt: Attempt, control: dict[str, Any]) -> Verdict:
    username = attempt.actor.username
    row = attempt.conn.execute(
        select(case_tasks.c.element_id)
        .where(case_tasks.c.case_id == attempt.case_id, case_tasks.c.element_id.in_(control["steps"]),
               case_tasks.c.status == "completed", case_tasks.c.completed_by == username)
        .limit(1)).first()
    if row is None:
        # On a step that needs several approvers, every voter took part, not only the last one.
        row = attempt.conn.execute(
            select(review_votes.c.element_id)
            .where(review_votes.c.case_id == attempt.case_id, review_votes.c.element_id.in_(control["steps"]),
                   review_votes.c.actor == username)
            .limit(1)).first()
    if row is None:
        return Verdict(True)
    return Verdict(False, msg("user {username} completed step {step} of this case, and the same person may not "
                              "also take this step; another user of the post must take it.",
                              username=username, step=attempt.step_label(row.element_id)), {"step": row.element_id})


def reasoned_decision(attempt: Attempt, control: dict[str, Any]) -> Verdict:
    params = control["params"]
    decision = attempt.data.get(params["decisionField"])
    if decision is None or str(decision) not in params["decisions"].split():
        return Verdict(True)
    minimum = parse_whole_number(params.get("minLength", "")) if params.get("minLength") else \
        DEFAULT_MIN_REASON_LENGTH
    reason = attempt.data.get(params["reasonField"])
    length = len(str(reason).strip()) if reason is not None else 0
    if length >= minimum:
        return Verdict(True)
    return Verdict(False, msg("the decision {decision} needs a written reason of at least {minimum} characters in "
                              "field {field}, and the reason given has {length}; state the reasons in full.",
                              decision=attempt.value_label(params["decisionField"], decision), minimum=minimum,
                              field=attempt.field_label(params["reasonField"]), length=length),
                   {"decision": str(decision), "reason_length": length})


def amount_threshold(attempt: Attempt, control: dict[str, Any]) -> Verdict:
    params = control["params"]
    value = attempt.data.get(params["field"])
    if value is None or value == "":
        return Verdict(True)
    amount = _number(value)
    threshold = Decimal(params["threshold"].strip())
    if amount is None:
        return Verdict(False, msg("field {field} contains {value!r}, which is not an amount, so the threshold of "
                                  "{threshold} cannot be checked; correct the amount.",
                                  field=attempt.field_label(params["field"]), value=str(value),
                                  threshold=str(threshold)))
    if amount <= threshold:
        return Verdict(True)
    completed = _completed_steps(attempt, control["steps"])
    missing = [step for step in control["steps"] if step not in completed]
    if not missing:
        return Verdict(True)
    return Verdict(False, msg("the amount {amount} in field {field} is above the threshold of {threshold}, so step "
                              "{steps} must be completed in this case first.", amount=str(amount),
                              field=attempt.field_label(params["field"]), threshold=str(threshold),
                              steps=", ".join(attempt.step_label(step) for step in missing)),
                   {"amount": str(amount), "threshold": str(threshold), "missing_steps": missing})


def split_detection(attempt: Attempt, control: dict[str, Any]) -> Verdict:
    params = control["params"]
    party = _party(attempt.data.get(params["partyField"]))
    amount = _number(attempt.data.get(params["field"]))
    threshold = Decimal(params["threshold"].strip())
    if not party or amount is None or amount >= threshold:
        return Verdict(True)

    days = parse_whole_number(params["windowDays"])
    # TODO: this reads every case of the process started in the window and filters their data in Python.
    # With millions of cases in a window, the party and amount need indexed columns instead.
    rows = attempt.conn.execute(
        select(cases.c.id, cases.c.data)
        .where(cases.c.process_id == attempt.process_id, cases.c.started_at >= attempt.now - timedelta(days=days),
               cases.c.id != attempt.case_id, cases.c.status != "cancelled")
        .order_by(cases.c.id)).all()
    related: list[tuple[int, Decimal]] = []
    for row in rows:
        data = row.data or {}
        other = _number(data.get(params["field"]))
        if _party(data.get(params["partyField"])) == party and other is not None and other < threshold:
            related.append((row.id, other))

    total = amount + sum((other for _case, other in related), Decimal(0))
    if not related or total <= threshold:
        return Verdict(True)
    case_ids = [case_id for case_id, _amount in related]
    return Verdict(False, msg("this case and cases {cases} of the same process for {party}, started within {days} "
                              "days, are each below the threshold of {threshold} but together come to {total}; "
                              "check whether one matter was split to stay below the threshold.",
                              cases=", ".join(str(case_id) for case_id in case_ids), party=str(party), days=days,
                              threshold=str(threshold), total=str(total)),
                   {"party": str(party), "cases": case_ids, "total": str(total), "threshold": str(threshold)})


def recusal(attempt: Attempt, control: dict[str, Any]) -> Verdict:
    name = control["params"]["field"]
    value = attempt.data.get(name)
    text = str(value).strip() if value is not None else ""
    if text.lower() == NO_RELATION:
        return Verdict(True)
    if not text:
        return Verdict(False, msg("field {field} contains no recusal declaration; write none when you have no relation "
                                  "to the applicant, or describe the relation.", field=attempt.field_label(name)))
    return Verdict(False, msg("user {username} declared a relation to the applicant in field {field} ({value}); a "
                              "user without a conflict of interest must take this step.",
                              username=attempt.actor.username, field=attempt.field_label(name), value=text),
                   {"declaration": text})


def publicity_period(attempt: Attempt, control: dict[str, Any]) -> Verdict:
    days = parse_whole_number(control["params"]["workingDays"])
    if control["steps"]:
        step = control["steps"][0]
        completed = _completed_steps(attempt, [step]).get(step)
        if completed is None:
            return Verdict(False, msg("step {step} has not been completed in this case, so the publicity period of "
                                      "{days} working days has not started; complete that step first.",
                                      step=attempt.step_label(step), days=days))
        started_at = completed.completed_at
    else:
        started_at = attempt.conn.execute(select(case_tasks.c.created_at)
                                          .where(case_tasks.c.id == attempt.task_id)).scalar_one()
    calendar = load_calendar(attempt.service.db)
    first = local_today(started_at)
    last = calendar.add_working_days(first, days)
    if local_today(attempt.now) > last:
        return Verdict(True)
    provisional = bool(calendar.provisional_years(first, last))
    return Verdict(False, msg("the publicity period of {days} working days began on {start} and runs to the end "
                              "of {end}; complete this step after that day.", days=days, start=first.isoformat(),
                              end=last.isoformat()),
                   {"start": first.isoformat(), "end": last.isoformat(), "provisional": provisional})


def required_materials(attempt: Attempt, control: dict[str, Any]) -> Verdict:
    params = control["params"]
    value = attempt.data.get(params["field"])
    if isinstance(value, str):
        # A text form field contains the ids separated by commas, semicolons or spaces.
        value = [item for item in _ID_SEPARATORS.split(value) if item]
    if value is not None and not isinstance(value, list):
        return Verdict(False, msg("field {field} must list the ids of the materials received, for example "
                                  "[\"{example}\"].", field=attempt.field_label(params["field"]),
                                  example=control["materials"][0]["id"]))
    present = {str(item) for item in value or []}
    missing = [material for material in control["materials"] if material["id"] not in present]
    if not missing:
        return Verdict(True)
    listed = message_list(msg("{name} ({id})", name=material["name"], id=material["id"]) for material in missing)
    decision_field, correction = params.get("decisionField"), params.get("correctionValue")
    if decision_field and attempt.data.get(decision_field) == correction:
        return Verdict(True, msg("a correction notice lists every missing material at once: {materials}.",
                                 materials=listed), notice=missing)
    details = {"missing_materials": [material["id"] for material in missing]}
    if decision_field:
        return Verdict(False, msg("materials {materials} are not marked as received in field {field}; mark each "
                                  "one once it arrives, or set {decision_field} to {correction} to send the "
                                  "applicant one correction notice listing everything missing.", materials=listed,
                                  field=attempt.field_label(params["field"]),
                                  decision_field=attempt.field_label(decision_field),
                                  correction=attempt.value_label(decision_field, correction)),
                       details)
    return Verdict(False, msg("materials {materials} are not marked as received in field {field}; mark each one "
                              "once it arrives.", materials=listed, field=attempt.field_label(params["field"])),
                   details)


RULES: dict[str, Callable[[Attempt, dict[str, Any]], Verdict]] = {
    "separationOfDuties": separation_of_duties,
    "reasonedDecision": reasoned_decision,
    "amountThreshold": amount_threshold,
    "splitDetection": split_detection,
    "recusal": recusal,
    "publicityPeriod": publicity_period,
    "requiredMaterials": required_materials,
}

