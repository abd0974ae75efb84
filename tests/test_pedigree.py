"""The validating pedigree constructor and the relationship builders.

Builders are checked by structure and by the relationship they encode: for
two non-inbred relatives with IBD probabilities (kappa0, kappa1, kappa2), the
LR against unrelated at one marker is, for both typed a/b,
kappa0 + kappa1 (p_a + p_b) / (4 p_a p_b) + kappa2 / (2 p_a p_b), and for both
a/a, kappa0 + kappa1 / p_a + kappa2 / p_a^2. Two configurations fix kappa.
"""

from __future__ import annotations

import math

import pytest

from opendvi.core.errors import PedigreeError
from opendvi.core.likelihood import marker_loglik
from opendvi.core.markers import make_marker
from opendvi.core.pedigree import (
    RELATIONS,
    Individual,
    Pedigree,
    avuncular,
    cousins,
    full_siblings,
    grandparent,
    half_siblings,
    missing_person_family,
    parent_child,
    singleton,
    trio,
)

PA, PB = 0.1, 0.2
MARKER = make_marker("M", ["a", "b", "c"], [PA, PB, 0.7])


def lr(ped: Pedigree, x: str, y: str, gx: tuple[str, str], gy: tuple[str, str]) -> float:
    related = marker_loglik(ped, MARKER, {x: gx, y: gy})
    unrelated = marker_loglik(singleton(x), MARKER, {x: gx}) + marker_loglik(singleton(y), MARKER, {y: gy})
    return math.exp(related - unrelated)


def assert_kappa(ped: Pedigree, x: str, y: str, kappa: tuple[float, float, float]) -> None:
    k0, k1, k2 = kappa
    het = k0 + k1 * (PA + PB) / (4 * PA * PB) + k2 / (2 * PA * PB)
    hom = k0 + k1 / PA + k2 / PA**2
    assert lr(ped, x, y, ("a", "b"), ("a", "b")) == pytest.approx(het, rel=1e-12)
    assert lr(ped, x, y, ("a", "a"), ("a", "a")) == pytest.approx(hom, rel=1e-12)


UNRELATED = (1.0, 0.0, 0.0)
PARENT = (0.0, 1.0, 0.0)
FULL_SIB = (0.25, 0.5, 0.25)
SECOND_DEGREE = (0.5, 0.5, 0.0)


# -- the validating constructor ------------------------------------------------------
def test_pedigree__reports_every_problem_at_once() -> None:
    people = [
        Individual("A", "B", "C", "M"),  # father B is female
        Individual("B", sex="F"),
        Individual("C", sex="F"),
        Individual("C", sex="F"),  # duplicate id
        Individual("D", "A", None, "M"),  # single parent
        Individual("E", "Z", "C", "M"),  # unknown father
        Individual("G", "H", "I", "M"),  # G and H are each other's father: a cycle
        Individual("H", "G", "I", "M"),
        Individual("I", sex="F"),
    ]
    with pytest.raises(PedigreeError) as info:
        Pedigree(people, where="family F7")
    problems = info.value.problems
    text = str(info.value)
    assert text.startswith("family F7: invalid pedigree (")
    assert any("duplicate id 'C'" in p for p in problems)
    assert any("B is A's father but has sex F" in p for p in problems)
    assert any("D has a single parent" in p for p in problems)
    assert any("E's father 'Z' is not in the pedigree" in p for p in problems)
    assert any(p.startswith("cycle: ") and "G" in p and "H" in p for p in problems)
    assert len(problems) == 5
    assert all(p in text for p in problems)


@pytest.mark.parametrize(
    "people, fragment",
    [
        ([Individual("A", "A", "B", "M"), Individual("B", sex="F")], "A is his or her own father"),
        ([Individual("A", sex="X")], "A has sex 'X'"),
        ([Individual("", sex="M")], "invalid id ''"),
        ([Individual("F", sex=None), Individual("M", sex="F"), Individual("C", "F", "M", "M")], "has sex unknown"),
        (
            [Individual("A", "C", "B", "M"), Individual("B", sex="F"), Individual("C", "A", "B", "M")],
            "cycle: ",
        ),
    ],
    ids=["own_father", "bad_sex", "empty_id", "father_of_unknown_sex", "cycle_only"],
)
def test_pedigree__single_problem(people: list[Individual], fragment: str) -> None:
    with pytest.raises(PedigreeError) as info:
        Pedigree(people)
    assert len(info.value.problems) == 1
    assert fragment in str(info.value)


