"""The profiles template (CSV or Excel): one row per sample, ``sample`` (or
``id``/``barcode``/``Sample Name``), optional ``sex``, then a column per
marker with "12/14" (or "12,14", "12 14"), or two columns per marker
(``D3S1358_1``/``D3S1358_2``, ``D3S1358.1``/``.2``, ``D3S1358 Allele 1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from opendvi.core.case import Sample
from opendvi.core.errors import FileFormatError
from opendvi.io.normalise import is_amelogenin, is_marker_name, marker_name, normalise_allele, parse_sex
from opendvi.io.profiles import YINDEL, ProfileRecord, ProfileSet, is_yindel, split_y_cell, y_copies, y_locus
from opendvi.io.source import Source, source_name
from opendvi.io.tables.rows import find_column, read_rows

_SAMPLE = ("sample", "samplename", "sampleid", "barcode", "samplebarcode", "id", "specimenid", "name")
_SEX = ("sex", "gender")
_UNTYPED = ("", "NA", "-", "?", "N/A", "ND")
_TWO = re.compile(r"^(?P<m>.+?)(?:[\s_.\-]+(?:allele)?[\s_.\-]*|[\s_.\-]*allele[\s_.\-]*)(?P<k>[12ab])$", re.IGNORECASE)


def read_profiles_table(source: Source, *, sheet: str | None = None, filename: str | None = None) -> ProfileSet:
    """Read a profiles template (CSV or Excel): a row per sample, a column
    (or two) per marker. ``filename``: the name messages give a stream."""
    p = source_name(source, filename)
    header, rows = read_rows(source, sheet=sheet, filename=p)
    i_id = find_column(header, _SAMPLE)
    if i_id is None:
        raise FileFormatError(
            f"no sample column (expected one of: sample, barcode, id; header: {', '.join(header[:6])})",
            path=p,
            line=1,
            field="header",
        )
    i_sex = find_column(header, _SEX)
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
        raise FileFormatError(f"unknown column {h!r}: not a marker name", path=p, line=1, field=h)
    for m, js in cols.items():
        if len(js) > 2:
            raise FileFormatError(f"marker {m} has {len(js)} columns", path=p, line=1, field=m)
    for m, js in y_cols.items():
        if len(js) > max(2, y_copies(m)):
            raise FileFormatError(f"Y locus {m} has {len(js)} columns", path=p, line=1, field=m)
    out = ProfileSet(source=p, format="profiles-csv")
    for ln, row in rows:
        sid = row[i_id] if i_id < len(row) else ""
        if not sid:
            raise FileFormatError("empty sample id", path=p, line=ln, field=header[i_id])
        rec = ProfileRecord(id=sid, line=ln)
        if i_sex is not None and i_sex < len(row):
            try:
                rec.recorded_sex = parse_sex(row[i_sex])
            except ValueError as exc:
                raise FileFormatError(str(exc), path=p, line=ln, field=header[i_sex]) from None
        for m, js in y_cols.items():
            for j in js:
                cell = row[j] if j < len(row) else ""
                calls = [] if cell.strip().upper() in _UNTYPED else split_y_cell(cell)
                if calls:
                    rec.add_y_calls(m, calls, path=p, line=ln, field=header[j])
        for m, js in cols.items():
            cells = [row[j] if j < len(row) else "" for j in js]
            parts: list[str] = []
            for c in cells:
                parts += [x for x in re.split(r"[/,;\s]+", c) if x]
            if is_amelogenin(m):
                try:
                    if parts:
                        rec.set_amelogenin(parts)
                except ValueError as exc:
                    raise FileFormatError(str(exc), path=p, line=ln, field=m) from None
                continue
            if m == YINDEL:
                typed = [x for x in parts if x.upper() not in _UNTYPED]
                if typed:
                    rec.set_yindel(typed, path=p, line=ln, field=m)
                continue
            alleles: list[str] = []
            for x in parts:
                if x.upper() in ("NA", "-", "?"):
                    continue
                a = normalise_allele(x)
                if a is None:
                    raise FileFormatError(f"allele {x!r} is not an STR allele", path=p, line=ln, field=m)
                alleles.append(a)
            if len(js) == 2 and len(alleles) == 1 and all(c for c in cells):
                alleles = alleles * 2
            if alleles:
                if len(alleles) == 1:
                    alleles = alleles * 2
                rec.genotypes[m] = tuple(alleles)
        rec.resolve_sex(out.notes, p)
        out.records.append(rec)
    seen: dict[str, int | None] = {}
    for r in out.records:
        if r.id in seen:
            raise FileFormatError(f"sample {r.id!r} appears twice (also line {seen[r.id]})", path=p, line=r.line)
        seen[r.id] = r.line
        for m in r.mixture_markers:
            what = "more than two alleles at" if m in r.genotypes else "more calls than copies at the Y locus"
            out.notes.append(f"{p}: line {r.line}: sample {r.id}: {what} {m}: a mixture")
    if not out.records:
        raise FileFormatError("no samples", path=p)
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

