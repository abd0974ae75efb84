"""Decisions rest on current evidence: a proposal or a confirmation is refused (409, with the reason) when
its candidate's run was superseded, when a profile it used has a newer version, when the frequencies
changed, or when the missing person already has another active identification - unless the policy allows
it with a reason, which the audit records. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.store import audit
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.models import FrequencyDatabase
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, match, migrated_engine

backends = pytest.mark.parametrize("backend", BACKENDS)


def _run(client: TestClient, dvi: dict[str, str]) -> int:
    return int(match(client, client.app, dvi, "demo", top_k=10)["id"])


def _candidates(client: TestClient, h: dict[str, str], barcode: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/remains/{barcode}/candidates", headers=h)
    assert r.status_code == 200, r.text
    return list(r.json())


def _retype_v1(client: TestClient, lab: dict[str, str]) -> None:
    doc = json.loads(Path(demo_case_path()).read_text())
    v1 = next(r for r in doc["remains"] if r["id"] == "V1")
    marker = next(m for m in doc["markers"] if m["name"] == "D3S1358")
    old = v1["genotypes"]["D3S1358"]
    v1["genotypes"]["D3S1358"] = [a for a in marker["alleles"] if a not in old][:1] * 2
    r = client.post("/api/operations/demo/imports?filename=retyped.json", json=doc, headers=lab)
    assert r.status_code == 201, r.text


@backends
def test_proposals_and_confirmations_refuse_stale_evidence(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        client = TestClient(make_app(engine))
        dvi, lab, rev, admin = (bearer(client, u) for u in ("dvi", "lab", "reviewer", "admin"))
        run1 = _run(client, dvi)
        c_v1 = _candidates(client, dvi, "V1")[0]
        c_v2 = _candidates(client, dvi, "V2")[0]
        assert c_v1["run_id"] == c_v2["run_id"] == run1

        # the remains was re-typed after the run: its candidates no longer hold, whatever the reason given
        _retype_v1(client, lab)
        for extra in ({}, {"override_reason": "I know"}):
            r = client.post("/api/identifications", json={"candidate_id": c_v1["id"], **extra}, headers=dvi)
            err = assert_error_shape(r, 409)
            assert "V1 was re-typed" in err["message"] and "version 2" in err["message"], err

        # a later run supersedes every candidate of the earlier one
        run2 = _run(client, dvi)
        r = client.post("/api/identifications", json={"candidate_id": c_v2["id"]}, headers=dvi)
        err = assert_error_shape(r, 409)
        assert f"run #{run1} was superseded by run #{run2}" in err["message"], err

        # the current run's candidate: proposed and confirmed
        best = _candidates(client, dvi, "V2")[0]
        assert best["run_id"] == run2
        r = client.post("/api/identifications", json={"candidate_id": best["id"]}, headers=dvi)
        assert r.status_code == 201, r.text
        first = r.json()
        r = client.post(f"/api/identifications/{first['id']}/confirm", json={}, headers=rev)
        assert r.status_code == 200, r.text

        # the same missing person for other remains: refused without a reason, recorded with one
        mp = best["missing_person"]
        other = next(c for b in ("V3", "V4", "V5", "V6", "V7", "V8") for c in _candidates(client, dvi, b)
                     if c["missing_person"] == mp)
        r = client.post("/api/identifications", json={"candidate_id": other["id"]}, headers=dvi)
        err = assert_error_shape(r, 409)
        assert f"missing person {mp} already has a confirmed identification with remains V2" in err["message"]
        assert "override_reason" in err["message"]
        reason = "fragmented remains: femur and skull of one person"
        r = client.post("/api/identifications", json={"candidate_id": other["id"], "override_reason": reason},
                        headers=dvi)
        assert r.status_code == 201, r.text
        second = r.json()
        r = client.post(f"/api/identifications/{second['id']}/confirm", json={}, headers=rev)
        assert assert_error_shape(r, 409)["message"].startswith(f"candidate {other['id']} cannot be confirmed")
        r = client.post(f"/api/identifications/{second['id']}/confirm", json={"override_reason": reason},
                        headers=rev)
        assert r.status_code == 200, r.text

        entries = client.get("/api/audit?object_type=identification", headers=admin).json()
        overrides = [json.loads(e["details"]) if isinstance(e["details"], str) else e["details"] for e in entries]
        recorded = [d["override"] for d in overrides if "override" in d]
        assert len(recorded) == 2, entries
        assert all(o["reason"] == reason and "missing_person_identified" in o["rules"] for o in recorded)
        with store_db.session_factory(engine)() as db:
            assert audit.verify_chain(db).ok


@backends
def test_evidence_problems__references_and_frequencies_after_the_run(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        client = TestClient(make_app(engine))
        dvi = bearer(client, "dvi")
        _run(client, dvi)
        cand_id = _candidates(client, dvi, "V1")[0]["id"]
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            cand = repo.get_candidate(db, candidate_id=cand_id)
            assert repo.evidence_problems(db, candidate=cand) == []
            donor = repo.donors_of(db, family=cand.missing_person.family)[0]
            gts = dict(repo.current_profile(db, donor=donor).genotypes)  # type: ignore[union-attr]
            marker = sorted(gts)[0]
            gts[marker] = [gts[marker][1], gts[marker][1]]
            assert repo.add_profile(db, genotypes=gts, donor=donor) is not None
            op = repo.get_operation(db, code="demo")
            fdb = op.frequency_database
            assert fdb is not None
            new = FrequencyDatabase(name="changed", sha256="f" * 64, theta=fdb.theta, markers=fdb.markers)
            db.add(new)
            db.flush()
            op.frequency_database_id = new.id
            db.flush()
            rules = {rule for rule, _ in repo.evidence_problems(db, candidate=cand)}
        assert rules == {"newer_profile", "newer_frequencies"}


def test_decision_policy__below_it_a_proposal_and_a_confirmation_need_a_reason(tmp_path: Path) -> None:
    """The decision policy (defaults: `opendvi solve`'s LR 10^4 and posterior 0.999): a candidate
    below it is refused without ``override_reason`` (409 naming the policy), recorded with one
    (audit ``override.rules == ["below_policy"]``); the match page asks for the reason; the
    thresholds are settings."""
    from opendvi.dvi.workflow import SolveOptions
    from opendvi.service.settings import Settings

    assert (Settings().decision_min_lr, Settings().decision_min_posterior) == (
        SolveOptions().threshold, SolveOptions().min_posterior)
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        dvi, rev, admin = (bearer(client, u) for u in ("dvi", "reviewer", "admin"))
        _run(client, dvi)
        cands = [c for b in ("V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8") for c in _candidates(client, dvi, b)]
        strong = next(c for c in cands if c["log10_lr"] is not None and c["log10_lr"] >= 4
                      and c["posterior"] >= 0.999 and c["rank"] == 1)
        weak = next(c for c in cands if c["log10_lr"] is not None and (c["log10_lr"] < 4 or c["posterior"] < 0.999)
                    and c["remains"] != strong["remains"] and c["missing_person"] != strong["missing_person"])
        page = client.get(f"/candidates/{weak['id']}", headers={**dvi, "accept": "text/html"}).text
        assert 'name="override_reason"' in page and "decision policy" in page
        assert 'name="override_reason"' not in client.get(f"/candidates/{strong['id']}",
                                                          headers={**dvi, "accept": "text/html"}).text
        err = assert_error_shape(client.post("/api/identifications", json={"candidate_id": weak["id"]},
                                             headers=dvi), 409)
        assert "below the decision policy" in err["message"] and "override_reason" in err["message"]
        reason = "two brothers missing: the family asked for both profiles to be compared"
        r = client.post("/api/identifications", json={"candidate_id": weak["id"], "override_reason": reason},
                        headers=dvi)
        assert r.status_code == 201, r.text
        ident = r.json()
        err = assert_error_shape(client.post(f"/api/identifications/{ident['id']}/confirm", json={}, headers=rev),
                                 409)
        assert "below the decision policy" in err["message"]
        r = client.post(f"/api/identifications/{ident['id']}/confirm", json={"override_reason": reason}, headers=rev)
        assert r.status_code == 200, r.text
        assert client.post("/api/identifications", json={"candidate_id": strong["id"]}, headers=dvi).status_code == 201
        entries = client.get("/api/audit?object_type=identification", headers=admin).json()
        details = [json.loads(e["details"]) if isinstance(e["details"], str) else e["details"] for e in entries]
        overrides = [d["override"] for d in details if "override" in d]
        assert len(overrides) == 2 and all(o["rules"] == ["below_policy"] and o["reason"] == reason
                                           for o in overrides)
    # the thresholds are settings: a stricter LR refuses even the strong candidate
    with migrated_engine("sqlite", tmp_path / "strict") as engine:
        client = TestClient(make_app(engine, decision_min_lr=1e60))
        dvi = bearer(client, "dvi")
        _run(client, dvi)
        best = _candidates(client, dvi, strong["remains"])[0]
        err = assert_error_shape(client.post("/api/identifications", json={"candidate_id": best["id"]},
                                             headers=dvi), 409)
        assert "below the decision policy's 1e+60" in err["message"]
