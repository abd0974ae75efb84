"""Lineage evidence in the store (Y-STR, mtDNA; ``docs/lineage.md``, ``docs/service.md``).

* the haplotypes of a profile version are stored as ``dvi-case/1`` spells them
  (:func:`haplotypes_json`), in ``profiles.haplotypes``;
* an operation's lineage databases (one per system: the Y loci with their rates and the Y haplotype
  database, the mtDNA rate and the mtDNA database) are ``lineage_databases`` rows, found again by
  their SHA-256 (:func:`store_case_lineage`), and ``operation_lineage`` says which an operation uses;
* a matching run records those it used (:func:`lineage_provenance`), and the worker reads the case's
  lineage back from them and from the current profiles (:func:`stored_lineage`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from opendvi.core.case import Case, Family
from opendvi.core.lineage import CaseLineage, PersonHaplotypes
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.io.lineage_json import lineage_from_dict, lineage_to_dict, mt_haplotype_to_dict, y_haplotype_to_dict
from opendvi.store.audit import canonical_json
from opendvi.store.errors import ConflictError
from opendvi.store.models import Operation
from opendvi.store.models_lineage import LineageDatabase, OperationLineage

__all__ = ["case_haplotypes", "haplotypes_json", "lineage_import_problems", "lineage_provenance",
           "operation_lineage", "store_case_lineage", "stored_lineage"]

SYSTEMS = ("Y", "mt")


def haplotypes_json(ph: PersonHaplotypes | None) -> dict[str, Any] | None:
    """A person's haplotypes as ``dvi-case/1`` spells them (``{"Y": {locus: value}, "mt": {"range",
    "variants"}}``), None when none is typed."""
    if ph is None:
        return None
    out: dict[str, Any] = {}
    if ph.y:
        out["Y"] = y_haplotype_to_dict(ph.y)
    if ph.mt is not None:
        out["mt"] = mt_haplotype_to_dict(ph.mt)
    return out or None


def case_haplotypes(case: Case) -> dict[str, dict[str, Any]]:
    """Person id (remains barcode or member id) -> stored haplotypes, for every typed person of ``case``."""
    lin = case.lineage
    if lin is None:
        return {}
    return {pid: j for pid, ph in lin.haplotypes.items() if (j := haplotypes_json(ph)) is not None}


def operation_lineage(session: Session, *, operation: Operation,
                      ids: Mapping[str, int] | None = None) -> dict[str, LineageDatabase]:
    """System -> the lineage database ``operation`` uses (``ids``: these rows instead, as a run
    recorded them)."""
    if ids is not None:
        rows = {s: session.get(LineageDatabase, i) for s, i in ids.items()}
        missing = [s for s, r in rows.items() if r is None]
        if missing:
            raise ConflictError(f"lineage database of system {missing[0]} not found")
        return {s: r for s, r in rows.items() if r is not None}
    return {ol.system: ol.database for ol in session.execute(
        select(OperationLineage).where(OperationLineage.operation_id == operation.id)
        .order_by(OperationLineage.system)).scalars()}


def _y_loci(row: LineageDatabase) -> list[str]:
    return [m["name"] for m in row.content.get("markers", [])]


def lineage_import_problems(session: Session, *, case: Case, operation: Operation) -> list[str]:
    """Why the lineage part of ``case`` cannot go into ``operation``: its Y loci must be the operation's
    (as its autosomal markers must), so that no stored haplotype loses a locus."""
    lin = case.lineage
    if lin is None or lin.y is None:
        return []
    have = operation_lineage(session, operation=operation).get("Y")
    new = [m.name for m in lin.y.markers]
    if have is not None and sorted(_y_loci(have)) != sorted(new):
        return [f"lineage.Y.markers: operation {operation.code} uses the Y-STR loci {sorted(_y_loci(have))}; "
                f"this file has {sorted(new)}"]
    return []


def _get_or_create(session: Session, *, system: str, name: str, content: dict[str, Any], database_sha256: str,
                   estimator: str, size: int) -> LineageDatabase:
    digest = hashlib.sha256(canonical_json({"system": system, "content": content}).encode("utf-8")).hexdigest()
    row = session.execute(select(LineageDatabase).where(LineageDatabase.sha256 == digest)).scalar_one_or_none()
    if row is None:
        row = LineageDatabase(system=system, name=name[:200], sha256=digest, database_sha256=database_sha256,
                              estimator=estimator, n_haplotypes=size, content=content)
        session.add(row)
        session.flush()
    return row


def store_case_lineage(session: Session, *, case: Case, operation: Operation,
                       name: str) -> dict[str, LineageDatabase]:
    """The lineage databases of ``case`` (one row per distinct content), made the operation's for their
    systems (a system the case does not carry keeps the operation's database)."""
    lin = case.lineage
    if lin is None or not lin.systems:
        return {}
    content = lineage_to_dict(CaseLineage(y=lin.y, mt=lin.mt))
    out: dict[str, LineageDatabase] = {}
    for system, sysobj in (("Y", lin.y), ("mt", lin.mt)):
        if sysobj is None:
            continue
        db = sysobj.database
        out[system] = _get_or_create(session, system=system, name=db.name or name, content=content[system],
                                     database_sha256=db.digest, estimator=db.estimator, size=db.size)
        session.execute(delete(OperationLineage).where(OperationLineage.operation_id == operation.id,
                                                       OperationLineage.system == system))
        session.add(OperationLineage(operation_id=operation.id, system=system, lineage_database_id=out[system].id))
    session.flush()
    return out


def lineage_provenance(dbs: Mapping[str, LineageDatabase]) -> dict[str, Any] | None:
    """What a run records of the lineage databases it uses (None: none)."""
    if not dbs:
        return None
    return {s: {"id": r.id, "name": r.name, "sha256": r.sha256, "database_sha256": r.database_sha256,
                "estimator": r.estimator, "haplotypes": r.n_haplotypes,
                **({"loci": _y_loci(r)} if s == "Y" else {"rate": r.content.get("rate")})}
            for s, r in sorted(dbs.items())}


# ---------------------------------------------------------------------------
# the stored case's lineage (build_case)
# ---------------------------------------------------------------------------


def _unique_ids(families: Sequence[Family], remains: Sequence[str],
                members: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(family, member) -> a new case id, where a code is not unique in the stored case: haplotypes are
    looked up by person id, and member codes are unique per family only. ``remains``: the barcodes with
    haplotypes; ``members``: the (family, member) with haplotypes. An untyped member whose code is a typed
    person's is renamed; a typed member keeps its code (the lineage LR's details name it) unless it is
    a missing person's or another typed person's code. Missing persons and remains keep theirs (unique in
    the database). The suffix keeps each family's order of ids (ties between references go to the
    smallest id)."""
    missing = {mp for f in families for mp in f.missing}
    owner: dict[str, tuple[str, str] | None] = dict.fromkeys(remains)  # code -> the typed person it names
    rename: list[tuple[str, str]] = []
    for f in families:
        for pid in f.pedigree.ids:
            if (f.id, pid) in members:
                if pid in missing or pid in owner:
                    rename.append((f.id, pid))
                else:
                    owner[pid] = (f.id, pid)
    for f in families:
        rename += [(f.id, pid) for pid in f.pedigree.ids
                   if pid in owner and owner[pid] != (f.id, pid) and pid not in f.missing
                   and (f.id, pid) not in members]
    taken = set(remains) | {pid for f in families for pid in f.pedigree.ids}
    out: dict[tuple[str, str], str] = {}
    for fid, pid in rename:
        new, k = f"{pid} (family {fid})", 1
        while new in taken:
            k += 1
            new = f"{pid} (family {fid}, {k})"
        taken.add(new)
        out[(fid, pid)] = new
    return out


def _relabel(f: Family, ids: Mapping[tuple[str, str], str]) -> Family:
    def r(pid: str | None) -> str | None:
        return None if pid is None else ids.get((f.id, pid), pid)

    if not any((f.id, pid) in ids for pid in f.pedigree.ids):
        return f
    ped = Pedigree([Individual(r(i.id) or "", r(i.father), r(i.mother), i.sex) for i in f.pedigree.individuals])
    return Family(id=f.id, pedigree=ped, genotypes={r(p) or p: g for p, g in f.genotypes.items()},
                  missing=f.missing, dropout={r(p) or p: d for p, d in f.dropout.items()})


def _keep(h: Mapping[str, Any], systems: Mapping[str, Any], y_loci: set[str]) -> dict[str, Any] | None:
    """A stored haplotype restricted to the run's systems and Y loci."""
    out: dict[str, Any] = {}
    if "Y" in systems and h.get("Y"):
        y = {k: v for k, v in h["Y"].items() if k in y_loci}
        if y:
            out["Y"] = y
    if "mt" in systems and h.get("mt"):
        out["mt"] = h["mt"]
    return out or None


