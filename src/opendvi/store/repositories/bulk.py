"""Bulk writes of an import (issue 9: storage at national scale): remains, families, pedigree members,
missing persons, donors and profile versions go in as multi-row INSERTs (``RETURNING`` the new ids
where later rows need them), and the current profile versions they are compared with are read in a
few ``IN`` queries, never one query or one flush per row.

The callers (:mod:`opendvi.store.repositories.imports`, :mod:`.case_import`) check everything first;
these functions only write, inside the caller's transaction (all or nothing). On PostgreSQL the rows
go in through ``COPY``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, any_, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendvi.core.case import Family as CaseFamily
from opendvi.core.case import Sample
from opendvi.store.errors import ConflictError
from opendvi.store.models import Donor, Family, MissingPerson, PedigreeMember, Profile, Remains

__all__ = ["CurrentProfile", "JSONText", "current_profiles", "in_values", "insert_returning", "insert_rows",
           "profile_genotypes", "refresh_statistics", "write_family_rows", "write_remains_rows"]

#: ids per ``IN`` list (well under SQLite's and PostgreSQL's limits on bound parameters)
IN_CHUNK = 5000
RETYPED_CONFLICT = "the profile was re-typed by someone else at the same time; import again"


@dataclass(frozen=True)
class CurrentProfile:
    """The values of a subject's current profile version that an import compares with."""

    version: int
    genotypes: Any
    dropout: float
    haplotypes: Any


def profile_genotypes(genotypes: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Genotypes as a profile version stores them (markers sorted, alleles as lists)."""
    return {m: list(g) for m, g in sorted(genotypes.items())}


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def in_values(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """``column IN values``; on PostgreSQL ``column = ANY(:array)``, one parameter (psycopg rewrites a
    statement of thousands of parameters at a cost that dominates the query)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))


def current_profiles(session: Session, column: Any, ids: Sequence[int]) -> dict[int, CurrentProfile]:
    """Subject id -> its current (highest) profile version, for the remains (``column`` is
    ``Profile.remains_id``) or donors (``Profile.donor_id``) of ``ids``."""
    out: dict[int, CurrentProfile] = {}
    for part in _chunks(list(ids)):
        for sid, version, genotypes, dropout, haplotypes in session.execute(
                select(column, Profile.version, Profile.genotypes, Profile.dropout, Profile.haplotypes)
                .where(in_values(session, column, part))):
            if sid not in out or version > out[sid].version:
                out[sid] = CurrentProfile(version, genotypes, dropout, haplotypes)
    return out


class JSONText(str):
    """A JSON column's value already serialised (``json.dumps`` of it, read back from the database):
    :func:`insert_rows` writes it as it is instead of serialising it again."""


def _row_values(table: Any, rows: Sequence[dict[str, Any]],
                processors: Mapping[str, Any] | None = None) -> tuple[list[Any], Iterable[list[Any]]]:
    """The columns of ``table`` but its primary key, and each row's values for them: the columns'
    Python defaults filled in, JSON serialised (a :class:`JSONText` as it is), ``processors`` (column key
    -> the dialect's bind processor) applied to the others."""
    cols = [c for c in table.c if not c.primary_key]

    def default(c: Any) -> Any:
        d = c.default
        if d is None:
            return None
        return d.arg(None) if d.is_callable else d.arg

    def to_json(v: Any) -> Any:
        return v if isinstance(v, JSONText) else json.dumps(v)

    def processed(proc: Any) -> Any:
        return lambda v: None if v is None else proc(v)

    procs = processors or {}
    spec = [(c.key, default(c), to_json if isinstance(c.type, JSON)
             else processed(procs[c.key]) if procs.get(c.key) is not None else None) for c in cols]
    return cols, ([r.get(k, d) if conv is None else conv(r.get(k, d)) for k, d, conv in spec] for r in rows)


