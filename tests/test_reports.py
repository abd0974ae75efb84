"""The evidence of a match, the ENFSI verbal scale, the pedigree drawing and the identification
report (HTML and PDF) on the demo case: ``opendvi.reports``."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from opendvi.core.likelihood import marker_loglik
from opendvi.data import demo_case_path
from opendvi.i18n import use_locale
from opendvi.io.case_json import case_from_dict
from opendvi.reports.evidence import candidate_evidence, identification_evidence
from opendvi.reports.pedigree import COLUMN, PAD, Person, fit_text, pedigree_svg, text_width
from opendvi.reports.verbal import band_of, verbal_equivalent
from opendvi.store import repositories as repo
from opendvi.store.models import AuditEntry, Candidate
from tests.servicekit import SECRET_NAME, bearer, make_app, match, migrated_engine

# ---------------------------------------------------------------------------
# the verbal scale
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("lr", "band", "favours"), [
    (1.0, "none", None), (1.999, "none", None), (0.5000001, "none", None),
    (2.0, "weak", "H1"), (9.999, "weak", "H1"),
    (10.0, "moderate", "H1"), (99.99, "moderate", "H1"),
    (100.0, "moderately_strong", "H1"), (999.9, "moderately_strong", "H1"),
    (1_000.0, "strong", "H1"), (9_999.0, "strong", "H1"),
    (10_000.0, "very_strong", "H1"), (999_999.0, "very_strong", "H1"),
    (1_000_000.0, "extremely_strong", "H1"), (1e23, "extremely_strong", "H1"),
    (0.5, "weak", "H2"), (0.1, "moderate", "H2"), (1e-3, "strong", "H2"), (1e-7, "extremely_strong", "H2"),
])
def test_verbal_equivalent__enfsi_bands(lr: float, band: str, favours: str | None) -> None:
    assert band_of(math.log10(lr)) == (band, favours)


def test_glr__held_by_the_run_or_derived_or_none() -> None:
    from types import SimpleNamespace

    from opendvi.reports.evidence import _glr, lr_text

    me: Any = SimpleNamespace(id=1, log10_lr=5.0, log10_glr=None, glr_bound=None)
    other: Any = SimpleNamespace(id=2, log10_lr=2.0, log10_glr=None, glr_bound=None)
    low: Any = SimpleNamespace(id=3, log10_lr=-3.0, log10_glr=None, glr_bound=None)
    assert _glr([me, other], me)[0] == 3.0 and _glr([me, other], me)[2] == "candidates"
    assert _glr([me, low], me)[0] == 5.0  # against "not among the missing"
    assert _glr([me], me)[0] is None and _glr([me], me)[2] is None
    held: Any = SimpleNamespace(id=1, log10_lr=5.0, log10_glr=math.inf, glr_bound=False)
    assert _glr([held, other], held)[:1] == (math.inf,) and _glr([held], held)[2] == "run"
    assert lr_text(math.inf) == "∞" and lr_text(None) == "0" and lr_text(2.0) == "100"


def test_posterior_text__never_rounds_to_certainty() -> None:
    from opendvi.reports.evidence import posterior_text

    assert posterior_text(0.99999999) == "> 0.999999" and posterior_text(1.0) == "1.000000"
    assert posterior_text(1e-9) == "< 0.000001" and posterior_text(0.0) == "0.000000"
    assert posterior_text(0.5) == "0.500000"


def test_verbal_equivalent__exclusion_text_and_nan() -> None:
    assert band_of(None) == ("exclusion", "H2") and band_of(-math.inf) == ("exclusion", "H2")
    assert "LR 0" in verbal_equivalent(None).text
    assert verbal_equivalent(6.5).text == "The findings provide extremely strong support for H1 rather than H2."
    assert "H2 rather than H1" in verbal_equivalent(-2.5).text
    with use_locale("uk"):
        assert verbal_equivalent(6.5).text  # through the catalogue (English until translated)
    with pytest.raises(ValueError, match="NaN"):
        band_of(math.nan)


# ---------------------------------------------------------------------------
# the pedigree drawing
# ---------------------------------------------------------------------------


def test_fit_text__every_line_fits() -> None:
    inner = COLUMN - 2 * PAD
    for text in ("M1", "PM-2026-000123-FEMUR-LEFT", "X" * 60, "a b c d e f g h i j k l m n o p", "WWWWWWWWWWWWWWWW"):
        lines, size = fit_text(text, inner)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing lost
        assert all(text_width(t, size) <= inner for t in lines), (text, lines, size)
        assert size >= 8


def _boxes_and_segments(svg: str) -> tuple[list[tuple[float, float, float, float, str]],
                                           list[tuple[float, float, float, float]]]:
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    boxes = []
    for t in root.iter(f"{ns}text"):
        if t.get("text-anchor") != "middle":
            continue
        size = float(t.get("font-size") or 11)
        for span in t.iter(f"{ns}tspan"):
            x, y, s = float(span.get("x") or 0), float(span.get("y") or 0), span.text or ""
            w = text_width(s, size)
            boxes.append((x - w / 2, y - size, x + w / 2, y + 0.25 * size, s))
    segs = []
    for ln in root.iter(f"{ns}line"):
        segs.append(tuple(float(ln.get(k) or 0) for k in ("x1", "y1", "x2", "y2")))
    for pl in root.iter(f"{ns}polyline"):
        pts = [tuple(map(float, p.split(","))) for p in (pl.get("points") or "").split()]
        segs.extend((a[0], a[1], b[0], b[1]) for a, b in itertools.pairwise(pts))
    return boxes, segs  # type: ignore[return-value]


def _crossings(boxes: list[tuple[float, float, float, float, str]],
               segs: list[tuple[float, float, float, float]]) -> list[str]:
    """Labels that a line crosses (segments are horizontal or vertical)."""
    out = []
    for bx0, by0, bx1, by1, s in boxes:
        for x1, y1, x2, y2 in segs:
            if y1 == y2:
                hit = by0 < y1 < by1 and min(x1, x2) < bx1 and max(x1, x2) > bx0
            else:
                hit = bx0 < x1 < bx1 and min(y1, y2) < by1 and max(y1, y2) > by0
            if hit:
                out.append(s)
    return out


def test_pedigree_svg__labels_fit_remains_placed_lines_clear_legend() -> None:
    long = "PM-2026-000123-FEMUR-LEFT-XYZ"
    people = [
        Person("GF", None, None, "M", typed=True), Person("GM", None, None, "F"),
        Person("FATHER-OF-THE-MISSING-0001", "GF", "GM", "M", typed=True),
        Person("MO", None, None, "F", typed=True),
        Person("M1", "FATHER-OF-THE-MISSING-0001", "MO", "M", missing=True, placed=long),
        Person("SISTER", "FATHER-OF-THE-MISSING-0001", "MO", "F"),
    ]
    svg = pedigree_svg(people, title=f"Family F1: remains {long} placed as M1")
    boxes, segs = _boxes_and_segments(svg)
    inner = COLUMN - 2 * PAD
    texts = "".join(b[4] for b in boxes)
    assert long.replace("-", "") in texts.replace("-", "")  # the barcode, whole, at the missing person
    for x0, _y0, x1, _y1, s in boxes:
        assert x1 - x0 <= inner + 1e-6, s
    assert not _crossings(boxes, segs)  # no line crosses a label
    for legend in ("typed reference", "missing person", "remains placed on the missing person"):
        assert legend in svg
    assert 'viewBox="' in svg and "max-width:100%" in svg


def test_pedigree_svg__a_broken_drawing_fails_the_line_check() -> None:
    """The label check above can fail: a partner line through a label, as the old drawing had
    (the barcode inside the symbol, wider than it), is caught."""
    svg = ('<svg xmlns="http://www.w3.org/2000/svg"><line x1="0" y1="50" x2="200" y2="50"/>'
           '<text text-anchor="middle" font-size="11"><tspan x="100" y="54">PM-2026-000123</tspan></text></svg>')
    assert _crossings(*_boxes_and_segments(svg)) == ["PM-2026-000123"]


# ---------------------------------------------------------------------------
# the demo case: evidence and the report
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo case matched; M1's name set; V1 -> M1 proposed by dvi and confirmed by the reviewer;
    V2 -> M2 proposed only."""
    tmp = tmp_path_factory.mktemp("reports")
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("dvi", "reviewer", "liaison", "intake", "lab")}
        match(client, app, h["dvi"])
        for code in ("M1", "M2"):
            r = client.put(f"/api/missing-persons/{code}/details", json={"full_name": f"{SECRET_NAME} {code}"},
                           headers=h["intake"])
            assert r.status_code == 200, r.text
        best = {b: client.get(f"/api/remains/{b}/candidates", headers=h["dvi"]).json()[0] for b in ("V1", "V2")}
        confirmed = client.post("/api/identifications", json={"candidate_id": best["V1"]["id"]}, headers=h["dvi"])
        proposed = client.post("/api/identifications", json={"candidate_id": best["V2"]["id"]}, headers=h["dvi"])
        assert confirmed.status_code == proposed.status_code == 201
        r = client.post(f"/api/identifications/{confirmed.json()['id']}/confirm", json={}, headers=h["reviewer"])
        assert r.status_code == 200, r.text
        yield {"app": app, "client": client, "h": h, "best": best, "confirmed": confirmed.json()["id"],
               "proposed": proposed.json()["id"]}


