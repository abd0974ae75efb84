"""Remains (post-mortem samples) and the profile versions of remains and reference donors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from opendvi.i18n import gettext as _
from opendvi.store import audit
from opendvi.store.models import ACTIVE_STATES, Candidate, Donor, Identification, Operation, Profile, Remains
from opendvi.store.repositories.queries import Page, add_unique, contains_pattern, one_by, paginate
from opendvi.store.repositories.runs import current_run_id

__all__ = ["REMAINS_SORTS", "add_profile", "current_profile", "get_remains", "list_remains", "page_remains",
           "profiles_of", "update_remains"]

REMAINS_SORTS = ("barcode", "operation", "received", "best_lr")


def get_remains(session: Session, *, barcode: str) -> Remains:
    return one_by(session, Remains, Remains.barcode, barcode,
                  lambda: _("no remains with barcode %(barcode)s", barcode=repr(barcode)))


def list_remains(
    session: Session,
    *,
    operation: Operation | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Remains]:
    """Remains by barcode (see :func:`page_remains` for the paged list with filters)."""
    page = page_remains(session, operation=operation, q=q, per_page=limit, page=1 + offset // max(limit, 1))
    return [row[0] for row in page.items]


def _text_filter(stmt: Any, q: str | None) -> Any:
    """``q`` in the barcode, bag or laboratory (``%`` and ``_`` match themselves)."""
    if not q:
        return stmt
    like = contains_pattern(q)
    return stmt.where(
        or_(
            func.lower(Remains.barcode).like(like, escape="\\"),
            func.lower(func.coalesce(Remains.bag, "")).like(like, escape="\\"),
            func.lower(func.coalesce(Remains.laboratory, "")).like(like, escape="\\"),
        )
    )


def _active_identification() -> Any:
    return select(Identification.id).where(Identification.remains_id == Remains.id,
                                           Identification.state.in_(ACTIVE_STATES))


def _state_filter(stmt: Any, state: str | None) -> Any:
    if state == "none":
        return stmt.where(~_active_identification().exists())
    if state in ("proposed", "confirmed"):
        return stmt.where(select(Identification.id).where(Identification.remains_id == Remains.id,
                                                          Identification.state == state).exists())
    if state:
        raise ValueError(f"state must be none, proposed or confirmed, found {state!r}")
    return stmt


def page_remains(
    session: Session,
    *,
    operation: Operation | None = None,
    q: str | None = None,
    state: str | None = None,
    min_log10_lr: float | None = None,
    max_log10_lr: float | None = None,
    unreviewed_above: float | None = None,
    page: int = 1,
    per_page: int = 50,
    sort: str = "barcode",
) -> Page:
    """Remains, paged; rows ``(Remains, best log10 LR in the current run or None)``.

    Filters: operation; ``q`` in the barcode, bag or laboratory (``%`` and ``_`` match themselves);
    ``state``: ``none`` (no active identification), ``proposed``, ``confirmed``; the best LR of the
    current (latest finished) run in [min, max] (log10); ``unreviewed_above``: a candidate of the current
    run with log10 LR at or above it, and no active identification."""
    run_id = current_run_id(session)
    rid = run_id if run_id is not None else -1

    def filtered(stmt: Any) -> Any:
        if operation is not None:
            stmt = stmt.where(Remains.operation_id == operation.id)
        return _state_filter(_text_filter(stmt, q), state)

    sorts: dict[str, list[Any]] = {"barcode": [Remains.barcode], "operation": [Remains.operation_id, Remains.barcode],
                                   "received": [Remains.created_at]}
    if sort.removeprefix("-") != "best_lr" and min_log10_lr is None and max_log10_lr is None \
            and unreviewed_above is None:
        # the best LR only of the page's rows (an index seek each), the count over the remains alone:
        # no aggregate over every candidate of the run
        best_of = (select(func.max(Candidate.log10_lr))
                   .where(Candidate.run_id == rid, Candidate.remains_id == Remains.id).scalar_subquery())
        stmt = filtered(select(Remains, best_of.label("best")).options(selectinload(Remains.operation)))
        return paginate(session, stmt, page=page, per_page=per_page, sort=sort, scalars=False, tiebreak=Remains.id,
                        sorts={**sorts, "best_lr": [best_of]}, count_stmt=filtered(select(Remains.id)))
    best = (select(Candidate.remains_id.label("rid"), func.max(Candidate.log10_lr).label("best"))
            .where(Candidate.run_id == rid).group_by(Candidate.remains_id).subquery())
    stmt = filtered(select(Remains, best.c.best).outerjoin(best, best.c.rid == Remains.id)
                    .options(selectinload(Remains.operation)))
    if min_log10_lr is not None:
        stmt = stmt.where(best.c.best >= min_log10_lr)
    if max_log10_lr is not None:
        stmt = stmt.where(best.c.best <= max_log10_lr)
    if unreviewed_above is not None:
        stmt = stmt.where(best.c.best >= unreviewed_above, ~_active_identification().exists())
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, scalars=False, tiebreak=Remains.id,
                    sorts={**sorts, "best_lr": [best.c.best]})


def update_remains(
    session: Session,
    *,
    barcode: str,
    bag: str | None = None,
    sample_type: str | None = None,
    laboratory: str | None = None,
    kit: str | None = None,
    by: str | None = None,
) -> Remains:
    """Set a remains' bag, sample type, laboratory or kit (None leaves a field as it is)."""
    r = get_remains(session, barcode=barcode)
    changes = {k: v for k, v in (("bag", bag), ("sample_type", sample_type), ("laboratory", laboratory),
                                 ("kit", kit)) if v is not None}
    for k, v in changes.items():
        setattr(r, k, v)
    session.flush()
    if changes:
        audit.append(session, action="remains.update", username=by, object_type="remains", object_id=barcode,
                     details=changes)
    return r


