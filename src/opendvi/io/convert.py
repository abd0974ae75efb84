"""Conversions between field formats, and assembling a case from several files.

:func:`load` reads any supported file into a :class:`Dataset` (whatever the
file holds: a whole case, profiles, families, frequencies);
:func:`assemble_case` joins remains, families, reference profiles and a
frequency source into one validated :class:`~opendvi.core.case.Case`;
:func:`save` writes a dataset in a target format. Every error is a
:class:`~opendvi.core.errors.FileFormatError` naming the file and the place;
nothing is written unless the whole input is valid (outputs are atomic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage import (
    DEFAULT_ESTIMATOR,
    CaseLineage,
    MtDatabase,
    MtHaplotype,
    MtSystem,
    PersonHaplotypes,
    YDatabase,
    YHaplotype,
    YMarker,
    YSystem,
    default_y_marker,
)
from opendvi.core.markers import Marker, canonical_marker_name
from opendvi.core.mutation import MutationModel
from opendvi.io.case_json import case_from_dict, case_to_dict, read_case, write_case
from opendvi.io.cmf import read_cmf, write_cmf
from opendvi.io.familias import read_fam, write_fam
from opendvi.io.frequencies import FrequencyDatabase, FrequencyTable, read_frequencies, write_familias_frequencies
from opendvi.io.genemapper import read_genemapper
from opendvi.io.normalise import read_text, write_atomic
from opendvi.io.profiles import AMEL, ProfileRecord, ProfileSet, merge_profile_sets, y_locus
from opendvi.io.tables import (
    FamilyTable,
    families_table_rows,
    ped_text,
    profiles_table_rows,
    read_families_table,
    read_ped,
    read_profiles_table,
    read_rows,
    write_table,
)

FORMATS = ("json", "fam", "genemapper", "cmf", "ped", "freq", "profiles-csv", "families-csv", "xlsx")


@dataclass
class Dataset:
    """What one input file holds."""

    source: str
    format: str
    case: Case | None = None
    profiles: ProfileSet | None = None
    family_table: FamilyTable | None = None
    families: list[Family] | None = None
    freqs: FrequencyDatabase | None = None
    notes: list[str] = field(default_factory=list)


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
    y_estimator: str = DEFAULT_ESTIMATOR
    mt_estimator: str = DEFAULT_ESTIMATOR
    mt_rate: float = DEFAULT_MT_RATE


def read_y_database_canonical(path: str | Path, *, estimator: str = DEFAULT_ESTIMATOR) -> YDatabase:
    """A Y haplotype database (:func:`opendvi.io.haplotypes.read_y_database`:
    a CSV with counts, or the ``disclapmix`` danes file) with its loci spelt
    as the profile readers spell them (``DYS389 I`` -> ``DYS389I``,
    ``Y-GATA-H4`` -> ``YGATAH4``), the discrete Laplace model fitted on those."""
    from opendvi.io.haplotypes import read_y_database
    from opendvi.io.lineage_json import fit_y_database_model

    p = str(path)
    db, markers = read_y_database(path, estimator=DEFAULT_ESTIMATOR)
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
            YMarker(rename[m.name], m.rate, m.copies) for m in markers
        )
        try:
            model = fit_y_database_model(haps, db.counts, ymarkers)
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=p) from None
    try:
        return YDatabase(haps, db.counts, estimator, model=model, name=db.name)
    except OpenDVIError as exc:
        raise FileFormatError(str(exc), path=p) from None


def guess_format(path: str | Path, *, output: bool = False) -> str:
    """The format of a file from its extension and, for inputs, its first line."""
    p = Path(path)
    ext = p.suffix.lower()
    direct = {".json": "json", ".fam": "fam", ".xml": "cmf", ".ped": "ped", ".xlsx": "xlsx", ".xlsm": "xlsx"}
    if ext in direct:
        return direct[ext]
    if output:
        if ext in (".csv", ".tsv"):
            return "profiles-csv"
        if ext == ".txt":
            return "freq"
        raise FileFormatError(
            f"cannot tell the output format from {p.name!r}; give --to ({', '.join(FORMATS)})", path=str(p)
        )
    from opendvi.io.limits import check_file

    check_file(p)
    text = read_text(p)
    first = text.splitlines()[0] if text.strip() else ""
    low = first.lower().replace('"', "")
    cells = [c.strip().replace(" ", "").replace("_", "") for c in low.replace("\t", ",").split(",")]
    if "samplename" in cells and ("marker" in cells or "\t" in first):
        return "genemapper"
    if "marker" in cells and any(c.startswith("allele") for c in cells) and "frequency" not in cells:
        return "genemapper"
    if {"father", "mother"} <= set(cells) or ({"fid", "mid"} <= set(cells) and "family" in cells):
        return "families-csv"
    if cells[:1] == ["allele"] or "frequency" in cells or "freq" in cells:
        return "freq"
    words = low.split()
    if words[:4] == ["id", "fid", "mid", "sex"] or words[:5] == ["famid", "id", "fid", "mid", "sex"]:
        return "ped"
    if ext in (".csv", ".tsv"):
        return "profiles-csv"
    if "familias" in low:
        return "fam"
    return "freq"


def load(path: str | Path, fmt: str | None = None, *, population: str | None = None) -> Dataset:
    """Read any supported file."""
    p = Path(path)
    fmt = fmt or guess_format(p)
    if fmt not in FORMATS:
        raise FileFormatError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})", path=str(p))
    ds = Dataset(source=str(p), format=fmt)
    if fmt == "json":
        ds.case = read_case(p)
    elif fmt == "fam":
        ds.case, notes = read_fam(p)
        ds.notes += notes
    elif fmt == "genemapper":
        ds.profiles = read_genemapper(p)
    elif fmt == "cmf":
        ds.profiles = read_cmf(p)
    elif fmt == "profiles-csv":
        ds.profiles = read_profiles_table(p)
    elif fmt == "families-csv":
        ds.family_table = read_families_table(p)
    elif fmt == "ped":
        ds.families, _ = read_ped(p, missing_prefix=r"(M\d+|Missing)")
    elif fmt == "freq":
        ds.freqs = read_frequencies(p, population=population) if population else read_frequencies(p)
    elif fmt == "xlsx":
        _load_xlsx(p, ds)
    if ds.profiles is not None:
        ds.notes += ds.profiles.notes
    return ds


def _load_xlsx(p: Path, ds: Dataset) -> None:
    from opendvi.io.limits import open_workbook

    wb = open_workbook(p)  # sizes and declared dimensions checked before openpyxl reads anything
    names = list(wb.sheetnames)
    wb.close()
    lower = {n.lower(): n for n in names}
    if "families" in lower:
        ds.family_table = read_families_table(p, sheet=lower["families"])
    if "profiles" in lower:
        ds.profiles = read_profiles_table(p, sheet=lower["profiles"])
    if ds.family_table is None and ds.profiles is None:
        header, _ = read_rows(p)
        keys = {h.strip().lower() for h in header}
        if {"father", "mother"} <= keys:
            ds.family_table = read_families_table(p)
        else:
            ds.profiles = read_profiles_table(p)


# ---------------------------------------------------------------------------
# assembling a case
# ---------------------------------------------------------------------------


def mutation_models(
    model: str = "none",
    *,
    female_rate: float = 0.001,
    male_rate: float = 0.002,
    range_: float = 0.1,
    rate2: float = 1e-6,
) -> tuple[MutationModel | None, MutationModel | None]:
    """Female and male models for markers made from a frequency file."""
    if model == "none":
        return None, None
    if model not in ("equal", "proportional", "stepwise"):
        raise FileFormatError(f"unknown mutation model {model!r} (none, equal, proportional, stepwise)")
    extra = {"range": range_, "rate2": rate2} if model == "stepwise" else {}
    return MutationModel(model, rate=female_rate, **extra), MutationModel(model, rate=male_rate, **extra)  # type: ignore[arg-type]


def _markers_from_db(
    db: FrequencyDatabase, used: Sequence[str], female: MutationModel | None, male: MutationModel | None
) -> list[Marker]:
    keys = {canonical_marker_name(m) for m in used}
    names = [t.name for k, t in db.tables.items() if not keys or k in keys]
    try:
        return [db.marker(n, female=female, male=male) for n in names]
    except OpenDVIError as exc:
        raise FileFormatError(str(exc), path=db.source) from None


def assemble_case(
    *,
    name: str,
    remains: Sequence[Sample] = (),
    families: Sequence[Family] = (),
    markers: Sequence[Marker] | None = None,
    freqs: FrequencyDatabase | None = None,
    theta: float = 0.0,
    mutation: tuple[MutationModel | None, MutationModel | None] = (None, None),
    skip_unknown_markers: bool = False,
    notes: list[str] | None = None,
    lineage: CaseLineage | None = None,
) -> Case:
    """One validated case from its parts.

    Markers come from ``markers`` (a case or .fam) or ``freqs`` (then only the
    markers typed somewhere, in the database's order). A typed marker absent
    from the frequencies is an error listing it and the sample, unless
    ``skip_unknown_markers`` (then it is left out, with a note per marker).
    ``lineage`` (Y-STR and mtDNA systems and haplotypes) goes into the case
    as it is; a case with lineage data needs no autosomal marker.
    """
    notes = notes if notes is not None else []
    used: dict[str, None] = {}
    for s in remains:
        for m in s.genotypes:
            used.setdefault(m, None)
    for f in families:
        for g in f.genotypes.values():
            for m in g:
                used.setdefault(m, None)
    if markers is None:
        if freqs is None:
            if used or lineage is None:
                raise FileFormatError(
                    "a case needs allele frequencies: give a frequency file (--freqs) or a .fam/.json with markers"
                )
            markers = []
        else:
            markers = _markers_from_db(freqs, list(used), *mutation)
    by_key = {canonical_marker_name(m.name): m.name for m in markers}
    unknown: dict[str, str] = {}
    for who, g in [(f"remains {s.id}", s.genotypes) for s in remains] + [
        (f"family {f.id}, member {pid}", g) for f in families for pid, g in f.genotypes.items()
    ]:
        for m in g:
            if canonical_marker_name(m) not in by_key:
                unknown.setdefault(m, who)
    if unknown and not skip_unknown_markers:
        lst = ", ".join(f"{m} (first in {w})" for m, w in unknown.items())
        raise FileFormatError(
            f"marker(s) not in the frequency database: {lst}; add their frequencies, or pass --skip-unknown-markers"
        )
    for m, w in unknown.items():
        notes.append(f"marker {m} (first in {w}) is not in the frequency database: left out")

    def fix(g: dict[str, tuple[str, ...]] | object) -> dict[str, tuple[str, ...]]:
        assert isinstance(g, dict)
        return {by_key[canonical_marker_name(m)]: a for m, a in g.items() if canonical_marker_name(m) in by_key}

    rem = [replace(s, genotypes=fix(dict(s.genotypes))) for s in remains]
    fams = [replace(f, genotypes={pid: fix(dict(g)) for pid, g in f.genotypes.items()}) for f in families]
    case = Case(
        name=name, markers=tuple(markers), remains=tuple(rem), families=tuple(fams), theta=theta, lineage=lineage
    )
    return validate_case(case)


def validate_case(case: Case, *, path: str | None = None) -> Case:
    """The case checked as its JSON would be (unique ids, sexes, genotypes)."""
    return case_from_dict(case_to_dict(case), path=path)


def case_of(
    datasets: Sequence[Dataset],
    *,
    role: str = "remains",
    name: str,
    freqs: FrequencyDatabase | None = None,
    theta: float | None = None,
    mutation: tuple[MutationModel | None, MutationModel | None] = (None, None),
    skip_mixtures: bool = False,
    skip_unknown_markers: bool = False,
    notes: list[str],
    lineage: LineageSources | None = None,
) -> Case:
    """A case from several inputs: cases (JSON, .fam) are merged; profile
    files give remains (or, with ``role="references"``, the reference samples
    that the families tables name by barcode); families tables and ped files
    give families. Profiles of one sample in several files (an autosomal and
    a Y kit) are merged. Y-STR loci of the profiles become Y haplotypes and,
    with the sources of ``lineage``, the case's ``lineage`` part
    (:func:`build_lineage`)."""
    remains: list[Sample] = []
    families: list[Family] = []
    markers: list[Marker] | None = None
    th = 0.0
    ref_profiles: dict[str, Sample] = {}
    tables: list[FamilyTable] = []
    case_lineage: CaseLineage | None = None
    for ds in datasets:
        notes += [n for n in ds.notes if n not in notes]
        if ds.case is not None:
            remains += ds.case.remains
            families += ds.case.families
            if ds.case.lineage is not None:
                case_lineage = _merge_case_lineage(case_lineage, ds.case.lineage, ds.source)
            if markers is None:
                markers = list(ds.case.markers)
                th = ds.case.theta
        if ds.freqs is not None and freqs is None:
            freqs = ds.freqs
        if ds.family_table is not None:
            tables.append(ds.family_table)
        if ds.families is not None:
            families += ds.families
    named = {code for t in tables for _, _, _, codes in t.families for code in codes.values()}
    y_by_sample: dict[str, YHaplotype] = {}
    profile_sets = [ds.profiles for ds in datasets if ds.profiles is not None]
    if profile_sets:
        merged = merge_profile_sets(profile_sets, notes=notes) if len(profile_sets) > 1 else profile_sets[0]
        samples, y_by_sample = merged.samples_and_haplotypes(skip_mixtures=skip_mixtures, notes=notes)
        for s in samples:
            if role == "references" or s.id in named:
                ref_profiles[s.id] = s
            else:
                remains.append(s)
    for t in tables:
        families += t.build(ref_profiles, notes=notes)
    if ref_profiles and not tables:
        raise FileFormatError("reference profiles need a families table (--families) that names their samples")
    if freqs is not None:
        markers = None  # an explicit frequency file wins
    lin = build_lineage(
        remains=remains,
        families=families,
        tables=tables,
        y_by_sample=y_by_sample,
        sources=lineage or LineageSources(),
        case_lineage=case_lineage,
        skip_unknown_markers=skip_unknown_markers,
        notes=notes,
    )
    return assemble_case(
        name=name,
        remains=remains,
        families=families,
        markers=markers,
        freqs=freqs,
        theta=th if theta is None else theta,
        mutation=mutation,
        skip_unknown_markers=skip_unknown_markers,
        notes=notes,
        lineage=lin,
    )


def _merge_case_lineage(have: CaseLineage | None, new: CaseLineage, source: str) -> CaseLineage:
    if have is None:
        return new
    if (new.y is not None and have.y is not None and new.y != have.y) or (
        new.mt is not None and have.mt is not None and new.mt != have.mt
    ):
        raise FileFormatError("two cases with different lineage systems (loci, rates or databases)", path=source)
    return CaseLineage(y=have.y or new.y, mt=have.mt or new.mt, haplotypes={**have.haplotypes, **new.haplotypes})


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
    y_by_sample: dict[str, YHaplotype],
    sources: LineageSources,
    case_lineage: CaseLineage | None = None,
    skip_unknown_markers: bool = False,
    notes: list[str],
) -> CaseLineage | None:
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
    person_y: dict[str, YHaplotype] = {}
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
    y_sys: YSystem | None = old.y if old is not None else None
    have = {m.name: m for m in y_sys.markers} if y_sys is not None else {}
    if sources.y_database is not None:
        db = read_y_database_canonical(sources.y_database, estimator=sources.y_estimator)
        y_sys = YSystem(markers=(), database=db)
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
        ymarkers: dict[str, YMarker] = {}
        dropped: list[str] = []
        for locus in [*typed_loci, *y_sys.database.loci, *have]:
            if locus in ymarkers or locus in dropped:
                continue
            if locus in have:
                ymarkers[locus] = have[locus]
                continue
            try:
                ymarkers[locus] = default_y_marker(locus)
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
                    ymarkers[locus] = YMarker(locus, 0.0, copies=1)
        if dropped:
            person_y = {pid: {k: v for k, v in h.items() if k not in dropped} for pid, h in person_y.items()}
            person_y = {pid: h for pid, h in person_y.items() if h}
        y_sys = YSystem(markers=tuple(ymarkers.values()), database=y_sys.database)
    # -- mt
    mt_sys: MtSystem | None = old.mt if old is not None else None
    if sources.mt_database is not None:
        from opendvi.io.haplotypes import read_mt_database

        mdb: MtDatabase = read_mt_database(sources.mt_database, estimator=sources.mt_estimator)
        try:
            mt_sys = MtSystem(rate=sources.mt_rate, database=mdb)
        except OpenDVIError as exc:
            raise FileFormatError(f"--mt-rate: {exc}") from None
    if person_mt and mt_sys is None:
        notes.append(
            f"mtDNA haplotypes of {len(person_mt)} samples not put in the case: an mtDNA LR needs a haplotype "
            "database (--mt-database FILE)"
        )
        person_mt = {}
    haps: dict[str, PersonHaplotypes] = dict(old.haplotypes) if old is not None else {}
    for pid in dict.fromkeys([*person_y, *person_mt]):
        prev = haps.get(pid, PersonHaplotypes())
        haps[pid] = PersonHaplotypes(y=person_y.get(pid, prev.y), mt=person_mt.get(pid, prev.mt))
    if y_sys is None and mt_sys is None:
        return None
    return CaseLineage(y=y_sys, mt=mt_sys, haplotypes=haps)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def _freq_tables(markers: Sequence[Marker]) -> dict[str, FrequencyTable]:
    return {canonical_marker_name(m.name): FrequencyTable(m.name, m.alleles, m.frequencies) for m in markers}


def save_case(case: Case, path: str | Path, fmt: str | None = None, *, notes: list[str]) -> None:
    """Write a case in ``fmt`` (json, fam, cmf, ped, freq, profiles-csv,
    families-csv, xlsx)."""
    p = Path(path)
    fmt = fmt or guess_format(p, output=True)
    if fmt == "json":
        write_atomic(p, lambda tmp: write_case(case, tmp))
    elif fmt == "fam":
        write_fam(case, p, notes=notes)
    elif fmt == "cmf":
        y_loci = {r.id: [(k, list(v)) for k, v in (_case_y(case, r.id) or {}).items()] for r in case.remains}
        write_cmf(case.remains, p, extra_loci=y_loci)
    elif fmt == "ped":
        from opendvi.io.normalise import write_text_atomic

        write_text_atomic(p, ped_text(case))
    elif fmt == "freq":
        tables = _freq_tables(case.markers)
        write_atomic(p, lambda tmp: write_familias_frequencies(tables, tmp))
    elif fmt == "profiles-csv":
        refs = _case_references(case)
        h, rows = profiles_table_rows([*case.remains, *refs], [m.name for m in case.markers], extra=_y_columns(case))
        write_table(h, rows, p)
    elif fmt == "families-csv":
        h, rows = families_table_rows(case.families)
        write_table(h, rows, p)
    elif fmt == "xlsx":
        refs = _case_references(case)
        h, rows = profiles_table_rows([*case.remains, *refs], [m.name for m in case.markers], extra=_y_columns(case))
        fh, frows = families_table_rows(case.families)
        write_table(h, rows, p, sheet="profiles", sheets={"families": (fh, frows)})
    elif fmt == "genemapper":
        raise FileFormatError("GeneMapper tables are read, not written: use cmf or profiles-csv", path=str(p))
    else:
        raise FileFormatError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})", path=str(p))


def _case_y(case: Case, pid: str) -> YHaplotype | None:
    return case.lineage.y_of(pid) if case.lineage is not None else None


def _case_references(case: Case) -> list[Sample]:
    """Typed family members as samples (genotypes or a Y haplotype)."""
    out = []
    for f in case.families:
        for pid in f.pedigree.ids:
            if pid in f.genotypes or _case_y(case, pid):
                out.append(Sample(pid, f.sex_of(pid), f.genotypes.get(pid, {})))
    return out


def _y_columns(case: Case) -> dict[str, dict[str, str]]:
    """Y haplotypes as profile-table columns (copies joined by commas)."""
    if case.lineage is None:
        return {}
    return {pid: {k: ",".join(v) for k, v in h.y.items()} for pid, h in case.lineage.haplotypes.items() if h.y}


def _record_extra_loci(r: ProfileRecord) -> list[tuple[str, list[str]]]:
    """The sex tests (Amelogenin, the Yindel) and Y-STR loci of a record as read."""
    out: list[tuple[str, list[str]]] = [(m, list(v)) for m, v in r.sex_calls.items() if v]
    out += [(m, list(v)) for m, v in r.y_calls.items() if v]
    return out


def save_profiles(profiles: ProfileSet, path: str | Path, fmt: str) -> None:
    """Write profiles alone (no frequencies needed): cmf, profiles-csv, xlsx.

    A profile-to-profile conversion keeps what the laboratory called:
    mixtures keep all their alleles (CMF: category "Forensic Mixture"),
    off-ladder calls stay "OL"; Amelogenin and the Yindel as called; the
    Y-STR loci (a multi-copy locus as one locus, ``DYS385`` = ``11,14``)."""
    if fmt == "cmf":
        # Amelogenin as called when the file had it (else from the sex), the Yindel, the Y loci
        samples = [
            Sample(r.id, None if r.sex_calls.get(AMEL) else r.sex, dict(r.genotypes)) for r in profiles.records
        ]
        cats = {r.id: "Forensic Mixture" for r in profiles.records if r.is_mixture}
        extra = {r.id: _record_extra_loci(r) for r in profiles.records}
        write_cmf(samples, path, categories=cats, extra_loci=extra)
    elif fmt in ("profiles-csv", "xlsx"):
        samples = [Sample(r.id, r.sex, dict(r.genotypes)) for r in profiles.records]
        columns = {
            r.id: {m: ("," if y_locus(m) else "/").join(v) for m, v in _record_extra_loci(r)} for r in profiles.records
        }
        h, rows = profiles_table_rows(samples, extra=columns)
        write_table(h, rows, path, sheet="profiles")
    elif fmt == "genemapper":
        raise FileFormatError("GeneMapper tables are read, not written: use cmf or profiles-csv", path=str(path))
    else:
        raise FileFormatError(
            f"profiles alone cannot be written as {fmt}: a case needs frequencies (--freqs)", path=str(path)
        )


def save_freqs(db: FrequencyDatabase, path: str | Path, fmt: str, *, notes: list[str]) -> None:
    if fmt == "freq":
        write_atomic(path, lambda tmp: write_familias_frequencies(db, tmp))
    elif fmt in ("json", "fam"):
        markers = db.markers()
        case = validate_case(Case(name=Path(str(path)).stem, markers=tuple(markers)))
        save_case(case, path, fmt, notes=notes)
    else:
        raise FileFormatError(f"frequencies cannot be written as {fmt}", path=str(path))


def finite(x: float) -> bool:
    return math.isfinite(x)
