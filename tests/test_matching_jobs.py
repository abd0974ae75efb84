"""Matching runs as background jobs, end to end through the API, on SQLite and PostgreSQL.

A case (simulated, no mutation model) is imported through the API in two operations, with one family
whose references are impossible at a marker; a run is queued (202), executed by a real ``opendvi
worker`` process and polled to the end; its candidates equal :func:`opendvi.screening.screen` on the
same case (LRs to 1e-9, the same top-K); the bad family is skipped with a note and the rest matched.
Another run is cancelled (queued, and running); the worker of a third is killed with SIGKILL in the
middle and the run is resumed by the next worker after its lease expired; two workers never run the
same job (PostgreSQL ``FOR UPDATE SKIP LOCKED``; SQLite ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import copy
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from opendvi.io.case_json import case_from_dict, case_to_dict
from opendvi.screening import screen, simulate_case
from opendvi.service import worker
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.models import AuditEntry, Candidate, MatchingRun, RunStatus
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, migrated_engine, run_queued

TOP_K = 3
THRESHOLD = 1e4
BAD_FAMILY = "FBAD"
BAD_MARKER = "D3S1358"


def _case_docs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Two dvi-case/1 documents (operations A and B) and the whole case; B holds a family whose
    references are impossible at one marker (no mutation model: a child with an allele neither parent has)."""
    case, _truth = simulate_case(families=12, remains=16, seed=11)
    whole = case_to_dict(case)
    for m in whole["markers"]:
        m.pop("mutation", None)
    gts = whole["families"][0]["members"][0]["genotypes"]
    bad = {"id": BAD_FAMILY, "members": [
        {"id": "BF", "father": None, "mother": None, "sex": "M", "genotypes": {**gts, BAD_MARKER: ["11", "11"]}},
        {"id": "BM", "father": None, "mother": None, "sex": "F", "genotypes": {**gts, BAD_MARKER: ["12", "12"]}},
        {"id": "BC", "father": "BF", "mother": "BM", "sex": "F", "genotypes": {**gts, BAD_MARKER: ["19", "19"]}},
        {"id": "BMISSING", "father": "BF", "mother": "BM", "sex": "M", "missing": True},
    ]}
    whole["families"].append(bad)
    # barcodes that need percent-encoding in URLs
    whole["remains"][0]["id"] = "V#1/a b"
    a = {**copy.deepcopy(whole), "remains": whole["remains"][:9], "families": whole["families"][:7]}
    b = {**copy.deepcopy(whole), "remains": whole["remains"][9:], "families": whole["families"][7:]}
    return a, b, whole


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    backend = request.param
    with migrated_engine(backend, tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi", "admin", "reviewer")}
        a, b, whole = _case_docs()
        for code, doc in (("A", a), ("B", b)):
            r = client.post("/api/operations", json={"code": code, "name": code}, headers=h["lab"])
            assert r.status_code == 201, r.text
            r = client.post(f"/api/operations/{code}/imports", json=doc, headers=h["lab"])
            assert r.status_code == 201, r.text
        url = str(engine.url.render_as_string(hide_password=False))
        yield {"app": app, "client": client, "h": h, "whole": whole, "engine": engine, "url": url,
               "backend": backend, "tmp": tmp_path}


def _start(world: dict[str, Any], code: str = "A") -> int:
    r = world["client"].post(f"/api/operations/{code}/matching-runs",
                             json={"top_k": TOP_K, "lr_threshold": THRESHOLD}, headers=world["h"]["dvi"])
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and set(body) == {"run", "status", "url"}
    return int(body["run"])


def _get(world: dict[str, Any], run_id: int) -> dict[str, Any]:
    r = world["client"].get(f"/api/matching-runs/{run_id}", headers=world["h"]["dvi"])
    assert r.status_code == 200, r.text
    return dict(r.json())


def _worker(world: dict[str, Any], *args: str, lease: float = 60.0) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": world["url"], "OPENDVI_JOB_POLL_S": "0.2",
           "OPENDVI_JOB_HEARTBEAT_S": str(min(1.0, lease / 4)), "OPENDVI_JOB_LEASE_S": str(lease)}
    log = (world["tmp"] / f"worker-{time.monotonic_ns()}.log").open("w")
    return subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "worker", *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _poll(world: dict[str, Any], run_id: int, until: set[str], timeout: float = 120.0) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        run = _get(world, run_id)
        seen.append(run)
        if run["status"] in until:
            return seen
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {timeout} s"
        time.sleep(0.05)


