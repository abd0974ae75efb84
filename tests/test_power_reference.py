"""Power planning against forrel (pedsuite) on the public power cases.

The expected values are in ``shared/data/reference/power/pub-pow-NN.expected.json``,
made by ``compute_public_power.R`` (forrel 1.9.0, pedprobr 1.1.0): exact
exclusion power from ``forrel::missingPersonEP(x, missing = "MP")``, E[LR]
from ``forrel::expectedLR``, the exact per-marker moments from
``pedprobr::oneMarkerDistribution``, Monte-Carlo inclusion power from
``forrel::missingPersonIP(nsim = 1000)`` and a 10^6-draw simulation, and the
"which relative" expectations from the joint (candidate, MP) distribution.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opendvi.core.case import Case
from opendvi.io.case_json import read_case
from opendvi.power import FamilyPower, PowerSettings, family_power, simulated_inclusion
from tests.conftest import REFERENCE

POWER = REFERENCE / "power"
CASES = [f"pub-pow-{k:02d}" for k in range(1, 9)]
WITH_CANDIDATES = ["pub-pow-06", "pub-pow-07", "pub-pow-08"]


def _expected(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((POWER / f"{name}.expected.json").read_text())
    return data


@cache
def _case(name: str) -> Case:
    return read_case(Path(POWER / f"{name}.json"))


@cache
def _result(name: str) -> FamilyPower:
    exp = _expected(name)
    cands = exp.get("which_relative", {}).get("candidates", [])
    return family_power(_case(name), "FAM", "MP", candidates=[[c] for c in cands])


@pytest.mark.parametrize("name", CASES)
def test_exclusion_power__equals_forrel_missingPersonEP_per_marker(name: str) -> None:
    exp = _expected(name)["exclusion"]
    s = _result(name).summary
    assert [m.marker for m in s.markers] == list(exp["EP_per_marker"])
    for m in s.markers:
        assert abs(m.ep - exp["EP_per_marker"][m.marker]) <= 1e-12, m.marker
    assert abs(s.ep_total - exp["EP_total"]) <= 1e-12
    assert abs(s.expected_mismatch - exp["expected_mismatch"]) <= 1e-12
    dist = s.mismatch_distribution()
    assert len(dist) == exp["n_potentially_excluding"] + 1
    for k, want in exp["distrib_mismatch"].items():
        assert abs(dist[int(k)] - want) <= 1e-12


@pytest.mark.parametrize("name", CASES)
def test_lr_moments__equal_forrel_expectedLR_and_pedprobr_per_marker(name: str) -> None:
    exp = _expected(name)["exact"]
    s = _result(name).summary
    for m in s.markers:
        want = exp["per_marker"][m.marker]
        assert m.e_lr == pytest.approx(exp["forrel_expectedLR"][m.marker], rel=1e-9), m.marker
        assert m.e_lr == pytest.approx(want["E_LR"], rel=1e-12)
        assert abs(m.e_log10_lr - want["E_log10LR"]) <= 1e-12
        assert abs(m.var_log10_lr - want["Var_log10LR"]) <= 1e-12
        assert (m.n_genotypes, m.n_possible) == (want["n_genotypes"], want["n_possible"])
    assert abs(s.e_log10_lr - exp["E_log10LR_total"]) <= 1e-11
    assert abs(s.sd_log10_lr - exp["SD_log10LR_total"]) <= 1e-11
    assert s.e_lr == pytest.approx(exp["E_LR_total"], rel=1e-9)


@pytest.mark.parametrize("name", CASES)
def test_mutation_models__removed_where_references_are_consistent_as_forrel(name: str) -> None:
    exp = _expected(name)
    res = _result(name)
    assert [m.marker for m in res.markers if m.mutation == "kept"] == exp["mutation_kept_for"]
    assert sorted(m.marker for m in res.markers if m.mutation == "removed") == sorted(exp["mutation_disabled_for"])
    if "mutations_kept" not in exp:
        assert res.kept is None
        return
    kept = exp["mutations_kept"]
    assert res.kept is not None
    assert abs(res.kept.ep_total - kept["EP_total"]) <= 1e-12
    assert abs(res.kept.e_log10_lr - kept["exact"]["E_log10LR_total"]) <= 1e-11
    assert abs(res.kept.sd_log10_lr - kept["exact"]["SD_log10LR_total"]) <= 1e-11
    assert res.kept.e_lr == pytest.approx(kept["exact"]["E_LR_total"], rel=1e-9)
    for m in res.kept.markers:
        assert abs(m.e_log10_lr - kept["exact_per_marker_E_log10LR"][m.marker]) <= 1e-12
    _check_inclusion(res.kept.inclusion, kept["inclusion_precise"], 5.0)


def _check_inclusion(inc: Any, precise: dict[str, Any], k: float) -> None:
    assert inc.method == "exact"
    for i, key in enumerate(precise["IP"]):
        bound = float(inc.bound[i])
        assert inc.lower[i] - 1e-12 <= inc.ip[i] <= inc.upper[i] + 1e-12
        assert abs(inc.ip[i] - precise["IP"][key]) <= bound + k * precise["IP_se"][key] + 1e-4, key


@pytest.mark.parametrize("name", CASES)
def test_inclusion_power__within_three_se_of_forrel_missingPersonIP(name: str) -> None:
    exp = _expected(name)
    inc = _result(name).summary.inclusion
    forrel = exp["inclusion_forrel"]
    n = forrel["nsim"]
    for i, key in enumerate(forrel["IP"]):
        p = float(inc.ip[i])
        se = math.sqrt(p * (1.0 - p) / n)  # sd of forrel's estimate if ours is the truth
        assert abs(p - forrel["IP"][key]) <= 3.0 * se + float(inc.bound[i]) + 1e-9, key
    _check_inclusion(inc, exp["inclusion_precise"], 5.0)
    # the bound is small: the grid is fine
    assert float(inc.bound.max()) < 2e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_inclusion_power__exact_within_its_bound_of_a_million_draws(name: str) -> None:
    res = _result(name)
    inc = res.summary.inclusion
    atoms = [(m.atoms_p, m.atoms_l) for m in res.markers]
    sim = simulated_inclusion(atoms, nsim=1_000_000, seed=30251000)
    for i in range(len(inc.ip)):
        p = float(inc.ip[i])
        se = math.sqrt(p * (1.0 - p) / 1_000_000)
        assert abs(p - sim.ip[i]) <= float(inc.bound[i]) + 4.0 * se + 1e-12
    assert sim.mean_log10_lr == pytest.approx(res.summary.e_log10_lr, abs=5 * res.summary.sd_log10_lr / 1000)


@pytest.mark.parametrize("name", WITH_CANDIDATES)
def test_next_relative__expectations_equal_pedprobr_joint_distribution(name: str) -> None:
    exp = _expected(name)["which_relative"]
    res = _result(name)
    got = {c.name: c for c in res.next}
    assert set(got) == set(exp["candidates"])
    for pc in exp["per_candidate"]:
        c = got[pc["candidate"]].summary
        e = pc["exact"]
        assert abs(c.ep_total - e["E_EP_total"]) <= 1e-12
        assert abs(c.expected_mismatch - e["E_expected_mismatch"]) <= 1e-11
        assert abs(c.e_log10_lr - e["E_log10LR_total"]) <= 1e-11
        for m in c.markers:
            assert abs(m.ep - e["E_EP_per_marker"][m.marker]) <= 1e-12
            assert abs(m.e_log10_lr - e["E_log10LR_per_marker"][m.marker]) <= 1e-12
        _check_inclusion(c.inclusion, pc["inclusion_precise"], 5.0)
    base = exp["baseline"]
    assert abs(res.summary.ep_total - base["EP_total"]) <= 1e-12
    # typing someone never lowers the expectations
    for c in res.next:
        assert c.summary.e_log10_lr >= res.summary.e_log10_lr - 1e-12
        assert c.summary.ep_total >= res.summary.ep_total - 1e-12


@pytest.mark.parametrize("name", WITH_CANDIDATES)
def test_next_relative__ranking_equals_forrels_exact_ranking(name: str) -> None:
    exp = _expected(name)["which_relative"]["ranking"]["by_E_log10LR_total"]
    got = [c.name for c in _result(name).next]
    if name == "pub-pow-07":  # PGF and PGM are exchangeable: equal values, arbitrary order
        assert got[0] == exp[0] and set(got[1:]) == set(exp[1:])
        a, b = _result(name).next[1:]
        assert a.summary.e_log10_lr == pytest.approx(b.summary.e_log10_lr, abs=1e-12)
    else:
        assert got == exp


def test_next_relative__half_sibling_given_father_adds_nothing_pub_pow_06() -> None:
    res = _result("pub-pow-06")
    got = {c.name: c.summary for c in res.next}
    assert abs(got["Mother2"].e_log10_lr - res.summary.e_log10_lr) <= 1e-12
    assert abs(got["Mother2"].ep_total - res.summary.ep_total) <= 1e-12
    assert abs(got["Sib"].ep_total - res.summary.ep_total) <= 1e-12
    assert got["Sib"].e_log10_lr > res.summary.e_log10_lr + 2


@pytest.mark.parametrize("name", ["pub-pow-04", "pub-pow-06", "pub-pow-08"])
def test_general_engine__equals_the_template_path(name: str) -> None:
    exp = _expected(name)
    cands = exp.get("which_relative", {}).get("candidates", [])[:2]
    a = family_power(_case(name), "FAM", "MP", candidates=[[c] for c in cands],
                     settings=PowerSettings(use_templates=False, with_kept=False))
    b = family_power(_case(name), "FAM", "MP", candidates=[[c] for c in cands],
                     settings=PowerSettings(with_kept=False))
    for x, y in zip(a.markers, b.markers, strict=True):
        assert abs(x.ep - y.ep) <= 1e-12 and abs(x.e_log10_lr - y.e_log10_lr) <= 1e-12
    for x, y in zip(a.next, b.next, strict=True):
        assert x.name == y.name
        assert abs(x.summary.e_log10_lr - y.summary.e_log10_lr) <= 1e-11
        np.testing.assert_allclose(x.summary.inclusion.ip, y.summary.inclusion.ip, atol=1e-9)
