"""Draw the changes between two versions of a process, for the command line and the HTTP API."""

from __future__ import annotations

import logging

from diagrams.diff_overlay import DiffItem, DiffOverlay, DiffStatus, merge_removed
from diagrams.overlay import draw
from diagrams.reader import read_diagram
from engine.service import Liuhen
from engine.versions import VersionDiff

logger = logging.getLogger(__name__)


def diff_status(diff: VersionDiff) -> DiffStatus:
    """Sum up a diff by flow node and flow: added or removed as such, else changed when anything on it changed."""
    status = DiffStatus(diff.old["version"], diff.new["version"])
    for change in diff.changes:
        item = DiffItem(change.section, change.kind, change.key, change.fields)
        if change.section in ("nodes", "flows"):
            status.elements[change.key] = change.kind
            status.items.setdefault(change.key, []).append(item)
        elif change.element_id:
            status.elements.setdefault(change.element_id, "changed")
            status.items.setdefault(change.element_id, []).append(item)
        else:
            status.other.append(item)
    return status


def diff_diagram(service: Liuhen, diff: VersionDiff, fmt: str, locale: str) -> bytes:
    """Draw the newer version of ``diff`` with its changes, and the removed steps of the older one, as ``fmt``."""
    new_name, new_content = service.definition_content(diff.process_id, diff.new["version"])
    old_name, old_content = service.definition_content(diff.process_id, diff.old["version"])
    status = diff_status(diff)
    removed = {element_id for element_id, kind in status.elements.items() if kind == "removed"}
    diagram = merge_removed(read_diagram(new_content, new_name), read_diagram(old_content, old_name), removed)
    image = draw(diagram, fmt, locale, DiffOverlay(status, locale))
    logger.debug("drew version diff", extra={"process_id": diff.process_id, "format": fmt,
                                             "changes": len(diff.changes)})
    return image
