"""Server-rendered web pages (Jinja2; forms carry the session's CSRF token)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opendvi import i18n
from opendvi.i18n import gettext as _
from opendvi.service import access, actions, auth
from opendvi.service import views as v
from opendvi.service.deps import DB, CurrentPrincipal, P, Principal, require
from opendvi.service.errors import CHANGE_PASSWORD_PAGE, APIError
from opendvi.service.policy import ROLE_TITLES
from opendvi.service.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, generate_password
from opendvi.service.writes import writing
from opendvi.store import audit
from opendvi.store import repositories as repo
from opendvi.store.errors import ImportValidationError
from opendvi.store.models import IdentificationState, Operation, Role

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "opendvi_login_csrf"


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
    password: str = Form(..., max_length=MAX_PASSWORD_LENGTH),
    totp: str = Form("", max_length=16),
    csrf_token: str = Form("", max_length=200),
    next: str = Form("/", max_length=500),
) -> Response:
    settings = request.app.state.settings
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise APIError(403, _("the sign-in form expired: reload the page and try again"), code="csrf")
    try:
        signed = auth.sign_in(db, request, username=username, password=password, totp_code=totp.strip() or None)
    except APIError as exc:
        if exc.status not in (401, 429):
            raise
        token = secrets.token_urlsafe(24)
        message = {"totp_required": _("Enter the 6-digit code of your authenticator app."),
                   "too_many_attempts": _("Too many failed sign-ins: %(why)s.", why=exc.message)}.get(
                       exc.code, _("Wrong username or password or code.") if totp.strip()
                       else _("Wrong username or password."))
        resp = render(request, "login.html", None, status_code=exc.status, next=_safe_next(next), login_csrf=token,
                      message=message, username=username if exc.code == "totp_required" else "",
                      ask_totp=exc.code == "totp_required" or bool(totp.strip()))
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=settings.secure_cookies, path="/login")
        for k, val in (exc.headers or {}).items():
            resp.headers[k] = val
        return resp
    target = CHANGE_PASSWORD_PAGE if signed.must_change_password else _safe_next(next)
    ok = RedirectResponse(target, status_code=303)
    auth.set_session_cookies(request, ok, signed)
    ok.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return ok


@router.post("/login/language")
def login_language(
    request: Request,
    language: str = Form(..., pattern="^(en|uk)$"),
    csrf_token: str = Form("", max_length=200),
    next: str = Form("/", max_length=500),
) -> Response:
    """The sign-in page's language switch: only the cookie (no user yet)."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise APIError(403, _("the sign-in form expired: reload the page and try again"), code="csrf")
    resp = RedirectResponse(f"/login?{urlencode({'next': _safe_next(next)})}", status_code=303)
    i18n.remember(resp, language, secure=request.app.state.settings.secure_cookies)
    return resp


@router.post("/account/language")
def account_language(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    language: str = Form("", pattern="^(en|uk)?$"),
    next: str = Form("/", max_length=500),
) -> Response:
    """The language switch of every page's header and of the account page: the user's setting and the
    cookie; an empty choice goes back to the browser's language."""
    actions.set_language(db, principal=principal, language=language or None)
    resp = RedirectResponse(_safe_next(next), status_code=303)
    i18n.remember(resp, language or None, secure=request.app.state.settings.secure_cookies)
    return resp


# ---------------------------------------------------------------------------
# one's account: password, second factor
# ---------------------------------------------------------------------------


def _account(request: Request, principal: Principal, *, status_code: int = 200, message: str | None = None,
             error: str | None = None, totp_setup: dict[str, str] | None = None) -> HTMLResponse:
    return render(request, "account.html", principal, status_code=status_code, message=message, error=error,
                  must_change=bool(principal.user.must_change_password), min_length=MIN_PASSWORD_LENGTH,
                  totp_allowed=principal.user.role in auth.TOTP_ROLES, totp_on=bool(principal.user.totp_secret),
                  totp_setup=totp_setup, language=i18n.language_of(principal.user.language))


@router.get(CHANGE_PASSWORD_PAGE)
def account_page(request: Request, principal: CurrentPrincipal) -> Response:
    return _account(request, principal)


@router.post(CHANGE_PASSWORD_PAGE)
def account_password_submit(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    old_password: str = Form(..., max_length=MAX_PASSWORD_LENGTH),
    new_password: str = Form(..., max_length=MAX_PASSWORD_LENGTH),
    new_password_again: str = Form(..., max_length=MAX_PASSWORD_LENGTH),
) -> Response:
    if new_password != new_password_again:
        return _account(request, principal, status_code=422, error=_("The two new passwords differ."))
    try:
        auth.change_password(db, request, principal, old_password=old_password, new_password=new_password)
    except APIError as exc:
        if exc.status in (403, 422, 429):
            return _account(request, principal, status_code=exc.status, error=exc.message)
        raise
    return _account(request, principal, message=_("Your password is changed; your other sessions have ended."))


