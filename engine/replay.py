"""Replay of a case: re-run its recorded inputs on a fresh engine and compare the outcome with its trace.

The replay parses the BPMN bytes the case was started on, as stored now, starts a new in-memory
CaseRuntime on a ManualClock set to each recorded event's time, and feeds it the inputs the trace
records: the start data, each completed task with its submitted data, each firing of timers, each
data edit by an administrator, and the cancellation. After every input it compares the events the
engine produced with the events the trace recorded for that step, and stops at the first difference.

A step is what the service writes in one transaction: its events share one instant and begin with
the input (case_started, a claim before task_completed, timer_fired), except that a cancellation
writes its cancelled tasks before case_cancelled. Claims, releases, reassignments and other events
that do not change the engine state are not inputs.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select

from engine import trace
from engine.clock import ManualClock
from engine.db import cases, definition_files, definitions
from engine.definitions import Limits, ParsedDefinition, ParsedProcess, content_hash, load_definition
from engine.errors import DefinitionError, InvalidInput, LiuhenError, NotFound
from engine.i18n import Message, dynamic, msg
from engine.replay_compare import (
    OUTPUT_KINDS,
    compare_step,
    describe,
    jsonable,
    produced_record,
    summary,
)
from engine.runtime import CaseRuntime, StepEvent
from engine.service import Liuhen

logger = logging.getLogger(__name__)

INTERVENTION_KINDS = ("task_reassigned", "step_skipped", "data_edited", "case_migrated")

# The stored bytes passed the upload checks once; parse them again without today's upload limits.
_STORED_LIMITS = Limits(max_bytes=1 << 40, max_depth=1 << 20, max_elements=1 << 40)
_MISSING = object()


class ReplayDiverged(LiuhenError):
    """Error for a past state that cannot be computed because the replay up to it diverged from the trace."""

    code = "replay_diverged"
    status = 409


@dataclass(frozen=True)
class Divergence:
    """The first point where a case's record and its replay disagree.

    ``seq`` is the trace event where the difference shows, or None for a problem found before replaying.
    ``expected`` and ``actual`` are the compared fields of the recorded and the replayed event.
    """

    kind: str
    seq: int | None
    message: Message
    expected: dict[str, Any] | None = None
    actual: dict[str, Any] | None = None

    def as_dict(self, locale: str | None) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "message": self.message.render(locale),
                "expected": self.expected, "actual": self.actual}


@dataclass
class ReplayReport:
    """Outcome of replaying one case: consistent, diverged, or incomplete (stopped at a version move)."""

    case_id: int
    process_id: str | None
    version: int | None
    definition_id: int | None
    content_hash: str | None
    events: int
    checked: int
    steps: int
    divergence: Divergence | None
    interventions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.divergence is None:
            return "consistent"
        if self.divergence.kind == "not_replayable":
            return "incomplete"
        return "diverged"

    @property
    def ok(self) -> bool:
        return self.divergence is None

    def as_dict(self, locale: str | None) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "process_id": self.process_id, "version": self.version,
            "definition_id": self.definition_id, "content_hash": self.content_hash, "status": self.status,
            "ok": self.ok, "events": self.events, "checked": self.checked, "steps": self.steps,
            "divergence": self.divergence.as_dict(locale) if self.divergence else None,
            "interventions": self.interventions,
        }


@dataclass
class _CaseRecord:
    """Rows a replay reads from the database in one read transaction."""

    case: Any
    events: list[dict[str, Any]]
    chain: trace.StreamReport
    definition: Any


def _load(service: Liuhen, case_id: int) -> _CaseRecord:
    with service.db.read() as conn:
        case = conn.execute(select(cases).where(cases.c.id == case_id)).first()
        if case is None:
            raise NotFound(msg("Case {case_id} does not exist.", case_id=case_id))
        stream = trace.case_stream(case_id)
        events = trace.read_stream(conn, stream)
        chain = trace.verify_stream(conn, stream)
        # The trace is hash-chained and the case row is not, so the trace names the definition to replay.
        pinned = events[0].get("definition_id") if events and events[0]["kind"] == "case_started" \
            else case.definition_id
        definition = conn.execute(
            select(definitions.c.id, definitions.c.process_id, definitions.c.version, definitions.c.content_hash,
                   definition_files.c.content, definition_files.c.filename)
            .select_from(definitions.outerjoin(definition_files,
                                               definition_files.c.content_hash == definitions.c.content_hash))
            .where(definitions.c.id == pinned)).first()
    return _CaseRecord(case, events, chain, definition)


def _prepare(record: _CaseRecord, *, verify_trace: bool, check_definition_hash: bool
             ) -> tuple[Divergence | None, tuple[ParsedDefinition, ParsedProcess] | None]:
    """Check the trace and the pinned definition, then parse the definition's stored bytes."""
    case_id = record.case.id
    finding = record.chain.finding
    if verify_trace and finding is not None:
        return Divergence("trace_broken", finding.seq, msg(
            "The trace of case {case_id} failed verification, so a replay would rest on altered events: {finding}",
            case_id=case_id, finding=finding.message)), None
    if not record.events or record.events[0]["kind"] != "case_started":
        return Divergence("trace_malformed", record.events[0]["seq"] if record.events else None, msg(
            "The trace of case {case_id} does not begin with a case_started event, so there is nothing to "
            "replay from.", case_id=case_id)), None

    definition = record.definition
    if definition is None or definition.content is None:
        return Divergence("definition_missing", None, msg(
            "The definition {definition_id} that case {case_id} was started on, or its BPMN file, is missing "
            "from the database.", definition_id=record.events[0].get("definition_id"), case_id=case_id)), None
    content = bytes(definition.content)
    computed = content_hash(content)
    if check_definition_hash and computed != definition.content_hash:
        return Divergence("definition_altered", None, msg(
            "The stored BPMN file of {process_id} version {version} (definition {definition_id}) no longer "
            "matches its content hash: recorded {recorded}, computed {computed}. The flowchart was altered "
            "after it was deployed, so the case cannot be checked against the model it ran on.",
            process_id=definition.process_id, version=definition.version, definition_id=definition.id,
            recorded=definition.content_hash, computed=computed)), None

    try:
        parsed = load_definition(content, definition.filename, _STORED_LIMITS)
        process = parsed.process(definition.process_id)
    except DefinitionError as exc:
        return Divergence("definition_unreadable", None, msg(
            "The stored BPMN file of {process_id} version {version} can no longer be parsed: {reason}",
            process_id=definition.process_id, version=definition.version, reason=exc.message)), None
    except KeyError:
        return Divergence("definition_unreadable", None, msg(
            "The stored BPMN file of {process_id} version {version} no longer defines the process "
            "{process_id}.", process_id=definition.process_id, version=definition.version)), None
    return None, (parsed, process)


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"]).astimezone(UTC)


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _shown(value: Any) -> Any:
    if value is _MISSING:
        return msg("no value")
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class _Replayer:
    """Driver that feeds a trace's inputs to a fresh runtime one step at a time and checks each step's events."""

    def __init__(self, events: list[dict[str, Any]], definition: ParsedDefinition, process: ParsedProcess) -> None:
        self.events = events
        self.definition = definition
        self.process = process
        self.clock = ManualClock(_time(events[0]))
        self._runtime: CaseRuntime | None = None
        self.position = 0
        self.steps = 0
        self.status = "running"
        self.end_element_id: str | None = None
        self.divergence: Divergence | None = None
        self.interventions: list[dict[str, Any]] = []
        # Recorded task id -> the replay's task id, in the order the trace recorded the tasks as ready.
        self.replay_ids: dict[str, UUID] = {}
        self.ready_at: dict[str, str] = {}
        self.assignees: dict[str, str | None] = {}

    @property
    def runtime(self) -> CaseRuntime:
        if self._runtime is None:
            raise RuntimeError("the replay has not started the case yet")
        return self._runtime

    def run(self, until_seq: int | None = None) -> None:
        """Apply the trace's events in order, up to and including the step that contains ``until_seq``."""
        while self.divergence is None and self.position < len(self.events):
            event = self.events[self.position]
            if until_seq is not None and event["seq"] > until_seq:
                return
            self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        if kind == "case_started":
            self._start(event)
        elif kind == "task_completed":
            self._complete(event)
        elif kind == "timer_fired":
            self._fire_timers(event)
        elif kind in ("task_cancelled", "case_cancelled"):
            self._cancel(event)
        elif kind in OUTPUT_KINDS:
            # Engine output with no input before it in the same step: the replay has nothing like it.
            self._missing(event)
        else:
            self._other(event)

    # inputs

    def _start(self, event: dict[str, Any]) -> None:
        if self._runtime is not None:
            self._diverge("trace_malformed", event["seq"], msg(
                "Event {seq} starts the case a second time.", seq=event["seq"]))
            return
        self.clock.set(_time(event))
        try:
            runtime, steps = CaseRuntime.start(self.process, self.definition, self.clock,
                                               dict(event["payload"].get("data") or {}))
        except LiuhenError as exc:
            self._engine_error(event, exc)
            return
        self._runtime = runtime
        self._finish_step(event, self.position + 1, steps, "start")

    def _complete(self, event: dict[str, Any]) -> None:
        task = self._ready_task(event)
        if task is None:
            open_steps = sorted({t.task_spec.bpmn_id for t in self.runtime.ready_human_tasks()})
            self._diverge("task_not_ready", event["seq"], msg(
                "Event {seq}: the trace records that step {step} was completed, but in the replay that step is "
                "not waiting; the open steps are: {open_steps}.", seq=event["seq"], step=event["element_id"],
                open_steps=", ".join(open_steps) or "-"), expected=summary(event))
            return
        self.clock.set(_time(event))
        try:
            steps = self.runtime.complete(task, dict(event["payload"].get("data") or {}), event["actor"])
        except LiuhenError as exc:
            self._engine_error(event, exc)
            return
        self._finish_step(event, self.position, steps, "complete")

    def _fire_timers(self, event: dict[str, Any]) -> None:
        self.clock.set(_time(event))
        try:
            steps = self.runtime.fire_timers()
        except LiuhenError as exc:
            self._engine_error(event, exc)
            return
        self._finish_step(event, self.position, steps, "timers")

    def _cancel(self, event: dict[str, Any]) -> None:
        # A cancellation is written as its cancelled tasks followed by case_cancelled, at one instant.
        end = self.position
        while end < len(self.events) and self.events[end]["kind"] == "task_cancelled" \
                and self.events[end]["at"] == event["at"]:
            end += 1
        if end == len(self.events) or self.events[end]["kind"] != "case_cancelled" \
                or self.events[end]["at"] != event["at"]:
            self._missing(event)
            return
        closing = self.events[end]
        self.clock.set(_time(closing))
        try:
            steps = self.runtime.cancel()
        except LiuhenError as exc:
            self._engine_error(closing, exc)
            return
        produced = [produced_record(step) for step in steps]
        if self._check(self.events[self.position:end], produced, closing["seq"]):
            self.status = "cancelled"
            self.position = end + 1
            self.steps += 1

    def _other(self, event: dict[str, Any]) -> None:
        kind, task_id = event["kind"], event.get("task_id")
        if kind in INTERVENTION_KINDS:
            self.interventions.append({"seq": event["seq"], "kind": kind, "actor": event["actor"], "at": event["at"],
                                       "element_id": event.get("element_id"),
                                       "reason": event["payload"].get("reason")})
        if kind == "task_claimed" and task_id:
            self.assignees[task_id] = event["actor"]
        elif kind in ("task_released", "review_recorded") and task_id:
            # A vote that leaves its task open gives the task back to its post.
            self.assignees[task_id] = None
        elif kind == "task_reassigned" and task_id:
            self.assignees[task_id] = event["payload"].get("assignee")
        elif kind == "data_edited":
            self._edit_data(event["payload"].get("changes") or {})
        elif kind == "case_migrated":
            self._diverge("not_replayable", event["seq"], msg(
                "Event {seq} moved the case to definition {definition_id}. The replay does not follow moves "
                "between versions, so the events from this one on were not checked.", seq=event["seq"],
                definition_id=event.get("definition_id")))
            return
        self.position += 1

    def _edit_data(self, changes: dict[str, Any]) -> None:
        """Give every unfinished task the edited values, as the administrator's data edit did."""
        workflows = [self.runtime.workflow, *self.runtime.workflow.subprocesses.values()]
        for workflow in workflows:
            for task in workflow.tasks.values():
                if task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
                    task.data.update(changes)

    def _ready_task(self, event: dict[str, Any]) -> Task | None:
        """Find the replay's ready task for a recorded completion: the mapped one, else the earliest ready."""
        ready = [t for t in self.runtime.ready_human_tasks() if t.task_spec.bpmn_id == event["element_id"]]
        mapped = self.replay_ids.get(event.get("task_id") or "")
        for task in ready:
            if task.id == mapped:
                return task
        order = {replay_id: index for index, replay_id in enumerate(self.replay_ids.values())}
        ready.sort(key=lambda t: order.get(t.id, len(order)))
        return ready[0] if ready else None

    # comparison

    def _finish_step(self, event: dict[str, Any], first: int, steps: list[StepEvent], step_kind: str) -> None:
        produced = [produced_record(step) for step in steps]
        if self.runtime.reached_end():
            if self.status == "running":
                # The service adds case_completed itself once the top-level process reached an end event.
                ends = [step.element_id for step in steps if step.kind == "end_event_reached"]
                produced.append({"kind": "case_completed", "element_id": ends[-1] if ends else None,
                                 "task_id": None, "payload": {}})
        elif self.runtime.workflow.is_completed():
            self._diverge("dead_end", event["seq"], msg(
                "Event {seq}: after this step the replay has no step left and reached no end event. The live "
                "engine rejects such a step, so the trace should not contain it.", seq=event["seq"]))
            return
        end = self._step_end(first, event["at"], step_kind, produced)
        recorded = self.events[first:end]
        if self._check(recorded, produced, (recorded[-1] if recorded else event)["seq"]):
            self.position = end
            self.steps += 1

    def _step_end(self, first: int, at: str, step_kind: str, produced: list[dict[str, Any]]) -> int:
        """Return the index just past the recorded events that belong to the step starting at ``first``."""
        # task_cancelled and timer_fired may also begin the next step at the same instant, so inside a
        # step they are taken only as far as the replay produced them.
        budget: dict[tuple[str, str | None], int] = defaultdict(int)
        for record in produced:
            budget[(record["kind"], record["element_id"])] += 1
        index = first
        while index < len(self.events):
            event = self.events[index]
            kind = event["kind"]
            if event["at"] != at or kind not in OUTPUT_KINDS:
                break
            if kind == "task_completed" and not (step_kind == "complete" and index == first):
                break
            ambiguous = kind == "task_cancelled" or (kind == "timer_fired" and step_kind != "timers")
            if ambiguous:
                key = (kind, event.get("element_id"))
                if budget[key] <= 0:
                    break
                budget[key] -= 1
            index += 1
            if kind == "case_completed":
                break
        return index

    def _check(self, recorded: list[dict[str, Any]], produced: list[dict[str, Any]], last_seq: int) -> bool:
        mismatch = compare_step(recorded, produced)
        if mismatch is None:
            self._track(recorded, produced)
            return True
        expected, actual = mismatch.recorded, mismatch.produced
        if expected is None and actual is not None:
            self._diverge("unexpected_event", last_seq, msg(
                "After event {seq}, the replay shows that {actual}, which the trace does not record.",
                seq=last_seq, actual=describe(actual)), actual=summary(actual))
        elif expected is not None and actual is None:
            self._missing(expected)
        elif expected is None or actual is None:
            raise RuntimeError("compare_step reported a mismatch without an event")
        elif expected["kind"] == actual["kind"] == "task_completed" \
                and expected["element_id"] == actual["element_id"] \
                and expected["payload"].get("previous") != actual["payload"].get("previous"):
            self._diverge("data_mismatch", expected["seq"], msg(
                "Event {seq}: when step {step} was completed, the trace records that its fields held {recorded} "
                "before the submission, but in the replay they held {replayed}.", seq=expected["seq"],
                step=expected["element_id"], recorded=_shown(expected["payload"].get("previous")),
                replayed=_shown(actual["payload"].get("previous"))),
                expected=summary(expected), actual=summary(actual))
        else:
            self._diverge("event_mismatch", expected["seq"], msg(
                "Event {seq}: the trace records that {expected}; the replay instead shows that {actual}.",
                seq=expected["seq"], expected=describe(expected), actual=describe(actual)),
                expected=summary(expected), actual=summary(actual))
        return False

    def _track(self, recorded: list[dict[str, Any]], produced: list[dict[str, Any]]) -> None:
        """Pair recorded and replayed task ids of newly ready tasks, and note completions and ends."""
        replayed: dict[str | None, list[str]] = defaultdict(list)
        for record in produced:
            if record["kind"] == "task_ready":
                replayed[record["element_id"]].append(record["task_id"])
        for event in recorded:
            kind, task_id = event["kind"], event.get("task_id")
            if kind == "task_ready" and task_id and replayed[event["element_id"]]:
                self.replay_ids[task_id] = UUID(replayed[event["element_id"]].pop(0))
                self.ready_at[task_id] = event["at"]
            elif kind in ("task_completed", "task_cancelled") and task_id:
                self.assignees.pop(task_id, None)
            elif kind == "case_completed":
                self.status = "completed"
                self.end_element_id = event.get("element_id")

    def _missing(self, event: dict[str, Any]) -> None:
        self._diverge("missing_event", event["seq"], msg(
            "Event {seq}: the trace records that {expected}, but the replay did not produce this.",
            seq=event["seq"], expected=describe(event)), expected=summary(event))

    def _engine_error(self, event: dict[str, Any], exc: LiuhenError) -> None:
        self._diverge("engine_error", event["seq"], msg(
            "Event {seq}: the replay could not apply this {kind} event because the engine failed: {reason}",
            seq=event["seq"], kind=dynamic(event["kind"]), reason=exc.message), expected=summary(event))

    def _diverge(self, kind: str, seq: int | None, message: Message, expected: dict[str, Any] | None = None,
                 actual: dict[str, Any] | None = None) -> None:
        self.divergence = Divergence(kind, seq, message, expected, actual)

    # results

    def final_divergence(self, case: Any, pinned: int | None) -> Divergence | None:
        """Compare the state the whole trace leads to with the state stored on the case row."""
        seq = self.events[-1]["seq"]
        if case.definition_id != pinned:
            return Divergence("state_mismatch", seq, msg(
                "Case {case_id} is stored on definition {stored}, but its trace started it on "
                "definition {recorded} and records no move between versions.", case_id=case.id,
                stored=case.definition_id, recorded=pinned))
        if case.status != self.status:
            return Divergence("state_mismatch", seq, msg(
                "Case {case_id} is stored as {stored}, but its replayed trace leaves it {replayed}.",
                case_id=case.id, stored=dynamic(case.status), replayed=dynamic(self.status)))
        if self.status == "completed" and case.end_element_id != self.end_element_id:
            return Divergence("state_mismatch", seq, msg(
                "Case {case_id} is stored as ended at {stored}, but its replayed trace ends at {replayed}.",
                case_id=case.id, stored=case.end_element_id, replayed=self.end_element_id))

        replayed_data = jsonable(self.runtime.case_data())
        stored_data = case.data or {}
        for key in sorted(set(replayed_data) | set(stored_data)):
            stored, replayed = stored_data.get(key, _MISSING), replayed_data.get(key, _MISSING)
            if stored != replayed:
                return Divergence("data_mismatch", seq, msg(
                    "After the last event ({seq}), field {field} of the data stored with case {case_id} holds "
                    "{stored}, but the replay computes {replayed}.", seq=seq, field=key, case_id=case.id,
                    stored=_shown(stored), replayed=_shown(replayed)))

        if self.status == "running":
            stored_due, replayed_due = _as_utc(case.next_timer_at), self.runtime.next_timer_due()
            if stored_due != replayed_due:
                return Divergence("state_mismatch", seq, msg(
                    "Case {case_id} is stored with its next timer due at {stored}, but the replay computes "
                    "{replayed}.", case_id=case.id, stored=stored_due.isoformat() if stored_due else "-",
                    replayed=replayed_due.isoformat() if replayed_due else "-"))
        return None

    def state(self, seq: int) -> dict[str, Any]:
        """Return the case's position, data, timers and status after the step that contains ``seq``."""
        event = self.events[seq - 1]
        recorded_ids = {replay_id: recorded for recorded, replay_id in self.replay_ids.items()}
        order = {replay_id: index for index, replay_id in enumerate(self.replay_ids.values())}
        running = self.status == "running"
        open_tasks = []
        if running:
            for task in sorted(self.runtime.ready_human_tasks(), key=lambda t: order.get(t.id, len(order))):
                recorded = recorded_ids.get(task.id)
                open_tasks.append({
                    "task_id": recorded, "element_id": task.task_spec.bpmn_id, "name": task.task_spec.bpmn_name,
                    "lane": task.task_spec.lane, "assignee": self.assignees.get(recorded or ""),
                    "ready_at": self.ready_at.get(recorded or ""),
                })
        timers = [
            {"element_id": task.task_spec.bpmn_id, "name": task.task_spec.bpmn_name, "due": due.isoformat()}
            for task, due in (self.runtime.pending_timers() if running else [])
        ]
        return {
            "seq": seq,
            "through_seq": self.events[self.position - 1]["seq"],
            "at": event["at"],
            "status": self.status,
            "elapsed_seconds": (_time(event) - _time(self.events[0])).total_seconds(),
            "open_tasks": open_tasks,
            "timers": timers,
            "data": jsonable(self.runtime.case_data()),
        }


