"""Simulation of genotypes down a pedigree (gene dropping).

Founders draw alleles from the frequencies (Hardy-Weinberg); each child
receives one allele from each parent, which mutates by that parent's sex's
matrix; males at X markers receive only their mother's allele. Used for the
demo case, for tests and for simulated identification cases
(:mod:`opendvi.dvi.simulate`). The national-scale simulator of screening
drops genes by itself, batched per family shape (the reasons:
:mod:`opendvi.dvi.simulate`). Every function takes an explicit
:class:`numpy.random.Generator`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from opendvi.core.markers import Marker
from opendvi.core.pedigree import Pedigree
from opendvi.core.profiles import Genotype


@dataclass
class SimulationTruth:
    """Who each simulated remains is: ``missing[remains]`` = the missing
    person's id, or None for someone in no family; ``kind[remains]`` is
    "missing", "unrelated" or "fragment" (a second sample of an earlier remains)."""

    missing: dict[str, str | None] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)


def simulate_marker(pedigree: Pedigree, marker: Marker, rng: np.random.Generator) -> dict[str, Genotype]:
    """One genotype per person (allele indices drawn, labels returned)."""
    n = marker.n_alleles
    p = marker.p
    pat = np.full(len(pedigree), -1, dtype=np.intp)
    mat = np.full(len(pedigree), -1, dtype=np.intp)

    def transmit(allele: int, M: np.ndarray | None) -> int:
        if M is None:
            return allele
        return int(rng.choice(n, p=M[allele]))

    for i in pedigree.topological_order:
        f, m = int(pedigree.father[i]), int(pedigree.mother[i])
        male_x = marker.is_x and pedigree.sex[i] == "M"
        if f < 0:
            mat[i] = rng.choice(n, p=p)
            pat[i] = mat[i] if male_x else rng.choice(n, p=p)
            continue
        from_mother = mat[m] if rng.random() < 0.5 else pat[m]
        mat[i] = transmit(int(from_mother), marker.female_matrix)
        if male_x:
            pat[i] = mat[i]
        elif marker.is_x:
            pat[i] = transmit(int(mat[f]), marker.male_matrix)
        else:
            from_father = pat[f] if rng.random() < 0.5 else mat[f]
            pat[i] = transmit(int(from_father), marker.male_matrix)
    out: dict[str, Genotype] = {}
    for i, pid in enumerate(pedigree.ids):
        a, b = sorted((int(pat[i]), int(mat[i])))
        out[pid] = (marker.alleles[a], marker.alleles[b])
    return out


def simulate_profiles(
    pedigree: Pedigree,
    markers: Sequence[Marker],
    rng: np.random.Generator,
    *,
    ids: Iterable[str] | None = None,
) -> dict[str, dict[str, Genotype]]:
    """Genotypes of ``ids`` (default: everybody) at every marker."""
    wanted = list(ids) if ids is not None else list(pedigree.ids)
    out: dict[str, dict[str, Genotype]] = {pid: {} for pid in wanted}
    for marker in markers:
        gts = simulate_marker(pedigree, marker, rng)
        for pid in wanted:
            out[pid][marker.name] = gts[pid]
    return out


def apply_dropout(
    genotypes: dict[str, Genotype], d: float, rng: np.random.Generator, *, locus_dropout: float = 0.0
) -> dict[str, Genotype]:
    """Degrade a profile: each allele copy of a heterozygote drops with
    probability ``d`` (a homozygote loses its single peak with ``d**2``), and a
    whole marker fails with ``locus_dropout``. The result uses the one-allele
    form of ``likelihood.md``."""
    out: dict[str, Genotype] = {}
    for name, (a, b) in genotypes.items():
        if rng.random() < locus_dropout:
            continue
        if a == b:
            if rng.random() >= d * d:
                out[name] = (a,)
            continue
        keep = [x for x in (a, b) if rng.random() >= d]
        if len(keep) == 2:
            out[name] = (a, b)
        elif len(keep) == 1:
            out[name] = (keep[0],)
    return out
