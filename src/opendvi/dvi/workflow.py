"""The whole identification workflow, as dvir's ``dviSolve`` runs it, by default.

1. **Pairwise** LRs and exclusion counts of every admissible pairing: the
   general engine (:func:`opendvi.dvi.pairwise_lr`), or for large cases
   national screening (:mod:`opendvi.screening`, the same numbers), which
   keeps per remains its best ``screen_top`` pairings and every pairing with
   LR >= ``screen_threshold``.
2. **Exclusion reduction**: a pairing with more than ``max_exclusions``
   (default 2, as dvir) Mendelian incompatibilities, or LR 0, is dropped; a
   remains with no pairing left is *excluded* (not among the missing), and
   so is a missing person no remains can be.
3. **Undisputed identifications**, iterated (threshold 10^4).
4. **Joint identification** of the rest: every component solved exactly
   (:func:`opendvi.dvi.joint.solve_joint`), never refused.
5. **Summary** per remains and per missing person (grouped by family): the
   conclusion (identified, probable, excluded, undecided), the LR, the
   posterior (exact, or a certified interval), the GLR, symmetric matches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from opendvi.core.case import Case
from opendvi.dvi.components import MAX_ASSIGNMENTS, UNASSIGNED
from opendvi.dvi.errors import DVIError
from opendvi.dvi.joint import JointResult, solve_joint
from opendvi.dvi.lineage_joint import brothers_notes
from opendvi.dvi.pairwise import PairwiseResult, combined_pairwise_lr
from opendvi.dvi.problem import DVIProblem
from opendvi.dvi.undisputed import DEFAULT_THRESHOLD, UndisputedResult, find_undisputed

#: Pairings (remains x missing persons) above which ``pairwise="auto"`` screens.
SCREEN_ABOVE = 40_000

IDENTIFIED = "identified"
PROBABLE = "probable"
EXCLUDED = "excluded"
UNDECIDED = "undecided"


@dataclass(frozen=True)
class SolveOptions:
    """Every step of the workflow; the defaults are dvir's ``dviSolve``."""

    #: LR threshold of undisputed identifications, and the LR and GLR an identification needs
    threshold: float = DEFAULT_THRESHOLD
    #: GLR of a probable identification (default max(1, threshold / 10), as dvir)
    threshold2: float | None = None
    #: exclusion reduction: pairings with more exclusions are dropped (None: no reduction)
    max_exclusions: int | None = 2
    #: joint: also drop pairings with LR below this
    lr_threshold: float = 0.0
    #: find the undisputed identifications first
    undisputed: bool = True
    #: best assignments listed
    top: int = 20
    #: components with at most this many assignments are enumerated
    max_assignments: int = MAX_ASSIGNMENTS
    #: posterior (lower bound) an identification needs
    min_posterior: float = 0.999
    #: "engine", "screening" or "auto" (screening above SCREEN_ABOVE pairings)
    pairwise: str = "auto"
    screen_top: int = 20
    screen_threshold: float = 1.0
    prior: Mapping[tuple[str, str], float] | None = None

    @property
    def probable_threshold(self) -> float:
        return self.threshold2 if self.threshold2 is not None else max(1.0, self.threshold / 10.0)


@dataclass
class Conclusion:
    """One line of the summary: a remains, or a missing person."""

    remains: str | None
    missing: str | None
    family: str | None
    conclusion: str
    log_lr: float | None = None
    #: marginal posterior (low, high); equal when exact; None when not computed
    posterior: tuple[float, float] | None = None
    posterior_exact: bool = True
    log_glr: float | None = None
    #: False when ``log_glr`` is a certified lower bound (enough for the conclusion)
    glr_exact: bool = True
    #: who this one cannot be told apart from (symmetric relatives)
    symmetric: list[str] = field(default_factory=list)
    step: str = ""
    comment: str = ""


