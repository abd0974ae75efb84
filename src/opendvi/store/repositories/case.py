"""The case held in the database, as a core :class:`Case` for matching."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, null, select
from sqlalchemy.orm import Session

from opendvi.core.case import Case, Family, Sample
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype, make_genotype
from opendvi.io.case_json import parse_markers
from opendvi.store.errors import ConflictError
from opendvi.store.models import Donor, FrequencyDatabase, MissingPerson, Operation, PedigreeMember, Profile, Remains
from opendvi.store.models import Family as DbFamily
from opendvi.store.repositories.lineage import operation_lineage, stored_lineage

__all__ = ["StoredCase", "build_case"]


@dataclass
class StoredCase:
    """A core :class:`Case` built from the database, with the row ids behind it."""

    case: Case
    frequency_database: FrequencyDatabase
    remains: dict[str, tuple[int, int]]  # barcode -> (remains id, profile id)
    missing: dict[str, int]  # missing person code -> id


def _genotypes(raw: Mapping[str, Any], names: Collection[str], who: str) -> dict[str, Genotype]:
    """A stored profile's genotypes at ``names`` (untyped left out)."""
    return {m: gt for m, a in raw.items() if m in names and (gt := make_genotype(a, who=who, marker=m)) is not None}


def _remains(session: Session, names: Collection[str], *, lineage: bool = False,
             ) -> tuple[list[Sample], dict[str, tuple[int, int]], dict[str, tuple[str | None, Any]]]:
    """The remains typed at one of ``names`` at least (current profiles; with ``lineage``, or with a
    haplotype), barcode -> (remains id, profile id), and barcode -> (sex, haplotypes)."""
    cur = (select(Profile.remains_id.label("rid"), func.max(Profile.version).label("v"))
           .where(Profile.remains_id.is_not(None)).group_by(Profile.remains_id).subquery())
    samples: list[Sample] = []
    ids: dict[str, tuple[int, int]] = {}
    haps: dict[str, tuple[str | None, Any]] = {}
    for rid, barcode, sex, pid, genotypes, dropout, haplotypes in session.connection().execute(
        select(Remains.id, Remains.barcode, Remains.sex, Profile.id, Profile.genotypes, Profile.dropout,
               _haplotypes(lineage))
        .join(cur, cur.c.rid == Remains.id)
        .join(Profile, and_(Profile.remains_id == Remains.id, Profile.version == cur.c.v))
        .order_by(Remains.barcode)
    ).all():
        if any(m in names for m in genotypes) or (lineage and haplotypes):
            samples.append(Sample(barcode, sex, _genotypes(genotypes, names, barcode), float(dropout)))
            ids[barcode] = (rid, pid)
            if lineage and haplotypes:
                haps[barcode] = (sex, haplotypes)
    return samples, ids, haps


def _haplotypes(lineage: bool) -> Any:
    """The profiles' haplotypes column, or NULL without lineage evidence (not decoded for nothing)."""
    return Profile.haplotypes if lineage else null().label("haplotypes")


def _donor_profiles(session: Session, *, lineage: bool = True) -> dict[int, tuple[Any, float, Any]]:
    """Pedigree member id -> (genotypes, dropout, haplotypes) of its donor's current, usable profile
    (haplotypes None without ``lineage``)."""
    dcur = (select(Profile.donor_id.label("did"), func.max(Profile.version).label("v"))
            .where(Profile.donor_id.is_not(None)).group_by(Profile.donor_id).subquery())
    return {
        member_id: (genotypes, dropout, haplotypes)
        for member_id, genotypes, dropout, haplotypes in session.connection().execute(
            select(Donor.member_id, Profile.genotypes, Profile.dropout, _haplotypes(lineage))
            .join(dcur, dcur.c.did == Donor.id)
            .join(Profile, and_(Profile.donor_id == Donor.id, Profile.version == dcur.c.v))
            .where(Donor.profile_usable)  # consent withdrawn: the profile is not used
        ).all()
    }


def _families(session: Session, names: Collection[str], *, lineage: bool = True,
              ) -> tuple[list[Family], dict[str, int], dict[tuple[str, str], Any]]:
    """The families with a missing person, missing person code -> id, and (family, member) -> the
    haplotypes of the member's donor profile (none without ``lineage``). Columns, not ORM objects."""
    donor_profiles = _donor_profiles(session, lineage=lineage)
    conn = session.connection()
    mps = {member_id: (mp_id, code) for member_id, mp_id, code in
           conn.execute(select(MissingPerson.member_id, MissingPerson.id, MissingPerson.code)).all()}
    members: dict[int, list[tuple[int, str, str | None, str | None, str | None]]] = {}
    for fid, mid, code, father, mother, sex in conn.execute(
            select(PedigreeMember.family_id, PedigreeMember.id, PedigreeMember.code, PedigreeMember.father,
                   PedigreeMember.mother, PedigreeMember.sex)
            .order_by(PedigreeMember.family_id, PedigreeMember.position, PedigreeMember.id)).all():
        members.setdefault(fid, []).append((mid, code, father, mother, sex))
    families: list[Family] = []
    missing: dict[str, int] = {}
    haps: dict[tuple[str, str], Any] = {}
    for fam_id, fam_code in conn.execute(select(DbFamily.id, DbFamily.code).order_by(DbFamily.code)).all():
        its = members.get(fam_id, [])
        its_missing = tuple(code for mid, code, *_rest in its if mid in mps)
        if not its_missing:
            continue
        missing.update((code, mps[mid][0]) for mid, code, *_rest in its if mid in mps)
        profiles = {code: donor_profiles[mid] for mid, code, *_rest in its if mid in donor_profiles}
        genotypes = {code: _genotypes(gts, names, code) for code, (gts, _d, _h) in profiles.items()}
        haps.update(((fam_code, code), h) for code, (_g, _d, h) in profiles.items() if h)
        families.append(Family(
            id=fam_code, pedigree=Pedigree([Individual(code, father, mother, sex)
                                            for _mid, code, father, mother, sex in its]),
            genotypes={code: gts for code, gts in genotypes.items() if gts}, missing=its_missing,
            dropout={code: float(d) for code, (_g, d, _h) in profiles.items() if d}))
    return families, missing, haps


def build_case(session: Session, *, operation: Operation,
               frequency_database: FrequencyDatabase | None = None,
               lineage_databases: Mapping[str, int] | None = None) -> StoredCase:
    """Every remains of the database (current profiles, all operations) against every
    missing person of the database, at the markers of ``frequency_database`` (default: the
    operation's); typings at other markers are left out. A few queries, no query per row.
    The lineage evidence (Y-STR, mtDNA) with the lineage databases ``lineage_databases`` (system -> id,
    as a run recorded them; default: the operation's), haplotypes at other Y loci left out."""
    fdb = frequency_database or operation.frequency_database
    if fdb is None:
        raise ConflictError(f"operation {operation.code} has no markers yet: import a case first")
    markers = parse_markers(fdb.markers)
    names = {m.name for m in markers}
    dbs = operation_lineage(session, operation=operation, ids=lineage_databases)
    remains, remains_ids, remains_haps = _remains(session, names, lineage=bool(dbs))
    families, missing, member_haps = _families(session, names, lineage=bool(dbs))
    lineage = None
    if dbs:
        families, lineage = stored_lineage(dbs, families=families, remains=remains_haps, members=member_haps)
    case = Case(name=operation.code, markers=markers, remains=tuple(remains), families=tuple(families),
                theta=float(fdb.theta), lineage=lineage)
    return StoredCase(case=case, frequency_database=fdb, remains=remains_ids, missing=missing)
