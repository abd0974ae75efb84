"""Several processes of the service: the sign-in throttle shared through the database,
reads that write nothing, ``opendvi serve --workers N``.

Speed itself is measured in ``benchmarks/bench_load.py``, never here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from opendvi.service.app import create_app
from opendvi.service.settings import Settings
from opendvi.service.throttle import LoginThrottle
from opendvi.store import db as store_db
from tests.clikit import run
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, migrated_engine, password_of

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _same_database(engine: Engine) -> Engine:
    """A second engine (its own pool, as another process has) on ``engine``'s database."""
    return store_db.make_engine(engine.url.render_as_string(hide_password=False))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with migrated_engine(request.param, tmp_path) as e:
        yield e


def test_the_throttle_in_the_database_backs_off_like_the_one_in_memory(engine: Engine) -> None:
    clock = Clock()
    table = LoginThrottle(account_free=3, address_free=11, cap=60.0, clock=clock, engine=engine)
    memory = LoginThrottle(account_free=3, address_free=11, cap=60.0, clock=clock)
    for t in (table, memory):
        clock.now = 1_000_000.0
        waits = []
        for _ in range(3):
            assert t.failure(account="alice", address="10.0.0.1") == []
        for _ in range(5):
            locks = t.failure(account="ALICE ", address="10.0.0.1")
            assert [lk.scope for lk in locks] == ["account"]
            waits.append(t.retry_after(account="alice", address="10.0.0.2"))
            clock.now += waits[-1]
        assert waits == [1, 2, 4, 8, 16]
        assert t.success(account="Alice") == 8 and t.success(account="alice") == 0
    # forgotten after an hour without failures, and the table stays bounded
    bounded = LoginThrottle(account_free=1, address_free=10**6, forget=100.0, max_keys=30, clock=clock,
                            engine=engine)
    for i in range(60):
        bounded.failure(account=f"guess-{i}", address="10.9.9.9")
    assert len(bounded) <= 30
    clock.now += 1000
    bounded.failure(account="someone", address="10.8.8.8")
    assert len(bounded) <= 2  # the stale keys went


def test_concurrent_failures_on_one_key_are_all_counted(engine: Engine) -> None:
    """Threads (and processes) failing on the same new key at once: no lost count, no duplicate row,
    no connection shared between threads."""
    from concurrent.futures import ThreadPoolExecutor

    t = LoginThrottle(account_free=10**6, address_free=10**6, engine=engine)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: t.failure(account="same", address=f"10.0.0.{i % 2}"), range(40)))
    assert results == [[]] * 40
    assert t.success(account="same") == 40
    assert len(t) == 2  # the two addresses


def test_two_app_instances_on_one_database_share_the_lockout(engine: Engine) -> None:
    """What two worker processes of ``opendvi serve --workers 2`` are: each its own app, engine and pool."""
    first = make_app(engine)
    other_engine = _same_database(engine)
    try:
        second = create_app(settings=Settings(environment="test"), engine=other_engine)
        a, b = TestClient(first), TestClient(second)
        # three failures on each: six in all, over the five free ones of the account
        for client in (a, b, a, b, a, b):
            r = client.post("/api/auth/login", json={"username": "lab", "password": "wrong guess"})
            assert_error_shape(r, 401)
        for client in (a, b):
            r = client.post("/api/auth/login", json={"username": "lab", "password": password_of("lab")})
            assert assert_error_shape(r, 429)["code"] == "too_many_attempts"
        # another account is not locked, on either instance
        assert b.post("/api/auth/login", json={"username": "dvi", "password": password_of("dvi")}).status_code == 200
        assert a.post("/api/auth/login", json={"username": "dvi", "password": password_of("dvi")}).status_code == 200
    finally:
        other_engine.dispose()


def test_reads_write_nothing_and_a_revoked_session_ends_at_once(engine: Engine) -> None:
    """No per-request write (no last-seen update, no session refresh): the mix of the load benchmark
    runs without one INSERT, UPDATE or DELETE; yet a session that ends is refused on its next request."""
    app = make_app(engine)
    client = TestClient(app)
    h = {**bearer(client, "reviewer"), "accept": "text/html"}
    writes: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            for path in ("/", "/api/operations/demo", "/api/remains?operation=demo&limit=50", "/remains?operation=demo",
                         "/api/identifications", "/api/me"):
                assert client.get(path, headers=h).status_code == 200, path
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert writes == []
    # sign-out ends the session: the same token is refused on the next read
    assert client.post("/api/auth/logout", headers=h).status_code in (200, 204)
    assert_error_shape(client.get("/api/me", headers=h), 401)


def test_serve_documents_workers() -> None:
    from opendvi.cli.serve_cmd import default_workers

    assert 1 <= default_workers() <= 4
    assert "--workers" in (ROOT / "docs" / "service.md").read_text()
    out = run("serve", "--help", env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "--workers" in out.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_with_two_workers_shares_the_lockout(tmp_path: Path) -> None:
    """``opendvi serve --workers 2``: bootstrap once, two worker processes, one lockout. Each sign-in
    opens a new connection, so the failures land on both workers (a per-process throttle, counting
    about half of them on each, would not lock)."""
    import httpx

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(OPENDVI_ADMIN_PASSWORD="two workers one-time 4410", OPENDVI_ENV="development",
               OPENDVI_LOG_LEVEL="error")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "serve", "--host", "127.0.0.1", "--port",
                                 str(port), "--data-dir", str(tmp_path / "data"), "--no-demo", "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                        break
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            assert len(children) >= 2, log.read_text()
            assert "2 worker processes" in log.read_text()
            codes = [httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": f"wrong {i}"},
                                timeout=30).status_code for i in range(6)]
            assert codes == [401] * 6
            r = httpx.post(f"{base}/api/auth/login", json={"username": "admin",
                                                           "password": "two workers one-time 4410"}, timeout=30)
            assert r.status_code == 429, r.text
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                proc.kill()
                proc.wait()
