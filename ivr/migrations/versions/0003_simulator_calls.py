"""Practice calls of the web simulator, shared by every web process.

Revision ID: 0003_simulator_calls
Revises: 0002_events
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_simulator_calls"
down_revision = "0002_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "simulator_calls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("touched", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_simulator_calls_touched", "simulator_calls", ["touched"])


def downgrade() -> None:
    op.drop_index("ix_simulator_calls_touched", "simulator_calls")
    op.drop_table("simulator_calls")
