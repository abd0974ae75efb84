"""The remains list sorted or filtered by best LR, and the dashboard's matched count, without an aggregate
over the current run's candidates (issue 9: 300,000 of them while a national run is in progress): the
same rows, order, totals and counts as the aggregate ``max(log10_lr) GROUP BY remains`` they replace, on
SQLite and PostgreSQL, for every sort and filter; the best candidate of each remains is its rank-1
candidate in runs the service stored (full, incremental with carried rows, fragment groups); on SQLite
without ``ANALYZE``, the plans walk the partial index of the rank-1 candidates only as the outer loop."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, selectinload

import opendvi.store.repositories.remains as remains_repo
from opendvi.io.case_json import case_from_dict, case_to_dict
from opendvi.screening import simulate_case
from opendvi.store import db as store_db
from opendvi.store import models as m
from opendvi.store import repositories as repo
from opendvi.store.models_fragments import FragmentGroup, FragmentGroupMember
from opendvi.store.repositories.queries import Page, paginate
from opendvi.store.repositories.remains import _active_identification, _state_filter, _text_filter
from opendvi.store.repositories.runs import current_run_id
from tests.servicekit import BACKENDS, bearer, make_app, match, migrated_engine

backends = pytest.mark.parametrize("backend", BACKENDS)

#: log10 LRs drawn for the generated candidates: ties, LR 0 (None), LR 1 (0.0), below and above it
VALUES: tuple[float | None, ...] = (None, None, -2.0, 0.0, 0.0, 1.5, 3.0, 4.0, 4.0, 7.25)


def _old_page_remains(session: Session, *, operation: m.Operation | None = None, q: str | None = None,
                      state: str | None = None, min_log10_lr: float | None = None, max_log10_lr: float | None = None,
                      unreviewed_above: float | None = None, page: int = 1, per_page: int = 50,
                      sort: str = "barcode") -> Page:
    """The list as it was read before issue 9's indexes: the best LR of every remains an aggregate over
    the current run's candidates, outer-joined (the reference the new reads must equal)."""
    run_id = current_run_id(session)
    rid = run_id if run_id is not None else -1
    best = (select(m.Candidate.remains_id.label("rid"), func.max(m.Candidate.log10_lr).label("best"))
            .where(m.Candidate.run_id == rid).group_by(m.Candidate.remains_id).subquery())
    stmt = select(m.Remains, best.c.best).outerjoin(best, best.c.rid == m.Remains.id) \
        .options(selectinload(m.Remains.operation))
    if operation is not None:
        stmt = stmt.where(m.Remains.operation_id == operation.id)
    stmt = _state_filter(_text_filter(stmt, q), state)
    if min_log10_lr is not None:
        stmt = stmt.where(best.c.best >= min_log10_lr)
    if max_log10_lr is not None:
        stmt = stmt.where(best.c.best <= max_log10_lr)
    if unreviewed_above is not None:
        stmt = stmt.where(best.c.best >= unreviewed_above, ~_active_identification().exists())
    sorts = {"barcode": [m.Remains.barcode], "operation": [m.Remains.operation_id, m.Remains.barcode],
             "received": [m.Remains.created_at], "best_lr": [best.c.best]}
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, scalars=False, tiebreak=m.Remains.id,
                    sorts=sorts)


def _old_matched(session: Session, operation: m.Operation) -> int:
    """The dashboard's matched count as it was: remains of the operation with a candidate of LR > 1."""
    rid = current_run_id(session)
    return session.scalar(select(func.count(m.Remains.id)).where(
        m.Remains.operation_id == operation.id,
        select(m.Candidate.id).where(m.Candidate.run_id == rid, m.Candidate.remains_id == m.Remains.id,
                                     m.Candidate.log10_lr > 0).exists())) or 0


def _rows(pg: Page) -> list[tuple[int, float | None]]:
    return [(r.id, best) for r, best in pg.items]


