"""The audit head anchored outside the database: signed checkpoints beside it, checked by
``opendvi audit verify``; the append-only triggers checked; no database created for a mistyped
``--data-dir``. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from opendvi.store import audit
from opendvi.store import db as store_db
from tests.clikit import Result, run
from tests.servicekit import BACKENDS, PG_URL, migrated_engine

backends = pytest.mark.parametrize("backend", BACKENDS)

RECREATE = {
    "sqlite": [
        """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
        """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    ],
    "postgresql": [
        """CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
           FOR EACH ROW EXECUTE FUNCTION opendvi_audit_append_only()""",
        """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
           FOR EACH STATEMENT EXECUTE FUNCTION opendvi_audit_append_only()""",
    ],
}


def _drop_triggers(engine: Engine, backend: str) -> None:
    with engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update ON audit_log"))
            conn.execute(text("DROP TRIGGER audit_log_no_truncate ON audit_log"))


def _recreate_triggers(engine: Engine, backend: str) -> None:
    with engine.begin() as conn:
        for stmt in RECREATE[backend]:
            conn.execute(text(stmt))


def _append(engine: Engine, n: int) -> None:
    factory = store_db.session_factory(engine)
    for k in range(n):
        with store_db.transaction(factory) as db:
            audit.append(db, action="test.entry", username="tester", details={"k": k})


def _cli(backend: str, tmp_path: Path, *args: str, data_dir: Path | None = None) -> Result:
    """``opendvi ARGS --data-dir DIR`` in this process (as the console entry point runs it)."""
    env: dict[str, str | None] = {"OPENDVI_AUDIT_KEY": None, "OPENDVI_DATA_DIR": None,
                                  "DATABASE_URL": None if backend == "sqlite" else PG_URL}
    return run(*args, "--data-dir", data_dir or tmp_path, env=env)


def _set_head(engine: Engine, seq: int) -> None:
    with engine.begin() as conn:
        h = conn.execute(text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": seq}).scalar() if seq else None
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                     {"s": seq, "h": h or audit.GENESIS})


@backends
@pytest.mark.parametrize("tamper", ["delete-tail", "delete-all", "rewrite"])
def test_verify__fails_when_the_log_is_cut_or_rewritten_behind_the_checkpoint(
    backend: str, tamper: str, tmp_path: Path
) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        _append(engine, 5)
        ok = _cli(backend, tmp_path, "audit", "verify")
        assert ok.returncode == 0, ok.stderr
        assert "intact: 5 entries" in ok.stdout and "checkpoint written: seq 5" in ok.stdout
        # an attacker with every right on the database: triggers off, the log changed, the head made to
        # match, the triggers put back - the chain in the database alone is consistent again
        _drop_triggers(engine, backend)
        with engine.begin() as conn:
            if tamper == "delete-tail":
                conn.execute(text("DELETE FROM audit_log WHERE seq > 3"))
            else:
                conn.execute(text("DELETE FROM audit_log"))
        if tamper == "rewrite":
            _set_head(engine, 0)
            _recreate_triggers(engine, backend)
            _append(engine, 6)  # a new, self-consistent chain
        else:
            _set_head(engine, 3 if tamper == "delete-tail" else 0)
            _recreate_triggers(engine, backend)
        with store_db.session_factory(engine)() as db:
            assert audit.verify_chain(db, anchor=None).ok  # the database alone cannot tell
        broken = _cli(backend, tmp_path, "audit", "verify")
        assert broken.returncode == 1, broken.stdout
        assert "BROKEN" in broken.stderr
        expected = "the chain was rewritten" if tamper == "rewrite" else "entries were deleted"
        assert expected in broken.stderr, broken.stderr


@backends
def test_verify__reports_missing_or_disabled_triggers(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        _append(engine, 2)
        assert _cli(backend, tmp_path, "audit", "verify").returncode == 0
        with engine.begin() as conn:
            if backend == "sqlite":
                conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            else:
                conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update"))
        broken = _cli(backend, tmp_path, "audit", "verify")
        assert broken.returncode == 1
        word = "missing" if backend == "sqlite" else "disabled"
        assert f"trigger audit_log_no_{'delete' if backend == 'sqlite' else 'update'} on audit_log is {word}" \
            in broken.stderr, broken.stderr
        if backend == "postgresql":  # a neutered function is found too
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update"))
                conn.execute(text("CREATE OR REPLACE FUNCTION opendvi_audit_append_only() RETURNS trigger AS $$ "
                                  "BEGIN RETURN OLD; END; $$ LANGUAGE plpgsql"))
            broken = _cli(backend, tmp_path, "audit", "verify")
            assert broken.returncode == 1 and "no longer raises" in broken.stderr, broken.stderr


def test_verify__refuses_a_data_dir_without_a_database(tmp_path: Path) -> None:
    typo = tmp_path / "opendvi-typo"
    r = _cli("sqlite", tmp_path, "audit", "verify", data_dir=typo)
    assert r.returncode == 2 and "no data directory" in r.stderr, r.stderr
    assert not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _cli("sqlite", tmp_path, "audit", "verify", data_dir=empty)
    assert r.returncode == 2 and "no database at" in r.stderr, r.stderr
    assert list(empty.iterdir()) == []


@backends
def test_checkpoints__every_n_entries_after_commit_signed_and_private(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENDVI_AUDIT_KEY", raising=False)
    monkeypatch.setenv("OPENDVI_AUDIT_CHECKPOINT_EVERY", "4")
    with migrated_engine(backend, tmp_path) as engine:
        anchor = audit.anchor_for(engine.url, tmp_path)
        audit.install_anchor(engine, anchor)
        try:
            _append(engine, 9)
            factory = store_db.session_factory(engine)
            with pytest.raises(RuntimeError), store_db.transaction(factory) as db:  # seq 10, 11, 12: rolled back
                for _ in range(3):
                    audit.append(db, action="test.lost", username="tester")
                raise RuntimeError("rolled back")
            records, problems = anchor.read()
            assert problems == []
            assert [r["seq"] for r in records] == [4, 8]
            with factory() as db:
                hashes = {int(r[0]): str(r[1]) for r in db.execute(text("SELECT seq, hash FROM audit_log"))}
            assert all(hashes[r["seq"]] == r["hash"] for r in records)
            assert stat.S_IMODE(anchor.path.stat().st_mode) == 0o600
            assert stat.S_IMODE((anchor.path.parent / audit.KEY_FILE).stat().st_mode) == 0o600
            # a checkpoint line edited by hand no longer verifies
            lines = anchor.path.read_text().splitlines()
            forged = json.loads(lines[0])
            forged["seq"] = 2
            anchor.path.write_text("\n".join([json.dumps(forged), *lines[1:]]) + "\n")
            with factory() as db:
                report = audit.verify_chain(db)
            assert not report.ok and "not a checkpoint signed with this key" in report.problems[0]
        finally:
            audit.install_anchor(engine, None)


def test_service__anchors_its_configured_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``opendvi serve``'s app (no engine given): the API's verification writes a checkpoint beside the
    SQLite file, and so does every N-th entry; checkpoints also go to syslog when asked."""
    from fastapi.testclient import TestClient

    from opendvi.service import bootstrap
    from opendvi.service.app import create_app
    from opendvi.service.settings import Settings
    from tests.servicekit import ADMIN_PASSWORD, bearer

    for var in ("DATABASE_URL", "OPENDVI_AUDIT_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENDVI_AUDIT_CHECKPOINT_EVERY", "3")
    monkeypatch.setenv("OPENDVI_AUDIT_SYSLOG", "1")
    app = create_app(settings=Settings(environment="test", data_dir=tmp_path))
    try:
        bootstrap.ensure_admin(app.state.sessionmaker, password=ADMIN_PASSWORD, must_change_password=False)
        client = TestClient(app)
        h = bearer(client, "admin")  # user.create (1), auth.login (2) ...
        for k in range(3):
            assert client.post("/api/operations", json={"code": f"OP{k}", "name": "x"}, headers=h).status_code == 201
        path = tmp_path / "opendvi.sqlite3.checkpoints"
        every = [json.loads(line)["seq"] for line in path.read_text().splitlines()]
        assert every and all(s % 3 == 0 for s in every), every
        r = client.get("/api/audit/verify", headers=h)
        assert r.status_code == 200 and r.json()["ok"], r.text
        assert r.json()["checkpoint"]["seq"] == r.json()["head_seq"]
        assert json.loads(path.read_text().splitlines()[-1])["seq"] == r.json()["head_seq"]
    finally:
        audit.install_anchor(app.state.engine, None)
        app.state.engine.dispose()
