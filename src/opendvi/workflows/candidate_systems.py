"""Each system's LR of a matching run's candidate (``docs/lineage.md``, ``docs/service.md``).

A case with lineage evidence (Y-STR, mtDNA) is screened on the combined LR, autosomal x X x Y x mt.
For each kept pairing the service stores, beside that product, each system's log10 LR, the
mismatches of each lineage system and the details of each lineage LR (the reference of the line it
rests on, the links, what was compared, f(h) with its estimator and the database's SHA-256): the
numbers of ``opendvi pairwise`` (:func:`opendvi.dvi.lineage.lineage_lrs`, the autosomal and X parts
the sums of the run's per-marker LRs by chromosome).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from opendvi.core.lineage_lr import YLineageTable
from opendvi.dvi import DVIProblem
from opendvi.dvi.lineage import SYSTEM_ORDER, lineage_detail_json, lineage_lrs

__all__ = ["candidate_systems"]

LN10 = math.log(10.0)


def _sum10(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else math.fsum(v for v in values if v is not None)


def candidate_systems(problem: DVIProblem, rid: str, mp: str, per_marker: Mapping[str, Any],
                      tables: dict[str, YLineageTable]) -> dict[str, Any] | None:
    """``{"log10_lr": {system: log10 LR or None (LR 0)}, "mismatches": {"Y": n, "mt": n},
    "details": {"Y": {...}, "mt": {...}}}`` of remains ``rid`` as ``mp``; None without lineage data.
    ``per_marker``: the candidate's ``{"log10_lr": {marker: log10 LR}}``; ``tables`` keeps each
    missing person's Y table between calls."""
    if problem.case.lineage is None:
        return None
    stored = per_marker.get("log10_lr", {})
    by: dict[str, float | None] = {}
    for chrom in ("autosomal", "X"):
        names = [m.name for m in problem.markers if m.chromosome == chrom]
        if names:
            by[chrom] = _sum10([stored.get(n, 0.0) for n in names])
    details = lineage_lrs(problem, rid, mp, tables=tables)
    for system, d in details.items():
        by[system] = None if d.log_lr == -math.inf else d.log_lr / LN10
    order = [s for s in SYSTEM_ORDER if s in by]
    return {"log10_lr": {s: by[s] for s in order},
            "mismatches": {s: d.mismatches for s, d in details.items()},
            "details": {s: {k: v for k, v in lineage_detail_json(d).items() if k != "lr"}
                        for s, d in details.items()}}
