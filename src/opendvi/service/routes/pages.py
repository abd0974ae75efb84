"""Server-rendered web pages (Jinja2; forms carry the session's CSRF token)."""

from __future__ import annotations

import hmac
import secrets
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opendvi.service import actions
from opendvi.service import views as v
from opendvi.service.deps import DB, SESSION_COOKIE, CurrentPrincipal, Principal, require
from opendvi.service.errors import APIError
from opendvi.service.pedigree_svg import Person, pedigree_svg
from opendvi.service.policy import ROLE_TITLES
from opendvi.service.security import generate_password, hash_password, verify_password
from opendvi.store import audit
from opendvi.store import repositories as repo
from opendvi.store.errors import ImportValidationError
from opendvi.store.models import IdentificationState, Role

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "opendvi_login_csrf"


def P(permission: str) -> Any:
    return Depends(require(permission))


def render(request: Request, template: str, principal: Principal | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    ctx = {"user": principal.user if principal else None, "principal": principal,
           "csrf": principal.csrf if principal else "", "role_titles": ROLE_TITLES, **context}
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return "/"


# ---------------------------------------------------------------------------
# sign-in
# ---------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = Query("/", max_length=500)) -> Response:
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", None, next=_safe_next(next), login_csrf=token, message=None)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                    secure=request.app.state.settings.secure_cookies, path="/login")
    return resp


@router.post("/login")
def login_submit(
    request: Request,
    db: DB,
    username: str = Form(..., max_length=64),
    password: str = Form(..., max_length=1024),
    csrf_token: str = Form("", max_length=200),
    next: str = Form("/", max_length=500),
) -> Response:
    settings = request.app.state.settings
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise APIError(403, "the sign-in form expired: reload the page and try again", code="csrf")
    try:
        user = repo.get_user(db, username=username)
    except Exception:
        user = None
    if user is None or not user.active or not verify_password(user.password_hash, password):
        audit.append(db, action="auth.login_failed", username=None, object_type="user", object_id=username[:64])
        actions.commit(db)
        token = secrets.token_urlsafe(24)
        resp = render(request, "login.html", None, status_code=401, next=_safe_next(next), login_csrf=token,
                      message="Wrong username or password.")
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=settings.secure_cookies, path="/login")
        return resp
    token, _row = repo.create_auth_session(db, user=user, ttl=timedelta(hours=settings.session_hours))
    audit.append(db, action="auth.login", username=user.username, object_type="user", object_id=user.username)
    actions.commit(db)
    ok = RedirectResponse(_safe_next(next), status_code=303)
    ok.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies,
                    max_age=int(settings.session_hours * 3600), path="/")
    ok.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return ok


@router.post("/logout")
def logout(principal: CurrentPrincipal, db: DB) -> Response:
    repo.delete_auth_session(db, token=principal.token)
    audit.append(db, action="auth.logout", username=principal.username, object_type="user",
                 object_id=principal.username)
    actions.commit(db)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


# ---------------------------------------------------------------------------
# home and dashboards
# ---------------------------------------------------------------------------


@router.get("/")
def home(request: Request, principal: CurrentPrincipal, db: DB) -> Response:
    ops = [v.operation_public(db, op, counts=True) for op in repo.list_operations(db)] \
        if principal.can("operations.read") else []
    return render(request, "home.html", principal, operations=ops)


@router.get("/operations/{code}")
def operation_page(request: Request, code: str, db: DB, principal: Principal = P("operations.read")) -> Response:
    op = repo.get_operation(db, code=code)
    return render(request, "operation.html", principal, op=v.operation_public(db, op, counts=True))


@router.post("/operations/{code}/match")
def operation_match(request: Request, code: str, db: DB, principal: Principal = P("matching.run")) -> Response:
    run = actions.run_matching(db, principal=principal, operation_code=code)
    return RedirectResponse(f"/operations/{quote(code)}?run={run.id}", status_code=303)