def _session(demo: dict[str, Any]) -> Any:
    return demo["app"].state.sessionmaker()


def test_evidence__per_marker_lrs_are_the_stored_ones_and_multiply_to_the_total(demo: dict[str, Any]) -> None:
    with _session(demo) as db:
        n = 0
        for cand in db.execute(select(Candidate)).scalars():
            ev = candidate_evidence(db, cand)
            stored = cand.per_marker["log10_lr"]
            shown = {r["marker"]: r["log10_lr"] for r in ev["markers"]}
            assert shown == stored  # the same numbers, not recomputed ones
            if cand.log10_lr is not None:
                # brute check: the product of the shown per-marker LRs is the total (log10, 1e-9)
                assert math.fsum(v for v in shown.values() if v is not None) == pytest.approx(cand.log10_lr,
                                                                                             abs=1e-9)
                assert ev["product_log10_lr"] == pytest.approx(cand.log10_lr, abs=1e-9)
            assert ev["engine_check"]["reproduced"], ev["engine_check"]
            n += 1
        assert n > 10


def test_evidence__profiles_references_provenance_rank_glr(demo: dict[str, Any]) -> None:
    with _session(demo) as db:
        cand = repo.get_candidate(db, candidate_id=demo["best"]["V1"]["id"])
        ev = candidate_evidence(db, cand)
        assert ev["remains"]["barcode"] == "V1" and ev["missing_person"]["code"] == "M1" and ev["family"] == "F1"
        assert ev["remains"]["profile_version"] == 1
        prof = repo.current_profile(db, remains=cand.remains)
        assert prof is not None
        row = next(r for r in ev["markers"] if r["marker"] == "D3S1358")
        assert row["remains"] == prof.genotypes["D3S1358"]
        case = json.loads(Path(demo_case_path()).read_text())
        refs = {m["id"]: m["genotypes"] for f in case["families"] if f["id"] == "F1" for m in f["members"]
                if m.get("genotypes")}
        assert [r["barcode"] for r in ev["references"]] == sorted(refs)
        assert row["references"] == [refs[b]["D3S1358"] for b in sorted(refs)]
        run = ev["run"]
        assert len(run["frequency_database"]["sha256"]) == 64 and run["software_version"].startswith("opendvi ")
        assert run["mutation_summary"] and sum(len(g["markers"]) for g in run["mutation_summary"]) == 23
        assert ev["prior"] == "flat" and ev["posterior"] > 0.99
        assert ev["rank"] == 1 and ev["n_candidates"] >= 2
        others = [c.log10_lr for c in repo.candidates_for_remains(db, remains=cand.remains) if c.id != cand.id]
        assert cand.log10_lr is not None
        held = getattr(cand, "log10_glr", None)
        if held is not None:  # the run holds the GLR of its call: shown as it is
            assert ev["glr_log10"] == held and ev["glr_source"] == "run"
        else:  # else derived from the stored candidates, and said so
            assert ev["glr_source"] == "candidates" and "holds no GLR" in ev["glr_how"]
            assert ev["glr_log10"] == pytest.approx(cand.log10_lr - max([0.0, *[x for x in others
                                                                                 if x is not None]]))
        assert ev["verbal"]["band"] == "extremely_strong"
        assert "name" not in ev["missing_person"] and all("name" not in r for r in ev["references"])
        # V1 -> M2: V1 is confirmed as M1 (same remains), M2 is proposed with V2 (same missing person)
        other = next(c for c in repo.candidates_for_remains(db, remains=cand.remains)
                     if c.missing_person.code == "M2")
        ev2 = candidate_evidence(db, other)
        got = {o["id"]: (o["same_remains"], o["same_missing_person"]) for o in ev2["other_active"]}
        assert got == {demo["confirmed"]: (True, False), demo["proposed"]: (False, True)}


