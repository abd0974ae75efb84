"""The evidence of a match: everything a geneticist must see before signing an identification.

:func:`candidate_evidence` assembles it from the store for one candidate
(a pairing of a matching run), :func:`identification_evidence` for one
identification (through its candidate, with the proposal, the decision and
their audit entries). The match review page and the identification report
read this one dictionary; nothing else computes what they show.

Where each number comes from (``docs/reports.md``):

* per-marker and total LR, posterior, exclusions, rank: the candidate row the
  matching run stored (never recomputed for display);
* the remains' genotypes: the profile version the run used
  (``candidates.remains_profile_id``); the references': each donor's latest
  profile typed before the run started (what the run read);
* *explained only by mutation*: the engine's own per-marker likelihood
  (:class:`opendvi.dvi.problem.LikelihoodCache`, what the run used) on those
  same profiles, the markers' mutation models removed: a marker whose LR is
  above 0 with the models and whose numerator is 0 without them. The same
  call recomputes the per-marker LRs with the models, a check that the
  stored numbers are reproduced (``reproduced``);
* provenance: the run (software version, engine, frequency database name and
  SHA-256, theta, mutation models, parameters, notes);
* GLR: the run stores none; it is derived from the run's stored candidates of
  the same remains (this LR over the best other candidate's, or over 1 when
  the best other is below 1: "not among the missing").

Names (the missing person's, the donors') are added only with ``names=True``
(the caller has checked ``names.read``); a DNA-side reader never gets them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from opendvi import __version__
from opendvi.i18n import gettext as _
from opendvi.reports.evidence_lineage import lineage_evidence
from opendvi.reports.numbers import format_lr as lr_text  # the one rule (also the CLI's and the pages')
from opendvi.reports.verbal import band_label, verbal_equivalent
from opendvi.store import repositories as repo
from opendvi.store.models import (
    ACTIVE_STATES,
    AuditEntry,
    Candidate,
    Donor,
    DonorDetails,
    FrequencyDatabase,
    Identification,
    IdentificationState,
    MatchingRun,
    Operation,
    Profile,
    User,
)

LN10 = math.log(10.0)
#: per-marker log10 LRs recomputed from the profiles agree with the stored ones within this
REPRODUCE_TOL = 1e-6


def _aware(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _iso(t: datetime | None) -> str | None:
    a = _aware(t)
    return a.isoformat() if a is not None else None


def _profile_as_of(session: Session, donor: Donor, when: datetime | None) -> Profile | None:
    """The donor's latest profile typed at or before ``when`` (what a run that started then read)."""
    versions = repo.profiles_of(session, donor=donor)
    if when is None:
        return versions[-1] if versions else None
    cut = _aware(when)
    assert cut is not None
    before = [p for p in versions if (_aware(p.created_at) or cut) <= cut]
    return before[-1] if before else None


def _engine_check(
    fdb: FrequencyDatabase, remains_id: str, sex: str | None, genotypes: dict[str, list[str]], dropout: float,
    family: str, mp_code: str, members: list[dict[str, Any]],
) -> dict[str, Any]:
    """Per-marker ln LR with and without mutation, by the engine the run used, on one family and one
    remains: ``{"with": {m: ln LR}, "numerator_without": {m: ln}, "inconsistent": [...], "error": str|None}``."""
    from opendvi.core.errors import OpenDVIError
    from opendvi.dvi import DVIProblem
    from opendvi.dvi.pairwise import pairwise_marker_log_lr
    from opendvi.io.case_json import case_from_dict

    names = {m["name"] for m in fdb.markers}
    data = {
        "format": "dvi-case/1", "name": "evidence", "theta": fdb.theta, "markers": fdb.markers,
        "remains": [{"id": remains_id, "sex": sex, "genotypes": {k: v for k, v in genotypes.items() if k in names},
                     "dropout": dropout}],
        "families": [{"id": family, "members": members}],
    }
    try:
        problem = DVIProblem(case_from_dict(data))
        if mp_code not in problem.admissible.get(remains_id, ()):
            return {"with": {}, "numerator_without": {}, "inconsistent": [],
                    "error": _("the engine does not pair these two (sex, or the family cannot be evaluated)")}
        per, _excl = pairwise_marker_log_lr(problem, remains_id, mp_code)
        r = problem.remains[remains_id]
        items = [(m, ((mp_code, r.genotypes[m.name], r.dropout),)) for m in problem.markers
                 if m.has_mutation and r.genotypes.get(m.name) and problem.cache.references_typed(family, m)]
        nums0 = problem.cache.family_markers(family, items, mutation=False) if items else []
        without = {m.name: v for (m, _p), v in zip(items, nums0, strict=True)}
        return {"with": per, "numerator_without": without,
                "inconsistent": sorted(problem.inconsistent.get(family, frozenset())), "error": None}
    except (OpenDVIError, ValueError) as exc:  # an engine refusal never breaks the page: it is shown
        return {"with": {}, "numerator_without": {}, "inconsistent": [], "error": str(exc)}


