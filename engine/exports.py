"""Export case traces as event logs for process-mining tools: XES (IEEE 1849-2016), CSV and JSON.

Every event of a case's trace becomes one log event, in trace order, so an export contains exactly
the events that ``liuhen verify`` checks. Work-item events map to the standard XES lifecycle
model (``LIFECYCLE``), and ``concept:instance`` is the task id, so tools can pair the transitions
of one work item. The writers are generators of text chunks. A file export and an HTTP response
consume them as they come, so only one case's events and one batch of database rows are in
memory at a time.

Times are written in UTC with an explicit ``+00:00`` offset.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import select

from engine.db import cases, definitions, trace_events
from engine.errors import InvalidInput
from engine.i18n import msg
from engine.service import Liuhen

logger = logging.getLogger(__name__)

FORMATS = ("xes", "csv", "json")
MEDIA_TYPES = {"xes": "application/xml", "csv": "text/csv; charset=utf-8", "json": "application/json"}
CASE_STATUSES = ("running", "completed", "cancelled")
CSV_COLUMNS = ("case_id", "activity", "timestamp", "lifecycle", "resource", "group", "process_id", "version",
               "element_id", "kind", "seq", "hash")

# Trace event kind -> lifecycle:transition of the XES standard lifecycle model. liuhen has no
# separate "start", because a task goes from assigned straight to completed. A released task goes
# back to its post's pool, and "reassign" is the standard transition nearest to that.
LIFECYCLE = {
    "case_started": "start",
    "task_ready": "schedule",
    "task_claimed": "assign",
    "task_released": "reassign",
    "task_reassigned": "reassign",
    "step_skipped": "manualskip",
    "task_completed": "complete",
    "task_cancelled": "withdraw",
    "gateway_decision": "complete",
    "timer_fired": "complete",
    "end_event_reached": "complete",
    "case_completed": "complete",
    "case_cancelled": "pi_abort",
    "data_edited": "unknown",
    "case_migrated": "unknown",
    # Supervision and control events record checks around the work, not a transition of a work item.
    "clock_started": "unknown",
    "clock_paused": "unknown",
    "clock_resumed": "unknown",
    "clock_restarted": "unknown",
    "card_raised": "unknown",
    "supervision_notice_opened": "unknown",
    "supervision_notice_answered": "unknown",
    "review_recorded": "unknown",
    "control_evaluated": "unknown",
    "correction_notice": "unknown",
    "override_requested": "unknown",
    "override_decided": "unknown",
    "risk_event": "unknown",
}
# Kinds that only the system stream holds; cases never export them.
SYSTEM_KINDS = frozenset({"definition_deployed", "definition_published", "definition_withdrawn", "calendar_day_set",
                          "checkpoint_reviewed", "user_created", "user_changed", "user_deactivated",
                          "user_reactivated", "signing_key_rotated"})
# These kinds are about the whole process instance, so their activity is the process name.
_PROCESS_KINDS = frozenset({"case_started", "case_completed", "case_cancelled"})

EXTENSIONS = (
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Identity", "identity", "http://www.xes-standard.org/identity.xesext"),
)
_BATCH_ROWS = 1000


@dataclass(frozen=True)
class ExportFilter:
    """The selection of cases an export contains. ``since`` is inclusive and ``until`` exclusive, both
    compared with the case's start time."""

    process_id: str | None = None
    power_item_code: str | None = None
    version: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None

    @classmethod
    def parse(cls, *, process: str | None = None, power_item: str | None = None, version: str | None = None,
              since: str | None = None, until: str | None = None, status: str | None = None) -> ExportFilter:
        """Build a filter from the text of command-line options or query parameters.

        A date (YYYY-MM-DD) is a whole UTC day, so ``until`` includes the day it names. A date and
        time is one moment, read as UTC when it has no offset. Raises InvalidInput naming the value.
        """
        start = _parse_moment("since", since, end_of_day=False)
        end = _parse_moment("until", until, end_of_day=True)
        if start is not None and end is not None and start >= end:
            raise InvalidInput(msg("Filter since={since} is not before until={until}, so no case can match; "
                                   "correct the period.", since=since, until=until))
        if status is not None and status not in CASE_STATUSES:
            raise InvalidInput(msg("Filter status={value!r} is not a case status; use one of: {allowed}.",
                                   value=status, allowed=", ".join(CASE_STATUSES)))
        return cls(process_id=process or None, power_item_code=power_item or None, version=_parse_version(version),
                   since=start, until=end, status=status)

    def describe(self) -> str:
        parts = [f"process={self.process_id}" if self.process_id else "",
                 f"power_item={self.power_item_code}" if self.power_item_code else "",
                 f"version={self.version}" if self.version is not None else "",
                 f"since={_iso(self.since)}" if self.since else "",
                 f"until={_iso(self.until)} (exclusive)" if self.until else "",
                 f"status={self.status}" if self.status else ""]
        return " ".join(part for part in parts if part) or "all cases"


