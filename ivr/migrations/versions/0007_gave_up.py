"""Texts given up after SMS_GIVE_UP_AFTER of failures are marked, for /readyz and /metrics.

Revision ID: 0007_gave_up
Revises: 0006_staff_sessions
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_gave_up"
down_revision = "0006_staff_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("gave_up_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("gave_up_at")
