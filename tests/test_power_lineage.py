"""Lineage markers (Y-STR, mtDNA) in power planning (docs/power.md, "Lineage markers").

Closed forms and exact enumerations independent of ``opendvi.power._lineage``:
mt identity (LR = (1 - mu)^k / f(h), h from the database), Y without mutation
(LR = 1 / f(h)), Y with mutation by enumerating every database haplotype and
every per-locus k-step walk; the seeded simulation against that enumeration;
the ranking of a paternal against a maternal cousin by the kit's systems.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opendvi.core.case import Case, Family
from opendvi.core.lineage import CaseLineage, MtDatabase, MtSystem, PersonHaplotypes, YDatabase, YMarker, YSystem
from opendvi.core.lineage_lr import mt_lineage_lr, y_lineage_lr
from opendvi.core.lineage_mt import MtHaplotype
from opendvi.core.markers import make_marker
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.power import PowerSettings, family_power
from opendvi.power import _lineage as power_lineage
from opendvi.workflows.results import power_json
from tests.clikit import run

I = Individual  # noqa: E741

#: MP's father FA and paternal uncle UN (sons of PGF), UN's son PC; MP's mother MO and
#: maternal aunt AU (daughters of MGM), AU's son MC. PC: 4 father-son links; MC: 4 mother-child links.
PED = Pedigree([
    I("PGF", sex="M"), I("PGM", sex="F"), I("MGF", sex="M"), I("MGM", sex="F"),
    I("FA", "PGF", "PGM", "M"), I("UN", "PGF", "PGM", "M"), I("UNW", sex="F"), I("PC", "UN", "UNW", "M"),
    I("MO", "MGF", "MGM", "F"), I("AU", "MGF", "MGM", "F"), I("AUH", sex="M"), I("MC", "AUH", "AU", "M"),
    I("MP", "FA", "MO", "M"),
])
MARKERS = tuple(make_marker(f"A{i}", ["1", "2", "3", "4"], [0.1, 0.2, 0.3, 0.4]) for i in range(4))
Y_HAPS: tuple[dict[str, tuple[str, ...]], ...] = (
    {"DYS1": ("10",), "DYS2": ("14",)}, {"DYS1": ("11",), "DYS2": ("14",)},
    {"DYS1": ("12",), "DYS2": ("15",)}, {"DYS1": ("12",), "DYS2": ("14",)})
Y_COUNTS = (5, 3, 2, 1)
MT_HAPS = (MtHaplotype.parse("16024-16569", ["16519C"]), MtHaplotype.parse("16024-16569", ["16519C", "16311C"]),
           MtHaplotype.parse("16024-16569", []))
MT_COUNTS = (6, 3, 1)
MT_RATE = 0.002


def y_system(rates: tuple[float, float] = (0.003, 0.004)) -> YSystem:
    return YSystem((YMarker("DYS1", rates[0]), YMarker("DYS2", rates[1])), YDatabase(Y_HAPS, Y_COUNTS))


def mt_system() -> MtSystem:
    return MtSystem(MT_RATE, MtDatabase(MT_HAPS, MT_COUNTS))


def case_of(y: YSystem | None, mt: MtSystem | None, *, genotypes: dict[str, Any] | None = None,
            haplotypes: dict[str, PersonHaplotypes] | None = None) -> Case:
    fam = Family("F", PED, genotypes or {}, missing=("MP",))
    return Case("c", MARKERS, families=(fam,), lineage=CaseLineage(y=y, mt=mt, haplotypes=haplotypes or {}))


def distribution(p: Any, lv: Any) -> dict[float, float]:
    out: dict[float, float] = {}
    for a, b in zip(p, lv, strict=True):
        key = round(float(b), 10)
        out[key] = out.get(key, 0.0) + float(a)
    return out


def augmented(h: dict[str, tuple[str, ...]]) -> float:
    n = sum(Y_COUNTS)
    x = sum(c for g, c in zip(Y_HAPS, Y_COUNTS, strict=True) if g == h)
    return (x + 1) / (n + 1)


def kstep(d: int, k: int, mu: float) -> float:
    """P(net change d after k single-step links), by enumerating every path of k steps."""
    total = 0.0
    for path in itertools.product((-1, 0, 1), repeat=k):
        if sum(path) == d:
            total += math.prod(1 - mu if s == 0 else mu / 2 for s in path)
    return total


def brute_force_y(k: int, rates: tuple[float, float], lines: Sequence[tuple[dict[str, tuple[str, ...]], float]]) \
        -> dict[float, float]:
    """log10 LR_Y of MP k links from the line's haplotype, over every line haplotype and every walk."""
    out: dict[float, float] = {}
    for h, w in lines:
        for d1, d2 in itertools.product(range(-k, k + 1), repeat=2):
            p = kstep(d1, k, rates[0]) * kstep(d2, k, rates[1])
            if p == 0.0:
                continue
            v: dict[str, tuple[str, ...]] = {"DYS1": (str(int(h["DYS1"][0]) + d1),),
                                             "DYS2": (str(int(h["DYS2"][0]) + d2),)}
            key = round(math.log10(p / augmented(v)), 10)
            out[key] = out.get(key, 0.0) + w * p
    return out


