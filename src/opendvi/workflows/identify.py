"""Identification, one function per job, each returning a typed result (frozen dataclasses):

- :func:`likelihoods`: the pedigree likelihood of each family's references (``opendvi likelihood``);
- :func:`pairwise`: every remains against every missing person (``opendvi pairwise``), with the
  lineage systems' LRs when the case has Y-STR or mtDNA evidence;
- :func:`solve`: the whole identification workflow (``opendvi solve``; the algorithm is
  :func:`opendvi.dvi.workflow.solve_case`) and the fragments of one person;
- :func:`match_remains`: remains against remains (``opendvi match-remains``);
- :func:`overview`: pairwise LRs, undisputed identifications, the best joint assignments and the
  fragments (``opendvi demo``);
- :func:`screen`: national screening (``opendvi screen``);

The service's matching run is :func:`opendvi.workflows.matching.match_case`.

The CLI and the service reach the engines (:mod:`opendvi.dvi`, :mod:`opendvi.screening`) only through
this package (``docs/architecture.md``); the results are written as JSON by
:mod:`opendvi.workflows.results`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from opendvi.core.case import Case, Sample
from opendvi.core.likelihood import LogLikelihood
from opendvi.dvi import (
    MAX_ASSIGNMENTS,
    UNASSIGNED,
    DVIProblem,
    JointResult,
    PairwiseResult,
    RemainsMatching,
    UndisputedResult,
    consensus_profile,
    find_undisputed,
    group_remains,
    pairwise_lr,
    solve_joint,
)
from opendvi.dvi.lineage import LineagePairwise
from opendvi.dvi.workflow import (
    EXCLUDED,
    IDENTIFIED,
    PROBABLE,
    UNDECIDED,
    Conclusion,
    Solution,
    SolveOptions,
    solve_case,
)

if TYPE_CHECKING:
    from opendvi.screening import ScreenResult

__all__ = [
    "EXCLUDED",
    "IDENTIFIED",
    "MAX_ASSIGNMENTS",
    "MAX_GROUPING",
    "PROBABLE",
    "UNASSIGNED",
    "UNDECIDED",
    "Conclusion",
    "DVIProblem",
    "JointResult",
    "Likelihoods",
    "LineagePairwise",
    "Overview",
    "PairwiseResult",
    "PairwiseRun",
    "RemainsRun",
    "SolveOptions",
    "SolveRun",
    "UndisputedResult",
    "likelihoods",
    "match_remains",
    "overview",
    "pairwise",
    "screen",
    "solve",
]

#: Above this many remains, :func:`solve` leaves fragment grouping to :func:`match_remains` (quadratic).
MAX_GROUPING = 500


# -- the references' likelihood ------------------------------------------------------------------------
@dataclass(frozen=True)
class Likelihoods:
    """The natural-log likelihood of each family's reference data (per marker and in total) in a case
    whose frequencies hold every allele seen (``notes``: the alleles added)."""

    case: Case
    families: list[tuple[str, LogLikelihood]]
    notes: list[str]


def likelihoods(case: Case) -> Likelihoods:
    """``opendvi likelihood``: the pedigree likelihood of every family's references."""
    full, notes = case.with_unseen_alleles()
    return Likelihoods(full, [(f.id, f.loglik(full.markers, theta=full.theta)) for f in full.families], notes)


# -- pairwise -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairwiseRun:
    """Pairwise LRs (the combined LR, autosomal × X × Y × mt, when the case has lineage evidence) and
    exclusion counts; ``lineage``: each system's LR and the lineage mismatches, or None."""

    problem: DVIProblem
    pairwise: PairwiseResult
    lineage: LineagePairwise | None = None

    @property
    def notes(self) -> list[str]:
        return list(self.problem.notes)


