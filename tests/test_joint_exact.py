"""The exact joint solver against brute-force enumeration (issue 10).

The brute force shares no code with the solver: every assignment of the
case's candidate pairings is listed with itertools and its log-likelihood
computed by :func:`opendvi.dvi.assignment_loglik` (each family's pedigree
holding all of its placed remains); LRs, posteriors (flat prior, LR / sum),
marginals and GLRs follow by definition. The solver is forced past
enumeration (``max_assignments=1``) so that every component goes through the
optimiser (bipartite matching or HiGHS), Lawler-Murty partitioning and the
dynamic programme, and, separately, through the certified bounds.
"""

from __future__ import annotations

import functools
import itertools
import json
import math

import numpy as np
import pytest

from opendvi.dvi import DVIProblem, PairwiseResult, assignment_loglik, candidate_pairings, pairwise_lr, solve_joint
from opendvi.dvi import assignment as assignment_mod
from opendvi.dvi.assignment import Constraints, Model, Option, build_model, k_best, solve_best
from opendvi.dvi.posterior import certified_marginals, exact_sums
from opendvi.io.case_json import read_case

from .conftest import REFERENCE
from .dvi_sim import demo_markers, simulate_case

DVI = REFERENCE / "dvi"

#: families with one, two (father and son) and three (three generations) missing persons
CASES = {
    "one-two-three": (["father_and_son", "three_generations", "sibling", "parents", "half_sibling"], 3, 3, 7),
    "two-brothers-weak": (["father_and_son", "father_and_son", "uncle", "half_sibling"], 3, 11, 5),
    "three-generations": (["three_generations", "three_generations", "child"], 3, 11, 5),
}


@functools.cache
def _case(name: str) -> tuple[DVIProblem, PairwiseResult, dict[str, str]]:
    shapes, n_unrel, seed, n_markers = CASES[name]
    case, truth = simulate_case(shapes, n_unrelated=n_unrel, seed=seed, markers=demo_markers(n_markers), found=0.85)
    problem = DVIProblem(case)
    return problem, pairwise_lr(problem), truth


@functools.cache
def _brute(name: str) -> list[tuple[float, dict[str, str]]]:
    """Every assignment of the case's candidate pairings with its ln L, best first."""
    problem, pw, _ = _case(name)
    cands = candidate_pairings(problem, pw)
    rem = list(problem.remains)
    out = []
    for targets in itertools.product(*[["*", *cands[r]] for r in rem]):
        used = [t for t in targets if t != "*"]
        if len(used) != len(set(used)):
            continue
        a = dict(zip(rem, targets, strict=True))
        out.append((assignment_loglik(problem, a), a))
    out.sort(key=lambda x: -x[0])
    return out


