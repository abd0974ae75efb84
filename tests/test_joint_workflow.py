"""The whole workflow (dvir's dviSolve) of ``opendvi solve`` (issue 10)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opendvi.cli.main import app
from opendvi.dvi.workflow import EXCLUDED, IDENTIFIED, UNDECIDED, SolveOptions, solve_case
from opendvi.io.case_json import read_case, write_case

from .conftest import REFERENCE
from .dvi_sim import SHAPES, demo_markers, simulate_case

DVI = REFERENCE / "dvi"


def test_workflow__simulated_case_identifies_the_truth_and_nothing_else() -> None:
    case, truth = simulate_case(SHAPES, n_unrelated=4, seed=11, markers=demo_markers(mutation=True))
    sol = solve_case(case)
    ident = sol.identified()
    assert ident and all(truth.get(r) == m for r, m in ident.items())
    # every remains and every missing person has one line
    assert [c.remains for c in sol.remains] == [r.id for r in case.remains]
    assert sorted(c.missing for c in sol.missing) == sorted(m for f in case.families for m in f.missing)
    for c in sol.remains:
        if c.conclusion == IDENTIFIED and c.step == "joint":
            assert c.posterior is not None and c.posterior[0] >= 0.999
            assert c.log_lr is not None and c.log_lr >= math.log(1e4)
            assert c.log_glr is not None and c.log_glr >= math.log(1e4)
    # unrelated remains are never identified
    assert all(c.conclusion != IDENTIFIED for c in sol.remains if c.remains not in truth)
    assert sol.undisputed.identified and sol.pairwise_method == "engine"


def test_workflow__exclusion_reduction_excludes_remains_and_missing() -> None:
    case, truth = simulate_case(["parents", "sibling", "child"], n_unrelated=5, seed=3, found=0.5)
    sol = solve_case(case, SolveOptions(max_exclusions=0))
    excluded = {c.remains for c in sol.remains if c.conclusion == EXCLUDED}
    for rid in excluded:
        assert not sol.candidates[rid]
        assert all(sol.pairwise.exclusions[rid][m] > 0 or sol.pairwise.log_lr[rid][m] == -math.inf
                   for m in sol.pairwise.log_lr[rid])
    assert excluded
    assert all(r not in truth for r in excluded)
    lost = [c for c in sol.missing if c.conclusion == EXCLUDED]
    assert all(c.missing not in truth.values() for c in lost)


def test_workflow__symmetric_brothers_are_undecided_with_the_partner_named() -> None:
    sol = solve_case(read_case(DVI / "symmetricSibs.json"), SolveOptions(undisputed=False, max_exclusions=None))
    sym = [c for c in sol.remains if c.symmetric]
    assert sym, [(c.remains, c.conclusion, c.log_glr) for c in sol.remains]
    for c in sym:
        assert c.conclusion == UNDECIDED and "symmetric" in c.comment
        assert c.log_glr is not None and abs(c.log_glr) < 1e-9


def test_workflow__dvir_exclusion_example_is_answered_whole() -> None:
    sol = solve_case(read_case(DVI / "exclusionExample.json"))
    assert sol.identified().get("V15") == "M6" or any(
        c.remains == "V15" and c.missing == "M6" for c in sol.remains
    )
    assert all(c.method != "not solved" for c in sol.joint.components)


def test_cli_solve__json_summary(tmp_path: Path) -> None:
    case, truth = simulate_case(SHAPES, n_unrelated=3, seed=12)
    path = tmp_path / "case.json"
    write_case(case, path)
    out = CliRunner().invoke(app, ["solve", str(path), "--format", "json", "--top", "3"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data) == {"joint", "undisputed", "groups", "summary"}
    summ = data["summary"]
    assert set(summ) >= {"remains", "missing", "families", "components", "counts", "options", "seconds", "notes"}
    line = summ["remains"][0]
    assert set(line) >= {"conclusion", "lr", "posterior", "posterior_interval", "posterior_exact", "glr", "symmetric"}
    assert summ["options"]["max_exclusions"] == 2
    for c in summ["remains"]:
        if c["conclusion"] == "identified":
            assert truth[c["remains"]] == c["missing"]
        if c["posterior_exact"] is False:
            assert c["posterior"] is None and c["posterior_interval"] is not None
    # the table form runs too
    out = CliRunner().invoke(app, ["solve", str(path), "--top", "2"])
    assert out.exit_code == 0 and "Summary by remains" in out.stdout


@pytest.mark.slow
def test_cli_solve__simulated_exchange_of_200_remains(tmp_path: Path) -> None:
    """``opendvi simulate`` shapes and fragments, 200 remains and families:
    exit 0 with default options, no wrong identification."""
    from opendvi.screening import simulate_case as national

    case, truth = national(families=200, remains=200, seed=201)
    path = tmp_path / "case.json"
    write_case(case, path)
    out = CliRunner().invoke(app, ["solve", str(path), "--format", "json"])
    assert out.exit_code == 0, out.output
    summ = json.loads(out.stdout)["summary"]
    ident = {c["remains"]: c["missing"] for c in summ["remains"] if c["conclusion"] == "identified"}
    assert len(ident) > 60
    assert all(truth.missing[r] == m for r, m in ident.items())


def test_workflow__too_hard_component_is_named_and_the_rest_is_solved(monkeypatch: pytest.MonkeyPatch) -> None:
    from opendvi.dvi import assignment

    case, truth = simulate_case(
        ["father_and_son", "parents", "sibling", "child"], n_unrelated=3, seed=12, markers=demo_markers(6)
    )
    monkeypatch.setattr(assignment, "MAX_FAMILY_OPTIONS", 2)
    sol = solve_case(case, SolveOptions(max_assignments=1, undisputed=False))
    hard = [c for c in sol.joint.components if c.method == "not solved"]
    assert hard and all("F1" in c.message and "--max-exclusions" in c.message for c in hard)
    assert any("not solved" in n for n in sol.notes)
    assert [c for c in sol.joint.components if c.method != "not solved"]
    for c in sol.remains:
        if sol.joint.components and any(c.remains in h.remains for h in hard):
            assert c.conclusion == UNDECIDED
    assert all(truth.get(r) == m for r, m in sol.identified().items())