def pairwise(case: Case, *, ignore_sex: bool = False) -> PairwiseRun:
    """Every remains against every missing person (``opendvi pairwise``)."""
    problem = DVIProblem(case, ignore_sex=ignore_sex)
    with_lineage = case.lineage is not None
    pw = pairwise_lr(problem, keep_markers=with_lineage)
    if not with_lineage:
        return PairwiseRun(problem, pw)
    from opendvi.dvi.lineage import lineage_pairwise

    lp = lineage_pairwise(problem, autosomal=pw)
    combined = PairwiseResult(remains=pw.remains, missing=pw.missing)
    for rid in problem.remains:
        combined.log_lr[rid] = dict(lp.log_lr.get(rid, {}))
        combined.exclusions[rid] = dict(pw.exclusions[rid])
    return PairwiseRun(problem, combined, lp)


# -- solve --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SolveRun:
    """The workflow's :class:`~opendvi.dvi.workflow.Solution`, the options it ran with, and the groups
    of remains that are fragments of one person."""

    solution: Solution
    options: SolveOptions
    groups: list[list[str]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        return self.solution.notes


def solve(case: Case, options: SolveOptions | None = None, *, ignore_sex: bool = False,
          group_threshold: float = 1e4) -> SolveRun:
    """The whole identification workflow (as dvir's dviSolve), then the fragments of one person (direct
    match LR >= ``group_threshold``; 0: none), up to :data:`MAX_GROUPING` remains (a note beyond)."""
    opts = options or SolveOptions()
    sol = solve_case(case, opts, ignore_sex=ignore_sex)
    groups: list[list[str]] = []
    if group_threshold > 0:
        if len(sol.problem.remains) <= MAX_GROUPING:
            groups = group_remains(sol.problem, threshold=group_threshold).groups
        else:
            sol.notes.append(
                f"fragments not grouped ({len(sol.problem.remains)} remains > {MAX_GROUPING}): "
                "run opendvi match-remains"
            )
    return SolveRun(sol, opts, groups)


# -- remains against remains --------------------------------------------------------------------------
@dataclass(frozen=True)
class RemainsRun:
    """Direct-match LRs between remains, their groups, and each group's consensus profile with its
    notes (keyed by the group's ids joined with "+")."""

    problem: DVIProblem
    matching: RemainsMatching
    consensus: dict[str, tuple[Sample, list[str]]]

    @property
    def notes(self) -> list[str]:
        return list(self.problem.notes)


def match_remains(case: Case, *, threshold: float = 1e4) -> RemainsRun:
    """Remains against remains: direct-match LRs, groups of fragments of one person (LR >= ``threshold``,
    connected), consensus profiles, and matches with personal-effects samples."""
    problem = DVIProblem(case)
    m = group_remains(problem, threshold=threshold)
    consensus = {"+".join(g): consensus_profile([problem.remains[r] for r in g]) for g in m.groups}
    return RemainsRun(problem, m, consensus)


# -- the demo's overview ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Overview:
    """Pairwise LRs, undisputed identifications (LR 10^4), the best ``top`` joint assignments, and the
    groups of remains that match each other directly."""

    problem: DVIProblem
    pairwise: PairwiseResult
    undisputed: UndisputedResult
    joint: JointResult
    groups: list[list[str]]


def overview(case: Case, *, top: int = 5) -> Overview:
    """The main steps of an identification, each on its own (``opendvi demo``)."""
    problem = DVIProblem(case)
    pw = pairwise_lr(problem)
    und = find_undisputed(problem, pairwise=pw)
    joint = solve_joint(problem, pw, top=top)
    return Overview(problem, pw, und, joint, group_remains(problem).groups)


# -- screening ----------------------------------------------------------------------------------------
def screen(
    case: Case,
    *,
    top: int = 20,
    threshold: float | None = None,
    shard_size: int = 5000,
    work_dir: Path | None = None,
    fingerprint: str | None = None,
    dask: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScreenResult:
    """Every remains against every missing person (``opendvi screen``): per remains its ``top`` best
    pairings and every pairing with LR >= ``threshold``; resumes from ``work_dir``."""
    from opendvi.screening import screen as run

    return run(case, top=top, threshold=threshold, shard_size=shard_size, work_dir=work_dir,
               fingerprint=fingerprint, dask=dask, progress=progress)
