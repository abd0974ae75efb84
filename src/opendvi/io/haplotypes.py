"""Readers of lineage haplotypes and haplotype databases.

* :func:`read_y_haplotypes`: Y-STR haplotypes of samples from a CSV (a sample
  column, then one column per locus; ``DYS385a``/``DYS385b`` columns are
  joined into the multi-copy locus ``DYS385``);
* :func:`read_mt_haplotypes`: mtDNA haplotypes from an EMPOP-style table
  (tab-separated: sample, range, then one variant per column) or from a CSV
  with ``sample``, ``range`` and ``variants`` (space-separated) columns;
* :func:`read_y_database`: Y haplotypes with counts: a CSV export (YHRD-like:
  one column per locus and a ``count`` column) or the whitespace-separated
  ``disclapmix`` danes file (column ``n``);
* :func:`read_mt_database`: mtDNA haplotypes with counts (``range``,
  ``variants``, ``count``).

Every error is one line naming the file, the line and the field; nothing is
returned unless the whole file is valid.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    MtDatabase,
    YDatabase,
    YHaplotype,
    YMarker,
    default_y_marker,
    parse_y_value,
)
from opendvi.core.lineage_mt import MtHaplotype
from opendvi.io.source import Source, read_utf8, source_name

SAMPLE_COLUMNS = ("sample", "sample name", "sample_name", "samplename", "id", "sample id", "sample_id", "name")
COUNT_COLUMNS = ("count", "n", "counts", "observations", "freq_count")
UNTYPED = ("", "-", "na", "n/a", "nd", "?")
_COPY_SPLIT = re.compile(r"[,/;\s]+")
_COPY_SUFFIX = re.compile(r"^(.*?)[\s_.-]?([a-d])$", re.IGNORECASE)


def _read_rows(
    source: Source, *, delimiter: str | None = None, filename: str | None = None
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (line number, cells) of a delimited text file (UTF-8)."""
    p = source_name(source, filename)
    text = read_utf8(source, p)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if not first:
        raise FileFormatError("the file is empty", path=p)
    if delimiter is None:
        counts = {d: first.count(d) for d in ("\t", ",", ";")}
        delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else " "
    rows: list[tuple[int, list[str]]] = []
    if delimiter == " ":
        for i, ln in enumerate(lines, 1):
            if ln.strip():
                rows.append((i, ln.split()))
    else:
        reader = csv.reader(lines, delimiter=delimiter)
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append((reader.line_num, [c.strip() for c in cells]))
    header = rows[0][1]
    return [h.strip() for h in header], rows[1:]


