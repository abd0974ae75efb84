"""Importing a ``dvi-case/1`` case: the records it must agree with are read first (a few queries),
checked by a pure function that lists every problem (:func:`case_import_problems`), then written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from opendvi.core.case import Case
from opendvi.core.case import Family as CaseFamily
from opendvi.io.case_json import case_to_dict
from opendvi.store.errors import ImportValidationError
from opendvi.store.models import Donor, Family, MissingPerson, Operation, Remains, User
from opendvi.store.repositories.bulk import in_values, write_family_rows
from opendvi.store.repositories.imports import (
    ImportSummary,
    begin_import,
    existing_remains,
    finish_import,
    get_or_create_frequency_database,
    write_remains,
)
from opendvi.store.repositories.lineage import (
    case_haplotypes,
    lineage_import_problems,
    lineage_provenance,
    store_case_lineage,
)

__all__ = ["KnownRecords", "case_import_problems", "import_case"]

#: a pedigree member as stored: (id, father, mother, sex)
PedigreeRow = tuple[str, str | None, str | None, str | None]


def _pedigree_rows(fam: CaseFamily) -> list[PedigreeRow]:
    return [(i.id, i.father, i.mother, i.sex) for i in fam.pedigree.individuals]


def _typed(case: Case, f: CaseFamily) -> tuple[str, ...]:
    """The family's reference samples: members typed at a marker or for a lineage system (pedigree order)."""
    haps = case.lineage.haplotypes if case.lineage is not None else {}
    return tuple(pid for pid in f.pedigree.ids if f.genotypes.get(pid) or pid in haps)


def _donor_codes(case: Case, donor_barcodes: Mapping[tuple[str, str], str]) -> dict[str, str]:
    """The reference samples' barcodes (default: the member's id) -> family code."""
    return {donor_barcodes.get((f.id, pid), pid): f.id for f in case.families for pid in _typed(case, f)}


@dataclass(frozen=True)
class KnownRecords:
    """What the database holds already of the codes a case names (plain values)."""

    operation_id: int
    operation_code: str
    #: the operation's marker names; None: it has no markers yet
    markers: frozenset[str] | None
    #: barcode -> (operation id, operation code), for the case's remains
    remains: Mapping[str, tuple[int, str]]
    #: family code -> pedigree rows, for the case's families
    pedigrees: Mapping[str, list[PedigreeRow]]
    #: missing person code -> family code, for the case's missing persons
    missing_persons: Mapping[str, str]
    #: donor barcode -> family code, for the case's reference samples
    donors: Mapping[str, str]
    #: the remains barcodes among the case's reference samples' barcodes
    remains_among_donors: Sequence[str]


def case_import_problems(case: Case, known: KnownRecords, *,
                         donor_barcodes: Mapping[tuple[str, str], str]) -> list[str]:
    """Every reason why ``case`` cannot be imported into the operation of ``known`` (none: it can)."""
    problems = [f"remains {bc}: barcode already registered in operation {code}"
                for bc, (op_id, code) in known.remains.items() if op_id != known.operation_id]
    problems += [f"family {f.id}: already registered with a different pedigree" for f in case.families
                 if f.id in known.pedigrees
                 and sorted(known.pedigrees[f.id], key=str) != sorted(_pedigree_rows(f), key=str)]
    mp_codes = {mp: f.id for f in case.families for mp in f.missing}
    donor_codes = _donor_codes(case, donor_barcodes)
    problems += [f"missing person {code}: code already used in family {fam}"
                 for code, fam in known.missing_persons.items() if fam != mp_codes[code]]
    problems += [f"reference sample {bc}: barcode already used in family {fam}"
                 for bc, fam in known.donors.items() if fam != donor_codes[bc]]
    seen_codes: dict[str, str] = {}
    for code, fid in list(mp_codes.items()) + list(donor_codes.items()):
        if code in seen_codes and seen_codes[code] != fid:
            problems.append(f"{code}: used in families {seen_codes[code]} and {fid}")
        seen_codes[code] = fid
    remains_ids = {r.id for r in case.remains}
    problems += [f"{code}: used both as a remains barcode and as a family member" for code in seen_codes
                 if code in remains_ids]
    problems += [f"reference sample {bc}: barcode already registered as a remains"
                 for bc in known.remains_among_donors if bc not in remains_ids]
    new_names = {m.name for m in case.markers}
    if known.markers is not None and known.markers != new_names:
        problems.append(f"operation {known.operation_code} uses markers {sorted(known.markers)}; this file has "
                        f"{sorted(new_names)}")
    return problems


@dataclass
class _Existing:
    """The rows a case import reads: the ORM objects it writes to, and their plain values."""

    remains: dict[str, Remains]
    families: dict[str, Family]
    known: KnownRecords


