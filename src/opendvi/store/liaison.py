"""Intake and liaison: donors' details, pedigree edits, notifications of relatives.

Repository functions in the manner of :mod:`opendvi.store.repositories`: every
option keyword-only, the caller owns the transaction, every change writes its
audit entry in the same transaction. Callers (the service) check the input
and word the errors for people; these functions keep the store consistent
(the core pedigree validation, one donor per member, one barcode per sample)
and raise :mod:`opendvi.store.errors` or :class:`~opendvi.core.errors.PedigreeError`.

**The audit log is not a second copy of personal data.** A change of a
donor's details records which fields changed (``"fields"``), never the values
of the personal ones (full name, contact, date of birth); the relationship to
the missing person and the consent scope and date are recorded with their
values: they are facts of the case the DNA side sees too, and the consent
trail is the record of lawful use of the sample. A notification's note is
not copied into the audit entry either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from opendvi.core.pedigree import Individual, Pedigree
from opendvi.i18n import gettext as _
from opendvi.i18n.terms import term
from opendvi.store import audit
from opendvi.store.errors import ConflictError, NotFoundError
from opendvi.store.models import (
    CONSENT_WITHDRAWN,
    AuditEntry,
    Donor,
    DonorDetails,
    Family,
    Identification,
    IdentificationState,
    Import,
    MissingPerson,
    Notification,
    PedigreeMember,
    Profile,
    Remains,
    User,
)

#: relationship of a donor to the missing person (``other`` carries a free text: ``"other: step-father"``)
RELATIONSHIPS = ("father", "mother", "full_sibling", "half_sibling", "child", "spouse", "grandparent",
                 "uncle_aunt", "cousin", "other")
#: consent scopes of a reference sample; ``withdrawn``: the donor's profile is left out of matching
CONSENT_SCOPES = ("identification", "identification_and_database", "withdrawn")
#: how relatives were told of an identification
NOTIFICATION_METHODS = ("in_person", "phone", "letter", "other")
#: audit action of a pedigree edit (a relative added, a donor sample linked); object: the family
PEDIGREE_ACTION = "family.pedigree"
#: audit action of a change of a donor's details through the donor form; object: the donor
DONOR_ACTION = "donor.details"
#: the actions on donors whose ``consent`` detail counts as a change of the family's evidence
_DONOR_CONSENT_ACTIONS = (DONOR_ACTION, "donor.update")


# ---------------------------------------------------------------------------
# donors
# ---------------------------------------------------------------------------


def get_donor(session: Session, *, barcode: str) -> Donor:
    donor = session.execute(select(Donor).where(Donor.barcode == barcode)).scalar_one_or_none()
    if donor is None:
        raise NotFoundError(_("no donor with barcode %(barcode)s", barcode=repr(barcode)))
    return donor


def donor_details(session: Session, *, donors: Sequence[Donor]) -> dict[int, DonorDetails]:
    """The personal data of ``donors`` (one query), by donor id."""
    ids = [d.id for d in donors]
    if not ids:
        return {}
    return {det.donor_id: det for det in
            session.execute(select(DonorDetails).where(DonorDetails.donor_id.in_(ids))).scalars()}


@dataclass(frozen=True)
class DonorValues:
    """What the donor form sets, every field (a blank clears it)."""

    relationship: str | None
    consent: str
    consent_date: date | None
    full_name: str
    contact: str | None
    date_of_birth: date | None


def set_donor(session: Session, *, donor: Donor, values: DonorValues, by: str | None) -> list[str]:
    """Set every field of the donor form; returns the fields that changed (none: nothing written,
    no audit entry). The audit entry (``donor.details``) names the changed fields and carries the
    values of the non-personal ones only (relationship, consent, consent date)."""
    if values.consent not in CONSENT_SCOPES:
        raise ValueError(f"consent must be one of {CONSENT_SCOPES}")
    det = donor_details(session, donors=[donor]).get(donor.id)
    old = {
        "relationship": donor.relationship_to_missing, "consent": donor.consent, "consent_date": donor.consent_date,
        "full_name": det.full_name if det else "", "contact": det.contact if det else None,
        "date_of_birth": det.date_of_birth if det else None,
    }
    new = {
        "relationship": values.relationship, "consent": values.consent, "consent_date": values.consent_date,
        "full_name": values.full_name, "contact": values.contact, "date_of_birth": values.date_of_birth,
    }
    changed = [f for f in new if new[f] != old[f]]
    if not changed:
        return []
    donor.relationship_to_missing = values.relationship
    donor.consent = values.consent
    donor.consent_date = values.consent_date
    personal = {"full_name", "contact", "date_of_birth"}
    if personal & set(changed):
        if det is None:
            det = DonorDetails(donor_id=donor.id, full_name="")
            session.add(det)
        det.full_name = values.full_name
        det.contact = values.contact
        det.date_of_birth = values.date_of_birth
    session.flush()
    details: dict[str, object] = {"family": donor.family.code, "fields": changed}
    for f in ("relationship", "consent", "consent_date"):
        if f in changed:
            val = new[f]
            details[f] = val.isoformat() if isinstance(val, date) else val
    audit.append(session, action=DONOR_ACTION, username=by, object_type="donor", object_id=donor.barcode,
                 details=details)
    return changed


# ---------------------------------------------------------------------------
# the pedigree
# ---------------------------------------------------------------------------


def _check_pedigree(members: Sequence[PedigreeMember], added: Sequence[Individual], family: Family) -> None:
    """The core pedigree validation of the family with ``added``: raises
    :class:`~opendvi.core.errors.PedigreeError` listing every problem."""
    people = [Individual(m.code, m.father, m.mother, m.sex) for m in members]
    Pedigree([*people, *added], where=f"family {family.code}")


def _check_barcode_free(session: Session, barcode: str) -> None:
    other = session.execute(select(Donor).where(Donor.barcode == barcode)).scalar_one_or_none()
    if other is not None:
        raise ConflictError(_("sample %(barcode)s is already the reference of %(member)s in family %(family)s",
                              barcode=barcode, member=other.member.code, family=other.family.code))
    if session.execute(select(Remains.id).where(Remains.barcode == barcode)).first() is not None:
        raise ConflictError(_("sample %(barcode)s is a remains' barcode", barcode=barcode))


def add_relative(
    session: Session, *, family: Family, code: str, sex: str | None, father: str | None = None,
    mother: str | None = None, founders: Sequence[tuple[str, str]] = (), donor_barcode: str | None = None,
    by: str | None,
) -> PedigreeMember:
    """Add a person to the family's pedigree: ``founders`` ((code, sex) pairs) are new founders
    added first (a parent not yet in the pedigree); ``donor_barcode`` links a reference sample to the
    new person at once. The whole pedigree must stay valid (:class:`~opendvi.core.pedigree.Pedigree`);
    one audit entry (``family.pedigree``)."""
    members = list(family.members)
    added = [Individual(fc, None, None, fs) for fc, fs in founders]
    added.append(Individual(code, father, mother, sex))
    _check_pedigree(members, added, family)
    if donor_barcode:
        _check_barcode_free(session, donor_barcode)
    pos = max((m.position for m in members), default=-1) + 1
    rows = []
    for i, ind in enumerate(added):
        row = PedigreeMember(family_id=family.id, code=ind.id, position=pos + i, father=ind.father,
                             mother=ind.mother, sex=ind.sex)
        session.add(row)
        rows.append(row)
    session.flush()
    person = rows[-1]
    if donor_barcode:
        session.add(Donor(barcode=donor_barcode, family_id=family.id, member_id=person.id))
        session.flush()
    session.refresh(family, ["members"])
    audit.append(session, action=PEDIGREE_ACTION, username=by, object_type="family", object_id=family.code,
                 details={"change": "add_relative", "member": code, "sex": sex, "father": father, "mother": mother,
                          "founders": [fc for fc, _ in founders], "donor": donor_barcode})
    return person


def link_donor(session: Session, *, family: Family, member_code: str, barcode: str, by: str | None) -> Donor:
    """Mark a member typed by linking a reference sample's barcode to it (its profile comes with the
    laboratory's import of that barcode). Not a missing person, not a member already linked."""
    member = next((m for m in family.members if m.code == member_code), None)
    if member is None:
        raise NotFoundError(_("family %(family)s has no member %(member)s", family=family.code,
                              member=repr(member_code)))
    if session.execute(select(MissingPerson.id).where(MissingPerson.member_id == member.id)).first() is not None:
        raise ConflictError(_("%(member)s is a missing person of family %(family)s: not a reference",
                              member=member_code, family=family.code))
    linked = session.execute(select(Donor).where(Donor.member_id == member.id)).scalar_one_or_none()
    if linked is not None:
        raise ConflictError(_("%(member)s is already linked to sample %(barcode)s", member=member_code,
                              barcode=linked.barcode))
    _check_barcode_free(session, barcode)
    donor = Donor(barcode=barcode, family_id=family.id, member_id=member.id)
    session.add(donor)
    session.flush()
    audit.append(session, action=PEDIGREE_ACTION, username=by, object_type="family", object_id=family.code,
                 details={"change": "link_donor", "member": member_code, "donor": barcode})
    return donor


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def family_changes_since(session: Session, *, family: Family, since: datetime) -> list[str]:
    """What changed in the family's evidence after ``since`` (a matching run's start), from the audit
    log: pedigree edits (a relative added, a sample linked) and consents withdrawn. One line each."""
    barcodes = list(session.execute(select(Donor.barcode).where(Donor.family_id == family.id)).scalars())
    cond = and_(AuditEntry.object_type == "family", AuditEntry.object_id == family.code,
                AuditEntry.action == PEDIGREE_ACTION)
    if barcodes:
        cond = or_(cond, and_(AuditEntry.object_type == "donor", AuditEntry.object_id.in_(barcodes),
                              AuditEntry.action.in_(_DONOR_CONSENT_ACTIONS)))
    out: list[str] = []
    since = _aware(since)
    for e in session.execute(select(AuditEntry).where(cond).order_by(AuditEntry.seq)).scalars():
        if datetime.fromisoformat(e.at) <= since:
            continue
        det = json.loads(e.details)
        if e.action == PEDIGREE_ACTION:
            what = det.get("change", "edit")
            out.append(f"{what.replace('_', ' ')} {det.get('member', '')}".strip())
        elif det.get("consent") == CONSENT_WITHDRAWN:
            out.append(f"consent of {e.object_id} withdrawn")
    return out


