"""opendvi.dvi on small cases with closed forms and brute force.

Pairings (sex from the record or Amelogenin, unknown sex, explicit
restriction), pairwise LRs in closed form and against the brute-force
likelihood with theta and dropout, direct matching of remains, grouping,
consensus profiles, personal effects, priors, GLR and the CLI's JSON.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from opendvi.core.case import Case, Family, Sample
from opendvi.core.direct_match import marker_direct_log_lr
from opendvi.core.markers import make_marker
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.dvi import (
    DVIError,
    DVIProblem,
    JointRow,
    assignment_loglik,
    consensus_profile,
    direct_match_log_lr,
    find_undisputed,
    group_remains,
    pairwise_lr,
    solve_joint,
)
from opendvi.io.case_json import case_to_dict

from .brute_force import brute_force_loglik
from .clikit import run

P = [0.1, 0.2, 0.3, 0.4]
M1 = make_marker("M1", ["a", "b", "c", "d"], P)
M2 = make_marker("M2", ["1", "2", "3"], [0.5, 0.3, 0.2])
AMEL = make_marker("AMEL", ["X", "Y"], [0.5, 0.5])


def _trio_family(fid: str = "F1", *, mp: str = "MP", sex: str = "M", father_gt: tuple[str, str] = ("a", "b")) -> Family:
    fa, mo = f"{fid}FA", f"{fid}MO"
    ped = Pedigree([Individual(fa, sex="M"), Individual(mo, sex="F"), Individual(mp, fa, mo, sex)])
    return Family(fid, ped, {f"{fid}FA": {"M1": father_gt}}, (mp,))


def test_pairwise__parent_child_closed_form() -> None:
    # father a/b, mother untyped; V = a/c: LR = (p_c / 2) / (2 p_a p_c) = 1 / (4 p_a)
    case = Case("t", (M1,), remains=(Sample("V", "M", {"M1": ("a", "c")}),), families=(_trio_family(),))
    pw = pairwise_lr(DVIProblem(case))
    assert pw.lr("V", "MP") == pytest.approx(1 / (4 * 0.1), rel=1e-12)
    assert pw.exclusions["V"]["MP"] == 0


def test_pairwise__exclusion_is_zero_and_counted() -> None:
    case = Case("t", (M1,), remains=(Sample("V", "M", {"M1": ("c", "d")}),), families=(_trio_family(),))
    pw = pairwise_lr(DVIProblem(case))
    assert pw.lr("V", "MP") == 0.0 and pw.exclusions["V"]["MP"] == 1


def test_pairwise__theta_and_dropout_match_brute_force() -> None:
    fam = _trio_family()
    v = Sample("V", "M", {"M1": ("c",)}, dropout=0.2)
    case = Case("t", (M1,), remains=(v,), families=(fam,), theta=0.03)
    pw = pairwise_lr(DVIProblem(case))
    num = brute_force_loglik(fam.pedigree, M1, {"F1FA": ("a", "b"), "MP": ("c",)}, theta=0.03, dropout={"MP": 0.2})
    ped2 = fam.pedigree.add(Individual("V", sex="M"))
    den = brute_force_loglik(ped2, M1, {"F1FA": ("a", "b"), "V": ("c",)}, theta=0.03, dropout={"V": 0.2})
    assert pw.log_lr["V"]["MP"] == pytest.approx(num - den, abs=1e-12)
    assert pw.exclusions["V"]["MP"] == 0  # c alone may be c/a with a dropped out


def test_pairings__sex_amelogenin_unknown_and_restriction() -> None:
    fams = (_trio_family("F1", mp="MA", sex="M"), _trio_family("F2", mp="MB", sex="F"))
    remains = (
        Sample("V1", None, {"M1": ("a", "c"), "AMEL": ("X", "Y")}),  # male by Amelogenin
        Sample("V2", None, {"M1": ("a", "c"), "AMEL": ("X", "X")}),  # female by Amelogenin
        Sample("V3", None, {"M1": ("a", "c")}),  # unknown: any sex
        Sample("V4", "F", {"M1": ("a", "c")}),
    )
    case = Case("t", (M1, AMEL), remains=remains, families=fams, pairings={"V4": ("MA", "MB")})
    problem = DVIProblem(case)
    assert problem.amelogenin == "AMEL" and [m.name for m in problem.markers] == ["M1"]
    assert problem.admissible == {"V1": ("MA",), "V2": ("MB",), "V3": ("MA", "MB"), "V4": ("MB",)}
    assert any("V4 -> MA dropped" in n for n in problem.notes)
    pw = pairwise_lr(problem)
    assert pw.lr("V1", "MB") is None and pw.lr("V1", "MA") == pytest.approx(2.5)
    # Amelogenin takes no part in the LR
    restricted = DVIProblem(Case("t", (M1, AMEL), remains=remains[:1], families=fams, pairings={"V1": ("MA",)}))
    assert restricted.admissible == {"V1": ("MA",)}
    assert pairwise_lr(DVIProblem(case, ignore_sex=True)).lr("V1", "MB") == pytest.approx(2.5)


def test_pairings__unknown_missing_person_is_an_error() -> None:
    v = Sample("V", "M", {"M1": ("a", "c")})
    case = Case("t", (M1,), remains=(v,), families=(_trio_family(),), pairings={"V": ("NOPE",)})
    with pytest.raises(DVIError, match="NOPE"):
        DVIProblem(case)


def test_direct_match__closed_forms() -> None:
    ab = ("a", "b")
    assert math.exp(marker_direct_log_lr(M1, ab, 0.0, ab, 0.0)) == pytest.approx(1 / (2 * 0.1 * 0.2))
    assert math.exp(marker_direct_log_lr(M1, ("a", "a"), 0.0, ("a", "a"), 0.0)) == pytest.approx(1 / 0.01)
    assert marker_direct_log_lr(M1, ab, 0.0, ("a", "c"), 0.0) == -math.inf
    d = 0.3
    pa = 0.1
    p_a_alone = pa * pa * (1 - d * d) + 2 * pa * (1 - pa) * d * (1 - d)
    assert math.exp(marker_direct_log_lr(M1, ab, 0.0, ("a",), d)) == pytest.approx(d * (1 - d) / p_a_alone, rel=1e-12)
    # theta: one person's genotype probability p_a (theta + (1 - theta) p_a)
    th = 0.05
    assert math.exp(marker_direct_log_lr(M1, ("a", "a"), 0.0, ("a", "a"), 0.0, theta=th)) == pytest.approx(
        1 / (pa * (th + (1 - th) * pa))
    )
    # X marker, males: one allele
    x = make_marker("X1", ["a", "b"], [0.25, 0.75], chromosome="X")
    assert math.exp(marker_direct_log_lr(x, ("a", "a"), 0.0, ("a", "a"), 0.0, hemizygous=True)) == pytest.approx(4.0)


def test_direct_match__sexes_differ_and_untyped_markers() -> None:
    a = Sample("A", "M", {"M1": ("a", "b")})
    assert direct_match_log_lr(a, Sample("B", "F", {"M1": ("a", "b")}), [M1, M2]) == -math.inf
    assert direct_match_log_lr(a, Sample("B", None, {"M2": ("1", "2")}), [M1, M2]) == 0.0


def _fragments_case() -> Case:
    fam = _trio_family()
    remains = (
        Sample("V1", "M", {"M1": ("a", "c"), "M2": ("1", "2")}),
        Sample("V2", None, {"M1": ("a",), "M2": ("2",)}, dropout=0.3),  # fragment of V1
        Sample("V3", "M", {"M1": ("b", "d"), "M2": ("3", "3")}),
    )
    return Case("frag", (M1, M2), remains=remains, families=(fam,))


def test_group_remains__fragments_and_consensus() -> None:
    problem = DVIProblem(_fragments_case())
    m = group_remains(problem, threshold=2.0)
    assert m.groups == [["V1", "V2"]]
    assert m.log_lr[("V1", "V3")] == -math.inf and not m.conflicts
    prof, notes = consensus_profile([problem.remains[r] for r in m.groups[0]])
    assert prof.genotypes == {"M1": ("a", "c"), "M2": ("1", "2")} and prof.sex == "M" and not notes
    prof2, notes2 = consensus_profile([problem.remains["V1"], problem.remains["V3"]])
    assert "M1" not in prof2.genotypes and any("left out" in n for n in notes2)
    assert consensus_profile([Sample("A", genotypes={"M1": ("a",)}, dropout=0.2)])[0].genotypes == {"M1": ("a",)}


def test_personal_effects__member_self_is_matched_directly_and_leaves_the_pedigree() -> None:
    fam = _trio_family()
    ped = fam.pedigree.add(Individual("MP.self", sex="M"))
    fam = Family("F1", ped, {**fam.genotypes, "MP.self": {"M1": ("a", "c"), "M2": ("1", "2")}}, ("MP",))
    v = Sample("V1", "M", {"M1": ("a", "c"), "M2": ("1", "2")})
    problem = DVIProblem(Case("pe", (M1, M2), remains=(v,), families=(fam,)))
    assert "MP.self" not in problem.families["F1"].pedigree
    m = group_remains(problem)
    want = 1 / (2 * 0.1 * 0.3) / (2 * 0.5 * 0.3)
    assert math.exp(m.personal_effects[("V1", "MP")]) == pytest.approx(want)
    # the pedigree LR is that of the family without the personal-effects sample
    assert pairwise_lr(problem).lr("V1", "MP") == pytest.approx(2.5)


def _two_family_case() -> Case:
    fams = (_trio_family("F1", mp="MA"), _trio_family("F2", mp="MB", father_gt=("a", "d")))
    remains = (Sample("V1", "M", {"M1": ("a", "c")}), Sample("V2", "M", {"M1": ("a", "d")}))
    return Case("two", (M1,), remains=remains, families=fams)


def test_joint__prior_weights_and_glr() -> None:
    problem = DVIProblem(_two_family_case())
    flat = solve_joint(problem, top=100)
    assert flat.n_assignments == len(flat.rows)
    assert math.fsum(r.posterior for r in flat.rows) == pytest.approx(1.0)
    for r in flat.rows:
        assert r.loglik == pytest.approx(assignment_loglik(problem, r.assignment))
    best = flat.best.assignment
    weighted = solve_joint(problem, top=100, prior={("V1", best["V1"]): 0.0} if best["V1"] != "*" else None)
    if best["V1"] != "*":
        assert all(r.assignment["V1"] != best["V1"] or r.posterior == 0 for r in weighted.rows)
    # GLR: best with V's call against best without it, by enumeration
    glr = flat.glr()
    for rid, call in best.items():
        with_call = max(r.loglik for r in flat.rows if r.assignment[rid] == call)
        without = [r.loglik for r in flat.rows if r.assignment[rid] != call]
        assert glr[rid] == pytest.approx(with_call - max(without))
    # and by missing person: the remains it got (or nobody) against anything else
    glr_m = flat.glr_missing()
    for mp in ("MA", "MB"):
        got = next((r for r, m in best.items() if m == mp), "*")

        def src(row: JointRow, mp: str = mp) -> str:
            return next((r for r, m in row.assignment.items() if m == mp), "*")

        with_it = max(r.loglik for r in flat.rows if src(r) == got)
        alt = [r.loglik for r in flat.rows if src(r) != got]
        assert glr_m[mp] == pytest.approx(with_it - max(alt))


def test_undisputed__iterates_and_places_profile() -> None:
    problem = DVIProblem(_two_family_case())
    res = find_undisputed(problem, threshold=1.5)
    assert {(u.remains, u.missing) for u in res.identified} <= {("V1", "MA"), ("V2", "MB"), ("V1", "MB"), ("V2", "MA")}
    for u in res.identified:
        fam = res.remaining.families[u.family]
        assert u.missing not in fam.missing and fam.genotypes[u.missing] == problem.remains[u.remains].genotypes
    with pytest.raises(DVIError):
        find_undisputed(problem, threshold=1.0)


def test_cli_match_remains_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "frag.json"
    path.write_text(json.dumps(case_to_dict(_fragments_case())))
    out = run("match-remains", path, "--format", "json", "--threshold", "2", check=True)
    data = json.loads(out.stdout)
    assert data["groups"] == [["V1", "V2"]]
    assert data["consensus"]["V1+V2"]["genotypes"] == {"M1": ["a", "c"], "M2": ["1", "2"]}
    table = run("match-remains", path, "--threshold", "2", check=True)
    assert "V1" in table.stdout and "consensus" in table.stdout
    bad = run("solve", tmp_path / "nope.json")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_dvi_layer__imports_no_cli_web_or_db_library() -> None:
    code = (
        "import sys, opendvi.dvi\n"
        "bad = [m for m in ('typer', 'rich', 'click', 'fastapi', 'sqlalchemy', 'dask') if m in sys.modules]\n"
        "ok = ('opendvi.core', 'opendvi.dvi')\n"
        "mine = [m for m in sys.modules if m.startswith('opendvi.') and not m.startswith(ok)]\n"
        "assert not bad and not mine, (bad, mine)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pairwise__family_with_impossible_references_is_skipped_with_a_note() -> None:
    # core.rules: the family cannot be evaluated; it is skipped with a note
    # naming it and the marker, and the rest of the case goes on
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("CH", "FA", "MO", "M")])
    ped = ped.add(Individual("MQ", "FA", "MO", "M"))
    refs = {"FA": {"M1": ("a", "a")}, "MO": {"M1": ("a", "a")}, "CH": {"M1": ("d", "d")}}
    bad = Family("F1", ped, refs, ("MQ",))
    case = Case("t", (M1,), remains=(Sample("V", "M", {"M1": ("a", "c")}),), families=(bad, _trio_family("F2")),
                pairings={"V": ("MQ", "MP")})
    problem = DVIProblem(case)
    assert problem.skipped == {"F1": ("M1",)} and list(problem.missing) == ["MP"]
    assert problem.missing["MP"].family == "F2"
    assert any(n.startswith("family F1: the references are impossible at marker M1") for n in problem.notes)
    pw = pairwise_lr(problem)
    assert pw.lr("V", "MP") == pytest.approx(2.5)
    assert solve_joint(problem).null_loglik > -math.inf


def test_joint__relabelling_and_reordering_remains_changes_nothing() -> None:
    from dataclasses import replace

    case = _two_family_case()
    base = solve_joint(DVIProblem(case), top=50)
    rev = replace(case, remains=tuple(replace(r, id=f"X{r.id}") for r in reversed(case.remains)))
    other = solve_joint(DVIProblem(rev), top=50)
    assert other.n_assignments == base.n_assignments
    got = {tuple(sorted((k[1:], v) for k, v in r.assignment.items())): r.loglik for r in other.rows}
    for r in base.rows:
        assert got[tuple(sorted(r.assignment.items()))] == pytest.approx(r.loglik, abs=1e-12)


def test_pairwise__marker_without_typed_references_contributes_one() -> None:
    # likelihood.md: a marker all of whose references are untyped contributes
    # LR 1, also under a non-stationary stepwise model (where the missing
    # person's marginal genotype differs slightly from Hardy-Weinberg); the
    # joint LR of the one-pair assignment agrees with the pairwise LR.
    from opendvi.core.mutation import MutationModel

    step = MutationModel("stepwise", rate=0.05, rate2=0.01, range=0.5)
    m_step = make_marker("S", ["9", "10", "11", "12"], [0.1, 0.2, 0.3, 0.4], female=step, male=step)
    fam = _trio_family()  # references typed at M1 only
    case = Case("c", (M1, m_step), (Sample("V1", "M", {"M1": ("a", "c"), "S": ("9", "12")}),), (fam,))
    problem = DVIProblem(case)
    res = pairwise_lr(problem, keep_markers=True)
    per = res.per_marker[("V1", "MP")]
    assert per["S"] == 0.0
    assert per["M1"] == pytest.approx(math.log(1 / (4 * P[0])), rel=1e-12)
    joint = solve_joint(problem, top=10)
    row = next(r for r in joint.rows if r.assignment == {"V1": "MP"})
    assert row.loglik - joint.null_loglik == pytest.approx(res.log_lr["V1"]["MP"], rel=1e-12)
