"""Screening == pairwise LRs on the reference corpus (dvir 3.4.2).

Expected values: ``shared/data/reference/dvi/<name>.expected.json``,
``pairwise`` = ``dvir::pairwiseLR(dvi)$LRmatrix`` and ``exclusions`` =
``dvir::exclusionMatrix(dvi)`` (calls recorded in each file under ``calls``).
Tolerance: relative 1e-9 on the LR, an LR of 0 exactly, exclusion counts
identical; ``null`` (a pairing dvir does not consider: different sexes) must
be absent from the screening's result.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from opendvi.io.case_json import read_case

from .conftest import REFERENCE
from .screening_reference import assert_same, brute_pairwise, screen_all

CASES = sorted(p for p in (REFERENCE / "dvi").glob("*.json") if not p.name.endswith(".expected.json"))


def _expected(path: Path) -> dict:
    return json.loads(path.with_name(path.stem + ".expected.json").read_text())


def test_reference_corpus__present() -> None:
    assert len(CASES) == 12


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_screen__matches_dvir_pairwise_and_exclusions(path: Path) -> None:
    exp = _expected(path)
    case = read_case(path)
    got, excl = screen_all(case)
    want = {
        v: {m: (math.log(lr) if lr > 0 else -math.inf) for m, lr in row.items() if lr is not None}
        for v, row in exp["pairwise"].items()
    }
    assert_same(got, want)
    want_x = {v: {m: x for m, x in row.items() if x is not None} for v, row in exp["exclusions"].items()}
    for v, row in want_x.items():
        for m in want[v]:
            assert excl[v][m] == row[m], (v, m)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_screen__matches_brute_per_pair_engine(path: Path) -> None:
    case = read_case(path)
    got, excl = screen_all(case)
    want, want_x = brute_pairwise(case)
    assert_same(got, want)
    assert excl == want_x


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_screen__general_engine_path_gives_the_same(path: Path) -> None:
    case = read_case(path)
    fast, fx = screen_all(case)
    slow, sx = screen_all(case, use_templates=False)
    assert_same(fast, slow, rel=1e-12)
    assert fx == sx


def _dvi_pairwise():  # type: ignore[no-untyped-def]
    try:
        from opendvi.dvi.pairwise import pairwise_lr
        from opendvi.dvi.problem import DVIProblem
    except ImportError:  # pragma: no cover - the dvi package is written beside this one
        return None
    return DVIProblem, pairwise_lr


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_screen__matches_opendvi_dvi_pairwise(path: Path) -> None:
    api = _dvi_pairwise()
    if api is None:
        pytest.skip("opendvi.dvi.pairwise not available")
    DVIProblem, pairwise_lr = api
    case = read_case(path)
    res = pairwise_lr(DVIProblem(case))
    got, excl = screen_all(case)
    assert_same(got, res.log_lr)
    assert excl == res.exclusions