@contextmanager
def _runs_table_held(world: dict[str, Any], run_id: int, timeout: float = 60.0) -> Iterator[None]:
    """Wait until the run is running, then hold every write to the runs table (reads go on) while the block runs.

    SQLite: a ``BEGIN IMMEDIATE`` of another connection (WAL readers are not blocked); PostgreSQL: ``LOCK TABLE
    matching_runs IN EXCLUSIVE MODE`` (plain reads are not blocked). The worker's progress, heartbeat and finish
    all write that table, so the run stays ``running`` until the block has ended."""
    engine = world["engine"]
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while conn.scalar(select(MatchingRun.status).where(MatchingRun.id == run_id)) != RunStatus.running:
            conn.rollback()
            assert time.monotonic() < deadline, f"run {run_id} not running after {timeout} s"
            time.sleep(0.002)
        conn.rollback()
    if world["backend"] == "sqlite":
        lock = sqlite3.connect(str(engine.url.database), isolation_level=None, timeout=30)
        try:
            lock.execute("BEGIN IMMEDIATE")
            status = lock.execute("SELECT status FROM matching_runs WHERE id = ?", (run_id,)).fetchone()[0]
            assert status == RunStatus.running.value, f"run {run_id} ended before its writes were held: {status}"
            yield
            lock.execute("ROLLBACK")
        finally:
            lock.close()
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE matching_runs IN EXCLUSIVE MODE")
        status = conn.scalar(select(MatchingRun.status).where(MatchingRun.id == run_id))
        assert status == RunStatus.running, f"run {run_id} ended before its writes were held: {status}"
        yield
        conn.rollback()