def _lse(vals: list[float]) -> float:
    mx = max(vals)
    return mx + math.log(math.fsum(math.exp(v - mx) for v in vals))


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact__best_top_k_lr_posterior_equal_brute_force(name: str) -> None:
    problem, pw, _ = _case(name)
    brute = _brute(name)
    assert 50 < len(brute) < 200_000
    sizes = {len(problem.families[f].missing) for f in problem.families}
    assert {1, 2} <= sizes or 3 in sizes
    res = solve_joint(problem, pw, top=15, max_assignments=1)
    assert all(c.method == "dynamic programming" for c in res.components)
    assert res.n_assignments == len(brute)
    null = problem.null_loglik()
    log_z = _lse([ll for ll, _ in brute])
    # the same best assignment (or one tied with it), the same top list
    best_ll = brute[0][0]
    ties = [a for ll, a in brute if abs(ll - best_ll) <= 1e-9 * abs(best_ll)]
    assert res.best.assignment in ties
    for k, row in enumerate(res.rows):
        want = brute[k][0]
        assert row.loglik == pytest.approx(want, abs=1e-9 * abs(want))
        mine = assignment_loglik(problem, row.assignment)
        assert row.log_lr == pytest.approx(mine - null, abs=1e-8)
        assert row.posterior == pytest.approx(math.exp(mine - log_z), abs=1e-9)
        assert row.exact
    # marginals of every pairing
    marg: dict[tuple[str, str], float] = {}
    for ll, a in brute:
        for r, t in a.items():
            marg[(r, t)] = marg.get((r, t), 0.0) + math.exp(ll - log_z)
    for comp in res.components:
        for key, (lo, hi) in comp.marginals.items():
            assert lo == hi
            assert lo == pytest.approx(marg.get(key, 0.0), abs=1e-9), key
    # GLR by remains: best with its call over best with anything else
    glr = res.glr()
    for r, t in res.best.assignment.items():
        if r not in glr:
            continue
        alt = [ll for ll, a in brute if a[r] != t]
        want = math.inf if not alt else best_ll - max(alt)
        if t == "*":
            continue  # GLRs of remains left unidentified are not computed beyond enumeration
        assert glr[r] == pytest.approx(want, abs=1e-8)


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact__enumeration_and_optimiser_agree(name: str) -> None:
    problem, pw, _ = _case(name)
    a = solve_joint(problem, pw, top=10)
    b = solve_joint(problem, pw, top=10, max_assignments=1)
    assert [r.loglik for r in a.rows] == pytest.approx([r.loglik for r in b.rows], abs=1e-9)
    assert [r.log_posterior for r in a.rows] == pytest.approx([r.log_posterior for r in b.rows], abs=1e-9)
    for ca, cb in zip(a.components, b.components, strict=True):
        for key, (lo, _) in ca.marginals.items():
            assert cb.marginals[key][0] == pytest.approx(lo, abs=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_certified_bounds__contain_the_exact_marginals(name: str) -> None:
    problem, pw, _ = _case(name)
    res = solve_joint(problem, pw, top=5)
    cands = candidate_pairings(problem, pw)
    checked = 0
    for comp in res.components:
        model = build_model(problem, comp.remains, comp.families, cands, pw)
        exact = exact_sums(model)
        assert exact is not None
        bounds = certified_marginals(model)
        assert not bounds.exact and bounds.method == "certified bounds"
        for key, (lo, hi) in bounds.pair.items():
            p = exact.pair.get(key, (0.0, 0.0))[0]
            assert lo - 1e-12 <= p <= hi + 1e-12, (key, lo, p, hi)
            checked += 1
        assert bounds.log_z[1] >= exact.log_z[0] - 1e-12
    assert checked > 10


def _model_brute(model: Model) -> list[float]:
    """Scores of every feasible set of options (at most one per unit, remains disjoint)."""
    per_unit = [[None, *ks] for ks in model.by_unit]
    out = []
    for combo in itertools.product(*per_unit):
        ks = [k for k in combo if k is not None]
        rs = [r for k in ks for r, _ in model.options[k].pairs]
        if len(rs) == len(set(rs)):
            out.append(model.score(ks))
    return sorted(out, reverse=True)


def _random_model(seed: int, n_rem: int, unit_sizes: list[int], density: float) -> Model:
    """A synthetic component: units with 1 to 3 missing persons, random ln LRs in [-8, 12]."""
    rng = np.random.default_rng(seed)
    missing = tuple(f"M{u}.{j}" for u, k in enumerate(unit_sizes) for j in range(k))
    unit_of = tuple(u for u, k in enumerate(unit_sizes) for _ in range(k))
    options = []
    for u in range(len(unit_sizes)):
        ms = [i for i, x in enumerate(unit_of) if x == u]
        cand = {m: [r for r in range(n_rem) if rng.random() < density] for m in ms}
        for combo in itertools.product(*[[None, *cand[m]] for m in ms]):
            pairs = tuple(sorted((r, m) for m, r in zip(ms, combo, strict=True) if r is not None))
            rs = [r for r, _ in pairs]
            if not pairs or len(rs) != len(set(rs)):
                continue
            w = float(rng.uniform(-8, 12)) * len(pairs) ** 0.5
            options.append(Option(u, pairs, w, w))
    return Model(tuple(f"V{i}" for i in range(n_rem)), missing, tuple(f"F{u}" for u in range(len(unit_sizes))),
                 unit_of, options, 0.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_k_best__murty_equals_enumeration_of_the_model(seed: int) -> None:
    model = _random_model(seed, 6, [1, 2, 1, 3, 1], 0.5)
    want = _model_brute(model)
    got = k_best(model, 25, max_solves=10_000)
    assert got.complete
    assert [s.score for s in got.solutions] == pytest.approx(want[:25], abs=1e-9)
    assert len({s.targets for s in got.solutions}) == len(got.solutions)
    ex = exact_sums(model)
    assert ex is not None
    assert ex.log_z[0] == pytest.approx(_lse(want), abs=1e-9)
    assert ex.log_count == pytest.approx(math.log(len(want)), abs=1e-9)


def test_k_best__one_missing_dense_and_sparse_matching_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _random_model(7, 7, [1] * 6, 0.6)
    assert model.one_missing
    want = _model_brute(model)
    dense = k_best(model, 12, max_solves=10_000)
    monkeypatch.setattr(assignment_mod, "DENSE_CELLS", 0)
    sparse = k_best(model, 12, max_solves=10_000)
    assert [s.score for s in dense.solutions] == pytest.approx(want[:12], abs=1e-9)
    assert [s.score for s in sparse.solutions] == pytest.approx(want[:12], abs=1e-9)


def test_constraints__forced_forbidden_used() -> None:
    model = _random_model(4, 5, [2, 1, 1], 0.7)
    best = solve_best(model)
    assert best is not None
    r, m = next((r, m) for r, m in enumerate(best.targets) if m >= 0)
    alt = solve_best(model, Constraints(forbidden=frozenset({(r, m)})))
    assert alt is not None and alt.targets[r] != m and alt.score <= best.score
    forced = solve_best(model, Constraints(forced=((r, -1),)))
    assert forced is not None and forced.targets[r] == -1
    free = [mm for mm in range(len(model.missing)) if mm not in best.targets]
    if free:
        used = solve_best(model, Constraints(used=frozenset({free[0]})))
        assert used is None or free[0] in used.targets


def test_large_component__no_recursion_no_overflow_bounds_and_best() -> None:
    """A dense component of 80 remains and 60 missing persons (about 10^100
    assignments): no enumeration, no dynamic programme; the best comes from
    the matching and the posteriors are certified intervals."""
    rng = np.random.default_rng(5)
    n_rem, n_mis = 80, 60
    options = []
    for m in range(n_mis):
        for r in rng.choice(n_rem, size=25, replace=False):
            w = float(rng.normal(-3, 3))
            options.append(Option(m, ((int(r), m),), w, w))
    model = Model(tuple(f"V{i}" for i in range(n_rem)), tuple(f"M{j}" for j in range(n_mis)),
                  tuple(f"F{j}" for j in range(n_mis)), tuple(range(n_mis)), options, 0.0)
    assert exact_sums(model) is None
    top = k_best(model, 3, max_solves=300)
    assert len(top.solutions) == 3
    assert top.solutions[0].score >= top.solutions[1].score >= top.solutions[2].score
    b = certified_marginals(model, [s.score for s in top.solutions])
    assert all(0.0 <= lo <= hi <= 1.0 for lo, hi in b.pair.values())
    assert math.isfinite(b.log_z[1]) and b.log_z[0] <= b.log_z[1]


# -- the dvir data sets through the optimiser ------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["example1", "example2", "planecrash", "KETPchap481", "KETPchap484", "fire", "KETPexer497", "KETPexer498",
     "symmetricSibs"],
)
def test_dvir_sets__optimiser_gives_dvirs_rows(name: str) -> None:
    if not (DVI / f"{name}.json").exists():
        pytest.skip(f"{name} not in the corpus")
    problem = DVIProblem(read_case(DVI / f"{name}.json"))
    exp = json.loads((DVI / f"{name}.expected.json").read_text())
    rows = exp["joint"]
    res = solve_joint(problem, pairwise_lr(problem), top=len(rows), max_assignments=1)
    assert res.n_assignments == exp["joint_n_assignments"]
    for ours, theirs in zip(res.rows, rows, strict=True):
        tol = 1e-9 * max(1.0, abs(theirs["loglik"]))
        assert ours.loglik == pytest.approx(theirs["loglik"], abs=tol)
    by_assignment = {tuple(sorted(r.assignment.items())): r for r in res.rows}
    for row in rows:
        ours = by_assignment.get(tuple(sorted(row["assignment"].items())))
        if ours is None:  # a tie listed in another order
            continue
        assert ours.log_lr == pytest.approx(math.log(row["LR"]), abs=1e-8)
        assert ours.posterior == pytest.approx(row["posterior"], abs=1e-9)


