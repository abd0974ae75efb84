"""Joint identification: assignments of remains to missing persons.

An assignment gives each remains a missing person or ``*`` (not among the
missing), each missing person at most once, sexes compatible. Its
log-likelihood is

    ln P(data | a) = sum over families F of ln P(references of F, remains
                     assigned to F's missing persons placed on them)
                   + sum over unassigned remains V of ln P(g_V),

so a family with several missing persons is evaluated with all of its
assigned remains in the pedigree together. LR(a) = P(data | a) / P(data |
nobody identified); posterior(a) = prior(a) LR(a) / sum over assignments.

The candidate graph links a remains to a family when one of the family's
missing persons is a candidate for it (by default: admissible with pairwise
LR > 0, as dvir's ``jointDVI``). Each connected component is enumerated
exactly on its own: enumerated when it has few assignments (at most
``max_assignments``), otherwise by the exact optimiser of
:mod:`opendvi.dvi.assignment` (best and next-best assignments) and the sums
of :mod:`opendvi.dvi.posterior` (exact by dynamic programming, or certified
bounds). No component is refused. The assignments of the whole case are the
product of the components' lists, whose best ones are found by a k-best
merge and whose posteriors are products of per-component posteriors.

The components and their solvers are in :mod:`opendvi.dvi.components`
(re-exported here); this module combines them into the case's assignments.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opendvi.dvi.assignment import ComponentTooHardError
from opendvi.dvi.components import (
    MAX_ASSIGNMENTS,
    MAX_GLR_SOLVES,
    UNASSIGNED,
    Component,
    candidate_pairings,
    components,
    not_solved,
    solve_component,
    solve_component_model,
)
from opendvi.dvi.errors import DVIError
from opendvi.dvi.pairwise import PairwiseResult, combined_pairwise_lr
from opendvi.dvi.problem import DVIProblem, Placement, safe_exp

__all__ = ["JointResult", "JointRow", "assignment_loglik", "k_best", "solve_joint"]


@dataclass(frozen=True)
class JointRow:
    """One assignment of the whole case."""

    assignment: dict[str, str]
    loglik: float
    log_lr: float
    log_posterior: float
    #: ln posterior bounds (equal when exact)
    log_posterior_bounds: tuple[float, float] = (0.0, 0.0)
    exact: bool = True

    @property
    def lr(self) -> float:
        return safe_exp(self.log_lr)

    @property
    def posterior(self) -> float:
        """The posterior when exact, else the interval's midpoint (see :attr:`posterior_bounds`)."""
        return safe_exp(self.log_posterior)

    @property
    def posterior_bounds(self) -> tuple[float, float]:
        return safe_exp(self.log_posterior_bounds[0]), min(1.0, safe_exp(self.log_posterior_bounds[1]))


@dataclass
class JointResult:
    """The best assignments of a case, with the components they come from."""

    rows: list[JointRow]
    null_loglik: float
    n_assignments: int
    components: list[Component]
    fixed: dict[str, str] = field(default_factory=dict)
    #: ln of the number of assignments of the case (exact when ``count_exact``)
    log_count: float = 0.0
    count_exact: bool = True

    @property
    def best(self) -> JointRow:
        return self.rows[0]

    def glr(self) -> dict[str, float]:
        """ln GLR of each remains' target in the best assignment: the best
        likelihood with V -> its target over the best with V -> anything else
        (another missing person or ``*``); ``inf`` when there is no
        alternative."""
        return self._glrs(missing=False)

    def glr_missing(self) -> dict[str, float]:
        """ln GLR of each missing person's identification in the best
        assignment (its remains, or ``*`` for nobody): the best likelihood
        giving M that remains over the best giving M another remains or
        nobody; ``inf`` when there is no alternative. Missing persons outside
        every component are absent."""
        return self._glrs(missing=True)

    def _glrs(self, *, missing: bool) -> dict[str, float]:
        """:meth:`glr` (by remains) or :meth:`glr_missing` (by missing person):
        from the enumeration's best log-likelihoods, or as the optimiser
        computed them (NaN where it did not)."""
        out: dict[str, float] = {}
        best = self.rows[0].assignment
        for comp in self.components:
            if missing:
                who = {m: r for r, m in best.items() if m in comp.missing}
                calls = {mp: who.get(mp, UNASSIGNED) for mp in comp.missing}
                computed, best_given = comp.glr_missing, comp.best_given_missing
            else:
                calls = {rid: best[rid] for rid in comp.remains}
                computed, best_given = comp.glr_remains, comp.best_given
            for subject, call in calls.items():
                if comp.method != "enumeration":
                    out[subject] = computed.get(subject, math.nan)
                else:
                    out[subject] = _log_glr(best_given, subject, call)
        return out


