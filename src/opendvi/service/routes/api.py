"""The JSON API (``/api``): every endpoint checks its permission (``policy.py``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opendvi import i18n
from opendvi.i18n import gettext as _
from opendvi.service import actions, auth
from opendvi.service import views as v
from opendvi.service.deps import DB, SESSION_COOKIE, CurrentPrincipal, Principal, require
from opendvi.service.errors import APIError
from opendvi.service.security import MAX_PASSWORD_LENGTH, hash_password
from opendvi.store import audit
from opendvi.store import repositories as repo
from opendvi.store.db import begin_write
from opendvi.store.models import IdentificationState, Role

router = APIRouter(prefix="/api")

#: codes chosen in the service (usernames, operations): characters safe in a URL
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
#: identifiers that came with imported files (barcodes, family and member codes): any characters,
#: in a ``{x:path}`` route so that "/" works; clients percent-encode them
Ident = Annotated[str, Field(min_length=1, max_length=200)]


def P(permission: str) -> Any:
    return Depends(require(permission))


# ---------------------------------------------------------------------------
# schemas
# ---------------------------------------------------------------------------


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    totp: str | None = Field(default=None, max_length=16, description="the authenticator's code, when the "
                                                                        "account has a second factor")


class PasswordChangeIn(BaseModel):
    old_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class TotpCodeIn(BaseModel):
    code: str = Field(min_length=6, max_length=16)


class UserCreate(BaseModel):
    username: Code
    password: str = Field(min_length=1, max_length=1024)
    role: Role
    full_name: str = Field(default="", max_length=200)


class UserUpdate(BaseModel):
    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024,
                                 description="a one-time password: the user must change it at sign-in, and "
                                             "every session of the user ends")
    totp: bool | None = Field(default=None, description="false turns the user's second factor off (a lost "
                                                        "authenticator)")


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
    top_k: int = Field(default=10, ge=1, le=1000, description="candidates kept per remains, best first")
    lr_threshold: float = Field(default=1e4, gt=0, description="every pairing with LR at or above it is kept too")


def _paged(fn: Any, **kwargs: Any) -> Any:
    """A list query; a bad sort or filter is 422."""
    try:
        return fn(**kwargs)
    except ValueError as exc:
        raise APIError(422, str(exc), code="invalid") from None


def _page_out(request: Request, response: Response, pg: Any, items: list[Any]) -> list[Any]:
    """A page of a list: the rows in the body (a JSON array, as before paging), the total and the page in
    headers: ``X-Total-Count``, ``X-Page``, ``X-Per-Page``, ``X-Sort`` and ``Link`` (``rel="next"``,
    ``rel="prev"``, RFC 8288)."""
    pages = max(1, -(-pg.total // pg.per_page))
    response.headers["X-Total-Count"] = str(pg.total)
    response.headers["X-Page"] = str(pg.page)
    response.headers["X-Per-Page"] = str(pg.per_page)
    response.headers["X-Sort"] = pg.sort
    links = []
    for rel, page in (("prev", pg.page - 1), ("next", pg.page + 1)):
        if 1 <= page <= pages:
            links.append(f'<{request.url.include_query_params(page=page)}>; rel="{rel}"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return items


PageQ = Annotated[int, Query(ge=1, le=1_000_000, description="page, from 1")]
PerPageQ = Annotated[int, Query(ge=1, le=500, description="rows per page")]


class DetailsIn(BaseModel):
    full_name: str = Field(min_length=1, max_length=300)
    date_of_birth: date | None = None
    place_last_seen: str | None = Field(default=None, max_length=300)
    notes: str | None = Field(default=None, max_length=10_000)


class ProposeIn(BaseModel):
    candidate_id: int = Field(ge=1, le=2**62)
    note: str = Field(default="", max_length=10_000)
    override_reason: str = Field(default="", max_length=10_000,
                                 description="why an evidence rule the policy lets pass is broken (audited)")


class DecisionIn(BaseModel):
    reason: str = Field(default="", max_length=10_000)
    version: int | None = Field(default=None, ge=1, le=2**62)
    override_reason: str = Field(default="", max_length=10_000,
                                 description="confirm: why an evidence rule the policy lets pass is broken")


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
    """Sign in: sets the session cookie and returns a bearer token and the CSRF token.
    ``must_change_password`` true: the password is a one-time one, and every route but
    ``POST /api/auth/password`` answers 403 until it is changed. 401 ``totp_required``: send
    the authenticator's code as ``totp``. 429 after repeated failures (``Retry-After``)."""
    settings = request.app.state.settings
    signed = auth.sign_in(db, request, username=body.username, password=body.password, totp_code=body.totp)
    response.set_cookie(SESSION_COOKIE, signed.token, httponly=True, samesite="strict",
                        secure=settings.secure_cookies, max_age=int(settings.session_hours * 3600), path="/")
    if i18n.language_of(signed.user.language):  # the user's interface language, as the sign-in page does
        i18n.remember(response, signed.user.language, secure=settings.secure_cookies)
    return {"token": signed.token, "csrf_token": signed.session.csrf_token, "user": v.user_public(signed.user),
            "must_change_password": signed.must_change_password}


