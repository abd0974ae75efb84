"""The remains page's fragment forms (``templates/_fragments.html``): propose, confirm, split a group;
each answers with a redirect to the remains page (303)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from opendvi.service.deps import DB, P, Principal
from opendvi.service.writes import writing
from opendvi.store import repositories as repo

router = APIRouter(include_in_schema=False)  # pages: not in the API documentation


def _back(barcode: str, group_id: int) -> Response:
    return RedirectResponse(f"/remains/{quote(barcode, safe='')}#fragment-group-{group_id}", status_code=303)


@router.post("/fragment-groups/{group_id}/propose")
def propose(group_id: int, db: DB, back: str = Form(..., max_length=200), note: str = Form("", max_length=10_000),
            version: int | None = Form(None, ge=1, le=2**62),
            principal: Principal = P("fragments.propose")) -> Response:
    with writing(db):
        repo.propose_fragment_group(db, by=principal.user, group_id=group_id, note=note, version=version)
    return _back(back, group_id)


@router.post("/fragment-groups/{group_id}/confirm")
def confirm(group_id: int, db: DB, back: str = Form(..., max_length=200), reason: str = Form("", max_length=10_000),
            version: int | None = Form(None, ge=1, le=2**62),
            principal: Principal = P("fragments.decide")) -> Response:
    with writing(db):
        repo.confirm_fragment_group(db, group_id=group_id, by=principal.user, version=version, reason=reason)
    return _back(back, group_id)


@router.post("/fragment-groups/{group_id}/split")
def split(group_id: int, db: DB, back: str = Form(..., max_length=200), reason: str = Form(..., max_length=10_000),
          version: int | None = Form(None, ge=1, le=2**62),
          principal: Principal = P("fragments.split")) -> Response:
    with writing(db):
        repo.split_fragment_group(db, group_id=group_id, by=principal.user, reason=reason, version=version)
    return _back(back, group_id)
