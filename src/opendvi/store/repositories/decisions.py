"""Candidates (a run's pairings of remains and missing persons) and identifications: reading them, the
decision policy, the evidence rules, proposing and deciding."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from opendvi.i18n import gettext as _
from opendvi.store import audit
from opendvi.store.errors import ConflictError, NotFoundError, PermissionDeniedError
from opendvi.store.liaison import family_changes_since
from opendvi.store.models import (
    ACTIVE_STATES,
    Candidate,
    Donor,
    Family,
    Identification,
    IdentificationState,
    MatchingRun,
    MissingPerson,
    Operation,
    Profile,
    Remains,
    Role,
    RunStatus,
    User,
    utcnow,
)
from opendvi.store.repositories.lineage import operation_lineage
from opendvi.store.repositories.queries import Page, add_unique, filter_candidates, filter_identifications, paginate
from opendvi.store.repositories.remains import current_profile
from opendvi.store.repositories.runs import as_aware, current_run_id

__all__ = ["EVIDENCE_RULES", "DecisionPolicy", "candidates_for_remains", "decide_identification", "evidence_problems",
           "get_candidate", "get_identification", "list_identifications", "page_candidates", "page_identifications",
           "propose_identification"]


def get_candidate(session: Session, *, candidate_id: int) -> Candidate:
    c = session.get(Candidate, candidate_id)
    if c is None:
        raise NotFoundError(_("no candidate %(id)s", id=candidate_id))
    return c


def candidates_for_remains(session: Session, *, remains: Remains) -> list[Candidate]:
    """The remains' candidates from the latest finished run that included it, best first."""
    run_id = session.scalar(
        select(func.max(Candidate.run_id)).join(MatchingRun, MatchingRun.id == Candidate.run_id)
        .where(Candidate.remains_id == remains.id, MatchingRun.status == RunStatus.finished.value)
    )
    if run_id is None:
        return []
    return list(
        session.execute(
            select(Candidate).where(Candidate.run_id == run_id, Candidate.remains_id == remains.id)
            .options(selectinload(Candidate.remains), selectinload(Candidate.missing_person)
                     .selectinload(MissingPerson.family))
            .order_by(Candidate.rank)
        ).scalars()
    )


def page_candidates(
    session: Session, *, run_id: int | None = None, operation: Operation | None = None, q: str | None = None,
    min_log10_lr: float | None = None, max_log10_lr: float | None = None, unreviewed: bool = False,
    page: int = 1, per_page: int = 50, sort: str = "-log10_lr",
) -> Page:
    """Candidates of a run (default: the current, latest finished one), paged; ``q`` in the barcode or
    the family code; ``unreviewed``: the remains has no active identification."""
    rid = run_id if run_id is not None else current_run_id(session)
    stmt = (select(Candidate).join(Remains, Remains.id == Candidate.remains_id)
            .join(MissingPerson, MissingPerson.id == Candidate.missing_person_id)
            .join(Family, Family.id == MissingPerson.family_id)
            .where(Candidate.run_id == (rid if rid is not None else -1))
            .options(selectinload(Candidate.remains), selectinload(Candidate.missing_person)
                     .selectinload(MissingPerson.family)))
    stmt = filter_candidates(stmt, operation=operation, q=q, min_log10_lr=min_log10_lr, max_log10_lr=max_log10_lr,
                             unreviewed=unreviewed)
    count_stmt = None
    if not q:  # counted without the joins no filter needs (each candidate has one remains, one family)
        counted = select(Candidate.id).where(Candidate.run_id == (rid if rid is not None else -1))
        if operation is not None:
            counted = counted.join(Remains, Remains.id == Candidate.remains_id)
        count_stmt = filter_candidates(counted, operation=operation, min_log10_lr=min_log10_lr,
                                       max_log10_lr=max_log10_lr, unreviewed=unreviewed)
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=Candidate.id,
                    count_stmt=count_stmt, sorts={"log10_lr": [Candidate.log10_lr], "posterior": [Candidate.posterior],
                           "remains": [Remains.barcode, Candidate.rank], "family": [Family.code]})


def get_identification(session: Session, *, identification_id: int) -> Identification:
    ident = session.get(Identification, identification_id)
    if ident is None:
        raise NotFoundError(_("no identification %(id)s", id=identification_id))
    return ident


def list_identifications(
    session: Session,
    *,
    states: Sequence[IdentificationState] | None = None,
    operation: Operation | None = None,
    remains: Remains | None = None,
) -> list[Identification]:
    stmt = select(Identification).join(Remains, Remains.id == Identification.remains_id)
    if states:
        stmt = stmt.where(Identification.state.in_(list(states)))
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    if remains is not None:
        stmt = stmt.where(Identification.remains_id == remains.id)
    return list(session.execute(stmt.order_by(Identification.id.desc())).scalars())


