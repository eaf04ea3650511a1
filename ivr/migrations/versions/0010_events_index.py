"""The events' index on call_key goes: nothing looks events up by call (issue 16).

The figures read events by time (ix_events_at) and group them by call in
Python; the trim deletes by time. Every event row still paid for the call_key
index: a keyed hash is random, so each row wrote to a different page of it.
Measured on SQLite (200-row batches into a table of 30,000 rows): 20 us a row
with it, 6 without; the webhooks' CPU shares a core with that writer.

Revision ID: 0010_events_index
Revises: 0009_text_language
Create Date: 2026-12-01
"""
from alembic import op

revision = "0010_events_index"
down_revision = "0009_text_language"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_call_key", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_call_key", "events", ["call_key"])
