"""Power planning: closed forms, a brute-force enumeration, "next relative"
rankings known by construction, the registry and the command line."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opendvi.core.case import Case, Family
from opendvi.core.markers import Marker, make_marker
from opendvi.core.pedigree import Individual, Pedigree, missing_person_family
from opendvi.core.simulate import simulate_profiles
from opendvi.power import (
    PowerError,
    PowerSettings,
    exact_inclusion,
    family_power,
    poisson_binomial,
    registry_power,
    simulated_inclusion,
)
from tests.brute_force import brute_force_likelihood
from tests.clikit import Result, run

FREQS = [0.12, 0.2, 0.08, 0.25, 0.3, 0.05]
ALLELES = ["8", "9", "10", "11", "12", "13"]


def _marker(name: str = "M") -> Marker:
    return make_marker(name, ALLELES, FREQS)


def _p(a: str) -> float:
    return FREQS[ALLELES.index(a)]


# ---------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------


def _duo_case(father: tuple[str, str]) -> Case:
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("MP", "FA", "MO", "M")])
    fam = Family("F1", ped, {"FA": {"M": father}}, missing=("MP",))
    return Case("duo", (_marker(),), families=(fam,))


@pytest.mark.parametrize("father", [("8", "10"), ("9", "12"), ("11", "11")])
def test_exclusion_power__paternity_duo_closed_form(father: tuple[str, str]) -> None:
    res = family_power(_duo_case(father), "F1")
    a, b = father
    want = (1 - _p(a)) ** 2 if a == b else (1 - _p(a) - _p(b)) ** 2
    assert abs(res.summary.ep_total - want) <= 1e-15
    if a != b:  # E[LR] = 1/2 + 1/(8 p_a) + 1/(8 p_b)
        assert res.summary.e_lr == pytest.approx(0.5 + 1 / (8 * _p(a)) + 1 / (8 * _p(b)), rel=1e-13)
    else:  # child a/a with prob p_a (LR 1/p_a), a/x with p_x (LR 1/(2 p_a)): E[LR] = 1 + (1 - p_a) / (2 p_a)
        assert res.summary.e_lr == pytest.approx(1 + (1 - _p(a)) / (2 * _p(a)), rel=1e-13)


@pytest.mark.parametrize(
    ("father", "mother", "compatible"),
    [
        (("8", "9"), ("10", "11"), [("8", "10"), ("8", "11"), ("9", "10"), ("9", "11")]),
        (("8", "9"), ("10", "10"), [("8", "10"), ("9", "10")]),
        (("8", "9"), ("8", "12"), [("8", "8"), ("8", "12"), ("8", "9"), ("9", "12")]),
        (("13", "13"), ("13", "13"), [("13", "13")]),
    ],
)
def test_exclusion_power__trio_closed_form(father: tuple[str, str], mother: tuple[str, str],
                                           compatible: list[tuple[str, str]]) -> None:
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("MP", "FA", "MO", "F")])
    fam = Family("F1", ped, {"FA": {"M": father}, "MO": {"M": mother}}, missing=("MP",))
    res = family_power(Case("trio", (_marker(),), families=(fam,)), "F1")
    hw = sum(_p(a) ** 2 if a == b else 2 * _p(a) * _p(b) for a, b in compatible)
    assert abs(res.summary.ep_total - (1 - hw)) <= 1e-15
    # the LR of a compatible genotype is P(g | parents) / HW(g)
    assert res.summary.markers[0].n_possible == len(compatible)


def test_no_reference_typed__power_is_nil_and_lr_is_one() -> None:
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("MP", "FA", "MO", "M")])
    fam = Family("F1", ped, {}, missing=("MP",))
    res = family_power(Case("none", (_marker(),), families=(fam,)), "F1")
    assert res.summary.ep_total == 0 and res.summary.e_log10_lr == 0 and res.summary.e_lr == 1
    assert res.summary.inclusion.as_dict() == {"1": 1.0, "10": 0.0, "100": 0.0, "1000": 0.0, "1e4": 0.0,
                                               "1e5": 0.0, "1e6": 0.0}


def test_poisson_binomial__against_enumeration() -> None:
    ps = [0.1, 0.5, 0.77, 0.3]
    want = np.zeros(5)
    for bits in itertools.product((0, 1), repeat=4):
        want[sum(bits)] += math.prod(p if b else 1 - p for p, b in zip(ps, bits, strict=True))
    np.testing.assert_allclose(poisson_binomial(ps), want, atol=1e-15)


def test_exact_inclusion__interval_holds_the_truth_and_shrinks_with_the_grid() -> None:
    rng = np.random.default_rng(3)
    atoms = []
    for _ in range(6):
        p = rng.random(7)
        atoms.append((p / p.sum(), rng.normal(0.6, 0.8, 7)))
    truth = np.zeros(7)  # enumerate 7^6 combinations
    idx = np.array(list(itertools.product(range(7), repeat=6)))
    prob = np.prod([atoms[k][0][idx[:, k]] for k in range(6)], axis=0)
    tot = np.sum([atoms[k][1][idx[:, k]] for k in range(6)], axis=0)
    thr = (1.0, 10.0, 100.0, 1000.0, 1e4, 1e5, 1e6)
    for i, t in enumerate(thr):
        truth[i] = prob[tot >= math.log10(t)].sum()
    coarse = exact_inclusion(atoms, thr, grid=0.05)
    fine = exact_inclusion(atoms, thr, grid=1e-4)
    for inc in (coarse, fine):
        assert inc.lower is not None and inc.upper is not None and inc.bound is not None
        assert np.all(inc.lower - 1e-12 <= truth) and np.all(truth <= inc.upper + 1e-12)
        assert np.all(np.abs(inc.ip - truth) <= inc.bound)
    assert fine.bound is not None and coarse.bound is not None and fine.bound.max() < coarse.bound.max()
    sim = simulated_inclusion(atoms, thr, nsim=200_000, seed=7)
    assert sim.se is not None
    assert np.all(np.abs(sim.ip - truth) <= 5 * sim.se + 1e-12)


# ---------------------------------------------------------------------------
# brute force: every quantity by enumerating the genotypes of the candidate
# and of the missing person, with the brute-force likelihood
# ---------------------------------------------------------------------------


def _small_family() -> tuple[Case, Family]:
    """Grandmother GM typed; her son FA untyped; MP the son of FA and MO."""
    ped = Pedigree([
        Individual("GF", sex="M"), Individual("GM", sex="F"), Individual("FA", "GF", "GM", "M"),
        Individual("MO", sex="F"), Individual("MP", "FA", "MO", "M"),
    ])
    m1 = make_marker("A", ["1", "2", "3"], [0.2, 0.3, 0.5])
    m2 = make_marker("B", ["1", "2"], [0.35, 0.65])
    fam = Family("F", ped, {"GM": {"A": ("1", "2"), "B": ("1", "1")}}, missing=("MP",))
    return Case("small", (m1, m2), families=(fam,)), fam


def _classes(m: Marker) -> list[tuple[str, str]]:
    a = m.alleles
    return [(a[i], a[j]) for i in range(len(a)) for j in range(i, len(a))]


def _hw(m: Marker, g: tuple[str, str]) -> float:
    pa, pb = m.p[m.index[g[0]]], m.p[m.index[g[1]]]
    return float(pa * pb if g[0] == g[1] else 2 * pa * pb)


def _brute(case: Case, fam: Family, cand: str | None) -> dict[str, Any]:
    """E[EP] per marker, E[log10 LR] and the exact IP, by enumeration."""
    per_marker = []
    for m in case.markers:
        refs = {pid: g[m.name] for pid, g in fam.genotypes.items() if m.name in g}
        p_refs = brute_force_likelihood(fam.pedigree, m, refs)
        configs: list[dict[str, tuple[str, str]]] = [{}] if cand is None else [{cand: g} for g in _classes(m)]
        atoms: list[tuple[float, float]] = []
        e_ep = 0.0
        for cfg in configs:
            p_cfg = brute_force_likelihood(fam.pedigree, m, {**refs, **cfg})
            if p_cfg == 0.0:
                continue
            w = p_cfg / p_refs
            ep = 0.0
            for g in _classes(m):
                pg = brute_force_likelihood(fam.pedigree, m, {**refs, **cfg, "MP": g}) / p_cfg
                if pg == 0.0:
                    ep += _hw(m, g)
                else:
                    atoms.append((w * pg, math.log10(pg / _hw(m, g))))
            e_ep += w * ep
        per_marker.append((e_ep, atoms))
    e_l = sum(p * lv for _, atoms in per_marker for p, lv in atoms)
    ip = []
    for t in (1.0, 10.0, 100.0):
        tot = 0.0
        for combo in itertools.product(*(atoms for _, atoms in per_marker)):
            if sum(lv for _, lv in combo) >= math.log10(t) - 1e-12:
                tot += math.prod(p for p, _ in combo)
        ip.append(tot)
    return {"ep": [e for e, _ in per_marker], "e_log10_lr": e_l, "ip": ip}


@pytest.mark.parametrize("cand", [None, "FA", "GF", "MO"])
def test_brute_force__family_and_candidates(cand: str | None) -> None:
    case, fam = _small_family()
    want = _brute(case, fam, cand)
    settings = PowerSettings(thresholds=(1.0, 10.0, 100.0), with_kept=False)
    res = family_power(case, "F", candidates=[[cand]] if cand else [], settings=settings)
    s = res.next[0].summary if cand else res.summary
    for m, ep in zip(s.markers, want["ep"], strict=True):
        assert abs(m.ep - ep) <= 1e-12
    assert abs(s.e_log10_lr - want["e_log10_lr"]) <= 1e-12
    assert s.inclusion.bound is not None
    assert np.all(np.abs(s.inclusion.ip - np.array(want["ip"])) <= s.inclusion.bound)


def test_brute_force__ranking_equals_enumeration() -> None:
    case, fam = _small_family()
    cands = ["FA", "GF", "MO"]
    want = sorted(cands, key=lambda c: -_brute(case, fam, c)["e_log10_lr"])
    res = family_power(case, "F", candidates=[[c] for c in cands], settings=PowerSettings(with_kept=False))
    assert [c.name for c in res.next] == want
    assert want[-1] == "GF"  # either parent beats the second grandparent


# ---------------------------------------------------------------------------
# rankings known by construction (realistic markers, simulated references)
# ---------------------------------------------------------------------------


def _panel(k: int = 10) -> tuple[Marker, ...]:
    from opendvi.io.case_json import read_case
    from tests.conftest import REFERENCE

    return read_case(REFERENCE / "power" / "pub-pow-03.json").markers[:k]


def _family(relatives: dict[str, Any], typed: list[str], seed: int) -> tuple[Case, Family]:
    ped = missing_person_family(relatives)
    markers = _panel()
    gts = simulate_profiles(ped, markers, np.random.default_rng(seed), ids=typed)
    fam = Family("F", ped, gts, missing=("MP",))
    return Case("c", markers, families=(fam,)), fam


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ranking__a_second_parent_beats_a_grandparent(seed: int) -> None:
    case, _ = _family({"mother": "MO", "paternal_grandfather": "PGF", "maternal_grandmother": "MGM"},
                      ["MO"], seed)
    res = family_power(case, "F", candidates=[["PGF"], ["_FA"], ["MGM"]], settings=PowerSettings(with_kept=False))
    names = [c.name for c in res.next]
    assert names[0] == "_FA"
    assert names.index("_FA") < names.index("PGF")
    # the mother is typed: her own mother adds nothing
    mgm = next(c for c in res.next if c.name == "MGM").summary
    assert abs(mgm.e_log10_lr - res.summary.e_log10_lr) <= 1e-10


@pytest.mark.parametrize("seed", [1, 2])
def test_ranking__a_full_sibling_beats_a_half_sibling(seed: int) -> None:
    case, _ = _family({"paternal_uncle": ["UN"], "full_sibling": ["SIB"], "paternal_half_sibling": ["HS"]},
                      ["UN"], seed)
    res = family_power(case, "F", candidates=[["HS"], ["SIB"]], settings=PowerSettings(with_kept=False))
    assert [c.name for c in res.next] == ["SIB", "HS"]
    for c in res.next:
        assert c.summary.e_log10_lr > res.summary.e_log10_lr


def test_candidate_sets__both_grandparents_beat_one() -> None:
    case, _ = _family({"paternal_uncle": ["UN"], "paternal_grandfather": "PGF", "paternal_grandmother": "PGM"},
                      ["UN"], 4)
    res = family_power(case, "F", candidates=[["PGF"], ["PGF", "PGM"]], settings=PowerSettings(with_kept=False))
    assert [c.name for c in res.next] == ["PGF+PGM", "PGF"]
    assert res.next[0].summary.ep_total > 0.5 > res.next[1].summary.ep_total


def test_candidates__bad_ones_are_errors() -> None:
    case, _ = _family({"mother": "MO"}, ["MO"], 1)
    with pytest.raises(PowerError, match="not in the pedigree"):
        family_power(case, "F", candidates=[["Nobody"]])
    with pytest.raises(PowerError, match="already typed"):
        family_power(case, "F", candidates=[["MO"]])
    with pytest.raises(PowerError, match="missing person"):
        family_power(case, "F", candidates=[["MP"]])


def test_theta__makes_shared_alleles_less_telling() -> None:
    case, _ = _family({"mother": "MO"}, ["MO"], 5)
    from dataclasses import replace

    a = family_power(case, "F", settings=PowerSettings(with_kept=False))
    b = family_power(replace(case, theta=0.02), "F", settings=PowerSettings(with_kept=False))
    assert b.summary.e_log10_lr < a.summary.e_log10_lr  # theta makes shared alleles less telling
    assert b.summary.ep_total == pytest.approx(a.summary.ep_total, abs=0.05)


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------


def test_registry__rows_equal_family_power_and_weak_rows_get_a_next_relative() -> None:
    from opendvi.screening import simulate_case

    case, _ = simulate_case(families=40, remains=0, seed=11)
    res = registry_power(case, level=0.95)
    assert len(res.rows) == sum(len(f.missing) for f in case.families)
    assert res.stats.n_template > 0
    for row in res.rows[:25]:
        fp = family_power(case, row.family, row.missing, settings=PowerSettings(with_kept=False))
        assert abs(fp.summary.ep_total - row.ep_total) <= 1e-12
        assert abs(fp.summary.e_log10_lr - row.e_log10_lr) <= 1e-10
        assert abs(fp.summary.sd_log10_lr - row.sd_log10_lr) <= 1e-10
        assert fp.summary.inclusion.bound is not None
        for i, (k, v) in enumerate(row.inclusion.items()):
            assert abs(v - fp.summary.inclusion.ip[i]) <= row.inclusion_bound[k] + fp.summary.inclusion.bound[i]
    for row in res.rows:
        lo, hi = row.inclusion["1e4"] - row.inclusion_bound["1e4"], row.inclusion["1e4"] + row.inclusion_bound["1e4"]
        assert row.weak == (row.inclusion["1e4"] < 0.95)
        assert not (lo < 0.95 <= hi) or row.inclusion_bound["1e4"] < 5e-3  # straddlers were refined
    weak = res.weak()
    assert weak and all(r.next_candidate for r in weak)
    assert [r.inclusion["1e4"] for r in weak] == sorted(r.inclusion["1e4"] for r in weak)
    for r in weak:
        assert r.next_inclusion is not None and r.next_inclusion >= r.inclusion["1e4"] - 2e-2


@pytest.mark.slow
def test_registry__batched_next_relative_equals_the_per_family_path() -> None:
    """300 simulated families (stepwise mutation, so some markers keep their
    model and take the per-item path): the batched "next relative" of every
    weak row equals family_power's ranking to floating-point rounding."""
    from opendvi.screening import simulate_case

    case, _ = simulate_case(families=300, remains=0, seed=7)
    fast = registry_power(case, level=0.95, next_batched=True)
    slow = registry_power(case, level=0.95, next_batched=False)
    assert fast.stats.n_next == slow.stats.n_next >= 30
    for a, b in zip(fast.rows, slow.rows, strict=True):
        assert (a.family, a.missing, a.weak) == (b.family, b.missing, b.weak)
        assert a.next_candidate == b.next_candidate
        if a.next_candidate is None:
            continue
        assert a.next_e_log10_lr is not None and b.next_e_log10_lr is not None
        assert a.next_inclusion is not None and b.next_inclusion is not None
        assert a.next_exclusion is not None and b.next_exclusion is not None
        assert abs(a.next_e_log10_lr - b.next_e_log10_lr) <= 1e-12
        assert abs(a.next_inclusion - b.next_inclusion) <= 1e-12
        assert abs(a.next_exclusion - b.next_exclusion) <= 1e-12


