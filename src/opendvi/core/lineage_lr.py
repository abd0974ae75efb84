"""Lineage likelihoods and the lineage LR of a remains as a missing person.

Conventions: ``shared/design/lineage.md``; formulas and assumptions:
``docs/lineage.md``. The lineages in a pedigree and the single-step peeling
are in :mod:`opendvi.core.lineage_tree`.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations, product

import numpy as np

from opendvi.core.errors import LikelihoodError
from opendvi.core.lineage import FrequencyEstimate, MtSystem, YHaplotype, YSystem
from opendvi.core.lineage_mt import (
    MtHaplotype,
    mt_differences,
    range_intersection,
    range_length,
    range_text,
    variant_text,
)
from opendvi.core.lineage_tree import (
    mt_lineage,
    nearest,
    pair_probability,
    peel,
    preorder,
    prune_tree,
    rooted_tree,
    y_adjacency,
    y_allele_class,
    y_lineage,
    y_locus_likelihood,
)
from opendvi.core.pedigree import Pedigree
from opendvi.core.rules import safe_exp

__all__ = [
    "LineageLR",
    "YLineageTable",
    "combined_log_lr",
    "mt_lineage_lr",
    "mt_transmission",
    "y_lineage_lr",
    "y_lineage_table",
]


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
        return safe_exp(self.log_lr)


#: ``YLineageTable._one_copy_factors``: (tree shape, relative values, rate) -> (lo, P over the grid, den)
_SHAPE_CACHE: dict[tuple[str, float], tuple[int, np.ndarray, float]] = {}


def _impossible_references(locus: str, typed: Sequence[str]) -> LikelihoodError:
    return LikelihoodError(
        f"Y locus {locus}: the paternal-line references ({', '.join(typed)}) are impossible together "
        "under the single-step model; check their haplotypes"
    )


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
        self._adj = y_adjacency(pedigree) if self.refs else {}
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
        children = rooted_tree(self._adj, root, self._nodes) if len(typed) > 1 else {}
        den = y_locus_likelihood(children, root, obs, rate) if len(typed) > 1 else 1.0
        if den == 0.0:
            raise _impossible_references(name, typed)
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
            tree = self._trees[tkey] = prune_tree(rooted_tree(self._adj, me, self._nodes), me, set(rel))
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
            vec = peel(tree, preorder(tree, me), me, rel, lo, width, rate)
            den = math.fsum(vec.tolist())
            if len(_SHAPE_CACHE) > 100_000:
                _SHAPE_CACHE.clear()
            got = _SHAPE_CACHE[key] = (lo, vec, den)
        lo, vec, den = got
        if den == 0.0:
            raise _impossible_references(name, typed)
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
        tree = prune_tree(rooted_tree(self._adj, me, self._nodes), me, set(obs))
        edges = sum(len(k) for k in tree.values())
        order = preorder(tree, me)
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
                per_copy.append((cls, peel(tree, order, me, ints, lo, width, rate)))
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
