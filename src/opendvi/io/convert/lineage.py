"""The lineage part of an assembled case: Y haplotypes from the Y-STR loci of
the profile files, mtDNA haplotypes and the haplotype databases
(``shared/design/lineage.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opendvi.core import lineage as lin
from opendvi.core.case import Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage_mt import MtHaplotype
from opendvi.io.profiles import y_locus
from opendvi.io.tables import FamilyTable

#: mtDNA mutation rate per transmission (whole typed range) when none is given:
#: the value of ``shared/design/lineage.md``'s example.
DEFAULT_MT_RATE = 0.002


@dataclass
class LineageSources:
    """Where the lineage part of an assembled case comes from, beside the Y-STR
    loci of the profile files: haplotype databases (``--y-database``,
    ``--mt-database``), mtDNA haplotypes of samples (``--mt-haplotypes``: an
    EMPOP-style table or a CSV, by sample id or reference barcode), the
    estimators and the mtDNA mutation rate. The Y mutation rates are the
    bundled YHRD rates."""

    y_database: Path | None = None
    mt_database: Path | None = None
    mt_haplotypes: Sequence[Path] = ()
    y_estimator: str = lin.DEFAULT_ESTIMATOR
    mt_estimator: str = lin.DEFAULT_ESTIMATOR
    mt_rate: float = DEFAULT_MT_RATE


def read_y_database_canonical(path: str | Path, *, estimator: str = lin.DEFAULT_ESTIMATOR) -> lin.YDatabase:
    """A Y haplotype database (:func:`opendvi.io.haplotypes.read_y_database`:
    a CSV with counts, or the ``disclapmix`` danes file) with its loci spelt
    as the profile readers spell them (``DYS389 I`` -> ``DYS389I``,
    ``Y-GATA-H4`` -> ``YGATAH4``), the discrete Laplace model fitted on those."""
    from opendvi.io.haplotypes import read_y_database
    from opendvi.io.lineage_json import fit_y_database_model

    p = str(path)
    db, markers = read_y_database(path, estimator=lin.DEFAULT_ESTIMATOR)
    rename: dict[str, str] = {}
    for m in markers:
        y = y_locus(m.name)
        if y is None or y[1] is not None:
            raise FileFormatError(f"column {m.name!r} is not a Y-STR locus", path=p, line=1, field=m.name)
        if y[0] in rename.values():
            raise FileFormatError(f"Y locus {y[0]} has two columns", path=p, line=1, field=m.name)
        rename[m.name] = y[0]
    haps = tuple({rename[k]: v for k, v in h.items()} for h in db.haplotypes)
    model = None
    if estimator == "discrete-laplace":
        ymarkers = tuple(
            lin.YMarker(rename[m.name], m.rate, m.copies) for m in markers
        )
        try:
            model = fit_y_database_model(haps, db.counts, ymarkers)
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=p) from None
    try:
        return lin.YDatabase(haps, db.counts, estimator, model=model, name=db.name)
    except OpenDVIError as exc:
        raise FileFormatError(str(exc), path=p) from None



def _member_of_sample(tables: Sequence[FamilyTable]) -> dict[str, tuple[str, str, str, int | None]]:
    """Reference barcode -> (family id, member id, families file, its line)."""
    out: dict[str, tuple[str, str, str, int | None]] = {}
    for t in tables:
        for fid, _people, _missing, codes in t.families:
            for pid, code in codes.items():
                out[code] = (fid, pid, t.source, t.lines.get((fid, pid)))
    return out


def build_lineage(
    *,
    remains: Sequence[Sample],
    families: Sequence[Family],
    tables: Sequence[FamilyTable] = (),
    y_by_sample: dict[str, lin.YHaplotype],
    sources: LineageSources,
    case_lineage: lin.CaseLineage | None = None,
    skip_unknown_markers: bool = False,
    notes: list[str],
) -> lin.CaseLineage | None:
    """The lineage part of an assembled case (``shared/design/lineage.md``).

    Y haplotypes come from the Y-STR loci of the profile files (by sample id:
    a remains, or a reference barcode of a families table), mtDNA haplotypes
    from ``sources.mt_haplotypes``. The Y loci are those typed anywhere and
    those of the database, with the bundled YHRD mutation rates (a typed
    locus without one is an error naming it, unless ``skip_unknown_markers``:
    then it is left out, with a note). A system whose haplotypes have no
    database (``--y-database``/``--mt-database``, or a case JSON's) is left
    out of the case with a note: f(h) needs one. A female reference with a Y
    haplotype is an error.
    """
    member = _member_of_sample(tables)
    remains_ids = {r.id for r in remains}
    fam_sex = {pid: f.sex_of(pid) for f in families for pid in f.pedigree.ids}
    person_y: dict[str, lin.YHaplotype] = {}
    for sid, h in y_by_sample.items():
        if sid in remains_ids:
            person_y[sid] = h
        elif sid in member:
            fid, pid, source, line = member[sid]
            if fam_sex.get(pid) == "F":
                raise FileFormatError(
                    f"family {fid}, member {pid} is female but her reference sample {sid} carries a Y haplotype "
                    f"({', '.join(h)})",
                    path=source or None,
                    line=line,
                    field="sex",
                )
            person_y[pid] = h
    person_mt: dict[str, MtHaplotype] = {}
    if sources.mt_haplotypes:
        from opendvi.io.haplotypes import read_mt_haplotypes

        for path in sources.mt_haplotypes:
            for sid, mh in read_mt_haplotypes(path).items():
                who: str | None = sid if sid in remains_ids else member[sid][1] if sid in member else None
                if who is None:
                    raise FileFormatError(
                        f"sample {sid!r} is neither a remains nor a reference sample of the families",
                        path=str(path), field="sample",
                    )
                if who in person_mt:
                    raise FileFormatError(f"sample {sid!r} has two mtDNA haplotypes", path=str(path), field="sample")
                person_mt[who] = mh
    old = case_lineage
    # -- Y
    y_sys: lin.YSystem | None = old.y if old is not None else None
    have = {m.name: m for m in y_sys.markers} if y_sys is not None else {}
    if sources.y_database is not None:
        db = read_y_database_canonical(sources.y_database, estimator=sources.y_estimator)
        y_sys = lin.YSystem(markers=(), database=db)
    typed_loci: dict[str, str] = {}
    for pid, h in person_y.items():
        for locus in h:
            typed_loci.setdefault(locus, pid)
    if typed_loci and y_sys is None:
        notes.append(
            f"Y-STR loci {', '.join(typed_loci)} read as Y haplotypes ({len(person_y)} samples); not put in the "
            "case: a Y LR needs a haplotype database (--y-database FILE)"
        )
        person_y = {}
    elif y_sys is not None:
        ymarkers: dict[str, lin.YMarker] = {}
        dropped: list[str] = []
        for locus in [*typed_loci, *y_sys.database.loci, *have]:
            if locus in ymarkers or locus in dropped:
                continue
            if locus in have:
                ymarkers[locus] = have[locus]
                continue
            try:
                ymarkers[locus] = lin.default_y_marker(locus)
            except OpenDVIError:
                if locus in typed_loci and not skip_unknown_markers:
                    raise FileFormatError(
                        f"Y locus {locus} (first in {typed_loci[locus]}) has no bundled mutation rate; "
                        "leave it out with --skip-unknown-markers"
                    ) from None
                if locus in typed_loci:
                    notes.append(f"Y locus {locus} has no bundled mutation rate: left out")
                    dropped.append(locus)
                else:  # a database locus no one is typed at: never compared
                    ymarkers[locus] = lin.YMarker(locus, 0.0, copies=1)
        if dropped:
            person_y = {pid: {k: v for k, v in h.items() if k not in dropped} for pid, h in person_y.items()}
            person_y = {pid: h for pid, h in person_y.items() if h}
        y_sys = lin.YSystem(markers=tuple(ymarkers.values()), database=y_sys.database)
    # -- mt
    mt_sys: lin.MtSystem | None = old.mt if old is not None else None
    if sources.mt_database is not None:
        from opendvi.io.haplotypes import read_mt_database

        mdb: lin.MtDatabase = read_mt_database(sources.mt_database, estimator=sources.mt_estimator)
        try:
            mt_sys = lin.MtSystem(rate=sources.mt_rate, database=mdb)
        except OpenDVIError as exc:
            raise FileFormatError(f"--mt-rate: {exc}") from None
    if person_mt and mt_sys is None:
        notes.append(
            f"mtDNA haplotypes of {len(person_mt)} samples not put in the case: an mtDNA LR needs a haplotype "
            "database (--mt-database FILE)"
        )
        person_mt = {}
    haps: dict[str, lin.PersonHaplotypes] = dict(old.haplotypes) if old is not None else {}
    for pid in dict.fromkeys([*person_y, *person_mt]):
        prev = haps.get(pid, lin.PersonHaplotypes())
        haps[pid] = lin.PersonHaplotypes(y=person_y.get(pid, prev.y), mt=person_mt.get(pid, prev.mt))
    if y_sys is None and mt_sys is None:
        return None
    return lin.CaseLineage(y=y_sys, mt=mt_sys, haplotypes=haps)

