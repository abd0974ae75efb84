"""Engines, sessions and migrations.

The database is chosen in this order: an explicit URL, the ``DATABASE_URL``
environment variable, then SQLite in ``<data dir>/opendvi.sqlite3`` (the data
dir is ``--data-dir``, ``OPENDVI_DATA_DIR`` or the user's data directory).
Migrations (Alembic, shipped in this package) run on start.

Transactions (``docs/service.md``, *Concurrency*): SQLite runs in WAL mode,
so readers never wait for the writer nor the writer for readers. A session
from :func:`session_factory` with ``reads_first=True`` (the service's) begins
its transactions ``DEFERRED`` (a snapshot, no lock); code that is about to
write calls :func:`begin_write`, which ends the read transaction and begins a
short ``BEGIN IMMEDIATE`` one (on PostgreSQL a plain one): writers queue on
the busy timeout instead of failing half-way, and the audit chain, appended
under that lock, never forks. Such a session refuses to flush outside
:func:`begin_write`, so no write can slip into a read transaction.
:func:`transaction` (CLI, bootstrap) is always a write transaction.

The SQLite file, its WAL and SHM are created 0600 in a directory created
0700 (genetic and personal data).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("opendvi.store")

#: execution option naming how a connection's transactions begin on SQLite
BEGIN_OPTION = "opendvi_begin"
#: ``Session.info`` key: the session's current transaction may write
WRITE_FLAG = "opendvi_write"
#: connections in the pool: the worker threads (AnyIO's 40) and some to spare
POOL_SIZE = 20
MAX_OVERFLOW = 30
#: environment variable: the most connections one process opens (``opendvi serve --workers N`` sets
#: it so that N processes stay within PostgreSQL's ``max_connections``)
POOL_ENV = "OPENDVI_DB_POOL"


def _pool_kwargs(kwargs: dict[str, Any]) -> None:
    most = int(os.environ.get(POOL_ENV) or 0)
    size, overflow = (max(1, most // 2), most - max(1, most // 2)) if most > 0 else (POOL_SIZE, MAX_OVERFLOW)
    kwargs.setdefault("pool_size", size)
    kwargs.setdefault("max_overflow", overflow)
    kwargs.setdefault("pool_timeout", 30)


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
        private_dir(d)
        return f"sqlite:///{(d / 'opendvi.sqlite3').as_posix()}"
    for prefix in ("postgres://", "postgresql://"):
        if chosen.startswith(prefix):
            return "postgresql+psycopg://" + chosen[len(prefix):]
    return chosen


def private_dir(d: Path) -> None:
    """Create ``d`` (and its parents) with mode 0700; an existing directory
    open to others is left as it is, with a warning (it may be shared on purpose)."""
    if not d.exists():
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d, 0o700)  # mkdir's mode is filtered by the umask
    elif d.is_dir() and d.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the data directory %s is open to other users (mode %o); chmod 700 it", d,
                    stat.S_IMODE(d.stat().st_mode))


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    from sqlalchemy.engine import make_url

    db = make_url(url).database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def private_sqlite_files(path: Path) -> None:
    """Create the database file 0600 before SQLite opens it (SQLite gives its
    WAL and SHM the database's mode), and tighten existing ones to 0600."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
              path.with_name(path.name + "-journal")):
        if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
            os.chmod(p, 0o600)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine. SQLite gets foreign keys, WAL, a busy timeout, files 0600, and
    transactions that begin ``IMMEDIATE`` unless the connection's execution
    option :data:`BEGIN_OPTION` says ``"deferred"`` (see :func:`session_factory`).
    File databases and PostgreSQL get a pool sized for the service's worker threads."""
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        path = _sqlite_path(url)
        if path is not None:
            private_sqlite_files(path)
            _pool_kwargs(kwargs)
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(float(connect_args['timeout']) * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            deferred = conn.get_execution_options().get(BEGIN_OPTION) == "deferred"
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql"):
        _pool_kwargs(kwargs)
    return create_engine(url, **kwargs)


class WriteOutsideTransaction(RuntimeError):
    """A reads-first session was about to write without :func:`begin_write` (a bug)."""


def _refuse_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    if (session.new or session.dirty or session.deleted) and not session.info.get(WRITE_FLAG):
        raise WriteOutsideTransaction("write outside begin_write(): call opendvi.store.db.begin_write first")


def _end_write(session: Session, *_args: Any) -> None:
    session.info.pop(WRITE_FLAG, None)


def session_factory(engine: Engine, *, reads_first: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``. With ``reads_first`` (the service) transactions
    begin as snapshots without a lock, and writing needs :func:`begin_write`."""
    if not reads_first:
        return sessionmaker(bind=engine, expire_on_commit=False)
    factory = sessionmaker(bind=engine.execution_options(**{BEGIN_OPTION: "deferred"}), expire_on_commit=False)
    event.listen(factory, "before_flush", _refuse_flush)
    event.listen(factory, "after_commit", _end_write)
    event.listen(factory, "after_rollback", _end_write)
    event.listen(factory, "after_soft_rollback", _end_write)
    return factory


def begin_write(session: Session) -> None:
    """End the session's read transaction (its objects stay loaded) and begin a
    write transaction: ``BEGIN IMMEDIATE`` on SQLite (waits up to the busy
    timeout for the writer before it), a plain one elsewhere. Call it after
    parsing and checking, right before the writes, and commit soon."""
    if session.info.get(WRITE_FLAG) and session.in_transaction():
        return
    if session.in_transaction():
        session.commit()
    session.info[WRITE_FLAG] = True
    session.connection(execution_options={BEGIN_OPTION: "immediate"})


def end_read(session: Session) -> None:
    """End a read transaction (before slow work such as argon2 or matching)."""
    if session.in_transaction() and not session.info.get(WRITE_FLAG):
        session.commit()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one write transaction: committed on success, rolled back on error."""
    with factory() as session:
        begin_write(session)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


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
