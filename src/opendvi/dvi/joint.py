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
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from scipy.special import logsumexp

from opendvi.dvi.assignment import (
    MAX_SOLVES,
    ComponentTooHardError,
    Constraints,
    Model,
    build_model,
    lp_penalties,
    solve_best,
)
from opendvi.dvi.assignment import k_best as k_best_model
from opendvi.dvi.errors import DVIError
from opendvi.dvi.pairwise import PairwiseResult, pairwise_lr
from opendvi.dvi.posterior import Marginals, certified_marginals, exact_sums, glr_lower_bounds
from opendvi.dvi.problem import DVIProblem, Placement, safe_exp

#: Components with at most this many assignments are enumerated; larger ones
#: go to the exact optimiser and the exact (or certified) sums.
MAX_ASSIGNMENTS = 100_000
#: Constrained solves spent on GLRs in one component (one per called remains
#: and missing person); beyond it a GLR is reported as not computed.
MAX_GLR_SOLVES = 3000
#: Seconds the GLR solves may take in one component; beyond, a GLR is not computed.
MAX_GLR_SECONDS = 60.0
#: Enumeration is depth-first (recursive): only components with at most this many remains.
MAX_ENUMERATED_REMAINS = 200
#: Seconds the next-best search may take in one component (the listed rows stay exact).
MAX_TOP_SECONDS = 10.0
UNASSIGNED = "*"


@dataclass
class Component:
    """One connected component of the candidate graph, solved exactly."""

    remains: tuple[str, ...]
    families: tuple[str, ...]
    missing: tuple[str, ...]
    candidates: dict[str, tuple[str, ...]]
    #: (score, loglik, targets) sorted by decreasing score; score = loglik + ln prior
    assignments: list[tuple[float, float, tuple[str, ...]]] = field(default_factory=list)
    null_loglik: float = 0.0
    log_norm: float = 0.0
    #: best loglik among assignments with remains V -> target
    best_given: dict[tuple[str, str], float] = field(default_factory=dict)
    #: best loglik among assignments giving missing person M the remains V (or ``*``: nobody)
    best_given_missing: dict[tuple[str, str], float] = field(default_factory=dict)
    #: how the component was solved: "enumeration", "dynamic programming"
    #: (best by the optimiser, sums exact), "certified bounds" (best exact, sums
    #: bracketed) or "not solved" (``message`` says why)
    method: str = "enumeration"
    #: marginal posterior of (remains, target): (low, high), equal when exact
    marginals: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    #: ln of the number of assignments (exact where counted) and whether it is exact
    log_count: float = 0.0
    count_exact: bool = True
    #: ln Z bounds (equal when exact) of the scores
    log_norm_bounds: tuple[float, float] = (0.0, 0.0)
    #: False when the top list stopped at its limit of solves
    top_complete: bool = True
    #: ln GLR by remains and by missing person where the optimiser computed them
    glr_remains: dict[str, float] = field(default_factory=dict)
    glr_missing: dict[str, float] = field(default_factory=dict)
    #: remains and missing persons whose GLR above is a certified lower bound, not the value
    glr_bound: set[str] = field(default_factory=set)
    #: calls whose GLR was not computed (the limits of solves and seconds)
    glr_not_computed: int = 0
    message: str = ""

    @property
    def size(self) -> int:
        """Assignments listed (all of them when enumerated)."""
        return len(self.assignments)

    @property
    def exact(self) -> bool:
        """Posteriors exact (enumeration or dynamic programming)."""
        return self.method in ("enumeration", "dynamic programming")

    @property
    def max_error(self) -> float:
        """Largest half-width of a marginal posterior interval (0 when exact, 1 when not solved)."""
        if self.exact:
            return 0.0
        if self.method == "not solved" or not self.marginals:
            return 1.0
        return max((hi - lo) / 2 for lo, hi in self.marginals.values())


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
        out: dict[str, float] = {}
        best = self.rows[0].assignment
        for comp in self.components:
            if comp.method != "enumeration":
                for rid in comp.remains:
                    out[rid] = comp.glr_remains.get(rid, math.nan)
                continue
            for rid in comp.remains:
                t = best[rid]
                mine = comp.best_given.get((rid, t), -math.inf)
                others = [v for (r, tt), v in comp.best_given.items() if r == rid and tt != t]
                alt = max(others) if others else -math.inf
                out[rid] = math.inf if alt == -math.inf else mine - alt
        return out

    def glr_missing(self) -> dict[str, float]:
        """ln GLR of each missing person's identification in the best
        assignment (its remains, or ``*`` for nobody): the best likelihood
        giving M that remains over the best giving M another remains or
        nobody; ``inf`` when there is no alternative. Missing persons outside
        every component are absent."""
        out: dict[str, float] = {}
        best = self.rows[0].assignment
        for comp in self.components:
            if comp.method != "enumeration":
                for mp in comp.missing:
                    out[mp] = comp.glr_missing.get(mp, math.nan)
                continue
            who = {m: r for r, m in best.items() if m in comp.missing}
            for mp in comp.missing:
                src = who.get(mp, UNASSIGNED)
                mine = comp.best_given_missing.get((mp, src), -math.inf)
                others = [v for (m, r), v in comp.best_given_missing.items() if m == mp and r != src]
                alt = max(others) if others else -math.inf
                out[mp] = math.inf if alt == -math.inf else mine - alt
        return out


