"""Lineages in a pedigree and the Y single-step model on a lineage tree.

The Y lineage of a male is the set of males joined to him by father–son
links, the mt lineage of a person the set joined by mother–child links
(:func:`y_lineage`, :func:`mt_lineage`). At one Y locus, the untyped males of
a lineage tree are summed out exactly by peeling with the single-step kernel
(1 − μ stays, μ/2 one repeat up, μ/2 one repeat down): :func:`peel`,
:func:`y_locus_likelihood`. :mod:`opendvi.core.lineage_lr` builds the LRs on
these; conventions: ``shared/design/lineage.md``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import permutations, product

import numpy as np

from opendvi.core.errors import LikelihoodError
from opendvi.core.lineage import y_allele_class as _y_allele_class
from opendvi.core.pedigree import Pedigree

#: :func:`opendvi.core.lineage.y_allele_class`, memoised (a few hundred distinct tokens)
y_allele_class = lru_cache(maxsize=1 << 16)(_y_allele_class)


# ---------------------------------------------------------------------------
# Lineages in a pedigree
# ---------------------------------------------------------------------------


def y_lineage(pedigree: Pedigree, pid: str) -> dict[str, int]:
    """Males joined to ``pid`` by father–son links, with their number of links
    from ``pid`` (empty for a female)."""
    i = pedigree.index(pid)
    if pedigree.sex[i] != "M":
        return {}
    adj = y_adjacency(pedigree)
    return {pedigree.ids[j]: d for j, d in _bfs(adj, i).items()}


def mt_lineage(pedigree: Pedigree, pid: str) -> dict[str, int]:
    """People joined to ``pid`` by mother–child links, with their number of links."""
    adj: dict[int, list[int]] = {i: [] for i in range(len(pedigree))}
    for i in range(len(pedigree)):
        m = int(pedigree.mother[i])
        if m >= 0:
            adj[i].append(m)
            adj[m].append(i)
    return {pedigree.ids[j]: d for j, d in _bfs(adj, pedigree.index(pid)).items()}


def y_adjacency(pedigree: Pedigree) -> dict[int, list[int]]:
    adj: dict[int, list[int]] = {i: [] for i in range(len(pedigree))}
    for i in range(len(pedigree)):
        f = int(pedigree.father[i])
        if f >= 0 and pedigree.sex[i] == "M":
            adj[i].append(f)
            adj[f].append(i)
    return adj


def _bfs(adj: Mapping[int, Sequence[int]], start: int) -> dict[int, int]:
    dist = {start: 0}
    queue = deque([start])
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


def nearest(distances: Mapping[str, int], candidates: Sequence[str]) -> str | None:
    """The candidate with the fewest links (ties: the smallest id)."""
    pool = [c for c in candidates if c in distances]
    if not pool:
        return None
    return min(pool, key=lambda c: (distances[c], c))


# ---------------------------------------------------------------------------
# Y: single-step kernel and peeling on the lineage tree
# ---------------------------------------------------------------------------


def single_step_kstep(d: int, k: int, rate: float) -> float:
    """P(net change d after k father–son links), single-step symmetric kernel.

    >>> round(single_step_kstep(0, 2, 0.1), 12)  # (1 - μ)² + μ²/2
    0.815
    """
    if k < 0:
        raise LikelihoodError(f"number of links must be >= 0, found {k}")
    d = abs(d)
    if d > k:
        return 0.0
    vec = np.zeros(2 * k + 1)
    vec[k] = 1.0
    for _ in range(k):
        vec = _kernel_apply(vec, rate)
    return float(vec[k + d])


_kstep_cached = lru_cache(maxsize=65536)(single_step_kstep)


def pair_probability(a: tuple[str, ...], b: tuple[str, ...], k: int, rate: float) -> float:
    """P(value ``b`` | value ``a`` k father–son links away) at one locus: the
    k-step walk per copy, summed over the distinct assignments of ``b``'s
    copies to ``a``'s; 0 across microvariant classes or copy numbers."""
    if len(a) != len(b):
        return 0.0
    total = 0.0
    for perm in set(permutations(b)):
        p = 1.0
        for x, y in zip(a, perm, strict=True):
            cx, ix = y_allele_class(x)
            cy, iy = y_allele_class(y)
            if cx != cy:
                p = 0.0
                break
            if cx != "null":
                p *= _kstep_cached(abs(ix - iy), k, rate)
        total += p
    return total


