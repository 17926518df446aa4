"""Stored form of a running case, and compaction of its task tree.

The stored JSON contains SpiffWorkflow's task tree without the process spec: the spec is rebuilt from
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
COMPACT_DEPTH = 24


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
        # json.dumps with options builds a new encoder on every call, so one is built here and reused.
        self._encoder = self._serializer._encoder_cls(separators=(",", ":"))

    def dumps(self, workflow: BpmnWorkflow) -> bytes:
        registry = self._serializer.registry
        registry._encoder_mode = True
        try:
            dct = registry.convert(workflow)
            dct["liuhen_state_format"] = STATE_FORMAT
            dct[self._serializer.VERSION_KEY] = self._serializer.VERSION
            return self._encoder.encode(dct).encode()
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


def _has_unfinished(task: Task) -> bool:
    pending = [task]
    while pending:
        current = pending.pop()
        if not current.has_state(TaskState.FINISHED_MASK):
            return True
        pending.extend(current.children)
    return False


def _finished_trunk(root: Task) -> list[Task]:
    """Return the chain of finished tasks from the root down to where unfinished work branches or begins.

    The last task of the chain is the nearest common ancestor of every unfinished task (or the root when
    the tree contains no unfinished task).
    """
    trunk = [root]
    node = root
    while node.has_state(TaskState.FINISHED_MASK):
        live = [child for child in node.children if _has_unfinished(child)]
        if len(live) != 1:
            break
        node = live[0]
        trunk.append(node)
    return trunk


def _compact_tree(workflow: Any, top: BpmnWorkflow) -> int:
    """Re-attach the finished ancestor just above the unfinished work directly below the root.

    Returns how many tasks were removed. Joins and inclusive gateways only inspect tasks below that
    ancestor, and every unfinished task keeps its own parent, so dropping the finished chain above it
    does not change what the workflow does next.
    """
    root = workflow.task_tree
    trunk = _finished_trunk(root)
    if len(trunk) <= COMPACT_DEPTH:
        return 0
    # trunk[-1] is the common ancestor of the unfinished work; keep its parent as well so that a join
    # or gateway at the top of the unfinished work still finds its own input.
    keep = trunk[-2]
    removed: list[UUID] = []
    for index, task in enumerate(trunk[1:-2], start=1):
        removed.append(task.id)
        following = trunk[index + 1]
        for child in task.children:
            if child is not following:
                removed.extend(t.id for t in _subtree(child))
    for child in root.children:
        if child is not trunk[1]:
            removed.extend(t.id for t in _subtree(child))

    for task_id in removed:
        workflow.tasks.pop(task_id, None)
        subprocess = top.subprocesses.pop(task_id, None)
        if subprocess is not None:
            _drop_subprocess(subprocess, top)
    root._children = [keep.id]
    keep._parent = root.id
    if workflow.last_task is not None and workflow.last_task.id in set(removed):
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
