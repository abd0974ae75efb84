"""Remains-to-remains matching: fragments of one person, consensus profiles,
and direct matching against a missing person's own sample (personal effects).

The direct-match LR (``opendvi.core.direct_match``, the one home of the rule;
the same person vs two unrelated people, with dropout, theta and lineage) of
every pair of remains, by the screening's table-and-gather kernel
(``opendvi.screening.screen_remains``); the grouping rule
(:func:`group_links`, one home: ``match-remains`` and the service's runs);
consensus profiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from opendvi.core.case import Sample
from opendvi.core.direct_match import direct_match_log_lr
from opendvi.core.profiles import Genotype
from opendvi.core.rules import json_number, safe_exp
from opendvi.dvi.problem import DVIProblem

DEFAULT_GROUP_THRESHOLD = 1e4


@dataclass
class RemainsMatching:
    """Direct matches between remains, the groups they form, and matches with
    personal-effects samples.

    With lineage data ``log_lr`` is the combined direct-match LR, and
    ``log_lr_by_system[(a, b)]`` (``{"autosomal": x, "Y": y, "mt": z}``, natural
    log) and ``mismatches[(a, b)]`` (``{"Y": 0, "mt": 1}``) give each system."""

    log_lr: dict[tuple[str, str], float]
    groups: list[list[str]]
    conflicts: list[tuple[str, str, float]] = field(default_factory=list)
    personal_effects: dict[tuple[str, str], float] = field(default_factory=dict)
    threshold: float = DEFAULT_GROUP_THRESHOLD
    log_lr_by_system: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    mismatches: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    def systems_json(self, a: str, b: str) -> dict[str, Any]:
        """``{"lr_by_system": {...}, "mismatches": {...}}`` of one pair (empty without lineage data)."""
        by = self.log_lr_by_system.get((a, b))
        if by is None:
            return {}
        return {
            "lr_by_system": {k: json_number(safe_exp(v)) for k, v in by.items()},
            "mismatches": dict(self.mismatches.get((a, b), {})),
        }


def group_links(ids: Sequence[str], links: Iterable[tuple[int, int]]) -> list[list[str]]:
    """The grouping rule: groups are the connected sets (two or more) of the graph of ``links``
    (index pairs into ``ids``: the pairs whose direct-match LR reaches the threshold), each in the
    order of ``ids``, the groups by their first member."""
    n = len(ids)
    pairs = list(links)
    graph = coo_matrix((np.ones(len(pairs)), ([i for i, _ in pairs], [j for _, j in pairs])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    comps: dict[int, list[int]] = {}
    for k in range(n):
        comps.setdefault(int(label[k]), []).append(k)
    groups = sorted((g for g in comps.values() if len(g) > 1), key=lambda g: g[0])
    return [[ids[k] for k in g] for g in groups]


def group_remains(problem: DVIProblem, *, threshold: float = DEFAULT_GROUP_THRESHOLD) -> RemainsMatching:
    """Group the remains that are fragments of one person.

    Rule (:func:`group_links`): two remains are linked when their direct-match LR is at least
    ``threshold``; groups are the connected sets of linked remains (two or
    more). A pair inside a group whose LR is below 1 (the data speak against
    it, e.g. an exclusion) is reported in ``conflicts``: single linkage can
    chain, and such a group needs a reviewer. Every pair's LR is computed
    (``log_lr``): a case of ``match-remains`` size.
    """
    from opendvi.screening import screen_remains  # numba: loaded when first used

    ids = list(problem.remains)
    samples = problem.remains
    log_t = math.log(threshold)
    lineage = problem.case.lineage if problem.case.lineage is not None and problem.case.lineage.systems else None
    res = screen_remains(list(samples.values()), problem.markers, theta=problem.theta, lineage=lineage)
    lrs: dict[tuple[str, str], float] = {}
    by_system: dict[tuple[str, str], dict[str, float]] = {}
    mism: dict[tuple[str, str], dict[str, int]] = {}
    links: list[tuple[int, int]] = []
    for k, (i, j, v) in enumerate(zip(res.i.tolist(), res.j.tolist(), res.log_lr.tolist(), strict=True)):
        key = (ids[i], ids[j])
        lrs[key] = v
        if lineage is not None:
            by_system[key], mism[key] = res.systems_of(k)
        if v >= log_t:
            links.append((i, j))
    groups = group_links(ids, links)
    conflicts = []
    for g in groups:
        for i, a in enumerate(g):
            for b in g[i + 1 :]:
                v = lrs[(a, b)]
                if v < 0:
                    conflicts.append((a, b, v))
    pe: dict[tuple[str, str], float] = {}
    for mp, sample in problem.personal_effects.items():
        for r in ids:
            if mp in problem.admissible[r]:
                pe[(r, mp)] = direct_match_log_lr(samples[r], sample, problem.markers, theta=problem.theta)
    return RemainsMatching(lrs, groups, conflicts, pe, threshold, by_system, mism)


def consensus_profile(samples: Iterable[Sample], *, id: str | None = None) -> tuple[Sample, list[str]]:
    """One profile for a group of fragments of one person.

    Per marker: the alleles seen in any fragment. Two alleles give the
    heterozygote; one allele gives the homozygote ``(a, a)`` when some
    fragment reports it as a homozygote, else the one-allele form ``(a,)``
    (its partner may have dropped out everywhere); more than two alleles is a
    conflict: the marker is left out and reported. The consensus' dropout
    probability is the smallest of the fragments' (conservative: it
    understates the evidence for a homozygote). The sex is the fragments'
    common sex. Returns the profile and notes on conflicts.
    """
    group = list(samples)
    notes: list[str] = []
    sexes = {s.sex for s in group if s.sex is not None}
    if len(sexes) > 1:
        notes.append(f"fragments disagree on sex ({', '.join(sorted(sexes))}); sex left unknown")
    names: list[str] = []
    for s in group:
        for mname in s.genotypes:
            if mname not in names:
                names.append(mname)
    gts: dict[str, Genotype] = {}
    for mname in names:
        seen = [s.genotypes[mname] for s in group if s.genotypes.get(mname)]
        alleles = sorted({a for gt in seen for a in gt})
        if len(alleles) > 2:
            notes.append(f"marker {mname}: alleles {', '.join(alleles)} in the fragments; left out")
        elif len(alleles) == 2:
            gts[mname] = (alleles[0], alleles[1])
        elif any(len(gt) == 2 for gt in seen):
            gts[mname] = (alleles[0], alleles[0])
        else:
            gts[mname] = (alleles[0],)
    dropout = min((s.dropout for s in group), default=0.0)
    sex = next(iter(sexes)) if len(sexes) == 1 else None
    return Sample(id or "+".join(s.id for s in group), sex=sex, genotypes=gts, dropout=dropout), notes
