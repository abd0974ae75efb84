"""Operations (one incident or exchange each): the counts of their dashboard and the queries of their plots."""

from __future__ import annotations

import functools
import threading
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.orm import Session

from opendvi.i18n import gettext as _
from opendvi.store import audit
from opendvi.store.errors import ConflictError
from opendvi.store.models import (
    AuditHead,
    Candidate,
    Identification,
    IdentificationState,
    MatchingRun,
    Operation,
    Profile,
    Remains,
    RunStatus,
)
from opendvi.store.repositories.queries import add_unique, one_by
from opendvi.store.repositories.runs import current_run_id

__all__ = ["best_lr_per_remains", "create_operation", "get_operation", "list_operations", "operation_dashboard",
           "operation_progress", "progress_fingerprint"]


def create_operation(
    session: Session,
    *,
    code: str,
    name: str,
    kind: str = "exchange",
    received_on: date | None = None,
    expected_count: int | None = None,
    by: str | None = None,
) -> Operation:
    if session.execute(select(Operation.id).where(Operation.code == code)).first():
        raise ConflictError(_("operation %(code)s exists already", code=repr(code)))
    op = Operation(code=code, name=name, kind=kind, received_on=received_on, expected_count=expected_count)
    add_unique(session, op, lambda: _("operation %(code)s exists already", code=repr(code)))
    audit.append(session, action="operation.create", username=by, object_type="operation", object_id=code,
                 details={"name": name, "kind": kind, "expected_count": expected_count})
    return op


def get_operation(session: Session, *, code: str) -> Operation:
    return one_by(session, Operation, Operation.code, code,
                  lambda: _("no operation with code %(code)s", code=repr(code)))


def list_operations(session: Session) -> list[Operation]:
    return list(session.execute(select(Operation).order_by(Operation.created_at, Operation.id)).scalars())


@functools.cache
def _dashboard_statement() -> Any:
    """The dashboard's counts in one statement of scalar subqueries (the most-read page: one round
    trip), built once (building a statement costs more than running it) with the operation bound."""
    op_id: Any = bindparam("op_id")
    run_id = (select(func.max(MatchingRun.id)).where(MatchingRun.status == RunStatus.finished.value)
              .scalar_subquery())  # current_run_id()

    def idents(state: IdentificationState) -> Any:
        return (select(func.count(Identification.id)).join(Remains, Remains.id == Identification.remains_id)
                .where(Remains.operation_id == op_id, Identification.state == state).scalar_subquery())

    def remains_with(*where: Any) -> Any:
        """The operation's remains that have a row: ``EXISTS``, one probe of a covering index a remains
        (``profiles (remains_id, version)``), the plan SQLite takes with or without ``ANALYZE`` (a
        ``count(DISTINCT)`` over a join read every row from the table: 42 -> 4 ms at 50,000 candidates)."""
        return select(func.count(Remains.id)).where(Remains.operation_id == op_id, *where).scalar_subquery()

    return select(
        select(func.count(Remains.id)).where(Remains.operation_id == op_id).scalar_subquery(),
        remains_with(select(Profile.id).where(Profile.remains_id == Remains.id).exists()),
        # matched: the remains whose best candidate (rank 1: its largest LR) has LR > 1, a range of the
        # partial index ix_candidates_run_best (``rank = 1`` a literal, to match its WHERE), each row one
        # probe of the remains: the matched remains alone, not one probe of every remains of the operation
        select(func.count(Candidate.remains_id)).select_from(Candidate)
        .join(Remains, Remains.id == Candidate.remains_id)
        .where(Candidate.run_id == run_id, Candidate.rank == literal_column("1"), Candidate.log10_lr > 0,
               Remains.operation_id == op_id).scalar_subquery(),
        idents(IdentificationState.proposed),
        idents(IdentificationState.confirmed),
        select(func.count(MatchingRun.id)).where(MatchingRun.operation_id == op_id).scalar_subquery(),
    )


#: the dashboard's counts by (operation, version of the data): every write they depend on is audited (an
#: import, a run queued or ended, a decision, a remains changed), so while the audit chain's head (its
#: sequence number and hash: unique to one database's history) is the same, so are the counts; the
#: newest remains, profile, run and identification ids join it, so that a row added without an audit
#: entry cannot leave a count behind. The most-read statement, whose cost grows with the operation's
#: remains (30 ms at 15,000 on PostgreSQL), then runs once per change of the data in each process, not
#: once per page (its key is a few index look-ups)
_COUNTS: dict[tuple[Any, ...], tuple[int, ...]] = {}
_COUNTS_KEPT = 256
_COUNTING = threading.Lock()


@functools.cache
def _data_version_statement() -> Any:
    return select(
        select(AuditHead.seq).where(AuditHead.id == 1).scalar_subquery(),
        select(AuditHead.hash).where(AuditHead.id == 1).scalar_subquery(),
        select(func.max(Remains.id)).scalar_subquery(),
        select(func.max(Profile.id)).scalar_subquery(),
        select(func.max(MatchingRun.id)).scalar_subquery(),
        select(func.max(Identification.id)).scalar_subquery(),
    )