def profiles_of(session: Session, *, remains: Remains | None = None, donor: Donor | None = None) -> list[Profile]:
    """Every version, oldest first."""
    if remains is not None:
        cond = Profile.remains_id == remains.id
    elif donor is not None:
        cond = Profile.donor_id == donor.id
    else:
        raise ValueError("give remains or donor")
    return list(session.execute(select(Profile).where(cond).order_by(Profile.version)).scalars())


def current_profile(session: Session, *, remains: Remains | None = None, donor: Donor | None = None) -> Profile | None:
    versions = profiles_of(session, remains=remains, donor=donor)
    return versions[-1] if versions else None


def add_profile(
    session: Session,
    *,
    genotypes: Mapping[str, Sequence[str]],
    remains: Remains | None = None,
    donor: Donor | None = None,
    dropout: float = 0.0,
    laboratory: str | None = None,
    kit: str | None = None,
    import_id: int | None = None,
    haplotypes: Mapping[str, Any] | None = None,
) -> Profile | None:
    """A new profile version, or None when it equals the current one. ``haplotypes`` (Y-STR, mtDNA, as
    dvi-case/1 spells them): None keeps the current version's (the source carried none)."""
    gts = {m: list(g) for m, g in sorted(genotypes.items())}
    cur = current_profile(session, remains=remains, donor=donor)
    haps = (cur.haplotypes if cur is not None else None) if haplotypes is None else (dict(haplotypes) or None)
    if cur is not None and cur.genotypes == gts and cur.dropout == dropout and cur.haplotypes == haps:
        return None
    prof = Profile(
        remains_id=remains.id if remains is not None else None,
        donor_id=donor.id if donor is not None else None,
        version=(cur.version + 1) if cur else 1,
        genotypes=gts,
        dropout=dropout,
        laboratory=laboratory,
        kit=kit,
        import_id=import_id,
        haplotypes=haps,
    )
    add_unique(session, prof, lambda: "the profile was re-typed by someone else at the same time; import again")
    return prof
