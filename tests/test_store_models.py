"""The store on SQLite and PostgreSQL: migrations, models, repositories, audit chain."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from opendvi.data import demo_case_path
from opendvi.io.case_json import case_to_dict, read_case
from opendvi.store import audit
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.errors import ConflictError, ImportValidationError, NotFoundError
from opendvi.store.models import AuditEntry, Base, Profile, Remains, Role
from tests.clikit import Result, run
from tests.servicekit import BACKENDS, PG_URL, empty_engine, migrated_engine

backends = pytest.mark.parametrize("backend", BACKENDS)


def _demo_import(factory, *, code: str = "EX-1"):  # type: ignore[no-untyped-def]
    case = read_case(demo_case_path())
    with store_db.transaction(factory) as db:
        op = repo.create_operation(db, code=code, name="exchange 1", expected_count=8, by="tester")
        summary = repo.import_case(db, case=case, operation=op, filename="demo-case.json", sha256="0" * 64, by=None)
    return case, summary


def _head() -> str | None:
    """The newest migration script's revision."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(store_db.MIGRATIONS_DIR)).get_current_head()


@backends
def test_migrations__upgrade_from_empty_and_downgrade(backend: str, tmp_path: Path) -> None:
    engine = empty_engine(backend, tmp_path)
    try:
        assert store_db.current_revision(engine) is None
        store_db.upgrade(engine)
        assert store_db.current_revision(engine) == _head()
        tables = set(store_db.table_names(engine))
        assert set(Base.metadata.tables) <= tables
        store_db.downgrade(engine, "base")
        assert set(store_db.table_names(engine)) <= {"alembic_version"}
        assert store_db.current_revision(engine) is None
        store_db.upgrade(engine)  # and up again
        assert store_db.current_revision(engine) == _head()
    finally:
        engine.dispose()


