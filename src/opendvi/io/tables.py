"""Spreadsheet templates (CSV or Excel) and pedtools-style pedigree text.

* families template: one row per person, columns ``family``, ``id``,
  ``father``, ``mother``, ``sex``, ``missing``, ``sample`` (the barcode of
  the person's reference sample, linking to a profiles file);
* profiles template: one row per sample, ``sample`` (or ``id``/``barcode``/
  ``Sample Name``), optional ``sex``, then a column per marker with
  "12/14" (or "12,14", "12 14"), or two columns per marker
  (``D3S1358_1``/``D3S1358_2``, ``D3S1358.1``/``.2``, ``D3S1358 Allele 1``);
* pedtools text: whitespace-separated ``[famid] id fid mid sex`` (0 = no
  parent; sex 1 male, 2 female) and a "a/b" column per marker.

Readers collect the rows; any bad row raises :class:`FileFormatError` with
its line (CSV/text: file line; Excel: sheet row) before anything is
returned. Writers for results (generic rows, a pairwise matrix) write CSV or
Excel atomically.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype
from opendvi.io import limits
from opendvi.io.normalise import (
    is_amelogenin,
    is_marker_name,
    marker_name,
    normalise_allele,
    parse_bool,
    parse_sex,
    read_text,
    write_atomic,
    write_text_atomic,
)
from opendvi.io.profiles import (
    AMEL,
    YINDEL,
    ProfileRecord,
    ProfileSet,
    amel_letters,
    check_y_call,
    check_yindel_call,
    is_yindel,
    split_y_cell,
    y_copies,
    y_locus,
)

Row = tuple[int, list[str]]  # (line or sheet row, cells)


def read_rows(path: str | Path, *, sheet: str | None = None) -> tuple[list[str], list[Row]]:
    """Header and rows of a CSV/TSV or Excel file, every cell a string."""
    p = Path(path)
    if p.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(p, sheet=sheet)
    lim = limits.current()
    limits.check_file(p, lim)
    text = read_text(p)
    first = text[: text.find("\n")] if "\n" in text else text
    if not text.strip():
        raise FileFormatError("empty file", path=str(p))
    delim = "\t" if "\t" in first else ";" if first.count(";") > first.count(",") else ","
    limits.check_text(text, p, delimiter=delim, limits=lim)
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    all_rows: list[list[str]] = []
    try:
        for r in reader:
            limits.check_row(len(r), p, reader.line_num, lim)
            all_rows.append(r)
    except csv.Error as exc:
        raise FileFormatError(f"malformed CSV: {exc}", path=str(p), line=reader.line_num) from None
    if not all_rows:
        raise FileFormatError("empty file", path=str(p))
    header = [h.strip() for h in all_rows[0]]
    rows = [(k, [c.strip() for c in r]) for k, r in enumerate(all_rows[1:], start=2) if any(c.strip() for c in r)]
    return header, rows


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        if v.is_integer():
            return str(int(v))
        return repr(v)
    return str(v).strip()


def _xlsx_rows(p: Path, *, sheet: str | None) -> tuple[list[str], list[Row]]:
    lim = limits.current()
    wb = limits.open_workbook(p, lim)  # the zip and every sheet's declared dimension checked first
    try:
        if sheet is not None:
            if sheet not in wb.sheetnames:
                raise FileFormatError(f"no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})", path=str(p))
            ws = wb[sheet]
        else:
            ws = wb.worksheets[0]
        # the dimension was checked; read without it (a wrong one must not pad or clip rows) and stop at the caps
        ws.reset_dimensions()
        values: list[list[str]] = []
        cells = 0
        try:
            for k, r in enumerate(ws.iter_rows(values_only=True), start=1):
                if k > lim.max_rows:
                    raise limits.LimitError(
                        f"sheet {ws.title!r} has more than {lim.max_rows:,} rows: over the limit "
                        f"({limits.env_name('max_rows')})", path=str(p), line=k)
                row = [_cell(v) for v in r]
                while row and not row[-1]:
                    row.pop()
                limits.check_row(len(row), p, k, lim)
                cells += len(row)
                if cells > lim.max_cells:
                    raise limits.LimitError(
                        f"sheet {ws.title!r} has more than {lim.max_cells:,} cells: over the limit "
                        f"({limits.env_name('max_cells')})", path=str(p), line=k)
                values.append(row)
        except FileFormatError:
            raise
        except Exception as exc:  # a damaged sheet
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FileFormatError(f"not a readable Excel sheet {ws.title!r}: {first}", path=str(p)) from None
    finally:
        wb.close()
    if not values:
        raise FileFormatError("empty sheet", path=str(p))
    header = values[0]
    rows = [(k, r) for k, r in enumerate(values[1:], start=2) if any(c for c in r)]
    return header, rows


def _norm(h: str) -> str:
    return re.sub(r"[\s_\-.]+", "", h).lower()


def _find(header: list[str], names: Sequence[str]) -> int | None:
    keys = [_norm(h) for h in header]
    for n in names:
        if n in keys:
            return keys.index(n)
    return None


_SAMPLE = ("sample", "samplename", "sampleid", "barcode", "samplebarcode", "id", "specimenid", "name")
_SEX = ("sex", "gender")
_UNTYPED = ("", "NA", "-", "?", "N/A", "ND")
_TWO = re.compile(r"^(?P<m>.+?)(?:[\s_.\-]+(?:allele)?[\s_.\-]*|[\s_.\-]*allele[\s_.\-]*)(?P<k>[12ab])$", re.IGNORECASE)


# ---------------------------------------------------------------------------
# profiles template
# ---------------------------------------------------------------------------


def read_profiles_table(path: str | Path, *, sheet: str | None = None) -> ProfileSet:
    """Read a profiles template (CSV or Excel): a row per sample, a column
    (or two) per marker."""
    p = Path(path)
    header, rows = read_rows(p, sheet=sheet)
    i_id = _find(header, _SAMPLE)
    if i_id is None:
        raise FileFormatError(
            f"no sample column (expected one of: sample, barcode, id; header: {', '.join(header[:6])})",
            path=str(p),
            line=1,
            field="header",
        )
    i_sex = _find(header, _SEX)
    cols: dict[str, list[int]] = {}
    y_cols: dict[str, list[int]] = {}  # Y-STR locus -> its column(s) (DYS385a, DYS385b)
    for j, h in enumerate(header):
        if j in (i_id, i_sex) or not h:
            continue
        mt = _TWO.match(h)
        y = y_locus(mt.group("m")) if mt and y_locus(h) is None else y_locus(h)
        if y is not None:
            y_cols.setdefault(y[0], []).append(j)
            continue
        if is_yindel(h):
            cols.setdefault(YINDEL, []).append(j)
            continue
        if mt and is_marker_name(mt.group("m")):
            cols.setdefault(marker_name(mt.group("m")), []).append(j)
            continue
        if is_marker_name(h):
            cols.setdefault(marker_name(h), []).append(j)
            continue
        raise FileFormatError(f"unknown column {h!r}: not a marker name", path=str(p), line=1, field=h)
    for m, js in cols.items():
        if len(js) > 2:
            raise FileFormatError(f"marker {m} has {len(js)} columns", path=str(p), line=1, field=m)
    for m, js in y_cols.items():
        if len(js) > max(2, y_copies(m)):
            raise FileFormatError(f"Y locus {m} has {len(js)} columns", path=str(p), line=1, field=m)
    out = ProfileSet(source=str(p), format="profiles-csv")
    for ln, row in rows:
        sid = row[i_id] if i_id < len(row) else ""
        if not sid:
            raise FileFormatError("empty sample id", path=str(p), line=ln, field=header[i_id])
        rec = ProfileRecord(id=sid, line=ln)
        if i_sex is not None and i_sex < len(row):
            try:
                rec.recorded_sex = parse_sex(row[i_sex])
            except ValueError as exc:
                raise FileFormatError(str(exc), path=str(p), line=ln, field=header[i_sex]) from None
        for m, js in y_cols.items():
            calls: list[str] = []
            for j in js:
                cell = row[j] if j < len(row) else ""
                if cell.strip().upper() in _UNTYPED:
                    continue
                calls += [check_y_call(x, path=str(p), line=ln, field=header[j]) for x in split_y_cell(cell)]
            if calls:
                rec.y_calls[m] = tuple(calls)
        for m, js in cols.items():
            cells = [row[j] if j < len(row) else "" for j in js]
            parts: list[str] = []
            for c in cells:
                parts += [x for x in re.split(r"[/,;\s]+", c) if x]
            if is_amelogenin(m):
                try:
                    if parts:
                        rec.sex_calls[AMEL] = amel_letters(parts)
                except ValueError as exc:
                    raise FileFormatError(str(exc), path=str(p), line=ln, field=m) from None
                continue
            if m == YINDEL:
                typed = [x for x in parts if x.upper() not in _UNTYPED]
                yindel = [check_yindel_call(x, path=str(p), line=ln, field=m) for x in typed]
                if yindel:
                    rec.sex_calls[YINDEL] = tuple(yindel)
                continue
            alleles: list[str] = []
            for x in parts:
                if x.upper() in ("NA", "-", "?"):
                    continue
                a = normalise_allele(x)
                if a is None:
                    raise FileFormatError(f"allele {x!r} is not an STR allele", path=str(p), line=ln, field=m)
                alleles.append(a)
            if len(js) == 2 and len(alleles) == 1 and all(c for c in cells):
                alleles = alleles * 2
            if alleles:
                if len(alleles) == 1:
                    alleles = alleles * 2
                rec.genotypes[m] = tuple(alleles)
        rec.resolve_sex(out.notes, str(p))
        out.records.append(rec)
    seen: dict[str, int | None] = {}
    for r in out.records:
        if r.id in seen:
            raise FileFormatError(f"sample {r.id!r} appears twice (also line {seen[r.id]})", path=str(p), line=r.line)
        seen[r.id] = r.line
        for m in r.mixture_markers:
            what = "more than two alleles at" if m in r.genotypes else "more calls than copies at the Y locus"
            out.notes.append(f"{p}: line {r.line}: sample {r.id}: {what} {m}: a mixture")
    if not out.records:
        raise FileFormatError("no samples", path=str(p))
    return out


def profiles_table_rows(
    samples: Iterable[Sample],
    markers: Sequence[str] | None = None,
    *,
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a profiles template. ``extra`` adds columns after
    the markers, by sample id (sex tests ``AMEL``/``Yindel`` and Y-STR loci,
    a multi-copy locus's copies joined by commas: ``DYS385`` = ``11,14``)."""
    samples = list(samples)
    if markers is None:
        seen: dict[str, None] = {}
        for s in samples:
            for m in s.genotypes:
                seen.setdefault(m, None)
        markers = list(seen)
    extra = extra or {}
    extra_cols: dict[str, None] = {}
    for s in samples:
        for c in extra.get(s.id, {}):
            extra_cols.setdefault(c, None)
    header = ["sample", "sex", *markers, *extra_cols]
    rows = [
        [
            s.id,
            s.sex or "",
            *["/".join(s.genotypes[m]) if m in s.genotypes else "" for m in markers],
            *[extra.get(s.id, {}).get(c, "") for c in extra_cols],
        ]
        for s in samples
    ]
    return header, rows