@dataclass
class Solution:
    """Everything the workflow found."""

    problem: DVIProblem
    pairwise: PairwiseResult
    candidates: dict[str, tuple[str, ...]]
    undisputed: UndisputedResult
    joint: JointResult
    remains: list[Conclusion]
    missing: list[Conclusion]
    notes: list[str]
    seconds: dict[str, float]
    pairwise_method: str

    def identified(self) -> dict[str, str]:
        """{remains: missing} of the identifications."""
        return {c.remains: c.missing for c in self.remains if c.conclusion == IDENTIFIED and c.missing and c.remains}


def _screened(case: Case, opts: SolveOptions) -> tuple[DVIProblem, PairwiseResult, list[str]]:
    from opendvi.screening import screen

    res = screen(case, top=opts.screen_top, threshold=opts.screen_threshold)
    kept: dict[str, list[str]] = {r.id: [] for r in case.remains}
    pw_rows: dict[str, dict[str, float]] = {r.id: {} for r in case.remains}
    excl: dict[str, dict[str, int]] = {r.id: {} for r in case.remains}
    for rid, mp, v, x in res.pairs():
        kept[rid].append(mp)
        pw_rows[rid][mp] = v
        excl[rid][mp] = x
    problem = DVIProblem(replace(case, pairings={r: tuple(v) for r, v in kept.items()}))
    pw = PairwiseResult(remains=tuple(problem.remains), missing=tuple(problem.missing))
    for rid in problem.remains:
        pw.log_lr[rid] = {m: pw_rows[rid][m] for m in problem.admissible[rid] if m in pw_rows[rid]}
        pw.exclusions[rid] = {m: excl[rid][m] for m in pw.log_lr[rid]}
    notes = [
        f"pairwise LRs by screening: per remains its best {opts.screen_top} pairings and every pairing with "
        f"LR >= {opts.screen_threshold:g} ({len(res)} pairings kept); the others do not enter the joint step",
        *res.notes,
    ]
    return problem, pw, notes


