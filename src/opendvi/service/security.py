"""Password hashing (argon2id, argon2-cffi) and one-time passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
#: A hash to verify against when the user does not exist (same timing).
_DUMMY = _HASHER.hash("opendvi-no-such-user")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A one-time password (about 128 bits)."""
    return secrets.token_urlsafe(16)