# ---------------------------------------------------------------------------
# families template
# ---------------------------------------------------------------------------


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
                if s is None:
                    raise FileFormatError(
                        f"family {fid}, person {pid}: sample {code!r} is not in the profiles given",
                        path=self.source,
                        line=self.lines.get((fid, pid)),
                        field="sample",
                    )
                if pid in missing:
                    raise FileFormatError(
                        f"family {fid}, person {pid}: a missing person cannot have a reference sample",
                        path=self.source,
                        line=self.lines.get((fid, pid)),
                        field="sample",
                    )
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


def read_families_table(path: str | Path, *, sheet: str | None = None) -> FamilyTable:
    """Read a families template (CSV or Excel), one row per person."""
    p = Path(path)
    header, rows = read_rows(p, sheet=sheet)
    need = {
        "family": ("family", "familyid", "famid", "fam", "case"),
        "id": ("id", "person", "personid", "name", "member"),
        "father": ("father", "fid", "fatherid", "dad"),
        "mother": ("mother", "mid", "motherid", "mum", "mom"),
        "sex": ("sex", "gender"),
    }
    idx: dict[str, int] = {}
    for k, names in need.items():
        j = _find(header, names)
        if j is None:
            raise FileFormatError(
                f"missing column {k!r} (header: {', '.join(header)})", path=str(p), line=1, field="header"
            )
        idx[k] = j
    i_missing = _find(header, ("missing", "missingperson", "ismissing", "mp"))
    i_sample = _find(header, ("sample", "barcode", "samplebarcode", "sampleid", "reference", "samplename"))
    known = set(idx.values()) | {i_missing, i_sample}
    for j, h in enumerate(header):
        if j not in known and h:
            raise FileFormatError(f"unknown column {h!r}", path=str(p), line=1, field=h)
    out = FamilyTable(source=str(p))
    fams: dict[str, tuple[list[Individual], list[str], dict[str, str]]] = {}
    barcode_seen: dict[str, int] = {}

    def cell(row: list[str], j: int | None) -> str:
        return row[j] if j is not None and j < len(row) else ""

    for ln, row in rows:
        fid = cell(row, idx["family"])
        pid = cell(row, idx["id"])
        if not fid:
            raise FileFormatError("empty family", path=str(p), line=ln, field=header[idx["family"]])
        if not pid:
            raise FileFormatError("empty id", path=str(p), line=ln, field=header[idx["id"]])
        fa_raw = cell(row, idx["father"])
        mo_raw = cell(row, idx["mother"])
        fa = None if fa_raw in ("", "0", "NA", "-") else fa_raw
        mo = None if mo_raw in ("", "0", "NA", "-") else mo_raw
        try:
            sex = parse_sex(cell(row, idx["sex"]), allow_unknown=False)
        except ValueError as exc:
            raise FileFormatError(str(exc), path=str(p), line=ln, field=header[idx["sex"]]) from None
        try:
            missing = parse_bool(cell(row, i_missing)) if i_missing is not None else False
        except ValueError as exc:
            raise FileFormatError(str(exc), path=str(p), line=ln, field=header[i_missing or 0]) from None
        people, miss, codes = fams.setdefault(fid, ([], [], {}))
        if any(q.id == pid for q in people):
            raise FileFormatError(
                f"person {pid} appears twice in family {fid}", path=str(p), line=ln, field=header[idx["id"]]
            )
        people.append(Individual(pid, fa, mo, sex))
        out.lines[(fid, pid)] = ln
        if missing:
            miss.append(pid)
        code = cell(row, i_sample)
        if code:
            if code in barcode_seen:
                raise FileFormatError(
                    f"sample {code} is given to two persons (also line {barcode_seen[code]})",
                    path=str(p),
                    line=ln,
                    field="sample",
                )
            barcode_seen[code] = ln
            codes[pid] = code
    if not fams:
        raise FileFormatError("no persons", path=str(p))
    for fid, (people, miss, codes) in fams.items():
        ids = {q.id for q in people}
        for q in people:
            for role, par in (("father", q.father), ("mother", q.mother)):
                if par is not None and par not in ids:
                    raise FileFormatError(
                        f"family {fid}: {q.id}'s {role} {par!r} is not a person of the family",
                        path=str(p),
                        line=out.lines[(fid, q.id)],
                        field=role,
                    )
        try:
            Pedigree(people, where=f"family {fid}")
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=str(p)) from None
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


