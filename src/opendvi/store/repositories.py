"""Repository functions: every option keyword-only, one session passed in.

The caller owns the transaction (``opendvi.store.db.transaction``); these
functions add, flush and raise :mod:`opendvi.store.errors`, never commit.
Every change that matters writes its audit entry in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendvi.core.case import Case, Sample
from opendvi.io.case_json import case_from_dict, case_to_dict
from opendvi.store import audit
from opendvi.store.audit import canonical_json
from opendvi.store.errors import (
    ConflictError,
    ImportValidationError,
    NotFoundError,
    PermissionDeniedError,
)
from opendvi.store.models import (
    ACTIVE_STATES,
    AuthSession,
    Candidate,
    Donor,
    DonorDetails,
    Family,
    FrequencyDatabase,
    Identification,
    IdentificationState,
    Import,
    MatchingRun,
    MissingPerson,
    MissingPersonDetails,
    Operation,
    PedigreeMember,
    Profile,
    Remains,
    Role,
    User,
    utcnow,
)

# ---------------------------------------------------------------------------
# users and sessions
# ---------------------------------------------------------------------------


def create_user(
    session: Session, *, username: str, password_hash: str, role: Role, full_name: str = "", by: str | None = None,
    must_change_password: bool = False,
) -> User:
    """A new account; ``must_change_password`` for a one-time password (the
    user must set his own before doing anything else)."""
    if session.execute(select(User.id).where(User.username == username)).first():
        raise ConflictError(f"user {username!r} exists already")
    user = User(username=username, password_hash=password_hash, role=role, full_name=full_name, active=True,
                must_change_password=must_change_password)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"user {username!r} exists already") from None
    audit.append(session, action="user.create", username=by, object_type="user", object_id=username,
                 details={"role": role.value})
    return user


def get_user(session: Session, *, username: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no user named {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.execute(select(User).order_by(User.username)).scalars())


def update_user(
    session: Session,
    *,
    username: str,
    role: Role | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
    by: str | None = None,
) -> User:
    user = get_user(session, username=username)
    changes: dict[str, Any] = {}
    if role is not None and role != user.role:
        user.role = role
        changes["role"] = role.value
    if active is not None and active != user.active:
        user.active = active
        changes["active"] = active
    if password_hash is not None:
        # an administrator's reset: a one-time password, every session ended
        user.password_hash = password_hash
        user.must_change_password = True
        user.password_changed_at = utcnow()
        changes["password"] = "reset"
    if changes:
        if active is False or role is not None or password_hash is not None:
            session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
        audit.append(session, action="user.update", username=by, object_type="user", object_id=username,
                     details=changes)
    session.flush()
    return user


def change_own_password(session: Session, *, user: User, password_hash: str, keep_token: str | None = None) -> None:
    """The user set his own password: the one-time flag goes, and every other
    session of his ends (the one with ``keep_token`` stays)."""
    user.password_hash = password_hash
    user.must_change_password = False
    user.password_changed_at = utcnow()
    stmt = delete(AuthSession).where(AuthSession.user_id == user.id)
    if keep_token is not None:
        stmt = stmt.where(AuthSession.token_hash != _token_hash(keep_token))
    session.execute(stmt)
    audit.append(session, action="user.password_changed", username=user.username, object_type="user",
                 object_id=user.username)
    session.flush()


def set_totp(session: Session, *, user: User, secret: str | None, pending: str | None, by: str | None,
             action: str | None = None) -> None:
    """Store a TOTP secret being set up (``pending``) or enabled (``secret``); both None turns TOTP off."""
    user.totp_secret = secret
    user.totp_pending = pending
    if secret is None:
        user.totp_last_step = None
    if action:
        audit.append(session, action=action, username=by, object_type="user", object_id=user.username)
    session.flush()


def use_totp_step(session: Session, *, user_id: int, step: int) -> bool:
    """Record that the code of ``step`` was used; False if it (or a later one) was used already (a replay).
    One conditional UPDATE, so two sign-ins with the same code cannot both pass."""
    result = session.execute(
        update(User)
        .where(User.id == user_id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
    )
    return bool(getattr(result, "rowcount", 0))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_auth_session(session: Session, *, user: User, ttl: timedelta) -> tuple[str, AuthSession]:
    """A new session; returns the bearer token (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    row = AuthSession(
        token_hash=_token_hash(token),
        csrf_token=secrets.token_urlsafe(32),
        user_id=user.id,
        expires_at=utcnow() + ttl,
    )
    session.add(row)
    session.flush()
    return token, row


def get_auth_session(session: Session, *, token: str) -> AuthSession | None:
    row = session.execute(
        select(AuthSession).where(AuthSession.token_hash == _token_hash(token))
    ).scalar_one_or_none()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires < utcnow() or not row.user.active:
        return None
    return row


def delete_auth_session(session: Session, *, token: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.token_hash == _token_hash(token)))


# ---------------------------------------------------------------------------
# operations
# ---------------------------------------------------------------------------