@router.post("/operations")
def operation_create(
    request: Request,
    db: DB,
    code: str = Form(..., min_length=1, max_length=64),
    name: str = Form(..., min_length=1, max_length=200),
    kind: str = Form("exchange"),
    expected_count: str = Form("", max_length=12),
    received_on: str = Form("", max_length=10),
    principal: Principal = P("operations.create"),
) -> Response:
    try:
        count = int(expected_count) if expected_count.strip() else None
        when = date.fromisoformat(received_on) if received_on.strip() else None
    except ValueError:
        raise APIError(422, "expected count must be a whole number and the date YYYY-MM-DD", code="invalid") from None
    if count is not None and count < 0:
        raise APIError(422, "expected count must not be negative", code="invalid")
    repo.create_operation(db, code=code, name=name, kind=kind if kind in ("exchange", "recovery") else "exchange",
                          expected_count=count, received_on=when, by=principal.username)
    actions.commit(db)
    return RedirectResponse(f"/operations/{quote(code)}", status_code=303)


# ---------------------------------------------------------------------------
# imports
# ---------------------------------------------------------------------------


@router.get("/imports")
def imports_page(request: Request, db: DB, principal: Principal = P("imports.page")) -> Response:
    return render(request, "imports.html", principal, operations=repo.list_operations(db), result=None,
                  problems=None, formats=actions.FILE_FORMATS)


@router.post("/imports/frequencies")
async def imports_frequencies_submit(
    request: Request,
    db: DB,
    operation: str = Form(..., max_length=64),
    file: UploadFile = File(...),
    population: str = Form("", max_length=128),
    principal: Principal = P("frequencies.import"),
) -> Response:
    raw = await file.read(actions.MAX_IMPORT_BYTES + 1)
    filename = (file.filename or "frequencies.txt")[:255]
    try:
        summary = await run_in_threadpool(
            lambda: actions.import_frequencies(db, principal=principal, operation_code=operation, raw=raw,
                                               filename=filename, population=population.strip() or None)
        )
    except ImportValidationError as exc:
        return render(request, "imports.html", principal, status_code=422, operations=repo.list_operations(db),
                      result=None, problems=exc.problems, message=str(exc), formats=actions.FILE_FORMATS,
                      selected=operation)
    return render(request, "imports.html", principal, operations=repo.list_operations(db), result=None,
                  freq_result=summary, problems=None, formats=actions.FILE_FORMATS, selected=operation)


@router.post("/imports/families")
async def imports_families_submit(
    request: Request,
    db: DB,
    operation: str = Form(..., max_length=64),
    families: UploadFile = File(...),
    profiles: UploadFile | None = File(None),
    principal: Principal = P("families.import"),
) -> Response:
    fam_raw = await families.read(actions.MAX_IMPORT_BYTES + 1)
    prof_raw = await profiles.read(actions.MAX_IMPORT_BYTES + 1) if profiles is not None and profiles.filename \
        else None
    prof_name = (profiles.filename or "profiles.csv")[:255] if prof_raw is not None and profiles is not None \
        else None
    try:
        summary = await run_in_threadpool(
            lambda: actions.import_families(db, principal=principal, operation_code=operation,
                                            families_raw=fam_raw,
                                            families_name=(families.filename or "families.csv")[:255],
                                            profiles_raw=prof_raw, profiles_name=prof_name)
        )
    except ImportValidationError as exc:
        return render(request, "imports.html", principal, status_code=422, operations=repo.list_operations(db),
                      result=None, problems=exc.problems, message=str(exc), formats=actions.FILE_FORMATS,
                      selected=operation)
    return render(request, "imports.html", principal, operations=repo.list_operations(db),
                  result=summary.as_dict(), problems=None, formats=actions.FILE_FORMATS, selected=operation)