def page_identifications(
    session: Session, *, states: Sequence[IdentificationState] | None = None, operation: Operation | None = None,
    q: str | None = None, page: int = 1, per_page: int = 50, sort: str = "-id",
) -> Page:
    """Identifications, paged (everything a row shows loaded with selectinload); ``q`` in the
    barcode or the family code."""
    stmt = (select(Identification).join(Remains, Remains.id == Identification.remains_id)
            .join(MissingPerson, MissingPerson.id == Identification.missing_person_id)
            .join(Family, Family.id == MissingPerson.family_id)
            .options(selectinload(Identification.remains).selectinload(Remains.operation),
                     selectinload(Identification.missing_person).selectinload(MissingPerson.family),
                     selectinload(Identification.candidate), selectinload(Identification.proposed_by),
                     selectinload(Identification.decided_by)))
    stmt = filter_identifications(stmt, states=states or None, operation=operation, q=q)
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=Identification.id,
                    sorts={"id": [Identification.id], "state": [Identification.state],
                           "remains": [Remains.barcode], "family": [Family.code]})


@dataclass(frozen=True)
class DecisionPolicy:
    """What an identification needs before it is proposed or confirmed without a reason: its LR and
    its (joint) posterior at least these. The service's defaults are ``opendvi solve``'s
    (:class:`opendvi.dvi.workflow.SolveOptions`: LR 10^4, posterior 0.999); ``docs/service.md``."""

    min_lr: float
    min_posterior: float

    def problems(self, candidate: Candidate) -> list[tuple[str, str]]:
        """The ``below_policy`` problems of a candidate (none when it meets the policy)."""
        out: list[tuple[str, str]] = []
        if candidate.log10_lr is None or candidate.log10_lr < math.log10(self.min_lr) - 1e-12:
            lr = "0" if candidate.log10_lr is None else f"10^{candidate.log10_lr:.2f}"
            out.append(("below_policy", f"its LR ({lr}) is below the decision policy's {self.min_lr:g}"))
        if candidate.posterior < self.min_posterior:
            out.append(("below_policy", f"its posterior ({candidate.posterior:.6f}) is below the decision "
                                        f"policy's {self.min_posterior:g}"))
        return out


#: The evidence rules of a proposal and a confirmation (``docs/service.md``).
EVIDENCE_RULES = {
    "superseded_run": "its matching run was superseded by a later run of the operation",
    "newer_profile": "a profile it rests on has a newer version",
    "newer_frequencies": "the operation's allele frequencies (or its Y-STR / mtDNA databases) changed after its run",
    "missing_person_identified": "the missing person already has another active identification",
    "pedigree_changed": "the family's pedigree or its references changed after the run (a relative added, a "
                        "sample linked, a consent withdrawn: opendvi.store.liaison)",
    "below_policy": "its LR or posterior is below the decision policy (DecisionPolicy)",
}

Problems = list[tuple[str, str]]


def _superseded(session: Session, candidate: Candidate) -> Problems:
    """A later finished run that matched the remains (every run matches every remains of the database)."""
    run = candidate.run
    later = session.scalar(
        select(func.max(MatchingRun.id)).where(
            MatchingRun.id > run.id, MatchingRun.status == RunStatus.finished.value,
            or_(MatchingRun.operation_id == run.operation_id,
                select(Candidate.id).where(Candidate.run_id == MatchingRun.id,
                                           Candidate.remains_id == candidate.remains_id).exists()),
        )
    )
    if later is None:
        return []
    return [("superseded_run", f"its matching run #{run.id} was superseded by run #{later}: "
                               "use that run's candidates")]


def _remains_retyped(session: Session, candidate: Candidate) -> Problems:
    remains = candidate.remains
    current = current_profile(session, remains=remains)
    if current is None or current.id == candidate.remains_profile_id:
        return []
    used = session.get(Profile, candidate.remains_profile_id)
    return [("newer_profile", f"remains {remains.barcode} was re-typed (profile version "
                              f"{current.version}; the run used version {used.version if used else '?'})"
                              ": run matching again")]


def _references_retyped(session: Session, *, family: Family, started: datetime, run_id: int) -> Problems:
    """The family's reference donors with a profile version typed after ``started`` (one query)."""
    newest: dict[str, int] = {}
    for barcode, version, created_at in session.execute(
        select(Donor.barcode, Profile.version, Profile.created_at).join(Profile, Profile.donor_id == Donor.id)
        .where(Donor.family_id == family.id).order_by(Donor.barcode, Profile.version)
    ):
        if as_aware(created_at) > started:
            newest[barcode] = version
    return [("newer_profile", f"reference {barcode} of family {family.code} has profile version {version} typed "
                              f"after run #{run_id} started: run matching again")
            for barcode, version in newest.items()]


