"""Lists that scale: server-side paging with the total, sorting, filters and search, on SQLite and
PostgreSQL, through the API (``?page=&per_page=&sort=``; the total in ``X-Total-Count``, the next and
previous pages in ``Link``) and the pages; barcodes with ``#``, ``/``, spaces, ``%`` and ``_`` in URLs and
searches; the number of SQL statements of a page does not grow with its rows (no N+1)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from opendvi.io.case_json import case_to_dict
from opendvi.screening import simulate_case
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, migrated_engine, run_queued

ODD = ["V#1", "V/2 b", "V 3", "V%4", "V_5"]


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("lists")
    with migrated_engine(request.param, tmp) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi", "admin", "reviewer", "intake")}
        case, _ = simulate_case(families=15, remains=24, seed=5)
        doc = case_to_dict(case)
        for old, new in zip(doc["remains"], ODD, strict=False):
            old["id"] = new
        a = {**doc, "remains": doc["remains"][:14]}
        b = {**doc, "remains": doc["remains"][14:], "families": []}
        for code, d in (("A", a), ("B", b)):
            r = client.post("/api/operations", json={"code": code, "name": code}, headers=h["lab"])
            assert r.status_code == 201, r.text
            r = client.post(f"/api/operations/{code}/imports", json=d, headers=h["lab"])
            assert r.status_code == 201, r.text
        r = client.post("/api/operations/A/matching-runs", json={"top_k": 3, "lr_threshold": 100}, headers=h["dvi"])
        assert r.status_code == 202
        assert [s for _, s in run_queued(app)] == ["finished"]
        # identifications: the best candidate of two remains proposed, one of them confirmed
        best = {}
        for bc in ("V#1", "V/2 b"):
            best[bc] = client.get(f"/api/remains/{quote(bc, safe='')}/candidates", headers=h["dvi"]).json()[0]
        why = {"override_reason": "lists test"}  # the decision policy: some are below it
        ids = [client.post("/api/identifications", json={"candidate_id": best[bc]["id"], **why},
                           headers=h["dvi"]).json() for bc in best]
        r = client.post(f"/api/identifications/{ids[1]['id']}/confirm", json=why, headers=h["reviewer"])
        assert r.status_code == 200, r.text
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2]))
        yield {"client": client, "h": h, "engine": engine, "statements": statements, "doc": doc}


def _all(world: dict[str, Any], path: str, per_page: int, **params: Any) -> tuple[list[Any], int]:
    """Every row through the pages, following ``Link: rel="next"``; and the total."""
    rows: list[Any] = []
    page = 1
    while True:
        r = world["client"].get(path, params={**params, "page": page, "per_page": per_page},
                                headers=world["h"]["admin" if "audit" in path else "dvi"])
        assert r.status_code == 200, r.text
        assert len(r.json()) <= per_page
        rows += r.json()
        total = int(r.headers["X-Total-Count"])
        assert r.headers["X-Page"] == str(page) and r.headers["X-Per-Page"] == str(per_page)
        if 'rel="next"' not in r.headers.get("Link", ""):
            assert len(rows) == total
            return rows, total
        page += 1


def test_remains__paged_sorted_with_the_total(world: dict[str, Any]) -> None:
    rows, total = _all(world, "/api/remains", 5)
    assert total == 24
    barcodes = [r["barcode"] for r in rows]
    assert barcodes == sorted(barcodes) and len(set(barcodes)) == 24
    desc, _ = _all(world, "/api/remains", 7, sort="-barcode")
    assert [r["barcode"] for r in desc] == barcodes[::-1]
    by_lr, _ = _all(world, "/api/remains", 6, sort="-best_lr")
    lrs = [r["best_log10_lr"] for r in by_lr]
    finite = [x for x in lrs if x is not None]
    assert finite == sorted(finite, reverse=True) and lrs[:len(finite)] == finite  # no LR last
    r = world["client"].get("/api/remains", params={"page": 2, "per_page": 5}, headers=world["h"]["dvi"])
    assert 'rel="prev"' in r.headers["Link"] and 'rel="next"' in r.headers["Link"]
    assert_error_shape(world["client"].get("/api/remains", params={"sort": "nonsense"}, headers=world["h"]["dvi"]),
                       422)


def test_remains__filters(world: dict[str, Any]) -> None:
    c, dvi = world["client"], world["h"]["dvi"]

    def total(**params: Any) -> int:
        r = c.get("/api/remains", params=params, headers=dvi)
        assert r.status_code == 200, r.text
        return int(r.headers["X-Total-Count"])

    assert total(operation="A") == 14 and total(operation="B") == 10
    # searches: % and _ match themselves
    assert [r["barcode"] for r in c.get("/api/remains", params={"q": "%"}, headers=dvi).json()] == ["V%4"]
    assert [r["barcode"] for r in c.get("/api/remains", params={"q": "_"}, headers=dvi).json()] == ["V_5"]
    assert [r["barcode"] for r in c.get("/api/remains", params={"q": "/2 "}, headers=dvi).json()] == ["V/2 b"]
    # identification state
    assert total(state="proposed") == 1 and total(state="confirmed") == 1 and total(state="none") == 22
    # LR range of the best candidate
    rows = c.get("/api/remains", params={"min_log10_lr": 5, "per_page": 100}, headers=dvi).json()
    assert rows and all(r["best_log10_lr"] >= 5 for r in rows)
    rows = c.get("/api/remains", params={"max_log10_lr": 0, "per_page": 100}, headers=dvi).json()
    assert all(r["best_log10_lr"] <= 0 for r in rows)
    high = c.get("/api/remains", params={"min_log10_lr": 4, "per_page": 100}, headers=dvi).json()
    # unreviewed: a candidate above the threshold and no active identification
    unrev = c.get("/api/remains", params={"unreviewed_above": 4, "per_page": 100}, headers=dvi).json()
    assert [r["barcode"] for r in unrev] == [r["barcode"] for r in high if r["identification"] is None]
    assert len(unrev) < len(high)


def test_odd_barcodes__open_in_the_api_and_the_pages(world: dict[str, Any]) -> None:
    c, dvi = world["client"], world["h"]["dvi"]
    for bc in ODD:
        r = c.get(f"/api/remains/{quote(bc, safe='')}", headers=dvi)
        assert r.status_code == 200 and r.json()["barcode"] == bc, (bc, r.text)
        r = c.get(f"/remains/{quote(bc, safe='')}", headers=dvi)
        assert r.status_code == 200 and "<h1" in r.text, bc
    page = c.get("/remains", params={"q": "V", "per_page": 50}, headers=dvi).text
    for bc in ODD:
        assert f'href="/remains/{quote(bc, safe="")}"' in page, bc


def test_candidates_families_identifications_audit__paged_and_filtered(world: dict[str, Any]) -> None:
    c, h = world["client"], world["h"]
    cands, total = _all(world, "/api/candidates", 9, sort="-posterior")
    post = [x["posterior"] for x in cands]
    assert total > 24 and post == sorted(post, reverse=True)
    fam = cands[0]["family"]
    rows, _ = _all(world, "/api/candidates", 4, q=fam)
    assert rows and all(fam.lower() in (x["family"] + x["remains"]).lower() for x in rows)
    rows, _ = _all(world, "/api/candidates", 50, min_log10_lr=2, max_log10_lr=10)
    assert all(2 <= x["log10_lr"] <= 10 for x in rows)
    rows, _ = _all(world, "/api/candidates", 50, unreviewed="true")
    assert {"V#1", "V/2 b"}.isdisjoint({x["remains"] for x in rows})
    fams, ftotal = _all(world, "/api/families", 4)
    assert ftotal == 15 and [f["code"] for f in fams] == sorted(f["code"] for f in fams)
    r = c.get("/api/families", params={"q": fams[3]["code"]}, headers=h["dvi"])
    assert [f["code"] for f in r.json()] == [fams[3]["code"]] and r.headers["X-Total-Count"] == "1"
    idents, itotal = _all(world, "/api/identifications", 1)
    assert itotal == 2 and [i["id"] for i in idents] == sorted((i["id"] for i in idents), reverse=True)
    r = c.get("/api/identifications", params={"state": "confirmed"}, headers=h["dvi"])
    assert r.headers["X-Total-Count"] == "1" and r.json()[0]["remains"] == "V/2 b"
    r = c.get("/api/identifications", params={"q": "V#"}, headers=h["dvi"])
    assert [i["remains"] for i in r.json()] == ["V#1"]
    entries, atotal = _all(world, "/api/audit", 10)
    assert [e["seq"] for e in entries] == list(range(atotal, 0, -1))
    runs, _ = _all(world, "/api/audit", 10, action="matching.run")
    assert len(runs) == 1 and runs[0]["object_type"] == "matching_run"
    old = c.get("/api/audit", params={"limit": 3}, headers=h["admin"])  # older clients' parameter
    assert len(old.json()) == 3 and old.headers["X-Total-Count"] == str(atotal)


def test_pages__paged_with_the_total_and_filters(world: dict[str, Any]) -> None:
    c, h = world["client"], world["h"]
    r = c.get("/remains", params={"per_page": 5, "page": 2, "sort": "-barcode", "operation": "A"}, headers=h["dvi"])
    assert r.status_code == 200 and '<span id="total">14</span>' in r.text and 'id="next-page"' in r.text
    assert r.text.count('<tr><td><a href="/remains/') == 5
    r = c.get("/families", params={"per_page": 4}, headers=h["dvi"])
    assert '<span id="total">15</span>' in r.text and r.text.count('class="family"') == 4
    r = c.get("/identifications", params={"state": "proposed"}, headers=h["dvi"])
    assert '<span id="total">1</span>' in r.text
    r = c.get("/audit", params={"action": "matching.run"}, headers=h["admin"])
    assert '<span id="total">1</span>' in r.text and r.text.count('class="audit-row"') == 1
    r = c.get("/remains", params={"state": "none", "min_log10_lr": "x"}, headers=h["dvi"])
    assert r.status_code == 422


@pytest.mark.parametrize(("path", "who"), [("/api/remains", "dvi"), ("/api/candidates", "dvi"),
                                           ("/api/identifications", "dvi"), ("/api/audit", "admin"),
                                           ("/api/families", "intake"), ("/families", "intake")])
def test_no_query_per_row(world: dict[str, Any], path: str, who: str) -> None:
    """A page of 2 rows and a page of 20 take the same number of SQL statements."""
    counts = []
    for n in (2, 20):
        world["statements"].clear()
        r = world["client"].get(path, params={"per_page": n}, headers=world["h"][who])
        assert r.status_code == 200
        if path.startswith("/api/"):
            assert len(r.json()) == min(n, int(r.headers["X-Total-Count"]))
        counts.append(len(world["statements"]))
    assert counts[0] == counts[1], counts
    assert math.isfinite(counts[0])
