"""``opendvi audit verify``, ``opendvi backup`` and ``opendvi restore``: the database's integrity and copies.

The database is ``DATABASE_URL`` when set, else SQLite in ``--data-dir``
(default: ``OPENDVI_DATA_DIR`` or the user's data directory). None of these
commands creates a database where there was none to check or copy: a
mistyped ``--data-dir`` is an error, not a new empty database reported
intact.

* ``audit verify`` recomputes the hash chain, checks the append-only
  triggers and the chain against the signed checkpoints beside the database
  (``opendvi.store.audit``), then writes a new checkpoint.
* ``backup`` copies a live database: SQLite with its online backup API,
  PostgreSQL with ``pg_dump -Fc``; the audit chain is verified (and
  checkpointed) first, and the SQLite copy verified again.
* ``restore`` refuses to overwrite an existing database without
  ``--force``; SQLite backups are verified before anything is written and
  copied in with the backup API, PostgreSQL dumps go through ``pg_restore``;
  afterwards the chain is verified, a ``database.restore`` entry appended and
  a signed *restore* checkpoint written (entries after the backup that the
  checkpoints knew of are reported as lost).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import typer

from opendvi.core.errors import OpenDVIError

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

DB_FILE = "opendvi.sqlite3"


class DataError(OpenDVIError):
    """The database or a backup cannot be used as asked (the message says why)."""


def _data_dir_option() -> Any:
    return typer.Option(None, "--data-dir", help="Folder of the SQLite database (DATABASE_URL wins).")


def _target(data_dir: Path | None, *, must_exist: bool) -> tuple[str, Path, Path | None]:
    """(SQLAlchemy URL, folder of checkpoints and key, SQLite file or None)."""
    from opendvi.store import db as store_db

    env_url = os.environ.get("DATABASE_URL")
    if data_dir is not None and not data_dir.is_dir() and (must_exist or env_url):
        raise DataError(f"no data directory {data_dir} (check --data-dir; nothing was created)")
    folder = data_dir if data_dir is not None else store_db.default_data_dir()
    if env_url:
        if data_dir is None:
            store_db.private_dir(folder)
        return store_db.database_url(url=env_url), folder, None
    db = folder / DB_FILE
    if must_exist and not db.is_file():
        raise DataError(f"no database at {db} (check --data-dir or OPENDVI_DATA_DIR; nothing was created)")
    return f"sqlite:///{db.as_posix()}", folder, db


def _verify(engine: Any, anchor: Any, *, write: bool = True) -> Any:
    from opendvi.store import db as store_db
    from opendvi.store.audit import verify_chain

    with store_db.session_factory(engine)() as db:
        return verify_chain(db, anchor=anchor, write_checkpoint=write)


def _print_report(report: Any, anchor: Any) -> None:
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)
    if report.ok:
        typer.echo(f"audit log intact: {report.entries} entries, head {report.head_hash}")
        if report.checkpoint is not None:
            typer.echo(f"checkpoint written: seq {report.head_seq} to {anchor.path}")
        return
    typer.echo(f"audit log BROKEN: {len(report.problems)} problem(s)", err=True)
    for p in report.problems:
        typer.echo(f"  {p}", err=True)


def _anchor(engine: Any, folder: Path) -> Any:
    from opendvi.store import audit

    try:
        return audit.anchor_for(engine.url, folder)
    except audit.AnchorError as exc:
        raise DataError(str(exc)) from None


@audit_app.command("verify")
def audit_verify(
    data_dir: Path | None = _data_dir_option(),
    no_checkpoint: bool = typer.Option(False, "--no-checkpoint", help="Check only: write no new checkpoint."),
) -> None:
    """Check the audit log's hash chain, its append-only triggers and the signed checkpoints; exit status 1
    on a break. A successful check writes a new checkpoint of the head."""
    from opendvi.store import db as store_db

    url, folder, _ = _target(data_dir, must_exist=True)
    engine = store_db.make_engine(url)
    try:
        store_db.upgrade(engine)
        anchor = _anchor(engine, folder)
        report = _verify(engine, anchor, write=not no_checkpoint)
    finally:
        engine.dispose()
    _print_report(report, anchor)
    if not report.ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------
# backup and restore
# ---------------------------------------------------------------------------


def _pg_env(url: Any) -> dict[str, str]:
    """libpq's environment for a SQLAlchemy URL: the password never on a command line."""
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[var] = str(value)
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DataError(f"{name} not found: install the PostgreSQL client tools (Debian: postgresql-client)")
    return path