def _parse_version(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not re.fullmatch(r"[0-9]+", text.strip()) or int(text) < 1:
        raise InvalidInput(msg("Filter version={value!r} is not a version number; use a whole number of 1 or "
                               "more.", value=text))
    return int(text)


def _parse_moment(name: str, text: str | None, *, end_of_day: bool) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            day = date.fromisoformat(text.strip())
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(msg("Filter {name}={value!r} is not a date; write a UTC day as YYYY-MM-DD, or a "
                               "moment as ISO 8601 such as 2025-03-01T08:00:00+08:00.", name=name, value=text)) \
            from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # The bound is exclusive, and stored times have microsecond precision.
    return moment + timedelta(microseconds=1) if end_of_day else moment


@dataclass
class LogEvent:
    seq: int
    kind: str
    activity: str
    timestamp: datetime
    lifecycle: str
    resource: str
    group: str | None
    element_id: str | None
    task_id: str | None
    version: int | None
    hash: str
    payload: dict[str, Any]


@dataclass
class CaseLog:
    case_id: int
    process_id: str
    process_name: str
    version: int
    power_item: dict[str, Any] | None
    title: str | None
    status: str
    started_by: str
    started_at: datetime
    ended_at: datetime | None
    end_element_id: str | None
    events: list[LogEvent] = field(default_factory=list)


@dataclass
class ExportSummary:
    cases: int = 0
    events: int = 0


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


# Reading the cases

def _definitions(service: Liuhen) -> dict[int, Any]:
    query = select(definitions.c.id, definitions.c.process_id, definitions.c.version, definitions.c.name,
                   definitions.c.power_item)
    with service.db.read(replica=True) as conn:
        return {row.id: row for row in conn.execute(query)}


def _matching_definitions(known: dict[int, Any], filters: ExportFilter) -> set[int] | None:
    """Return the ids of the definitions the filters allow, or None when they allow all."""
    if filters.process_id is None and filters.power_item_code is None and filters.version is None:
        return None
    rows = list(known.values())
    if filters.process_id is not None:
        rows = [row for row in rows if row.process_id == filters.process_id]
        if not rows:
            raise InvalidInput(msg("Filter process={value!r} matches no deployed process; check the process id "
                                   "against the list of definitions.", value=filters.process_id))
    if filters.power_item_code is not None:
        rows = [row for row in rows if (row.power_item or {}).get("code") == filters.power_item_code]
        if not rows:
            raise InvalidInput(msg("Filter power_item={value!r} matches no power item code of a deployed "
                                   "definition; check the code, such as JY-XK-001.", value=filters.power_item_code))
    if filters.version is not None:
        rows = [row for row in rows if row.version == filters.version]
        if not rows:
            raise InvalidInput(msg("Filter version={value} matches no deployed definition that the other "
                                   "filters allow.", value=filters.version))
    return {row.id for row in rows}


def _case_query(filters: ExportFilter, definition_ids: set[int] | None) -> Any:
    query = (select(cases.c.id.label("case_id"), cases.c.definition_id, cases.c.process_id, cases.c.title,
                    cases.c.status, cases.c.started_by, cases.c.started_at, cases.c.ended_at,
                    cases.c.end_element_id, trace_events.c.body, trace_events.c.hash)
             .select_from(cases).join(trace_events, trace_events.c.case_id == cases.c.id)
             .where(trace_events.c.stream.like("case:%"))
             .order_by(cases.c.id, trace_events.c.seq)
             .execution_options(yield_per=_BATCH_ROWS))
    if definition_ids is not None:
        query = query.where(cases.c.definition_id.in_(sorted(definition_ids)))
    if filters.status is not None:
        query = query.where(cases.c.status == filters.status)
    # SQLite stores times without their offset, so the bounds are compared in UTC like the stored values.
    if filters.since is not None:
        query = query.where(cases.c.started_at >= filters.since.astimezone(UTC))
    if filters.until is not None:
        query = query.where(cases.c.started_at < filters.until.astimezone(UTC))
    return query


def _read_cases(service: Liuhen, filters: ExportFilter, known: dict[int, Any],
                definition_ids: set[int] | None) -> Iterator[CaseLog]:
    # One statement in one read transaction, so the export is one consistent snapshot.
    with service.db.read(replica=True) as conn:
        rows = conn.execute(_case_query(filters, definition_ids))
        for _case_id, group in itertools.groupby(rows, key=lambda row: row.case_id):
            first = next(group)
            case = _case_log(first, known)
            tasks: dict[str, tuple[str | None, str | None]] = {}
            for row in itertools.chain([first], group):
                case.events.append(_log_event(json.loads(bytes(row.body)), row.hash, case, known, tasks))
            yield case


def _case_log(row: Any, known: dict[int, Any]) -> CaseLog:
    definition = known[row.definition_id]
    return CaseLog(case_id=row.case_id, process_id=row.process_id, process_name=definition.name,
                   version=definition.version, power_item=definition.power_item, title=row.title, status=row.status,
                   started_by=row.started_by, started_at=row.started_at, ended_at=row.ended_at,
                   end_element_id=row.end_element_id)


def _log_event(record: dict[str, Any], digest: str, case: CaseLog, known: dict[int, Any],
               tasks: dict[str, tuple[str | None, str | None]]) -> LogEvent:
    """Map one decoded trace event to a log event; ``tasks`` collects each task's name and post."""
    kind, payload, task_id = record["kind"], record.get("payload") or {}, record.get("task_id")
    if kind == "task_ready" and task_id:
        tasks[task_id] = (payload.get("name"), payload.get("lane"))
    task_name, lane = tasks.get(task_id, (None, None)) if task_id else (None, None)
    if kind in _PROCESS_KINDS:
        activity = case.process_name
    else:
        activity = payload.get("name") or task_name or record.get("element_id") or kind
    definition_id = record.get("definition_id")
    definition = known.get(definition_id) if definition_id is not None else None
    return LogEvent(seq=record["seq"], kind=kind, activity=activity,
                    timestamp=datetime.fromisoformat(record["at"]), lifecycle=LIFECYCLE.get(kind, "unknown"),
                    resource=record["actor"], group=lane, element_id=record.get("element_id"), task_id=task_id,
                    version=definition.version if definition is not None else None, hash=digest, payload=payload)


# Writers

def _xml_text(value: str) -> str:
    """Escape ``value`` for a double-quoted XML attribute, keeping tabs and line breaks."""
    # NOTE: XML 1.0 cannot contain most control characters at all, so they become U+FFFD; the JSON
    # export keeps them.
    value = _XML_INVALID.sub("\ufffd", value)
    return value.translate(_XML_ESCAPES)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;",
                              "\n": "&#10;", "\r": "&#13;"})


