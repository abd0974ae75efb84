"""The API's service and account endpoints: health, sign-in, one's password, second factor and
language, and the administrator's users."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field

from opendvi import i18n
from opendvi.i18n import gettext as _
from opendvi.service import actions, auth
from opendvi.service import schemas as s
from opendvi.service import views as v
from opendvi.service.deps import DB, CurrentPrincipal, P, Principal
from opendvi.service.errors import APIError
from opendvi.service.routes.api._common import Code, router
from opendvi.service.security import MAX_PASSWORD_LENGTH
from opendvi.store import repositories as repo
from opendvi.store.models import Role


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


class LanguageIn(BaseModel):
    language: str | None = Field(description='"uk" or "en"; null: the browser\'s Accept-Language decides',
                                 pattern="^(en|uk)$")


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


# ---------------------------------------------------------------------------
# health and auth
# ---------------------------------------------------------------------------


@router.get("/health", tags=["service"], response_model=s.HealthOut)
def health() -> dict[str, Any]:
    """Liveness: no authentication, no data."""
    from opendvi import __version__

    return {"status": "ok", "version": __version__}


@router.post("/auth/login", tags=["auth"], response_model=s.LoginOut)
def login(body: LoginIn, request: Request, response: Response, db: DB) -> dict[str, Any]:
    """Sign in: sets the session cookie and returns a bearer token and the CSRF token.
    ``must_change_password`` true: the password is a one-time one, and every route but
    ``POST /api/auth/password`` answers 403 until it is changed. 401 ``totp_required``: send
    the authenticator's code as ``totp``. 429 after repeated failures (``Retry-After``)."""
    signed = auth.sign_in(db, request, username=body.username, password=body.password, totp_code=body.totp)
    auth.set_session_cookies(request, response, signed)
    return {"token": signed.token, "csrf_token": signed.session.csrf_token, "user": v.user_public(signed.user),
            "must_change_password": signed.must_change_password}


@router.post("/auth/password", tags=["auth"], response_model=s.PasswordChangedOut)
def change_password(body: PasswordChangeIn, request: Request, db: DB, principal: CurrentPrincipal) -> dict[str, Any]:
    """Change one's own password (NIST SP 800-63B policy: 12 characters or more, not a common
    password); the user's other sessions end, this one stays."""
    auth.change_password(db, request, principal, old_password=body.old_password, new_password=body.new_password)
    return {"ok": True, "must_change_password": False}


@router.post("/auth/totp/setup", tags=["auth"], response_model=s.TotpSetupOut)
def totp_setup(body: PasswordIn, request: Request, db: DB,
               principal: Principal = P("account.totp")) -> dict[str, Any]:
    """Start the TOTP second factor (reviewers and administrators): a secret and its
    ``otpauth://`` URI for the authenticator app; enabled by ``POST /api/auth/totp/enable``."""
    return auth.totp_setup(db, request, principal, password=body.password)


@router.post("/auth/totp/enable", tags=["auth"], response_model=s.TotpStateOut)
def totp_enable(body: TotpCodeIn, request: Request, db: DB,
                principal: Principal = P("account.totp")) -> dict[str, Any]:
    """Enable the second factor with a code of the secret set up; sign-ins then need ``totp``."""
    auth.totp_enable(db, request, principal, code=body.code)
    return {"ok": True, "totp": True}


@router.post("/auth/totp/disable", tags=["auth"], response_model=s.TotpStateOut)
def totp_disable(body: PasswordIn, request: Request, db: DB,
                 principal: Principal = P("account.totp")) -> dict[str, Any]:
    """Turn one's own second factor off (the password is asked again)."""
    auth.totp_disable(db, request, principal, password=body.password)
    return {"ok": True, "totp": False}


@router.post("/auth/logout", tags=["auth"], response_model=s.OkOut)
def logout(principal: CurrentPrincipal, response: Response, db: DB) -> dict[str, Any]:
    auth.sign_out(db, principal, response)
    return {"ok": True}


@router.get("/me", tags=["auth"], response_model=s.MeOut)
def me(principal: CurrentPrincipal) -> dict[str, Any]:
    return {**v.user_public(principal.user), "csrf_token": principal.csrf}


def _language(principal: Principal) -> dict[str, Any]:
    return {"language": i18n.language_of(principal.user.language), "locale": i18n.get_locale(),
            "supported": list(i18n.SUPPORTED)}


@router.get("/me/language", tags=["auth"], response_model=s.LanguageOut)
def my_language(principal: CurrentPrincipal) -> dict[str, Any]:
    """The user's interface language (``language``: his choice or null) and this request's ``locale``."""
    return _language(principal)


@router.put("/me/language", tags=["auth"], response_model=s.LanguageOut)
def set_my_language(body: LanguageIn, request: Request, response: Response, db: DB,
                    principal: CurrentPrincipal) -> dict[str, Any]:
    """Set (or, with null, clear) the user's interface language; kept from one sign-in to the next."""
    actions.set_language(db, principal=principal, language=body.language)
    i18n.remember(response, body.language, secure=request.app.state.settings.secure_cookies)
    return _language(principal)


# ---------------------------------------------------------------------------
# users
# ---------------------------------------------------------------------------


@router.get("/users", tags=["users"], response_model=list[s.UserOut])
def list_users(db: DB, principal: Principal = P("users.manage")) -> list[dict[str, Any]]:
    return [v.user_public(u) for u in repo.list_users(db)]


@router.post("/users", tags=["users"], status_code=201, response_model=s.UserOut)
def create_user(body: UserCreate, db: DB, principal: Principal = P("users.manage")) -> dict[str, Any]:
    """A new user with a one-time password: he must change it at his first sign-in."""
    auth.check_new_password(body.password, body.username)
    return v.user_public(auth.create_user(db, principal, username=body.username, password=body.password,
                                          role=body.role, full_name=body.full_name))


@router.patch("/users/{username}", tags=["users"], response_model=s.UserOut)
def update_user(username: Code, body: UserUpdate, db: DB, principal: Principal = P("users.manage")) -> dict[str, Any]:
    """Role, activity, a password reset (a one-time password; every session of the user ends) or
    the second factor turned off."""
    if body.password is not None:
        auth.check_new_password(body.password, username)
    if body.totp is True:
        raise APIError(422, _("a second factor is turned on by its user (POST /api/auth/totp/setup)"), code="invalid")
    return v.user_public(auth.update_user(db, principal, username, role=body.role, active=body.active,
                                          password=body.password, totp_off=body.totp is False))
