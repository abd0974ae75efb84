"""The case-work database: models, migrations, repositories, audit log.

``opendvi.store.db`` opens the database (SQLite by default, PostgreSQL
through ``DATABASE_URL``) and runs the Alembic migrations shipped in
``opendvi/store/migrations``; ``opendvi.store.repositories`` holds the
keyword-only functions the service calls; ``opendvi.store.audit`` the
hash-chained audit log and its verification.
"""

from opendvi.store.audit import ChainReport, verify_chain
from opendvi.store.db import database_url, make_engine, open_database, session_factory, transaction
from opendvi.store.errors import (
    ConflictError,
    ImportValidationError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)
from opendvi.store.models import IdentificationState, Role

__all__ = [
    "ChainReport",
    "ConflictError",
    "IdentificationState",
    "ImportValidationError",
    "NotFoundError",
    "PermissionDeniedError",
    "Role",
    "StoreError",
    "database_url",
    "make_engine",
    "open_database",
    "session_factory",
    "transaction",
    "verify_chain",
]