def _candidates(world: dict[str, Any], run_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every candidate of the run through the paged API, per remains, best first."""
    out: dict[str, list[dict[str, Any]]] = {}
    page = 1
    while True:
        r = world["client"].get("/api/candidates", params={"run": run_id, "page": page, "per_page": 7,
                                                            "sort": "remains"}, headers=world["h"]["dvi"])
        assert r.status_code == 200, r.text
        for c in r.json():
            out.setdefault(c["remains"], []).append(c)
        if 'rel="next"' not in r.headers.get("Link", ""):
            total = int(r.headers["X-Total-Count"])
            assert sum(len(v) for v in out.values()) == total
            return out
        page += 1


def _assert_equals_screening(world: dict[str, Any], run_id: int) -> None:
    ref = screen(case_from_dict(world["whole"]), top=TOP_K, threshold=THRESHOLD)
    expected = ref.candidates()
    got = _candidates(world, run_id)
    for rid, rows in expected.items():
        mine = got.get(rid, [])
        assert [c["missing_person"] for c in mine] == [x["missing"] for x in rows], rid
        for c, x in zip(mine, rows, strict=True):
            mine_lr = -math.inf if c["log10_lr"] is None else c["log10_lr"]  # None: LR 0
            assert mine_lr == pytest.approx(x["log10_lr"], abs=1e-9), (rid, c, x)
            assert c["exclusions"] == x["exclusions"]
        assert len([c for c in mine if c["rank"] <= TOP_K]) == min(TOP_K, len(rows))
    assert set(got) <= set(expected)
    # the GLR of each call of the best joint assignment, as solve_joint gives it on the same pairings
    from dataclasses import replace

    from opendvi.dvi import UNASSIGNED, DVIProblem, PairwiseResult, solve_joint
    from opendvi.dvi.workflow import SolveOptions

    case = case_from_dict(world["whole"])
    kept: dict[str, list[str]] = {r.id: [] for r in case.remains}
    for rid, mp, _v, _x in ref.pairs():
        kept[rid].append(mp)
    problem = DVIProblem(replace(case, pairings={r: tuple(v) for r, v in kept.items()}))
    pw = PairwiseResult.from_pairs(problem, {(rid, mp): (v, x) for rid, mp, v, x in ref.pairs()})
    opts = SolveOptions()
    joint = solve_joint(problem, pw, top=1, glr_floor=math.log(opts.probable_threshold) - 1e-9,
                        glr_enough=math.log(opts.threshold))
    glr = joint.glr()
    calls = {(rid, mp): glr[rid] / math.log(10) for rid, mp in joint.rows[0].assignment.items()
             if mp != UNASSIGNED and not math.isnan(glr.get(rid, math.nan))}
    assert calls
    for rid, mine in got.items():
        for c in mine:
            want = calls.get((rid, c["missing_person"]))
            if want is None:
                assert c["log10_glr"] is None, c
            elif want == math.inf:
                assert c["log10_glr"] == "inf", c
            else:
                assert c["log10_glr"] == pytest.approx(want, abs=1e-9), (c, want)


def test_run__queued_executed_by_a_worker_process_polled_to_the_end_equals_screening(world: dict[str, Any]) -> None:
    run_id = _start(world)
    first = _get(world, run_id)
    assert first["status"] == "queued" and first["progress"] == 0 and first["started_at"] is None
    proc = _worker(world, "--once")
    try:
        seen = _poll(world, run_id, {"finished", "failed", "cancelled"})
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    run = seen[-1]
    assert run["status"] == "finished", run
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and run["progress"] == 1.0
    assert set(run["timings"]) >= {"loading", "screening", "per_marker", "joint", "storing", "worker_cpu"}
    assert run["timings"]["worker_cpu"] > 0
    assert run["counts"]["remains"] == 16 and run["counts"]["missing_persons"] == 13
    assert run["n_remains"] == 16 and run["started_at"] and run["finished_at"] and run["error"] is None
    assert run["software_version"].startswith("opendvi ") and len(run["frequency_database_sha256"]) == 64
    # the family with impossible references is skipped with a note naming it and the marker; the rest matched
    assert [(s["family"], s["markers"]) for s in run["skipped_families"]] == [(BAD_FAMILY, [BAD_MARKER])]
    assert any(BAD_FAMILY in n and BAD_MARKER in n for n in run["parameters"]["notes"])
    _assert_equals_screening(world, run_id)
    assert all(c["missing_person"] != "BMISSING" for rows in _candidates(world, run_id).values() for c in rows)
    # remains of both operations were matched (one run covers the whole database)
    ops = {r["operation"] for r in world["client"].get("/api/remains", params={"per_page": 100,
                                                                                "min_log10_lr": -1000},
                                                       headers=world["h"]["dvi"]).json()}
    assert ops == {"A", "B"}
    # the operation's page lists the run and the skipped family
    page = world["client"].get("/operations/A", headers=world["h"]["dvi"])
    assert page.status_code == 200 and 'id="skipped-families"' in page.text and BAD_FAMILY in page.text
    # the history of runs
    runs = world["client"].get("/api/operations/A/matching-runs", headers=world["h"]["dvi"]).json()
    assert [r["id"] for r in runs] == [run_id]
    # the audit: queued, then run with its candidates count
    entries = world["client"].get("/api/audit", params={"object_type": "matching_run"},
                                  headers=world["h"]["admin"]).json()
    assert [e["action"] for e in entries] == ["matching.run", "matching.queue"]
    assert entries[0]["details"]["candidates"] == sum(len(v) for v in _candidates(world, run_id).values())


def test_cancel__a_queued_run_at_once_a_running_one_by_its_worker(world: dict[str, Any]) -> None:
    client, dvi = world["client"], world["h"]["dvi"]
    queued = _start(world)
    r = client.post(f"/api/matching-runs/{queued}/cancel", headers=dvi)
    assert r.status_code == 202 and r.json()["status"] == "cancelled", r.text
    # only the DVI analyst may; an ended run cannot be cancelled
    assert_error_shape(client.post(f"/api/matching-runs/{queued}/cancel", headers=world["h"]["lab"]), 403)
    assert_error_shape(client.post(f"/api/matching-runs/{queued}/cancel", headers=dvi), 409)
    assert run_queued(world["app"]) == []  # nothing left to execute
    # a running one: the worker holds it, the cancel is asked, the worker stops at its next step
    running = _start(world)
    factory = world["app"].state.sessionmaker
    cfg = worker.WorkerConfig(lease_s=60, heartbeat_s=0.2, poll_s=0.1)
    assert worker.claim(factory, worker="w-test", config=cfg) == running
    r = client.post(f"/api/matching-runs/{running}/cancel", headers=dvi)
    assert r.status_code == 202 and r.json()["status"] == "running" and r.json()["cancel_requested"], r.text
    assert worker.execute(factory, running, worker="w-test", config=cfg) == "cancelled"
    run = _get(world, running)
    assert run["status"] == "cancelled" and run["finished_at"]
    with factory() as db:
        assert db.scalar(select(func.count(Candidate.id)).where(Candidate.run_id == running)) == 0
    # a later run is not disturbed
    later = _start(world)
    assert run_queued(world["app"]) == [(later, "finished")]


@pytest.mark.slow
def test_worker_killed_with_sigkill__the_run_is_resumed_by_the_next_worker(world: dict[str, Any]) -> None:
    first = _start(world)
    assert run_queued(world["app"]) == [(first, "finished")]
    reference = _candidates(world, first)
    run_id = _start(world)
    proc = _worker(world, lease=3.0)
    try:
        # the run of this small case takes a few hundred milliseconds: seen running (polled in the database, every
        # few milliseconds), its next write to the runs table is held back, so that the kill lands in the middle
        # (without the hold, a fast machine finished the run between two polls of the API)
        with _runs_table_held(world, run_id):
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = _get(world, run_id)
    assert killed["status"] == "running" and killed["attempts"] == 1  # until its lease expires
    # the restart: a new worker recovers the run once its lease expired, and executes it again
    proc = _worker(world, lease=3.0)
    try:
        run = _poll(world, run_id, {"finished", "failed", "cancelled"}, timeout=120)[-1]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert run["status"] == "finished" and run["attempts"] == 2, run
    again = _candidates(world, run_id)
    assert {k: [(c["missing_person"], c["log10_lr"]) for c in v] for k, v in again.items()} == \
        {k: [(c["missing_person"], c["log10_lr"]) for c in v] for k, v in reference.items()}
    entries = world["client"].get("/api/audit", params={"object_id": str(run_id), "object_type": "matching_run"},
                                  headers=world["h"]["admin"]).json()
    actions = [e["action"] for e in entries]
    assert actions == ["matching.run", "matching.requeue", "matching.queue"]


def test_lost_worker_after_the_last_try__the_run_fails_never_left_running(world: dict[str, Any]) -> None:
    factory = world["app"].state.sessionmaker
    run_id = _start(world)
    cfg = worker.WorkerConfig(lease_s=60, heartbeat_s=5, poll_s=0.1, max_attempts=1)
    assert worker.claim(factory, worker="gone", config=cfg) == run_id
    with store_db.transaction(factory) as db:  # the lease expired long ago
        out = repo.recover_runs(db, max_attempts=1, now=repo.utcnow() + cfg.lease * 2)
    assert out == [(run_id, "failed")]
    run = _get(world, run_id)
    assert run["status"] == "failed" and "worker gone stopped" in run["error"], run


@pytest.mark.slow
def test_two_workers_never_run_the_same_job(world: dict[str, Any]) -> None:
    runs = [_start(world) for _ in range(4)]
    # claims raced from threads: each run is taken once
    factory = world["app"].state.sessionmaker
    cfg = worker.WorkerConfig()
    barrier = threading.Barrier(4)
    got: list[int | None] = []

    def take(i: int) -> None:
        barrier.wait()
        got.append(worker.claim(factory, worker=f"t{i}", config=cfg))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed = [g for g in got if g is not None]
    assert len(claimed) == len(set(claimed)) and set(claimed) <= set(runs)
    with store_db.transaction(factory) as db:  # give them back to the queue
        for rid in claimed:
            db.execute(update(MatchingRun).where(MatchingRun.id == rid)
                       .values(status="queued", worker=None, attempts=0))
    # two worker processes drain the queue
    procs = [_worker(world, "--once"), _worker(world, "--once")]
    try:
        for p in procs:
            assert p.wait(180) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    with factory() as db:
        rows = db.execute(select(MatchingRun.id, MatchingRun.status, MatchingRun.attempts)
                          .where(MatchingRun.id.in_(runs))).all()
        assert sorted((r.id, r.status, r.attempts) for r in rows) == [(r, RunStatus.finished.value, 1) for r in runs]
        done = db.execute(select(AuditEntry.object_id).where(AuditEntry.action == "matching.run")).scalars().all()
        assert sorted(int(x) for x in done) == runs  # each executed once


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_the_services_worker_does_not_outlive_a_killed_service(tmp_path: Path) -> None:
    """``opendvi serve`` starts its worker with ``--parent-pid``: killed with SIGKILL (no exit handlers),
    the service leaves no worker behind."""
    url = f"sqlite:///{(tmp_path / 'opendvi.sqlite3').as_posix()}"
    code = ("import time; from opendvi.cli.worker_cmd import start_embedded_worker; "
            f"p = start_embedded_worker({url!r}); print(p.pid, flush=True); time.sleep(120)")
    service = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert service.stdout is not None
    pid = int(service.stdout.readline())
    time.sleep(2)
    assert _alive(pid)
    service.kill()
    service.wait(10)
    deadline = time.monotonic() + 60
    while _alive(pid):
        assert time.monotonic() < deadline, "the worker outlived its service"
        time.sleep(0.2)


def test_a_finished_run_is_published_with_its_statistics(world: dict[str, Any]) -> None:
    """PostgreSQL: the worker analyses the candidates before it marks the run finished. Without it a new run id
    was past every statistic (one row estimated), and the remains list looked each remains' best LR up by scanning
    the whole run: 90 ms a page, and under load every page's p99 doubled (``bulk.refresh_statistics``)."""
    if world["backend"] != "postgresql":
        pytest.skip("SQLite plans without statistics")
    first = _start(world)
    assert run_queued(world["app"]) == [(first, "finished")]
    with world["engine"].begin() as conn:
        conn.exec_driver_sql("ANALYZE candidates")  # as autovacuum would have, some time after the first run
    second = _start(world)
    assert run_queued(world["app"]) == [(second, "finished")]
    with world["engine"].connect() as conn:
        n = conn.scalar(select(func.count(Candidate.id)).where(Candidate.run_id == second))
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) SELECT id FROM candidates WHERE run_id = {second}").scalar()
    estimated = plan[0]["Plan"]["Plan Rows"]
    assert n > 20 and n / 2 <= estimated <= n * 2, (n, estimated)