def _logsumexp(vals: Sequence[float]) -> float:
    """log Σ exp(v) in log space (SciPy's; -inf for no terms or all -inf)."""
    if not vals:
        return -math.inf
    with np.errstate(divide="ignore"):
        return float(logsumexp(np.asarray(vals, dtype=float)))


def candidate_pairings(
    problem: DVIProblem,
    pw: PairwiseResult,
    *,
    lr_threshold: float = 0.0,
    max_exclusions: int | None = None,
) -> dict[str, tuple[str, ...]]:
    """Pairings that enter the joint enumeration: admissible, LR > 0 and
    LR >= ``lr_threshold``, at most ``max_exclusions`` exclusions."""
    log_t = math.log(lr_threshold) if lr_threshold > 0 else -math.inf
    out: dict[str, tuple[str, ...]] = {}
    for rid in problem.remains:
        keep = []
        for mp, v in pw.log_lr.get(rid, {}).items():
            if v == -math.inf or v < log_t:
                continue
            if max_exclusions is not None and pw.exclusions[rid][mp] > max_exclusions:
                continue
            keep.append(mp)
        out[rid] = tuple(keep)
    return out


def components(problem: DVIProblem, candidates: Mapping[str, Sequence[str]]) -> list[Component]:
    """Connected components of the graph remains -- families (an edge when a
    missing person of the family is a candidate for the remains). Remains
    without candidates and families without candidate remains are left out
    (their only assignment is "nobody")."""
    # nodes: remains 0..R-1, then families R..R+F-1; one edge per candidate pairing (SciPy's components)
    fam_index = {f: i for i, f in enumerate(problem.families)}
    rem_index = {r: i for i, r in enumerate(candidates)}
    rows = [rem_index[rid] for rid, mps in candidates.items() for _mp in mps]
    cols = [len(rem_index) + fam_index[problem.family_of(mp)] for mps in candidates.values() for mp in mps]
    n = len(rem_index) + len(fam_index)
    graph = coo_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _n, label = connected_components(graph, directed=False)
    linked = set(rows) | set(cols)  # nodes without any edge are left out
    groups: dict[int, list[str]] = {}
    for rid, i in rem_index.items():
        if i in linked:
            groups.setdefault(int(label[i]), []).append("R" + rid)
    for f, j in fam_index.items():
        if len(rem_index) + j in linked:
            groups.setdefault(int(label[len(rem_index) + j]), []).append("F" + f)
    comps = []
    order = {f: i for i, f in enumerate(problem.families)}
    rorder = {r: i for i, r in enumerate(problem.remains)}
    for nodes in groups.values():
        rem = sorted((n[1:] for n in nodes if n[0] == "R"), key=rorder.__getitem__)
        fams = sorted((n[1:] for n in nodes if n[0] == "F"), key=order.__getitem__)
        mps = tuple(mp for f in fams for mp in problem.families[f].missing)
        comps.append(Component(tuple(rem), tuple(fams), mps, {r: tuple(candidates[r]) for r in rem}))
    comps.sort(key=lambda c: rorder[c.remains[0]])
    return comps