def _attribute(kind: str, key: str, value: str) -> str:
    return f'<{kind} key="{_xml_text(key)}" value="{_xml_text(value)}"/>'


def _typed_attribute(key: str, value: Any) -> str:
    """Write a JSON value as an XES attribute of the matching type; objects and arrays nest.

    XES has no null value, so a null becomes an empty string attribute.
    """
    if isinstance(value, bool):
        return _attribute("boolean", key, "true" if value else "false")
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return _attribute("int", key, str(value))
    if isinstance(value, float):
        return _attribute("float", key, repr(value))
    if isinstance(value, dict):
        children = "".join(_typed_attribute(str(name), item) for name, item in value.items())
        return f'<container key="{_xml_text(key)}">{children}</container>'
    if isinstance(value, list):
        items = "".join(_typed_attribute(str(index), item) for index, item in enumerate(value))
        return f'<list key="{_xml_text(key)}"><values>{items}</values></list>'
    return _attribute("string", key, "" if value is None else str(value))


def _event_id(digest: str) -> str:
    """Make a UUID of the first 128 bits of the event hash, because identity:id takes a UUID."""
    return str(uuid.UUID(hex=digest[:32]))


def _xes_header(filters: ExportFilter, exported_at: datetime) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">']
    lines += [f'  <extension name="{name}" prefix="{prefix}" uri="{uri}"/>' for name, prefix, uri in EXTENSIONS]
    lines += ['  <global scope="trace">',
              '    ' + _attribute("string", "concept:name", "UNKNOWN"),
              '  </global>',
              '  <global scope="event">',
              '    ' + _attribute("string", "concept:name", "UNKNOWN"),
              '    ' + _attribute("date", "time:timestamp", "1970-01-01T00:00:00+00:00"),
              '    ' + _attribute("string", "lifecycle:transition", "unknown"),
              '    ' + _attribute("string", "org:resource", "UNKNOWN"),
              '    ' + _attribute("id", "identity:id", "00000000-0000-0000-0000-000000000000"),
              '    ' + _attribute("string", "liuhen:kind", "UNKNOWN"),
              '    ' + _attribute("int", "liuhen:seq", "0"),
              '    ' + _attribute("string", "liuhen:hash", ""),
              '  </global>',
              '  <classifier name="Activity" keys="concept:name"/>',
              '  <classifier name="Activity and transition" keys="concept:name lifecycle:transition"/>',
              '  <classifier name="Resource" keys="org:resource"/>',
              '  ' + _attribute("string", "concept:name", "liuhen event log"),
              '  ' + _attribute("string", "lifecycle:model", "standard"),
              '  ' + _attribute("date", "liuhen:exported_at", _iso(exported_at)),
              '  ' + _attribute("string", "liuhen:filter", filters.describe())]
    return "\n".join(lines) + "\n"


