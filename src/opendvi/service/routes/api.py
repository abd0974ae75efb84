"""The JSON API (``/api``): every endpoint checks its permission (``policy.py``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opendvi.service import actions
from opendvi.service import views as v
from opendvi.service.deps import DB, SESSION_COOKIE, CurrentPrincipal, Principal, require
from opendvi.service.errors import APIError
from opendvi.service.security import hash_password, verify_password
from opendvi.service.settings import password_problem
from opendvi.store import audit
from opendvi.store import repositories as repo
from opendvi.store.models import IdentificationState, Role

router = APIRouter(prefix="/api")

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/-]+$")]


def P(permission: str) -> Any:
    return Depends(require(permission))


# ---------------------------------------------------------------------------
# schemas
# ---------------------------------------------------------------------------


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserCreate(BaseModel):
    username: Code
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    full_name: str = Field(default="", max_length=200)


class UserUpdate(BaseModel):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class OperationCreate(BaseModel):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="exchange", pattern="^(exchange|recovery)$")
    received_on: date | None = None
    expected_count: int | None = Field(default=None, ge=0, le=10_000_000)


class RemainsUpdate(BaseModel):
    bag: str | None = Field(default=None, max_length=64)
    sample_type: str | None = Field(default=None, max_length=64)
    laboratory: str | None = Field(default=None, max_length=128)
    kit: str | None = Field(default=None, max_length=128)


class MatchingIn(BaseModel):
    top_k: int = Field(default=10, ge=1, le=1000)


class DetailsIn(BaseModel):
    full_name: str = Field(min_length=1, max_length=300)
    date_of_birth: date | None = None
    place_last_seen: str | None = Field(default=None, max_length=300)
    notes: str | None = Field(default=None, max_length=10_000)


class DonorUpdate(BaseModel):
    relationship: str | None = Field(default=None, max_length=64)
    consent: str | None = Field(default=None, pattern="^(identification|identification_and_database|withdrawn)$")
    consent_date: date | None = None
    full_name: str | None = Field(default=None, max_length=300)
    contact: str | None = Field(default=None, max_length=300)


class ProposeIn(BaseModel):
    candidate_id: int = Field(ge=1, le=2**62)
    note: str = Field(default="", max_length=10_000)


class DecisionIn(BaseModel):
    reason: str = Field(default="", max_length=10_000)
    version: int | None = Field(default=None, ge=1, le=2**62)


Id = Annotated[int, Field(ge=1, le=2**62)]


# ---------------------------------------------------------------------------
# health and auth
# ---------------------------------------------------------------------------


@router.get("/health", tags=["service"])
def health() -> dict[str, Any]:
    """Liveness: no authentication, no data."""
    from opendvi import __version__

    return {"status": "ok", "version": __version__}


@router.post("/auth/login", tags=["auth"])
def login(body: LoginIn, request: Request, response: Response, db: DB) -> dict[str, Any]:
    """Sign in: sets the session cookie and returns a bearer token and the CSRF token."""
    settings = request.app.state.settings
    try:
        user = repo.get_user(db, username=body.username)
    except Exception:
        user = None
    if not verify_password(user.password_hash if user else None, body.password) or user is None or not user.active:
        audit.append(db, action="auth.login_failed", username=None, object_type="user",
                     object_id=body.username[:64])
        actions.commit(db)
        raise APIError(401, "wrong username or password", code="unauthenticated")
    token, row = repo.create_auth_session(db, user=user, ttl=timedelta(hours=settings.session_hours))
    audit.append(db, action="auth.login", username=user.username, object_type="user", object_id=user.username)
    actions.commit(db)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies,
                        max_age=int(settings.session_hours * 3600), path="/")
    return {"token": token, "csrf_token": row.csrf_token, "user": v.user_public(user)}


@router.post("/auth/logout", tags=["auth"])
def logout(principal: CurrentPrincipal, response: Response, db: DB) -> dict[str, Any]:
    repo.delete_auth_session(db, token=principal.token)
    audit.append(db, action="auth.logout", username=principal.username, object_type="user",
                 object_id=principal.username)
    actions.commit(db)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me", tags=["auth"])
def me(principal: CurrentPrincipal) -> dict[str, Any]:
    return {**v.user_public(principal.user), "csrf_token": principal.csrf}


# ---------------------------------------------------------------------------
# users
# ---------------------------------------------------------------------------


@router.get("/users", tags=["users"])
def list_users(db: DB, principal: Principal = P("users.manage")) -> list[dict[str, Any]]:
    return [v.user_public(u) for u in repo.list_users(db)]


def _check_password(password: str, request: Request) -> None:
    problem = password_problem(password)
    if problem and not request.app.state.settings.development:
        raise APIError(422, f"password refused: {problem}", code="invalid")


@router.post("/users", tags=["users"], status_code=201)
def create_user(body: UserCreate, request: Request, db: DB, principal: Principal = P("users.manage")) -> dict[str, Any]:
    _check_password(body.password, request)
    user = repo.create_user(db, username=body.username, password_hash=hash_password(body.password), role=body.role,
                            full_name=body.full_name, by=principal.username)
    actions.commit(db)
    return v.user_public(user)


@router.patch("/users/{username}", tags=["users"])
def update_user(username: Code, body: UserUpdate, request: Request, db: DB,
                principal: Principal = P("users.manage")) -> dict[str, Any]:
    if body.password is not None:
        _check_password(body.password, request)
    if username == principal.username and (body.active is False or (body.role and body.role != Role.administrator)):
        raise APIError(409, "you cannot deactivate or demote yourself", code="conflict")
    user = repo.update_user(db, username=username, role=body.role, active=body.active,
                            password_hash=hash_password(body.password) if body.password else None,
                            by=principal.username)
    actions.commit(db)
    return v.user_public(user)


# ---------------------------------------------------------------------------
# operations, imports, matching
# ---------------------------------------------------------------------------


@router.get("/operations", tags=["operations"])
def list_operations(db: DB, principal: Principal = P("operations.read")) -> list[dict[str, Any]]:
    return [v.operation_public(db, op) for op in repo.list_operations(db)]


@router.post("/operations", tags=["operations"], status_code=201)
def create_operation(body: OperationCreate, db: DB, principal: Principal = P("operations.create")) -> dict[str, Any]:
    op = repo.create_operation(db, code=body.code, name=body.name, kind=body.kind, received_on=body.received_on,
                               expected_count=body.expected_count, by=principal.username)
    actions.commit(db)
    return v.operation_public(db, op)


@router.get("/operations/{code}", tags=["operations"])
def get_operation(code: Code, db: DB, principal: Principal = P("operations.read")) -> dict[str, Any]:
    """The operation with its dashboard counts and latest matching run."""
    return v.operation_public(db, repo.get_operation(db, code=code), counts=True)


@router.post("/operations/{code}/imports", tags=["imports"], status_code=201)
def import_case(
    code: Code,
    db: DB,
    document: dict[str, Any] = Body(..., description="A dvi-case/1 document"),
    filename: str = Query("upload.json", max_length=255),
    principal: Principal = P("imports.create"),
) -> dict[str, Any]:
    """Import a ``dvi-case/1`` case into the operation: all or nothing; a refusal lists every problem."""
    summary = actions.import_case(db, principal=principal, operation_code=code, data=document, filename=filename)
    return summary.as_dict()


@router.post("/operations/{code}/imports/file", tags=["imports"], status_code=201)
async def import_file(
    code: Code,
    db: DB,
    file: UploadFile = File(..., description="dvi-case/1, Familias .fam, GeneMapper, CODIS CMF, CSV or Excel"),
    laboratory: str | None = Form(None, max_length=128),
    kit: str | None = Form(None, max_length=128),
    principal: Principal = P("imports.create"),
) -> dict[str, Any]:
    """Import a file of any accepted format into the operation: all or nothing.
    ``laboratory`` and ``kit`` are recorded on the remains and profiles it brings."""
    raw = await file.read(actions.MAX_IMPORT_BYTES + 1)
    filename = (file.filename or "upload")[:255]
    summary = await run_in_threadpool(
        lambda: actions.import_file(db, principal=principal, operation_code=code, raw=raw, filename=filename,
                                    laboratory=laboratory or None, kit=kit or None)
    )
    return summary.as_dict()


@router.post("/operations/{code}/imports/families", tags=["imports"], status_code=201)
async def import_families(
    code: Code,
    db: DB,
    families: UploadFile = File(..., description="families template, CSV or Excel (family, id, father, mother, "
                                                 "sex, missing, sample)"),
    profiles: UploadFile | None = File(None, description="the references' profiles: CSV, Excel, GeneMapper or "
                                                         "CODIS CMF, matched by sample barcode"),
    principal: Principal = P("families.import"),
) -> dict[str, Any]:
    """Register families (pedigrees, missing persons, reference donors) from the families template, with
    the reference profiles matched by sample barcode; markers are the operation's. All or nothing."""
    fam_raw = await families.read(actions.MAX_IMPORT_BYTES + 1)
    prof_raw = await profiles.read(actions.MAX_IMPORT_BYTES + 1) if profiles is not None else None
    summary = await run_in_threadpool(
        lambda: actions.import_families(
            db, principal=principal, operation_code=code, families_raw=fam_raw,
            families_name=(families.filename or "families.csv")[:255], profiles_raw=prof_raw,
            profiles_name=((profiles.filename or "profiles.csv")[:255]) if profiles is not None else None)
    )
    return summary.as_dict()