@router.post("/account/totp/setup")
def account_totp_setup(request: Request, db: DB, password: str = Form(..., max_length=MAX_PASSWORD_LENGTH),
                       principal: Principal = P("account.totp")) -> Response:
    try:
        setup = auth.totp_setup(db, request, principal, password=password)
    except APIError as exc:
        if exc.status in (403, 429):
            return _account(request, principal, status_code=exc.status, error=exc.message)
        raise
    return _account(request, principal, totp_setup=setup)


@router.post("/account/totp/enable")
def account_totp_enable(request: Request, db: DB, code: str = Form(..., max_length=16),
                        principal: Principal = P("account.totp")) -> Response:
    try:
        auth.totp_enable(db, request, principal, code=code)
    except APIError as exc:
        if exc.status in (409, 422):
            return _account(request, principal, status_code=exc.status, error=exc.message)
        raise
    return _account(request, principal, message=_("The second factor is on: sign-ins now ask for a code."))


@router.post("/account/totp/disable")
def account_totp_disable(request: Request, db: DB, password: str = Form(..., max_length=MAX_PASSWORD_LENGTH),
                         principal: Principal = P("account.totp")) -> Response:
    try:
        auth.totp_disable(db, request, principal, password=password)
    except APIError as exc:
        if exc.status in (403, 429):
            return _account(request, principal, status_code=exc.status, error=exc.message)
        raise
    return _account(request, principal, message=_("The second factor is off."))


@router.post("/logout")
def logout(principal: CurrentPrincipal, db: DB) -> Response:
    resp = RedirectResponse("/login", status_code=303)
    auth.sign_out(db, principal, resp)
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
    """The dashboard, the latest finished run, the run in progress (its progress polled live by a small
    inline script from ``GET /api/matching-runs/{id}``) and the history of runs."""
    op = repo.get_operation(db, code=code)
    runs = [v.run_public(r) for r in repo.runs_of(db, operation=op, limit=50)]
    active = next((r for r in runs if r["status"] in ("queued", "running")), None)
    return render(request, "operation.html", principal, op=v.operation_public(db, op, counts=True), runs=runs,
                  active=active)


@router.post("/operations/{code}/match")
def operation_match(request: Request, code: str, db: DB, principal: Principal = P("matching.run")) -> Response:
    """Queue a matching run (a worker executes it) and show its progress on the operation's page."""
    run = actions.run_matching(db, principal=principal, operation_code=code)
    return RedirectResponse(f"/operations/{quote(code, safe='')}?run={run.id}", status_code=303)


@router.post("/matching-runs/{run_id}/cancel")
def run_cancel(request: Request, run_id: int, db: DB, principal: Principal = P("matching.run")) -> Response:
    run = actions.cancel_run(db, principal=principal, run_id=run_id)
    op = db.get(Operation, run.operation_id)
    return RedirectResponse(f"/operations/{quote(op.code if op else '', safe='')}?run={run.id}", status_code=303)


_PROGRESS_JS = Path(__file__).resolve().parents[1] / "templates" / "run_progress.js"


@router.get("/assets/run-progress.js")
def run_progress_js(principal: CurrentPrincipal) -> Response:
    """The operation page's script (same origin: the Content-Security-Policy allows no inline script)."""
    return Response(_PROGRESS_JS.read_text(encoding="utf-8"), media_type="text/javascript")


