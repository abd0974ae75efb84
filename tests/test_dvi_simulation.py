"""Simulated cases: the true assignment comes out best where the data can tell.

Families of the common shapes with one missing person (parents, two full
siblings, two children and their mother, paternal grandparents and the
mother, two paternal uncles and the mother, a paternal half sibling and the
mother), one with two missing persons (a father and his son) and one with
three (grandfather, son, grandson); the missing persons' simulated profiles
are remains, beside unrelated remains. 23 STRs with European frequencies: the
data can tell in every shape here (the weakest, one half sibling and the
mother, still gives LRs of 1e3 to 1e8).
"""

from __future__ import annotations

import math

import pytest

from opendvi.dvi import DVIProblem, assignment_loglik, find_undisputed, pairwise_lr, solve_joint

from .dvi_sim import SHAPES, demo_markers, simulate_case


def _called(assignment: dict[str, str]) -> dict[str, str]:
    return {r: m for r, m in assignment.items() if m != "*"}


@pytest.mark.parametrize("seed", [11, 12])
def test_simulated__true_assignment_is_best(seed: int) -> None:
    case, truth = simulate_case(SHAPES, n_unrelated=4, seed=seed)
    assert sum(len(f.missing) for f in case.families) == 11
    problem = DVIProblem(case)
    pw = pairwise_lr(problem)
    res = solve_joint(problem, pw, top=3)
    assert _called(res.best.assignment) == truth
    assert res.best.posterior > 0.99
    # the families with two and three missing persons are evaluated jointly
    assert max(len(c.missing) for c in res.components) >= 3
    assert res.best.loglik == pytest.approx(assignment_loglik(problem, res.best.assignment), abs=1e-9)
    # every true pairing has LR > 1 and no exclusion (no mutation simulated)
    for rid, mp in truth.items():
        assert pw.log_lr[rid][mp] > 0 and pw.exclusions[rid][mp] == 0


def test_simulated__some_missing_not_found_and_mutation_models() -> None:
    """Mutation models on (no pairwise LR is 0): prune with an LR threshold."""
    case, truth = simulate_case(SHAPES, n_unrelated=3, seed=5, found=0.6, markers=demo_markers(mutation=True))
    problem = DVIProblem(case)
    pw = pairwise_lr(problem)
    assert all(v > -math.inf for _, _, v in pw.pairs())
    res = solve_joint(problem, pw, lr_threshold=1.0, top=2)
    assert _called(res.best.assignment) == truth


def test_simulated__undisputed_are_true_and_placing_them_keeps_the_best() -> None:
    case, truth = simulate_case(SHAPES, n_unrelated=4, seed=11)
    problem = DVIProblem(case)
    pw = pairwise_lr(problem)
    und = find_undisputed(problem, pairwise=pw)
    assert und.identified
    assert all(truth.get(u.remains) == u.missing for u in und.identified)
    reduced = solve_joint(und.remaining, und.pairwise, fixed=und.assignment, null_loglik=problem.null_loglik(), top=1)
    full = solve_joint(problem, pw, top=1)
    assert reduced.best.assignment == full.best.assignment
    assert reduced.best.loglik == pytest.approx(full.best.loglik, abs=1e-8)
    assert reduced.best.log_lr == pytest.approx(full.best.log_lr, abs=1e-8)
