"""Matching runs in a worker process, never in a web request.

A run is queued by the API (``POST /api/operations/{code}/matching-runs``:
one row in ``matching_runs`` with ``status = 'queued'``) and executed here:

* **claim**: in one short write transaction, the oldest queued run is taken
  (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers
  never take the same run nor wait for each other; on SQLite the
  transaction is ``BEGIN IMMEDIATE``), and ``UPDATE ... WHERE status =
  'queued'`` marks it running with this worker's name, a heartbeat and a
  lease;
* **execute**: the database is read in a read transaction that then ends;
  :func:`opendvi.workflows.matching.match_case` computes with no transaction
  open; a heartbeat thread renews the lease every ``heartbeat_s`` and reads
  the cancel flag; progress and phase are written in short transactions (at
  most twice a second); candidates are stored in chunks (``COPY`` on
  PostgreSQL, one ``executemany`` on SQLite; an incremental run's carried rows
  keep the JSON they were stored with), each chunk its own short transaction
  inserted only while the lease is held; the run ends finished (with its
  audit entry), failed (the error) or cancelled - a run that did not finish
  keeps no candidates, and readers only ever see finished runs' candidates;
* **recover**: a run whose lease expired (its worker was killed, the machine
  restarted) is queued again and starts over, or failed after
  ``max_attempts`` tries: never left "running". A worker stopped by SIGTERM
  or SIGINT puts its run back in the queue at once.

``opendvi serve`` starts one worker process on the embedded default
(SQLite); ``opendvi worker`` runs workers apart (``--processes N``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from opendvi.store import repositories as repo
from opendvi.store.db import end_read, transaction
from opendvi.store.models import Candidate, FrequencyDatabase, MatchingRun, Operation, RunStatus, utcnow
from opendvi.store.models_fragments import FragmentLink
from opendvi.store.repositories.bulk import refresh_statistics
from opendvi.store.repositories.run_inputs import save_inputs
from opendvi.workflows import fragments
from opendvi.workflows.incremental import run_inputs
from opendvi.workflows.matching import PHASE_END, match_case

log = logging.getLogger("opendvi.worker")


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class WorkerConfig:
    #: a run whose worker sent no heartbeat for this long is recovered
    lease_s: float = 60.0
    heartbeat_s: float = 5.0
    #: how often an idle worker looks for queued runs
    poll_s: float = 1.0
    #: tries of a run before a lost worker fails it
    max_attempts: int = 2

    @classmethod
    def from_env(cls) -> WorkerConfig:
        lease = _env_float("OPENDVI_JOB_LEASE_S", 60.0)
        return cls(lease_s=lease, heartbeat_s=_env_float("OPENDVI_JOB_HEARTBEAT_S", min(5.0, lease / 4)),
                   poll_s=_env_float("OPENDVI_JOB_POLL_S", 1.0),
                   max_attempts=int(_env_float("OPENDVI_JOB_MAX_ATTEMPTS", 2)))

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_s)


class Cancelled(Exception):
    """The run was cancelled: the worker ends it as cancelled."""


class LostLease(Exception):
    """The run is no longer held by this worker (its lease expired): leave it alone."""


class Stopping(Exception):
    """The worker was asked to stop: the run goes back to the queue."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


Factory = sessionmaker[Session]


def _write(factory: Factory, fn: Callable[[Session], Any]) -> Any:
    """``fn`` in one short write transaction (:func:`opendvi.store.db.transaction`)."""
    with transaction(factory) as db:
        return fn(db)


def recover(factory: Factory, *, max_attempts: int = 2) -> list[tuple[int, str]]:
    """Queue again (or fail) the runs whose lease expired. A read first: no write lock when none did."""
    with factory() as db:
        stale = db.scalar(select(func.count(MatchingRun.id)).where(
            MatchingRun.status == RunStatus.running.value, MatchingRun.lease_expires_at < utcnow()))
        db.rollback()
    if not stale:
        return []
    out: list[tuple[int, str]] = _write(factory, lambda db: repo.recover_runs(db, max_attempts=max_attempts))
    for rid, status in out:
        log.warning("matching run %s: its worker was lost; now %s", rid, status)
    return out


def claim(factory: Factory, *, worker: str, config: WorkerConfig) -> int | None:
    """Take the oldest queued run; its id, or None (a read first: no write lock when none is queued)."""
    with factory() as db:
        queued = db.scalar(select(MatchingRun.id).where(MatchingRun.status == RunStatus.queued.value).limit(1))
        db.rollback()
    if queued is None:
        return None

    def take(db: Session) -> int | None:
        run = repo.claim_run(db, worker=worker, lease=config.lease)
        return run.id if run is not None else None

    result: int | None = _write(factory, take)
    return result