def test_evidence__explained_only_by_mutation__checked_with_the_core_engine(demo: dict[str, Any]) -> None:
    """A flagged marker: LR > 0 with the mutation model, and P(data | V = M) = 0 without it, by
    ``marker_loglik`` on the family's pedigree directly; an unflagged typed marker is possible without."""
    case = case_from_dict(json.loads(Path(demo_case_path()).read_text()))
    with _session(demo) as db:
        cand = next(c for c in repo.candidates_for_remains(db, remains=repo.get_remains(db, barcode="V1"))
                    if c.missing_person.code == "M2")
        ev = candidate_evidence(db, cand)
    fam = case.family(ev["family"])
    flagged = [r for r in ev["markers"] if r["mutation_only"]]
    plain = [r for r in ev["markers"] if r["typed"] and not r["mutation_only"] and not r["no_reference"]]
    assert flagged and plain
    for r in flagged + plain:
        marker = case.marker(r["marker"])
        gts = {pid: g[r["marker"]] for pid, g in fam.genotypes.items() if r["marker"] in g}
        gts["M2"] = tuple(r["remains"])
        with_mut = marker_loglik(fam.pedigree, marker, gts)
        without = marker_loglik(fam.pedigree, marker.without_mutation(), gts)
        assert with_mut > -math.inf
        assert (without == -math.inf) == r["mutation_only"], r["marker"]
        assert "mutation" in r["flags"] if r["mutation_only"] else "mutation" not in r["flags"]


