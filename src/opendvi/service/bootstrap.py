"""First start: the administrator account and the bundled demo case."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.service.security import generate_password, hash_password
from opendvi.store import repositories as repo
from opendvi.store.db import transaction
from opendvi.store.errors import NotFoundError
from opendvi.store.models import Role, User

DEMO_OPERATION = "demo"


#: what :func:`ensure_admin` returns when an administrator exists already
EXISTS = "exists"


def ensure_admin(factory: sessionmaker[Session], *, username: str = "admin", password: str | None = None,
                 must_change_password: bool = True) -> str | None:
    """Create the first administrator if there is none. His password (generated, or
    ``OPENDVI_ADMIN_PASSWORD``, known to whoever set up the machine) is a one-time
    password: he must change it at his first sign-in.

    Returns the password when one was generated (to print once), :data:`EXISTS`
    when an administrator exists already, else None (created with ``password``).
    """
    with transaction(factory) as db:
        exists = db.execute(select(User.id).where(User.role == Role.administrator)).first()
        if exists:
            return EXISTS
        generated = password is None
        pw = password if password is not None else generate_password()
        repo.create_user(db, username=username, password_hash=hash_password(pw), role=Role.administrator,
                         full_name="Administrator", by=None, must_change_password=must_change_password)
    return pw if generated else None


def load_demo(factory: sessionmaker[Session]) -> bool:
    """Import the bundled demo case into operation ``demo`` (once). True if loaded now."""
    with transaction(factory) as db:
        try:
            repo.get_operation(db, code=DEMO_OPERATION)
            return False
        except NotFoundError:
            pass
        path = demo_case_path()
        case = read_case(path)
        op = repo.create_operation(db, code=DEMO_OPERATION, name="Demo case (simulated)", kind="exchange",
                                   expected_count=len(case.remains), by=None)
        repo.import_case(db, case=case, operation=op, filename=path.name,
                         sha256=hashlib.sha256(path.read_bytes()).hexdigest(), by=None)
    return True