def _missing_person_identified(session: Session, candidate: Candidate,
                               exclude_identification: int | None) -> Problems:
    others = session.execute(
        select(Identification).where(
            Identification.missing_person_id == candidate.missing_person_id,
            Identification.state.in_(ACTIVE_STATES),
            Identification.remains_id != candidate.remains_id,
        ).options(selectinload(Identification.remains))
    ).scalars()
    return [("missing_person_identified", f"missing person {candidate.missing_person.code} already has "
                                          f"a {other.state.value} identification with remains "
                                          f"{other.remains.barcode} (#{other.id})")
            for other in others if other.id != exclude_identification]


def evidence_problems(
    session: Session, *, candidate: Candidate, exclude_identification: int | None = None,
    policy: DecisionPolicy | None = None,
) -> list[tuple[str, str]]:
    """Why the candidate's evidence no longer holds: ``(rule, reason)`` pairs of
    :data:`EVIDENCE_RULES`. The candidate records its run and the remains' profile
    version; the references' profiles and the frequencies are compared with the
    run's start (``started_at``) and frequency database. With ``policy``, also
    whether its LR and posterior meet it."""
    problems: Problems = list(policy.problems(candidate)) if policy is not None else []
    run = candidate.run
    problems += _superseded(session, candidate)
    problems += _remains_retyped(session, candidate)
    started = as_aware(run.started_at or run.queued_at or utcnow())
    family = candidate.missing_person.family
    problems += _references_retyped(session, family=family, started=started, run_id=run.id)
    for what in family_changes_since(session, family=family, since=started):
        problems.append(("pedigree_changed", f"family {family.code} changed after run "
                                             f"#{run.id} started ({what}): run matching again"))
    op = session.get(Operation, run.operation_id)
    if op is not None and op.frequency_database_id != run.frequency_database_id:
        problems.append(("newer_frequencies", f"operation {op.code}'s allele frequencies changed after run "
                                              f"#{run.id}: run matching again"))
    if op is not None and {s: r.id for s, r in operation_lineage(session, operation=op).items()} != {
            s: d["id"] for s, d in (run.lineage_databases or {}).items()}:
        problems.append(("newer_frequencies", f"operation {op.code}'s lineage (Y-STR, mtDNA) databases changed "
                                              f"after run #{run.id}: run matching again"))
    return problems + _missing_person_identified(session, candidate, exclude_identification)


def _check_evidence(
    session: Session, *, candidate: Candidate, what: str, allow: Collection[str], override_reason: str,
    exclude_identification: int | None = None, policy: DecisionPolicy | None = None,
) -> dict[str, Any] | None:
    """Refuse (:class:`ConflictError`, every reason) unless each problem's rule is in
    ``allow`` and a reason is given; then what was overridden, for the audit entry."""
    problems = evidence_problems(session, candidate=candidate, exclude_identification=exclude_identification,
                                 policy=policy)
    if not problems:
        return None
    blocking = [msg for rule, msg in problems if rule not in allow or not override_reason.strip()]
    if blocking:
        hint = ""
        if all(rule in allow for rule, _ in problems):
            hint = " (the policy allows it with a reason: give override_reason)"
        raise ConflictError(f"candidate {candidate.id} cannot be {what}: " + "; ".join(blocking) + hint)
    return {"rules": sorted({rule for rule, _ in problems}), "reason": override_reason.strip(),
            "problems": [msg for _, msg in problems]}


def propose_identification(
    session: Session, *, candidate: Candidate, by: User, note: str = "", allow: Collection[str] = (),
    override_reason: str = "", policy: DecisionPolicy | None = None,
) -> Identification:
    """Propose that the candidate's remains are its missing person.

    Refused with :class:`ConflictError` while the remains has an active
    (proposed or confirmed) identification: the database's partial unique
    index decides between two concurrent proposals. Refused too when the
    candidate's evidence no longer holds (:func:`evidence_problems`), unless
    each rule broken is in ``allow`` (the service's policy) and
    ``override_reason`` says why; the reason goes into the audit entry."""
    active = session.execute(
        select(Identification).where(
            Identification.remains_id == candidate.remains_id, Identification.state.in_(ACTIVE_STATES)
        )
    ).scalar_one_or_none()
    if active is not None:
        raise ConflictError(
            f"remains {candidate.remains.barcode} already has a {active.state.value} identification "
            f"(#{active.id}); withdraw or reject it first"
        )
    override = _check_evidence(session, candidate=candidate, what="proposed", allow=allow,
                               override_reason=override_reason, policy=policy)
    ident = Identification(
        remains_id=candidate.remains_id, missing_person_id=candidate.missing_person_id, candidate_id=candidate.id,
        state=IdentificationState.proposed, version=1, proposed_by_id=by.id, proposal_note=note,
    )
    barcode = candidate.remains.barcode
    add_unique(session, ident,
               lambda: f"remains {barcode}: another identification was proposed at the same time; reload")
    audit.append(session, action="identification.propose", username=by.username, object_type="identification",
                 object_id=ident.id, details={"remains": candidate.remains.barcode,
                                              "missing_person": candidate.missing_person.code,
                                              "candidate": candidate.id, "log10_lr": candidate.log10_lr,
                                              "posterior": candidate.posterior, "note": note,
                                              **({"override": override} if override else {})})
    return ident