@router.post("/imports")
async def imports_submit(
    request: Request,
    db: DB,
    operation: str = Form(..., max_length=64),
    file: UploadFile = File(...),
    laboratory: str = Form("", max_length=128),
    kit: str = Form("", max_length=128),
    principal: Principal = P("imports.create"),
) -> Response:
    raw = await file.read(actions.MAX_IMPORT_BYTES + 1)
    filename = (file.filename or "upload.json")[:255]
    try:
        summary = await run_in_threadpool(
            lambda: actions.import_file(db, principal=principal, operation_code=operation, raw=raw,
                                        filename=filename, laboratory=laboratory or None, kit=kit or None)
        )
    except ImportValidationError as exc:
        return render(request, "imports.html", principal, status_code=422, operations=repo.list_operations(db),
                      result=None, problems=exc.problems, message=str(exc), formats=actions.FILE_FORMATS,
                      selected=operation)
    return render(request, "imports.html", principal, operations=repo.list_operations(db),
                  result=summary.as_dict(), problems=None, formats=actions.FILE_FORMATS, selected=operation)


# ---------------------------------------------------------------------------
# remains, candidates, the match page
# ---------------------------------------------------------------------------


@router.get("/remains")
def remains_list(
    request: Request,
    db: DB,
    operation: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=64),
    principal: Principal = P("remains.read"),
) -> Response:
    op = repo.get_operation(db, code=operation) if operation else None
    rows = [v.remains_public(db, r) for r in repo.list_remains(db, operation=op, q=q, limit=500)]
    return render(request, "remains_list.html", principal, rows=rows, q=q or "", operation=operation or "",
                  operations=repo.list_operations(db))


@router.get("/remains/{barcode}")
def remains_page(request: Request, barcode: str, db: DB, principal: Principal = P("remains.read")) -> Response:
    r = repo.get_remains(db, barcode=barcode)
    cands = [v.candidate_public(c) for c in repo.candidates_for_remains(db, remains=r)] \
        if principal.can("candidates.read") else None
    idents = [v.identification_public(db, i, principal) for i in repo.list_identifications(db, remains=r)] \
        if principal.can("identifications.read") else []
    return render(request, "remains.html", principal, r=v.remains_public(db, r, profiles=True), candidates=cands,
                  identifications=idents)


def _pedigree_for(db: DB, cand: Any) -> str:
    mp = cand.missing_person
    fam = mp.family
    donors = {d.member_id for d in repo.donors_of(db, family=fam)}
    missing = {m.member_id for m in repo.missing_of(db, family=fam)}
    people = [
        Person(id=m.code, father=m.father, mother=m.mother, sex=m.sex, typed=m.id in donors,
               missing=m.id in missing, placed=cand.remains.barcode if m.id == mp.member_id else None)
        for m in fam.members
    ]
    return pedigree_svg(people, title=f"Family {fam.code}: {cand.remains.barcode} placed as {mp.code}")


@router.get("/candidates/{candidate_id}")
def match_page(request: Request, candidate_id: int, db: DB, principal: Principal = P("candidates.read")) -> Response:
    cand = repo.get_candidate(db, candidate_id=candidate_id)
    active = repo.list_identifications(db, remains=cand.remains, states=[IdentificationState.proposed,
                                                                         IdentificationState.confirmed])
    return render(request, "match.html", principal, c=v.candidate_public(cand, per_marker=True),
                  svg=_pedigree_for(db, cand), run=v.run_public(cand.run),
                  active=[v.identification_public(db, i, principal) for i in active])


@router.post("/candidates/{candidate_id}/propose")
def propose(request: Request, candidate_id: int, db: DB, note: str = Form("", max_length=10_000),
            principal: Principal = P("identifications.propose")) -> Response:
    ident = actions.propose(db, principal=principal, candidate_id=candidate_id, note=note)
    return RedirectResponse(f"/identifications#ident-{ident.id}", status_code=303)


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