def assert_same_distribution(got: dict[float, float], want: dict[float, float]) -> None:
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-15)


def test_mt_candidate_first_on_line__database_distribution_closed_form() -> None:
    res = family_power(case_of(None, mt_system()), "F", candidates=[["MC"]])
    (term,) = res.next[0].summary.lineage
    assert (term.system, term.reference, term.links, term.method) == ("mt", "MC", 4, "exact")
    n = sum(MT_COUNTS)
    want = {round(math.log10((1 - MT_RATE) ** 4 * (n + 1) / (c + 1)), 10): c / n for c in MT_COUNTS}
    assert_same_distribution(distribution(term.atoms_p, term.atoms_l), want)
    e = sum(c / n * math.log10((1 - MT_RATE) ** 4 * (n + 1) / (c + 1)) for c in MT_COUNTS)
    assert term.e_log10_lr == pytest.approx(e, rel=1e-12)
    assert term.e_lr == pytest.approx(sum(c / n * (1 - MT_RATE) ** 4 * (n + 1) / (c + 1) for c in MT_COUNTS))
    assert res.summary.lineage == []  # nobody typed on the line yet: no baseline term


def test_mt_typed_aunt__one_atom_equal_to_the_engine() -> None:
    hap = MT_HAPS[1]
    case = case_of(None, mt_system(), haplotypes={"AU": PersonHaplotypes(mt=hap)})
    (term,) = family_power(case, "F").summary.lineage
    assert (term.reference, term.links) == ("AU", 3)
    assert case.lineage is not None and case.lineage.mt is not None
    engine = mt_lineage_lr(PED, "MP", {"AU": hap}, hap, case.lineage.mt)
    assert list(term.atoms_p) == [1.0]
    assert term.atoms_l[0] == pytest.approx(engine.log_lr / math.log(10), rel=1e-12)


def test_y_without_mutation__one_over_f_of_the_database_haplotype() -> None:
    res = family_power(case_of(y_system((0.0, 0.0)), None), "F", candidates=[["PC"]])
    (term,) = res.next[0].summary.lineage
    assert (term.system, term.links, term.method) == ("Y", 4, "exact")
    n = sum(Y_COUNTS)
    want: dict[float, float] = {}
    for c in Y_COUNTS:
        key = round(math.log10((n + 1) / (c + 1)), 10)
        want[key] = want.get(key, 0.0) + c / n
    assert_same_distribution(distribution(term.atoms_p, term.atoms_l), want)


def test_y_with_mutation__candidate_equals_exact_enumeration() -> None:
    rates = (0.03, 0.05)  # large, so that mutated outcomes carry weight
    res = family_power(case_of(y_system(rates), None), "F", candidates=[["PC"]])
    (term,) = res.next[0].summary.lineage
    n = sum(Y_COUNTS)
    want = brute_force_y(4, rates, [(h, c / n) for h, c in zip(Y_HAPS, Y_COUNTS, strict=True)])
    assert term.method == "exact"
    assert_same_distribution(distribution(term.atoms_p, term.atoms_l), want)


def test_y_typed_uncle__conditional_walk_and_engine_lr() -> None:
    rates = (0.03, 0.05)
    hap = Y_HAPS[2]
    case = case_of(y_system(rates), None, haplotypes={"UN": PersonHaplotypes(y=hap)})
    (term,) = family_power(case, "F").summary.lineage
    assert (term.reference, term.links) == ("UN", 3)
    assert_same_distribution(distribution(term.atoms_p, term.atoms_l), brute_force_y(3, rates, [(hap, 1.0)]))
    assert case.lineage is not None and case.lineage.y is not None
    engine = y_lineage_lr(PED, "MP", {"UN": hap}, hap, case.lineage.y)
    assert float(term.atoms_l.max()) == pytest.approx(engine.log_lr / math.log(10), rel=1e-12)


