"""The match review page ``GET /candidates/{id}``: the evidence first, then the decisions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.store import repositories as repo
from tests.servicekit import SECRET_NAME, bearer, make_app, match, migrated_engine


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo case matched, the names set; V1 -> M1 proposed by the DVI analyst."""
    tmp = tmp_path_factory.mktemp("review")
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("dvi", "reviewer", "intake", "admin")}
        match(client, app, h["dvi"])
        for code in ("M1", "M2"):
            assert client.put(f"/api/missing-persons/{code}/details", json={"full_name": f"{SECRET_NAME} {code}"},
                              headers=h["intake"]).status_code == 200
        cands = {b: client.get(f"/api/remains/{b}/candidates", headers=h["dvi"]).json() for b in ("V1", "V6")}
        ident = client.post("/api/identifications", json={"candidate_id": cands["V1"][0]["id"]}, headers=h["dvi"])
        assert ident.status_code == 201, ident.text
        yield {"app": app, "client": client, "h": h, "cands": cands, "ident": ident.json()}


def _page(world: dict[str, Any], candidate_id: int, user: str = "dvi") -> str:
    r = world["client"].get(f"/candidates/{candidate_id}", headers=world["h"][user])
    assert r.status_code == 200, r.text[:500]
    return r.text


def _row(html: str, marker: str) -> str:
    m = re.search(rf'<tr[^>]*data-marker="{re.escape(marker)}".*?</tr>', html, re.S)
    assert m, marker
    return m.group(0)


def test_page__alleles_of_remains_and_each_reference_and_stored_lrs(world: dict[str, Any]) -> None:
    cand = world["cands"]["V1"][0]
    html = _page(world, cand["id"])
    app = world["app"]
    with app.state.sessionmaker() as db:
        c = repo.get_candidate(db, candidate_id=cand["id"])
        remains = repo.current_profile(db, remains=c.remains)
        donors = repo.donors_of(db, family=c.missing_person.family)
        refs = [repo.current_profile(db, donor=d) for d in donors]
        stored = c.per_marker["log10_lr"]
    assert remains is not None and len(donors) == 2
    for marker in ("D3S1358", "FGA"):
        row = _row(html, marker)
        cells = re.findall(r'<td class="allele">(.*?)</td>', row)
        assert cells[0] == "/".join(remains.genotypes[marker])
        assert cells[1:] == ["/".join(p.genotypes[marker]) for p in refs if p is not None]
        log10 = re.search(r'<td class="num log10">(.*?)</td>', row)
        assert log10 and float(log10.group(1).replace(",", "")) == pytest.approx(stored[marker], abs=5e-4)
    for d in donors:
        assert f"Reference {d.barcode}" in html
    # one header row and one row per marker in #per-marker (the browser tour counts them)
    block = re.search(r'<div class="table-wrap" id="per-marker">.*?</div>', html, re.S)
    assert block and block.group(0).count("<tr") == 1 + len(stored)
    assert f"Remains {cand['remains']}" in html


def test_page__evidence_first_then_decisions(world: dict[str, Any]) -> None:
    html = _page(world, world["cands"]["V1"][1]["id"])  # V1's second candidate: not proposed, no form
    order = [html.index(x) for x in ('id="verbal"', 'id="pedigree"', 'id="alleles"', "lr-distribution.svg",
                                     'id="provenance"', 'id="decision"')]
    assert order == sorted(order)
    assert "The findings provide" in html  # the verbal equivalent
    assert re.search(r'<img src="/plots/candidates/\d+/lr-distribution.svg"[^>]*alt="[^"]+"', html)
    # table headers all have a scope; every input has a label (or is hidden)
    assert not re.search(r"<th(?=[\s>])(?![^>]*scope=)[^>]*>", html)
    assert "typed reference" in html and "missing person" in html  # the pedigree's legend
    assert "<script" not in html


def test_page__warning_when_the_missing_person_or_the_remains_is_already_identified(world: dict[str, Any]) -> None:
    # V6's best candidate is M1, which V1 is proposed as
    v6_m1 = next(c for c in world["cands"]["V6"] if c["missing_person"] == "M1")
    html = _page(world, v6_m1["id"])
    warning = re.search(r'<div class="warning" role="alert" id="warning">.*?</div>', html, re.S)
    assert warning and "The missing person M1 already has a proposed identification" in warning.group(0)
    assert f"#{world['ident']['id']}" in warning.group(0)
    # V1's second candidate: the remains V1 has one
    html = _page(world, world["cands"]["V1"][1]["id"])
    assert "The remains V1 already has a proposed identification" in html
    assert 'id="propose"' not in html  # no proposal while the remains has an active one
    # the candidate under review itself carries no warning
    html = _page(world, world["cands"]["V1"][0]["id"])
    assert 'id="warning"' not in html


def test_page__mutation_explained_markers_are_marked_in_text(world: dict[str, Any]) -> None:
    v1_m2 = next(c for c in world["cands"]["V1"] if c["missing_person"] == "M2")
    html = _page(world, v1_m2["id"])
    rows = re.findall(r'<tr class="[^"]*\bmutation\b[^"]*" data-marker=".*?</tr>', html, re.S)
    assert rows and all("explained only by mutation" in r for r in rows)


def test_page__reviewer_decides_here_proposer_does_not(world: dict[str, Any]) -> None:
    ident = world["ident"]
    cand = world["cands"]["V1"][0]
    rev = _page(world, cand["id"], "reviewer")
    assert f'action="/identifications/{ident["id"]}/confirm"' in rev
    assert f'action="/identifications/{ident["id"]}/reject"' in rev
    assert f'name="version" value="{ident["version"]}"' in rev
    assert f'href="/identifications/{ident["id"]}/report.pdf"' in rev
    dvi = _page(world, cand["id"], "dvi")
    assert "/confirm" not in dvi and 'id="propose"' not in dvi
    assert f'href="/identifications#ident-{ident["id"]}"' in dvi
    # a candidate without an identification: the analyst proposes
    other = _page(world, world["cands"]["V6"][0]["id"], "dvi")
    assert 'action="/candidates/' in other and 'id="propose"' in other


def test_page__no_name_for_the_dna_side(world: dict[str, Any]) -> None:
    for user in ("dvi", "reviewer", "admin"):
        for cands in world["cands"].values():
            assert SECRET_NAME not in _page(world, cands[0]["id"], user)


def test_page__unknown_candidate_is_404(world: dict[str, Any], tmp_path: Path) -> None:
    r = world["client"].get("/candidates/999999", headers=world["h"]["dvi"])
    assert r.status_code == 404
