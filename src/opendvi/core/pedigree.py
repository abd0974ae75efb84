"""Pedigrees: individuals, their parents and sexes.

A :class:`Pedigree` is held as plain parallel arrays (ids, father index,
mother index, sex), as pedtools does. Its constructor validates and reports
every problem at once (:class:`~opendvi.core.errors.PedigreeError`). A
pedigree may have several unconnected components (a family plus an unrelated
person, for instance).

Builders for the common relationships are at the bottom of the module:

>>> ped = full_siblings()
>>> ped.ids
('FA', 'MO', 'S1', 'S2')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from opendvi.core.errors import PedigreeError

IntArray = NDArray[np.intp]
SEXES = ("M", "F")


@dataclass(frozen=True)
class Individual:
    """One person in a pedigree: founders have neither parent."""

    id: str
    father: str | None = None
    mother: str | None = None
    sex: str | None = None


class Pedigree:
    """A validated pedigree.

    ``individuals`` may come in any order; parents need not precede their
    children. Problems are collected and raised together: a single parent,
    unknown parent ids, duplicate ids, a father who is not male or a mother
    who is not female, a person who is his own ancestor.
    """

    __slots__ = ("__dict__", "_index", "father", "ids", "mother", "sex")

    def __init__(self, individuals: Iterable[Individual], *, where: str | None = None) -> None:
        people = list(individuals)
        problems: list[str] = []
        ids: list[str] = []
        seen: set[str] = set()
        for person in people:
            if not isinstance(person.id, str) or not person.id:
                problems.append(f"invalid id {person.id!r}")
            elif person.id in seen:
                problems.append(f"duplicate id {person.id!r}")
            seen.add(person.id)
            ids.append(person.id)
        by_id = {p.id: p for p in people}
        for person in people:
            if (person.father is None) != (person.mother is None):
                which = "father" if person.father is None else "mother"
                problems.append(f"{person.id} has a single parent (no {which}); give both parents or neither")
            if person.sex not in (None, *SEXES):
                problems.append(f"{person.id} has sex {person.sex!r}; expected 'M', 'F' or unknown")
            for role, pid, want in (("father", person.father, "M"), ("mother", person.mother, "F")):
                if pid is None:
                    continue
                if pid == person.id:
                    problems.append(f"{person.id} is his or her own {role}")
                    continue
                parent = by_id.get(pid)
                if parent is None:
                    problems.append(f"{person.id}'s {role} {pid!r} is not in the pedigree")
                elif parent.sex != want:
                    sex = "unknown" if parent.sex is None else parent.sex
                    problems.append(f"{pid} is {person.id}'s {role} but has sex {sex} (a {role} must be {want})")
        # the cycle search runs even when other problems were found, so that
        # every problem is reported at once (self-parenthood is reported above)
        cycle = _find_cycle(
            [Individual(q.id, *(None if x == q.id else x for x in (q.father, q.mother))) for q in people]
        )
        if cycle:
            problems.append("cycle: " + " -> ".join(cycle) + " (a person is his own ancestor)")
        if problems:
            raise PedigreeError(problems, where=where)
        self.ids: tuple[str, ...] = tuple(ids)
        self._index = {pid: i for i, pid in enumerate(ids)}
        self.father: IntArray = np.array([self._index[p.father] if p.father else -1 for p in people], dtype=np.intp)
        self.mother: IntArray = np.array([self._index[p.mother] if p.mother else -1 for p in people], dtype=np.intp)
        self.sex: tuple[str | None, ...] = tuple(p.sex for p in people)

    # -- access ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, pid: object) -> bool:
        return pid in self._index

    def __repr__(self) -> str:
        return f"Pedigree({len(self)} individuals: {', '.join(self.ids[:8])}{'...' if len(self) > 8 else ''})"

    def index(self, pid: str) -> int:
        try:
            return self._index[pid]
        except KeyError:
            raise PedigreeError([f"unknown individual {pid!r}"]) from None

    @property
    def individuals(self) -> list[Individual]:
        return [
            Individual(
                pid,
                self.ids[f] if f >= 0 else None,
                self.ids[m] if m >= 0 else None,
                s,
            )
            for pid, f, m, s in zip(self.ids, self.father, self.mother, self.sex, strict=True)
        ]

    @cached_property
    def founders(self) -> tuple[str, ...]:
        return tuple(pid for pid, f in zip(self.ids, self.father, strict=True) if f < 0)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        kids: list[list[int]] = [[] for _ in self.ids]
        for i, (f, m) in enumerate(zip(self.father, self.mother, strict=True)):
            if f >= 0:
                kids[f].append(i)
                kids[m].append(i)
        return tuple(tuple(k) for k in kids)

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        """Indices with every parent before its children."""
        order: list[int] = []
        done = [False] * len(self)

        def visit(i: int) -> None:
            stack = [i]
            while stack:
                j = stack[-1]
                if done[j]:
                    stack.pop()
                    continue
                pending = [p for p in (self.father[j], self.mother[j]) if p >= 0 and not done[p]]
                if pending:
                    stack.extend(int(p) for p in pending)
                else:
                    done[j] = True
                    order.append(j)
                    stack.pop()

        for i in range(len(self)):
            visit(i)
        return tuple(order)

    def has_loops(self) -> bool:
        """True when the pedigree graph (marriage nodes) has a cycle: inbreeding,
        double first cousins, half-sib mating."""
        # Bipartite graph individuals <-> matings; a forest iff edges = nodes - components.
        matings: dict[tuple[int, int], int] = {}
        src: list[int] = []
        dst: list[int] = []
        for i in range(len(self)):
            f, m = int(self.father[i]), int(self.mother[i])
            if f < 0:
                continue
            node = len(self) + matings.setdefault((f, m), len(matings))
            src.append(i)
            dst.append(node)
        for (f, m), k in matings.items():
            src += [f, m]
            dst += [len(self) + k] * 2
        n_nodes = len(self) + len(matings)
        edges = len(src)
        graph = coo_matrix((np.ones(edges), (src, dst)), shape=(n_nodes, n_nodes))
        components, _ = connected_components(graph, directed=False)
        return edges > n_nodes - components

    # -- derived pedigrees ------------------------------------------------------
    def relabel(self, mapping: Mapping[str, str]) -> Pedigree:
        return Pedigree(
            Individual(
                mapping.get(p.id, p.id),
                mapping.get(p.father, p.father) if p.father else None,
                mapping.get(p.mother, p.mother) if p.mother else None,
                p.sex,
            )
            for p in self.individuals
        )

    def add(self, *people: Individual) -> Pedigree:
        return Pedigree([*self.individuals, *people])

    def subset(self, keep: Iterable[str]) -> Pedigree:
        """The sub-pedigree of ``keep``; each kept person keeps both parents or neither
        (the caller must keep parents of kept non-founders)."""
        wanted = set(keep)
        return Pedigree(p for p in self.individuals if p.id in wanted)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pedigree):
            return NotImplemented
        return sorted(self.individuals, key=lambda p: p.id) == sorted(other.individuals, key=lambda p: p.id)

    def __hash__(self) -> int:
        return hash(tuple(sorted((p.id, p.father, p.mother, p.sex) for p in self.individuals)))


def _find_cycle(people: Sequence[Individual]) -> list[str] | None:
    parents = {p.id: [x for x in (p.father, p.mother) if x] for p in people}
    state: dict[str, int] = {}
    for start in parents:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, k = stack.pop()
            if k == 0:
                if state.get(node) == 1:
                    i = path.index(node)
                    return [*path[i:], node]
                if state.get(node) == 2:
                    continue
                state[node] = 1
                path.append(node)
            ps = parents.get(node, [])
            if k < len(ps):
                stack.append((node, k + 1))
                stack.append((ps[k], 0))
            else:
                state[node] = 2
                path.pop()
    return None


# ---------------------------------------------------------------------------
# Builders for common relationships. Ids are short and fixed, so that the
# typed people are easy to address: the two people whose relationship is
# built are always the last ones listed in the docstring.
# ---------------------------------------------------------------------------


def singleton(pid: str = "P", sex: str | None = "M") -> Pedigree:
    """One unrelated person."""
    return Pedigree([Individual(pid, sex=sex)])


def parent_child(*, parent_sex: str = "M", child_sex: str = "M") -> Pedigree:
    """Parent ``P`` and child ``C`` (the other parent ``O`` untyped)."""
    other = "F" if parent_sex == "M" else "M"
    fa, mo = ("P", "O") if parent_sex == "M" else ("O", "P")
    return Pedigree([Individual("P", sex=parent_sex), Individual("O", sex=other), Individual("C", fa, mo, child_sex)])


def trio(*, child_sex: str = "M") -> Pedigree:
    """Father ``FA``, mother ``MO`` and child ``CH``."""
    return Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("CH", "FA", "MO", child_sex)])


def full_siblings(n: int = 2, *, sexes: Sequence[str] | None = None) -> Pedigree:
    """Parents ``FA``, ``MO`` and children ``S1`` .. ``Sn``."""
    sexes = list(sexes) if sexes is not None else ["M"] * n
    return Pedigree(
        [Individual("FA", sex="M"), Individual("MO", sex="F")]
        + [Individual(f"S{i + 1}", "FA", "MO", sexes[i]) for i in range(n)]
    )


def half_siblings(*, side: str = "paternal", sexes: tuple[str, str] = ("M", "M")) -> Pedigree:
    """Half siblings ``H1`` and ``H2`` sharing the father (paternal) or mother (maternal)."""
    if side not in ("paternal", "maternal"):
        raise PedigreeError([f"half siblings: side must be 'paternal' or 'maternal', found {side!r}"])
    paternal = side == "paternal"
    # the shared parent, then the two other parents (mothers M1, M2 or fathers F1, F2)
    shared, other = ("FA", "M") if paternal else ("MO", "F")
    people = [Individual(shared, sex="M" if paternal else "F")]
    people += [Individual(f"{other}{k}", sex="F" if paternal else "M") for k in (1, 2)]
    for k in (1, 2):
        father, mother = (shared, f"{other}{k}") if paternal else (f"{other}{k}", shared)
        people.append(Individual(f"H{k}", father, mother, sexes[k - 1]))
    return Pedigree(people)


def grandparent(*, side: str = "paternal", grandparent_sex: str = "M", grandchild_sex: str = "M") -> Pedigree:
    """Grandparent ``GP`` and grandchild ``GC`` through an untyped parent ``PA``."""
    parent_sex = "M" if side == "paternal" else "F"
    gp_spouse_sex = "F" if grandparent_sex == "M" else "M"
    gfa, gmo = ("GP", "GS") if grandparent_sex == "M" else ("GS", "GP")
    spouse_sex = "F" if parent_sex == "M" else "M"
    fa, mo = ("PA", "SP") if parent_sex == "M" else ("SP", "PA")
    return Pedigree(
        [
            Individual("GP", sex=grandparent_sex),
            Individual("GS", sex=gp_spouse_sex),
            Individual("PA", gfa, gmo, parent_sex),
            Individual("SP", sex=spouse_sex),
            Individual("GC", fa, mo, grandchild_sex),
        ]
    )


def avuncular(*, side: str = "paternal", uncle_sex: str = "M", nephew_sex: str = "M") -> Pedigree:
    """Uncle or aunt ``UN`` and nephew or niece ``NE``: ``UN`` is a full sibling of
    ``NE``'s father (paternal) or mother (maternal) ``PA``."""
    parent_sex = "M" if side == "paternal" else "F"
    spouse_sex = "F" if parent_sex == "M" else "M"
    fa, mo = ("PA", "SP") if parent_sex == "M" else ("SP", "PA")
    return Pedigree(
        [
            Individual("GF", sex="M"),
            Individual("GM", sex="F"),
            Individual("PA", "GF", "GM", parent_sex),
            Individual("UN", "GF", "GM", uncle_sex),
            Individual("SP", sex=spouse_sex),
            Individual("NE", fa, mo, nephew_sex),
        ]
    )


