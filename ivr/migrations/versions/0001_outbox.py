"""The outbox of follow-up texts, opt-outs, the local sender's record, early delivery reports.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("call_key", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("to_number", sa.String(20), nullable=True),
        sa.Column("to_hash", sa.String(64), nullable=False),
        sa.Column("branches", sa.String(1000), nullable=False, server_default=""),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("lease_until", sa.DateTime, nullable=True),
        sa.Column("claim_token", sa.String(32), nullable=True),
        sa.Column("message_sid", sa.String(64), nullable=True),
        sa.Column("error_code", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("released_at", sa.DateTime, nullable=True),
        sa.Column("sent_at", sa.DateTime, nullable=True),
        sa.UniqueConstraint("call_key", name="uq_outbox_call_key"),
        sa.UniqueConstraint("message_sid", name="uq_outbox_message_sid"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_to_hash", "outbox", ["to_hash"])
    op.create_table(
        "opt_outs",
        sa.Column("number_hash", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "local_texts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", sa.Integer, nullable=True),
        sa.Column("call_key", sa.String(64), nullable=True),
        sa.Column("to_masked", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("simulated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_local_texts_call_key", "local_texts", ["call_key"])
    op.create_index("ix_local_texts_created_at", "local_texts", ["created_at"])
    op.create_table(
        "message_events",
        sa.Column("message_sid", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer, nullable=True),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("message_events")
    op.drop_index("ix_local_texts_created_at", "local_texts")
    op.drop_index("ix_local_texts_call_key", "local_texts")
    op.drop_table("local_texts")
    op.drop_table("opt_outs")
    op.drop_index("ix_outbox_to_hash", "outbox")
    op.drop_index("ix_outbox_due", "outbox")
    op.drop_table("outbox")