@router.post("/operations/{code}/imports/frequencies", tags=["imports"], status_code=201)
async def import_frequencies(
    code: Code,
    db: DB,
    file: UploadFile = File(..., description="Familias frequency list, ladder CSV or long CSV"),
    population: str | None = Form(None, max_length=128, description="the population of a long CSV"),
    principal: Principal = P("frequencies.import"),
) -> dict[str, Any]:
    """Set the operation's allele frequencies from a file: its markers keep their mutation models and take
    the new frequencies (the file must cover them all); an operation without markers takes the file's.
    All or nothing; later matching runs record the new database and its hash."""
    raw = await file.read(actions.MAX_IMPORT_BYTES + 1)
    filename = (file.filename or "frequencies.txt")[:255]
    return await run_in_threadpool(
        lambda: actions.import_frequencies(db, principal=principal, operation_code=code, raw=raw,
                                           filename=filename, population=population or None)
    )


@router.post("/operations/{code}/matching-runs", tags=["matching"], status_code=201)
def run_matching(code: Code, db: DB, body: MatchingIn | None = None,
                 principal: Principal = P("matching.run")) -> dict[str, Any]:
    """Match the operation's remains against every family (exact pairwise LRs and joint posteriors)."""
    run = actions.run_matching(db, principal=principal, operation_code=code, top_k=(body or MatchingIn()).top_k)
    return v.run_public(run)