def test_y_simulation__seeded_and_within_error_of_the_exact_enumeration(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = (0.03, 0.05)
    case = case_of(y_system(rates), None)
    monkeypatch.setattr(power_lineage, "MAX_EXACT", 0)  # force the simulation
    settings = PowerSettings(lineage_nsim=20_000, seed=3)
    a = family_power(case, "F", candidates=[["PC"]], settings=settings).next[0].summary.lineage[0]
    b = family_power(case, "F", candidates=[["PC"]], settings=settings).next[0].summary.lineage[0]
    assert (a.method, a.nsim, a.seed) == ("simulation", 20_000, 4)
    assert np.array_equal(a.atoms_l, b.atoms_l) and np.array_equal(a.atoms_p, b.atoms_p)
    n = sum(Y_COUNTS)
    want = brute_force_y(4, rates, [(h, c / n) for h, c in zip(Y_HAPS, Y_COUNTS, strict=True)])
    mean = sum(p * v for v, p in want.items())
    sd = math.sqrt(sum(p * (v - mean) ** 2 for v, p in want.items()))
    assert abs(a.e_log10_lr - mean) < 5 * sd / math.sqrt(20_000)
    for cut in (0.0, 0.5, 1.0):  # P(log10 LR >= cut)
        q = sum(p for v, p in want.items() if v >= cut)
        got = float(a.atoms_p[a.atoms_l >= cut].sum())
        assert abs(got - q) < 5 * math.sqrt(q * (1 - q) / 20_000) + 1e-12


@pytest.mark.parametrize(("y", "mt", "best"), [(True, False, "PC"), (False, True, "MC")])
def test_ranking__the_cousin_on_the_line_the_kit_types_comes_first(y: bool, mt: bool, best: str) -> None:
    # autosomal power is weak: nobody typed, two first cousins, alike autosomally
    case = case_of(y_system() if y else None, mt_system() if mt else None)
    for rank_by in ("e_log10_lr", "inclusion"):
        settings = PowerSettings(rank_by=rank_by, rank_threshold=2.0, thresholds=(1.0, 2.0, 1e4))
        res = family_power(case, "F", candidates=[["PC"], ["MC"]], settings=settings)
        assert [c.name for c in res.next] == [best, "MC" if best == "PC" else "PC"]
        first, second = res.next
        assert first.summary.lineage and not second.summary.lineage
        auto = [math.fsum(m.e_log10_lr for m in c.summary.markers) for c in res.next]
        assert auto[0] == pytest.approx(auto[1], rel=1e-9)  # the lineage term decides
        assert first.summary.e_log10_lr == pytest.approx(auto[0] + first.summary.lineage[0].e_log10_lr)


def test_combined__inclusion_is_the_product_of_the_systems() -> None:
    # one typed aunt (mt) and one typed uncle (Y): the total LR is autosomal x Y x mt
    case = case_of(y_system(), mt_system(), genotypes={"UN": {m.name: ("1", "2") for m in MARKERS}},
                   haplotypes={"UN": PersonHaplotypes(y=Y_HAPS[0]), "AU": PersonHaplotypes(mt=MT_HAPS[0])})
    res = family_power(case, "F")
    s = res.summary
    assert [t.system for t in s.lineage] == ["Y", "mt"]
    auto = math.fsum(m.e_log10_lr for m in s.markers)
    assert s.e_log10_lr == pytest.approx(auto + sum(t.e_log10_lr for t in s.lineage), rel=1e-12)
    out = power_json([res])[0]
    assert set(out["lineage"]) == {"Y", "mt"}
    assert out["lineage"]["mt"]["links"] == 3 and out["lineage"]["Y"]["reference"] == "UN"


def test_case_without_lineage__no_lineage_in_the_output() -> None:
    res = family_power(case_of(None, None), "F", candidates=[["PC"], ["MC"]])
    assert "lineage" not in power_json([res])[0]
    assert all(not c.summary.lineage for c in res.next)


def test_cli_power__shows_the_lineage_terms(tmp_path: Path) -> None:
    from opendvi.io.case_json import write_case

    path = tmp_path / "case.json"
    write_case(case_of(y_system(), mt_system(), haplotypes={"AU": PersonHaplotypes(mt=MT_HAPS[0])}), path)
    table = run("power", str(path), "--candidates", "PC,MC")
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())  # the console wraps long lines
    assert "lineage mt: E[log10 LR]" in text and "the line of AU (3 links; exact)" in text
    assert "lineage E[log10 LR]" in text and "Y 0." in text
    out = run("power", str(path), "--format", "json", "--candidates", "PC,MC")
    r = json.loads(out.stdout)[0]
    assert r["lineage"]["mt"]["reference"] == "AU"
    pc = next(c for c in r["next"] if c["candidate"] == "PC")
    assert set(pc["lineage"]) == {"Y", "mt"} and pc["lineage"]["Y"]["links"] == 4
