"""Repository functions: every option keyword-only, one session passed in.

The caller owns the transaction (``opendvi.store.db.transaction``); these
functions add, flush and raise :mod:`opendvi.store.errors`, never commit.
Every change that matters writes its audit entry in the same transaction.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from opendvi.core.case import Case, Sample
from opendvi.i18n import gettext as _
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
    RunStatus,
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
        raise ConflictError(_("user %(name)s exists already", name=repr(username)))
    user = User(username=username, password_hash=password_hash, role=role, full_name=full_name, active=True,
                must_change_password=must_change_password)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(_("user %(name)s exists already", name=repr(username))) from None
    audit.append(session, action="user.create", username=by, object_type="user", object_id=username,
                 details={"role": role.value})
    return user


def get_user(session: Session, *, username: str) -> User:
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(_("no user named %(name)s", name=repr(username)))
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
        raise ConflictError(_("operation %(code)s exists already", code=repr(code)))
    op = Operation(code=code, name=name, kind=kind, received_on=received_on, expected_count=expected_count)
    session.add(op)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(_("operation %(code)s exists already", code=repr(code))) from None
    audit.append(session, action="operation.create", username=by, object_type="operation", object_id=code,
                 details={"name": name, "kind": kind, "expected_count": expected_count})
    return op


def get_operation(session: Session, *, code: str) -> Operation:
    op = session.execute(select(Operation).where(Operation.code == code)).scalar_one_or_none()
    if op is None:
        raise NotFoundError(_("no operation with code %(code)s", code=repr(code)))
    return op


def list_operations(session: Session) -> list[Operation]:
    return list(session.execute(select(Operation).order_by(Operation.created_at, Operation.id)).scalars())


def latest_run(session: Session, *, operation: Operation) -> MatchingRun | None:
    return session.execute(
        select(MatchingRun)
        .where(MatchingRun.operation_id == operation.id, MatchingRun.status == RunStatus.finished.value)
        .order_by(MatchingRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()


@functools.cache
def _dashboard_statement() -> Any:
    """The dashboard's counts in one statement of scalar subqueries (the most-read page: one round
    trip), built once (building a statement costs more than running it) with the operation bound."""
    op_id: Any = bindparam("op_id")
    run_id = (select(func.max(MatchingRun.id)).where(MatchingRun.status == RunStatus.finished.value)
              .scalar_subquery())  # current_run_id()

    def idents(state: IdentificationState) -> Any:
        return (select(func.count(Identification.id)).join(Remains, Remains.id == Identification.remains_id)
                .where(Remains.operation_id == op_id, Identification.state == state).scalar_subquery())

    return select(
        select(func.count(Remains.id)).where(Remains.operation_id == op_id).scalar_subquery(),
        select(func.count(func.distinct(Profile.remains_id))).join(Remains, Remains.id == Profile.remains_id)
        .where(Remains.operation_id == op_id).scalar_subquery(),
        select(func.count(func.distinct(Candidate.remains_id))).join(Remains, Remains.id == Candidate.remains_id)
        .where(Candidate.run_id == run_id, Candidate.log10_lr > 0, Remains.operation_id == op_id).scalar_subquery(),
        idents(IdentificationState.proposed),
        idents(IdentificationState.confirmed),
        select(func.count(MatchingRun.id)).where(MatchingRun.operation_id == op_id).scalar_subquery(),
    )


def operation_dashboard(session: Session, *, operation: Operation) -> dict[str, int | None]:
    """Counts: remains received, typed, matched (a candidate with LR > 1 in
    the latest run), proposed and confirmed (active identifications)."""
    row = session.execute(_dashboard_statement(), {"op_id": operation.id}).one()
    received, typed, matched, proposed, confirmed, runs = (int(x or 0) for x in row)
    return {"expected": operation.expected_count, "received": received, "typed": typed, "matched": matched,
            IdentificationState.proposed.value: proposed, IdentificationState.confirmed.value: confirmed,
            "runs": runs}


# ---------------------------------------------------------------------------
# remains, families, profiles
# ---------------------------------------------------------------------------


def get_remains(session: Session, *, barcode: str) -> Remains:
    r = session.execute(select(Remains).where(Remains.barcode == barcode)).scalar_one_or_none()
    if r is None:
        raise NotFoundError(_("no remains with barcode %(barcode)s", barcode=repr(barcode)))
    return r


def like_escape(text: str) -> str:
    """``text`` for a LIKE pattern with escape character ``\\``: ``%`` and ``_`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class Page:
    """One page of a list: the rows, the total count of the filtered list, the page asked for."""

    items: list[Any]
    total: int
    page: int
    per_page: int
    sort: str

    def as_dict(self, items: list[Any]) -> dict[str, Any]:
        pages = max(1, -(-self.total // self.per_page))
        return {"items": items, "total": self.total, "page": self.page, "per_page": self.per_page,
                "pages": pages, "sort": self.sort}


def paginate(session: Session, stmt: Any, *, page: int, per_page: int, sort: str,
             sorts: Mapping[str, Sequence[Any]], tiebreak: Any, scalars: bool = True) -> Page:
    """``stmt`` filtered, counted (one COUNT over it) and cut to ``page`` (1-based) of ``per_page``,
    ordered by ``sort`` (a key of ``sorts``, ``-`` in front for descending) then ``tiebreak``."""
    key = sort.removeprefix("-")
    if key not in sorts:
        raise ValueError(f"sort must be one of {', '.join(sorted(sorts))} (with - for descending), found {sort!r}")
    desc = sort.startswith("-")
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    order = [c.desc().nulls_last() if desc else c.asc().nulls_last() for c in sorts[key]]
    order.append(tiebreak.desc() if desc else tiebreak.asc())
    q = stmt.order_by(*order).limit(per_page).offset((page - 1) * per_page)
    # typed Any: mypy 2.4 crashes inferring list(Result[Any]) here (expand_unpack)
    result: Any = session.execute(q)
    rows = list(result.scalars()) if scalars else list(result)
    return Page(items=rows, total=total, page=page, per_page=per_page, sort=sort)


def _like(text: str) -> str:
    return f"%{like_escape(text.lower())}%"


REMAINS_SORTS = ("barcode", "operation", "received", "best_lr")


def list_remains(
    session: Session,
    *,
    operation: Operation | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Remains]:
    """Remains by barcode (see :func:`page_remains` for the paged list with filters)."""
    page = page_remains(session, operation=operation, q=q, per_page=limit, page=1 + offset // max(limit, 1))
    return [row[0] for row in page.items]


def page_remains(
    session: Session,
    *,
    operation: Operation | None = None,
    q: str | None = None,
    state: str | None = None,
    min_log10_lr: float | None = None,
    max_log10_lr: float | None = None,
    unreviewed_above: float | None = None,
    page: int = 1,
    per_page: int = 50,
    sort: str = "barcode",
) -> Page:
    """Remains, paged; rows ``(Remains, best log10 LR in the current run or None)``.

    Filters: operation; ``q`` in the barcode, bag or laboratory (``%`` and ``_`` match themselves);
    ``state``: ``none`` (no active identification), ``proposed``, ``confirmed``; the best LR of the
    current (latest finished) run in [min, max] (log10); ``unreviewed_above``: a candidate of the current
    run with log10 LR at or above it, and no active identification."""
    run_id = current_run_id(session)
    best = (select(Candidate.remains_id.label("rid"), func.max(Candidate.log10_lr).label("best"))
            .where(Candidate.run_id == (run_id if run_id is not None else -1))
            .group_by(Candidate.remains_id).subquery())
    stmt = (select(Remains, best.c.best).outerjoin(best, best.c.rid == Remains.id)
            .options(selectinload(Remains.operation)))
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    if q:
        like = _like(q)
        stmt = stmt.where(
            or_(
                func.lower(Remains.barcode).like(like, escape="\\"),
                func.lower(func.coalesce(Remains.bag, "")).like(like, escape="\\"),
                func.lower(func.coalesce(Remains.laboratory, "")).like(like, escape="\\"),
            )
        )
    active = select(Identification.id).where(Identification.remains_id == Remains.id,
                                              Identification.state.in_(ACTIVE_STATES))
    if state == "none":
        stmt = stmt.where(~active.exists())
    elif state in ("proposed", "confirmed"):
        stmt = stmt.where(select(Identification.id).where(Identification.remains_id == Remains.id,
                                                          Identification.state == state).exists())
    elif state:
        raise ValueError(f"state must be none, proposed or confirmed, found {state!r}")
    if min_log10_lr is not None:
        stmt = stmt.where(best.c.best >= min_log10_lr)
    if max_log10_lr is not None:
        stmt = stmt.where(best.c.best <= max_log10_lr)
    if unreviewed_above is not None:
        stmt = stmt.where(best.c.best >= unreviewed_above, ~active.exists())
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, scalars=False, tiebreak=Remains.id,
                    sorts={"barcode": [Remains.barcode], "operation": [Remains.operation_id, Remains.barcode],
                           "received": [Remains.created_at], "best_lr": [best.c.best]})


def page_families(session: Session, *, q: str | None = None, page: int = 1, per_page: int = 50,
                  sort: str = "code") -> Page:
    """Families, paged, with their members loaded (one query more); ``q`` in the family code or a
    missing person's code."""
    stmt = select(Family).options(selectinload(Family.members))
    if q:
        like = _like(q)
        stmt = stmt.where(or_(func.lower(Family.code).like(like, escape="\\"),
                              select(MissingPerson.id).where(MissingPerson.family_id == Family.id,
                                                             func.lower(MissingPerson.code).like(like, escape="\\"))
                              .exists()))
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=Family.id,
                    sorts={"code": [Family.code], "created": [Family.created_at]})


def _barcode_or_family(stmt: Any, q: str | None) -> Any:
    """``q`` in the remains' barcode or the family code (case-insensitive), on a statement joining both."""
    if not q:
        return stmt
    like = _like(q)
    return stmt.where(or_(func.lower(Remains.barcode).like(like, escape="\\"),
                          func.lower(Family.code).like(like, escape="\\")))


def filter_identifications(stmt: Any, *, states: Sequence[IdentificationState] | None = None,
                           operation: Operation | None = None, q: str | None = None) -> Any:
    """The identification filters of the page, the API and the exports (one home); ``states`` None: any
    state. The statement joins Remains and Family (through MissingPerson) to Identification."""
    if states is not None:
        stmt = stmt.where(Identification.state.in_(list(states)))
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    return _barcode_or_family(stmt, q)


def filter_audit(stmt: Any, *, action: str | None = None, username: str | None = None,
                 object_type: str | None = None, object_id: str | None = None) -> Any:
    """The audit filters of the page, the API and the exports (one home)."""
    from opendvi.store.models import AuditEntry

    for column, value in ((AuditEntry.action, action), (AuditEntry.username, username),
                          (AuditEntry.object_type, object_type), (AuditEntry.object_id, object_id)):
        if value:
            stmt = stmt.where(column == value)
    return stmt


def filter_candidates(stmt: Any, *, operation: Operation | None = None, q: str | None = None,
                      min_log10_lr: float | None = None, max_log10_lr: float | None = None,
                      unreviewed: bool = False) -> Any:
    """The candidate filters of the lists, the API and the exports (one home): a statement that joins
    Remains and Family (through MissingPerson) to Candidate."""
    if operation is not None:
        stmt = stmt.where(Remains.operation_id == operation.id)
    stmt = _barcode_or_family(stmt, q)
    if min_log10_lr is not None:
        stmt = stmt.where(Candidate.log10_lr >= min_log10_lr)
    if max_log10_lr is not None:
        stmt = stmt.where(Candidate.log10_lr <= max_log10_lr)
    if unreviewed:
        stmt = stmt.where(~select(Identification.id).where(Identification.remains_id == Candidate.remains_id,
                                                           Identification.state.in_(ACTIVE_STATES)).exists())
    return stmt


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
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=Candidate.id,
                    sorts={"log10_lr": [Candidate.log10_lr], "posterior": [Candidate.posterior],
                           "remains": [Remains.barcode, Candidate.rank], "family": [Family.code]})


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


def page_audit(session: Session, *, action: str | None = None, username: str | None = None,
               object_type: str | None = None, object_id: str | None = None, page: int = 1, per_page: int = 100,
               sort: str = "-seq") -> Page:
    """Audit entries, paged (newest first by default)."""
    from opendvi.store.models import AuditEntry

    stmt = filter_audit(select(AuditEntry), action=action, username=username, object_type=object_type,
                        object_id=object_id)
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=AuditEntry.id,
                    sorts={"seq": [AuditEntry.seq]})


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
        raise NotFoundError(_("no missing person with code %(code)s", code=repr(code)))
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
        raise NotFoundError(_("no family with code %(code)s", code=repr(code)))
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


def build_case(session: Session, *, operation: Operation,
               frequency_database: FrequencyDatabase | None = None) -> StoredCase:
    """Every remains of the database (current profiles, all operations) against every
    missing person of the database, at the markers of ``frequency_database`` (default: the
    operation's); typings at other markers are left out. A few queries, no query per row."""
    fdb = frequency_database or operation.frequency_database
    if fdb is None:
        raise ConflictError(f"operation {operation.code} has no markers yet: import a case first")
    names = {m["name"] for m in fdb.markers}
    cur = (select(Profile.remains_id.label("rid"), func.max(Profile.version).label("v"))
           .where(Profile.remains_id.is_not(None)).group_by(Profile.remains_id).subquery())
    rem_rows: list[dict[str, Any]] = []
    rem_ids: dict[str, tuple[int, int]] = {}
    for rid, barcode, sex, pid, genotypes, dropout in session.execute(
        select(Remains.id, Remains.barcode, Remains.sex, Profile.id, Profile.genotypes, Profile.dropout)
        .join(cur, cur.c.rid == Remains.id)
        .join(Profile, and_(Profile.remains_id == Remains.id, Profile.version == cur.c.v))
        .order_by(Remains.barcode)
    ):
        gts = {m: g for m, g in genotypes.items() if m in names}
        if not gts:
            continue
        rem_rows.append({"id": barcode, "sex": sex, "genotypes": gts, "dropout": dropout})
        rem_ids[barcode] = (rid, pid)
    dcur = (select(Profile.donor_id.label("did"), func.max(Profile.version).label("v"))
            .where(Profile.donor_id.is_not(None)).group_by(Profile.donor_id).subquery())
    donor_profiles = {
        member_id: (genotypes, dropout)
        for member_id, genotypes, dropout in session.execute(
            select(Donor.member_id, Profile.genotypes, Profile.dropout)
            .join(dcur, dcur.c.did == Donor.id)
            .join(Profile, and_(Profile.donor_id == Donor.id, Profile.version == dcur.c.v))
            .where(Donor.profile_usable)  # consent withdrawn: the profile is not used
        )
    }
    mps = {member_id: (mp_id, code) for member_id, mp_id, code in
           session.execute(select(MissingPerson.member_id, MissingPerson.id, MissingPerson.code))}
    fam_rows: list[dict[str, Any]] = []
    missing: dict[str, int] = {}
    for fam in session.execute(select(Family).options(selectinload(Family.members)).order_by(Family.code)).scalars():
        members = []
        for m in fam.members:
            row: dict[str, Any] = {"id": m.code, "father": m.father, "mother": m.mother, "sex": m.sex}
            if m.id in mps:
                row["missing"] = True
                missing[m.code] = mps[m.id][0]
            if m.id in donor_profiles:
                gts, dropout = donor_profiles[m.id]
                row["genotypes"] = {k: g for k, g in gts.items() if k in names}
                if dropout:
                    row["dropout"] = dropout
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
# matching runs (each one a job: docs/decisions/0006-matching-jobs.md) and candidates
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
    #: log10 GLR of the call in the best joint assignment (None: not a call, or not computed)
    log10_glr: float | None = None
    glr_bound: bool | None = None


#: candidates per INSERT statement (Core ``insert()`` with a list of dicts)
CANDIDATE_CHUNK = 2000


def enqueue_run(
    session: Session, *, operation: Operation, parameters: dict[str, Any], software_version: str, engine: str,
    by: User | None,
) -> MatchingRun:
    """A queued matching run of every remains against every missing person, with the operation's
    frequency database; a worker executes it (``opendvi.service.worker``)."""
    fdb = operation.frequency_database
    if fdb is None:
        raise ConflictError(f"operation {operation.code} has no markers yet: import a case first")
    run = MatchingRun(
        operation_id=operation.id, software_version=software_version, engine=engine,
        frequency_database_id=fdb.id, frequency_database_sha256=fdb.sha256,
        mutation_models={m["name"]: m.get("mutation") for m in fdb.markers}, parameters=parameters,
        n_remains=0, n_missing=0, started_at=None, queued_at=utcnow(), status=RunStatus.queued.value,
        progress=0.0, phase="queued", attempts=0, cancel_requested=False, user_id=by.id if by else None,
    )
    session.add(run)
    session.flush()
    audit.append(session, action="matching.queue", username=by.username if by else None,
                 object_type="matching_run", object_id=run.id,
                 details={"operation": operation.code, "parameters": parameters,
                          "frequency_database_sha256": fdb.sha256})
    return run


def claim_run(session: Session, *, worker: str, lease: timedelta) -> MatchingRun | None:
    """Take the oldest queued run for ``worker``; None when there is none. The caller has begun a
    write transaction (:func:`opendvi.store.db.begin_write`) and commits at once. PostgreSQL: the
    row is taken ``FOR UPDATE SKIP LOCKED`` (workers never wait for each other nor take the same
    run); SQLite: the write transaction is ``BEGIN IMMEDIATE``, one writer at a time. On both the
    ``UPDATE ... WHERE status = 'queued'`` takes it only if it is still queued."""
    stmt = select(MatchingRun.id).where(MatchingRun.status == RunStatus.queued.value).order_by(MatchingRun.id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    run_id = session.scalar(stmt.limit(1))
    if run_id is None:
        return None
    now = utcnow()
    result = session.execute(
        update(MatchingRun)
        .where(MatchingRun.id == run_id, MatchingRun.status == RunStatus.queued.value)
        .values(status=RunStatus.running.value, worker=worker, started_at=now, heartbeat_at=now,
                lease_expires_at=now + lease, attempts=MatchingRun.attempts + 1, phase="loading", progress=0.0,
                error=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    # a run taken again after a lost worker starts from nothing
    session.execute(delete(Candidate).where(Candidate.run_id == run_id))
    run = session.get(MatchingRun, run_id, populate_existing=True)
    return run


def touch_run(
    session: Session, *, run_id: int, worker: str, lease: timedelta, progress: float | None = None,
    phase: str | None = None,
) -> tuple[bool, bool]:
    """Heartbeat (and progress) of a running run held by ``worker``: ``(still held, cancel requested)``.
    One short UPDATE; a run no longer held (its lease expired and another worker took it, or it
    ended) is not touched."""
    now = utcnow()
    values: dict[str, Any] = {"heartbeat_at": now, "lease_expires_at": now + lease}
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    if phase is not None:
        values["phase"] = phase[:64]
    result = session.execute(
        update(MatchingRun)
        .where(MatchingRun.id == run_id, MatchingRun.worker == worker,
               MatchingRun.status == RunStatus.running.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False, False
    cancel = session.scalar(select(MatchingRun.cancel_requested).where(MatchingRun.id == run_id))
    return True, bool(cancel)


def insert_candidates(session: Session, *, run_id: int, stored: StoredCase, candidates: Sequence[CandidateRow],
                      chunk: int = CANDIDATE_CHUNK) -> int:
    """Bulk-insert candidates (Core ``insert()`` of lists of dicts, ``chunk`` rows per statement)."""
    from sqlalchemy import insert

    n = 0
    for i in range(0, len(candidates), chunk):
        rows = []
        for c in candidates[i:i + chunk]:
            rid, pid = stored.remains[c.remains]
            rows.append({"run_id": run_id, "remains_id": rid, "remains_profile_id": pid,
                         "missing_person_id": stored.missing[c.missing], "log10_lr": c.log10_lr,
                         "posterior": c.posterior, "exclusions": c.exclusions, "n_markers": c.n_markers,
                         "rank": c.rank, "per_marker": c.per_marker, "log10_glr": c.log10_glr,
                         "glr_bound": c.glr_bound})
        session.execute(insert(Candidate), rows)
        n += len(rows)
    return n


def end_run(
    session: Session, *, run_id: int, worker: str | None, status: RunStatus, error: str | None = None,
    n_remains: int | None = None, n_missing: int | None = None, timings: dict[str, Any] | None = None,
    counts: dict[str, Any] | None = None, skipped: list[Any] | None = None, parameters: dict[str, Any] | None = None,
) -> bool:
    """End a running run held by ``worker`` (None: any holder): finished, failed or cancelled, with its
    audit entry. A run that did not finish keeps no candidates. False when the run was not held."""
    conds = [MatchingRun.id == run_id, MatchingRun.status == RunStatus.running.value]
    if worker is not None:
        conds.append(MatchingRun.worker == worker)
    values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "lease_expires_at": None,
                              "error": error, "phase": status.value}
    if status == RunStatus.finished:
        values["progress"] = 1.0
    for key, val in (("n_remains", n_remains), ("n_missing", n_missing), ("timings", timings), ("counts", counts),
                     ("skipped", skipped), ("parameters", parameters)):
        if val is not None:
            values[key] = val
    result = session.execute(update(MatchingRun).where(*conds).values(**values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    if status != RunStatus.finished:
        session.execute(delete(Candidate).where(Candidate.run_id == run_id))
    run = session.get(MatchingRun, run_id, populate_existing=True)
    assert run is not None
    op = session.get(Operation, run.operation_id)
    user = session.get(User, run.user_id) if run.user_id else None
    details: dict[str, Any] = {"operation": op.code if op else None, "status": status.value}
    if status == RunStatus.finished:
        n = session.scalar(select(func.count(Candidate.id)).where(Candidate.run_id == run_id)) or 0
        details.update({"candidates": n, "frequency_database_sha256": run.frequency_database_sha256,
                        "parameters": run.parameters, "software_version": run.software_version,
                        "engine": run.engine, "families_skipped": [s["family"] for s in (skipped or [])]})
    else:
        details["error"] = error
    action = {RunStatus.finished: "matching.run", RunStatus.failed: "matching.failed",
              RunStatus.cancelled: "matching.cancel"}[status]
    audit.append(session, action=action, username=user.username if user else None, object_type="matching_run",
                 object_id=run_id, details=details)
    return True


def cancel_run(session: Session, *, run_id: int, by: User) -> MatchingRun:
    """Cancel a queued run at once; ask the worker of a running one to stop (it ends it as cancelled).
    Refused (409) for a run that ended."""
    run = get_run(session, run_id=run_id)
    if run.status == RunStatus.queued.value:
        result = session.execute(
            update(MatchingRun).where(MatchingRun.id == run_id, MatchingRun.status == RunStatus.queued.value)
            .values(status=RunStatus.cancelled.value, finished_at=utcnow(), phase="cancelled", cancel_requested=True)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            audit.append(session, action="matching.cancel", username=by.username, object_type="matching_run",
                         object_id=run_id, details={"status": "cancelled", "while": "queued"})
            return get_run(session, run_id=run_id, fresh=True)
        run = get_run(session, run_id=run_id, fresh=True)
    if run.status == RunStatus.running.value:
        session.execute(update(MatchingRun).where(MatchingRun.id == run_id,
                                                  MatchingRun.status == RunStatus.running.value)
                        .values(cancel_requested=True).execution_options(synchronize_session=False))
        audit.append(session, action="matching.cancel_requested", username=by.username,
                     object_type="matching_run", object_id=run_id, details={"while": "running"})
        return get_run(session, run_id=run_id, fresh=True)
    raise ConflictError(f"matching run {run_id} is {run.status}: only a queued or running run can be cancelled")


def recover_runs(session: Session, *, max_attempts: int, now: datetime | None = None) -> list[tuple[int, str]]:
    """Runs whose worker stopped sending heartbeats (crash, kill, restart): each is queued again
    (its candidates deleted; it starts over) while it has had fewer than ``max_attempts`` tries, else
    failed with the reason. Never left running. Returns ``(run id, new status)``."""
    now = now or utcnow()
    stale = list(session.execute(
        select(MatchingRun).where(MatchingRun.status == RunStatus.running.value,
                                  MatchingRun.lease_expires_at < now)
    ).scalars())
    out: list[tuple[int, str]] = []
    for run in stale:
        beat = _aware(run.heartbeat_at).isoformat() if run.heartbeat_at else "never"
        why = f"worker {run.worker} stopped (last heartbeat {beat}, lease expired)"
        if run.attempts >= max_attempts:
            if end_run(session, run_id=run.id, worker=run.worker, status=RunStatus.failed,
                       error=f"{why}; {run.attempts} attempts, no more tries"):
                out.append((run.id, RunStatus.failed.value))
            continue
        result = session.execute(
            update(MatchingRun).where(MatchingRun.id == run.id, MatchingRun.status == RunStatus.running.value,
                                      MatchingRun.worker == run.worker)
            .values(status=RunStatus.queued.value, worker=None, lease_expires_at=None, progress=0.0,
                    phase="queued again", error=None).execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            session.execute(delete(Candidate).where(Candidate.run_id == run.id))
            audit.append(session, action="matching.requeue", username=None, object_type="matching_run",
                         object_id=run.id, details={"reason": why, "attempts": run.attempts})
            out.append((run.id, RunStatus.queued.value))
    return out


def runs_of(session: Session, *, operation: Operation, limit: int = 50) -> list[MatchingRun]:
    """The operation's runs, newest first."""
    return list(session.execute(select(MatchingRun).where(MatchingRun.operation_id == operation.id)
                                .order_by(MatchingRun.id.desc()).limit(limit)).scalars())


def get_run(session: Session, *, run_id: int, fresh: bool = False) -> MatchingRun:
    run = session.get(MatchingRun, run_id, populate_existing=fresh)
    if run is None:
        raise NotFoundError(_("no matching run %(id)s", id=run_id))
    return run


def current_run_id(session: Session) -> int | None:
    """The latest finished run: every run matches every remains against every missing person."""
    return session.scalar(select(func.max(MatchingRun.id)).where(MatchingRun.status == RunStatus.finished.value))


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


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


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
    "newer_frequencies": "the operation's allele frequencies changed after its run",
    "missing_person_identified": "the missing person already has another active identification",
    "pedigree_changed": "the family's pedigree or its references changed after the run (a relative added, a "
                        "sample linked, a consent withdrawn: opendvi.store.liaison)",
    "below_policy": "its LR or posterior is below the decision policy (DecisionPolicy)",
}


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def evidence_problems(
    session: Session, *, candidate: Candidate, exclude_identification: int | None = None,
    policy: DecisionPolicy | None = None,
) -> list[tuple[str, str]]:
    """Why the candidate's evidence no longer holds: ``(rule, reason)`` pairs of
    :data:`EVIDENCE_RULES`. The candidate records its run and the remains' profile
    version; the references' profiles and the frequencies are compared with the
    run's start (``started_at``) and frequency database. With ``policy``, also
    whether its LR and posterior meet it."""
    problems: list[tuple[str, str]] = list(policy.problems(candidate)) if policy is not None else []
    run = candidate.run
    # a later finished run that matched the remains (every run matches every remains of the database)
    later = session.scalar(
        select(func.max(MatchingRun.id)).where(
            MatchingRun.id > run.id, MatchingRun.status == RunStatus.finished.value,
            or_(MatchingRun.operation_id == run.operation_id,
                select(Candidate.id).where(Candidate.run_id == MatchingRun.id,
                                           Candidate.remains_id == candidate.remains_id).exists()),
        )
    )
    if later is not None:
        problems.append(("superseded_run", f"its matching run #{run.id} was superseded by run #{later}: "
                                           "use that run's candidates"))
    remains = candidate.remains
    current = current_profile(session, remains=remains)
    used = session.get(Profile, candidate.remains_profile_id)
    if current is not None and current.id != candidate.remains_profile_id:
        problems.append(("newer_profile", f"remains {remains.barcode} was re-typed (profile version "
                                          f"{current.version}; the run used version {used.version if used else '?'})"
                                          ": run matching again"))
    started = _aware(run.started_at or run.queued_at or utcnow())
    donors = donors_of(session, family=candidate.missing_person.family)
    for d in donors:
        newer = [pr for pr in profiles_of(session, donor=d) if _aware(pr.created_at) > started]
        if newer:
            problems.append(("newer_profile", f"reference {d.barcode} of family {candidate.missing_person.family.code} "
                                              f"has profile version {max(pr.version for pr in newer)} typed after run "
                                              f"#{run.id} started: run matching again"))
    from opendvi.store.liaison import family_changes_since  # it imports this module

    for what in family_changes_since(session, family=candidate.missing_person.family, since=started):
        problems.append(("pedigree_changed", f"family {candidate.missing_person.family.code} changed after run "
                                             f"#{run.id} started ({what}): run matching again"))
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
                                   override_reason=override_reason, exclude_identification=ident.id,
                                   policy=policy)
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

