"""Times in command-line output, shown in Beijing time as the web pages and drawings show them.

The database and the trace store UTC. Listings print local wall-clock time without a zone suffix,
the way the workspace pages do, while ``--json`` output keeps ISO 8601 with its UTC offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from engine.calendar import LOCAL_TZ

MINUTES = "%Y-%m-%d %H:%M"
SECONDS = "%Y-%m-%d %H:%M:%S"


def local_moment(moment: datetime | str) -> datetime:
    """Convert a stored moment to Beijing time. A moment without a zone, as SQLite returns it, is UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL_TZ)


def local_time(moment: datetime | str | None, fmt: str = MINUTES, missing: str = "-") -> str:
    """Format a stored moment (a datetime or an ISO 8601 string) in Beijing time."""
    if moment is None or moment == "":
        return missing
    return local_moment(moment).strftime(fmt)


def local_date(moment: datetime | str) -> date:
    """Return the Beijing date of a stored moment."""
    return local_moment(moment).date()
