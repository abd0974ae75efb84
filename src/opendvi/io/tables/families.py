"""The families template (CSV or Excel): one row per person, columns
``family``, ``id``, ``father``, ``mother``, ``sex``, ``missing``, ``sample``
(the barcode of the person's reference sample, linking to a profiles file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opendvi.core.case import Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype
from opendvi.io.normalise import parse_bool, parse_sex
from opendvi.io.source import Source, source_name
from opendvi.io.tables.rows import find_column, read_rows


@dataclass
class FamilyTable:
    """Families read from a template: pedigrees and the barcodes of their members."""

    families: list[tuple[str, list[Individual], list[str], dict[str, str]]] = field(default_factory=list)
    source: str = ""
    notes: list[str] = field(default_factory=list)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)

    def build(
        self,
        profiles: Mapping[str, Sample] | None = None,
        *,
        notes: list[str] | None = None,
    ) -> list[Family]:
        """Families with the genotypes of the samples named by barcode."""
        profiles = profiles or {}
        out: list[Family] = []
        used: set[str] = set()
        for fid, people, missing, barcodes in self.families:
            gts: dict[str, dict[str, Genotype]] = {}
            for pid, code in barcodes.items():
                s = profiles.get(code)
                problem = (f"sample {code!r} is not in the profiles given" if s is None
                           else "a missing person cannot have a reference sample" if pid in missing else None)
                if problem is not None or s is None:
                    raise FileFormatError(f"family {fid}, person {pid}: {problem}", path=self.source,
                                          line=self.lines.get((fid, pid)), field="sample")
                used.add(code)
                gts[pid] = dict(s.genotypes)
            try:
                ped = Pedigree(people, where=f"family {fid}")
            except OpenDVIError as exc:
                raise FileFormatError(str(exc), path=self.source) from None
            out.append(Family(id=fid, pedigree=ped, genotypes=gts, missing=tuple(missing)))
        if notes is not None:
            for code in profiles:
                if code not in used:
                    notes.append(f"reference sample {code} is not linked to any family member")
        return out


def read_families_table(source: Source, *, sheet: str | None = None, filename: str | None = None) -> FamilyTable:
    """Read a families template (CSV or Excel), one row per person.
    ``filename``: the name messages give a stream."""
    p = source_name(source, filename)
    header, rows = read_rows(source, sheet=sheet, filename=p)
    need = {
        "family": ("family", "familyid", "famid", "fam", "case"),
        "id": ("id", "person", "personid", "name", "member"),
        "father": ("father", "fid", "fatherid", "dad"),
        "mother": ("mother", "mid", "motherid", "mum", "mom"),
        "sex": ("sex", "gender"),
    }
    idx: dict[str, int] = {}
    for k, names in need.items():
        j = find_column(header, names)
        if j is None:
            raise FileFormatError(
                f"missing column {k!r} (header: {', '.join(header)})", path=p, line=1, field="header"
            )
        idx[k] = j
    i_missing = find_column(header, ("missing", "missingperson", "ismissing", "mp"))
    i_sample = find_column(header, ("sample", "barcode", "samplebarcode", "sampleid", "reference", "samplename"))
    known = set(idx.values()) | {i_missing, i_sample}
    for j, h in enumerate(header):
        if j not in known and h:
            raise FileFormatError(f"unknown column {h!r}", path=p, line=1, field=h)
    out = FamilyTable(source=p)
    fams: dict[str, tuple[list[Individual], list[str], dict[str, str]]] = {}
    barcode_seen: dict[str, int] = {}

    def cell(row: list[str], j: int | None) -> str:
        return row[j] if j is not None and j < len(row) else ""

    for ln, row in rows:
        fid = cell(row, idx["family"])
        pid = cell(row, idx["id"])
        if not fid:
            raise FileFormatError("empty family", path=p, line=ln, field=header[idx["family"]])
        if not pid:
            raise FileFormatError("empty id", path=p, line=ln, field=header[idx["id"]])
        fa_raw = cell(row, idx["father"])
        mo_raw = cell(row, idx["mother"])
        fa = None if fa_raw in ("", "0", "NA", "-") else fa_raw
        mo = None if mo_raw in ("", "0", "NA", "-") else mo_raw
        try:
            sex = parse_sex(cell(row, idx["sex"]), allow_unknown=False)
        except ValueError as exc:
            raise FileFormatError(str(exc), path=p, line=ln, field=header[idx["sex"]]) from None
        try:
            missing = parse_bool(cell(row, i_missing)) if i_missing is not None else False
        except ValueError as exc:
            raise FileFormatError(str(exc), path=p, line=ln, field=header[i_missing or 0]) from None
        people, miss, codes = fams.setdefault(fid, ([], [], {}))
        if any(q.id == pid for q in people):
            raise FileFormatError(
                f"person {pid} appears twice in family {fid}", path=p, line=ln, field=header[idx["id"]]
            )
        people.append(Individual(pid, fa, mo, sex))
        out.lines[(fid, pid)] = ln
        if missing:
            miss.append(pid)
        code = cell(row, i_sample)
        if code:
            if code in barcode_seen:
                raise FileFormatError(f"sample {code} is given to two persons (also line {barcode_seen[code]})",
                                      path=p, line=ln, field="sample")
            barcode_seen[code] = ln
            codes[pid] = code
    if not fams:
        raise FileFormatError("no persons", path=p)
    for fid, (people, miss, codes) in fams.items():
        ids = {q.id for q in people}
        for q in people:
            for role, par in (("father", q.father), ("mother", q.mother)):
                if par is not None and par not in ids:
                    raise FileFormatError(
                        f"family {fid}: {q.id}'s {role} {par!r} is not a person of the family",
                        path=p,
                        line=out.lines[(fid, q.id)],
                        field=role,
                    )
        try:
            Pedigree(people, where=f"family {fid}")
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=p) from None
        out.families.append((fid, people, miss, codes))
    return out


def families_table_rows(families: Iterable[Family]) -> tuple[list[str], list[list[str]]]:
    header = ["family", "id", "father", "mother", "sex", "missing", "sample"]
    rows: list[list[str]] = []
    for f in families:
        for ind in f.pedigree.individuals:
            rows.append(
                [
                    f.id,
                    ind.id,
                    ind.father or "",
                    ind.mother or "",
                    ind.sex or "",
                    "yes" if ind.id in f.missing else "",
                    ind.id if f.genotypes.get(ind.id) else "",
                ]
            )
    return header, rows

