"""Fragments of one person (``docs/decisions/0008-fragment-groups.md``): the links a matching run found
between remains, the groups it suggests, and an analyst's proposal, a reviewer's confirmation (four
eyes: not the proposer) or a split; every change audited."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from opendvi.store import audit
from opendvi.store.errors import ConflictError, NotFoundError, PermissionDeniedError
from opendvi.store.models import MatchingRun, Remains, Role, RunStatus, User, utcnow
from opendvi.store.models_fragments import (
    ACTIVE_GROUP_STATES,
    FragmentGroup,
    FragmentGroupMember,
    FragmentGroupState,
    FragmentLink,
)
from opendvi.store.repositories.queries import add_unique

__all__ = [
    "FRAGMENT_CHUNK",
    "FragmentLinkRow",
    "confirm_fragment_group",
    "confirmed_fragment_groups",
    "fragment_groups",
    "fragment_links_of",
    "get_fragment_group",
    "linked_pairs_of_run",
    "links_between",
    "propose_fragment_group",
    "split_fragment_group",
    "store_fragments",
]

LOG10 = math.log(10.0)
#: links per INSERT statement
FRAGMENT_CHUNK = 2000


@dataclass
class FragmentLinkRow:
    """A pair of remains (barcodes) and its direct-match ln LR, as the run computed it."""

    a: str
    b: str
    log_lr: float
    linked: bool
    by_system: dict[str, float] = field(default_factory=dict)
    mismatches: dict[str, int] = field(default_factory=dict)


def _log10(x: float) -> float | None:
    return None if x == -math.inf else x / LOG10


def confirmed_fragment_groups(session: Session) -> dict[int, list[str]]:
    """Confirmed group id -> its members' barcodes (one query): a run matches each as one person."""
    out: dict[int, list[str]] = {}
    for gid, barcode in session.execute(
        select(FragmentGroup.id, Remains.barcode)
        .join(FragmentGroupMember, FragmentGroupMember.group_id == FragmentGroup.id)
        .join(Remains, Remains.id == FragmentGroupMember.remains_id)
        .where(FragmentGroup.state == FragmentGroupState.confirmed.value)
        .order_by(FragmentGroup.id, Remains.barcode)
    ):
        out.setdefault(int(gid), []).append(barcode)
    return out


def linked_pairs_of_run(session: Session, *, run_id: int, threshold: float) -> list[FragmentLinkRow] | None:
    """The pairs run ``run_id`` linked (LR at or above its threshold), when that run computed fragment links
    with ``threshold`` and stored every one of them; None otherwise (a run of an earlier version, another
    threshold, links left out)."""
    params = session.scalar(select(MatchingRun.parameters).where(MatchingRun.id == run_id)) or {}
    frag = params.get("fragments") if isinstance(params, dict) else None
    if not isinstance(frag, dict) or frag.get("threshold") != threshold or frag.get("links_dropped"):
        return None  # (a run that left links out: not every link is stored)
    a, b = Remains.__table__.alias("a"), Remains.__table__.alias("b")
    out = []
    for ba, bb, lr, by, mis in session.execute(
        select(a.c.barcode, b.c.barcode, FragmentLink.log10_lr, FragmentLink.by_system, FragmentLink.mismatches)
        .join(a, a.c.id == FragmentLink.remains_a_id).join(b, b.c.id == FragmentLink.remains_b_id)
        .where(FragmentLink.run_id == run_id, FragmentLink.linked)
    ):
        out.append(FragmentLinkRow(ba, bb, -math.inf if lr is None else lr * LOG10, True,
                                   {k: -math.inf if v is None else v * LOG10 for k, v in (by or {}).items()},
                                   dict(mis or {})))
    return out


