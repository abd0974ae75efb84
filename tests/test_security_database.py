"""Findings 1 and 9 of issue 15: concurrency that holds, database errors as 503, private files.

* reads take no write lock (SQLite WAL, ``BEGIN`` deferred): a page answers while
  another connection holds the write lock;
* sign-in checks the password outside any transaction;
* a locked or unreachable database is 503 ``unavailable`` in the one error shape
  (and an error page), never a sign-in failure or a 500, and writes no false audit entry;
* every write of the service goes through ``begin_write`` (a reads-first session
  refuses to flush otherwise);
* concurrent readers and writers all succeed and the audit chain stays whole;
* the SQLite file, WAL and SHM are 0600 in a 0700 directory.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from opendvi.service import security
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.audit import verify_chain
from opendvi.store.models import Role
from tests.servicekit import (
    ADMIN_PASSWORD,
    BACKENDS,
    assert_error_shape,
    bearer,
    make_app,
    migrated_engine,
    password_of,
    run_queued,
)

backends = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 1}} if request.param == "sqlite" else {}
    with migrated_engine(request.param, tmp_path, **kwargs) as engine:
        app = make_app(engine)
        yield {"backend": request.param, "engine": engine, "app": app, "client": TestClient(app),
               "path": tmp_path / "opendvi.sqlite3"}


class _WriteLock:
    """Another connection holding the write lock (SQLite ``BEGIN IMMEDIATE``;
    PostgreSQL: the audit head row locked FOR UPDATE, what every writer takes)."""

    def __init__(self, w: dict[str, Any]) -> None:
        self.w = w

    def __enter__(self) -> _WriteLock:
        if self.w["backend"] == "sqlite":
            self.conn: Any = sqlite3.connect(self.w["path"], timeout=0, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.pg = self.w["engine"].connect()
            self.tx = self.pg.begin()
            self.pg.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.w["backend"] == "sqlite":
            self.conn.execute("ROLLBACK")
            self.conn.close()
        else:
            self.tx.rollback()
            self.pg.close()


def _in_thread(fn: Any, timeout: float = 20) -> Any:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # pragma: no cover - reported below
            out["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the request waited for the writer's lock"
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_reads_answer_while_another_connection_writes(world: dict[str, Any]) -> None:
    client = world["client"]
    h = bearer(client, "dvi")
    with _WriteLock(world):
        for path in ("/api/operations", "/api/operations/demo", "/api/remains?q=V", "/api/me"):
            r = _in_thread(lambda p=path: client.get(p, headers=h), timeout=8)
            assert r.status_code == 200, (path, r.text)
        page = _in_thread(lambda: client.get("/remains", headers={**h, "accept": "text/html"}), timeout=8)
        assert page.status_code == 200


def test_a_locked_database_is_503_not_a_failed_sign_in(world: dict[str, Any]) -> None:
    """A correct sign-in while the writer's lock is held past the busy timeout: 503 in the
    one error shape with Retry-After; no ``auth.login_failed`` entry; the sign-in works after."""
    dbname = ""
    if world["backend"] == "postgresql":
        # PostgreSQL waits for row locks; bound it so the test sees the lock error
        with world["engine"].begin() as conn:
            dbname = conn.execute(text("SELECT current_database()")).scalar_one()
            conn.execute(text(f'ALTER DATABASE "{dbname}" SET lock_timeout = \'1s\''))
        world["engine"].dispose()
    try:
        client = world["client"]
        lab = bearer(client, "lab")
        with _WriteLock(world):
            r = _in_thread(lambda: client.post("/api/auth/login",
                                               json={"username": "dvi", "password": password_of("dvi")}))
            err = assert_error_shape(r, 503)
            assert err["code"] == "unavailable" and r.headers["retry-after"]
            # a signed-in user's write: 503 too, nothing written
            r = _in_thread(lambda: client.post("/api/operations", json={"code": "LOCKED", "name": "x"}, headers=lab))
            assert assert_error_shape(r, 503)["code"] == "unavailable"
        assert client.get("/api/operations/LOCKED", headers=lab).status_code == 404
        h = bearer(client, "dvi")
        entries = client.get("/api/audit", headers=bearer(client, "admin")).json()
        assert not [e for e in entries if e["action"].startswith("auth.login_f")]
        assert client.get("/api/me", headers=h).status_code == 200
    finally:
        if dbname:
            with world["engine"].begin() as conn:
                conn.execute(text(f'ALTER DATABASE "{dbname}" RESET lock_timeout'))


def test_an_unreachable_database_is_503_and_an_error_page(world: dict[str, Any]) -> None:
    app, client = world["app"], world["client"]
    good = app.state.sessionmaker
    if world["backend"] == "sqlite":
        dead = create_engine(f"sqlite:///{world['path'].parent / 'no-such-dir' / 'x.sqlite3'}")
    else:
        dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    app.state.sessionmaker = store_db.session_factory(dead, reads_first=True)
    try:
        r = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert assert_error_shape(r, 503)["code"] == "unavailable"
        client.cookies.set("opendvi_login_csrf", "t", path="/login")
        page = client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": "t"},
                           headers={"accept": "text/html"})
        assert page.status_code == 503 and "text/html" in page.headers["content-type"]
        assert "try again" in page.text
    finally:
        app.state.sessionmaker = good
        dead.dispose()


def test_sign_in_checks_the_password_outside_any_transaction(world: dict[str, Any],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """While argon2 runs, another writer can take the lock at once: the sign-in holds none."""
    if world["backend"] != "sqlite":
        pytest.skip("SQLite's write lock is database-wide; PostgreSQL readers never lock")
    seen: list[bool] = []
    real = security.verify_password

    def spying(password_hash: str | None, password: str) -> bool:
        conn = sqlite3.connect(world["path"], timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            seen.append(True)
        except sqlite3.OperationalError:
            seen.append(False)
        finally:
            conn.close()
        return real(password_hash, password)

    monkeypatch.setattr(security, "verify_password", spying)
    r = world["client"].post("/api/auth/login", json={"username": "lab", "password": password_of("lab")})
    assert r.status_code == 200
    assert seen == [True]


@backends
def test_a_reads_first_session_refuses_to_write_outside_begin_write(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine, reads_first=True)
        with factory() as db:
            repo.list_users(db)
            with pytest.raises(store_db.WriteOutsideTransaction):
                repo.create_user(db, username="x", password_hash="h", role=Role.reviewer)
            db.rollback()
            store_db.begin_write(db)
            repo.create_user(db, username="x", password_hash="h", role=Role.reviewer)
            db.commit()
            assert [u.username for u in repo.list_users(db)] == ["x"]


def test_sqlite_runs_in_wal_mode_with_a_pool_for_the_workers(tmp_path: Path) -> None:
    engine = store_db.make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert engine.pool.size() >= 20  # type: ignore[attr-defined]
    engine.dispose()


@backends
def test_concurrent_readers_and_writers_all_succeed(backend: str, tmp_path: Path) -> None:
    """30 readers and 6 writers at once (operations created, a names update, a matching run):
    every request succeeds and the audit chain stays whole."""
    with migrated_engine(backend, tmp_path) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("dvi", "lab", "intake", "admin")}
        results: list[int] = []
        lock = threading.Lock()

        def reader(i: int) -> None:
            for path in ("/api/operations", "/api/remains", "/api/operations/demo"):
                r = client.get(path, headers=h["dvi"] if i % 2 else h["admin"])
                with lock:
                    results.append(r.status_code)

        def writer(i: int) -> None:
            if i == 0:  # a matching run queued, then executed by the worker's code while the others work
                r = client.post("/api/operations/demo/matching-runs", headers=h["dvi"])
                assert [status for _, status in run_queued(app)] == ["finished"]
            elif i == 1:
                r = client.put("/api/missing-persons/M1/details", json={"full_name": "A Name"}, headers=h["intake"])
            else:
                r = client.post("/api/operations", json={"code": f"C{i}", "name": "x"}, headers=h["lab"])
            with lock:
                results.append(r.status_code)

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(30)]
        threads += [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(results) == 30 * 3 + 6
        assert sorted(set(results)) == [200, 201, 202], results
        factory = store_db.session_factory(engine)
        with factory() as db:
            report = verify_chain(db)
        assert report.ok, report.problems


def test_the_sqlite_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data = tmp_path / "new" / "data"
        url = store_db.database_url(data_dir=data)
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        engine = store_db.make_engine(url)
        store_db.upgrade(engine)
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            repo.create_user(db, username="u", password_hash="h", role=Role.reviewer)
        with engine.connect() as conn:  # a connection open: WAL and SHM exist
            conn.exec_driver_sql("SELECT 1")
            files = sorted(p.name for p in data.iterdir())
            assert {"opendvi.sqlite3", "opendvi.sqlite3-wal", "opendvi.sqlite3-shm"} <= set(files)
            for p in data.iterdir():
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, (p.name, oct(p.stat().st_mode))
        engine.dispose()
    finally:
        os.umask(old)


def test_existing_sqlite_files_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "opendvi.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    engine = store_db.make_engine(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    engine.dispose()
