"""The family page (pedigree drawn, members, donors; the intake officer's donor and pedigree forms) and the
remains page (genotypes, profile versions): roles, names only for the intake officer, validation that
writes nothing, the audit without personal values, consent withdrawn, the pedigree edit and its evidence
rule. In-process, on SQLite (the forms' writes are the store's, tested on PostgreSQL elsewhere)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opendvi.store import repositories as repo
from opendvi.store.models import AuditEntry, Donor, DonorDetails, PedigreeMember
from tests.servicekit import SECRET_NAME, assert_error_shape, bearer, make_app, match, migrated_engine

USERS = ("admin", "intake", "lab", "dvi", "reviewer", "liaison")
FUTURE = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with migrated_engine("sqlite", tmp_path) as engine:
        app = make_app(engine)
        client = TestClient(app)
        yield {"app": app, "client": client, "h": {u: bearer(client, u) for u in USERS}}


def _db(svc: dict[str, Any]) -> Any:
    return svc["app"].state.sessionmaker()


def _audit_count(svc: dict[str, Any]) -> int:
    with _db(svc) as db:
        return int(db.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def _donor_form(**over: str) -> dict[str, str]:
    form = {"relationship": "father", "relationship_other": "", "consent": "identification",
            "consent_date": "2026-03-01", "date_of_birth": "1961-05-17", "full_name": f"{SECRET_NAME} father",
            "contact": "+380 44 000 00 00"}
    form.update(over)
    return form


def test_family_page__for_the_permitted_roles_only(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    for user in ("intake", "dvi", "reviewer", "admin"):
        r = c.get("/families/F5", headers=h[user])
        assert r.status_code == 200, (user, r.text[:300])
        assert "<svg" in r.text and "F5-HM1" in r.text and "F5-R1" in r.text
        assert '<img src="/plots/families/F5/lr-distribution.svg"' in r.text
    for user in ("lab", "liaison"):
        assert_error_shape(c.get("/families/F5", headers=h[user]), 403)
    assert_error_shape(c.get("/families/NOPE", headers=h["intake"]), 404)
    # the families list links each family to its page
    assert 'href="/families/F5"' in c.get("/families?q=F5", headers=h["dvi"]).text


def test_family_page__names_dates_of_birth_and_contact_only_for_the_intake_officer(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    assert c.put("/api/missing-persons/M1/details", json={"full_name": f"{SECRET_NAME} M1"},
                 headers=h["intake"]).status_code == 200
    r = c.post("/donors/F1-R1/details", data=_donor_form(), headers=h["intake"], follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/families/F1#donor-F1-R1", r.text[:300]
    page = c.get("/families/F1", headers=h["intake"]).text
    assert f"{SECRET_NAME} M1" in page and f"{SECRET_NAME} father" in page and "+380 44 000 00 00" in page
    assert "1961" in page and 'action="/donors/F1-R1/details"' in page and 'action="/families/F1/members"' in page
    for user in ("dvi", "reviewer", "admin"):
        page = c.get("/families/F1", headers=h[user]).text
        assert SECRET_NAME not in page and "+380" not in page and "1961" not in page, user
        assert "F1-R1" in page and "identification only" in page  # consent scope: not personal
        assert 'action="/donors/' not in page and 'action="/families/F1/members"' not in page  # no forms


def test_donor_form__invalid_input_is_refused_naming_the_field_and_writes_nothing(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    before = _audit_count(svc)
    cases = [
        ({"consent_date": FUTURE}, "consent_date", "in the future"),
        ({"date_of_birth": FUTURE}, "date_of_birth", "in the future"),
        ({"relationship": "second cousin twice removed"}, "relationship", "not one of the list"),
        ({"relationship": "other", "relationship_other": ""}, "relationship_other", "describe"),
        ({"consent_date": ""}, "consent_date", "required"),
        ({"consent": "everything"}, "consent", "not a consent scope"),
        ({"consent_date": "2026-02-30"}, "consent_date", "not a date"),
    ]
    for over, field, words in cases:
        r = c.post("/donors/F1-R1/details", data=_donor_form(**over), headers=h["intake"])
        assert r.status_code == 422, (over, r.status_code)
        assert f'data-field="{field}"' in r.text and words in r.text, (over, r.text[:2000])
    # a bad field among good ones: nothing of the good ones was written either
    with _db(svc) as db:
        d = db.execute(select(Donor).where(Donor.barcode == "F1-R1")).scalar_one()
        assert d.relationship_to_missing is None and d.consent_date is None
        assert db.execute(select(DonorDetails).where(DonorDetails.donor_id == d.id)).first() is None
    assert _audit_count(svc) == before
    # the other roles may not use the form
    for user in ("dvi", "lab", "reviewer", "admin", "liaison"):
        assert_error_shape(c.post("/donors/F1-R1/details", data=_donor_form(), headers=h[user]), 403)


def test_donor_form__saved_all_at_once_and_audited_without_personal_values(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    form = _donor_form(relationship="other", relationship_other="step-father")
    assert c.post("/donors/F1-R1/details", data=form, headers=h["intake"], follow_redirects=False).status_code == 303
    with _db(svc) as db:
        d = db.execute(select(Donor).where(Donor.barcode == "F1-R1")).scalar_one()
        det = db.execute(select(DonorDetails).where(DonorDetails.donor_id == d.id)).scalar_one()
        assert d.relationship_to_missing == "other: step-father" and str(d.consent_date) == "2026-03-01"
        assert det.full_name == form["full_name"] and det.contact == form["contact"]
        assert str(det.date_of_birth) == "1961-05-17"
        entry = db.execute(select(AuditEntry).where(AuditEntry.action == "donor.details")).scalar_one()
    details = json.loads(entry.details)
    assert set(details["fields"]) == {"relationship", "consent_date", "full_name", "contact", "date_of_birth"}
    assert details["relationship"] == "other: step-father" and details["consent_date"] == "2026-03-01"
    for secret in (SECRET_NAME, "+380", "1961"):
        assert secret not in entry.details
    assert "step-father" in c.get("/families/F1", headers=h["dvi"]).text
    # the same form again changes nothing: no audit entry
    before = _audit_count(svc)
    assert c.post("/donors/F1-R1/details", data=form, headers=h["intake"], follow_redirects=False).status_code == 303
    assert _audit_count(svc) == before


def test_consent_withdrawn__flagged_left_out_of_matching_and_earlier_candidates_stale(svc: dict[str, Any]) -> None:
    c, h, app = svc["client"], svc["h"], svc["app"]
    match(c, app, h["dvi"])
    cand = next(x for x in c.get("/api/candidates", params={"per_page": 500}, headers=h["dvi"]).json()
                if x["missing_person"] == "M1")
    r = c.post("/donors/F1-R1/details", data=_donor_form(consent="withdrawn", consent_date=""), headers=h["intake"],
               follow_redirects=False)
    assert r.status_code == 303
    page = c.get("/families/F1", headers=h["dvi"]).text
    assert "consent withdrawn — excluded from matching" in page
    with _db(svc) as db:
        stored = repo.build_case(db, operation=repo.get_operation(db, code="demo"))
    fam = next(f for f in stored.case.families if f.id == "F1")
    assert "F1-R1" not in fam.references and "F1-R2" in fam.references
    # a proposal on the run before the withdrawal is refused: run matching again
    err = assert_error_shape(c.post("/api/identifications", json={"candidate_id": cand["id"]}, headers=h["dvi"]),
                             409)
    assert "consent of F1-R1 withdrawn" in err["message"], err


def test_pedigree_edit__adds_a_relative_and_the_drawing_shows_it(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    before = _audit_count(svc)
    form = {"member": "F2-HS", "sex": "F", "father": "F2-FA", "mother": "F2-MO2", "donor_barcode": "BC-F2-HS"}
    r = c.post("/families/F2/members", data=form, headers=h["intake"], follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/families/F2#pedigree", r.text[:1000]
    page = c.get("/families/F2", headers=h["dvi"]).text
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "F2-HS" in svg and "F2-MO2" in svg  # the relative and her mother, a new founder
    assert "sample linked, no profile yet" in page and "BC-F2-HS" in page
    with _db(svc) as db:
        fam = repo.get_family(db, code="F2")
        rows = {m.code: (m.father, m.mother, m.sex) for m in fam.members}
        assert rows["F2-HS"] == ("F2-FA", "F2-MO2", "F") and rows["F2-MO2"] == (None, None, "F")
        assert db.execute(select(Donor).where(Donor.barcode == "BC-F2-HS")).scalar_one().member.code == "F2-HS"
        entry = db.execute(select(AuditEntry).where(AuditEntry.action == "family.pedigree")).scalar_one()
    assert _audit_count(svc) == before + 1
    assert json.loads(entry.details)["member"] == "F2-HS" and entry.object_id == "F2"
    # link a donor sample to an existing member
    r = c.post("/families/F2/donor-links", data={"member": "F2-FA", "barcode": "BC-F2-FA"}, headers=h["intake"],
               follow_redirects=False)
    assert r.status_code == 303
    row = re.search(r'<tr id="member-F2-FA">.*?</tr>', c.get("/families/F2", headers=h["intake"]).text, re.S)
    assert row and "sample linked, no profile yet" in row.group(0) and "BC-F2-FA" in row.group(0)


def test_pedigree_edit__an_invalid_pedigree_is_refused_naming_the_field(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    before = _audit_count(svc)
    with _db(svc) as db:
        n_members = db.scalar(select(func.count()).select_from(PedigreeMember))
    cases = [
        ({"member": "F2-R1", "sex": "M"}, "code", "already has a member"),
        ({"member": "X1", "sex": "M", "father": "F2-MO", "mother": "NEWMO"}, "father", "has sex F"),
        ({"member": "X1", "sex": "M", "father": "F2-FA"}, "mother", "both"),
        ({"member": "X 1", "sex": "M"}, "code", "use letters"),
        ({"member": "X1", "sex": "Q"}, "sex", "M, F or unknown"),
        ({"member": "X1", "sex": "M", "donor_barcode": "F2-R2"}, "donor_barcode", "already the reference"),
        ({"member": "X1", "sex": "M", "donor_barcode": "V1"}, "donor_barcode", "remains"),
    ]
    for form, field, words in cases:
        r = c.post("/families/F2/members", data=form, headers=h["intake"])
        assert r.status_code == 422, (form, r.status_code)
        assert f'data-field="{field}"' in r.text and words in r.text, (form, r.text[:3000])
    for form, field, words in [({"member": "M2", "barcode": "B1"}, "member", "missing person"),
                               ({"member": "NOBODY", "barcode": "B1"}, "member", "no member"),
                               ({"member": "F2-R1", "barcode": "B2"}, "member", "already linked")]:
        r = c.post("/families/F2/donor-links", data=form, headers=h["intake"])
        assert r.status_code == 422 and f'data-field="{field}"' in r.text and words in r.text, (form, r.text[:2000])
    with _db(svc) as db:
        assert db.scalar(select(func.count()).select_from(PedigreeMember)) == n_members
    assert _audit_count(svc) == before
    for user in ("dvi", "lab", "reviewer", "admin", "liaison"):
        assert_error_shape(c.post("/families/F2/members", data={"member": "X2"}, headers=h[user]), 403)
        assert_error_shape(c.post("/families/F2/donor-links", data={"member": "F2-FA", "barcode": "B"},
                                  headers=h[user]), 403)


def test_pedigree_edit__the_core_validation_refuses_a_cycle() -> None:
    """The store's own guard (the form's checks come first): the core pedigree validation."""
    from opendvi.core.errors import PedigreeError
    from opendvi.store.liaison import _check_pedigree
    from opendvi.store.models import Family

    fam = Family(code="C")
    members = [PedigreeMember(code="A", father=None, mother=None, sex="M"),
               PedigreeMember(code="B", father=None, mother=None, sex="F")]
    from opendvi.core.pedigree import Individual

    with pytest.raises(PedigreeError, match="single parent"):
        _check_pedigree(members, [Individual("C1", "A", None, "M")], fam)
    _check_pedigree(members, [Individual("C1", "A", "B", "M")], fam)


def test_pedigree_edit_after_a_run__the_family_candidates_need_a_new_run(svc: dict[str, Any]) -> None:
    c, h, app = svc["client"], svc["h"], svc["app"]
    match(c, app, h["dvi"])
    cands = c.get("/api/candidates", params={"per_page": 500}, headers=h["dvi"]).json()
    f2 = next(x for x in cands if x["family"] == "F2")
    other = next(x for x in cands if x["family"] not in ("F2",) and x["rank"] == 1 and x["remains"] != f2["remains"])
    r = c.post("/families/F2/members", data={"member": "F2-SP", "sex": "F"}, headers=h["intake"],
               follow_redirects=False)
    assert r.status_code == 303
    err = assert_error_shape(c.post("/api/identifications", json={"candidate_id": f2["id"], "override_reason": "x"},
                                    headers=h["dvi"]), 409)
    assert "family F2 changed after run" in err["message"] and "add relative F2-SP" in err["message"], err
    # other families' candidates are untouched
    assert c.post("/api/identifications", json={"candidate_id": other["id"]}, headers=h["dvi"]).status_code == 201
    # a new run clears it
    match(c, app, h["dvi"])
    fresh = next(x for x in c.get("/api/candidates", params={"per_page": 500}, headers=h["dvi"]).json()
                 if x["remains"] == f2["remains"] and x["missing_person"] == f2["missing_person"])
    assert c.post("/api/identifications", json={"candidate_id": fresh["id"]}, headers=h["dvi"]).status_code == 201


def test_remains_page__genotypes_and_profile_versions(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    case = json.loads(Path(__file__).resolve().parents[1].joinpath("src/opendvi/data/demo-case.json").read_text())
    v1 = next(r for r in case["remains"] if r["id"] == "V1")
    for user in ("lab", "dvi", "reviewer", "admin"):
        r = c.get("/remains/V1", headers=h[user])
        assert r.status_code == 200, user
        table = r.text[r.text.index('id="genotype-table"'):]
        table = table[:table.index("</table>")]
        for marker, alleles in v1["genotypes"].items():
            assert f'<th scope="row">{marker}</th><td>{", ".join(alleles)}</td>' in table, marker
        versions = r.text[r.text.index('id="version-table"'):]
        assert "demo-case.json" in versions[:versions.index("</table>")]
    for user in ("intake", "liaison"):
        assert_error_shape(c.get("/remains/V1", headers=h[user]), 403)
    # a re-typing adds a version, listed first
    v1["genotypes"]["TH01"] = ["6", "6"] if v1["genotypes"]["TH01"] != ["6", "6"] else ["7", "7"]
    assert c.post("/api/operations/demo/imports?filename=retyped.json", json=case,
                  headers=h["lab"]).status_code == 201
    page = c.get("/remains/V1", headers=h["lab"]).text
    versions = page[page.index('id="version-table"'):]
    assert versions.index("retyped.json") < versions.index("demo-case.json")
    assert "version 2" in page


def test_pedigree_api_twins__add_and_link_or_422_naming_the_field(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    r = c.post("/api/families/F3/members", json={"member": "F3-SIB", "sex": "M", "father": "F3-FA",
                                                  "mother": "F3-MO"}, headers=h["intake"])
    assert r.status_code == 201, r.text
    assert {"id": "F3-SIB", "father": "F3-FA", "mother": "F3-MO", "sex": "M", "missing": False,
            "donor": None} in r.json()["members"]
    r = c.post("/api/families/F3/donor-links", json={"member": "F3-SIB", "barcode": "BC-F3-SIB"},
               headers=h["intake"])
    assert r.status_code == 201, r.text
    linked = next(m for m in r.json()["members"] if m["id"] == "F3-SIB")
    assert linked["donor"]["barcode"] == "BC-F3-SIB" and linked["donor"]["profile_version"] is None
    before = _audit_count(svc)
    err = assert_error_shape(c.post("/api/families/F3/members", json={"member": "F3-X", "father": "F3-MO",
                                                                      "mother": "F3-FA"}, headers=h["intake"]), 422)
    assert {d["field"] for d in err["details"]} == {"father", "mother"}, err
    err = assert_error_shape(c.post("/api/families/F3/donor-links", json={"member": "F3-SIB", "barcode": "BC-2"},
                                    headers=h["intake"]), 422)
    assert [d["field"] for d in err["details"]] == ["member"] and "already linked" in err["message"]
    assert _audit_count(svc) == before
    assert_error_shape(c.post("/api/families/F3/members", json={"member": "F3-Y"}, headers=h["dvi"]), 403)
    assert_error_shape(c.post("/api/families/NOPE/members", json={"member": "F3-Y"}, headers=h["intake"]), 404)


def test_api_patch_donor__the_forms_checks_and_audit(tmp_path: Path) -> None:
    """``PATCH /api/donors/{barcode}`` is the donor form's twin: the same checks (a future date, a
    relationship off the list: 422 naming the field, nothing written), date of birth, fields left out
    kept, the audit entry naming the fields without personal values."""
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = bearer(client, "intake")
        bad = client.patch("/api/donors/F3-R1", json={"relationship": "neighbour"}, headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "relationship"
        bad = client.patch("/api/donors/F3-R1", json={"consent": "identification", "consent_date": "2999-01-01"},
                           headers=h)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "consent_date"
        ok = client.patch("/api/donors/F3-R1", json={"relationship": "other: step-father", "full_name": "Ivan Secretko",
                                                     "date_of_birth": "1961-05-17"}, headers=h)
        assert ok.status_code == 200, ok.text
        assert ok.json()["relationship"] == "other: step-father"
        assert set(ok.json()["changed"]) == {"relationship", "full_name", "date_of_birth"}
        again = client.patch("/api/donors/F3-R1", json={"contact": "+380 44 000 0000"}, headers=h)
        assert again.json()["changed"] == ["contact"]  # the rest kept
        log = json.dumps(client.get("/api/audit?per_page=200", headers=bearer(client, "admin")).json())
        assert "Secretko" not in log and "1961-05-17" not in log and "donor.details" in log
        assert client.patch("/api/donors/F3-R1", json={"relationship": "father"},
                            headers=bearer(client, "dvi")).status_code == 403