def store_fragments(
    session: Session, *, run_id: int, remains_ids: Mapping[str, int], links: Iterable[FragmentLinkRow],
    groups: Sequence[Sequence[str]], threshold: float,
) -> dict[str, int]:
    """A finishing run's fragment links (Core bulk inserts) and its suggested groups: the earlier
    suggestions are replaced; a group whose members are those of an active (proposed, confirmed) or a
    split group is not suggested again. One audit entry. Returns counts."""
    rows = []
    for ln in links:
        a, b = remains_ids[ln.a], remains_ids[ln.b]
        if a > b:
            a, b = b, a
        rows.append({"run_id": run_id, "remains_a_id": a, "remains_b_id": b, "log10_lr": _log10(ln.log_lr),
                     "linked": ln.linked,
                     "by_system": {k: _log10(v) for k, v in ln.by_system.items()} if ln.by_system else None,
                     "mismatches": dict(ln.mismatches) if ln.mismatches else None})
    for i in range(0, len(rows), FRAGMENT_CHUNK):
        session.execute(insert(FragmentLink), rows[i:i + FRAGMENT_CHUNK])
    old = select(FragmentGroup.id).where(FragmentGroup.state == FragmentGroupState.suggested.value)
    session.execute(delete(FragmentGroupMember).where(FragmentGroupMember.group_id.in_(old))
                    .execution_options(synchronize_session=False))
    session.execute(delete(FragmentGroup).where(FragmentGroup.state == FragmentGroupState.suggested.value)
                    .execution_options(synchronize_session=False))
    members_of: dict[int, set[int]] = {}
    for gid, rid in session.execute(
        select(FragmentGroupMember.group_id, FragmentGroupMember.remains_id)
        .join(FragmentGroup, FragmentGroup.id == FragmentGroupMember.group_id)
        .where(FragmentGroup.state != FragmentGroupState.suggested.value)
    ):
        members_of.setdefault(gid, set()).add(rid)
    known = {frozenset(v) for v in members_of.values()}
    suggested = []
    for g in groups:
        ids = frozenset(remains_ids[b] for b in g)
        if ids in known:
            continue
        grp = FragmentGroup(state=FragmentGroupState.suggested.value, version=1, run_id=run_id, proposal_note="",
                            members=[FragmentGroupMember(remains_id=r, active=False) for r in sorted(ids)])
        session.add(grp)
        session.flush()
        suggested.append({"group": grp.id, "remains": list(g)})
    counts = {"links": sum(1 for r in rows if r["linked"]), "pairs_in_groups": sum(1 for r in rows if not r["linked"]),
              "groups": len(groups), "suggested": len(suggested)}
    # object: the run's suggested groups (the run's own entries, "matching_run", stay its job's)
    audit.append(session, action="fragments.suggest", username=None, object_type="fragment_groups",
                 object_id=run_id, details={"run": run_id, "threshold": threshold, **counts, "suggested": suggested})
    return counts


def get_fragment_group(session: Session, *, group_id: int) -> FragmentGroup:
    g = session.get(FragmentGroup, group_id)
    if g is None:
        raise NotFoundError(f"no fragment group {group_id}")
    return g


def _loaded() -> Any:
    return (selectinload(FragmentGroup.members).selectinload(FragmentGroupMember.remains)
            .selectinload(Remains.operation), selectinload(FragmentGroup.proposed_by),
            selectinload(FragmentGroup.decided_by))