def solve_component(
    problem: DVIProblem,
    comp: Component,
    *,
    prior: Mapping[tuple[str, str], float] | None = None,
    max_assignments: int = MAX_ASSIGNMENTS,
) -> Component:
    """Enumerate every assignment of ``comp`` and its log-likelihood (the
    caller checks that there are few: ``max_assignments`` is not enforced here)."""
    rem = comp.remains
    fam_of = {mp: problem.family_of(mp) for mp in comp.missing}
    single = {r: problem.remains_loglik(r) for r in rem}
    fam_memo: dict[tuple[str, tuple[Placement, ...]], float] = {}
    log_prior: dict[tuple[str, str], float] = {}
    if prior is not None:
        for (rid, mp), w in prior.items():
            if w < 0:
                raise DVIError(f"prior weight of {rid} -> {mp} must be >= 0, found {w}")
            log_prior[(rid, mp)] = math.log(w) if w > 0 else -math.inf

    def fam_ll(fid: str, pl: tuple[Placement, ...]) -> float:
        key = (fid, pl)
        v = fam_memo.get(key)
        if v is None:
            v = problem.family_loglik(fid, pl)
            fam_memo[key] = v
        return v

    comp.null_loglik = math.fsum([fam_ll(f, ()) for f in comp.families] + [single[r] for r in rem])
    targets: list[str] = [UNASSIGNED] * len(rem)
    used: set[str] = set()
    out: list[tuple[float, float, tuple[str, ...]]] = []

    def leaf() -> None:
        per_fam: dict[str, list[Placement]] = {}
        ll = 0.0
        lp = 0.0
        for rid, t in zip(rem, targets, strict=True):
            if t == UNASSIGNED:
                ll += single[rid]
            else:
                per_fam.setdefault(fam_of[t], []).append((t, rid))
                if log_prior:
                    lp += log_prior.get((rid, t), 0.0)
        for f in comp.families:
            v = fam_ll(f, tuple(sorted(per_fam.get(f, ()))))
            if v == -math.inf:
                ll = -math.inf
                break
            ll += v
        out.append((ll + lp if ll != -math.inf else -math.inf, ll, tuple(targets)))

    def visit(i: int) -> None:
        if i == len(rem):
            leaf()
            return
        targets[i] = UNASSIGNED
        visit(i + 1)
        for mp in comp.candidates[rem[i]]:
            if mp not in used:
                used.add(mp)
                targets[i] = mp
                visit(i + 1)
                used.discard(mp)
        targets[i] = UNASSIGNED

    visit(0)
    out.sort(key=lambda x: (-x[0], x[2]))
    comp.assignments = out
    comp.log_norm = _logsumexp([s for s, _, _ in out])
    best: dict[tuple[str, str], float] = {}
    best_m: dict[tuple[str, str], float] = {}
    for _, ll, tg in out:
        given = dict.fromkeys(comp.missing, UNASSIGNED)
        for rid, t in zip(rem, tg, strict=True):
            k = (rid, t)
            best[k] = max(ll, best.get(k, -math.inf))
            if t != UNASSIGNED:
                given[t] = rid
        for km in given.items():
            best_m[km] = max(ll, best_m.get(km, -math.inf))
    comp.best_given = best
    comp.best_given_missing = best_m
    comp.method = "enumeration"
    comp.log_count = math.log(len(out))
    comp.count_exact = True
    comp.log_norm_bounds = (comp.log_norm, comp.log_norm)
    comp.marginals = {}
    if comp.log_norm != -math.inf:
        acc: dict[tuple[str, str], list[float]] = {}
        for sc, _, tg in out:
            for rid, t in zip(rem, tg, strict=True):
                acc.setdefault((rid, t), []).append(sc)
        for key, vals in acc.items():
            p = math.exp(_logsumexp(vals) - comp.log_norm)
            comp.marginals[key] = (p, p)
    return comp