@router.get("/identifications")
def identifications_page(
    request: Request, db: DB, state: str | None = Query(None, max_length=16),
    principal: Principal = P("identifications.read"),
) -> Response:
    states = None
    if state in {s.value for s in IdentificationState}:
        states = [IdentificationState(state)]
    if principal.user.role == Role.family_liaison:
        states = [IdentificationState.confirmed]
    rows = [v.identification_public(db, i, principal) for i in repo.list_identifications(db, states=states)]
    return render(request, "identifications.html", principal, rows=rows, state=state or "")


@router.post("/identifications/{identification_id}/{action}")
def decide(
    request: Request,
    identification_id: int,
    action: str,
    db: DB,
    principal: CurrentPrincipal,
    reason: str = Form("", max_length=10_000),
    version: int | None = Form(None),
) -> Response:
    permission = {"confirm": "identifications.decide", "reject": "identifications.decide",
                  "withdraw": "identifications.withdraw"}.get(action)
    if permission is None:
        raise APIError(404, f"no action {action!r}", code="not_found")
    require(permission)(principal)
    actions.decide(db, principal=principal, identification_id=identification_id, action=action, reason=reason,
                   expected_version=version)
    return RedirectResponse(f"/identifications#ident-{identification_id}", status_code=303)


# ---------------------------------------------------------------------------
# families and audit
# ---------------------------------------------------------------------------


@router.get("/families")
def families_page(request: Request, db: DB, principal: Principal = P("families.read")) -> Response:
    fams = [v.family_public(db, f, principal) for f in repo.list_families(db)]
    return render(request, "families.html", principal, families=fams)


@router.post("/missing-persons/{code}/details")
def details_submit(
    request: Request,
    code: str,
    db: DB,
    full_name: str = Form(..., min_length=1, max_length=300),
    principal: Principal = P("persons.write"),
) -> Response:
    mp = repo.get_missing_person(db, code=code)
    repo.set_missing_person_details(db, missing_person=mp, full_name=full_name, by=principal.username)
    actions.commit(db)
    return RedirectResponse(f"/families#family-{quote(mp.family.code)}", status_code=303)


@router.get("/users")
def users_page(request: Request, db: DB, principal: Principal = P("users.manage")) -> Response:
    return render(request, "users.html", principal, users=[v.user_public(u) for u in repo.list_users(db)],
                  roles=[r.value for r in Role], message=None)


@router.post("/users")
def users_submit(
    request: Request,
    db: DB,
    username: str = Form(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"),
    role: Role = Form(...),
    full_name: str = Form("", max_length=200),
    principal: Principal = P("users.manage"),
) -> Response:
    password = generate_password()
    repo.create_user(db, username=username, password_hash=hash_password(password), role=role,
                     full_name=full_name, by=principal.username)
    actions.commit(db)
    return render(request, "users.html", principal, users=[v.user_public(u) for u in repo.list_users(db)],
                  roles=[r.value for r in Role],
                  message=f"User {username} created. One-time password (shown once): {password}")


@router.post("/users/{username}")
def users_update(
    request: Request,
    username: str,
    db: DB,
    role: Role = Form(...),
    active: str = Form("yes", pattern="^(yes|no)$"),
    principal: Principal = P("users.manage"),
) -> Response:
    is_active = active == "yes"
    if username == principal.username and (not is_active or role != Role.administrator):
        raise APIError(409, "you cannot deactivate or demote yourself", code="conflict")
    repo.update_user(db, username=username, role=role, active=is_active, by=principal.username)
    actions.commit(db)
    return render(request, "users.html", principal, users=[v.user_public(u) for u in repo.list_users(db)],
                  roles=[r.value for r in Role],
                  message=f"User {username}: {ROLE_TITLES[role]}, {'active' if is_active else 'deactivated'}.")


@router.get("/audit")
def audit_page(request: Request, db: DB, principal: Principal = P("audit.read")) -> Response:
    entries = [v.audit_public(e) for e in repo.audit_entries(db, limit=500)]
    report = audit.verify_chain(db).as_dict() if principal.can("audit.verify") else None
    return render(request, "audit.html", principal, entries=entries, report=report)