# ---------------------------------------------------------------------------
# profiles, for the remains page
# ---------------------------------------------------------------------------


def import_files(session: Session, *, profiles: Sequence[Profile]) -> dict[int, str]:
    """The file each profile version came from, by import id (one query)."""
    ids = sorted({p.import_id for p in profiles if p.import_id is not None})
    if not ids:
        return {}
    return {i: name for i, name in session.execute(select(Import.id, Import.filename).where(Import.id.in_(ids)))}


# ---------------------------------------------------------------------------
# notifications of relatives
# ---------------------------------------------------------------------------


def confirmed_identifications(session: Session) -> list[Identification]:
    """Every confirmed identification, most recently decided first."""
    return list(session.execute(
        select(Identification).where(Identification.state == IdentificationState.confirmed)
        .order_by(Identification.decided_at.desc(), Identification.id.desc())).scalars())


def withdrawn_after_notification(session: Session) -> list[Identification]:
    """Identifications withdrawn after relatives were told of them: the family must hear of it."""
    told = select(Notification.id).where(Notification.identification_id == Identification.id).exists()
    return list(session.execute(
        select(Identification).where(Identification.state == IdentificationState.withdrawn, told)
        .order_by(Identification.decided_at.desc(), Identification.id.desc())).scalars())


def notifications_of(session: Session, *, identification_ids: Sequence[int]) -> dict[int, list[Notification]]:
    """The notifications recorded for each identification, oldest first (one query)."""
    out: dict[int, list[Notification]] = {i: [] for i in identification_ids}
    if not identification_ids:
        return out
    for n in session.execute(select(Notification).where(Notification.identification_id.in_(list(identification_ids)))
                             .order_by(Notification.notified_on, Notification.id)).scalars():
        out[n.identification_id].append(n)
    return out


