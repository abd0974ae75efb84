"""Incremental matching (issue 9), end to end through the API on SQLite and PostgreSQL, and the exact
merge of kept lists in the workflow itself.

A case is imported and matched (a full run); then 100 remains arrive (a new operation) and one
reference of a family is re-typed (a new profile version); the next run screens only those (the run
says what it recomputed and why) and its candidates equal a full run's on the same database: the same
pairs, ranks, LRs and posteriors (1e-9), the same GLRs; they also equal ``opendvi screen``.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from opendvi.core.case import Case
from opendvi.io.case_json import case_from_dict, case_to_dict
from opendvi.screening import screen, simulate_case
from opendvi.store.models_runs import MatchingRunInputs
from opendvi.workflows import incremental
from opendvi.workflows.matching import MatchingResult, match_case
from tests.servicekit import BACKENDS, bearer, make_app, match, migrated_engine

TOP_K = 3
THRESHOLD = 1e4
FIELDS = ("log10_lr", "posterior", "exclusions", "rank", "n_markers", "log10_glr", "glr_bound")


def _docs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
    """The first import (20 remains, every family), the exchange (100 more remains) and the whole case
    after one reference is re-typed (the family's code is returned)."""
    case, _truth = simulate_case(families=40, remains=120, seed=5)
    whole = case_to_dict(case)
    for m in whole["markers"]:
        m.pop("mutation", None)
    first = {**copy.deepcopy(whole), "remains": whole["remains"][:20]}
    exchange = {**copy.deepcopy(whole), "remains": whole["remains"][20:], "families": []}
    # re-type a reference of a family that is among the first remains' candidates: take another
    # family's reference genotypes at every marker
    ref = screen(case_from_dict(first), top=TOP_K, threshold=THRESHOLD)
    fam_of = dict(zip(ref.missing_ids, ref.family_ids, strict=True))
    target = fam_of[next(mp for _r, mp, _v, _x in ref.pairs())]
    donor = next(f for f in whole["families"] if f["id"] != target)
    donor_gts = next(m["genotypes"] for m in donor["members"] if m.get("genotypes"))
    for fam in whole["families"]:
        if fam["id"] == target:
            member = next(m for m in fam["members"] if m.get("genotypes"))
            member["genotypes"] = copy.deepcopy(donor_gts)
    return first, exchange, whole, target


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with migrated_engine(request.param, tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi")}
        yield {"app": app, "client": client, "h": h, "engine": engine}


def _import(world: dict[str, Any], code: str, doc: dict[str, Any], *, create: bool = True) -> None:
    client, h = world["client"], world["h"]
    if create:
        r = client.post("/api/operations", json={"code": code, "name": code}, headers=h["lab"])
        assert r.status_code == 201, r.text
    r = client.post(f"/api/operations/{code}/imports", json=doc, headers=h["lab"])
    assert r.status_code == 201, r.text


def _candidates(world: dict[str, Any], run_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    page = 1
    while True:
        r = world["client"].get("/api/candidates", params={"run": run_id, "page": page, "per_page": 200,
                                                            "sort": "remains"}, headers=world["h"]["dvi"])
        assert r.status_code == 200, r.text
        for c in r.json():
            out[(c["remains"], c["missing_person"])] = c
        if 'rel="next"' not in r.headers.get("Link", ""):
            return out
        page += 1


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _assert_same_candidates(got: dict[tuple[str, str], dict[str, Any]],
                            want: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert got.keys() == want.keys()
    for key, c in want.items():
        for f in FIELDS:
            assert _same(got[key][f], c[f]), (key, f, got[key][f], c[f])


def test_exchange_and_retyped_reference__only_those_recomputed__candidates_equal_a_full_run(
        world: dict[str, Any]) -> None:
    first, exchange, whole, target = _docs()
    client, h = world["client"], world["h"]
    _import(world, "A", first)
    run1 = match(client, world["app"], h["dvi"], "A", top_k=TOP_K, lr_threshold=THRESHOLD)
    assert run1["status"] == "finished", run1
    assert run1["recomputed"]["mode"] == "full"
    assert run1["recomputed"]["reasons"] == ["full: no earlier finished run with recorded inputs"]
    # 100 remains arrive in another operation; one reference is re-typed (a new profile version)
    _import(world, "B", exchange)
    _import(world, "A", {**whole, "remains": first["remains"]}, create=False)
    run2 = match(client, world["app"], h["dvi"], "A", top_k=TOP_K, lr_threshold=THRESHOLD)
    assert run2["status"] == "finished", run2
    rec = run2["recomputed"]
    assert rec["mode"] == "incremental", rec
    assert rec["remains_new"] == 100 and rec["remains_retyped"] == 0
    assert rec["families_changed"] == 1 and rec["families_new"] == 0 and rec["families_removed"] == 0
    assert any(r.startswith(f"1 family changed: {target}") for r in rec["reasons"]), rec["reasons"]
    assert rec["remains_screened"] == 100 + rec["remains_rescreened"]
    assert rec["families_screened"] == 1
    assert rec["pairs_carried"] > 0
    n_missing = sum(len([m for m in f["members"] if m.get("missing")]) for f in whole["families"])
    assert rec["pairs_screened"] == (100 + rec["remains_rescreened"]) * n_missing + (
        20 - rec["remains_rescreened"]) * 1
    incremental_rows = _candidates(world, run2["id"])
    # the same database matched in full: the inputs of run 2 forgotten, so run 3 is a full run
    with world["engine"].begin() as conn:
        conn.execute(delete(MatchingRunInputs))
    run3 = match(client, world["app"], h["dvi"], "A", top_k=TOP_K, lr_threshold=THRESHOLD)
    assert run3["recomputed"]["mode"] == "full"
    full_rows = _candidates(world, run3["id"])
    _assert_same_candidates(incremental_rows, full_rows)
    # and both equal the screening engine on the whole case
    ref = screen(case_from_dict(whole), top=TOP_K, threshold=THRESHOLD)
    want = {(rid, mp): v / math.log(10) for rid, mp, v, _x in ref.pairs()}
    assert set(incremental_rows) == set(want)
    for key, v in want.items():
        got = incremental_rows[key]["log10_lr"]
        assert (-math.inf if got is None else got) == pytest.approx(v, abs=1e-9)  # None: LR 0
    # nothing changed since: every candidate carried over, none screened
    run4 = match(client, world["app"], h["dvi"], "A", top_k=TOP_K, lr_threshold=THRESHOLD)
    assert run4["recomputed"]["mode"] == "incremental"
    assert run4["recomputed"]["reasons"] == ["nothing changed: every candidate carried over"]
    assert run4["recomputed"]["pairs_screened"] == 0
    _assert_same_candidates(_candidates(world, run4["id"]), full_rows)
    # another top_k: a full run, and the reason says why
    run5 = match(client, world["app"], h["dvi"], "A", top_k=TOP_K + 1, lr_threshold=THRESHOLD)
    assert run5["recomputed"]["mode"] == "full"
    assert run5["recomputed"]["reasons"] == ["full: top_k changed"]
    page = client.get("/operations/A", headers=h["dvi"])
    assert page.status_code == 200
    assert run5["recomputed"]["causes"] == ["top_k"]
    assert "full run: top-K changed" in page.text and "full run: no earlier run to start from" in page.text
    assert "incremental: 100 remains screened" in page.text or rec["remains_rescreened"]
    assert "100 remains new; 1 family changed" in page.text


# ---------------------------------------------------------------------------
# the workflow alone: random changes, chains of incremental runs, against full runs
# ---------------------------------------------------------------------------


def _state(case: Case, k: int) -> incremental.RunState:
    return incremental.current_state(case, profile_ids={}, top_k=k, lr_threshold=THRESHOLD,
                                     frequency_database_sha256="x", mutation_models={})


def _rows(res: MatchingResult) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c.remains, c.missing): {**{f: getattr(c, f) for f in FIELDS}, "per_marker": c.per_marker}
            for c in res.candidates}


def _assert_equal_runs(a: MatchingResult, b: MatchingResult) -> None:
    ra, rb = _rows(a), _rows(b)
    _assert_same_candidates(ra, rb)
    for key, c in rb.items():
        pa, pb = ra[key]["per_marker"], c["per_marker"]
        assert pa["typed"] == pb["typed"]
        for m, v in pb["log10_lr"].items():
            assert _same(pa["log10_lr"][m], v), (key, m)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("seed", [0, 3, 7])
def test_chains_of_incremental_runs_equal_full_runs(seed: int, depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Remains and families added, re-typed and removed over three runs; depth 1 makes changed families
    leave kept lists short, so that remains are screened again in full."""
    monkeypatch.setattr(incremental, "DEPTH", depth)
    rng = random.Random(seed)
    k = rng.choice([1, 2, 3])
    case, _ = simulate_case(families=30, remains=40, seed=seed)
    rem, fams = list(case.remains), list(case.families)
    cur = replace(case, remains=tuple(rem[:25]), families=tuple(fams[:24]))
    prev = match_case(cur, top_k=k, lr_threshold=THRESHOLD, current=_state(cur, k))
    rescreened = 0
    for _step in range(3):
        rem_now, fam_now = list(cur.remains), list(cur.families)
        rem_now += [r for r in rem if r.id not in {x.id for x in rem_now}][:rng.randint(0, 4)]
        fam_now += [f for f in fams if f.id not in {x.id for x in fam_now}][:rng.randint(0, 2)]
        i, j = rng.randrange(len(rem_now)), rng.randrange(len(rem))
        rem_now[i] = replace(rem_now[i], genotypes=rem[j].genotypes)
        for fi in rng.sample(range(len(fam_now)), 2):
            f = fam_now[fi]
            g = dict(f.genotypes)
            g[rng.choice(sorted(g))] = rng.choice([v for ff in fams for v in ff.genotypes.values()])
            fam_now[fi] = replace(f, genotypes=g)
        if rng.random() < 0.5:
            del fam_now[rng.randrange(len(fam_now))]
        if rng.random() < 0.5:
            del rem_now[rng.randrange(len(rem_now))]
        cur = replace(case, remains=tuple(sorted(rem_now, key=lambda r: r.id)),
                      families=tuple(sorted(fam_now, key=lambda f: f.id)))
        carried = {(c.remains, c.missing): c.per_marker for c in prev.candidates}
        inc = match_case(cur, top_k=k, lr_threshold=THRESHOLD, current=_state(cur, k), previous=prev.state,
                         carried_rows=carried)
        assert inc.recomputed["mode"] == "incremental"
        assert inc.recomputed["families_changed"] >= 1
        rescreened += inc.recomputed["remains_rescreened"]
        _assert_equal_runs(inc, match_case(cur, top_k=k, lr_threshold=THRESHOLD, current=_state(cur, k)))
        prev = inc
    if depth == 1 and seed == 0:
        assert rescreened > 0  # the path that screens an unchanged remains again is exercised


def test_plan__global_changes_mean_a_full_run_and_say_why() -> None:
    case, _ = simulate_case(families=3, remains=4, seed=1)
    a = _state(case, 3)
    assert incremental.plan(a, _state(case, 3)).full is False
    b = incremental.current_state(case, profile_ids={}, top_k=3, lr_threshold=THRESHOLD,
                                  frequency_database_sha256="y", mutation_models={})
    assert incremental.plan(a, b).reasons == ["full: frequency database changed"]
    c = _state(replace(case, theta=0.01), 3)
    assert incremental.plan(a, c).reasons == ["full: theta changed"]
    # a remains with an allele absent from the frequency table renormalises every frequency of that marker
    r0 = case.remains[0]
    m = next(iter(r0.genotypes))
    odd = replace(case, remains=(replace(r0, genotypes={**r0.genotypes, m: ("99.9", "99.9")}), *case.remains[1:]))
    assert incremental.plan(a, _state(odd, 3)).reasons == [incremental.GLOBAL_REASONS["unseen_alleles"]]
    # a profile version is a change even with the same data
    v1 = incremental.current_state(case, profile_ids={r0.id: 1}, top_k=3, lr_threshold=THRESHOLD,
                                   frequency_database_sha256="x", mutation_models={})
    v2 = incremental.current_state(case, profile_ids={r0.id: 2}, top_k=3, lr_threshold=THRESHOLD,
                                   frequency_database_sha256="x", mutation_models={})
    p = incremental.plan(v1, v2)
    assert not p.full and p.retyped_remains == [r0.id]
    assert incremental.RunState.from_json(v1.to_json()) == v1
    v1.lists = {r0.id: (False, [("M1", -math.inf, 2), ("M2", -1.5, 0)])}
    doc = json.loads(json.dumps(v1.to_json(), allow_nan=False))  # what PostgreSQL's JSON accepts
    assert incremental.RunState.from_json(doc) == v1


def test_glrs_of_a_giant_component__restricted_solves_equal_the_plain_ones() -> None:
    """The GLR solves of a large component run over the call's group of options that can matter
    (``dvi.components._call_glrs``); they equal the GLRs without the identification threshold's
    restriction, or are lower bounds at that threshold and below the plain GLR."""
    from opendvi.dvi import DVIProblem, PairwiseResult, solve_joint
    from opendvi.dvi.workflow import SolveOptions

    case, _ = simulate_case(families=70, remains=60, seed=4)
    ref = screen(case, top=6, threshold=None)
    kept: dict[str, list[str]] = {r.id: [] for r in case.remains}
    for rid, mp, _v, _x in ref.pairs():
        kept[rid].append(mp)
    problem = DVIProblem(replace(case, pairings={r: tuple(v) for r, v in kept.items()}))
    pw = PairwiseResult.from_pairs(problem, {(rid, mp): (v, x) for rid, mp, v, x in ref.pairs()})
    enough = math.log(SolveOptions().threshold)
    plain = solve_joint(problem, pw, top=1, glr_floor=0.0, absolute=False)
    fast = solve_joint(problem, pw, top=1, glr_floor=0.0, glr_enough=enough, absolute=False)
    assert max(len(c.remains) for c in plain.components) >= 40  # one large component, solved by the model
    assert plain.rows[0].assignment == fast.rows[0].assignment
    g_plain, g_fast = plain.glr(), fast.glr()
    bound = {r for c in fast.components for r in c.remains if r in c.glr_bound}
    assert g_fast
    for rid, g in g_fast.items():
        if rid in bound:
            assert enough - 1e-9 <= g <= g_plain[rid] + 1e-9, (rid, g, g_plain[rid])
        elif math.isnan(g):  # not a call, or not computed: the same in both
            assert math.isnan(g_plain[rid]), rid
        else:
            assert g == pytest.approx(g_plain[rid], abs=1e-8), rid
    assert any(not math.isnan(g) for g in g_fast.values())
    # an independent reference: the best with the pairing removed from the case, solved in full
    calls = [(rid, mp) for rid, mp in plain.rows[0].assignment.items() if not math.isnan(g_plain.get(rid, math.nan))]
    assert calls
    for rid, mp in calls[:6]:
        without = DVIProblem(replace(case, pairings={**{r: tuple(v) for r, v in kept.items()},
                                                     rid: tuple(x for x in kept[rid] if x != mp)}))
        pw2 = PairwiseResult(remains=pw.remains, missing=pw.missing)
        for r in pw.log_lr:
            pw2.log_lr[r] = {m: v for m, v in pw.log_lr[r].items() if (r, m) != (rid, mp)}
            pw2.exclusions[r] = {m: v for m, v in pw.exclusions[r].items() if (r, m) != (rid, mp)}
        alt = solve_joint(without, pw2, top=1, glr_floor=math.inf, absolute=False)
        want = plain.rows[0].log_lr - alt.rows[0].log_lr
        assert g_plain[rid] == pytest.approx(want, abs=1e-8), rid
        assert enough - 1e-9 <= g_fast[rid] <= want + 1e-9 if rid in bound else g_fast[rid] == pytest.approx(want)


def test_glrs_left_out_by_the_limits__a_note_says_how_many(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose GLR solves hit their limit says so in its notes (the calls stay undecided); without
    the limit, no such note."""
    import importlib

    case, _ = simulate_case(families=70, remains=60, seed=4)
    full = match_case(case, top_k=6)
    assert not any("was not computed" in n for n in full.notes)
    monkeypatch.setattr(importlib.import_module("opendvi.dvi.joint"), "MAX_GLR_SOLVES", 0)
    limited = match_case(case, top_k=6)
    note = next(n for n in limited.notes if "was not computed" in n)
    assert "call(s) was not computed (limit of" in note and "left undecided" in note
    def n_glr(res: MatchingResult) -> int:
        return sum(c.log10_glr is not None for c in res.candidates)

    assert n_glr(limited) < n_glr(full)
