"""Fragment groups and links as the API and the remains page show them (``routes/api/fragments.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from opendvi.service.views import iso, lr_text
from opendvi.store import repositories as repo
from opendvi.store.models import Remains
from opendvi.store.models_fragments import FragmentGroup, FragmentLink


def link_public(ln: FragmentLink) -> dict[str, Any]:
    out: dict[str, Any] = {
        "a": ln.remains_a.barcode, "b": ln.remains_b.barcode,
        "operation_a": ln.remains_a.operation.code, "operation_b": ln.remains_b.operation.code,
        "log10_lr": ln.log10_lr, "lr": lr_text(ln.log10_lr), "linked": ln.linked,
    }
    if ln.by_system:
        out["lr_by_system"] = {s: lr_text(x) for s, x in ln.by_system.items()}
        out["mismatches"] = dict(ln.mismatches or {})
    return out


def group_public(db: Session, g: FragmentGroup) -> dict[str, Any]:
    members = sorted(g.members, key=lambda m: m.remains.barcode)
    links = repo.links_between(db, remains_ids=[m.remains_id for m in members])
    return {
        "id": g.id, "state": g.state, "version": g.version, "run": g.run_id,
        "members": [{"barcode": m.remains.barcode, "operation": m.remains.operation.code, "bag": m.remains.bag}
                    for m in members],
        "links": [link_public(ln) for ln in links],
        "proposed_by": g.proposed_by.username if g.proposed_by else None, "proposed_at": iso(g.proposed_at),
        "proposal_note": g.proposal_note or None,
        "decided_by": g.decided_by.username if g.decided_by else None, "decided_at": iso(g.decided_at),
        "decision_reason": g.decision_reason,
    }


def remains_fragments(db: Session, r: Remains) -> dict[str, Any]:
    """The remains page's fragments: its groups (newest first) and its links in the latest run."""
    return {"groups": [group_public(db, g) for g in repo.fragment_groups(db, remains=r, limit=20)],
            "links": [link_public(ln) for ln in repo.fragment_links_of(db, remains=r)]}
