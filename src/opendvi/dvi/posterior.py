"""Posteriors of a component, with how exact they are.

Under a flat prior (or the prior's weights) the posterior of an assignment
is its weight over Z, the sum of the weights of every assignment of the
component, and the marginal posterior of a pairing V = M is the share of Z
carried by the assignments that contain it.

* **Exact, by dynamic programming** (:func:`exact_sums`). The families of the
  component are taken one after another; the state is the set of remains
  already used *that a later family could still use* (the frontier). The sum
  over all assignments is accumulated state by state (forward), and again
  from the end (backward); forward x option x backward / Z is the marginal of
  each option. Counting the assignments is the same sum with every weight 1.
  When every family has one missing person the roles may be swapped (remains
  taken in turn, the state being the missing persons used); the order with
  the smaller frontier is chosen. Feasible when the frontier stays small
  (``max_bits``, 2^20 states): every component of a realistic case after the
  exclusion reduction, whatever its number of assignments.
* **Certified bounds** (:func:`certified_marginals`) otherwise. For remains V
  and an option o using V (family g), with y_o = Z(G without V, o's remains
  and family g) / Z(G without V), which lies in (0, 1],

      P(o) = w_o y_o / (1 + sum over options o' using V of w_o' y_o'),

  exactly. y_o >= 1 / (S_g * prod_h (1 + sum of h's options touching o's
  other remains)), where S_g sums family g's options not using V (the empty
  one included): every assignment without V maps onto one without g and
  o's remains by dropping those options, and the weight lost is at most that
  product. Putting the lower bounds in the numerator and 1 in the
  denominator (and the reverse) brackets every marginal; the interval is
  narrow exactly where it matters (a strong pairing against weak
  alternatives) and says so where it is not. For a family with one missing
  person the bound goes one step deeper: y_o = 1 / (1 + sum over the other
  remains V' of w(V', M) R(V')), R(V') the probability that V' is unused
  once V and the family are gone, at most 1 / (1 + V''s other options times
  their own lower bounds), so a competitor with a strong match elsewhere
  hardly counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from opendvi.dvi.assignment import Model

#: Largest frontier (bits of state) of the exact dynamic programme.
MAX_BITS = 20
#: Largest total work (states x options over all steps) of the exact programme.
MAX_WORK = 60_000_000
#: Largest number of units ordered for the programme (the ordering is quadratic).
MAX_UNITS = 1500


@dataclass
class Marginals:
    """Marginal posteriors of a component: ``pair[(r, m)] = (low, high)`` for
    remains index r and missing index m (m = -1: not among the missing);
    low == high when exact. ``log_z`` is ln of the sum of the assignments'
    weights (exact, or the interval's ends)."""

    method: str
    exact: bool
    log_z: tuple[float, float]
    pair: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)
    log_count: float | None = None

    @property
    def max_error(self) -> float:
        """Half the widest interval (0 when exact)."""
        if self.exact or not self.pair:
            return 0.0
        return max((hi - lo) / 2 for lo, hi in self.pair.values())


# -- the exact dynamic programme ----------------------------------------------------------------------
@dataclass
class _Plan:
    order: list[int]
    #: per unit in order: options (resources tuple, weight, option id)
    options: list[list[tuple[tuple[int, ...], float, int]]]
    frontiers: list[list[int]]  # frontier after each step (frontiers[0] = before the first)
    work: int


_UnitOptions = list[list[tuple[tuple[int, ...], float, int]]]


def _units(model: Model, swapped: bool, *, dead: bool = False) -> _UnitOptions:
    """Per unit its options (resources, weight, option id); ``dead``: with the
    options of likelihood 0 too (id -2), for counting."""
    if swapped:
        out: _UnitOptions = [
            [((model.options[k].pairs[0][1],), model.options[k].score, k) for k in ks] for ks in model.by_remains
        ]
        if dead:
            for o in model.dead:
                out[o.pairs[0][0]].append(((o.pairs[0][1],), 0.0, -2))
        return out
    out = [
        [(tuple(r for r, _ in model.options[k].pairs), model.options[k].score, k) for k in ks]
        for ks in model.by_unit
    ]
    if dead:
        for o in model.dead:
            out[o.unit].append((tuple(r for r, _ in o.pairs), 0.0, -2))
    return out


