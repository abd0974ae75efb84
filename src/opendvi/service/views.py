"""What the service shows of each object, by role (names only where allowed).

The same functions feed the JSON API and the web pages, so a page can never
show what the API would refuse.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from opendvi.core.rules import json_number
from opendvi.service.deps import Principal
from opendvi.service.errors import APIError
from opendvi.store import models
from opendvi.store import repositories as repo
from opendvi.workflows.results import format_lr as lr_text  # the one rule of an LR in text


def fetch_page(fn: Any, **kwargs: Any) -> Any:
    """A page of a list (a ``repositories.page_*`` query) for the API or a page; a bad sort or filter is 422."""
    try:
        return fn(**kwargs)
    except ValueError as exc:
        raise APIError(422, str(exc), code="invalid") from None


def iso(x: Any) -> str | None:
    """ISO 8601; times stored without a zone (SQLite) are UTC."""
    if x is None:
        return None
    if isinstance(x, datetime) and x.tzinfo is None:
        x = x.replace(tzinfo=UTC)
    return str(x.isoformat())


def user_public(u: models.User) -> dict[str, Any]:
    return {"username": u.username, "full_name": u.full_name, "role": u.role.value, "active": u.active,
            "must_change_password": bool(u.must_change_password), "totp": bool(u.totp_secret)}


def operation_public(db: Session, op: models.Operation, *, counts: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": op.code, "name": op.name, "kind": op.kind, "received_on": iso(op.received_on),
        "expected_count": op.expected_count,
        "frequency_database_sha256": op.frequency_database.sha256 if op.frequency_database else None,
    }
    if counts:
        out["dashboard"] = repo.operation_dashboard(db, operation=op)
        run = repo.latest_run(db, operation=op)
        out["latest_run"] = run_public(run) if run else None
    return out


def run_public(run: models.MatchingRun) -> dict[str, Any]:
    """A matching run: its job (status, progress, phase, timings, counts, families skipped, error) and
    its provenance."""
    return {
        "id": run.id, "status": run.status, "progress": run.progress, "phase": run.phase,
        "error": run.error, "cancel_requested": bool(run.cancel_requested), "attempts": run.attempts,
        "queued_at": iso(run.queued_at), "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
        "heartbeat_at": iso(run.heartbeat_at), "timings": run.timings or {}, "counts": run.counts or {},
        "skipped_families": run.skipped or [],
        "software_version": run.software_version, "engine": run.engine,
        "frequency_database_sha256": run.frequency_database_sha256, "parameters": run.parameters,
        "n_remains": run.n_remains, "n_missing": run.n_missing,
        "mutation_models": run.mutation_models,
        # the lineage databases (Y-STR, mtDNA) the run used, with their SHA-256; null: none
        "lineage_databases": run.lineage_databases,
        # what the run recomputed and why (incremental matching); null: a run of an earlier version
        "recomputed": run.recomputed,
    }


def remains_row(r: models.Remains, best_log10_lr: float | None, versions: dict[int, tuple[int, int]],
                active: dict[int, models.Identification]) -> dict[str, Any]:
    """A remains in a list: the page's batch queries give its profile and identification."""
    ver = versions.get(r.id)
    ident = active.get(r.id)
    return {
        "barcode": r.barcode, "operation": r.operation.code, "bag": r.bag, "sample_type": r.sample_type,
        "laboratory": r.laboratory, "kit": r.kit, "sex": r.sex,
        "profile_version": ver[0] if ver else None, "n_markers_typed": ver[1] if ver else 0,
        "best_log10_lr": best_log10_lr, "best_lr": lr_text(best_log10_lr) if best_log10_lr is not None else None,
        "identification": ({"id": ident.id, "state": ident.state.value, "missing_person": ident.missing_person.code}
                           if ident else None),
    }