def _run(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DataError(f"{Path(args[0]).name} failed (status {proc.returncode}): {first}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _private_tmp(output: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    os.chmod(name, 0o600)
    return Path(name)


def _sqlite_copy(src: Path, dst: Path, *, journal: str) -> None:
    """SQLite's online backup API: a consistent copy while others read and write; then the copy's
    journal mode (``DELETE`` for a backup: one self-contained file; ``WAL`` for a database in use)."""
    source = sqlite3.connect(f"file:{src.as_posix()}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(dst.as_posix())
        try:
            source.backup(target)
            target.execute(f"PRAGMA journal_mode={journal}")
        finally:
            target.close()
    finally:
        source.close()


def _verify_file(path: Path) -> Any:
    """The audit chain of a SQLite file, opened read-only (no anchor: a copy has none)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from opendvi.store.audit import verify_chain

    engine = create_engine(f"sqlite:///file:{path.as_posix()}?mode=ro&uri=true")
    try:
        with Session(engine) as db:
            return verify_chain(db, anchor=None, write_checkpoint=False)
    except Exception as exc:
        raise DataError(f"{path}: not an opendvi database ({type(exc).__name__}: {str(exc).splitlines()[0]})") \
            from None
    finally:
        engine.dispose()


def backup(
    output: Path = typer.Argument(..., help="The backup file to write (mode 0600)."),
    data_dir: Path | None = _data_dir_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite OUTPUT if it exists."),
) -> None:
    """Copy the database while the service runs: SQLite's online backup API, or pg_dump for PostgreSQL.
    The audit chain is verified and checkpointed first; exit status 1 if it is broken (the copy is kept)."""
    from opendvi.store import db as store_db

    url, folder, db_file = _target(data_dir, must_exist=True)
    if output.exists() and not force:
        raise DataError(f"{output} exists: choose another name or give --force")
    if not output.parent.is_dir():
        raise DataError(f"no folder {output.parent} for the backup")
    engine = store_db.make_engine(url)
    try:
        anchor = _anchor(engine, folder)
        report = _verify(engine, anchor)
        tmp = _private_tmp(output)
        try:
            if db_file is not None:
                _sqlite_copy(db_file, tmp, journal="DELETE")
            elif engine.url.get_backend_name() == "postgresql":
                _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={tmp}"], _pg_env(engine.url))
            else:
                raise DataError(f"cannot back up a {engine.url.get_backend_name()} database")
            os.replace(tmp, output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        engine.dispose()
    _print_report(report, anchor)
    typer.echo(f"backup written: {output} (sha256 {_sha256(output)})")
    if db_file is not None:
        copy = _verify_file(output)
        if not copy.ok or copy.head_seq < report.head_seq:
            raise DataError(f"{output}: the copy's audit chain does not verify: {'; '.join(copy.problems)}")
        typer.echo(f"backup verified: {copy.entries} audit entries, head {copy.head_hash}")
    if not report.ok:
        raise typer.Exit(1)


def restore(
    backup_file: Path = typer.Argument(..., help="A file written by 'opendvi backup'."),
    data_dir: Path | None = _data_dir_option(),
    force: bool = typer.Option(False, "--force", help="Overwrite the existing database (stop the service first)."),
) -> None:
    """Restore a backup into the database (SQLite backup API, or pg_restore for PostgreSQL); refuses to
    overwrite an existing database without --force. The audit chain is verified after the restore."""
    from sqlalchemy import inspect

    from opendvi.store import audit
    from opendvi.store import db as store_db

    if not backup_file.is_file():
        raise DataError(f"no backup file {backup_file}")
    if data_dir is not None and not os.environ.get("DATABASE_URL"):
        store_db.private_dir(data_dir)
    url, folder, db_file = _target(data_dir, must_exist=False)
    digest = _sha256(backup_file)
    if db_file is not None:
        source = _verify_file(backup_file)  # before anything is written
        if not source.ok:
            raise DataError(f"{backup_file}: the backup's audit chain is broken, nothing restored: "
                            + "; ".join(source.problems[:3]))
        wal = db_file.with_name(db_file.name + "-wal")
        if any(p.exists() and p.stat().st_size > 0 for p in (db_file, wal)) and not force:
            raise DataError(f"a database exists at {db_file}: give --force to overwrite it (stop the service "
                            "first)")
        engine = store_db.make_engine(url)  # creates the file 0600 in a 0700 folder
        engine.dispose()
        _sqlite_copy(backup_file, db_file, journal="WAL")
    else:
        engine = store_db.make_engine(url)
        try:
            if engine.url.get_backend_name() != "postgresql":
                raise DataError(f"cannot restore into a {engine.url.get_backend_name()} database")
            if "audit_log" in inspect(engine).get_table_names() and not force:
                raise DataError(f"the database {engine.url.database} holds opendvi tables: give --force to "
                                "overwrite it (stop the service first)")
        finally:
            engine.dispose()
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              f"--dbname={engine.url.database}", str(backup_file)], _pg_env(engine.url))
    engine = store_db.make_engine(url)
    try:
        store_db.upgrade(engine)
        anchor = _anchor(engine, folder)
        checked = _verify(engine, None, write=False)
        if not checked.ok:
            _print_report(checked, anchor)
            raise DataError("the restored database's audit chain is broken (see above)")
        before = _verify(engine, anchor, write=False)
        known = [int(c["seq"]) for c in anchor.read()[0] if isinstance(c.get("seq"), int)]
        lost = max(known) - checked.head_seq if known and max(known) > checked.head_seq else 0
        if lost:
            typer.echo(f"warning: the backup ends at audit seq {checked.head_seq}; the checkpoints knew seq "
                       f"{max(known)}: {lost} audit entries after the backup are lost with this restore", err=True)
        elif not before.ok:
            typer.echo("warning: the restored chain differs from the checkpoints: "
                       + "; ".join(before.problems[:3]), err=True)
        with store_db.transaction(store_db.session_factory(engine)) as db:
            audit.append(db, action="database.restore", username=None, object_type="database",
                         details={"backup": backup_file.name, "backup_sha256": digest,
                                  "restored_head_seq": checked.head_seq, "entries_lost": lost})
        report = _verify(engine, None, write=False)
        if not report.ok:
            _print_report(report, anchor)
            raise typer.Exit(1)
        anchor.write(report.head_seq, report.head_hash, kind="restore",
                     extra={"backup_sha256": digest, "entries_lost": lost})
    finally:
        engine.dispose()
    typer.echo(f"restored {backup_file} (sha256 {digest})")
    typer.echo(f"audit log intact: {report.entries} entries, head {report.head_hash}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.command("backup")(backup)
    app.command("restore")(restore)
