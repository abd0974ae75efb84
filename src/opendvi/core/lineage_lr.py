"""Lineage likelihoods and the lineage LR of a remains as a missing person.

Conventions: ``shared/design/lineage.md``; formulas and assumptions:
``docs/lineage.md``.

Y: the Y lineage of a male missing person M is the set of males joined to M
by father–son links. Per locus, the reference of the lineage nearest to M and
typed there (fewest links; ties: the smallest id) is taken as given; every
other male is placed on the tree around it and the untyped ones are summed out
exactly by peeling with the single-step kernel (1 − μ stays, μ/2 one repeat up,
μ/2 one repeat down). The kernel is symmetric, so a link walked from son to
father has the same kernel as from father to son: this is the founder
approximation (the founder's haplotype is never summed over the haplotype
space; its frequency cancels). Then

    LR_Y = Π_loci P(V, refs | given) / P(refs | given)  /  f(h_V),

f over the loci compared (typed in V and in a reference of the lineage).

mtDNA: the mt lineage of M is the set joined by mother–child links. The
reference nearest to M (k links) is compared with V over their common typed
range (L positions): P = (1 − μ)^k with no difference, (1 − (1 − μ)^k)/L with
one, 0 with two or more (a heteroplasmy matches either of its bases).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations, product

import numpy as np

from opendvi.core.errors import LikelihoodError
from opendvi.core.lineage import (
    FrequencyEstimate,
    MtHaplotype,
    MtSystem,
    YHaplotype,
    YSystem,
    mt_differences,
    range_intersection,
    range_length,
    range_text,
    variant_text,
)
from opendvi.core.lineage import y_allele_class as _y_allele_class
from opendvi.core.pedigree import Pedigree


@dataclass(frozen=True)
class LineageLR:
    """The lineage LR of one remains as one missing person in one system.

    ``log_lr`` is natural log (``-inf`` for an exclusion); ``reference`` and
    ``links`` name the nearest typed reference of the lineage; ``compared``
    lists the loci (Y) or the range (mt) compared; ``mismatches`` counts the
    loci (Y) or sites (mt) at which V differs from that reference;
    ``differences`` spells them out. ``frequency`` is f(h_V) with its
    provenance. ``note`` says why the LR is 1 when nothing was compared.
    """

    system: str
    log_lr: float
    reference: str | None = None
    links: int | None = None
    compared: tuple[str, ...] = ()
    mismatches: int = 0
    differences: tuple[str, ...] = ()
    log_numerator: float = 0.0
    frequency: FrequencyEstimate | None = None
    note: str = ""

    @property
    def lr(self) -> float:
        # the float-range cut-off of core/rules.py safe_exp (decision 0004)
        try:
            return math.exp(self.log_lr)
        except OverflowError:
            return math.inf

    @property
    def informative(self) -> bool:
        return self.frequency is not None


# ---------------------------------------------------------------------------
# Lineages in a pedigree
# ---------------------------------------------------------------------------


def y_lineage(pedigree: Pedigree, pid: str) -> dict[str, int]:
    """Males joined to ``pid`` by father–son links, with their number of links
    from ``pid`` (empty for a female)."""
    i = pedigree.index(pid)
    if pedigree.sex[i] != "M":
        return {}
    adj = _y_adjacency(pedigree)
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


def _y_adjacency(pedigree: Pedigree) -> dict[int, list[int]]:
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


def _preorder(children: Mapping[int, list[int]], root: int) -> list[int]:
    """The nodes below ``root``, parents before children (iterative: pedigrees can be deep)."""
    order: list[int] = []
    stack = [root]
    while stack:
        u = stack.pop()
        order.append(u)
        stack.extend(children.get(u, []))
    return order


def _peel(
    children: Mapping[int, list[int]], order: Sequence[int], root: int, vals: Mapping[int, int],
    lo: int, width: int, rate: float,
) -> np.ndarray:
    """One copy peeled up the tree to ``root``: over the grid ``lo .. lo + width - 1`` of
    root's value, P(the typed values ``vals`` below root | root's value), times root's
    own indicator when root is typed. ``order`` is :func:`_preorder` of the tree."""
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


def _prune(children: Mapping[int, list[int]], root: int, typed: set[int]) -> dict[int, list[int]]:
    """Drop subtrees without a typed node (an untyped subtree sums to 1)."""
    keep: dict[int, list[int]] = {}
    order = _preorder(children, root)
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
    return float(_peel(children, _preorder(children, root), root, vals, lo, width, rate)[vals[root] - lo])


def _rooted(adj: Mapping[int, Sequence[int]], root: int, nodes: set[int]) -> dict[int, list[int]]:
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
    tree = _prune(children, root, set(obs))
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


#: :func:`opendvi.core.lineage.y_allele_class`, memoised (a few hundred distinct tokens)
y_allele_class = lru_cache(maxsize=1 << 16)(_y_allele_class)

#: ``YLineageTable._one_copy_factors``: (tree shape, relative values, rate) -> (lo, P over the grid, den)
_SHAPE_CACHE: dict[tuple[str, float], tuple[int, np.ndarray, float]] = {}


class YLineageTable:
    """The Y side of one missing person, built once and applied to any number
    of remains: per locus, ln P(v, refs | given) − ln P(refs | given) as a
    function of the remains' value v (memoised), with the rooted lineage tree
    and the denominator computed once. This is the per-family table of
    screening: LR_Y(V) = exp(Σ_loci table[l][v_l]) / f(h_V).

    Build with :func:`y_lineage_table`; ``note`` is set (and every LR is 1)
    when the lineage has no typed reference.
    """

    def __init__(self, pedigree: Pedigree, missing: str, references: Mapping[str, YHaplotype], system: YSystem):
        self.system = system
        self.missing = missing
        self.note = ""
        self.dist = y_lineage(pedigree, missing)
        self.refs = {pid: h for pid, h in references.items() if pid in self.dist and pid != missing and h}
        if not self.dist:
            self.note = f"{missing} is not male: no Y lineage"
        elif not self.refs:
            self.note = "no typed reference on the paternal line"
        self.reference = nearest(self.dist, sorted(self.refs))
        db_loci = set(system.database.loci)
        self.loci = tuple(
            m.name for m in system.markers if m.name in db_loci and any(m.name in h for h in self.refs.values())
        )
        self._pedigree = pedigree
        self._adj = _y_adjacency(pedigree) if self.refs else {}
        self._index = {pid: pedigree.index(pid) for pid in self.dist}
        self._nodes = set(self._index.values())
        self._locus: dict[str, tuple[str, dict[int, list[int]], dict[int, tuple[str, ...]], float, float]] = {}
        self._memo: dict[tuple[str, tuple[str, ...]], float] = {}
        self._trees: dict[tuple[str, ...], dict[int, list[int]]] = {}

    def _prepare(self, name: str) -> tuple[str, dict[int, list[int]], dict[int, tuple[str, ...]], float, float]:
        got = self._locus.get(name)
        if got is not None:
            return got
        typed = sorted(pid for pid, h in self.refs.items() if name in h)
        root_id = nearest(self.dist, typed)
        assert root_id is not None
        rate = self.system.by_name[name].rate
        root = self._index[root_id]
        obs = {self._index[pid]: self.refs[pid][name] for pid in typed}
        children = _rooted(self._adj, root, self._nodes) if len(typed) > 1 else {}
        den = y_locus_likelihood(children, root, obs, rate) if len(typed) > 1 else 1.0
        if den == 0.0:
            raise LikelihoodError(
                f"Y locus {name}: the paternal-line references ({', '.join(typed)}) are impossible together "
                "under the single-step model; check their haplotypes"
            )
        got = (root_id, children, obs, rate, den)
        self._locus[name] = got
        return got

    def root(self, name: str) -> str:
        """The reference taken as given at locus ``name`` (nearest typed there)."""
        return self._prepare(name)[0]

    def log_factor(self, name: str, value: tuple[str, ...]) -> float:
        """ln P(v, refs | given) − ln P(refs | given) at one locus."""
        key = (name, value)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        root_id, children, obs, rate, den = self._prepare(name)
        if len(obs) == 1:  # one reference: the k-step walk directly (same value as the peeling)
            num = pair_probability(self.refs[root_id][name], value, self.dist[root_id], rate)
        else:
            num = y_locus_likelihood(children, self._index[root_id], {**obs, self._index[self.missing]: value}, rate)
        out = (math.log(num) if num > 0.0 else -math.inf) - math.log(den)
        self._memo[key] = out
        return out

    def _one_copy_factors(self, name: str, values: Sequence[tuple[str, ...]]) -> list[float] | None:
        """:meth:`log_factors` at a one-copy locus with several references of
        one integer class, through a cache shared by every missing person:
        the single-step kernel is the same at every repeat number, so the
        result depends only on the shape of the pruned lineage tree (rooted
        at the missing person), which nodes are typed, their values relative
        to the given reference, and the rate. P(refs | given) is the sum of
        P(v, refs | given) over v (the missing person summed out). None where
        this does not apply."""
        typed = sorted(pid for pid, h in self.refs.items() if name in h)
        if len(typed) < 2:
            return None
        obs_v = [self.refs[pid][name] for pid in typed]
        if any(len(v) != 1 for v in obs_v):
            return None
        classes = [y_allele_class(v[0]) for v in obs_v]
        if len({c for c, _ in classes}) != 1 or classes[0][0] == "null":
            return None
        cls = classes[0][0]
        root_id = nearest(self.dist, typed)
        assert root_id is not None
        base = classes[typed.index(root_id)][1]
        rel = {self._index[pid]: i - base for pid, (_, i) in zip(typed, classes, strict=True)}
        root = self._index[root_id]
        me = self._index[self.missing]
        tkey = tuple(typed)
        tree = self._trees.get(tkey)
        if tree is None:  # the same for every locus typed in the same references
            tree = self._trees[tkey] = _prune(_rooted(self._adj, me, self._nodes), me, set(rel))
        rate = self.system.by_name[name].rate

        def ser(u: int) -> str:
            label = "R" if u == root else (f"T{rel[u]}" if u in rel else "U")
            kids = sorted(ser(c) for c in tree.get(u, []))
            return label + ("(" + ",".join(kids) + ")" if kids else "")

        key = (ser(me), rate)
        got = _SHAPE_CACHE.get(key)
        if got is None:
            edges = sum(len(k) for k in tree.values())
            lo = min(rel.values()) - edges
            width = max(rel.values()) + edges - lo + 1
            vec = _peel(tree, _preorder(tree, me), me, rel, lo, width, rate)
            den = math.fsum(vec.tolist())
            if len(_SHAPE_CACHE) > 100_000:
                _SHAPE_CACHE.clear()
            got = _SHAPE_CACHE[key] = (lo, vec, den)
        lo, vec, den = got
        if den == 0.0:
            raise LikelihoodError(
                f"Y locus {name}: the paternal-line references ({', '.join(typed)}) are impossible together "
                "under the single-step model; check their haplotypes"
            )
        log_den = math.log(den)
        out = []
        for v in values:
            num = 0.0
            if len(v) == 1:
                c, i = y_allele_class(v[0])
                j = i - base - lo
                if c == cls and 0 <= j < len(vec):
                    num = float(vec[j])
            out.append((math.log(num) if num > 0.0 else -math.inf) - log_den)
        return out

    def log_factors(self, name: str, values: Sequence[tuple[str, ...]]) -> list[float]:
        """:meth:`log_factor` of many values of the remains at one locus.

        Several references: per assignment of the references' copies and per
        copy, one pass of peeling rooted at the missing person gives
        P(v, refs | given) for every v at once (the kernel is symmetric, so
        the product over the tree's links does not depend on where it is
        rooted); the sum over the assignments of v's copies is then the one
        of :func:`y_locus_likelihood`. One reference: the k-step walk."""
        fast = self._one_copy_factors(name, values)
        if fast is not None:
            return fast
        root_id, _children, obs, rate, den = self._prepare(name)
        if len(obs) == 1:
            return [self.log_factor(name, v) for v in values]
        copies = len(obs[self._index[root_id]])
        me = self._index[self.missing]
        root = self._index[root_id]
        tree = _prune(_rooted(self._adj, me, self._nodes), me, set(obs))
        edges = sum(len(k) for k in tree.values())
        order = _preorder(tree, me)
        others = [u for u in obs if u != root]
        options = [sorted(set(permutations(obs[u]))) if copies > 1 else [obs[u]] for u in others]
        cls_of = {t: y_allele_class(t) for v in (*obs.values(), *values) for t in v}
        ints_all = [i for c, i in cls_of.values() if c != "null"]
        lo = min(ints_all, default=0) - edges
        width = max(ints_all, default=0) + edges - lo + 1
        # per assignment of the references' copies: per copy, (class, P(v_copy, refs copy | given) over the grid)
        terms: list[list[tuple[str, np.ndarray | None]]] = []
        for combo in product(*options):
            per_copy: list[tuple[str, np.ndarray | None]] = []
            for c in range(copies):
                assign = {root: obs[root][c], **{u: vals[c] for u, vals in zip(others, combo, strict=True)}}
                classes = {cls_of[t][0] for t in assign.values()}
                if len(classes) > 1:
                    per_copy.append(("", None))  # a change of class: probability 0
                    continue
                cls = classes.pop()
                if cls == "null":
                    per_copy.append(("null", None))
                    continue
                ints = {u: cls_of[t][1] for u, t in assign.items()}
                per_copy.append((cls, _peel(tree, order, me, ints, lo, width, rate)))
            terms.append(per_copy)
        out = []
        log_den = math.log(den)
        for v in values:
            key = (name, v)
            hit = self._memo.get(key)
            if hit is None:
                num = 0.0
                if len(v) == copies:
                    for per_copy in terms:
                        for perm in sorted(set(permutations(v))) if copies > 1 else [v]:
                            p = 1.0
                            for (cls, grid), t in zip(per_copy, perm, strict=True):
                                tc, ti = cls_of[t]
                                if cls == "" or tc != cls:
                                    p = 0.0
                                elif grid is not None:
                                    p *= float(grid[ti - lo])
                                if p == 0.0:
                                    break
                            num += p
                hit = (math.log(num) if num > 0.0 else -math.inf) - log_den
                self._memo[key] = hit
            out.append(hit)
        return out

    def lr(self, remains: YHaplotype | None) -> LineageLR:
        """LR_Y of a remains with haplotype ``remains`` as the missing person."""
        if not remains:
            return LineageLR("Y", 0.0, note="remains not typed for Y")
        if self.note:
            return LineageLR("Y", 0.0, note=self.note)
        loci = [name for name in self.loci if name in remains]
        if not loci:
            return LineageLR("Y", 0.0, note="no Y locus typed in both the remains and a paternal-line reference")
        log_num = 0.0
        diffs: list[str] = []
        for name in loci:
            log_num += self.log_factor(name, remains[name])
            root_id = self.root(name)
            if remains[name] != self.refs[root_id][name]:
                diffs.append(f"{name}: {','.join(remains[name])} vs {','.join(self.refs[root_id][name])} ({root_id})")
        freq = self.system.database.frequency(remains, loci)
        log_lr = -math.inf if log_num == -math.inf else log_num - math.log(freq.frequency)
        assert self.reference is not None
        return LineageLR(
            "Y",
            log_lr,
            reference=self.reference,
            links=self.dist[self.reference],
            compared=tuple(loci),
            mismatches=len(diffs),
            differences=tuple(diffs),
            log_numerator=log_num,
            frequency=freq,
        )


def _reachable(a: tuple[str, ...], b: tuple[str, ...], k: int) -> bool:
    """Whether ``b`` can be ``a`` after ``k`` single-step links (some
    assignment of the copies: same class, at most ``k`` repeats apart)."""
    if len(a) != len(b):
        return False
    for perm in set(permutations(b)):
        ok = True
        for x, y in zip(a, perm, strict=True):
            cx, ix = y_allele_class(x)
            cy, iy = y_allele_class(y)
            if cx != cy or (cx != "null" and abs(ix - iy) > k):
                ok = False
                break
        if ok:
            return True
    return False


def y_lineage_table(
    pedigree: Pedigree, missing: str, references: Mapping[str, YHaplotype], system: YSystem
) -> YLineageTable:
    """The Y table of one missing person (see :class:`YLineageTable`)."""
    return YLineageTable(pedigree, missing, references, system)


def y_lineage_lr(
    pedigree: Pedigree,
    missing: str,
    references: Mapping[str, YHaplotype],
    remains: YHaplotype | None,
    system: YSystem,
) -> LineageLR:
    """LR_Y of a remains with haplotype ``remains`` as the missing person
    ``missing`` of ``pedigree``; ``references`` are the typed members' Y
    haplotypes (members outside M's Y lineage are ignored)."""
    if not remains:
        return LineageLR("Y", 0.0, note="remains not typed for Y")
    return YLineageTable(pedigree, missing, references, system).lr(remains)


# ---------------------------------------------------------------------------
# mtDNA
# ---------------------------------------------------------------------------


def mt_transmission(differences: int, k: int, rate: float, typed_positions: int) -> float:
    """P(the observed differences | k mother–child links), ``lineage.md``."""
    if differences == 0:
        return (1.0 - rate) ** k
    if differences == 1:
        return -math.expm1(k * math.log1p(-rate)) / typed_positions if typed_positions > 0 else 0.0
    return 0.0


def mt_lineage_lr(
    pedigree: Pedigree,
    missing: str,
    references: Mapping[str, MtHaplotype],
    remains: MtHaplotype | None,
    system: MtSystem,
) -> LineageLR:
    """LR_mt of a remains as ``missing``: the nearest reference of the maternal
    line (fewest mother–child links, ties: smallest id), over the typed range
    common to both."""
    if remains is None:
        return LineageLR("mt", 0.0, note="remains not typed for mtDNA")
    dist = mt_lineage(pedigree, missing)
    refs = {pid: h for pid, h in references.items() if pid in dist and pid != missing and h is not None}
    ref0 = nearest(dist, sorted(refs))
    if ref0 is None:
        return LineageLR("mt", 0.0, note="no typed reference on the maternal line")
    ref = refs[ref0]
    common = range_intersection(remains.range, ref.range)
    length = range_length(common)
    if length == 0:
        return LineageLR("mt", 0.0, reference=ref0, links=dist[ref0], note="no typed range in common")
    sites = mt_differences(remains, ref, common)
    k = dist[ref0]
    p = mt_transmission(len(sites), k, system.rate, length)
    freq = system.database.frequency(remains, common)
    log_num = math.log(p) if p > 0.0 else -math.inf
    log_lr = -math.inf if p == 0.0 else log_num - math.log(freq.frequency)
    diffs = tuple(
        f"{variant_text(s, _spell(remains, s))} vs {variant_text(s, _spell(ref, s))} ({ref0})" for s in sites
    )
    return LineageLR(
        "mt",
        log_lr,
        reference=ref0,
        links=k,
        compared=(range_text(common),),
        mismatches=len(sites),
        differences=diffs,
        log_numerator=log_num,
        frequency=freq,
    )


def _spell(h: MtHaplotype, site: tuple[int, int]) -> str:
    b = h.sites.get(site)
    if b is not None:
        return b
    return "-" if site[1] else "".join(sorted(h.base_at(site)))


def combined_log_lr(by_system: Mapping[str, float]) -> float:
    """ln of the combined LR: the sum of the systems' ln LRs (systems
    independent given the pedigree); ``-inf`` if any system excludes."""
    vals = list(by_system.values())
    if any(v == -math.inf for v in vals):
        return -math.inf
    return math.fsum(vals)
