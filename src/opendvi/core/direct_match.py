"""The direct-match LR of two samples (same person vs two unrelated people):
the one home of the rule, used by ``opendvi.dvi.remains`` (``match-remains``)
and ``opendvi.screening`` (remains against remains at national scale).

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
from collections.abc import Sequence

import numpy as np

from opendvi.core.case import Sample
from opendvi.core.lineage import CaseLineage
from opendvi.core.lineage_lr import LineageLR
from opendvi.core.lineage_mt import mt_differences, range_intersection, range_length, range_text
from opendvi.core.markers import Marker
from opendvi.core.observation import genotype_observation, hemizygous_observation
from opendvi.core.profiles import Genotype

__all__ = ["direct_match_log_lr", "lineage_direct_match", "marker_direct_log_lr", "marker_direct_table"]


def marker_direct_table(
    marker: Marker,
    observations: Sequence[tuple[Genotype, float]],
    *,
    theta: float = 0.0,
    hemizygous: bool = False,
) -> np.ndarray:
    """ln of the direct-match LR at one marker of every pair of ``observations`` ((genotype,
    dropout) each; a matrix, rows and columns in their order; ``hemizygous``: a male at an X marker).
    The sum runs over the genotypes of the alleles observed in any of them and one allele for all
    the others (exact: an allele not observed enters the dropout model only as dropped out)."""
    observed = sorted({a for gt, _d in observations for a in gt})
    idx = {a: i for i, a in enumerate(observed)}
    p = np.array([marker.p[marker.index[a]] for a in observed] + [0.0])
    p[-1] = max(0.0, 1.0 - float(p[:-1].sum()))
    k = len(p)
    if hemizygous:
        g = np.arange(k)
        pg = p.copy()
        o = np.array([hemizygous_observation([idx[a] for a in gt], d, g) for gt, d in observations])
    else:
        i1, i2 = np.triu_indices(k)
        pg = np.where(i1 == i2, p[i1] * (theta + (1.0 - theta) * p[i1]), 2.0 * (1.0 - theta) * p[i1] * p[i2])
        o = np.array([genotype_observation([idx[a] for a in gt], d, i1, i2) for gt, d in observations])
    o = o.reshape(len(observations), len(pg))
    w = o * pg
    num = w @ o.T
    den = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(num) - np.log(den)[:, None] - np.log(den)[None, :]
    out[num == 0.0] = -math.inf
    return out


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
    """ln of the direct-match LR at one marker (``hemizygous``: a male at an X marker):
    :func:`marker_direct_table` of the two observations."""
    return float(marker_direct_table(marker, [(gt1, d1), (gt2, d2)], theta=theta, hemizygous=hemizygous)[0, 1])


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
