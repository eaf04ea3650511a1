"""Alembic environment: always run from ivr.store.upgrade() with a connection.

The connection (and its transaction) come from the caller, so the version
table lands wherever that connection's tables go (on PostgreSQL, the first
schema of its search_path).
"""
from alembic import context

from ivr import store

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `ivr db upgrade` (it passes a connection)")

context.configure(
    connection=connection,
    target_metadata=store.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