@router.get("/matching-runs/{run_id}", tags=["matching"])
def get_run(run_id: Id, db: DB, principal: Principal = P("candidates.read")) -> dict[str, Any]:
    return v.run_public(repo.get_run(db, run_id=run_id))


# ---------------------------------------------------------------------------
# remains and candidates
# ---------------------------------------------------------------------------


@router.get("/remains", tags=["remains"])
def list_remains(
    db: DB,
    operation: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
    principal: Principal = P("remains.read"),
) -> list[dict[str, Any]]:
    op = repo.get_operation(db, code=operation) if operation else None
    return [v.remains_public(db, r) for r in repo.list_remains(db, operation=op, q=q, limit=limit, offset=offset)]


@router.get("/remains/{barcode}", tags=["remains"])
def get_remains(barcode: Code, db: DB, principal: Principal = P("remains.read")) -> dict[str, Any]:
    """One remains with every version of its profile."""
    return v.remains_public(db, repo.get_remains(db, barcode=barcode), profiles=True)


@router.patch("/remains/{barcode}", tags=["remains"])
def update_remains(
    barcode: Code, body: RemainsUpdate, db: DB, principal: Principal = P("remains.write")
) -> dict[str, Any]:
    """Bag, sample type, laboratory and kit of a remains."""
    r = repo.update_remains(db, barcode=barcode, bag=body.bag, sample_type=body.sample_type,
                            laboratory=body.laboratory, kit=body.kit, by=principal.username)
    actions.commit(db)
    return v.remains_public(db, r)


@router.get("/remains/{barcode}/candidates", tags=["remains"])
def remains_candidates(barcode: Code, db: DB, principal: Principal = P("candidates.read")) -> list[dict[str, Any]]:
    """Candidates of the latest run that included the remains: LR, posterior, exclusions."""
    r = repo.get_remains(db, barcode=barcode)
    return [v.candidate_public(c) for c in repo.candidates_for_remains(db, remains=r)]


@router.get("/candidates/{candidate_id}", tags=["remains"])
def get_candidate(candidate_id: Id, db: DB, principal: Principal = P("candidates.read")) -> dict[str, Any]:
    """One pairing with its per-marker LR table."""
    return v.candidate_public(repo.get_candidate(db, candidate_id=candidate_id), per_marker=True)


# ---------------------------------------------------------------------------
# families and personal data
# ---------------------------------------------------------------------------


@router.get("/families", tags=["families"])
def list_families(db: DB, principal: Principal = P("families.read")) -> list[dict[str, Any]]:
    return [v.family_public(db, f, principal) for f in repo.list_families(db)]


@router.get("/families/{code}", tags=["families"])
def get_family(code: Code, db: DB, principal: Principal = P("families.read")) -> dict[str, Any]:
    return v.family_public(db, repo.get_family(db, code=code), principal)


@router.put("/missing-persons/{code}/details", tags=["families"])
def set_details(code: Code, body: DetailsIn, db: DB, principal: Principal = P("persons.write")) -> dict[str, Any]:
    """Personal data of a missing person (intake officer only)."""
    mp = repo.get_missing_person(db, code=code)
    det = repo.set_missing_person_details(db, missing_person=mp, full_name=body.full_name,
                                          date_of_birth=body.date_of_birth, place_last_seen=body.place_last_seen,
                                          notes=body.notes, by=principal.username)
    actions.commit(db)
    return {"missing_person": mp.code, "full_name": det.full_name, "date_of_birth": v.iso(det.date_of_birth),
            "place_last_seen": det.place_last_seen, "notes": det.notes}


