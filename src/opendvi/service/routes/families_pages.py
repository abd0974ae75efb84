"""Intake and liaison pages: a family's page (pedigree drawn, members, donors; the donor form and the
pedigree form of the intake officer), the remains page (genotypes, profile versions), and the family
liaison's list of confirmed identifications with the relatives to notify.

Input is checked by :mod:`opendvi.service.intake` (the API's twins of these forms call it too), every
problem named by its field and worded for people; nothing is written unless all of it is valid.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from opendvi.i18n import gettext as _
from opendvi.i18n import pgettext, terms
from opendvi.service import fragments_views as fv
from opendvi.service import intake
from opendvi.service import views as v
from opendvi.service.deps import DB, P, Principal
from opendvi.service.intake import Problem
from opendvi.service.pedigree_svg import Person, pedigree_svg
from opendvi.service.routes.pages import render
from opendvi.store import liaison as store
from opendvi.store import repositories as repo
from opendvi.store.models import Family

router = APIRouter(include_in_schema=False)


# ---------------------------------------------------------------------------
# words for the stored values (at render time, in the request's language)
# ---------------------------------------------------------------------------


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
    # relationships: one home, opendvi.i18n.terms
    return {"relationships": terms.TABLES["relationship"](), "consents": consent_labels(), "methods": method_labels()}


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
            "svg": svg, "member_codes": [m.code for m in fam.members], **_labels(),
            # the lineage haplotypes typed: genetic data, for the roles that read profiles
            "haplotypes": family_haplotypes(donors, versions) if principal.can("remains.read") else None}


def family_haplotypes(donors: list[Any], versions: dict[int, Any]) -> dict[str, Any]:
    """The Y-STR and mtDNA haplotypes of the family's usable current profiles, Y loci in first-seen order."""
    rows = [{"member": d.member.code, "barcode": d.barcode, "version": p.version, "haplotypes": p.haplotypes}
            for d in donors if (p := versions.get(d.id)) is not None and p.haplotypes
            and d.consent != store.CONSENT_WITHDRAWN]
    ys = [r for r in rows if r["haplotypes"].get("Y")]
    return {"loci": list(dict.fromkeys(locus for r in ys for locus in r["haplotypes"]["Y"])), "y": ys,
            "mt": [r for r in rows if r["haplotypes"].get("mt")]}


def _family_page(request: Request, db: DB, fam: Family, principal: Principal, *, status_code: int = 200,
                 problems: list[Problem] | None = None, form: str | None = None,
                 submitted: dict[str, str] | None = None, message: str | None = None) -> Response:
    return render(request, "family.html", principal, status_code=status_code, problems=problems or [],
                  form=form, submitted=submitted or {}, message=message, today=intake.today().isoformat(),
                  **family_context(db, fam, principal))


@router.get("/families/{code:path}")
def family_page(request: Request, code: str, db: DB, principal: Principal = P("families.read")) -> Response:
    """One family: the pedigree drawn, its members, donors and missing persons; the intake officer's
    forms (donors' details, a relative added, a donor sample linked)."""
    return _family_page(request, db, repo.get_family(db, code=code), principal)


def _to_family(fam_code: str, anchor: str) -> Response:
    return RedirectResponse(f"/families/{quote(fam_code, safe='')}#{anchor}", status_code=303)


def _pedigree_edited(request: Request, db: DB, principal: Principal, code: str, problems: list[Problem],
                     form: str, submitted: dict[str, str]) -> Response:
    """After a pedigree form: back to the pedigree, or the page again with the problems (422)."""
    if problems:
        return _family_page(request, db, repo.get_family(db, code=code), principal, status_code=422,
                            problems=problems, form=form, submitted=submitted)
    return _to_family(code, "pedigree")


