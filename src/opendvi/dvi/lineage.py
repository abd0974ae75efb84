"""Lineage evidence of a case: per remains x missing person, the LR of each
system and the combined LR (``shared/design/lineage.md``, ``docs/lineage.md``).

    LR = LR_autosomal x LR_X x LR_Y x LR_mt

The systems are taken as independent given the pedigree. The autosomal (and
X) part is :func:`opendvi.dvi.pairwise.pairwise_lr`; the lineage parts are
:func:`opendvi.core.lineage_lr.y_lineage_lr` and
:func:`~opendvi.core.lineage_lr.mt_lineage_lr`. Every result keeps each
system's LR beside the product, the mismatches of each lineage system, and
the lineage details (nearest reference, links, loci or range compared, f(h)
with its estimator and the database's SHA-256).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opendvi.core.case import Case
from opendvi.core.errors import LikelihoodError
from opendvi.core.lineage import CaseLineage
from opendvi.core.lineage_lr import LineageLR, YLineageTable, combined_log_lr, mt_lineage_lr, y_lineage_table
from opendvi.dvi.errors import DVIError
from opendvi.dvi.pairwise import PairwiseResult, pairwise_lr
from opendvi.dvi.problem import DVIProblem, safe_exp

#: The systems in output order.
SYSTEM_ORDER = ("autosomal", "X", "Y", "mt")


@dataclass
class LineagePairwise:
    """Per admissible pairing: ``log_lr_by_system[V][M][system]`` (natural
    log), ``log_lr[V][M]`` (the combined LR), ``mismatches[V][M][system]``
    (lineage systems) and ``details[(V, M)][system]``."""

    remains: tuple[str, ...]
    missing: tuple[str, ...]
    systems: tuple[str, ...]
    log_lr: dict[str, dict[str, float]] = field(default_factory=dict)
    log_lr_by_system: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    mismatches: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    details: dict[tuple[str, str], dict[str, LineageLR]] = field(default_factory=dict)
    autosomal: PairwiseResult | None = None

    def lr(self, rid: str, mp: str) -> float | None:
        v = self.log_lr.get(rid, {}).get(mp)
        return None if v is None else safe_exp(v)

    def lr_by_system(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{"V1": {"M1": {"autosomal": x, "Y": y, "mt": z}}}`` (LRs, not logs)."""
        return {
            rid: {mp: {s: safe_exp(v) for s, v in by.items()} for mp, by in row.items()}
            for rid, row in self.log_lr_by_system.items()
        }

    def to_json(self) -> dict[str, Any]:
        """The ``lineage.md`` output fields: ``lr`` (combined), ``lr_by_system``
        and ``mismatches``, JSON-ready (an infinite LR as the string "inf")."""

        def num(x: float) -> float | str:
            return "inf" if x == math.inf else x

        return {
            "lr": {rid: {mp: num(safe_exp(v)) for mp, v in row.items()} for rid, row in self.log_lr.items()},
            "lr_by_system": {
                rid: {mp: {s: num(v) for s, v in by.items()} for mp, by in row.items()}
                for rid, row in self.lr_by_system().items()
            },
            "mismatches": self.mismatches,
        }

    def pairs(self) -> Iterable[tuple[str, str, float]]:
        for rid, row in self.log_lr.items():
            for mp, v in row.items():
                yield rid, mp, v


def _split_autosomal(problem: DVIProblem, res: PairwiseResult, rid: str, mp: str) -> dict[str, float]:
    per = res.per_marker[(rid, mp)]
    out: dict[str, float] = {}
    for chrom, name in (("autosomal", "autosomal"), ("X", "X")):
        vals = [per[m.name] for m in problem.markers if m.chromosome == chrom and m.name in per]
        if any(m.chromosome == chrom for m in problem.markers):
            out[name] = -math.inf if any(v == -math.inf for v in vals) else math.fsum(vals)
    return out


