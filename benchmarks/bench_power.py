"""Power planning of a national registry: every family's power, the weak ones.

Full run (``python benchmarks/run.py power``): 50,000 simulated families
(``opendvi.screening.simulate_case``, seed 2026: the shapes of large
operations, 23 STRs of PowerPlex Fusion 6C, stepwise mutation), the power of
every (family, missing person) by :func:`opendvi.power.registry_power`
(batched by pedigree shape; exact per-marker facts, inclusion power by grid
convolution with a bound, rows straddling the level refined), level 0.9 at
LR 1e4; then the best next relative of the weakest 300 weak families (every
untyped relative a candidate), timed, and the time for all weak families
extrapolated from it. Quick run (``--quick``): 2,000 families, 30 weak.

Rows are (metric, value, unit, note): ``simulate_s`` (not part of the
power), ``power_s`` (every family, end to end) and its parts ``tables_s``,
``inclusion_s``, ``refine_s``; ``per_family_ms``; ``peak_rss_gb`` (the
process, simulation included); ``fraction_weak``; ``max_bound`` (largest
error bound of inclusion power at 1e4 after refinement); ``next_s`` and
``next_per_weak_family_s`` for the timed weak families, ``next_all_weak_est_s``
the extrapolation; ``load_avg`` before and after (the machine is shared).

Run alone: ``python benchmarks/bench_power.py [--quick]``.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from typing import Any


def _row(metric: str, value: Any, unit: str = "", note: str = "") -> dict[str, Any]:
    if isinstance(value, float):
        value = float(f"{value:.4g}")
    return {"metric": metric, "value": value, "unit": unit, "note": note}


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run(quick: bool = False) -> list[dict[str, Any]]:
    from opendvi.power import registry_power
    from opendvi.screening import simulate_case

    n_fam = 2_000 if quick else 50_000
    n_next = 30 if quick else 300
    level, threshold = 0.9, 1e4
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    case, _ = simulate_case(families=n_fam, remains=0, seed=2026)
    t_sim = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = registry_power(case, level=level, threshold=threshold, next_relative=False)
    t_power = time.perf_counter() - t1
    st = res.stats
    rows = [
        _row("families", len(case.families), "", f"{st.n_rows} missing persons, {len(case.markers)} markers"),
        _row("simulate_s", t_sim, "s", "opendvi.screening.simulate_case (not part of the power)"),
        _row("power_s", t_power, "s", "every family: tables, exact facts, inclusion power, refinement"),
        _row("tables_s", st.seconds_tables, "s", f"{st.n_template} by shape, {st.n_engine} by the general engine"),
        _row("inclusion_s", st.seconds_inclusion, "s", f"batched FFT convolution, grid {res.grid:g} log10"),
        _row("refine_s", st.seconds_refine, "s", f"{st.n_refined} rows straddling the level, grid twenty times finer"),
        _row("per_family_ms", 1000 * t_power / max(1, st.n_rows), "ms"),
        _row("peak_rss_gb", _rss_gb(), "GB", "whole process, simulation included"),
        _row("fraction_weak", res.fraction_weak, "", f"P(LR >= {threshold:g}) < {level:g}: {st.n_weak} rows"),
        _row("max_bound", max(r.inclusion_bound[res.key] for r in res.rows), "",
             "largest error bound of P(LR >= 1e4), after refinement"),
    ]
    # the best next relative of the weakest rows
    weak = res.weak()[:n_next]
    sub_ids = {r.family for r in weak}
    from dataclasses import replace

    sub = replace(case, families=tuple(f for f in case.families if f.id in sub_ids))
    t2 = time.perf_counter()
    res2 = registry_power(sub, level=level, threshold=threshold, next_relative=True)
    t_next = res2.stats.seconds_next
    per = t_next / max(1, res2.stats.n_next)
    found = sum(1 for r in res2.rows if r.next_candidate)
    lifted = sum(1 for r in res2.rows if r.next_inclusion is not None and r.next_inclusion >= level)
    rows += [
        _row("next_s", t_next, "s", f"best next relative of {res2.stats.n_next} weak rows (all untyped relatives)"),
        _row("next_per_weak_family_s", per, "s", f"{time.perf_counter() - t2:.1f} s with their own power"),
        _row("next_all_weak_est_s", per * st.n_weak, "s", f"extrapolated to all {st.n_weak} weak rows"),
        _row("next_lifts_above_level", lifted / max(1, found), "",
             f"share of the timed weak rows whose best next relative reaches the level ({found} with a candidate)"),
        _row("load_avg", f"{load0:.1f} -> {os.getloadavg()[0]:.1f}", "", "1-minute load average, before and after"),
    ]
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
