"""The API's identifications: proposals, four-eyes decisions, and the family liaison's notifications."""

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from opendvi.i18n import gettext as _
from opendvi.service import access, actions, intake
from opendvi.service import schemas as s
from opendvi.service import views as v
from opendvi.service.deps import DB, P, Principal
from opendvi.service.errors import APIError
from opendvi.service.routes.api._common import Id, ListQuery, paging, router
from opendvi.store import repositories as repo
from opendvi.store.models import IdentificationState


class ProposeIn(BaseModel):
    candidate_id: int = Field(ge=1, le=2**62)
    note: str = Field(default="", max_length=10_000)
    override_reason: str = Field(default="", max_length=10_000,
                                 description="why an evidence rule the policy lets pass is broken (audited)")


class DecisionIn(BaseModel):
    reason: str = Field(default="", max_length=10_000)
    version: int | None = Field(default=None, ge=1, le=2**62)
    override_reason: str = Field(default="", max_length=10_000,
                                 description="confirm: why an evidence rule the policy lets pass is broken")


class NotificationIn(BaseModel):
    donor: str | None = Field(default=None, max_length=200, description="the relative's donor barcode; none: a "
                                                                         "relative without a sample")
    method: str = Field(max_length=32, description="in_person, phone, letter or other")
    notified_on: str = Field(max_length=32, description="YYYY-MM-DD, not in the future")
    note: str = Field(default="", max_length=10_000)


# ---------------------------------------------------------------------------
# the family liaison's notifications (the twins of the liaison page's form)
# ---------------------------------------------------------------------------


@router.get("/identifications/{identification_id}/notifications", tags=["identifications"],
            response_model=s.NotificationsOut)
def api_notifications(identification_id: int, db: DB,
                      principal: Principal = P("notifications.read")) -> dict[str, Any]:
    """A confirmed identification's relatives to notify (names, relationship, contact, consent) and the
    notifications recorded (family liaison only; 404 unless confirmed)."""
    ident = repo.get_identification(db, identification_id=identification_id)
    if ident.state != IdentificationState.confirmed:
        raise APIError(404, _("No confirmed identification #%(id)s", id=identification_id), code="not_found")
    return intake.notifications_public(db, ident)


@router.post("/identifications/{identification_id}/notifications", tags=["identifications"], status_code=201,
             response_model=s.NotificationsOut)
def api_notification_record(identification_id: int, body: NotificationIn, db: DB,
                            principal: Principal = P("notifications.write")) -> dict[str, Any]:
    """Record that a relative was told (409 unless the identification is confirmed; 422 naming the field
    for a relative not of the family, an unknown method or a date in the future)."""
    n, problems = intake.record_notification(db, principal, identification_id, donor=(body.donor or "").strip(),
                                             method=body.method, notified_on=body.notified_on, note=body.note)
    if n is None:
        raise intake.invalid(problems)
    return intake.notifications_public(db, repo.get_identification(db, identification_id=identification_id))


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


@router.get("/identifications", tags=["identifications"], response_model=list[s.IdentificationOut])
def list_identifications(
    db: DB,
    lq: Annotated[ListQuery, Depends(paging("-id", "id, state, remains, family; - for descending"))],
    state: IdentificationState | None = None,
    operation: Annotated[str | None, Query(max_length=64)] = None,
    q: str | None = Query(None, max_length=64, description="in the barcode or the family code"),
    principal: Principal = P("identifications.read"),
) -> list[dict[str, Any]]:
    """Identifications, paged (the total in ``X-Total-Count``); the family liaison sees confirmed ones
    only (with names)."""
    states = access.identification_states(principal, state)
    op = repo.get_operation(db, code=operation) if operation else None
    if states == []:
        return lq.out(lq.empty(), [])
    pg = lq.fetch(repo.page_identifications, session=db, states=states, operation=op, q=q)
    return lq.out(pg, [v.identification_public(db, i, principal) for i in pg.items])


@router.post("/identifications", tags=["identifications"], status_code=201, response_model=s.IdentificationOut)
def propose(body: ProposeIn, db: DB, request: Request,
            principal: Principal = P("identifications.propose")) -> dict[str, Any]:
    """Propose a candidate pairing; 409 if the remains has an active identification, or if the evidence
    no longer holds or misses the decision policy (LR, posterior) without an ``override_reason``."""
    ident = actions.propose(db, principal=principal, candidate_id=body.candidate_id, note=body.note,
                            override_reason=body.override_reason,
                            policy=request.app.state.settings.decision_policy)
    return v.identification_public(db, ident, principal)


@router.get("/identifications/{identification_id}", tags=["identifications"], response_model=s.IdentificationOut)
def get_identification(identification_id: Id, db: DB,
                       principal: Principal = P("identifications.read")) -> dict[str, Any]:
    ident = access.visible_identification(db, principal, identification_id)
    return v.identification_public(db, ident, principal)


def _decided(db: DB, principal: Principal, identification_id: int, action: str, body: DecisionIn, *,
             override_reason: str = "", policy: Any = None) -> dict[str, Any]:
    ident = actions.decide(db, principal=principal, identification_id=identification_id, action=action,
                           reason=body.reason, expected_version=body.version, override_reason=override_reason,
                           policy=policy)
    return v.identification_public(db, ident, principal)


@router.post("/identifications/{identification_id}/confirm", tags=["identifications"],
             response_model=s.IdentificationOut)
def confirm(identification_id: Id, db: DB, request: Request, body: DecisionIn | None = None,
            principal: Principal = P("identifications.decide")) -> dict[str, Any]:
    """Confirm a proposal (a reviewer who did not propose it); 409 if someone decided first, or on the
    same evidence and policy checks as a proposal."""
    b = body or DecisionIn()
    return _decided(db, principal, identification_id, "confirm", b, override_reason=b.override_reason,
                    policy=request.app.state.settings.decision_policy)


@router.post("/identifications/{identification_id}/reject", tags=["identifications"],
             response_model=s.IdentificationOut)
def reject(identification_id: Id, body: DecisionIn, db: DB,
           principal: Principal = P("identifications.decide")) -> dict[str, Any]:
    """Reject a proposal, with a reason."""
    return _decided(db, principal, identification_id, "reject", body)


@router.post("/identifications/{identification_id}/withdraw", tags=["identifications"],
             response_model=s.IdentificationOut)
def withdraw(identification_id: Id, body: DecisionIn, db: DB,
             principal: Principal = P("identifications.withdraw")) -> dict[str, Any]:
    """Withdraw a proposal or a confirmed identification, with a reason."""
    return _decided(db, principal, identification_id, "withdraw", body)