def _plan(units: list[list[tuple[tuple[int, ...], float, int]]], max_bits: int) -> _Plan | None:
    n = len(units)
    if n > MAX_UNITS:
        return None
    res_of = [set(x for o in opts for x in o[0]) for opts in units]
    users: dict[int, set[int]] = {}
    for u, rs in enumerate(res_of):
        for x in rs:
            users.setdefault(x, set()).add(u)
    remaining_users = {x: len(us) for x, us in users.items()}
    done = [False] * n
    frontier: set[int] = set()
    order: list[int] = []
    frontiers: list[list[int]] = [[]]
    work = 0
    for _ in range(n):
        best_u, best_key = -1, None
        for u in range(n):
            if done[u]:
                continue
            new = {x for x in res_of[u] if x not in frontier}
            closing = sum(1 for x in res_of[u] if remaining_users[x] == 1)
            key = (len(frontier | new) - closing, len(new), u)
            if best_key is None or key < best_key:
                best_u, best_key = u, key
        u = best_u
        done[u] = True
        order.append(u)
        before = len(frontier)
        for x in res_of[u]:
            remaining_users[x] -= 1
            frontier.add(x)
        frontier = {x for x in frontier if remaining_users[x] > 0}
        if len(frontier) > max_bits:
            return None
        work += (1 << before) * (len(units[u]) + 1)
        if work > MAX_WORK:
            return None
        frontiers.append(sorted(frontier))
    return _Plan(order, [units[u] for u in order], frontiers, work)


def _step_maps(
    prev: list[int], nxt: list[int], opts: Sequence[tuple[tuple[int, ...], float, int]]
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, float, int]]]:
    """The next state of every previous state for each option (and which are compatible)."""
    pp = {x: i for i, x in enumerate(prev)}
    pn = {x: i for i, x in enumerate(nxt)}
    idx = np.arange(1 << len(prev), dtype=np.int64)
    proj = np.zeros_like(idx)
    for x, i in pp.items():
        if x in pn:
            proj |= ((idx >> i) & 1) << pn[x]
    out = [(np.ones(len(idx), dtype=bool), proj, 0.0, -1)]
    for res, w, k in opts:
        cm = 0
        am = 0
        for x in res:
            if x in pp:
                cm |= 1 << pp[x]
            if x in pn:
                am |= 1 << pn[x]
        compat = (idx & cm) == 0
        out.append((compat, proj | am, w, k))
    return idx, out


def _dp(plan: _Plan, *, count: bool = False) -> tuple[float, dict[int, float]]:
    """ln Z and ln marginal of every option (``count``: every weight 1, no marginals)."""
    steps = []
    for i, opts in enumerate(plan.options):
        _, maps = _step_maps(plan.frontiers[i], plan.frontiers[i + 1], opts)
        if count:
            maps = [(c, nw, 0.0, k) for c, nw, _, k in maps]
        steps.append(maps)
    # forward
    alphas = [np.zeros(1)]
    for i, maps in enumerate(steps):
        a = alphas[-1]
        amax = float(np.max(a))
        size = 1 << len(plan.frontiers[i + 1])
        if amax == -math.inf:
            alphas.append(np.full(size, -math.inf))
            continue
        wmax = max(w for _, _, w, _ in maps)
        ea = np.exp(a - amax)
        acc = np.zeros(size)
        for compat, new, w, _ in maps:
            acc += np.bincount(new[compat], weights=ea[compat] * math.exp(w - wmax), minlength=size)
        with np.errstate(divide="ignore"):
            alphas.append(np.log(acc) + amax + wmax)
    log_z = float(alphas[-1][0])
    if count or log_z == -math.inf:
        return log_z, {}
    # backward
    betas: list[np.ndarray] = [np.zeros(1)]
    for i in range(len(steps) - 1, -1, -1):
        b = betas[0]
        bmax = float(np.max(b))
        maps = steps[i]
        wmax = max(w for _, _, w, _ in maps)
        eb = np.exp(b - bmax)
        acc = np.zeros(1 << len(plan.frontiers[i]))
        for compat, new, w, _ in maps:
            acc += np.where(compat, eb[new], 0.0) * math.exp(w - wmax)
        with np.errstate(divide="ignore"):
            betas.insert(0, np.log(acc) + bmax + wmax)
    marg: dict[int, float] = {}
    for i, maps in enumerate(steps):
        a, b = alphas[i], betas[i + 1]
        amax, bmax = float(np.max(a)), float(np.max(b))
        if amax == -math.inf or bmax == -math.inf:
            continue
        ea, eb = np.exp(a - amax), np.exp(b - bmax)
        for compat, new, w, k in maps:
            if k < 0:
                continue
            s = float(np.sum(ea[compat] * eb[new[compat]]))
            marg[k] = -math.inf if s <= 0 else math.log(s) + w + amax + bmax - log_z
    return log_z, marg


