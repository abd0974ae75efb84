"""The engine against likelihoods derived by hand, from first principles.

Each test states its derivation in a comment. Frequencies are chosen so that
no two formulas coincide by accident. Tolerance: 1e-12 relative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from opendvi.core.likelihood import marker_loglik
from opendvi.core.markers import Marker, make_marker
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import (
    Individual,
    Pedigree,
    avuncular,
    cousins,
    full_siblings,
    grandparent,
    half_siblings,
    parent_child,
    singleton,
)
from opendvi.core.profiles import Genotype

REL = 1e-12
PA, PB, PC, PD = 0.1, 0.2, 0.3, 0.4
MARKER = make_marker("M", ["a", "b", "c", "d"], [PA, PB, PC, PD])
X_MARKER = make_marker("MX", ["a", "b", "c", "d"], [PA, PB, PC, PD], chromosome="X")


def lik(ped: Pedigree, gts: Mapping[str, Genotype], marker: Marker = MARKER, **kw: object) -> float:
    return math.exp(marker_loglik(ped, marker, gts, **kw))  # type: ignore[arg-type]


def lr(ped: Pedigree, x: str, gx: Genotype, y: str, gy: Genotype, marker: Marker = MARKER) -> float:
    """LR(x and y related as in ped : unrelated) with everybody else untyped."""
    related = marker_loglik(ped, marker, {x: gx, y: gy})
    unrelated = marker_loglik(
        Pedigree([Individual(x, sex=ped.sex[ped.index(x)]), Individual(y, sex=ped.sex[ped.index(y)])]),
        marker,
        {x: gx, y: gy},
    )
    return math.exp(related - unrelated)


# -- Hardy-Weinberg -----------------------------------------------------------------
def test_marker_loglik__singleton_heterozygote_is_2pq() -> None:
    assert lik(singleton("P"), {"P": ("a", "c")}) == pytest.approx(2 * PA * PC, rel=REL)


def test_marker_loglik__singleton_homozygote_is_p_squared() -> None:
    assert lik(singleton("P"), {"P": ("d", "d")}) == pytest.approx(PD**2, rel=REL)


def test_marker_loglik__two_unrelated_people_multiply() -> None:
    ped = Pedigree([Individual("X", sex="M"), Individual("Y", sex="F")])
    assert lik(ped, {"X": ("a", "b"), "Y": ("c", "c")}) == pytest.approx(2 * PA * PB * PC**2, rel=REL)


# -- paternity index ----------------------------------------------------------------
def test_paternity_index__heterozygous_father() -> None:
    # Father a/b, child a/c, mother untyped. The child's c must come from the
    # mother (p_c) and its a from the father (1/2): P(F, C) = 2 p_a p_b * p_c / 2.
    # Unrelated: 2 p_a p_b * 2 p_a p_c.  PI = 1 / (4 p_a).
    # (The brief's "1 / (2 p_a)" is the index for a homozygous father a/a: next test.)
    ped = parent_child(parent_sex="M")
    assert lr(ped, "P", ("a", "b"), "C", ("a", "c")) == pytest.approx(1 / (4 * PA), rel=REL)


def test_paternity_index__homozygous_father() -> None:
    # Father a/a passes a with probability 1: P(F, C) = p_a^2 * p_c;
    # unrelated p_a^2 * 2 p_a p_c.  PI = 1 / (2 p_a).
    ped = parent_child(parent_sex="M")
    assert lr(ped, "P", ("a", "a"), "C", ("a", "c")) == pytest.approx(1 / (2 * PA), rel=REL)


def test_paternity_index__child_shares_both_alleles_with_father() -> None:
    # Father a/b, child a/b: child got a from father and b from mother, or b
    # and a: P(C | F) = (p_b + p_a) / 2.  PI = (p_a + p_b) / (4 p_a p_b).
    ped = parent_child(parent_sex="M")
    assert lr(ped, "P", ("a", "b"), "C", ("a", "b")) == pytest.approx((PA + PB) / (4 * PA * PB), rel=REL)


def test_paternity_index__exclusion_is_zero() -> None:
    ped = parent_child(parent_sex="M")
    assert marker_loglik(ped, MARKER, {"P": ("a", "b"), "C": ("c", "d")}) == -math.inf


def test_paternity_index__trio_with_mother() -> None:
    # Mother b/c, child a/c, alleged father a/d: the child's a is paternal
    # (the mother has none), so c is maternal (1/2) and a paternal (1/2):
    # P(C | F, M) = 1/4; unrelated father: P(C | M) = p_a / 2.  PI = 1 / (2 p_a).
    ped = parent_child(parent_sex="M")
    related = marker_loglik(ped, MARKER, {"P": ("a", "d"), "O": ("b", "c"), "C": ("a", "c")})
    unrelated = marker_loglik(ped, MARKER, {"O": ("b", "c"), "C": ("a", "c")}) + marker_loglik(
        singleton("P"), MARKER, {"P": ("a", "d")}
    )
    assert math.exp(related - unrelated) == pytest.approx(1 / (2 * PA), rel=REL)


# -- sibling and second-degree indices (IBD sharing kappa0, kappa1, kappa2) ----------
def test_full_sibling_index__heterozygous_pair_sharing_both_alleles() -> None:
    # Full siblings share 0, 1, 2 alleles IBD with probability 1/4, 1/2, 1/4.
    # Both a/b: P(S2 | S1) = 1/4 * 2 p_a p_b + 1/2 * (p_a + p_b) / 2 + 1/4 * 1
    # (with one allele IBD it is a or b with probability 1/2 each, the other
    # allele drawn from the population). Dividing by 2 p_a p_b:
    # SI = (1 + p_a + p_b + 2 p_a p_b) / (8 p_a p_b).
    expected = (1 + PA + PB + 2 * PA * PB) / (8 * PA * PB)
    assert lr(full_siblings(2), "S1", ("a", "b"), "S2", ("a", "b")) == pytest.approx(expected, rel=REL)


def test_full_sibling_index__homozygous_pair() -> None:
    # Both a/a: P(S2 | S1) = 1/4 p_a^2 + 1/2 p_a + 1/4 = (1 + p_a)^2 / 4.
    expected = (1 + PA) ** 2 / (4 * PA**2)
    assert lr(full_siblings(2), "S1", ("a", "a"), "S2", ("a", "a")) == pytest.approx(expected, rel=REL)


def test_full_sibling_index__no_shared_allele() -> None:
    # a/b and c/d share nothing: only kappa0 contributes. SI = 1/4.
    assert lr(full_siblings(2), "S1", ("a", "b"), "S2", ("c", "d")) == pytest.approx(0.25, rel=REL)


@pytest.mark.parametrize(
    "ped, x, y",
    [
        (half_siblings(side="paternal"), "H1", "H2"),
        (half_siblings(side="maternal"), "H1", "H2"),
        (grandparent(side="paternal"), "GP", "GC"),
        (grandparent(side="maternal", grandparent_sex="F"), "GP", "GC"),
        (avuncular(side="paternal"), "UN", "NE"),
        (avuncular(side="maternal", uncle_sex="F"), "UN", "NE"),
    ],
    ids=["half_sibs_paternal", "half_sibs_maternal", "grandfather", "grandmother", "uncle", "aunt"],
)
def test_second_degree_index__heterozygous_pair(ped: Pedigree, x: str, y: str) -> None:
    # Second-degree relatives: kappa = (1/2, 1/2, 0). Both a/b:
    # LR = 1/2 + 1/2 * (p_a + p_b) / 2 / (2 p_a p_b) = 1/2 + (p_a + p_b) / (8 p_a p_b).
    expected = 0.5 + (PA + PB) / (8 * PA * PB)
    assert lr(ped, x, ("a", "b"), y, ("a", "b")) == pytest.approx(expected, rel=REL)


def test_first_cousin_index__shared_homozygote() -> None:
    # First cousins: kappa = (3/4, 1/4, 0). Both c/c: LR = 3/4 + 1/4 * p_c / p_c^2.
    expected = 0.75 + 0.25 / PC
    assert lr(cousins(1), "C1", ("c", "c"), "C2", ("c", "c")) == pytest.approx(expected, rel=REL)


# -- mutation -------------------------------------------------------------------------
def test_marker_loglik__equal_mutation_explains_an_exclusion() -> None:
    # Father a/a, child b/b, mother untyped, equal model over 4 alleles:
    # the father passes b only by mutation, with probability r_m / 3 (male
    # rate); the untyped mother passes an allele x drawn from the population
    # which then mutates by the female matrix, so b with
    # q_f = p_b (1 - r_f) + (1 - p_b) r_f / 3.  L = p_a^2 * (r_m / 3) * q_f.
    r_m, r_f = 0.006, 0.5
    marker = make_marker(
        "M",
        ["a", "b", "c", "d"],
        [PA, PB, PC, PD],
        female=MutationModel("equal", rate=r_f),
        male=MutationModel("equal", rate=r_m),
    )

    def q(r: float) -> float:
        return PB * (1 - r) + (1 - PB) * r / 3

    got = lik(parent_child(parent_sex="M"), {"P": ("a", "a"), "C": ("b", "b")}, marker)
    assert got == pytest.approx(PA**2 * (r_m / 3) * q(r_f), rel=REL)
    # the same through a mother: her rate for the typed parent, his for the untyped one
    got = lik(parent_child(parent_sex="F"), {"P": ("a", "a"), "C": ("b", "b")}, marker)
    assert got == pytest.approx(PA**2 * (r_f / 3) * q(r_m), rel=REL)


# -- theta (Balding-Nichols) ------------------------------------------------------------
def test_marker_loglik__theta_singleton() -> None:
    # Founder alleles in turn: first a with p_a; second a with (theta + (1 - theta) p_a) / 1.
    th = 0.03
    assert lik(singleton("P"), {"P": ("a", "a")}, theta=th) == pytest.approx(PA * (th + (1 - th) * PA), rel=REL)
    assert lik(singleton("P"), {"P": ("a", "b")}, theta=th) == pytest.approx(2 * PA * (1 - th) * PB, rel=REL)


def test_marker_loglik__theta_trio_untyped_mother() -> None:
    # Father a/b, child a/b, mother untyped. P(F) = 2 p_a (1 - theta) p_b.
    # Each of the mother's alleles is, given the father's a and b, the third
    # founder allele drawn: P(it is x) = (theta [x in {a, b}] + (1 - theta) p_x) / (1 + theta).
    # The child has a from the father (1/2) and b from the mother, or b and a:
    # L = P(F) * [ (theta + (1-theta) p_b) + (theta + (1-theta) p_a) ] / (2 (1 + theta)).
    th = 0.05
    ped = parent_child(parent_sex="M")
    pf = 2 * PA * (1 - th) * PB
    expected = pf * ((th + (1 - th) * PB) + (th + (1 - th) * PA)) / (2 * (1 + th))
    assert lik(ped, {"P": ("a", "b"), "C": ("a", "b")}, theta=th) == pytest.approx(expected, rel=REL)
    # and a child a/c: the mother's c is a new allele: (1 - theta) p_c / (1 + theta), father's a 1/2
    expected = pf * 0.5 * (1 - th) * PC / (1 + th)
    assert lik(ped, {"P": ("a", "b"), "C": ("a", "c")}, theta=th) == pytest.approx(expected, rel=REL)


def test_marker_loglik__theta_trio_all_typed() -> None:
    # Father a/b, mother a/c, child a/a: the four founder alleles a, b, a, c
    # in turn: p_a * (1-t) p_b / 1 * (t + (1-t) p_a) / (1 + t) * (1-t) p_c / (1 + 2t);
    # times 2 * 2 for the two heterozygous parents' orders; child a/a: 1/2 * 1/2.
    th = 0.1
    ped = parent_child(parent_sex="M")
    founders = PA * (1 - th) * PB * (th + (1 - th) * PA) / (1 + th) * (1 - th) * PC / (1 + 2 * th)
    expected = 4 * founders * 0.25
    got = lik(ped, {"P": ("a", "b"), "O": ("a", "c"), "C": ("a", "a")}, theta=th)
    assert got == pytest.approx(expected, rel=REL)


# -- X chromosome -------------------------------------------------------------------------
def test_marker_loglik__x_father_daughter() -> None:
    # The father (one X allele a: p_a) passes it to his daughter with
    # probability 1; her other allele is the mother's: L(a ; a/b) = p_a p_b.
    # Unrelated: p_a * 2 p_a p_b, so LR = 1 / (2 p_a).
    ped = parent_child(parent_sex="M", child_sex="F")
    assert lik(ped, {"P": ("a", "a"), "C": ("a", "b")}, X_MARKER) == pytest.approx(PA * PB, rel=REL)
    assert lr(ped, "P", ("a", "a"), "C", ("a", "b"), X_MARKER) == pytest.approx(1 / (2 * PA), rel=REL)
    # daughter a/a: LR = p_a * p_a / (p_a * p_a^2) = 1 / p_a
    assert lr(ped, "P", ("a",), "C", ("a", "a"), X_MARKER) == pytest.approx(1 / PA, rel=REL)
    # a daughter without the father's allele is excluded
    assert marker_loglik(ped, X_MARKER, {"P": ("a", "a"), "C": ("b", "c")}) == -math.inf


def test_marker_loglik__x_father_son_is_unrelated() -> None:
    # A father passes no X to his son: LR = 1 whatever the genotypes.
    ped = parent_child(parent_sex="M", child_sex="M")
    assert lr(ped, "P", ("a", "a"), "C", ("b", "b"), X_MARKER) == pytest.approx(1.0, rel=REL)


def test_marker_loglik__x_mother_son() -> None:
    # Mother a/b (2 p_a p_b) passes a with 1/2: L = p_a p_b.
    ped = parent_child(parent_sex="F", child_sex="M")
    assert lik(ped, {"P": ("a", "b"), "C": ("a", "a")}, X_MARKER) == pytest.approx(PA * PB, rel=REL)


def test_marker_loglik__x_full_sisters_homozygous() -> None:
    # Sisters share their father's X (a: p_a). The mother passes a to both:
    # sum over her genotype: a/a p_a^2 * 1 + a/x 2 p_a (1 - p_a) * 1/4 = p_a (1 + p_a) / 2.
    # L = p_a^2 (1 + p_a) / 2.
    ped = full_siblings(2, sexes=["F", "F"])
    got = lik(ped, {"S1": ("a", "a"), "S2": ("a", "a")}, X_MARKER)
    assert got == pytest.approx(PA**2 * (1 + PA) / 2, rel=REL)


# -- dropout --------------------------------------------------------------------------------
def test_marker_loglik__dropout_singleton() -> None:
    d = 0.2
    drop = {"P": d}
    # {a, b} seen: only a/b, (1 - d)^2
    assert lik(singleton("P"), {"P": ("a", "b")}, dropout=drop) == pytest.approx(2 * PA * PB * (1 - d) ** 2, rel=REL)
    # ["a", "a"]: taken as a homozygote, 1 - d^2
    assert lik(singleton("P"), {"P": ("a", "a")}, dropout=drop) == pytest.approx(PA**2 * (1 - d * d), rel=REL)
    # ["a"]: a/a with 1 - d^2, or a/x with d (1 - d)
    expected = PA**2 * (1 - d * d) + 2 * PA * (1 - PA) * d * (1 - d)
    assert lik(singleton("P"), {"P": ("a",)}, dropout=drop) == pytest.approx(expected, rel=REL)


def test_marker_loglik__dropout_parent_child() -> None:
    # Father a/b (no dropout), child shows only c with dropout d. The child
    # is a/c or b/c (c from the mother, p_c), each seen as "c" with d (1 - d):
    # L = 2 p_a p_b * (1/2 p_c + 1/2 p_c) d (1 - d).
    d = 0.3
    ped = parent_child(parent_sex="M")
    got = lik(ped, {"P": ("a", "b"), "C": ("c",)}, dropout={"C": d})
    assert got == pytest.approx(2 * PA * PB * PC * d * (1 - d), rel=REL)
    # without dropout the same observation reads as the homozygote c/c: excluded
    assert marker_loglik(ped, MARKER, {"P": ("a", "b"), "C": ("c",)}) == -math.inf


def test_kinship_lr__full_sibling_index_per_marker_and_total() -> None:
    from opendvi.core.likelihood import kinship_lr

    # H1: S1, S2 full siblings; H2: unrelated. Marker M: both a/b (SI above);
    # marker N: both x/x, p_x = 0.5: SI = (1 + p_x)^2 / (4 p_x^2) = 2.25.
    other = make_marker("N", ["x", "y"], [0.5, 0.5])
    h2 = Pedigree([Individual("S1", sex="M"), Individual("S2", sex="M")])
    gts = {"S1": {"M": ("a", "b"), "N": ("x", "x")}, "S2": {"M": ("a", "b"), "N": ("x", "x")}}
    res = kinship_lr(full_siblings(2), h2, [MARKER, other], gts)
    si_m = (1 + PA + PB + 2 * PA * PB) / (8 * PA * PB)
    assert math.exp(res.log_lr["M"]) == pytest.approx(si_m, rel=REL)
    assert math.exp(res.log_lr["N"]) == pytest.approx(2.25, rel=REL)
    assert res.lr == pytest.approx(si_m * 2.25, rel=REL)
