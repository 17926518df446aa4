"""Draw a case's path or a version's heat map from the database, for the command line and the HTTP API."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from sqlalchemy import select

from diagrams.case_overlay import CaseHeading, CaseOverlay
from diagrams.flow_graph import flow_graph
from diagrams.heatmap import MEASURES, HeatmapOverlay
from diagrams.overlay import draw
from diagrams.reader import read_diagram
from engine.case_paths import trace_case_path
from engine.db import users
from engine.errors import InvalidInput
from engine.i18n import msg
from engine.path_statistics import summarize_paths, version_traces
from engine.service import Liuhen

logger = logging.getLogger(__name__)


def case_diagram(service: Liuhen, case_id: int, fmt: str, locale: str, zone: ZoneInfo) -> bytes:
    """Draw the flowchart version a case runs on, with the path its trace records, as ``fmt``."""
    case = service.get_case(case_id)
    filename, content = service.definition_content(case["process_id"], case["version"])
    diagram = read_diagram(content, filename)
    events = service.case_trace(case_id)
    path = trace_case_path(events, flow_graph(diagram))

    heading = CaseHeading(
        case_id=case_id, title=case["title"], version=case["version"], status=case["status"],
        started_at=case["started_at"].isoformat(), started_by=case["started_by"],
        ended_at=case["ended_at"].isoformat() if case["ended_at"] else None,
    )
    names = display_names(service, {event["actor"] for event in events} | {case["started_by"]})
    image = draw(diagram, fmt, locale, CaseOverlay(heading, path, names, locale, zone))
    logger.debug("drew case path", extra={"case_id": case_id, "format": fmt, "steps": len(path.visits)})
    return image


def version_heatmap(service: Liuhen, process_id: str, version: int | None, fmt: str, locale: str,
                    measure: str = "visits") -> bytes:
    """Draw a process version (the newest when ``version`` is None) with figures over all its cases."""
    if measure not in MEASURES:
        raise InvalidInput(msg("Heat map measure {value!r} is unknown; use one of: {measures}.", value=measure,
                               measures=", ".join(MEASURES)))
    definition = service.get_definition(process_id, version)
    filename, content = service.definition_content(process_id, definition["version"])
    diagram = read_diagram(content, filename)
    graph = flow_graph(diagram)

    traces = version_traces(service, definition["id"])
    statistics = summarize_paths((row.status, trace_case_path(events, graph)) for row, events in traces)
    overlay = HeatmapOverlay(diagram, statistics, definition["version"], measure, locale)
    image = draw(diagram, fmt, locale, overlay)
    logger.debug("drew heat map", extra={"definition_id": definition["id"], "format": fmt,
                                         "cases": statistics.cases})
    return image


def display_names(service: Liuhen, usernames: set[str]) -> dict[str, str]:
    """Map the usernames that exist to their display names, such as li_na to 李娜."""
    if not usernames:
        return {}
    with service.db.read() as conn:
        rows = conn.execute(select(users.c.username, users.c.display_name)
                            .where(users.c.username.in_(sorted(usernames))))
        return {row.username: row.display_name for row in rows}
