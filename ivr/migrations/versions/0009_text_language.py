"""The caller's language on the outbox row: the text is composed in it (issue 18).

Revision ID: 0009_text_language
Revises: 0008_text_parts
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_text_language"
down_revision = "0008_text_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        # pl-PL, en-GB...; NULL for texts arranged before languages (the first language).
        batch.add_column(sa.Column("language", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("language")