def create_operation(
    session: Session,
    *,
    code: str,
    name: str,
    kind: str = "exchange",
    received_on: date | None = None,
    expected_count: int | None = None,
    by: str | None = None,
) -> Operation:
    if session.execute(select(Operation.id).where(Operation.code == code)).first():
        raise ConflictError(f"operation {code!r} exists already")
    op = Operation(code=code, name=name, kind=kind, received_on=received_on, expected_count=expected_count)
    session.add(op)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"operation {code!r} exists already") from None
    audit.append(session, action="operation.create", username=by, object_type="operation", object_id=code,
                 details={"name": name, "kind": kind, "expected_count": expected_count})
    return op


def get_operation(session: Session, *, code: str) -> Operation:
    op = session.execute(select(Operation).where(Operation.code == code)).scalar_one_or_none()
    if op is None:
        raise NotFoundError(f"no operation with code {code!r}")
    return op


def list_operations(session: Session) -> list[Operation]:
    return list(session.execute(select(Operation).order_by(Operation.created_at, Operation.id)).scalars())


def latest_run(session: Session, *, operation: Operation) -> MatchingRun | None:
    return session.execute(
        select(MatchingRun)
        .where(MatchingRun.operation_id == operation.id, MatchingRun.finished_at.is_not(None))
        .order_by(MatchingRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def operation_dashboard(session: Session, *, operation: Operation) -> dict[str, int | None]:
    """Counts: remains received, typed, matched (a candidate with LR > 1 in
    the latest run), proposed and confirmed (active identifications)."""
    received = session.scalar(select(func.count(Remains.id)).where(Remains.operation_id == operation.id)) or 0
    typed = session.scalar(
        select(func.count(func.distinct(Profile.remains_id)))
        .join(Remains, Remains.id == Profile.remains_id)
        .where(Remains.operation_id == operation.id)
    ) or 0
    run = latest_run(session, operation=operation)
    matched = 0
    if run is not None:
        matched = session.scalar(
            select(func.count(func.distinct(Candidate.remains_id))).where(
                Candidate.run_id == run.id, Candidate.log10_lr > 0
            )
        ) or 0
    counts: dict[str, int | None] = {
        "expected": operation.expected_count,
        "received": received,
        "typed": typed,
        "matched": matched,
    }
    for state in (IdentificationState.proposed, IdentificationState.confirmed):
        counts[state.value] = session.scalar(
            select(func.count(Identification.id))
            .join(Remains, Remains.id == Identification.remains_id)
            .where(Remains.operation_id == operation.id, Identification.state == state)
        ) or 0
    counts["runs"] = session.scalar(
        select(func.count(MatchingRun.id)).where(MatchingRun.operation_id == operation.id)
    ) or 0
    return counts


# ---------------------------------------------------------------------------
# remains, families, profiles
# ---------------------------------------------------------------------------


def get_remains(session: Session, *, barcode: str) -> Remains:
    r = session.execute(select(Remains).where(Remains.barcode == barcode)).scalar_one_or_none()
    if r is None:
        raise NotFoundError(f"no remains with barcode {barcode!r}")
    return r


def like_escape(text: str) -> str:
    """``text`` for a LIKE pattern with escape character ``\\``: ``%`` and ``_`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_remains(
    session: Session,
    *,
    operation: Operation | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Remains]:
    stmt = select(Remains)
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    if q:
        like = f"%{like_escape(q.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(Remains.barcode).like(like, escape="\\"),
                func.lower(func.coalesce(Remains.bag, "")).like(like, escape="\\"),
                func.lower(func.coalesce(Remains.laboratory, "")).like(like, escape="\\"),
            )
        )
    stmt = stmt.order_by(Remains.barcode).limit(limit).offset(offset)
    return list(session.execute(stmt).scalars())


def update_remains(
    session: Session,
    *,
    barcode: str,
    bag: str | None = None,
    sample_type: str | None = None,
    laboratory: str | None = None,
    kit: str | None = None,
    by: str | None = None,
) -> Remains:
    """Set a remains' bag, sample type, laboratory or kit (None leaves a field as it is)."""
    r = get_remains(session, barcode=barcode)
    changes = {k: v for k, v in (("bag", bag), ("sample_type", sample_type), ("laboratory", laboratory),
                                 ("kit", kit)) if v is not None}
    for k, v in changes.items():
        setattr(r, k, v)
    session.flush()
    if changes:
        audit.append(session, action="remains.update", username=by, object_type="remains", object_id=barcode,
                     details=changes)
    return r


def profiles_of(session: Session, *, remains: Remains | None = None, donor: Donor | None = None) -> list[Profile]:
    """Every version, oldest first."""
    if remains is not None:
        cond = Profile.remains_id == remains.id
    elif donor is not None:
        cond = Profile.donor_id == donor.id
    else:
        raise ValueError("give remains or donor")
    return list(session.execute(select(Profile).where(cond).order_by(Profile.version)).scalars())


def current_profile(session: Session, *, remains: Remains | None = None, donor: Donor | None = None) -> Profile | None:
    versions = profiles_of(session, remains=remains, donor=donor)
    return versions[-1] if versions else None


def add_profile(
    session: Session,
    *,
    genotypes: Mapping[str, Sequence[str]],
    remains: Remains | None = None,
    donor: Donor | None = None,
    dropout: float = 0.0,
    laboratory: str | None = None,
    kit: str | None = None,
    import_id: int | None = None,
) -> Profile | None:
    """A new profile version, or None when it equals the current one."""
    gts = {m: list(g) for m, g in sorted(genotypes.items())}
    cur = current_profile(session, remains=remains, donor=donor)
    if cur is not None and cur.genotypes == gts and cur.dropout == dropout:
        return None
    prof = Profile(
        remains_id=remains.id if remains is not None else None,
        donor_id=donor.id if donor is not None else None,
        version=(cur.version + 1) if cur else 1,
        genotypes=gts,
        dropout=dropout,
        laboratory=laboratory,
        kit=kit,
        import_id=import_id,
    )
    session.add(prof)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError("the profile was re-typed by someone else at the same time; import again") from None
    return prof


def get_missing_person(session: Session, *, code: str) -> MissingPerson:
    mp = session.execute(select(MissingPerson).where(MissingPerson.code == code)).scalar_one_or_none()
    if mp is None:
        raise NotFoundError(f"no missing person with code {code!r}")
    return mp


def list_missing_persons(session: Session) -> list[MissingPerson]:
    return list(session.execute(select(MissingPerson).order_by(MissingPerson.code)).scalars())


def missing_person_details(session: Session, *, missing_person: MissingPerson) -> MissingPersonDetails | None:
    return session.execute(
        select(MissingPersonDetails).where(MissingPersonDetails.missing_person_id == missing_person.id)
    ).scalar_one_or_none()


def set_missing_person_details(
    session: Session,
    *,
    missing_person: MissingPerson,
    full_name: str,
    date_of_birth: date | None = None,
    place_last_seen: str | None = None,
    notes: str | None = None,
    by: str | None = None,
    only: Sequence[str] | None = None,
) -> MissingPersonDetails:
    """Set the personal data (all four fields, as a PUT), or only the fields
    named in ``only`` (a form that shows only the name leaves the others as they are)."""
    all_fields = ("full_name", "date_of_birth", "place_last_seen", "notes")
    fields = all_fields if only is None else tuple(f for f in all_fields if f in only)
    det = missing_person_details(session, missing_person=missing_person)
    if det is None:
        det = MissingPersonDetails(missing_person_id=missing_person.id, full_name=full_name)
        session.add(det)
    values = {"full_name": full_name, "date_of_birth": date_of_birth, "place_last_seen": place_last_seen,
              "notes": notes}
    for f in fields:
        setattr(det, f, values[f])
    det.updated_at = utcnow()
    session.flush()
    # the audit log names the record, never the personal data itself
    audit.append(session, action="missing_person.details", username=by, object_type="missing_person",
                 object_id=missing_person.code, details={"fields": list(fields)})
    return det


def get_family(session: Session, *, code: str) -> Family:
    fam = session.execute(select(Family).where(Family.code == code)).scalar_one_or_none()
    if fam is None:
        raise NotFoundError(f"no family with code {code!r}")
    return fam


def list_families(session: Session) -> list[Family]:
    return list(session.execute(select(Family).order_by(Family.code)).scalars())


def donors_of(session: Session, *, family: Family) -> list[Donor]:
    return list(session.execute(select(Donor).where(Donor.family_id == family.id).order_by(Donor.barcode)).scalars())


def missing_of(session: Session, *, family: Family) -> list[MissingPerson]:
    return list(
        session.execute(
            select(MissingPerson).where(MissingPerson.family_id == family.id).order_by(MissingPerson.code)
        ).scalars()
    )


def update_donor(
    session: Session,
    *,
    barcode: str,
    relationship: str | None = None,
    consent: str | None = None,
    consent_date: date | None = None,
    full_name: str | None = None,
    contact: str | None = None,
    by: str | None = None,
) -> Donor:
    donor = session.execute(select(Donor).where(Donor.barcode == barcode)).scalar_one_or_none()
    if donor is None:
        raise NotFoundError(f"no donor with barcode {barcode!r}")
    if relationship is not None:
        donor.relationship_to_missing = relationship
    if consent is not None:
        donor.consent = consent
    if consent_date is not None:
        donor.consent_date = consent_date
    if full_name is not None or contact is not None:
        det = session.execute(select(DonorDetails).where(DonorDetails.donor_id == donor.id)).scalar_one_or_none()
        if det is None:
            det = DonorDetails(donor_id=donor.id, full_name=full_name or "")
            session.add(det)
        if full_name is not None:
            det.full_name = full_name
        if contact is not None:
            det.contact = contact
    session.flush()
    audit.append(session, action="donor.update", username=by, object_type="donor", object_id=barcode,
                 details={"relationship": relationship, "consent": consent})
    return donor


# ---------------------------------------------------------------------------
# frequency databases
# ---------------------------------------------------------------------------


def get_or_create_frequency_database(
    session: Session, *, name: str, markers: list[Any], theta: float
) -> FrequencyDatabase:
    digest = hashlib.sha256(canonical_json({"markers": markers, "theta": theta}).encode("utf-8")).hexdigest()
    fdb = session.execute(
        select(FrequencyDatabase).where(FrequencyDatabase.sha256 == digest)
    ).scalar_one_or_none()
    if fdb is None:
        fdb = FrequencyDatabase(name=name, sha256=digest, markers=markers, theta=theta)
        session.add(fdb)
        session.flush()
    return fdb


def import_frequencies(
    session: Session,
    *,
    tables: Mapping[str, tuple[str, tuple[str, ...], tuple[float, ...]]],
    operation: Operation,
    filename: str,
    sha256: str,
    file_format: str,
    population: str | None,
    by: User | None,
) -> dict[str, Any]:
    """Give ``operation`` a new frequency database: ``tables`` maps a
    canonical marker key to (name, alleles, frequencies). An operation with
    markers keeps them (and their mutation models) and takes the new
    frequencies, which must cover every one of its markers; an operation
    without markers takes every marker of the file (no mutation model).
    Every problem is listed; nothing is written on error."""
    from opendvi.core.markers import canonical_marker_name

    old = operation.frequency_database
    problems: list[str] = []
    markers: list[dict[str, Any]] = []
    if old is not None:
        for m in old.markers:
            t = tables.get(canonical_marker_name(m["name"]))
            if t is None:
                problems.append(f"marker {m['name']} of operation {operation.code} is not in the file")
                continue
            markers.append({**m, "alleles": list(t[1]), "frequencies": list(t[2])})
        theta = old.theta
    else:
        markers = [{"name": name, "chromosome": "autosomal", "alleles": list(al), "frequencies": list(fr),
                    "mutation": None} for name, al, fr in tables.values()]
        theta = 0.0
    if not tables:
        problems.append("the file holds no frequencies")
    if problems:
        raise ImportValidationError(problems, filename=filename)
    for m in markers:
        total = sum(m["frequencies"])
        m["frequencies"] = [f / total for f in m["frequencies"]]
    try:
        case_from_dict({"format": "dvi-case/1", "name": operation.code, "theta": theta, "markers": markers,
                        "remains": [], "families": []})
    except Exception as exc:  # a marker the case format refuses
        raise ImportValidationError([str(exc)], filename=filename) from None
    name = f"{filename} ({population})" if population else filename
    fdb = get_or_create_frequency_database(session, name=name[:200], markers=markers, theta=theta)
    operation.frequency_database = fdb
    imp = Import(operation_id=operation.id, format=file_format, filename=filename, sha256=sha256,
                 user_id=by.id if by else None)
    session.add(imp)
    session.flush()
    summary = {"import_id": imp.id, "operation": operation.code, "frequency_database": fdb.id,
               "frequency_database_sha256": fdb.sha256, "markers": len(markers), "population": population,
               "replaced": old.sha256 if old is not None else None}
    imp.summary = summary
    session.flush()
    audit.append(session, action="import.frequencies", username=by.username if by else None,
                 object_type="import", object_id=imp.id,
                 details={"filename": filename, "sha256": sha256, **summary})
    return summary


# ---------------------------------------------------------------------------
# importing a dvi-case/1 case
# ---------------------------------------------------------------------------


@dataclass
class ImportSummary:
    import_id: int
    operation: str
    remains_new: int = 0
    remains_retyped: int = 0
    families_new: int = 0
    missing_persons_new: int = 0
    donors_new: int = 0
    reference_profiles_new: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _pedigree_rows(fam: Any) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(i.id, i.father, i.mother, i.sex) for i in fam.pedigree.individuals]


def import_case(
    session: Session,
    *,
    case: Case,
    operation: Operation,
    filename: str,
    sha256: str,
    by: User | None,
    laboratory: str | None = None,
    kit: str | None = None,
    notes: Sequence[str] = (),
    donor_barcodes: Mapping[tuple[str, str], str] | None = None,
    file_format: str = "dvi-case/1",
) -> ImportSummary:
    """Import a case's remains (into ``operation``), families, donors and
    profiles. Checks everything first and raises
    :class:`ImportValidationError` listing every problem, writing nothing;
    the caller's transaction makes the writes all or nothing.

    Re-importing the same case changes nothing; a changed genotype adds a
    profile version (re-typing). ``donor_barcodes`` maps (family, member) to
    the reference sample's barcode (default: the member's id)."""
    problems: list[str] = []
    bc_of = dict(donor_barcodes or {})

    def donor_bc(fid: str, pid: str) -> str:
        return bc_of.get((fid, pid), pid)

    # remains: barcodes unique across operations
    barcodes = [r.id for r in case.remains]
    existing_remains = {
        r.barcode: r
        for r in session.execute(select(Remains).where(Remains.barcode.in_(barcodes))).scalars()
    } if barcodes else {}
    for bc, r in existing_remains.items():
        if r.operation_id != operation.id:
            problems.append(f"remains {bc}: barcode already registered in operation {r.operation.code}")
    # families: same pedigree if present
    fam_codes = [f.id for f in case.families]
    existing_fams = {
        f.code: f for f in session.execute(select(Family).where(Family.code.in_(fam_codes))).scalars()
    } if fam_codes else {}
    for f in case.families:
        old = existing_fams.get(f.id)
        if old is not None:
            rows = [(m.code, m.father, m.mother, m.sex) for m in old.members]
            if sorted(rows, key=str) != sorted(_pedigree_rows(f), key=str):
                problems.append(f"family {f.id}: already registered with a different pedigree")
    # missing person codes and donor barcodes: unique across families
    mp_codes = {mp: f.id for f in case.families for mp in f.missing}
    for mp in session.execute(select(MissingPerson).where(MissingPerson.code.in_(list(mp_codes)))).scalars():
        if mp.family.code != mp_codes[mp.code]:
            problems.append(f"missing person {mp.code}: code already used in family {mp.family.code}")
    donor_codes = {donor_bc(f.id, pid): f.id for f in case.families for pid in f.references}
    for d in session.execute(select(Donor).where(Donor.barcode.in_(list(donor_codes)))).scalars():
        if d.family.code != donor_codes[d.barcode]:
            problems.append(f"reference sample {d.barcode}: barcode already used in family {d.family.code}")
    seen_codes: dict[str, str] = {}
    for code, fid in list(mp_codes.items()) + list(donor_codes.items()):
        if code in seen_codes and seen_codes[code] != fid:
            problems.append(f"{code}: used in families {seen_codes[code]} and {fid}")
        seen_codes[code] = fid
    remains_ids = set(barcodes)
    for code in seen_codes:
        if code in remains_ids:
            problems.append(f"{code}: used both as a remains barcode and as a family member")
    if donor_codes:
        for bc in session.execute(select(Remains.barcode).where(Remains.barcode.in_(list(donor_codes)))).scalars():
            if bc not in remains_ids:
                problems.append(f"reference sample {bc}: barcode already registered as a remains")
    if operation.frequency_database is not None:
        old_names = {m["name"] for m in operation.frequency_database.markers}
        new_names = {m.name for m in case.markers}
        if old_names != new_names:
            problems.append(
                f"operation {operation.code} uses markers {sorted(old_names)}; this file has {sorted(new_names)}"
            )
    if problems:
        raise ImportValidationError(problems, filename=filename)

    data = case_to_dict(case)
    fdb = get_or_create_frequency_database(session, name=case.name, markers=data["markers"], theta=case.theta)
    operation.frequency_database = fdb
    imp = Import(
        operation_id=operation.id, format=file_format, filename=filename, sha256=sha256,
        user_id=by.id if by else None,
    )
    session.add(imp)
    session.flush()
    summary = ImportSummary(import_id=imp.id, operation=operation.code, notes=list(notes))

    for sample in case.remains:
        rem = existing_remains.get(sample.id)
        if rem is None:
            rem = Remains(barcode=sample.id, operation_id=operation.id, sex=sample.sex, laboratory=laboratory,
                          kit=kit)
            session.add(rem)
            session.flush()
            summary.remains_new += 1
        elif sample.sex is not None and rem.sex != sample.sex:
            rem.sex = sample.sex
        if sample.genotypes:
            before = current_profile(session, remains=rem)
            prof = add_profile(session, remains=rem, genotypes=sample.genotypes, dropout=sample.dropout,
                               laboratory=laboratory, kit=kit, import_id=imp.id)
            if prof is not None and before is not None:
                summary.remains_retyped += 1

    for f in case.families:
        fam = existing_fams.get(f.id)
        if fam is None:
            fam = Family(code=f.id)
            session.add(fam)
            session.flush()
            for pos, (pid, father, mother, sex) in enumerate(_pedigree_rows(f)):
                session.add(PedigreeMember(family_id=fam.id, code=pid, position=pos, father=father,
                                           mother=mother, sex=sex))
            session.flush()
            summary.families_new += 1
        members = {
            m.code: m
            for m in session.execute(select(PedigreeMember).where(PedigreeMember.family_id == fam.id)).scalars()
        }
        for mp_code in f.missing:
            if session.execute(select(MissingPerson.id).where(MissingPerson.code == mp_code)).first() is None:
                session.add(MissingPerson(code=mp_code, family_id=fam.id, member_id=members[mp_code].id,
                                          sex=f.sex_of(mp_code)))
                summary.missing_persons_new += 1
        session.flush()
        for pid in f.references:
            dbc = donor_bc(f.id, pid)
            donor = session.execute(select(Donor).where(Donor.barcode == dbc)).scalar_one_or_none()
            if donor is None:
                donor = Donor(barcode=dbc, family_id=fam.id, member_id=members[pid].id)
                session.add(donor)
                session.flush()
                summary.donors_new += 1
            prof = add_profile(session, donor=donor, genotypes=f.genotypes[pid],
                               dropout=float(f.dropout.get(pid, 0.0)), import_id=imp.id)
            if prof is not None:
                summary.reference_profiles_new += 1
    imp.summary = summary.as_dict()
    session.flush()
    audit.append(session, action="import.case", username=by.username if by else None, object_type="import",
                 object_id=imp.id, details={"filename": filename, "sha256": sha256, **summary.as_dict()})
    return summary


def import_remains_profiles(
    session: Session,
    *,
    samples: Sequence[Sample],
    operation: Operation,
    filename: str,
    sha256: str,
    file_format: str,
    by: User | None,
    laboratory: str | None = None,
    kit: str | None = None,
    notes: Sequence[str] = (),
) -> ImportSummary:
    """Import post-mortem profiles (GeneMapper, CODIS CMF, profile tables) into
    an operation that already has its markers (from a ``dvi-case/1`` or
    Familias import). Every problem is listed; nothing is written on error."""
    problems: list[str] = []
    fdb = operation.frequency_database
    if fdb is None:
        problems.append(f"operation {operation.code} has no markers yet: import a dvi-case/1 or Familias file first")
        known: set[str] = set()
    else:
        known = {m["name"] for m in fdb.markers}
    if not samples:
        problems.append("the file holds no single-source profile")
    barcodes = [smp.id for smp in samples]
    existing = {
        r.barcode: r for r in session.execute(select(Remains).where(Remains.barcode.in_(barcodes))).scalars()
    } if barcodes else {}
    donors = set(session.execute(select(Donor.barcode).where(Donor.barcode.in_(barcodes))).scalars()) \
        if barcodes else set()
    seen: set[str] = set()
    for smp in samples:
        if smp.id in seen:
            problems.append(f"sample {smp.id}: listed twice")
        seen.add(smp.id)
        r = existing.get(smp.id)
        if r is not None and r.operation_id != operation.id:
            problems.append(f"remains {smp.id}: barcode already registered in operation {r.operation.code}")
        if smp.id in donors:
            problems.append(f"sample {smp.id}: this barcode is a reference donor's")
        unknown = sorted(set(smp.genotypes) - known) if fdb is not None else []
        if unknown:
            problems.append(f"sample {smp.id}: markers not in the operation's frequency database: {unknown}")
    if problems:
        raise ImportValidationError(problems, filename=filename)
    imp = Import(operation_id=operation.id, format=file_format, filename=filename, sha256=sha256,
                 user_id=by.id if by else None)
    session.add(imp)
    session.flush()
    summary = ImportSummary(import_id=imp.id, operation=operation.code, notes=list(notes))
    for smp in samples:
        rem = existing.get(smp.id)
        if rem is None:
            rem = Remains(barcode=smp.id, operation_id=operation.id, sex=smp.sex, laboratory=laboratory, kit=kit)
            session.add(rem)
            session.flush()
            summary.remains_new += 1
        elif smp.sex is not None and rem.sex != smp.sex:
            rem.sex = smp.sex
        before = current_profile(session, remains=rem)
        prof = add_profile(session, remains=rem, genotypes=smp.genotypes, dropout=smp.dropout, import_id=imp.id,
                           laboratory=laboratory, kit=kit)
        if prof is not None and before is not None:
            summary.remains_retyped += 1
    imp.summary = summary.as_dict()
    session.flush()
    audit.append(session, action="import.profiles", username=by.username if by else None, object_type="import",
                 object_id=imp.id, details={"filename": filename, "sha256": sha256, "format": file_format,
                                            **summary.as_dict()})
    return summary


# ---------------------------------------------------------------------------
# the case held in the database, for matching
# ---------------------------------------------------------------------------


@dataclass
class StoredCase:
    """A core :class:`Case` built from the database, with the row ids behind it."""

    case: Case
    frequency_database: FrequencyDatabase
    remains: dict[str, tuple[int, int]]  # barcode -> (remains id, profile id)
    missing: dict[str, int]  # missing person code -> id


def build_case(session: Session, *, operation: Operation) -> StoredCase:
    """The operation's remains (current profiles) against every family."""
    fdb = operation.frequency_database
    if fdb is None:
        raise ConflictError(f"operation {operation.code} has no markers yet: import a case first")
    rem_rows: list[dict[str, Any]] = []
    rem_ids: dict[str, tuple[int, int]] = {}
    for r in session.execute(
        select(Remains).where(Remains.operation_id == operation.id).order_by(Remains.barcode)
    ).scalars():
        prof = current_profile(session, remains=r)
        if prof is None:
            continue
        rem_rows.append({"id": r.barcode, "sex": r.sex, "genotypes": prof.genotypes, "dropout": prof.dropout})
        rem_ids[r.barcode] = (r.id, prof.id)
    fam_rows: list[dict[str, Any]] = []
    missing: dict[str, int] = {}
    for fam in list_families(session):
        mps = {mp.member_id: mp for mp in missing_of(session, family=fam)}
        donors = {d.member_id: d for d in donors_of(session, family=fam)}
        members = []
        for m in fam.members:
            row: dict[str, Any] = {"id": m.code, "father": m.father, "mother": m.mother, "sex": m.sex}
            if m.id in mps:
                row["missing"] = True
                missing[m.code] = mps[m.id].id
            if m.id in donors:
                prof = current_profile(session, donor=donors[m.id])
                if prof is not None:
                    row["genotypes"] = prof.genotypes
                    if prof.dropout:
                        row["dropout"] = prof.dropout
            members.append(row)
        if any(m.get("missing") for m in members):
            fam_rows.append({"id": fam.code, "members": members})
    data = {
        "format": "dvi-case/1",
        "name": operation.code,
        "theta": fdb.theta,
        "markers": fdb.markers,
        "remains": rem_rows,
        "families": fam_rows,
    }
    return StoredCase(case=case_from_dict(data), frequency_database=fdb, remains=rem_ids, missing=missing)


# ---------------------------------------------------------------------------
# matching runs and candidates
# ---------------------------------------------------------------------------


@dataclass
class CandidateRow:
    remains: str
    missing: str
    log10_lr: float | None
    posterior: float
    exclusions: int
    n_markers: int
    rank: int
    per_marker: dict[str, Any]


def record_run(
    session: Session,
    *,
    operation: Operation,
    stored: StoredCase,
    candidates: Sequence[CandidateRow],
    software_version: str,
    engine: str,
    parameters: dict[str, Any],
    started_at: datetime,
    by: User | None,
) -> MatchingRun:
    fdb = stored.frequency_database
    mutation = {
        m["name"]: m.get("mutation") for m in fdb.markers
    }
    run = MatchingRun(
        operation_id=operation.id,
        software_version=software_version,
        engine=engine,
        frequency_database_id=fdb.id,
        frequency_database_sha256=fdb.sha256,
        mutation_models=mutation,
        parameters=parameters,
        n_remains=len(stored.remains),
        n_missing=len(stored.missing),
        started_at=started_at,
        finished_at=utcnow(),
        user_id=by.id if by else None,
    )
    session.add(run)
    session.flush()
    for c in candidates:
        rid, pid = stored.remains[c.remains]
        session.add(
            Candidate(
                run_id=run.id, remains_id=rid, remains_profile_id=pid, missing_person_id=stored.missing[c.missing],
                log10_lr=c.log10_lr, posterior=c.posterior, exclusions=c.exclusions, n_markers=c.n_markers,
                rank=c.rank, per_marker=c.per_marker,
            )
        )
    session.flush()
    audit.append(session, action="matching.run", username=by.username if by else None, object_type="matching_run",
                 object_id=run.id, details={"operation": operation.code, "candidates": len(candidates),
                                            "frequency_database_sha256": fdb.sha256, "parameters": parameters,
                                            "software_version": software_version, "engine": engine})
    return run


def get_run(session: Session, *, run_id: int) -> MatchingRun:
    run = session.get(MatchingRun, run_id)
    if run is None:
        raise NotFoundError(f"no matching run {run_id}")
    return run


def get_candidate(session: Session, *, candidate_id: int) -> Candidate:
    c = session.get(Candidate, candidate_id)
    if c is None:
        raise NotFoundError(f"no candidate {candidate_id}")
    return c


def candidates_for_remains(session: Session, *, remains: Remains) -> list[Candidate]:
    """The remains' candidates from the latest run that included it, best first."""
    run_id = session.scalar(
        select(func.max(Candidate.run_id)).where(Candidate.remains_id == remains.id)
    )
    if run_id is None:
        return []
    return list(
        session.execute(
            select(Candidate).where(Candidate.run_id == run_id, Candidate.remains_id == remains.id)
            .order_by(Candidate.rank)
        ).scalars()
    )


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


def get_identification(session: Session, *, identification_id: int) -> Identification:
    ident = session.get(Identification, identification_id)
    if ident is None:
        raise NotFoundError(f"no identification {identification_id}")
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


#: The evidence rules of a proposal and a confirmation (``docs/service.md``).
EVIDENCE_RULES = {
    "superseded_run": "its matching run was superseded by a later run of the operation",
    "newer_profile": "a profile it rests on has a newer version",
    "newer_frequencies": "the operation's allele frequencies changed after its run",
    "missing_person_identified": "the missing person already has another active identification",
}


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def evidence_problems(
    session: Session, *, candidate: Candidate, exclude_identification: int | None = None
) -> list[tuple[str, str]]:
    """Why the candidate's evidence no longer holds: ``(rule, reason)`` pairs of
    :data:`EVIDENCE_RULES`. The candidate records its run and the remains' profile
    version; the references' profiles and the frequencies are compared with the
    run's start (``started_at``) and frequency database."""
    problems: list[tuple[str, str]] = []
    run = candidate.run
    later = session.scalar(
        select(func.max(MatchingRun.id)).where(
            MatchingRun.operation_id == run.operation_id, MatchingRun.id > run.id,
            MatchingRun.finished_at.is_not(None),
        )
    )
    if later is not None:
        problems.append(("superseded_run", f"its matching run #{run.id} was superseded by run #{later} of the "
                                           "operation: use that run's candidates"))
    remains = candidate.remains
    current = current_profile(session, remains=remains)
    used = session.get(Profile, candidate.remains_profile_id)
    if current is not None and current.id != candidate.remains_profile_id:
        problems.append(("newer_profile", f"remains {remains.barcode} was re-typed (profile version "
                                          f"{current.version}; the run used version {used.version if used else '?'})"
                                          ": run matching again"))
    started = _aware(run.started_at)
    donors = donors_of(session, family=candidate.missing_person.family)
    for d in donors:
        newer = [pr for pr in profiles_of(session, donor=d) if _aware(pr.created_at) > started]
        if newer:
            problems.append(("newer_profile", f"reference {d.barcode} of family {candidate.missing_person.family.code} "
                                              f"has profile version {max(pr.version for pr in newer)} typed after run "
                                              f"#{run.id} started: run matching again"))
    op = session.get(Operation, run.operation_id)
    if op is not None and op.frequency_database_id != run.frequency_database_id:
        problems.append(("newer_frequencies", f"operation {op.code}'s allele frequencies changed after run "
                                              f"#{run.id}: run matching again"))
    others = session.execute(
        select(Identification).where(
            Identification.missing_person_id == candidate.missing_person_id,
            Identification.state.in_(ACTIVE_STATES),
            Identification.remains_id != candidate.remains_id,
        )
    ).scalars()
    for other in others:
        if other.id == exclude_identification:
            continue
        problems.append(("missing_person_identified", f"missing person {candidate.missing_person.code} already has "
                                                      f"a {other.state.value} identification with remains "
                                                      f"{other.remains.barcode} (#{other.id})"))
    return problems


def _check_evidence(
    session: Session, *, candidate: Candidate, what: str, allow: Collection[str], override_reason: str,
    exclude_identification: int | None = None,
) -> dict[str, Any] | None:
    """Refuse (:class:`ConflictError`, every reason) unless each problem's rule is in
    ``allow`` and a reason is given; then what was overridden, for the audit entry."""
    problems = evidence_problems(session, candidate=candidate, exclude_identification=exclude_identification)
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
    override_reason: str = "",
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
                               override_reason=override_reason)
    ident = Identification(
        remains_id=candidate.remains_id, missing_person_id=candidate.missing_person_id, candidate_id=candidate.id,
        state=IdentificationState.proposed, version=1, proposed_by_id=by.id, proposal_note=note,
    )
    barcode = candidate.remains.barcode
    session.add(ident)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(
            f"remains {barcode}: another identification was proposed at the same time; reload"
        ) from None
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
    from_states, to_state = _TRANSITIONS[action]
    ident = get_identification(session, identification_id=identification_id)
    if action in ("confirm", "reject") and ident.proposed_by_id == by.id:
        raise PermissionDeniedError(
            f"identification #{ident.id}: you proposed it, so another reviewer must {action} it"
        )
    if action == "withdraw" and ident.state == IdentificationState.confirmed and by.role != Role.reviewer:
        raise PermissionDeniedError(f"identification #{ident.id} is confirmed: only a reviewer may withdraw it")
    if action in ("reject", "withdraw") and not reason.strip():
        raise ConflictError(f"a reason is required to {action} an identification")
    override = None
    if action == "confirm" and ident.state == IdentificationState.proposed:
        if ident.candidate is None:
            raise ConflictError(f"identification #{ident.id} has no candidate to rest on: propose it again")
        override = _check_evidence(session, candidate=ident.candidate, what="confirmed", allow=allow,
                                   override_reason=override_reason, exclude_identification=ident.id)
    version = expected_version if expected_version is not None else ident.version
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
    ident = get_identification(session, identification_id=identification_id)
    audit.append(session, action=f"identification.{action}", username=by.username, object_type="identification",
                 object_id=ident.id, details={"remains": ident.remains.barcode,
                                              "missing_person": ident.missing_person.code,
                                              "reason": reason, "state": to_state.value,
                                              **({"override": override} if override else {})})
    return ident


def audit_entries(session: Session, *, limit: int = 200, object_type: str | None = None,
                  object_id: str | None = None) -> list[Any]:
    from opendvi.store.models import AuditEntry

    stmt = select(AuditEntry)
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    return list(session.execute(stmt.order_by(AuditEntry.seq.desc()).limit(limit)).scalars())


def audit_json(details: str) -> Any:
    import json

    return json.loads(details)

