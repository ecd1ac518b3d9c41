"""Alembic environment. Frontdesk runs it on a connection it already holds (see database.py)."""

from __future__ import annotations

from alembic import context

from frontdesk.adapters.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Frontdesk applies its migrations itself on start; run `frontdesk migrate` instead of "
        "calling alembic directly."
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
