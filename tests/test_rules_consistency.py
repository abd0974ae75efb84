"""One rule, every engine: the same cases through ``opendvi pairwise``
(:func:`opendvi.dvi.pairwise_lr`), ``opendvi screen``
(:func:`opendvi.screening.screen`) and joint identification (the joint LR of
the assignment that makes one pairing, against nobody identified), with
identical numbers (relative 1e-9) and identical exclusion counts, admissible
pairings and notes.

Cases: dvir's twelve reference data sets; simulated cases with dropout,
fragments, partial profiles and unknown sexes; remains whose Amelogenin
shows a lone X; a family whose references are impossible at a marker; a
family whose references are inconsistent without mutation; markers at which
no reference is typed (under a non-stationary mutation model). The rules
themselves: :mod:`opendvi.core.rules`, :mod:`opendvi.core.observation`,
docs/statistics.md ("One rule in every engine"), decision 0004.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest

from opendvi.core.case import Case, Family, Sample
from opendvi.core.likelihood import marker_loglik
from opendvi.core.markers import make_marker
from opendvi.core.mutation import MutationModel
from opendvi.core.observation import genotype_observation, observed_value, observed_values
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.rules import (
    amelogenin_sex,
    counts_as_exclusion,
    json_number,
    lr_is_one,
    resolve_sex,
    safe_exp,
    unevaluable_family,
)
from opendvi.dvi import DVIProblem, assignment_loglik, pairwise_lr
from opendvi.io.case_json import read_case
from opendvi.screening import screen, simulate_case

from .conftest import REFERENCE
from .screening_reference import brute_pairwise

DVI = REFERENCE / "dvi"
CASES = sorted(DVI.glob("*.json"))
CASES = [p for p in CASES if not p.name.endswith(".expected.json")]
REL = 1e-9

P = [0.1, 0.2, 0.3, 0.4]
M1 = make_marker("M1", ["a", "b", "c", "d"], P)
M2 = make_marker("M2", ["1", "2", "3"], [0.5, 0.3, 0.2])
AMEL = make_marker("AMEL", ["X", "Y"], [0.5, 0.5])
STEP = MutationModel("stepwise", rate=0.05, rate2=0.01, range=0.5)
S = make_marker("S", ["9", "10", "11", "12"], [0.1, 0.2, 0.3, 0.4], female=STEP, male=STEP)
EQ = MutationModel("equal", rate=0.01)
E1 = make_marker("E1", ["a", "b", "c", "d"], P, female=EQ, male=EQ)


# ---------------------------------------------------------------------------
# the three engines
# ---------------------------------------------------------------------------


class Engines:
    """One case through the three engines."""

    def __init__(self, case: Case) -> None:
        self.problem = DVIProblem(case)
        self.pairwise = pairwise_lr(self.problem)
        n = sum(len(f.missing) for f in case.families)
        self.screen = screen(case, top=max(1, n), threshold=None, parallel=False)
        self.null = self.problem.null_loglik()

    def screened(self) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
        log_lr: dict[str, dict[str, float]] = {r: {} for r in self.problem.remains}
        excl: dict[str, dict[str, int]] = {r: {} for r in self.problem.remains}
        for v, m, s, x in self.screen.pairs():
            log_lr[v][m] = s
            excl[v][m] = x
        return log_lr, excl

    def joint_log_lr(self, rid: str, mp: str) -> float:
        """ln LR of the assignment {rid: mp} (everyone else unidentified)."""
        ll = assignment_loglik(self.problem, {rid: mp})
        return -math.inf if ll == -math.inf else ll - self.null

    def rule_notes(self) -> tuple[set[str], set[str]]:
        """The notes the shared rules write, from pairwise and from screening."""

        def mine(notes: list[str]) -> set[str]:
            return {n for n in notes if n.startswith("family ") or "Amelogenin" in n}

        return mine(self.problem.notes), mine(self.screen.notes)


def _close(got: float, want: float, rel: float = REL) -> bool:
    if want == -math.inf or got == -math.inf:
        return got == want
    return abs(math.expm1(got - want)) <= rel


def assert_engines_agree(case: Case, *, joint: bool = True) -> Engines:
    """Pairwise, screening and (theta = 0) the joint LR of one pairing give
    the same numbers, exclusion counts, admissible pairings and notes."""
    e = Engines(case)
    pw = e.pairwise
    s_lr, s_x = e.screened()
    # the screening's reference checks, as data, are the problem's own (the service reuses them)
    known = DVIProblem(case, reference_checks=(e.screen.unevaluable, e.screen.inconsistent))
    assert (known.skipped, known.inconsistent, known.notes) == (e.problem.skipped, e.problem.inconsistent,
                                                               e.problem.notes)
    for rid in e.problem.remains:
        assert set(s_lr[rid]) == set(pw.log_lr[rid]), rid  # the same admissible pairings
        for mp, want in pw.log_lr[rid].items():
            assert _close(s_lr[rid][mp], want), ("screening", rid, mp, s_lr[rid][mp], want)
            assert s_x[rid][mp] == pw.exclusions[rid][mp], ("exclusions", rid, mp)
            if joint and case.theta == 0.0:
                j = e.joint_log_lr(rid, mp)
                assert _close(j, want), ("joint", rid, mp, j, want)
    p_notes, s_notes = e.rule_notes()
    assert p_notes == s_notes
    return e


# ---------------------------------------------------------------------------
# dvir's reference data sets and simulated cases
# ---------------------------------------------------------------------------


@functools.cache
def _reference(path: Path) -> Case:
    return read_case(path)


def test_reference_corpus__twelve_cases() -> None:
    assert len(CASES) == 12


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_engines_agree__dvir_reference_sets(path: Path) -> None:
    assert_engines_agree(_reference(path))


@pytest.mark.parametrize("seed", [1, 2])
def test_engines_agree__simulated_with_dropout_fragments_and_unknown_sexes(seed: int) -> None:
    case, _ = simulate_case(families=20, remains=20, seed=seed)
    assert any(r.dropout > 0 for r in case.remains) and any(r.sex is None for r in case.remains)
    assert any(len(gt) == 1 for r in case.remains for gt in r.genotypes.values())
    e = assert_engines_agree(case)
    assert sum(len(v) for v in e.pairwise.log_lr.values()) > 200


# ---------------------------------------------------------------------------
# the rules, case by case
# ---------------------------------------------------------------------------


def _trio(fid: str, mp: str, sex: str, refs: dict[str, dict[str, tuple[str, ...]]]) -> Family:
    fa, mo = f"{fid}FA", f"{fid}MO"
    ped = Pedigree([Individual(fa, sex="M"), Individual(mo, sex="F"), Individual(mp, fa, mo, sex)])
    return Family(fid, ped, {k.replace("FA", fa).replace("MO", mo): v for k, v in refs.items()}, (mp,))


def test_lone_x__a_degraded_male_is_not_excluded_from_male_missing_persons() -> None:
    fams = (
        _trio("F1", "MA", "M", {"FA": {"M1": ("a", "b"), "M2": ("1", "2")}}),
        _trio("F2", "MB", "F", {"FA": {"M1": ("a", "c"), "M2": ("1", "1")}, "MO": {"M1": ("d", "d")}}),
    )
    remains = (
        Sample("V1", "F", {"M1": ("a",), "M2": ("1",), "AMEL": ("X",)}, dropout=0.3),  # F record, lone X: unknown
        Sample("V2", None, {"M1": ("a", "c"), "AMEL": ("X",)}),  # lone X: unknown
        Sample("V3", "M", {"M1": ("a", "d"), "AMEL": ("X",)}, dropout=0.2),  # male whose Y dropped out
        Sample("V4", None, {"M1": ("b", "d"), "AMEL": ("X", "Y")}),  # male
        Sample("V5", None, {"M1": ("c", "d"), "AMEL": ("X", "X")}),  # female
        Sample("V6", "M", {"M1": ("c", "c"), "AMEL": ("X", "X")}),  # conflict: unknown
    )
    case = Case("lonex", (M1, M2, AMEL), remains=remains, families=fams)
    e = assert_engines_agree(case)
    adm = e.problem.admissible
    assert adm == {
        "V1": ("MA", "MB"),
        "V2": ("MA", "MB"),
        "V3": ("MA",),
        "V4": ("MA",),
        "V5": ("MB",),
        "V6": ("MA", "MB"),
    }
    assert e.pairwise.lr("V1", "MA") is not None and e.pairwise.lr("V1", "MA") > 0  # type: ignore[operator]
    p_notes, _ = e.rule_notes()
    assert any(n.startswith("remains V1: recorded sex F but Amelogenin shows a lone X") for n in p_notes)
    assert any(n.startswith("remains V6: recorded sex M but Amelogenin says F") for n in p_notes)


def test_impossible_references__the_family_is_skipped_with_a_note_in_every_engine() -> None:
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("CH", "FA", "MO", "M")])
    ped = ped.add(Individual("MQ", "FA", "MO", "M"))
    refs = {"FA": {"M1": ("a", "a"), "M2": ("1", "1")}, "MO": {"M1": ("a", "a")}, "CH": {"M1": ("d", "d")}}
    bad = Family("FX", ped, refs, ("MQ",))
    good = _trio("F1", "MA", "M", {"FA": {"M1": ("a", "b"), "M2": ("1", "2")}})
    remains = (Sample("V1", "M", {"M1": ("a", "c"), "M2": ("2", "3")}), Sample("V2", "M", {"M2": ("1", "3")}))
    case = Case("impossible", (M1, M2), remains=remains, families=(bad, good))
    e = assert_engines_agree(case)
    note = (
        "family FX: the references are impossible at marker M1 (likelihood 0 before any remains is placed); "
        "the family cannot be evaluated and is skipped (check its genotypes or add a mutation model)"
    )
    assert e.rule_notes() == ({note}, {note})
    assert "MQ" not in e.problem.missing and e.problem.skipped == {"FX": ("M1",)}
    assert {m for _, m, _, _ in e.screen.pairs()} == {"MA"}
    assert math.isfinite(e.null)  # the rest of the case is evaluated


def test_impossible_references__cli_pairwise_and_screen_go_on_with_the_same_numbers(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from opendvi.cli.main import app
    from opendvi.io.case_json import case_to_dict

    fa = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("CH", "FA", "MO", "M")])
    bad = Family("FX", fa.add(Individual("MQ", "FA", "MO", "M")), {"FA": {"M1": ("a", "a")}, "CH": {"M1": ("d", "d")}},
                 ("MQ",))
    good = _trio("F1", "MA", "M", {"FA": {"M1": ("a", "b"), "M2": ("1", "2")}})
    case = Case("cli", (M1, M2), remains=(Sample("V1", "M", {"M1": ("a", "c"), "M2": ("2", "3")}),),
                families=(bad, good))
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case_to_dict(case)))
    runner = CliRunner()
    pw = runner.invoke(app, ["pairwise", str(path), "--format", "json"])
    sc = runner.invoke(app, ["screen", str(path), "--format", "json", "--threshold", "0"])
    assert pw.exit_code == 0 and sc.exit_code == 0, (pw.output, sc.output)
    p_json, s_json = json.loads(pw.stdout), json.loads(sc.stdout)
    assert set(p_json["lr"]["V1"]) == {"MA"}
    assert [c["missing"] for c in s_json["candidates"]["V1"]] == ["MA"]
    assert s_json["candidates"]["V1"][0]["lr"] == pytest.approx(p_json["lr"]["V1"]["MA"], rel=REL)
    assert [unevaluable_family(n) for n in s_json["notes"] if unevaluable_family(n)] == [("FX", ("M1",))]
    assert "family FX: the references are impossible at marker M1" in pw.stderr


def test_inconsistent_references__every_pairing_counts_the_marker_as_dvir_does() -> None:
    # father and child incompatible without mutation at E1 (a mutation); V2 is untyped there
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("CH", "FA", "MO", "M")])
    ped = ped.add(Individual("MP", "FA", "MO", "M"))
    fam = Family("F1", ped, {"FA": {"E1": ("a", "a"), "M2": ("1", "2")}, "CH": {"E1": ("b", "b")}}, ("MP",))
    remains = (Sample("V1", "M", {"E1": ("a", "c"), "M2": ("1", "3")}), Sample("V2", "M", {"M2": ("2", "3")}))
    case = Case("inconsistent", (E1, M2), remains=remains, families=(fam,))
    e = assert_engines_agree(case)
    assert e.pairwise.exclusions == {"V1": {"MP": 1}, "V2": {"MP": 1}}
    assert e.pairwise.lr("V1", "MP") > 0  # type: ignore[operator]
    assert e.problem.inconsistent == {"F1": frozenset({"E1"})}
    _, brute_x = brute_pairwise(case)
    assert brute_x == e.pairwise.exclusions


def test_untyped_reference_markers__contribute_lr_one_in_every_engine() -> None:
    fam = _trio("F1", "MA", "M", {"FA": {"M1": ("a", "b")}})  # typed at M1 only
    fam2 = _trio("F2", "MB", "M", {"FA": {"S": ("9", "10")}, "MO": {"S": ("11", "12")}})  # typed at S only
    remains = (
        Sample("V1", "M", {"M1": ("a", "c"), "S": ("9", "12")}),
        Sample("V2", "M", {"M1": ("b",), "S": ("10",)}, dropout=0.25),
    )
    case = Case("untyped", (M1, S), remains=remains, families=(fam, fam2))
    e = assert_engines_agree(case)
    per = pairwise_lr(e.problem, keep_markers=True).per_marker
    assert per[("V1", "MA")]["S"] == 0.0 and per[("V1", "MB")]["M1"] == 0.0
    assert e.pairwise.log_lr["V1"]["MA"] == pytest.approx(math.log(1 / (4 * P[0])), rel=1e-12)


def test_theta__pairwise_and_screening_agree() -> None:
    fams = (_trio("F1", "MA", "M", {"FA": {"M1": ("a", "b"), "M2": ("1", "2")}}),)
    remains = (Sample("V1", "M", {"M1": ("a",), "M2": ("1", "3")}, dropout=0.2), Sample("V2", None, {"M1": ("c", "d")}))
    assert_engines_agree(Case("theta", (M1, M2), remains=remains, families=fams, theta=0.02), joint=False)


# ---------------------------------------------------------------------------
# the rule functions themselves
# ---------------------------------------------------------------------------


def test_observation__closed_forms_equal_the_definition() -> None:
    rng = np.random.default_rng(3)
    n = 5
    x, y = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    for _ in range(30):
        T = rng.random((n, n))
        d = float(rng.choice([0.0, 0.1, 0.4]))
        for obs in ([1, 3], [2, 2], [4]):
            want = float((genotype_observation(obs, d, x, y) * T).sum())
            assert observed_value(T, obs, d) == pytest.approx(want, rel=1e-13)
            one = len(obs) == 1
            got = observed_values(T[None], np.array([obs[0]]), np.array([obs[-1]]), np.array([one]), np.array([d]))
            assert got[0, 0] == pytest.approx(want, rel=1e-13)
    # what is seen is a distribution: over the distinct observations ({a, b} and {a} alone)
    # the probabilities sum to 1 - P(nothing seen) for every true genotype
    d = 0.3
    seen = [[a, b] for a in range(n) for b in range(a + 1, n)] + [[a] for a in range(n)]
    for g in [(0, 0), (0, 2), (3, 1)]:
        total = sum(float(genotype_observation(o, d, np.array(g[0]), np.array(g[1]))) for o in seen)
        assert total == pytest.approx(1.0 - d * d)


def test_observation__engine_factor_is_the_rule() -> None:
    # one person, one allele seen with dropout: P = p_a^2 (1 - d^2) + 2 p_a (1 - p_a) d (1 - d)
    ped = Pedigree([Individual("V", sex="M")])
    d, pa = 0.3, P[0]
    got = math.exp(marker_loglik(ped, M1, {"V": ("a",)}, dropout={"V": d}))
    assert got == pytest.approx(pa * pa * (1 - d * d) + 2 * pa * (1 - pa) * d * (1 - d), rel=1e-13)


def test_sex_rules() -> None:
    assert [amelogenin_sex(g) for g in (("X", "Y"), ("Y",), ("X", "X"), ("X",), None)] == ["M", "M", "F", None, None]
    assert resolve_sex("F", ("X",), who="V")[0] is None
    assert resolve_sex("M", ("X",), who="V") == ("M", None)
    assert resolve_sex("F", ("X", "X"), who="V") == ("F", None)
    assert resolve_sex("F", ("X", "Y"), who="V")[0] is None
    assert resolve_sex(None, None, who="V") == (None, None) and resolve_sex("F", None, who="V") == ("F", None)


def test_lr_one_exclusion_and_number_rules() -> None:
    assert lr_is_one(False, True) and lr_is_one(True, False) and not lr_is_one(True, True)
    assert lr_is_one(np.array([True, False]), True).tolist() == [False, True]
    assert counts_as_exclusion(False, True) and counts_as_exclusion(True, False) and not counts_as_exclusion(True, True)
    # one cut-off: the float range itself
    assert safe_exp(709.78) == math.exp(709.78) and safe_exp(709.79) == math.inf and safe_exp(-math.inf) == 0.0
    assert safe_exp(np.array([709.78, 709.79, -np.inf])).tolist() == [math.exp(709.78), math.inf, 0.0]
    assert [json_number(v) for v in (-math.inf, math.inf, math.nan, None, 1.5)] == ["-inf", "inf", None, None, 1.5]
