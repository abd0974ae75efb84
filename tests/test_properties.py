"""Invariants checked with Hypothesis.

* Relabelling or reordering the individuals of a pedigree changes no likelihood.
* A marker typed in nobody has likelihood 1 (ln L = 0).
* The stationary transform keeps p M = p and the overall mutation rate
  R = 1 - sum_i M_ii p_i, for random frequencies and every named model.
* Every mutation matrix is stochastic: entries in [0, 1], rows summing to 1.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from opendvi.core.errors import MutationModelError
from opendvi.core.factor_graph import relevant_people
from opendvi.core.likelihood import marker_loglik, pedigree_loglik
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
    missing_person_family,
    parent_child,
    trio,
)
from opendvi.core.simulate import apply_dropout, simulate_marker

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _cousin_marriage() -> Pedigree:
    c = cousins(1)
    people = [p if p.id != "C2" else Individual("C2", p.father, p.mother, "F") for p in c.individuals]
    return Pedigree([*people, Individual("IN", "C1", "C2", "F")])


PEDIGREES = [
    trio(child_sex="F"),
    parent_child(parent_sex="F", child_sex="M"),
    full_siblings(3, sexes=["M", "F", "F"]),
    half_siblings(side="maternal", sexes=("F", "M")),
    grandparent(side="maternal", grandparent_sex="M", grandchild_sex="F"),
    avuncular(side="paternal", uncle_sex="F"),
    cousins(1),
    cousins(2, removal=1),
    cousins(1, half=True),
    missing_person_family(
        {"mother": "R1", "full_sibling": ["R2", "R3"], "child": "R4", "paternal_uncle": "R5"},
        missing_sex="F",
        sexes={"R2": "F"},
    ),
    missing_person_family({"maternal_grandmother": "G", "maternal_half_sibling": "H", "father": "F"}),
    _cousin_marriage(),
]

STEP = MutationModel("stepwise", rate=0.01, rate2=0.001, range=0.3)
MARKERS = [
    make_marker("A", ["8", "9", "10", "11", "12"], [0.1, 0.2, 0.3, 0.25, 0.15]),
    make_marker(
        "B",
        ["9", "9.3", "10", "11"],
        [0.3, 0.2, 0.4, 0.1],
        female=STEP,
        male=MutationModel("stepwise", rate=0.03, rate2=0.001, range=0.3),
    ),
    make_marker("C", ["1", "2", "3", "4"], [0.4, 0.3, 0.2, 0.1], female=MutationModel("equal", rate=0.02)),
    make_marker(
        "X1",
        ["1", "2", "3", "4"],
        [0.25, 0.25, 0.3, 0.2],
        chromosome="X",
        female=MutationModel("proportional", rate=0.01, transform="stationary"),
    ),
]


@st.composite
def typed_pedigrees(draw: st.DrawFn) -> tuple[Pedigree, Marker, dict[str, tuple[str, ...]], dict[str, float], float]:
    ped = draw(st.sampled_from(PEDIGREES))
    marker = draw(st.sampled_from(MARKERS))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    gts = simulate_marker(ped, marker, rng)
    mask = draw(st.lists(st.booleans(), min_size=len(ped), max_size=len(ped)))
    # at most 4 typed people, so theta tables stay small (and theta only where the founders' alleles
    # that matter stay few enough: the engine refuses a table over THETA_TABLE_LIMIT on purpose)
    typed = [pid for pid, keep in zip(ped.ids, mask, strict=True) if keep][:4]
    chosen = {pid: gts[pid] for pid in typed}
    dropout: dict[str, float] = {}
    if chosen and draw(st.booleans()):
        pid = draw(st.sampled_from(sorted(chosen)))
        dropout[pid] = draw(st.sampled_from([0.1, 0.4]))
        degraded = apply_dropout({marker.name: chosen[pid]}, dropout[pid], rng).get(marker.name)
        if degraded:
            chosen[pid] = degraded
    # theta > 0 at X markers is left out: a known engine bug (see
    # test_brute_force.py::test_marker_loglik__theta_x_father_son_agrees_with_brute_force)
    theta = 0.0 if marker.is_x else draw(st.sampled_from([0.0, 0.0, 0.02]))
    if theta and _founder_alleles(ped, marker, chosen) > 8:
        theta = 0.0
    return ped, marker, chosen, dropout, theta


def _founder_alleles(ped: Pedigree, marker: Marker, chosen: dict[str, tuple[str, ...]]) -> int:
    """The founder alleles the likelihood of ``chosen`` sums over (the typed people's founder ancestors)."""
    keep = relevant_people(ped, marker, [ped.index(pid) for pid, gt in chosen.items() if gt])
    return sum(2 for i in keep if ped.father[i] < 0)


def _same(a: float, b: float) -> bool:
    if a == -math.inf or b == -math.inf:
        return a == b
    return abs(a - b) <= 1e-10 * max(1.0, abs(a))


@SETTINGS
@given(typed_pedigrees(), st.randoms(use_true_random=False))
def test_marker_loglik__relabelling_changes_nothing(case: tuple, rnd: object) -> None:  # type: ignore[type-arg]
    ped, marker, gts, dropout, theta = case
    ids = list(ped.ids)
    new_ids = [f"Q{k}" for k in range(len(ids))]
    rnd.shuffle(new_ids)  # type: ignore[attr-defined]
    mapping = dict(zip(ids, new_ids, strict=True))
    relabelled = ped.relabel(mapping)
    before = marker_loglik(ped, marker, gts, theta=theta, dropout=dropout)
    after = marker_loglik(
        relabelled,
        marker,
        {mapping[p]: g for p, g in gts.items()},
        theta=theta,
        dropout={mapping[p]: d for p, d in dropout.items()},
    )
    assert _same(before, after), (before, after)


@SETTINGS
@given(typed_pedigrees(), st.randoms(use_true_random=False))
def test_marker_loglik__reordering_changes_nothing(case: tuple, rnd: object) -> None:  # type: ignore[type-arg]
    ped, marker, gts, dropout, theta = case
    people = ped.individuals
    rnd.shuffle(people)  # type: ignore[attr-defined]
    reordered = Pedigree(people)
    assert reordered == ped
    before = marker_loglik(ped, marker, gts, theta=theta, dropout=dropout)
    after = marker_loglik(reordered, marker, gts, theta=theta, dropout=dropout)
    assert _same(before, after), (before, after)
    # and pedigree_loglik (markers batched together) gives the marker's value too
    batched = pedigree_loglik(
        reordered, [marker], {p: {marker.name: g} for p, g in gts.items()}, theta=theta, dropout=dropout
    )
    assert _same(batched.per_marker[marker.name], before)


@SETTINGS
@given(st.sampled_from(PEDIGREES), st.sampled_from([0.0, 0.05]))
def test_marker_loglik__untyped_marker_is_one(ped: Pedigree, theta: float) -> None:
    for marker in MARKERS:
        assert marker_loglik(ped, marker, {}, theta=theta) == 0.0
    ll = pedigree_loglik(ped, MARKERS, {pid: {} for pid in ped.ids}, theta=theta)
    assert ll.per_marker == {m.name: 0.0 for m in MARKERS}
    assert ll.total == 0.0


# -- mutation matrices ---------------------------------------------------------------------
@st.composite
def frequencies(draw: st.DrawFn, min_n: int = 2, max_n: int = 8) -> np.ndarray:
    n = draw(st.integers(min_n, max_n))
    w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n)))
    return w / w.sum()


