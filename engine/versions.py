"""Changes between two versions of a process: nodes, flows, lanes, checkpoints, controls, forms, limits.

Each version is read into a snapshot with one section per kind of thing, keyed by a stable id (the
BPMN element id, the checkpoint or control id, the node and field name). Two snapshots compare key
by key, so a renamed task is a change of its name, while a task given a new id is a removal and an
addition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree

from engine.definitions import ParsedDefinition
from engine.errors import InvalidInput
from engine.extension import BPMN_NAMESPACE
from engine.i18n import msg
from engine.service import Liuhen

SECTIONS = ("nodes", "flows", "lanes", "checkpoints", "controls", "form_fields", "time_limits")
CHANGE_KINDS = ("added", "removed", "changed")
# Keys of the process-wide limits in the time_limits section; step limits are keyed by element id.
PROCESS_LIMITS = ("statutory_time_limit", "promised_time_limit")

_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


@dataclass(frozen=True)
class Entry:
    """One item of a snapshot section: the flow node it belongs to, a display name and its compared values."""

    element_id: str | None
    name: str | None
    values: dict[str, Any]


Snapshot = dict[str, dict[str, Entry]]


@dataclass(frozen=True)
class Change:
    """An item added, removed or changed; ``fields`` names the values that differ for a change."""

    section: str
    kind: str
    key: str
    element_id: str | None
    name: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "change": self.kind, "key": self.key, "element_id": self.element_id,
                "name": self.name, "fields": list(self.fields), "before": self.before, "after": self.after}


@dataclass
class VersionDiff:
    """The changes from one version of a process to another, with both versions' deployment facts."""

    process_id: str
    old: dict[str, Any]
    new: dict[str, Any]
    changes: list[Change] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, int]]:
        """Count the changes per section and kind, with zeros."""
        counts = {section: dict.fromkeys(CHANGE_KINDS, 0) for section in SECTIONS}
        for change in self.changes:
            counts[change.section][change.kind] += 1
        return counts

    def element_changes(self) -> dict[str, list[Change]]:
        """Group the changes by the flow node they concern; flow changes are grouped by flow id."""
        grouped: dict[str, list[Change]] = {}
        for change in self.changes:
            target = change.key if change.section in ("nodes", "flows") else change.element_id
            if target:
                grouped.setdefault(target, []).append(change)
        return grouped

    def to_json(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "from": _version_json(self.old), "to": _version_json(self.new),
                "identical": not self.changes, "summary": self.summary(),
                "changes": [change.to_json() for change in self.changes]}


def diff_versions(service: Liuhen, process_id: str, old_version: int, new_version: int) -> VersionDiff:
    """Compare two deployed versions of ``process_id``; raise NotFound for a version that does not exist."""
    if old_version == new_version:
        raise InvalidInput(msg("Versions {old} and {new} are the same version; name two different versions of "
                               "{process_id} to compare.", old=old_version, new=new_version, process_id=process_id))
    old = service.get_definition(process_id, old_version)
    new = service.get_definition(process_id, new_version)
    changes = compare_snapshots(version_snapshot(service, old), version_snapshot(service, new))
    return VersionDiff(process_id, old, new, changes)


def version_snapshot(service: Liuhen, definition: dict[str, Any]) -> Snapshot:
    """Read one deployed version, as ``Liuhen.get_definition`` returns it, into a snapshot."""
    parsed, _process = service.parsed_definition(definition["id"])
    return snapshot(parsed, definition["process_id"], definition.get("power_item"))


