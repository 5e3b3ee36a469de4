"""Alembic environment: runs migrations on the connection metalcast hands in."""

from __future__ import annotations

from alembic import context

from metalcast.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when run through the alembic CLI
    raise SystemExit("Run migrations through `metalcast db upgrade`.")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
