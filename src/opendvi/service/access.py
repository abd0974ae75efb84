"""Access rules that the API, the pages and the exports share (one home each); the role table is
:mod:`opendvi.service.policy`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from opendvi.i18n import gettext as _
from opendvi.service.deps import Principal
from opendvi.service.errors import APIError
from opendvi.store import repositories as repo
from opendvi.store.models import Identification, IdentificationState, Role


def identification_states(principal: Principal, state: IdentificationState | None
                          ) -> list[IdentificationState] | None:
    """The states of the identifications a list shows when ``state`` is asked for (None: every state):
    the family liaison sees confirmed identifications only (asking for another state: none)."""
    if principal.user.role == Role.family_liaison:
        return [IdentificationState.confirmed] if state in (None, IdentificationState.confirmed) else []
    return [state] if state else None


def visible_identification(db: Session, principal: Principal, identification_id: int) -> Identification:
    """An identification the principal may see: for the family liaison a confirmed one only (404 for the
    others, as for an unknown one)."""
    ident = repo.get_identification(db, identification_id=identification_id)
    if principal.user.role == Role.family_liaison and ident.state != IdentificationState.confirmed:
        raise APIError(404, _("no identification %(id)s", id=identification_id), code="not_found")
    return ident


def check_user_change(principal: Principal, username: str, *, role: Role | None, active: bool | None) -> None:
    """409 when an administrator would deactivate or demote himself (None: that is not changed)."""
    if username == principal.username and (active is False or (role is not None and role != Role.administrator)):
        raise APIError(409, _("you cannot deactivate or demote yourself"), code="conflict")
