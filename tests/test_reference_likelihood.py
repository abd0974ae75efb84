"""Agreement with pedprobr on shared/data/reference/likelihood (26 cases).

Expected values: pedprobr 1.1.0 ``likelihood(x, markers = m, theta = theta,
logbase = exp(1))``; see ``shared/data/reference/README.md`` for the calls.
Tolerance: |d ln L| <= 1e-9 * max(1, |ln L|), "-inf" exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from opendvi.io.case_json import read_case

from .clikit import run
from .conftest import REFERENCE

CASES = sorted(p for p in (REFERENCE / "likelihood").glob("lik-pub-*.json") if not p.name.endswith(".expected.json"))


def _expected(path: Path) -> dict:
    return json.loads(path.with_name(path.stem + ".expected.json").read_text())


def _close(got: float, want: float | str) -> bool:
    if want == "-inf":
        return got == -math.inf
    assert isinstance(want, float)
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))


def test_reference_corpus_present() -> None:
    assert len(CASES) == 26


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_likelihood__matches_pedprobr(path: Path) -> None:
    exp = _expected(path)
    case = read_case(path)
    fam = case.family(exp["family"])
    ll = fam.loglik(case.markers, theta=case.theta)
    bad = {m: (ll.per_marker[m], v) for m, v in exp["loglik"].items() if not _close(ll.per_marker[m], v)}
    assert not bad
    assert _close(ll.total, exp["loglik_total"])


@pytest.mark.parametrize("path", CASES[:3] + CASES[-3:], ids=lambda p: p.stem)
def test_likelihood__without_mutation_matches_pedprobr(path: Path) -> None:
    exp = _expected(path)
    case = read_case(path)
    fam = case.family(exp["family"])
    markers = [m.without_mutation() for m in case.markers]
    ll = fam.loglik(markers, theta=case.theta)
    for m, v in exp["loglik_no_mutation"].items():
        assert _close(ll.per_marker[m], v), m


def test_cli_likelihood__json_matches_reference() -> None:
    path = REFERENCE / "likelihood" / "lik-pub-22-trio-mendelian-errors.json"
    out = run("likelihood", path, "--format", "json", check=True)
    data = json.loads(out.stdout)
    exp = _expected(path)
    (fam,) = data["families"]
    assert fam["family"] == "FAM1"
    for m, v in exp["loglik"].items():
        assert _close(fam["loglik"][m], v)
    assert _close(fam["loglik_total"], exp["loglik_total"])
