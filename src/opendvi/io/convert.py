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
from opendvi.core.markers import Marker, canonical_marker_name
from opendvi.core.mutation import MutationModel
from opendvi.io.case_json import case_from_dict, case_to_dict, read_case, write_case
from opendvi.io.cmf import read_cmf, write_cmf
from opendvi.io.familias import read_fam, write_fam
from opendvi.io.frequencies import FrequencyDatabase, FrequencyTable, read_frequencies, write_familias_frequencies
from opendvi.io.genemapper import read_genemapper
from opendvi.io.normalise import read_text, write_atomic
from opendvi.io.profiles import ProfileSet
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
) -> Case:
    """One validated case from its parts.

    Markers come from ``markers`` (a case or .fam) or ``freqs`` (then only the
    markers typed somewhere, in the database's order). A typed marker absent
    from the frequencies is an error listing it and the sample, unless
    ``skip_unknown_markers`` (then it is left out, with a note per marker).
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
            raise FileFormatError(
                "a case needs allele frequencies: give a frequency file (--freqs) or a .fam/.json with markers"
            )
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
    case = Case(name=name, markers=tuple(markers), remains=tuple(rem), families=tuple(fams), theta=theta)
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
) -> Case:
    """A case from several inputs: cases (JSON, .fam) are merged; profile
    files give remains (or, with ``role="references"``, the reference samples
    that the families tables name by barcode); families tables and ped files
    give families."""
    remains: list[Sample] = []
    families: list[Family] = []
    markers: list[Marker] | None = None
    th = 0.0
    ref_profiles: dict[str, Sample] = {}
    tables: list[FamilyTable] = []
    for ds in datasets:
        notes += [n for n in ds.notes if n not in notes]
        if ds.case is not None:
            remains += ds.case.remains
            families += ds.case.families
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
    for ds in datasets:
        if ds.profiles is None:
            continue
        samples = ds.profiles.samples(skip_mixtures=skip_mixtures, notes=notes)
        for s in samples:
            if role == "references" or s.id in named:
                if s.id in ref_profiles:
                    raise FileFormatError(f"sample {s.id} is given twice", path=ds.source)
                ref_profiles[s.id] = s
            else:
                remains.append(s)
    for t in tables:
        families += t.build(ref_profiles, notes=notes)
    if ref_profiles and not tables:
        raise FileFormatError("reference profiles need a families table (--families) that names their samples")
    if freqs is not None:
        markers = None  # an explicit frequency file wins
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
    )


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
        write_cmf(case.remains, p)
    elif fmt == "ped":
        from opendvi.io.normalise import write_text_atomic

        write_text_atomic(p, ped_text(case))
    elif fmt == "freq":
        tables = _freq_tables(case.markers)
        write_atomic(p, lambda tmp: write_familias_frequencies(tables, tmp))
    elif fmt == "profiles-csv":
        refs = [Sample(pid, f.sex_of(pid), g) for f in case.families for pid, g in f.genotypes.items()]
        h, rows = profiles_table_rows([*case.remains, *refs], [m.name for m in case.markers])
        write_table(h, rows, p)
    elif fmt == "families-csv":
        h, rows = families_table_rows(case.families)
        write_table(h, rows, p)
    elif fmt == "xlsx":
        refs = [Sample(pid, f.sex_of(pid), g) for f in case.families for pid, g in f.genotypes.items()]
        h, rows = profiles_table_rows([*case.remains, *refs], [m.name for m in case.markers])
        fh, frows = families_table_rows(case.families)
        write_table(h, rows, p, sheet="profiles", sheets={"families": (fh, frows)})
    elif fmt == "genemapper":
        raise FileFormatError("GeneMapper tables are read, not written: use cmf or profiles-csv", path=str(p))
    else:
        raise FileFormatError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})", path=str(p))


def save_profiles(profiles: ProfileSet, path: str | Path, fmt: str) -> None:
    """Write profiles alone (no frequencies needed): cmf, profiles-csv, xlsx.

    A profile-to-profile conversion keeps what the laboratory called:
    mixtures keep all their alleles (CMF: category "Forensic Mixture"),
    off-ladder calls stay "OL"."""
    samples = [Sample(r.id, r.sex, dict(r.genotypes)) for r in profiles.records]
    if fmt == "cmf":
        cats = {r.id: "Forensic Mixture" for r in profiles.records if r.is_mixture}
        write_cmf(samples, path, categories=cats)
    elif fmt in ("profiles-csv", "xlsx"):
        h, rows = profiles_table_rows(samples)
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
