"""Intake and liaison input, checked and written: the donor form, a relative added to a pedigree, a
donor sample linked, a notification recorded; the family liaison's rows. The pages
(:mod:`opendvi.service.routes.families_pages`) and their API twins (:mod:`opendvi.service.routes.api`)
call the same functions.

Every problem is named by its field and worded for people (``opendvi.i18n``); nothing is written
unless all of it is valid. The writes are :mod:`opendvi.store.liaison`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendvi.core.errors import PedigreeError
from opendvi.i18n import gettext as _
from opendvi.service import views as v
from opendvi.service import writes
from opendvi.service.deps import Principal
from opendvi.service.errors import APIError
from opendvi.service.writes import writing
from opendvi.store import liaison as store
from opendvi.store import repositories as repo
from opendvi.store.db import begin_write
from opendvi.store.models import Donor, Family, Identification, IdentificationState, Notification, Remains, User

#: codes typed into the pedigree form (new members, donor barcodes): characters safe in a URL
CODE_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

#: the free text of relationship "other" (stored as "other: <text>" in 64 characters)
OTHER_MAX = 56



# ---------------------------------------------------------------------------
# checking input
# ---------------------------------------------------------------------------


@dataclass
class Problem:
    field: str
    message: str


def today() -> date:
    return datetime.now(UTC).date()


def _date(raw: str, field: str, label: str, problems: list[Problem], *, required: bool = False) -> date | None:
    """A YYYY-MM-DD date, not in the future."""
    raw = raw.strip()
    if not raw:
        if required:
            problems.append(Problem(field, _("%(field)s: required", field=label)))
        return None
    try:
        d = date.fromisoformat(raw)
    except ValueError:
        problems.append(Problem(field, _("%(field)s: %(value)s is not a date (YYYY-MM-DD)", field=label,
                                         value=raw[:20])))
        return None
    if d > today():
        problems.append(Problem(field, _("%(field)s: %(value)s is in the future", field=label,
                                         value=d.isoformat())))
        return None
    return d


def donor_values(*, relationship: str, relationship_other: str, consent: str, consent_date: str,
                 date_of_birth: str, full_name: str, contact: str,
                 consent_given: bool = True) -> tuple[store.DonorValues | None, list[Problem]]:
    """The donor form's values, checked: the relationship from the list (``other`` with its text),
    a consent scope, its date (required unless withdrawn, when the consent is being given:
    ``consent_given``), dates not in the future."""
    problems: list[Problem] = []
    rel: str | None = relationship.strip() or None
    if rel is not None and rel not in store.RELATIONSHIPS:
        problems.append(Problem("relationship", _("Relationship: %(value)s is not one of the list",
                                                  value=rel[:40])))
    elif rel == "other":
        text = " ".join(relationship_other.split())
        if not text:
            problems.append(Problem("relationship_other", _("Relationship: describe the other relationship")))
        elif len(text) > OTHER_MAX:
            problems.append(Problem("relationship_other", _("Relationship: at most %(n)s characters",
                                                            n=OTHER_MAX)))
        rel = f"other: {text}"
    if consent not in store.CONSENT_SCOPES:
        problems.append(Problem("consent", _("Consent: %(value)s is not a consent scope", value=consent[:40])))
    cdate = _date(consent_date, "consent_date", _("Consent date"), problems,
                  required=consent_given and consent != store.CONSENT_WITHDRAWN)
    dob = _date(date_of_birth, "date_of_birth", _("Date of birth"), problems)
    if dob is not None and cdate is not None and dob > cdate:
        problems.append(Problem("date_of_birth", _("Date of birth: after the consent date")))
    if problems:
        return None, problems
    return store.DonorValues(relationship=rel, consent=consent, consent_date=cdate, full_name=full_name.strip(),
                             contact=contact.strip() or None, date_of_birth=dob), []


def _barcode_problem(db: Session, barcode: str, field: str) -> Problem | None:
    if not CODE_RE.match(barcode):
        return Problem(field, _("Sample barcode: %(value)s: use letters, digits and . _ : - (at most 64)",
                                value=barcode[:70]))
    other = db.execute(select(Donor).where(Donor.barcode == barcode)).scalar_one_or_none()
    if other is not None:
        return Problem(field, _("Sample barcode: %(value)s is already the reference of %(member)s in family "
                                "%(family)s", value=barcode, member=other.member.code, family=other.family.code))
    if db.execute(select(Remains.id).where(Remains.barcode == barcode)).first() is not None:
        return Problem(field, _("Sample barcode: %(value)s is a remains' barcode", value=barcode))
    return None


def relative_problems(db: Session, fam: Family, *, code: str, sex: str, father: str, mother: str,
                      donor_barcode: str) -> tuple[list[tuple[str, str]], list[Problem]]:
    """The pedigree form's checks that name a field; the new founders to add first."""
    problems: list[Problem] = []
    members = {m.code: m for m in fam.members}
    if not CODE_RE.match(code):
        problems.append(Problem("code", _("Code: %(value)s: use letters, digits and . _ : - (at most 64)",
                                          value=code[:70])))
    elif code in members:
        problems.append(Problem("code", _("Code: family %(family)s already has a member %(value)s",
                                          family=fam.code, value=code)))
    if sex not in ("", "M", "F"):
        problems.append(Problem("sex", _("Sex: M, F or unknown")))
    if bool(father) != bool(mother):
        field = "mother" if father else "father"
        problems.append(Problem(field, _("Parents: give both the father and the mother, or neither")))
    founders: list[tuple[str, str]] = []
    if father and mother:
        if father == mother:
            problems.append(Problem("mother", _("Mother: the same person as the father")))
        for field, pid, want, label in (("father", father, "M", _("Father")), ("mother", mother, "F", _("Mother"))):
            if pid == code:
                problems.append(Problem(field, _("%(field)s: the new member himself or herself", field=label)))
            elif pid in members:
                if members[pid].sex not in (None, want):
                    problems.append(Problem(field, _("%(field)s: %(value)s has sex %(sex)s", field=label, value=pid,
                                                     sex=members[pid].sex)))
            elif not CODE_RE.match(pid):
                problems.append(Problem(field, _("%(field)s: %(value)s: use letters, digits and . _ : - (at most "
                                                 "64)", field=label, value=pid[:70])))
            else:
                founders.append((pid, want))  # a new founder
    if donor_barcode:
        p = _barcode_problem(db, donor_barcode, "donor_barcode")
        if p:
            problems.append(p)
    return founders, problems