@router.post("/auth/password", tags=["auth"])
def change_password(body: PasswordChangeIn, request: Request, db: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """Change one's own password (NIST SP 800-63B policy: 12 characters or more, not a common
    password); the user's other sessions end, this one stays."""
    auth.change_password(db, request, principal, old_password=body.old_password, new_password=body.new_password)
    return {"ok": True, "must_change_password": False}


@router.post("/auth/totp/setup", tags=["auth"])
def totp_setup(body: PasswordIn, request: Request, db: DB,
               principal: Principal = P("account.totp")) -> dict[str, Any]:
    """Start the TOTP second factor (reviewers and administrators): a secret and its
    ``otpauth://`` URI for the authenticator app; enabled by ``POST /api/auth/totp/enable``."""
    return auth.totp_setup(db, request, principal, password=body.password)


@router.post("/auth/totp/enable", tags=["auth"])
def totp_enable(body: TotpCodeIn, db: DB, principal: Principal = P("account.totp")) -> dict[str, Any]:
    """Enable the second factor with a code of the secret set up; sign-ins then need ``totp``."""
    auth.totp_enable(db, principal, code=body.code)
    return {"ok": True, "totp": True}


@router.post("/auth/totp/disable", tags=["auth"])
def totp_disable(body: PasswordIn, request: Request, db: DB,
                 principal: Principal = P("account.totp")) -> dict[str, Any]:
    """Turn one's own second factor off (the password is asked again)."""
    auth.totp_disable(db, request, principal, password=body.password)
    return {"ok": True, "totp": False}


@router.post("/auth/logout", tags=["auth"])
def logout(principal: CurrentPrincipal, response: Response, db: DB) -> dict[str, Any]:
    begin_write(db)
    repo.delete_auth_session(db, token=principal.token)
    audit.append(db, action="auth.logout", username=principal.username, object_type="user",
                 object_id=principal.username)
    actions.commit(db)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/me", tags=["auth"])
def me(principal: CurrentPrincipal) -> dict[str, Any]:
    return {**v.user_public(principal.user), "csrf_token": principal.csrf}


class LanguageIn(BaseModel):
    language: str | None = Field(description='"uk" or "en"; null: the browser\'s Accept-Language decides',
                                 pattern="^(en|uk)$")


def _language(principal: Principal) -> dict[str, Any]:
    return {"language": i18n.language_of(principal.user.language), "locale": i18n.get_locale(),
            "supported": list(i18n.SUPPORTED)}


@router.get("/me/language", tags=["auth"])
def my_language(principal: CurrentPrincipal) -> dict[str, Any]:
    """The user's interface language (``language``: his choice or null) and this request's ``locale``."""
    return _language(principal)


@router.put("/me/language", tags=["auth"])
def set_my_language(body: LanguageIn, request: Request, response: Response, db: DB,
                    principal: CurrentPrincipal) -> dict[str, Any]:
    """Set (or, with null, clear) the user's interface language; kept from one sign-in to the next."""
    actions.set_language(db, principal=principal, language=body.language)
    i18n.remember(response, body.language, secure=request.app.state.settings.secure_cookies)
    return _language(principal)


# ---------------------------------------------------------------------------
# users
# ---------------------------------------------------------------------------


@router.get("/users", tags=["users"])
def list_users(db: DB, principal: Principal = P("users.manage")) -> list[dict[str, Any]]:
    return [v.user_public(u) for u in repo.list_users(db)]


@router.post("/users", tags=["users"], status_code=201)
def create_user(body: UserCreate, request: Request, db: DB, principal: Principal = P("users.manage")) -> dict[str, Any]:
    """A new user with a one-time password: he must change it at his first sign-in."""
    auth.check_new_password(body.password, body.username)
    password_hash = hash_password(body.password)
    begin_write(db)
    user = repo.create_user(db, username=body.username, password_hash=password_hash, role=body.role,
                            full_name=body.full_name, by=principal.username, must_change_password=True)
    actions.commit(db)
    return v.user_public(user)


@router.patch("/users/{username}", tags=["users"])
def update_user(username: Code, body: UserUpdate, request: Request, db: DB,
                principal: Principal = P("users.manage")) -> dict[str, Any]:
    """Role, activity, a password reset (a one-time password; every session of the user ends) or
    the second factor turned off."""
    if body.password is not None:
        auth.check_new_password(body.password, username)
    if body.totp is True:
        raise APIError(422, _("a second factor is turned on by its user (POST /api/auth/totp/setup)"), code="invalid")
    if username == principal.username and (body.active is False or (body.role and body.role != Role.administrator)):
        raise APIError(409, _("you cannot deactivate or demote yourself"), code="conflict")
    password_hash = hash_password(body.password) if body.password else None
    begin_write(db)
    user = repo.update_user(db, username=username, role=body.role, active=body.active,
                            password_hash=password_hash, by=principal.username)
    if body.totp is False and (user.totp_secret or user.totp_pending):
        repo.set_totp(db, user=user, secret=None, pending=None, by=principal.username, action="user.totp_disabled")
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
    begin_write(db)
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


@router.post("/operations/{code}/matching-runs", tags=["matching"], status_code=202)
def run_matching(code: Code, db: DB, body: MatchingIn | None = None,
                 principal: Principal = P("matching.run")) -> dict[str, Any]:
    """Queue a matching run: every remains of the database against every missing person (exact screening,
    top-K and every pairing above the LR threshold, joint posteriors per component), with the operation's
    frequencies. Answers at once; a worker executes it: poll ``GET /api/matching-runs/{run}``."""
    b = body or MatchingIn()
    run = actions.run_matching(db, principal=principal, operation_code=code, top_k=b.top_k,
                               lr_threshold=b.lr_threshold)
    return {"run": run.id, "status": run.status, "url": f"/api/matching-runs/{run.id}"}


@router.get("/operations/{code}/matching-runs", tags=["matching"])
def list_runs(code: Code, db: DB, limit: int = Query(50, ge=1, le=500),
              principal: Principal = P("operations.read")) -> list[dict[str, Any]]:
    """The operation's matching runs, newest first (status, progress, counts, provenance)."""
    return [v.run_public(r) for r in repo.runs_of(db, operation=repo.get_operation(db, code=code), limit=limit)]


@router.get("/matching-runs/{run_id}", tags=["matching"])
def get_run(run_id: Id, db: DB, principal: Principal = P("operations.read")) -> dict[str, Any]:
    """A run: status (queued, running, finished, failed, cancelled), progress 0..1, phase, timings, counts,
    the families skipped, the error of a failed run, and its provenance."""
    return v.run_public(repo.get_run(db, run_id=run_id))


@router.post("/matching-runs/{run_id}/cancel", tags=["matching"], status_code=202)
def cancel_run(run_id: Id, db: DB, principal: Principal = P("matching.run")) -> dict[str, Any]:
    """Cancel a queued run (at once) or a running one (its worker stops at the next step and keeps
    nothing); 409 for a run that ended."""
    return v.run_public(actions.cancel_run(db, principal=principal, run_id=run_id))


# ---------------------------------------------------------------------------
# remains and candidates
# ---------------------------------------------------------------------------


@router.get("/remains", tags=["remains"])
def list_remains(
    db: DB,
    request: Request,
    response: Response,
    page: PageQ = 1,
    per_page: PerPageQ = 50,
    sort: str = Query("barcode", max_length=32, description="barcode, operation, received, best_lr; - for "
                                                             "descending"),
    operation: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=64, description="in the barcode, bag or laboratory"),
    state: str | None = Query(None, pattern="^(none|proposed|confirmed)$",
                              description="identification: none (no active one), proposed, confirmed"),
    min_log10_lr: float | None = Query(None, description="best log10 LR of the current run at least"),
    max_log10_lr: float | None = Query(None, description="best log10 LR of the current run at most"),
    unreviewed_above: float | None = Query(None, description="a candidate with log10 LR at least this, and no "
                                                             "active identification"),
    principal: Principal = P("remains.read"),
) -> list[dict[str, Any]]:
    """Remains, paged (the total in ``X-Total-Count``; each row with the best LR of the current run)."""
    op = repo.get_operation(db, code=operation) if operation else None
    pg = _paged(repo.page_remains, session=db, operation=op, q=q, state=state, min_log10_lr=min_log10_lr,
                max_log10_lr=max_log10_lr, unreviewed_above=unreviewed_above, page=page, per_page=per_page,
                sort=sort)
    return _page_out(request, response, pg, v.remains_page_public(db, pg)["items"])