def _names(model: Model, targets: Sequence[int]) -> tuple[str, ...]:
    return tuple(UNASSIGNED if m < 0 else model.missing[m] for m in targets)


def solve_component_model(
    problem: DVIProblem,
    comp: Component,
    pw: PairwiseResult,
    *,
    top: int,
    prior: Mapping[tuple[str, str], float] | None = None,
    max_assignments: int = MAX_ASSIGNMENTS,
    max_solves: int = MAX_SOLVES,
    glr_budget: list[int] | None = None,
    glr_floor: float = -math.inf,
    glr_enough: float = math.inf,
    absolute: bool = True,
) -> Component:
    """Solve a component too large to enumerate (or enumerate it after all when
    the exact count says it is small): best ``top`` assignments exactly, the
    sums exactly by dynamic programming or bracketed by certified bounds, GLRs
    by constrained solves."""
    model = build_model(problem, comp.remains, comp.families, comp.candidates, pw, prior=prior, absolute=absolute)
    comp.null_loglik = model.null_loglik
    ex = exact_sums(model)
    if (
        ex is not None
        and ex.log_count is not None
        and ex.log_count <= math.log(max_assignments) + 1e-9
        and len(comp.remains) <= MAX_ENUMERATED_REMAINS
    ):
        return solve_component(problem, comp, prior=prior)
    tl = k_best_model(model, top, max_solves=max_solves, max_seconds=MAX_TOP_SECONDS)
    comp.top_complete = tl.complete
    comp.assignments = [(s.score, model.loglik(s.chosen), _names(model, s.targets)) for s in tl.solutions]
    marg: Marginals
    if ex is not None:
        marg = ex
        comp.method = "dynamic programming"
        comp.log_count = float(ex.log_count if ex.log_count is not None else 0.0)
        comp.count_exact = True
    else:
        marg = certified_marginals(model, [s.score for s in tl.solutions])
        comp.method = "certified bounds"
        comp.log_count = math.fsum(math.log1p(len(model.by_unit[u])) for u in range(len(model.units)))
        comp.count_exact = False
    comp.log_norm_bounds = marg.log_z
    comp.log_norm = marg.log_z[0] if marg.exact else (marg.log_z[0] + marg.log_z[1]) / 2
    comp.marginals = {}
    for (r, m), b in marg.pair.items():
        comp.marginals[(model.remains[r], UNASSIGNED if m < 0 else model.missing[m])] = b
    # GLR: the best against the best with the call changed
    if tl.solutions:
        best = tl.solutions[0]
        budget = glr_budget if glr_budget is not None else [MAX_GLR_SOLVES]
        # Only the calls need a GLR (a remains left unidentified, or a missing
        # person nobody is placed on, is undecided whatever its GLR). Dropping
        # the call's option is one alternative, so GLR <= the option's ln LR:
        # below ``glr_floor`` the GLR cannot make the call probable and is not
        # computed. A local lower bound at least ``glr_enough`` settles the
        # conclusion without a solve (reported as a lower bound).
        lower = glr_lower_bounds(model, best.chosen)
        # the LP dual of the whole component bounds every alternative at once:
        # best(V != t) <= LP - penalty(V, t), so GLR >= best - LP + penalty
        lp = lp_penalties(model, Constraints()) if glr_enough < math.inf else None
        if lp is not None:
            value, y, d = lp
            for (r, m), lo in lower.items():
                alts = [d[j] for j in model.by_remains[r] if j in d and (r, m) not in model.options[j].pairs]
                alts.append(y.get(r, 0.0))
                pen = min(alts)
                slack = 1e-7 * (1.0 + abs(value))
                lower[(r, m)] = max(lo, best.score - value + pen - slack)
        t_glr = time.perf_counter()
        for k in best.chosen:
            o = model.options[k]
            if o.score < glr_floor:
                continue
            for r, m in o.pairs:
                rid, mp = model.remains[r], model.missing[m]
                if lower[(r, m)] >= glr_enough:
                    comp.glr_remains[rid] = comp.glr_missing[mp] = lower[(r, m)]
                    comp.glr_bound.update({rid, mp})
                    continue
                if budget[0] <= 0 or time.perf_counter() - t_glr > MAX_GLR_SECONDS:
                    comp.glr_not_computed += 1
                    continue
                budget[0] -= 1
                try:
                    alt = solve_best(model, Constraints(forbidden=frozenset({(r, m)})))
                except ComponentTooHardError:
                    continue
                g = math.inf if alt is None else best.score - alt.score
                comp.glr_remains[rid] = comp.glr_missing[mp] = g
    return comp