class _Heartbeat(threading.Thread):
    """Renews the run's lease every ``heartbeat_s``; notices a cancellation or a lost lease."""

    def __init__(self, factory: Factory, run_id: int, worker: str, config: WorkerConfig) -> None:
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.factory, self.run_id, self.worker, self.config = factory, run_id, worker, config
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self.lost = threading.Event()

    def beat(self, progress: float | None = None, phase: str | None = None) -> None:
        held, cancel = _write(self.factory, lambda db: repo.touch_run(
            db, run_id=self.run_id, worker=self.worker, lease=self.config.lease, progress=progress, phase=phase))
        if not held:
            self.lost.set()
        if cancel:
            self.cancelled.set()

    def run(self) -> None:
        while not self.done.wait(self.config.heartbeat_s):
            try:
                self.beat()
            except Exception as exc:  # busy or unreachable database: try again; the lease is long
                log.warning("matching run %s: heartbeat failed (%s)", self.run_id, exc)
            if self.lost.is_set():
                return


def execute(factory: Factory, run_id: int, *, worker: str, config: WorkerConfig,
            stop: threading.Event | None = None) -> str:
    """Execute a run this worker has claimed; its final status (or ``"lost"`` / ``"queued"``)."""
    hb = _Heartbeat(factory, run_id, worker, config)
    hb.start()
    last: dict[str, Any] = {"at": 0.0, "phase": ""}

    def check() -> None:
        if stop is not None and stop.is_set():
            raise Stopping()
        if hb.lost.is_set():
            raise LostLease()
        if hb.cancelled.is_set():
            raise Cancelled()

    def progress(phase: str, fraction: float) -> None:
        check()
        now = time.monotonic()
        if phase != last["phase"] or now - float(last["at"]) >= 0.5:
            last["at"], last["phase"] = now, phase
            hb.beat(progress=fraction, phase=phase)
            check()

    try:
        with factory() as db:
            run = repo.get_run(db, run_id=run_id)
            op = db.get(Operation, run.operation_id)
            fdb = db.get(FrequencyDatabase, run.frequency_database_id)
            assert op is not None and fdb is not None
            params = dict(run.parameters)
            t0, cpu0 = time.perf_counter(), time.process_time()
            lineage = {s: int(d["id"]) for s, d in (run.lineage_databases or {}).items()}  # those recorded
            stored = repo.build_case(db, operation=op, frequency_database=fdb, lineage_databases=lineage)
            # fragments (workflows/fragments.py): each confirmed group is matched as one person
            case, merged, frag_notes = fragments.merge_confirmed(stored.case, repo.confirmed_fragment_groups(db))
            inputs = run_inputs(db, run_id=run_id, case=case,
                                profile_ids={b: p for b, (_r, p) in stored.remains.items()},
                                top_k=int(params.get("top_k", 10)), lr_threshold=float(params.get("lr_threshold", 1e4)),
                                frequency_database_sha256=run.frequency_database_sha256,
                                mutation_models=run.mutation_models)
            # fragments: an incremental run links only the remains changed since the previous run
            frag_threshold = float(params.get("fragment_threshold", 1e4))
            changed, carried = fragments.previous_links(
                db, inputs=inputs, case=stored.case, profile_ids={b: p for b, (_r, p) in stored.remains.items()},
                threshold=frag_threshold)
            end_read(db)  # nothing held while computing
            db.rollback()
        t_load = time.perf_counter() - t0
        progress("loading", PHASE_END["loading"])
        t_frag = time.perf_counter()
        links = fragments.link_fragments(stored.case, threshold=frag_threshold, changed=changed, carried=carried,
                                         progress=lambda _d, _n: progress("fragments", PHASE_END["loading"]))
        t_frag = time.perf_counter() - t_frag
        result = match_case(case, top_k=int(params.get("top_k", 10)),
                            lr_threshold=float(params.get("lr_threshold", 1e4)), progress=progress,
                            current=inputs.current, previous=inputs.previous, carried_rows=inputs.carried_rows)
        progress("storing", PHASE_END["joint"])
        t1 = time.perf_counter()
        chunk = repo.CANDIDATE_CHUNK
        cands = fragments.expand_candidates(result.candidates, merged)
        for i in range(0, len(cands), chunk):
            part = cands[i:i + chunk]

            def store(db: Session, part: list[Any] = part) -> bool:
                held, _cancel = repo.touch_run(db, run_id=run_id, worker=worker, lease=config.lease)
                if held:  # the chunk goes in only while the run is still this worker's
                    repo.insert_candidates(db, run_id=run_id, stored=stored, candidates=part,
                                           serialised=inputs.carried_json)
                return held

            if not _write(factory, store):
                raise LostLease()
            progress("storing", PHASE_END["joint"] + (1 - PHASE_END["joint"]) * min(1.0, (i + chunk) / len(cands)))
        check()
        timings = {"loading": t_load, "fragments": t_frag, **result.timings, "storing": time.perf_counter() - t1,
                   # the worker's CPU seconds, all threads: against the phases' clock time, what it was given
                   "worker_cpu": time.process_time() - cpu0}
        params.update(result.parameters)
        frag_notes = frag_notes + links.notes()
        if result.notes or frag_notes:
            params["notes"] = result.notes + frag_notes

        def finish(db: Session) -> bool:
            params["fragments"] = fragments.store_links(db, run_id=run_id, remains=stored.remains, links=links,
                                                        merged=merged)
            if result.state is not None:  # incremental matching: what the next run starts from
                save_inputs(db, run_id=run_id, inputs=result.state.to_json(), recomputed=result.recomputed,
                            keep_previous=inputs.previous_run)
            # the pages read the newest finished run's rows: its statistics go public with it (bulk.py)
            refresh_statistics(db, Candidate, FragmentLink)
            return repo.end_run(db, run_id=run_id, worker=worker, status=RunStatus.finished,
                                n_remains=len(stored.case.remains),
                                n_missing=sum(len(f.missing) for f in stored.case.families),
                                timings={k: round(v, 4) for k, v in timings.items()}, counts=result.counts,
                                skipped=result.skipped, parameters=params)

        if not _write(factory, finish):
            raise LostLease()
        return RunStatus.finished.value
    except Cancelled:
        _write(factory, lambda db: repo.end_run(db, run_id=run_id, worker=worker, status=RunStatus.cancelled,
                                                error="cancelled"))
        return RunStatus.cancelled.value
    except LostLease:
        log.warning("matching run %s: no longer held by %s; left to its new holder", run_id, worker)
        return "lost"
    except Stopping:
        _write(factory, lambda db: _requeue(db, run_id, worker))
        return RunStatus.queued.value
    except Exception as exc:
        log.exception("matching run %s failed", run_id)
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        _write(factory, lambda db: repo.end_run(db, run_id=run_id, worker=worker, status=RunStatus.failed,
                                                error=message))
        return RunStatus.failed.value
    finally:
        hb.done.set()
        hb.join(timeout=10)