def test_batch_exact_inclusion__equals_exact_inclusion_row_by_row() -> None:
    from opendvi.power._next import _Grid, batch_exact_inclusion  # the batched kernel itself (not public)

    rng = np.random.default_rng(5)
    h, B, nm = 0.01, 40, 6
    rows: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for _ in range(B):
        atoms = []
        for j in range(nm):
            g = int(rng.integers(1, 9)) if j else 1  # marker 0: one atom (a constant)
            p = rng.random(g)
            lv = rng.normal(0.3, 1.0, g) if j != 1 else np.full(g, 0.7)  # marker 1: one value
            atoms.append((p / p.sum(), lv))
        rows.append(atoms)
    grids = []
    for j in range(nm):
        gj = _Grid.empty(B)
        width = max(len(r[j][0]) for r in rows)
        P = np.zeros((B, width))
        L = np.zeros((B, width))
        for b, r in enumerate(rows):
            P[b, : len(r[j][0])], L[b, : len(r[j][1])] = r[j]
        gj.add(np.arange(B), P, L, h)
        grids.append(gj)
    ts = (1.0, 10.0, 1e3)
    mid, bound = batch_exact_inclusion(grids, np.arange(B), ts, h)
    for b, r in enumerate(rows):
        want = exact_inclusion(r, ts, grid=h, max_bins=1 << 62)
        assert want.bound is not None
        assert np.max(np.abs(mid[b] - want.ip)) <= 1e-12
        assert np.max(np.abs(bound[b] - want.bound)) <= 1e-12


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------


