"""Lineage markers: how many missing persons with only distant relatives are
identified without and with Y-STR and mtDNA, and at what cost.

Simulated families whose only typed relative is a paternal uncle, a paternal
first cousin, a paternal grandfather (all on the male line: Y) or a maternal
aunt (female line: mtDNA); the missing person is male. Autosomal: the demo
case's 23 STRs with their mutation models. Y: the 10 loci of the Danish
database (``disclapmix`` danes, 185 haplotypes) with the bundled YHRD rates;
founders drawn from that database, f(h) by augmented counting on it. mtDNA: a
*synthetic* database (no public haplotype database is bundled: EMPOP is
query-only), 12 clades of 3-6 control-region variants plus 0-2 private
variants each, rate 0.002; founders drawn from the same process. The remains
are the missing persons' own profiles plus as many unrelated males.

Rows per relative: ``identified_autosomal`` and ``identified_with_lineage``
(fraction of true missing persons with LR >= 10^4), ``false_autosomal`` and
``false_with_lineage`` (unrelated pairings with LR >= 10^4 among all of
them), and the time of the autosomal pairwise step against the time of the
lineage LRs of every pairing.

Screening speed (rows ``screening ...``): a simulated national-ish case
(``opendvi.screening.simulate_case(..., lineage=("Y", "mt"))``: 5,000
families x 3,000 remains, 23 autosomal STRs, PowerPlex Y23 and the mtDNA
control region; ``--quick``: 800 x 500) screened with top 20 and threshold
1e4, with the lineage data and without them (the same case otherwise), best
of two runs each, alternating: ``screen_s`` end to end, ``tables_s`` and
``kernel_s`` its parts, ``row_width`` the table row (the lineage columns add
the distinct remains haplotypes), and ``lineage_over_autosomal`` the ratio
of the end-to-end times (target <= 1.5).

Run alone: ``python benchmarks/bench_lineage.py [--quick]``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from opendvi.core.case import Case, Family, Sample
from opendvi.core.lineage import CaseLineage, MtDatabase, MtSystem, PersonHaplotypes, YMarker, YSystem, default_y_marker
from opendvi.core.lineage_mt import MtHaplotype, rcrs
from opendvi.core.lineage_sim import database_sampler, simulate_mt, simulate_y
from opendvi.core.pedigree import Pedigree, avuncular, cousins, grandparent, singleton
from opendvi.core.simulate import simulate_profiles
from opendvi.data import demo_case_path
from opendvi.dvi.lineage import lineage_pairwise
from opendvi.dvi.pairwise import pairwise_lr
from opendvi.dvi.problem import DVIProblem
from opendvi.io.case_json import read_case
from opendvi.io.haplotypes import read_y_database

THRESHOLD = math.log(1e4)
MT_RANGE = "16024-16569 1-576"
RELATIVES = ("paternal_uncle", "paternal_cousin", "paternal_grandfather", "maternal_aunt")


def _shape(kind: str) -> tuple[Pedigree, str, str]:
    """(pedigree, typed relative, missing person)."""
    if kind == "paternal_uncle":
        return avuncular(side="paternal"), "UN", "NE"
    if kind == "paternal_cousin":
        return cousins(1), "C1", "C2"
    if kind == "paternal_grandfather":
        return grandparent(side="paternal"), "GP", "GC"
    return avuncular(side="maternal", uncle_sex="F", nephew_sex="M"), "UN", "NE"


def _mt_generator(seed: int) -> Any:
    rng = np.random.default_rng(seed)
    ref = rcrs()
    positions = sorted({int(p) for p in rng.choice(np.r_[16024:16570, 1:577], size=120, replace=False)})

    def variant(pos: int) -> str:
        base = "ACGT".replace(ref[pos - 1], "")[int(rng.integers(3))]
        return f"{pos}{base}"

    clades = [[variant(int(p)) for p in rng.choice(positions, size=int(rng.integers(3, 7)), replace=False)]
              for _ in range(12)]
    weights = rng.dirichlet(np.ones(12) * 0.8)

    def draw(r: np.random.Generator) -> MtHaplotype:
        clade = clades[int(r.choice(12, p=weights))]
        private = [f"{int(p)}{'ACGT'.replace(ref[int(p) - 1], '')[int(r.integers(3))]}"
                   for p in r.choice(positions, size=int(r.integers(0, 3)), replace=False)]
        sites = {v[:-1]: v for v in clade + private}
        return MtHaplotype.parse(MT_RANGE, list(sites.values()))

    return draw


def _case(n_per_kind: int, seed: int) -> tuple[Case, dict[str, tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    markers = read_case(demo_case_path()).markers
    ydb, ymarkers = read_y_database(demo_case_path().parent / "disclapmix_danes.txt")
    ysys = YSystem(markers=tuple(default_y_marker(m.name) if m.rate == 0 else YMarker(m.name, m.rate)
                                 for m in ymarkers), database=ydb)
    y_founder = database_sampler(ydb.haplotypes, ydb.counts)
    mt_draw = _mt_generator(seed + 1)
    mt_db_haps = [mt_draw(rng) for _ in range(500)]
    uniq: dict[tuple[str, ...], int] = {}
    keep: dict[tuple[str, ...], MtHaplotype] = {}
    for h in mt_db_haps:
        uniq[h.variants] = uniq.get(h.variants, 0) + 1
        keep[h.variants] = h
    mtsys = MtSystem(rate=0.002, database=MtDatabase(tuple(keep.values()), tuple(uniq.values())))
    families: list[Family] = []
    remains: list[Sample] = []
    haps: dict[str, PersonHaplotypes] = {}
    truth: dict[str, tuple[str, str]] = {}
    k = 0
    for kind in RELATIVES:
        for _ in range(n_per_kind):
            k += 1
            ped, ref, mp = _shape(kind)
            mapping = {pid: f"F{k}_{pid}" for pid in ped.ids}
            ped = ped.relabel(mapping)
            ref, mp = mapping[ref], mapping[mp]
            gts = simulate_profiles(ped, markers, rng)
            ys = simulate_y(ped, ysys, y_founder, rng)
            mts = simulate_mt(ped, mtsys, mt_draw, rng)
            fid = f"F{k}"
            families.append(Family(id=fid, pedigree=ped, genotypes={ref: gts[ref]}, missing=(mp,)))
            haps[ref] = PersonHaplotypes(y=ys.get(ref), mt=mts[ref])
            rid = f"V{k}"
            remains.append(Sample(id=rid, sex="M", genotypes=gts[mp]))
            haps[rid] = PersonHaplotypes(y=ys[mp], mt=mts[mp])
            truth[rid] = (kind, mp)
    for j in range(len(families)):
        # unrelated males: autosomal from the frequencies, Y from the database, mt from the generator
        single = singleton(f"U{j}", "M")
        gts = simulate_profiles(single, markers, rng)
        rid = f"U{j}"
        remains.append(Sample(id=rid, sex="M", genotypes=gts[rid]))
        haps[rid] = PersonHaplotypes(y=dict(y_founder(rng)), mt=mt_draw(rng))
    case = Case(name="lineage-bench", markers=markers, remains=tuple(remains), families=tuple(families))
    case = replace(case, lineage=CaseLineage(y=ysys, mt=mtsys, haplotypes=haps))
    return case, truth


def run(quick: bool) -> list[dict[str, Any]]:
    n = 8 if quick else 25
    case, truth = _case(n, seed=20261207)
    problem = DVIProblem(case)
    t0 = time.perf_counter()
    auto = pairwise_lr(problem, keep_markers=True)
    t_auto = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = lineage_pairwise(problem, autosomal=auto)
    t_lin = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    for kind in RELATIVES:
        true_pairs = [(rid, mp) for rid, (k, mp) in truth.items() if k == kind]
        mps = {mp for _, mp in true_pairs}
        false_pairs = [(rid, mp) for rid in res.log_lr for mp in res.log_lr[rid]
                       if mp in mps and truth.get(rid, ("", ""))[1] != mp]
        auto_ok = sum(res.log_lr_by_system[r][m]["autosomal"] >= THRESHOLD for r, m in true_pairs)
        lin_ok = sum(res.log_lr[r][m] >= THRESHOLD for r, m in true_pairs)
        auto_false = sum(res.log_lr_by_system[r][m]["autosomal"] >= THRESHOLD for r, m in false_pairs)
        lin_false = sum(res.log_lr[r][m] >= THRESHOLD for r, m in false_pairs)
        lineage_excluded_true = sum(res.log_lr[r][m] == -math.inf for r, m in true_pairs)
        rows.append(
            {
                "relative": kind,
                "missing_persons": len(true_pairs),
                "identified_autosomal": round(auto_ok / len(true_pairs), 3),
                "identified_with_lineage": round(lin_ok / len(true_pairs), 3),
                "true_excluded_by_lineage": lineage_excluded_true,
                "unrelated_pairings": len(false_pairs),
                "false_autosomal": auto_false,
                "false_with_lineage": lin_false,
            }
        )
    pairs = sum(len(v) for v in res.log_lr.values())
    rows.append(
        {
            "relative": "all (timing)",
            "missing_persons": len(truth),
            "pairings": pairs,
            "autosomal_pairwise_s": round(t_auto, 3),
            "lineage_lrs_s": round(t_lin, 3),
        }
    )
    rows.extend(screening_speed(quick))
    return rows


def screening_speed(quick: bool) -> list[dict[str, Any]]:
    """Screening with and without the lineage columns (module docstring)."""
    from opendvi.screening import screen, simulate_case

    families, remains = (800, 500) if quick else (5000, 3000)
    case, _ = simulate_case(families=families, remains=remains, seed=2026, lineage=("Y", "mt"))
    plain = replace(case, lineage=None)
    screen(replace(plain, remains=plain.remains[:5], families=plain.families[:5]), top=2)  # compiled kernels
    best: dict[str, tuple[float, Any]] = {}
    for name, c in (("autosomal", plain), ("lineage", case), ("autosomal", plain), ("lineage", case)):
        t0 = time.perf_counter()
        res = screen(c, top=20, threshold=1e4)
        dt = time.perf_counter() - t0
        if name not in best or dt < best[name][0]:
            best[name] = (dt, res)
    out = []
    for name in ("autosomal", "lineage"):
        dt, res = best[name]
        out.append(
            {
                "relative": f"screening {remains} x {families} ({name})",
                "missing_persons": res.stats.n_rows,
                "pairings": int(res.stats.lookups // max(1, res.stats.n_markers)),
                "screen_s": round(dt, 3),
                "tables_s": round(res.stats.seconds_tables, 3),
                "kernel_s": round(res.stats.seconds_kernel, 3),
                "row_width": res.stats.width,
            }
        )
    out[-1]["lineage_over_autosomal"] = round(best["lineage"][0] / best["autosomal"][0], 3)
    return out


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
