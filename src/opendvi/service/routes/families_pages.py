"""Intake and liaison pages: a family's page (pedigree drawn, members, donors; the donor form and the
pedigree form of the intake officer), the remains page (genotypes, profile versions), and the family
liaison's list of confirmed identifications with the relatives to notify; the API twins of the
liaison's notifications.

Input is checked here, every problem named by its field and worded for people (``opendvi.i18n``);
nothing is written unless all of it is valid. The writes are :mod:`opendvi.store.liaison`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from opendvi.core.errors import PedigreeError
from opendvi.i18n import gettext as _
from opendvi.i18n import pgettext, terms
from opendvi.service import actions
from opendvi.service import views as v
from opendvi.service.deps import DB, Principal
from opendvi.service.errors import APIError
from opendvi.service.pedigree_svg import Person, pedigree_svg
from opendvi.service.routes.pages import P, render
from opendvi.store import liaison as store
from opendvi.store import repositories as repo
from opendvi.store.db import begin_write
from opendvi.store.models import Donor, Family, Identification, IdentificationState, Notification, Remains, User

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api")

#: codes typed into the pedigree form (new members, donor barcodes): characters safe in a URL
CODE_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: the free text of relationship "other" (stored as "other: <text>" in 64 characters)
OTHER_MAX = 56


# ---------------------------------------------------------------------------
# words for the stored values (at render time, in the request's language)
# ---------------------------------------------------------------------------


def relationship_labels() -> dict[str, str]:
    return terms.TABLES["relationship"]()  # one home: opendvi.i18n.terms


def consent_labels() -> dict[str, str]:
    return {
        "identification": pgettext("consent", "identification only"),
        "identification_and_database": pgettext("consent", "identification and reference database"),
        "withdrawn": pgettext("consent", "withdrawn"),
    }


def method_labels() -> dict[str, str]:
    return {
        "in_person": pgettext("notification method", "in person"),
        "phone": pgettext("notification method", "phone"),
        "letter": pgettext("notification method", "letter"),
        "other": pgettext("notification method", "other"),
    }


def _labels() -> dict[str, Any]:
    return {"relationships": relationship_labels(), "consents": consent_labels(), "methods": method_labels()}


# ---------------------------------------------------------------------------
# checking input
# ---------------------------------------------------------------------------


@dataclass
class Problem:
    field: str
    message: str


def _today() -> date:
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
    if d > _today():
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


def _barcode_problem(db: DB, barcode: str, field: str) -> Problem | None:
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


def relative_problems(db: DB, fam: Family, *, code: str, sex: str, father: str, mother: str,
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


# ---------------------------------------------------------------------------
# the family page
# ---------------------------------------------------------------------------


def family_context(db: DB, fam: Family, principal: Principal) -> dict[str, Any]:
    """The family page's data: names, contact and dates of birth only for ``names.read``."""
    names = principal.can("names.read")
    donors = repo.donors_of(db, family=fam)
    by_member = {d.member_id: d for d in donors}
    missing = {m.member_id: m for m in repo.missing_of(db, family=fam)}
    details = store.donor_details(db, donors=donors) if names else {}
    versions = {d.id: repo.current_profile(db, donor=d) for d in donors}
    members = []
    people = []
    for m in fam.members:
        d = by_member.get(m.id)
        prof = versions.get(d.id) if d else None
        withdrawn = d is not None and d.consent == store.CONSENT_WITHDRAWN
        typed = prof is not None and not withdrawn
        members.append({"code": m.code, "sex": m.sex, "father": m.father, "mother": m.mother,
                        "missing": missing[m.id].code if m.id in missing else None,
                        "donor": d.barcode if d else None, "profile_version": prof.version if prof else None,
                        "typed": typed, "withdrawn": withdrawn})
        people.append(Person(id=m.code, father=m.father, mother=m.mother, sex=m.sex, typed=typed,
                             missing=m.id in missing))
    donor_rows = []
    for d in donors:
        prof = versions.get(d.id)
        row: dict[str, Any] = {
            "barcode": d.barcode, "member": d.member.code, "relationship": d.relationship_to_missing,
            "relationship_code": (d.relationship_to_missing or "").split(":")[0],
            "relationship_other": (d.relationship_to_missing or "")[len("other:"):].strip()
            if (d.relationship_to_missing or "").startswith("other:") else "",
            "consent": d.consent, "consent_date": d.consent_date,
            "withdrawn": d.consent == store.CONSENT_WITHDRAWN, "profile_version": prof.version if prof else None,
        }
        if names:
            det = details.get(d.id)
            row.update(full_name=det.full_name if det else "", contact=det.contact if det else "",
                       date_of_birth=det.date_of_birth if det else None)
        donor_rows.append(row)
    mps = [{"code": mp.code, "member": mp.member.code, **({"name": v.person_name(db, mp) or ""} if names else {})}
           for mp in missing.values()]
    svg = pedigree_svg(people, title=_("Family %(code)s", code=fam.code))
    return {"fam": {"code": fam.code}, "members": members, "donors": donor_rows, "missing_persons": mps,
            "svg": svg, "member_codes": [m.code for m in fam.members], **_labels()}