def _run(*args: str) -> Result:
    return run(*args)


def test_cli_power__json_shape(tmp_path: Path) -> None:
    from tests.conftest import REFERENCE

    path = REFERENCE / "power" / "pub-pow-06.json"
    out = _run("power", str(path), "--format", "json", "--candidates", "Mother,Sib+Mother2")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert isinstance(data, list) and len(data) == 1
    r = data[0]
    assert {"family", "missing", "exclusion", "lr", "inclusion", "method", "next"} <= set(r)
    assert (r["family"], r["missing"], r["method"]) == ("FAM", "MP", "exact")
    assert {"per_marker", "total", "expected_mismatch"} <= set(r["exclusion"])
    assert {"per_marker", "e_log10_lr", "sd_log10_lr", "e_lr"} <= set(r["lr"])
    assert list(r["inclusion"]) == ["1", "10", "100", "1000", "1e4", "1e5", "1e6"]
    assert [c["candidate"] for c in r["next"]] == ["Mother", "Sib+Mother2"]
    assert {"candidate", "exclusion_total", "e_log10_lr", "inclusion"} <= set(r["next"][0])
    table = _run("power", str(path), "--candidates", "Sib")
    assert table.returncode == 0 and "next relative" in table.stdout and "Sib" in table.stdout
    sim = _run("power", str(path), "--format", "json", "--method", "simulation", "--nsim", "2000", "--seed", "3")
    s = json.loads(sim.stdout)[0]
    assert s["method"] == "simulation" and s["seed"] == 3 and s["nsim"] == 2000 and "inclusion_se" in s


