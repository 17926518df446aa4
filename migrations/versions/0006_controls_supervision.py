"""Add executable controls, case clocks, cards, supervision notices and risk events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The department that handles a case, for the supervision board and statistics.
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("department", sa.String(128)))
        batch.create_index("ix_cases_department", ["department"])
        # Split detection reads the cases of one process started within a window.
        batch.create_index("ix_cases_process_started", ["process_id", "started_at"])

    # An administrator asks to override one control of one task; a second administrator approves it;
    # the next completion of that task uses it once.
    op.create_table(
        "control_overrides",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("task_id", sa.String(36), nullable=False, index=True),
        sa.Column("element_id", sa.String(255), nullable=False),
        sa.Column("control_id", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )

    # One vote of a step that needs several distinct approvers.
    op.create_table(
        "review_votes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("element_id", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("task_id", "actor"),
    )

    # Every risk event: a soft control that failed, an override, a split purchase, a red card. The trace
    # holds the same event; this table serves statistics.
    op.create_table(
        "risk_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("process_id", sa.String(255), nullable=False, index=True),
        sa.Column("department", sa.String(128), index=True),
        sa.Column("element_id", sa.String(255)),
        sa.Column("task_id", sa.String(36)),
        sa.Column("post", sa.String(255)),
        sa.Column("checkpoint_id", sa.String(255)),
        sa.Column("control_id", sa.String(255)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    )

    # The time limits of a running case: ``clock`` is statutory, promised, or step:<task id>.
    op.create_table(
        "case_clocks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("clock", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(36)),
        sa.Column("element_id", sa.String(255)),
        sa.Column("amount", sa.Integer, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pauses", sa.JSON, nullable=False),
        sa.Column("paused_since", sa.DateTime(timezone=True)),
        sa.Column("yellow_at", sa.DateTime(timezone=True)),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("provisional", sa.Boolean, nullable=False),
        sa.Column("card", sa.String(8), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("case_id", "clock"),
    )
    op.create_index("ix_case_clocks_open", "case_clocks", ["stopped_at", "card"])

    # A yellow or red card, raised once per clock and colour.
    op.create_table(
        "cards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("clock", sa.String(64), nullable=False),
        sa.Column("colour", sa.String(8), nullable=False),
        sa.Column("task_id", sa.String(36)),
        sa.Column("element_id", sa.String(255)),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.UniqueConstraint("case_id", "clock", "colour"),
    )

    # A supervision notice (督办) opened by a red card, addressed to the holder of the step and a leader.
    op.create_table(
        "supervision_notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("card_id", sa.Integer, sa.ForeignKey("cards.id"), nullable=False, unique=True),
        sa.Column("task_id", sa.String(36)),
        sa.Column("element_id", sa.String(255)),
        sa.Column("holder", sa.String(64)),
        sa.Column("post", sa.String(255)),
        sa.Column("leader", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("answered_by", sa.String(64)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("answer", sa.Text),
    )


def downgrade() -> None:
    for table in ("supervision_notices", "cards", "case_clocks", "risk_events", "review_votes", "control_overrides"):
        op.drop_table(table)
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_process_started")
        batch.drop_index("ix_cases_department")
        batch.drop_column("department")
