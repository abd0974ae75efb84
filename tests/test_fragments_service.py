"""Fragments of one person across exchanges, end to end through the API, on SQLite and PostgreSQL.

Two fragments of one simulated missing person are imported in two operations (A and B); a matching run
links them (the direct-match LR of ``opendvi match-remains``, to 1e-9) and suggests the group that
``match-remains`` finds on the same data; a DVI analyst proposes it, a reviewer confirms it (four eyes);
the next run matches the group as one person: each member's candidates are the consensus profile's,
equal to ``opendvi pairwise`` on the case with the consensus sample; a split puts them back one by one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from opendvi.dvi import DVIProblem
from opendvi.dvi.pairwise import pairwise_lr
from opendvi.dvi.remains import consensus_profile
from opendvi.io.case_json import case_from_dict, case_to_dict
from opendvi.screening import simulate_case
from opendvi.store.models import AuditEntry
from opendvi.workflows.fragments import link_fragments
from opendvi.workflows.identify import match_remains
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, match, migrated_engine

LOG10 = math.log(10.0)


def _docs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], tuple[str, str]]:
    """Operations A and B (dvi-case/1) and the whole case; two fragments of one missing person, one in
    each operation."""
    case, truth = simulate_case(families=10, remains=14, seed=5, share_fragments=0.15)
    whole = case_to_dict(case)
    for m in whole["markers"]:
        m.pop("mutation", None)
    by_mp: dict[str, list[str]] = {}
    for rid, mp in truth.missing.items():
        if mp is not None:
            by_mp.setdefault(mp, []).append(rid)
    pair = next(v for v in by_mp.values() if len(v) == 2)
    ids = [r["id"] for r in whole["remains"]]
    in_b = set(ids[len(ids) // 2:]) - {pair[0]} | {pair[1]}
    a = {**copy.deepcopy(whole), "remains": [r for r in whole["remains"] if r["id"] not in in_b],
         "families": whole["families"][:6]}
    b = {**copy.deepcopy(whole), "remains": [r for r in whole["remains"] if r["id"] in in_b],
         "families": whole["families"][6:]}
    return a, b, whole, (pair[0], pair[1])


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with migrated_engine(request.param, tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi", "reviewer", "reviewer2", "intake")}
        a, b, whole, pair = _docs()
        for code, doc in (("A", a), ("B", b)):
            r = client.post("/api/operations", json={"code": code, "name": code}, headers=h["lab"])
            assert r.status_code == 201, r.text
            r = client.post(f"/api/operations/{code}/imports", json=doc, headers=h["lab"])
            assert r.status_code == 201, r.text
        yield {"app": app, "client": client, "h": h, "whole": whole, "pair": pair, "engine": engine}


def _run(world: dict[str, Any]) -> dict[str, Any]:
    return match(world["client"], world["app"], world["h"]["dvi"], "A", top_k=3, lr_threshold=1e4)


def _get(world: dict[str, Any], url: str, who: str = "dvi", **params: Any) -> Any:
    r = world["client"].get(url, params=params, headers=world["h"][who])
    assert r.status_code == 200, r.text
    return r.json()


def _post(world: dict[str, Any], url: str, who: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
    r = world["client"].post(url, json=body, headers=world["h"][who])
    assert r.status_code == status, r.text
    return r.json()


def test_fragments_in_two_operations_grouped_confirmed_matched_as_one(world: dict[str, Any]) -> None:
    whole, (x, y) = world["whole"], world["pair"]
    run = _run(world)
    assert run["parameters"]["fragments"]["threshold"] == 1e4
    # -- the group equals match-remains on the same data
    ref = match_remains(case_from_dict(whole), threshold=1e4)
    groups = _get(world, "/api/fragment-groups", state="suggested")
    assert sorted(sorted(m["barcode"] for m in g["members"]) for g in groups) == sorted(sorted(g) for g in
                                                                                        ref.matching.groups)
    mine = next(g for g in groups if {x, y} <= {m["barcode"] for m in g["members"]})
    assert {m["operation"] for m in mine["members"]} == {"A", "B"}
    # every link of every remains: the pairs at or above the threshold, with match-remains' LR
    linked: dict[frozenset[str], float] = {}
    for rid in {r["id"] for r in whole["remains"]}:
        for ln in _get(world, "/api/fragment-links", remains=rid):
            if ln["linked"]:
                linked[frozenset((ln["a"], ln["b"]))] = ln["log10_lr"]
    assert linked == {frozenset((ln["a"], ln["b"])): ln["log10_lr"]
                      for ln in _get(world, "/api/fragment-links") if ln["linked"]}
    want = {frozenset(k): v for k, v in ref.matching.log_lr.items() if v >= math.log(1e4)}
    assert set(linked) == set(want)
    for k, v in want.items():
        assert linked[k] == pytest.approx(v / LOG10, abs=1e-9)
    assert any(ln["a"] in (x, y) and ln["b"] in (x, y) for ln in mine["links"])
    # -- four eyes: the analyst proposes, a reviewer confirms; not the other way round
    gid = mine["id"]
    assert_error_shape(world["client"].post(f"/api/fragment-groups/{gid}/confirm", headers=world["h"]["reviewer"]),
                       409)  # only a proposed group
    assert_error_shape(world["client"].post(f"/api/fragment-groups/{gid}/propose", headers=world["h"]["reviewer"]),
                       403)
    g = _post(world, f"/api/fragment-groups/{gid}/propose", "dvi", {"note": "same person, two exchanges"})
    assert g["state"] == "proposed" and g["proposed_by"] == "dvi"
    assert_error_shape(world["client"].post(f"/api/fragment-groups/{gid}/confirm", headers=world["h"]["dvi"]), 403)
    # a remains is in at most one active group
    assert_error_shape(world["client"].post("/api/fragment-groups", json={"remains": [x, y]},
                                            headers=world["h"]["dvi"]), 409)
    g = _post(world, f"/api/fragment-groups/{gid}/confirm", "reviewer", {"version": g["version"]})
    assert g["state"] == "confirmed" and g["decided_by"] == "reviewer"
    # -- the next run matches the group as one person: its consensus profile
    run2 = _run(world)
    members = [m["barcode"] for m in g["members"]]
    assert run2["parameters"]["fragments"]["matched_as_one"] == {f"fragment-group-{gid}": members}
    case = case_from_dict(whole)
    by_id = {r.id: r for r in case.remains}
    cons, _notes = consensus_profile([by_id[m] for m in members], id="CONSENSUS")
    merged = replace(case, remains=(cons, *(r for r in case.remains if r.id not in members)))
    pw = pairwise_lr(DVIProblem(merged))
    expected = {mp: v for mp, v in pw.log_lr["CONSENSUS"].items()}
    for m in members:
        cands = _get(world, f"/api/remains/{m}/candidates")
        assert cands, m
        for c in cands:
            assert c["fragment_group"] == {"consensus": f"fragment-group-{gid}", "members": members}
            want_lr = expected[c["missing_person"]]
            got = -math.inf if c["log10_lr"] is None else c["log10_lr"] * LOG10
            assert got == pytest.approx(want_lr, abs=1e-9), (m, c)
    # the remains page shows the group, its links and the operation of each part
    page = world["client"].get(f"/remains/{x}", headers=world["h"]["reviewer"])
    assert page.status_code == 200
    assert f'id="fragment-group-{gid}"' in page.text and "fragment-links" in page.text
    # -- split (a confirmed group: a reviewer, with a reason); the parts are matched one by one again
    assert_error_shape(world["client"].post(f"/api/fragment-groups/{gid}/split", json={"reason": ""},
                                            headers=world["h"]["reviewer2"]), 409)
    assert_error_shape(world["client"].post(f"/api/fragment-groups/{gid}/split", json={"reason": "x"},
                                            headers=world["h"]["dvi"]), 403)
    g = _post(world, f"/api/fragment-groups/{gid}/split", "reviewer2", {"reason": "an exclusion at a re-typing"})
    assert g["state"] == "split"
    _run(world)
    assert all("fragment_group" not in c for c in _get(world, f"/api/remains/{x}/candidates"))
    assert not [s for s in _get(world, "/api/fragment-groups", state="suggested")
                if {m["barcode"] for m in s["members"]} == set(members)]  # not suggested again
    # every change audited
    with world["app"].state.sessionmaker() as db:
        actions = list(db.execute(select(AuditEntry.action).where(AuditEntry.action.like("fragments.%"))).scalars())
    assert {"fragments.suggest", "fragments.propose", "fragments.confirm", "fragments.split"} <= set(actions)


def test_propose_by_hand_and_bad_input(world: dict[str, Any]) -> None:
    x, y = world["pair"]
    _run(world)
    # the remains page's forms: the analyst proposes the suggested group, the reviewer sees the confirm form
    client, h = world["client"], world["h"]
    gid = next(g["id"] for g in _get(world, "/api/fragment-groups", state="suggested", remains=x))
    r = client.post(f"/fragment-groups/{gid}/propose", data={"back": x, "note": "page"}, headers=h["dvi"],
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith(f"#fragment-group-{gid}")
    assert _get(world, f"/api/fragment-groups/{gid}")["state"] == "proposed"
    page = client.get(f"/remains/{x}", headers=h["reviewer"]).text
    assert f'action="/fragment-groups/{gid}/confirm"' in page and f'action="/fragment-groups/{gid}/split"' in page
    assert f'action="/fragment-groups/{gid}/confirm"' not in client.get(f"/remains/{x}", headers=h["dvi"]).text
    r = client.post(f"/fragment-groups/{gid}/split", data={"back": x, "reason": "page"}, headers=h["dvi"],
                    follow_redirects=False)
    assert r.status_code == 303 and _get(world, f"/api/fragment-groups/{gid}")["state"] == "split"
    assert_error_shape(world["client"].post("/api/fragment-groups", json={"remains": [x]},
                                            headers=world["h"]["dvi"]), 422)
    assert_error_shape(world["client"].post("/api/fragment-groups", json={"remains": [x, "NO-SUCH"]},
                                            headers=world["h"]["dvi"]), 404)
    assert_error_shape(world["client"].get("/api/fragment-groups/999999", headers=world["h"]["dvi"]), 404)
    g = _post(world, "/api/fragment-groups", "dvi", {"remains": [x, y], "note": "by hand"}, status=201)
    assert g["state"] == "proposed" and g["run"] is None
    assert [m["barcode"] for m in g["members"]] == sorted([x, y])
    # the intake officer (names side) does not read remains
    assert world["client"].get("/api/fragment-groups", headers=world["h"]["intake"]).status_code == 403


def test_an_exchange_links_only_its_new_remains_and_equals_a_full_run(world: dict[str, Any]) -> None:
    x, _y = world["pair"]
    run1 = _run(world)
    assert run1["parameters"]["fragments"]["remains_relinked"] == "all"
    # a new exchange: another fragment of x's person (x's profile, one marker lost)
    whole = copy.deepcopy(world["whole"])
    src = next(r for r in whole["remains"] if r["id"] == x)
    frag = copy.deepcopy(src)
    frag["id"] = "C-FRAG"
    frag["genotypes"].pop(next(iter(frag["genotypes"])))
    doc = {**copy.deepcopy(whole), "remains": [frag], "families": []}
    r = world["client"].post("/api/operations", json={"code": "C", "name": "C"}, headers=world["h"]["lab"])
    assert r.status_code == 201, r.text
    r = world["client"].post("/api/operations/C/imports", json=doc, headers=world["h"]["lab"])
    assert r.status_code == 201, r.text
    run2 = _run(world)
    assert run2["parameters"]["fragments"]["remains_relinked"] == 1
    whole["remains"].append(frag)
    ref = match_remains(case_from_dict(whole), threshold=1e4)
    got = {frozenset((ln["a"], ln["b"])): ln["log10_lr"] for ln in _get(world, "/api/fragment-links") if ln["linked"]}
    want = {frozenset(k): v / LOG10 for k, v in ref.matching.log_lr.items() if v >= math.log(1e4)}
    assert set(got) == set(want) and any("C-FRAG" in k for k in want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=1e-9)


def test_incremental_links_equal_a_full_computation() -> None:
    case, _ = simulate_case(families=5, remains=40, seed=8, share_fragments=0.3)
    old_remains = list(case.remains[:30])
    prev = link_fragments(replace(case, remains=tuple(old_remains)), threshold=1e4)
    # one old remains re-typed (a marker lost), ten new ones
    retyped = old_remains[3]
    gts = dict(retyped.genotypes)
    gts.pop(next(iter(gts)))
    now = replace(case, remains=(*old_remains[:3], replace(retyped, genotypes=gts), *old_remains[4:],
                                 *case.remains[30:]))
    changed = {retyped.id} | {r.id for r in case.remains[30:]}
    full = link_fragments(now, threshold=1e4)
    inc = link_fragments(now, threshold=1e4, changed=changed, carried=[p for p in prev.pairs if p.linked])
    assert inc.relinked == len(changed) and full.relinked is None
    assert inc.groups == full.groups and len(full.groups) >= 2
    f = {(p.a, p.b, p.linked): p.log_lr for p in full.pairs}
    i = {(p.a, p.b, p.linked): p.log_lr for p in inc.pairs}
    assert set(f) == set(i)
    assert all(i[k] == pytest.approx(v, abs=1e-9) for k, v in f.items())


def _many_copies(n: int) -> Any:
    """A simulated case plus ``n`` samples of one profile (a contamination shared by many samples)."""
    case, _ = simulate_case(families=5, remains=30, seed=8, share_fragments=0.3)
    src = case.remains[0]
    copies = tuple(replace(src, id=f"COPY-{k:03d}") for k in range(n))
    return replace(case, remains=(*case.remains, *copies))


def test_many_samples_of_one_profile_keep_few_links_and_the_exact_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """n samples of one profile would be n x n links: a remains keeps its strongest few, the groups are
    still those of every link (``match-remains``' rule), and a group too large to compare pair by pair
    is named in the run's notes instead of n x n inner pairs."""
    from opendvi.workflows import fragments

    monkeypatch.setattr(fragments, "MAX_LINKS_PER_REMAINS", 3)
    monkeypatch.setattr(fragments, "MAX_REVIEWED_GROUP", 10)
    case = _many_copies(40)
    links = link_fragments(case, threshold=1e4)
    ref = match_remains(case, threshold=1e4).matching
    assert links.groups == [list(g) for g in ref.groups]
    every = sum(1 for v in ref.log_lr.values() if v >= math.log(1e4))
    kept = [p for p in links.pairs if p.linked]
    assert links.dropped > 0 and len(kept) + links.dropped == every
    per: dict[str, int] = {}
    for p in kept:  # at most 3 per remains, counted on the remains listed first
        per[p.a] = per.get(p.a, 0) + 1
    assert max(per.values()) <= 3
    big = [g for g in links.groups if len(g) > 10]
    assert links.unreviewed == big and any("COPY-000" in g for g in big)
    # no inner pair of the large group beyond its kept links; the small groups have all theirs
    assert all(p.linked for p in links.pairs if p.a in big[0])
    notes = links.notes()
    assert any(f"group of {len(big[0])} remains" in n for n in notes)
    assert any(f"{links.dropped} links" in n for n in notes)
    # without copies nothing is left out and nothing is said
    plain = link_fragments(replace(case, remains=case.remains[:30]), threshold=1e4)
    assert plain.dropped == 0 and plain.unreviewed == [] and plain.notes() == []


def test_a_run_that_left_links_out_is_followed_by_a_full_linking(world: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from opendvi.workflows import fragments

    monkeypatch.setattr(fragments, "MAX_LINKS_PER_REMAINS", 2)
    monkeypatch.setattr(fragments, "MAX_REVIEWED_GROUP", 5)
    x, _y = world["pair"]
    src = next(r for r in world["whole"]["remains"] if r["id"] == x)
    doc = {**copy.deepcopy(world["whole"]), "families": [],
           "remains": [{**copy.deepcopy(src), "id": f"COPY-{k}"} for k in range(8)]}
    r = world["client"].post("/api/operations/A/imports", json=doc, headers=world["h"]["lab"])
    assert r.status_code == 201, r.text
    run1 = _run(world)
    frag = run1["parameters"]["fragments"]
    assert frag["links_dropped"] > 0 and frag["groups_unreviewed"] == 1
    assert any("too large to compare pair by pair" in n for n in run1["parameters"]["notes"])
    group = next(g for g in _get(world, "/api/fragment-groups") if "COPY-0" in
                 [m["barcode"] for m in g["members"]])
    assert len(group["members"]) == 10  # the 8 copies, x and its fragment y
    # the next run cannot start from stored links that are not all the links: it links every remains
    run2 = _run(world)
    assert run2["parameters"]["fragments"]["remains_relinked"] == "all"
