"""Families (ante-mortem side): their missing persons, reference donors and personal details."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from opendvi.i18n import gettext as _
from opendvi.store import audit
from opendvi.store.models import Donor, Family, MissingPerson, MissingPersonDetails, utcnow
from opendvi.store.repositories.queries import Page, contains_pattern, one_by, paginate

__all__ = ["donors_of", "get_family", "get_missing_person", "list_families", "missing_of",
           "missing_person_details", "page_families", "set_missing_person_details"]


def page_families(session: Session, *, q: str | None = None, page: int = 1, per_page: int = 50,
                  sort: str = "code") -> Page:
    """Families, paged, with their members loaded (one query more); ``q`` in the family code or a
    missing person's code."""
    stmt = select(Family).options(selectinload(Family.members))
    if q:
        like = contains_pattern(q)
        stmt = stmt.where(or_(func.lower(Family.code).like(like, escape="\\"),
                              select(MissingPerson.id).where(MissingPerson.family_id == Family.id,
                                                             func.lower(MissingPerson.code).like(like, escape="\\"))
                              .exists()))
    return paginate(session, stmt, page=page, per_page=per_page, sort=sort, tiebreak=Family.id,
                    sorts={"code": [Family.code], "created": [Family.created_at]})


def get_missing_person(session: Session, *, code: str) -> MissingPerson:
    return one_by(session, MissingPerson, MissingPerson.code, code,
                  lambda: _("no missing person with code %(code)s", code=repr(code)))


def missing_person_details(session: Session, *, missing_person: MissingPerson) -> MissingPersonDetails | None:
    return session.execute(
        select(MissingPersonDetails).where(MissingPersonDetails.missing_person_id == missing_person.id)
    ).scalar_one_or_none()


def set_missing_person_details(
    session: Session,
    *,
    missing_person: MissingPerson,
    full_name: str,
    date_of_birth: date | None = None,
    place_last_seen: str | None = None,
    notes: str | None = None,
    by: str | None = None,
    only: Sequence[str] | None = None,
) -> MissingPersonDetails:
    """Set the personal data (all four fields, as a PUT), or only the fields
    named in ``only`` (a form that shows only the name leaves the others as they are)."""
    all_fields = ("full_name", "date_of_birth", "place_last_seen", "notes")
    fields = all_fields if only is None else tuple(f for f in all_fields if f in only)
    det = missing_person_details(session, missing_person=missing_person)
    if det is None:
        det = MissingPersonDetails(missing_person_id=missing_person.id, full_name=full_name)
        session.add(det)
    values = {"full_name": full_name, "date_of_birth": date_of_birth, "place_last_seen": place_last_seen,
              "notes": notes}
    for f in fields:
        setattr(det, f, values[f])
    det.updated_at = utcnow()
    session.flush()
    # the audit log names the record, never the personal data itself
    audit.append(session, action="missing_person.details", username=by, object_type="missing_person",
                 object_id=missing_person.code, details={"fields": list(fields)})
    return det


def get_family(session: Session, *, code: str) -> Family:
    return one_by(session, Family, Family.code, code, lambda: _("no family with code %(code)s", code=repr(code)))


def list_families(session: Session) -> list[Family]:
    return list(session.execute(select(Family).order_by(Family.code)).scalars())


def donors_of(session: Session, *, family: Family) -> list[Donor]:
    return list(session.execute(select(Donor).where(Donor.family_id == family.id).order_by(Donor.barcode)).scalars())


def missing_of(session: Session, *, family: Family) -> list[MissingPerson]:
    return list(
        session.execute(
            select(MissingPerson).where(MissingPerson.family_id == family.id).order_by(MissingPerson.code)
        ).scalars()
    )