def replay_case(service: Liuhen, case_id: int, *, verify_trace: bool = True,
                check_definition_hash: bool = True) -> ReplayReport:
    """Replay case ``case_id`` from its trace and report the first divergence from the recorded events.

    ``verify_trace`` and ``check_definition_hash`` turn off the checks made before replaying, so that a
    replay can still show where an altered trace or flowchart leads.
    """
    record = _load(service, case_id)
    definition = record.definition
    report = ReplayReport(
        case_id=case_id,
        process_id=definition.process_id if definition else record.case.process_id,
        version=definition.version if definition else None,
        definition_id=definition.id if definition else None,
        content_hash=definition.content_hash if definition else None,
        events=len(record.events), checked=0, steps=0, divergence=None,
    )
    divergence, loaded = _prepare(record, verify_trace=verify_trace, check_definition_hash=check_definition_hash)
    if divergence is None and loaded is not None:
        replayer = _Replayer(record.events, *loaded)
        replayer.run()
        divergence = replayer.divergence or replayer.final_divergence(record.case, definition.id)
        report.checked, report.steps, report.interventions = replayer.position, replayer.steps, replayer.interventions
    report.divergence = divergence
    logger.info("case replayed", extra={"case_id": case_id, "replay_status": report.status,
                                         "divergence_seq": divergence.seq if divergence else None})
    return report