def cousins(degree: int = 1, *, removal: int = 0, half: bool = False) -> Pedigree:
    """Cousins ``C1`` and ``C2`` of any degree (1 = first cousins) and removal.

    The two lines descend from a common ancestral couple ``A1`` x ``A2`` (one
    shared ancestor ``A1`` only when ``half``) through males; ``C1`` is
    ``degree`` generations below the common ancestors' children, ``C2`` that
    plus ``removal``.
    """
    if degree < 1 or removal < 0:
        raise PedigreeError([f"cousins: degree must be >= 1 and removal >= 0, found {degree}, {removal}"])
    people = [Individual("A1", sex="M"), Individual("A2", sex="F")]
    if half:
        people.append(Individual("A3", sex="F"))

    def line(tag: str, depth: int, top_mother: str) -> None:
        prev, mother = "A1", top_mother
        for g in range(1, depth + 1):
            pid = tag if g == depth else f"{tag}_{g}"
            people.append(Individual(pid, prev, mother, "M"))
            if g < depth:
                mother = f"{tag}_W{g}"
                people.append(Individual(mother, sex="F"))
            prev = pid

    line("C1", degree + 1, "A2")
    line("C2", degree + 1 + removal, "A3" if half else "A2")
    return Pedigree(people)


#: Relations understood by :func:`missing_person_family`.
RELATIONS = (
    "father",
    "mother",
    "full_sibling",
    "paternal_half_sibling",
    "maternal_half_sibling",
    "child",
    "paternal_grandfather",
    "paternal_grandmother",
    "maternal_grandfather",
    "maternal_grandmother",
    "paternal_uncle",
    "maternal_uncle",
    "spouse",
)


