"""Add stored answers for idempotent retries and a log of sign-in attempts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A client that sends an Idempotency-Key and retries after a lost answer gets the stored answer back.
    op.create_table(
        "idempotent_requests",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    # Sign-in attempts are counted in the database, so every API process sees the same failures.
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("client_address", sa.String(64), nullable=False, index=True),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("succeeded", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_attempts")
    op.drop_table("idempotent_requests")