def invalid(problems: list[Problem]) -> APIError:
    return APIError(422, "; ".join(p.message for p in problems), code="invalid",
                    details=[{"field": p.field, "message": p.message} for p in problems])



# ---------------------------------------------------------------------------
# writes
# ---------------------------------------------------------------------------


def set_donor(db: Session, principal: Principal, barcode: str, values: store.DonorValues) -> tuple[Donor, list[str]]:
    """Write the donor form's checked values (committed); the fields that changed."""
    with writing(db):
        donor = store.get_donor(db, barcode=barcode)
        changed = store.set_donor(db, donor=donor, values=values, by=principal.username)
    return donor, changed


def add_relative(db: Session, principal: Principal, code: str, *, member: str, sex: str, father: str, mother: str,
                  donor_barcode: str) -> list[Problem]:
    """Check and add a relative (committed), or the problems (nothing written)."""
    begin_write(db)
    fam = repo.get_family(db, code=code)
    founders, problems = relative_problems(db, fam, code=member, sex=sex, father=father, mother=mother,
                                           donor_barcode=donor_barcode)
    if not problems:
        try:
            store.add_relative(db, family=fam, code=member, sex=sex or None, father=father or None,
                               mother=mother or None, founders=founders, donor_barcode=donor_barcode or None,
                               by=principal.username)
        except PedigreeError as exc:
            problems = [Problem("pedigree", _("The pedigree would not be valid: %(reason)s", reason=str(exc)))]
    if problems:
        db.rollback()
        return problems
    writes.commit(db)
    return []


def link_donor(db: Session, principal: Principal, code: str, *, member: str, barcode: str) -> list[Problem]:
    """Check and link a donor sample to a member (committed), or the problems (nothing written)."""
    begin_write(db)
    fam = repo.get_family(db, code=code)
    problems: list[Problem] = []
    target = next((m for m in fam.members if m.code == member), None)
    if target is None:
        problems.append(Problem("member", _("Member: family %(family)s has no member %(value)s", family=fam.code,
                                            value=member[:70])))
    else:
        if any(mp.member_id == target.id for mp in repo.missing_of(db, family=fam)):
            problems.append(Problem("member", _("Member: %(value)s is a missing person, not a reference",
                                                value=member)))
        linked = db.execute(select(Donor).where(Donor.member_id == target.id)).scalar_one_or_none()
        if linked is not None:
            problems.append(Problem("member", _("Member: %(value)s is already linked to sample %(barcode)s",
                                                value=member, barcode=linked.barcode)))
    p = _barcode_problem(db, barcode, "barcode")
    if p:
        problems.append(p)
    if problems:
        db.rollback()
        return problems
    store.link_donor(db, family=fam, member_code=member, barcode=barcode, by=principal.username)
    writes.commit(db)
    return []



# ---------------------------------------------------------------------------
# the family liaison
# ---------------------------------------------------------------------------


