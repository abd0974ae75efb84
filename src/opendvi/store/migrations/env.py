"""Alembic environment: the engine comes from ``opendvi.store.db`` (no alembic.ini).

Importing this module outside Alembic (doctest collection) does nothing.
"""

from __future__ import annotations

from alembic import context

from opendvi.store.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if hasattr(context, "config"):
    run_migrations_online()