def missing_person_family(
    relatives: Mapping[str, str | Sequence[str]],
    *,
    missing: str = "MP",
    missing_sex: str = "M",
    sexes: Mapping[str, str] | None = None,
) -> Pedigree:
    """A missing person with any set of relatives, by relation name.

    ``relatives`` maps a relation in :data:`RELATIONS` to one id or a list of
    ids; ``sexes`` gives the sex of siblings, children and uncles (default
    male). Untyped connecting people (parents, grandparents, spouses) are
    added with ids ``_FA``, ``_MO``, ``_PGF`` ... unless given.

    >>> ped = missing_person_family({"mother": "R1", "full_sibling": ["R2"]})
    >>> sorted(ped.ids)
    ['MP', 'R1', 'R2', '_FA']
    """
    sexes = dict(sexes or {})

    def ids(rel: str) -> list[str]:
        v = relatives.get(rel, [])
        return [v] if isinstance(v, str) else list(v)

    unknown = set(relatives) - set(RELATIONS)
    if unknown:
        raise PedigreeError([f"unknown relation(s) {', '.join(sorted(unknown))}; known: {', '.join(RELATIONS)}"])
    people: dict[str, Individual] = {}
    problems: list[str] = []
    single = ("father", "mother", "spouse", *(r for r in RELATIONS if r.endswith(("grandfather", "grandmother"))))
    for rel in single:
        if len(ids(rel)) > 1:
            problems.append(f"relation {rel} takes one id, found {', '.join(ids(rel))}")

    def put(pid: str, father: str | None, mother: str | None, sex: str) -> None:
        if pid in people:
            problems.append(f"id {pid!r} is given for two relations")
        people[pid] = Individual(pid, father, mother, sex)

    fa = (ids("father") or ["_FA"])[0]
    mo = (ids("mother") or ["_MO"])[0]
    need_paternal = any(ids(r) for r in ("paternal_grandfather", "paternal_grandmother", "paternal_uncle"))
    need_maternal = any(ids(r) for r in ("maternal_grandfather", "maternal_grandmother", "maternal_uncle"))
    pgf = (ids("paternal_grandfather") or ["_PGF"])[0]
    pgm = (ids("paternal_grandmother") or ["_PGM"])[0]
    mgf = (ids("maternal_grandfather") or ["_MGF"])[0]
    mgm = (ids("maternal_grandmother") or ["_MGM"])[0]
    for need, grandfather, grandmother, parent, sex in (
        (need_paternal, pgf, pgm, fa, "M"),
        (need_maternal, mgf, mgm, mo, "F"),
    ):
        if need:
            put(grandfather, None, None, "M")
            put(grandmother, None, None, "F")
            put(parent, grandfather, grandmother, sex)
        else:
            put(parent, None, None, sex)
    put(missing, fa, mo, missing_sex)
    for sib in ids("full_sibling"):
        put(sib, fa, mo, sexes.get(sib, "M"))
    for k, sib in enumerate(ids("paternal_half_sibling")):
        other = f"_HM{k + 1}"
        put(other, None, None, "F")
        put(sib, fa, other, sexes.get(sib, "M"))
    for k, sib in enumerate(ids("maternal_half_sibling")):
        other = f"_HF{k + 1}"
        put(other, None, None, "M")
        put(sib, other, mo, sexes.get(sib, "M"))
    for unc in ids("paternal_uncle"):
        put(unc, pgf, pgm, sexes.get(unc, "M"))
    for unc in ids("maternal_uncle"):
        put(unc, mgf, mgm, sexes.get(unc, "M"))
    kids = ids("child")
    if kids or ids("spouse"):  # a spouse without children is an unrelated founder
        spouse = (ids("spouse") or ["_SP"])[0]
        spouse_sex = "F" if missing_sex == "M" else "M"
        put(spouse, None, None, spouse_sex)
        cf, cm = (missing, spouse) if missing_sex == "M" else (spouse, missing)
        for kid in kids:
            put(kid, cf, cm, sexes.get(kid, "M"))
    if problems:
        raise PedigreeError(problems)
    # drop untyped helper parents nobody needs (both parents of the missing
    # person are always kept: the missing person needs both).
    return Pedigree(people.values())