@router.get("/candidates", tags=["remains"])
def list_candidates(
    db: DB,
    request: Request,
    response: Response,
    page: PageQ = 1,
    per_page: PerPageQ = 50,
    sort: str = Query("-log10_lr", max_length=32, description="log10_lr, posterior, remains, family; - for "
                                                               "descending"),
    run: int | None = Query(None, ge=1, description="default: the latest finished run"),
    operation: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=64, description="in the barcode or the family code"),
    min_log10_lr: float | None = None,
    max_log10_lr: float | None = None,
    unreviewed: bool = Query(False, description="only remains without an active identification"),
    principal: Principal = P("candidates.read"),
) -> list[dict[str, Any]]:
    """Candidates of a run, paged (the total in ``X-Total-Count``)."""
    op = repo.get_operation(db, code=operation) if operation else None
    pg = _paged(repo.page_candidates, session=db, run_id=run, operation=op, q=q, min_log10_lr=min_log10_lr,
                max_log10_lr=max_log10_lr, unreviewed=unreviewed, page=page, per_page=per_page, sort=sort)
    return _page_out(request, response, pg, [v.candidate_public(c) for c in pg.items])


@router.get("/remains/{barcode:path}/candidates", tags=["remains"])
def remains_candidates(barcode: Ident, db: DB, principal: Principal = P("candidates.read")) -> list[dict[str, Any]]:
    """Candidates of the latest run that included the remains: LR, posterior, exclusions."""
    r = repo.get_remains(db, barcode=barcode)
    return [v.candidate_public(c) for c in repo.candidates_for_remains(db, remains=r)]


