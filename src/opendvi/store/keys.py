"""Keys kept outside the database, beside it: the audit checkpoints' HMAC key (``store/audit.py``)
and the key that seals second-factor secrets (``service/secret_box.py``).

A key comes from its environment variable, else from its file in the data directory (created
0600 with 32 random bytes, hex, when asked to). A key file readable by others is used, with a
warning; a short one is refused (damaged). Back the key files up apart from the database
(docs/service.md, Backup): a database restored without them cannot be checked or used fully.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from opendvi.core.errors import OpenDVIError

log = logging.getLogger("opendvi.store.keys")
MIN_KEY_LENGTH = 32


class KeyFileError(OpenDVIError):
    """A key is too short or cannot be read."""


def load_key(directory: Path, *, file: str, env: str, create: bool) -> bytes | None:
    """``$env``, else ``directory/file`` (created 0600 with a random key when ``create``); ``None``
    when there is none."""
    value = os.environ.get(env)
    if value:
        if len(value) < MIN_KEY_LENGTH:
            raise KeyFileError(f"{env} must be at least {MIN_KEY_LENGTH} characters")
        return value.encode("utf-8")
    p = directory / file
    if p.exists():
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o077:
            log.warning("the key %s is readable by others (mode %o); chmod 600 it", p, mode)
        key = p.read_bytes().strip()
        if len(key) < MIN_KEY_LENGTH:
            raise KeyFileError(f"the key {p} is too short (damaged?)")
        return key
    if not create:
        return None
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created at the same moment by another process
        return load_key(directory, file=file, env=env, create=False)
    try:
        os.write(fd, secrets.token_hex(32).encode("ascii") + b"\n")
    finally:
        os.close(fd)
    return p.read_bytes().strip()