def exact_sums(model: Model, *, max_bits: int = MAX_BITS) -> Marginals | None:
    """Exact marginals by the frontier programme, or None when too large."""
    plans = []
    for swapped in (False, True) if model.one_missing else (False,):
        p = _plan(_units(model, swapped, dead=True), max_bits)
        if p is not None:
            plans.append((p, swapped))
    if not plans:
        return None
    plan_d, _swapped = min(plans, key=lambda x: x[0].work)
    log_count, _ = _dp(plan_d, count=True)
    live = _Plan(plan_d.order, [[o for o in opts if o[2] != -2] for opts in plan_d.options],
                 plan_d.frontiers, plan_d.work)
    log_z, marg = _dp(live)
    pair: dict[tuple[int, int], float] = {}
    for k, v in marg.items():
        for r, m in model.options[k].pairs:
            key = (r, m)
            pair[key] = float(np.logaddexp(pair.get(key, -math.inf), v))
    out = Marginals("dynamic programming", True, (log_z, log_z), log_count=log_count)
    used: dict[int, list[float]] = {r: [] for r in range(len(model.remains))}
    for (r, m), v in pair.items():
        pv = math.exp(v)
        used[r].append(pv)
        out.pair[(r, m)] = (pv, pv)
    for r, vals in used.items():
        free = max(0.0, 1.0 - math.fsum(vals))
        out.pair[(r, -1)] = (free, free)
    return out


# -- certified bounds --------------------------------------------------------------------------------
def _lae(vals: Sequence[float]) -> float:
    """ln sum exp (small lists: plain Python is faster than scipy here)."""
    if not len(vals):
        return -math.inf
    mx = max(vals)
    if mx in (math.inf, -math.inf):
        return mx
    return mx + math.log(math.fsum(math.exp(v - mx) for v in vals))


def glr_lower_bounds(model: Model, chosen: Sequence[int]) -> dict[tuple[int, int], float]:
    """A lower bound on ln GLR of every pairing (V, M) of the best assignment
    (options ``chosen``), from the component's local structure alone.

    With M(.) the best weight of a subproblem, the best with V = M is the
    best overall, w_o M(G without o's remains and family g), and the best
    with V != M is at most M(G without V) times max(1, the best other option
    using V). M(G without V) <= M(G without g and o's remains) times max(1,
    best option of g not using V) times, for each other family h touching
    o's other remains, max(1, its best option touching them): dropping those
    options maps any assignment onto one of the smaller problem. Hence
    ln GLR >= w_o - those maxima (each at least 0)."""
    opts = model.options
    out: dict[tuple[int, int], float] = {}
    for k in chosen:
        o = opts[k]
        for v, m in o.pairs:
            g_max = max([0.0] + [opts[k2].score for k2 in model.by_unit[o.unit]
                                 if all(rr != v for rr, _ in opts[k2].pairs)])
            others = {r for r, _ in o.pairs if r != v}
            h_max: dict[int, float] = {}
            for r in others:
                for k2 in model.by_remains[r]:
                    o2 = opts[k2]
                    if o2.unit == o.unit or any(rr == v for rr, _ in o2.pairs):
                        continue
                    h_max[o2.unit] = max(h_max.get(o2.unit, 0.0), o2.score)
            alt = max([0.0] + [opts[k2].score for k2 in model.by_remains[v] if (v, m) not in opts[k2].pairs])
            out[(v, m)] = o.score - g_max - math.fsum(h_max.values()) - alt
    return out


