"""Data lifecycle: erasure records, claim owners, indexes for retention and purging.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from memori_server.storage.tables import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entity_erasures",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(100), nullable=False),
        sa.Column("erase_time", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "entity_id", name="pk_entity_erasures"),
    )
    op.create_index("ix_entity_erasures_erase_time", "entity_erasures", ["erase_time"])
    with op.batch_alter_table("completion_requests") as table:
        table.add_column(sa.Column("owner", sa.String(32), nullable=True))
    op.create_index("ix_completion_requests_expire_time", "completion_requests", ["expire_time"])
    op.create_index("ix_sessions_update_time", "sessions", ["update_time"])


def downgrade() -> None:
    op.drop_index("ix_sessions_update_time", "sessions")
    op.drop_index("ix_completion_requests_expire_time", "completion_requests")
    with op.batch_alter_table("completion_requests") as table:
        table.drop_column("owner")
    op.drop_index("ix_entity_erasures_erase_time", "entity_erasures")
    op.drop_table("entity_erasures")
