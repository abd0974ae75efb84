"""The service's family power counts the lineage markers of the operation (docs/power.md, "Lineage
markers"): the API equals the library on the same family, each lineage term included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.io.case_json import case_from_dict, case_to_dict
from opendvi.screening import simulate_case
from opendvi.workflows.planning import family_plan
from opendvi.workflows.results import power_json
from tests.servicekit import bearer, make_app, migrated_engine


def _doc() -> dict[str, Any]:
    case, _ = simulate_case(families=4, remains=2, seed=3, lineage=("Y", "mt"))
    doc = case_to_dict(case)
    for system in ("Y", "mt"):  # a smaller database: a lighter import
        db = doc["lineage"][system]["database"]
        db["haplotypes"] = db["haplotypes"][:200]
    return doc


def test_family_power_api__lineage_terms_equal_the_library(tmp_path: Path) -> None:
    doc = _doc()
    case = case_from_dict(json.loads(json.dumps(doc)))
    assert case.lineage is not None
    # a family with a typed man on its missing man's paternal line
    fam = next(f for f in case.families if any(
        t.system == "Y" for r in family_plan(case, f.id) for t in r.summary.lineage))
    want = power_json(family_plan(case, fam.id))
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine, demo=False))
        lab, dvi = bearer(client, "lab"), bearer(client, "dvi")
        assert client.post("/api/operations", json={"code": "A", "name": "A"}, headers=lab).status_code == 201
        r = client.post("/api/operations/A/imports", json=doc, headers=lab)
        assert r.status_code == 201, r.text
        r = client.get(f"/api/power/families/{fam.id}", params={"operation": "A"}, headers=dvi)
        assert r.status_code == 200, r.text
        got = r.json()
        html = client.get(f"/power/families/{fam.id}", params={"operation": "A"}, headers=dvi)
    assert [g["missing"] for g in got] == [w["missing"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert set(g["lineage"]) == set(w["lineage"]) and "Y" in g["lineage"]
        for system, term in w["lineage"].items():
            assert g["lineage"][system]["e_log10_lr"] == pytest.approx(term["e_log10_lr"], rel=1e-12, abs=1e-12)
            assert g["lineage"][system]["reference"] == term["reference"]
        assert g["lr"]["e_log10_lr"] == pytest.approx(w["lr"]["e_log10_lr"], rel=1e-12)
        assert [c["candidate"] for c in g.get("next", [])] == [c["candidate"] for c in w.get("next", [])]
    assert html.status_code == 200 and "power-lineage" in html.text