def test_evidence__excluded_marker_without_mutation_model(tmp_path: Path) -> None:
    """Markers without mutation models: an impossible marker is LR 0, flagged excluded."""
    case = {
        "format": "dvi-case/1", "name": "tiny", "theta": 0.0,
        "markers": [{"name": "A", "alleles": ["1", "2", "3"], "frequencies": [0.2, 0.3, 0.5]},
                    {"name": "B", "alleles": ["1", "2"], "frequencies": [0.4, 0.6]}],
        "remains": [{"id": "R9", "sex": "M", "genotypes": {"A": ["3", "3"], "B": ["1", "1"]}}],
        "families": [{"id": "FX", "members": [
            {"id": "FA", "sex": "M", "genotypes": {"A": ["1", "1"], "B": ["1", "2"]}},
            {"id": "MO", "sex": "F", "genotypes": {"A": ["2", "2"], "B": ["1", "1"]}},
            {"id": "MX", "father": "FA", "mother": "MO", "sex": "M", "missing": True}]}],
    }
    with migrated_engine("sqlite", tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        lab, dvi = bearer(client, "lab"), bearer(client, "dvi")
        assert client.post("/api/operations", json={"code": "T", "name": "tiny"}, headers=lab).status_code == 201
        r = client.post("/api/operations/T/imports?filename=tiny.json", json=case, headers=lab)
        assert r.status_code == 201, r.text
        match(client, app, dvi, "T", top_k=5, lr_threshold=1e4)
        cands = client.get("/api/remains/R9/candidates", headers=dvi).json()
        assert cands and cands[0]["log10_lr"] is None
        with app.state.sessionmaker() as db:
            ev = candidate_evidence(db, repo.get_candidate(db, candidate_id=cands[0]["id"]))
        a = next(r for r in ev["markers"] if r["marker"] == "A")
        b = next(r for r in ev["markers"] if r["marker"] == "B")
        assert a["excluded"] and "excluded" in a["flags"] and a["lr"] == "0"
        assert not b["excluded"] and not b["mutation_only"]
        assert ev["product_log10_lr"] is None and ev["verbal"]["band"] == "exclusion"
        page = client.get(f"/candidates/{cands[0]['id']}", headers=dvi).text
        assert "excluded (LR 0)" in page and 'class="excluded"' in page


def test_identification_evidence__names_only_for_names_read_and_confirmed(demo: dict[str, Any]) -> None:
    with _session(demo) as db:
        confirmed = repo.get_identification(db, identification_id=demo["confirmed"])
        proposed = repo.get_identification(db, identification_id=demo["proposed"])
        assert SECRET_NAME not in json.dumps(identification_evidence(db, confirmed, names=False), default=str)
        assert identification_evidence(db, confirmed, names=True)["missing_person"]["name"] == f"{SECRET_NAME} M1"
        assert SECRET_NAME not in json.dumps(identification_evidence(db, proposed, names=True), default=str)
        ev = identification_evidence(db, confirmed)
        ident = ev["identification"]
        assert ident["proposed_by"]["username"] == "dvi" and ident["decided_by"]["username"] == "reviewer"
        entries = {e.action: e for e in db.execute(select(AuditEntry).where(
            AuditEntry.object_type == "identification", AuditEntry.object_id == str(confirmed.id))).scalars()}
        assert ident["proposal_audit"]["hash"] == entries["identification.propose"].hash
        assert ident["confirmation_audit"]["hash"] == entries["identification.confirm"].hash


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True)
    return out.stdout


needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                   reason="poppler's pdftotext/pdftoppm are not installed (apt install poppler-utils)")


@needs_poppler
def test_report_pdf__confirmed_demo_identification(demo: dict[str, Any], tmp_path: Path) -> None:
    client, h = demo["client"], demo["h"]
    r = client.get(f"/identifications/{demo['confirmed']}/report.pdf", headers=h["reviewer"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    text = _pdftotext(r.content, tmp_path)
    flat = re.sub(r"\s+", "", text)
    with _session(demo) as db:
        ev = identification_evidence(db, repo.get_identification(db, identification_id=demo["confirmed"]))
    ident = ev["identification"]
    assert ev["lr"] in text and "log10 LR 23." in text
    assert f"Posterior probability of H1: {ev['posterior_text']}" in text
    assert ev["posterior_text"] in (f"{ev['posterior']:.6f}", "> 0.999999")
    assert "prior: flat" in text
    assert "extremely strong support for H1" in text.replace("\n", " ").replace("  ", " ")
    assert ev["run"]["frequency_database"]["sha256"] in flat
    assert "Proposed" in text and "Confirmed" in text and "by dvi on" in text and "by reviewer on" in text
    assert ident["proposal_audit"]["hash"] in flat and ident["confirmation_audit"]["hash"] in flat
    assert "DRAFT" not in text
    assert SECRET_NAME not in text  # a DNA-side role: no name
    # per-marker LRs as the run stored them
    for row in ev["markers"][:5]:
        assert re.search(rf"{re.escape(row['marker'])}\s.*\s{re.escape(row['lr'])}\s", text), row["marker"]
    # rendered to PNG without error
    pdf = tmp_path / "report.pdf"
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")], check=True,
                   capture_output=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and all(p.stat().st_size > 1000 for p in pages)
    # the download is audited with the SHA-256 of the file handed out
    assert r.headers["x-report-sha256"] == hashlib.sha256(r.content).hexdigest()
    with _session(demo) as db:
        last = db.execute(select(AuditEntry).where(AuditEntry.action == "report.export")
                          .order_by(AuditEntry.seq.desc())).scalars().first()
        assert last is not None and last.username == "reviewer" and last.object_id == str(demo["confirmed"])
        assert json.loads(last.details)["sha256"] == hashlib.sha256(r.content).hexdigest()
        assert SECRET_NAME not in last.details


@needs_poppler
def test_report_pdf__the_liaison_version_has_the_name(demo: dict[str, Any], tmp_path: Path) -> None:
    client, h = demo["client"], demo["h"]
    r = client.get(f"/identifications/{demo['confirmed']}/report.pdf", headers=h["liaison"])
    assert r.status_code == 200
    assert f"{SECRET_NAME} M1" in _pdftotext(r.content, tmp_path)
    # the liaison never sees a proposal, nor its report
    assert client.get(f"/identifications/{demo['proposed']}/report.pdf", headers=h["liaison"]).status_code == 404
    assert client.get(f"/identifications/{demo['proposed']}/report", headers=h["liaison"]).status_code == 404
    # nor does a laboratory analyst (no identifications.read)
    assert client.get(f"/identifications/{demo['confirmed']}/report", headers=h["lab"]).status_code == 403


@needs_poppler
def test_report__a_proposal_is_a_draft(demo: dict[str, Any], tmp_path: Path) -> None:
    client, h = demo["client"], demo["h"]
    html = client.get(f"/identifications/{demo['proposed']}/report", headers=h["dvi"])
    assert html.status_code == 200 and 'id="draft"' in html.text and "not confirmed" in html.text
    assert f'href="/identifications/{demo["proposed"]}/report.pdf"' in html.text
    assert "<script" not in html.text
    r = client.get(f"/identifications/{demo['proposed']}/report.pdf", headers=h["dvi"])
    text = _pdftotext(r.content, tmp_path)
    assert "DRAFT" in text and "Not confirmed" in text
    assert SECRET_NAME not in text and SECRET_NAME not in html.text
    assert "draft" in r.headers["content-disposition"]


def test_report_html__the_same_numbers_as_the_page(demo: dict[str, Any]) -> None:
    client, h = demo["client"], demo["h"]
    report = client.get(f"/identifications/{demo['confirmed']}/report", headers=h["reviewer"]).text
    page = client.get(f"/candidates/{demo['best']['V1']['id']}", headers=h["reviewer"]).text
    for pattern in (r'id="alleles".*?</table>', r'id="provenance".*?</dl>'):
        a = re.search(pattern, report, re.S)
        b = re.search(pattern, page, re.S)
        assert a and b and a.group(0) == b.group(0)


@needs_poppler
def test_cli_report__pdf_and_html_from_the_database(demo: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from opendvi.cli.main import app as cli

    url = demo["app"].state.engine.url
    data_dir = Path(str(url.database)).parent
    out = tmp_path / "r.pdf"
    res = CliRunner().invoke(cli, ["report", str(demo["confirmed"]), "-o", str(out), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    text = _pdftotext(out.read_bytes(), tmp_path)
    assert "by reviewer on" in text and SECRET_NAME not in text
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest in res.output
    with _session(demo) as db:
        last = db.execute(select(AuditEntry).where(AuditEntry.action == "report.export")
                          .order_by(AuditEntry.seq.desc())).scalars().first()
        assert last is not None and json.loads(last.details)["sha256"] == digest
    res = CliRunner().invoke(cli, ["report", str(demo["confirmed"]), "-o", str(tmp_path / "r.html"), "--names",
                                   "--lang", "uk", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r.html").read_text()
    assert f"{SECRET_NAME} M1" in html and 'lang="uk"' in html
    # the liaison's version of a proposal: refused, nothing written
    res = CliRunner().invoke(cli, ["report", str(demo["proposed"]), "-o", str(tmp_path / "p.pdf"), "--names",
                                   "--data-dir", str(data_dir)])
    assert res.exit_code != 0 and "confirmed identifications only" in str(res.exception)
    assert not (tmp_path / "p.pdf").exists()


def test_evidence__an_engine_refusal_is_shown_not_raised(demo: dict[str, Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import opendvi.dvi.pairwise as pairwise
    from opendvi.dvi import DVIError

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise DVIError("family F1 cannot be evaluated (test)")

    monkeypatch.setattr(pairwise, "pairwise_marker_log_lr", refuse)
    with _session(demo) as db:
        ev = candidate_evidence(db, repo.get_candidate(db, candidate_id=demo["best"]["V1"]["id"]))
    assert not ev["engine_check"]["reproduced"] and "cannot be evaluated" in ev["engine_check"]["error"]
    assert not any(r["mutation_only"] for r in ev["markers"])  # unknown, not claimed
    page = demo["client"].get(f"/candidates/{demo['best']['V1']['id']}", headers=demo["h"]["dvi"])
    assert page.status_code == 200 and "not recomputed: family F1 cannot be evaluated (test)" in page.text


def test_relationship_terms__in_the_readers_language() -> None:
    """A donor's relationship is stored as a key ("father", "other: step-father") and shown in words
    (the allele table, the report, the family and liaison pages: ``term(..., "relationship")``)."""
    from opendvi.i18n import terms, use_locale

    with use_locale("en"):
        assert terms.term("full_sibling", "relationship") == "full sibling"
        assert terms.term("other: step-father", "relationship") == "other: step-father"
    with use_locale("uk"):
        uk = terms.term("father", "relationship")
        assert uk and uk != "father"
        other = terms.term("other: step-father", "relationship")
        assert other.endswith(": step-father") and not other.startswith("other")


def test_report_pdf__without_weasyprints_libraries_a_clear_503(demo: dict[str, Any],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A server without Pango (WeasyPrint cannot load): the PDF download is a 503 in the error shape
    naming the printable report, not a 500; the HTML report still works."""
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # "import weasyprint" raises ImportError
    client, h = demo["client"], demo["h"]
    r = client.get(f"/identifications/{demo['confirmed']}/report.pdf", headers=h["reviewer"])
    assert r.status_code == 503 and r.json()["error"]["code"] == "pdf_unavailable", r.text
    assert client.get(f"/identifications/{demo['confirmed']}/report", headers=h["reviewer"]).status_code == 200
