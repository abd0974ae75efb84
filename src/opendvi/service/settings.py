"""Settings of the service, from the environment.

=========================  ==================================================
``OPENDVI_ENV``            ``development`` (default) or ``production``
``DATABASE_URL``           the database (default: SQLite in the data dir)
``OPENDVI_DATA_DIR``       where the SQLite file lives (default: user data dir)
``OPENDVI_ADMIN_PASSWORD`` the first administrator's password (else generated)
``OPENDVI_SECURE_COOKIES`` ``1``/``0``; default 1 in production, 0 in development
``OPENDVI_SESSION_HOURS``  how long a sign-in lasts (default 12)
=========================  ==================================================

Outside development the settings refuse a weak or well-known administrator
password and cookies without the ``Secure`` flag (:meth:`Settings.check`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from opendvi.core.errors import OpenDVIError

#: Passwords that are refused outside development.
WELL_KNOWN_PASSWORDS = frozenset(
    {"admin", "administrator", "password", "changeme", "change-me", "opendvi", "secret", "123456", "letmein"}
)
MIN_PASSWORD_LENGTH = 12


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

    @property
    def development(self) -> bool:
        return self.environment == "development"

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
        )

    def check(self) -> None:
        """Refuse unsafe settings outside development."""
        if self.environment not in ("development", "production", "test"):
            raise SettingsError(f"OPENDVI_ENV must be development, test or production, found {self.environment!r}")
        if self.admin_password is not None:
            weak = password_problem(self.admin_password)
            if weak and not self.development:
                raise SettingsError(f"OPENDVI_ADMIN_PASSWORD is refused outside development: {weak}")
        if self.environment == "production" and not self.secure_cookies:
            raise SettingsError("OPENDVI_SECURE_COOKIES=0 is refused in production (serve over HTTPS)")


def password_problem(password: str) -> str | None:
    """Why a password is too weak, or None."""
    if password.strip().lower() in WELL_KNOWN_PASSWORDS:
        return "a well-known default password"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"shorter than {MIN_PASSWORD_LENGTH} characters"
    return None
