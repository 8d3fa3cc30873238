"""Alembic's entry point. The store hands over an open connection (inside its transaction)
as ``config.attributes["connection"]``; run from the alembic command line, it connects to
``sqlalchemy.url`` of alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from lesionviewer.store.schema import Base

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        _run(conn)
