"""Power planning of a national registry: every family's power, the weak ones.

Full run (``python benchmarks/run.py power``): 50,000 simulated families
(``opendvi.screening.simulate_case``, seed 2026: the shapes of large
operations, 23 STRs of PowerPlex Fusion 6C, stepwise mutation), the power of
every (family, missing person) by :func:`opendvi.power.registry_power`
(batched by pedigree shape; exact per-marker facts, inclusion power by grid
convolution with a bound, rows straddling the level refined), level 0.9 at
LR 1e4, and the best next relative of EVERY weak family (every untyped
relative a candidate; batched by shape, :mod:`opendvi.power._next`), all in
one timed call; then, for comparison, the per-family path
(``next_batched=False``: :func:`opendvi.power.family_power` per weak row) on
the weakest 100 weak rows. Quick run (``--quick``): 2,000 families, 30 rows
for the comparison.

Rows are (metric, value, unit, note): ``simulate_s`` (not part of the
power), ``total_s`` (every family's power and every weak row's next
relative, end to end), ``power_s`` (the power alone) and its parts
``tables_s``, ``inclusion_s``, ``refine_s``; ``next_s`` (the next relative of
all weak rows) and ``next_per_weak_family_ms``; ``per_family_ms``;
``peak_rss_gb`` (the process, simulation included); ``fraction_weak``;
``max_bound`` (largest error bound of inclusion power at 1e4 after
refinement); ``next_per_family_path_s`` (the per-family path per weak row)
and ``next_speedup``; ``load_avg`` before and after (the machine is shared).

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
    n_cmp = 30 if quick else 100
    level, threshold = 0.9, 1e4
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    case, _ = simulate_case(families=n_fam, remains=0, seed=2026)
    t_sim = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = registry_power(case, level=level, threshold=threshold, next_relative=True)
    t_total = time.perf_counter() - t1
    st = res.stats
    t_power = t_total - st.seconds_next
    lifted = sum(1 for r in res.rows if r.next_inclusion is not None and r.next_inclusion >= level)
    rows = [
        _row("families", len(case.families), "", f"{st.n_rows} missing persons, {len(case.markers)} markers"),
        _row("simulate_s", t_sim, "s", "opendvi.screening.simulate_case (not part of the power)"),
        _row("total_s", t_total, "s", f"power of every family and the best next relative of all {st.n_next} weak rows"),
        _row("power_s", t_power, "s", "every family: tables, exact facts, inclusion power, refinement"),
        _row("tables_s", st.seconds_tables, "s", f"{st.n_template} by shape, {st.n_engine} by the general engine"),
        _row("inclusion_s", st.seconds_inclusion, "s", f"batched FFT convolution, grid {res.grid:g} log10"),
        _row("refine_s", st.seconds_refine, "s", f"{st.n_refined} rows straddling the level, grid twenty times finer"),
        _row("next_s", st.seconds_next, "s", f"best next relative of all {st.n_next} weak rows (every untyped "
             "relative a candidate), batched by shape"),
        _row("next_per_weak_family_ms", 1000 * st.seconds_next / max(1, st.n_next), "ms"),
        _row("per_family_ms", 1000 * t_power / max(1, st.n_rows), "ms", "power alone"),
        _row("peak_rss_gb", _rss_gb(), "GB", "whole process, simulation included"),
        _row("fraction_weak", res.fraction_weak, "", f"P(LR >= {threshold:g}) < {level:g}: {st.n_weak} rows"),
        _row("max_bound", max(r.inclusion_bound[res.key] for r in res.rows), "",
             "largest error bound of P(LR >= 1e4), after refinement"),
        _row("next_lifts_above_level", lifted / max(1, st.n_next), "",
             "share of the weak rows whose best next relative reaches the level"),
    ]
    # the per-family path on the weakest rows, for comparison (and a check that it agrees)
    weak = res.weak()[:n_cmp]
    sub_ids = {r.family for r in weak}
    from dataclasses import replace

    sub = replace(case, families=tuple(f for f in case.families if f.id in sub_ids))
    res2 = registry_power(sub, level=level, threshold=threshold, next_relative=True, next_batched=False)
    per = res2.stats.seconds_next / max(1, res2.stats.n_next)
    mine = {(r.family, r.missing): r for r in res.rows}
    same = sum(1 for r in res2.rows if r.next_candidate == mine[(r.family, r.missing)].next_candidate)
    rows += [
        _row("next_per_family_path_s", per, "s", f"family_power per weak row ({res2.stats.n_next} rows; "
             f"same best relative as the batched path for {same} of {len(res2.rows)})"),
        _row("next_speedup", per / max(1e-12, st.seconds_next / max(1, st.n_next)), "x",
             "per weak row, per-family path / batched"),
        _row("load_avg", f"{load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f} -> "
             + " ".join(f"{x:.1f}" for x in os.getloadavg()), "",
             "1, 5 and 15-minute load averages, before and after (2 CPUs shared with other work)"),
    ]
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
