"""The request's write transaction, one helper for the routes and the sign-in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from opendvi.service import actions
from opendvi.store.db import begin_write


@contextmanager
def writing(db: Session) -> Iterator[Session]:
    """A write transaction on the request's session: begun at once (:func:`opendvi.store.db.begin_write`:
    call it after parsing and checking), committed at the end (a constraint violation is 409, as in
    :func:`opendvi.service.actions.commit`), rolled back on any error."""
    begin_write(db)
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    actions.commit(db)
