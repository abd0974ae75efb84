"""Imports into an operation: frequencies, post-mortem profiles (a ``dvi-case/1`` case:
:mod:`opendvi.store.repositories.case_import`). Each one an ``Import`` row and its audit entry;
every problem is listed first and nothing is written on error."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from opendvi.core.case import Sample
from opendvi.core.markers import canonical_marker_name
from opendvi.io.case_json import CaseDocumentError, parse_markers
from opendvi.store import audit
from opendvi.store.audit import canonical_json
from opendvi.store.errors import ImportValidationError
from opendvi.store.models import Donor, FrequencyDatabase, Import, Operation, Remains, User
from opendvi.store.repositories.bulk import in_values, write_remains_rows
from opendvi.store.repositories.lineage import operation_lineage

__all__ = ["ImportSummary", "get_or_create_frequency_database", "import_frequencies", "import_remains_profiles"]


@dataclass
class ImportSummary:
    import_id: int
    operation: str
    remains_new: int = 0
    remains_retyped: int = 0
    families_new: int = 0
    missing_persons_new: int = 0
    donors_new: int = 0
    reference_profiles_new: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def begin_import(session: Session, *, operation: Operation, file_format: str, filename: str, sha256: str,
                 by: User | None) -> Import:
    """The ``Import`` row of a file (flushed: it has its id)."""
    imp = Import(operation_id=operation.id, format=file_format, filename=filename, sha256=sha256,
                 user_id=by.id if by else None)
    session.add(imp)
    session.flush()
    return imp


def finish_import(session: Session, *, imp: Import, summary: dict[str, Any], action: str, by: User | None,
                  details: Mapping[str, Any] | None = None) -> None:
    """Record the summary on the ``Import`` row and write the audit entry (``details`` before the summary)."""
    imp.summary = summary
    session.flush()
    audit.append(session, action=action, username=by.username if by else None, object_type="import",
                 object_id=imp.id, details={"filename": imp.filename, "sha256": imp.sha256, **(details or {}),
                                            **summary})


def get_or_create_frequency_database(
    session: Session, *, name: str, markers: list[Any], theta: float
) -> FrequencyDatabase:
    digest = hashlib.sha256(canonical_json({"markers": markers, "theta": theta}).encode("utf-8")).hexdigest()
    fdb = session.execute(
        select(FrequencyDatabase).where(FrequencyDatabase.sha256 == digest)
    ).scalar_one_or_none()
    if fdb is None:
        fdb = FrequencyDatabase(name=name, sha256=digest, markers=markers, theta=theta)
        session.add(fdb)
        session.flush()
    return fdb


def _frequency_markers(
    tables: Mapping[str, tuple[str, tuple[str, ...], tuple[float, ...]]], operation: Operation,
) -> tuple[list[dict[str, Any]], float, list[str]]:
    """The operation's markers with the new frequencies (normalised), its theta, and the problems."""
    old = operation.frequency_database
    problems: list[str] = []
    markers: list[dict[str, Any]] = []
    if old is not None:
        for m in old.markers:
            t = tables.get(canonical_marker_name(m["name"]))
            if t is None:
                problems.append(f"marker {m['name']} of operation {operation.code} is not in the file")
                continue
            markers.append({**m, "alleles": list(t[1]), "frequencies": list(t[2])})
        theta = old.theta
    else:
        markers = [{"name": name, "chromosome": "autosomal", "alleles": list(al), "frequencies": list(fr),
                    "mutation": None} for name, al, fr in tables.values()]
        theta = 0.0
    if not tables:
        problems.append("the file holds no frequencies")
    if not problems:
        for m in markers:
            total = sum(m["frequencies"])
            m["frequencies"] = [f / total for f in m["frequencies"]]
    return markers, theta, problems


def import_frequencies(
    session: Session,
    *,
    tables: Mapping[str, tuple[str, tuple[str, ...], tuple[float, ...]]],
    operation: Operation,
    filename: str,
    sha256: str,
    file_format: str,
    population: str | None,
    by: User | None,
) -> dict[str, Any]:
    """Give ``operation`` a new frequency database: ``tables`` maps a
    canonical marker key to (name, alleles, frequencies). An operation with
    markers keeps them (and their mutation models) and takes the new
    frequencies, which must cover every one of its markers; an operation
    without markers takes every marker of the file (no mutation model).
    Every problem is listed; nothing is written on error."""
    old = operation.frequency_database
    markers, theta, problems = _frequency_markers(tables, operation)
    if problems:
        raise ImportValidationError(problems, filename=filename)
    try:  # theta is the operation's (checked when it came) or 0
        parse_markers(markers)
    except CaseDocumentError as exc:  # a marker the case format refuses
        raise ImportValidationError([str(exc)], filename=filename) from None
    name = f"{filename} ({population})" if population else filename
    fdb = get_or_create_frequency_database(session, name=name[:200], markers=markers, theta=theta)
    operation.frequency_database = fdb
    imp = begin_import(session, operation=operation, file_format=file_format, filename=filename, sha256=sha256,
                       by=by)
    summary = {"import_id": imp.id, "operation": operation.code, "frequency_database": fdb.id,
               "frequency_database_sha256": fdb.sha256, "markers": len(markers), "population": population,
               "replaced": old.sha256 if old is not None else None}
    finish_import(session, imp=imp, summary=summary, action="import.frequencies", by=by)
    return summary