_TRANSITIONS: dict[str, tuple[tuple[IdentificationState, ...], IdentificationState]] = {
    "confirm": ((IdentificationState.proposed,), IdentificationState.confirmed),
    "reject": ((IdentificationState.proposed,), IdentificationState.rejected),
    "withdraw": ((IdentificationState.proposed, IdentificationState.confirmed), IdentificationState.withdrawn),
}


def _check_decider(ident: Identification, *, action: str, by: User, reason: str) -> None:
    """Who may decide, and when a reason is required."""
    if action in ("confirm", "reject") and ident.proposed_by_id == by.id:
        raise PermissionDeniedError(
            f"identification #{ident.id}: you proposed it, so another reviewer must {action} it"
        )
    if action == "withdraw" and ident.state == IdentificationState.confirmed and by.role != Role.reviewer:
        raise PermissionDeniedError(f"identification #{ident.id} is confirmed: only a reviewer may withdraw it")
    if action in ("reject", "withdraw") and not reason.strip():
        raise ConflictError(f"a reason is required to {action} an identification")


def _apply_decision(session: Session, ident: Identification, *, action: str, by: User, reason: str,
                    version: int) -> None:
    """The decision as one conditional UPDATE; :class:`ConflictError` when it matches no row."""
    from_states, to_state = _TRANSITIONS[action]
    conds = [
        Identification.id == ident.id,
        Identification.version == version,
        Identification.state.in_(list(from_states)),
    ]
    if action in ("confirm", "reject"):
        conds.append(Identification.proposed_by_id != by.id)
    result = session.execute(
        update(Identification)
        .where(and_(*conds))
        .values(state=to_state, version=Identification.version + 1, decided_by_id=by.id, decided_at=utcnow(),
                decision_reason=reason or None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(ident)
        cur = session.get(Identification, ident.id)
        state = cur.state.value if cur else "gone"
        raise ConflictError(
            f"identification #{ident.id} was changed by someone else (it is now {state}, version "
            f"{cur.version if cur else '?'}); reload and decide again"
        )
    session.expire(ident)


def decide_identification(
    session: Session,
    *,
    identification_id: int,
    action: str,
    by: User,
    reason: str = "",
    expected_version: int | None = None,
    allow: Collection[str] = (),
    override_reason: str = "",
    policy: DecisionPolicy | None = None,
) -> Identification:
    """Confirm, reject or withdraw, by one conditional UPDATE.

    Rules: a reviewer never confirms or rejects his own proposal; a reason
    is required to reject or withdraw; only a proposal may be confirmed or
    rejected; only a reviewer withdraws a confirmed identification; a
    confirmation is refused when the candidate's evidence no longer holds,
    as a proposal is (``allow``, ``override_reason``). Two concurrent
    decisions: the first UPDATE wins, the second matches no row and gets
    :class:`ConflictError`."""
    if action not in _TRANSITIONS:
        raise ValueError(f"unknown action {action!r}")
    ident = get_identification(session, identification_id=identification_id)
    _check_decider(ident, action=action, by=by, reason=reason)
    override = None
    if action == "confirm" and ident.state == IdentificationState.proposed:
        if ident.candidate is None:
            raise ConflictError(f"identification #{ident.id} has no candidate to rest on: propose it again")
        override = _check_evidence(session, candidate=ident.candidate, what="confirmed", allow=allow,
                                   override_reason=override_reason, exclude_identification=ident.id,
                                   policy=policy)
    version = expected_version if expected_version is not None else ident.version
    _apply_decision(session, ident, action=action, by=by, reason=reason, version=version)
    ident = get_identification(session, identification_id=identification_id)
    audit.append(session, action=f"identification.{action}", username=by.username, object_type="identification",
                 object_id=ident.id, details={"remains": ident.remains.barcode,
                                              "missing_person": ident.missing_person.code,
                                              "reason": reason, "state": _TRANSITIONS[action][1].value,
                                              **({"override": override} if override else {})})
    return ident
