"""The dashboard's counts (``repositories.operation_dashboard``): each remains counted once, only the
operation's own, only the current run's candidates with LR > 1; and, on SQLite, the plan that keeps
them cheap at national scale without ``ANALYZE`` (covering indexes, no ``count(DISTINCT)`` sort)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.store import db as store_db
from opendvi.store import models as m
from opendvi.store import repositories as repo
from tests.servicekit import BACKENDS, migrated_engine

backends = pytest.mark.parametrize("backend", BACKENDS)


def _run(db: Any, op: m.Operation, status: m.RunStatus, lrs: dict[str, list[float | None]]) -> None:
    """A run of ``status`` with candidates ``barcode -> [log10 LR, ...]`` (None: LR 0)."""
    run = m.MatchingRun(operation_id=op.id, software_version="t", engine="t",
                      frequency_database_id=op.frequency_database_id, frequency_database_sha256="0" * 64,
                      mutation_models={}, parameters={}, status=status.value)
    db.add(run)
    db.flush()
    mps = list(db.execute(select(m.MissingPerson.id).order_by(m.MissingPerson.id)).scalars())
    for barcode, values in lrs.items():
        rem = db.execute(select(m.Remains).where(m.Remains.barcode == barcode)).scalar_one()
        pid = db.execute(select(m.Profile.id).where(m.Profile.remains_id == rem.id)).scalars().first()
        for rank, v in enumerate(values, start=1):
            db.add(m.Candidate(run_id=run.id, remains_id=rem.id, remains_profile_id=pid, missing_person_id=mps[rank],
                             log10_lr=v, posterior=0.0, exclusions=0, n_markers=1, rank=rank, per_marker={}))
    db.flush()


@backends
def test_operation_dashboard__counts_each_remains_once_in_its_operation_and_current_run(
        backend: str, tmp_path: Path) -> None:
    case = read_case(demo_case_path())
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            op = repo.create_operation(db, code="EX-1", name="one", expected_count=12, by="t")
            other = repo.create_operation(db, code="EX-2", name="two", by="t")
            repo.import_case(db, case=case, operation=op, filename="demo.json", sha256="0" * 64, by=None)
            other.frequency_database_id = op.frequency_database_id
            bc = [r.id for r in case.remains]
            first = db.execute(select(m.Remains).where(m.Remains.barcode == bc[0])).scalar_one()
            p1 = db.execute(select(m.Profile).where(m.Profile.remains_id == first.id)).scalar_one()
            db.add(m.Profile(remains_id=first.id, version=2, genotypes=p1.genotypes))  # re-typed: typed once
            db.add(m.Remains(barcode="UNTYPED", operation_id=op.id))  # received, not typed
            db.add(m.Remains(barcode="ELSEWHERE", operation_id=other.id))
            db.flush()
            elsewhere = db.execute(select(m.Remains).where(m.Remains.barcode == "ELSEWHERE")).scalar_one()
            db.add(m.Profile(remains_id=elsewhere.id, version=1, genotypes={}))
            db.flush()
            _run(db, op, m.RunStatus.finished, {bc[1]: [3.0], bc[2]: [5.0]})  # an older run: not counted
            # the current run: bc[0] two candidates with LR > 1 (once), bc[1] LR < 1, bc[2] LR 0, bc[3] LR 1
            _run(db, op, m.RunStatus.finished, {bc[0]: [7.5, 2.0], bc[1]: [-0.5, -3.0], bc[2]: [None],
                                              bc[3]: [0.0], bc[4]: [1e-6], "ELSEWHERE": [9.0]})
            _run(db, op, m.RunStatus.failed, {bc[5]: [9.0]})  # newer but not finished: not counted
            uid = repo.create_user(db, username="r", password_hash="x", role=m.Role.reviewer, by="t").id
            mps = list(db.execute(select(m.MissingPerson.id).order_by(m.MissingPerson.id)).scalars())
            rem_id = {r.barcode: r.id for r in db.execute(select(m.Remains)).scalars()}
            for k, (barcode, state) in enumerate([(bc[0], m.IdentificationState.proposed),
                                                  (bc[1], m.IdentificationState.confirmed),
                                                  (bc[2], m.IdentificationState.rejected),
                                                  ("ELSEWHERE", m.IdentificationState.confirmed)]):
                db.add(m.Identification(remains_id=rem_id[barcode], missing_person_id=mps[k], state=state,
                                      proposed_by_id=uid))
        with factory() as db:
            dash = repo.operation_dashboard(db, operation=repo.get_operation(db, code="EX-1"))
            assert dash == {"expected": 12, "received": len(bc) + 1, "typed": len(bc), "matched": 2,
                            "proposed": 1, "confirmed": 1, "runs": 3}
            dash2 = repo.operation_dashboard(db, operation=repo.get_operation(db, code="EX-2"))
            assert dash2 == {"expected": None, "received": 1, "typed": 1, "matched": 1, "proposed": 0,
                             "confirmed": 1, "runs": 0}


def test_operation_dashboard__sqlite_plan_reads_covering_indexes_without_analyze(tmp_path: Path) -> None:
    """No ``sqlite_stat1``: the typed count probes a covering index once a remains, the matched count reads
    the range of LR > 1 of the partial index of the rank-1 candidates (the plan that does not grow with
    the run's candidates), with no temporary B-tree for ``DISTINCT``."""
    with migrated_engine("sqlite", tmp_path) as engine, engine.connect() as conn:
        assert not conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'").all()
        operations = importlib.import_module("opendvi.store.repositories.operations")  # a private statement
        compiled = operations._dashboard_statement().compile(engine)
        params = compiled.construct_params({"op_id": 1})
        args = tuple(params[k] for k in compiled.positiontup or ())
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)]
    text = "\n".join(plan)
    assert "SEARCH candidates USING COVERING INDEX ix_candidates_run_best (run_id=? AND log10_lr>?)" in text, text
    assert "COVERING INDEX uq_profiles_remains_version (remains_id=?)" in text \
        or "COVERING INDEX sqlite_autoindex_profiles_2 (remains_id=?)" in text, text
    assert "TEMP B-TREE" not in text, text
    assert not any(line.startswith("SCAN candidates") or line.startswith("SCAN profiles") for line in plan), text


