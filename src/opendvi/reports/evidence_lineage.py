"""The lineage part of a match's evidence (Y-STR, mtDNA; ``docs/lineage.md``, ``docs/reports.md``).

:func:`lineage_evidence` gives the match review page and the identification report
(``templates/_lineage.html``, shown after the allele table) what they show of the lineage systems:

* each system's LR beside the combined one, and each lineage LR's details (the reference of the
  line it rests on, the links, what was compared, f(h) with x of N, the estimator and the database's
  SHA-256): the candidate row the run stored (``candidates.systems``), never recomputed for display;
* the Y haplotypes of the remains and of every typed reference on the missing person's paternal line
  (males joined to him by father-son links), side by side locus by locus, each value that differs from
  the remains' marked with the number of repeats; the mtDNA haplotypes of the remains and of the
  typed references on the maternal line (range, variants), site by site, each difference marked.

The haplotypes are those of the profile versions the run read (the remains' version the candidate
names; each reference's latest version typed before the run started). Codes and barcodes only: no
name of a person is ever read here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opendvi.core.errors import OpenDVIError
from opendvi.core.lineage import NULL_ALLELE, y_allele_class
from opendvi.core.lineage_mt import IUPAC, MtHaplotype, in_range, range_intersection, range_text, rcrs, variant_text
from opendvi.core.lineage_tree import mt_lineage, y_lineage
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.reports.numbers import format_lr

__all__ = ["lineage_evidence"]

#: the systems in the order the page lists them
ORDER = ("autosomal", "X", "Y", "mt")


def _steps(a: str, b: str) -> int | None:
    """Repeats between two values of a single-copy locus (None: not a single-step distance, e.g. another
    microvariant class, a null allele or a multi-copy locus)."""
    if "," in a or "," in b or NULL_ALLELE in (a, b):
        return None
    try:
        ca, na = y_allele_class(a)
        cb, nb = y_allele_class(b)
    except (AssertionError, ValueError):
        return None
    return abs(na - nb) if ca == cb else None


def _pedigree(rows: Sequence[Mapping[str, Any]]) -> Pedigree | None:
    try:
        return Pedigree([Individual(r["id"], r["father"], r["mother"], r["sex"]) for r in rows])
    except OpenDVIError:
        return None


def _column(ref: Mapping[str, Any], links: int, nearest: str | None) -> dict[str, Any]:
    return {"barcode": ref["barcode"], "member": ref["member"], "relationship": ref.get("relationship"),
            "links": links, "nearest": ref["member"] == nearest}


def _y_section(remains_y: Mapping[str, str] | None, refs: list[tuple[Mapping[str, Any], int]],
               loci: Sequence[str], detail: Mapping[str, Any] | None) -> dict[str, Any]:
    nearest = detail.get("reference") if detail else None
    columns = [_column(ref, k, nearest) for ref, k in refs]
    values = [ref["haplotypes"]["Y"] for ref, _k in refs]
    typed = [x for x in loci if (remains_y and x in remains_y) or any(x in v for v in values)]
    rows = []
    for locus in typed:
        mine = (remains_y or {}).get(locus)
        cells = []
        for v in values:
            theirs = v.get(locus)
            differs = mine is not None and theirs is not None and theirs != mine
            cells.append({"value": theirs, "differs": differs,
                          "steps": _steps(mine, theirs) if differs and mine and theirs else None})
        rows.append({"locus": locus, "remains": mine, "cells": cells,
                     "n_differ": sum(1 for c in cells if c["differs"])})
    return {"columns": columns, "rows": rows, "remains_typed": bool(remains_y),
            "n_differ": sum(1 for r in rows if r["n_differ"])}


def _mt_cell(h: MtHaplotype | None, site: tuple[int, int]) -> dict[str, Any]:
    if h is None or not in_range(site[0], h.range):
        return {"typed": False, "text": None, "heteroplasmy": None}
    base = h.sites.get(site)
    if base is None:  # the rCRS base (no insertion at an insertion site)
        ref = "-" if site[1] else rcrs()[site[0] - 1]
        return {"typed": True, "text": None, "rcrs": ref, "heteroplasmy": None}
    het = "/".join(sorted(IUPAC[base])) if len(IUPAC[base]) > 1 else None
    return {"typed": True, "text": variant_text(site, base), "heteroplasmy": het}


def _mt_section(remains_mt: Mapping[str, Any] | None, refs: list[tuple[Mapping[str, Any], int]],
                detail: Mapping[str, Any] | None) -> dict[str, Any]:
    nearest = detail.get("reference") if detail else None
    columns = [_column(ref, k, nearest) for ref, k in refs]
    try:
        mine = MtHaplotype.parse(remains_mt["range"], remains_mt.get("variants", [])) if remains_mt else None
        theirs = [MtHaplotype.parse(ref["haplotypes"]["mt"]["range"], ref["haplotypes"]["mt"].get("variants", []))
                  for ref, _k in refs]
    except OpenDVIError:
        return {"columns": columns, "rows": [], "remains_typed": bool(remains_mt), "error": True}
    for col, h in zip(columns, theirs, strict=True):
        col["range"] = h.range_text
        col["common"] = range_text(range_intersection(h.range, mine.range)) if mine is not None else None
    sites = sorted({s for h in [mine, *theirs] if h is not None for s in h.sites}, key=lambda s: (s[0] < 16000, s))
    rows = []
    for site in sites:
        me = _mt_cell(mine, site)
        cells = []
        for h in theirs:
            c = _mt_cell(h, site)
            c["differs"] = bool(me["typed"] and c["typed"] and mine is not None
                                and not (mine.base_at(site) & h.base_at(site)))
            cells.append(c)
        rows.append({"site": _site_text(site), "remains": me, "cells": cells,
                     "n_differ": sum(1 for c in cells if c["differs"])})
    return {"columns": columns, "rows": rows, "remains_typed": mine is not None,
            "range": mine.range_text if mine is not None else None,
            "n_differ": sum(1 for r in rows if r["n_differ"]), "error": False}


def _site_text(site: tuple[int, int]) -> str:
    return f"{site[0]}.{site[1]}" if site[1] else str(site[0])


def _on_line(pedigree: Pedigree | None, mp: str, references: Sequence[Mapping[str, Any]], system: str,
             ) -> list[tuple[Mapping[str, Any], int]]:
    """The references typed for ``system`` on the missing person's paternal (Y) or maternal (mt) line,
    nearest first (links, then the member's code)."""
    if pedigree is None or mp not in pedigree:
        return []
    line = y_lineage(pedigree, mp) if system == "Y" else mt_lineage(pedigree, mp)
    out = [(ref, line[ref["member"]]) for ref in references
           if ref["member"] in line and (ref.get("haplotypes") or {}).get(system)]
    return sorted(out, key=lambda t: (t[1], t[0]["member"]))


def lineage_evidence(*, systems: Mapping[str, Any] | None, provenance: Mapping[str, Any] | None,
                     remains_haplotypes: Mapping[str, Any] | None, references: Sequence[Mapping[str, Any]],
                     pedigree: Sequence[Mapping[str, Any]], missing_member: str,
                     combined_log10_lr: float | None) -> dict[str, Any] | None:
    """The lineage section of a candidate's evidence, or None when the run used no lineage data.

    ``systems``: the candidate's stored ``candidates.systems``; ``provenance``: the run's
    ``lineage_databases``; ``references``: the evidence's references, each with the ``haplotypes`` of
    the profile the run read; ``pedigree``: the evidence's pedigree rows."""
    if not systems:
        return None
    by = systems.get("log10_lr", {})
    details = systems.get("details", {})
    mism = systems.get("mismatches", {})
    rows = [{"system": s, "log10_lr": by[s], "lr": format_lr(by[s]), "mismatches": mism.get(s)}
            for s in ORDER if s in by]
    ped = _pedigree(pedigree)
    haps = remains_haplotypes or {}
    out: dict[str, Any] = {"systems": rows, "combined_log10_lr": combined_log10_lr,
                           "combined_lr": format_lr(combined_log10_lr), "y": None, "mt": None}
    prov = provenance or {}
    if "Y" in by:
        loci = list((prov.get("Y") or {}).get("loci") or sorted({x for r in references
                                                                for x in ((r.get("haplotypes") or {}).get("Y") or {})}))
        sec = _y_section(haps.get("Y"), _on_line(ped, missing_member, references, "Y"), loci, details.get("Y"))
        out["y"] = {**sec, "log10_lr": by["Y"], "lr": format_lr(by["Y"]), "mismatches": mism.get("Y"),
                    "detail": details.get("Y"), "database": prov.get("Y")}
    if "mt" in by:
        sec = _mt_section(haps.get("mt"), _on_line(ped, missing_member, references, "mt"), details.get("mt"))
        out["mt"] = {**sec, "log10_lr": by["mt"], "lr": format_lr(by["mt"]), "mismatches": mism.get("mt"),
                     "detail": details.get("mt"), "database": prov.get("mt")}
    return out
