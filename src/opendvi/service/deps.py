"""Typed dependencies: the database session, the signed-in user, role checks, CSRF.

Authentication: a session cookie (``opendvi_session``, HttpOnly, SameSite=Strict,
Secure outside development) set by the sign-in page or ``POST /api/auth/login``,
or ``Authorization: Bearer <token>`` with the token that endpoint returns.
Requests that change something and are authenticated by the cookie must
carry the session's CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``); bearer requests carry no ambient credential and need none.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from opendvi.i18n import gettext as _
from opendvi.service.errors import CHANGE_PASSWORD_PAGE, PASSWORD_CHANGE_REQUIRED, APIError, LoginRequired
from opendvi.service.policy import PERMISSIONS, allowed
from opendvi.store import repositories as repo
from opendvi.store.models import Role, User

SESSION_COOKIE = "opendvi_session"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: what a user whose password is a one-time one may still do: change it, look at himself, sign out
WHILE_PASSWORD_MUST_CHANGE = frozenset({"/api/auth/password", "/api/auth/logout", "/api/me", CHANGE_PASSWORD_PAGE,
                                        "/logout", "/account/language", "/api/me/language"})


def client_address(request: Request) -> str:
    """The client's address (uvicorn puts the proxy's forwarded one here when it trusts the proxy)."""
    return request.client.host if request.client else "unknown"


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's database session. Opening one touches no database (it is made here, on the
    event loop, with no worker-thread hop); the first query, in the endpoint's thread, begins the
    transaction, and the end (rollback or close: a database round trip) runs in a worker thread."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_rollback_and_close, session)
        raise
    else:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


DB = Annotated[Session, Depends(get_db)]


@dataclass(frozen=True)
class UserSnapshot:
    """The signed-in user's name and role, usable after the database session closed."""

    username: str
    role: Role
    full_name: str = ""


@dataclass
class Principal:
    """The signed-in user of a request."""

    user: User
    token: str
    csrf: str
    via_cookie: bool

    @property
    def username(self) -> str:
        return self.user.username

    def can(self, permission: str) -> bool:
        return allowed(self.user.role, permission)


def _token_of(request: Request) -> tuple[str | None, bool]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE), True


async def sent_csrf_token(request: Request) -> str | None:
    """The CSRF token a changing request carries (header, else form field)."""
    if request.method in SAFE_METHODS:
        return None
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent


def current_principal(
    request: Request, db: DB, sent_csrf: Annotated[str | None, Depends(sent_csrf_token)]
) -> Principal:
    """The signed-in user (a plain function: FastAPI runs it in a worker thread, off the event loop)."""
    token, via_cookie = _token_of(request)
    if not token:
        raise LoginRequired()
    row = repo.get_auth_session(db, token=token)
    if row is None:
        raise LoginRequired()
    principal = Principal(user=row.user, token=token, csrf=row.csrf_token, via_cookie=via_cookie)
    # a detached snapshot for error pages, rendered after the session closed
    request.state.user = UserSnapshot(username=row.user.username, role=row.user.role,
                                      full_name=row.user.full_name)
    request.state.csrf = row.csrf_token
    if via_cookie and request.method not in SAFE_METHODS and (
        not sent_csrf or not hmac.compare_digest(sent_csrf, row.csrf_token)
    ):
        raise APIError(403, _("missing or wrong CSRF token: reload the page and try again"), code="csrf")
    if row.user.must_change_password and request.url.path not in WHILE_PASSWORD_MUST_CHANGE:
        raise APIError(403, _("your password is a one-time password: change it first (POST /api/auth/password)"),
                       code=PASSWORD_CHANGE_REQUIRED)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def check_permission(principal: Principal, permission: str) -> Principal:
    """403 unless the principal's role holds ``permission`` (for checks inside an endpoint)."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)
    if not principal.can(permission):
        raise APIError(
            403,
            _("your role (%(role)s) may not do this (%(permission)s)", role=principal.user.role.value,
              permission=permission),
            code="forbidden",
        )
    return principal


def require(permission: str) -> Callable[..., Principal]:
    """A dependency that lets through only the roles holding ``permission`` (a plain function, so
    that ``require(p)(principal)`` also checks when called directly in an endpoint)."""
    if permission not in PERMISSIONS:
        raise KeyError(permission)

    def _check(principal: CurrentPrincipal) -> Principal:
        return check_permission(principal, permission)

    _check.permission = permission  # type: ignore[attr-defined]
    return _check


def P(permission: str) -> Any:
    """``principal: Principal = P("remains.read")``: the signed-in user, if his role holds ``permission``."""
    return Depends(require(permission))