def test_pedigree__parents_may_follow_children_and_components_may_be_separate() -> None:
    ped = Pedigree(
        [Individual("C", "F", "M", "F"), Individual("X", sex="M"), Individual("F", sex="M"), Individual("M", sex="F")]
    )
    order = ped.topological_order
    assert order.index(ped.index("F")) < order.index(ped.index("C"))
    assert order.index(ped.index("M")) < order.index(ped.index("C"))
    assert set(ped.founders) == {"X", "F", "M"}


def test_has_loops__trees_and_loops() -> None:
    assert not full_siblings(3).has_loops()
    assert not cousins(2, removal=1).has_loops()
    inbred = cousins(1).add(Individual("W", sex="F")).relabel({})
    assert not inbred.has_loops()
    c = cousins(1)
    # first cousins C1 (male) and C2 (male) -> make C2's line end in a female to mate them
    people = [p if p.id != "C2" else Individual("C2", p.father, p.mother, "F") for p in c.individuals]
    mated = Pedigree([*people, Individual("IN", "C1", "C2", "M")])
    assert mated.has_loops()
    double = Pedigree(
        [
            Individual("A", sex="M"),
            Individual("B", sex="F"),
            Individual("C", sex="M"),
            Individual("D", sex="F"),
            Individual("B1", "A", "B", "M"),
            Individual("B2", "A", "B", "M"),
            Individual("S1", "C", "D", "F"),
            Individual("S2", "C", "D", "F"),
            Individual("D1", "B1", "S1", "M"),
            Individual("D2", "B2", "S2", "M"),
        ]
    )
    assert double.has_loops()


# -- builders --------------------------------------------------------------------------
def test_builders__fixed_ids() -> None:
    assert trio().ids == ("FA", "MO", "CH")
    assert full_siblings(3).ids == ("FA", "MO", "S1", "S2", "S3")
    assert set(parent_child().ids) == {"P", "O", "C"}
    assert {"GP", "GC", "PA"} <= set(grandparent().ids)
    assert {"UN", "NE", "PA"} <= set(avuncular().ids)
    assert {"H1", "H2"} <= set(half_siblings().ids)
    assert {"C1", "C2", "A1", "A2"} <= set(cousins(3, removal=2).ids)


@pytest.mark.parametrize(
    "ped, x, y, kappa",
    [
        (parent_child(parent_sex="M"), "P", "C", PARENT),
        (parent_child(parent_sex="F", child_sex="F"), "P", "C", PARENT),
        (trio(), "FA", "MO", UNRELATED),
        (full_siblings(2), "S1", "S2", FULL_SIB),
        (half_siblings(side="paternal"), "H1", "H2", SECOND_DEGREE),
        (half_siblings(side="maternal", sexes=("F", "M")), "H1", "H2", SECOND_DEGREE),
        (grandparent(side="paternal"), "GP", "GC", SECOND_DEGREE),
        (grandparent(side="maternal", grandparent_sex="F", grandchild_sex="F"), "GP", "GC", SECOND_DEGREE),
        (avuncular(side="paternal"), "UN", "NE", SECOND_DEGREE),
        (avuncular(side="maternal", uncle_sex="F", nephew_sex="F"), "UN", "NE", SECOND_DEGREE),
    ],
    ids=[
        "father_son",
        "mother_daughter",
        "spouses",
        "full_siblings",
        "paternal_half_siblings",
        "maternal_half_siblings",
        "paternal_grandfather",
        "maternal_grandmother",
        "paternal_uncle",
        "maternal_aunt",
    ],
)
def test_builders__relationship(ped: Pedigree, x: str, y: str, kappa: tuple[float, float, float]) -> None:
    assert_kappa(ped, x, y, kappa)


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("removal", [0, 1, 2])
def test_cousins__degree_and_removal(degree: int, removal: int) -> None:
    # kinship 2 * (1/2)^(n + 1) over the two common ancestors, n = 2 (degree + 1) + removal
    # meioses; kappa1 = 4 * kinship = (1/2)^(2 degree + removal); half cousins: half of it.
    k1 = 0.5 ** (2 * degree + removal)
    assert_kappa(cousins(degree, removal=removal), "C1", "C2", (1 - k1, k1, 0.0))
    assert_kappa(cousins(degree, removal=removal, half=True), "C1", "C2", (1 - k1 / 2, k1 / 2, 0.0))