@backends
def test_operation_dashboard__counts_computed_once_per_change_of_the_data(backend: str, tmp_path: Path) -> None:
    """The counts are kept while the data's version (audit head, newest ids) is the same: a page read
    again runs no counting statement; a remains added (even without an audit entry), an audited change
    and another database with the same ids each give their own, fresh counts."""
    from sqlalchemy import event

    from opendvi.store import audit

    counted: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if "count(remains.id)" in statement.lower():
            counted.append(statement)

    def dashboard(factory: Any) -> dict[str, Any]:
        with store_db.transaction(factory) as db:
            return repo.operation_dashboard(db, operation=repo.get_operation(db, code="EX-1"))

    case = read_case(demo_case_path())
    with migrated_engine(backend, tmp_path) as engine, \
            migrated_engine("sqlite", tmp_path / "other") as other_engine:
        event.listen(engine, "before_cursor_execute", record)
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            op = repo.create_operation(db, code="EX-1", name="one", by="t")
            repo.import_case(db, case=case, operation=op, filename="demo.json", sha256="0" * 64, by=None)
        first = dashboard(factory)
        assert first["received"] == len(case.remains) and len(counted) == 1
        assert dashboard(factory) == first and len(counted) == 1  # nothing changed: nothing counted
        with store_db.transaction(factory) as db:  # a row without an audit entry
            db.add(m.Remains(barcode="UNTYPED", operation_id=repo.get_operation(db, code="EX-1").id))
        assert dashboard(factory)["received"] == len(case.remains) + 1 and len(counted) == 2
        with store_db.transaction(factory) as db:  # an audited change
            audit.append(db, action="test.touch", username="t", object_type="operation", object_id="EX-1")
        assert dashboard(factory)["received"] == len(case.remains) + 1 and len(counted) == 3
        # another database whose operation has the same id and whose audit head has the same number
        other = store_db.session_factory(other_engine)
        with store_db.transaction(other) as db:
            repo.create_operation(db, code="EX-1", name="one", by="t")
        assert dashboard(other)["received"] == 0
        event.remove(engine, "before_cursor_execute", record)


def test_operation_dashboard__concurrent_readers_after_a_change_count_once(tmp_path: Path) -> None:
    """Four readers arriving together after a change: one runs the counting statement, the others
    take its counts (the same numbers)."""
    import threading

    from sqlalchemy import event

    counted: list[str] = []
    with migrated_engine("sqlite", tmp_path) as engine:
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            repo.create_operation(db, code="EX-1", name="one", by="t")
        gate = threading.Barrier(4)

        def record(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            if "count(remains.id)" in statement.lower():
                counted.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        results: list[Any] = []

        reads = store_db.session_factory(engine, reads_first=True)  # as the service reads: no write lock

        def read() -> None:
            with reads() as db:
                op = repo.get_operation(db, code="EX-1")
                gate.wait()
                results.append(repo.operation_dashboard(db, operation=op))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        event.remove(engine, "before_cursor_execute", record)
    assert len(results) == 4 and all(r == results[0] for r in results)
    assert len(counted) == 1