def record_notification(
    session: Session, *, identification: Identification, donor: Donor | None, method: str, notified_on: date,
    note: str, by: User,
) -> Notification:
    """Record that relatives were told of a confirmed identification (409 for any other state);
    ``donor`` must be a donor of the missing person's family (None: a relative without a sample).
    The audit entry (``notification.record``) names the donor, method and date, not the note."""
    if identification.state != IdentificationState.confirmed:
        raise ConflictError(_("identification #%(id)s is %(state)s: only a confirmed identification is notified",
                              id=identification.id, state=term(identification.state, "identification")))
    if method not in NOTIFICATION_METHODS:
        raise ValueError(f"method must be one of {NOTIFICATION_METHODS}")
    if donor is not None and donor.family_id != identification.missing_person.family_id:
        raise ConflictError(_("donor %(barcode)s is not a relative of family %(family)s", barcode=donor.barcode,
                              family=identification.missing_person.family.code))
    n = Notification(identification_id=identification.id, donor_id=donor.id if donor else None, method=method,
                     notified_on=notified_on, note=note, user_id=by.id)
    session.add(n)
    session.flush()
    audit.append(session, action="notification.record", username=by.username, object_type="identification",
                 object_id=identification.id,
                 details={"notification": n.id, "donor": donor.barcode if donor else None, "method": method,
                          "notified_on": notified_on.isoformat(), "fields": ["note"] if note else []})
    return n