# ---------------------------------------------------------------------------
# pedtools-style text
# ---------------------------------------------------------------------------


def read_ped(path: str | Path, *, missing_prefix: str | None = None) -> tuple[list[Family], list[str]]:
    """Read pedtools-style text: ``[famid] id fid mid sex`` + "a/b" marker
    columns, whitespace- or tab-separated, with a header line. An optional
    ``missing`` column (yes/no) marks missing persons; without it, untyped
    persons whose id matches the regular expression ``missing_prefix`` (at
    the start) are missing. Returns families and
    the marker names (opendvi spelling)."""
    p = Path(path)
    lim = limits.current()
    limits.check_file(p, lim)
    text = read_text(p)
    # cells: tabs counted; runs of spaces (aligned columns) are not cells, and each row is checked below
    limits.check_text(text, p, delimiter="\t" if "\t" in text else None, limits=lim)
    lines = [
        (k, ln) for k, ln in enumerate(text.splitlines(), start=1) if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise FileFormatError("empty file", path=str(p))
    split = (lambda s: s.split("\t")) if "\t" in lines[0][1] else (lambda s: s.split())
    header = [h.strip() for h in split(lines[0][1])]
    limits.check_row(len(header), p, lines[0][0], lim)
    keys = [_norm(h) for h in header]
    base = ["id", "fid", "mid", "sex"]
    off = 1 if keys[:1] in (["famid"], ["fam"], ["family"]) else 0
    if keys[off : off + 4] != base:
        raise FileFormatError(
            f"expected the columns [famid] id fid mid sex, found {' '.join(header[:5])}",
            path=str(p),
            line=lines[0][0],
            field="header",
        )
    rest = header[off + 4 :]
    i_missing = None
    markers: list[tuple[int, str]] = []
    for j, h in enumerate(rest, start=off + 4):
        if _norm(h) == "missing":
            i_missing = j
        elif is_marker_name(h) or h:
            if not is_marker_name(h):
                raise FileFormatError(
                    f"unknown column {h!r}: not a marker name", path=str(p), line=lines[0][0], field=h
                )
            markers.append((j, marker_name(h)))
    fams: dict[str, tuple[list[Individual], list[str], dict[str, dict[str, Genotype]]]] = {}
    for ln, raw in lines[1:]:
        cells = [c.strip() for c in split(raw)]
        if len(cells) != len(header):
            raise FileFormatError(f"expected {len(header)} fields, found {len(cells)}", path=str(p), line=ln)
        fid = cells[0] if off else (Path(p).stem or "1")
        pid, fa, mo, sx = cells[off : off + 4]
        try:
            sex = parse_sex(sx, allow_unknown=False)
        except ValueError as exc:
            raise FileFormatError(str(exc), path=str(p), line=ln, field="sex") from None
        people, miss, gts = fams.setdefault(fid, ([], [], {}))
        people.append(
            Individual(pid, None if fa in ("0", "NA", "") else fa, None if mo in ("0", "NA", "") else mo, sex)
        )
        g: dict[str, Genotype] = {}
        for j, m in markers:
            c = cells[j]
            if c in ("-/-", "", "NA", "0/0", "-", "NA/NA"):
                continue
            parts = [x for x in re.split(r"[/,]", c)]
            if len(parts) != 2:
                raise FileFormatError(f"genotype {c!r} is not 'a/b'", path=str(p), line=ln, field=m)
            al = [normalise_allele(x, allow_off_ladder=False) for x in parts]
            if any(a is None for a in al):
                raise FileFormatError(f"genotype {c!r}: not STR alleles", path=str(p), line=ln, field=m)
            g[m] = (str(al[0]), str(al[1]))
        if g:
            gts[pid] = g
        is_missing = False
        if i_missing is not None:
            try:
                is_missing = parse_bool(cells[i_missing])
            except ValueError as exc:
                raise FileFormatError(str(exc), path=str(p), line=ln, field="missing") from None
        elif missing_prefix and not g and re.match(missing_prefix, pid):
            is_missing = True
        if is_missing:
            if g:
                raise FileFormatError(f"missing person {pid} is typed", path=str(p), line=ln)
            miss.append(pid)
    out: list[Family] = []
    for fid, (people, miss, gts) in fams.items():
        try:
            ped = Pedigree(people, where=f"family {fid}")
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=str(p)) from None
        out.append(Family(id=fid, pedigree=ped, genotypes=gts, missing=tuple(miss)))
    return out, [m for _, m in markers]


