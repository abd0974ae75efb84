"""Lineage evidence (Y-STR, mtDNA) through the service, on SQLite and PostgreSQL (issue 12).

A simulated case with Y and mtDNA (``simulate_case(lineage=("Y", "mt"))``) is imported through the API
in two operations; one family's untyped father carries the code of another family's typed reference
(member codes are unique per family only, haplotypes are looked up by person). A matching run's
candidates equal ``opendvi pairwise`` on the case file (before the two were split): the combined LR
and each system's LR to 1e-9, the lineage mismatches exactly; the run records the lineage databases'
SHA-256. The match page (and the identification report) shows the Y haplotypes of the remains and of
the paternal-line reference side by side with a one-repeat difference marked in words and style, and
the mtDNA variants with a heteroplasmy; the remains and family pages show the haplotypes. Imports stay
all or nothing with errors naming the field; a re-typed haplotype adds a profile version; no name
reaches the DNA side on any of these pages.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opendvi.core.lineage_mt import IUPAC, parse_mt_variant, rcrs
from opendvi.io.case_json import case_from_dict
from opendvi.screening import simulate_case
from opendvi.store.models import AuditEntry, Profile, Remains
from opendvi.store.models_lineage import LineageDatabase
from tests import clikit
from tests.servicekit import BACKENDS, SECRET_NAME, assert_error_shape, bearer, make_app, match, migrated_engine

LOG10 = math.log(10.0)
TRUE_REMAINS, TRUE_MISSING, Y_REF = "V000004", "M000001", "F000001-R1"
#: family F000002's untyped father, given the code of family F000001's typed paternal reference
RENAMED_FAMILY, RENAMED_MEMBER = "F000002", "F000002-FA"


def _whole() -> tuple[dict[str, Any], str, str]:
    """The case (dvi-case/1), the Y locus where the paternal reference of the true pairing was moved
    one repeat up, and the heteroplasmy given to the remains' mtDNA."""
    case, truth = simulate_case(families=5, remains=6, seed=3, lineage=("Y", "mt"))
    assert truth.missing[TRUE_REMAINS] == TRUE_MISSING
    from opendvi.io.case_json import case_to_dict

    doc = case_to_dict(case)
    for system in ("Y", "mt"):  # a smaller database: a lighter import, the same code paths
        db = doc["lineage"][system]["database"]
        db["haplotypes"] = db["haplotypes"][:300]
    remains = next(r for r in doc["remains"] if r["id"] == TRUE_REMAINS)
    fam = next(f for f in doc["families"] if f["id"] == "F000001")
    ref = next(m for m in fam["members"] if m["id"] == Y_REF)
    locus = next(k for k, v in ref["haplotypes"]["Y"].items()  # a single-copy locus, an integer allele
                 if v.isdigit() and remains["haplotypes"]["Y"].get(k) == v)
    ref["haplotypes"]["Y"][locus] = str(int(ref["haplotypes"]["Y"][locus]) + 1)
    variants = remains["haplotypes"]["mt"]["variants"]
    k = next(i for i, v in enumerate(variants) if parse_mt_variant(v)[0][1] == 0 and parse_mt_variant(v)[1] in "ACGT")
    (pos, _ins), base = parse_mt_variant(variants[k])
    code = next(c for c, bases in IUPAC.items() if bases == frozenset({base, rcrs()[pos - 1]}))
    variants[k] = f"{pos}{code}"
    return doc, locus, variants[k]