def stored_lineage(
    dbs: Mapping[str, LineageDatabase], *, families: Sequence[Family],
    remains: Mapping[str, tuple[str | None, Mapping[str, Any] | None]],
    members: Mapping[tuple[str, str], Mapping[str, Any]],
) -> tuple[list[Family], CaseLineage]:
    """The case's lineage from the run's databases and the current profiles' haplotypes: ``remains``
    barcode -> (sex, haplotypes), ``members`` (family, member) -> haplotypes (usable donors' profiles).
    Members whose code is not unique in the stored case are given unique ids (:func:`_unique_ids`); the
    families are returned relabelled. Read through the case-file reader, which checks it all again."""
    ids = _unique_ids(families, [bc for bc, (_sex, h) in remains.items() if h], set(members))
    fams = [_relabel(f, ids) for f in families]
    content = {s: r.content for s, r in dbs.items()}
    y_loci = set(_y_loci(dbs["Y"])) if "Y" in dbs else set()
    doc_remains = [{"id": bc, "sex": sex, "haplotypes": kept} for bc, (sex, h) in remains.items()
                   if h and (kept := _keep(h, content, y_loci))]
    doc_families = []
    for f in families:
        rows = []
        for i in f.pedigree.individuals:
            h = members.get((f.id, i.id))
            if h and (kept := _keep(h, content, y_loci)):
                rows.append({"id": ids.get((f.id, i.id), i.id), "sex": i.sex, "haplotypes": kept})
        if rows:
            doc_families.append({"id": f.id, "members": rows})
    lin, problems = lineage_from_dict({"lineage": content, "remains": doc_remains, "families": doc_families},
                                      path="stored lineage")
    if lin is None:
        raise ConflictError("the stored lineage data cannot be read: " + "; ".join(
            f"{where}: {msg}" if where else msg for where, msg in problems))
    return fams, lin
