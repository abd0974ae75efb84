"""Query helpers of the repositories: one row or :class:`NotFoundError`, paged lists, the filters that
the pages, the API and the exports share (one home each), and reading the audit log (writing it:
:func:`opendvi.store.audit.append`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendvi.store.errors import ConflictError, NotFoundError
from opendvi.store.models import (
    ACTIVE_STATES,
    AuditEntry,
    Candidate,
    Family,
    Identification,
    IdentificationState,
    Operation,
    Remains,
)

__all__ = ["Page", "audit_entries", "filter_audit", "filter_candidates", "filter_identifications", "like_escape",
           "page_audit", "paginate"]

T = TypeVar("T")


def one_by(session: Session, model: type[T], column: Any, value: object, not_found: Callable[[], str]) -> T:
    """The row of ``model`` whose ``column`` (a unique one) is ``value``; else :class:`NotFoundError`
    with the message ``not_found()`` (translated when it is raised)."""
    row = session.execute(select(model).where(column == value)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(not_found())
    return row


def add_unique(session: Session, row: object, conflict: Callable[[], str]) -> None:
    """Add ``row`` and flush; when a unique constraint refuses it (someone else was first),
    :class:`ConflictError` with the message ``conflict()``."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(conflict()) from None


def like_escape(text: str) -> str:
    """``text`` for a LIKE pattern with escape character ``\\``: ``%`` and ``_`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_pattern(text: str) -> str:
    """A lower-case LIKE pattern (escape ``\\``) that matches ``text`` anywhere."""
    return f"%{like_escape(text.lower())}%"


@dataclass
class Page:
    """One page of a list: the rows, the total count of the filtered list, the page asked for."""

    items: list[Any]
    total: int
    page: int
    per_page: int
    sort: str

    def as_dict(self, items: list[Any]) -> dict[str, Any]:
        pages = max(1, -(-self.total // self.per_page))
        return {"items": items, "total": self.total, "page": self.page, "per_page": self.per_page,
                "pages": pages, "sort": self.sort}


def paginate(session: Session, stmt: Any, *, page: int, per_page: int, sort: str,
             sorts: Mapping[str, Sequence[Any]], tiebreak: Any, scalars: bool = True,
             count_stmt: Any = None) -> Page:
    """``stmt`` filtered, counted (one COUNT over it, or over ``count_stmt``: the same rows with fewer
    columns or joins, cheaper to count) and cut to ``page`` (1-based) of ``per_page``, ordered by
    ``sort`` (a key of ``sorts``, ``-`` in front for descending) then ``tiebreak``."""
    key = sort.removeprefix("-")
    if key not in sorts:
        raise ValueError(f"sort must be one of {', '.join(sorted(sorts))} (with - for descending), found {sort!r}")
    desc = sort.startswith("-")
    counted = count_stmt if count_stmt is not None else stmt
    total = session.scalar(select(func.count()).select_from(counted.order_by(None).subquery())) or 0
    order = [c.desc().nulls_last() if desc else c.asc().nulls_last() for c in sorts[key]]
    order.append(tiebreak.desc() if desc else tiebreak.asc())
    q = stmt.order_by(*order).limit(per_page).offset((page - 1) * per_page)
    # typed Any: mypy 2.4 crashes inferring list(Result[Any]) here (expand_unpack)
    result: Any = session.execute(q)
    rows = list(result.scalars()) if scalars else list(result)
    return Page(items=rows, total=total, page=page, per_page=per_page, sort=sort)


def barcode_or_family(stmt: Any, q: str | None) -> Any:
    """``q`` in the remains' barcode or the family code (case-insensitive), on a statement joining both."""
    if not q:
        return stmt
    like = contains_pattern(q)
    return stmt.where(or_(func.lower(Remains.barcode).like(like, escape="\\"),
                          func.lower(Family.code).like(like, escape="\\")))


def filter_identifications(stmt: Any, *, states: Sequence[IdentificationState] | None = None,
                           operation: Operation | None = None, q: str | None = None) -> Any:
    """The identification filters of the page, the API and the exports (one home); ``states`` None: any
    state. The statement joins Remains and Family (through MissingPerson) to Identification."""
    if states is not None:
        stmt = stmt.where(Identification.state.in_(list(states)))
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    return barcode_or_family(stmt, q)


def filter_audit(stmt: Any, *, action: str | None = None, username: str | None = None,
                 object_type: str | None = None, object_id: str | None = None) -> Any:
    """The audit filters of the page, the API and the exports (one home)."""
    for column, value in ((AuditEntry.action, action), (AuditEntry.username, username),
                          (AuditEntry.object_type, object_type), (AuditEntry.object_id, object_id)):
        if value:
            stmt = stmt.where(column == value)
    return stmt


def audit_entries(session: Session, *, limit: int = 200, object_type: str | None = None,
                  object_id: str | None = None) -> list[Any]:
    stmt = filter_audit(select(AuditEntry), object_type=object_type, object_id=object_id)
    return list(session.execute(stmt.order_by(AuditEntry.seq.desc()).limit(limit)).scalars())


def page_audit(session: Session, *, action: str | None = None, username: str | None = None,
               object_type: str | None = None, object_id: str | None = None, page: int = 1, per_page: int = 100,
               sort: str = "-seq") -> Page:
    """Audit entries, paged (newest first by default)."""
    stmt = filter_audit(select(AuditEntry), action=action, username=username, object_type=object_type,
                        object_id=object_id)
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=AuditEntry.id,
                    sorts={"seq": [AuditEntry.seq]})


def filter_candidates(stmt: Any, *, operation: Operation | None = None, q: str | None = None,
                      min_log10_lr: float | None = None, max_log10_lr: float | None = None,
                      unreviewed: bool = False) -> Any:
    """The candidate filters of the lists, the API and the exports (one home): a statement that joins
    Remains and Family (through MissingPerson) to Candidate."""
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    stmt = barcode_or_family(stmt, q)
    if min_log10_lr is not None:
        stmt = stmt.where(Candidate.log10_lr >= min_log10_lr)
    if max_log10_lr is not None:
        stmt = stmt.where(Candidate.log10_lr <= max_log10_lr)
    if unreviewed:
        stmt = stmt.where(~select(Identification.id).where(Identification.remains_id == Candidate.remains_id,
                                                           Identification.state.in_(ACTIVE_STATES)).exists())
    return stmt
