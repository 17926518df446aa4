"""Execution of one case in memory: start, complete a task, fire timers, cancel.

Each operation returns the trace events it caused, found by comparing task states before and after,
so that the caller can store the new state and its events in one transaction. Nothing here touches
the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.exclusive_gateway import ExclusiveGateway
from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.clock import Clock, use_clock
from engine.definitions import ParsedDefinition, ParsedProcess
from engine.errors import CaseError, ExpressionError
from engine.expressions import make_script_engine
from engine.i18n import msg
from engine.parser import deep_recursion, node_extensions
from engine.state import compact

_script_engine = make_script_engine()
logger = logging.getLogger(__name__)


@dataclass
class StepEvent:
    """One thing that happened to a case, before it is stored in the trace."""

    kind: str
    element_id: str | None = None
    task_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def _all_tasks(workflow: BpmnWorkflow) -> list[Task]:
    tasks = list(workflow.tasks.values())
    for subprocess in workflow.subprocesses.values():
        tasks.extend(subprocess.tasks.values())
    return tasks


def _snapshot(workflow: BpmnWorkflow) -> dict[UUID, int]:
    return {task.id: task.state for task in _all_tasks(workflow)}


def is_human(task: Task) -> bool:
    return bool(getattr(task.task_spec, "manual", False)) and task.task_spec.bpmn_id is not None


def _timer_due(task: Task) -> datetime | None:
    value = task._get_internal_data("event_value")
    if isinstance(value, dict):
        value = value.get("next") if value.get("cycles") != 0 else None
    if not isinstance(value, str):
        return None
    try:
        parsed = TimerEventDefinition.parse_time_or_duration(value)
    except Exception:  # noqa: BLE001 - an unparsable value simply has no due time
        return None
    if isinstance(parsed, datetime):
        return parsed.astimezone(UTC)
    return None


class CaseRuntime:
    """A case's BpmnWorkflow together with liuhen's index of its definition."""

    def __init__(self, workflow: BpmnWorkflow, definition: ParsedDefinition, clock: Clock) -> None:
        self.workflow = workflow
        self.definition = definition
        self.clock = clock
        workflow.script_engine = _script_engine

    @classmethod
    def start(
        cls, process: ParsedProcess, definition: ParsedDefinition, clock: Clock, data: dict[str, Any]
    ) -> tuple[CaseRuntime, list[StepEvent]]:
        with deep_recursion():
            # SpiffWorkflow predicts the whole flow recursively when it creates the workflow.
            workflow = BpmnWorkflow(process.spec, process.subprocess_specs, script_engine=_script_engine)
        runtime = cls(workflow, definition, clock)
        if data:
            for task in workflow.get_tasks(state=TaskState.READY):
                task.data.update(data)
        events = runtime._advance(lambda: None)
        return runtime, events

    # queries

    def ready_human_tasks(self) -> list[Task]:
        return [t for t in _all_tasks(self.workflow) if t.state == TaskState.READY and is_human(t)]

    def task(self, task_id: UUID) -> Task | None:
        try:
            return self.workflow.get_task_from_id(task_id)
        except Exception:  # noqa: BLE001 - SpiffWorkflow raises a bare TaskNotFoundException
            return None

    def reached_end(self) -> bool:
        """True when the top-level process finished through an end event, not just ran out of tasks."""
        if not self.workflow.is_completed():
            return False
        return any(
            isinstance(t.task_spec, EndEvent) and t.state == TaskState.COMPLETED
            for t in self.workflow.tasks.values()
        )

    def next_timer_due(self) -> datetime | None:
        due = []
        for task in self.workflow.event_manager.tasks.values():
            if isinstance(task.task_spec.event_definition, TimerEventDefinition):
                moment = _timer_due(task)
                if moment is not None:
                    due.append(moment)
        return min(due) if due else None

    def pending_timers(self) -> list[tuple[Task, datetime]]:
        """List the timer events waiting to fire with their due times, soonest first."""
        pending = []
        for task in self.workflow.event_manager.tasks.values():
            if isinstance(task.task_spec.event_definition, TimerEventDefinition):
                moment = _timer_due(task)
                if moment is not None:
                    pending.append((task, moment))
        return sorted(pending, key=lambda item: item[1])

    def case_data(self) -> dict[str, Any]:
        """Return the data the next step reads: merged from unfinished tasks, else from the last finished one."""
        tasks = [t for t in self.workflow.tasks.values() if t.state in (TaskState.READY, TaskState.WAITING,
                                                                          TaskState.STARTED)]
        if not tasks:
            return dict(self.workflow.data or (self.workflow.last_task.data if self.workflow.last_task else {}))
        merged: dict[str, Any] = {}
        for task in sorted(tasks, key=lambda t: t.last_state_change):
            merged.update(task.data)
        return merged

    # operations

    def complete(self, task: Task, data: dict[str, Any], actor: str) -> list[StepEvent]:
        previous = {key: task.data[key] for key in data if key in task.data}
        task.data.update(data)

        def run() -> None:
            task.run()

        return self._advance(run, completed={task.id: {"data": data, "previous": previous, "actor": actor}})

    def refresh(self) -> list[StepEvent]:
        """Run engine steps after the workflow was changed from outside (a version move)."""
        return self._advance(lambda: None)

    def fire_timers(self) -> list[StepEvent]:
        return self._advance(self.workflow.refresh_timers)

    def cancel(self) -> list[StepEvent]:
        before = _snapshot(self.workflow)
        with use_clock(self.clock):
            self.workflow.cancel()
        return [
            StepEvent("task_cancelled", t.task_spec.bpmn_id, str(t.id))
            for t in _all_tasks(self.workflow)
            if before.get(t.id) in (TaskState.READY, TaskState.WAITING, TaskState.STARTED) and is_human(t)
        ]

    def _advance(self, operation: Any, completed: dict[UUID, dict[str, Any]] | None = None) -> list[StepEvent]:
        before = _snapshot(self.workflow)
        cycles = self._cycle_values()
        try:
            with use_clock(self.clock), deep_recursion():
                operation()
                self.workflow.do_engine_steps()
                # Read the events before compaction drops the finished tasks they come from.
                events = self._cycle_firings(cycles) + self._events_since(before, completed or {})
                compact(self.workflow)
        except ExpressionError as exc:
            raise CaseError(exc.message, element_id=exc.element_id, expression=exc.expression) from exc
        except WorkflowTaskException as exc:
            raise self._translate(exc) from exc
        except SpiffWorkflowException as exc:
            raise CaseError(msg("The engine could not advance the case: {reason}.", reason=str(exc))) from exc
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            # SpiffWorkflow lets some data problems escape as plain Python errors, for example a TypeError
            # when a multi-instance task's input collection is missing. The case keeps its committed state.
            logger.warning("engine step failed: %r", exc)
            raise CaseError(msg("The engine could not advance the case: {reason}.",
                                reason=f"{type(exc).__name__}: {exc}")) from exc
        return events

    def _cycle_values(self) -> dict[UUID, Any]:
        """Next due times of waiting cycle timers, which fire without leaving their WAITING state."""
        values = {}
        for task in self.workflow.event_manager.tasks.values():
            value = task._get_internal_data("event_value")
            if isinstance(value, dict):
                values[task.id] = dict(value)
        return values

    def _cycle_firings(self, before: dict[UUID, Any]) -> list[StepEvent]:
        events = []
        for task_id, value in before.items():
            task = self.task(task_id)
            if task is None:
                continue
            current = task._get_internal_data("event_value")
            fired = current is None or not isinstance(current, dict) or current.get("cycles") != value.get("cycles")
            if fired and value.get("cycles") != 0:
                events.append(StepEvent("timer_fired", task.task_spec.bpmn_id, str(task.id), {
                    "name": task.task_spec.bpmn_name, "due": value.get("next"), "cycle": True,
                }))
        return events

    def _translate(self, exc: WorkflowTaskException) -> CaseError:
        element_id = exc.task_spec.bpmn_id if getattr(exc, "task_spec", None) is not None else None
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ExpressionError):
            return CaseError(cause.message, element_id=element_id, expression=cause.expression)
        if "No conditions satisfied" in str(exc) or "No default" in str(exc):
            return CaseError(
                msg("No outgoing flow of gateway {element_id} matches the case data and it has no default "
                    "flow; correct the submitted data or add a default flow to the flowchart.",
                    element_id=element_id),
                element_id=element_id,
            )
        return CaseError(msg("Step {element_id} failed: {reason}.", element_id=element_id, reason=str(exc)),
                         element_id=element_id)

    def _events_since(self, before: dict[UUID, int], completed: dict[UUID, dict[str, Any]]) -> list[StepEvent]:
        changed = [t for t in _all_tasks(self.workflow) if before.get(t.id) != t.state]
        changed.sort(key=lambda t: (t.last_state_change, t.task_spec.bpmn_id or ""))
        events: list[StepEvent] = []
        for task in changed:
            spec = task.task_spec
            element_id = spec.bpmn_id
            if element_id is None:
                continue
            if task.state == TaskState.COMPLETED:
                events.extend(self._completion_events(task, completed.get(task.id)))
            elif task.state == TaskState.READY and is_human(task):
                events.append(StepEvent("task_ready", element_id, str(task.id), {
                    "name": spec.bpmn_name,
                    "lane": spec.lane,
                }))
            elif task.state == TaskState.CANCELLED and before.get(task.id) in (TaskState.READY, TaskState.WAITING) \
                    and is_human(task):
                events.append(StepEvent("task_cancelled", element_id, str(task.id), {"reason": "flow"}))
        return events

    def _completion_events(self, task: Task, submitted: dict[str, Any] | None) -> list[StepEvent]:
        spec = task.task_spec
        element_id = spec.bpmn_id
        if submitted is not None:
            return [StepEvent("task_completed", element_id, str(task.id), {
                "name": spec.bpmn_name,
                "data": submitted["data"],
                "previous": submitted["previous"],
            })]
        if isinstance(spec, (ExclusiveGateway, InclusiveGateway)) or len(spec.outputs) > 1 and \
                type(spec).__name__.endswith("Gateway"):
            return [StepEvent("gateway_decision", element_id, str(task.id), {
                "name": spec.bpmn_name,
                "taken": self._taken_flows(task),
            })]
        if isinstance(spec, CatchingEvent) and isinstance(spec.event_definition, TimerEventDefinition):
            return [StepEvent("timer_fired", element_id, str(task.id), {
                "name": spec.bpmn_name,
                "due": task._get_internal_data("event_value"),
            })]
        if isinstance(spec, EndEvent):
            return [StepEvent("end_event_reached", element_id, str(task.id), {"name": spec.bpmn_name})]
        return []

    def _taken_flows(self, task: Task) -> list[dict[str, Any]]:
        taken = []
        for child in task.children:
            if child.has_state(TaskState.PREDICTED_MASK):
                continue
            target = child.task_spec.bpmn_id
            flow = self.definition.flows.get((task.task_spec.bpmn_id, target), {})
            taken.append({"flow_id": flow.get("flow_id"), "name": flow.get("name"), "target": target,
                          "condition": flow.get("condition")})
        return taken

    def form_fields(self, task: Task) -> list[dict[str, Any]]:
        return list(node_extensions(task.task_spec).get("form_fields", []))
