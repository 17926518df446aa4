"""Add the append-only Merkle log over the trace and the checkpoints issued over it.

audit_log fixes the order of trace events once they are committed (their ids alone do not, because
on PostgreSQL a lower id can commit after a higher one). checkpoints keeps every signed root issued.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
BIG = sa.BigInteger().with_variant(sa.Integer, "sqlite")
APPEND_ONLY_TABLES = ("audit_log", "checkpoints")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("position", BIG, primary_key=True, autoincrement=False),
        sa.Column("event_id", BIG, nullable=False, unique=True),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
        sa.Column("sealed_at", TZ, nullable=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("size", BIG, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
    )

    # Like trace_events, both tables reject UPDATE and DELETE in the database itself.
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )
        return
    op.execute(
        "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
    )
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    op.drop_table("checkpoints")
    op.drop_table("audit_log")