def _xes_trace(case: CaseLog) -> str:
    optional = {"liuhen:power_item_code": (case.power_item or {}).get("code"),
                "liuhen:power_item_name": (case.power_item or {}).get("name"), "liuhen:title": case.title,
                "liuhen:end_element_id": case.end_element_id}
    parts = ["  <trace>",
             "    " + _attribute("string", "concept:name", str(case.case_id)),
             "    " + _attribute("string", "liuhen:process_id", case.process_id),
             "    " + _attribute("string", "liuhen:process_name", case.process_name),
             "    " + _attribute("int", "liuhen:version", str(case.version)),
             "    " + _attribute("string", "liuhen:status", case.status),
             "    " + _attribute("string", "liuhen:started_by", case.started_by),
             "    " + _attribute("date", "liuhen:started_at", _iso(case.started_at))]
    if case.ended_at is not None:
        parts.append("    " + _attribute("date", "liuhen:ended_at", _iso(case.ended_at)))
    parts += ["    " + _attribute("string", key, value) for key, value in optional.items() if value]
    for event in case.events:
        parts.append("    <event>" + _xes_event(event) + "</event>")
    parts.append("  </trace>")
    return "\n".join(parts) + "\n"


def _xes_event(event: LogEvent) -> str:
    parts = [_attribute("string", "concept:name", event.activity),
             _attribute("date", "time:timestamp", _iso(event.timestamp)),
             _attribute("string", "lifecycle:transition", event.lifecycle),
             _attribute("string", "org:resource", event.resource),
             _attribute("id", "identity:id", _event_id(event.hash)),
             _attribute("string", "liuhen:kind", event.kind),
             _attribute("int", "liuhen:seq", str(event.seq)),
             _attribute("string", "liuhen:hash", event.hash)]
    if event.group:
        parts.append(_attribute("string", "org:group", event.group))
    if event.task_id:
        parts.append(_attribute("string", "concept:instance", event.task_id))
    if event.element_id:
        parts.append(_attribute("string", "liuhen:element_id", event.element_id))
    if event.payload:
        parts.append(_typed_attribute("liuhen:payload", event.payload))
    return "".join(parts)


