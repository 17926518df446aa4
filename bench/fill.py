"""Fill a liuhen database fast with finished cases of the two-user-task flow, for the start-latency benchmark.

The rows copy one real case that the service ran to its end: its case row (state, data, trace head),
its two task rows and its nine trace events. Each copy gets its own case id, task ids and times.
Its trace events are re-chained: every body is the canonical JSON that the service would have
written with the copy's values, and its hash is the SHA-256 of those bytes. So ``liuhen verify``
accepts a filled database. The rows bypass the service: SQLite gets ``executemany`` on the driver's
connection, PostgreSQL gets ``COPY``, in batches of ``BATCH_CASES`` cases per transaction.

Left out: audit-log entries (nothing is sealed), clocks, cards and risk events, which this flow
does not produce.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from bench.flows import TWO_USER_TASKS, BenchmarkError, check_completed, ready_task_id
from engine.db import case_tasks, cases, trace_events
from engine.service import Liuhen
from engine.trace import GENESIS
from engine.users import Actor

BATCH_CASES = 20_000
# Copies start at this time and follow each other at this interval.
FIRST_START = datetime(2024, 1, 2, 1, 0, tzinfo=UTC)
CASE_INTERVAL = timedelta(seconds=20)

CASE_COLUMNS = ("id", "definition_id", "process_id", "title", "status", "started_by", "started_at", "ended_at",
                "end_element_id", "revision", "state", "data", "next_timer_at", "trace_seq", "trace_head",
                "department")
TASK_COLUMNS = ("id", "case_id", "element_id", "name", "lane", "status", "assignee", "created_at", "completed_at",
                "completed_by")
EVENT_COLUMNS = ("id", "stream", "seq", "case_id", "definition_id", "kind", "element_id", "actor", "at", "body",
                 "prev_hash", "hash")
_TIME_KEYS = ("started_at", "ended_at", "created_at", "completed_at", "at")


@dataclass
class Template:
    """One finished case, with each time replaced by its offset in seconds and each task id by its index."""

    case: dict[str, Any]
    tasks: list[dict[str, Any]]
    events: list[dict[str, Any]]
    # Each event's body as a %-format string with case_id, prev, t0, t1... and task0, task1... fields.
    bodies: list[str]
    # The task ids of the case, in order: those of its task rows first, then those only its events name.
    task_ids: list[str]


def make_template(service: Liuhen, staff: Actor) -> Template:
    """Run one case of the two-user-task flow through the service and turn its rows into a template."""
    flow = TWO_USER_TASKS
    case = service.start_case(flow.process_id, staff)
    for submission in flow.submissions:
        case = service.complete(ready_task_id(case), staff, submission)
    check_completed(case, flow)

    with service.db.read() as conn:
        case_row = dict(conn.execute(select(cases).where(cases.c.id == case["id"])).one()._mapping)
        task_rows = [dict(row._mapping) for row in conn.execute(
            select(case_tasks).where(case_tasks.c.case_id == case["id"]).order_by(case_tasks.c.created_at))]
        event_rows = [dict(row._mapping) for row in conn.execute(
            select(trace_events).where(trace_events.c.stream == f"case:{case['id']}").order_by(trace_events.c.seq))]

    times = sorted({_naive(row[key]) for row in [case_row, *task_rows, *event_rows] for key in _TIME_KEYS
                    if row.get(key) is not None})
    offsets = {moment: index for index, moment in enumerate(times)}
    task_ids = list(dict.fromkeys([row["id"] for row in task_rows] + _body_task_ids(event_rows)))
    for row in [case_row, *task_rows, *event_rows]:
        for key in _TIME_KEYS:
            if row.get(key) is not None:
                row[key] = offsets[_naive(row[key])]
    bodies = [_body_format(bytes(row["body"]).decode(), case["id"], times, task_ids) for row in event_rows]
    return Template(case_row, task_rows, event_rows, bodies, task_ids)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _body_task_ids(event_rows: list[dict[str, Any]]) -> list[str]:
    found = []
    for row in event_rows:
        task_id = json.loads(bytes(row["body"])).get("task_id")
        if task_id:
            found.append(task_id)
    return found


def _body_format(body: str, case_id: int, times: list[datetime], task_ids: list[str]) -> str:
    """Turn one stored body into a format string, and check it gives the same body back."""
    fmt = body.replace("%", "%%")
    fmt = fmt.replace(f'"case_id":{case_id},', '"case_id":%(case_id)d,')
    fmt = fmt.replace(f'"stream":"case:{case_id}"', '"stream":"case:%(case_id)d"')
    fmt = re.sub(r'"prev":"[0-9a-f]{64}"', '"prev":"%(prev)s"', fmt)
    values: dict[str, Any] = {"case_id": case_id, "prev": json.loads(body)["prev"]}
    for index, moment in enumerate(times):
        canonical = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fmt = fmt.replace(f'"at":"{canonical}"', f'"at":"%(t{index})s"')
        values[f"t{index}"] = canonical
    for index, task_id in enumerate(task_ids):
        fmt = fmt.replace(f'"{task_id}"', f'"%(task{index})s"')
        values[f"task{index}"] = task_id
    if fmt % values != body:
        raise BenchmarkError("The fill template does not reproduce the stored trace body; its format changed.")
    return fmt


@dataclass
class Batch:
    """Rows of consecutive copies; each copy has one case row, then a fixed number of task and event rows."""

    cases: list[tuple[Any, ...]]
    tasks: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    tasks_per_case: int
    events_per_case: int

    def first(self, count: int) -> Batch:
        """Return the rows of the first ``count`` copies only."""
        return Batch(self.cases[:count], self.tasks[:count * self.tasks_per_case],
                     self.events[:count * self.events_per_case], self.tasks_per_case, self.events_per_case)


def generate(template: Template, first_case: int, count: int, first_event: int) -> Batch:
    """Build the rows of ``count`` copies with case ids from ``first_case`` and event ids from ``first_event``.

    Times are strings in UTC as SQLite stores them; PostgreSQL reads them in a session set to UTC.
    """
    batch = Batch([], [], [], len(template.tasks), len(template.events))
    case_t = template.case
    offsets = 1 + max(row["at"] for row in template.events)
    interval = int(CASE_INTERVAL.total_seconds())
    if 60 % interval or 60 - interval + offsets > 60:
        raise BenchmarkError("The copies' times must stay inside the minute they start in; adjust CASE_INTERVAL.")
    sha256 = hashlib.sha256
    event_id = first_event
    data = json.dumps(case_t["data"])
    state = bytes(case_t["state"])
    events = [(row["seq"], row["definition_id"], row["kind"], row["element_id"], row["actor"], row["at"], body_format)
              for row, body_format in zip(template.events, template.bodies, strict=True)]
    tasks = [(index, row["element_id"], row["name"], row["lane"], row["status"], row["assignee"], row["created_at"],
              row["completed_at"], row["completed_by"]) for index, row in enumerate(template.tasks)]
    task_keys = [f"task{index}" for index in range(len(template.task_ids))]
    time_keys = [f"t{index}" for index in range(offsets)]
    for case_id in range(first_case, first_case + count):
        start = FIRST_START + (case_id - 1) * CASE_INTERVAL
        minute, second = start.strftime("%Y-%m-%d %H:%M:"), start.second
        times = [f"{minute}{second + offset:02d}.000000" for offset in range(offsets)]
        values: dict[str, Any] = {"case_id": case_id}
        for key, moment in zip(time_keys, times, strict=True):
            values[key] = f"{moment[:10]}T{moment[11:]}Z"
        for index, key in enumerate(task_keys):
            values[key] = f"{case_id:08x}-{index:04x}-4000-8000-000000000000"
        stream = f"case:{case_id}"

        prev = GENESIS
        for seq, definition_id, kind, element_id, actor, at, body_format in events:
            values["prev"] = prev
            body = (body_format % values).encode()
            digest = sha256(body).hexdigest()
            batch.events.append((event_id, stream, seq, case_id, definition_id, kind, element_id, actor, times[at],
                                 body, prev, digest))
            event_id += 1
            prev = digest
        for index, element_id, name, lane, status, assignee, created_at, completed_at, completed_by in tasks:
            batch.tasks.append((values[task_keys[index]], case_id, element_id, name, lane, status, assignee,
                                times[created_at], times[completed_at], completed_by))
        batch.cases.append((case_id, case_t["definition_id"], case_t["process_id"], case_t["title"], case_t["status"],
                            case_t["started_by"], times[case_t["started_at"]], times[case_t["ended_at"]],
                            case_t["end_element_id"], case_t["revision"], state, data, None, case_t["trace_seq"],
                            prev, case_t["department"]))
    return batch


def batches(template: Template, first_case: int, count: int, first_event: int) -> Iterator[Batch]:
    """Generate the rows of ``count`` copies in batches of ``BATCH_CASES`` cases."""
    done = 0
    while done < count:
        size = min(BATCH_CASES, count - done)
        yield generate(template, first_case + done, size, first_event + done * len(template.events))
        done += size


def next_ids(service: Liuhen) -> tuple[int, int]:
    """Return the first free case id and trace event id of the service's database."""
    with service.db.read() as conn:
        first_case = (conn.execute(select(func.max(cases.c.id))).scalar() or 0) + 1
        first_event = (conn.execute(select(func.max(trace_events.c.id))).scalar() or 0) + 1
    return first_case, first_event