@pytest.mark.parametrize("name", sorted(CASES))
def test_glr_lower_bounds__below_the_exact_glr(name: str) -> None:
    from opendvi.dvi.posterior import glr_lower_bounds

    problem, pw, _ = _case(name)
    cands = candidate_pairings(problem, pw)
    res = solve_joint(problem, pw, top=1)
    checked = 0
    for comp in res.components:
        model = build_model(problem, comp.remains, comp.families, cands, pw)
        best = solve_best(model)
        assert best is not None
        for (r, m), lo in glr_lower_bounds(model, best.chosen).items():
            alt = solve_best(model, Constraints(forbidden=frozenset({(r, m)})))
            exact = math.inf if alt is None else best.score - alt.score
            assert lo <= exact + 1e-9
            checked += 1
    assert checked >= 3


@pytest.mark.parametrize("seed", range(8))
def test_certified_bounds__random_components_contain_exact(seed: int) -> None:
    """Random components, one- and two-missing families, strong and weak LRs:
    every certified interval holds the exact marginal of the programme."""
    model = _random_model(100 + seed, 9, [1, 1, 1, 2, 1, 1, 1], 0.5)
    exact = exact_sums(model)
    assert exact is not None
    bounds = certified_marginals(model)
    for key, (lo, hi) in bounds.pair.items():
        p = exact.pair.get(key, (0.0, 0.0))[0]
        assert lo - 1e-12 <= p <= hi + 1e-12, (key, lo, p, hi)
    one = _random_model(200 + seed, 10, [1] * 8, 0.45)
    exact = exact_sums(one)
    assert exact is not None
    for key, (lo, hi) in certified_marginals(one).pair.items():
        p = exact.pair.get(key, (0.0, 0.0))[0]
        assert lo - 1e-12 <= p <= hi + 1e-12, (key, lo, p, hi)


