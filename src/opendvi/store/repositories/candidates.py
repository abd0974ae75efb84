"""Reading candidates (a run's pairings of remains and missing persons) and identifications."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from opendvi.i18n import gettext as _
from opendvi.store.errors import NotFoundError
from opendvi.store.models import (
    Candidate,
    Family,
    Identification,
    IdentificationState,
    MatchingRun,
    MissingPerson,
    Operation,
    Remains,
    RunStatus,
)
from opendvi.store.repositories.queries import Page, filter_candidates, filter_identifications, paginate
from opendvi.store.repositories.runs import current_run_id

__all__ = ["candidates_for_remains", "get_candidate", "get_identification", "list_identifications", "page_candidates",
           "page_identifications"]


def get_candidate(session: Session, *, candidate_id: int) -> Candidate:
    c = session.get(Candidate, candidate_id)
    if c is None:
        raise NotFoundError(_("no candidate %(id)s", id=candidate_id))
    return c


def candidates_for_remains(session: Session, *, remains: Remains) -> list[Candidate]:
    """The remains' candidates from the latest finished run that included it, best first."""
    run_id = session.scalar(
        select(func.max(Candidate.run_id)).join(MatchingRun, MatchingRun.id == Candidate.run_id)
        .where(Candidate.remains_id == remains.id, MatchingRun.status == RunStatus.finished.value)
    )
    if run_id is None:
        return []
    return list(
        session.execute(
            select(Candidate).where(Candidate.run_id == run_id, Candidate.remains_id == remains.id)
            .options(selectinload(Candidate.remains), selectinload(Candidate.missing_person)
                     .selectinload(MissingPerson.family))
            .order_by(Candidate.rank)
        ).scalars()
    )


def page_candidates(
    session: Session, *, run_id: int | None = None, operation: Operation | None = None, q: str | None = None,
    min_log10_lr: float | None = None, max_log10_lr: float | None = None, unreviewed: bool = False,
    page: int = 1, per_page: int = 50, sort: str = "-log10_lr",
) -> Page:
    """Candidates of a run (default: the current, latest finished one), paged; ``q`` in the barcode or
    the family code; ``unreviewed``: the remains has no active identification."""
    rid = run_id if run_id is not None else current_run_id(session)
    stmt = (select(Candidate).join(Remains, Remains.id == Candidate.remains_id)
            .join(MissingPerson, MissingPerson.id == Candidate.missing_person_id)
            .join(Family, Family.id == MissingPerson.family_id)
            .where(Candidate.run_id == (rid if rid is not None else -1))
            .options(selectinload(Candidate.remains), selectinload(Candidate.missing_person)
                     .selectinload(MissingPerson.family)))
    stmt = filter_candidates(stmt, operation=operation, q=q, min_log10_lr=min_log10_lr, max_log10_lr=max_log10_lr,
                             unreviewed=unreviewed)
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=Candidate.id,
                    sorts={"log10_lr": [Candidate.log10_lr], "posterior": [Candidate.posterior],
                           "remains": [Remains.barcode, Candidate.rank], "family": [Family.code]})


def get_identification(session: Session, *, identification_id: int) -> Identification:
    ident = session.get(Identification, identification_id)
    if ident is None:
        raise NotFoundError(_("no identification %(id)s", id=identification_id))
    return ident


def list_identifications(
    session: Session,
    *,
    states: Sequence[IdentificationState] | None = None,
    operation: Operation | None = None,
    remains: Remains | None = None,
) -> list[Identification]:
    stmt = select(Identification).join(Remains, Remains.id == Identification.remains_id)
    if states:
        stmt = stmt.where(Identification.state.in_(list(states)))
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    if remains is not None:
        stmt = stmt.where(Identification.remains_id == remains.id)
    return list(session.execute(stmt.order_by(Identification.id.desc())).scalars())


def page_identifications(
    session: Session, *, states: Sequence[IdentificationState] | None = None, operation: Operation | None = None,
    q: str | None = None, page: int = 1, per_page: int = 50, sort: str = "-id",
) -> Page:
    """Identifications, paged (everything a row shows loaded with selectinload); ``q`` in the
    barcode or the family code."""
    stmt = (select(Identification).join(Remains, Remains.id == Identification.remains_id)
            .join(MissingPerson, MissingPerson.id == Identification.missing_person_id)
            .join(Family, Family.id == MissingPerson.family_id)
            .options(selectinload(Identification.remains).selectinload(Remains.operation),
                     selectinload(Identification.missing_person).selectinload(MissingPerson.family),
                     selectinload(Identification.candidate), selectinload(Identification.proposed_by),
                     selectinload(Identification.decided_by)))
    stmt = filter_identifications(stmt, states=states or None, operation=operation, q=q)
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=Identification.id,
                    sorts={"id": [Identification.id], "state": [Identification.state],
                           "remains": [Remains.barcode], "family": [Family.code]})
