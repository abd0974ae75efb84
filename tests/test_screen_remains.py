"""Remains against remains by table and gather (``opendvi.screening.screen_remains``) equals the
direct-match LR of ``match-remains`` (``core.direct_match``) pair by pair: dropout, theta, missing
markers, sexes and X markers, lineage (Y, mtDNA)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendvi.core.case import Sample
from opendvi.core.direct_match import direct_match_log_lr, lineage_direct_match
from opendvi.core.lineage_lr import combined_log_lr
from opendvi.core.markers import make_marker
from opendvi.dvi.problem import DVIProblem
from opendvi.dvi.remains import group_remains
from opendvi.screening import screen_remains, simulate_case

MARKERS = (
    make_marker("A1", ["1", "2", "3"], [0.2, 0.3, 0.5]),
    make_marker("A2", ["1", "2", "3", "4"], [0.1, 0.2, 0.3, 0.4]),
    make_marker("A3", ["1", "2"], [0.6, 0.4]),
    make_marker("X1", ["1", "2", "3"], [0.25, 0.25, 0.5], chromosome="X"),
)


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-9


@st.composite
def samples(draw: st.DrawFn) -> list[Sample]:
    n = draw(st.integers(2, 7))
    out: list[Sample] = []
    for k in range(n):
        gts = {}
        for m in MARKERS:
            kind = draw(st.sampled_from(["none", "one", "two"]))
            if kind == "none":
                continue
            a = draw(st.sampled_from(m.alleles))
            b = draw(st.sampled_from(m.alleles))
            gts[m.name] = (a,) if kind == "one" else tuple(sorted((a, b)))
        sex = draw(st.sampled_from([None, "M", "F"]))
        d = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))
        # a few copies: equal profiles, the fragments the screen looks for
        copy: bool = draw(st.booleans())
        if out and copy:
            src = out[draw(st.integers(0, len(out) - 1))]
            gts, sex = dict(src.genotypes), src.sex
        out.append(Sample(f"R{k}", sex=sex, genotypes=gts, dropout=d))
    return out


@settings(max_examples=60, deadline=None)
@given(samples(), st.sampled_from([0.0, 0.01, 0.05]), st.sampled_from([None, 1.0, 10.0]))
def test_every_pair_equals_direct_match(rs: list[Sample], theta: float, threshold: float | None) -> None:
    res = screen_remains(rs, MARKERS, theta=theta, threshold=threshold, block_floats=5)  # several blocks
    got = {(a, b): v for a, b, v in res.pairs()}
    log_t = -math.inf if threshold is None else math.log(threshold)
    want = {}
    for i, a in enumerate(rs):
        for b in rs[i + 1:]:
            v = direct_match_log_lr(a, b, MARKERS, theta=theta)
            if v >= log_t:
                want[(a.id, b.id)] = v
    assert set(got) == set(want)
    for k, v in want.items():
        assert _close(got[k], v), (k, got[k], v)
    assert not res.by_system  # no lineage data


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([("Y", "mt"), ("Y",), ("mt",)]))
def test_lineage_systems_equal_direct_match(seed: int, systems: tuple[str, ...]) -> None:
    case, _ = simulate_case(families=4, remains=12, seed=seed, share_fragments=0.4, lineage=systems)
    problem = DVIProblem(replace(case, families=(), pairings=None))
    rs = list(problem.remains.values())
    res = screen_remains(rs, problem.markers, theta=0.01, lineage=case.lineage, threshold=None)
    assert len(res) == len(rs) * (len(rs) - 1) // 2
    for k, (a, b, v) in enumerate(res.pairs()):
        sa, sb = problem.remains[a], problem.remains[b]
        auto = direct_match_log_lr(sa, sb, problem.markers, theta=0.01)
        lin = lineage_direct_match(case.lineage, a, b, sex_a=sa.sex, sex_b=sb.sex)
        by = {"autosomal": auto, **{s: d.log_lr for s, d in lin.items()}}
        want = -math.inf if auto == -math.inf else combined_log_lr(by)
        assert _close(v, want), (a, b, v, want)
        got_by, got_mis = res.systems_of(k)
        assert set(got_by) == set(by)
        assert all(_close(got_by[s], by[s]) for s in by)
        assert got_mis == {s: d.mismatches for s, d in lin.items()}


def test_kept_pairs_make_the_groups_of_match_remains() -> None:
    case, _ = simulate_case(families=5, remains=40, seed=4, share_fragments=0.3)
    problem = DVIProblem(case)
    res = screen_remains(list(problem.remains.values()), problem.markers, theta=problem.theta, threshold=1e4)
    m = group_remains(problem, threshold=1e4)
    assert m.groups, "the simulated fragments form groups"
    kept = {(a, b) for a, b, _ in res.pairs()}
    assert kept == {k for k, v in m.log_lr.items() if v >= math.log(1e4)}
    assert np.all(res.i < res.j)


def test_no_remains_and_one_remains() -> None:
    assert len(screen_remains([], MARKERS)) == 0
    assert len(screen_remains([Sample("R", genotypes={"A1": ("1", "2")})], MARKERS, threshold=None)) == 0


@pytest.mark.parametrize("d", [0.0, 0.2])
def test_sex_mismatch_excludes(d: float) -> None:
    a = Sample("A", sex="M", genotypes={"A1": ("1", "2")}, dropout=d)
    b = Sample("B", sex="F", genotypes={"A1": ("1", "2")}, dropout=d)
    (_a, _b, v), = screen_remains([a, b], MARKERS, threshold=None).pairs()
    assert v == -math.inf == direct_match_log_lr(a, b, MARKERS)