def remains_page_public(db: Session, page: Any) -> dict[str, Any]:
    """A page of :func:`opendvi.store.repositories.page_remains`: two batch queries, none per row."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import selectinload

    from opendvi.store.models import ACTIVE_STATES, Identification, Profile

    ids = [r.id for r, _best in page.items]
    versions: dict[int, tuple[int, int]] = {}
    active: dict[int, Identification] = {}
    if ids:
        cur = (select(Profile.remains_id.label("rid"), func.max(Profile.version).label("v"))
               .where(Profile.remains_id.in_(ids)).group_by(Profile.remains_id).subquery())
        for rid, ver, gts in db.execute(select(Profile.remains_id, Profile.version, Profile.genotypes)
                                        .join(cur, (cur.c.rid == Profile.remains_id) & (cur.c.v == Profile.version))):
            versions[rid] = (ver, len(gts))
        for ident in db.execute(select(Identification).where(Identification.remains_id.in_(ids),
                                                             Identification.state.in_(ACTIVE_STATES))
                                .options(selectinload(Identification.missing_person))).scalars():
            active[ident.remains_id] = ident
    return page.as_dict([remains_row(r, best, versions, active) for r, best in page.items])


def remains_public(db: Session, r: models.Remains, *, profiles: bool = False) -> dict[str, Any]:
    versions = repo.profiles_of(db, remains=r)
    active = repo.list_identifications(db, remains=r, states=[models.IdentificationState.proposed,
                                                                 models.IdentificationState.confirmed])
    out = remains_row(r, None, {r.id: (versions[-1].version, len(versions[-1].genotypes))} if versions else {},
                      {r.id: active[0]} if active else {})
    del out["best_log10_lr"], out["best_lr"]
    if profiles:
        out["profiles"] = [
            {"version": p.version, "created_at": iso(p.created_at), "dropout": p.dropout,
             "laboratory": p.laboratory, "kit": p.kit, "genotypes": p.genotypes, "haplotypes": p.haplotypes}
            for p in versions
        ]
    return out


def candidate_public(c: models.Candidate, *, per_marker: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id, "run_id": c.run_id, "remains": c.remains.barcode, "missing_person": c.missing_person.code,
        "family": c.missing_person.family.code, "log10_lr": c.log10_lr, "lr": lr_text(c.log10_lr),
        "posterior": c.posterior, "exclusions": c.exclusions, "n_markers": c.n_markers, "rank": c.rank,
        # the call's GLR in the run's best joint assignment ("inf": no alternative), else null
        "log10_glr": json_number(c.log10_glr), "glr_bound": c.glr_bound,
    }
    if c.systems:  # lineage evidence: each system's LR beside the combined one, and the lineage mismatches
        by = c.systems.get("log10_lr", {})
        out["log10_lr_by_system"] = by
        out["lr_by_system"] = {s: lr_text(x) for s, x in by.items()}
        out["mismatches"] = c.systems.get("mismatches", {})
        if per_marker:
            out["lineage"] = c.systems.get("details", {})
    if "fragment_group" in c.per_marker:  # a confirmed group matched as one person (workflows/fragments.py)
        out["fragment_group"] = c.per_marker["fragment_group"]
    if per_marker:
        out["per_marker"] = [
            {"marker": m, "log10_lr": v, "lr": lr_text(v) if m in c.per_marker.get("typed", []) else "1",
             "typed": m in c.per_marker.get("typed", [])}
            for m, v in c.per_marker.get("log10_lr", {}).items()
        ]
    return out


def person_name(db: Session, mp: models.MissingPerson) -> str | None:
    det = repo.missing_person_details(db, missing_person=mp)
    return det.full_name if det else None


def identification_public(db: Session, i: models.Identification, principal: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": i.id, "state": i.state.value, "version": i.version, "remains": i.remains.barcode,
        "operation": i.remains.operation.code, "missing_person": i.missing_person.code,
        "family": i.missing_person.family.code, "candidate_id": i.candidate_id,
        "log10_lr": i.candidate.log10_lr if i.candidate else None,
        "posterior": i.candidate.posterior if i.candidate else None,
        "proposed_by": i.proposed_by.username, "proposed_at": iso(i.proposed_at), "proposal_note": i.proposal_note,
        "decided_by": i.decided_by.username if i.decided_by else None, "decided_at": iso(i.decided_at),
        "decision_reason": i.decision_reason,
    }
    if principal.can("names.read") and i.state == models.IdentificationState.confirmed:
        out["missing_person_name"] = person_name(db, i.missing_person)
    return out


#: a member's name the caller may not read (no ``name`` key at all)
_HIDDEN: Any = object()


def _member_row(m: models.PedigreeMember, *, missing: bool, donor: models.Donor | None, profile_version: int | None,
                name: str | None) -> dict[str, Any]:
    """A pedigree member as the API shows it; ``name`` (a missing person's) unless it is ``_HIDDEN``."""
    row: dict[str, Any] = {"id": m.code, "father": m.father, "mother": m.mother, "sex": m.sex, "missing": missing,
                           "donor": None}
    if donor is not None:
        row["donor"] = {"barcode": donor.barcode, "relationship": donor.relationship_to_missing,
                        "consent": donor.consent, "profile_version": profile_version}
    if name is not _HIDDEN:
        row["name"] = name
    return row


def family_public(db: Session, fam: models.Family, principal: Principal) -> dict[str, Any]:
    return families_public(db, [fam], principal)[0]


def families_public(db: Session, fams: list[models.Family], principal: Principal) -> list[dict[str, Any]]:
    """A page of families as :func:`family_public` shows each (members loaded with the families), in a
    fixed number of batch queries (donors, missing persons, profile versions, names), none per family."""
    from sqlalchemy import func, select

    from opendvi.store.models import Donor, MissingPerson, MissingPersonDetails, Profile

    ids = [f.id for f in fams]
    if not ids:
        return []
    names = principal.can("names.read")
    donors = {d.member_id: d for d in db.execute(select(Donor).where(Donor.family_id.in_(ids))).scalars()}
    missing = {m.member_id: m for m in db.execute(select(MissingPerson).where(MissingPerson.family_id.in_(ids)))
               .scalars()}
    versions = {donor_id: version for donor_id, version in db.execute(
        select(Profile.donor_id, func.max(Profile.version))
        .where(Profile.donor_id.in_([d.id for d in donors.values()])).group_by(Profile.donor_id))} if donors else {}
    full_names: dict[int, str] = {}
    if names and missing:
        full_names = {mp_id: name for mp_id, name in db.execute(
            select(MissingPersonDetails.missing_person_id, MissingPersonDetails.full_name)
            .where(MissingPersonDetails.missing_person_id.in_([m.id for m in missing.values()])))}
    out = []
    for fam in fams:
        members = []
        for m in fam.members:
            d = donors.get(m.id)
            members.append(_member_row(m, missing=m.id in missing, donor=d,
                                       profile_version=versions.get(d.id) if d is not None else None,
                                       name=full_names.get(missing[m.id].id) if m.id in missing and names
                                       else _HIDDEN))
        out.append({"code": fam.code, "members": members,
                    "missing_persons": sorted(missing[m.id].code for m in fam.members if m.id in missing)})
    return out


def audit_public(e: models.AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "username": e.username, "action": e.action, "object_type": e.object_type,
            "object_id": e.object_id, "details": json.loads(e.details), "hash": e.hash, "prev_hash": e.prev_hash}
