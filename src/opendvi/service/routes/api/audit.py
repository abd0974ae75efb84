"""The API's audit log: paged entries and the verification of the hash chain."""

from typing import Annotated, Any

from fastapi import Depends, Query

from opendvi.service import schemas as s
from opendvi.service import views as v
from opendvi.service.deps import DB, P, Principal
from opendvi.service.routes.api._common import ListQuery, paging, router
from opendvi.store import audit
from opendvi.store import repositories as repo

AuditPaging = paging("-seq", default_per_page=100, max_per_page=5000, per_page_help=None, sort_pattern="^-?seq$",
                     sort_max_length=None)
Text = Annotated[str | None, Query(max_length=64)]


@router.get("/audit", tags=["audit"], response_model=list[s.AuditEntryOut])
def list_audit(
    db: DB,
    lq: Annotated[ListQuery, Depends(AuditPaging)],
    limit: int | None = Query(None, ge=1, le=5000, description="the same as per_page (older clients)"),
    action: Text = None,
    username: Text = None,
    object_type: Text = None,
    object_id: Annotated[str | None, Query(max_length=128)] = None,
    principal: Principal = P("audit.read"),
) -> list[dict[str, Any]]:
    """Audit entries, paged, newest first (the total in ``X-Total-Count``)."""
    pg = lq.fetch(repo.page_audit, session=db, action=action, username=username, object_type=object_type,
                  object_id=object_id, per_page=limit)
    return lq.out(pg, [v.audit_public(e) for e in pg.items])


@router.get("/audit/verify", tags=["audit"], response_model=s.ChainReportOut)
def verify_audit(db: DB, principal: Principal = P("audit.verify")) -> dict[str, Any]:
    """Recompute the hash chain of the audit log."""
    return audit.verify_chain(db).as_dict()
