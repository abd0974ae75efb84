"""Components: a large case splits into small ones, each solved exactly.

The brute force here shares no code with the component solver: for every
assignment of a component's remains (all of them, enumerated with
itertools), it builds ONE pedigree holding the component's families and the
unassigned remains as unrelated founders, and asks the core engine for the
likelihood of the whole thing.
"""

from __future__ import annotations

import itertools
import math
import time
from functools import cache

import pytest

from opendvi.core.likelihood import pedigree_loglik
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.dvi import DVIProblem, PairwiseResult, candidate_pairings, pairwise_lr, solve_joint
from opendvi.dvi.components import Component
from opendvi.dvi.joint import k_best

from .dvi_sim import demo_markers, simulate_case

SHAPES_30 = (
    ["parents", "sibling", "child", "grandparents", "uncle"] * 4 + ["father_and_son"] * 8 + ["three_generations"] * 2
)


@cache
def _big() -> tuple[DVIProblem, PairwiseResult, dict[str, str]]:
    case, truth = simulate_case(SHAPES_30, n_unrelated=6, seed=7, markers=demo_markers(15), found=0.75)
    assert len(case.families) == 30 and len(case.remains) == 40
    problem = DVIProblem(case)
    return problem, pairwise_lr(problem), truth


def _brute_force(problem: DVIProblem, comp: Component) -> dict[tuple[str, ...], float]:
    """ln P(component's data | assignment) for every assignment, by full enumeration."""
    fams = [problem.families[f] for f in comp.families]
    options = [["*", *comp.candidates[r]] for r in comp.remains]
    out: dict[tuple[str, ...], float] = {}
    for targets in itertools.product(*options):
        used = [t for t in targets if t != "*"]
        if len(used) != len(set(used)):
            continue
        people = [ind for f in fams for ind in f.pedigree.individuals]
        genotypes = {pid: dict(g) for f in fams for pid, g in f.genotypes.items()}
        for rid, t in zip(comp.remains, targets, strict=True):
            r = problem.remains[rid]
            if t == "*":
                people.append(Individual(rid, sex=r.sex or "M"))
                genotypes[rid] = dict(r.genotypes)
            else:
                genotypes[t] = dict(r.genotypes)
        ll = pedigree_loglik(Pedigree(people), problem.markers, genotypes).total
        out[targets] = ll
    return out


def test_components__40_remains_30_families_fast_and_equal_to_brute_force() -> None:
    problem, pw, truth = _big()
    t0 = time.perf_counter()
    res = solve_joint(problem, pw, top=10)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0
    sizes = sorted(c.size for c in res.components)
    assert len(res.components) >= 15 and sizes[-1] < 100
    assert res.n_assignments == math.prod(sizes) and res.n_assignments > 10**9
    assert {r: m for r, m in res.best.assignment.items() if m != "*"} == truth
    checked = 0
    for comp in res.components:
        if comp.size > 12 or checked >= 6:
            continue
        brute = _brute_force(problem, comp)
        assert len(brute) == comp.size
        ours = {tg: ll for _, ll, tg in comp.assignments}
        assert set(ours) == set(brute)
        for tg, ll in brute.items():
            assert ours[tg] == pytest.approx(ll, abs=1e-9 * max(1.0, abs(ll)))
        # posterior inside the component: flat prior, LR / sum LR
        lse = max(brute.values()) + math.log(sum(math.exp(v - max(brute.values())) for v in brute.values()))
        best = max(brute, key=brute.__getitem__)
        assert comp.assignments[0][2] == best
        assert comp.assignments[0][1] - comp.log_norm == pytest.approx(brute[best] - lse, abs=1e-9)
        checked += 1
    assert checked >= 4


def test_components__k_best_merge_equals_brute_force_product() -> None:
    problem, pw, _ = _big()
    res = solve_joint(problem, pw, top=1)
    comps = [c for c in res.components if c.size > 1][:5]
    every = sorted(
        (math.fsum(c.assignments[i][0] for c, i in zip(comps, idx, strict=True)), idx)
        for idx in itertools.product(*(range(c.size) for c in comps))
    )[::-1]
    got = k_best(comps, 25)
    want_scores = [s for s, _ in every[:25]]
    got_scores = [math.fsum(c.assignments[i][0] for c, i in zip(comps, idx, strict=True)) for idx in got]
    assert len(set(got)) == 25
    assert got_scores == pytest.approx(want_scores, abs=1e-9)


def test_components__posterior_of_rows_is_product_over_components() -> None:
    problem, pw, _ = _big()
    res = solve_joint(problem, pw, top=3)
    for row in res.rows:
        lp = 0.0
        for comp in res.components:
            tg = tuple(row.assignment[r] for r in comp.remains)
            (s,) = [s for s, _, t in comp.assignments if t == tg]
            lp += s - comp.log_norm
        assert row.log_posterior == pytest.approx(lp, abs=1e-9)
    # remains outside every component have no candidate pairing
    inside = {r for c in res.components for r in c.remains}
    cands = candidate_pairings(problem, pw)
    assert all(not cands[r] for r in problem.remains if r not in inside)