@st.composite
def models(draw: st.DrawFn) -> tuple[MutationModel, list[str]]:
    """A named model with valid parameters and alleles it accepts (numeric STR labels)."""
    name = draw(st.sampled_from(["equal", "proportional", "stepwise", "onestep", "custom"]))
    rate = draw(st.floats(0.0, 0.02))
    n = draw(st.integers(2, 7))
    if name == "stepwise":
        values = draw(
            st.lists(st.sampled_from([8, 9, 9.3, 10, 10.2, 11, 12, 13.3, 14]), min_size=n, max_size=n, unique=True)
        )
    else:
        values = draw(st.lists(st.integers(5, 20), min_size=n, max_size=n, unique=True))
    alleles = [str(v) for v in sorted(values)]
    if name == "custom":
        raw = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n * n, max_size=n * n))).reshape(n, n)
        off = raw * (1 - np.eye(n))
        sums = off.sum(axis=1, keepdims=True)
        off = np.where(sums > 0, off / np.where(sums > 0, sums, 1.0) * rate, 0.0)
        M = off + np.diag(1.0 - off.sum(axis=1))
        return MutationModel("custom", matrix_values=tuple(tuple(map(float, r)) for r in M)), alleles
    if name == "stepwise":
        return (
            MutationModel("stepwise", rate=rate, rate2=draw(st.floats(0.0, 0.001)), range=draw(st.floats(0.05, 0.95))),
            alleles,
        )
    return MutationModel(name, rate=rate), alleles


