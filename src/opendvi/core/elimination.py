"""Variable elimination on the factor tables of :mod:`opendvi.core.factor_graph`.

A factor is ``(variables, table)``: a table with one axis per variable (and,
in a batch, a leading axis with one entry per marker). Variables are summed
out one at a time in a greedy min-size order, which is exact for any graph,
loops included; each new table is divided by its maximum and the log of that
maximum kept, so no table underflows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from opendvi.core.errors import LikelihoodError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
#: ``(variables, table)``: a table with one axis per variable.
Factor = tuple[tuple[int, ...], FloatArray]

#: ``np.einsum`` in its sublist form (the stubs do not describe that form).
_einsum = cast(Any, np.einsum)


class FactorTables(Protocol):
    """What :func:`solve_batch` reads of a factor graph."""

    domains: list[IntArray]
    factors: list[Factor]


def solve_batch(problems: Sequence[FactorTables]) -> list[float]:
    """ln P(data) of several markers whose factor graphs share one shape.

    Tables are padded with zeros to the largest domain of each variable
    (a padded state has probability 0, so the sums are unchanged) and
    stacked along a leading marker axis.
    """
    first = problems[0]
    n_vars = len(first.domains)
    n_markers = len(problems)
    sizes = [max(len(p.domains[v]) for p in problems) for v in range(n_vars)]
    factors: list[Factor] = []
    for fi, (vars_, _) in enumerate(first.factors):
        arr = np.zeros((n_markers, *(sizes[v] for v in vars_)))
        for k, prob in enumerate(problems):
            tab = prob.factors[fi][1]
            region: tuple[Any, ...] = (k, *(slice(0, d) for d in tab.shape))
            arr[region] = tab
        factors.append((vars_, arr))
    order = elimination_order([f[0] for f in factors], sizes, set())
    factors, log_scale, dead = eliminate_vars(factors, order, batch=n_markers)
    if dead.all():  # stopped early: the remaining factors need not be multiplied
        return [-math.inf] * n_markers
    final = contract(factors, [], batch=True) if factors else np.ones(n_markers)
    out: list[float] = []
    for k in range(n_markers):
        val = float(final[k])
        out.append(-math.inf if dead[k] or val <= 0.0 else float(log_scale[k]) + math.log(val))
    return out


def eliminate_vars(
    factors: list[Factor], order: Sequence[int], *, batch: int = 0
) -> tuple[list[Factor], FloatArray, NDArray[np.bool_]]:
    """Sum out the variables of ``order`` one at a time.

    Each new table is divided by its maximum (per marker with ``batch``, the
    size of the leading marker axis) and the log of that maximum kept, so no
    table underflows. Returns the remaining factors, the log scales and which
    markers became impossible (a table of zeros). When every marker is
    impossible it stops at once: the remaining factors are then meaningless.
    """
    n = max(batch, 1)
    log_scale = np.zeros(n)
    dead = np.zeros(n, dtype=bool)
    for v in order:
        involved = [f for f in factors if v in f[0]]
        if not involved:
            continue
        factors = [f for f in factors if v not in f[0]]
        scope_vars: list[int] = []
        for vars_, _ in involved:
            for u in vars_:
                if u != v and u not in scope_vars:
                    scope_vars.append(u)
        new = contract(involved, scope_vars, batch=batch > 0)
        mx = new.reshape(n, -1).max(axis=1) if new.size else np.zeros(n)
        zero = mx <= 0.0
        dead |= zero
        if dead.all():
            break
        mx = np.where(zero, 1.0, mx)
        log_scale += np.log(mx)
        factors.append((tuple(scope_vars), new / (mx.reshape((n,) + (1,) * (new.ndim - 1)) if batch else mx[0])))
    return factors, log_scale, dead



_ORDER_CACHE: dict[tuple[object, ...], tuple[int, ...]] = {}
_ORDER_CACHE_MAX = 4096



def elimination_order(scopes: Sequence[tuple[int, ...]], sizes: Sequence[int], keep: set[int]) -> tuple[int, ...]:
    """Greedy min-size elimination order (cached by graph shape and size class).

    Any order is exact; a good one keeps the intermediate tables small. The
    order depends on the sizes only through whether a variable is pinned
    (typed, 1-2 states) or free, so markers of one pedigree share it.
    """
    n_vars = len(sizes)
    key = (tuple(scopes), tuple(s > 2 for s in sizes), tuple(sorted(keep)))
    hit = _ORDER_CACHE.get(key)
    if hit is not None:
        return hit
    nbrs: list[set[int]] = [set() for _ in range(n_vars)]
    for sc in scopes:
        for u in sc:
            nbrs[u].update(sc)
    for u in range(n_vars):
        nbrs[u].discard(u)
    remaining = {u for sc in scopes for u in sc} - keep
    order: list[int] = []
    while remaining:
        best_v, best_cost = -1, math.inf
        for v in remaining:
            cost = sizes[v]
            for u in nbrs[v]:
                cost *= sizes[u]
            if cost < best_cost or (cost == best_cost and v < best_v):
                best_v, best_cost = v, cost
        v = best_v
        order.append(v)
        remaining.discard(v)
        for u in nbrs[v]:
            nbrs[u].discard(v)
            nbrs[u].update(w for w in nbrs[v] if w != u)
        nbrs[v] = set()
    result = tuple(order)
    if len(_ORDER_CACHE) >= _ORDER_CACHE_MAX:
        _ORDER_CACHE.clear()
    _ORDER_CACHE[key] = result
    return result


def contract(
    factors: Sequence[Factor],
    out_vars: Sequence[int],
    *,
    batch: bool = False,
) -> FloatArray:
    """Product of ``factors`` summed over every variable not in ``out_vars``.

    With ``batch``, every table has a leading axis (one entry per marker)
    that is kept.
    """
    if not factors:
        return np.ones(())
    labels: dict[int, int] = {-1: 0} if batch else {}
    for vars_, _ in factors:
        for u in vars_:
            labels.setdefault(u, len(labels))
    for u in out_vars:
        labels.setdefault(u, len(labels))
    if len(labels) > 52:
        raise LikelihoodError("pedigree too entangled for exact elimination at this marker")
    lead = [0] if batch else []

    def lab(vs: Sequence[int]) -> list[int]:
        return lead + [labels[u] for u in vs]

    out_labels = lab(out_vars)
    if len(factors) == 1 and not batch:
        vars_, tab = factors[0]
        summed = tuple(k for k, u in enumerate(vars_) if u not in out_vars)
        red = tab.sum(axis=summed) if summed else tab
        kept = [u for u in vars_ if u in out_vars]
        if kept == list(out_vars):
            return np.asarray(red, dtype=float)
    if len(factors) <= 2:
        args: list[object] = []
        for vars_, tab in factors:
            args.append(tab)
            args.append(lab(vars_))
        args.append(out_labels)
        return np.asarray(_einsum(*args), dtype=float)
    # several factors: multiply pairwise (smallest first), summing each
    # variable out as soon as no remaining factor needs it
    pending = sorted(factors, key=lambda f: f[1].size)
    cur_vars: list[int] = list(pending[0][0])
    cur: FloatArray = pending[0][1]
    for k in range(1, len(pending)):
        vars_, tab = pending[k]
        later = {u for f in pending[k + 1 :] for u in f[0]} | set(out_vars)
        union = cur_vars + [u for u in vars_ if u not in cur_vars]
        keep_vars = [u for u in union if u in later]
        cur = _einsum(cur, lab(cur_vars), tab, lab(vars_), lab(keep_vars))
        cur_vars = keep_vars
    return np.asarray(_einsum(cur, lab(cur_vars), out_labels), dtype=float)