def _log_glr(best_given: Mapping[tuple[str, str], float], subject: str, call: str) -> float:
    """ln GLR of ``subject`` -> ``call``: the best log-likelihood with that
    call over the best with any other (``best_given`` maps (subject, call) to
    the best log-likelihood of the assignments that make it); ``inf`` when
    there is no alternative."""
    mine = best_given.get((subject, call), -math.inf)
    others = [ll for (who, other), ll in best_given.items() if who == subject and other != call]
    alt = max(others) if others else -math.inf
    return math.inf if alt == -math.inf else mine - alt


def k_best(comps: Sequence[Component], k: int) -> list[tuple[int, ...]]:
    """Index tuples of the ``k`` best combinations of the components' sorted
    lists (sum of scores), best first, without enumerating the product."""
    if not comps:
        return [()]
    start = tuple(0 for _ in comps)

    def score(idx: tuple[int, ...]) -> float:
        return math.fsum(c.assignments[i][0] for c, i in zip(comps, idx, strict=True))

    heap: list[tuple[float, tuple[int, ...], int]] = [(-score(start), start, 0)]
    out: list[tuple[int, ...]] = []
    while heap and len(out) < k:
        _, idx, last = heapq.heappop(heap)
        out.append(idx)
        for j in range(last, len(comps)):
            if idx[j] + 1 < comps[j].size:
                nxt = (*idx[:j], idx[j] + 1, *idx[j + 1 :])
                heapq.heappush(heap, (-score(nxt), nxt, j))
    return out


def solve_joint(
    problem: DVIProblem,
    pairwise: PairwiseResult | None = None,
    *,
    top: int = 20,
    lr_threshold: float = 0.0,
    max_exclusions: int | None = None,
    max_assignments: int = MAX_ASSIGNMENTS,
    prior: Mapping[tuple[str, str], float] | None = None,
    fixed: Mapping[str, str] | None = None,
    null_loglik: float | None = None,
    candidates: Mapping[str, Sequence[str]] | None = None,
    glr_floor: float = -math.inf,
    glr_enough: float = math.inf,
    absolute: bool = True,
) -> JointResult:
    """The ``top`` best assignments of the case, with LR and posterior.

    ``prior`` gives a weight to pairings (``{(remains, missing): w}``, 1 when
    absent; ``*`` always 1): the prior of an assignment is the product of
    its pairings' weights (flat when ``None``). ``fixed`` and ``null_loglik``
    are for a problem reduced by placing identifications already made
    (:func:`opendvi.dvi.undisputed.find_undisputed`): the fixed pairs are
    added to every row and the LR is taken against ``null_loglik`` (that of
    the problem before reduction). ``candidates`` (remains -> missing
    persons) replaces the pairings chosen by ``lr_threshold`` and
    ``max_exclusions``. Components with at most ``max_assignments``
    assignments are enumerated; larger ones are solved exactly by the
    optimiser, never refused; there, GLRs of calls whose option has ln LR
    below ``glr_floor`` are not computed (the GLR is at most that ln LR), and
    those whose certified lower bound reaches ``glr_enough`` are given as
    that bound (``Component.glr_bound``). ``absolute=False`` leaves out the
    absolute log-likelihoods (``JointRow.loglik`` and ``null_loglik`` are NaN):
    the null likelihoods of families in large components and outside every
    component are then not computed; LRs, posteriors and GLRs are the same.
    """
    pw = pairwise if pairwise is not None else combined_pairwise_lr(problem)
    if candidates is None:
        candidates = candidate_pairings(problem, pw, lr_threshold=lr_threshold, max_exclusions=max_exclusions)
    comps: list[Component] = []
    glr_budget = [MAX_GLR_SOLVES]
    for c in components(problem, candidates):
        bound = math.prod(1 + len(c.candidates[r]) for r in c.remains) if len(c.remains) < 64 else math.inf
        try:
            if bound <= max_assignments:
                comps.append(solve_component(problem, c, prior=prior))
            else:
                comps.append(
                    solve_component_model(
                        problem,
                        c,
                        pw,
                        top=top,
                        prior=prior,
                        max_assignments=max_assignments,
                        glr_budget=glr_budget,
                        glr_floor=glr_floor,
                        glr_enough=glr_enough,
                        absolute=absolute,
                    )
                )
        except ComponentTooHardError as exc:
            comps.append(not_solved(problem, c, str(exc)))
    if absolute:
        in_comp = {r for c in comps for r in c.remains}
        fams_in = {f for c in comps for f in c.families}
        const = math.fsum(
            [problem.family_loglik(f, ()) for f in problem.families if f not in fams_in]
            + [problem.remains_loglik(r) for r in problem.remains if r not in in_comp]
        )
        null = math.fsum([const] + [c.null_loglik for c in comps])
        ref_null = null if null_loglik is None else null_loglik
    else:
        if null_loglik is not None:
            raise DVIError("null_loglik (a reduced problem's reference) needs absolute=True")
        const = ref_null = math.nan
    rows = [
        _case_row(problem, comps, idx, const, ref_null, absolute=absolute, fixed=fixed) for idx in k_best(comps, top)
    ]
    n = 1
    for c in comps:
        n *= c.size
    log_count = math.fsum(c.log_count for c in comps)
    count_exact = all(c.count_exact for c in comps)
    if any(c.method != "enumeration" for c in comps):
        n = round(math.exp(log_count)) if count_exact and log_count < 700 else 0
    return JointResult(
        rows=rows,
        null_loglik=ref_null,
        n_assignments=n,
        components=comps,
        fixed=dict(fixed or {}),
        log_count=log_count,
        count_exact=count_exact,
    )


