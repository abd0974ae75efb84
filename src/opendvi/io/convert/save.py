"""Writing a case, profiles alone or frequencies alone in a target format
(atomically: nothing is written unless the whole output is valid)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from opendvi.core.case import Case, Sample
from opendvi.core.errors import FileFormatError
from opendvi.core.lineage import YHaplotype
from opendvi.core.markers import Marker, canonical_marker_name
from opendvi.io.case_json import validate_case, write_case
from opendvi.io.cmf import write_cmf
from opendvi.io.convert.load import FORMATS, guess_format
from opendvi.io.familias import write_fam
from opendvi.io.frequencies import FrequencyDatabase, FrequencyTable, write_familias_frequencies
from opendvi.io.profiles import AMEL, ProfileRecord, ProfileSet, y_locus
from opendvi.io.source import Target, put_bytes, source_name
from opendvi.io.tables import families_table_rows, ped_text, profiles_table_rows, write_table


def _freq_tables(markers: Sequence[Marker]) -> dict[str, FrequencyTable]:
    return {canonical_marker_name(m.name): FrequencyTable(m.name, m.alleles, m.frequencies) for m in markers}


def save_case(
    case: Case, target: Target, fmt: str | None = None, *, notes: list[str], filename: str | None = None
) -> None:
    """Write a case in ``fmt`` (json, fam, cmf, ped, freq, profiles-csv,
    families-csv, xlsx; default: from the extension of ``filename`` or the
    path) to a path (atomically) or a binary file object."""
    name = source_name(target, filename)
    fmt = fmt or guess_format(name, output=True)
    if fmt == "json":
        write_case(case, target)
    elif fmt == "fam":
        write_fam(case, target, notes=notes, filename=name)
    elif fmt == "cmf":
        y_loci = {r.id: [(k, list(v)) for k, v in (_case_y(case, r.id) or {}).items()] for r in case.remains}
        write_cmf(case.remains, target, filename=name, extra_loci=y_loci)
    elif fmt == "ped":
        put_bytes(target, ped_text(case).encode("utf-8"))
    elif fmt == "freq":
        write_familias_frequencies(_freq_tables(case.markers), target)
    elif fmt in ("profiles-csv", "xlsx"):
        refs = _case_references(case)
        h, rows = profiles_table_rows([*case.remains, *refs], [m.name for m in case.markers], extra=_y_columns(case))
        sheets = {"families": families_table_rows(case.families)} if fmt == "xlsx" else None
        write_table(h, rows, target, sheet="profiles" if fmt == "xlsx" else "results", sheets=sheets, filename=name)
    elif fmt == "families-csv":
        h, rows = families_table_rows(case.families)
        write_table(h, rows, target, filename=name)
    elif fmt == "genemapper":
        raise FileFormatError("GeneMapper tables are read, not written: use cmf or profiles-csv", path=name)
    else:
        raise FileFormatError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})", path=name)


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


def save_profiles(profiles: ProfileSet, target: Target, fmt: str, *, filename: str | None = None) -> None:
    """Write profiles alone (no frequencies needed): cmf, profiles-csv, xlsx.

    A profile-to-profile conversion keeps what the laboratory called:
    mixtures keep all their alleles (CMF: category "Forensic Mixture"),
    off-ladder calls stay "OL"; Amelogenin and the Yindel as called; the
    Y-STR loci (a multi-copy locus as one locus, ``DYS385`` = ``11,14``).
    ``target``: a path (written atomically) or a binary file object."""
    name = source_name(target, filename)
    if fmt == "cmf":
        # Amelogenin as called when the file had it (else from the sex), the Yindel, the Y loci
        samples = [
            Sample(r.id, None if r.sex_calls.get(AMEL) else r.sex, dict(r.genotypes)) for r in profiles.records
        ]
        cats = {r.id: "Forensic Mixture" for r in profiles.records if r.is_mixture}
        extra = {r.id: _record_extra_loci(r) for r in profiles.records}
        write_cmf(samples, target, filename=name, categories=cats, extra_loci=extra)
    elif fmt in ("profiles-csv", "xlsx"):
        samples = [Sample(r.id, r.sex, dict(r.genotypes)) for r in profiles.records]
        columns = {
            r.id: {m: ("," if y_locus(m) else "/").join(v) for m, v in _record_extra_loci(r)} for r in profiles.records
        }
        h, rows = profiles_table_rows(samples, extra=columns)
        write_table(h, rows, target, sheet="profiles", filename=name)
    elif fmt == "genemapper":
        raise FileFormatError("GeneMapper tables are read, not written: use cmf or profiles-csv", path=name)
    else:
        raise FileFormatError(
            f"profiles alone cannot be written as {fmt}: a case needs frequencies (--freqs)", path=name
        )


def save_freqs(
    db: FrequencyDatabase, target: Target, fmt: str, *, notes: list[str], filename: str | None = None
) -> None:
    """Write frequencies alone: a Familias frequency file, or a case of markers only (json, fam)."""
    name = source_name(target, filename)
    if fmt == "freq":
        write_familias_frequencies(db, target)
    elif fmt in ("json", "fam"):
        markers = db.markers()
        case = validate_case(Case(name=Path(name).stem, markers=tuple(markers)))
        save_case(case, target, fmt, notes=notes, filename=name)
    else:
        raise FileFormatError(f"frequencies cannot be written as {fmt}", path=name)