def test_cousins__invalid_degree() -> None:
    with pytest.raises(PedigreeError, match="degree must be >= 1"):
        cousins(0)


EXPECTED_KAPPA = {
    "father": PARENT,
    "mother": PARENT,
    "child": PARENT,
    "full_sibling": FULL_SIB,
    "paternal_half_sibling": SECOND_DEGREE,
    "maternal_half_sibling": SECOND_DEGREE,
    "paternal_grandfather": SECOND_DEGREE,
    "paternal_grandmother": SECOND_DEGREE,
    "maternal_grandfather": SECOND_DEGREE,
    "maternal_grandmother": SECOND_DEGREE,
    "paternal_uncle": SECOND_DEGREE,
    "maternal_uncle": SECOND_DEGREE,
    "spouse": UNRELATED,
}


def test_missing_person_family__every_relation_is_known() -> None:
    assert set(EXPECTED_KAPPA) == set(RELATIONS)


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("missing_sex", ["M", "F"])
def test_missing_person_family__each_relation(relation: str, missing_sex: str) -> None:
    ped = missing_person_family({relation: "R1"}, missing="MP", missing_sex=missing_sex)
    assert "R1" in ped and "MP" in ped
    assert ped.sex[ped.index("MP")] == missing_sex
    want_sex = {"mother": "F", "paternal_grandmother": "F", "maternal_grandmother": "F"}.get(relation)
    if relation == "spouse":
        want_sex = "F" if missing_sex == "M" else "M"
    if want_sex:
        assert ped.sex[ped.index("R1")] == want_sex
    assert_kappa(ped, "MP", "R1", EXPECTED_KAPPA[relation])


def test_missing_person_family__all_relations_together() -> None:
    relatives = {rel: f"R_{rel}" for rel in RELATIONS}
    relatives["full_sibling"] = ["SIB1", "SIB2"]  # type: ignore[assignment]
    relatives["child"] = ["K1", "K2"]  # type: ignore[assignment]
    ped = missing_person_family(relatives, sexes={"SIB2": "F", "K1": "F"})
    for rel in RELATIONS:
        if rel in ("full_sibling", "child"):
            continue
        assert_kappa(ped, "MP", f"R_{rel}", EXPECTED_KAPPA[rel])
    assert_kappa(ped, "MP", "SIB2", FULL_SIB)
    assert_kappa(ped, "MP", "K1", PARENT)
    assert_kappa(ped, "SIB1", "SIB2", FULL_SIB)
    assert_kappa(ped, "K1", "K2", FULL_SIB)  # both children of MP and the spouse
    assert ped.sex[ped.index("SIB2")] == "F"
    assert not ped.has_loops()


def test_missing_person_family__invalid_input_reported() -> None:
    with pytest.raises(PedigreeError, match="unknown relation"):
        missing_person_family({"cousin": "R1"})
    with pytest.raises(PedigreeError) as info:
        missing_person_family({"father": ["R1", "R2"], "full_sibling": "R1"})
    assert len(info.value.problems) == 2


def test_relabel_and_subset() -> None:
    ped = trio()
    new = ped.relabel({"FA": "Dad", "CH": "Kid"})
    assert set(new.ids) == {"Dad", "MO", "Kid"}
    assert new.individuals[2] == Individual("Kid", "Dad", "MO", "M")
    assert ped.subset(["FA", "MO"]).ids == ("FA", "MO")
    with pytest.raises(PedigreeError):
        ped.subset(["CH"])  # a child without its parents
    assert ped == Pedigree(reversed(ped.individuals))