@pytest.mark.parametrize("name", sorted(CASES))
def test_glr_bounds_in_the_solver__never_above_the_exact_glr(name: str) -> None:
    """With ``glr_enough`` at 0 every GLR beyond enumeration is the certified
    lower bound (local and LP dual): never above the brute-force GLR."""
    problem, pw, _ = _case(name)
    brute = _brute(name)
    best_ll = brute[0][0]
    res = solve_joint(problem, pw, top=1, max_assignments=1, glr_enough=0.0)
    checked = 0
    for comp in res.components:
        for rid, g in comp.glr_remains.items():
            t = res.best.assignment[rid]
            alt = [ll for ll, a in brute if a[rid] != t]
            exact = math.inf if not alt else best_ll - max(alt)
            if rid in comp.glr_bound:
                assert g <= exact + 1e-8
                checked += 1
            else:  # solved: the bound was below 0
                assert g == pytest.approx(exact, abs=1e-8)
    assert checked >= 3


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("max_assignments", [1, 10**5])
def test_relative__the_same_lrs_posteriors_marginals_and_glrs(name: str, max_assignments: int) -> None:
    """``absolute=False`` (what the service uses: family null likelihoods only where a family takes
    two or more remains) gives the absolute run's LRs, posteriors, marginals and GLRs; its
    absolute log-likelihoods are NaN."""
    problem, pw, _ = _case(name)
    a = solve_joint(problem, pw, top=10, max_assignments=max_assignments, glr_enough=math.log(1e4))
    b = solve_joint(problem, pw, top=10, max_assignments=max_assignments, glr_enough=math.log(1e4),
                    absolute=False)
    assert [r.assignment for r in b.rows] == [r.assignment for r in a.rows]
    assert [r.log_lr for r in b.rows] == pytest.approx([r.log_lr for r in a.rows], abs=1e-9)
    assert [r.log_posterior for r in b.rows] == pytest.approx([r.log_posterior for r in a.rows], abs=1e-9)
    assert all(math.isnan(r.loglik) for r in b.rows) and math.isnan(b.null_loglik)
    for ca, cb in zip(a.components, b.components, strict=True):
        assert cb.marginals.keys() == ca.marginals.keys()
        for key, (lo, hi) in ca.marginals.items():
            assert cb.marginals[key] == pytest.approx((lo, hi), abs=1e-12)
    ga, gb = a.glr(), b.glr()
    assert gb.keys() == ga.keys()
    for r, g in ga.items():
        assert (math.isnan(g) and math.isnan(gb[r])) or gb[r] == pytest.approx(g, abs=1e-9), r
    with pytest.raises(Exception, match="absolute"):
        solve_joint(problem, pw, null_loglik=0.0, absolute=False)