def fragment_groups(session: Session, *, remains: Remains | None = None, state: str | None = None,
                    limit: int = 500) -> list[FragmentGroup]:
    """Groups (newest first), of one remains and/or in one state."""
    stmt = select(FragmentGroup).options(*_loaded()).order_by(FragmentGroup.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(FragmentGroup.state == state)
    if remains is not None:
        stmt = stmt.where(FragmentGroup.id.in_(select(FragmentGroupMember.group_id)
                                               .where(FragmentGroupMember.remains_id == remains.id)))
    return list(session.execute(stmt).scalars())


def _links_run(session: Session) -> int | None:
    """The latest finished run (it computed the fragment links of every remains)."""
    return session.scalar(select(func.max(MatchingRun.id)).where(MatchingRun.status == RunStatus.finished.value))


def fragment_links_of(session: Session, *, remains: Remains | None, limit: int = 5000) -> list[FragmentLink]:
    """The links of one remains (None: of all) in the latest finished run, best first."""
    run_id = _links_run(session)
    if run_id is None:
        return []
    stmt = select(FragmentLink).where(FragmentLink.run_id == run_id)
    if remains is not None:
        stmt = stmt.where(or_(FragmentLink.remains_a_id == remains.id, FragmentLink.remains_b_id == remains.id))
    return list(session.execute(
        stmt.limit(limit).options(selectinload(FragmentLink.remains_a).selectinload(Remains.operation),
                 selectinload(FragmentLink.remains_b).selectinload(Remains.operation))
        .order_by(FragmentLink.log10_lr.desc().nulls_last(), FragmentLink.id)).scalars())


def links_between(session: Session, *, remains_ids: Sequence[int]) -> list[FragmentLink]:
    """The latest finished run's links (and pairs inside groups) among ``remains_ids``."""
    run_id = _links_run(session)
    if run_id is None or len(remains_ids) < 2:
        return []
    ids = list(remains_ids)
    return list(session.execute(
        select(FragmentLink).where(FragmentLink.run_id == run_id, FragmentLink.remains_a_id.in_(ids),
                                   FragmentLink.remains_b_id.in_(ids))
        .options(selectinload(FragmentLink.remains_a), selectinload(FragmentLink.remains_b))
        .order_by(FragmentLink.id)).scalars())


def _barcodes(g: FragmentGroup) -> list[str]:
    return sorted(m.remains.barcode for m in g.members)


def _check_free(session: Session, remains_ids: Iterable[int], *, except_group: int | None = None) -> None:
    stmt = (select(Remains.barcode, FragmentGroupMember.group_id)
            .join(FragmentGroupMember, FragmentGroupMember.remains_id == Remains.id)
            .where(FragmentGroupMember.remains_id.in_(list(remains_ids)), FragmentGroupMember.active))
    if except_group is not None:
        stmt = stmt.where(FragmentGroupMember.group_id != except_group)
    taken = session.execute(stmt).first()
    if taken is not None:
        raise ConflictError(f"remains {taken[0]} is already in the active fragment group {taken[1]}; "
                            "split that group first")


def _transition(session: Session, g: FragmentGroup, *, from_states: Sequence[str], version: int | None,
                extra: Sequence[Any] = (), **values: Any) -> None:
    """One conditional UPDATE of the group (its id, one of ``from_states``, the version read): the first
    of two concurrent changes wins, the second gets :class:`ConflictError`."""
    result = session.execute(
        update(FragmentGroup).where(and_(FragmentGroup.id == g.id, FragmentGroup.state.in_(list(from_states)),
                                         FragmentGroup.version == (version if version is not None else g.version),
                                         *extra))
        .values(version=FragmentGroup.version + 1, **values).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(g)
        cur = session.get(FragmentGroup, g.id)
        raise ConflictError(f"fragment group {g.id} is {cur.state if cur else 'gone'} (version "
                            f"{cur.version if cur else '?'}): it was changed by someone else, or this does not "
                            "apply to it; reload")


def propose_fragment_group(session: Session, *, by: User, group_id: int | None = None,
                           barcodes: Sequence[str] = (), note: str = "", version: int | None = None) -> FragmentGroup:
    """A DVI analyst proposes a group: a suggested one (``group_id``), or remains of his choice
    (``barcodes``, two or more: e.g. a part of a suggested group, to split it). A remains is in at
    most one active group (the partial unique index decides between two concurrent proposals)."""
    if by.role != Role.dvi_analyst:
        raise PermissionDeniedError("only a DVI analyst proposes a fragment group")
    if group_id is not None:
        g = get_fragment_group(session, group_id=group_id)
        if g.state != FragmentGroupState.suggested.value:
            raise ConflictError(f"fragment group {g.id} is {g.state}: only a suggested group is proposed")
        _check_free(session, [m.remains_id for m in g.members])
        _transition(session, g, from_states=[FragmentGroupState.suggested.value], version=version,
                    state=FragmentGroupState.proposed.value, proposed_by_id=by.id, proposed_at=utcnow(),
                    proposal_note=note)
        try:  # the caller's transaction is rolled back on the error
            session.execute(update(FragmentGroupMember).where(FragmentGroupMember.group_id == g.id)
                            .values(active=True).execution_options(synchronize_session=False))
        except IntegrityError:  # the partial unique index: someone else was first
            raise ConflictError(f"a remains of fragment group {g.id} was grouped at the same time; reload") from None
        session.expire(g)
    else:
        codes = sorted({b.strip() for b in barcodes if b.strip()})
        if len(codes) < 2:
            raise ConflictError("a fragment group needs two remains or more")
        found = {b: i for b, i in session.execute(
            select(Remains.barcode, Remains.id).where(Remains.barcode.in_(codes)))}
        missing = [c for c in codes if c not in found]
        if missing:
            raise NotFoundError(f"no remains with barcode {missing[0]!r}")
        _check_free(session, found.values())
        g = FragmentGroup(state=FragmentGroupState.proposed.value, version=1, proposed_by_id=by.id,
                          proposed_at=utcnow(), proposal_note=note,
                          members=[FragmentGroupMember(remains_id=found[c], active=True) for c in codes])
        add_unique(session, g, lambda: "a remains of this group was grouped at the same time; reload")
    g = get_fragment_group(session, group_id=g.id)
    audit.append(session, action="fragments.propose", username=by.username, object_type="fragment_group",
                 object_id=g.id, details={"remains": _barcodes(g), "note": note})
    return g


def confirm_fragment_group(session: Session, *, group_id: int, by: User, version: int | None = None,
                           reason: str = "") -> FragmentGroup:
    """A reviewer who did not propose it confirms a proposed group (one conditional UPDATE: the first of
    two concurrent decisions wins). Later runs match it as one person (its consensus profile)."""
    g = get_fragment_group(session, group_id=group_id)
    if by.role != Role.reviewer:
        raise PermissionDeniedError("only a reviewer confirms a fragment group")
    if g.proposed_by_id == by.id:
        raise PermissionDeniedError(f"fragment group {g.id}: you proposed it, so another reviewer must confirm it")
    _transition(session, g, from_states=[FragmentGroupState.proposed.value], version=version,
                extra=[FragmentGroup.proposed_by_id != by.id], state=FragmentGroupState.confirmed.value,
                decided_by_id=by.id, decided_at=utcnow(), decision_reason=reason or None)
    session.expire(g)
    g = get_fragment_group(session, group_id=group_id)
    audit.append(session, action="fragments.confirm", username=by.username, object_type="fragment_group",
                 object_id=g.id, details={"remains": _barcodes(g), "reason": reason})
    return g


def split_fragment_group(session: Session, *, group_id: int, by: User, reason: str,
                         version: int | None = None) -> FragmentGroup:
    """Split a group (suggested, proposed or confirmed; a confirmed one only by a reviewer), with a
    reason: its remains are matched one by one again, and a run does not suggest the same group
    again. Parts of it may then be proposed as groups of their own."""
    if by.role not in (Role.dvi_analyst, Role.reviewer):
        raise PermissionDeniedError("only a DVI analyst or a reviewer splits a fragment group")
    if not reason.strip():
        raise ConflictError("a reason is required to split a fragment group")
    g = get_fragment_group(session, group_id=group_id)
    if g.state == FragmentGroupState.confirmed.value and by.role != Role.reviewer:
        raise PermissionDeniedError(f"fragment group {g.id} is confirmed: only a reviewer may split it")
    _transition(session, g, from_states=[FragmentGroupState.suggested.value, *ACTIVE_GROUP_STATES],
                version=version, state=FragmentGroupState.dissolved.value, decided_by_id=by.id,
                decided_at=utcnow(), decision_reason=reason)
    session.execute(update(FragmentGroupMember).where(FragmentGroupMember.group_id == g.id).values(active=False)
                    .execution_options(synchronize_session=False))
    session.expire(g)
    g = get_fragment_group(session, group_id=group_id)
    audit.append(session, action="fragments.split", username=by.username, object_type="fragment_group",
                 object_id=g.id, details={"remains": _barcodes(g), "reason": reason})
    return g
