"""Reading the audit log (writing it: :func:`opendvi.store.audit.append`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendvi.store.models import AuditEntry
from opendvi.store.repositories.queries import Page, filter_audit, paginate

__all__ = ["audit_entries", "page_audit"]


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