def posterior_text(p: float | None) -> str:
    """A posterior with 6 decimals in the current locale; never "1.000000" for a value below 1
    (``> 0.999999``), never "0.000000" for one above 0 (``< 0.000001``)."""
    from opendvi.i18n import format_number

    if p is None:
        return ""
    if 0.9999995 <= p < 1.0:
        return "> " + format_number(0.999999, 6)
    if 0.0 < p < 0.0000005:
        return "< " + format_number(0.000001, 6)
    return format_number(p, 6)


def rule_text(rule: str) -> str:
    """An evidence rule (:data:`opendvi.store.repositories.EVIDENCE_RULES`) in the current locale."""
    return {
        "superseded_run": _("Its matching run was superseded by a later run: decide on the new run's candidates."),
        "newer_profile": _("A profile it rests on was typed again after the run: run matching again."),
        "newer_frequencies": _("The operation's allele frequencies changed after the run: run matching again."),
        "missing_person_identified": _("The missing person already has another active identification."),
        "pedigree_changed": _("The family's pedigree or a donor's consent changed after the run: run matching "
                              "again."),
        "below_policy": _("Its LR or posterior is below the decision policy: a decision needs a reason."),
    }.get(rule, rule)


def _glr(cands: list[Candidate], me: Candidate) -> tuple[float | None, str, str | None]:
    """log10 GLR, how it was obtained, and its source: ``"run"`` (the run's joint GLR of the call,
    dvir's: the best assignment against the best one without this pairing), ``"candidates"`` (the run
    holds none for this pairing: this LR over the best other stored candidate of the remains or 1), or
    None (none can be given)."""
    held = me.log10_glr
    if held is not None:
        if me.glr_bound:
            return held, _("the run's GLR of this call in its best joint assignment, a certified lower bound "
                           "that settles the call"), "run"
        return held, _("the run's GLR of this call: its best joint assignment against the best one without "
                       "this pairing"), "run"
    if me.log10_lr is None:
        return None, _("LR 0: no GLR"), None
    others = [c for c in cands if c.id != me.id]
    if not others:
        return None, _("the run holds no GLR for this pairing and no other candidate of this remains: "
                       "no GLR can be given"), None
    finite = [c.log10_lr for c in others if c.log10_lr is not None]
    best_other = max([0.0, *finite])  # 0: "not among the missing" (LR 1)
    return me.log10_lr - best_other, _(
        "the run holds no GLR for this pairing (it is not a call of the run's best joint assignment); "
        "pairwise: this LR over the largest of the other candidates' LRs and 1 (not among the missing)"), \
        "candidates"


def _model_text(spec: Any) -> str:
    if not spec:
        return _("none")
    if isinstance(spec, dict) and "model" in spec:
        params = ", ".join(f"{k} {spec[k]:g}" if isinstance(spec[k], (int, float)) else f"{k} {spec[k]}"
                           for k in sorted(spec) if k != "model")
        return f"{spec['model']} ({params})" if params else str(spec["model"])
    return str(spec)


def mutation_summary(models: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The run's mutation models, markers with the same model together: ``[{"female", "male",
    "markers"}]`` (each model in words, e.g. ``stepwise (range 0.1, rate 0.001, rate2 1e-06)``)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for marker, spec in (models or {}).items():
        if isinstance(spec, dict) and ("female" in spec or "male" in spec):
            key = (_model_text(spec.get("female")), _model_text(spec.get("male")))
        else:
            key = (_model_text(spec), _model_text(spec))
        groups.setdefault(key, []).append(marker)
    return [{"female": f, "male": m, "markers": markers} for (f, m), markers in groups.items()]


