"""Exact best assignments of a component, at any size.

The joint likelihood factorises over families: with the remains of a
component and the null hypothesis "nobody identified",

    ln LR(a) = sum over families F of  w_F(a_F),
    w_F(S) = ln P(R_F, S placed) - ln P(R_F) - sum over V in S of ln P(g_V),

where a_F is the family's *option*: which of its candidate remains are
placed on which of its missing persons (the empty option has w = 0). A
family with several missing persons is one factor over all its options,
each evaluated with the pedigree holding all of the remains it places.
The best assignment is then a weighted set packing: choose at most one
option per family, each remains in at most one chosen option, maximising
the sum of weights. When every family of the component has one missing
person it is a maximum-weight bipartite matching (remains x missing
persons, with "not among the missing" a zero-weight dummy per remains),
solved by :func:`scipy.optimize.linear_sum_assignment` (dense) or
:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching` (sparse);
otherwise an integer program solved by HiGHS
(:func:`scipy.optimize.milp`, relative gap 0). The next best assignments
come from Lawler's partitioning of the solution space (Murty's method),
each subproblem solved by the same exact solver under constraints.

See ``docs/decisions/0003-joint-identification-at-scale.md``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from opendvi.dvi.errors import DVIError
from opendvi.dvi.pairwise import PairwiseResult
from opendvi.dvi.problem import DVIProblem, Placement

#: A family with more options than this (placements of its candidate remains
#: on its missing persons) is too hard: each option costs a pedigree evaluation.
MAX_FAMILY_OPTIONS = 20_000
#: Dense assignment matrices up to this many cells; sparse matching beyond.
DENSE_CELLS = 4_000_000
#: Lawler/Murty: at most this many constrained solves per component for the top list.
MAX_SOLVES = 100


class ComponentTooHardError(DVIError):
    """A component cannot be solved as asked (a family with too many options,
    or the integer program failed); the message says what would help."""


@dataclass(frozen=True)
class Option:
    """A non-empty option of a family: pairs (remains index, missing index)."""

    unit: int
    pairs: tuple[tuple[int, int], ...]
    #: ln LR of the option against "nobody of it identified" plus ln prior
    score: float
    #: ln LR alone (for the log-likelihood)
    delta: float


@dataclass
class Model:
    """A component as a set packing problem."""

    remains: tuple[str, ...]
    missing: tuple[str, ...]
    units: tuple[str, ...]
    unit_of_missing: tuple[int, ...]
    options: list[Option]
    null_loglik: float
    #: options of likelihood 0 (or prior 0): never chosen, but assignments all the same (counted)
    dead: list[Option] = field(default_factory=list)
    by_remains: list[list[int]] = field(default_factory=list)
    by_unit: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_remains = [[] for _ in self.remains]
        self.by_unit = [[] for _ in self.units]
        for k, o in enumerate(self.options):
            self.by_unit[o.unit].append(k)
            for r, _ in o.pairs:
                self.by_remains[r].append(k)

    @property
    def one_missing(self) -> bool:
        """Every family of the component has one missing person in it."""
        return len(self.units) == len(self.missing)

    def targets_of(self, chosen: Sequence[int]) -> tuple[int, ...]:
        """Missing index per remains (-1: not among the missing)."""
        t = [-1] * len(self.remains)
        for k in chosen:
            for r, m in self.options[k].pairs:
                t[r] = m
        return tuple(t)

    def score(self, chosen: Sequence[int]) -> float:
        return math.fsum(self.options[k].score for k in chosen)

    def loglik(self, chosen: Sequence[int]) -> float:
        return math.fsum([self.null_loglik, *(self.options[k].delta for k in chosen)])


def build_model(
    problem: DVIProblem,
    remains: Sequence[str],
    families: Sequence[str],
    candidates: Mapping[str, Sequence[str]],
    pairwise: PairwiseResult | None = None,
    *,
    prior: Mapping[tuple[str, str], float] | None = None,
    max_family_options: int | None = None,
    absolute: bool = True,
) -> Model:
    """The options of every family of a component and their weights.

    One remains on a family: with theta = 0 its weight is the pairwise ln LR
    (the same number, ``docs/dvi.md``); otherwise, and for two or more
    remains, the family's pedigree likelihood with all of them placed.

    ``absolute=False``: the model's log-likelihoods are taken against "nobody
    identified" (``null_loglik`` 0), and a family's null likelihood is computed
    only where an option needs it (two or more remains placed, or theta > 0);
    every weight, posterior and GLR is the same.
    """
    if max_family_options is None:
        max_family_options = MAX_FAMILY_OPTIONS
    rem = tuple(remains)
    ridx = {r: i for i, r in enumerate(rem)}
    wanted = {m for r in rem for m in candidates.get(r, ())}
    missing = tuple(mp for f in families for mp in problem.families[f].missing if mp in wanted)
    midx = {m: i for i, m in enumerate(missing)}
    with_missing = {problem.family_of(m) for m in missing}
    units = tuple(f for f in families if f in with_missing)
    uidx = {f: i for i, f in enumerate(units)}
    unit_of_missing = tuple(uidx[problem.family_of(m)] for m in missing)
    # each remains' own log-likelihood, computed where an option (or the absolute null) needs it
    single: dict[str, float] = {}

    def remains_ll(r: str) -> float:
        v = single.get(r)
        if v is None:
            v = single[r] = problem.remains_loglik(r)
        return v

    log_prior: dict[tuple[str, str], float] = {}
    for (rid, mp), w in (prior or {}).items():
        if w < 0:
            raise DVIError(f"prior weight of {rid} -> {mp} must be >= 0, found {w}")
        log_prior[(rid, mp)] = math.log(w) if w > 0 else -math.inf
    cand_of: dict[str, list[str]] = {m: [] for m in missing}
    for r in rem:
        for m in candidates.get(r, ()):
            if m in cand_of:
                cand_of[m].append(r)
    null_f: dict[str, float] = {}

    def family_null(f: str) -> float:
        v = null_f.get(f)
        if v is None:
            v = null_f[f] = problem.family_loglik(f, ())
        return v

    if absolute:
        null = math.fsum([*(family_null(f) for f in units), *(remains_ll(r) for r in rem)])
    else:
        null = 0.0
    options: list[Option] = []
    dead: list[Option] = []
    missing_of: list[list[str]] = [[] for _ in units]
    for m in missing:
        missing_of[unit_of_missing[midx[m]]].append(m)
    for f in units:
        u = uidx[f]
        fm = missing_of[u]
        bound = math.prod(1 + len(cand_of[m]) for m in fm)
        if len(fm) > 1 and bound > max_family_options:
            n = _count_injective([cand_of[m] for m in fm], max_family_options)
            if n > max_family_options:
                raise ComponentTooHardError(
                    f"family {f} ({len(fm)} missing persons, {sum(len(cand_of[m]) for m in fm)} candidate pairings) "
                    f"has more than {max_family_options:,} ways to place its candidate remains, each a pedigree "
                    "evaluation; lower --max-exclusions or set --lr-threshold to drop weak candidates"
                )
        for combo in _injective([cand_of[m] for m in fm]):
            placed = [(m, r) for m, r in zip(fm, combo, strict=True) if r is not None]
            if not placed:
                continue
            if len(placed) == 1 and problem.theta == 0.0 and pairwise is not None:
                m, r = placed[0]
                delta = pairwise.log_lr[r][m]
            else:
                pl: tuple[Placement, ...] = tuple(sorted(placed))
                v = problem.family_loglik(f, pl)
                own = math.fsum(remains_ll(r) for _, r in placed)
                delta = -math.inf if v == -math.inf else v - family_null(f) - own
            lp = math.fsum(log_prior.get((r, m), 0.0) for m, r in placed)
            pairs = tuple(sorted((ridx[r], midx[m]) for m, r in placed))
            if delta == -math.inf or lp == -math.inf:
                dead.append(Option(u, pairs, -math.inf, delta))
                continue
            options.append(Option(u, pairs, delta + lp, delta))
    return Model(rem, missing, units, unit_of_missing, options, null, dead)


def _injective(lists: Sequence[Sequence[str]]) -> list[tuple[str | None, ...]]:
    """Every way to give each position one of its items or None, no item twice."""
    out: list[tuple[str | None, ...]] = []
    for combo in itertools.product(*[[None, *x] for x in lists]):
        used = [c for c in combo if c is not None]
        if len(used) == len(set(used)):
            out.append(combo)
    return out


def _count_injective(lists: Sequence[Sequence[str]], limit: int) -> int:
    n = 0
    for combo in itertools.product(*[[None, *x] for x in lists]):
        used = [c for c in combo if c is not None]
        if len(used) == len(set(used)):
            n += 1
            if n > limit:
                break
    return n


# -- constraints and the exact solver ---------------------------------------------------------------
@dataclass(frozen=True)
class Constraints:
    """``forced[r] = m`` (m = -1: r not among the missing), ``forbidden`` pairs
    (r, m) (m = -1: r must be identified), ``used``: missing persons that must
    get a remains."""

    forced: tuple[tuple[int, int], ...] = ()
    forbidden: frozenset[tuple[int, int]] = frozenset()
    used: frozenset[int] = frozenset()

    def with_(
        self,
        forced: Sequence[tuple[int, int]] = (),
        forbidden: Sequence[tuple[int, int]] = (),
        used: Sequence[int] = (),
    ) -> Constraints:
        return Constraints(
            self.forced + tuple(forced), self.forbidden | frozenset(forbidden), self.used | frozenset(used)
        )


@dataclass(frozen=True)
class Solution:
    score: float
    chosen: tuple[int, ...]
    targets: tuple[int, ...]


def _allowed(model: Model, cons: Constraints,
             among: frozenset[int] | None = None) -> tuple[list[int], set[int], set[int]]:
    """Options allowed by ``cons`` (among ``among``, default all), units that must choose a non-empty
    option, remains that must be identified."""
    forced = dict(cons.forced)
    must_unit: set[int] = set()
    need: dict[int, list[tuple[int, int]]] = {}
    for r, m in forced.items():
        if m >= 0:
            u = model.unit_of_missing[m]
            must_unit.add(u)
            need.setdefault(u, []).append((r, m))
    need_m: dict[int, list[int]] = {}
    for m in cons.used:
        u = model.unit_of_missing[m]
        must_unit.add(u)
        need_m.setdefault(u, []).append(m)
    must_remains = {r for r, m in cons.forbidden if m < 0}
    keep = []
    for k in sorted(among) if among is not None else range(len(model.options)):
        o = model.options[k]
        ok = True
        ms = set()
        for r, m in o.pairs:
            ms.add(m)
            if (r, m) in cons.forbidden or (r in forced and forced[r] != m):
                ok = False
                break
        if not ok:
            continue
        if o.unit in need and not all(p in o.pairs for p in need[o.unit]):
            continue
        if o.unit in need_m and not all(m in ms for m in need_m[o.unit]):
            continue
        keep.append(k)
    return keep, must_unit, must_remains


def solve_best(model: Model, cons: Constraints = Constraints(), *, time_limit: float = 120.0,
               only: frozenset[int] | None = None) -> Solution | None:
    """The best assignment under ``cons`` (None when there is none); with ``only``, the best that uses
    only those options (the caller proves that the best it wants uses no other)."""
    keep, must_unit, must_remains = _allowed(model, cons, only)
    for u in must_unit:
        if not any(model.options[k].unit == u for k in keep):
            return None
    for r in must_remains:
        if not any(r in (p[0] for p in model.options[k].pairs) for k in keep):
            return None
    if not keep:
        if must_unit or must_remains:
            return None
        return Solution(0.0, (), tuple([-1] * len(model.remains)))
    if model.one_missing and not must_unit:
        chosen = _matching(model, keep, must_remains)
    else:
        chosen = _milp(model, keep, must_unit, must_remains, time_limit)
    if chosen is None:
        return None
    picked = tuple(sorted(chosen))
    return Solution(model.score(picked), picked, model.targets_of(picked))


def _matching(model: Model, keep: Sequence[int], must_remains: set[int]) -> list[int] | None:
    """Maximum-weight matching remains x missing persons, each remains with its
    own zero-weight "not among the missing" column."""
    rows = sorted({model.options[k].pairs[0][0] for k in keep} | must_remains)
    rpos = {r: i for i, r in enumerate(rows)}
    cols = sorted({model.options[k].pairs[0][1] for k in keep})
    cpos = {m: j for j, m in enumerate(cols)}
    n, mcols = len(rows), len(cols)
    opt_at: dict[tuple[int, int], int] = {}
    for k in keep:
        r, m = model.options[k].pairs[0]
        opt_at[(rpos[r], cpos[m])] = k
    if n * (mcols + n) <= DENSE_CELLS:
        cost = np.full((n, mcols + n), np.inf)
        for (i, j), k in opt_at.items():
            cost[i, j] = -model.options[k].score
        for i, r in enumerate(rows):
            if r not in must_remains:
                cost[i, mcols + i] = 0.0
        try:
            ri, ci = linear_sum_assignment(cost)
        except ValueError:
            return None
        return [opt_at[(i, j)] for i, j in zip(ri.tolist(), ci.tolist(), strict=True) if j < mcols]
    # sparse: weights shifted to be positive (each row is matched exactly once)
    shift = 1.0 + max(abs(model.options[k].score) for k in keep)
    ii, jj, ww = [], [], []
    for (i, j), k in opt_at.items():
        ii.append(i)
        jj.append(j)
        ww.append(model.options[k].score + shift)
    for i, r in enumerate(rows):
        if r not in must_remains:
            ii.append(i)
            jj.append(mcols + i)
            ww.append(shift)
    mat = csr_matrix((np.array(ww), (np.array(ii), np.array(jj))), shape=(n, mcols + n))
    try:
        ri, ci = min_weight_full_bipartite_matching(mat, maximize=True)
    except ValueError:
        return None
    return [opt_at[(int(i), int(j))] for i, j in zip(ri.tolist(), ci.tolist(), strict=True) if j < mcols]


def packing_matrix(
    model: Model, keep: Sequence[int]
) -> tuple[list[int], dict[int, int], dict[int, int], csr_matrix]:
    """The constraint matrix of weighted set packing over the options ``keep``:
    one row per unit (each takes at most one option), then one per remains
    (each placed at most once), one column per option. Returns the remains of
    the rows, the row of each unit and of each remains, and the matrix."""
    units = sorted({model.options[k].unit for k in keep})
    rem = sorted({r for k in keep for r, _ in model.options[k].pairs})
    upos = {u: i for i, u in enumerate(units)}
    rpos = {r: len(units) + i for i, r in enumerate(rem)}
    ii, jj = [], []
    for j, k in enumerate(keep):
        o = model.options[k]
        ii.append(upos[o.unit])
        jj.append(j)
        for r, _ in o.pairs:
            ii.append(rpos[r])
            jj.append(j)
    n_rows = len(units) + len(rem)
    a = csr_matrix((np.ones(len(ii)), (np.array(ii), np.array(jj))), shape=(n_rows, len(keep)))
    return rem, upos, rpos, a


def _milp(
    model: Model, keep: Sequence[int], must_unit: set[int], must_remains: set[int], time_limit: float
) -> list[int] | None:
    """Weighted set packing as an integer program (HiGHS, relative gap 0)."""
    _rem, upos, rpos, a = packing_matrix(model, keep)
    n_rows = a.shape[0]
    lb = np.zeros(n_rows)
    for u in must_unit:
        if u in upos:
            lb[upos[u]] = 1.0
    for r in must_remains:
        if r in rpos:
            lb[rpos[r]] = 1.0
    c = -np.array([model.options[k].score for k in keep])
    res = milp(
        c,
        integrality=np.ones(len(keep)),
        bounds=Bounds(0, 1),
        constraints=LinearConstraint(a, lb, np.ones(n_rows)),
        options={"mip_rel_gap": 0.0, "time_limit": time_limit, "disp": False},
    )
    if res.status == 2 or (res.x is None and res.status != 1):
        return None
    if res.status != 0 or res.x is None:
        raise ComponentTooHardError(
            f"the integer program of a component with {len(model.remains)} remains and {len(model.missing)} "
            f"missing persons did not finish ({res.message}); lower --max-exclusions or set --lr-threshold"
        )
    return [k for k, x in zip(keep, res.x.tolist(), strict=True) if x > 0.5]


# -- the next best: Lawler / Murty partitioning -----------------------------------------------------
@dataclass
class TopList:
    """The best assignments of a component found so far, best first; ``complete``
    is False when the search stopped at its limit of solves."""

    solutions: list[Solution]
    complete: bool
    solves: int


def lp_penalties(model: Model, cons: Constraints) -> tuple[float, dict[int, float], dict[int, float]] | None:
    """The LP relaxation of the subproblem ``cons`` and its dual: (LP value,
    y per remains row, reduced cost d per option). For every integer
    solution x of the subproblem (or of any part of it),
    score(x) <= LP - sum of d over its options - sum of y over its unused
    remains (weak duality), which bounds each part of Lawler's partition
    without solving it."""
    from scipy.optimize import linprog

    keep, must_unit, must_remains = _allowed(model, cons)
    if not keep:
        return None
    rem, upos, rpos, a = packing_matrix(model, keep)
    n_rows = a.shape[0]
    eq = np.zeros(n_rows, dtype=bool)
    for u in must_unit:
        if u in upos:
            eq[upos[u]] = True
    for r in must_remains:
        if r in rpos:
            eq[rpos[r]] = True
    c = -np.array([model.options[k].score for k in keep])
    ub_rows, eq_rows = np.nonzero(~eq)[0], np.nonzero(eq)[0]
    res = linprog(
        c,
        A_ub=a[ub_rows] if len(ub_rows) else None,
        b_ub=np.ones(len(ub_rows)) if len(ub_rows) else None,
        A_eq=a[eq_rows] if len(eq_rows) else None,
        b_eq=np.ones(len(eq_rows)) if len(eq_rows) else None,
        bounds=(0, None),
        method="highs",
    )
    if res.status != 0:
        return None
    y = np.zeros(n_rows)
    if len(ub_rows):
        y[ub_rows] = -np.asarray(res.ineqlin.marginals)
    if len(eq_rows):
        y[eq_rows] = -np.asarray(res.eqlin.marginals)
    d = a.T @ y + c  # y.A_j - score_j >= 0 at the optimum
    return (
        -float(res.fun),
        {r: max(0.0, float(y[rpos[r]])) if not eq[rpos[r]] else 0.0 for r in rem},
        {k: max(0.0, float(d[j])) for j, k in enumerate(keep)},
    )


def k_best(model: Model, k: int, *, max_solves: int = MAX_SOLVES, max_seconds: float = math.inf) -> TopList:
    """The ``k`` best assignments, exactly, by Lawler's partitioning: after the
    best of a subspace is taken, the rest of that subspace is split into
    disjoint parts (remains 1..i-1 fixed as in it, remains i different), each
    solved exactly. Parts are solved lazily: a part waits in the queue under an
    upper bound of its best (the parent's score, lowered by the LP dual's
    penalty for changing remains i) and is solved when it comes first, so the
    output order is exact and parts that cannot reach the list are never solved."""
    t0 = time.perf_counter()
    root = solve_best(model)
    solves = 1
    out: list[Solution] = []
    if root is None:
        return TopList(out, True, solves)
    counter = itertools.count()
    # (-bound, 0 if solved else 1, order, constraints, solution): at equal
    # bounds a solved part comes first (its bound is its value)
    heap: list[tuple[float, int, int, Constraints, Solution | None]] = [
        (-root.score, 0, next(counter), Constraints(), root)
    ]
    while heap and len(out) < k:
        _, _, _, cons, sol = heapq.heappop(heap)
        if sol is None:
            if solves >= max_solves or time.perf_counter() - t0 > max_seconds:
                return TopList(out, False, solves)
            try:
                sol = solve_best(model, cons)
            except ComponentTooHardError:  # a part the solver could not finish: stop the list here
                return TopList(out, False, solves)
            solves += 1
            if sol is not None:
                heapq.heappush(heap, (-sol.score, 0, next(counter), cons, sol))
            continue
        out.append(sol)
        if len(out) == k:
            break
        lp = lp_penalties(model, cons)
        fixed = {r for r, _ in cons.forced}
        free = [r for r in range(len(model.remains)) if r not in fixed]
        prefix: list[tuple[int, int]] = []
        for r in free:
            t = sol.targets[r]
            child = cons.with_(forced=prefix, forbidden=[(r, t)])
            bound = sol.score
            if lp is not None:
                value, y, d = lp
                alts = [d[j] for j in model.by_remains[r] if j in d and (r, t) not in model.options[j].pairs]
                if t >= 0:
                    alts.append(y.get(r, 0.0))
                penalty = min(alts, default=math.inf)
                if penalty == math.inf:
                    prefix.append((r, t))
                    continue  # this part is empty
                slack = 1e-7 * (1.0 + abs(value))
                bound = min(sol.score, value - penalty + slack)
            heapq.heappush(heap, (-bound, 1, next(counter), child, None))
            prefix.append((r, t))
    return TopList(out, not heap or len(out) >= k, solves)
