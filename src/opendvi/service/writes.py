"""The request's write transaction, one helper for the routes, the actions and the sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendvi.i18n import gettext as _
from opendvi.store.db import begin_write
from opendvi.store.errors import ConflictError


def _commit(db: Session) -> None:
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise ConflictError(_("the change conflicts with another one: %(why)s", why=exc.orig)) from None


@contextmanager
def writing(db: Session, *, begin: bool = True) -> Iterator[Session]:
    """A write transaction on the request's session, committed at the end (a constraint violation is
    409), rolled back on any error. ``begin``: begun at once (:func:`opendvi.store.db.begin_write`: call it
    after parsing and checking); otherwise the block calls ``begin_write`` itself after its checks."""
    try:
        if begin:
            begin_write(db)
        yield db
        _commit(db)
    except BaseException:
        db.rollback()
        raise


def commit(db: Session) -> None:
    """Commit what the request wrote (409 on a conflict; rolled back on any error)."""
    with writing(db, begin=False):
        pass
