"""DVI matching on growing simulated cases: pairwise LRs and the joint solution.

Each case has families of the common shapes (one to three missing persons),
the found missing persons' profiles as remains, and unrelated remains
(``opendvi.dvi.simulate``), on the demo case's STRs without mutation (so
that unrelated pairings are excluded and the candidate graph splits into
components, as in real cases). Rows:

* ``pairwise``: every remains against every missing person (LR and
  exclusion count); ``engine_calls`` = calls into the likelihood engine
  (genotype tables and marker-batched evaluations).
* ``joint``: components and the 20 best assignments of the whole case
  (with ``lr_threshold`` 1 when a component is too large at 0).
* ``joint_one_component``: a single family with ``k`` missing persons and
  ``k`` remains, all candidates of all (the worst case of one component).

Run alone: ``python benchmarks/bench_dvi.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from opendvi.core.case import Case, Family, Sample
from opendvi.core.pedigree import full_siblings
from opendvi.core.simulate import simulate_profiles
from opendvi.data import demo_case_path
from opendvi.dvi import ComponentTooLargeError, DVIProblem, pairwise_lr, solve_joint
from opendvi.dvi.simulate import SHAPES, simulate_case
from opendvi.io.case_json import read_case

BASE = ["parents", "sibling", "child", "grandparents", "uncle", "half_sibling", "father_and_son", "three_generations"]


def _case_rows(n_families: int, n_markers: int, seed: int) -> list[dict[str, Any]]:
    markers = tuple(m.without_mutation() for m in read_case(demo_case_path()).markers[:n_markers])
    shapes = [BASE[k % len(BASE)] for k in range(n_families)]
    case, _ = simulate_case(shapes, n_unrelated=max(2, n_families // 4), seed=seed, markers=markers, found=0.8)
    n_missing = sum(len(f.missing) for f in case.families)
    problem = DVIProblem(case)
    t0 = time.perf_counter()
    pw = pairwise_lr(problem)
    t1 = time.perf_counter()
    calls = problem.cache.engine_calls
    lr_threshold = 0.0
    try:
        res = solve_joint(problem, pw, top=20)
    except ComponentTooLargeError:  # chance links among many families: prune as a user would
        lr_threshold = 1.0
        res = solve_joint(problem, pw, top=20, lr_threshold=lr_threshold)
    t2 = time.perf_counter()
    common = {
        "families": n_families,
        "missing": n_missing,
        "remains": len(case.remains),
        "markers": n_markers,
    }
    n_pairs = sum(len(v) for v in problem.admissible.values())
    return [
        {
            "benchmark": "dvi.pairwise",
            **common,
            "pairs": n_pairs,
            "seconds": round(t1 - t0, 4),
            "engine_calls": calls,
            "ms_per_pair": round(1000 * (t1 - t0) / max(1, n_pairs), 3),
        },
        {
            "benchmark": "dvi.joint",
            **common,
            "components": len(res.components),
            "largest_component": max((c.size for c in res.components), default=1),
            "assignments": f"{res.n_assignments:.3g}",
            "lr_threshold": lr_threshold,
            "seconds": round(t2 - t1, 4),
            "engine_calls": problem.cache.engine_calls - calls,
        },
    ]


def _one_component_row(k: int, n_markers: int, seed: int) -> dict[str, Any]:
    """One family of full siblings: k missing brothers, two typed parents, k remains."""
    markers = tuple(m.without_mutation() for m in read_case(demo_case_path()).markers[:n_markers])
    ped = full_siblings(k)
    prof = simulate_profiles(ped, markers, np.random.default_rng(seed))
    sibs = [f"S{i + 1}" for i in range(k)]
    fam = Family("F1", ped, {"FA": prof["FA"], "MO": prof["MO"]}, tuple(sibs))
    remains = tuple(Sample(f"V{i + 1}", "M", prof[s]) for i, s in enumerate(sibs))
    problem = DVIProblem(Case("sibs", markers, remains, (fam,)))
    pw = pairwise_lr(problem)
    calls = problem.cache.engine_calls
    t0 = time.perf_counter()
    res = solve_joint(problem, pw, top=20)
    t1 = time.perf_counter()
    return {
        "benchmark": "dvi.joint_one_component",
        "families": 1,
        "missing": k,
        "remains": k,
        "markers": n_markers,
        "assignments": res.n_assignments,
        "seconds": round(t1 - t0, 4),
        "engine_calls": problem.cache.engine_calls - calls,
    }


def run(quick: bool) -> list[dict[str, Any]]:
    """Benchmark rows (``quick``: the smallest sizes only, a few seconds)."""
    sizes = [8, 16] if quick else [8, 16, 32, 64, 128]
    rows: list[dict[str, Any]] = []
    for n in sizes:
        rows.extend(_case_rows(n, 15, seed=100 + n))
    for k in [2, 3] if quick else [2, 3, 4, 5]:
        rows.append(_one_component_row(k, 15, seed=200 + k))
    return rows


if __name__ == "__main__":
    assert set(BASE) == set(SHAPES)
    for row in run("--quick" in sys.argv[1:]):
        print(row)
