"""GeneMapper ID / ID-X genotype tables (tab-separated exports).

Two layouts are read:

* long (the "Genotypes" table): one row per sample and marker, columns
  ``Sample Name``, ``Marker``, ``Allele 1`` .. ``Allele n``, optionally
  ``Sample File``, ``Sample Type``, ``Panel``, ``Dye``, ``Size n``, ``Height n``;
* wide (one row per sample): ``Sample File``, ``Sample Name``, then a column
  per marker whose cell lists the alleles separated by commas
  (``"11, 12, , , "``), each optionally followed by a ``Height`` column.

Quirks handled: amelogenin as ``AMEL``/``Amelogenin``/``AM`` with calls
``X, Y`` / ``X`` / ``XY`` and the Yindel (GlobalFiler; calls 1 or 2) are
sex tests, not genotypes; Y-STR loci (Yfiler, Yfiler Plus, PowerPlex Y23, the
DYS loci of GlobalFiler and Fusion 6C) are the sample's Y haplotype
(``DYS385 a/b`` or ``DYS385a`` + ``DYS385b`` one two-copy locus);
``OL`` off-ladder calls kept and reported; allelic-ladder, positive and
negative control rows dropped (with a note); trailing tabs and CRLF; a column
the reader does not know is an error, not a silently dropped marker.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from opendvi.core.errors import FileFormatError
from opendvi.io import limits
from opendvi.io.normalise import (
    OFF_LADDER,
    header_key,
    is_amelogenin,
    is_marker_name,
    marker_name,
    normalise_allele,
)
from opendvi.io.profiles import YINDEL, ProfileRecord, ProfileSet, is_yindel, y_locus
from opendvi.io.source import Source, read_text, source_name

_META = {
    "samplefile",
    "samplename",
    "sampletype",
    "panel",
    "dye",
    "runname",
    "analysismethod",
    "ud1",
    "ud2",
    "ud3",
    "comments",
    "qualityscore",
    "aqs",
    "sqs",
    "ads",
    "gqs",
    "ahd",
    "amr",
    "bin",
    "pup",
    "ofl",
    "spk",
    "sp",
    "bd",
    "cc",
    "oba",
    "mpp",
    "specimencategory",
}
_CONTROL = re.compile(
    r"(ladder|control|blank|^(pc|nc|rb|ntc|pos|neg|ctrl)([ _\-]|\d|$)|\b9947a?\b|\b2800m\b|\b007\b)",
    re.IGNORECASE,
)
_ALLELE_COL = re.compile(r"^allele\s*(\d+)$", re.IGNORECASE)
_HEIGHT_COL = re.compile(r"^height\s*(\d+)?$", re.IGNORECASE)
_SIZE_COL = re.compile(r"^(size|area|data\s*point)\s*(\d+)?$", re.IGNORECASE)


def is_control(sample: str, sample_type: str | None = None) -> bool:
    """Ladder and control rows: by the ``Sample Type`` column or the name."""
    if sample_type:
        t = sample_type.strip().lower()
        if "ladder" in t or "control" in t or "blank" in t:
            return True
    return bool(_CONTROL.search(sample.strip()))


def read_genemapper(source: Source, *, filename: str | None = None) -> ProfileSet:
    """Read a GeneMapper ID/ID-X genotype table (long or wide layout) from a
    path or a file object (``filename``: the name messages give it)."""
    p = source_name(source, filename)
    lim = limits.current()
    text = read_text(source, p, lim=lim)
    first = text[: text.find("\n")] if "\n" in text else text
    delim = "\t" if not first or "\t" in first or "," not in first else ","
    limits.check_text(text, p, delimiter=delim, limits=lim)
    lines = text.splitlines()
    if delim == ",":  # a comma-separated long table (SampleName,Marker,Allele1,...)
        import csv

        reader = csv.reader(lines)
        try:
            rows = [list(r) for r in reader]
        except csv.Error as exc:
            raise FileFormatError(f"malformed CSV: {exc}", path=p, line=reader.line_num) from None
    else:
        rows = [line.rstrip("\r\n").split("\t") for line in lines]
    for k, r in enumerate(rows, start=1):
        limits.check_row(len(r), p, k, lim)
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows:
        raise FileFormatError("empty file", path=p)
    header = [h.strip() for h in rows[0]]
    while header and not header[-1]:
        header.pop()
    keys = [header_key(h) for h in header]
    if "samplename" not in keys:
        raise FileFormatError(
            f"not a GeneMapper table: no 'Sample Name' column (header: {', '.join(header[:6])})",
            path=p,
            line=1,
            field="header",
        )
    if "marker" in keys:
        return _read_long(p, header, keys, rows)
    return _read_wide(p, header, keys, rows)


def _bad_column(p: str, h: str) -> FileFormatError:
    hint = ""
    k = header_key(h)
    for cand in ("Sample File", "Sample Name", "Sample Type", "Marker", "Height", "Allele 1"):
        ck = header_key(cand)
        if len(k) == len(ck) and sorted(k) == sorted(ck):
            hint = f" (did you mean {cand!r}?)"
    return FileFormatError(
        f"unknown column {h!r}: neither a GeneMapper column nor a marker name{hint}",
        path=p,
        line=1,
        field="header",
    )


def _alleles(cells: list[str], *, p: str, line: int, marker: str, amel: bool) -> tuple[str, ...]:
    out: list[str] = []
    for c in cells:
        t = c.strip()
        if not t:
            continue
        if amel:
            out.append(t.upper())
            continue
        a = normalise_allele(t)
        if a is None:
            raise FileFormatError(
                f"allele {t!r} is not an STR allele (a number such as 12 or 9.3, or OL)",
                path=p,
                line=line,
                field=marker,
            )
        out.append(a)
    return tuple(out)


def _put_special(
    rec: ProfileRecord, kind: str, m: str, cells: list[str], *, p: str, line: int, notes: list[str]
) -> bool:
    """Amelogenin, the Yindel and Y-STR loci into the record; False for an
    ordinary marker (a marker given twice is caught by the callers)."""
    if kind == "str":
        return False
    tokens = [c.strip() for c in cells if c.strip()]
    if not tokens:
        return True  # untyped
    if kind == "amel":
        try:
            rec.set_amelogenin(tokens)
        except ValueError as exc:
            notes.append(f"{p}: line {line}: {m}: {exc}; sex left unknown")
        return True
    if kind == "yindel":
        rec.set_yindel(tokens, path=p, line=line, field=m)
        return True
    rec.add_y_calls(kind[2:], tokens, path=p, line=line, field=m)
    return True


def _clash(m: str, kind: str, seen: set[str]) -> bool:
    """``m`` already given, or a Y locus given both whole and by copies (DYS385 and DYS385a)."""
    if m in seen:
        return True
    if kind.startswith("y:"):
        base = kind[2:]
        return (m != base and base in seen) or (m == base and any(f"{base}{c}" in seen for c in "abcd"))
    return False


def _kind(h: str) -> tuple[str, str] | None:
    """(kind, name) of a marker column or Marker cell: ``amel``, ``yindel``,
    ``y:LOCUS`` (a Y-STR locus, copies of a multi-copy locus together) or
    ``str``; None when it is not a marker."""
    if is_yindel(h):
        return "yindel", YINDEL
    y = y_locus(h)
    if y is not None:
        return f"y:{y[0]}", y[0] + ("" if y[1] is None else "abcd"[y[1]])
    if not is_marker_name(h):
        return None
    m = marker_name(h)
    return ("amel" if is_amelogenin(m) else "str"), m


def _sample_rows(p: str, keys: list[str], rows: list[list[str]]) -> Iterator[tuple[int, list[str], str, bool]]:
    """(line, cells, sample name, ladder or control?) of each row under the header that is not blank."""
    i_name = keys.index("samplename")
    i_type = keys.index("sampletype") if "sampletype" in keys else None
    for ln, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        name = row[i_name].strip() if i_name < len(row) else ""
        if not name:
            raise FileFormatError("empty sample name", path=p, line=ln, field="Sample Name")
        stype = row[i_type] if i_type is not None and i_type < len(row) else None
        yield ln, row, name, is_control(name, stype)


def _read_wide(p: str, header: list[str], keys: list[str], rows: list[list[str]]) -> ProfileSet:
    columns: list[tuple[int, str, int | None, str]] = []  # (col, marker, height col, kind)
    seen: set[str] = set()
    for j, h in enumerate(header):
        k = keys[j]
        if k in _META or _HEIGHT_COL.match(h) or _SIZE_COL.match(h) or not h:
            continue
        kind = _kind(h)
        if kind is None:
            raise _bad_column(p, h)
        m = kind[1]
        if _clash(m, kind[0], seen):
            raise FileFormatError(f"marker {h} has two columns", path=p, line=1, field=h)
        seen.add(m)
        hcol = j + 1 if j + 1 < len(header) and _HEIGHT_COL.match(header[j + 1]) else None
        columns.append((j, m, hcol, kind[0]))
    if not columns:
        raise FileFormatError("no marker columns", path=p, line=1, field="header")
    out = ProfileSet(source=p, format="genemapper")
    for ln, row, name, control in _sample_rows(p, keys, rows):
        if control:
            out.notes.append(f"{p}: line {ln}: {name}: ladder or control row dropped")
            continue
        rec = ProfileRecord(id=name, line=ln)
        for j, m, hcol, what in columns:
            cell = row[j] if j < len(row) else ""
            if _put_special(rec, what, m, cell.split(","), p=p, line=ln, notes=out.notes):
                continue
            alleles = _alleles(cell.split(","), p=p, line=ln, marker=m, amel=False)
            if alleles:
                rec.genotypes[m] = alleles
                if hcol is not None and hcol < len(row):
                    rec.heights[m] = tuple(
                        _height(x, p=p, line=ln, marker=m) for x in row[hcol].split(",") if x.strip()
                    )
        rec.resolve_sex(out.notes, p)
        _flag(out, rec)
        out.records.append(rec)
    _finish(out, p)
    return out


def _height(text: str, *, p: str, line: int, marker: str) -> float | None:
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        raise FileFormatError(f"peak height {t!r} is not a number", path=p, line=line, field=marker) from None


def _read_long(p: str, header: list[str], keys: list[str], rows: list[list[str]]) -> ProfileSet:
    i_marker = keys.index("marker")
    allele_cols: list[tuple[int, int]] = []
    height_cols: dict[int, int] = {}
    for j, h in enumerate(header):
        ma = _ALLELE_COL.match(h)
        if ma:
            allele_cols.append((int(ma.group(1)), j))
            continue
        mh = _HEIGHT_COL.match(h)
        if mh and mh.group(1):
            height_cols[int(mh.group(1))] = j
            continue
        if keys[j] in _META or keys[j] == "marker" or _SIZE_COL.match(h) or not h:
            continue
        raise _bad_column(p, h)
    if not allele_cols:
        raise FileFormatError("no 'Allele 1' column", path=p, line=1, field="header")
    allele_cols.sort()
    out = ProfileSet(source=p, format="genemapper")
    by_id: dict[str, ProfileRecord] = {}
    y_seen: dict[str, set[str]] = {}
    for ln, row, name, control in _sample_rows(p, keys, rows):
        if control:
            if name not in {n.split(": ")[-1] for n in out.notes}:
                out.notes.append(f"{p}: line {ln}: ladder or control rows dropped: {name}")
            continue
        raw_marker = row[i_marker].strip() if i_marker < len(row) else ""
        if not raw_marker:
            raise FileFormatError("empty marker name", path=p, line=ln, field="Marker")
        kind = _kind(raw_marker)
        if kind is None:
            raise FileFormatError(f"unknown marker {raw_marker!r}", path=p, line=ln, field="Marker")
        m = kind[1]
        rec = by_id.get(name)
        if rec is None:
            rec = ProfileRecord(id=name, line=ln)
            by_id[name] = rec
            out.records.append(rec)
        cells = [row[j] if j < len(row) else "" for _, j in allele_cols]
        done = y_seen.setdefault(name, set())
        if m in rec.genotypes or _clash(m, kind[0], done):
            raise FileFormatError(f"sample {name}: marker {m} appears twice", path=p, line=ln, field="Marker")
        done.add(m)
        if _put_special(rec, kind[0], m, cells, p=p, line=ln, notes=out.notes):
            continue
        alleles = _alleles(cells, p=p, line=ln, marker=m, amel=False)
        if alleles:
            rec.genotypes[m] = alleles
            hs = [row[height_cols[n]] for n, _ in allele_cols if n in height_cols and height_cols[n] < len(row)]
            if hs:
                rec.heights[m] = tuple(_height(x, p=p, line=ln, marker=m) for x in hs if x.strip())
    for rec in out.records:
        rec.resolve_sex(out.notes, p)
        _flag(out, rec)
    _finish(out, p)
    return out


def _flag(out: ProfileSet, rec: ProfileRecord) -> None:
    for m in rec.mixture_markers:
        out.notes.append(
            f"{out.source}: {rec.where()}: sample {rec.id}: {len(set(rec.genotypes[m]))} alleles at {m}: a mixture, "
            "not a single-source profile"
        )
        break
    for m in rec.off_ladder_markers:
        out.notes.append(f"{out.source}: {rec.where()}: sample {rec.id}, marker {m}: off-ladder call ({OFF_LADDER})")


def _finish(out: ProfileSet, p: str) -> None:
    ids: dict[str, int | None] = {}
    for r in out.records:
        if r.id in ids:
            raise FileFormatError(
                f"sample {r.id!r} appears twice (also line {ids[r.id]})", path=p, line=r.line, field="Sample Name"
            )
        ids[r.id] = r.line
    if not out.records:
        raise FileFormatError("no samples (only ladder or control rows, or none at all)", path=p)
