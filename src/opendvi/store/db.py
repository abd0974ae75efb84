"""Engines, sessions and migrations.

The database is chosen in this order: an explicit URL, the ``DATABASE_URL``
environment variable, then SQLite in ``<data dir>/opendvi.sqlite3`` (the data
dir is ``--data-dir``, ``OPENDVI_DATA_DIR`` or the user's data directory).
Migrations (Alembic, shipped in this package) run on start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def default_data_dir() -> Path:
    """``OPENDVI_DATA_DIR`` or the platform's user data directory for opendvi."""
    env = os.environ.get("OPENDVI_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("opendvi", appauthor=False))


def database_url(*, url: str | None = None, data_dir: str | Path | None = None) -> str:
    """The URL to use: ``url``, else ``DATABASE_URL``, else SQLite in the data dir.

    ``postgresql://`` and ``postgres://`` URLs are given the psycopg 3 driver.
    """
    chosen = url or os.environ.get("DATABASE_URL")
    if not chosen:
        d = Path(data_dir) if data_dir is not None else default_data_dir()
        d.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(d / 'opendvi.sqlite3').as_posix()}"
    for prefix in ("postgres://", "postgresql://"):
        if chosen.startswith(prefix):
            return "postgresql+psycopg://" + chosen[len(prefix):]
    return chosen


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine; SQLite gets foreign keys, WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` transactions (writers queue instead of failing)."""
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (run on every start)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def open_database(*, url: str | None = None, data_dir: str | Path | None = None) -> Engine:
    """Engine for the configured database, migrated to the newest schema."""
    engine = make_engine(database_url(url=url, data_dir=data_dir))
    upgrade(engine)
    return engine
