"""Pedigree shapes that the batched table evaluator handles.

For one missing person M (the *target*) of a family, the pedigree is first
pruned as the engine prunes it: keep the typed members, M, and all their
ancestors, then M's connected component (anything else multiplies
``P(refs, M = g)`` by a constant and cancels in the LR). The remaining
pedigree is *templated* when it is a tree of this form:

* M's parents F and Mo (or M is a founder), each either a founder or the
  child of a founder couple whose other children are leaves (M's uncles and
  aunts);
* F and Mo may have other partners (founders) with leaf children (M's half
  siblings);
* F and Mo's other children are leaves (M's full siblings);
* M may have partners (founders) with leaf children (M's children).

A *leaf* has no child in the pruned pedigree. At most :data:`MAX_KIDS` leaf
children per couple. Anyone may be typed or not. This covers the family
shapes of large operations (parents, siblings, half siblings, children,
grandparents, uncles and aunts, and their combinations); everything else
(loops, several generations, a missing person whose typed relatives are
reached through another missing person) goes through the general engine.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from opendvi.core.case import Family
from opendvi.core.pedigree import Pedigree

#: Most leaf children of one couple that the template expands (2^k terms).
MAX_KIDS = 5


@dataclass(frozen=True)
class Template:
    """A templated (family, target): ``key`` identifies the shape (families
    with equal keys are evaluated together), ``roles`` lists the members in
    the key's canonical order (``None`` = an untyped founder that is not in
    the family, never used)."""

    key: Hashable
    roles: tuple[str, ...]


def _prune(ped: Pedigree, typed: set[str], target: str) -> set[int]:
    keep: set[int] = set()
    stack = [ped.index(t) for t in typed] + [ped.index(target)]
    while stack:
        i = stack.pop()
        if i in keep:
            continue
        keep.add(i)
        for par in (ped.father[i], ped.mother[i]):
            if par >= 0:
                stack.append(int(par))
    # connected component of the target (parent-child edges within keep)
    adj: dict[int, set[int]] = {i: set() for i in keep}
    for i in keep:
        for par in (int(ped.father[i]), int(ped.mother[i])):
            if par >= 0 and par in keep:
                adj[i].add(par)
                adj[par].add(i)
    comp: set[int] = set()
    stack = [ped.index(target)]
    while stack:
        i = stack.pop()
        if i in comp:
            continue
        comp.add(i)
        stack.extend(adj[i] - comp)
    return comp


_CACHE: dict[Hashable, tuple[Hashable, tuple[int, ...]] | None] = {}
_CACHE_MAX = 100_000


def match_template(fam: Family, target: str) -> Template | None:
    """The template of (family, target), or None when the general engine must be used.

    Families whose pedigrees have the same structure (parents and sexes by
    position, typed members, target) share the answer (cached).
    """
    ped = fam.pedigree
    typed = {pid for pid, g in fam.genotypes.items() if g}
    if target in typed:
        return None
    # references with dropout or one-allele genotypes: general engine
    if any(fam.dropout.get(pid, 0.0) for pid in typed):
        return None
    for pid in typed:
        if any(len(gt) != 2 for gt in fam.genotypes[pid].values()):
            return None
    skey = (
        ped.father.tobytes(),
        ped.mother.tobytes(),
        ped.sex,
        tuple(pid in typed for pid in ped.ids),
        ped.index(target),
    )
    if skey in _CACHE:
        hit = _CACHE[skey]
        if hit is None:
            return None
        return Template(key=hit[0], roles=tuple(ped.ids[i] for i in hit[1]))
    res = _match(ped, typed, target)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[skey] = res
    if res is None:
        return None
    return Template(key=res[0], roles=tuple(ped.ids[i] for i in res[1]))


def _match(ped: Pedigree, typed: set[str], target: str) -> tuple[Hashable, tuple[int, ...]] | None:
    comp = _prune(ped, typed, target)
    father = {i: int(ped.father[i]) for i in comp}
    mother = {i: int(ped.mother[i]) for i in comp}
    matings: dict[tuple[int, int], list[int]] = {}
    for i in comp:
        if father[i] >= 0:
            matings.setdefault((father[i], mother[i]), []).append(i)
    parents_of_someone: set[int] = set()
    for f, m in matings:
        parents_of_someone.update((f, m))
    n_matings: dict[int, int] = {}
    for f, m in matings:
        n_matings[f] = n_matings.get(f, 0) + 1
        n_matings[m] = n_matings.get(m, 0) + 1

    def leaf(i: int) -> bool:
        return i not in parents_of_someone

    def founder(i: int) -> bool:
        return father[i] < 0

    used: list[int] = []

    def kids_ok(kids: list[int]) -> bool:
        return len(kids) <= MAX_KIDS and all(leaf(k) for k in kids)

    def sort_kids(kids: list[int]) -> list[int]:
        return sorted(kids)

    t = ped.index(target)
    # target's own couples (its children)
    spouse_groups: list[tuple[int, list[int]]] = []
    for (f, m), kids in sorted(matings.items()):
        if t not in (f, m):
            continue
        partner = m if f == t else f
        if not founder(partner) or n_matings.get(partner, 0) != 1 or not kids_ok(kids):
            return None
        spouse_groups.append((partner, sort_kids(kids)))
    spouse_groups.sort(key=lambda g: (len(g[1]), g[0]))
    used.append(t)
    for partner, kids in spouse_groups:
        used.append(partner)
        used.extend(kids)
    key_sp = tuple(len(k) for _, k in spouse_groups)

    anterior: tuple[object, ...] | None = None
    if not founder(t):
        fa, mo = father[t], mother[t]
        sides: list[tuple[object, ...]] = []
        for par, _other in ((fa, mo), (mo, fa)):
            used.append(par)
            gp: tuple[int, ...] = ()
            n_unc = -1
            if not founder(par):
                g1, g2 = father[par], mother[par]
                if not (founder(g1) and founder(g2)) or n_matings.get(g1) != 1 or n_matings.get(g2) != 1:
                    return None
                uncles = [k for k in matings[(g1, g2)] if k != par]
                if not kids_ok(uncles):
                    return None
                used.extend((g1, g2))
                used.extend(sort_kids(uncles))
                n_unc = len(uncles)
            half: list[tuple[int, list[int]]] = []
            for (f, m), kids in matings.items():
                if par not in (f, m) or {f, m} == {fa, mo}:
                    continue
                partner = m if f == par else f
                if not founder(partner) or n_matings.get(partner, 0) != 1 or not kids_ok(kids):
                    return None
                half.append((partner, sort_kids(kids)))
            half.sort(key=lambda g: (len(g[1]), g[0]))
            for partner, kids in half:
                used.append(partner)
                used.extend(kids)
            del gp
            sides.append((n_unc, tuple(len(k) for _, k in half)))
        sibs = [k for k in matings[(fa, mo)] if k != t]
        if not kids_ok(sibs):
            return None
        used.extend(sort_kids(sibs))
        anterior = (sides[0], sides[1], len(sibs))
    if len(used) != len(set(used)) or set(used) != comp:
        return None
    key = (ped.sex[t], anterior, key_sp)
    return key, tuple(used)