def solve_case(case: Case, options: SolveOptions | None = None, *, ignore_sex: bool = False) -> Solution:
    """Run the whole workflow on ``case``."""
    opts = options or SolveOptions()
    if opts.pairwise not in ("auto", "engine", "screening"):
        raise DVIError(f"pairwise must be auto, engine or screening, found {opts.pairwise!r}")
    t0 = time.perf_counter()
    notes: list[str] = []
    n_missing = sum(len(f.missing) for f in case.families)
    use_screen = opts.pairwise == "screening" or (
        opts.pairwise == "auto"
        and len(case.remains) * n_missing > SCREEN_ABOVE
        and case.theta == 0.0
        and not ignore_sex
    )
    method = "engine"
    if use_screen:
        from opendvi.screening import ScreeningError

        try:
            problem, pw, snotes = _screened(case, opts)
            notes.extend(snotes)
            method = "screening"
        except ScreeningError as exc:
            if opts.pairwise == "screening":
                raise
            notes.append(f"screening not possible ({exc}); pairwise LRs by the general engine")
            use_screen = False
    if not use_screen:
        problem = DVIProblem(case, ignore_sex=ignore_sex)
        pw = combined_pairwise_lr(problem)  # screening's LRs are already combined
    notes = list(problem.notes) + notes
    t1 = time.perf_counter()
    # exclusion reduction
    cands: dict[str, tuple[str, ...]] = {}
    for rid in problem.remains:
        cands[rid] = tuple(
            m
            for m, v in pw.log_lr.get(rid, {}).items()
            if v != -math.inf and (opts.max_exclusions is None or pw.exclusions[rid][m] <= opts.max_exclusions)
        )
    null = problem.null_loglik()
    if opts.undisputed:
        und = find_undisputed(
            problem, threshold=opts.threshold, pairwise=pw, candidates=cands, max_exclusions=opts.max_exclusions
        )
    else:
        from opendvi.dvi.undisputed import restrict

        und = UndisputedResult([], problem, restrict(pw, cands), dict(cands))
    t2 = time.perf_counter()
    rest_cands = und.candidates if und.candidates is not None else cands
    joint = solve_joint(
        und.remaining,
        und.pairwise,
        top=opts.top,
        lr_threshold=opts.lr_threshold,
        max_assignments=opts.max_assignments,
        prior=opts.prior,
        fixed=und.assignment,
        null_loglik=null,
        candidates=_lr_pruned(und.pairwise, rest_cands, opts.lr_threshold),
        glr_floor=math.log(opts.probable_threshold) - 1e-9,
        glr_enough=math.log(opts.threshold),
    )
    joint.rows = [replace(r, assignment={x: r.assignment[x] for x in problem.remains}) for r in joint.rows]
    t3 = time.perf_counter()
    for c in joint.components:
        if c.message:
            notes.append(
                f"component of {', '.join(c.remains[:5])}{' ...' if len(c.remains) > 5 else ''} "
                f"({len(c.remains)} remains, {len(c.missing)} missing persons) not solved: {c.message}"
            )
        if c.glr_not_computed:
            notes.append(c.glr_limit_note())
        if not c.message and not c.top_complete:
            notes.append(
                f"component of {c.remains[0]} ... ({len(c.remains)} remains): the list of its best assignments "
                f"stopped at {c.size} (limit of 100 solves or 10 s); each listed one is exact"
            )
    if case.lineage is not None:
        notes.extend(brothers_notes(problem))
        for extra in (problem.lineage_factors.notes, und.remaining.lineage_factors.notes):
            notes.extend(n for n in extra if n not in notes)
    rem_summary, mis_summary = _summaries(problem, pw, cands, und, joint, opts)
    t4 = time.perf_counter()
    seconds = {"pairwise": t1 - t0, "undisputed": t2 - t1, "joint": t3 - t2, "summary": t4 - t3, "total": t4 - t0}
    return Solution(problem, pw, cands, und, joint, rem_summary, mis_summary, notes, seconds, method)


def _lr_pruned(
    pw: PairwiseResult, cands: Mapping[str, tuple[str, ...]], lr_threshold: float
) -> dict[str, tuple[str, ...]]:
    if lr_threshold <= 0:
        return {r: tuple(v) for r, v in cands.items() if r in pw.log_lr}
    t = math.log(lr_threshold)
    return {r: tuple(m for m in v if pw.log_lr[r][m] >= t) for r, v in cands.items() if r in pw.log_lr}


def _symmetric(joint: JointResult) -> dict[str, set[str]]:
    """Per remains, the missing persons it takes in the listed assignments tied with the best."""
    if not joint.rows:
        return {}
    best = joint.rows[0].loglik
    if best == -math.inf:
        return {}
    tied = [r for r in joint.rows if abs(r.loglik - best) <= 1e-9 * max(1.0, abs(best))]
    out: dict[str, set[str]] = {}
    for r in tied:
        for rid, t in r.assignment.items():
            out.setdefault(rid, set()).add(t)
    return {rid: ts for rid, ts in out.items() if len(ts) > 1}