def _not_solved(problem: DVIProblem, comp: Component, message: str) -> Component:
    """A component the optimiser could not take: its "nobody identified"
    assignment only, posteriors unknown, and the message."""
    comp.null_loglik = math.fsum(
        [problem.family_loglik(f, ()) for f in comp.families] + [problem.remains_loglik(r) for r in comp.remains]
    )
    comp.assignments = [(0.0, comp.null_loglik, tuple(UNASSIGNED for _ in comp.remains))]
    comp.method = "not solved"
    comp.message = message
    comp.top_complete = False
    comp.count_exact = False
    comp.log_count = math.fsum(math.log1p(len(comp.candidates[r])) for r in comp.remains)
    comp.log_norm = 0.0
    comp.log_norm_bounds = (0.0, math.inf)
    comp.marginals = {}
    return comp


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
    pw = pairwise if pairwise is not None else pairwise_lr(problem)
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
            comps.append(_not_solved(problem, c, str(exc)))
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
    rows: list[JointRow] = []
    for idx in k_best(comps, top):
        assignment = {r: UNASSIGNED for r in problem.remains}
        lls = [const]
        lpost = 0.0
        lo = hi = 0.0
        exact = True
        for c, i in zip(comps, idx, strict=True):
            s, ll, tg = c.assignments[i]
            lls.append(ll)
            if s == -math.inf:
                lpost = lo = hi = -math.inf
            else:
                lpost += s - c.log_norm
                lo += s - c.log_norm_bounds[1]
                hi += s - c.log_norm_bounds[0]
            exact = exact and c.exact
            assignment.update(zip(c.remains, tg, strict=True))
        ll_total = -math.inf if any(v == -math.inf for v in lls) else math.fsum(lls)
        if absolute:
            log_lr = ll_total - ref_null if ll_total != -math.inf else -math.inf
        else:  # each component's own likelihood against its "nobody identified"
            rel = [c.assignments[i][1] - c.null_loglik for c, i in zip(comps, idx, strict=True)]
            log_lr = -math.inf if any(v == -math.inf for v in rel) else math.fsum(rel)
            ll_total = math.nan
        if fixed:
            assignment = {**dict(fixed), **assignment}
        rows.append(
            JointRow(
                assignment=assignment,
                loglik=ll_total,
                log_lr=log_lr,
                log_posterior=lpost,
                log_posterior_bounds=(lo, min(hi, 0.0)) if not exact else (lpost, lpost),
                exact=exact,
            )
        )
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