def write_remains(session: Session, *, samples: Sequence[Sample], existing: Mapping[str, Remains],
                  operation: Operation, imp: Import, summary: ImportSummary, laboratory: str | None,
                  kit: str | None, untyped_profiles: bool,
                  haplotypes: Mapping[str, dict[str, Any]] | None = None, merge_haplotypes: bool = False) -> None:
    """Register the samples' remains (new ones, or the sex of known ones) and add their profile
    versions; ``untyped_profiles``: a sample without genotypes gets a profile version too;
    ``haplotypes``: barcode -> Y / mtDNA haplotypes (a sample typed only for them gets a version).
    Bulk writes (:mod:`opendvi.store.repositories.bulk`): a few statements, none per sample."""
    new, retyped = write_remains_rows(session, samples=samples, existing=existing, operation_id=operation.id,
                                      import_id=imp.id, laboratory=laboratory, kit=kit,
                                      untyped_profiles=untyped_profiles, haplotypes=haplotypes,
                                      merge_haplotypes=merge_haplotypes)
    summary.remains_new += new
    summary.remains_retyped += retyped


def existing_remains(session: Session, barcodes: Sequence[str]) -> dict[str, Remains]:
    """The remains registered under ``barcodes`` (their operations loaded), by barcode."""
    if not barcodes:
        return {}
    return {r.barcode: r for r in session.execute(
        select(Remains).where(in_values(session, Remains.barcode, barcodes)).options(selectinload(Remains.operation))
        .order_by(Remains.barcode)).scalars()}


def _profile_problems(samples: Sequence[Sample], *, operation: Operation, existing: Mapping[str, Remains],
                      donors: set[str]) -> list[str]:
    problems: list[str] = []
    fdb = operation.frequency_database
    if fdb is None:
        problems.append(f"operation {operation.code} has no markers yet: import a dvi-case/1 or Familias file first")
    known = {m["name"] for m in fdb.markers} if fdb is not None else set()
    if not samples:
        problems.append("the file holds no single-source profile")
    seen: set[str] = set()
    for smp in samples:
        if smp.id in seen:
            problems.append(f"sample {smp.id}: listed twice")
        seen.add(smp.id)
        r = existing.get(smp.id)
        if r is not None and r.operation_id != operation.id:
            problems.append(f"remains {smp.id}: barcode already registered in operation {r.operation.code}")
        if smp.id in donors:
            problems.append(f"sample {smp.id}: this barcode is a reference donor's")
        unknown = sorted(set(smp.genotypes) - known) if fdb is not None else []
        if unknown:
            problems.append(f"sample {smp.id}: markers not in the operation's frequency database: {unknown}")
    return problems


def import_remains_profiles(
    session: Session,
    *,
    samples: Sequence[Sample],
    operation: Operation,
    filename: str,
    sha256: str,
    file_format: str,
    by: User | None,
    laboratory: str | None = None,
    kit: str | None = None,
    notes: Sequence[str] = (),
    y_haplotypes: Mapping[str, dict[str, str]] | None = None,
) -> ImportSummary:
    """Import post-mortem profiles (GeneMapper, CODIS CMF, profile tables) into
    an operation that already has its markers (from a ``dvi-case/1`` or
    Familias import). ``y_haplotypes``: barcode -> the Y-STR haplotype the file
    carries (``dvi-case/1`` spelling), stored with the profile version beside
    the mtDNA haplotype it had; its loci must be in the operation's Y-STR
    database when it has one. Every problem is listed; nothing is written on error."""
    barcodes = [smp.id for smp in samples]
    existing = existing_remains(session, barcodes)
    donors = set(session.execute(select(Donor.barcode).where(in_values(session, Donor.barcode, barcodes))).scalars()) \
        if barcodes else set()
    problems = _profile_problems(samples, operation=operation, existing=existing, donors=donors)
    y_db = operation_lineage(session, operation=operation).get("Y") if y_haplotypes else None
    notes = list(notes)
    if y_db is not None:
        loci = {m["name"] for m in y_db.content.get("markers", [])}
        problems += [f"sample {sid}: Y-STR locus {locus} is not in the operation's Y-STR database "
                     f"({', '.join(sorted(loci))})"
                     for sid, h in (y_haplotypes or {}).items() for locus in h if locus not in loci]
    elif y_haplotypes:
        notes.append(f"{len(y_haplotypes)} Y-STR haplotype(s) stored; operation {operation.code} has no Y-STR "
                     "database yet, so matching does not use them")
    if problems:
        raise ImportValidationError(problems, filename=filename)
    imp = begin_import(session, operation=operation, file_format=file_format, filename=filename, sha256=sha256,
                       by=by)
    summary = ImportSummary(import_id=imp.id, operation=operation.code, notes=list(notes))
    write_remains(session, samples=samples, existing=existing, operation=operation, imp=imp, summary=summary,
                  laboratory=laboratory, kit=kit, untyped_profiles=True,
                  haplotypes={sid: {"Y": h} for sid, h in (y_haplotypes or {}).items()}, merge_haplotypes=True)
    finish_import(session, imp=imp, summary=summary.as_dict(), action="import.profiles", by=by,
                  details={"format": file_format})
    return summary