def _summaries(
    problem: DVIProblem,
    pw: PairwiseResult,
    cands: Mapping[str, tuple[str, ...]],
    und: UndisputedResult,
    joint: JointResult,
    opts: SolveOptions,
) -> tuple[list[Conclusion], list[Conclusion]]:
    log_t = math.log(opts.threshold)
    log_t2 = math.log(opts.probable_threshold)
    comp_of = {r: c for c in joint.components for r in c.remains}
    glr = joint.glr()
    best = joint.rows[0].assignment if joint.rows else {}
    sym = _symmetric(joint)
    und_by_r = {u.remains: u for u in und.identified}
    rpw = und.pairwise
    out_r: list[Conclusion] = []
    by_missing: dict[str, Conclusion] = {}
    for rid in problem.remains:
        if rid in und_by_r:
            u = und_by_r[rid]
            c = Conclusion(rid, u.missing, u.family, IDENTIFIED, u.log_lr, None, True, None, True, [], "undisputed",
                           f"undisputed (step {u.step})")
            out_r.append(c)
            by_missing[u.missing] = c
            continue
        if not cands.get(rid):
            why = "no admissible pairing" if not pw.log_lr.get(rid) else (
                f"every pairing has LR 0 or more than {opts.max_exclusions} exclusions"
                if opts.max_exclusions is not None else "every pairing has LR 0"
            )
            out_r.append(Conclusion(rid, None, None, EXCLUDED, step="exclusion", comment=why))
            continue
        comp = comp_of.get(rid)
        if comp is None:  # as dvir's next exclusion round: no pairing left
            out_r.append(Conclusion(rid, None, None, EXCLUDED, step="exclusion",
                                    comment="its candidates were all identified with other remains (undisputed)"))
            continue
        if comp.method == "not solved":
            out_r.append(Conclusion(rid, None, None, UNDECIDED, step="joint", comment=comp.message))
            continue
        t = best.get(rid, UNASSIGNED)
        post = comp.marginals.get((rid, t))
        g = glr.get(rid)
        g = None if g is None or math.isnan(g) else g
        if t == UNASSIGNED:
            out_r.append(Conclusion(rid, None, None, UNDECIDED, None, post, comp.exact, g, True, [], "joint",
                                    "best call: not among the missing"))
            continue
        lr = rpw.log_lr.get(rid, {}).get(t)
        fid = problem.family_of(t)
        symm = sorted(m for m in sym.get(rid, set()) if m != t and m != UNASSIGNED)
        low = post[0] if post else 0.0
        if (low >= opts.min_posterior and lr is not None and lr >= log_t and g is not None and g >= log_t):
            concl = IDENTIFIED
        elif g is not None and g >= log_t2:
            concl = PROBABLE
        else:
            concl = UNDECIDED
        comment = ""
        if symm:
            comment = f"symmetric match: equally likely as {', '.join(symm)}"
        c = Conclusion(rid, t, fid, concl, lr, post, comp.exact, g, rid not in comp.glr_bound, symm, "joint", comment)
        out_r.append(c)
        by_missing[t] = c
    # missing persons
    gm = joint.glr_missing()
    has_cand = {m for v in cands.values() for m in v}
    left = {m for v in (und.candidates or {}).values() for m in v} if und.candidates is not None else has_cand
    out_m: list[Conclusion] = []
    for fam_id, family in problem.families.items():
        for mp in family.missing:
            line = _missing_line(fam_id, mp, by_missing.get(mp), gm, has_cand, opts)
            if line.conclusion == UNDECIDED and line.remains is None and mp not in left:
                line = replace(line, conclusion=EXCLUDED, step="exclusion",
                               comment="its candidate remains were all identified with other missing persons")
            out_m.append(line)
    return out_r, out_m


def _missing_line(
    fid: str, mp: str, c: Conclusion | None, gm: Mapping[str, float], has_cand: set[str], opts: SolveOptions
) -> Conclusion:
    if c is not None and c.conclusion in (IDENTIFIED, PROBABLE):
        g = c.log_glr if c.step == "undisputed" else gm.get(mp, c.log_glr)
        return replace(c, family=fid, missing=mp, log_glr=g)
    if mp not in has_cand:
        why = (
            f"every remains has LR 0 or more than {opts.max_exclusions} exclusions"
            if opts.max_exclusions is not None else "no remains with LR > 0"
        )
        return Conclusion(None, mp, fid, EXCLUDED, step="exclusion", comment=why)
    if c is not None:
        return replace(c, family=fid, missing=mp)
    g = gm.get(mp)
    return Conclusion(None, mp, fid, UNDECIDED, log_glr=None if g is None or math.isnan(g) else g, step="joint",
                      comment="not identified by the best assignment")
