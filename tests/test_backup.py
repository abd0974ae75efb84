"""``opendvi backup`` and ``opendvi restore`` on SQLite (online backup API) and PostgreSQL (pg_dump,
pg_restore): a copy taken while the database is in use, restored with its audit chain verified; an
existing database is not overwritten without --force; a broken backup is refused."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.store import audit
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.models import AuditEntry, Remains
from tests.clikit import Result, run
from tests.servicekit import BACKENDS, PG_URL, migrated_engine

backends = pytest.mark.parametrize("backend", BACKENDS)


def _cli(backend: str, data_dir: Path, *args: str) -> Result:
    env: dict[str, str | None] = {"OPENDVI_AUDIT_KEY": None, "OPENDVI_DATA_DIR": None,
                                  "DATABASE_URL": None if backend == "sqlite" else PG_URL}
    return run(*args, "--data-dir", data_dir, env=env)


def _demo(engine: Engine, code: str) -> None:
    factory = store_db.session_factory(engine)
    with store_db.transaction(factory) as db:
        op = repo.create_operation(db, code=code, name=code, by="tester")
        repo.import_case(db, case=read_case(demo_case_path()), operation=op, filename="demo.json",
                         sha256="0" * 64, by=None)


def _counts(engine: Engine) -> tuple[int, int]:
    with store_db.session_factory(engine)() as db:
        return (int(db.scalar(select(func.count()).select_from(Remains)) or 0),
                int(db.scalar(select(func.max(AuditEntry.seq))) or 0))


@backends
def test_backup_and_restore__round_trip_with_the_audit_chain(backend: str, tmp_path: Path) -> None:
    if backend == "postgresql" and not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump/pg_restore not installed (Debian: postgresql-client)")
    data = tmp_path / "data"
    data.mkdir()
    with migrated_engine(backend, data) as engine:
        _demo(engine, "A")
        remains_a, seq_a = _counts(engine)
        out = tmp_path / "backup.bin"
        r = _cli(backend, data, "backup", str(out))
        assert r.returncode == 0, r.stderr
        assert "backup written" in r.stdout and out.is_file()
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        if backend == "sqlite":
            assert "backup verified" in r.stdout
            assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.bin", "data"]  # one self-contained file
        again = _cli(backend, data, "backup", str(out))
        assert again.returncode == 2 and "exists" in again.stderr

        # work goes on after the backup
        with store_db.transaction(store_db.session_factory(engine)) as db:
            repo.create_operation(db, code="B", name="B", by="tester")
        _, seq_b = _counts(engine)
        assert seq_b > seq_a
        assert _cli(backend, data, "audit", "verify").returncode == 0  # a checkpoint at seq_b

        refused = _cli(backend, data, "restore", str(out))
        assert refused.returncode == 2 and "--force" in refused.stderr, refused.stderr
        assert _counts(engine)[1] == seq_b  # nothing changed
        engine.dispose()

        r = _cli(backend, data, "restore", str(out), "--force")
        assert r.returncode == 0, r.stderr + r.stdout
        assert "audit log intact" in r.stdout
        assert f"{seq_b - seq_a} audit entries after the backup are lost" in r.stderr, r.stderr
        remains, seq = _counts(engine)
        assert remains == remains_a and seq == seq_a + 1  # the backup's content and a database.restore entry
        with store_db.session_factory(engine)() as db:
            assert db.execute(text("SELECT code FROM operations WHERE code = 'B'")).first() is None
            last = db.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
            assert last.action == "database.restore"
        # the restore checkpoint starts the anchor afresh: verify passes, and guards are in place
        v = _cli(backend, data, "audit", "verify")
        assert v.returncode == 0, v.stderr
        with store_db.session_factory(engine)() as db:
            assert audit.guard_problems(db) == []


def test_restore__refuses_a_backup_whose_chain_is_broken(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with migrated_engine("sqlite", data) as engine:
        _demo(engine, "A")
    out = tmp_path / "backup.sqlite3"
    assert _cli("sqlite", data, "backup", str(out)).returncode == 0
    bad = store_db.make_engine(f"sqlite:///{out.as_posix()}")
    with bad.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET username = 'forged' WHERE seq = 1"))
    bad.dispose()
    fresh = tmp_path / "fresh"
    r = _cli("sqlite", fresh, "restore", str(out))
    assert r.returncode == 2 and "broken, nothing restored" in r.stderr, r.stderr
    assert not (fresh / "opendvi.sqlite3").exists()


def test_backup__refuses_a_data_dir_without_a_database(tmp_path: Path) -> None:
    r = _cli("sqlite", tmp_path / "typo", "backup", str(tmp_path / "b.sqlite3"))
    assert r.returncode == 2 and "no data directory" in r.stderr
    assert not (tmp_path / "typo").exists()
