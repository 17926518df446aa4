"""Record which version of each flowchart is published to the public, and when.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per act: publishing a version, or withdrawing the process (definition_id NULL). The newest
    # row of a process is its current state; older rows are the history, kept like the trace.
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("process_id", sa.String(255), nullable=False, index=True),
        sa.Column("definition_id", sa.Integer, sa.ForeignKey("definitions.id")),
        sa.Column("version", sa.Integer),
        sa.Column("acted_by", sa.String(64), nullable=False),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("publications")
