"""The case held in the database, as a core :class:`Case` for matching."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from opendvi.core.case import Case, Family, Sample
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype, make_genotype
from opendvi.io.case_json import parse_markers
from opendvi.store.errors import ConflictError
from opendvi.store.models import Donor, FrequencyDatabase, MissingPerson, Operation, Profile, Remains
from opendvi.store.models import Family as DbFamily

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


def _remains(session: Session, names: Collection[str]) -> tuple[list[Sample], dict[str, tuple[int, int]]]:
    """The remains typed at one of ``names`` at least (current profiles), and barcode -> (remains id,
    profile id)."""
    cur = (select(Profile.remains_id.label("rid"), func.max(Profile.version).label("v"))
           .where(Profile.remains_id.is_not(None)).group_by(Profile.remains_id).subquery())
    samples: list[Sample] = []
    ids: dict[str, tuple[int, int]] = {}
    for rid, barcode, sex, pid, genotypes, dropout in session.execute(
        select(Remains.id, Remains.barcode, Remains.sex, Profile.id, Profile.genotypes, Profile.dropout)
        .join(cur, cur.c.rid == Remains.id)
        .join(Profile, and_(Profile.remains_id == Remains.id, Profile.version == cur.c.v))
        .order_by(Remains.barcode)
    ):
        if any(m in names for m in genotypes):
            samples.append(Sample(barcode, sex, _genotypes(genotypes, names, barcode), float(dropout)))
            ids[barcode] = (rid, pid)
    return samples, ids


def _donor_profiles(session: Session) -> dict[int, tuple[Any, float]]:
    """Pedigree member id -> (genotypes, dropout) of its donor's current, usable profile."""
    dcur = (select(Profile.donor_id.label("did"), func.max(Profile.version).label("v"))
            .where(Profile.donor_id.is_not(None)).group_by(Profile.donor_id).subquery())
    return {
        member_id: (genotypes, dropout)
        for member_id, genotypes, dropout in session.execute(
            select(Donor.member_id, Profile.genotypes, Profile.dropout)
            .join(dcur, dcur.c.did == Donor.id)
            .join(Profile, and_(Profile.donor_id == Donor.id, Profile.version == dcur.c.v))
            .where(Donor.profile_usable)  # consent withdrawn: the profile is not used
        )
    }


def _families(session: Session, names: Collection[str]) -> tuple[list[Family], dict[str, int]]:
    """The families with a missing person, and missing person code -> id."""
    donor_profiles = _donor_profiles(session)
    mps = {member_id: (mp_id, code) for member_id, mp_id, code in
           session.execute(select(MissingPerson.member_id, MissingPerson.id, MissingPerson.code))}
    families: list[Family] = []
    missing: dict[str, int] = {}
    for fam in session.execute(select(DbFamily).options(selectinload(DbFamily.members))
                               .order_by(DbFamily.code)).scalars():
        its_missing = tuple(m.code for m in fam.members if m.id in mps)
        if not its_missing:
            continue
        missing.update((m.code, mps[m.id][0]) for m in fam.members if m.id in mps)
        profiles = {m.code: donor_profiles[m.id] for m in fam.members if m.id in donor_profiles}
        genotypes = {code: _genotypes(gts, names, code) for code, (gts, _d) in profiles.items()}
        families.append(Family(
            id=fam.code, pedigree=Pedigree([Individual(m.code, m.father, m.mother, m.sex) for m in fam.members]),
            genotypes={code: gts for code, gts in genotypes.items() if gts}, missing=its_missing,
            dropout={code: float(d) for code, (_g, d) in profiles.items() if d}))
    return families, missing


def build_case(session: Session, *, operation: Operation,
               frequency_database: FrequencyDatabase | None = None) -> StoredCase:
    """Every remains of the database (current profiles, all operations) against every
    missing person of the database, at the markers of ``frequency_database`` (default: the
    operation's); typings at other markers are left out. A few queries, no query per row."""
    fdb = frequency_database or operation.frequency_database
    if fdb is None:
        raise ConflictError(f"operation {operation.code} has no markers yet: import a case first")
    markers = parse_markers(fdb.markers)
    names = {m.name for m in markers}
    remains, remains_ids = _remains(session, names)
    families, missing = _families(session, names)
    case = Case(name=operation.code, markers=markers, remains=tuple(remains), families=tuple(families),
                theta=float(fdb.theta))
    return StoredCase(case=case, frequency_database=fdb, remains=remains_ids, missing=missing)
