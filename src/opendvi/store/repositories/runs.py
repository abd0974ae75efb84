"""Matching runs, each one a job (``docs/decisions/0006-matching-jobs.md``): queue, claim,
heartbeat, candidates, end, cancel, recovery after a lost worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from opendvi.i18n import gettext as _
from opendvi.store import audit
from opendvi.store.errors import ConflictError, NotFoundError
from opendvi.store.models import Candidate, MatchingRun, Operation, RunStatus, User, utcnow
from opendvi.store.repositories.bulk import JSONText, insert_rows
from opendvi.store.repositories.case import StoredCase
from opendvi.store.repositories.lineage import lineage_provenance, operation_lineage

__all__ = ["CANDIDATE_CHUNK", "CandidateRow", "cancel_run", "claim_run", "current_run_id", "end_run", "enqueue_run",
           "get_run", "insert_candidates", "latest_run", "recover_runs", "runs_of", "touch_run"]


def as_aware(t: datetime) -> datetime:
    """``t`` with its time zone (a naive time read back from SQLite is UTC)."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@dataclass
class CandidateRow:
    remains: str
    missing: str
    log10_lr: float | None
    posterior: float
    exclusions: int
    n_markers: int
    rank: int
    per_marker: dict[str, Any]
    #: log10 GLR of the call in the best joint assignment (None: not a call, or not computed)
    log10_glr: float | None = None
    glr_bound: bool | None = None
    #: with lineage evidence: each system's log10 LR and the lineage mismatches (``Candidate.systems``)
    systems: dict[str, Any] | None = None


#: candidates per INSERT statement (Core ``insert()`` with a list of dicts)
CANDIDATE_CHUNK = 2000


def enqueue_run(
    session: Session, *, operation: Operation, parameters: dict[str, Any], software_version: str, engine: str,
    by: User | None,
) -> MatchingRun:
    """A queued matching run of every remains against every missing person, with the operation's
    frequency database and lineage databases; a worker executes it (``opendvi.service.worker``)."""
    fdb = operation.frequency_database
    if fdb is None:
        raise ConflictError(f"operation {operation.code} has no markers yet: import a case first")
    lineage = lineage_provenance(operation_lineage(session, operation=operation))
    run = MatchingRun(
        operation_id=operation.id, software_version=software_version, engine=engine,
        frequency_database_id=fdb.id, frequency_database_sha256=fdb.sha256,
        mutation_models={m["name"]: m.get("mutation") for m in fdb.markers}, parameters=parameters,
        n_remains=0, n_missing=0, started_at=None, queued_at=utcnow(), status=RunStatus.queued.value,
        progress=0.0, phase="queued", attempts=0, cancel_requested=False, user_id=by.id if by else None,
        lineage_databases=lineage,
    )
    session.add(run)
    session.flush()
    audit.append(session, action="matching.queue", username=by.username if by else None,
                 object_type="matching_run", object_id=run.id,
                 details={"operation": operation.code, "parameters": parameters,
                          "frequency_database_sha256": fdb.sha256,
                          **({"lineage_databases_sha256": {s: d["sha256"] for s, d in lineage.items()}}
                             if lineage else {})})
    return run