def _split(whole: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Operation A: every remains and family F000001; B: the other families, F000002's untyped father
    renamed to the code of F000001's typed paternal reference (not a case-file id clash: another file)."""
    a = {**copy.deepcopy(whole), "families": [f for f in whole["families"] if f["id"] == "F000001"]}
    b = {**copy.deepcopy(whole), "remains": [], "families": copy.deepcopy(
        [f for f in whole["families"] if f["id"] != "F000001"])}
    fam = next(f for f in b["families"] if f["id"] == RENAMED_FAMILY)
    for m in fam["members"]:
        if m["id"] == RENAMED_MEMBER:
            assert not m.get("genotypes") and not m.get("haplotypes")
            m["id"] = Y_REF
        for parent in ("father", "mother"):
            if m.get(parent) == RENAMED_MEMBER:
                m[parent] = Y_REF
    return a, b


@pytest.fixture(scope="module")
def whole() -> tuple[dict[str, Any], str, str]:
    return _whole()


@pytest.fixture(scope="module")
def expected(whole: tuple[dict[str, Any], str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``opendvi pairwise --format json`` on the whole case file."""
    path = tmp_path_factory.mktemp("lineage-case") / "case.json"
    path.write_text(json.dumps(whole[0]))
    out = clikit.run("pairwise", path, "--format", "json", check=True)
    return dict(json.loads(out.stdout))


def _world(backend: str, tmp_path: Path, whole: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
    with migrated_engine(backend, tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi", "admin", "reviewer", "intake", "liaison")}
        for code, doc in zip(("A", "B"), _split(whole), strict=True):
            r = client.post("/api/operations", json={"code": code, "name": code}, headers=h["lab"])
            assert r.status_code == 201, r.text
            r = client.post(f"/api/operations/{code}/imports", json=doc, headers=h["lab"])
            assert r.status_code == 201, r.text
        yield {"app": app, "client": client, "h": h}


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path, whole: tuple[dict[str, Any], str, str],
          ) -> Iterator[dict[str, Any]]:
    yield from _world(request.param, tmp_path, whole[0])


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, whole: tuple[dict[str, Any], str, str]) -> Iterator[dict[str, Any]]:
    """SQLite, imported and matched once, for the page tests."""
    gen = _world("sqlite", tmp_path_factory.mktemp("lineage-pages"), whole[0])
    w = next(gen)
    w["run"] = match(w["client"], w["app"], w["h"]["dvi"], "A", top_k=10, lr_threshold=1e4)
    yield w
    gen.close()


def _candidates(client: TestClient, headers: dict[str, str], run_id: int) -> list[dict[str, Any]]:
    r = client.get("/api/candidates", params={"run": run_id, "per_page": 500}, headers=headers)
    assert r.status_code == 200, r.text
    assert int(r.headers["X-Total-Count"]) == len(r.json())
    return list(r.json())


def _log10(x: Any) -> float | None:
    """An LR of ``opendvi pairwise``'s JSON as log10 (None: LR 0)."""
    if x == "inf":
        return math.inf
    return None if x == 0 else math.log10(x)


def _close(got: float | None, want: float | None) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))


# ---------------------------------------------------------------------------
# the numbers
# ---------------------------------------------------------------------------


def test_import_and_run__candidates_equal_opendvi_pairwise_per_system(
        world: dict[str, Any], whole: tuple[dict[str, Any], str, str], expected: dict[str, Any]) -> None:
    client, h, app = world["client"], world["h"], world["app"]
    # the haplotypes were stored with the profile versions
    r = client.get(f"/api/remains/{TRUE_REMAINS}", headers=h["dvi"])
    assert r.status_code == 200, r.text
    doc_r = next(x for x in whole[0]["remains"] if x["id"] == TRUE_REMAINS)
    assert r.json()["profiles"][-1]["haplotypes"] == doc_r["haplotypes"]
    run = match(client, app, h["dvi"], "A", top_k=10, lr_threshold=1e4)
    # the run's provenance names the lineage databases it used, with the engine's hash of each
    lin = case_from_dict(whole[0]).lineage
    assert lin is not None and lin.y is not None and lin.mt is not None
    prov = run["lineage_databases"]
    assert prov["Y"]["database_sha256"] == lin.y.database.digest
    assert prov["mt"]["database_sha256"] == lin.mt.database.digest
    assert prov["Y"]["haplotypes"] == lin.y.database.size and len(prov["Y"]["sha256"]) == 64
    with app.state.sessionmaker() as db:
        entry = db.execute(select(AuditEntry).where(AuditEntry.action == "matching.run")).scalars().one()
        assert json.loads(entry.details)["lineage_databases_sha256"] == {s: prov[s]["sha256"] for s in ("Y", "mt")}
    cands = _candidates(client, h["dvi"], run["id"])
    want_pairs = {(v, m) for v, row in expected["log10_lr"].items() for m, x in row.items() if x is not None}
    assert {(c["remains"], c["missing_person"]) for c in cands} == want_pairs  # top 10: every admissible pairing
    systems_seen = set()
    for c in cands:
        v, m = c["remains"], c["missing_person"]
        want = expected["log10_lr"][v][m]
        assert _close(c["log10_lr"], None if want == "-inf" else want), (v, m, c["log10_lr"], want)
        assert set(c["log10_lr_by_system"]) == set(expected["lr_by_system"][v][m]) == {"autosomal", "Y", "mt"}
        for system, x in c["log10_lr_by_system"].items():
            assert _close(x, _log10(expected["lr_by_system"][v][m][system])), (v, m, system)
            systems_seen.add((system, x is None))
        assert c["mismatches"] == expected["mismatches"][v][m]
    # both lineage systems inform: exclusions and matches among the pairings
    assert {("Y", True), ("Y", False), ("mt", True), ("mt", False)} <= systems_seen
    true = next(c for c in cands if (c["remains"], c["missing_person"]) == (TRUE_REMAINS, TRUE_MISSING))
    assert true["mismatches"]["Y"] == 1 and true["log10_lr_by_system"]["Y"] is not None  # a mutation, no exclusion
    # F000002's renamed father (1 link from its missing person, nearer than the typed brother) did not take
    # F000001's Y haplotype: its family's LRs are the case file's (checked above)
    assert any(c["family"] == RENAMED_FAMILY for c in cands)


def test_the_detail_endpoint_gives_each_lineage_lr_with_its_provenance(ran: dict[str, Any]) -> None:
    client, h = ran["client"], ran["h"]
    cands = _candidates(client, h["dvi"], ran["run"]["id"])
    true = next(c for c in cands if (c["remains"], c["missing_person"]) == (TRUE_REMAINS, TRUE_MISSING))
    d = client.get(f"/api/candidates/{true['id']}", headers=h["dvi"]).json()
    y = d["lineage"]["Y"]
    assert y["reference"] == Y_REF and y["links"] == 1 and y["mismatches"] == 1
    assert y["frequency"]["database_sha256"] == ran["run"]["lineage_databases"]["Y"]["database_sha256"]
    assert d["lr_by_system"]["Y"] and d["mismatches"] == {"Y": 1, "mt": 0}


# ---------------------------------------------------------------------------
# the pages
# ---------------------------------------------------------------------------


def _row(html: str, attr: str, value: str) -> str:
    m = re.search(rf'<tr {attr}="{re.escape(value)}"[^>]*>.*?</tr>', html, re.S)
    assert m is not None, f"no row {attr}={value}"
    return m.group(0)


def _true_candidate(ran: dict[str, Any]) -> dict[str, Any]:
    cands = _candidates(ran["client"], ran["h"]["dvi"], ran["run"]["id"])
    return next(c for c in cands if (c["remains"], c["missing_person"]) == (TRUE_REMAINS, TRUE_MISSING))


def _check_lineage_section(html: str, c: dict[str, Any], locus: str, heteroplasmy: str) -> None:
    # each system's LR beside the combined one
    for system in ("autosomal", "Y", "mt"):
        assert c["lr_by_system"][system] in _row(html, "data-system", system)
    assert c["lr"] in _row(html, "data-system", "combined")
    # the Y haplotypes side by side: the locus that differs by one repeat, marked in words and style
    assert 'id="y-haplotypes"' in html and f"Reference {Y_REF}" in html
    row = _row(html, "data-locus", locus)
    assert 'class="differs"' in row and "≠" in row and "differs by 1 repeat" in row and "outline:2px solid" in row
    assert "differs in 1 reference" in row
    same = [loc for loc in re.findall(r'<tr data-locus="([^"]+)"', html) if loc != locus]
    assert same and all("the same" in _row(html, "data-locus", x) for x in same)
    # the mtDNA variants: the heteroplasmy shown with its bases, no difference from the maternal line
    assert 'id="mt-haplotypes"' in html
    site = re.match(r"\d+", heteroplasmy)
    assert site is not None
    mt_row = _row(html, "data-site", site.group(0))
    assert heteroplasmy in mt_row and "heteroplasmy" in mt_row and "≠" not in mt_row


def test_match_page__haplotypes_side_by_side_with_the_difference_marked(
        ran: dict[str, Any], whole: tuple[dict[str, Any], str, str]) -> None:
    client, h = ran["client"], ran["h"]
    c = _true_candidate(ran)
    r = client.get(f"/candidates/{c['id']}", headers=h["dvi"])
    assert r.status_code == 200
    _check_lineage_section(r.text, c, whole[1], whole[2])
    # the identification report uses the same evidence: the lineage section is there too
    p = client.post("/api/identifications", json={"candidate_id": c["id"]}, headers=h["dvi"])
    assert p.status_code == 201, p.text
    rep = client.get(f"/identifications/{p.json()['id']}/report", headers=h["dvi"])
    assert rep.status_code == 200
    _check_lineage_section(rep.text, c, whole[1], whole[2])
    # in Ukrainian too (every word through gettext)
    r = client.get(f"/candidates/{c['id']}", headers={**h["dvi"], "Accept-Language": "uk"})
    assert "відрізняється на 1 повтор" in _row(r.text, "data-locus", whole[1])


def test_remains_and_family_pages_show_the_haplotypes(ran: dict[str, Any], whole: tuple[dict[str, Any], str, str],
                                                       ) -> None:
    client, h = ran["client"], ran["h"]
    r = client.get(f"/remains/{TRUE_REMAINS}", headers=h["dvi"])
    assert r.status_code == 200
    assert 'id="y-haplotype"' in r.text and 'id="mt-haplotype"' in r.text and whole[2] in r.text
    c = _true_candidate(ran)  # the candidates' table: each system's LR beside the combined one
    assert f'<span data-system="Y">Y {c["lr_by_system"]["Y"]} (1 mismatch)</span>' in r.text
    fam = client.get("/families/F000001", headers=h["dvi"])
    assert 'id="y-haplotypes"' in fam.text and 'id="mt-haplotypes"' in fam.text and Y_REF in fam.text
    # genetic data for the roles that read profiles; the intake officer works on names and pedigrees
    assert 'id="haplotypes"' not in client.get("/families/F000001", headers=h["intake"]).text


def test_names_never_reach_the_dna_side_on_the_lineage_pages(ran: dict[str, Any]) -> None:
    client, h = ran["client"], ran["h"]
    r = client.put(f"/api/missing-persons/{TRUE_MISSING}/details", json={"full_name": f"{SECRET_NAME} M"},
                   headers=h["intake"])
    assert r.status_code == 200, r.text
    r = client.patch(f"/api/donors/{Y_REF}", json={"full_name": f"{SECRET_NAME} R", "consent": "identification",
                                                    "consent_date": "2026-01-02"}, headers=h["intake"])
    assert r.status_code == 200, r.text
    c = _true_candidate(ran)
    ident = client.get("/api/identifications", headers=h["dvi"]).json()
    paths = [f"/candidates/{c['id']}", f"/api/candidates/{c['id']}", f"/remains/{TRUE_REMAINS}",
             f"/api/remains/{TRUE_REMAINS}", "/families/F000001", "/api/families/F000001",
             *(f"/identifications/{i['id']}/report" for i in ident)]
    for user in ("lab", "dvi", "reviewer", "admin"):
        for path in paths:
            r = client.get(path, headers=h[user])
            if r.status_code == 200:
                assert SECRET_NAME not in r.text, (user, path)
    assert SECRET_NAME in client.get("/families/F000001", headers=h["intake"]).text


# ---------------------------------------------------------------------------
# imports: all or nothing, versions
# ---------------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with migrated_engine("sqlite", tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi")}
        r = client.post("/api/operations", json={"code": "L", "name": "L"}, headers=h["lab"])
        assert r.status_code == 201, r.text
        yield {"app": app, "client": client, "h": h}


def _counts(app: Any) -> tuple[int, int, int]:
    with app.state.sessionmaker() as db:
        return (db.scalar(select(func.count(Remains.id))) or 0, db.scalar(select(func.count(Profile.id))) or 0,
                db.scalar(select(func.count(LineageDatabase.id))) or 0)


def test_a_bad_haplotype__422_naming_the_field_nothing_written(
        fresh: dict[str, Any], whole: tuple[dict[str, Any], str, str]) -> None:
    doc = copy.deepcopy(whole[0])
    doc["remains"][0]["haplotypes"]["Y"]["DYS391"] = "ten"
    doc["remains"][1]["haplotypes"]["mt"]["variants"] = ["99999Q"]
    r = fresh["client"].post("/api/operations/L/imports", json=doc, headers=fresh["h"]["lab"])
    err = assert_error_shape(r, 422)
    text = json.dumps(err)
    assert "remains[0] (V000001).haplotypes.Y.DYS391" in text and "remains[1] (V000002).haplotypes.mt" in text
    assert _counts(fresh["app"]) == (0, 0, 0)


def test_other_y_loci_than_the_operations__422_nothing_written(
        fresh: dict[str, Any], whole: tuple[dict[str, Any], str, str]) -> None:
    client, h = fresh["client"], fresh["h"]
    assert client.post("/api/operations/L/imports", json=whole[0], headers=h["lab"]).status_code == 201
    before = _counts(fresh["app"])
    doc = copy.deepcopy(whole[0])
    dropped = doc["lineage"]["Y"]["markers"].pop(0)["name"]
    for person in [*doc["remains"], *(m for f in doc["families"] for m in f["members"])]:
        (person.get("haplotypes") or {}).get("Y", {}).pop(dropped, None)
    for row in doc["lineage"]["Y"]["database"]["haplotypes"]:
        row["alleles"].pop(dropped, None)
    doc["remains"][0]["haplotypes"]["Y"][next(iter(doc["remains"][0]["haplotypes"]["Y"]))] = "30"  # a re-typing
    r = client.post("/api/operations/L/imports", json=doc, headers=h["lab"])
    err = assert_error_shape(r, 422)
    assert "lineage.Y.markers" in json.dumps(err)
    assert _counts(fresh["app"]) == before


def test_re_import__same_haplotypes_no_version_changed_ones_a_new_version(
        fresh: dict[str, Any], whole: tuple[dict[str, Any], str, str]) -> None:
    client, h = fresh["client"], fresh["h"]
    assert client.post("/api/operations/L/imports", json=whole[0], headers=h["lab"]).status_code == 201
    again = client.post("/api/operations/L/imports", json=whole[0], headers=h["lab"]).json()
    assert again["remains_retyped"] == 0 and again["reference_profiles_new"] == 0
    assert _counts(fresh["app"])[2] == 2  # one Y and one mt database, found again by their SHA-256
    doc = copy.deepcopy(whole[0])
    rem = next(x for x in doc["remains"] if x["id"] == TRUE_REMAINS)
    locus = next(iter(rem["haplotypes"]["Y"]))
    old = rem["haplotypes"]["Y"][locus]
    rem["haplotypes"]["Y"][locus] = "40"
    out = client.post("/api/operations/L/imports", json=doc, headers=h["lab"]).json()
    assert out["remains_retyped"] == 1
    versions = client.get(f"/api/remains/{TRUE_REMAINS}", headers=h["dvi"]).json()["profiles"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["haplotypes"]["Y"][locus] == old and versions[1]["haplotypes"]["Y"][locus] == "40"
    assert versions[0]["genotypes"] == versions[1]["genotypes"]


def test_a_new_lineage_database_makes_the_runs_candidates_stale(
        fresh: dict[str, Any], whole: tuple[dict[str, Any], str, str]) -> None:
    client, h, app = fresh["client"], fresh["h"], fresh["app"]
    assert client.post("/api/operations/L/imports", json=whole[0], headers=h["lab"]).status_code == 201
    run = match(client, app, h["dvi"], "L", top_k=10, lr_threshold=1e4)
    c = next(x for x in _candidates(client, h["dvi"], run["id"])
             if (x["remains"], x["missing_person"]) == (TRUE_REMAINS, TRUE_MISSING))
    doc = copy.deepcopy(whole[0])
    doc["lineage"]["Y"]["database"]["haplotypes"] = doc["lineage"]["Y"]["database"]["haplotypes"][:200]
    assert client.post("/api/operations/L/imports", json=doc, headers=h["lab"]).status_code == 201
    r = client.post("/api/identifications", json={"candidate_id": c["id"]}, headers=h["dvi"])
    err = assert_error_shape(r, 409)
    assert "lineage (Y-STR, mtDNA) databases changed" in json.dumps(err)
    # a new run records the new database, and its candidates rest on current evidence
    run2 = match(client, app, h["dvi"], "L", top_k=10, lr_threshold=1e4)
    assert run2["lineage_databases"]["Y"]["haplotypes"] < run["lineage_databases"]["Y"]["haplotypes"]
    c2 = next(x for x in _candidates(client, h["dvi"], run2["id"])
              if (x["remains"], x["missing_person"]) == (TRUE_REMAINS, TRUE_MISSING))
    assert client.post("/api/identifications", json={"candidate_id": c2["id"]}, headers=h["dvi"]).status_code == 201


def test_the_candidates_export_carries_each_systems_lr(ran: dict[str, Any]) -> None:
    import csv
    import io

    client, h = ran["client"], ran["h"]
    r = client.get("/api/exports/candidates.csv", params={"run": ran["run"]["id"]}, headers=h["dvi"])
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    by_id = {c["id"]: c for c in _candidates(client, h["dvi"], ran["run"]["id"])}
    assert rows and len(rows) == len(by_id)
    for row in rows:
        c = by_id[int(row["candidate_id"])]
        for system in ("autosomal", "Y", "mt"):
            x = c["log10_lr_by_system"][system]
            assert (row[f"log10_lr_{system}"] == "") if x is None else math.isclose(
                float(row[f"log10_lr_{system}"]), x, rel_tol=1e-12, abs_tol=1e-12)
        assert {s: int(row[f"mismatches_{s}"]) for s in ("Y", "mt")} == c["mismatches"]


# ---------------------------------------------------------------------------
# profile tables (GeneMapper) carry Y-STR loci: stored as the haplotype, beside the mtDNA one
# ---------------------------------------------------------------------------


def _gm_wide(samples: dict[str, dict[str, str]]) -> bytes:
    """A GeneMapper ID-X wide export (one row per sample, "a, b" calls)."""
    markers = list(next(iter(samples.values())))
    lines = ["\t".join(["Sample File", "Sample Name", *markers])]
    lines += ["\t".join(["A01.fsa", sid, *(calls[m] for m in markers)]) for sid, calls in samples.items()]
    return ("\r\n".join(lines) + "\r\n").encode()


def _current_haplotypes(app: Any, barcode: str) -> Any:
    with app.state.sessionmaker() as db:
        rem = db.scalars(select(Remains).where(Remains.barcode == barcode)).one()
        return db.scalars(select(Profile).where(Profile.remains_id == rem.id)
                          .order_by(Profile.version.desc())).first().haplotypes


def test_a_genemapper_export_with_y_loci__stored_as_the_haplotype_beside_the_mt(
        fresh: dict[str, Any], whole: tuple[dict[str, Any], str, str]) -> None:
    client, h, app = fresh["client"], fresh["h"], fresh["app"]
    doc = whole[0]
    assert client.post("/api/operations/L/imports", json=doc, headers=h["lab"]).status_code == 201
    rem = doc["remains"][0]
    before = _current_haplotypes(app, rem["id"])
    y_locus = next(k for k, v in rem["haplotypes"]["Y"].items() if v.isdigit())
    auto = {m: ", ".join(g) for m, g in rem["genotypes"].items()}
    new_y = str(int(rem["haplotypes"]["Y"][y_locus]) + 1)  # a re-typing of one Y locus
    files = {"file": ("run.txt", _gm_wide({rem["id"]: {**auto, y_locus: new_y}}), "text/plain")}
    r = client.post("/api/operations/L/imports/file", files=files, headers=h["lab"])
    assert r.status_code in (200, 201), r.text
    after = _current_haplotypes(app, rem["id"])
    assert after["Y"] == {y_locus: new_y}  # the file's Y loci
    assert after["mt"] == before["mt"]  # the mtDNA haplotype is kept
    # a Y locus the operation's Y-STR database does not have: 422 naming the sample and locus, nothing written
    counts = _counts(app)
    files = {"file": ("run2.txt", _gm_wide({rem["id"]: {**auto, "DYS999": "12"}}), "text/plain")}
    r = client.post("/api/operations/L/imports/file", files=files, headers=h["lab"])
    problems = assert_error_shape(r, 422)["details"]
    assert any("sample V000001: Y-STR locus DYS999 is not in the operation's Y-STR database" in p for p in problems)
    assert _counts(app) == counts
