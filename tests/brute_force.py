"""A brute-force pedigree likelihood: obviously correct, slow, for small pedigrees.

It enumerates every ordered genotype (paternal allele, maternal allele) of
every person of the pedigree (a male at an X marker has one allele, his
mother's), multiplies

* founders: the allele frequencies (Hardy-Weinberg), or with ``theta > 0``
  the Balding-Nichols sequential sampling formula over all founder alleles
  taken in turn: P(next allele is a | b of the j - 1 drawn before were a)
  = (b theta + (1 - theta) p_a) / (1 + (j - 2) theta);
* non-founders: for each parent, 0.5 * (M[x1, y] + M[x2, y]) with the
  parent's sex's matrix (None = identity); at an X marker a father passes his
  single X allele to a daughter (M[x, y]) and nothing to a son;
* observations: exactly the dropout model of ``shared/design/likelihood.md``
  (a male's single X allele is seen with probability 1 - d),

and sums the products in plain Python floats. Nothing is pruned (untyped
people without typed descendants are enumerated too) and no allele is lumped.
The only shortcut: a branch whose partial product is exactly 0.0 is not
extended, since every completion of it contributes 0 to the sum.

It deliberately shares no code with :mod:`opendvi.core.likelihood`; it reads
the pedigree only through ``Pedigree.individuals`` and the marker only
through ``alleles``, ``p``, ``is_x``, ``female_matrix`` and ``male_matrix``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from opendvi.core.markers import Marker
from opendvi.core.pedigree import Individual, Pedigree

Genotype = tuple[str, ...]


def _topological(people: Sequence[Individual]) -> list[Individual]:
    """People with parents before children (simple repeated passes)."""
    placed: set[str] = set()
    out: list[Individual] = []
    while len(out) < len(people):
        progressed = False
        for person in people:
            if person.id in placed:
                continue
            if person.father is None or (person.father in placed and person.mother in placed):
                out.append(person)
                placed.add(person.id)
                progressed = True
        assert progressed, "cycle"
    return out


def _observation(true: tuple[int, ...], obs: tuple[int, ...], d: float, *, hemizygous: bool) -> float:
    """P(observed alleles | true genotype) under per-sample dropout d."""
    if hemizygous:  # a male at an X marker: one allele, seen unless it drops out
        (x,) = true
        return 1.0 - d if all(a == x for a in obs) else 0.0
    x, y = true
    if len(obs) == 2 and obs[0] != obs[1]:
        a, b = obs
        return (1.0 - d) ** 2 if {x, y} == {a, b} and x != y else 0.0
    if len(obs) == 2:  # ["a", "a"]: taken as a homozygote
        a = obs[0]
        return 1.0 - d * d if x == a and y == a else 0.0
    (a,) = obs  # ["a"]: a homozygote, or a heterozygote whose other allele dropped out
    if x == a and y == a:
        return 1.0 - d * d
    if (x == a) != (y == a):
        return d * (1.0 - d)
    return 0.0


def brute_force_likelihood(
    pedigree: Pedigree,
    marker: Marker,
    genotypes: Mapping[str, Genotype],
    *,
    theta: float = 0.0,
    dropout: Mapping[str, float] | None = None,
) -> float:
    """P(observed genotypes | pedigree) at one marker, by full enumeration."""
    dropout = dropout or {}
    n = marker.n_alleles
    p = [float(x) for x in marker.p]
    index = {a: i for i, a in enumerate(marker.alleles)}
    Mf = marker.female_matrix
    Mm = marker.male_matrix

    def tr(M: object, a: int, b: int) -> float:
        if M is None:
            return 1.0 if a == b else 0.0
        return float(M[a][b])  # type: ignore[index]

    people = _topological(pedigree.individuals)
    sex = {q.id: q.sex for q in people}
    hemi = {q.id: marker.is_x and q.sex == "M" for q in people}
    obs = {pid: tuple(index[a] for a in gt) for pid, gt in genotypes.items() if gt}

    def options(person: Individual) -> list[tuple[int, ...]]:
        if hemi[person.id]:
            return [(a,) for a in range(n)]
        return [(a, b) for a in range(n) for b in range(n)]

    # every ordered genotype of each person, with its observation probability
    # (1 for the untyped); those the observation rules out (probability 0)
    # would contribute 0 and are left out of the loops.
    choices: dict[str, list[tuple[tuple[int, ...], float]]] = {}
    for person in people:
        pid = person.id
        if pid in obs:
            d = float(dropout.get(pid, 0.0))
            with_obs = [(g, _observation(g, obs[pid], d, hemizygous=hemi[pid])) for g in options(person)]
            choices[pid] = [(g, w) for g, w in with_obs if w > 0.0]
        else:
            choices[pid] = [(g, 1.0) for g in options(person)]

    def passed(parent: str, g: tuple[int, ...], M: object, child_allele: int) -> float:
        # one of the parent's allele copies, each with probability 1/2, then mutation
        if hemi[parent]:
            return tr(M, g[0], child_allele)
        return 0.5 * (tr(M, g[0], child_allele) + tr(M, g[1], child_allele))

    def founder_alleles_prob(alleles: tuple[int, ...], drawn: list[int]) -> float:
        prob = 1.0
        seq = list(drawn)
        for a in alleles:
            if theta == 0.0:
                prob *= p[a]
            else:
                j = len(seq) + 1
                b = seq.count(a)
                prob *= (b * theta + (1.0 - theta) * p[a]) / (1.0 + (j - 2) * theta)
            seq.append(a)
        return prob

    total = 0.0
    assigned: dict[str, tuple[int, ...]] = {}

    def recurse(k: int, partial: float, drawn: list[int]) -> None:
        nonlocal total
        if k == len(people):
            total += partial
            return
        person = people[k]
        for g, seen in choices[person.id]:
            if person.father is None:
                # founder: a male at X has one allele, everybody else two (paternal, maternal)
                factor = founder_alleles_prob(g, drawn)
                new_drawn = [*drawn, *g]
            else:
                fa, mo = person.father, person.mother
                assert mo is not None
                mat = g[-1]
                factor = passed(mo, assigned[mo], Mf, mat)
                if not hemi[person.id]:
                    pat = g[0]
                    if marker.is_x:
                        factor *= tr(Mm, assigned[fa][0], pat)  # the father's single X
                    else:
                        factor *= passed(fa, assigned[fa], Mm, pat)
                new_drawn = drawn
            value = partial * factor * seen
            if value == 0.0:
                continue
            assigned[person.id] = g
            recurse(k + 1, value, new_drawn)
            del assigned[person.id]

    assert all(s in ("M", "F") for s in sex.values()) or not marker.is_x
    recurse(0, 1.0, [])
    return total


def brute_force_loglik(
    pedigree: Pedigree,
    marker: Marker,
    genotypes: Mapping[str, Genotype],
    *,
    theta: float = 0.0,
    dropout: Mapping[str, float] | None = None,
) -> float:
    """Natural log of :func:`brute_force_likelihood` (-inf for 0)."""
    value = brute_force_likelihood(pedigree, marker, genotypes, theta=theta, dropout=dropout)
    return math.log(value) if value > 0.0 else -math.inf
