"""JSON endpoints that the workspace pages need beyond the case and task API: case search and display names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import and_, exists, select

from api.deps import CurrentActor, Service
from api.overlay_rendering import display_names
from engine.db import cards, cases, definitions, risk_events, users
from engine.errors import InvalidInput
from engine.exports import ExportFilter
from engine.extension import RISK_LEVELS
from engine.i18n import msg
from engine.risk_events import RISK_EVENT_KINDS
from engine.service import Liuhen
from engine.users import require_role

router = APIRouter(prefix="/api/workspace", tags=["workspace"])

# The text search reads case data in Python, because SQLite keeps non-ASCII JSON text escaped. It looks at
# the newest cases that the other filters allow, up to this many.
SEARCH_SCAN_LIMIT = 5000
MAX_TEXT_LENGTH = 100
MAX_PEOPLE = 200
CARD_FILTERS = ("red", "yellow", "none")
# The risk event filter takes a risk event kind, or this word for a case with any risk event.
ANY_RISK_EVENT = "any"


class CaseHit(BaseModel):
    id: int
    process_id: str
    process_name: str
    version: int
    power_item_code: str | None
    power_item_name: str | None
    title: str | None
    status: str
    started_by: str
    started_by_name: str
    started_at: datetime
    ended_at: datetime | None


class CaseSearchResult(BaseModel):
    cases: list[CaseHit]
    scanned: int
    truncated: bool


@router.get("/cases", response_model=CaseSearchResult)
def search_cases(service: Service, actor: CurrentActor, process: str | None = None,
                 power_item: str | None = None, since: str | None = None, until: str | None = None,
                 status: str | None = None, department: str | None = None,
                 card: str | None = Query(None, description="red: a red card was raised; yellow: a yellow card "
                                                            "but no red one; none: no card."),
                 risk_event: str | None = Query(None, description="A risk event kind the case has, or 'any'."),
                 risk_level: str | None = Query(None, description="The level (high, medium, low) of a risk event "
                                                                  "the case has; with risk_event, of that event."),
                 text: str | None = Query(None, description="Words looked for in the title, the applicant's name "
                                                            "and the case data."),
                 limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    """Find cases by process or power item, start period, status, department, card, risk event and its level, and text.

    Auditors and administrators only.

    The period filters compare the case's start time, with the same rules as the event-log exports.
    """
    require_role(actor, "auditor", "admin")
    filters = ExportFilter.parse(process=process, power_item=power_item, since=since, until=until, status=status)
    words = _search_words(text)
    supervision = _SupervisionFilter.parse(department, card, risk_event, risk_level)
    rows = _candidate_cases(service, filters, supervision)

    hits: list[dict[str, Any]] = []
    truncated = False
    for row in rows:
        if words and not _matches(row, words):
            continue
        if len(hits) == limit:
            truncated = True
            break
        hits.append(_hit(row))
    return {"cases": hits, "scanned": len(rows), "truncated": truncated or len(rows) == SEARCH_SCAN_LIMIT}


@router.get("/people", response_model=dict[str, str])
def people(service: Service, actor: CurrentActor,
           username: list[str] = Query(default_factory=list, description="Usernames to look up.")) -> dict[str, str]:
    """Map usernames to display names, for showing who acted in a case. Unknown usernames are left out."""
    require_role(actor, "staff", "auditor", "admin", "designer")
    if len(username) > MAX_PEOPLE:
        raise InvalidInput(msg("The request names {count} users, over the limit of {limit}; ask for fewer.",
                               count=len(username), limit=MAX_PEOPLE))
    return display_names(service, set(username))


def _search_words(text: str | None) -> list[str]:
    if not text:
        return []
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidInput(msg("The search text is {length} characters long, over the limit of {limit}; "
                               "shorten it.", length=len(text), limit=MAX_TEXT_LENGTH))
    return [word.casefold() for word in text.split()]


class _SupervisionFilter:
    """The department, card, risk event and risk level filters of the case search, checked."""

    def __init__(self, department: str | None, card: str | None, risk_event: str | None,
                 risk_level: str | None) -> None:
        self.department = department or None
        self.card = card or None
        self.risk_event = risk_event or None
        self.risk_level = risk_level or None

    @classmethod
    def parse(cls, department: str | None, card: str | None, risk_event: str | None,
              risk_level: str | None) -> _SupervisionFilter:
        if card and card not in CARD_FILTERS:
            raise InvalidInput(msg("Card {value!r} is unknown; use one of: {allowed}.", value=card,
                                   allowed=", ".join(CARD_FILTERS)))
        if risk_event and risk_event != ANY_RISK_EVENT and risk_event not in RISK_EVENT_KINDS:
            raise InvalidInput(msg("Risk event kind {kind!r} is unknown; use one of: {allowed}.", kind=risk_event,
                                   allowed=", ".join((ANY_RISK_EVENT, *RISK_EVENT_KINDS))))
        if risk_level and risk_level not in RISK_LEVELS:
            raise InvalidInput(msg("Risk level {level!r} is unknown; use one of: {allowed}.", level=risk_level,
                                   allowed=", ".join(RISK_LEVELS)))
        return cls(department, card, risk_event, risk_level)

    def apply(self, query: Any) -> Any:
        if self.department:
            query = query.where(cases.c.department == self.department)
        red = exists().where(and_(cards.c.case_id == cases.c.id, cards.c.colour == "red"))
        yellow = exists().where(and_(cards.c.case_id == cases.c.id, cards.c.colour == "yellow"))
        if self.card == "red":
            query = query.where(red)
        elif self.card == "yellow":
            query = query.where(yellow, ~red)
        elif self.card == "none":
            query = query.where(~red, ~yellow)
        if self.risk_event or self.risk_level:
            # Kind and level are matched on the same risk event.
            condition = risk_events.c.case_id == cases.c.id
            if self.risk_event and self.risk_event != ANY_RISK_EVENT:
                condition = and_(condition, risk_events.c.kind == self.risk_event)
            if self.risk_level:
                condition = and_(condition, risk_events.c.level == self.risk_level)
            query = query.where(exists().where(condition))
        return query


def _candidate_cases(service: Liuhen, filters: ExportFilter, supervision: _SupervisionFilter) -> list[Any]:
    query = (select(cases.c.id, cases.c.process_id, cases.c.title, cases.c.status, cases.c.started_by,
                    cases.c.started_at, cases.c.ended_at, cases.c.data, definitions.c.version,
                    definitions.c.name.label("process_name"), definitions.c.power_item,
                    users.c.display_name.label("started_by_name"))
             .join(definitions, definitions.c.id == cases.c.definition_id)
             .outerjoin(users, users.c.username == cases.c.started_by)
             .order_by(cases.c.id.desc()).limit(SEARCH_SCAN_LIMIT))
    if filters.process_id:
        query = query.where(cases.c.process_id == filters.process_id)
    if filters.power_item_code:
        query = query.where(cases.c.definition_id.in_(_definitions_of_power_item(service, filters.power_item_code)))
    if filters.status:
        query = query.where(cases.c.status == filters.status)
    query = supervision.apply(query)
    # SQLite stores times without their offset, so the bounds are compared in UTC like the stored values.
    if filters.since is not None:
        query = query.where(cases.c.started_at >= filters.since.astimezone(UTC))
    if filters.until is not None:
        query = query.where(cases.c.started_at < filters.until.astimezone(UTC))
    with service.db.read(replica=True) as conn:
        return list(conn.execute(query))


def _definitions_of_power_item(service: Liuhen, code: str) -> list[int]:
    with service.db.read(replica=True) as conn:
        rows = conn.execute(select(definitions.c.id, definitions.c.power_item))
        return [row.id for row in rows if (row.power_item or {}).get("code") == code]


def _matches(row: Any, words: list[str]) -> bool:
    """Every word must occur in the title, the starter's name or one of the case data's text values."""
    texts = [row.title or "", row.started_by, row.started_by_name or ""]
    texts.extend(str(value) for value in (row.data or {}).values() if isinstance(value, (str, int, float)))
    haystack = "\n".join(texts).casefold()
    return all(word in haystack for word in words)


def _hit(row: Any) -> dict[str, Any]:
    power_item = row.power_item or {}
    return {
        "id": row.id, "process_id": row.process_id, "process_name": row.process_name, "version": row.version,
        "power_item_code": power_item.get("code"), "power_item_name": power_item.get("name"),
        "title": row.title, "status": row.status, "started_by": row.started_by,
        "started_by_name": row.started_by_name or row.started_by,
        "started_at": _utc(row.started_at), "ended_at": _utc(row.ended_at),
    }


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
