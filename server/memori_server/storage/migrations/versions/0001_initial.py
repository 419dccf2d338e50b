"""Sessions, messages and current-session pointers.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from memori_server.storage.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("entity_id", sa.String(100), nullable=False),
        sa.Column("process_id", sa.String(100), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.Column("update_time", UtcDateTime(), nullable=False),
        sa.Column("message_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_sessions"),
    )
    op.create_index(
        "ix_sessions_tenant_id_entity_id_process_id_update_time_id",
        "sessions",
        ["tenant_id", "entity_id", "process_id", "update_time", "id"],
    )
    op.create_table(
        "messages",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("content_parts", sa.JSON(), nullable=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("tool_calls", sa.JSON(), nullable=True),
        sa.Column("tool_call_id", sa.String(255), nullable=True),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("create_time", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["sessions.tenant_id", "sessions.id"],
            name="fk_messages_tenant_id_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "session_id", "seq", name="pk_messages"),
    )
    op.create_table(
        "current_sessions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(100), nullable=False),
        sa.Column("process_id", sa.String(100), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "session_id"],
            ["sessions.tenant_id", "sessions.id"],
            name="fk_current_sessions_tenant_id_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "entity_id", "process_id", name="pk_current_sessions"),
    )
    op.create_index(
        "ix_current_sessions_tenant_id_session_id",
        "current_sessions",
        ["tenant_id", "session_id"],
    )


def downgrade() -> None:
    op.drop_table("current_sessions")
    op.drop_table("messages")
    op.drop_index("ix_sessions_tenant_id_entity_id_process_id_update_time_id", "sessions")
    op.drop_table("sessions")
