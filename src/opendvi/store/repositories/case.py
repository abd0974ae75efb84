"""The case held in the database, as a core :class:`Case` for matching."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from opendvi.core.case import Case
from opendvi.io.case_json import case_from_dict
from opendvi.store.errors import ConflictError
from opendvi.store.models import Donor, Family, FrequencyDatabase, MissingPerson, Operation, Profile, Remains

__all__ = ["StoredCase", "build_case"]


@dataclass
class StoredCase:
    """A core :class:`Case` built from the database, with the row ids behind it."""

    case: Case
    frequency_database: FrequencyDatabase
    remains: dict[str, tuple[int, int]]  # barcode -> (remains id, profile id)
    missing: dict[str, int]  # missing person code -> id


def _remains_rows(session: Session, names: Collection[str]) -> tuple[list[dict[str, Any]], dict[str, tuple[int, int]]]:
    """The remains typed at one of ``names`` at least (current profiles): case rows, and barcode ->
    (remains id, profile id)."""
    cur = (select(Profile.remains_id.label("rid"), func.max(Profile.version).label("v"))
           .where(Profile.remains_id.is_not(None)).group_by(Profile.remains_id).subquery())
    rows: list[dict[str, Any]] = []
    ids: dict[str, tuple[int, int]] = {}
    for rid, barcode, sex, pid, genotypes, dropout in session.execute(
        select(Remains.id, Remains.barcode, Remains.sex, Profile.id, Profile.genotypes, Profile.dropout)
        .join(cur, cur.c.rid == Remains.id)
        .join(Profile, and_(Profile.remains_id == Remains.id, Profile.version == cur.c.v))
        .order_by(Remains.barcode)
    ):
        gts = {m: g for m, g in genotypes.items() if m in names}
        if not gts:
            continue
        rows.append({"id": barcode, "sex": sex, "genotypes": gts, "dropout": dropout})
        ids[barcode] = (rid, pid)
    return rows, ids


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


def _family_rows(session: Session, names: Collection[str]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The families with a missing person: case rows, and missing person code -> id."""
    donor_profiles = _donor_profiles(session)
    mps = {member_id: (mp_id, code) for member_id, mp_id, code in
           session.execute(select(MissingPerson.member_id, MissingPerson.id, MissingPerson.code))}
    rows: list[dict[str, Any]] = []
    missing: dict[str, int] = {}
    for fam in session.execute(select(Family).options(selectinload(Family.members)).order_by(Family.code)).scalars():
        members = []
        for m in fam.members:
            row: dict[str, Any] = {"id": m.code, "father": m.father, "mother": m.mother, "sex": m.sex}
            if m.id in mps:
                row["missing"] = True
                missing[m.code] = mps[m.id][0]
            if m.id in donor_profiles:
                gts, dropout = donor_profiles[m.id]
                row["genotypes"] = {k: g for k, g in gts.items() if k in names}
                if dropout:
                    row["dropout"] = dropout
            members.append(row)
        if any(m.get("missing") for m in members):
            rows.append({"id": fam.code, "members": members})
    return rows, missing


def build_case(session: Session, *, operation: Operation,
               frequency_database: FrequencyDatabase | None = None) -> StoredCase:
    """Every remains of the database (current profiles, all operations) against every
    missing person of the database, at the markers of ``frequency_database`` (default: the
    operation's); typings at other markers are left out. A few queries, no query per row."""
    fdb = frequency_database or operation.frequency_database
    if fdb is None:
        raise ConflictError(f"operation {operation.code} has no markers yet: import a case first")
    names = {m["name"] for m in fdb.markers}
    rem_rows, rem_ids = _remains_rows(session, names)
    fam_rows, missing = _family_rows(session, names)
    data = {
        "format": "dvi-case/1",
        "name": operation.code,
        "theta": fdb.theta,
        "markers": fdb.markers,
        "remains": rem_rows,
        "families": fam_rows,
    }
    return StoredCase(case=case_from_dict(data), frequency_database=fdb, remains=rem_ids, missing=missing)