def _case_row(
    problem: DVIProblem,
    comps: Sequence[Component],
    idx: tuple[int, ...],
    const: float,
    ref_null: float,
    *,
    absolute: bool,
    fixed: Mapping[str, str] | None,
) -> JointRow:
    """The assignment of the case made of assignment ``idx[j]`` of each
    component ``j``: its log-likelihood (``const``: the part outside every
    component), its ln LR against ``ref_null`` (or, without ``absolute``,
    each component's against its "nobody identified") and its posterior."""
    assignment = {r: UNASSIGNED for r in problem.remains}
    lls = [const]
    lpost = 0.0
    lo = hi = 0.0
    exact = True
    for c, i in zip(comps, idx, strict=True):
        score, ll, targets = c.assignments[i]
        lls.append(ll)
        if score == -math.inf:
            lpost = lo = hi = -math.inf
        else:
            lpost += score - c.log_norm
            lo += score - c.log_norm_bounds[1]
            hi += score - c.log_norm_bounds[0]
        exact = exact and c.exact
        assignment.update(zip(c.remains, targets, strict=True))
    ll_total = -math.inf if any(v == -math.inf for v in lls) else math.fsum(lls)
    if absolute:
        log_lr = ll_total - ref_null if ll_total != -math.inf else -math.inf
    else:  # each component's own likelihood against its "nobody identified"
        rel = [c.assignments[i][1] - c.null_loglik for c, i in zip(comps, idx, strict=True)]
        log_lr = -math.inf if any(v == -math.inf for v in rel) else math.fsum(rel)
        ll_total = math.nan
    if fixed:
        assignment = {**dict(fixed), **assignment}
    return JointRow(
        assignment=assignment,
        loglik=ll_total,
        log_lr=log_lr,
        log_posterior=lpost,
        log_posterior_bounds=(lo, min(hi, 0.0)) if not exact else (lpost, lpost),
        exact=exact,
    )


def assignment_loglik(problem: DVIProblem, assignment: Mapping[str, str]) -> float:
    """ln P(data | assignment) computed directly (any assignment; ``*`` or
    absent = not identified). For checks and for one-off evaluations."""
    used: set[str] = set()
    per_fam: dict[str, list[Placement]] = {}
    total = []
    for rid in problem.remains:
        t = assignment.get(rid, UNASSIGNED)
        if t == UNASSIGNED:
            total.append(problem.remains_loglik(rid))
            continue
        if t in used:
            raise DVIError(f"missing person {t} is assigned twice")
        used.add(t)
        per_fam.setdefault(problem.family_of(t), []).append((t, rid))
    for f in problem.families:
        v = problem.family_loglik(f, tuple(sorted(per_fam.get(f, ()))))
        if v == -math.inf:
            return -math.inf
        total.append(v)
    return math.fsum(total)
