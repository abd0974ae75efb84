"""The components of joint identification (see :mod:`opendvi.dvi.joint`).

The candidate graph links a remains to a family when one of the family's
missing persons is a candidate for it (:func:`candidate_pairings`,
:func:`components`). Each connected component is solved exactly on its own:
enumerated when it has few assignments (:func:`solve_component`), otherwise
by the exact optimiser of :mod:`opendvi.dvi.assignment` and the sums of
:mod:`opendvi.dvi.posterior` (:func:`solve_component_model`).
"""

from __future__ import annotations

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
    Solution,
    TopList,
    build_model,
    lp_penalties,
    solve_best,
)
from opendvi.dvi.assignment import k_best as k_best_model
from opendvi.dvi.errors import DVIError
from opendvi.dvi.pairwise import PairwiseResult
from opendvi.dvi.posterior import Marginals, certified_marginals, exact_sums, glr_lower_bounds
from opendvi.dvi.problem import DVIProblem, Placement
from opendvi.dvi.relaxation import LocalRelaxation, PackingRelaxation

#: Components with at most this many assignments are enumerated; larger ones
#: go to the exact optimiser and the exact (or certified) sums.
MAX_ASSIGNMENTS = 100_000
#: Constrained solves spent on GLRs in one component (one per called remains
#: and missing person); beyond it a GLR is reported as not computed.
MAX_GLR_SOLVES = 3000
#: Seconds of the solving thread's CPU time (not the clock: a busy machine must not change which
#: GLRs are computed) the GLR solves may take in one component; beyond, a GLR is not computed.
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

    def glr_limit_note(self) -> str:
        """The note of calls whose GLR the limits left out ("" when none): the one text of it."""
        if not self.glr_not_computed:
            return ""
        return (f"component of {self.remains[0]} ... ({len(self.remains)} remains): the GLR of "
                f"{self.glr_not_computed} call(s) was not computed (limit of {MAX_GLR_SOLVES} solves or "
                f"{MAX_GLR_SECONDS:g} s of CPU time, the weakest calls left out); those calls are left undecided")

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
    _summarise_enumeration(comp, out)
    return comp


def _summarise_enumeration(comp: Component, out: list[tuple[float, float, tuple[str, ...]]]) -> None:
    """Every assignment of ``comp`` is in ``out`` (best first): its
    normalising constant, best log-likelihoods per call and exact marginals."""
    comp.assignments = out
    comp.log_norm = _logsumexp([s for s, _, _ in out])
    best: dict[tuple[str, str], float] = {}
    best_m: dict[tuple[str, str], float] = {}
    for _, ll, tg in out:
        given = dict.fromkeys(comp.missing, UNASSIGNED)
        for rid, t in zip(comp.remains, tg, strict=True):
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
            for rid, t in zip(comp.remains, tg, strict=True):
                acc.setdefault((rid, t), []).append(sc)
        for key, vals in acc.items():
            p = math.exp(_logsumexp(vals) - comp.log_norm)
            comp.marginals[key] = (p, p)


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
    tl = _best_only(model) if top == 1 else None
    if tl is None:
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
    if tl.solutions:
        budget = glr_budget if glr_budget is not None else [MAX_GLR_SOLVES]
        _call_glrs(model, comp, tl.solutions[0], budget, glr_floor=glr_floor, glr_enough=glr_enough)
    return comp


def _best_only(model: Model) -> TopList | None:
    """The best assignment alone from the relaxation of the positive options (an option of score
    <= 0 never raises an assignment), where it proves its answer (``dvi/relaxation.py``); None
    where it does not (the integer program then decides)."""
    found = PackingRelaxation(model, [k for k, o in enumerate(model.options) if o.score > 0]).best_without(())
    if found is None:
        return None
    chosen = tuple(sorted(found[1]))
    return TopList([Solution(model.score(chosen), chosen, model.targets_of(chosen))], True, 1)