@router.get("/remains/{barcode:path}", tags=["remains"])
def get_remains(barcode: Ident, db: DB, principal: Principal = P("remains.read")) -> dict[str, Any]:
    """One remains with every version of its profile."""
    return v.remains_public(db, repo.get_remains(db, barcode=barcode), profiles=True)


@router.patch("/remains/{barcode:path}", tags=["remains"])
def update_remains(
    barcode: Ident, body: RemainsUpdate, db: DB, principal: Principal = P("remains.write")
) -> dict[str, Any]:
    """Bag, sample type, laboratory and kit of a remains."""
    begin_write(db)
    r = repo.update_remains(db, barcode=barcode, bag=body.bag, sample_type=body.sample_type,
                            laboratory=body.laboratory, kit=body.kit, by=principal.username)
    actions.commit(db)
    return v.remains_public(db, r)


@router.get("/candidates/{candidate_id}", tags=["remains"])
def get_candidate(candidate_id: Id, db: DB, principal: Principal = P("candidates.read")) -> dict[str, Any]:
    """One pairing with its per-marker LR table."""
    return v.candidate_public(repo.get_candidate(db, candidate_id=candidate_id), per_marker=True)


# ---------------------------------------------------------------------------
# families and personal data
# ---------------------------------------------------------------------------


@router.get("/families", tags=["families"])
def list_families(
    db: DB,
    request: Request,
    response: Response,
    page: PageQ = 1,
    per_page: PerPageQ = 50,
    sort: str = Query("code", max_length=32, description="code, created; - for descending"),
    q: str | None = Query(None, max_length=64, description="in the family code or a missing person's code"),
    principal: Principal = P("families.read"),
) -> list[dict[str, Any]]:
    """Families, paged (the total in ``X-Total-Count``)."""
    pg = _paged(repo.page_families, session=db, q=q, page=page, per_page=per_page, sort=sort)
    return _page_out(request, response, pg, v.families_public(db, pg.items, principal))


@router.get("/families/{code:path}", tags=["families"])
def get_family(code: Ident, db: DB, principal: Principal = P("families.read")) -> dict[str, Any]:
    return v.family_public(db, repo.get_family(db, code=code), principal)


@router.put("/missing-persons/{code:path}/details", tags=["families"])
def set_details(code: Ident, body: DetailsIn, db: DB, principal: Principal = P("persons.write")) -> dict[str, Any]:
    """Personal data of a missing person (intake officer only)."""
    begin_write(db)
    mp = repo.get_missing_person(db, code=code)
    det = repo.set_missing_person_details(db, missing_person=mp, full_name=body.full_name,
                                          date_of_birth=body.date_of_birth, place_last_seen=body.place_last_seen,
                                          notes=body.notes, by=principal.username)
    actions.commit(db)
    return {"missing_person": mp.code, "full_name": det.full_name, "date_of_birth": v.iso(det.date_of_birth),
            "place_last_seen": det.place_last_seen, "notes": det.notes}


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


