"""Accounts, their sign-in sessions and their TOTP second factor."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, joinedload

from opendvi.i18n import gettext as _
from opendvi.store import audit
from opendvi.store.errors import ConflictError
from opendvi.store.models import AuthSession, Role, User, utcnow
from opendvi.store.repositories.queries import add_unique, one_by

__all__ = ["change_own_password", "create_auth_session", "create_user", "delete_auth_session", "get_auth_session",
           "get_user", "list_users", "set_totp", "token_hash", "update_user", "use_totp_step"]


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
    add_unique(session, user, lambda: _("user %(name)s exists already", name=repr(username)))
    audit.append(session, action="user.create", username=by, object_type="user", object_id=username,
                 details={"role": role.value})
    return user


def get_user(session: Session, *, username: str) -> User:
    return one_by(session, User, User.username, username, lambda: _("no user named %(name)s", name=repr(username)))


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
        stmt = stmt.where(AuthSession.token_hash != token_hash(keep_token))
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


def token_hash(token: str) -> str:
    """What is stored of a bearer token (the one hashing rule)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_auth_session(session: Session, *, user: User, ttl: timedelta) -> tuple[str, AuthSession]:
    """A new session; returns the bearer token (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    row = AuthSession(
        token_hash=token_hash(token),
        csrf_token=secrets.token_urlsafe(32),
        user_id=user.id,
        expires_at=utcnow() + ttl,
    )
    session.add(row)
    session.flush()
    return token, row


@functools.cache
def _auth_session_statement() -> Any:
    """Built once (building a statement costs more than running it): the session and its user joined."""
    return (select(AuthSession).options(joinedload(AuthSession.user))
            .where(AuthSession.token_hash == bindparam("token_hash")))


def get_auth_session(session: Session, *, token: str) -> AuthSession | None:
    """A live session of an active user, else None; one query, reads only (nothing written per request)."""
    row = session.execute(_auth_session_statement(), {"token_hash": token_hash(token)}).scalar_one_or_none()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires < utcnow() or not row.user.active:
        return None
    return row


def delete_auth_session(session: Session, *, token: str) -> None:
    session.execute(delete(AuthSession).where(AuthSession.token_hash == token_hash(token)))
