"""The API's families: paged list, a family with its pedigree, a missing person's personal data, and
the intake officer's twins of the family page's forms (a donor's details, a relative added, a donor
sample linked), with the same checks (:mod:`opendvi.service.intake`)."""

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from opendvi.service import intake
from opendvi.service import schemas as s
from opendvi.service import views as v
from opendvi.service.deps import DB, P, Principal
from opendvi.service.routes.api._common import Ident, ListQuery, paging, router
from opendvi.service.writes import writing
from opendvi.store import liaison as store
from opendvi.store import repositories as repo


class DetailsIn(BaseModel):
    full_name: str = Field(min_length=1, max_length=300)
    date_of_birth: date | None = None
    place_last_seen: str | None = Field(default=None, max_length=300)
    notes: str | None = Field(default=None, max_length=10_000)


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


# ---------------------------------------------------------------------------
# the twins of the family page's forms
# ---------------------------------------------------------------------------


@router.patch("/donors/{barcode:path}", tags=["families"], response_model=s.DonorOut)
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
    values, problems = intake.donor_values(
        relationship=rel, relationship_other=other, consent=pick("consent", donor.consent),
        consent_date=pick("consent_date", donor.consent_date),
        date_of_birth=pick("date_of_birth", det.date_of_birth if det else None),
        full_name=pick("full_name", det.full_name if det else ""),
        contact=pick("contact", det.contact if det else None),
        consent_given=bool({"consent", "consent_date"} & given))
    if values is None:
        raise intake.invalid(problems)
    donor, changed = intake.set_donor(db, principal, barcode, values)
    return {"barcode": donor.barcode, "relationship": donor.relationship_to_missing, "consent": donor.consent,
            "consent_date": v.iso(donor.consent_date), "changed": changed}


@router.post("/families/{code:path}/members", tags=["families"], status_code=201, response_model=s.FamilyOut)
def api_add_relative(code: str, body: RelativeIn, db: DB, principal: Principal = P("pedigree.write")) -> dict[str, Any]:
    """Add a relative to a family's pedigree (intake officer): the twin of the family page's form.
    422 naming the field when the pedigree would not be valid; nothing is written."""
    problems = intake.add_relative(db, principal, code, member=body.member.strip(), sex=body.sex,
                                   father=body.father.strip(), mother=body.mother.strip(),
                                   donor_barcode=body.donor_barcode.strip())
    if problems:
        raise intake.invalid(problems)
    return v.family_public(db, repo.get_family(db, code=code), principal)


@router.post("/families/{code:path}/donor-links", tags=["families"], status_code=201, response_model=s.FamilyOut)
def api_link_donor(code: str, body: DonorLinkIn, db: DB, principal: Principal = P("pedigree.write")) -> dict[str, Any]:
    """Link a reference sample's barcode to a member (intake officer): the twin of the family page's form."""
    problems = intake.link_donor(db, principal, code, member=body.member.strip(), barcode=body.barcode.strip())
    if problems:
        raise intake.invalid(problems)
    return v.family_public(db, repo.get_family(db, code=code), principal)


# ---------------------------------------------------------------------------
# families and personal data
# ---------------------------------------------------------------------------


@router.get("/families", tags=["families"], response_model=list[s.FamilyOut])
def list_families(
    db: DB,
    lq: Annotated[ListQuery, Depends(paging("code", "code, created; - for descending"))],
    q: str | None = Query(None, max_length=64, description="in the family code or a missing person's code"),
    principal: Principal = P("families.read"),
) -> list[dict[str, Any]]:
    """Families, paged (the total in ``X-Total-Count``)."""
    pg = lq.fetch(repo.page_families, session=db, q=q)
    return lq.out(pg, v.families_public(db, pg.items, principal))


@router.get("/families/{code:path}", tags=["families"], response_model=s.FamilyOut)
def get_family(code: Ident, db: DB, principal: Principal = P("families.read")) -> dict[str, Any]:
    return v.family_public(db, repo.get_family(db, code=code), principal)


@router.put("/missing-persons/{code:path}/details", tags=["families"], response_model=s.DetailsOut)
def set_details(code: Ident, body: DetailsIn, db: DB, principal: Principal = P("persons.write")) -> dict[str, Any]:
    """Personal data of a missing person (intake officer only)."""
    with writing(db):
        mp = repo.get_missing_person(db, code=code)
        det = repo.set_missing_person_details(db, missing_person=mp, full_name=body.full_name,
                                              date_of_birth=body.date_of_birth,
                                              place_last_seen=body.place_last_seen, notes=body.notes,
                                              by=principal.username)
    return {"missing_person": mp.code, "full_name": det.full_name, "date_of_birth": v.iso(det.date_of_birth),
            "place_last_seen": det.place_last_seen, "notes": det.notes}
