"""Sign-in, password change and the TOTP second factor, shared by the API and the pages.

The order of a sign-in is what keeps it cheap and fair under a flood:

1. the throttle (:mod:`opendvi.service.throttle`): a locked account or
   address is refused (429) before any database query or argon2 check;
2. the user is read in a read transaction, which then ends;
3. argon2 verifies outside any transaction (an unknown name against a dummy
   hash: the same work), at most ``login_parallel`` at once;
4. only then a short write transaction stores the session and the audit entry.

Failed attempts are not one audit row each: they are counted in memory,
and the audit gets one ``auth.login_throttled`` entry each time a lock is
set (with the count), and the count of failures before a success in that
``auth.login`` entry. A name that matches no account is never stored.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from sqlalchemy.orm import Session

from opendvi import i18n
from opendvi.i18n import gettext as _
from opendvi.service import security
from opendvi.service.access import check_user_change
from opendvi.service.deps import SESSION_COOKIE, Principal, client_address
from opendvi.service.errors import APIError
from opendvi.service.secret_box import SecretBox, SecretUnavailable, totp_context
from opendvi.service.settings import password_problem
from opendvi.service.throttle import LoginThrottle
from opendvi.service.writes import writing
from opendvi.store import audit
from opendvi.store import repositories as repo
from opendvi.store.db import end_read
from opendvi.store.errors import NotFoundError
from opendvi.store.models import AuthSession, Role, User

#: roles that may turn on the TOTP second factor (those whose decisions weigh most)
TOTP_ROLES = frozenset({Role.administrator, Role.reviewer})


@dataclass
class SignedIn:
    token: str
    session: AuthSession
    user: User

    @property
    def must_change_password(self) -> bool:
        return bool(self.user.must_change_password)


def _box(request: Request) -> SecretBox:
    return request.app.state.secret_box


def _opened(request: Request, user: User, stored: str) -> str:
    """The user's TOTP secret out of its seal; 503 when it does not open (never "no second factor")."""
    try:
        return _box(request).open(stored, context=totp_context(user.id))
    except SecretUnavailable:
        raise APIError(503, _("the second factor cannot be checked: the service's key of sealed secrets is "
                              "missing or wrong; ask the administrator"), code="unavailable") from None


def _sealed(request: Request, user: User, secret: str) -> str:
    return _box(request).seal(secret, context=totp_context(user.id))


def throttle_of(request: Request) -> LoginThrottle:
    return request.app.state.login_throttle


def _argon2_slot(request: Request) -> threading.BoundedSemaphore:
    return request.app.state.login_slots


def checked_password(request: Request, password_hash: str | None, password: str) -> bool:
    """argon2 verification, at most ``login_parallel`` at once (the others wait, 503 after 30 s)."""
    slots = _argon2_slot(request)
    if not slots.acquire(timeout=30):
        raise APIError(503, _("too many sign-ins at once: try again in a moment"), code="unavailable",
                       headers={"Retry-After": "5"})
    try:
        return security.verify_password(password_hash, password)
    finally:
        slots.release()


def _refuse_if_locked(request: Request, username: str) -> None:
    wait = throttle_of(request).retry_after(account=username, address=client_address(request))
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise APIError(429, _("too many failed sign-ins: try again in %(seconds)s s", seconds=seconds),
                       code="too_many_attempts",
                       headers={"Retry-After": str(seconds)})


def _count_failure(db: Session, request: Request, username: str, user: User | None) -> None:
    """Count a failure; each lock it sets is one audit entry (no typed name that is not an account)."""
    locks = throttle_of(request).failure(account=username, address=client_address(request))
    if not locks:
        return
    with writing(db):
        for lock in locks:
            details: dict[str, Any] = {"scope": lock.scope, "failures": lock.failures,
                                       "locked_seconds": lock.seconds, "address": client_address(request),
                                       "known_account": user is not None}
            audit.append(db, action="auth.login_throttled", username=None, object_type="user",
                         object_id=user.username if user is not None else None, details=details)


def sign_in(db: Session, request: Request, *, username: str, password: str, totp_code: str | None = None) -> SignedIn:
    """Check the credentials and open a session; raises 401 (wrong), 429 (throttled) or 503."""
    settings = request.app.state.settings
    _refuse_if_locked(request, username)
    try:
        user: User | None = repo.get_user(db, username=username)
    except NotFoundError:
        user = None
    end_read(db)
    ok = checked_password(request, user.password_hash if user is not None else None, password)
    ok = ok and user is not None and user.active
    if ok and user is not None and user.totp_secret:
        if not totp_code:
            raise APIError(401, _("enter the 6-digit code of your authenticator app"), code="totp_required")
        step = security.totp_step(_opened(request, user, user.totp_secret), totp_code)
        if step is None:
            ok = False
        else:
            with writing(db):
                if not repo.use_totp_step(db, user_id=user.id, step=step):
                    ok = False  # a code is good once
    if not ok or user is None:
        _count_failure(db, request, username, user)
        raise APIError(401, _("wrong username or password or code") if totp_code
                       else _("wrong username or password"), code="unauthenticated")
    failures = throttle_of(request).success(account=username)
    with writing(db):
        token, row = repo.create_auth_session(db, user=user, ttl=timedelta(hours=settings.session_hours))
        audit.append(db, action="auth.login", username=user.username, object_type="user", object_id=user.username,
                     details={"failed_attempts": failures} if failures else None)
    return SignedIn(token=token, session=row, user=user)