def _notification_public(n: Notification, donors: dict[int, Donor], names: dict[int, str],
                         users: dict[int, str]) -> dict[str, Any]:
    d = donors.get(n.donor_id) if n.donor_id else None
    return {"id": n.id, "donor": d.barcode if d else None, "donor_name": names.get(d.id, "") if d else "",
            "method": n.method, "notified_on": v.iso(n.notified_on), "note": n.note,
            "by": users.get(n.user_id) if n.user_id else None, "created_at": v.iso(n.created_at)}


def liaison_rows(db: Session, idents: list[Identification]) -> list[dict[str, Any]]:
    """Each confirmed identification with its missing person's name, the family's donors (the
    relatives to notify: name, relationship, contact, consent) and the notifications recorded; those
    still to notify first. Only for ``names.read`` callers (the family liaison)."""
    notes = store.notifications_of(db, identification_ids=[i.id for i in idents])
    fam_ids = sorted({i.missing_person.family_id for i in idents})
    donors_by_fam: dict[int, list[Donor]] = {f: [] for f in fam_ids}
    if fam_ids:
        for d in db.execute(select(Donor).where(Donor.family_id.in_(fam_ids)).order_by(Donor.barcode)).scalars():
            donors_by_fam[d.family_id].append(d)
    all_donors = [d for ds in donors_by_fam.values() for d in ds]
    details = store.donor_details(db, donors=all_donors)
    by_id = {d.id: d for d in all_donors}
    names = {k: det.full_name for k, det in details.items()}
    user_ids = sorted({n.user_id for ns in notes.values() for n in ns if n.user_id})
    users = {i: name for i, name in db.execute(select(User.id, User.username).where(User.id.in_(user_ids)))} \
        if user_ids else {}
    rows = []
    for i in idents:
        relatives = []
        for d in donors_by_fam[i.missing_person.family_id]:
            det = details.get(d.id)
            relatives.append({"barcode": d.barcode, "member": d.member.code, "name": det.full_name if det else "",
                              "relationship": d.relationship_to_missing, "contact": det.contact if det else "",
                              "consent": d.consent})
        done = [_notification_public(n, by_id, names, users) for n in notes[i.id]]
        rows.append({"id": i.id, "remains": i.remains.barcode, "missing_person": i.missing_person.code,
                     "name": v.person_name(db, i.missing_person) or "", "family": i.missing_person.family.code,
                     "decided_at": i.decided_at, "decided_by": i.decided_by.username if i.decided_by else None,
                     "relatives": relatives, "notifications": done, "to_notify": not done})
    rows.sort(key=lambda r: not r["to_notify"])  # stable: most recently confirmed first within each group
    return rows


def notifications_public(db: Session, ident: Identification) -> dict[str, Any]:
    row = liaison_rows(db, [ident])[0]
    return {"identification": ident.id, "state": ident.state.value, "missing_person": row["missing_person"],
            "missing_person_name": row["name"], "family": row["family"], "relatives": row["relatives"],
            "notifications": row["notifications"]}


def notification_values(db: Session, ident: Identification, *, donor: str, method: str, notified_on: str,
                        ) -> tuple[tuple[Donor | None, str, date] | None, list[Problem]]:
    """The notification form's values, checked (the relative among the family's donors, a method of the
    list, a date not in the future)."""
    problems: list[Problem] = []
    d: Donor | None = None
    if donor:
        d = db.execute(select(Donor).where(Donor.barcode == donor)).scalar_one_or_none()
        if d is None or d.family_id != ident.missing_person.family_id:
            problems.append(Problem("donor", _("Relative: %(value)s is not a donor of family %(family)s",
                                               value=donor[:70], family=ident.missing_person.family.code)))
    if method not in store.NOTIFICATION_METHODS:
        problems.append(Problem("method", _("Method: %(value)s is not one of the list", value=method[:40])))
    when = _date(notified_on, "notified_on", _("Date"), problems, required=True)
    if problems or when is None:
        return None, problems
    return (d, method, when), []


def record_notification(db: Session, principal: Principal, identification_id: int, *, donor: str, method: str,
                        notified_on: str, note: str) -> tuple[Notification | None, list[Problem]]:
    """Check and record a notification; 404 for an identification not found, 409 unless confirmed."""
    begin_write(db)
    ident = repo.get_identification(db, identification_id=identification_id)
    if ident.state != IdentificationState.confirmed:
        raise APIError(409, _("Identification #%(id)s is %(state)s: only a confirmed identification is notified",
                              id=ident.id, state=ident.state.value), code="conflict")
    values, problems = notification_values(db, ident, donor=donor, method=method, notified_on=notified_on)
    if values is None:
        db.rollback()
        return None, problems
    d, m, when = values
    n = store.record_notification(db, identification=ident, donor=d, method=m, notified_on=when, note=note.strip(),
                                  by=principal.user)
    writes.commit(db)
    return n, []