def test_cli_power__bad_candidate_is_one_line(tmp_path: Path) -> None:
    from tests.conftest import REFERENCE

    out = _run("power", str(REFERENCE / "power" / "pub-pow-06.json"), "--candidates", "Nobody")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Nobody" in out.stderr and "Traceback" not in out.stderr


def test_cli_power_registry__csv_and_json(tmp_path: Path) -> None:
    store = tmp_path / "reg.npz"
    assert _run("simulate", "--families", "12", "--remains", "0", "--seed", "2", "-o", str(store)).returncode == 0
    csv_path = tmp_path / "rows.csv"
    out = _run("power-registry", str(store), "--level", "0.99", "-o", str(csv_path), "--format", "json",
               "--next-limit", "2", "--workers", "2")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["n_families"] == len(csv_path.read_text().splitlines()) - 1
    assert all(w["weak"] for w in data["weak"])
    assert sum(1 for w in data["weak"] if w["next_candidate"]) <= 2


def test_x_marker__father_daughter_and_mother_son() -> None:
    mx = make_marker("X1", ALLELES, FREQS, chromosome="X")
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("D", "FA", "MO", "F"),
                    Individual("S", "FA", "MO", "M")])
    # a daughter carries her father's X allele: genotypes without it are excluded, (1 - p_a)^2
    fam = Family("F1", ped, {"FA": {"X1": ("9", "9")}}, missing=("D", "S"))
    case = Case("x", (mx,), families=(fam,))
    d = family_power(case, "F1", "D")
    assert abs(d.summary.ep_total - (1 - _p("9")) ** 2) <= 1e-15
    # a son gets nothing from his father at X: no power at all
    s = family_power(case, "F1", "S")
    assert s.summary.ep_total == 0 and abs(s.summary.e_log10_lr) <= 1e-15
    # from a typed mother a son (one allele) must carry one of hers
    fam2 = Family("F2", ped, {"MO": {"X1": ("8", "12")}}, missing=("S",))
    s2 = family_power(Case("x", (mx,), families=(fam2,)), "F2", "S")
    assert abs(s2.summary.ep_total - (1 - _p("8") - _p("12"))) <= 1e-15
    assert s2.markers[0].n_genotypes == len(ALLELES)