def _call_glrs(
    model: Model, comp: Component, best: Solution, budget: list[int], *, glr_floor: float, glr_enough: float
) -> None:
    """The GLR of each call of the best assignment ``best`` (the best against
    the best with the call changed), into ``comp.glr_remains`` and
    ``comp.glr_missing``; ``budget[0]`` constrained solves at the most."""
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
    # Weak duality restricts the groups further: an assignment scoring above best - glr_enough uses
    # options whose reduced costs (each >= 0) add up to less than LP - best + glr_enough, so only
    # those options (and the best's own) can make a GLR below glr_enough; a solve over them that
    # leaves the GLR at or above glr_enough proves that bound (reported as a lower bound).
    eligible: set[int] | None = None
    if lp is not None and len(lp[2]) == len(model.options):
        cut = lp[0] - best.score + glr_enough + 1e-6 * (1.0 + abs(lp[0]))
        eligible = {k for k, dk in lp[2].items() if dk <= cut} | set(best.chosen)
    # each solve: HiGHS's relaxation of the options that can matter (positive, eligible, the best's
    # own), warm from the previous solve; it proves its answer optimal (dvi/relaxation.py) or the
    # integer program over the call's group of positive options decides
    relax: PackingRelaxation | None = None
    groups: tuple[dict[int, int], list[frozenset[int]]] | None = None
    t_glr = time.thread_time()
    # strongest calls first: where the limits of solves and seconds stop the step, the GLRs left out
    # are those of the weakest calls
    for k in sorted(best.chosen, key=lambda j: -model.options[j].score):
        o = model.options[k]
        if o.score < glr_floor:
            continue
        for r, m in o.pairs:
            rid, mp = model.remains[r], model.missing[m]
            if lower[(r, m)] >= glr_enough:
                comp.glr_remains[rid] = comp.glr_missing[mp] = lower[(r, m)]
                comp.glr_bound.update({rid, mp})
                continue
            if budget[0] <= 0 or time.thread_time() - t_glr > MAX_GLR_SECONDS:
                comp.glr_not_computed += 1
                continue
            budget[0] -= 1
            if relax is None:
                relax = LocalRelaxation(model, [j for j, oj in enumerate(model.options) if oj.score > 0 and (
                    eligible is None or j in eligible)] + [j for j in best.chosen if model.options[j].score <= 0])
            found = relax.best_without([(r, m)])
            if found is not None:
                g = best.score - found[0]
                restricted = eligible is not None
            else:
                if groups is None:
                    groups = _positive_groups(model, eligible)
                # the best with (r, m) forbidden differs from the best only in r's group (below)
                only = groups[1][groups[0][r]] if o.score > 0 else None
                try:
                    alt = solve_best(model, Constraints(forbidden=frozenset({(r, m)})), only=only)
                except ComponentTooHardError:
                    continue
                here = best.score if only is None else math.fsum(
                    model.options[j].score for j in best.chosen if j in only)
                g = math.inf if alt is None else here - alt.score
                restricted = eligible is not None and only is not None
            if restricted and g >= glr_enough - 1e-9:
                g = max(glr_enough, lower[(r, m)])
                comp.glr_bound.update({rid, mp})
            comp.glr_remains[rid] = comp.glr_missing[mp] = g


def _positive_groups(model: Model, among: set[int] | None = None) -> tuple[dict[int, int], list[frozenset[int]]]:
    """The connected groups of the options of positive score (remains and families linked by them):
    remains -> group, and each group's options. Leaving a family's option out is always allowed, so
    an option of score <= 0 can be dropped from any assignment without lowering it: the best under
    forbidden pairings uses positive options only and is the best of each group on its own. So the
    best with a pairing of remains r forbidden differs from the best only in r's group, whose
    integer program is small where the component, linked by its weak candidates, is one."""
    parent = list(range(len(model.remains) + len(model.units)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    n_r = len(model.remains)
    positive = [k for k, o in enumerate(model.options) if o.score > 0 and (among is None or k in among)]
    for k in positive:
        o = model.options[k]
        a = find(n_r + o.unit)
        for r, _m in o.pairs:
            b = find(r)
            if a != b:
                parent[b] = a
    roots: dict[int, int] = {}
    members: list[set[int]] = []
    for k in positive:
        root = find(n_r + model.options[k].unit)
        if root not in roots:
            roots[root] = len(members)
            members.append(set())
        members[roots[root]].add(k)
    group_of = {r: roots[find(r)] for r in range(n_r) if find(r) in roots}
    return group_of, [frozenset(m) for m in members]


def not_solved(problem: DVIProblem, comp: Component, message: str) -> Component:
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