def set_session_cookies(request: Request, response: Response, signed: SignedIn) -> None:
    """The session cookie of a sign-in (API and page alike) and, when the user chose one, his interface
    language (kept from one sign-in to the next)."""
    settings = request.app.state.settings
    response.set_cookie(SESSION_COOKIE, signed.token, httponly=True, samesite="strict",
                        secure=settings.secure_cookies, max_age=int(settings.session_hours * 3600), path="/")
    if i18n.language_of(signed.user.language):
        i18n.remember(response, signed.user.language, secure=settings.secure_cookies)


def sign_out(db: Session, principal: Principal, response: Response) -> None:
    """End the principal's session (audited) and drop its cookie."""
    with writing(db):
        repo.delete_auth_session(db, token=principal.token)
        audit.append(db, action="auth.logout", username=principal.username, object_type="user",
                     object_id=principal.username)
    response.delete_cookie(SESSION_COOKIE, path="/")


def change_password(db: Session, request: Request, principal: Principal, *, old_password: str,
                    new_password: str) -> None:
    """The signed-in user sets his own password (his other sessions end)."""
    user = principal.user
    _check_own_password(db, request, user, old_password)
    problem = password_problem(new_password, username=user.username)
    if problem:
        raise APIError(422, _("password refused: %(problem)s", problem=problem), code="invalid")
    if new_password == old_password:
        raise APIError(422, _("password refused: the new password is the old one"), code="invalid")
    new_hash = security.hash_password(new_password)
    with writing(db):
        repo.change_own_password(db, user=user, password_hash=new_hash, keep_token=principal.token)


def check_new_password(password: str, username: str) -> None:
    """422 when an administrator sets a password the policy refuses."""
    problem = password_problem(password, username=username)
    if problem:
        raise APIError(422, _("password refused: %(problem)s", problem=problem), code="invalid")


# ---------------------------------------------------------------------------
# users (the administrator's)
# ---------------------------------------------------------------------------


def create_user(db: Session, principal: Principal, *, username: str, password: str, role: Role,
                full_name: str) -> User:
    """A new user with a one-time password: he must change it at his first sign-in."""
    password_hash = security.hash_password(password)
    with writing(db):
        return repo.create_user(db, username=username, password_hash=password_hash, role=role,
                                full_name=full_name, by=principal.username, must_change_password=True)


def update_user(db: Session, principal: Principal, username: str, *, role: Role | None, active: bool | None,
                password: str | None = None, totp_off: bool = False) -> User:
    """Role, activity, a one-time password (every session of the user ends) or the second factor turned
    off; 409 for the administrator's own deactivation or demotion."""
    check_user_change(principal, username, role=role, active=active)
    password_hash = security.hash_password(password) if password else None
    with writing(db):
        user = repo.update_user(db, username=username, role=role, active=active, password_hash=password_hash,
                                by=principal.username)
        if totp_off and (user.totp_secret or user.totp_pending):
            repo.set_totp(db, user=user, secret=None, pending=None, by=principal.username,
                          action="user.totp_disabled")
    return user


# ---------------------------------------------------------------------------
# TOTP
# ---------------------------------------------------------------------------


def _may_totp(principal: Principal) -> None:
    if principal.user.role not in TOTP_ROLES:
        raise APIError(403, _("a second factor is for reviewers and administrators"), code="forbidden")


def _check_own_password(db: Session, request: Request, user: User, password: str) -> None:
    """403 for a wrong password (a counted failure; 429 while locked), before any change to one's account."""
    _refuse_if_locked(request, user.username)
    end_read(db)
    if not checked_password(request, user.password_hash, password):
        _count_failure(db, request, user.username, user)
        raise APIError(403, _("the current password is wrong"), code="wrong_password")


def totp_setup(db: Session, request: Request, principal: Principal, *, password: str) -> dict[str, str]:
    """A new secret, pending until a code of it is confirmed (:func:`totp_enable`)."""
    _may_totp(principal)
    user = principal.user
    _check_own_password(db, request, user, password)
    secret = security.new_totp_secret()
    with writing(db):
        repo.set_totp(db, user=user, secret=user.totp_secret, pending=_sealed(request, user, secret),
                      by=user.username)
    return {"secret": secret, "uri": security.totp_uri(secret, user.username)}


def totp_enable(db: Session, request: Request, principal: Principal, *, code: str) -> None:
    _may_totp(principal)
    user = principal.user
    if not user.totp_pending:
        raise APIError(409, _("set up the second factor first (POST /api/auth/totp/setup)"), code="conflict")
    step = security.totp_step(_opened(request, user, user.totp_pending), code)
    if step is None:
        raise APIError(422, _("the code does not match: check the authenticator's clock and try again"),
                       code="invalid")
    with writing(db):
        repo.set_totp(db, user=user, secret=user.totp_pending, pending=None, by=user.username,
                      action="user.totp_enabled")
        repo.use_totp_step(db, user_id=user.id, step=step)


def totp_disable(db: Session, request: Request, principal: Principal, *, password: str) -> None:
    user = principal.user
    _check_own_password(db, request, user, password)
    with writing(db):
        repo.set_totp(db, user=user, secret=None, pending=None, by=user.username, action="user.totp_disabled")
