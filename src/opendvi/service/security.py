"""Password hashing (argon2id, argon2-cffi), the password policy, one-time
passwords and the TOTP second factor (pyotp).

The policy follows NIST SP 800-63B (§3.1.1.2): at least
:data:`MIN_PASSWORD_LENGTH` characters, at most 1024, no composition rules,
and refused when the password is in the bundled list of common (breached)
passwords (``data/common-passwords.txt.gz``, its provenance in
``data/README.md``), is such a password with digits or symbols around it,
repeats or runs characters (``aaaaaaaaaaaa``, ``123456789012``), or holds the
account's name or the service's.
"""

from __future__ import annotations

import functools
import gzip
import re
import secrets
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from opendvi.i18n import gettext as _
from opendvi.i18n import ngettext

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
COMMON_PASSWORDS = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"
_dummy_lock = threading.Lock()
_dummies: dict[int, str] = {}


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _dummy_hash() -> str:
    """A hash of the current hasher's parameters, verified against when the user
    does not exist, so that an unknown name costs the same argon2 work as a known one."""
    key = id(_HASHER)
    with _dummy_lock:
        if key not in _dummies:
            _dummies[key] = _HASHER.hash(secrets.token_urlsafe(16))
        return _dummies[key]


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash (unknown user) the same work is done and False returned."""
    try:
        return _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A one-time password (about 128 bits)."""
    return secrets.token_urlsafe(16)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased."""
    return frozenset(gzip.decompress(COMMON_PASSWORDS.read_bytes()).decode("utf-8").split())


_SEQUENCES = ("0123456789012345678901234567890123456789", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
              "qwertyuiopasdfghjklzxcvbnmqwertyuiopasdfghjklzxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p")
_AROUND = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$", re.UNICODE)


def password_problem(password: str, *, username: str | None = None) -> str | None:
    """Why a password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return ngettext("shorter than %(num)s character", "shorter than %(num)s characters", MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        return ngettext("longer than %(num)s character", "longer than %(num)s characters", MAX_PASSWORD_LENGTH)
    low = password.lower()
    common = common_passwords()
    if low in common or low.strip() in common:
        return _("a well-known password (found in lists of breached passwords)")
    m = _AROUND.match(low)
    core = m.group(1) if m else low
    if len(core) >= 4 and core in common:
        return _("a well-known password with digits or symbols around it")
    if len(set(low)) < 5:
        return _("too few different characters")
    if any(low in seq or low in seq[::-1] for seq in _SEQUENCES):
        return _("a run of consecutive characters")
    for word in (username, "opendvi"):
        if word and len(word) >= 3 and word.lower() in low:
            return _("contains the user name or the service's name")
    return None


# ---------------------------------------------------------------------------
# TOTP (RFC 6238): 6 digits, 30 s steps, one step of clock drift either way
# ---------------------------------------------------------------------------

TOTP_ISSUER = "opendvi"


def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, *, at: float | None = None) -> int | None:
    """The 30-second step whose code ``code`` is (now, or one step before or after), or None."""
    import time

    import pyotp

    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    step = int(now // totp.interval)
    for s in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.at(s * totp.interval), code):
            return s
    return None
