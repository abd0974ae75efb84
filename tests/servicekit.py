"""Helpers of the store/service/web tests: databases, apps, users, sign-in.

PostgreSQL: ``OPENDVI_TEST_DATABASE_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/opendvi_test``, what ``.ci/run``
starts); the PostgreSQL variants are skipped, with the reason, only when no
server answers there. The database is emptied before each use.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# argon2's cheapest profile for the tests' many accounts (hashes carry their parameters)
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from sqlalchemy import Engine, text

from opendvi.service import security
from opendvi.store import db as store_db

security._HASHER = PasswordHasher.from_parameters(CHEAPEST)

PG_URL = os.environ.get(
    "OPENDVI_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/opendvi_test"
)
BACKENDS = ("sqlite", "postgresql")
ADMIN_PASSWORD = "admin-test-password-1"

#: one user per role (username -> role); passwords are "<username>-password-1"
ROLE_USERS = {
    "admin": "administrator",
    "intake": "intake_officer",
    "lab": "laboratory_analyst",
    "dvi": "dvi_analyst",
    "reviewer": "reviewer",
    "reviewer2": "reviewer",
    "liaison": "family_liaison",
}
#: a name that must never reach the laboratory or DVI side
SECRET_NAME = "Olena Zvirynska-Testova"


def password_of(username: str) -> str:
    return ADMIN_PASSWORD if username == "admin" else f"{username}-password-1"


@functools.cache
def pg_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:  # pragma: no cover
        return "psycopg is not installed"
    engine = store_db.make_engine(store_db.database_url(url=PG_URL), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"no PostgreSQL server at {PG_URL} ({type(exc).__name__}); set OPENDVI_TEST_DATABASE_URL"
    finally:
        engine.dispose()
    return None


def empty_engine(backend: str, tmp_path: Path, **kwargs: Any) -> Engine:
    """An engine on an empty database of ``backend``."""
    if backend == "sqlite":
        return store_db.make_engine(f"sqlite:///{(tmp_path / 'opendvi.sqlite3').as_posix()}", **kwargs)
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    engine = store_db.make_engine(store_db.database_url(url=PG_URL), **kwargs)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    return engine


@contextmanager
def migrated_engine(backend: str, tmp_path: Path, **kwargs: Any) -> Iterator[Engine]:
    engine = empty_engine(backend, tmp_path, **kwargs)
    store_db.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def add_role_users(factory: Any) -> None:
    from opendvi.service.security import hash_password
    from opendvi.store import repositories as repo
    from opendvi.store.models import Role

    with store_db.transaction(factory) as db:
        for username, role in ROLE_USERS.items():
            if username == "admin":
                continue
            repo.create_user(db, username=username, password_hash=hash_password(password_of(username)),
                             role=Role(role), by="admin")


def make_app(engine: Engine, *, demo: bool = True, users: bool = True, **settings: Any) -> Any:
    """The service on ``engine``, with the tests' users and the demo case; ``settings``: fields of
    :class:`~opendvi.service.settings.Settings` other than the defaults."""
    from opendvi.service import bootstrap
    from opendvi.service.app import create_app
    from opendvi.service.settings import Settings

    # a locked sign-in's 429 is answered at once here (service/admission.py; test_service_admission times it)
    settings.setdefault("signin_refusal_delay", 0.0)
    app = create_app(settings=Settings(environment="test", **settings), engine=engine)
    # the bootstrap admin's password is one-time; the tests' admin has changed it already
    bootstrap.ensure_admin(app.state.sessionmaker, password=ADMIN_PASSWORD, must_change_password=False)
    if users:
        add_role_users(app.state.sessionmaker)
    if demo:
        bootstrap.load_demo(app.state.sessionmaker)
    return app


def bearer(client: Any, username: str) -> dict[str, str]:
    r = client.post("/api/auth/login", json={"username": username, "password": password_of(username)})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def assert_error_shape(response: Any, status: int | None = None) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"status", "code", "message", "details"}, err
    assert err["status"] == response.status_code
    assert isinstance(err["message"], str) and err["message"]
    if status is not None:
        assert response.status_code == status, body
    return err


def family_files(suffix: str) -> tuple[bytes, bytes]:
    """A families template (one family: two typed parents, a missing son) and
    the parents' profiles (profile CSV, demo markers), codes ending in ``suffix``."""
    fam = (
        "family,id,father,mother,sex,missing,sample\n"
        f"FT{suffix},FA,,,M,,BC-FA{suffix}\n"
        f"FT{suffix},MO,,,F,,BC-MO{suffix}\n"
        f"FT{suffix},MP{suffix},FA,MO,M,yes,\n"
    )
    prof = (
        "sample,D3S1358,D3S1358,TH01,TH01\n"
        f"BC-FA{suffix},14,15,6,9.3\n"
        f"BC-MO{suffix},15,17,7,9.3\n"
    )
    return fam.encode(), prof.encode()


def frequencies_long_csv(*, drop: str | None = None, scale: float = 1.0) -> bytes:
    """The demo case's frequencies as a long CSV with two populations (``A``
    as in the demo, ``B`` the same); ``drop`` leaves one marker out."""
    import json

    from opendvi.data import demo_case_path

    case = json.loads(Path(demo_case_path()).read_text())
    lines = ["marker,allele,frequency,population"]
    for pop in ("A", "B"):
        for m in case["markers"]:
            if m["name"] == drop:
                continue
            for a, f in zip(m["alleles"], m["frequencies"], strict=True):
                lines.append(f"{m['name']},{a},{f * scale:.8f},{pop}")
    return ("\n".join(lines) + "\n").encode()


def run_queued(app: Any) -> list[tuple[int, str]]:
    """Execute the queued matching runs in this process, through the worker's own functions
    (:func:`opendvi.service.worker.drain`): what ``opendvi worker`` does, without a process."""
    from opendvi.service.worker import WorkerConfig, drain

    factory = app.state.sessionmaker if hasattr(app, "state") else app
    return drain(factory, config=WorkerConfig(lease_s=60.0, heartbeat_s=5.0, poll_s=0.1))


def match(client: Any, app: Any, headers: dict[str, str], code: str = "demo", **body: Any) -> dict[str, Any]:
    """Queue a matching run through the API (202), execute it (:func:`run_queued`) and return the
    finished run as ``GET /api/matching-runs/{id}`` shows it."""
    r = client.post(f"/api/operations/{code}/matching-runs", json=body or None, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    run_queued(app)
    run = client.get(f"/api/matching-runs/{r.json()['run']}", headers=headers)
    assert run.status_code == 200, run.text
    assert run.json()["status"] == "finished", run.json()
    return dict(run.json())
