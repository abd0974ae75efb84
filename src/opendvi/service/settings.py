"""Settings of the service, from the environment.

=========================  ==================================================
``OPENDVI_ENV``            ``development`` (default) or ``production``
``DATABASE_URL``           the database (default: SQLite in the data dir)
``OPENDVI_DATA_DIR``       where the SQLite file lives (default: user data dir)
``OPENDVI_ADMIN_PASSWORD`` the first administrator's password (else generated)
``OPENDVI_SECURE_COOKIES`` ``1``/``0``; default 1 in production, 0 in development
``OPENDVI_SESSION_HOURS``  how long a sign-in lasts (default 12)
``OPENDVI_MAX_BODY_MB``    largest request body, MiB (default 64; 64 KiB
                           for a request without a session)
``OPENDVI_LOGIN_FAILURES`` failed sign-ins of an account before back-off
                           (default 5; a client address: four times as many)
``OPENDVI_LOGIN_LOCK_MAX`` longest lock after failed sign-ins, s (default 900)
``OPENDVI_LOGIN_PARALLEL`` argon2 checks at once (default 2; more wait)
``OPENDVI_SIGNIN_REFUSAL_DELAY`` seconds before a locked sign-in's 429 is
                           sent (default 1; waited without a thread)
``OPENDVI_DECISION_MIN_LR`` the decision policy: below this LR a proposal or
                           confirmation needs a reason (default 10000, as
                           ``opendvi solve``)
``OPENDVI_DECISION_MIN_POSTERIOR`` the same for the posterior (default 0.999)
=========================  ==================================================

Outside development the settings refuse a weak or well-known administrator
password and cookies without the ``Secure`` flag (:meth:`Settings.check`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from opendvi.core.errors import OpenDVIError
from opendvi.store.repositories import DecisionPolicy
from opendvi.workflows.identify import SolveOptions

#: Passwords that are refused outside development (and every password of the bundled list).
WELL_KNOWN_PASSWORDS = frozenset(
    {"admin", "administrator", "password", "changeme", "change-me", "opendvi", "secret", "123456", "letmein"}
)
MIN_PASSWORD_LENGTH = 12
#: a request without a session cookie or bearer token (sign-in forms) may send this much
ANONYMOUS_MAX_BODY_BYTES = 64 * 1024
#: the thresholds of an identification: those of `opendvi solve` (one home)
_SOLVE = SolveOptions()


class SettingsError(OpenDVIError):
    """The service's settings are unsafe for this environment; the message
    names the variable to change."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    environment: str = "development"
    database_url: str | None = None
    data_dir: Path | None = None
    admin_password: str | None = None
    secure_cookies: bool = False
    session_hours: float = 12.0
    max_body_bytes: int = 64 * 1024 * 1024
    anonymous_max_body_bytes: int = ANONYMOUS_MAX_BODY_BYTES
    login_failures: int = 5
    login_lock_max_s: float = 900.0
    login_parallel: int = 2
    #: seconds before a locked sign-in's 429 is sent (service/admission.py)
    signin_refusal_delay: float = 1.0
    #: the decision policy (OPENDVI_DECISION_MIN_LR, OPENDVI_DECISION_MIN_POSTERIOR); default: opendvi solve's
    decision_min_lr: float = _SOLVE.threshold
    decision_min_posterior: float = _SOLVE.min_posterior

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def decision_policy(self) -> DecisionPolicy:
        """Below it, a proposal or a confirmation needs a reason (``docs/service.md``, Decisions)."""
        return DecisionPolicy(min_lr=self.decision_min_lr, min_posterior=self.decision_min_posterior)


    @classmethod
    def from_env(cls, *, data_dir: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        environment = env.get("OPENDVI_ENV", "development").strip().lower() or "development"
        dd = env.get("OPENDVI_DATA_DIR")
        return cls(
            environment=environment,
            database_url=env.get("DATABASE_URL") or None,
            data_dir=data_dir if data_dir is not None else (Path(dd) if dd else None),
            admin_password=env.get("OPENDVI_ADMIN_PASSWORD") or None,
            secure_cookies=_flag(env.get("OPENDVI_SECURE_COOKIES"), environment != "development"),
            session_hours=float(env.get("OPENDVI_SESSION_HOURS", "12")),
            max_body_bytes=int(float(env.get("OPENDVI_MAX_BODY_MB", "64")) * 1024 * 1024),
            login_failures=int(env.get("OPENDVI_LOGIN_FAILURES", "5")),
            login_lock_max_s=float(env.get("OPENDVI_LOGIN_LOCK_MAX", "900")),
            login_parallel=int(env.get("OPENDVI_LOGIN_PARALLEL", "2")),
            signin_refusal_delay=float(env.get("OPENDVI_SIGNIN_REFUSAL_DELAY", "1")),
            decision_min_lr=_number(env, "OPENDVI_DECISION_MIN_LR", _SOLVE.threshold),
            decision_min_posterior=_number(env, "OPENDVI_DECISION_MIN_POSTERIOR", _SOLVE.min_posterior),
        )

    def check(self) -> None:
        """Refuse unsafe settings outside development."""
        if self.environment not in ("development", "production", "test"):
            raise SettingsError(f"OPENDVI_ENV must be development, test or production, found {self.environment!r}")
        if self.admin_password is not None:
            weak = password_problem(self.admin_password)
            if weak and not self.development:
                raise SettingsError(f"OPENDVI_ADMIN_PASSWORD is refused outside development: {weak}")
        if self.max_body_bytes < 1024 or self.login_failures < 1 or self.login_parallel < 1 \
                or self.signin_refusal_delay < 0:
            raise SettingsError("OPENDVI_MAX_BODY_MB, OPENDVI_LOGIN_FAILURES and OPENDVI_LOGIN_PARALLEL must be "
                                "positive, OPENDVI_SIGNIN_REFUSAL_DELAY not negative")
        if not (self.decision_min_lr >= 1.0 and 0.0 <= self.decision_min_posterior <= 1.0):
            raise SettingsError("OPENDVI_DECISION_MIN_LR must be at least 1 and OPENDVI_DECISION_MIN_POSTERIOR "
                                f"between 0 and 1, found {self.decision_min_lr:g} and {self.decision_min_posterior:g}")
        if self.environment == "production" and not self.secure_cookies:
            raise SettingsError("OPENDVI_SECURE_COOKIES=0 is refused in production (serve over HTTPS)")


def _number(env: dict[str, str], key: str, default: float) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{key} must be a number, found {raw!r}") from None


def password_problem(password: str, *, username: str | None = None) -> str | None:
    """Why a password is too weak, or None (the policy of :func:`opendvi.service.security.password_problem`)."""
    from opendvi.service.security import password_problem as policy

    if password.strip().lower() in WELL_KNOWN_PASSWORDS:
        from opendvi.i18n import gettext as _

        return _("a well-known default password")
    return policy(password, username=username)