def _copy(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: ``rows`` into ``table`` through ``COPY`` (the columns' Python defaults filled in here),
    some ten times faster than INSERTs with bound parameters. A constraint refusing a row raises
    :class:`sqlalchemy.exc.IntegrityError`, as an INSERT would."""
    import psycopg

    cols, values = _row_values(table, rows)
    names = ", ".join(f'"{c.name}"' for c in cols)
    sql = f'COPY "{table.name}" ({names}) FROM STDIN'
    dbapi: Any = session.connection().connection.driver_connection  # psycopg's, in this transaction
    try:
        with dbapi.cursor() as cur, cur.copy(sql) as cp:
            for v in values:
                cp.write_row(v)
    except psycopg.IntegrityError as exc:
        raise IntegrityError(sql, None, exc) from None


def _executemany(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """SQLite: ``rows`` into ``table`` by one ``executemany`` of the driver (the values bound as the
    columns' types bind them; JSON serialised once, :class:`JSONText` as it is), without the per-row
    work of a Core INSERT."""
    dialect = session.get_bind().dialect
    processors = {c.key: c.type._cached_bind_processor(dialect) for c in table.c if not isinstance(c.type, JSON)}
    cols, values = _row_values(table, rows, processors)
    names = ", ".join(f'"{c.name}"' for c in cols)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" for _c in cols)})'
    session.connection().exec_driver_sql(sql, [tuple(v) for v in values])


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert_rows(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``model`` (a column a row leaves out gets its Python default): ``COPY`` on
    PostgreSQL, the driver's ``executemany`` on SQLite; a JSON value may come serialised already
    (:class:`JSONText`)."""
    if not rows:
        return
    if _postgresql(session):
        _copy(session, model.__table__, rows)
    else:
        _executemany(session, model.__table__, rows)


def refresh_statistics(session: Session, *models: Any) -> None:
    """Refresh the planner's statistics of ``models``' tables after a bulk write (PostgreSQL's ``ANALYZE``,
    in the caller's transaction: the statistics and the rows become visible together at its commit).

    A matching run's candidates carry a run id newer than every statistic; until autovacuum analysed
    the table, PostgreSQL estimated one row for it and looked up each remains' best candidate by
    scanning the whole run (``ix_candidates_run_id`` and a filter: 11 ms a remains, 90 ms a page of the
    remains list; under load the p99 of every page went from about 450 to 900-1,200 ms). ``ANALYZE``
    reads a fixed sample (30,000 rows at the default statistics target), so its cost does not grow with
    the table. A role that does not own the table gets a warning from PostgreSQL, not an error. SQLite
    plans without statistics unless ``ANALYZE`` was run once; it is left so."""
    if not _postgresql(session):
        return
    for model in models:
        session.execute(text(f'ANALYZE "{model.__table__.name}"'))


def insert_returning(session: Session, model: Any, rows: Sequence[dict[str, Any]],
                     *keys: Any) -> list[tuple[Any, ...]]:
    """Insert ``rows`` into ``model``; the new rows' ``(id, *keys)``. ``keys[0]`` tells the new rows
    from the others (unique, or the parent id of new parents only): on PostgreSQL the rows go in by
    ``COPY`` and are read back by it."""
    if not rows:
        return []
    table = model.__table__
    cols = [table.c[k.key] for k in keys]
    if not _postgresql(session):
        stmt = insert(table).returning(table.c.id, *cols)
        return [tuple(r) for r in session.execute(stmt, list(rows))]
    _copy(session, table, rows)
    values = sorted({r[cols[0].key] for r in rows})
    return [tuple(r) for part in _chunks(values)
            for r in session.execute(select(table.c.id, *cols).where(in_values(session, cols[0], part)))]


def _insert_profiles(session: Session, rows: list[dict[str, Any]]) -> None:
    try:
        insert_rows(session, Profile, rows)
    except IntegrityError:  # a version number taken meanwhile (someone re-typed the same subject)
        raise ConflictError(RETYPED_CONFLICT) from None


def _new_version(cur: CurrentProfile | None, genotypes: dict[str, list[str]], dropout: float,
                 haplotypes: Mapping[str, Any] | None) -> tuple[int, Any] | None:
    """(version number, haplotypes) of a new profile, or None when it equals the current one; as
    :func:`opendvi.store.repositories.remains.add_profile`: ``haplotypes`` None keeps the current
    version's (the source carried none)."""
    haps = (cur.haplotypes if cur is not None else None) if haplotypes is None else (dict(haplotypes) or None)
    if cur is not None and cur.genotypes == genotypes and cur.dropout == dropout and cur.haplotypes == haps:
        return None
    return (cur.version + 1 if cur is not None else 1), haps


def write_remains_rows(session: Session, *, samples: Sequence[Sample], existing: Mapping[str, Remains],
                       operation_id: int, import_id: int, laboratory: str | None, kit: str | None,
                       untyped_profiles: bool, haplotypes: Mapping[str, Any] | None = None,
                       merge_haplotypes: bool = False) -> tuple[int, int]:
    """Register the samples' new remains and the sex of known ones, and add their profile versions
    (``untyped_profiles``: a sample without genotypes gets one too); (remains new, remains re-typed).
    ``merge_haplotypes``: the systems given replace the current version's, the others are kept (a
    profile table carries Y-STR loci, never mtDNA)."""
    haps = haplotypes or {}
    ids = {bc: r.id for bc, r in existing.items()}
    for smp in samples:
        rem = existing.get(smp.id)
        if rem is not None and smp.sex is not None and rem.sex != smp.sex:
            rem.sex = smp.sex
    new = [{"barcode": smp.id, "operation_id": operation_id, "sex": smp.sex, "laboratory": laboratory, "kit": kit}
           for smp in samples if smp.id not in ids]
    ids.update((bc, rid) for rid, bc in insert_returning(session, Remains, new, Remains.barcode))
    session.flush()  # the sexes changed above
    typed = [smp for smp in samples if smp.genotypes or untyped_profiles or smp.id in haps]
    current = current_profiles(session, Profile.remains_id, [ids[s.id] for s in typed if s.id in existing])
    rows: list[dict[str, Any]] = []
    retyped = 0
    for smp in typed:
        rid = ids[smp.id]
        gts = profile_genotypes(smp.genotypes)
        cur = current.get(rid)
        given = haps.get(smp.id)
        if merge_haplotypes and given is not None and cur is not None:
            given = {**(cur.haplotypes or {}), **given}
        nv = _new_version(cur, gts, smp.dropout, given)
        if nv is None:
            continue
        rows.append({"remains_id": rid, "donor_id": None, "version": nv[0], "genotypes": gts,
                     "dropout": smp.dropout, "laboratory": laboratory, "kit": kit, "import_id": import_id,
                     "haplotypes": nv[1]})
        retyped += cur is not None
    _insert_profiles(session, rows)
    return len(new), retyped


@dataclass
class FamilyCounts:
    families_new: int = 0
    missing_persons_new: int = 0
    donors_new: int = 0
    reference_profiles_new: int = 0


def _member_ids(session: Session, families: Sequence[CaseFamily], existing: Mapping[str, Family],
                pedigree_rows: Callable[[CaseFamily], list[tuple[str, str | None, str | None, str | None]]],
                counts: FamilyCounts) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """The new families and their pedigree members written; family code -> id, (family code, member
    code) -> member id (known families' from their loaded members)."""
    fam_ids = {code: fam.id for code, fam in existing.items()}
    members = {(code, m.code): m.id for code, fam in existing.items() for m in fam.members}
    new = [f for f in families if f.id not in fam_ids]
    counts.families_new += len(new)
    fam_ids.update((code, fid) for fid, code in insert_returning(session, Family, [{"code": f.id} for f in new],
                                                                  Family.code))
    code_of = {fam_ids[f.id]: f.id for f in new}
    rows = [{"family_id": fam_ids[f.id], "code": pid, "position": pos, "father": father, "mother": mother, "sex": sex}
            for f in new for pos, (pid, father, mother, sex) in enumerate(pedigree_rows(f))]
    members.update(((code_of[fid], code), mid) for mid, fid, code in
                   insert_returning(session, PedigreeMember, rows, PedigreeMember.family_id, PedigreeMember.code))
    return fam_ids, members


def write_family_rows(
    session: Session, *, families: Sequence[CaseFamily], existing: Mapping[str, Family],
    known_missing: Mapping[str, str], donors: Mapping[str, Donor], donor_barcodes: Mapping[tuple[str, str], str],
    typed: Callable[[CaseFamily], Sequence[str]],
    pedigree_rows: Callable[[CaseFamily], list[tuple[str, str | None, str | None, str | None]]],
    import_id: int, haplotypes: Mapping[str, Any] | None = None,
) -> FamilyCounts:
    """Register the case's families (new ones: pedigree members too), their new missing persons and
    reference donors, and the references' (``typed``) profile versions with their ``haplotypes`` (by
    member id). ``known_missing``: the missing persons' codes already registered; ``donors``: the
    donors registered under the case's reference barcodes."""
    haps = haplotypes or {}
    counts = FamilyCounts()
    fam_ids, members = _member_ids(session, families, existing, pedigree_rows, counts)
    mp_rows = [{"code": mp, "family_id": fam_ids[f.id], "member_id": members[(f.id, mp)], "sex": f.sex_of(mp)}
               for f in families for mp in dict.fromkeys(f.missing) if mp not in known_missing]
    insert_rows(session, MissingPerson, mp_rows)
    counts.missing_persons_new += len(mp_rows)
    donor_ids = {bc: d.id for bc, d in donors.items()}
    refs: list[tuple[str, CaseFamily, str]] = []  # (donor barcode, family, member)
    new_donors: dict[str, dict[str, Any]] = {}
    for f in families:
        for pid in typed(f):
            dbc = donor_barcodes.get((f.id, pid), pid)
            refs.append((dbc, f, pid))
            if dbc not in donor_ids and dbc not in new_donors:
                new_donors[dbc] = {"barcode": dbc, "family_id": fam_ids[f.id], "member_id": members[(f.id, pid)]}
    donor_ids.update((bc, did) for did, bc in insert_returning(session, Donor, list(new_donors.values()),
                                                                 Donor.barcode))
    counts.donors_new += len(new_donors)
    current = current_profiles(session, Profile.donor_id, [d.id for d in donors.values()])
    rows: list[dict[str, Any]] = []
    for dbc, f, pid in refs:
        did = donor_ids[dbc]
        gts = profile_genotypes(f.genotypes.get(pid, {}))
        dropout = float(f.dropout.get(pid, 0.0))
        nv = _new_version(current.get(did), gts, dropout, haps.get(pid))
        if nv is None:
            continue
        rows.append({"remains_id": None, "donor_id": did, "version": nv[0], "genotypes": gts, "dropout": dropout,
                     "laboratory": None, "kit": None, "import_id": import_id, "haplotypes": nv[1]})
        current[did] = CurrentProfile(nv[0], gts, dropout, nv[1])  # a barcode twice: one version
    _insert_profiles(session, rows)
    counts.reference_profiles_new += len(rows)
    return counts
