"""Simulation of lineage haplotypes down a pedigree (for tests and benchmarks).

Y: every male whose father is not in the pedigree draws a founder haplotype;
each son receives his father's, each copy of each locus moving one repeat up
or down with probability μ_l / 2 each (a null stays). mtDNA: every person
whose mother is not in the pedigree draws a founder haplotype; each child
receives the mother's, and with probability μ one position of the typed range,
uniform, changes to another base (``lineage.md``). Explicit
:class:`numpy.random.Generator` everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from opendvi.core.lineage import MtSystem, YHaplotype, YSystem, y_step
from opendvi.core.lineage_mt import MtHaplotype, rcrs
from opendvi.core.pedigree import Pedigree

H = TypeVar("H")


def mutate_y(h: YHaplotype, system: YSystem, rng: np.random.Generator) -> dict[str, tuple[str, ...]]:
    """One father–son transmission of a Y haplotype."""
    out: dict[str, tuple[str, ...]] = {}
    for locus, value in h.items():
        m = system.by_name.get(locus)
        rate = m.rate if m is not None else 0.0
        new = []
        for token in value:
            u = rng.random()
            step = -1 if u < rate / 2 else (1 if u < rate else 0)
            moved = y_step(token, step) if step else token
            new.append(moved if moved is not None else token)
        out[locus] = tuple(sorted(new, key=lambda t: (t == "null", float(t) if t != "null" else 0.0)))
    return out


def mutate_mt(h: MtHaplotype, rate: float, rng: np.random.Generator) -> MtHaplotype:
    """One mother–child transmission: with probability ``rate`` one position
    of the typed range, uniform, changes to another base."""
    if rng.random() >= rate:
        return h
    positions = [p for a, b in h.range for p in range(a, b + 1)]
    pos = int(positions[int(rng.integers(len(positions)))])
    current = h.base_at((pos, 0))
    choices = sorted(set("ACGT") - current)
    base = choices[int(rng.integers(len(choices)))]
    sites = dict(h.sites)
    if base == rcrs()[pos - 1]:
        sites.pop((pos, 0), None)
    else:
        sites[(pos, 0)] = base
    return MtHaplotype(range=h.range, sites=dict(sorted(sites.items())))


def simulate_y(
    pedigree: Pedigree,
    system: YSystem,
    founder: Callable[[np.random.Generator], YHaplotype],
    rng: np.random.Generator,
) -> dict[str, YHaplotype]:
    """A Y haplotype for every male of ``pedigree``."""
    return _drop_down(
        pedigree,
        pedigree.father,
        lambda i: pedigree.sex[i] == "M",
        lambda: dict(founder(rng)),
        lambda h: mutate_y(h, system, rng),
    )


def simulate_mt(
    pedigree: Pedigree,
    system: MtSystem,
    founder: Callable[[np.random.Generator], MtHaplotype],
    rng: np.random.Generator,
) -> dict[str, MtHaplotype]:
    """An mtDNA haplotype for every person of ``pedigree``."""
    return _drop_down(
        pedigree, pedigree.mother, lambda i: True, lambda: founder(rng), lambda h: mutate_mt(h, system.rate, rng)
    )


def _drop_down(
    pedigree: Pedigree,
    parent: NDArray[np.intp],
    carries: Callable[[int], bool],
    founder: Callable[[], H],
    transmit: Callable[[H], H],
) -> dict[str, H]:
    """A haplotype passed down one line: in topological order, each person
    who ``carries`` the system draws a founder haplotype when ``parent[i]``
    is not in the pedigree, else receives the parent's through ``transmit``."""
    out: dict[str, H] = {}
    for i in pedigree.topological_order:
        if not carries(i):
            continue
        par = int(parent[i])
        out[pedigree.ids[i]] = founder() if par < 0 else transmit(out[pedigree.ids[par]])
    return out


def database_sampler(haplotypes: tuple[YHaplotype, ...], counts: tuple[int, ...]) -> Callable[
    [np.random.Generator], YHaplotype
]:
    """Draw database haplotypes in proportion to their counts."""
    p = np.asarray(counts, dtype=float)
    p /= p.sum()

    def draw(rng: np.random.Generator) -> YHaplotype:
        return haplotypes[int(rng.choice(len(haplotypes), p=p))]

    return draw