@router.patch("/donors/{barcode}", tags=["families"])
def update_donor(barcode: Code, body: DonorUpdate, db: DB, principal: Principal = P("persons.write")) -> dict[str, Any]:
    """Relationship, consent and personal data of a reference donor (intake officer only)."""
    d = repo.update_donor(db, barcode=barcode, relationship=body.relationship, consent=body.consent,
                          consent_date=body.consent_date, full_name=body.full_name, contact=body.contact,
                          by=principal.username)
    actions.commit(db)
    return {"barcode": d.barcode, "relationship": d.relationship_to_missing, "consent": d.consent,
            "consent_date": v.iso(d.consent_date)}


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


@router.get("/identifications", tags=["identifications"])
def list_identifications(
    db: DB,
    state: IdentificationState | None = None,
    operation: str | None = Query(None, max_length=64),
    principal: Principal = P("identifications.read"),
) -> list[dict[str, Any]]:
    """Identifications; the family liaison sees confirmed ones only (with names)."""
    states = [state] if state else None
    if principal.user.role == Role.family_liaison:
        if state not in (None, IdentificationState.confirmed):
            return []
        states = [IdentificationState.confirmed]
    op = repo.get_operation(db, code=operation) if operation else None
    return [v.identification_public(db, i, principal) for i in repo.list_identifications(db, states=states,
                                                                                          operation=op)]


@router.post("/identifications", tags=["identifications"], status_code=201)
def propose(body: ProposeIn, db: DB, principal: Principal = P("identifications.propose")) -> dict[str, Any]:
    """Propose a candidate pairing; 409 if the remains has an active identification."""
    ident = actions.propose(db, principal=principal, candidate_id=body.candidate_id, note=body.note)
    return v.identification_public(db, ident, principal)


def _visible(db: DB, ident_id: int, principal: Principal) -> Any:
    ident = repo.get_identification(db, identification_id=ident_id)
    if principal.user.role == Role.family_liaison and ident.state != IdentificationState.confirmed:
        raise APIError(404, f"no identification {ident_id}", code="not_found")
    return ident


@router.get("/identifications/{identification_id}", tags=["identifications"])
def get_identification(identification_id: Id, db: DB,
                       principal: Principal = P("identifications.read")) -> dict[str, Any]:
    return v.identification_public(db, _visible(db, identification_id, principal), principal)


@router.post("/identifications/{identification_id}/confirm", tags=["identifications"])
def confirm(identification_id: Id, db: DB, body: DecisionIn | None = None,
            principal: Principal = P("identifications.decide")) -> dict[str, Any]:
    """Confirm a proposal (a reviewer who did not propose it); 409 if someone decided first."""
    b = body or DecisionIn()
    ident = actions.decide(db, principal=principal, identification_id=identification_id, action="confirm",
                           reason=b.reason, expected_version=b.version)
    return v.identification_public(db, ident, principal)


@router.post("/identifications/{identification_id}/reject", tags=["identifications"])
def reject(identification_id: Id, body: DecisionIn, db: DB,
           principal: Principal = P("identifications.decide")) -> dict[str, Any]:
    """Reject a proposal, with a reason."""
    ident = actions.decide(db, principal=principal, identification_id=identification_id, action="reject",
                           reason=body.reason, expected_version=body.version)
    return v.identification_public(db, ident, principal)


@router.post("/identifications/{identification_id}/withdraw", tags=["identifications"])
def withdraw(identification_id: Id, body: DecisionIn, db: DB,
             principal: Principal = P("identifications.withdraw")) -> dict[str, Any]:
    """Withdraw a proposal or a confirmed identification, with a reason."""
    ident = actions.decide(db, principal=principal, identification_id=identification_id, action="withdraw",
                           reason=body.reason, expected_version=body.version)
    return v.identification_public(db, ident, principal)


# ---------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------


@router.get("/audit", tags=["audit"])
def list_audit(
    db: DB,
    limit: int = Query(200, ge=1, le=5000),
    object_type: str | None = Query(None, max_length=64),
    object_id: str | None = Query(None, max_length=128),
    principal: Principal = P("audit.read"),
) -> list[dict[str, Any]]:
    return [v.audit_public(e) for e in repo.audit_entries(db, limit=limit, object_type=object_type,
                                                          object_id=object_id)]


@router.get("/audit/verify", tags=["audit"])
def verify_audit(db: DB, principal: Principal = P("audit.verify")) -> dict[str, Any]:
    """Recompute the hash chain of the audit log."""
    return audit.verify_chain(db).as_dict()