def _family_page(request: Request, db: DB, fam: Family, principal: Principal, *, status_code: int = 200,
                 problems: list[Problem] | None = None, form: str | None = None,
                 submitted: dict[str, str] | None = None, message: str | None = None) -> Response:
    return render(request, "family.html", principal, status_code=status_code, problems=problems or [],
                  form=form, submitted=submitted or {}, message=message, today=_today().isoformat(),
                  **family_context(db, fam, principal))


@router.get("/families/{code:path}")
def family_page(request: Request, code: str, db: DB, principal: Principal = P("families.read")) -> Response:
    """One family: the pedigree drawn, its members, donors and missing persons; the intake officer's
    forms (donors' details, a relative added, a donor sample linked)."""
    return _family_page(request, db, repo.get_family(db, code=code), principal)


def _to_family(fam_code: str, anchor: str) -> Response:
    return RedirectResponse(f"/families/{quote(fam_code, safe='')}#{anchor}", status_code=303)


@router.post("/donors/{barcode:path}/details")
def donor_submit(
    request: Request,
    barcode: str,
    db: DB,
    relationship: str = Form("", max_length=64),
    relationship_other: str = Form("", max_length=200),
    consent: str = Form(..., max_length=64),
    consent_date: str = Form("", max_length=32),
    date_of_birth: str = Form("", max_length=32),
    full_name: str = Form("", max_length=300),
    contact: str = Form("", max_length=300),
    principal: Principal = P("donors.write"),
) -> Response:
    """The donor form: every field at once, all or nothing; the audit entry names the fields changed."""
    donor = store.get_donor(db, barcode=barcode)
    values, problems = donor_values(relationship=relationship, relationship_other=relationship_other,
                                    consent=consent, consent_date=consent_date, date_of_birth=date_of_birth,
                                    full_name=full_name, contact=contact)
    if values is None:
        submitted = {"relationship": relationship, "relationship_other": relationship_other, "consent": consent,
                     "consent_date": consent_date, "date_of_birth": date_of_birth, "full_name": full_name,
                     "contact": contact}
        return _family_page(request, db, donor.family, principal, status_code=422, problems=problems,
                            form=f"donor-{barcode}", submitted=submitted)
    begin_write(db)
    donor = store.get_donor(db, barcode=barcode)
    fam_code = donor.family.code
    store.set_donor(db, donor=donor, values=values, by=principal.username)
    actions.commit(db)
    return _to_family(fam_code, f"donor-{barcode}")


@router.post("/families/{code:path}/members")
def relative_submit(
    request: Request,
    code: str,
    db: DB,
    member: str = Form("", max_length=200),
    sex: str = Form("", max_length=8),
    father: str = Form("", max_length=200),
    mother: str = Form("", max_length=200),
    donor_barcode: str = Form("", max_length=200),
    principal: Principal = P("pedigree.write"),
) -> Response:
    """Add a relative: parents among the members or new founders, a donor sample linked at once if
    given. The whole pedigree must stay valid; an edit after a matching run makes the family's
    candidates stale (evidence rule ``pedigree_changed``)."""
    member, father, mother, donor_barcode = (x.strip() for x in (member, father, mother, donor_barcode))
    problems = _add_relative(db, principal, code, member=member, sex=sex, father=father, mother=mother,
                             donor_barcode=donor_barcode)
    if problems:
        return _family_page(request, db, repo.get_family(db, code=code), principal, status_code=422,
                            problems=problems, form="add-relative",
                            submitted={"member": member, "sex": sex, "father": father, "mother": mother,
                                       "donor_barcode": donor_barcode})
    return _to_family(code, "pedigree")


