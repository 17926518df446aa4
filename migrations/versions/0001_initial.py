"""Create users, definitions, cases, tasks and the append-only trace.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("posts", sa.JSON, nullable=False),
        sa.Column("department", sa.String(128)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_table(
        "definition_files",
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("uploaded_at", TZ, nullable=False),
    )
    op.create_table(
        "definitions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("process_id", sa.String(255), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), sa.ForeignKey("definition_files.content_hash"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16)),
        sa.Column("power_item", sa.JSON),
        sa.Column("deployed_by", sa.String(64), nullable=False),
        sa.Column("deployed_at", TZ, nullable=False),
        sa.UniqueConstraint("process_id", "version"),
        sa.UniqueConstraint("process_id", "content_hash"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("definition_id", sa.Integer, sa.ForeignKey("definitions.id"), nullable=False, index=True),
        sa.Column("process_id", sa.String(255), nullable=False, index=True),
        sa.Column("title", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("ended_at", TZ),
        sa.Column("end_element_id", sa.String(255)),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("next_timer_at", TZ, index=True),
    )
    op.create_table(
        "case_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("element_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("lane", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee", sa.String(64)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("completed_at", TZ),
        sa.Column("completed_by", sa.String(64)),
    )
    op.create_index("ix_case_tasks_status_lane", "case_tasks", ["status", "lane"])
    op.create_index("ix_case_tasks_assignee", "case_tasks", ["assignee"])
    op.create_table(
        "trace_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("case_id", sa.Integer, index=True),
        sa.Column("definition_id", sa.Integer),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("element_id", sa.String(255)),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("stream", "seq"),
    )
    op.create_table(
        "trace_heads",
        sa.Column("stream", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )

    op.bulk_insert(sa.table("trace_heads", sa.column("stream"), sa.column("seq"), sa.column("hash")),
                   [{"stream": "system", "seq": 0, "hash": "0" * 64}])

    # The trace is append-only: the database itself rejects UPDATE and DELETE on its rows, so only
    # someone who drops these triggers first can alter it, and `verify` detects what they changed.
    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER trace_events_no_{action.lower()} BEFORE {action} ON trace_events "
                "BEGIN SELECT RAISE(ABORT, 'trace_events is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION trace_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'trace_events is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER trace_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON trace_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION trace_events_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS trace_events_append_only ON trace_events")
        op.execute("DROP FUNCTION IF EXISTS trace_events_append_only()")
    for table in ("trace_heads", "trace_events", "case_tasks", "cases", "definitions", "definition_files",
                  "auth_tokens", "users"):
        op.drop_table(table)
