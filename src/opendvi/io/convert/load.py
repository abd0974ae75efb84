"""Reading any supported file into a :class:`Dataset`: the format told from
the name and the first line, or given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from opendvi.core.case import Case, Family
from opendvi.core.errors import FileFormatError
from opendvi.io.case_json import read_case
from opendvi.io.cmf import read_cmf
from opendvi.io.familias import read_fam
from opendvi.io.frequencies import FrequencyDatabase, read_frequencies
from opendvi.io.genemapper import read_genemapper
from opendvi.io.profiles import ProfileSet
from opendvi.io.source import Source, read_text, reopenable, rewind, source_name
from opendvi.io.tables import FamilyTable, read_families_table, read_ped, read_profiles_table, read_rows
from opendvi.io.tables.rows import open_workbook

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



def guess_format(source: Source, *, output: bool = False, filename: str | None = None) -> str:
    """The format of a file from its extension (of ``filename`` or the path)
    and, for inputs, its first line (a stream is read, then put back at its start)."""
    name = source_name(source, filename)
    p = Path(name)
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
            f"cannot tell the output format from {p.name!r}; give --to ({', '.join(FORMATS)})", path=name
        )
    text = read_text(source, name)
    rewind(source)
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


def load(source: Source, fmt: str | None = None, *, population: str | None = None,
         filename: str | None = None) -> Dataset:
    """Read any supported file: a path, or a file object with ``filename``
    (the name messages give it; its extension helps tell the format)."""
    src, name = reopenable(source, filename)
    fmt = fmt or guess_format(src, filename=name)
    if fmt not in FORMATS:
        raise FileFormatError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})", path=name)
    src = rewind(src)
    ds = Dataset(source=name, format=fmt)
    if fmt == "json":
        ds.case = read_case(src, name)
    elif fmt == "fam":
        ds.case, notes = read_fam(src, filename=name)
        ds.notes += notes
    elif fmt == "genemapper":
        ds.profiles = read_genemapper(src, filename=name)
    elif fmt == "cmf":
        ds.profiles = read_cmf(src, filename=name)
    elif fmt == "profiles-csv":
        ds.profiles = read_profiles_table(src, filename=name)
    elif fmt == "families-csv":
        ds.family_table = read_families_table(src, filename=name)
    elif fmt == "ped":
        ds.families, _ = read_ped(src, missing_prefix=r"(M\d+|Missing)", filename=name)
    elif fmt == "freq":
        ds.freqs = read_frequencies(src, filename=name, population=population) if population else \
            read_frequencies(src, filename=name)
    elif fmt == "xlsx":
        _load_xlsx(src, name, ds)
    if ds.profiles is not None:
        ds.notes += ds.profiles.notes
    return ds


def _load_xlsx(src: Source, name: str, ds: Dataset) -> None:
    wb = open_workbook(src, name)  # sizes and declared dimensions checked before openpyxl reads anything
    names = list(wb.sheetnames)
    wb.close()
    lower = {n.lower(): n for n in names}
    if "families" in lower:
        ds.family_table = read_families_table(rewind(src), sheet=lower["families"], filename=name)
    if "profiles" in lower:
        ds.profiles = read_profiles_table(rewind(src), sheet=lower["profiles"], filename=name)
    if ds.family_table is None and ds.profiles is None:
        header, _ = read_rows(rewind(src), filename=name)
        keys = {h.strip().lower() for h in header}
        if {"father", "mother"} <= keys:
            ds.family_table = read_families_table(rewind(src), filename=name)
        else:
            ds.profiles = read_profiles_table(rewind(src), filename=name)
