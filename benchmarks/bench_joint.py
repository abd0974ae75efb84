"""Joint identification at any scale (issue 10): the whole workflow on
simulated exchanges, and the exact solver on a sweep of component sizes.

Rows:

* ``joint.exchange``: ``opendvi solve CASE.json --format json`` (default
  options: exclusion reduction at 2, undisputed, joint, summary) on a case of
  ``opendvi simulate`` (the national simulator's shapes and fragments, as many
  families as remains, seeds fixed), run as a separate process: exit status,
  wall time, peak memory of the process, and against the simulation's truth
  the identifications made (undisputed + joint at posterior >= 0.999 with LR
  and GLR >= 10^4), how many are wrong, how many true identifications are
  missed (``missed``: true pairs of remains that are a missing person's first
  sample; a second fragment of an identified person cannot be placed too,
  one missing person taking one remains).
* ``joint.sweep``: one component of n remains and m one-missing families
  (random ln LRs, each pairing present with probability ``density``), from
  10^3 to beyond 10^20 assignments: the time of the best assignment, of the
  20 best (Lawler-Murty), of the exact sums (dynamic programme) or the
  certified bounds, and of brute-force enumeration where it is possible
  (up to 3 x 10^6 assignments).

* ``joint.glr``: the joint step of a matching run (``workflows.matching.match_case``, ``top_k`` 10, one
  component) on a case of ``opendvi.screening.simulate_case``, twice in one process: the calls' GLRs
  by :class:`opendvi.dvi.relaxation.LocalRelaxation` (a small program over the rows near each change)
  and by the reference, :class:`~opendvi.dvi.relaxation.PackingRelaxation` (the whole component's
  relaxation re-solved warm for each call): the joint step's seconds of each, their ratio, the GLRs
  computed and the largest difference between the two's GLRs and posteriors.

Run alone: ``python benchmarks/bench_joint.py [--quick]``; the exchange
sizes can be chosen with ``OPENDVI_BENCH_JOINT_SIZES=200,1000``.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from opendvi.dvi.assignment import Model, Option, k_best, solve_best
from opendvi.dvi.posterior import certified_marginals, exact_sums
from opendvi.io.case_json import write_case
from opendvi.screening import simulate_case


def _exchange_row(n: int, seed: int) -> dict[str, Any]:
    case, truth = simulate_case(families=n, remains=n, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.json"
        write_case(case, path)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "opendvi.cli.main", "solve", str(path), "--format", "json"],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    row: dict[str, Any] = {
        "benchmark": "joint.exchange",
        "remains": len(case.remains),
        "families": len(case.families),
        "missing": sum(len(f.missing) for f in case.families),
        "exit": out.returncode,
        "seconds": round(wall, 1),
        "peak_mb": round(max(peak, before) / 1024, 0),
    }
    if out.returncode != 0:
        row["error"] = out.stderr.strip().splitlines()[-1:]
        return row
    data = json.loads(out.stdout)
    summ = data["summary"]
    ident = {c["remains"]: c["missing"] for c in summ["remains"] if c["conclusion"] == "identified"}
    und = {u["remains"] for u in data["undisputed"]}
    firsts = {r: m for r, m in truth.missing.items() if m is not None and truth.kind[r] == "missing"}
    wrong = [r for r, m in ident.items() if truth.missing.get(r) != m]
    comps = summ["components"]
    big = max(comps, key=lambda c: len(c["remains"]), default=None)
    row.update(
        {
            "true_pairs": len(firsts),
            "identified": len(ident),
            "by_undisputed": len(und),
            "by_joint": len(ident) - len(und & set(ident)),
            "wrong": len(wrong),
            "missed": sum(1 for r, m in firsts.items() if ident.get(r) != m),
            "probable": summ["counts"]["probable"],
            "pairwise": summ["options"]["pairwise"],
            "largest_component": len(big["remains"]) if big else 0,
            "largest_method": big["method"] if big else "",
            "largest_log10_assignments": round(big["log10_assignments"], 1) if big else 0,
            "step_seconds": summ["seconds"],
        }
    )
    return row


def _synthetic(n_rem: int, n_mis: int, density: float, seed: int) -> Model:
    rng = np.random.default_rng(seed)
    options = []
    for m in range(n_mis):
        for r in range(n_rem):
            if rng.random() < density:
                w = float(rng.normal(-2.0, 4.0))
                options.append(Option(m, ((r, m),), w, w))
    return Model(
        tuple(f"V{i}" for i in range(n_rem)),
        tuple(f"M{j}" for j in range(n_mis)),
        tuple(f"F{j}" for j in range(n_mis)),
        tuple(range(n_mis)),
        options,
        0.0,
    )


def _enumerate(model: Model) -> float:
    """ln Z by depth-first enumeration of every assignment (iterative)."""
    cands = [[(model.options[k].pairs[0][1], model.options[k].score) for k in ks] for ks in model.by_remains]
    n = len(cands)
    scores: list[float] = []
    stack: list[tuple[int, int, float]] = [(0, 0, 0.0)]
    while stack:
        i, used, s = stack.pop()
        if i == n:
            scores.append(s)
            continue
        stack.append((i + 1, used, s))
        for m, w in cands[i]:
            if not used >> m & 1:
                stack.append((i + 1, used | (1 << m), s + w))
    mx = max(scores)
    return mx + math.log(math.fsum(math.exp(x - mx) for x in scores))


def _sweep_row(n_rem: int, n_mis: int, density: float, seed: int) -> dict[str, Any]:
    model = _synthetic(n_rem, n_mis, density, seed)
    t0 = time.perf_counter()
    best = solve_best(model)
    t1 = time.perf_counter()
    top = k_best(model, 20, max_solves=2000)
    t2 = time.perf_counter()
    ex = exact_sums(model)
    t3 = time.perf_counter()
    row: dict[str, Any] = {
        "benchmark": "joint.sweep",
        "remains": n_rem,
        "missing": n_mis,
        "pairings": len(model.options),
        "best_seconds": round(t1 - t0, 4),
        "top20_seconds": round(t2 - t1, 3),
        "top20_complete": top.complete,
    }
    assert best is not None
    if ex is not None:
        row["log10_assignments"] = round((ex.log_count or 0.0) / math.log(10), 2)
        row["sums"] = "exact (dynamic programming)"
        row["sums_seconds"] = round(t3 - t2, 3)
        if ex.log_count is not None and ex.log_count <= math.log(3e6):
            t4 = time.perf_counter()
            lz = _enumerate(model)
            row["enumeration_seconds"] = round(time.perf_counter() - t4, 3)
            row["sums_agree"] = abs(lz - ex.log_z[0]) <= 1e-9 * max(1.0, abs(lz))
        else:
            row["enumeration_seconds"] = "impossible"
    else:
        t4 = time.perf_counter()
        b = certified_marginals(model, [s.score for s in top.solutions])
        row["log10_assignments"] = f"<= {math.fsum(math.log1p(len(ks)) for ks in model.by_unit) / math.log(10):.1f}"
        row["sums"] = "certified bounds"
        row["sums_seconds"] = round(time.perf_counter() - t4, 3)
        row["max_error"] = round(b.max_error, 4)
        row["enumeration_seconds"] = "impossible"
    return row


SWEEP = [
    (8, 6, 0.6),
    (10, 8, 0.5),
    (10, 9, 0.6),
    (12, 10, 0.5),
    (16, 14, 0.5),
    (24, 20, 0.4),
    (40, 30, 0.3),
    (60, 40, 0.25),
    (100, 60, 0.1),
]


def _glr_row(n_rem: int, n_fam: int, seed: int) -> dict[str, Any]:
    import opendvi.dvi.components  # noqa: F401  (the module, not the function of that name)
    from opendvi.dvi.relaxation import LocalRelaxation, PackingRelaxation
    from opendvi.screening import simulate_case
    from opendvi.workflows.matching import match_case

    comps = sys.modules["opendvi.dvi.components"]
    case, _truth = simulate_case(families=n_fam, remains=n_rem, seed=seed)
    seconds: dict[str, float] = {}
    out: dict[str, dict[tuple[str, str], tuple[float | None, float]]] = {}
    components = 0
    try:
        for name, cls in (("local", LocalRelaxation), ("whole", PackingRelaxation)):
            comps.LocalRelaxation = cls  # type: ignore[attr-defined]
            res = match_case(case, top_k=10, lr_threshold=1e4)
            seconds[name] = res.timings["joint"]
            components = int(res.counts["components"])
            out[name] = {(c.remains, c.missing): (c.log10_glr, c.posterior) for c in res.candidates}
    finally:
        comps.LocalRelaxation = LocalRelaxation  # type: ignore[attr-defined]
    a, b = out["local"], out["whole"]
    same_set = all((a[k][0] is None) == (b[k][0] is None) for k in a) and a.keys() == b.keys()
    d_glr = max((abs(a[k][0] - b[k][0]) for k in a if a[k][0] is not None and b[k][0] is not None), default=0.0)
    d_post = max(abs(a[k][1] - b[k][1]) for k in a)
    return {"benchmark": "joint.glr", "remains": n_rem, "families": n_fam, "largest_component": components,
            "glrs": sum(v[0] is not None for v in a.values()), "same_glrs_computed": "yes" if same_set else "NO",
            "local_seconds": round(seconds["local"], 2), "whole_seconds": round(seconds["whole"], 2),
            "ratio": round(seconds["whole"] / seconds["local"], 2), "max_glr_difference": d_glr,
            "max_posterior_difference": d_post}


GLR_SIZES = [(2000, 3000), (5000, 8000), (10000, 15000)]


def run(quick: bool) -> list[dict[str, Any]]:
    """Benchmark rows (``quick``: the 200-remains exchange and a short sweep)."""
    rows: list[dict[str, Any]] = []
    for n_rem, n_mis, dens in SWEEP[:5] if quick else SWEEP:
        rows.append(_sweep_row(n_rem, n_mis, dens, seed=n_rem))
    sizes = [200] if quick else [200, 1000, 6000]
    if os.environ.get("OPENDVI_BENCH_JOINT_SIZES"):  # e.g. "200,1000"
        sizes = [int(x) for x in os.environ["OPENDVI_BENCH_JOINT_SIZES"].split(",")]
    for n in sizes:
        rows.append(_exchange_row(n, seed=n + 1))
    for n_rem, n_fam in GLR_SIZES[:1] if quick else GLR_SIZES:
        rows.append(_glr_row(n_rem, n_fam, seed=7))
    return rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv[1:]):
        print(r)
