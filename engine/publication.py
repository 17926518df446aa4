"""Publishing flowcharts: an administrator's explicit act, traced, that decides what the public pages show.

External flowcharts (``kind="external"`` power items) that are published appear in the public power
catalogue (职权目录) with their header fields; internal ones are shown to signed-in staff only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from engine import trace
from engine.db import definitions, publications
from engine.errors import Conflict, NotFound
from engine.i18n import msg
from engine.service import Liuhen
from engine.users import Actor, require_role


@dataclass
class PublishedItem:
    """A process as published: its version, the date, and the power-item header."""

    process_id: str
    version: int
    definition_id: int
    name: str
    kind: str | None
    power_item: dict[str, Any]
    published_at: datetime
    published_by: str


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def publish(service: Liuhen, process_id: str, version: int, admin: Actor) -> PublishedItem:
    """Publish ``version`` of ``process_id``, replacing whatever version was published before."""
    require_role(admin, "admin")
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        row = conn.execute(select(definitions).where(definitions.c.process_id == process_id,
                                                     definitions.c.version == version)).first()
        if row is None:
            raise NotFound(msg("Process {process_id} has no version {version}.", process_id=process_id,
                               version=version))
        current = _current_rows(conn).get(process_id)
        if current is not None and current.definition_id == row.id:
            raise Conflict(msg("Version {version} of {process_id} is already published.", version=version,
                               process_id=process_id))
        conn.execute(insert(publications).values(process_id=process_id, definition_id=row.id, version=version,
                                                 acted_by=admin.username, acted_at=now))
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "definition_published", admin.username, now, definition_id=row.id, element_id=process_id,
            payload={"process_id": process_id, "version": version,
                     "replaced_version": current.version if current is not None else None},
        )])
    return PublishedItem(process_id, version, row.id, row.name, row.kind, row.power_item or {}, now, admin.username)


def withdraw(service: Liuhen, process_id: str, admin: Actor) -> None:
    """Take a process off the public pages; its history of publications stays."""
    require_role(admin, "admin")
    now = service.now()
    with service.db.write() as conn:
        trace.lock_system_stream(conn, not service.db.is_sqlite)
        current = _current_rows(conn).get(process_id)
        if current is None or current.definition_id is None:
            raise Conflict(msg("Process {process_id} is not published, so there is nothing to withdraw.",
                               process_id=process_id))
        conn.execute(insert(publications).values(process_id=process_id, definition_id=None, version=None,
                                                 acted_by=admin.username, acted_at=now))
        trace.append(conn, trace.SYSTEM_STREAM, [trace.NewEvent(
            "definition_withdrawn", admin.username, now, definition_id=current.definition_id,
            element_id=process_id, payload={"process_id": process_id, "version": current.version},
        )])


def _current_rows(conn: Any) -> dict[str, Any]:
    newest = (select(publications.c.process_id, func.max(publications.c.id).label("id"))
              .group_by(publications.c.process_id).subquery())
    rows = conn.execute(select(publications).join(newest, newest.c.id == publications.c.id)).all()
    return {row.process_id: row for row in rows}


def published_items(service: Liuhen, *, kind: str | None = None) -> list[PublishedItem]:
    """List every currently published process by code, optionally only ``external`` or ``internal`` ones."""
    with service.db.read() as conn:
        current = [row for row in _current_rows(conn).values() if row.definition_id is not None]
        by_id = {row.id: row for row in conn.execute(
            select(definitions).where(definitions.c.id.in_([r.definition_id for r in current])))}
    items = []
    for row in current:
        definition = by_id[row.definition_id]
        if kind is not None and definition.kind != kind:
            continue
        items.append(PublishedItem(row.process_id, row.version, row.definition_id, definition.name, definition.kind,
                                   definition.power_item or {}, _utc(row.acted_at), row.acted_by))
    return sorted(items, key=lambda item: (item.power_item.get("code") or "", item.process_id))


def published_item(service: Liuhen, process_id: str) -> PublishedItem:
    for item in published_items(service):
        if item.process_id == process_id:
            return item
    raise NotFound(msg("No published flowchart has the id {process_id}.", process_id=process_id))