def _user(session: Session, user_id: int | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    u = session.get(User, user_id)
    return {"username": u.username, "full_name": u.full_name} if u else None


def _active_others(session: Session, *, remains_id: int, missing_person_id: int,
                   exclude: int | None) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Identification).where(
            Identification.state.in_(list(ACTIVE_STATES)),
            or_(Identification.remains_id == remains_id, Identification.missing_person_id == missing_person_id),
        ).order_by(Identification.id)
    ).scalars()
    out = []
    for i in rows:
        if i.id == exclude:
            continue
        out.append({
            "id": i.id, "state": i.state.value, "remains": i.remains.barcode, "missing_person": i.missing_person.code,
            "same_remains": i.remains_id == remains_id, "same_missing_person": i.missing_person_id == missing_person_id,
            "candidate_id": i.candidate_id, "proposed_by": i.proposed_by.username,
            "decided_by": i.decided_by.username if i.decided_by else None,
        })
    return out


def candidate_evidence(session: Session, candidate: Candidate, *, names: bool = False,
                       exclude_identification: int | None = None,
                       policy: repo.DecisionPolicy | None = None) -> dict[str, Any]:
    """Everything about one candidate that the review page and the report show (see the module's
    docstring for where each part comes from). ``names``: the reader holds ``names.read``."""
    run: MatchingRun = candidate.run
    fdb = session.get(FrequencyDatabase, run.frequency_database_id)
    assert fdb is not None
    op = session.get(Operation, run.operation_id)
    remains = candidate.remains
    mp = candidate.missing_person
    fam = mp.family
    used = session.get(Profile, candidate.remains_profile_id)
    current = repo.current_profile(session, remains=remains)
    started = run.started_at or run.queued_at
    marker_names = [m["name"] for m in fdb.markers]
    # the references, with the profiles the run read
    donors = {d.member_id: d for d in repo.donors_of(session, family=fam)}
    missing_members = {m.member_id: m for m in repo.missing_of(session, family=fam)}
    donor_names: dict[int, str] = {}
    if names and donors:
        donor_names = {did: name for did, name in session.execute(
            select(DonorDetails.donor_id, DonorDetails.full_name)
            .where(DonorDetails.donor_id.in_([d.id for d in donors.values()])))}
    references: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    pedigree: list[dict[str, Any]] = []
    for m in fam.members:
        row: dict[str, Any] = {"id": m.code, "father": m.father, "mother": m.mother, "sex": m.sex}
        typed = False
        if m.id in missing_members:
            row["missing"] = True
        if m.id in donors:
            d = donors[m.id]
            prof = _profile_as_of(session, d, started)
            latest = repo.current_profile(session, donor=d)
            if prof is not None:
                typed = True
                gts = {k: list(v) for k, v in prof.genotypes.items()}
                row["genotypes"] = {k: v for k, v in gts.items() if k in set(marker_names)}
                if prof.dropout:
                    row["dropout"] = prof.dropout
            ref = {"barcode": d.barcode, "member": m.code, "relationship": d.relationship_to_missing,
                   "sex": m.sex, "profile_version": prof.version if prof else None,
                   "latest_version": latest.version if latest else None,
                   "laboratory": prof.laboratory if prof else None, "kit": prof.kit if prof else None,
                   "genotypes": {k: list(v) for k, v in prof.genotypes.items()} if prof else {},
                   "haplotypes": prof.haplotypes if prof else None}
            if names:
                ref["name"] = donor_names.get(d.id)
            references.append(ref)
        members.append(row)
        pedigree.append({"id": m.code, "father": m.father, "mother": m.mother, "sex": m.sex, "typed": typed,
                         "missing": m.id in missing_members,
                         "placed": remains.barcode if m.id == mp.member_id else None})
    rgts = {k: list(v) for k, v in (used.genotypes if used else {}).items()}
    check = _engine_check(fdb, remains.barcode, remains.sex, rgts, used.dropout if used else 0.0, fam.code, mp.code,
                          members)
    stored = candidate.per_marker.get("log10_lr", {})
    typed_markers = set(candidate.per_marker.get("typed", []))
    inconsistent = set(check["inconsistent"])
    rows: list[dict[str, Any]] = []
    max_diff = 0.0
    for name in marker_names:
        if name not in stored:  # not a marker of the LR (e.g. amelogenin: it gives the sex)
            continue
        v = stored[name]
        r_all = rgts.get(name)
        ref_alleles = [ref["genotypes"].get(name) for ref in references]
        remains_typed = name in typed_markers
        no_reference = remains_typed and not any(ref_alleles)
        excluded = v is None
        num0 = check["numerator_without"].get(name)
        mutation_only = (not excluded) and num0 is not None and num0 == -math.inf
        recomputed = check["with"].get(name)
        if recomputed is not None:
            rec10 = None if recomputed == -math.inf else recomputed / LN10
            if (rec10 is None) != (v is None):
                max_diff = math.inf
            elif rec10 is not None and v is not None:
                max_diff = max(max_diff, abs(rec10 - v))
        flags = []
        if excluded:
            flags.append("excluded")
        if mutation_only:
            flags.append("mutation")
        if not remains_typed:
            flags.append("untyped")
        elif no_reference:
            flags.append("no_reference")
        if name in inconsistent:
            flags.append("references_inconsistent")
        rows.append({
            "marker": name, "remains": r_all, "references": ref_alleles, "log10_lr": v, "lr": lr_text(v)
            if remains_typed else "1", "typed": remains_typed, "excluded": excluded, "mutation_only": mutation_only,
            "untyped": not remains_typed, "no_reference": no_reference, "references_inconsistent": name in inconsistent,
            "flags": flags,
        })
    finite = [r["log10_lr"] for r in rows if r["log10_lr"] is not None]
    product_log10 = None if any(r["excluded"] for r in rows) else math.fsum(finite)
    # rank among the remains' candidates of the same run, and the GLR
    cands = list(session.execute(select(Candidate).where(Candidate.run_id == run.id,
                                                         Candidate.remains_id == remains.id)
                                 .order_by(Candidate.rank)).scalars())
    glr, glr_how, glr_source = _glr(cands, candidate)
    params = dict(run.parameters or {})
    method = params.get("posterior", "joint")
    prior = params.get("prior", "flat")
    if method.startswith("joint"):
        posterior_how = _("Joint identification of the component of the candidate graph that holds this remains "
                          "(every remains and missing person linked to it by candidates), with a flat prior: every "
                          "admissible assignment of the component, \"not among the missing\" included, equally "
                          "likely before the DNA; the posterior is this pairing's share of the assignments' LRs.")
    else:
        posterior_how = _("Per remains, with a flat prior over \"one of its candidates, or not among the missing\": "
                          "this LR over the sum of the remains' candidates' LRs and 1.")
    notes = [n for n in params.get("notes", []) if isinstance(n, str)]
    lineage = lineage_evidence(systems=candidate.systems, provenance=run.lineage_databases,
                               remains_haplotypes=used.haplotypes if used else None, references=references,
                               pedigree=pedigree, missing_member=mp.member.code, combined_log10_lr=candidate.log10_lr)
    v = verbal_equivalent(candidate.log10_lr)
    out: dict[str, Any] = {
        "candidate_id": candidate.id,
        "operation": {"code": op.code if op else None, "name": op.name if op else None,
                      "kind": op.kind if op else None},
        "remains": {"barcode": remains.barcode, "sex": remains.sex, "bag": remains.bag,
                    "sample_type": remains.sample_type,
                    "laboratory": (used.laboratory if used and used.laboratory else remains.laboratory),
                    "kit": (used.kit if used and used.kit else remains.kit),
                    "profile_version": used.version if used else None,
                    "current_version": current.version if current else None,
                    "dropout": used.dropout if used else 0.0, "genotypes": rgts},
        "family": fam.code,
        "missing_person": {"code": mp.code, "sex": mp.sex, "member": mp.member.code},
        "references": references,
        "pedigree": pedigree,
        "hypotheses": {
            "h1": _("H1: the remains %(remains)s are of missing person %(mp)s of family %(family)s.",
                    remains=remains.barcode, mp=mp.code, family=fam.code),
            "h2": _("H2: the remains %(remains)s are of a person unrelated to family %(family)s, drawn from the "
                    "population.", remains=remains.barcode, family=fam.code),
        },
        "markers": rows,
        "n_markers_typed": candidate.n_markers,
        "exclusions": candidate.exclusions,
        "log10_lr": candidate.log10_lr,
        "lr": lr_text(candidate.log10_lr),
        "product_log10_lr": product_log10,
        "product_lr": lr_text(product_log10),
        "posterior": candidate.posterior,
        "posterior_text": posterior_text(candidate.posterior),
        "prior": prior,
        "posterior_method": method,
        "posterior_how": posterior_how,
        "verbal": {"band": v.band, "label": band_label(v.band), "favours": v.favours, "text": v.text},
        "rank": candidate.rank,
        "n_candidates": len(cands),
        "glr_log10": glr,
        "glr": lr_text(glr) if glr is not None else None,
        "glr_how": glr_how,
        "glr_source": glr_source,
        "lineage": lineage,
        "engine_check": {"reproduced": (check["error"] is None and max_diff <= REPRODUCE_TOL),
                         "max_abs_diff_log10": max_diff if math.isfinite(max_diff) else None,
                         "error": check["error"]},
        "run": {
            "id": run.id, "status": run.status, "software_version": run.software_version, "engine": run.engine,
            "frequency_database": {"name": fdb.name, "sha256": run.frequency_database_sha256, "theta": fdb.theta},
            "mutation_models": run.mutation_models, "mutation_summary": mutation_summary(run.mutation_models),
            "parameters": {k: v for k, v in params.items() if k != "notes"},
            "notes": notes, "queued_at": _iso(run.queued_at), "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at), "started_by": (_user(session, run.user_id) or {}).get("username"),
        },
        "evidence_problems": [{"rule": rule, "text": rule_text(rule), "message": msg} for rule, msg in
                              repo.evidence_problems(session, candidate=candidate,
                                                     exclude_identification=exclude_identification,
                                                     policy=policy)],
        "other_active": _active_others(session, remains_id=remains.id, missing_person_id=mp.id,
                                       exclude=exclude_identification),
        "report_software_version": f"opendvi {__version__}",
        "names": names,
    }
    if names:
        det = repo.missing_person_details(session, missing_person=mp)
        out["missing_person"]["name"] = det.full_name if det else None
    return out