def iter_xes(case_logs: Iterable[CaseLog], filters: ExportFilter, exported_at: datetime) -> Iterator[str]:
    yield _xes_header(filters, exported_at)
    for case in case_logs:
        yield _xes_trace(case)
    yield "</log>\n"


def iter_csv(case_logs: Iterable[CaseLog], *, bom: bool = False) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" if bom else "") + buffer.getvalue()
    for case in case_logs:
        buffer.seek(0)
        buffer.truncate()
        for event in case.events:
            writer.writerow((case.case_id, event.activity, _iso(event.timestamp), event.lifecycle, event.resource,
                             event.group or "", case.process_id, event.version or case.version,
                             event.element_id or "", event.kind, event.seq, event.hash))
        yield buffer.getvalue()


def iter_json(case_logs: Iterable[CaseLog]) -> Iterator[str]:
    yield "["
    for index, case in enumerate(case_logs):
        yield ("," if index else "") + "\n" + json.dumps(_case_json(case), ensure_ascii=False)
    yield "\n]\n"


def _case_json(case: CaseLog) -> dict[str, Any]:
    power_item = {"code": case.power_item.get("code"), "name": case.power_item.get("name")} \
        if case.power_item else None
    return {
        "case_id": case.case_id, "process_id": case.process_id, "process_name": case.process_name,
        "version": case.version, "power_item": power_item, "title": case.title, "status": case.status,
        "started_by": case.started_by, "started_at": _iso(case.started_at),
        "ended_at": _iso(case.ended_at) or None, "end_element_id": case.end_element_id,
        "events": [{"seq": e.seq, "kind": e.kind, "activity": e.activity, "timestamp": _iso(e.timestamp),
                    "lifecycle": e.lifecycle, "resource": e.resource, "group": e.group,
                    "element_id": e.element_id, "task_id": e.task_id, "version": e.version, "hash": e.hash,
                    "payload": e.payload}
                   for e in case.events],
    }


# Entry points

def export_chunks(service: Liuhen, export_format: str, filters: ExportFilter, *, bom: bool = False,
                  summary: ExportSummary | None = None) -> Iterator[str]:
    """Check the format and filters now, then return a generator of the export's text.

    The database is read while the generator runs; ``summary`` is filled in as cases are written.
    Raises InvalidInput for an unknown format, a filter that matches no deployed definition, or a
    byte order mark asked for a format other than CSV.
    """
    if export_format not in FORMATS:
        raise InvalidInput(msg("Export format {value!r} is unknown; use one of: {allowed}.", value=export_format,
                               allowed=", ".join(FORMATS)))
    if bom and export_format != "csv":
        raise InvalidInput(msg("A byte order mark can only start a CSV export, not a {format} export.",
                               format=export_format))
    known = _definitions(service)
    definition_ids = _matching_definitions(known, filters)
    counts = summary if summary is not None else ExportSummary()
    exported_at = service.now()

    def counted() -> Iterator[CaseLog]:
        for case in _read_cases(service, filters, known, definition_ids):
            counts.cases += 1
            counts.events += len(case.events)
            yield case
        logger.info("event log exported", extra={"format": export_format, "cases": counts.cases,
                                                  "events": counts.events, "filter": filters.describe()})

    if export_format == "xes":
        return iter_xes(counted(), filters, exported_at)
    if export_format == "csv":
        return iter_csv(counted(), bom=bom)
    return iter_json(counted())


def write_export(service: Liuhen, export_format: str, filters: ExportFilter, handle: TextIO, *,
                 bom: bool = False) -> ExportSummary:
    """Write an export to ``handle``, a text file opened with UTF-8 encoding and ``newline=""``."""
    summary = ExportSummary()
    for chunk in export_chunks(service, export_format, filters, bom=bom, summary=summary):
        handle.write(chunk)
    return summary


def encoded_chunks(chunks: Iterable[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Encode text chunks as UTF-8 and join small ones, so that a response sends fewer, larger writes."""
    pending: list[bytes] = []
    pending_size = 0
    for chunk in chunks:
        data = chunk.encode("utf-8")
        pending.append(data)
        pending_size += len(data)
        if pending_size >= size:
            yield b"".join(pending)
            pending, pending_size = [], 0
    if pending:
        yield b"".join(pending)
