"""Second-factor secrets sealed at rest (issue 15).

A TOTP secret is a password that never changes: whoever reads it from a database dump or a
backup can make the user's codes for ever. The service therefore stores it sealed: ``enc1:`` and
the URL-safe base64 of a 12-byte random nonce and the AES-256-GCM ciphertext with its tag
(``cryptography``'s AESGCM). The key is derived (HKDF-SHA256) from ``OPENDVI_SECRETS_KEY``, else
from the file ``secrets.key`` in the data directory, created 0600 at the first start
(``store/keys.py``, like the audit key), never in the database. The associated data name the user
(``user <id> totp``): a sealed secret copied onto another user's row does not open.

A secret stored in the clear by an earlier version is sealed when the service starts
(:func:`seal_stored_totp`). A secret that does not open (the key file lost or replaced after a
restore) is never taken as "no second factor": the sign-in answers 503 until the key is back or an
administrator turns the user's second factor off.
"""

from __future__ import annotations

import base64
import secrets
import weakref
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from opendvi.core.errors import OpenDVIError
from opendvi.store import keys
from opendvi.store.db import begin_write
from opendvi.store.models import User

PREFIX = "enc1:"
KEY_FILE = "secrets.key"
KEY_ENV = "OPENDVI_SECRETS_KEY"
_NONCE = 12


class SecretUnavailable(OpenDVIError):
    """A sealed secret does not open with this key (lost or replaced key file, or a copied row)."""


class SecretBox:
    """Seals and opens short secrets under one key."""

    def __init__(self, key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"opendvi sealed secrets v1").derive(key)
        self._aead = AESGCM(derived)

    def seal(self, plain: str, *, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._aead.encrypt(nonce, plain.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, stored: str, *, context: str) -> str:
        """The secret; one stored in the clear (before sealing existed) is returned as it is."""
        if not is_sealed(stored):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX):].encode("ascii"))
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode("utf-8")).decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise SecretUnavailable("a sealed second-factor secret does not open with this service's key "
                                    f"({KEY_FILE} or {KEY_ENV})") from exc


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def totp_context(user_id: int) -> str:
    return f"user {user_id} totp"


#: services built on an engine they were given (tests, tools): one key per engine, in memory
_EPHEMERAL: weakref.WeakKeyDictionary[Engine, SecretBox] = weakref.WeakKeyDictionary()


def box_for(data_dir: Path | None, *, engine: Engine) -> SecretBox:
    """The box of the configured database (its key beside it, created at the first start), or, for a
    service on an engine given by its caller with no data directory, a key in memory for that engine."""
    if data_dir is None:
        if engine not in _EPHEMERAL:
            _EPHEMERAL[engine] = SecretBox(secrets.token_bytes(32))
        return _EPHEMERAL[engine]
    key = keys.load_key(data_dir, file=KEY_FILE, env=KEY_ENV, create=True)
    assert key is not None
    return SecretBox(key)


def seal_stored_totp(factory: sessionmaker[Session], box: SecretBox) -> int:
    """Seal the TOTP secrets an earlier version stored in the clear; returns how many."""
    with factory() as db:
        users = [u for u in db.scalars(select(User).where(
            (User.totp_secret.is_not(None)) | (User.totp_pending.is_not(None))))
            if (u.totp_secret and not is_sealed(u.totp_secret)) or (u.totp_pending and not is_sealed(u.totp_pending))]
        if not users:
            return 0
        begin_write(db)
        for u in users:
            ctx = totp_context(u.id)
            if u.totp_secret and not is_sealed(u.totp_secret):
                u.totp_secret = box.seal(u.totp_secret, context=ctx)
            if u.totp_pending and not is_sealed(u.totp_pending):
                u.totp_pending = box.seal(u.totp_pending, context=ctx)
        db.commit()
        return len(users)
