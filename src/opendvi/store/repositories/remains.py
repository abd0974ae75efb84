"""Remains (post-mortem samples) and the profile versions of remains and reference donors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, literal_column, or_, select
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


#: ``rank = 1`` as a literal, so that the statement matches the partial index
#: ``ix_candidates_run_best`` (``WHERE rank = 1``; a bound parameter would not)
_RANK_1: Any = literal_column("1")
#: up to this many remains passing the filters, a list sorted by best LR probes and sorts them; more, it
#: walks the index of the rank-1 candidates
SORT_FEW = 2000


def _lr_of_run(rid: int, *where: Any) -> Any:
    """A candidate of run ``rid`` for the remains of the row, with ``where``: ``EXISTS``, one probe of
    ``candidates (run_id, remains_id, log10_lr)``."""
    return select(Candidate.id).where(Candidate.run_id == rid, Candidate.remains_id == Remains.id, *where).exists()


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
    run with log10 LR at or above it, and no active identification.

    The best LR of a remains in a run is the largest ``log10_lr`` of its candidates there (None: none, or
    every one LR 0), which is its candidate of rank 1 (a run ranks each remains' candidates by LR, best
    first: ``workflows.matching``, carried rows and fragment groups alike). No statement aggregates the
    run's candidates (issue 9, 300,000 of them at national scale): the page's best LRs are one index probe
    a row; sorted by best LR, a page walks the partial index of the rank-1 candidates
    (``ix_candidates_run_best``) and stops at the page (when at most :data:`SORT_FEW` remains pass the
    filters, they are probed and sorted instead); the LR filters probe each remains (``EXISTS``),
    and their count walks that index's range."""
    run_id = current_run_id(session)
    rid = run_id if run_id is not None else -1

    def filtered(stmt: Any) -> Any:
        if operation is not None:
            stmt = stmt.where(Remains.operation_id == operation.id)
        return _state_filter(_text_filter(stmt, q), state)

    # the best LR only of the page's rows (an index seek each)
    best_of = (select(func.max(Candidate.log10_lr))
               .where(Candidate.run_id == rid, Candidate.remains_id == Remains.id).scalar_subquery())
    sorts: dict[str, list[Any]] = {"barcode": [Remains.barcode], "operation": [Remains.operation_id, Remains.barcode],
                                   "received": [Remains.created_at], "best_lr": [best_of]}
    # the LR filters on the best LR, as conditions on each remains (max >= x: a candidate at or above x;
    # max <= x: a candidate with an LR, none above x) and on its rank-1 candidate
    probes: list[Any] = []
    on_best: list[Any] = []
    if min_log10_lr is not None:
        probes.append(_lr_of_run(rid, Candidate.log10_lr >= min_log10_lr))
        on_best.append(Candidate.log10_lr >= min_log10_lr)
    if max_log10_lr is not None:
        probes += [_lr_of_run(rid, Candidate.log10_lr.is_not(None)),
                   ~_lr_of_run(rid, Candidate.log10_lr > max_log10_lr)]
        on_best.append(Candidate.log10_lr <= max_log10_lr)
    if unreviewed_above is not None:
        probes += [_lr_of_run(rid, Candidate.log10_lr >= unreviewed_above), ~_active_identification().exists()]
        on_best.append(Candidate.log10_lr >= unreviewed_above)
        on_best.append(~_active_identification().exists())

    def ranked(*columns: Any) -> Any:
        """The filtered remains with an LR in the run, from their rank-1 candidate (the index walked first)."""
        return filtered(select(*columns).select_from(Candidate).join(Remains, Remains.id == Candidate.remains_id)
                        .where(Candidate.run_id == rid, Candidate.rank == _RANK_1, Candidate.log10_lr.is_not(None),
                               *on_best))

    key = sort.removeprefix("-")
    if key != "best_lr":
        stmt = filtered(select(Remains, best_of.label("best")).options(selectinload(Remains.operation))
                        .where(*probes))
        count_stmt = ranked(Candidate.remains_id) if on_best else filtered(select(Remains.id))
        return paginate(session, stmt, page=page, per_page=per_page, sort=sort, scalars=False, tiebreak=Remains.id,
                        sorts=sorts, count_stmt=count_stmt)

    def count(stmt: Any) -> int:
        return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0

    desc = sort.startswith("-")
    total = count(ranked(Candidate.remains_id) if on_best else filtered(select(Remains.id)))
    if total <= SORT_FEW:
        # few remains pass the filters (a search, a small operation): each one probed and sorted, not a
        # walk of the index past the run's other remains
        stmt = filtered(select(Remains, best_of.label("best")).options(selectinload(Remains.operation))
                        .where(*probes))
        order = [best_of.desc().nulls_last(), Remains.id.desc()] if desc else \
            [best_of.asc().nulls_last(), Remains.id.asc()]
        rows = session.execute(stmt.order_by(*order).limit(per_page).offset((page - 1) * per_page))
        return Page(items=[tuple(r) for r in rows], total=total, page=page, per_page=per_page, sort=sort)
    return _page_by_best(session, ranked=ranked, filtered=filtered, count=count, rid=rid, lr_filtered=bool(on_best),
                         desc=desc, total=total, page=page, per_page=per_page, sort=sort)


def _page_by_best(session: Session, *, ranked: Any, filtered: Any, count: Any, rid: int, lr_filtered: bool,
                  desc: bool, total: int, page: int, per_page: int, sort: str) -> Page:
    """:func:`page_remains` sorted by best LR (then remains id), nulls last in both directions: the remains
    with an LR in the run in the order of ``ix_candidates_run_best`` (a walk that stops at the page), then
    (no LR filter) those without one (no candidate, or every one LR 0) by id."""
    order = (Candidate.log10_lr.desc(), Candidate.remains_id.desc()) if desc else \
        (Candidate.log10_lr.asc(), Candidate.remains_id.asc())
    offset = (page - 1) * per_page
    first = ranked(Remains, Candidate.log10_lr.label("best")).options(selectinload(Remains.operation))
    items: list[Any] = [tuple(r) for r in session.execute(first.order_by(*order).limit(per_page).offset(offset))]
    if not lr_filtered and len(items) < per_page:
        # past the remains with an LR: how many of them there are, from this page when it holds some
        n_ranked = offset + len(items) if items or offset == 0 else count(ranked(Candidate.remains_id))
        rest = (filtered(select(Remains).options(selectinload(Remains.operation)))
                .where(~_lr_of_run(rid, Candidate.log10_lr.is_not(None)))
                .order_by(Remains.id.desc() if desc else Remains.id.asc())
                .limit(per_page - len(items)).offset(max(0, offset - n_ranked)))
        items += [(r, None) for r in session.execute(rest).scalars()]
    return Page(items=items, total=total, page=page, per_page=per_page, sort=sort)


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