def operation_dashboard(session: Session, *, operation: Operation) -> dict[str, int | None]:
    """Counts: remains received, typed, matched (a candidate with LR > 1 in
    the latest run), proposed and confirmed (active identifications)."""
    key = (operation.id, *session.execute(_data_version_statement()).one())
    counts = _COUNTS.get(key)
    if counts is None:
        # one request of the process counts after a change; the others that arrive meanwhile wait for
        # its counts rather than each running the same statement
        with _COUNTING:
            counts = _COUNTS.get(key)
            if counts is None:
                row = session.execute(_dashboard_statement(), {"op_id": operation.id}).one()
                counts = tuple(int(x or 0) for x in row)
                if len(_COUNTS) >= _COUNTS_KEPT:
                    _COUNTS.clear()
                _COUNTS[key] = counts
    received, typed, matched, proposed, confirmed, runs = counts
    return {"expected": operation.expected_count, "received": received, "typed": typed, "matched": matched,
            IdentificationState.proposed.value: proposed, IdentificationState.confirmed.value: confirmed,
            "runs": runs}


def best_lr_per_remains(session: Session, *, operation: Operation) -> tuple[MatchingRun | None, list[float | None]]:
    """The current run (the latest finished one, as on the dashboard and the remains list; None: no run yet)
    and the best log10 LR of each remains of ``operation`` in it (None: every candidate excluded); remains
    without any candidate in it are not counted."""
    run_id = current_run_id(session)
    run = None if run_id is None else session.get(MatchingRun, run_id)
    if run is None:
        return None, []
    best = session.execute(select(func.max(Candidate.log10_lr)).join(Remains, Remains.id == Candidate.remains_id)
                           .where(Candidate.run_id == run_id, Remains.operation_id == operation.id)
                           .group_by(Candidate.remains_id)).scalars().all()
    return run, [None if v is None else float(v) for v in best]


def _day(x: Any) -> date | None:
    if x is None:
        return None
    if isinstance(x, datetime):
        return (x if x.tzinfo is None else x.astimezone(UTC)).date()
    if isinstance(x, date):
        return x
    return datetime.fromisoformat(str(x)).date()


def operation_progress(session: Session, *, operation: Operation) -> dict[str, dict[date, int]]:
    """New remains per day and series (each remains counted once per series, on its first day):

    * received: the remains was registered;
    * typed: its first profile was imported;
    * matched: the first finished matching run in which it had a candidate with LR > 1 ended;
    * proposed: its first identification was proposed;
    * confirmed: its identification that is confirmed now was confirmed.
    """
    on_op = Remains.operation_id == operation.id
    queries = {
        "received": select(Remains.created_at).where(on_op),
        "typed": select(func.min(Profile.created_at)).join(Remains, Remains.id == Profile.remains_id)
        .where(on_op).group_by(Profile.remains_id),
        "matched": select(func.min(MatchingRun.finished_at)).select_from(Candidate)
        .join(MatchingRun, MatchingRun.id == Candidate.run_id).join(Remains, Remains.id == Candidate.remains_id)
        .where(on_op, MatchingRun.status == RunStatus.finished.value, Candidate.log10_lr > 0)
        .group_by(Candidate.remains_id),
        "proposed": select(func.min(Identification.proposed_at))
        .join(Remains, Remains.id == Identification.remains_id).where(on_op).group_by(Identification.remains_id),
        "confirmed": select(func.min(Identification.decided_at))
        .join(Remains, Remains.id == Identification.remains_id)
        .where(on_op, Identification.state == IdentificationState.confirmed).group_by(Identification.remains_id),
    }
    out: dict[str, dict[date, int]] = {}
    for name, stmt in queries.items():
        days: dict[date, int] = {}
        for when in session.execute(stmt).scalars():
            d = _day(when)
            if d is not None:
                days[d] = days.get(d, 0) + 1
        out[name] = dict(sorted(days.items()))
    return out


def progress_fingerprint(session: Session, *, operation: Operation) -> tuple[Any, ...]:
    """What :func:`operation_progress` depends on, in one cheap statement: the operation's remains (count,
    newest), profiles (count, newest id), the latest finished run, and its identifications (count, newest
    id, the sum of their versions: every decision bumps a version). Equal fingerprints, equal series."""
    on_op = Remains.operation_id == operation.id
    row = session.execute(select(
        select(func.count(Remains.id)).where(on_op).scalar_subquery(),
        select(func.max(Remains.id)).where(on_op).scalar_subquery(),
        select(func.count(Profile.id)).join(Remains, Remains.id == Profile.remains_id).where(on_op)
        .scalar_subquery(),
        select(func.max(Profile.id)).join(Remains, Remains.id == Profile.remains_id).where(on_op).scalar_subquery(),
        select(func.max(MatchingRun.id)).where(MatchingRun.status == RunStatus.finished.value).scalar_subquery(),
        select(func.count(Identification.id)).join(Remains, Remains.id == Identification.remains_id)
        .where(on_op).scalar_subquery(),
        select(func.max(Identification.id)).join(Remains, Remains.id == Identification.remains_id)
        .where(on_op).scalar_subquery(),
        select(func.sum(Identification.version)).join(Remains, Remains.id == Identification.remains_id)
        .where(on_op).scalar_subquery(),
    )).one()
    return (operation.id, operation.expected_count, *(None if v is None else int(v) for v in row))
