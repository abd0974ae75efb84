"""The API's fragments of one person (``docs/service.md``, fragments): groups of remains that are parts
of one person, suggested by a matching run, proposed by a DVI analyst, confirmed by a reviewer who did not
propose it (four eyes) or split; the links of a remains in the latest run."""

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field

from opendvi.service import fragments_views as fv
from opendvi.service import schemas as s
from opendvi.service.deps import DB, P, Principal
from opendvi.service.routes.api._common import Id, router
from opendvi.service.writes import writing
from opendvi.store import repositories as repo
from opendvi.store.models_fragments import FragmentGroupState


class GroupProposeIn(BaseModel):
    remains: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=2, max_length=1000, description="the barcodes of the remains, two or more")
    note: str = Field(default="", max_length=10_000)


class GroupActionIn(BaseModel):
    note: str = Field(default="", max_length=10_000, description="propose: the analyst's note")
    reason: str = Field(default="", max_length=10_000, description="split: why (required); confirm: optional")
    version: int | None = Field(default=None, ge=1, le=2**62, description="the version read (optimistic lock)")


@router.get("/fragment-groups", tags=["fragments"], response_model=list[s.FragmentGroupOut])
def list_fragment_groups(
    db: DB,
    state: FragmentGroupState | None = None,
    remains: Annotated[str | None, Query(max_length=200, description="the groups of this barcode")] = None,
    principal: Principal = P("remains.read"),
) -> list[dict[str, Any]]:
    """Fragment groups, newest first (at most 500), of one remains and/or in one state."""
    r = repo.get_remains(db, barcode=remains) if remains else None
    groups = repo.fragment_groups(db, remains=r, state=state.value if state else None)
    return [fv.group_public(db, g) for g in groups]


@router.get("/fragment-groups/{group_id}", tags=["fragments"], response_model=s.FragmentGroupOut)
def get_fragment_group(group_id: Id, db: DB, principal: Principal = P("remains.read")) -> dict[str, Any]:
    return fv.group_public(db, repo.get_fragment_group(db, group_id=group_id))


@router.get("/fragment-links", tags=["fragments"], response_model=list[s.FragmentLinkOut])
def fragment_links(db: DB, remains: Annotated[str | None, Query(max_length=200, description="the remains' barcode")]
                   = None, principal: Principal = P("remains.read")) -> list[dict[str, Any]]:
    """The links (direct-match LR at or above the run's fragment threshold) and the pairs inside groups of
    the latest finished run, best first: of one remains, or all of them (at most 5,000)."""
    r = repo.get_remains(db, barcode=remains) if remains else None
    return [fv.link_public(ln) for ln in repo.fragment_links_of(db, remains=r)]


@router.post("/fragment-groups", tags=["fragments"], status_code=201, response_model=s.FragmentGroupOut,
             summary="Propose remains as one person")
def propose_new_group(body: GroupProposeIn, db: DB, principal: Principal = P("fragments.propose")) -> dict[str, Any]:
    """Propose remains of one's choice as one person (e.g. a part of a split group); 409 if one of them
    is in an active group."""
    with writing(db):
        g = repo.propose_fragment_group(db, by=principal.user, barcodes=body.remains, note=body.note)
    return fv.group_public(db, g)


@router.post("/fragment-groups/{group_id}/propose", tags=["fragments"], response_model=s.FragmentGroupOut,
             summary="Propose a suggested fragment group")
def propose_group(group_id: Id, db: DB, body: GroupActionIn | None = None,
                  principal: Principal = P("fragments.propose")) -> dict[str, Any]:
    """Propose a suggested group (a DVI analyst)."""
    b = body or GroupActionIn()
    with writing(db):
        g = repo.propose_fragment_group(db, by=principal.user, group_id=group_id, note=b.note, version=b.version)
    return fv.group_public(db, g)


@router.post("/fragment-groups/{group_id}/confirm", tags=["fragments"], response_model=s.FragmentGroupOut,
             summary="Confirm a fragment group")
def confirm_group(group_id: Id, db: DB, body: GroupActionIn | None = None,
                  principal: Principal = P("fragments.decide")) -> dict[str, Any]:
    """Confirm a proposed group (a reviewer who did not propose it); later runs match it as one person."""
    b = body or GroupActionIn()
    with writing(db):
        g = repo.confirm_fragment_group(db, group_id=group_id, by=principal.user, version=b.version, reason=b.reason)
    return fv.group_public(db, g)


@router.post("/fragment-groups/{group_id}/split", tags=["fragments"], response_model=s.FragmentGroupOut,
             summary="Split a fragment group")
def split_group(group_id: Id, body: GroupActionIn, db: DB,
                principal: Principal = P("fragments.split")) -> dict[str, Any]:
    """Split a group, with a reason (a confirmed one: a reviewer); its remains are matched one by one."""
    with writing(db):
        g = repo.split_fragment_group(db, group_id=group_id, by=principal.user, reason=body.reason,
                                      version=body.version)
    return fv.group_public(db, g)