def ped_text(case: Case) -> str:
    markers = [m.name for m in case.markers]
    lines = ["\t".join(["famid", "id", "fid", "mid", "sex", "missing", *markers])]
    for f in case.families:
        for ind in f.pedigree.individuals:
            g = f.genotypes.get(ind.id, {})
            lines.append(
                "\t".join(
                    [
                        f.id,
                        ind.id,
                        ind.father or "0",
                        ind.mother or "0",
                        "1" if ind.sex == "M" else "2",
                        "yes" if ind.id in f.missing else "no",
                        *["/".join(g[m]) if m in g else "-/-" for m in markers],
                    ]
                )
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# results tables
# ---------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "-inf" if v < 0 else "inf" if v > 0 else ""
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return "/".join(str(x) for x in v)
    return v


def write_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    path: str | Path,
    *,
    sheet: str = "results",
    sheets: Mapping[str, tuple[Sequence[str], Iterable[Sequence[Any]]]] | None = None,
) -> None:
    """Write a table as CSV (by extension .csv/.tsv/.txt) or Excel (.xlsx),
    atomically. ``sheets`` adds further sheets to an Excel file."""
    p = Path(path)
    rows = [list(r) for r in rows]
    if p.suffix.lower() == ".xlsx":
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = sheet[:31]
        ws.append(list(header))
        for r in rows:
            ws.append([_plain(v) for v in r])
        for name, (h2, r2) in (sheets or {}).items():
            w2 = wb.create_sheet(name[:31])
            w2.append(list(h2))
            for r in r2:
                w2.append([_plain(v) for v in r])
        write_atomic(p, lambda tmp: wb.save(tmp))
        return
    delim = "\t" if p.suffix.lower() in (".tsv", ".txt") else ","
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator="\n")
    w.writerow(list(header))
    for r in rows:
        w.writerow([_plain(v) for v in r])
    write_text_atomic(p, buf.getvalue())


def write_rows(
    rows: Sequence[Mapping[str, Any]], path: str | Path, *, columns: Sequence[str] | None = None, sheet: str = "results"
) -> None:
    """Write a list of dict rows (pairwise LRs, joint solutions,
    identifications...) as CSV or Excel. Columns: ``columns`` or the keys in
    order of first appearance."""
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            for k in r:
                seen.setdefault(k, None)
        columns = list(seen)
    write_table(columns, ([r.get(c) for c in columns] for r in rows), path, sheet=sheet)


def write_matrix(
    row_ids: Sequence[str],
    col_ids: Sequence[str],
    values: Sequence[Sequence[Any]],
    path: str | Path,
    *,
    corner: str = "",
    sheet: str = "matrix",
) -> None:
    """Write a pairwise matrix (e.g. log10 LR of each remains against each
    missing person) with row and column labels."""
    if len(values) != len(row_ids) or any(len(r) != len(col_ids) for r in values):
        raise ValueError("matrix shape does not match its labels")
    write_table([corner, *col_ids], ([rid, *r] for rid, r in zip(row_ids, values, strict=True)), path, sheet=sheet)