def certified_marginals(model: Model, top_scores: Sequence[float] = ()) -> Marginals:
    """Bounds on every marginal (see the module text) and on ln Z: at least the
    sum of the assignments found (``top_scores``), at most the product over
    families of the sum of their options' weights (no remains shared)."""
    opts = model.options
    # per unit: ln sum of its options not using V, for each V it can use (empty option included)
    s_not: dict[tuple[int, int], float] = {}
    for u, ks in enumerate(model.by_unit):
        rem = sorted({r for k in ks for r, _ in opts[k].pairs})
        r_of = [opts[k].pairs[0][0] for k in ks]
        if all(len(opts[k].pairs) == 1 for k in ks) and len(set(r_of)) == len(ks):
            # one option per remains: "all but one" from prefix and suffix sums, exactly
            arr = np.array([opts[k].score for k in ks])
            pre = np.logaddexp.accumulate(np.concatenate([[0.0], arr]))
            suf = np.logaddexp.accumulate(np.concatenate([[-np.inf], arr[::-1]]))[::-1]
            for j, r in enumerate(r_of):
                s_not[(u, r)] = float(np.logaddexp(pre[j], suf[j + 1]))
        else:
            for r in rem:
                s_not[(u, r)] = _lae([0.0] + [opts[k].score for k in ks if all(rr != r for rr, _ in opts[k].pairs)])
    # depth 1: y_o >= 1 / (S_g without V x prod over families touching o's other remains)
    log_l: dict[tuple[int, int], float] = {}
    for v, ks in enumerate(model.by_remains):
        for k in ks:
            o = opts[k]
            ll = -s_not[(o.unit, v)]
            others = {r for r, _ in o.pairs if r != v}
            if others:
                touch: dict[int, dict[int, float]] = {}
                for r in others:
                    for k2 in model.by_remains[r]:
                        o2 = opts[k2]
                        if o2.unit == o.unit or any(rr == v for rr, _ in o2.pairs):
                            continue
                        touch.setdefault(o2.unit, {})[k2] = o2.score
                for ws in touch.values():
                    ll -= float(np.logaddexp(0.0, _lae(list(ws.values()))))
            log_l[(k, v)] = ll
    # (depth-1 bounds hold in every subproblem too: fewer options, larger bound;
    # the deeper ones below do not, so they are built from depth 1 only)
    log_l1 = dict(log_l)
    # depth 3, for a family with one missing person: y_o = 1 / (1 + sum over the
    # other remains V' of w(V', M) R(V')), R(V') = P(V' unused without V and g)
    # <= 1 / (1 + sum of V''s single-pair options elsewhere, w x depth-1 bound):
    # a competitor with a strong match elsewhere hardly competes.
    for u, ks in enumerate(model.by_unit):
        if not ks or any(len(opts[k].pairs) != 1 for k in ks):
            continue
        if len({opts[k].pairs[0][1] for k in ks}) != 1 or len({opts[k].pairs[0][0] for k in ks}) != len(ks):
            continue
        terms = []
        for k in ks:
            v2 = opts[k].pairs[0][0]
            elsewhere = [
                opts[k2].score + log_l1[(k2, v2)]
                for k2 in model.by_remains[v2]
                if opts[k2].unit != u and len(opts[k2].pairs) == 1
            ]
            log_u = -float(np.logaddexp(0.0, _lae(elsewhere)))
            terms.append(opts[k].score + log_u)
        arr = np.array(terms)
        pre = np.logaddexp.accumulate(np.concatenate([[0.0], arr]))
        suf = np.logaddexp.accumulate(np.concatenate([[-np.inf], arr[::-1]]))[::-1]
        for j, k in enumerate(ks):
            v = opts[k].pairs[0][0]
            deep = -float(np.logaddexp(pre[j], suf[j + 1]))
            if deep > log_l[(k, v)]:
                log_l[(k, v)] = deep
    pair: dict[tuple[int, int], tuple[float, float]] = {}
    for v, ks in enumerate(model.by_remains):
        if not ks:
            pair[(v, -1)] = (1.0, 1.0)
            continue
        lower: dict[int, list[float]] = {}
        upper: dict[int, list[float]] = {}
        for k in ks:
            o = opts[k]
            m = next(mm for rr, mm in o.pairs if rr == v)
            lower.setdefault(m, []).append(o.score + log_l[(k, v)])
            upper.setdefault(m, []).append(o.score)
        a_l = {m: _lae(x) for m, x in lower.items()}
        a_h = {m: _lae(x) for m, x in upper.items()}
        tot_l, tot_h = _lae(list(a_l.values())), _lae(list(a_h.values()))
        for m in a_l:
            b_l = _lae([a_l[x] for x in a_l if x != m])
            b_h = _lae([a_h[x] for x in a_h if x != m])
            lo = math.exp(a_l[m] - float(np.logaddexp(0.0, np.logaddexp(a_l[m], b_h))))
            hi = math.exp(a_h[m] - float(np.logaddexp(0.0, np.logaddexp(a_h[m], b_l))))
            pair[(v, m)] = (lo, hi)
        pair[(v, -1)] = (math.exp(-float(np.logaddexp(0.0, tot_h))), math.exp(-float(np.logaddexp(0.0, tot_l))))
    z_hi = math.fsum(_lae([0.0] + [opts[k].score for k in ks]) for ks in model.by_unit)
    if model.one_missing:
        z_hi = min(z_hi, math.fsum(_lae([0.0] + [opts[k].score for k in ks]) for ks in model.by_remains))
    z_lo = _lae(list(top_scores)) if top_scores else -math.inf
    return Marginals("certified bounds", False, (z_lo, z_hi), pair)