FILTERS: list[dict[str, Any]] = [
    {}, {"min_log10_lr": 4.0}, {"min_log10_lr": 0.0}, {"max_log10_lr": 0.0}, {"max_log10_lr": -2.0},
    {"min_log10_lr": 0.0, "max_log10_lr": 4.0}, {"min_log10_lr": 1.0, "max_log10_lr": 0.5},
    {"unreviewed_above": 3.0}, {"unreviewed_above": 0.0, "max_log10_lr": 4.0},
]
#: (q, state) pairs
SEARCHES: list[tuple[str | None, str | None]] = [(None, None), ("1", None), (None, "none"), (None, "proposed"),
                                                 ("1", "confirmed")]
SORTS = ("barcode", "-barcode", "operation", "-operation", "received", "-received", "best_lr", "-best_lr")


def _assert_same_lists(db: Session, operations: list[m.Operation | None], *, per_page: int = 7) -> int:
    """Every sort and filter, every page and one past the end: the new reads equal the old; the number of
    lists compared."""
    n = 0
    for op, (q, state), lr, sort in itertools.product(operations, SEARCHES, FILTERS, SORTS):
        kw: dict[str, Any] = {"operation": op, "q": q, "state": state, "sort": sort, **lr}
        page = 1
        while True:
            new = repo.page_remains(db, page=page, per_page=per_page, **kw)
            old = _old_page_remains(db, page=page, per_page=per_page, **kw)
            assert (_rows(new), new.total) == (_rows(old), old.total), (kw, page)
            if page > -(-old.total // per_page):
                break
            page += 1
        n += 1
    return n


# ---------------------------------------------------------------------------
# a generated database: ties, LR 0, remains without candidates, two finished runs and newer unfinished ones
# ---------------------------------------------------------------------------


def _generated(db: Session, seed: int) -> list[m.Operation]:
    case, _ = simulate_case(families=10, remains=40, seed=seed)
    doc = case_to_dict(case)
    a = repo.create_operation(db, code="A", name="a", by="t")
    b = repo.create_operation(db, code="B", name="b", by="t")
    repo.import_case(db, case=case_from_dict({**doc, "remains": doc["remains"][:24]}), operation=a, filename="a",
                     sha256="0" * 64, by=None)
    repo.import_case(db, case=case_from_dict({**doc, "remains": doc["remains"][24:], "families": []}), operation=b,
                     filename="b", sha256="1" * 64, by=None)
    b.frequency_database_id = a.frequency_database_id
    db.add(m.Remains(barcode="UNTYPED-1", operation_id=a.id))  # received, never matched
    db.flush()
    rng = random.Random(seed)
    remains = list(db.execute(select(m.Remains.id, m.Profile.id).outerjoin(
        m.Profile, m.Profile.remains_id == m.Remains.id).order_by(m.Remains.id)))
    mps = list(db.execute(select(m.MissingPerson.id).order_by(m.MissingPerson.id)).scalars())
    for status in (m.RunStatus.finished, m.RunStatus.finished, m.RunStatus.failed, m.RunStatus.running):
        run = m.MatchingRun(operation_id=a.id, software_version="t", engine="t",
                            frequency_database_id=a.frequency_database_id, frequency_database_sha256="0" * 64,
                            mutation_models={}, parameters={}, status=status.value)
        db.add(run)
        db.flush()
        rows = []
        for rid, pid in remains:
            if pid is None or rng.random() < 0.15:
                continue  # no candidate in this run
            k = rng.randint(1, min(5, len(mps)))
            if rng.random() < 0.1:
                values: list[float | None] = [None] * k  # every candidate LR 0
            else:
                values = [rng.choice(VALUES) for _ in range(k)]
            # the run's ranks: best LR first (LR 0 last), ties in any order
            ranked = sorted(values, key=lambda v: (v is None, -(v or 0.0), rng.random()))
            for rank, (v, mp) in enumerate(zip(ranked, rng.sample(mps, k), strict=True), start=1):
                rows.append({"run_id": run.id, "remains_id": rid, "remains_profile_id": pid, "missing_person_id": mp,
                             "log10_lr": v, "posterior": 0.0, "exclusions": 0, "n_markers": 1, "rank": rank,
                             "per_marker": {}})
        db.execute(insert(m.Candidate), rows)
    uid = repo.create_user(db, username="r", password_hash="x", role=m.Role.reviewer, by="t").id
    states = [m.IdentificationState.proposed, m.IdentificationState.confirmed, m.IdentificationState.rejected]
    for k, (rid, _pid) in enumerate(rng.sample(remains, 12)):
        db.add(m.Identification(remains_id=rid, missing_person_id=mps[k % len(mps)], state=states[k % 3],
                                proposed_by_id=uid))
    db.flush()
    return [a, b]


@pytest.fixture(scope="module", params=BACKENDS)
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with migrated_engine(request.param, tmp_path_factory.mktemp("scale")) as engine:
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            _generated(db, seed=3)
        yield engine, factory


@pytest.mark.parametrize("sort_few", [0, 10**9], ids=["index-walk", "probe-and-sort"])
def test_remains_list__equals_the_aggregate_for_every_sort_and_filter(
        generated: Any, sort_few: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remains_repo, "SORT_FEW", sort_few)
    _engine, factory = generated
    with factory() as db:
        ops = [None, *db.execute(select(m.Operation).order_by(m.Operation.id)).scalars()]
        best = {r.id: b for r, b in _old_page_remains(db, per_page=1000).items}
        assert None in best.values() and len(set(best.values())) < len(best)  # LR 0 / none, and ties
        assert _assert_same_lists(db, ops) == len(ops) * len(SEARCHES) * len(FILTERS) * len(SORTS)
        # one page of everything, and pages of one row
        for sort in ("best_lr", "-best_lr"):
            for per_page in (1, 1000):
                new = repo.page_remains(db, sort=sort, per_page=per_page, page=2 if per_page == 1 else 1)
                old = _old_page_remains(db, sort=sort, per_page=per_page, page=2 if per_page == 1 else 1)
                assert (_rows(new), new.total) == (_rows(old), old.total)


def test_dashboard__matched_equals_the_count_over_every_candidate(generated: Any) -> None:
    _engine, factory = generated
    with factory() as db:
        for op in db.execute(select(m.Operation)).scalars():
            assert repo.operation_dashboard(db, operation=op)["matched"] == _old_matched(db, op) > 0


def test_no_finished_run__every_best_lr_none(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            op = repo.create_operation(db, code="A", name="a", by="t")
            db.add_all([m.Remains(barcode=f"R{i}", operation_id=op.id) for i in range(5)])
        with factory() as db:
            for sort in ("best_lr", "-best_lr"):
                new = repo.page_remains(db, sort=sort, per_page=2, page=2)
                old = _old_page_remains(db, sort=sort, per_page=2, page=2)
                assert (_rows(new), new.total) == (_rows(old), old.total)
                assert repo.page_remains(db, sort=sort, min_log10_lr=-100).total == 0


def test_sqlite_plans__the_rank1_index_only_as_the_outer_loop(generated: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``sqlite_stat1``: every statement of the list (the index walk forced for this small database)
    and of the dashboard reads candidates through an index, and the partial index of the rank-1
    candidates, when used, drives the statement (never probed once a remains: that would read the whole
    range for each)."""
    engine, factory = generated
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's plans")
    monkeypatch.setattr(remains_repo, "SORT_FEW", 0)
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "candidates" in statement:
            seen.append((statement, parameters))

    with factory() as db:
        op = db.execute(select(m.Operation).where(m.Operation.code == "A")).scalar_one()
        event.listen(engine, "before_cursor_execute", record)
        try:
            for lr in FILTERS:
                for sort in ("barcode", "-best_lr", "best_lr"):
                    for page in (1, 3):
                        repo.page_remains(db, operation=op, state="none", sort=sort, page=page, per_page=7, **lr)
            repo.operation_dashboard(db, operation=op)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        conn = db.connection()
        assert not conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'").all()
        walked = 0
        for statement, parameters in seen:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            lines = [row[3] for row in plan]
            text = "\n".join(lines)
            assert not any(line.startswith("SCAN candidates") for line in lines), text
            for i, line in enumerate(lines):
                if "ix_candidates_run_best" in line:
                    walked += 1
                    # the outer loop of its (sub)query: the first table its query reads
                    parent = plan[i][1]
                    first = next(j for j, row in enumerate(plan) if row[1] == parent
                                 and row[3].startswith(("SEARCH", "SCAN")))
                    assert first == i, text
    assert walked >= 10


# ---------------------------------------------------------------------------
# runs the service stored: full, incremental with carried rows, a confirmed fragment group
# ---------------------------------------------------------------------------


@backends
def test_stored_runs__rank1_is_the_best_candidate_and_the_list_equals_the_aggregate(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case, _ = simulate_case(families=12, remains=30, seed=11)
    whole = case_to_dict(case)
    for mk in whole["markers"]:
        mk.pop("mutation", None)
    first = {**whole, "remains": whole["remains"][:18]}
    exchange = {**whole, "remains": whole["remains"][18:], "families": []}
    with migrated_engine(backend, tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi")}
        for code, doc in (("A", first), ("B", exchange)):
            assert client.post("/api/operations", json={"code": code, "name": code}, headers=h["lab"]).status_code \
                == 201
            if code == "A":
                r = client.post(f"/api/operations/{code}/imports", json=doc, headers=h["lab"])
                assert r.status_code == 201, r.text
        run1 = match(client, app, h["dvi"], "A", top_k=3, lr_threshold=100)
        assert run1["status"] == "finished" and run1["recomputed"]["mode"] == "full"
        # an exchange arrives; two remains of the first import confirmed as fragments of one person
        r = client.post("/api/operations/B/imports", json=exchange, headers=h["lab"])
        assert r.status_code == 201, r.text
        factory = app.state.sessionmaker
        with store_db.transaction(factory) as db:
            ids = list(db.execute(select(m.Remains.id).order_by(m.Remains.id).limit(2)).scalars())
            group = FragmentGroup(state="confirmed", proposal_note="test")
            db.add(group)
            db.flush()
            db.add_all([FragmentGroupMember(group_id=group.id, remains_id=i, active=True) for i in ids])
        run2 = match(client, app, h["dvi"], "A", top_k=3, lr_threshold=100)
        assert run2["status"] == "finished", run2
        assert run2["recomputed"]["mode"] == "incremental" and run2["recomputed"]["pairs_carried"] > 0, run2
        with factory() as db:
            # rank 1: one a remains in each run, its largest LR (None only when every one is LR 0)
            for run_id in (run1["id"], run2["id"]):
                got = {rid: (n, lr) for rid, n, lr in db.execute(
                    select(m.Candidate.remains_id, func.count(), func.max(m.Candidate.log10_lr))
                    .where(m.Candidate.run_id == run_id, m.Candidate.rank == 1).group_by(m.Candidate.remains_id))}
                want = {rid: (1, lr) for rid, lr in db.execute(
                    select(m.Candidate.remains_id, func.max(m.Candidate.log10_lr))
                    .where(m.Candidate.run_id == run_id).group_by(m.Candidate.remains_id))}
                assert got == want and want
            expanded = db.execute(select(func.count()).select_from(m.Candidate).where(
                m.Candidate.run_id == run2["id"], m.Candidate.remains_id.in_(ids))).scalar_one()
            assert expanded > 0
            ops = [None, *db.execute(select(m.Operation).order_by(m.Operation.id)).scalars()]
            for sort_few in (0, 10**9):
                monkeypatch.setattr(remains_repo, "SORT_FEW", sort_few)
                for op, lr, sort in itertools.product(ops, FILTERS, ("barcode", "best_lr", "-best_lr")):
                    kw: dict[str, Any] = {"operation": op, "sort": sort, **lr}
                    for page in (1, 2, 3, 9):
                        new = repo.page_remains(db, page=page, per_page=5, **kw)
                        old = _old_page_remains(db, page=page, per_page=5, **kw)
                        assert (_rows(new), new.total) == (_rows(old), old.total), (kw, page)
            for op in ops[1:]:
                assert op is not None
                assert repo.operation_dashboard(db, operation=op)["matched"] == _old_matched(db, op)
