"""Index trace events by kind, cases by start time and open tasks by case.

- ``ix_trace_events_kind`` (kind, definition_id, element_id) serves the risk register, which
  counts the rare risk and intervention events per step of each version. Without it the count
  reads every trace event; with it PostgreSQL answers from the index alone.
- ``ix_cases_started_at`` serves exports and case searches limited to a start period without a
  process filter; ``ix_cases_process_started`` already serves those with one.
- ``ix_case_tasks_case_status`` (case_id, status) serves the open-task read at the end of every
  step, which otherwise walks every task row of a long case through ``case_id`` alone.

Reads of one stream in order use the unique (stream, seq) index, and reads of many cases use
``ix_trace_events_case_id``; both stay as they are.

On PostgreSQL the indexes are built with CREATE INDEX CONCURRENTLY, so API processes and workers
can keep appending to trace_events while a large table is indexed. An interrupted build leaves an
invalid index behind; running `liuhen migrate` again drops it and builds it anew.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""
from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (index name, table, columns) in the order they are built.
NEW_INDEXES = (
    ("ix_trace_events_kind", "trace_events", ("kind", "definition_id", "element_id")),
    ("ix_cases_started_at", "cases", ("started_at",)),
    ("ix_case_tasks_case_status", "case_tasks", ("case_id", "status")),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name, table, columns in NEW_INDEXES:
            op.create_index(name, table, list(columns))
        return

    # CONCURRENTLY cannot run inside a transaction block.
    with op.get_context().autocommit_block():
        for name, table, columns in NEW_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} ({', '.join(columns)})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for name, table, _columns in reversed(NEW_INDEXES):
            op.drop_index(name, table_name=table)
        return

    with op.get_context().autocommit_block():
        for name, _table, _columns in reversed(NEW_INDEXES):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
