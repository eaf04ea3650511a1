"""Practice calls stored as JSON text, not pickles.

A pickle in the database let anyone who could write a row run code in the
web process. Practice calls last 30 minutes at most, so the rows in the old
form are simply dropped with the table.

Revision ID: 0005_simulator_json
Revises: 0004_replays
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_simulator_json"
down_revision = "0004_replays"
branch_labels = None
depends_on = None


def _table(data_type) -> None:
    op.create_table(
        "simulator_calls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("data", data_type, nullable=False),
        sa.Column("touched", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_simulator_calls_touched", "simulator_calls", ["touched"])


def upgrade() -> None:
    op.drop_index("ix_simulator_calls_touched", "simulator_calls")
    op.drop_table("simulator_calls")
    _table(sa.Text)


def downgrade() -> None:
    op.drop_index("ix_simulator_calls_touched", "simulator_calls")
    op.drop_table("simulator_calls")
    _table(sa.LargeBinary)
