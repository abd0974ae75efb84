"""Remains-to-remains matching: fragments of one person, consensus profiles,
and direct matching against a missing person's own sample (personal effects).

Direct-match LR of two profiles o1, o2 (same person vs two unrelated people),
marker by marker, summing over the true genotype g (with dropout, exactly)::

    LR = sum_g P(o1 | g) P(o2 | g) P(g) / (P(o1) P(o2)),   P(o) = sum_g P(o | g) P(g)

P(g) is Hardy-Weinberg, or with theta the Balding-Nichols probability of
one person's genotype (a/a: p_a (theta + (1 - theta) p_a); a/b: 2 (1 - theta)
p_a p_b); P(o | g) is the dropout model of ``likelihood.md``. A marker typed
in only one of the two contributes 1.

Lineage markers (``lineage.md``, ``docs/lineage.md``): one person carries one
Y haplotype and one mtDNA haplotype (no mutation within a person), so two
remains that are the same person agree exactly at every Y locus typed in both
and at every mtDNA site of their common range (a heteroplasmy matches either
of its bases). Then LR_Y = 1 / f(h) over the Y loci compared and LR_mt =
1 / f(h) over the common range (with a heteroplasmy on one side, the larger
of the two haplotypes' frequencies: the smaller LR). Any difference, or a Y
haplotype beside a female, excludes the same-person hypothesis (LR 0). The
combined direct-match LR is the product of the systems' LRs.

>>> from opendvi.core.case import Sample
>>> from opendvi.core.markers import make_marker
>>> m = make_marker("M", ["a", "b", "c"], [0.1, 0.2, 0.7])
>>> s1 = Sample("A", genotypes={"M": ("a", "b")})
>>> round(math.exp(direct_match_log_lr(s1, Sample("B", genotypes={"M": ("a", "b")}), [m])), 9)  # 1 / (2 * 0.1 * 0.2)
25.0
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
from opendvi.core.lineage import CaseLineage
from opendvi.core.lineage_lr import LineageLR, combined_log_lr
from opendvi.core.lineage_mt import mt_differences, range_intersection, range_length, range_text
from opendvi.core.markers import Marker
from opendvi.core.observation import genotype_observation, hemizygous_observation
from opendvi.core.profiles import Genotype
from opendvi.core.rules import json_number, safe_exp
from opendvi.dvi.problem import DVIProblem

DEFAULT_GROUP_THRESHOLD = 1e4


def marker_direct_log_lr(
    marker: Marker,
    gt1: Genotype,
    d1: float,
    gt2: Genotype,
    d2: float,
    *,
    theta: float = 0.0,
    hemizygous: bool = False,
) -> float:
    """ln of the direct-match LR at one marker (``hemizygous``: a male at an X marker)."""
    observed = sorted({a for a in (*gt1, *gt2)})
    idx = {a: i for i, a in enumerate(observed)}
    p = np.array([marker.p[marker.index[a]] for a in observed] + [0.0])
    p[-1] = max(0.0, 1.0 - float(p[:-1].sum()))
    k = len(p)
    if hemizygous:
        g = np.arange(k)
        pg = p.copy()
        o1 = hemizygous_observation([idx[a] for a in gt1], d1, g)
        o2 = hemizygous_observation([idx[a] for a in gt2], d2, g)
    else:
        i1, i2 = np.triu_indices(k)
        pg = np.where(i1 == i2, p[i1] * (theta + (1.0 - theta) * p[i1]), 2.0 * (1.0 - theta) * p[i1] * p[i2])
        o1 = genotype_observation([idx[a] for a in gt1], d1, i1, i2)
        o2 = genotype_observation([idx[a] for a in gt2], d2, i1, i2)
    num = float(np.sum(o1 * o2 * pg))
    if num == 0.0:
        return -math.inf
    return math.log(num) - math.log(float(np.sum(o1 * pg))) - math.log(float(np.sum(o2 * pg)))


def direct_match_log_lr(
    a: Sample, b: Sample, markers: Sequence[Marker], *, theta: float = 0.0, per_marker: dict[str, float] | None = None
) -> float:
    """ln LR(a and b are the same person : two unrelated people)."""
    if a.sex is not None and b.sex is not None and a.sex != b.sex:
        return -math.inf
    sex = a.sex or b.sex
    total = 0.0
    for m in markers:
        g1, g2 = a.genotypes.get(m.name), b.genotypes.get(m.name)
        if not g1 or not g2:
            continue
        if m.is_x and sex is None:
            continue
        v = marker_direct_log_lr(m, g1, a.dropout, g2, b.dropout, theta=theta, hemizygous=m.is_x and sex == "M")
        if per_marker is not None:
            per_marker[m.name] = v
        if v == -math.inf:
            return -math.inf
        total += v
    return total


def lineage_direct_match(
    lineage: CaseLineage | None, a: str, b: str, *, sex_a: str | None = None, sex_b: str | None = None
) -> dict[str, LineageLR]:
    """The lineage LRs (Y, mt: those of the case) of remains ``a`` and ``b``
    being the same person (module docstring); ``reference`` names ``b``.
    A system typed in only one of the two (or with nothing in common) has LR 1."""
    out: dict[str, LineageLR] = {}
    if lineage is None:
        return out
    if lineage.y is not None:
        ya, yb = lineage.y_of(a), lineage.y_of(b)
        if (ya and sex_b == "F") or (yb and sex_a == "F"):
            who = b if ya else a
            out["Y"] = LineageLR("Y", -math.inf, reference=b, note=f"a Y haplotype beside {who}, who is female")
        elif not ya or not yb:
            out["Y"] = LineageLR("Y", 0.0, note="not typed for Y in both")
        else:
            common = [m.name for m in lineage.y.markers if m.name in ya and m.name in yb]
            diffs = tuple(f"{k}: {','.join(ya[k])} vs {','.join(yb[k])}" for k in common if ya[k] != yb[k])
            db_loci = set(lineage.y.database.loci)
            loci = tuple(k for k in common if k in db_loci)
            if diffs:
                out["Y"] = LineageLR("Y", -math.inf, reference=b, compared=tuple(common), mismatches=len(diffs),
                                     differences=diffs, log_numerator=-math.inf)
            elif not loci:
                out["Y"] = LineageLR("Y", 0.0, reference=b, compared=tuple(common),
                                     note="no Y locus of the database typed in both")
            else:
                freq = lineage.y.database.frequency(ya, loci)
                out["Y"] = LineageLR("Y", -math.log(freq.frequency), reference=b, compared=loci, frequency=freq)
    if lineage.mt is not None:
        ma, mb = lineage.mt_of(a), lineage.mt_of(b)
        if ma is None or mb is None:
            out["mt"] = LineageLR("mt", 0.0, note="not typed for mtDNA in both")
        else:
            common_r = range_intersection(ma.range, mb.range)
            if range_length(common_r) == 0:
                out["mt"] = LineageLR("mt", 0.0, reference=b, note="no typed range in common")
            else:
                sites = mt_differences(ma, mb, common_r)
                over = (range_text(common_r),)
                if sites:
                    out["mt"] = LineageLR("mt", -math.inf, reference=b, compared=over, mismatches=len(sites),
                                          differences=tuple(f"{p}.{i}" if i else str(p) for p, i in sites),
                                          log_numerator=-math.inf)
                else:
                    fa = lineage.mt.database.frequency(ma, common_r)
                    fb = lineage.mt.database.frequency(mb, common_r)
                    freq = fa if fa.frequency >= fb.frequency else fb
                    out["mt"] = LineageLR("mt", -math.log(freq.frequency), reference=b, compared=over,
                                          frequency=freq)
    return out


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


def group_remains(problem: DVIProblem, *, threshold: float = DEFAULT_GROUP_THRESHOLD) -> RemainsMatching:
    """Group the remains that are fragments of one person.

    Rule: two remains are linked when their direct-match LR is at least
    ``threshold``; groups are the connected sets of linked remains (two or
    more). A pair inside a group whose LR is below 1 (the data speak against
    it, e.g. an exclusion) is reported in ``conflicts``: single linkage can
    chain, and such a group needs a reviewer.
    """
    ids = list(problem.remains)
    samples = problem.remains
    log_t = math.log(threshold)
    lrs: dict[tuple[str, str], float] = {}
    pos = {r: i for i, r in enumerate(ids)}
    links: list[tuple[int, int]] = []
    lineage = problem.case.lineage if problem.case.lineage is not None and problem.case.lineage.systems else None
    by_system: dict[tuple[str, str], dict[str, float]] = {}
    mism: dict[tuple[str, str], dict[str, int]] = {}
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            v = direct_match_log_lr(samples[a], samples[b], problem.markers, theta=problem.theta)
            if lineage is not None:
                lin = lineage_direct_match(lineage, a, b, sex_a=samples[a].sex, sex_b=samples[b].sex)
                by = {"autosomal": v} if problem.markers else {}
                by.update({k: d.log_lr for k, d in lin.items()})
                by_system[(a, b)] = by
                mism[(a, b)] = {k: d.mismatches for k, d in lin.items()}
                v = -math.inf if v == -math.inf else combined_log_lr(by)
            lrs[(a, b)] = v
            if v >= log_t:
                links.append((pos[a], pos[b]))
    n = len(ids)
    graph = coo_matrix((np.ones(len(links)), ([i for i, _ in links], [j for _, j in links])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    comps: dict[int, list[str]] = {}
    for r in ids:
        comps.setdefault(int(label[pos[r]]), []).append(r)
    groups = [g for g in comps.values() if len(g) > 1]
    groups.sort(key=lambda g: ids.index(g[0]))
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
