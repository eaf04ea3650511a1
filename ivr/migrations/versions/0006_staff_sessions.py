"""Staff logins kept on the server, so logging out ends them for every copy of the cookie.

Revision ID: 0006_staff_sessions
Revises: 0005_simulator_json
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_staff_sessions"
down_revision = "0005_simulator_json"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_staff_sessions_expires_at", "staff_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_expires_at", "staff_sessions")
    op.drop_table("staff_sessions")