@router.get("/identifications", tags=["identifications"])
def list_identifications(
    db: DB,
    request: Request,
    response: Response,
    page: PageQ = 1,
    per_page: PerPageQ = 50,
    sort: str = Query("-id", max_length=32, description="id, state, remains, family; - for descending"),
    state: IdentificationState | None = None,
    operation: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=64, description="in the barcode or the family code"),
    principal: Principal = P("identifications.read"),
) -> list[dict[str, Any]]:
    """Identifications, paged (the total in ``X-Total-Count``); the family liaison sees confirmed ones
    only (with names)."""
    states = [state] if state else None
    if principal.user.role == Role.family_liaison:
        states = [IdentificationState.confirmed] if state in (None, IdentificationState.confirmed) else []
    op = repo.get_operation(db, code=operation) if operation else None
    if states == []:
        return _page_out(request, response, repo.Page(items=[], total=0, page=page, per_page=per_page, sort=sort), [])
    pg = _paged(repo.page_identifications, session=db, states=states, operation=op, q=q, page=page,
                per_page=per_page, sort=sort)
    return _page_out(request, response, pg, [v.identification_public(db, i, principal) for i in pg.items])


@router.post("/identifications", tags=["identifications"], status_code=201)
def propose(body: ProposeIn, db: DB, request: Request,
            principal: Principal = P("identifications.propose")) -> dict[str, Any]:
    """Propose a candidate pairing; 409 if the remains has an active identification, or if the evidence
    no longer holds or misses the decision policy (LR, posterior) without an ``override_reason``."""
    ident = actions.propose(db, principal=principal, candidate_id=body.candidate_id, note=body.note,
                            override_reason=body.override_reason,
                            policy=request.app.state.settings.decision_policy)
    return v.identification_public(db, ident, principal)


def _visible(db: DB, ident_id: int, principal: Principal) -> Any:
    ident = repo.get_identification(db, identification_id=ident_id)
    if principal.user.role == Role.family_liaison and ident.state != IdentificationState.confirmed:
        raise APIError(404, _("no identification %(id)s", id=ident_id), code="not_found")
    return ident


@router.get("/identifications/{identification_id}", tags=["identifications"])
def get_identification(identification_id: Id, db: DB,
                       principal: Principal = P("identifications.read")) -> dict[str, Any]:
    return v.identification_public(db, _visible(db, identification_id, principal), principal)


@router.post("/identifications/{identification_id}/confirm", tags=["identifications"])
def confirm(identification_id: Id, db: DB, request: Request, body: DecisionIn | None = None,
            principal: Principal = P("identifications.decide")) -> dict[str, Any]:
    """Confirm a proposal (a reviewer who did not propose it); 409 if someone decided first, or on the
    same evidence and policy checks as a proposal."""
    b = body or DecisionIn()
    ident = actions.decide(db, principal=principal, identification_id=identification_id, action="confirm",
                           reason=b.reason, expected_version=b.version, override_reason=b.override_reason,
                           policy=request.app.state.settings.decision_policy)
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
    request: Request,
    response: Response,
    page: PageQ = 1,
    per_page: Annotated[int, Query(ge=1, le=5000)] = 100,
    limit: int | None = Query(None, ge=1, le=5000, description="the same as per_page (older clients)"),
    sort: str = Query("-seq", pattern="^-?seq$"),
    action: str | None = Query(None, max_length=64),
    username: str | None = Query(None, max_length=64),
    object_type: str | None = Query(None, max_length=64),
    object_id: str | None = Query(None, max_length=128),
    principal: Principal = P("audit.read"),
) -> list[dict[str, Any]]:
    """Audit entries, paged, newest first (the total in ``X-Total-Count``)."""
    pg = _paged(repo.page_audit, session=db, action=action, username=username, object_type=object_type,
                object_id=object_id, page=page, per_page=limit or per_page, sort=sort)
    return _page_out(request, response, pg, [v.audit_public(e) for e in pg.items])


@router.get("/audit/verify", tags=["audit"])
def verify_audit(db: DB, principal: Principal = P("audit.verify")) -> dict[str, Any]:
    """Recompute the hash chain of the audit log."""
    return audit.verify_chain(db).as_dict()