def _add_relative(db: DB, principal: Principal, code: str, *, member: str, sex: str, father: str, mother: str,
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
    actions.commit(db)
    return []


@router.post("/families/{code:path}/donor-links")
def link_submit(
    request: Request,
    code: str,
    db: DB,
    member: str = Form(..., max_length=200),
    barcode: str = Form(..., max_length=200),
    principal: Principal = P("pedigree.write"),
) -> Response:
    """Mark a member typed by linking a reference sample's barcode to it; the profile comes with the
    laboratory's import of that barcode."""
    member, barcode = member.strip(), barcode.strip()
    problems = _link(db, principal, code, member=member, barcode=barcode)
    if problems:
        return _family_page(request, db, repo.get_family(db, code=code), principal, status_code=422,
                            problems=problems, form="link-donor", submitted={"member": member, "barcode": barcode})
    return _to_family(code, "pedigree")


def _link(db: DB, principal: Principal, code: str, *, member: str, barcode: str) -> list[Problem]:
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
    actions.commit(db)
    return []


# ---------------------------------------------------------------------------
# the remains page
# ---------------------------------------------------------------------------


@router.get("/remains/{barcode:path}")
def remains_page(request: Request, barcode: str, db: DB, principal: Principal = P("remains.read")) -> Response:
    """A remains: the genotypes of its current profile, every profile version with its provenance,
    its candidates and identifications."""
    r = repo.get_remains(db, barcode=barcode)
    profiles = repo.profiles_of(db, remains=r)
    files = store.import_files(db, profiles=profiles)
    versions = [{"version": p.version, "created_at": p.created_at, "laboratory": p.laboratory, "kit": p.kit,
                 "import_id": p.import_id, "file": files.get(p.import_id) if p.import_id else None,
                 "n_markers": len(p.genotypes), "dropout": p.dropout} for p in reversed(profiles)]
    current = profiles[-1] if profiles else None
    genotypes = [{"marker": m, "alleles": list(g)} for m, g in sorted(current.genotypes.items())] if current else []
    cands = [v.candidate_public(c) for c in repo.candidates_for_remains(db, remains=r)] \
        if principal.can("candidates.read") else None
    idents = [v.identification_public(db, i, principal) for i in repo.list_identifications(db, remains=r)] \
        if principal.can("identifications.read") else []
    return render(request, "remains.html", principal, r=v.remains_public(db, r), candidates=cands,
                  identifications=idents, versions=versions, genotypes=genotypes,
                  current_version=current.version if current else None)


# ---------------------------------------------------------------------------
# the family liaison
# ---------------------------------------------------------------------------


def _notification_public(n: Notification, donors: dict[int, Donor], names: dict[int, str],
                         users: dict[int, str]) -> dict[str, Any]:
    d = donors.get(n.donor_id) if n.donor_id else None
    return {"id": n.id, "donor": d.barcode if d else None, "donor_name": names.get(d.id, "") if d else "",
            "method": n.method, "notified_on": v.iso(n.notified_on), "note": n.note,
            "by": users.get(n.user_id) if n.user_id else None, "created_at": v.iso(n.created_at)}


def liaison_rows(db: DB, idents: list[Identification]) -> list[dict[str, Any]]:
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


def _liaison_page(request: Request, db: DB, principal: Principal, *, status_code: int = 200,
                  problems: list[Problem] | None = None, form: int | None = None,
                  submitted: dict[str, str] | None = None) -> Response:
    rows = liaison_rows(db, store.confirmed_identifications(db))
    withdrawn = [{"id": i.id, "remains": i.remains.barcode, "missing_person": i.missing_person.code,
                  "name": v.person_name(db, i.missing_person) or "", "family": i.missing_person.family.code,
                  "decided_at": i.decided_at, "decided_by": i.decided_by.username if i.decided_by else None}
                 for i in store.withdrawn_after_notification(db)]
    return render(request, "liaison.html", principal, status_code=status_code, rows=rows, withdrawn=withdrawn,
                  problems=problems or [],
                  form=form, submitted=submitted or {}, today=_today().isoformat(),
                  pending=sum(1 for r in rows if r["to_notify"]), **_labels())


@router.get("/liaison")
def liaison_page(request: Request, db: DB, principal: Principal = P("notifications.read")) -> Response:
    return _liaison_page(request, db, principal)


def notification_values(db: DB, ident: Identification, *, donor: str, method: str, notified_on: str,
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


def _record(db: DB, principal: Principal, identification_id: int, *, donor: str, method: str, notified_on: str,
            note: str) -> tuple[Notification | None, list[Problem]]:
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
    actions.commit(db)
    return n, []


@router.post("/liaison/identifications/{identification_id}/notifications")
def notification_submit(
    request: Request,
    identification_id: int,
    db: DB,
    donor: str = Form("", max_length=200),
    method: str = Form(..., max_length=32),
    notified_on: str = Form(..., max_length=32),
    note: str = Form("", max_length=10_000),
    principal: Principal = P("notifications.write"),
) -> Response:
    n, problems = _record(db, principal, identification_id, donor=donor.strip(), method=method,
                          notified_on=notified_on, note=note)
    if n is None:
        return _liaison_page(request, db, principal, status_code=422, problems=problems, form=identification_id,
                             submitted={"donor": donor, "method": method, "notified_on": notified_on, "note": note})
    return RedirectResponse(f"/liaison#ident-{identification_id}", status_code=303)


# -- the API twins ----------------------------------------------------------


class NotificationIn(BaseModel):
    donor: str | None = Field(default=None, max_length=200, description="the relative's donor barcode; none: a "
                                                                         "relative without a sample")
    method: str = Field(max_length=32, description="in_person, phone, letter or other")
    notified_on: str = Field(max_length=32, description="YYYY-MM-DD, not in the future")
    note: str = Field(default="", max_length=10_000)


def _api_notifications(db: DB, ident: Identification) -> dict[str, Any]:
    row = liaison_rows(db, [ident])[0]
    return {"identification": ident.id, "state": ident.state.value, "missing_person": row["missing_person"],
            "missing_person_name": row["name"], "family": row["family"], "relatives": row["relatives"],
            "notifications": row["notifications"]}


@api_router.get("/identifications/{identification_id}/notifications", tags=["identifications"])
def api_notifications(identification_id: int, db: DB,
                      principal: Principal = P("notifications.read")) -> dict[str, Any]:
    """A confirmed identification's relatives to notify (names, relationship, contact, consent) and the
    notifications recorded (family liaison only; 404 unless confirmed)."""
    ident = repo.get_identification(db, identification_id=identification_id)
    if ident.state != IdentificationState.confirmed:
        raise APIError(404, _("No confirmed identification #%(id)s", id=identification_id), code="not_found")
    return _api_notifications(db, ident)


@api_router.post("/identifications/{identification_id}/notifications", tags=["identifications"], status_code=201)
def api_notification_record(identification_id: int, body: NotificationIn, db: DB,
                            principal: Principal = P("notifications.write")) -> dict[str, Any]:
    """Record that a relative was told (409 unless the identification is confirmed; 422 naming the field
    for a relative not of the family, an unknown method or a date in the future)."""
    n, problems = _record(db, principal, identification_id, donor=(body.donor or "").strip(), method=body.method,
                          notified_on=body.notified_on, note=body.note)
    if n is None:
        raise _invalid(problems)
    return _api_notifications(db, repo.get_identification(db, identification_id=identification_id))


class RelativeIn(BaseModel):
    member: str = Field(min_length=1, max_length=64, description="the new member's code")
    sex: str = Field(default="", pattern="^(M|F)?$", description="M, F or empty (unknown)")
    father: str = Field(default="", max_length=64, description="a member, or a new founder's code; with mother")
    mother: str = Field(default="", max_length=64, description="a member, or a new founder's code; with father")
    donor_barcode: str = Field(default="", max_length=64, description="a reference sample linked at once")


class DonorUpdate(BaseModel):
    """The donor form's fields; a field left out keeps its value, ``null`` clears it (not ``consent``)."""

    relationship: str | None = Field(default=None, max_length=264,
                                     description="one of the list, or 'other: <text>'")
    consent: str | None = Field(default=None, max_length=64)
    consent_date: date | None = None
    date_of_birth: date | None = None
    full_name: str | None = Field(default=None, max_length=300)
    contact: str | None = Field(default=None, max_length=300)


class DonorLinkIn(BaseModel):
    member: str = Field(min_length=1, max_length=200)
    barcode: str = Field(min_length=1, max_length=64, description="the reference sample's barcode")


@api_router.patch("/donors/{barcode:path}", tags=["families"])
def api_update_donor(barcode: str, body: DonorUpdate, db: DB,
                     principal: Principal = P("donors.write")) -> dict[str, Any]:
    """Relationship, consent, date of birth and personal data of a reference donor (intake officer): the
    twin of the family page's donor form, with the same checks, all or nothing, audited by field names."""
    donor = store.get_donor(db, barcode=barcode)
    det = store.donor_details(db, donors=[donor]).get(donor.id)
    given = body.model_fields_set

    def pick(field: str, current: Any) -> str:
        val = getattr(body, field) if field in given else current
        return "" if val is None else val.isoformat() if isinstance(val, date) else str(val)

    rel = pick("relationship", donor.relationship_to_missing)
    other = ""
    if rel.startswith("other:"):
        rel, other = "other", rel.removeprefix("other:")
    values, problems = donor_values(
        relationship=rel, relationship_other=other, consent=pick("consent", donor.consent),
        consent_date=pick("consent_date", donor.consent_date),
        date_of_birth=pick("date_of_birth", det.date_of_birth if det else None),
        full_name=pick("full_name", det.full_name if det else ""),
        contact=pick("contact", det.contact if det else None),
        consent_given=bool({"consent", "consent_date"} & given))
    if values is None:
        raise _invalid(problems)
    begin_write(db)
    donor = store.get_donor(db, barcode=barcode)
    changed = store.set_donor(db, donor=donor, values=values, by=principal.username)
    actions.commit(db)
    return {"barcode": donor.barcode, "relationship": donor.relationship_to_missing, "consent": donor.consent,
            "consent_date": v.iso(donor.consent_date), "changed": changed}


def _invalid(problems: list[Problem]) -> APIError:
    return APIError(422, "; ".join(p.message for p in problems), code="invalid",
                    details=[{"field": p.field, "message": p.message} for p in problems])


@api_router.post("/families/{code:path}/members", tags=["families"], status_code=201)
def api_add_relative(code: str, body: RelativeIn, db: DB, principal: Principal = P("pedigree.write")
                     ) -> dict[str, Any]:
    """Add a relative to a family's pedigree (intake officer): the twin of the family page's form.
    422 naming the field when the pedigree would not be valid; nothing is written."""
    problems = _add_relative(db, principal, code, member=body.member.strip(), sex=body.sex,
                             father=body.father.strip(), mother=body.mother.strip(),
                             donor_barcode=body.donor_barcode.strip())
    if problems:
        raise _invalid(problems)
    return v.family_public(db, repo.get_family(db, code=code), principal)


@api_router.post("/families/{code:path}/donor-links", tags=["families"], status_code=201)
def api_link_donor(code: str, body: DonorLinkIn, db: DB, principal: Principal = P("pedigree.write")
                   ) -> dict[str, Any]:
    """Link a reference sample's barcode to a member (intake officer): the twin of the family page's form."""
    problems = _link(db, principal, code, member=body.member.strip(), barcode=body.barcode.strip())
    if problems:
        raise _invalid(problems)
    return v.family_public(db, repo.get_family(db, code=code), principal)