# ---------------------------------------------------------------------------
# a family whose references are impossible: the core rule (core.rules)
# ---------------------------------------------------------------------------


def _impossible_case() -> Case:
    """F1: father 8/8 and mother 9/9 with a typed child 10/10 at M2 (no
    mutation model): the references are impossible there; F2 is fine."""
    def ped(x: str) -> Pedigree:
        return Pedigree([Individual(f"{x}FA", sex="M"), Individual(f"{x}MO", sex="F"),
                         Individual(f"{x}C1", f"{x}FA", f"{x}MO", "F"), Individual(f"{x}MP", f"{x}FA", f"{x}MO", "M")])

    bad = Family("F1", ped("a"), {"aFA": {"M1": ("8", "9"), "M2": ("8", "8")},
                                  "aMO": {"M1": ("9", "9"), "M2": ("9", "9")},
                                  "aC1": {"M1": ("9", "9"), "M2": ("10", "10")}}, missing=("aMP",))
    good = Family("F2", ped("b"), {"bFA": {"M1": ("8", "9"), "M2": ("8", "8")}, "bMO": {"M2": ("9", "9")}},
                  missing=("bMP",))
    return Case("impossible", (_marker("M1"), _marker("M2")), families=(bad, good))


def test_impossible_references__the_family_is_skipped_with_the_core_rules_note() -> None:
    from opendvi.core.rules import unevaluable_family, unevaluable_family_note
    from opendvi.power import UnevaluableFamily, case_power

    case = _impossible_case()
    want = unevaluable_family_note("F1", ["M2"])
    with pytest.raises(UnevaluableFamily) as err:
        family_power(case, "F1")
    assert str(err.value) == want and err.value.markers == ("M2",)
    skipped: list[str] = []
    res = case_power(case, skipped=skipped)
    assert [r.family for r in res] == ["F2"] and skipped == [want]
    assert unevaluable_family(skipped[0]) == ("F1", ("M2",))
    reg = registry_power(case, level=0.99)
    assert [r.family for r in reg.rows] == ["F2"] and want in reg.notes and reg.stats.n_skipped == 1
    assert reg.rows[0].ep_total == pytest.approx(family_power(case, "F2").summary.ep_total, abs=1e-12)
    # the general engine (theta > 0) follows the same rule
    from dataclasses import replace

    reg_t = registry_power(replace(case, theta=0.01), level=0.99, next_relative=False)
    assert [r.family for r in reg_t.rows] == ["F2"] and want in reg_t.notes


def test_cli_power__impossible_family_is_a_note(tmp_path: Path) -> None:
    from opendvi.io.case_json import write_case

    path = tmp_path / "case.json"
    write_case(_impossible_case(), path)
    out = _run("power", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert [r["family"] for r in json.loads(out.stdout)] == ["F2"]
    assert "family F1: the references are impossible at marker M2" in out.stderr


def test_lr_distribution_png__a_code_with_dollars_is_drawn_plain() -> None:
    """Family codes come from imported files: ``$`` in one is no mathtext (it made the PNG fail)."""
    from dataclasses import replace

    from opendvi.data import demo_case_path
    from opendvi.io.case_json import read_case
    from opendvi.power import PowerSettings, family_power
    from opendvi.power.plot import lr_distribution_png

    case = read_case(Path(demo_case_path()))
    fam = replace(case.family("F5"), id="F$\\frac$")
    res = family_power(case, fam, fam.missing[0], settings=PowerSettings(rank_by="inclusion"))
    png = lr_distribution_png(res)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