class DonorForm(BaseModel):
    """The family page's donor form (its other fields, ``csrf_token``, are the dependencies')."""

    relationship: str = Field("", max_length=64)
    relationship_other: str = Field("", max_length=200)
    consent: str = Field(max_length=64)
    consent_date: str = Field("", max_length=32)
    date_of_birth: str = Field("", max_length=32)
    full_name: str = Field("", max_length=300)
    contact: str = Field("", max_length=300)


@router.post("/donors/{barcode:path}/details")
def donor_submit(request: Request, barcode: str, db: DB, form: Annotated[DonorForm, Form()],
                 principal: Principal = P("donors.write")) -> Response:
    """The donor form: every field at once, all or nothing; the audit entry names the fields changed."""
    donor = store.get_donor(db, barcode=barcode)
    submitted = form.model_dump()
    values, problems = intake.donor_values(**submitted)
    if values is None:
        return _family_page(request, db, donor.family, principal, status_code=422, problems=problems,
                            form=f"donor-{barcode}", submitted=submitted)
    donor, _changed = intake.set_donor(db, principal, barcode, values)
    return _to_family(donor.family.code, f"donor-{barcode}")


class RelativeForm(BaseModel):
    """The pedigree form: a new member, his parents (members or new founders), a donor sample."""

    member: str = Field("", max_length=200)
    sex: str = Field("", max_length=8)
    father: str = Field("", max_length=200)
    mother: str = Field("", max_length=200)
    donor_barcode: str = Field("", max_length=200)


@router.post("/families/{code:path}/members")
def relative_submit(request: Request, code: str, db: DB, form: Annotated[RelativeForm, Form()],
                    principal: Principal = P("pedigree.write")) -> Response:
    """Add a relative: parents among the members or new founders, a donor sample linked at once if
    given. The whole pedigree must stay valid; an edit after a matching run makes the family's
    candidates stale (evidence rule ``pedigree_changed``)."""
    submitted = {k: val if k == "sex" else val.strip() for k, val in form.model_dump().items()}
    problems = intake.add_relative(db, principal, code, **submitted)
    return _pedigree_edited(request, db, principal, code, problems, "add-relative", submitted)


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
    problems = intake.link_donor(db, principal, code, member=member, barcode=barcode)
    return _pedigree_edited(request, db, principal, code, problems, "link-donor",
                            {"member": member, "barcode": barcode})


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
                  current_version=current.version if current else None,
                  haplotypes=current.haplotypes if current else None,
                  fragments=fv.remains_fragments(db, r))


# ---------------------------------------------------------------------------
# the family liaison
# ---------------------------------------------------------------------------


def _liaison_page(request: Request, db: DB, principal: Principal, *, status_code: int = 200,
                  problems: list[Problem] | None = None, form: int | None = None,
                  submitted: dict[str, str] | None = None) -> Response:
    rows = intake.liaison_rows(db, store.confirmed_identifications(db))
    withdrawn = [{"id": i.id, "remains": i.remains.barcode, "missing_person": i.missing_person.code,
                  "name": v.person_name(db, i.missing_person) or "", "family": i.missing_person.family.code,
                  "decided_at": i.decided_at, "decided_by": i.decided_by.username if i.decided_by else None}
                 for i in store.withdrawn_after_notification(db)]
    return render(request, "liaison.html", principal, status_code=status_code, rows=rows, withdrawn=withdrawn,
                  problems=problems or [],
                  form=form, submitted=submitted or {}, today=intake.today().isoformat(),
                  pending=sum(1 for r in rows if r["to_notify"]), **_labels())


@router.get("/liaison")
def liaison_page(request: Request, db: DB, principal: Principal = P("notifications.read")) -> Response:
    return _liaison_page(request, db, principal)


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
    n, problems = intake.record_notification(db, principal, identification_id, donor=donor.strip(), method=method,
                                             notified_on=notified_on, note=note)
    if n is None:
        return _liaison_page(request, db, principal, status_code=422, problems=problems, form=identification_id,
                             submitted={"donor": donor, "method": method, "notified_on": notified_on, "note": note})
    return RedirectResponse(f"/liaison#ident-{identification_id}", status_code=303)