def _requeue(db: Session, run_id: int, worker: str) -> None:
    """A stopped worker gives its run back (the try does not count)."""
    result = db.execute(
        update(MatchingRun).where(MatchingRun.id == run_id, MatchingRun.worker == worker,
                                  MatchingRun.status == RunStatus.running.value)
        .values(status=RunStatus.queued.value, worker=None, lease_expires_at=None, progress=0.0,
                phase="queued again", attempts=MatchingRun.attempts - 1)
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:  # type: ignore[attr-defined]
        db.execute(delete(Candidate).where(Candidate.run_id == run_id))


def run_once(factory: Factory, *, worker: str | None = None, config: WorkerConfig | None = None,
             stop: threading.Event | None = None) -> tuple[int, str] | None:
    """Recover lost runs, then claim and execute one queued run: ``(id, final status)`` or None."""
    cfg = config or WorkerConfig.from_env()
    name = worker or worker_name()
    recover(factory, max_attempts=cfg.max_attempts)
    run_id = claim(factory, worker=name, config=cfg)
    if run_id is None:
        return None
    return run_id, execute(factory, run_id, worker=name, config=cfg, stop=stop)


def drain(factory: Factory, *, config: WorkerConfig | None = None) -> list[tuple[int, str]]:
    """Execute queued runs until none is left (tests, ``opendvi worker --once``)."""
    out = []
    while (done := run_once(factory, config=config)) is not None:
        out.append(done)
    return out


def run_forever(url: str, *, config: WorkerConfig | None = None, stop: threading.Event | None = None,
                once: bool = False, parent_pid: int | None = None) -> None:
    """The worker loop on the database at ``url`` (migrated): until ``stop`` is set, SIGTERM or SIGINT
    (a run in progress goes back to the queue), with ``once`` until no run is queued, or with
    ``parent_pid`` once that process is gone (``opendvi serve`` killed: its worker does not stay behind)."""
    from opendvi.store.db import make_engine, session_factory, upgrade

    cfg = config or WorkerConfig.from_env()
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine, reads_first=True)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    name = worker_name()
    log.info("worker %s started", name)
    try:
        while not stop.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("worker %s: the service (pid %s) is gone; stopping", name, parent_pid)
                break
            try:
                done = run_once(factory, worker=name, config=cfg, stop=stop)
            except Exception as exc:  # the database is away: wait and try again
                log.warning("worker %s: %s", name, exc)
                done = None
                stop.wait(cfg.poll_s * 5)
            if done is None:
                if once:
                    break
                stop.wait(cfg.poll_s)
    finally:
        engine.dispose()
