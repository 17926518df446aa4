"""Add the administrators' entries of the working-day calendar.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per entry. The newest row of a date decides it; older rows stay as its history, so the
    # table rejects UPDATE and DELETE like the audit log.
    op.create_table(
        "calendar_days",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("is_working_day", sa.Boolean, nullable=False),
        sa.Column("name", sa.String(64)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("entered_by", sa.String(64), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
    )

    if op.get_bind().dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER calendar_days_no_{action.lower()} BEFORE {action} ON calendar_days "
                "BEGIN SELECT RAISE(ABORT, 'calendar_days is append-only'); END"
            )
        return
    # audit_append_only() was created by revision 0003.
    op.execute(
        "CREATE TRIGGER calendar_days_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON calendar_days "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS calendar_days_append_only ON calendar_days")
    op.drop_table("calendar_days")