def _kernel_apply(vec: np.ndarray, rate: float) -> np.ndarray:
    out = (1.0 - rate) * vec
    out[1:] += 0.5 * rate * vec[:-1]
    out[:-1] += 0.5 * rate * vec[1:]
    return out


def preorder(children: Mapping[int, list[int]], root: int) -> list[int]:
    """The nodes below ``root``, parents before children (iterative: pedigrees can be deep)."""
    order: list[int] = []
    stack = [root]
    while stack:
        u = stack.pop()
        order.append(u)
        stack.extend(children.get(u, []))
    return order


def peel(
    children: Mapping[int, list[int]], order: Sequence[int], root: int, vals: Mapping[int, int],
    lo: int, width: int, rate: float,
) -> np.ndarray:
    """One copy peeled up the tree to ``root``: over the grid ``lo .. lo + width - 1`` of
    root's value, P(the typed values ``vals`` below root | root's value), times root's
    own indicator when root is typed. ``order`` is :func:`preorder` of the tree."""
    msg: dict[int, np.ndarray] = {}
    for u in reversed(order):
        if u in vals:
            vec = np.zeros(width)
            vec[vals[u] - lo] = 1.0
        else:
            vec = np.ones(width)
        for c in children.get(u, []):
            vec = vec * msg.pop(c)
        if u == root:
            return vec
        msg[u] = _kernel_apply(vec, rate)
    raise AssertionError("root not reached")  # pragma: no cover


def prune_tree(children: Mapping[int, list[int]], root: int, typed: set[int]) -> dict[int, list[int]]:
    """Drop subtrees without a typed node (an untyped subtree sums to 1)."""
    keep: dict[int, list[int]] = {}
    order = preorder(children, root)
    useful: dict[int, bool] = {}
    for u in reversed(order):
        kids = [c for c in children.get(u, []) if useful[c]]
        keep[u] = kids
        useful[u] = bool(kids) or u in typed
    return {u: k for u, k in keep.items() if useful.get(u) or u == root}


def _copy_tree_prob(children: Mapping[int, list[int]], root: int, obs: Mapping[int, str], rate: float) -> float:
    """P(values of the typed non-root nodes | root value) for one copy of a
    locus, summing every untyped node exactly (the tree is already pruned)."""
    classes = {y_allele_class(v)[0] for v in obs.values()}
    if len(classes) > 1:
        return 0.0
    cls = classes.pop()
    if cls == "null":
        return 1.0
    vals = {u: y_allele_class(v)[1] for u, v in obs.items()}
    edges = sum(len(k) for k in children.values())
    if edges == 0:
        return 1.0
    lo = min(vals.values()) - edges
    width = max(vals.values()) + edges - lo + 1
    return float(peel(children, preorder(children, root), root, vals, lo, width, rate)[vals[root] - lo])


def rooted_tree(adj: Mapping[int, Sequence[int]], root: int, nodes: set[int]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {root: []}
    seen = {root}
    queue = deque([root])
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if v in nodes and v not in seen:
                seen.add(v)
                children.setdefault(u, []).append(v)
                children[v] = []
                queue.append(v)
    return children


def y_locus_likelihood(
    children: Mapping[int, list[int]], root: int, obs: Mapping[int, tuple[str, ...]], rate: float
) -> float:
    """P(typed non-root values | root value) at one locus, on a rooted tree.

    A multi-copy locus: each copy mutates independently; an observed value is
    the sorted copies, so every distinct assignment of a typed person's values
    to the root's copies is summed.
    """
    if root not in obs:
        raise LikelihoodError("the root of a lineage locus must be typed")
    copies = len(obs[root])
    if any(len(v) != copies for v in obs.values()):
        return 0.0  # a change in the number of copies: not a single-step event
    tree = prune_tree(children, root, set(obs))
    others = [u for u in obs if u != root]
    options = [sorted(set(permutations(obs[u]))) if copies > 1 else [obs[u]] for u in others]
    total = 0.0
    for combo in product(*options):
        p = 1.0
        for c in range(copies):
            assign = {root: obs[root][c], **{u: vals[c] for u, vals in zip(others, combo, strict=True)}}
            p *= _copy_tree_prob(tree, root, assign, rate)
            if p == 0.0:
                break
        total += p
    return total
