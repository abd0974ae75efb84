"""National-scale screening: every remains against every missing person.

Full run (``python benchmarks/run.py screening``): a simulated case of 50,000
families and 30,000 remains (23 STRs of PowerPlex Fusion 6C, stepwise
mutation; ``opendvi.screening.simulate_case``, seed 2026), screened with top
20 and threshold 1e4, end to end (encoding, tables, kernel, merging) in this
process. Quick run (``--quick``): 3,000 families x 2,000 remains.

Rows are (metric, value, unit, note):

* ``simulate_s``, ``screen_s``: wall time of the simulation (not part of the
  screening) and of ``screen()`` end to end; ``tables_s`` and ``kernel_s``
  its two parts (summed over shards); ``peak_rss_gb``: the process's peak
  resident memory (simulation included); ``load_avg``: the 1-minute load
  average before and after (the machine is shared).
* ``lookups_per_s``: table look-ups (sex-admissible pairs x markers) per
  second of kernel time; ``numpy_gather_per_s``: a plain NumPy gather
  (``row[pos]`` summed, rows of one shard's table, the case's positions),
  the bandwidth-bound reference; ``stream_gb_per_s``: a NumPy sum over 1 GB.
* ``speedup_vs_engine``: on a subset of 500 remains x 500 missing persons,
  both in this process: the screening's time against the general engine's
  per-pair time (``marker_loglik`` per pair and marker, numerator and
  no-mutation numerator; P(refs) and P(g_V) shared), measured on a random
  sample of pairs and scaled to all pairs of the subset.
* ``true_found``: remains that are (a fragment of) a missing person whose
  true pairing has LR >= 1e4; ``unrelated_ge_1e4``: kept pairings with LR >=
  1e4 that are not the truth.

Run alone: ``python benchmarks/bench_screening.py [--quick]``.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np


def _row(metric: str, value: Any, unit: str = "", note: str = "") -> dict[str, Any]:
    if isinstance(value, float):
        value = float(f"{value:.4g}")
    return {"metric": metric, "value": value, "unit": unit, "note": note}


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _gather_bound(res_enc: Any, n_rows: int = 64) -> float:
    """Look-ups per second of a plain NumPy gather laid out like the kernel's."""
    from opendvi.screening._shard import shard_tables

    tabs = shard_tables(res_enc, 0, min(n_rows, res_enc.n_rows))
    pos = res_enc.positions.astype(np.intp)
    t = time.perf_counter()
    acc = 0.0
    for r in range(tabs.lt.shape[0]):
        acc += float(tabs.lt[r][pos].sum())
    dt = time.perf_counter() - t
    return tabs.lt.shape[0] * pos.size / dt


def _stream_gb_per_s() -> float:
    x = np.ones(1 << 27)  # 1 GiB
    x.sum()
    t = time.perf_counter()
    for _ in range(3):
        x.sum()
    return 3 * x.nbytes / (time.perf_counter() - t) / 1e9


def _engine_pair_seconds(case: Any, pairs: list[tuple[str, str]]) -> float:
    """Seconds per pairing of the general engine, per-pair (as dvir does)."""
    from opendvi.core.likelihood import marker_loglik
    from opendvi.core.pedigree import Individual, Pedigree

    fam_of = {mp: f for f in case.families for mp in f.missing}
    rem = {r.id: r for r in case.remains}
    single = Pedigree([Individual("_V", sex="M")])
    refs_cache: dict[tuple[str, str], float] = {}
    t = time.perf_counter()
    for v, mp in pairs:
        fam = fam_of[mp]
        r = rem[v]
        for m in case.markers:
            gv = r.genotypes.get(m.name)
            refs = {pid: g[m.name] for pid, g in fam.genotypes.items() if g.get(m.name)}
            if not gv or not refs:
                continue
            drop = {mp: r.dropout} if r.dropout else {}
            num = marker_loglik(fam.pedigree, m, {**refs, mp: gv}, dropout=drop)
            key = (fam.id, m.name)
            if key not in refs_cache:
                refs_cache[key] = marker_loglik(fam.pedigree, m, refs)
            _ = num - refs_cache[key] - marker_loglik(single, m, {"_V": gv}, dropout={"_V": r.dropout})
            if m.has_mutation:
                marker_loglik(fam.pedigree, m.without_mutation(), {**refs, mp: gv}, dropout=drop)
    return (time.perf_counter() - t) / len(pairs)


