"""Alembic environment: runs migrations on the connection that ``state.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from sitesync.state.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - sitesync always passes a connection
    raise RuntimeError("sitesync migrations run through `sitesync init`, not the alembic command line")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
