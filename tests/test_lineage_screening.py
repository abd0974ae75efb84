"""Screening with lineage markers (Y-STR, mtDNA) == ``lineage_pairwise``.

Every admissible pairing of simulated cases with Y and mtDNA (and with one
of them only) against :func:`opendvi.dvi.lineage.lineage_pairwise`: the
combined LR, each system's LR (1e-9) and each lineage system's mismatches;
the same top-K lists (ties by row order) over several shards and on resuming;
mtDNA with heteroplasmies and shorter typed ranges; the output files.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from opendvi.core.case import Case
from opendvi.core.lineage import CaseLineage, PersonHaplotypes
from opendvi.core.lineage_mt import IUPAC, MtHaplotype, parse_mt_range
from opendvi.dvi.lineage import LineagePairwise, lineage_pairwise
from opendvi.screening import read_results, screen, simulate_case, write_results
from opendvi.workflows.results import screen_json


def _close(a: float, b: float, tol: float = 1e-9) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


def _check_all(case: Case, lp: LineagePairwise, **kw: object) -> int:
    """Every admissible pairing of ``lp`` is screened with its numbers; returns the count."""
    res = screen(case, top=10_000, threshold=None, **kw)  # type: ignore[arg-type]
    assert res.log_lr_by_system is not None and res.mismatches is not None
    assert res.systems == lp.systems
    got = {
        (v, m): (s, by, mm)
        for (v, m, s, _), by, mm in zip(res.pairs(), res.log_lr_by_system, res.mismatches, strict=True)
    }
    n = 0
    for v, row in lp.log_lr.items():
        for m, want in row.items():
            n += 1
            s, by, mm = got.pop((v, m))
            assert _close(s, want), (v, m, s, want)
            for j, sy in enumerate(res.systems):
                assert _close(float(by[j]), lp.log_lr_by_system[v][m][sy]), (v, m, sy)
            for j, sy in enumerate(res.lineage_systems):
                assert int(mm[j]) == lp.mismatches[v][m][sy], (v, m, sy)
    assert not got  # nothing screened that pairwise does not admit
    return n


@pytest.fixture(scope="module")
def sim() -> tuple[Case, LineagePairwise]:
    case, _ = simulate_case(families=40, remains=40, seed=20261207, lineage=("Y", "mt"))
    return case, lineage_pairwise(case)


def test_simulated_y_mt__every_pairing_equals_lineage_pairwise(sim) -> None:  # type: ignore[no-untyped-def]
    case, lp = sim
    assert case.lineage is not None and case.lineage.systems == ("Y", "mt")
    n = _check_all(case, lp, shard_size=9)
    assert n > 800
    # both systems inform: finite LRs above 1 and exclusions in each
    by = [lp.log_lr_by_system[v][m] for v, row in lp.log_lr.items() for m in row]
    for sy in ("Y", "mt"):
        assert any(b[sy] > math.log(10) for b in by)
        assert any(b[sy] == -math.inf for b in by)
    assert any(lp.mismatches[v][m]["Y"] == 1 for v, row in lp.mismatches.items() for m in row)


def test_simulated_y_mt__same_top_k(sim) -> None:  # type: ignore[no-untyped-def]
    case, lp = sim
    rows = [mp for f in case.families for mp in f.missing]
    order = {mp: i for i, mp in enumerate(rows)}
    for top, shard in ((1, 5), (3, 7), (5, 1000)):
        res = screen(case, top=top, threshold=None, shard_size=shard)
        got = {rid: [c["missing"] for c in lst] for rid, lst in res.candidates().items()}
        for v, row in lp.log_lr.items():
            want = sorted(row, key=lambda m: (-row[m], order[m]))[:top]
            assert got[v] == want, (v, got[v], want)


def test_threshold_uses_the_combined_lr(sim) -> None:  # type: ignore[no-untyped-def]
    case, lp = sim
    res = screen(case, top=0, threshold=1e6)
    kept = {(v, m) for v, m, _, _ in res.pairs()}
    want = {(v, m) for v, row in lp.log_lr.items() for m, s in row.items() if s >= math.log(1e6)}
    assert kept == want and want


@pytest.mark.parametrize("systems", [("Y",), ("mt",)])
def test_one_lineage_system(systems: tuple[str, ...]) -> None:
    case, _ = simulate_case(families=25, remains=25, seed=7, lineage=systems)
    lp = lineage_pairwise(case)
    assert lp.systems == ("autosomal", *systems)
    assert _check_all(case, lp, shard_size=6) > 200


def _with_odd_mt(case: Case) -> Case:
    """Heteroplasmies (remains and references) and remains typed over HVS-I only."""
    lin = case.lineage
    assert lin is not None
    haps = dict(lin.haplotypes)
    hvs1 = parse_mt_range("16024-16365")
    pairs = {frozenset(v): k for k, v in IUPAC.items() if len(v) == 2}
    changed = 0
    for k, pid in enumerate(sorted(pid for pid, h in haps.items() if h.mt is not None and h.mt.sites)):
        h = haps[pid]
        assert h.mt is not None
        sites = dict(h.mt.sites)
        if k % 5 == 0:  # a point heteroplasmy of the variant and the rCRS base
            s, b = next((s, b) for s, b in sites.items() if s[1] == 0 and b in "ACGT")
            sites[s] = pairs[frozenset({b, _rcrs(s)})]
            haps[pid] = replace(h, mt=MtHaplotype(range=h.mt.range, sites=sites))
            changed += 1
        elif k % 7 == 1 and pid.startswith("V"):
            sub = {s: b for s, b in sites.items() if 16024 <= s[0] <= 16365}
            haps[pid] = replace(h, mt=MtHaplotype(range=hvs1, sites=sub))
            changed += 1
    assert changed > 10
    return replace(case, lineage=CaseLineage(y=lin.y, mt=lin.mt, haplotypes=haps))


def _rcrs(site: tuple[int, int]) -> str:
    from opendvi.core.lineage_mt import rcrs

    return rcrs()[site[0] - 1]


def test_mt_heteroplasmy_and_ranges_equal_lineage_pairwise() -> None:
    case, _ = simulate_case(families=25, remains=30, seed=11, lineage=("mt",))
    case = _with_odd_mt(case)
    lp = lineage_pairwise(case)
    assert _check_all(case, lp, shard_size=8) > 200


def test_resume_keeps_the_systems(sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case, _ = sim
    full = screen(case, top=4, threshold=1e3, shard_size=10)
    part = screen(case, top=4, threshold=1e3, shard_size=10, work_dir=tmp_path, stop_after=2)
    assert part.stats.shards_computed == 2
    res = screen(case, top=4, threshold=1e3, shard_size=10, work_dir=tmp_path)
    assert res.stats.shards_resumed == 2
    assert list(res.pairs()) == list(full.pairs())
    assert res.log_lr_by_system is not None and full.log_lr_by_system is not None
    np.testing.assert_array_equal(res.log_lr_by_system, full.log_lr_by_system)
    np.testing.assert_array_equal(res.mismatches, full.mismatches)


def test_outputs_carry_each_system(sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case, lp = sim
    res = screen(case, top=3, threshold=None)
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"r{suffix}"
        write_results(res, path)
        rows = read_results(path)
        assert len(rows) == len(res)
        for row in rows:
            v, m = row["remains"], row["missing"]
            for sy in ("autosomal", "Y", "mt"):
                want = lp.log_lr_by_system[v][m][sy]
                got = row[f"lr_{sy}"]
                assert (got == 0.0) if want == -math.inf else math.isclose(got, math.exp(want), rel_tol=1e-9)
            assert row["mismatches_Y"] == lp.mismatches[v][m]["Y"]
            assert row["mismatches_mt"] == lp.mismatches[v][m]["mt"]
            assert math.isclose(row["lr"], lp.lr(v, m) or 0.0, rel_tol=1e-9, abs_tol=0.0)
    doc = json.loads(json.dumps(screen_json(res)))
    assert doc["systems"] == ["autosomal", "Y", "mt"]
    c = next(c for lst in doc["candidates"].values() for c in lst)
    assert set(c["lr_by_system"]) == {"autosomal", "Y", "mt"} and set(c["mismatches"]) == {"Y", "mt"}


def test_without_lineage_the_result_is_unchanged(sim) -> None:  # type: ignore[no-untyped-def]
    case, lp = sim
    plain = replace(case, lineage=None)
    res = screen(plain, top=3, threshold=None)
    assert res.systems == () and res.log_lr_by_system is None
    assert "lr_by_system" not in next(c for lst in res.candidates().values() for c in lst)
    # the autosomal part of the lineage screening is the plain screening
    auto = {(v, m): s for v, m, s, _ in screen(plain, top=10_000, threshold=None).pairs()}
    for v, row in lp.log_lr_by_system.items():
        for m, by in row.items():
            assert _close(auto[(v, m)], by["autosomal"])


def test_simulation_keeps_the_autosomal_data() -> None:
    a, ta = simulate_case(families=20, remains=15, seed=3)
    b, tb = simulate_case(families=20, remains=15, seed=3, lineage=("Y", "mt"))
    assert a.remains == b.remains and a.families == b.families and ta == tb
    assert a.lineage is None and b.lineage is not None
    males = [r.id for r in b.remains if ta.missing[r.id] is not None and b.lineage.y_of(r.id)]
    assert males
    assert all(isinstance(h, PersonHaplotypes) for h in b.lineage.haplotypes.values())


# ---------------------------------------------------------------------------
# remains-to-remains (fragments): the lineage factor of a direct match
# ---------------------------------------------------------------------------

RANGE = "16024-16569 1-576"


def _fragments_case() -> Case:
    from opendvi.core.case import Family, Sample
    from opendvi.core.lineage import MtDatabase, MtSystem, YDatabase, YMarker, YSystem, parse_y_value
    from opendvi.core.markers import make_marker
    from opendvi.core.pedigree import Individual, Pedigree

    def yh(**v: str) -> dict[str, tuple[str, ...]]:
        return {k: parse_y_value(x, copies=2 if k == "DYS385" else 1) for k, x in v.items()}

    ysys = YSystem(
        markers=(YMarker("DYS19", 0.004), YMarker("DYS391", 0.0025), YMarker("DYS385", 0.003, copies=2)),
        database=YDatabase(
            (yh(DYS19="14", DYS391="10", DYS385="11,14"), yh(DYS19="15", DYS391="10", DYS385="11,14"),
             yh(DYS19="14", DYS391="11", DYS385="13,14")),
            (3, 5, 2),
        ),
    )
    mtdb = MtDatabase(
        (MtHaplotype.parse(RANGE, ["16519C", "263G"]), MtHaplotype.parse(RANGE, ["263G"]),
         MtHaplotype.parse(RANGE, ["16519C", "263G", "16093C"])),
        (4, 5, 1),
    )
    marker = make_marker("M", ["a", "b", "c"], [0.1, 0.2, 0.7])
    haps = {
        "A": PersonHaplotypes(y=yh(DYS19="14", DYS391="10", DYS385="11,14"),
                              mt=MtHaplotype.parse(RANGE, ["16519C", "263G"])),
        # B: A's fragment, Y typed at two loci, a heteroplasmy 16093Y (T/C) where A has the rCRS T
        "B": PersonHaplotypes(y=yh(DYS19="14", DYS391="10"),
                              mt=MtHaplotype.parse(RANGE, ["16519C", "263G", "16093Y"])),
        # C: one Y step away from A at DYS19, the same mtDNA
        "C": PersonHaplotypes(y=yh(DYS19="15", DYS391="10", DYS385="11,14"),
                              mt=MtHaplotype.parse(RANGE, ["16519C", "263G"])),
        # D: mtDNA only, one difference from A
        "D": PersonHaplotypes(mt=MtHaplotype.parse(RANGE, ["263G"])),
    }
    remains = tuple(Sample(r, sex="M" if r != "D" else None, genotypes={"M": ("a", "b")}) for r in "ABCD")
    fam = Family(id="F1", pedigree=Pedigree([Individual("MP", sex="M"), Individual("R1", sex="F")]),
                 genotypes={"R1": {"M": ("a", "a")}}, missing=("MP",))
    return Case(name="fragments", markers=(marker,), remains=remains, families=(fam,),
                lineage=CaseLineage(y=ysys, mt=MtSystem(rate=0.002, database=mtdb), haplotypes=haps))


def test_remains_matching_lineage_closed_forms() -> None:
    from opendvi.dvi import DVIProblem, group_remains

    case = _fragments_case()
    m = group_remains(DVIProblem(case), threshold=100)
    auto = math.log(1 / (2 * 0.1 * 0.2))  # 25: the same a/b genotype
    # A and B: Y over DYS19, DYS391 (typed in both): 3 of 10 database haplotypes -> f = (3 + 1) / 11
    by = m.log_lr_by_system[("A", "B")]
    assert by["autosomal"] == pytest.approx(auto, rel=1e-12)
    assert math.exp(by["Y"]) == pytest.approx(11 / 4, rel=1e-12)
    # mt: A's haplotype is 4 of 10 -> 5/11; B's 16093Y matches the first (T) and the third
    # (16093C) database haplotypes: 4 + 1 = 5 -> 6/11; the larger f is used
    assert math.exp(by["mt"]) == pytest.approx(11 / 6, rel=1e-12)
    assert m.log_lr[("A", "B")] == pytest.approx(auto + math.log(11 / 4) + math.log(11 / 6), rel=1e-12)
    assert m.mismatches[("A", "B")] == {"Y": 0, "mt": 0}
    assert m.groups == [["A", "B"]]  # 25 x 11/4 x 11/6 = 126 >= 100
    # A and C: one Y difference excludes the same person, whatever the autosomes say
    assert m.log_lr_by_system[("A", "C")]["Y"] == -math.inf
    assert m.mismatches[("A", "C")]["Y"] == 1
    assert m.log_lr[("A", "C")] == -math.inf
    assert math.exp(m.log_lr_by_system[("A", "C")]["mt"]) == pytest.approx(11 / 5, rel=1e-12)
    # A and D: no Y on D (LR 1), one mtDNA difference: excluded
    assert m.log_lr_by_system[("A", "D")]["Y"] == 0.0
    assert m.log_lr_by_system[("A", "D")]["mt"] == -math.inf and m.mismatches[("A", "D")]["mt"] == 1
    js = m.systems_json("A", "B")
    assert js["mismatches"] == {"Y": 0, "mt": 0} and js["lr_by_system"]["Y"] == pytest.approx(11 / 4)
    assert m.systems_json("A", "C")["lr_by_system"]["Y"] == 0.0


def test_remains_matching_y_beside_a_female() -> None:
    from opendvi.core.direct_match import lineage_direct_match

    case = _fragments_case()
    assert case.lineage is not None
    got = lineage_direct_match(case.lineage, "A", "D", sex_a="M", sex_b="F")
    assert got["Y"].log_lr == -math.inf
    assert lineage_direct_match(None, "A", "B") == {}


def test_cli_match_remains__shows_each_system_of_a_fragment_pair(tmp_path: Path) -> None:
    """``opendvi match-remains --format json``: a linked pair carries its lineage LRs and mismatches."""
    from typer.testing import CliRunner

    from opendvi.cli.main import app
    from opendvi.dvi.problem import DVIProblem
    from opendvi.dvi.remains import group_remains
    from opendvi.io.case_json import write_case

    case, _ = simulate_case(families=20, remains=40, seed=5, lineage=("Y", "mt"), share_fragments=0.2)
    path = tmp_path / "case.json"
    write_case(case, path)
    res = CliRunner().invoke(app, ["match-remains", str(path), "--format", "json"])
    assert res.exit_code == 0, res.output
    pairs = json.loads(res.output)["pairs"]
    want = group_remains(DVIProblem(case))
    with_systems = [p for p in pairs if "lr_by_system" in p]
    assert with_systems, "no fragment pair typed for a lineage system"
    for p in with_systems:
        a, b = p["remains"]
        assert p["lr_by_system"] == want.systems_json(a, b)["lr_by_system"]
        assert p["mismatches"] == want.systems_json(a, b)["mismatches"]
    assert any("Y" in p["lr_by_system"] for p in with_systems)
