"""The fast engine against the brute-force enumerator (tests/brute_force.py).

Every named example below is a small pedigree at a 3- or 4-allele marker,
with several genotype configurations each (hand-picked ones, including
impossible ones, and a few simulated ones). The engine's ln L must agree with
full enumeration to 1e-12 relative (or both be -inf).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendvi.core.likelihood import marker_loglik, pedigree_loglik
from opendvi.core.markers import Marker
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.simulate import apply_dropout, simulate_marker

from .brute_force import Genotype, brute_force_likelihood, brute_force_loglik

REL_TOL = 1e-12


def ped(*rows: tuple[str, str | None, str | None, str]) -> Pedigree:
    return Pedigree(Individual(pid, fa, mo, sex) for pid, fa, mo, sex in rows)


def F(pid: str) -> tuple[str, None, None, str]:
    return (pid, None, None, "F")


def M(pid: str) -> tuple[str, None, None, str]:
    return (pid, None, None, "M")


# -- markers ---------------------------------------------------------------------
P3 = (0.2, 0.3, 0.5)
P4 = (0.1, 0.2, 0.3, 0.4)


def mk(
    female: MutationModel | None = None,
    male: MutationModel | None = None,
    *,
    alleles: Sequence[str] = ("1", "2", "3"),
    freqs: Sequence[float] = P3,
    chromosome: str = "autosomal",
) -> Marker:
    return Marker(
        name="M",
        alleles=tuple(alleles),
        frequencies=tuple(freqs),
        chromosome=chromosome,
        female=female,
        male=male if male is not None else female,
    )


NO_MUT = mk()
NO_MUT4 = mk(alleles=("1", "2", "3", "4"), freqs=P4)
EQUAL = mk(MutationModel("equal", rate=0.05))
EQUAL_STAT = mk(MutationModel("equal", rate=0.05, transform="stationary"))
PROP = mk(MutationModel("proportional", rate=0.02))
PROP_STAT4 = mk(
    MutationModel("proportional", rate=0.03, transform="stationary"), alleles=("1", "2", "3", "4"), freqs=P4
)
STEP_MICRO = mk(
    MutationModel("stepwise", rate=0.03, rate2=0.002, range=0.3),
    MutationModel("stepwise", rate=0.08, rate2=0.004, range=0.3),
    alleles=("9", "9.3", "10", "11"),
    freqs=P4,
)
STEP_MICRO_STAT = mk(
    MutationModel("stepwise", rate=0.03, rate2=0.002, range=0.3, transform="stationary"),
    alleles=("9", "9.3", "10", "11"),
    freqs=(0.25, 0.15, 0.35, 0.25),
)
ONESTEP = mk(MutationModel("onestep", rate=0.04), alleles=("10", "11", "12", "14"), freqs=P4)
ONESTEP_STAT = mk(MutationModel("onestep", rate=0.04, transform="stationary"), alleles=("10", "11", "12"), freqs=P3)
CUSTOM_ROWS = ((0.9, 0.06, 0.04), (0.1, 0.85, 0.05), (0.02, 0.08, 0.9))
CUSTOM = mk(MutationModel("custom", matrix_values=CUSTOM_ROWS))
CUSTOM_STAT = mk(MutationModel("custom", matrix_values=CUSTOM_ROWS, transform="stationary"))
SEXES_DIFFER = mk(MutationModel("equal", rate=0.01), MutationModel("proportional", rate=0.2))
X_NO_MUT = mk(chromosome="X")
X_MUT = mk(MutationModel("equal", rate=0.02), MutationModel("equal", rate=0.15), chromosome="X")
X_STEP4 = mk(
    MutationModel("stepwise", rate=0.05, rate2=0.0, range=0.5),
    MutationModel("stepwise", rate=0.1, rate2=0.0, range=0.5),
    alleles=("8", "9", "10", "11"),
    freqs=P4,
    chromosome="X",
)

# -- pedigrees --------------------------------------------------------------------
SINGLETON = ped(M("P"))
TRIO = ped(M("FA"), F("MO"), ("CH", "FA", "MO", "F"))
SIBS = ped(M("FA"), F("MO"), ("S1", "FA", "MO", "M"), ("S2", "FA", "MO", "F"))
HALF_SIBS = ped(M("FA"), F("M1"), F("M2"), ("H1", "FA", "M1", "M"), ("H2", "FA", "M2", "F"))
GRANDPARENT = ped(M("GF"), F("GM"), ("PA", "GF", "GM", "F"), M("SP"), ("GC", "SP", "PA", "M"))
GREAT_GRANDPARENT = ped(
    F("GGM"), M("GGF"), ("GP", "GGF", "GGM", "M"), F("GS"), ("PA", "GP", "GS", "M"), F("SP"), ("GC", "PA", "SP", "F")
)
AVUNCULAR = ped(M("GF"), F("GM"), ("PA", "GF", "GM", "M"), ("UN", "GF", "GM", "M"), F("SP"), ("NE", "PA", "SP", "M"))
FIRST_COUSINS = ped(
    M("GF"),
    F("GM"),
    ("P1", "GF", "GM", "M"),
    ("P2", "GF", "GM", "F"),
    F("W1"),
    M("H2"),
    ("C1", "P1", "W1", "M"),
    ("C2", "H2", "P2", "F"),
)
# first cousins C1 x C2 have an inbred child IN (a loop through GF/GM)
COUSIN_MARRIAGE = ped(
    M("GF"),
    F("GM"),
    ("P1", "GF", "GM", "M"),
    ("P2", "GF", "GM", "F"),
    F("W1"),
    M("H2"),
    ("C1", "P1", "W1", "M"),
    ("C2", "H2", "P2", "F"),
    ("IN", "C1", "C2", "M"),
)
# two brothers marry two sisters: their children D1, D2 are double first cousins
DOUBLE_FIRST_COUSINS = ped(
    M("A"),
    F("B"),
    M("C"),
    F("D"),
    ("B1", "A", "B", "M"),
    ("B2", "A", "B", "M"),
    ("S1", "C", "D", "F"),
    ("S2", "C", "D", "F"),
    ("D1", "B1", "S1", "M"),
    ("D2", "B2", "S2", "F"),
)
# paternal half siblings H1 x H2 have a child
HALF_SIB_MATING = ped(
    M("FA"), F("M1"), F("M2"), ("H1", "FA", "M1", "M"), ("H2", "FA", "M2", "F"), ("CH", "H1", "H2", "F")
)
# father x daughter: the smallest loop
FATHER_DAUGHTER_MATING = ped(M("FA"), F("MO"), ("DA", "FA", "MO", "F"), ("CH", "FA", "DA", "M"))
X_FATHER_DAUGHTER = ped(M("FA"), F("MO"), ("DA", "FA", "MO", "F"))
X_MOTHER_SON = ped(M("FA"), F("MO"), ("SO", "FA", "MO", "M"))
X_SISTERS = ped(M("FA"), F("MO"), ("D1", "FA", "MO", "F"), ("D2", "FA", "MO", "F"))
X_BROTHER_SISTER = ped(M("FA"), F("MO"), ("B", "FA", "MO", "M"), ("S", "FA", "MO", "F"))
# maternal grandfather -> granddaughter via an untyped mother
X_MATERNAL_GRANDFATHER = ped(M("GF"), F("GM"), ("MO", "GF", "GM", "F"), M("FA"), ("GD", "FA", "MO", "F"))
# paternal grandmother -> granddaughter via an untyped father
X_PATERNAL_GRANDMOTHER = ped(M("GF"), F("GM"), ("FA", "GF", "GM", "M"), F("MO"), ("GD", "FA", "MO", "F"))


@dataclass
class Example:
    name: str
    pedigree: Pedigree
    marker: Marker
    configs: list[dict[str, Genotype]]
    theta: float = 0.0
    dropout: Mapping[str, float] = field(default_factory=dict)
    simulate: int = 0  # extra simulated configurations
    typed: tuple[str, ...] = ()  # who is typed in the simulated ones
    any_impossible: bool = False  # at least one config must give -inf


EXAMPLES = [
    Example("singleton", SINGLETON, NO_MUT, [{"P": ("1", "2")}, {"P": ("3", "3")}, {"P": ("2",)}]),
    Example(
        "trio_no_mutation",
        TRIO,
        NO_MUT,
        [
            {"FA": ("1", "2"), "MO": ("2", "3"), "CH": ("1", "3")},
            {"FA": ("1", "2"), "CH": ("2", "2")},
            {"FA": ("1", "1"), "MO": ("2", "3"), "CH": ("3", "3")},  # exclusion
        ],
        any_impossible=True,
    ),
    Example(
        "trio_exclusion_explained_by_equal_mutation",
        TRIO,
        EQUAL,
        [{"FA": ("1", "1"), "MO": ("2", "3"), "CH": ("3", "3")}, {"FA": ("1", "2"), "CH": ("3", "3")}],
        simulate=2,
        typed=("FA", "CH"),
    ),
    Example(
        "full_siblings_untyped_parents_unobserved_allele",
        SIBS,
        NO_MUT4,
        [{"S1": ("1", "2"), "S2": ("1", "2")}, {"S1": ("1", "1"), "S2": ("2", "3")}, {"S2": ("4", "4")}],
    ),
    Example(
        "half_siblings_proportional",
        HALF_SIBS,
        PROP,
        [{"H1": ("1", "2"), "H2": ("2", "3")}, {"H1": ("1", "1"), "H2": ("3", "3"), "M1": ("2", "3")}],
        simulate=2,
        typed=("H1", "H2"),
    ),
    Example(
        "grandparent_untyped_parent_female_male_differ",
        GRANDPARENT,
        SEXES_DIFFER,
        [{"GF": ("1", "2"), "GC": ("1", "3")}, {"GM": ("3", "3"), "GC": ("1", "2"), "SP": ("1", "2")}],
        simulate=2,
        typed=("GF", "GC"),
    ),
    Example(
        "great_grandparent_untyped_intermediates",
        GREAT_GRANDPARENT,
        NO_MUT,
        [{"GGM": ("1", "2"), "GC": ("1", "3")}, {"GGF": ("3", "3"), "GC": ("2", "2")}],
    ),
    Example(
        "avuncular_stepwise_microvariant",
        AVUNCULAR,
        STEP_MICRO,
        [
            {"UN": ("9", "9.3"), "NE": ("9.3", "10"), "SP": ("10", "11")},
            {"UN": ("9", "10"), "NE": ("11", "11"), "SP": ("9.3", "10")},
            {"GF": ("9.3", "9.3"), "NE": ("9", "11"), "UN": ("9", "11"), "SP": ("9", "9")},
        ],
        simulate=2,
        typed=("UN", "NE", "SP"),
    ),
    Example(
        "grandparent_onestep_allele_without_neighbour",
        GRANDPARENT,
        ONESTEP,
        [
            {"GF": ("10", "11"), "GC": ("11", "14"), "SP": ("12", "12")},
            {"GF": ("14", "14"), "GC": ("12", "14"), "SP": ("10", "12")},
        ],
        simulate=2,
        typed=("GF", "GC", "SP"),
    ),
    Example(
        "first_cousins_equal",
        FIRST_COUSINS,
        EQUAL,
        [
            {"C1": ("1", "2"), "C2": ("2", "3"), "W1": ("1", "3"), "H2": ("3", "3")},
            {"C1": ("1", "1"), "C2": ("1", "1"), "W1": ("2", "3"), "H2": ("2", "3")},
        ],
    ),
    Example(
        "cousin_marriage_inbred_child_custom",
        COUSIN_MARRIAGE,
        CUSTOM,
        [
            {"IN": ("1", "1"), "GF": ("1", "2"), "GM": ("1", "3"), "W1": ("2", "2"), "H2": ("2", "3")},
            {"IN": ("2", "3"), "GF": ("1", "1"), "GM": ("3", "3"), "W1": ("1", "2"), "H2": ("1", "1")},
        ],
        simulate=1,
        typed=("IN", "GF", "GM", "W1", "H2"),
    ),
    Example(
        "cousin_marriage_inbred_child_no_mutation",
        COUSIN_MARRIAGE,
        NO_MUT,
        [
            {"IN": ("1", "1"), "GF": ("1", "2"), "W1": ("2", "3"), "H2": ("2", "3")},
            {"IN": ("3", "3"), "GF": ("1", "1"), "GM": ("2", "2"), "W1": ("2", "3"), "H2": ("2", "3")},
            {"IN": ("1", "1"), "GF": ("2", "2"), "GM": ("3", "3"), "W1": ("2", "3"), "H2": ("2", "3")},  # no 1
        ],
        any_impossible=True,
    ),
    Example(
        "double_first_cousins_equal",
        DOUBLE_FIRST_COUSINS,
        EQUAL,
        [
            {"D1": ("1", "2"), "D2": ("1", "2"), "A": ("1", "3"), "B": ("2", "2"), "C": ("1", "2"), "D": ("3", "3")},
            {"D1": ("3", "3"), "D2": ("1", "3"), "A": ("1", "2"), "B": ("1", "2"), "C": ("1", "2"), "D": ("1", "2")},
        ],
    ),
    Example(
        "double_first_cousins_no_mutation_4_alleles",
        DOUBLE_FIRST_COUSINS,
        NO_MUT4,
        [
            {"D1": ("1", "2"), "D2": ("1", "2"), "A": ("1", "3"), "B": ("2", "2"), "C": ("1", "2"), "D": ("3", "4")},
            {"D1": ("4", "4"), "D2": ("3", "4"), "A": ("1", "4"), "B": ("3", "4"), "C": ("4", "1"), "D": ("2", "4")},
        ],
    ),
    Example(
        "half_sib_mating_proportional_stationary",
        HALF_SIB_MATING,
        PROP_STAT4,
        [
            {"CH": ("1", "1"), "FA": ("1", "2"), "M1": ("3", "4"), "M2": ("1", "4")},
            {"CH": ("2", "3"), "H1": ("1", "2"), "M2": ("4", "4"), "FA": ("1", "4")},
        ],
        simulate=1,
        typed=("CH", "FA", "M1", "M2"),
    ),
    Example(
        "father_daughter_mating_equal_stationary",
        FATHER_DAUGHTER_MATING,
        EQUAL_STAT,
        [{"CH": ("1", "1"), "MO": ("2", "3")}, {"CH": ("2", "3"), "FA": ("1", "2")}],
    ),
    Example(
        "avuncular_stepwise_stationary",
        AVUNCULAR,
        STEP_MICRO_STAT,
        [
            {"UN": ("9", "9.3"), "NE": ("9.3", "10"), "SP": ("11", "11")},
            {"UN": ("11", "11"), "NE": ("9", "9"), "SP": ("9", "10")},
        ],
    ),
    Example(
        "grandparent_onestep_stationary",
        GRANDPARENT,
        ONESTEP_STAT,
        [{"GF": ("10", "11"), "GC": ("12", "12")}, {"GM": ("11", "12"), "GC": ("10", "11")}],
    ),
    Example(
        "half_siblings_custom_stationary",
        HALF_SIBS,
        CUSTOM_STAT,
        [{"H1": ("1", "2"), "H2": ("2", "3")}, {"H1": ("3", "3"), "H2": ("3", "3")}],
    ),
    Example(
        "x_father_daughter",
        X_FATHER_DAUGHTER,
        X_NO_MUT,
        [{"FA": ("1", "1"), "DA": ("1", "2")}, {"FA": ("1",), "DA": ("2", "3")}, {"FA": ("3", "3"), "DA": ("3", "3")}],
        any_impossible=True,
    ),
    Example(
        "x_mother_son_mutation",
        X_MOTHER_SON,
        X_MUT,
        [{"MO": ("1", "2"), "SO": ("2", "2")}, {"MO": ("1", "1"), "SO": ("3", "3"), "FA": ("2", "2")}],
        simulate=2,
        typed=("MO", "SO", "FA"),
    ),
    Example(
        "x_sisters_share_fathers_x",
        X_SISTERS,
        X_MUT,
        [{"D1": ("1", "2"), "D2": ("1", "3")}, {"D1": ("1", "1"), "D2": ("2", "3")}],
        simulate=1,
        typed=("D1", "D2"),
    ),
    Example(
        "x_brother_sister",
        X_BROTHER_SISTER,
        X_NO_MUT,
        [{"B": ("1", "1"), "S": ("1", "2")}, {"B": ("3", "3"), "S": ("1", "2")}, {"B": ("2",), "S": ("2", "2")}],
    ),
    Example(
        "x_maternal_grandfather_stepwise",
        X_MATERNAL_GRANDFATHER,
        X_STEP4,
        [{"GF": ("8", "8"), "GD": ("8", "10")}, {"GF": ("11", "11"), "GD": ("8", "9"), "FA": ("9", "9")}],
        simulate=2,
        typed=("GF", "GD", "FA"),
    ),
    Example(
        "x_paternal_grandmother",
        X_PATERNAL_GRANDMOTHER,
        X_NO_MUT,
        [{"GM": ("1", "2"), "GD": ("1", "3")}, {"GM": ("1", "1"), "GD": ("2", "3"), "MO": ("3", "3")}],
        any_impossible=True,
    ),
    Example(
        "x_cousin_marriage_loop",
        COUSIN_MARRIAGE,
        X_MUT,
        [
            {"IN": ("1", "1"), "GM": ("1", "2"), "W1": ("2", "3"), "H2": ("1", "1")},
            {"IN": ("2", "2"), "C2": ("1", "3"), "GF": ("2", "2"), "W1": ("3", "3")},
        ],
    ),
    Example(
        "theta_trio_untyped_mother",
        TRIO,
        NO_MUT,
        [{"FA": ("1", "2"), "CH": ("1", "3")}, {"FA": ("1", "1"), "CH": ("1", "1")}],
        theta=0.05,
    ),
    Example(
        "theta_full_siblings_untyped_parents",
        SIBS,
        NO_MUT4,
        [{"S1": ("1", "2"), "S2": ("1", "2")}, {"S1": ("3", "3"), "S2": ("3", "4")}],
        theta=0.1,
    ),
    Example(
        "theta_half_siblings_equal_mutation",
        HALF_SIBS,
        EQUAL,
        [{"H1": ("1", "2"), "H2": ("2", "3")}, {"H1": ("3", "3"), "H2": ("3", "3"), "M1": ("1", "3")}],
        theta=0.03,
    ),
    Example(
        "theta_x_sisters",
        X_SISTERS,
        X_NO_MUT,
        [{"D1": ("1", "2"), "D2": ("1", "3")}, {"D1": ("2", "2"), "D2": ("2", "2")}],
        theta=0.08,
    ),
    Example(
        "theta_cousin_marriage_loop",
        COUSIN_MARRIAGE,
        NO_MUT,
        [
            {"IN": ("1", "1"), "GF": ("1", "2"), "W1": ("1", "3"), "H2": ("2", "2")},
            {"IN": ("2", "3"), "C1": ("1", "2"), "W1": ("1", "1"), "H2": ("3", "3")},
        ],
        theta=0.02,
    ),
    Example(
        "dropout_trio_one_allele_child",
        TRIO,
        NO_MUT,
        [
            {"FA": ("1", "2"), "MO": ("2", "3"), "CH": ("1",)},  # het 1/2 or 1/3 with dropout, never 1/1
            {"FA": ("1", "2"), "MO": ("1", "3"), "CH": ("1",)},  # 1/1 possible too
            {"FA": ("2", "2"), "MO": ("3", "3"), "CH": ("1",)},  # impossible
        ],
        dropout={"CH": 0.2},
        any_impossible=True,
    ),
    Example(
        "dropout_two_allele_observations",
        SIBS,
        EQUAL,
        [
            {"S1": ("1", "2"), "S2": ("2", "2")},  # het seen whole: (1-d)^2; hom taken as such: 1-d^2
            {"S1": ("1",), "S2": ("2", "3"), "FA": ("1", "1")},
        ],
        dropout={"S1": 0.3, "S2": 0.1},
    ),
    Example(
        "dropout_grandparent_untyped_intermediate_mutation",
        GRANDPARENT,
        STEP_MICRO,
        [
            {"GF": ("9", "10"), "GC": ("9",), "SP": ("10", "11")},
            {"GF": ("11",), "GC": ("9.3", "11"), "SP": ("9.3", "9.3")},
        ],
        dropout={"GC": 0.25, "GF": 0.4},
        simulate=2,
        typed=("GF", "GC", "SP"),
    ),
    Example(
        "dropout_loop_half_sib_mating",
        HALF_SIB_MATING,
        NO_MUT,
        [{"CH": ("2",), "FA": ("1", "2")}, {"CH": ("3",), "H1": ("3",), "M2": ("1", "2")}],
        dropout={"CH": 0.15, "H1": 0.5},
    ),
    Example(
        "dropout_x_hemizygous_male",
        X_MOTHER_SON,
        X_NO_MUT,
        [{"MO": ("1",), "SO": ("1",)}, {"MO": ("2",), "SO": ("1", "1")}],
        dropout={"MO": 0.2, "SO": 0.3},
    ),
    Example(
        "dropout_theta_trio",
        TRIO,
        EQUAL,
        [{"FA": ("1",), "CH": ("1", "3")}, {"FA": ("2", "3"), "MO": ("3",), "CH": ("3",)}],
        theta=0.05,
        dropout={"FA": 0.2, "MO": 0.1, "CH": 0.3},
    ),
]


def _configs(ex: Example) -> list[dict[str, Genotype]]:
    out = list(ex.configs)
    rng = np.random.default_rng(20240501)
    for _ in range(ex.simulate):
        gts = simulate_marker(ex.pedigree, ex.marker, rng)
        chosen = {pid: gts[pid] for pid in ex.typed}
        if ex.dropout:
            chosen = {
                pid: (apply_dropout({"M": g}, ex.dropout[pid], rng).get("M") or g) if pid in ex.dropout else g
                for pid, g in chosen.items()
            }
        out.append(chosen)
    return out


def _agree(fast: float, slow: float) -> bool:
    if slow == -math.inf or fast == -math.inf:
        return fast == slow
    return abs(fast - slow) <= REL_TOL * max(1.0, abs(slow))


def test_brute_force__examples_cover_the_brief() -> None:
    assert len(EXAMPLES) >= 20
    assert any(ex.pedigree.has_loops() for ex in EXAMPLES)
    assert sum(ex.marker.is_x for ex in EXAMPLES) >= 5
    assert sum(ex.theta > 0 for ex in EXAMPLES) >= 4
    assert sum(bool(ex.dropout) for ex in EXAMPLES) >= 5
    models = {(m.model, m.transform) for ex in EXAMPLES for m in (ex.marker.female, ex.marker.male) if m is not None}
    for name in ("equal", "proportional", "stepwise", "onestep", "custom"):
        assert (name, None) in models
        assert (name, "stationary") in models


@pytest.mark.parametrize("ex", EXAMPLES, ids=[ex.name for ex in EXAMPLES])
def test_marker_loglik__agrees_with_brute_force(ex: Example) -> None:
    results = []
    for gts in _configs(ex):
        slow = brute_force_loglik(ex.pedigree, ex.marker, gts, theta=ex.theta, dropout=ex.dropout)
        fast = marker_loglik(ex.pedigree, ex.marker, gts, theta=ex.theta, dropout=ex.dropout)
        assert _agree(fast, slow), (gts, fast, slow)
        results.append(slow)
    if ex.any_impossible:
        assert -math.inf in results
    assert any(r > -math.inf for r in results)


@pytest.mark.parametrize("ex", EXAMPLES[:6], ids=[ex.name for ex in EXAMPLES[:6]])
def test_brute_force__untyped_pedigree_sums_to_one(ex: Example) -> None:
    # the enumerator itself: with nobody typed the genotype distribution sums to 1
    assert brute_force_likelihood(ex.pedigree, ex.marker, {}, theta=ex.theta) == pytest.approx(1.0, rel=1e-12)


def test_brute_force__sums_over_all_observations_to_one() -> None:
    # Summing P(observation) over every distinct observation of one person
    # ({a, b} seen, one peak {a} seen, nothing seen) gives 1: the observation
    # model is a distribution. (["a", "a"] is another way to write {a}.)
    d = 0.3
    marker = NO_MUT
    alleles = marker.alleles
    total = 0.0
    seen: list[Genotype] = []
    for i, a in enumerate(alleles):
        for b in alleles[i + 1 :]:
            seen.append((a, b))
        seen.append((a,))
    for g in seen:
        total += brute_force_likelihood(SINGLETON, marker, {"P": g}, dropout={"P": d})
    # P(nothing seen) = sum over hom p_a^2 d^2 + het 2 p_a p_b d^2
    total += d * d
    assert total == pytest.approx(1.0, rel=1e-12)


def test_brute_force__hardy_weinberg_singleton() -> None:
    # the enumerator's own closed forms: 2pq and p^2
    assert brute_force_likelihood(SINGLETON, NO_MUT, {"P": ("1", "2")}) == pytest.approx(2 * 0.2 * 0.3, rel=1e-15)
    assert brute_force_likelihood(SINGLETON, NO_MUT, {"P": ("3", "3")}) == pytest.approx(0.25, rel=1e-15)


@pytest.mark.parametrize("ex", EXAMPLES, ids=[ex.name for ex in EXAMPLES])
def test_pedigree_loglik__batched_markers_agree_with_brute_force(ex: Example) -> None:
    # pedigree_loglik eliminates markers of the same graph shape together
    # (padded to a common allele count): give every configuration two
    # markers typed alike, the example's and one with the frequencies reversed.
    second = replace(ex.marker, name="M_rev", frequencies=tuple(reversed(ex.marker.frequencies)))
    markers = [ex.marker, second]
    for gts in _configs(ex):
        genotypes = {pid: {m.name: g for m in markers} for pid, g in gts.items()}
        got = pedigree_loglik(ex.pedigree, markers, genotypes, theta=ex.theta, dropout=ex.dropout)
        for m in markers:
            slow = brute_force_loglik(ex.pedigree, m, gts, theta=ex.theta, dropout=ex.dropout)
            assert _agree(got.per_marker[m.name], slow), (m.name, gts, got.per_marker[m.name], slow)


def test_marker_loglik__theta_x_father_son_agrees_with_brute_force() -> None:
    # the son's X comes from his mother: L = p_1 whatever theta (one founder allele observed)
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("SO", "FA", "MO", "M")])
    gts = {"SO": ("1", "1")}
    slow = brute_force_loglik(ped, X_NO_MUT, gts, theta=0.02)
    assert slow == pytest.approx(math.log(0.2), rel=1e-12)
    assert _agree(marker_loglik(ped, X_NO_MUT, gts, theta=0.02), slow)


# -- random small pedigrees ---------------------------------------------------------------
_FUZZ_MODELS = [
    None,
    MutationModel("equal", rate=0.05),
    MutationModel("proportional", rate=0.03),
    MutationModel("stepwise", rate=0.04, rate2=0.01, range=0.4),
    MutationModel("onestep", rate=0.05),
    MutationModel("custom", matrix_values=CUSTOM_ROWS),
    MutationModel("equal", rate=0.05, transform="stationary"),
    MutationModel("stepwise", rate=0.04, rate2=0.002, range=0.4, transform="stationary"),
]


def _random_case(
    rnd: random.Random,
) -> tuple[Pedigree, Marker, dict[str, Genotype], dict[str, float], float]:
    """A random pedigree of 2-6 people (parents drawn among earlier people, so
    loops arise), a random 3-allele marker and random observations."""
    people: list[Individual] = []
    for i in range(rnd.randint(2, 6)):
        males = [p.id for p in people if p.sex == "M"]
        females = [p.id for p in people if p.sex == "F"]
        sex = rnd.choice("MF")
        if males and females and rnd.random() < 0.6:
            people.append(Individual(f"P{i}", rnd.choice(males), rnd.choice(females), sex))
        else:
            people.append(Individual(f"P{i}", sex=sex))
    rnd.shuffle(people)
    pedigree = Pedigree(people)
    alleles = rnd.choice([("9", "10", "11"), ("9", "9.3", "10"), ("10", "11", "13")])
    weights = [rnd.uniform(0.1, 1.0) for _ in alleles]
    chromosome = rnd.choice(["autosomal", "autosomal", "X"])
    female, male = rnd.choice(_FUZZ_MODELS), rnd.choice(_FUZZ_MODELS)
    if any(m is not None and m.model == "onestep" for m in (female, male)) and "9.3" in alleles:
        alleles = ("9", "10", "11")
    marker = Marker(
        "M",
        alleles,
        tuple(w / sum(weights) for w in weights),
        chromosome=chromosome,
        female=female,
        male=male,
    )
    theta = rnd.choice([0.0, 0.0, 0.05])
    gts: dict[str, Genotype] = {}
    dropout: dict[str, float] = {}
    for pid, sex in zip(pedigree.ids, pedigree.sex, strict=True):
        if rnd.random() < 0.55 or len(pedigree) - len(gts) > 4:
            if chromosome == "X" and sex == "M":
                a = rnd.choice(alleles)
                gts[pid] = rnd.choice([(a,), (a, a)])
            elif rnd.random() < 0.8:
                x, y = sorted([rnd.choice(alleles), rnd.choice(alleles)])
                gts[pid] = (x, y)
            else:
                gts[pid] = (rnd.choice(alleles),)
            if rnd.random() < 0.3:
                dropout[pid] = rnd.choice([0.1, 0.3])
    return pedigree, marker, gts, dropout, theta


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_marker_loglik__random_small_pedigrees_agree_with_brute_force(rnd: random.Random) -> None:
    pedigree, marker, gts, dropout, theta = _random_case(rnd)
    slow = brute_force_loglik(pedigree, marker, gts, theta=theta, dropout=dropout)
    fast = marker_loglik(pedigree, marker, gts, theta=theta, dropout=dropout)
    assert _agree(fast, slow), (pedigree.individuals, marker, gts, dropout, theta, fast, slow)
    batched = pedigree_loglik(pedigree, [marker], {p: {"M": g} for p, g in gts.items()}, theta=theta, dropout=dropout)
    assert _agree(batched.per_marker["M"], slow)
