"""Pairwise likelihood ratios of every remains against every missing person.

LR(V, M) = P(references, g_V | V is M) / P(references, g_V | V unrelated),
marker by marker (``likelihood.md``); the other missing persons of M's
family stay untyped. Beside each LR: the exclusion count, the number of
markers at which V = M is impossible once the mutation models are removed
(a Mendelian incompatibility).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from opendvi.core.lineage_lr import combined_log_lr
from opendvi.core.rules import counts_as_exclusion, lr_is_one, safe_exp
from opendvi.dvi.problem import DVIProblem


@dataclass
class PairwiseResult:
    """``log_lr[V][M]`` (natural log; ``-inf`` for an LR of 0) and
    ``exclusions[V][M]`` for every admissible pairing; a pairing that is not
    admissible is absent (``None`` from :meth:`lr`)."""

    remains: tuple[str, ...]
    missing: tuple[str, ...]
    log_lr: dict[str, dict[str, float]] = field(default_factory=dict)
    exclusions: dict[str, dict[str, int]] = field(default_factory=dict)
    per_marker: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_pairs(cls, problem: DVIProblem, pairs: Mapping[tuple[str, str], tuple[float, int]]) -> PairwiseResult:
        """The result of given pairings' numbers (a screening's, say):
        ``pairs[(remains, missing)] = (log LR, exclusions)``. Only the
        pairings admissible in ``problem`` are kept (in the order of
        ``pairs``); every remains of ``problem`` has a row, empty or not."""
        out = cls(remains=tuple(problem.remains), missing=tuple(problem.missing))
        for rid in problem.remains:
            out.log_lr[rid], out.exclusions[rid] = {}, {}
        for (rid, mp), (v, x) in pairs.items():
            if rid in out.log_lr and mp in problem.admissible[rid]:
                out.log_lr[rid][mp] = v
                out.exclusions[rid][mp] = x
        return out

    def lr(self, rid: str, mp: str) -> float | None:
        v = self.log_lr.get(rid, {}).get(mp)
        if v is None:
            return None
        return safe_exp(v)

    def admissible(self, rid: str, mp: str) -> bool:
        return mp in self.log_lr.get(rid, {})

    def pairs(self) -> Iterable[tuple[str, str, float]]:
        for rid, row in self.log_lr.items():
            for mp, v in row.items():
                yield rid, mp, v


#: Build a missing person's genotype table (one elimination for every
#: genotype) when at least this many distinct genotypes will be placed on it
#: at a marker; below it, direct evaluations batched over markers are cheaper.
TABLE_MIN_GENOTYPES = 3


def pairwise_marker_log_lr(problem: DVIProblem, rid: str, mp: str) -> tuple[dict[str, float], int]:
    """Per-marker ln LR(V = M) and the exclusion count of one pairing.

    The rules of :mod:`opendvi.core.rules`: a marker untyped in V or at which
    no reference is typed contributes LR 1; a marker counts as an exclusion
    when the data with V = M are impossible there without mutation, which
    includes every marker at which the references alone are inconsistent
    without mutation (``problem.inconsistent``), V typed there or not."""
    fid = problem.family_of(mp)
    r = problem.remains[rid]
    cache = problem.cache
    typed = [
        m for m in problem.markers if not lr_is_one(cache.references_typed(fid, m), bool(r.genotypes.get(m.name)))
    ]
    items = [(m, ((mp, r.genotypes[m.name], r.dropout),)) for m in typed]
    nums = cache.family_markers(fid, items)
    out: dict[str, float] = {m.name: 0.0 for m in problem.markers}
    inconsistent = problem.inconsistent.get(fid, frozenset())
    excl = sum(counts_as_exclusion(True, m.name not in inconsistent) for m in problem.markers)
    mut_items = []
    for (m, _), num in zip(items, nums, strict=True):
        gt = r.genotypes[m.name]
        den = cache.unrelated_marker(fid, m, gt, r.dropout, r.sex)
        out[m.name] = -math.inf if num == -math.inf else num - den
        if m.name in inconsistent:
            continue  # counted above
        if m.has_mutation:
            mut_items.append((m, ((mp, gt, r.dropout),)))
        elif counts_as_exclusion(num != -math.inf, True):
            excl += 1
    if mut_items:
        nums0 = cache.family_markers(fid, mut_items, mutation=False)
        excl += sum(counts_as_exclusion(v != -math.inf, True) for v in nums0)
    return out, excl


def _prepare_tables(problem: DVIProblem) -> None:
    """Genotype tables for the (family, marker, missing person) that many
    distinct genotypes will meet."""
    for fid, fam in problem.families.items():
        for mp in fam.missing:
            pairing = [problem.remains[r] for r in problem.remains if mp in problem.admissible[r]]
            for m in problem.markers:
                distinct = {(s.genotypes[m.name], s.dropout) for s in pairing if s.genotypes.get(m.name)}
                if len(distinct) >= TABLE_MIN_GENOTYPES:
                    problem.cache.prepare_table(fid, m, mp)
                    if m.has_mutation:
                        problem.cache.prepare_table(fid, m, mp, mutation=False)


def pairwise_lr(problem: DVIProblem, *, keep_markers: bool = False) -> PairwiseResult:
    """LR and exclusion count of every admissible pairing of ``problem``."""
    _prepare_tables(problem)
    res = PairwiseResult(remains=tuple(problem.remains), missing=tuple(problem.missing))
    for rid in problem.remains:
        res.log_lr[rid] = {}
        res.exclusions[rid] = {}
        for mp in problem.admissible[rid]:
            per, excl = pairwise_marker_log_lr(problem, rid, mp)
            vals = list(per.values())
            total = -math.inf if any(v == -math.inf for v in vals) else math.fsum(vals)
            res.log_lr[rid][mp] = total
            res.exclusions[rid][mp] = excl
            if keep_markers:
                res.per_marker[(rid, mp)] = per
    return res


def combined_pairwise_lr(problem: DVIProblem) -> PairwiseResult:
    """The pairwise LRs of ``problem`` with each finite autosomal LR times the pairing's lineage LR:
    the combined LR (``lineage.md``); the autosomal ones where the case has no lineage data."""
    pw = pairwise_lr(problem)
    if problem.case.lineage is None:
        return pw
    factors = problem.lineage_factors
    combined = {rid: {mp: v if v == -math.inf else
                      combined_log_lr({"autosomal": v, "lineage": factors.pair_log_lr(rid, mp)})
                      for mp, v in row.items()}
                for rid, row in pw.log_lr.items()}
    return replace(pw, log_lr=combined)
