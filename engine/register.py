"""The risk register (风险台账): one row per risk checkpoint of the deployed flowcharts.

Rows come from the ``liuhen:riskCheckpoint`` elements of each deployed version, and each row counts
the risk events and administrative interventions the trace has recorded so far at the checkpoint's
step. ``engine.register_formats`` writes the rows as an Excel workbook, CSV or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from engine.db import definitions, trace_events
from engine.errors import NotFound
from engine.extension import BPMN_NAMESPACE, RISK_CATEGORIES, RISK_LEVELS
from engine.i18n import Message, msg
from engine.service import Liuhen
from engine.users import Actor, require_role

# Trace event kinds counted as "events so far" at a step. The first two are risk events (a control
# that failed or was overridden at the step). The others are administrative interventions.
RISK_EVENT_KINDS = ("control_failed", "control_overridden")
INTERVENTION_KINDS = ("step_skipped", "task_reassigned", "data_edited")
COUNTED_EVENT_KINDS = RISK_EVENT_KINDS + INTERVENTION_KINDS

LEVEL_LABELS: dict[str, Message] = {"high": msg("High"), "medium": msg("Medium"), "low": msg("Low")}
CATEGORY_LABELS: dict[str, Message] = {
    "power_operation": msg("Power-operation risk"),
    "institutional": msg("Institutional risk"),
    "external_environment": msg("External-environment risk"),
}

# Stored files passed the upload checks, which reject DOCTYPE and entity declarations, once already.
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass
class RegisterRow:
    """One risk checkpoint of one deployed version, with the events recorded at its step."""

    number: int
    checkpoint_id: str
    process_id: str
    definition_id: int
    version: int
    power_item_name: str
    power_item_code: str | None
    step_name: str
    element_id: str
    lane: str | None
    handling_body: str | None
    category: str
    description: str
    manifestation: str | None
    level: str
    control_measures: list[str]
    responsible_post: str | None
    supervising_leader: str | None
    monitoring_indicator: Message
    event_counts: dict[str, int] = field(default_factory=dict)

    @property
    def unit(self) -> str | None:
        """The 单位/科室 column: the power item's handling body, or the step's lane when there is none."""
        return self.handling_body or self.lane

    @property
    def events(self) -> int:
        return sum(self.event_counts.values())

    def numbered_measures(self) -> str:
        return "\n".join(f"{index}. {measure}" for index, measure in enumerate(self.control_measures, start=1))


@dataclass
class RiskRegister:
    """The rows of one register export and the selection they came from."""

    rows: list[RegisterRow]
    generated_at: datetime
    all_versions: bool
    process_id: str | None

    def summary(self) -> dict[str, dict[str, int]]:
        """Count the rows per risk category and level, with a zero for each combination that has no row."""
        counts = {category: dict.fromkeys(RISK_LEVELS, 0) for category in RISK_CATEGORIES}
        for row in self.rows:
            counts[row.category][row.level] += 1
        return counts


def build_register(service: Liuhen, actor: Actor, *, process_id: str | None = None,
                   all_versions: bool = False) -> RiskRegister:
    """Collect the register rows of the newest version of every process, or of all versions.

    Rows are sorted by power item code, process id, version and the order of the steps in the BPMN
    file. Event counts are per version: with the newest version only, events of cases that ran on an
    older version appear only in an ``all_versions`` register. Raises NotFound when ``process_id``
    names no deployed process, and Forbidden unless the actor is an auditor, designer or administrator.
    """
    require_role(actor, "auditor", "designer", "admin")

    # One snapshot, so that the versions and the event counts agree with each other.
    with service.db.snapshot() as conn:
        versions = _deployed_versions(conn, process_id, all_versions)
        counts = _event_counts(conn, [version.id for version in versions])

    rows: list[RegisterRow] = []
    for version in sorted(versions, key=_sort_key):
        rows.extend(_version_rows(service, version, counts, first_number=len(rows) + 1))
    return RiskRegister(rows=rows, generated_at=service.now(), all_versions=all_versions, process_id=process_id)


def _deployed_versions(conn: Connection, process_id: str | None, all_versions: bool) -> list[Any]:
    query = select(definitions.c.id, definitions.c.process_id, definitions.c.version, definitions.c.name,
                   definitions.c.power_item)
    if process_id is not None:
        query = query.where(definitions.c.process_id == process_id)
    if not all_versions:
        newest = (select(definitions.c.process_id, func.max(definitions.c.version).label("version"))
                  .group_by(definitions.c.process_id).subquery())
        query = query.join(newest, (newest.c.process_id == definitions.c.process_id)
                           & (newest.c.version == definitions.c.version))
    rows = list(conn.execute(query))
    if process_id is not None and not rows:
        raise NotFound(msg("No process {process_id} is deployed; deploy its BPMN file first.", process_id=process_id))
    return rows


def _event_counts(conn: Connection, definition_ids: list[int]) -> dict[tuple[int, str], dict[str, int]]:
    """Count the events of COUNTED_EVENT_KINDS per (definition id, element id) in one grouped query."""
    if not definition_ids:
        return {}
    # NOTE: edit_case_data records data_edited without an element id, so such events belong to no step
    # and are not counted in any row.
    query = (select(trace_events.c.definition_id, trace_events.c.element_id, trace_events.c.kind,
                    func.count().label("events"))
             .where(trace_events.c.kind.in_(COUNTED_EVENT_KINDS),
                    trace_events.c.definition_id.in_(definition_ids),
                    trace_events.c.element_id.is_not(None))
             .group_by(trace_events.c.definition_id, trace_events.c.element_id, trace_events.c.kind))
    counts: dict[tuple[int, str], dict[str, int]] = {}
    for row in conn.execute(query):
        counts.setdefault((row.definition_id, row.element_id), {})[row.kind] = row.events
    return counts


def _sort_key(version: Any) -> tuple[bool, str, str, int]:
    code = (version.power_item or {}).get("code")
    # Processes without a power item come after those with one.
    return (code is None, code or "", version.process_id, version.version)


def _version_rows(service: Liuhen, version: Any, counts: dict[tuple[int, str], dict[str, int]],
                  first_number: int) -> list[RegisterRow]:
    parsed, _process = service.parsed_definition(version.id)
    power_item = version.power_item or {}
    rows: list[RegisterRow] = []
    for element_id in _steps_in_file_order(parsed.content, version.process_id):
        node = parsed.nodes.get(element_id)
        if node is None:
            continue
        for checkpoint in node.extensions.get("risk_checkpoints", []):
            rows.append(RegisterRow(
                number=first_number + len(rows),
                checkpoint_id=checkpoint["id"],
                process_id=version.process_id,
                definition_id=version.id,
                version=version.version,
                power_item_name=power_item.get("name") or version.name,
                power_item_code=power_item.get("code"),
                step_name=node.name or element_id,
                element_id=element_id,
                lane=node.lane,
                handling_body=power_item.get("handling_body"),
                category=checkpoint["category"],
                description=checkpoint["description"],
                manifestation=checkpoint.get("manifestation"),
                level=checkpoint["level"],
                control_measures=list(checkpoint["control_measures"]),
                responsible_post=checkpoint.get("responsible_post"),
                supervising_leader=checkpoint.get("supervising_leader"),
                monitoring_indicator=monitoring_indicator(node.extensions.get("time_limit")),
                event_counts=dict(counts.get((version.id, element_id), {})),
            ))
    return rows


def _steps_in_file_order(content: bytes, process_id: str) -> list[str]:
    """List the ids of the elements of a process, in the order they appear in the BPMN file.

    The elements of embedded subprocesses and of processes that a call activity names, in the same
    file, belong to the calling process too.
    """
    root = etree.fromstring(content, _XML_PARSER)
    processes = {process.get("id"): process for process in root.iter(f"{{{BPMN_NAMESPACE}}}process")}
    owned: set[str] = set()
    pending, visited = [process_id], set()
    while pending:
        current = pending.pop()
        if current in visited or current not in processes:
            continue
        visited.add(current)
        for element in processes[current].iter(etree.Element):
            if element.get("id") is not None:
                owned.add(element.get("id"))
            if element.tag == f"{{{BPMN_NAMESPACE}}}callActivity" and element.get("calledElement"):
                pending.append(element.get("calledElement"))
    return [element.get("id") for element in root.iter(etree.Element) if element.get("id") in owned]


def monitoring_indicator(time_limit: dict[str, Any] | None) -> Message:
    """Derive the monitoring indicator (监测指标) of a step from its time limit.

    The BPMN extension has no element for an indicator, so every checkpoint of a step gets the same
    one: overruns of the step's time limit where it has one, and always the risk events and
    administrative interventions that the register counts.
    """
    if time_limit is None:
        return msg("Risk events and administrative interventions at this step")
    amount = time_limit["amount"]
    if time_limit["unit"] == "working_day":
        return msg("Times this step ran past its limit of {amount} working days; risk events and "
                   "administrative interventions at this step", amount=amount)
    if time_limit["unit"] == "month":
        return msg("Times this step ran past its limit of {amount} months; risk events and administrative "
                   "interventions at this step", amount=amount)
    return msg("Times this step ran past its limit of {amount} days; risk events and administrative "
               "interventions at this step", amount=amount)