def _audit_entries(session: Session, ident: Identification) -> list[dict[str, Any]]:
    rows = session.execute(
        select(AuditEntry).where(AuditEntry.object_type == "identification", AuditEntry.object_id == str(ident.id),
                                 AuditEntry.action.like("identification.%")).order_by(AuditEntry.seq)
    ).scalars()
    return [{"seq": e.seq, "at": e.at, "action": e.action, "username": e.username, "hash": e.hash} for e in rows]


def identification_evidence(session: Session, ident: Identification, *, names: bool = False) -> dict[str, Any]:
    """:func:`candidate_evidence` of the identification's candidate, with the identification: its state,
    who proposed and who decided and when, and the hashes of their audit entries. Names only with
    ``names=True`` and only for a confirmed identification (as on the identifications page)."""
    if ident.candidate is None:
        raise ValueError(f"identification #{ident.id} has no candidate to rest on")
    show_names = names and ident.state == IdentificationState.confirmed
    ev = candidate_evidence(session, ident.candidate, names=show_names, exclude_identification=ident.id)
    entries = _audit_entries(session, ident)
    proposal = next((e for e in entries if e["action"] == "identification.propose"), None)
    decision = next((e for e in reversed(entries) if e["action"] != "identification.propose"), None)
    confirmation = next((e for e in reversed(entries) if e["action"] == "identification.confirm"), None)
    ev["identification"] = {
        "id": ident.id, "state": ident.state.value, "version": ident.version,
        "confirmed": ident.state == IdentificationState.confirmed,
        "proposed_by": _user(session, ident.proposed_by_id), "proposed_at": _iso(ident.proposed_at),
        "proposal_note": ident.proposal_note,
        "decided_by": _user(session, ident.decided_by_id), "decided_at": _iso(ident.decided_at),
        "decision_reason": ident.decision_reason,
        "audit": entries, "proposal_audit": proposal, "decision_audit": decision,
        "confirmation_audit": confirmation,
    }
    return ev
