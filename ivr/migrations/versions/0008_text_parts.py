"""A text too long for TEXT_MAX_SEGMENTS goes as two: the parts and how many went.

Revision ID: 0008_text_parts
Revises: 0007_gave_up
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_text_parts"
down_revision = "0007_gave_up"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        # JSON list of the texts, in order; NULL when the body is one text.
        batch.add_column(sa.Column("parts", sa.Text, nullable=True))
        # How many of them Twilio has taken: the worker sends parts[parts_sent] next.
        batch.add_column(sa.Column("parts_sent", sa.Integer, nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("parts_sent")
        batch.drop_column("parts")
