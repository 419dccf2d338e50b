"""Idempotency records of chat completions (request_id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from memori_server.storage.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "completion_requests",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("expire_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "request_id", name="pk_completion_requests"),
    )
    op.create_index(
        "ix_completion_requests_tenant_id_session_id",
        "completion_requests",
        ["tenant_id", "session_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_completion_requests_tenant_id_session_id", "completion_requests")
    op.drop_table("completion_requests")
