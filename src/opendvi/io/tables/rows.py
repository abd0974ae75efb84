"""Rows of a CSV/TSV or Excel file, and tables of results written as CSV or Excel.

:func:`read_rows` gives the header and the rows of a table, every cell a
string, with its line (CSV/text: file line; Excel: sheet row); the readers of
the templates build on it. Writers for results (generic rows, a pairwise
matrix) write CSV or Excel atomically.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opendvi.core.errors import FileFormatError
from opendvi.io import limits
from opendvi.io.normalise import header_key
from opendvi.io.source import Source, Target, is_stream, put_bytes, read_bytes, read_text, source_name, suffix

Row = tuple[int, list[str]]  # (line or sheet row, cells)


def read_rows(
    source: Source, *, sheet: str | None = None, filename: str | None = None
) -> tuple[list[str], list[Row]]:
    """Header and rows of a CSV/TSV or Excel file (by the extension of
    ``filename`` or the path), every cell a string."""
    name = source_name(source, filename)
    if suffix(source, filename) in (".xlsx", ".xlsm"):
        return _xlsx_rows(source, name, sheet=sheet)
    lim = limits.current()
    text = read_text(source, name, lim=lim)
    first = text[: text.find("\n")] if "\n" in text else text
    if not text.strip():
        raise FileFormatError("empty file", path=name)
    delim = "\t" if "\t" in first else ";" if first.count(";") > first.count(",") else ","
    limits.check_text(text, name, delimiter=delim, limits=lim)
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    all_rows: list[list[str]] = []
    try:
        for r in reader:
            limits.check_row(len(r), name, reader.line_num, lim)
            all_rows.append(r)
    except csv.Error as exc:
        raise FileFormatError(f"malformed CSV: {exc}", path=name, line=reader.line_num) from None
    if not all_rows:
        raise FileFormatError("empty file", path=name)
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


def open_workbook(source: Source, name: str, lim: limits.Limits | None = None) -> Any:
    """:func:`opendvi.io.limits.open_workbook` on a path or a stream (read into memory, its size checked)."""
    lim = lim or limits.current()
    data: Path | bytes = read_bytes(source, name, lim=lim) if is_stream(source) else Path(source)  # type: ignore[arg-type]
    return limits.open_workbook(data, lim, name=name)


def _xlsx_rows(source: Source, name: str, *, sheet: str | None) -> tuple[list[str], list[Row]]:
    lim = limits.current()
    wb = open_workbook(source, name, lim)  # the zip and every sheet's declared dimension checked first
    try:
        if sheet is not None:
            if sheet not in wb.sheetnames:
                raise FileFormatError(f"no sheet {sheet!r} (sheets: {', '.join(wb.sheetnames)})", path=name)
            ws = wb[sheet]
        elif wb.worksheets:
            ws = wb.worksheets[0]
        else:
            raise FileFormatError("not a readable Excel workbook: it has no sheet", path=name)
        # the dimension was checked; read without it (a wrong one must not pad or clip rows) and stop at the caps
        ws.reset_dimensions()
        values: list[list[str]] = []
        cells = 0
        try:
            for k, r in enumerate(ws.iter_rows(values_only=True), start=1):
                if k > lim.max_rows:
                    raise limits.LimitError(
                        f"sheet {ws.title!r} has more than {lim.max_rows:,} rows: over the limit "
                        f"({limits.env_name('max_rows')})", path=name, line=k)
                row = [_cell(v) for v in r]
                while row and not row[-1]:
                    row.pop()
                limits.check_row(len(row), name, k, lim)
                cells += len(row)
                if cells > lim.max_cells:
                    raise limits.LimitError(
                        f"sheet {ws.title!r} has more than {lim.max_cells:,} cells: over the limit "
                        f"({limits.env_name('max_cells')})", path=name, line=k)
                values.append(row)
        except FileFormatError:
            raise
        except limits.excel_errors() as exc:  # a damaged sheet
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FileFormatError(f"not a readable Excel sheet {ws.title!r}: {first}", path=name) from None
    finally:
        wb.close()
    if not values:
        raise FileFormatError("empty sheet", path=name)
    header = values[0]
    rows = [(k, r) for k, r in enumerate(values[1:], start=2) if any(c for c in r)]
    return header, rows


def find_column(header: list[str], names: Sequence[str]) -> int | None:
    """The index of the first of ``names`` (compared by :func:`header_key`) in ``header``."""
    keys = [header_key(h) for h in header]
    for n in names:
        if n in keys:
            return keys.index(n)
    return None


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
    target: Target,
    *,
    sheet: str = "results",
    sheets: Mapping[str, tuple[Sequence[str], Iterable[Sequence[Any]]]] | None = None,
    filename: str | None = None,
) -> None:
    """Write a table as CSV (by the extension of ``filename`` or the path:
    .csv/.tsv/.txt) or Excel (.xlsx), to a path atomically or to a binary
    file object. ``sheets`` adds further sheets to an Excel file."""
    ext = suffix(target, filename)
    rows = [list(r) for r in rows]
    if ext == ".xlsx":
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
        book = io.BytesIO()
        wb.save(book)
        put_bytes(target, book.getvalue())
        return
    delim = "\t" if ext in (".tsv", ".txt") else ","
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator="\n")
    w.writerow(list(header))
    for r in rows:
        w.writerow([_plain(v) for v in r])
    put_bytes(target, buf.getvalue().encode("utf-8"))


def write_rows(
    rows: Sequence[Mapping[str, Any]],
    target: Target,
    *,
    columns: Sequence[str] | None = None,
    sheet: str = "results",
    filename: str | None = None,
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
    write_table(columns, ([r.get(c) for c in columns] for r in rows), target, sheet=sheet, filename=filename)


def write_matrix(
    row_ids: Sequence[str],
    col_ids: Sequence[str],
    values: Sequence[Sequence[Any]],
    target: Target,
    *,
    corner: str = "",
    sheet: str = "matrix",
    filename: str | None = None,
) -> None:
    """Write a pairwise matrix (e.g. log10 LR of each remains against each
    missing person) with row and column labels."""
    if len(values) != len(row_ids) or any(len(r) != len(col_ids) for r in values):
        raise ValueError("matrix shape does not match its labels")
    write_table([corner, *col_ids], ([rid, *r] for rid, r in zip(row_ids, values, strict=True)), target,
                sheet=sheet, filename=filename)