@backends
def test_migrations__match_the_models(backend: str, tmp_path: Path) -> None:
    """No difference between the migrated schema and the models (autogenerate finds nothing)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with migrated_engine(backend, tmp_path) as engine, engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


@backends
def test_import_case__registers_remains_families_donors_profiles(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        case, summary = _demo_import(factory)
        assert summary.remains_new == 8
        assert summary.families_new == 5
        assert summary.missing_persons_new == 6
        assert summary.donors_new == sum(len(f.references) for f in case.families)
        with factory() as db:
            op = repo.get_operation(db, code="EX-1")
            assert repo.operation_dashboard(db, operation=op)["received"] == 8
            assert [r.barcode for r in repo.list_remains(db, q="v1")] == ["V1"]
            stored = repo.build_case(db, operation=op)
            # the case read back from the database is the case imported
            original = case_to_dict(case)
            back = case_to_dict(stored.case)
            assert back["markers"] == original["markers"]
            assert {r["id"]: r["genotypes"] for r in back["remains"]} == {
                r["id"]: r["genotypes"] for r in original["remains"]
            }
            for f_orig, f_back in zip(case.families, stored.case.families, strict=True):
                assert f_back.loglik(stored.case.markers).total == pytest.approx(
                    f_orig.loglik(case.markers).total, rel=1e-12
                )


@backends
def test_import_case__again_changes_nothing_and_retyping_adds_a_version(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        case, _ = _demo_import(factory)
        data = case_to_dict(case)
        with store_db.transaction(factory) as db:
            op = repo.get_operation(db, code="EX-1")
            again = repo.import_case(db, case=case, operation=op, filename="x.json", sha256="1" * 64, by=None)
        assert (again.remains_new, again.remains_retyped, again.reference_profiles_new) == (0, 0, 0)
        # re-type V1 at one marker
        v1 = data["remains"][0]
        marker = next(iter(v1["genotypes"]))
        v1["genotypes"] = {marker: v1["genotypes"][marker]}
        from opendvi.io.case_json import case_from_dict

        with store_db.transaction(factory) as db:
            op = repo.get_operation(db, code="EX-1")
            s = repo.import_case(db, case=case_from_dict(data), operation=op, filename="retyped.json",
                                 sha256="2" * 64, by=None)
        assert s.remains_retyped == 1
        with factory() as db:
            versions = repo.profiles_of(db, remains=repo.get_remains(db, barcode=v1["id"]))
            assert [p.version for p in versions] == [1, 2]
            assert len(versions[1].genotypes) == 1 and len(versions[0].genotypes) > 1


@backends
def test_import_case__refused_whole_with_every_problem(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        case, _ = _demo_import(factory)
        with store_db.transaction(factory) as db:
            repo.create_operation(db, code="EX-2", name="exchange 2")
        with factory() as db:
            n_audit = db.scalar(select(func.count(AuditEntry.id)))
        with pytest.raises(ImportValidationError) as info, store_db.transaction(factory) as db:
            op2 = repo.get_operation(db, code="EX-2")
            repo.import_case(db, case=case, operation=op2, filename="bad.json", sha256="3" * 64, by=None)
        problems = info.value.problems
        assert all("already registered in operation EX-1" in p for p in problems)
        assert len(problems) == 8  # every remains listed, not just the first
        with factory() as db:
            op2 = repo.get_operation(db, code="EX-2")
            assert db.scalar(select(func.count(Remains.id)).where(Remains.operation_id == op2.id)) == 0
            assert db.scalar(select(func.count(AuditEntry.id))) == n_audit


@backends
def test_constraints__enforced_by_the_database(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        _demo_import(factory)
        with pytest.raises(IntegrityError), store_db.transaction(factory) as db:
            db.add(Profile(remains_id=None, donor_id=None, version=1, genotypes={}))
            db.flush()
        with pytest.raises(IntegrityError), store_db.transaction(factory) as db:
            r = repo.get_remains(db, barcode="V1")
            db.add(Profile(remains_id=r.id, version=1, genotypes={}))
            db.flush()
        with pytest.raises(ConflictError), store_db.transaction(factory) as db:
            repo.create_operation(db, code="EX-1", name="again")
        with pytest.raises(NotFoundError), factory() as db:
            repo.get_remains(db, barcode="nope")


@backends
def test_users_and_sessions(backend: str, tmp_path: Path) -> None:
    from datetime import timedelta

    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            u = repo.create_user(db, username="ann", password_hash="x", role=Role.reviewer)
            token, row = repo.create_auth_session(db, user=u, ttl=timedelta(hours=1))
            assert row.token_hash != token
        with factory() as db:
            found = repo.get_auth_session(db, token=token)
            assert found is not None and found.user.username == "ann"
        with store_db.transaction(factory) as db:
            repo.update_user(db, username="ann", active=False)
        with factory() as db:
            assert repo.get_auth_session(db, token=token) is None


# ---------------------------------------------------------------------------
# the audit log
# ---------------------------------------------------------------------------


@backends
def test_audit__chain_verifies_and_log_is_append_only(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        _demo_import(factory)
        with factory() as db:
            report = audit.verify_chain(db)
        assert report.ok and report.entries == 2, report
        # the database itself refuses to change or delete an entry
        for stmt in ("UPDATE audit_log SET action = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"):
            with pytest.raises(DBAPIError), engine.begin() as conn:
                conn.execute(text(stmt))
        with factory() as db:
            assert audit.verify_chain(db).ok


def _drop_guards(engine, backend: str) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update ON audit_log"))


def _cli_verify(backend: str, tmp_path: Path) -> Result:
    env: dict[str, str | None] = {}
    args = ["audit", "verify"]
    if backend == "sqlite":
        env["DATABASE_URL"] = None
        args += ["--data-dir", str(tmp_path)]
    else:
        env["DATABASE_URL"] = PG_URL
        env["OPENDVI_DATA_DIR"] = str(tmp_path)  # the audit checkpoints of this test's database
    return run(*args, env=env)


@backends
@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_log SET details = '{\"operation\":\"forged\"}' WHERE seq = 2",
        "UPDATE audit_log SET username = 'someone-else' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 3",
    ],
    ids=["edit-details", "edit-user", "delete-middle", "delete-last"],
)
def test_audit__tampering_is_detected_by_audit_verify(backend: str, tamper: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        _demo_import(factory)
        with store_db.transaction(factory) as db:
            audit.append(db, action="test.third", username="t")
        ok = _cli_verify(backend, tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "intact: 3 entries" in ok.stdout
        _drop_guards(engine, backend)  # an attacker with database rights
        with engine.begin() as conn:
            assert conn.execute(text(tamper)).rowcount == 1
        with factory() as db:
            report = audit.verify_chain(db)
        assert not report.ok and report.problems
        broken = _cli_verify(backend, tmp_path)
        assert broken.returncode == 1
        assert "BROKEN" in broken.stderr


def test_audit__hash_is_over_canonical_json() -> None:
    h = audit.entry_hash(prev_hash=audit.GENESIS, seq=1, at="2026-01-01T00:00:00.000000+00:00", username="a",
                         action="x", object_type=None, object_id=None, details="{}")
    body = json.dumps({"action": "x", "at": "2026-01-01T00:00:00.000000+00:00", "details": "{}", "object_id": None,
                       "object_type": None, "seq": 1, "username": "a"}, separators=(",", ":"), sort_keys=True)
    assert h == hashlib.sha256((audit.GENESIS + "\n" + body).encode()).hexdigest()


def test_database_url__defaults_and_postgres_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert store_db.database_url(data_dir=tmp_path) == f"sqlite:///{(tmp_path / 'opendvi.sqlite3').as_posix()}"
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    assert store_db.database_url(data_dir=tmp_path) == "postgresql+psycopg://u:p@h/db"
    assert store_db.database_url(url="sqlite://") == "sqlite://"