def snapshot(parsed: ParsedDefinition, process_id: str, power_item: dict[str, Any] | None) -> Snapshot:
    """Read the nodes, flows, lanes, checkpoints, controls, form fields and limits of one process."""
    root = etree.fromstring(parsed.content, _XML_PARSER)
    process = next(element for element in root.iter(f"{{{BPMN_NAMESPACE}}}process")
                   if element.get("id") == process_id)
    member_ids = {element.get("id") for element in process.iter() if isinstance(element.tag, str)}
    nodes = {node_id: node for node_id, node in parsed.nodes.items() if node_id in member_ids}

    sections: Snapshot = {section: {} for section in SECTIONS}
    for node_id, node in nodes.items():
        sections["nodes"][node_id] = Entry(node_id, node.name, {"kind": node.kind, "name": node.name,
                                                                "lane": node.lane})
        extensions = node.extensions
        for checkpoint in extensions.get("risk_checkpoints", []):
            values = {key: value for key, value in checkpoint.items() if key not in ("id", "controls")}
            sections["checkpoints"][checkpoint["id"]] = Entry(node_id, node.name, {"node": node_id, **values})
            for control in checkpoint.get("controls", []):
                control_values = {key: value for key, value in control.items() if key != "id"}
                sections["controls"][control["id"]] = Entry(node_id, node.name, {
                    "node": node_id, "checkpoint": checkpoint["id"], **control_values})
        for form_field in extensions.get("form_fields", []):
            sections["form_fields"][f"{node_id}.{form_field['name']}"] = Entry(node_id, node.name, {
                "node": node_id, **form_field})
        if extensions.get("time_limit"):
            sections["time_limits"][node_id] = Entry(node_id, node.name, dict(extensions["time_limit"]))
    for key in PROCESS_LIMITS:
        limit = (power_item or {}).get(key)
        if limit:
            sections["time_limits"][key] = Entry(None, None, dict(limit))

    defaults = {element.get("default") for element in process.iter() if element.get("default")}
    for flow in process.iter(f"{{{BPMN_NAMESPACE}}}sequenceFlow"):
        flow_id = flow.get("id") or ""
        condition = flow.find(f"{{{BPMN_NAMESPACE}}}conditionExpression")
        sections["flows"][flow_id] = Entry(None, flow.get("name"), {
            "source": flow.get("sourceRef"), "target": flow.get("targetRef"), "name": flow.get("name"),
            "condition": (condition.text or "").strip() or None if condition is not None else None,
            "default": flow_id in defaults})
    for lane in process.iter(f"{{{BPMN_NAMESPACE}}}lane"):
        references = sorted((reference.text or "").strip() for reference in lane.findall(
            f"{{{BPMN_NAMESPACE}}}flowNodeRef") if (reference.text or "").strip())
        sections["lanes"][lane.get("id") or ""] = Entry(None, lane.get("name"), {"name": lane.get("name"),
                                                                                 "nodes": references})
    return sections


def compare_snapshots(old: Snapshot, new: Snapshot) -> list[Change]:
    """List the changes from ``old`` to ``new``: per section, those in ``new`` in its order, then removals."""
    changes = []
    for section in SECTIONS:
        before, after = old.get(section, {}), new.get(section, {})
        for key, entry in after.items():
            previous = before.get(key)
            if previous is None:
                changes.append(Change(section, "added", key, entry.element_id, entry.name, None, entry.values))
                continue
            fields = tuple(name for name in dict.fromkeys([*previous.values, *entry.values])
                           if previous.values.get(name) != entry.values.get(name))
            if fields:
                changes.append(Change(section, "changed", key, entry.element_id, entry.name or previous.name,
                                      previous.values, entry.values, fields))
        for key, entry in before.items():
            if key not in after:
                changes.append(Change(section, "removed", key, entry.element_id, entry.name, entry.values, None))
    return changes


def _version_json(definition: dict[str, Any]) -> dict[str, Any]:
    deployed_at = definition["deployed_at"]
    return {"version": definition["version"], "definition_id": definition["id"], "name": definition["name"],
            "deployed_by": definition["deployed_by"],
            "deployed_at": deployed_at.isoformat() if isinstance(deployed_at, datetime) else deployed_at,
            "content_hash": definition["content_hash"]}
