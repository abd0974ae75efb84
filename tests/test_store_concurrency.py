"""Concurrent decisions on SQLite and PostgreSQL: one winner, one clear conflict, nothing lost or doubled."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.store import audit
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.errors import ConflictError
from opendvi.store.models import Candidate, Identification, IdentificationState, MatchingRun, Role
from tests.servicekit import BACKENDS, migrated_engine

backends = pytest.mark.parametrize("backend", BACKENDS)


def _setup(factory: Any) -> tuple[int, int]:
    """Demo case, users, and two candidates of remains V1 (without running the engine)."""
    case = read_case(demo_case_path())
    with store_db.transaction(factory) as db:
        op = repo.create_operation(db, code="EX", name="exchange")
        repo.import_case(db, case=case, operation=op, filename="demo.json", sha256="0" * 64, by=None)
        for name, role in (("dvi", Role.dvi_analyst), ("dvi2", Role.dvi_analyst), ("rev1", Role.reviewer),
                           ("rev2", Role.reviewer)):
            repo.create_user(db, username=name, password_hash="x", role=role)
        stored = repo.build_case(db, operation=op)
        fdb = stored.frequency_database
        run = MatchingRun(operation_id=op.id, software_version="test", engine="test", frequency_database_id=fdb.id,
                          frequency_database_sha256=fdb.sha256, mutation_models={}, parameters={})
        db.add(run)
        db.flush()
        rid, pid = stored.remains["V1"]
        ids = []
        for rank, mp in enumerate(("M1", "M2"), start=1):
            c = Candidate(run_id=run.id, remains_id=rid, remains_profile_id=pid, missing_person_id=stored.missing[mp],
                          log10_lr=10.0 / rank, posterior=0.5, exclusions=0, n_markers=23, rank=rank, per_marker={})
            db.add(c)
            db.flush()
            ids.append(c.id)
    return ids[0], ids[1]


def _race(fns: list[Callable[[], Any]]) -> list[Any]:
    """Run the functions at the same moment in threads; results or exceptions."""
    barrier = threading.Barrier(len(fns))
    out: list[Any] = [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fns[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


@backends
def test_two_reviewers_confirm_the_same_identification__one_wins(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        c1, _ = _setup(factory)
        with store_db.transaction(factory) as db:
            ident = repo.propose_identification(db, candidate=repo.get_candidate(db, candidate_id=c1),
                                                by=repo.get_user(db, username="dvi"))
            ident_id, version = ident.id, ident.version

        def confirm(reviewer: str) -> Callable[[], str]:
            def go() -> str:
                with store_db.transaction(factory) as db:
                    repo.decide_identification(db, identification_id=ident_id, action="confirm",
                                               by=repo.get_user(db, username=reviewer), expected_version=version)
                return reviewer
            return go

        results = _race([confirm("rev1"), confirm("rev2")])
        winners = [r for r in results if isinstance(r, str)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], ConflictError), repr(losers[0])
        assert "changed by someone else" in str(losers[0])
        with factory() as db:
            ident = repo.get_identification(db, identification_id=ident_id)
            assert ident.state == IdentificationState.confirmed
            assert ident.decided_by is not None and ident.decided_by.username == winners[0]
            assert ident.version == version + 1
            actions = [e.action for e in repo.audit_entries(db, limit=10)]
            assert actions.count("identification.confirm") == 1
            assert audit.verify_chain(db).ok


@backends
def test_two_identifications_of_one_remains__one_wins(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        c1, c2 = _setup(factory)

        def propose(cid: int, user: str) -> Callable[[], int]:
            def go() -> int:
                with store_db.transaction(factory) as db:
                    return repo.propose_identification(db, candidate=repo.get_candidate(db, candidate_id=cid),
                                                       by=repo.get_user(db, username=user)).id
            return go

        results = _race([propose(c1, "dvi"), propose(c2, "dvi2")])
        ok = [r for r in results if isinstance(r, int)]
        failed = [r for r in results if isinstance(r, Exception)]
        assert len(ok) == 1 and len(failed) == 1, results
        assert isinstance(failed[0], ConflictError), repr(failed[0])
        with factory() as db:
            n = db.scalar(select(func.count(Identification.id)))
            assert n == 1
            assert audit.verify_chain(db).ok


@backends
def test_partial_unique_index__refuses_a_second_active_identification(backend: str, tmp_path: Path) -> None:
    """Even past the Python check, the database refuses two active identifications of one remains."""
    from sqlalchemy.exc import IntegrityError

    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        c1, c2 = _setup(factory)
        with factory() as db:
            user = repo.get_user(db, username="dvi")
            cands = [repo.get_candidate(db, candidate_id=c) for c in (c1, c2)]
            rows = [Identification(remains_id=c.remains_id, missing_person_id=c.missing_person_id, candidate_id=c.id,
                                   state=IdentificationState.proposed, proposed_by_id=user.id) for c in cands]
            db.add(rows[0])
            db.flush()
            db.add(rows[1])
            with pytest.raises(IntegrityError):
                db.flush()
            db.rollback()
        # a rejected one does not block a new proposal
        with store_db.transaction(factory) as db:
            first = repo.propose_identification(db, candidate=repo.get_candidate(db, candidate_id=c1),
                                                by=repo.get_user(db, username="dvi"))
            fid = first.id
        with store_db.transaction(factory) as db:
            repo.decide_identification(db, identification_id=fid, action="reject", reason="weak",
                                       by=repo.get_user(db, username="rev1"))
        with store_db.transaction(factory) as db:
            repo.propose_identification(db, candidate=repo.get_candidate(db, candidate_id=c2),
                                        by=repo.get_user(db, username="dvi"))


@backends
def test_concurrent_audit_appends__never_fork_the_chain(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)

        def append(i: int) -> Callable[[], int]:
            def go() -> int:
                with store_db.transaction(factory) as db:
                    return audit.append(db, action="test", username=f"u{i}").seq
            return go

        results = _race([append(i) for i in range(6)])
        assert sorted(results) == [1, 2, 3, 4, 5, 6], results
        with factory() as db:
            assert audit.verify_chain(db).ok
