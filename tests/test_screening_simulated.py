"""Screening == pairwise on simulated cases.

* 300 families x 300 remains (23 STRs, stepwise mutation, partial profiles
  with dropout, fragments, unknown sexes): every admissible pairing against
  the general engine (``marker_genotype_table`` per missing person and
  marker, no template), and a sample of pairings (every true one, plus 120
  drawn at random) against brute per-pair ``marker_loglik`` calls (all
  300 x 300 pairings that way would take most of an hour).
* Small cases for what the simulator does not make: theta, pairings,
  references typed at only some markers, references with dropout, a family
  whose pedigree is not a template.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from opendvi.core.case import Case, Family, Sample
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Individual, Pedigree, missing_person_family
from opendvi.core.simulate import simulate_profiles
from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.screening import screen, simulate_case
from opendvi.screening._shapes import match_template  # the template matcher itself (no public equivalent)

from .screening_reference import assert_same, brute_pairwise, screen_all


def default_markers() -> tuple[Marker, ...]:
    """The simulator's default markers: the demo case's 23 STRs."""
    return read_case(demo_case_path()).markers


@pytest.fixture(scope="module")
def case300() -> tuple[Case, object]:
    return simulate_case(families=300, remains=300, seed=20261125)


def _subcase(case: Case, pairs: list[tuple[str, str]]) -> Case:
    """The case restricted (by ``pairings``) to the given (remains, missing) pairs."""
    want: dict[str, list[str]] = {}
    for v, m in pairs:
        want.setdefault(v, []).append(m)
    fams = {m for _, m in pairs}
    families = tuple(f for f in case.families if set(f.missing) & fams)
    remains = tuple(r for r in case.remains if r.id in want)
    return replace(case, remains=remains, families=families, pairings={k: tuple(v) for k, v in want.items()})


@pytest.mark.slow
def test_simulated_300__all_pairings_match_general_engine(case300) -> None:  # type: ignore[no-untyped-def]
    case, _ = case300
    fast, fx = screen_all(case, shard_size=128)
    slow, sx = screen_all(case, use_templates=False)
    assert sum(len(v) for v in fast.values()) > 40_000
    assert_same(fast, slow, rel=1e-12)
    assert fx == sx


@pytest.mark.slow
def test_simulated_300__sampled_pairings_match_brute_engine(case300) -> None:  # type: ignore[no-untyped-def]
    case, truth = case300
    fast, fx = screen_all(case)
    rng = np.random.default_rng(7)
    all_pairs = [(v, m) for v, row in fast.items() for m in row]
    true_pairs = [(v, m) for v, m in all_pairs if truth.missing.get(v) == m]
    assert len(true_pairs) > 100
    sample = true_pairs + [all_pairs[int(i)] for i in rng.choice(len(all_pairs), 120, replace=False)]
    sub = _subcase(case, sample)
    want, want_x = brute_pairwise(sub)
    for v, row in want.items():
        for m, w in row.items():
            g = fast[v][m]
            assert (g == w) if math.isinf(w) else abs(math.expm1(g - w)) <= 1e-9, (v, m, g, w)
            assert fx[v][m] == want_x[v][m]


@pytest.mark.slow
def test_simulated_300__truth_is_found(case300) -> None:  # type: ignore[no-untyped-def]
    case, truth = case300
    res = screen(case, top=5, threshold=1e4)
    best = {}
    for v, m, s, _ in res.pairs():
        if v not in best:
            best[v] = (m, s)
    full = [v for v, k in truth.kind.items() if k == "missing" and case.remains_by_id(v).dropout == 0]
    hits = sum(1 for v in full if best.get(v, (None,))[0] == truth.missing[v])
    assert hits >= 0.9 * len(full)


@pytest.mark.slow
def test_simulated_300__templates_cover_most_missing_persons(case300) -> None:  # type: ignore[no-untyped-def]
    case, _ = case300
    n = sum(1 for f in case.families for m in f.missing if match_template(f, m) is not None)
    total = sum(len(f.missing) for f in case.families)
    assert n >= 0.95 * total


def _small_case(seed: int) -> Case:
    case, _ = simulate_case(families=12, remains=10, seed=seed, markers=default_markers()[:6])
    return case


def test_screen__theta_matches_brute() -> None:
    # the engine's theta correction enumerates the untyped founders' alleles,
    # so theta cases keep them few: parents typed, or one untyped parent
    markers = default_markers()[:5]
    rng = np.random.default_rng(3)
    fams, remains = [], []
    for k, rel in enumerate([{"father": "R1", "mother": "R2"}, {"mother": "R1", "full_sibling": ["R2"]},
                             {"father": "R1", "mother": "R2", "full_sibling": ["R3"]}]):
        ped = missing_person_family(rel, missing=f"M{k}")
        ped = ped.relabel({p: f"F{k}{p}" for p in ped.ids if p != f"M{k}"})
        sim = simulate_profiles(ped, markers, rng)
        fams.append(Family(id=f"F{k}", pedigree=ped,
                           genotypes={p: sim[p] for p in ped.ids if "R" in p}, missing=(f"M{k}",)))
        remains.append(Sample(f"V{k}", "M", sim[f"M{k}"]))
    remains.append(Sample("VD", None, {m.name: remains[0].genotypes[m.name][:1] for m in markers}, dropout=0.2))
    case = Case(name="theta", markers=markers, remains=tuple(remains), families=tuple(fams), theta=0.02)
    got, gx = screen_all(case)
    want, wx = brute_pairwise(case)
    assert_same(got, want)
    assert gx == wx


def test_screen__pairings_restrict_and_sex_still_applies() -> None:
    case = _small_case(4)
    v0, v1 = case.remains[0].id, case.remains[1].id
    mps = [m for f in case.families for m in f.missing]
    case = replace(case, pairings={v0: (mps[0], mps[3]), v1: ()})
    got, gx = screen_all(case)
    want, wx = brute_pairwise(case)
    assert_same(got, want)
    assert gx == wx
    assert set(got[v0]) <= {mps[0], mps[3]} and got[v1] == {}


def test_screen__unknown_sex_pairs_with_everyone() -> None:
    case = _small_case(5)
    case = replace(case, remains=tuple(replace(r, sex=None) for r in case.remains))
    got, _ = screen_all(case)
    n = sum(len(f.missing) for f in case.families)
    assert all(len(row) == n for row in got.values())


def test_screen__partial_references_dropout_and_non_template_families() -> None:
    case = _small_case(6)
    rng = np.random.default_rng(1)
    m = case.markers
    fams = list(case.families)
    # a reference typed at half the markers only
    f0 = fams[0]
    pid = next(iter(f0.genotypes))
    fams[0] = replace(f0, genotypes={**f0.genotypes, pid: {k: v for k, v in list(f0.genotypes[pid].items())[:3]}})
    # a reference with dropout and a one-allele genotype (general engine)
    f1 = fams[1]
    pid1 = next(iter(f1.genotypes))
    g1 = dict(f1.genotypes[pid1])
    g1[m[0].name] = (g1[m[0].name][0],)
    fams[1] = replace(f1, genotypes={**f1.genotypes, pid1: g1}, dropout={pid1: 0.2})
    # a looped pedigree: the missing person's parents are half siblings
    ped = Pedigree([
        Individual("L-GF", sex="M"), Individual("L-W1", sex="F"), Individual("L-W2", sex="F"),
        Individual("L-FA", "L-GF", "L-W1", "M"), Individual("L-MO", "L-GF", "L-W2", "F"),
        Individual("L-MP", "L-FA", "L-MO", "M"), Individual("L-S", "L-FA", "L-MO", "F"),
    ])
    sim = simulate_profiles(ped, m, rng)
    fams.append(Family(id="LOOP", pedigree=ped, genotypes={"L-GF": sim["L-GF"], "L-S": sim["L-S"]},
                       missing=("L-MP",)))
    # a family typed at no marker that the remains are typed at contributes LR 1
    ped2 = missing_person_family({"mother": "E-R1"}, missing="E-MP").relabel({"_FA": "E-FA"})
    fams.append(Family(id="EMPTY", pedigree=ped2, genotypes={}, missing=("E-MP",)))
    remains = (*case.remains, Sample("VL", "M", sim["L-MP"]))
    case = replace(case, families=tuple(fams), remains=remains)
    assert match_template(fams[1], fams[1].missing[0]) is None
    assert match_template(fams[-2], "L-MP") is None
    got, gx = screen_all(case)
    want, wx = brute_pairwise(case)
    assert_same(got, want)
    assert gx == wx
    assert all(row["E-MP"] == 0.0 for row in got.values() if "E-MP" in row)


def test_templates__every_simulated_single_missing_shape_is_templated() -> None:
    """The shapes of large operations all take the fast path (a guard on speed, not on values)."""
    from opendvi.screening._simulate import FAMILY_SHAPES, _relations_shape

    rng = np.random.default_rng(0)
    for _, rel in FAMILY_SHAPES:
        for _ in range(3):
            shape = _relations_shape(rel, rng)
            fam = Family(id="F", pedigree=shape.ped, genotypes={t: {"M": ("1", "2")} for t in shape.typed},
                         missing=tuple(shape.missing))
            assert match_template(fam, "MP") is not None, rel