def run(quick: bool = False) -> list[dict[str, Any]]:
    from opendvi.screening import screen, simulate_case

    n_fam, n_rem = (3000, 2000) if quick else (50_000, 30_000)
    sub_n = 200 if quick else 500
    rows: list[dict[str, Any]] = []
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    case, truth = simulate_case(families=n_fam, remains=n_rem, seed=2026)
    t_sim = time.perf_counter() - t
    n_missing = sum(len(f.missing) for f in case.families)
    rows.append(_row("case", f"{n_rem} remains x {n_fam} families ({n_missing} missing persons) x "
                     f"{len(case.markers)} markers", note="simulate_case(seed=2026)"))
    rows.append(_row("simulate_s", t_sim, "s", "not part of the screening"))
    # warm-up: numba compilation (cached on disk after the first run)
    small = replace(case, remains=case.remains[:50], families=case.families[:50])
    screen(small, top=5, threshold=1e4)
    t = time.perf_counter()
    res = screen(case, top=20, threshold=1e4)
    t_screen = time.perf_counter() - t
    load1 = os.getloadavg()[0]
    st = res.stats
    rows.append(_row("screen_s", t_screen, "s", "end to end: encode, tables, kernel, merge; target < 300 s"))
    rows.append(_row("tables_s", st.seconds_tables, "s",
                     f"{st.rows_template} missing persons by templates, {st.rows_engine} by the general engine "
                     f"({st.engine_calls} engine calls)"))
    rows.append(_row("kernel_s", st.seconds_kernel, "s", f"{st.n_shards} shards"))
    rows.append(_row("peak_rss_gb", _rss_gb(), "GB", "whole process, simulation included; target < 8 GB"))
    rows.append(_row("max_shard_table_mb", st.max_shard_table_bytes / 1e6, "MB", f"row width {st.width} codes"))
    rows.append(_row("kept_pairings", len(res), "", "top 20 per remains and every LR >= 1e4"))
    rows.append(_row("lookups", st.lookups, "", "sex-admissible pairs x markers"))
    rows.append(_row("lookups_per_s", st.lookups_per_second, "1/s", "kernel time only"))
    enc = _encoded(case)
    rows.append(_row("numpy_gather_per_s", _gather_bound(enc), "1/s", "row[pos].sum(), one row at a time"))
    rows.append(_row("stream_gb_per_s", _stream_gb_per_s(), "GB/s", "numpy sum over 1 GiB"))
    rows.append(_row("load_avg", f"{load0:.2f} -> {load1:.2f}", "", f"1-min load average, {os.cpu_count()} CPUs"))
    rows.extend(_truth_rows(res, truth))
    rows.extend(_speedup_rows(case, sub_n, quick))
    return rows


def _encoded(case: Any) -> Any:
    from opendvi.screening._encode import encode_case

    c, _ = case.with_unseen_alleles()
    return encode_case(c)


def _truth_rows(res: Any, truth: Any) -> list[dict[str, Any]]:
    thr = math.log(1e4)
    family_of = dict(zip(res.missing_ids, res.family_ids, strict=True))
    true_pairs = {(v, m) for v, m in truth.missing.items() if m is not None}
    found = set()
    other_family = 0
    same_family = 0
    first: dict[str, str] = {}
    for v, m, s, _ in res.pairs():
        if v not in first:
            first[v] = m
        if s >= thr:
            if (v, m) in true_pairs:
                found.add(v)
            elif truth.missing.get(v) is not None and family_of[truth.missing[v]] == family_of[m]:
                same_family += 1
            else:
                other_family += 1
    top1 = sum(1 for v, m in true_pairs if first.get(v) == m)
    n_true = len(true_pairs)
    return [
        _row("true_remains", n_true, "", "remains that are a missing person (fragments included)"),
        _row("true_found", len(found), "", f"true pairing LR >= 1e4 ({100 * len(found) / max(1, n_true):.1f} %)"),
        _row("true_top1", top1, "", "true missing person ranked first"),
        _row("unrelated_ge_1e4", other_family, "",
             "pairings with LR >= 1e4 of a remains with a missing person it is not related to"),
        _row("relative_ge_1e4", same_family, "",
             "LR >= 1e4 with another missing person of the true one's family (a missing brother, father or son)"),
    ]


def _speedup_rows(case: Any, n: int, quick: bool) -> list[dict[str, Any]]:
    from opendvi.screening import screen

    fams = []
    count = 0
    for f in case.families:
        if count >= n:
            break
        fams.append(f)
        count += len(f.missing)
    sub = replace(case, remains=case.remains[:n], families=tuple(fams))
    t = time.perf_counter()
    res = screen(sub, top=20, threshold=1e4)
    t_screen = time.perf_counter() - t
    n_pairs = res.stats.lookups // max(1, res.stats.n_markers)
    rng = np.random.default_rng(5)
    mps = [(f, m) for f in fams for m in f.missing]
    sample = []
    while len(sample) < (20 if quick else 60):
        r = sub.remains[int(rng.integers(len(sub.remains)))]
        f, m = mps[int(rng.integers(len(mps)))]
        if r.sex is None or f.sex_of(m) == r.sex:
            sample.append((r.id, m))
    per_pair = _engine_pair_seconds(sub, sample)
    t_engine = per_pair * n_pairs
    return [
        _row("subset", f"{len(sub.remains)} remains x {sum(len(f.missing) for f in fams)} missing persons",
             note=f"{n_pairs} sex-admissible pairings"),
        _row("subset_screen_s", t_screen, "s", "screen() on the subset, end to end (compiled kernels)"),
        _row("engine_ms_per_pair", 1000 * per_pair, "ms", f"general engine per pairing, {len(sample)} sampled pairs"),
        _row("subset_engine_s", t_engine, "s", "engine per pairing x admissible pairings (scaled)"),
        _row("speedup_vs_engine", t_engine / t_screen, "x", "same process"),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(row)
