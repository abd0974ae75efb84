"""The API's remains and candidates (paged lists, a remains with its profiles, a pairing with its
per-marker LRs)."""

from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from opendvi.service import schemas as s
from opendvi.service import views as v
from opendvi.service.deps import DB, P, Principal
from opendvi.service.routes.api._common import Id, Ident, ListQuery, paging, router
from opendvi.service.writes import writing
from opendvi.store import repositories as repo

OperationQ = Annotated[str | None, Query(max_length=64)]


class RemainsUpdate(BaseModel):
    bag: str | None = Field(default=None, max_length=64)
    sample_type: str | None = Field(default=None, max_length=64)
    laboratory: str | None = Field(default=None, max_length=128)
    kit: str | None = Field(default=None, max_length=128)


@router.get("/remains", tags=["remains"], response_model=list[s.RemainsRowOut])
def list_remains(
    db: DB,
    lq: Annotated[ListQuery, Depends(paging("barcode", "barcode, operation, received, best_lr; - for descending"))],
    operation: OperationQ = None,
    q: str | None = Query(None, max_length=64, description="in the barcode, bag or laboratory"),
    state: str | None = Query(None, pattern="^(none|proposed|confirmed)$",
                              description="identification: none (no active one), proposed, confirmed"),
    min_log10_lr: float | None = Query(None, description="best log10 LR of the current run at least"),
    max_log10_lr: float | None = Query(None, description="best log10 LR of the current run at most"),
    unreviewed_above: float | None = Query(None, description="a candidate with log10 LR at least this, and no "
                                                             "active identification"),
    principal: Principal = P("remains.read"),
) -> list[dict[str, Any]]:
    """Remains, paged (the total in ``X-Total-Count``; each row with the best LR of the current run)."""
    op = repo.get_operation(db, code=operation) if operation else None
    pg = lq.fetch(repo.page_remains, session=db, operation=op, q=q, state=state, min_log10_lr=min_log10_lr,
                  max_log10_lr=max_log10_lr, unreviewed_above=unreviewed_above)
    return lq.out(pg, v.remains_page_public(db, pg)["items"])


@router.get("/candidates", tags=["remains"], response_model=list[s.CandidateOut])
def list_candidates(
    db: DB,
    lq: Annotated[ListQuery, Depends(paging("-log10_lr", "log10_lr, posterior, remains, family; - for descending"))],
    run: int | None = Query(None, ge=1, description="default: the latest finished run"),
    operation: OperationQ = None,
    q: str | None = Query(None, max_length=64, description="in the barcode or the family code"),
    min_log10_lr: float | None = None,
    max_log10_lr: float | None = None,
    unreviewed: bool = Query(False, description="only remains without an active identification"),
    principal: Principal = P("candidates.read"),
) -> list[dict[str, Any]]:
    """Candidates of a run, paged (the total in ``X-Total-Count``)."""
    op = repo.get_operation(db, code=operation) if operation else None
    pg = lq.fetch(repo.page_candidates, session=db, run_id=run, operation=op, q=q, min_log10_lr=min_log10_lr,
                  max_log10_lr=max_log10_lr, unreviewed=unreviewed)
    return lq.out(pg, [v.candidate_public(c) for c in pg.items])


@router.get("/remains/{barcode:path}/candidates", tags=["remains"], response_model=list[s.CandidateOut])
def remains_candidates(barcode: Ident, db: DB, principal: Principal = P("candidates.read")) -> list[dict[str, Any]]:
    """Candidates of the latest run that included the remains: LR, posterior, exclusions."""
    r = repo.get_remains(db, barcode=barcode)
    return [v.candidate_public(c) for c in repo.candidates_for_remains(db, remains=r)]


@router.get("/remains/{barcode:path}", tags=["remains"], response_model=s.RemainsOut)
def get_remains(barcode: Ident, db: DB, principal: Principal = P("remains.read")) -> dict[str, Any]:
    """One remains with every version of its profile."""
    return v.remains_public(db, repo.get_remains(db, barcode=barcode), profiles=True)


@router.patch("/remains/{barcode:path}", tags=["remains"], response_model=s.RemainsOut)
def update_remains(
    barcode: Ident, body: RemainsUpdate, db: DB, principal: Principal = P("remains.write")
) -> dict[str, Any]:
    """Bag, sample type, laboratory and kit of a remains."""
    with writing(db):
        r = repo.update_remains(db, barcode=barcode, bag=body.bag, sample_type=body.sample_type,
                                laboratory=body.laboratory, kit=body.kit, by=principal.username)
    return v.remains_public(db, r)


@router.get("/candidates/{candidate_id}", tags=["remains"], response_model=s.CandidateOut)
def get_candidate(candidate_id: Id, db: DB, principal: Principal = P("candidates.read")) -> dict[str, Any]:
    """One pairing with its per-marker LR table."""
    return v.candidate_public(repo.get_candidate(db, candidate_id=candidate_id), per_marker=True)