def _overall_rate(M: np.ndarray, p: np.ndarray) -> float:
    return 1.0 - float(np.sum(np.diag(M) * p))


@SETTINGS
@given(models(), st.data())
def test_stationary__keeps_frequencies_and_overall_rate(model_alleles: tuple, data: st.DataObject) -> None:  # type: ignore[type-arg]
    model, alleles = model_alleles
    p = data.draw(frequencies(min_n=len(alleles), max_n=len(alleles)))
    M = model.matrix(alleles, p, marker="T")
    stationary_model = MutationModel(
        model.model, model.rate, model.rate2, model.range, model.matrix_values, transform="stationary"
    )
    try:
        S = stationary_model.matrix(alleles, p, marker="T")
    except MutationModelError as exc:  # no stationary version: allowed, but must say so
        assert "stationary" in str(exc)
        assume(False)
        return
    np.testing.assert_allclose(p @ S, p, rtol=0, atol=1e-12)
    assert abs(_overall_rate(S, p) - _overall_rate(M, p)) <= 1e-12
    assert np.all(S >= -1e-15) and np.all(S <= 1 + 1e-15)
    np.testing.assert_allclose(S.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@SETTINGS
@given(models(), st.data())
def test_mutation_matrix__rows_sum_to_one(model_alleles: tuple, data: st.DataObject) -> None:  # type: ignore[type-arg]
    model, alleles = model_alleles
    p = data.draw(frequencies(min_n=len(alleles), max_n=len(alleles)))
    M = model.matrix(alleles, p, marker="T")
    assert M.shape == (len(alleles), len(alleles))
    assert np.all(M >= 0) and np.all(M <= 1)
    np.testing.assert_allclose(M.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # the overall rate of equal, proportional and onestep (with neighbours) is at most the rate
    assert _overall_rate(M, p) <= model.rate + 1e-12 or model.model in ("stepwise", "custom")


@SETTINGS
@given(st.floats(0.0, 0.2), frequencies(min_n=3, max_n=8))
def test_proportional__is_stationary_already(rate: float, p: np.ndarray) -> None:
    # alpha p_j off the diagonal: p M = p holds without the transform,
    # and the overall rate is the rate.
    limit = (1 - float(np.sum(p * p))) / (1 - float(p.min()))
    assume(rate <= limit)
    M = MutationModel("proportional", rate=rate).matrix([str(k) for k in range(len(p))], p, marker="T")
    np.testing.assert_allclose(p @ M, p, rtol=0, atol=1e-13)
    assert abs(_overall_rate(M, p) - rate) <= 1e-13
