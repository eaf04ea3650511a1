"""Anonymous events for the figures (kept apart from the outbox).

Revision ID: 0002_events
Revises: 0001
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_events"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("call_key", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("detail", sa.String(32), nullable=True),
        sa.Column("via", sa.String(8), nullable=True),
        sa.Column("value", sa.Integer, nullable=True),
        sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_call_key", "events", ["call_key"])


def downgrade() -> None:
    op.drop_index("ix_events_call_key", "events")
    op.drop_index("ix_events_at", "events")
    op.drop_table("events")