def _find(header: Sequence[str], names: Sequence[str]) -> int | None:
    low = [h.lower().strip() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    return None


def _untyped(cell: str) -> bool:
    return cell.strip().lower() in UNTYPED


def _locus_columns(header: Sequence[str], skip: set[int]) -> dict[str, list[int]]:
    """Locus name -> column indices; ``DYS385a``/``DYS385b`` become one locus."""
    cols = [(i, h) for i, h in enumerate(header) if i not in skip]
    names = {h for _, h in cols}
    out: dict[str, list[int]] = {}
    for i, h in cols:
        m = _COPY_SUFFIX.match(h)
        if m and any(f"{m.group(1)}{s}" in names or f"{m.group(1)}{s.upper()}" in names for s in "ab" if s != h[-1]):
            out.setdefault(m.group(1), []).append(i)
        else:
            out.setdefault(h, []).append(i)
    return out


def _y_value(
    cells: Sequence[str], cols: Sequence[int], *, copies: int | None, path: str, line: int, field: str
) -> tuple[str, ...] | None:
    parts: list[str] = []
    for c in cols:
        cell = cells[c] if c < len(cells) else ""
        if _untyped(cell):
            continue
        parts.extend(t for t in _COPY_SPLIT.split(cell.strip()) if t)
    if not parts:
        return None
    try:
        return parse_y_value(",".join(parts), copies=copies if copies is not None else len(parts), locus=field)
    except OpenDVIError as exc:
        raise FileFormatError(str(exc).split(": ", 1)[-1], path=path, line=line, field=field) from None


def read_y_haplotypes(
    source: Source, *, markers: Mapping[str, YMarker] | None = None, filename: str | None = None
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Y-STR haplotypes by sample id from a CSV (sample column + one column per locus).

    ``markers`` (optional) fixes the loci and their number of copies; a column
    not among them is an error. Empty cells, ``-`` and ``NA`` are untyped.
    """
    p = source_name(source, filename)
    header, rows = _read_rows(source, filename=p)
    sc = _find(header, SAMPLE_COLUMNS)
    if sc is None:
        raise FileFormatError(f"no sample column (one of: {', '.join(SAMPLE_COLUMNS)})", path=p, line=1)
    loci = _locus_columns(header, {sc})
    if markers is not None:
        unknown = [k for k in loci if k not in markers]
        if unknown:
            raise FileFormatError(f"unknown Y locus {unknown[0]!r} (not among the case's Y loci)", path=p, line=1,
                                  field=unknown[0])
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for line, cells in rows:
        sid = cells[sc] if sc < len(cells) else ""
        if not sid:
            raise FileFormatError("empty sample id", path=p, line=line, field=header[sc])
        if sid in out:
            raise FileFormatError(f"sample {sid!r} is listed twice", path=p, line=line, field=header[sc])
        hap: dict[str, tuple[str, ...]] = {}
        for locus, cols in loci.items():
            copies = markers[locus].copies if markers is not None else None
            v = _y_value(cells, cols, copies=copies, path=p, line=line, field=locus)
            if v is not None:
                hap[locus] = v
        out[sid] = hap
    return out


def read_mt_haplotypes(source: Source, *, filename: str | None = None) -> dict[str, MtHaplotype]:
    """mtDNA haplotypes by sample id.

    Two layouts: a CSV with a header naming ``sample``, ``range`` and
    ``variants`` (variants separated by spaces); or an EMPOP-style table,
    tab-separated, each line ``sample<TAB>range<TAB>variant<TAB>variant...``
    (a first line that is not a haplotype is taken as the header and skipped).
    """
    p = source_name(source, filename)
    header, rows = _read_rows(source, filename=p)
    out: dict[str, MtHaplotype] = {}
    rc, vc = _find(header, ("range",)), _find(header, ("variants", "haplotype", "profile"))
    sc = _find(header, SAMPLE_COLUMNS)
    if rc is not None and vc is not None and sc is not None:
        last = vc == len(header) - 1  # EMPOP-style: one variant per column from here on
        for line, cells in rows:
            sid = cells[sc] if sc < len(cells) else ""
            vcells = cells[vc:] if last else cells[vc : vc + 1]
            _put_mt(out, sid, cells[rc] if rc < len(cells) else "", [v for c in vcells for v in c.split()],
                    p, line, header[vc])
        return out
    # EMPOP-style: sample, range, variants... (the header, if any, is the first row)
    all_rows = [(1, header), *rows]
    first = all_rows[0][1]
    try:
        MtHaplotype.parse(first[1] if len(first) > 1 else "", [v for c in first[2:] for v in c.split()])
    except OpenDVIError:
        all_rows = all_rows[1:]  # a header
    for line, cells in all_rows:
        if len(cells) < 2:
            raise FileFormatError("expected sample, range and variants", path=p, line=line)
        variants = [v for c in cells[2:] for v in c.split()]
        _put_mt(out, cells[0], cells[1], variants, p, line, "variants")
    return out


def _range_problem(msg: str) -> bool:
    return msg.startswith(("invalid mtDNA range", "mtDNA range"))


def _put_mt(out: dict[str, MtHaplotype], sid: str, rng: str, variants: list[str], p: str, line: int,
            field: str) -> None:
    if not sid:
        raise FileFormatError("empty sample id", path=p, line=line, field="sample")
    if sid in out:
        raise FileFormatError(f"sample {sid!r} is listed twice", path=p, line=line, field="sample")
    try:
        out[sid] = MtHaplotype.parse(rng, variants, who=sid)
    except OpenDVIError as exc:
        msg = str(exc).split(": ", 1)[-1]
        raise FileFormatError(msg, path=p, line=line, field="range" if _range_problem(msg) else field) from None


def read_y_database(
    source: Source,
    *,
    filename: str | None = None,
    estimator: str = DEFAULT_ESTIMATOR,
    markers: Mapping[str, YMarker] | None = None,
    name: str | None = None,
) -> tuple[YDatabase, tuple[YMarker, ...]]:
    """A Y haplotype database (one row per haplotype, a count column) and its
    loci (with the bundled mutation rates where ``markers`` does not give them).

    With ``estimator="discrete-laplace"`` the mixture is fitted (1 to 5
    clusters, lowest BIC) over the loci typed in every row.
    """
    p = source_name(source, filename)
    if estimator not in ESTIMATORS:
        raise FileFormatError(f"estimator must be one of {', '.join(ESTIMATORS)}, found {estimator!r}", path=p)
    header, rows = _read_rows(source, filename=p)
    cc = _find(header, COUNT_COLUMNS)
    sc = _find(header, SAMPLE_COLUMNS)
    skip = {c for c in (cc, sc) if c is not None}
    loci = _locus_columns(header, skip)
    ymarkers: dict[str, YMarker] = {}
    for locus, cols in loci.items():
        if markers is not None and locus in markers:
            ymarkers[locus] = markers[locus]
            continue
        try:
            ymarkers[locus] = default_y_marker(locus)
        except OpenDVIError:
            ymarkers[locus] = YMarker(locus, 0.0, copies=len(cols))
    haps: list[YHaplotype] = []
    counts: list[int] = []
    for line, cells in rows:
        hap: dict[str, tuple[str, ...]] = {}
        for locus, cols in loci.items():
            v = _y_value(cells, cols, copies=ymarkers[locus].copies, path=p, line=line, field=locus)
            if v is not None:
                hap[locus] = v
        count = 1
        if cc is not None:
            raw = cells[cc] if cc < len(cells) else ""
            try:
                count = int(raw)
            except ValueError:
                count = 0
            if count < 1:
                raise FileFormatError(f"must be a positive integer, found {raw!r}", path=p, line=line,
                                      field=header[cc])
        haps.append(hap)
        counts.append(count)
    if not haps:
        raise FileFormatError("no haplotype in the file", path=p)
    model = None
    if estimator == "discrete-laplace":
        from opendvi.io.lineage_json import fit_y_database_model

        try:
            model = fit_y_database_model(haps, counts, tuple(ymarkers.values()))
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=p) from None
    db = YDatabase(tuple(haps), tuple(counts), estimator, model=model, name=name or Path(p).stem)
    return db, tuple(ymarkers.values())


def read_mt_database(
    source: Source, *, estimator: str = DEFAULT_ESTIMATOR, name: str | None = None, filename: str | None = None
) -> MtDatabase:
    """An mtDNA haplotype database: columns ``range``, ``variants`` (space
    separated) and ``count`` (default 1 per row)."""
    p = source_name(source, filename)
    if estimator not in ESTIMATORS or estimator == "discrete-laplace":
        raise FileFormatError(f"estimator must be augmented-counting or clopper-pearson, found {estimator!r}",
                              path=p)
    header, rows = _read_rows(source, filename=p)
    rc, vc = _find(header, ("range",)), _find(header, ("variants", "haplotype", "profile"))
    cc = _find(header, COUNT_COLUMNS)
    if rc is None or vc is None:
        raise FileFormatError("expected columns 'range' and 'variants' (and 'count')", path=p, line=1)
    haps: list[MtHaplotype] = []
    counts: list[int] = []
    for line, cells in rows:
        try:
            haps.append(MtHaplotype.parse(cells[rc] if rc < len(cells) else "",
                                          (cells[vc] if vc < len(cells) else "").split(), who="haplotype"))
        except OpenDVIError as exc:
            msg = str(exc).split(": ", 1)[-1]
            where = "range" if _range_problem(msg) else header[vc]
            raise FileFormatError(msg, path=p, line=line, field=where) from None
        count = 1
        if cc is not None:
            raw = cells[cc] if cc < len(cells) else ""
            count = int(raw) if re.fullmatch(r"[0-9]+", raw) else 0
            if count < 1:
                raise FileFormatError(f"must be a positive integer, found {raw!r}", path=p, line=line,
                                      field=header[cc])
        counts.append(count)
    if not haps:
        raise FileFormatError("no haplotype in the file", path=p)
    return MtDatabase(tuple(haps), tuple(counts), estimator, name=name or Path(p).stem)

