"""Agreement with dvir 3.4.2 on its twelve data sets (shared/data/reference/dvi).

Expected values: ``gen/compute_dvi.R`` (``dvir::pairwiseLR(dvi)``,
``dvir::exclusionMatrix(dvi)``, ``dvir::findUndisputed(dvi, threshold = 1e4)``,
``dvir::jointDVI(dvi, undisputed = FALSE, disableMutations = FALSE)``); the
exact calls are in each ``<case>.expected.json`` under ``calls``.
Tolerances: ``shared/data/reference/README.md``.

Deviations from dvir: none is needed on these cases. The README's remark
on KETPchap484 concerns ``amDrivenDVI`` (its LR column shows 9.86e6 where
the pairwise LR of V2 = M2 is 2.67e6); the corpus stores ``pairwiseLR``,
which is right, and so are we (checked below).
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from opendvi.dvi import (
    DVIProblem,
    PairwiseResult,
    assignment_loglik,
    find_undisputed,
    pairwise_lr,
    solve_joint,
)
from opendvi.io.case_json import read_case

from .conftest import REFERENCE

DVI = REFERENCE / "dvi"
NAMES = sorted(p.name[: -len(".expected.json")] for p in DVI.glob("*.expected.json"))
JOINT_NAMES = [n for n in NAMES if n != "exclusionExample"]
#: Joint enumerations that need tens of seconds with today's engine (~2 ms a
#: call on the 23-member pedigrees; 11,857 and 8,460 engine calls).
SLOW_JOINT = {"grave", "icmp"}


@functools.cache
def _load(name: str) -> tuple[DVIProblem, dict[str, Any]]:
    """The case and its expected values (shared between tests: a problem
    caches its engine calls, results do not depend on what ran before)."""
    return DVIProblem(read_case(DVI / f"{name}.json")), json.loads((DVI / f"{name}.expected.json").read_text())


@functools.cache
def _pairwise(name: str) -> PairwiseResult:
    return pairwise_lr(_load(name)[0])


def test_reference_corpus__twelve_cases() -> None:
    assert len(NAMES) == 12


@pytest.mark.parametrize("name", NAMES)
def test_pairwise__matches_dvir(name: str) -> None:
    problem, exp = _load(name)
    pw = _pairwise(name)
    worst = 0.0
    for rid, row in exp["pairwise"].items():
        assert set(row) == set(problem.missing)
        for mp, want in row.items():
            got = pw.lr(rid, mp)
            if want is None:
                assert got is None, (rid, mp)
                assert exp["exclusions"][rid][mp] is None
                continue
            assert got is not None, (rid, mp)
            if want == 0:
                assert got == 0.0, (rid, mp, got)
            else:
                rel = abs(got - want) / want
                worst = max(worst, rel)
                assert rel <= 1e-9, (rid, mp, got, want)
            assert pw.exclusions[rid][mp] == exp["exclusions"][rid][mp], (rid, mp)
    # Worst relative difference seen over the twelve cases: 5.7e-13 (exclusionExample).
    assert worst < 1e-11


@pytest.mark.parametrize("name", NAMES)
def test_undisputed__matches_dvir(name: str) -> None:
    problem, exp = _load(name)
    res = find_undisputed(problem, threshold=1e4, pairwise=_pairwise(name))
    got = {(u.family, u.missing, u.remains, u.step): u.lr for u in res.identified}
    want = {(u["family"], u["missing"], u["remains"], u["step"]): u["LR"] for u in exp["undisputed"]}
    assert set(got) == set(want)
    for key, lr in want.items():
        assert abs(got[key] - lr) <= 1e-9 * lr, key


def _close_ll(got: float, want: float | str) -> bool:
    if want == "-inf":
        return got == -math.inf
    assert isinstance(want, float)
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_JOINT else n for n in JOINT_NAMES]
)
def test_joint__matches_dvir(name: str) -> None:
    problem, exp = _load(name)
    pw = _pairwise(name)
    rows = exp["joint"]
    t0 = time.perf_counter()
    res = solve_joint(problem, pw, top=len(rows))
    elapsed = time.perf_counter() - t0
    assert res.n_assignments == exp["joint_n_assignments"]
    assert _close_ll(res.null_loglik, exp["joint_loglik_null"])
    # the same best assignment (or one tied with it)
    best_exp = rows[0]
    assert _close_ll(res.best.loglik, best_exp["loglik"])
    ties = [r["assignment"] for r in rows if _close_ll(r["loglik"], best_exp["loglik"])]
    assert res.best.assignment in ties
    # our top list has dvir's logliks, in order (tied rows may come in any order)
    assert len(res.rows) == len(rows)
    for ours, theirs in zip(res.rows, rows, strict=True):
        assert _close_ll(ours.loglik, theirs["loglik"])
    # each listed row: loglik, LR and posterior of that assignment
    by_assignment = {tuple(sorted(r.assignment.items())): r for r in res.rows}
    for row in rows:
        tol = 2e-9 * max(1.0, abs(row["loglik"]))
        ours = by_assignment.get(tuple(sorted(row["assignment"].items())))
        if ours is None:  # a tie at the end of the list, listed in another order
            ll = assignment_loglik(problem, row["assignment"])
            assert _close_ll(ll, row["loglik"])
            continue
        assert _close_ll(ours.loglik, row["loglik"])
        assert abs(ours.log_lr - math.log(row["LR"])) <= tol
        assert abs(ours.log_posterior - math.log(row["posterior"])) <= tol
    if name == "planecrash":  # 19,081 assignments: fast enough for the suite
        assert elapsed < 10.0


def test_joint__exclusion_example_solved_not_refused() -> None:
    """dvir refuses (4.0e13 assignments); the exact optimiser solves it whole (issue 10)."""
    problem, exp = _load("exclusionExample")
    assert "not computed" in exp["joint_skipped"]
    res = solve_joint(problem, _pairwise("exclusionExample"), max_assignments=100_000, top=3)
    big = [c for c in res.components if c.method != "enumeration"]
    assert big and res.log_count > math.log(1e13)
    best = res.best.assignment
    assert best["V15"] == "M6" and best["V5"] == "M13"
    assert _close_ll(res.best.loglik, assignment_loglik(problem, best))
    assert res.rows[0].loglik >= res.rows[1].loglik >= res.rows[2].loglik


def test_joint__exclusion_example_solved_after_undisputed_and_threshold() -> None:
    problem, _ = _load("exclusionExample")
    und = find_undisputed(problem, pairwise=_pairwise("exclusionExample"))
    res = solve_joint(
        und.remaining, und.pairwise, lr_threshold=1.0, fixed=und.assignment, null_loglik=problem.null_loglik(), top=3
    )
    best = res.best.assignment
    assert best["V15"] == "M6" and best["V5"] == "M13"
    # the row's loglik is that of the original problem with the same assignment
    assert _close_ll(res.best.loglik, assignment_loglik(problem, best))


def test_pairwise__ketpchap484_v2_m2_is_the_pairwise_lr_not_amdriven() -> None:
    pw = _pairwise("KETPchap484")
    exp = _load("KETPchap484")[1]
    assert abs(pw.lr("V2", "M2") - 2.6660618501467104e6) <= 1e-9 * 2.67e6  # type: ignore[operator]
    assert exp["pairwise"]["V2"]["M2"] == pytest.approx(2.6660618501467104e6, rel=1e-12)


def _json_cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from opendvi.cli.main import app

    out = CliRunner().invoke(app, list(args))
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_cli_pairwise__json_shape_and_values() -> None:
    path: Path = DVI / "KETPchap484.json"
    data = _json_cli("pairwise", str(path), "--format", "json")
    exp = json.loads((DVI / "KETPchap484.expected.json").read_text())
    assert set(data) == {"lr", "log10_lr", "exclusions"}
    assert data["lr"]["V1"]["M2"] is None and data["log10_lr"]["V1"]["M2"] is None
    assert data["exclusions"] == exp["exclusions"]
    for rid, row in exp["pairwise"].items():
        for mp, want in row.items():
            if want:
                assert data["lr"][rid][mp] == pytest.approx(want, rel=1e-9)
                assert data["log10_lr"][rid][mp] == pytest.approx(math.log10(want), abs=1e-9)


def test_cli_pairwise__lr_zero_is_number_zero_and_log_is_minus_inf_string() -> None:
    data = _json_cli("pairwise", str(DVI / "example1.json"), "--format", "json")
    zeros = [(r, m) for r, row in data["lr"].items() for m, v in row.items() if v == 0]
    assert zeros
    for r, m in zeros:
        assert data["lr"][r][m] == 0 and isinstance(data["lr"][r][m], (int, float))
        assert data["log10_lr"][r][m] == "-inf"


def test_cli_solve__json_shape() -> None:
    data = _json_cli(
        "solve", str(DVI / "planecrash.json"), "--format", "json", "--top", "3", "--no-undisputed",
        "--max-exclusions", "-1",
    )
    exp = json.loads((DVI / "planecrash.expected.json").read_text())
    assert set(data) == {"joint", "undisputed", "groups", "summary"}
    assert len(data["joint"]) == 3
    row = data["joint"][0]
    assert set(row) == {"assignment", "loglik", "lr", "posterior"}
    assert row["assignment"] == exp["joint"][0]["assignment"]
    assert row["lr"] == pytest.approx(exp["joint"][0]["LR"], rel=1e-8)
    assert row["posterior"] == pytest.approx(exp["joint"][0]["posterior"], rel=1e-8)
    data = _json_cli("solve", str(DVI / "planecrash.json"), "--format", "json", "--top", "3")  # the whole workflow
    assert data["joint"][0]["assignment"] == exp["joint"][0]["assignment"]
    assert {(u["remains"], u["missing"]) for u in data["undisputed"]} == {
        (u["remains"], u["missing"]) for u in exp["undisputed"]
    }
    assert set(data["undisputed"][0]) == {"family", "missing", "remains", "lr"}
    assert data["groups"] == []


def test_cli_solve__beyond_enumeration_is_solved_not_refused() -> None:
    data = _json_cli(
        "solve", str(DVI / "planecrash.json"), "--format", "json", "--top", "1", "--max-assignments", "1000",
        "--no-undisputed", "--max-exclusions", "-1",
    )
    exp = json.loads((DVI / "planecrash.expected.json").read_text())
    assert data["joint"][0]["assignment"] == exp["joint"][0]["assignment"]
    assert data["joint"][0]["posterior"] == pytest.approx(exp["joint"][0]["posterior"], rel=1e-8)
    assert data["summary"]["components"][0]["method"] == "dynamic programming"


def test_cli_solve__fix_undisputed_keeps_planecrash_best() -> None:
    data = _json_cli("solve", str(DVI / "planecrash.json"), "--format", "json", "--top", "1", "--fix-undisputed")
    exp = json.loads((DVI / "planecrash.expected.json").read_text())
    row = data["joint"][0]
    assert row["assignment"] == exp["joint"][0]["assignment"]
    assert list(row["assignment"]) == list(exp["joint"][0]["assignment"])  # remains in case order
    assert math.log(row["lr"]) == pytest.approx(math.log(exp["joint"][0]["LR"]), abs=1e-8)
