"""Fragments: every remains against every other remains (``opendvi.screening.screen_remains``:
the direct-match LR of ``match-remains``, table and gather), pairs with LR >= 1e4 kept.

``python benchmarks/run.py fragments`` (or ``python benchmarks/bench_fragments.py [--quick]``):
simulated remains (``opendvi.screening.simulate_case``, 23 STRs, 5 % fragments, 20 % partial
profiles with dropout 0.1 to 0.3, seed 2026) at 1,000, 2,500 and 5,000 remains (quick: 500 and
1,500). Rows (metric, value, unit, note):

* ``tables_s``, ``kernel_s``: the per-marker class tables (``core.direct_match.marker_direct_table``)
  and the numba sums with the pairs kept, as ``screen_remains`` times them;
* ``screen_s``: ``screen_remains`` end to end, numba compiled before;
* ``pairs_per_s``: pairs (upper triangle) per second of ``screen_s``;
* ``kept``: pairs kept (LR >= 1e4), ``true_found``: pairs of a simulated fragment and its source
  among them;
* ``extrapolated_30000_s``: the kernel part scaled by pairs to 30,000 x 30,000 plus the tables
  (which grow with the classes, not the pairs), on this machine;
* ``engine_pair_us``: the pure-Python per-pair rule (``direct_match_log_lr``) on 2,000 random
  pairs, microseconds per pair, for comparison.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np


def _row(metric: str, value: Any, unit: str = "", note: str = "") -> dict[str, Any]:
    if isinstance(value, float):
        value = float(f"{value:.4g}")
    return {"metric": metric, "value": value, "unit": unit, "note": note}


def run(quick: bool = False) -> list[dict[str, Any]]:
    from dataclasses import replace

    from opendvi.core.direct_match import direct_match_log_lr
    from opendvi.dvi.problem import DVIProblem
    from opendvi.screening import screen_remains, simulate_case

    rows: list[dict[str, Any]] = []
    sizes = (500, 1500) if quick else (1000, 2500, 5000)
    warm, _ = simulate_case(families=5, remains=20, seed=1)
    screen_remains(list(warm.remains), warm.markers)  # numba compile
    for n in sizes:
        case, truth = simulate_case(families=max(10, n // 2), remains=n, seed=2026)
        problem = DVIProblem(replace(case, families=(), pairings=None))
        rs = list(problem.remains.values())
        t0 = time.perf_counter()
        res = screen_remains(rs, problem.markers, theta=problem.theta, threshold=1e4)
        t_all = time.perf_counter() - t0
        t_tab, t_kernel = res.timings["tables"], res.timings["kernel"]
        pairs = n * (n - 1) / 2
        frag = [r for r, k in truth.kind.items() if k == "fragment" and truth.missing.get(r)]
        same = truth.missing.get
        found = sum(1 for a, b, _ in res.pairs() if same(a) and same(a) == same(b))
        big = 30000 * 29999 / 2
        tag = f"n={n}"
        rows += [
            _row("tables_s", t_tab, "s", f"{tag}, {len(problem.markers)} markers"),
            _row("kernel_s", t_kernel, "s", f"{tag}, {pairs:.0f} pairs"),
            _row("screen_s", t_all, "s", tag),
            _row("pairs_per_s", pairs / max(t_kernel, 1e-9), "1/s", f"{tag}, kernel and keeping"),
            _row("kept", len(res), "pairs", f"{tag}, LR >= 1e4"),
            _row("true_found", found, "pairs",
                 f"{tag}, pairs of one simulated missing person ({len(frag)} of its fragments)"),
            _row("extrapolated_30000_s", t_tab + t_kernel * big / pairs, "s",
                 f"from {tag}: kernel scaled by pairs, tables as measured"),
        ]
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(rs), size=(2000, 2))
    t0 = time.perf_counter()
    for a, b in idx:
        direct_match_log_lr(rs[a], rs[b], problem.markers, theta=problem.theta)
    rows.append(_row("engine_pair_us", (time.perf_counter() - t0) / 2000 * 1e6, "us",
                     "direct_match_log_lr per pair (pure Python)"))
    assert all(math.isfinite(r["value"]) for r in rows if isinstance(r["value"], float))
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['metric']:>24} {r['value']!s:>12} {r['unit']:<6} {r['note']}")