def claim_run(session: Session, *, worker: str, lease: timedelta) -> MatchingRun | None:
    """Take the oldest queued run for ``worker``; None when there is none. The caller has begun a
    write transaction (:func:`opendvi.store.db.begin_write`) and commits at once. PostgreSQL: the
    row is taken ``FOR UPDATE SKIP LOCKED`` (workers never wait for each other nor take the same
    run); SQLite: the write transaction is ``BEGIN IMMEDIATE``, one writer at a time. On both the
    ``UPDATE ... WHERE status = 'queued'`` takes it only if it is still queued."""
    stmt = select(MatchingRun.id).where(MatchingRun.status == RunStatus.queued.value).order_by(MatchingRun.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    run_id = session.scalar(stmt.limit(1))
    if run_id is None:
        return None
    now = utcnow()
    result = session.execute(
        update(MatchingRun)
        .where(MatchingRun.id == run_id, MatchingRun.status == RunStatus.queued.value)
        .values(status=RunStatus.running.value, worker=worker, started_at=now, heartbeat_at=now,
                lease_expires_at=now + lease, attempts=MatchingRun.attempts + 1, phase="loading", progress=0.0,
                error=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    # a run taken again after a lost worker starts from nothing
    session.execute(delete(Candidate).where(Candidate.run_id == run_id))
    run = session.get(MatchingRun, run_id, populate_existing=True)
    return run


def touch_run(
    session: Session, *, run_id: int, worker: str, lease: timedelta, progress: float | None = None,
    phase: str | None = None,
) -> tuple[bool, bool]:
    """Heartbeat (and progress) of a running run held by ``worker``: ``(still held, cancel requested)``.
    One short UPDATE; a run no longer held (its lease expired and another worker took it, or it
    ended) is not touched."""
    now = utcnow()
    values: dict[str, Any] = {"heartbeat_at": now, "lease_expires_at": now + lease}
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    if phase is not None:
        values["phase"] = phase[:64]
    result = session.execute(
        update(MatchingRun)
        .where(MatchingRun.id == run_id, MatchingRun.worker == worker,
               MatchingRun.status == RunStatus.running.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False, False
    cancel = session.scalar(select(MatchingRun.cancel_requested).where(MatchingRun.id == run_id))
    return True, bool(cancel)


def _same_values(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """``a`` holds the very objects ``b`` holds (a copy of it): a carried row's per-marker LRs, unchanged."""
    return len(a) == len(b) and all(a.get(k, _ABSENT) is v for k, v in b.items())


_ABSENT = object()


def insert_candidates(session: Session, *, run_id: int, stored: StoredCase, candidates: Sequence[CandidateRow],
                      chunk: int = CANDIDATE_CHUNK,
                      serialised: Mapping[tuple[str, str], tuple[Mapping[str, Any], str]] | None = None) -> int:
    """Bulk-insert candidates (:func:`opendvi.store.repositories.bulk.insert_rows`: ``COPY`` on PostgreSQL,
    the driver's ``executemany`` on SQLite; ``chunk`` rows at a time). ``serialised``: ``(remains, missing
    person) -> (per_marker, its JSON)`` as an earlier run stored them (incremental matching carries them
    over): a row carrying that very per_marker is stored with that JSON, not serialised again."""
    known = serialised or {}
    n = 0
    for i in range(0, len(candidates), chunk):
        rows = []
        for c in candidates[i:i + chunk]:
            rid, pid = stored.remains[c.remains]
            per_marker: Any = c.per_marker
            got = known.get((c.remains, c.missing))
            if got is not None and _same_values(per_marker, got[0]):
                per_marker = JSONText(got[1])
            rows.append({"run_id": run_id, "remains_id": rid, "remains_profile_id": pid,
                         "missing_person_id": stored.missing[c.missing], "log10_lr": c.log10_lr,
                         "posterior": c.posterior, "exclusions": c.exclusions, "n_markers": c.n_markers,
                         "rank": c.rank, "per_marker": per_marker, "log10_glr": c.log10_glr,
                         "glr_bound": c.glr_bound, "systems": c.systems})
        insert_rows(session, Candidate, rows)
        n += len(rows)
    return n


_END_ACTIONS = {RunStatus.finished: "matching.run", RunStatus.failed: "matching.failed",
                RunStatus.cancelled: "matching.cancel"}


def _audit_end(session: Session, *, run_id: int, status: RunStatus, error: str | None,
               skipped: list[Any] | None) -> None:
    """The audit entry of a run that ended."""
    run = session.get(MatchingRun, run_id, populate_existing=True)
    assert run is not None
    op = session.get(Operation, run.operation_id)
    user = session.get(User, run.user_id) if run.user_id else None
    details: dict[str, Any] = {"operation": op.code if op else None, "status": status.value}
    if status == RunStatus.finished:
        n = session.scalar(select(func.count(Candidate.id)).where(Candidate.run_id == run_id)) or 0
        details.update({"candidates": n, "frequency_database_sha256": run.frequency_database_sha256,
                        "parameters": run.parameters, "software_version": run.software_version,
                        "engine": run.engine, "families_skipped": [s["family"] for s in (skipped or [])]})
        if run.lineage_databases:
            details["lineage_databases_sha256"] = {s: d["sha256"] for s, d in run.lineage_databases.items()}
    else:
        details["error"] = error
    audit.append(session, action=_END_ACTIONS[status], username=user.username if user else None,
                 object_type="matching_run", object_id=run_id, details=details)


def end_run(
    session: Session, *, run_id: int, worker: str | None, status: RunStatus, error: str | None = None,
    n_remains: int | None = None, n_missing: int | None = None, timings: dict[str, Any] | None = None,
    counts: dict[str, Any] | None = None, skipped: list[Any] | None = None, parameters: dict[str, Any] | None = None,
) -> bool:
    """End a running run held by ``worker`` (None: any holder): finished, failed or cancelled, with its
    audit entry. A run that did not finish keeps no candidates. False when the run was not held."""
    conds = [MatchingRun.id == run_id, MatchingRun.status == RunStatus.running.value]
    if worker is not None:
        conds.append(MatchingRun.worker == worker)
    values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "lease_expires_at": None,
                              "error": error, "phase": status.value}
    if status == RunStatus.finished:
        values["progress"] = 1.0
    for key, val in (("n_remains", n_remains), ("n_missing", n_missing), ("timings", timings), ("counts", counts),
                     ("skipped", skipped), ("parameters", parameters)):
        if val is not None:
            values[key] = val
    result = session.execute(update(MatchingRun).where(*conds).values(**values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    if status != RunStatus.finished:
        session.execute(delete(Candidate).where(Candidate.run_id == run_id))
    _audit_end(session, run_id=run_id, status=status, error=error, skipped=skipped)
    return True


def cancel_run(session: Session, *, run_id: int, by: User) -> MatchingRun:
    """Cancel a queued run at once; ask the worker of a running one to stop (it ends it as cancelled).
    Refused (409) for a run that ended."""
    run = get_run(session, run_id=run_id)
    if run.status == RunStatus.queued.value:
        result = session.execute(
            update(MatchingRun).where(MatchingRun.id == run_id, MatchingRun.status == RunStatus.queued.value)
            .values(status=RunStatus.cancelled.value, finished_at=utcnow(), phase="cancelled", cancel_requested=True)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            audit.append(session, action="matching.cancel", username=by.username, object_type="matching_run",
                         object_id=run_id, details={"status": "cancelled", "while": "queued"})
            return get_run(session, run_id=run_id, fresh=True)
        run = get_run(session, run_id=run_id, fresh=True)
    if run.status == RunStatus.running.value:
        session.execute(update(MatchingRun).where(MatchingRun.id == run_id,
                                                  MatchingRun.status == RunStatus.running.value)
                        .values(cancel_requested=True).execution_options(synchronize_session=False))
        audit.append(session, action="matching.cancel_requested", username=by.username,
                     object_type="matching_run", object_id=run_id, details={"while": "running"})
        return get_run(session, run_id=run_id, fresh=True)
    raise ConflictError(f"matching run {run_id} is {run.status}: only a queued or running run can be cancelled")


def _requeue(session: Session, *, run: MatchingRun, why: str) -> bool:
    """Queue a stale run again (it starts over); False when someone else changed it first."""
    result = session.execute(
        update(MatchingRun).where(MatchingRun.id == run.id, MatchingRun.status == RunStatus.running.value,
                                  MatchingRun.worker == run.worker)
        .values(status=RunStatus.queued.value, worker=None, lease_expires_at=None, progress=0.0,
                phase="queued again", error=None).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(delete(Candidate).where(Candidate.run_id == run.id))
    audit.append(session, action="matching.requeue", username=None, object_type="matching_run",
                 object_id=run.id, details={"reason": why, "attempts": run.attempts})
    return True


def recover_runs(session: Session, *, max_attempts: int, now: datetime | None = None) -> list[tuple[int, str]]:
    """Runs whose worker stopped sending heartbeats (crash, kill, restart): each is queued again
    (its candidates deleted; it starts over) while it has had fewer than ``max_attempts`` tries, else
    failed with the reason. Never left running. Returns ``(run id, new status)``."""
    now = now or utcnow()
    stale = list(session.execute(
        select(MatchingRun).where(MatchingRun.status == RunStatus.running.value,
                                  MatchingRun.lease_expires_at < now)
    ).scalars())
    out: list[tuple[int, str]] = []
    for run in stale:
        beat = as_aware(run.heartbeat_at).isoformat() if run.heartbeat_at else "never"
        why = f"worker {run.worker} stopped (last heartbeat {beat}, lease expired)"
        if run.attempts >= max_attempts:
            if end_run(session, run_id=run.id, worker=run.worker, status=RunStatus.failed,
                       error=f"{why}; {run.attempts} attempts, no more tries"):
                out.append((run.id, RunStatus.failed.value))
        elif _requeue(session, run=run, why=why):
            out.append((run.id, RunStatus.queued.value))
    return out


def runs_of(session: Session, *, operation: Operation, limit: int = 50) -> list[MatchingRun]:
    """The operation's runs, newest first."""
    return list(session.execute(select(MatchingRun).where(MatchingRun.operation_id == operation.id)
                                .order_by(MatchingRun.id.desc()).limit(limit)).scalars())


def latest_run(session: Session, *, operation: Operation) -> MatchingRun | None:
    """The operation's latest finished run."""
    return session.execute(
        select(MatchingRun)
        .where(MatchingRun.operation_id == operation.id, MatchingRun.status == RunStatus.finished.value)
        .order_by(MatchingRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def get_run(session: Session, *, run_id: int, fresh: bool = False) -> MatchingRun:
    run = session.get(MatchingRun, run_id, populate_existing=fresh)
    if run is None:
        raise NotFoundError(_("no matching run %(id)s", id=run_id))
    return run


def current_run_id(session: Session) -> int | None:
    """The latest finished run: every run matches every remains against every missing person."""
    return session.scalar(select(func.max(MatchingRun.id)).where(MatchingRun.status == RunStatus.finished.value))