class Filler:
    """A connection of its own that inserts batches into the service's database, one transaction each.

    On SQLite the connection skips the fsync at WAL checkpoints and keeps a 256 MiB page cache, so
    the copies go in faster. The service's own connections keep their settings.
    """

    def __init__(self, service: Liuhen) -> None:
        self.is_sqlite = service.db.is_sqlite
        if self.is_sqlite:
            database = service.db.engine.url.database
            self.sqlite = sqlite3.connect(str(database), isolation_level=None)
            self.sqlite.execute("PRAGMA synchronous=OFF")
            self.sqlite.execute("PRAGMA cache_size=-262144")
        else:
            self.raw = service.db.engine.raw_connection()

    def insert(self, batch: Batch) -> None:
        if self.is_sqlite:
            _insert_sqlite(self.sqlite, batch)
        else:
            _insert_postgres(self.raw.driver_connection, batch)

    def close(self) -> None:
        if self.is_sqlite:
            self.sqlite.close()
        else:
            self.raw.close()


def finish(service: Liuhen) -> None:
    """Make a filled database ready for use: on PostgreSQL, move the id sequences and refresh statistics."""
    if service.db.is_sqlite:
        return
    with service.db.write() as conn:
        # The copies carry explicit ids, so the sequences must move past them.
        for table in ("cases", "trace_events"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    with service.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE cases, case_tasks, trace_events"))


def fill(service: Liuhen, template: Template, count: int) -> None:
    """Add ``count`` finished copies of ``template`` to the service's database, after its newest rows."""
    first_case, first_event = next_ids(service)
    filler = Filler(service)
    try:
        for batch in batches(template, first_case, count, first_event):
            filler.insert(batch)
    finally:
        filler.close()
    finish(service)


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


def _insert_sqlite(driver: Any, batch: Batch) -> None:
    driver.execute("BEGIN IMMEDIATE")
    try:
        driver.executemany(_insert_sql("cases", CASE_COLUMNS), batch.cases)
        driver.executemany(_insert_sql("case_tasks", TASK_COLUMNS), batch.tasks)
        driver.executemany(_insert_sql("trace_events", EVENT_COLUMNS), batch.events)
    except BaseException:
        driver.execute("ROLLBACK")
        raise
    driver.execute("COMMIT")


def _insert_postgres(driver: Any, batch: Batch) -> None:
    with driver.transaction(), driver.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        for table, columns, rows in (("cases", CASE_COLUMNS, batch.cases), ("case_tasks", TASK_COLUMNS, batch.tasks),
                                     ("trace_events", EVENT_COLUMNS, batch.events)):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
