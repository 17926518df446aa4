"""Stored form of a running case, and compaction of its task tree.

The stored JSON holds SpiffWorkflow's task tree without the process spec: the spec is rebuilt from
the case's pinned definition bytes (and cached), which halves a small case's state. Compaction drops
finished history that no unfinished task needs, because the trace already records that history and
SpiffWorkflow's task lookups stop at 1,000 levels of tree depth.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

STATE_FORMAT = 1
# Compact a workflow's task tree once some unfinished task is deeper than this many levels.
COMPACT_DEPTH = 64


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(  # type: ignore[override]
        self,
        dct: dict[str, Any],
        spec: BpmnProcessSpec | None = None,
        subprocess_specs: dict[str, BpmnProcessSpec] | None = None,
    ) -> BpmnWorkflow:
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class CaseStateSerializer:
    """Serialize a BpmnWorkflow to compact JSON bytes and back, with the spec supplied by the caller."""

    def __init__(self) -> None:
        config = dict(DEFAULT_CONFIG)
        config[BpmnWorkflow] = _SpeclessWorkflowConverter
        self._serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))

    def dumps(self, workflow: BpmnWorkflow) -> bytes:
        registry = self._serializer.registry
        registry._encoder_mode = True
        try:
            dct = registry.convert(workflow)
            dct["liuhen_state_format"] = STATE_FORMAT
            dct[self._serializer.VERSION_KEY] = self._serializer.VERSION
            return json.dumps(dct, separators=(",", ":"), cls=self._serializer._encoder_cls).encode()
        finally:
            registry._encoder_mode = False

    def loads(
        self,
        data: bytes,
        spec: BpmnProcessSpec,
        subprocess_specs: dict[str, BpmnProcessSpec],
    ) -> BpmnWorkflow:
        dct = json.loads(data)
        stored_format = dct.pop("liuhen_state_format", None)
        if stored_format != STATE_FORMAT:
            raise ValueError(f"case state format {stored_format!r} is not supported; expected {STATE_FORMAT}")
        self._serializer.migrate(dct)
        return self._serializer.registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)


def _depth(task: Task) -> int:
    depth = 0
    while task.parent is not None:
        task = task.parent
        depth += 1
    return depth


def _ancestors(task: Task) -> list[Task]:
    chain = []
    while task is not None:
        chain.append(task)
        task = task.parent
    return chain[::-1]


def _compact_tree(workflow: Any, top: BpmnWorkflow) -> int:
    """Re-attach the nearest finished ancestor of all unfinished tasks directly below the root.

    Returns how many tasks were removed. Joins and inclusive gateways only inspect tasks below that
    ancestor, so dropping the finished chain above it does not change what the workflow does next.
    """
    unfinished = [t for t in workflow.tasks.values() if not t.has_state(TaskState.FINISHED_MASK)]
    if not unfinished or max(_depth(t) for t in unfinished) <= COMPACT_DEPTH:
        return 0

    common = _ancestors(unfinished[0])
    for task in unfinished[1:]:
        chain = _ancestors(task)
        length = 0
        while length < min(len(common), len(chain)) and common[length] is chain[length]:
            length += 1
        common = common[:length]
    # Keep the parent of the deepest common ancestor so that every unfinished task, joins included,
    # still sees its own parent; cut only above it.
    if len(common) < 3:
        return 0
    keep = common[-2]
    root = workflow.task_tree
    if keep.parent is root or not keep.has_state(TaskState.FINISHED_MASK):
        return 0

    removed: list[UUID] = []
    kept_ids = {task.id for task in _subtree(keep)}
    for task_id in list(workflow.tasks):
        if task_id != root.id and task_id not in kept_ids:
            removed.append(task_id)
    for task_id in removed:
        workflow.tasks.pop(task_id)
        subprocess = top.subprocesses.pop(task_id, None)
        if subprocess is not None:
            _drop_subprocess(subprocess, top)
    root._children = [keep.id]
    keep._parent = root.id
    if workflow.last_task is not None and workflow.last_task.id in removed:
        workflow.last_task = keep
    return len(removed)


def _drop_subprocess(subprocess: Any, top: BpmnWorkflow) -> None:
    for task_id in list(subprocess.tasks):
        nested = top.subprocesses.pop(task_id, None)
        if nested is not None:
            _drop_subprocess(nested, top)


def _subtree(task: Task) -> list[Task]:
    found, pending = [], [task]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(current.children)
    return found


def compact(workflow: BpmnWorkflow) -> int:
    """Compact the top workflow and every subprocess; returns the number of tasks removed."""
    removed = _compact_tree(workflow, workflow)
    for subprocess in list(workflow.subprocesses.values()):
        removed += _compact_tree(subprocess, workflow)
    return removed