def _pager(request: Request, pg: Any) -> dict[str, Any]:
    """Links of a paged list: the same filters, another page."""
    params = dict(request.query_params)

    def url(page: int) -> str:
        return f"{request.url.path}?{urlencode({**params, 'page': str(page)})}"

    pages = max(1, -(-pg.total // pg.per_page))
    return {"total": pg.total, "page": pg.page, "pages": pages, "per_page": pg.per_page, "sort": pg.sort,
            "prev": url(pg.page - 1) if pg.page > 1 else None, "next": url(pg.page + 1) if pg.page < pages else None}


def _float(x: str | None) -> float | None:
    if x is None or not x.strip():
        return None
    try:
        return float(x)
    except ValueError:
        raise APIError(422, _("%(value)s is not a number", value=repr(x)), code="invalid") from None


@router.post("/operations")
def operation_create(
    request: Request,
    db: DB,
    code: str = Form(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$"),
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
        raise APIError(422, _("expected count must be a whole number and the date YYYY-MM-DD"),
                       code="invalid") from None
    if count is not None and count < 0:
        raise APIError(422, _("expected count must not be negative"), code="invalid")
    with writing(db):
        repo.create_operation(db, code=code, name=name, kind=kind if kind in ("exchange", "recovery") else "exchange",
                              expected_count=count, received_on=when, by=principal.username)
    return RedirectResponse(f"/operations/{quote(code, safe='')}", status_code=303)


# ---------------------------------------------------------------------------
# imports
# ---------------------------------------------------------------------------


def _imports(request: Request, db: DB, principal: Principal, *, status_code: int = 200, result: Any = None,
             problems: Any = None, **context: Any) -> HTMLResponse:
    return render(request, "imports.html", principal, status_code=status_code, operations=repo.list_operations(db),
                  result=result, problems=problems, formats=actions.file_formats(), **context)


async def _imported(request: Request, db: DB, principal: Principal, operation: str, run: Callable[[], Any],
                    shown: Callable[[Any], dict[str, Any]]) -> Response:
    """Run an import (in a worker thread) and show the imports page with its summary (``shown``), or
    with every problem of a refused file (422)."""
    try:
        summary = await run_in_threadpool(run)
    except ImportValidationError as exc:
        return _imports(request, db, principal, status_code=422, problems=exc.problems, message=str(exc),
                        selected=operation)
    return _imports(request, db, principal, selected=operation, **shown(summary))


@router.get("/imports")
def imports_page(request: Request, db: DB, principal: Principal = P("imports.page")) -> Response:
    return _imports(request, db, principal)


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
    return await _imported(
        request, db, principal, operation,
        lambda: actions.import_frequencies(db, principal=principal, operation_code=operation, raw=raw,
                                           filename=filename, population=population.strip() or None),
        lambda summary: {"freq_result": summary})


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
    return await _imported(
        request, db, principal, operation,
        lambda: actions.import_families(db, principal=principal, operation_code=operation, families_raw=fam_raw,
                                        families_name=(families.filename or "families.csv")[:255],
                                        profiles_raw=prof_raw, profiles_name=prof_name),
        lambda summary: {"result": summary.as_dict()})


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
    return await _imported(
        request, db, principal, operation,
        lambda: actions.import_file(db, principal=principal, operation_code=operation, raw=raw, filename=filename,
                                    laboratory=laboratory or None, kit=kit or None),
        lambda summary: {"result": summary.as_dict()})


# ---------------------------------------------------------------------------
# remains, candidates, the match page
# ---------------------------------------------------------------------------


@router.get("/remains")
def remains_list(
    request: Request,
    db: DB,
    operation: str | None = Query(None, max_length=64),
    q: str | None = Query(None, max_length=64),
    state: str | None = Query(None, max_length=16),
    min_log10_lr: str | None = Query(None, max_length=32),
    max_log10_lr: str | None = Query(None, max_length=32),
    unreviewed_above: str | None = Query(None, max_length=32),
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(50, ge=1, le=500),
    sort: str = Query("barcode", max_length=32),
    principal: Principal = P("remains.read"),
) -> Response:
    op = repo.get_operation(db, code=operation) if operation else None
    pg = v.fetch_page(repo.page_remains, session=db, operation=op, q=q, state=state or None,
               min_log10_lr=_float(min_log10_lr), max_log10_lr=_float(max_log10_lr),
               unreviewed_above=_float(unreviewed_above), page=page, per_page=per_page, sort=sort)
    rows = v.remains_page_public(db, pg)["items"]
    return render(request, "remains_list.html", principal, rows=rows, q=q or "", operation=operation or "",
                  operations=repo.list_operations(db), pager=_pager(request, pg), state=state or "",
                  min_log10_lr=min_log10_lr or "", max_log10_lr=max_log10_lr or "",
                  unreviewed_above=unreviewed_above or "", sort=sort, sorts=repo.REMAINS_SORTS)


# the remains page (GET /remains/{barcode}): routes/families_pages.py (genotypes, profile versions)


# the match page and the proposal: routes/review.py


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


@router.get("/identifications")
def identifications_page(
    request: Request, db: DB, state: str | None = Query(None, max_length=16),
    q: str | None = Query(None, max_length=64),
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(50, ge=1, le=500),
    sort: str = Query("-id", max_length=32),
    principal: Principal = P("identifications.read"),
) -> Response:
    asked = IdentificationState(state) if state in {s.value for s in IdentificationState} else None
    states = access.identification_states(principal, asked)
    if states == []:  # the family liaison's filter on another state: the page shows his confirmed ones
        states = access.identification_states(principal, None)
    pg = v.fetch_page(repo.page_identifications, session=db, states=states, q=q, page=page, per_page=per_page,
                      sort=sort)
    rows = [v.identification_public(db, i, principal) for i in pg.items]
    return render(request, "identifications.html", principal, rows=rows, state=state or "", q=q or "",
                  pager=_pager(request, pg))


@router.post("/identifications/{identification_id}/{action}")
def decide(
    request: Request,
    identification_id: int,
    action: str,
    db: DB,
    principal: CurrentPrincipal,
    reason: str = Form("", max_length=10_000),
    version: int | None = Form(None),
    override_reason: str = Form("", max_length=10_000),
) -> Response:
    permission = {"confirm": "identifications.decide", "reject": "identifications.decide",
                  "withdraw": "identifications.withdraw"}.get(action)
    if permission is None:
        raise APIError(404, _("no action %(action)s", action=repr(action)), code="not_found")
    require(permission)(principal)
    actions.decide(db, principal=principal, identification_id=identification_id, action=action, reason=reason,
                   expected_version=version, override_reason=override_reason,
                   policy=request.app.state.settings.decision_policy)
    return RedirectResponse(f"/identifications#ident-{identification_id}", status_code=303)


# ---------------------------------------------------------------------------
# families and audit
# ---------------------------------------------------------------------------


@router.get("/families")
def families_page(
    request: Request, db: DB, q: str | None = Query(None, max_length=64),
    page: int = Query(1, ge=1, le=1_000_000), per_page: int = Query(20, ge=1, le=200),
    sort: str = Query("code", max_length=32), principal: Principal = P("families.read"),
) -> Response:
    pg = v.fetch_page(repo.page_families, session=db, q=q, page=page, per_page=per_page, sort=sort)
    fams = v.families_public(db, pg.items, principal)
    return render(request, "families.html", principal, families=fams, q=q or "", pager=_pager(request, pg))


@router.post("/missing-persons/{code:path}/details")
def details_submit(
    request: Request,
    code: str,
    db: DB,
    full_name: str = Form(..., min_length=1, max_length=300),
    principal: Principal = P("persons.write"),
) -> Response:
    """The families page's form shows the name only: only the name changes."""
    with writing(db):
        mp = repo.get_missing_person(db, code=code)
        repo.set_missing_person_details(db, missing_person=mp, full_name=full_name, by=principal.username,
                                        only=("full_name",))
    return RedirectResponse(f"/families#family-{quote(mp.family.code, safe='')}", status_code=303)


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
    auth.create_user(db, principal, username=username, password=password, role=role, full_name=full_name)
    return render(request, "users.html", principal, users=[v.user_public(u) for u in repo.list_users(db)],
                  roles=[r.value for r in Role],
                  message=_("User %(username)s created. One-time password (shown once): %(password)s",
                            username=username, password=password))


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
    auth.update_user(db, principal, username, role=role, active=is_active)
    return render(request, "users.html", principal, users=[v.user_public(u) for u in repo.list_users(db)],
                  roles=[r.value for r in Role],
                  message=_("User %(username)s: %(role)s, active.", username=username, role=ROLE_TITLES[role])
                  if is_active else _("User %(username)s: %(role)s, deactivated.", username=username,
                                      role=ROLE_TITLES[role]))


@router.get("/audit")
def audit_page(
    request: Request, db: DB, action: str | None = Query(None, max_length=64),
    username: str | None = Query(None, max_length=64), object_type: str | None = Query(None, max_length=64),
    object_id: str | None = Query(None, max_length=128), page: int = Query(1, ge=1, le=10_000_000),
    per_page: int = Query(100, ge=1, le=1000), sort: str = Query("-seq", pattern="^-?seq$"),
    verify: bool = Query(False), principal: Principal = P("audit.read"),
) -> Response:
    """The entries, a page at a time; the whole chain is verified when asked (``?verify=1``, the page's
    button): it reads every entry, which a national log makes too slow for every view."""
    pg = v.fetch_page(repo.page_audit, session=db, action=action or None, username=username or None,
               object_type=object_type or None, object_id=object_id or None, page=page, per_page=per_page,
               sort=sort)
    entries = [v.audit_public(e) for e in pg.items]
    can_verify = principal.can("audit.verify")
    report = audit.verify_chain(db).as_dict() if verify and can_verify else None
    return render(request, "audit.html", principal, entries=entries, report=report, can_verify=can_verify,
                  pager=_pager(request, pg),
                  filters={"action": action or "", "username": username or "", "object_type": object_type or "",
                           "object_id": object_id or ""})