def state_at(service: Liuhen, case_id: int, seq: int) -> dict[str, Any]:
    """Return the state of case ``case_id`` just after trace event ``seq``, computed by replaying to it.

    Events of one step are written at one instant, so the state is the one after the whole step that
    contains ``seq``. ``through_seq`` names that step's last event. Raises ReplayDiverged when the
    trace or the definition fails its check, or the replay disagrees with the trace before that point.
    """
    record = _load(service, case_id)
    last = len(record.events)
    if not 1 <= seq <= last:
        raise InvalidInput(msg("Case {case_id} has events 1 to {last}; choose an event number in that range.",
                               case_id=case_id, last=last), seq=seq)
    divergence, loaded = _prepare(record, verify_trace=True, check_definition_hash=True)
    replayer = None
    if loaded is not None:
        replayer = _Replayer(record.events, *loaded)
        replayer.run(until_seq=seq)
        divergence = replayer.divergence
    if divergence is not None:
        raise ReplayDiverged(msg(
            "The state of case {case_id} after event {seq} cannot be computed because the replay does not "
            "match the record: {reason}", case_id=case_id, seq=seq, reason=divergence.message),
            case_id=case_id, seq=seq, divergence_seq=divergence.seq)
    if replayer is None:
        raise RuntimeError("the definition was neither loaded nor reported as diverging")

    definition = record.definition
    return {"case_id": case_id, "definition_id": definition.id, "process_id": definition.process_id,
            "version": definition.version, **replayer.state(seq)}
