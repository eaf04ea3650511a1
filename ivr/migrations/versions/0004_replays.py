"""Replays and limits: inbound texts by MessageSid, purged calls remembered, outbox by age.

Revision ID: 0004_replays
Revises: 0003_simulator_calls
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_replays"
down_revision = "0003_simulator_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_created", "outbox", ["created_at"])
    op.create_table(
        "spent_calls",
        sa.Column("call_key", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "inbound_messages",
        sa.Column("message_sid", sa.String(64), primary_key=True),
        sa.Column("keyword", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_inbound_messages_received_at", "inbound_messages", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_received_at", "inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("spent_calls")
    op.drop_index("ix_outbox_created", "outbox")
