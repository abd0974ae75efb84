"""Operations (one incident or exchange each) and the counts of their dashboard."""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from opendvi.i18n import gettext as _
from opendvi.store import audit
from opendvi.store.errors import ConflictError
from opendvi.store.models import (
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

__all__ = ["create_operation", "get_operation", "list_operations", "operation_dashboard"]


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

    return select(
        select(func.count(Remains.id)).where(Remains.operation_id == op_id).scalar_subquery(),
        select(func.count(func.distinct(Profile.remains_id))).join(Remains, Remains.id == Profile.remains_id)
        .where(Remains.operation_id == op_id).scalar_subquery(),
        select(func.count(func.distinct(Candidate.remains_id))).join(Remains, Remains.id == Candidate.remains_id)
        .where(Candidate.run_id == run_id, Candidate.log10_lr > 0, Remains.operation_id == op_id).scalar_subquery(),
        idents(IdentificationState.proposed),
        idents(IdentificationState.confirmed),
        select(func.count(MatchingRun.id)).where(MatchingRun.operation_id == op_id).scalar_subquery(),
    )


def operation_dashboard(session: Session, *, operation: Operation) -> dict[str, int | None]:
    """Counts: remains received, typed, matched (a candidate with LR > 1 in
    the latest run), proposed and confirmed (active identifications)."""
    row = session.execute(_dashboard_statement(), {"op_id": operation.id}).one()
    received, typed, matched, proposed, confirmed, runs = (int(x or 0) for x in row)
    return {"expected": operation.expected_count, "received": received, "typed": typed, "matched": matched,
            IdentificationState.proposed.value: proposed, IdentificationState.confirmed.value: confirmed,
            "runs": runs}