def _families_of(session: Session, code: Any, family_id: Any, codes: Sequence[str]) -> dict[str, str]:
    """Code -> family code of the rows (missing persons, donors) whose ``code`` is one of ``codes``."""
    rows = session.execute(select(code, Family.code).join(Family, Family.id == family_id)
                           .where(in_values(session, code, codes)).order_by(code))
    return {c: fam for c, fam in rows}


def _read_existing(session: Session, *, case: Case, operation: Operation,
                   donor_barcodes: Mapping[tuple[str, str], str]) -> _Existing:
    remains = existing_remains(session, [r.id for r in case.remains])
    fam_codes = [f.id for f in case.families]
    families = {f.code: f for f in session.execute(
        select(Family).where(in_values(session, Family.code, fam_codes)).options(selectinload(Family.members))
        .order_by(Family.code)).scalars()} if fam_codes else {}
    mp_codes = [mp for f in case.families for mp in f.missing]
    donor_codes = list(_donor_codes(case, donor_barcodes))
    fdb = operation.frequency_database
    known = KnownRecords(
        operation_id=operation.id, operation_code=operation.code,
        markers=frozenset(m["name"] for m in fdb.markers) if fdb is not None else None,
        remains={bc: (r.operation_id, r.operation.code) for bc, r in remains.items()},
        pedigrees={code: [(m.code, m.father, m.mother, m.sex) for m in f.members] for code, f in families.items()},
        missing_persons=_families_of(session, MissingPerson.code, MissingPerson.family_id, mp_codes),
        donors=_families_of(session, Donor.barcode, Donor.family_id, donor_codes),
        remains_among_donors=list(session.execute(
            select(Remains.barcode).where(in_values(session, Remains.barcode, donor_codes))
            .order_by(Remains.barcode)).scalars())
        if donor_codes else [],
    )
    return _Existing(remains=remains, families=families, known=known)


def import_case(
    session: Session,
    *,
    case: Case,
    operation: Operation,
    filename: str,
    sha256: str,
    by: User | None,
    laboratory: str | None = None,
    kit: str | None = None,
    notes: Sequence[str] = (),
    donor_barcodes: Mapping[tuple[str, str], str] | None = None,
    file_format: str = "dvi-case/1",
) -> ImportSummary:
    """Import a case's remains (into ``operation``), families, donors and
    profiles. Checks everything first and raises
    :class:`ImportValidationError` listing every problem, writing nothing;
    the caller's transaction makes the writes all or nothing.

    Re-importing the same case changes nothing; a changed genotype adds a
    profile version (re-typing). ``donor_barcodes`` maps (family, member) to
    the reference sample's barcode (default: the member's id)."""
    bc_of = dict(donor_barcodes or {})
    existing = _read_existing(session, case=case, operation=operation, donor_barcodes=bc_of)
    problems = case_import_problems(case, existing.known, donor_barcodes=bc_of)
    problems += lineage_import_problems(session, case=case, operation=operation)
    if problems:
        raise ImportValidationError(problems, filename=filename)
    # the markers as dvi-case/1 spells them (not a second copy of the whole case)
    markers = case_to_dict(replace(case, remains=(), families=(), pairings=None, lineage=None))["markers"]
    operation.frequency_database = get_or_create_frequency_database(session, name=case.name,
                                                                    markers=markers, theta=case.theta)
    lineage = store_case_lineage(session, case=case, operation=operation, name=case.name or filename)
    haplotypes = case_haplotypes(case)
    imp = begin_import(session, operation=operation, file_format=file_format, filename=filename, sha256=sha256,
                       by=by)
    summary = ImportSummary(import_id=imp.id, operation=operation.code, notes=list(notes))
    write_remains(session, samples=case.remains, existing=existing.remains, operation=operation, imp=imp,
                  summary=summary, laboratory=laboratory, kit=kit, untyped_profiles=False, haplotypes=haplotypes)
    donors = {d.barcode: d for d in session.execute(
        select(Donor).where(in_values(session, Donor.barcode, list(_donor_codes(case, bc_of))))).scalars()}
    counts = write_family_rows(session, families=case.families, existing=existing.families,
                               known_missing=existing.known.missing_persons, donors=donors, donor_barcodes=bc_of,
                               typed=lambda f: _typed(case, f), pedigree_rows=_pedigree_rows, import_id=imp.id,
                               haplotypes=haplotypes)
    for k, n in vars(counts).items():
        setattr(summary, k, getattr(summary, k) + n)
    finish_import(session, imp=imp, summary=summary.as_dict(), action="import.case", by=by,
                  details={"lineage_databases": lineage_provenance(lineage)} if lineage else None)
    return summary