def lineage_lrs(
    problem: DVIProblem, rid: str, mp: str, *, tables: dict[str, YLineageTable] | None = None
) -> dict[str, LineageLR]:
    """The lineage LRs (Y, mt; those present in the case) of remains ``rid`` as ``mp``.

    ``tables`` (optional) keeps each missing person's Y table between calls.
    """
    lin: CaseLineage | None = problem.case.lineage
    if lin is None:
        return {}
    fid = problem.family_of(mp)
    fam = problem.families[fid]
    ids = fam.pedigree.ids
    out: dict[str, LineageLR] = {}
    try:
        if lin.y is not None:
            v = lin.y_of(rid)
            if v and fam.sex_of(mp) == "F":
                out["Y"] = LineageLR(
                    "Y", -math.inf, note=f"remains {rid} carry a Y haplotype; missing person {mp} is female"
                )
            else:
                table = tables.get(mp) if tables is not None else None
                if table is None:
                    refs = {pid: h for pid in ids if (h := lin.y_of(pid))}
                    table = y_lineage_table(fam.pedigree, mp, refs, lin.y)
                    if tables is not None:
                        tables[mp] = table
                out["Y"] = table.lr(v)
        if lin.mt is not None:
            refs_mt = {pid: hm for pid in ids if (hm := lin.mt_of(pid)) is not None}
            out["mt"] = mt_lineage_lr(fam.pedigree, mp, refs_mt, lin.mt_of(rid), lin.mt)
    except LikelihoodError as exc:
        raise DVIError(f"family {fid}: {exc}") from None
    return out


def lineage_pairwise(source: Case | DVIProblem, *, autosomal: PairwiseResult | None = None) -> LineagePairwise:
    """Every admissible pairing's LR by system, lineage mismatches and combined LR.

    ``autosomal``: a :func:`pairwise_lr` result computed with
    ``keep_markers=True`` (computed here when not given).
    """
    problem = source if isinstance(source, DVIProblem) else DVIProblem(source)
    res = autosomal if autosomal is not None else pairwise_lr(problem, keep_markers=True)
    lin = problem.case.lineage
    systems = tuple(
        s
        for s in SYSTEM_ORDER
        if (s == "autosomal" and any(m.chromosome == "autosomal" for m in problem.markers))
        or (s == "X" and any(m.is_x for m in problem.markers))
        or (s == "Y" and lin is not None and lin.y is not None)
        or (s == "mt" and lin is not None and lin.mt is not None)
    )
    out = LineagePairwise(remains=res.remains, missing=res.missing, systems=systems, autosomal=res)
    tables: dict[str, YLineageTable] = {}
    for rid in problem.remains:
        out.log_lr[rid] = {}
        out.log_lr_by_system[rid] = {}
        out.mismatches[rid] = {}
        for mp in problem.admissible[rid]:
            if (rid, mp) in res.per_marker:
                by = _split_autosomal(problem, res, rid, mp)
            else:
                by = {"autosomal": res.log_lr[rid][mp]}
            details = lineage_lrs(problem, rid, mp, tables=tables)
            for s, d in details.items():
                by[s] = d.log_lr
            out.log_lr_by_system[rid][mp] = by
            out.mismatches[rid][mp] = {s: d.mismatches for s, d in details.items()}
            out.details[(rid, mp)] = details
            out.log_lr[rid][mp] = combined_log_lr(by)
    return out


def lineage_detail_json(d: LineageLR) -> dict[str, Any]:
    """A JSON-ready description of one lineage LR (for reports and outputs)."""
    freq = d.frequency
    return {
        "system": d.system,
        "lr": d.lr,
        "log10_lr": d.log_lr / math.log(10) if d.log_lr != -math.inf else "-inf",
        "reference": d.reference,
        "links": d.links,
        "compared": list(d.compared),
        "mismatches": d.mismatches,
        "differences": list(d.differences),
        "frequency": None
        if freq is None
        else {
            "f": freq.frequency,
            "x": freq.x,
            "n": freq.n,
            "estimator": freq.estimator,
            "database_sha256": freq.digest,
            "over": freq.over,
        },
        "note": d.note,
    }
