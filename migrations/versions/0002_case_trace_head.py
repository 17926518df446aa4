"""Keep each case's trace head on its case row.

Every step then writes the case state and its trace head in one UPDATE instead of reading and writing
a separate head row. The system stream keeps its row in trace_heads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("trace_seq", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("trace_head", sa.String(64), nullable=False, server_default=GENESIS))
    op.execute(
        "UPDATE cases SET "
        "trace_seq = (SELECT seq FROM trace_heads WHERE trace_heads.stream = 'case:' || cases.id), "
        "trace_head = (SELECT hash FROM trace_heads WHERE trace_heads.stream = 'case:' || cases.id) "
        "WHERE EXISTS (SELECT 1 FROM trace_heads WHERE trace_heads.stream = 'case:' || cases.id)"
    )
    op.execute("DELETE FROM trace_heads WHERE stream LIKE 'case:%'")


def downgrade() -> None:
    op.execute(
        "INSERT INTO trace_heads (stream, seq, hash) SELECT 'case:' || id, trace_seq, trace_head FROM cases "
        "WHERE trace_seq > 0"
    )
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("trace_head")
        batch.drop_column("trace_seq")
