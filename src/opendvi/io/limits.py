"""Limits on what a file may be or declare, checked before the work.

Every reader calls these checks before it parses, so that a small file that
declares a huge sheet (``A1:XFD1048576``), a zip that inflates to gigabytes,
a JSON document nested 50,000 deep or a file of gigabytes is refused at once,
in one line naming the file and the limit, instead of exhausting memory or
time. The limits (defaults below; ``docs/file-formats.md``) apply to the
command line and to the service alike; each can be changed by an environment
variable, or for a process by :func:`set_limits`.

=============================  ==============  =====================================
limit                          default         environment variable
=============================  ==============  =====================================
``max_file_bytes``             256 MiB         ``OPENDVI_MAX_FILE_BYTES``
``max_rows``                   1,000,000       ``OPENDVI_MAX_ROWS``
``max_columns``                2,000           ``OPENDVI_MAX_COLUMNS``
``max_cells``                  10,000,000      ``OPENDVI_MAX_CELLS``
``max_depth``                  64              ``OPENDVI_MAX_DEPTH``
``max_decompressed_bytes``     256 MiB         ``OPENDVI_MAX_DECOMPRESSED_BYTES``
``max_compression_ratio``      200             ``OPENDVI_MAX_COMPRESSION_RATIO``
``max_archive_members``        1,000           ``OPENDVI_MAX_ARCHIVE_MEMBERS``
=============================  ==============  =====================================

Rows are table rows or text lines (and the records a file declares: persons,
loci, alleles, relations); cells are table cells, JSON values or XML
elements; depth is the nesting of JSON arrays and objects, XML elements or
Familias sections. Excel workbooks are zip archives: before ``openpyxl``
opens one, the declared (uncompressed) size of every member, their sum and
their compression ratio are checked (Python's zip reader never inflates a
member past its declared size), then each sheet's declared dimension.
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opendvi.core.errors import FileFormatError

MiB = 1024 * 1024


class LimitError(FileFormatError):
    """A file is over one of the limits (its message names the limit and the
    environment variable that changes it)."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 256 * MiB
    max_rows: int = 1_000_000
    max_columns: int = 2_000
    max_cells: int = 10_000_000
    max_depth: int = 64
    max_decompressed_bytes: int = 256 * MiB
    max_compression_ratio: float = 200.0
    max_archive_members: int = 1_000

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(env_name(f.name))
            if raw is None or not raw.strip():
                continue
            try:
                v = float(raw) if f.name == "max_compression_ratio" else int(raw.replace("_", ""))
            except ValueError:
                raise FileFormatError(f"{env_name(f.name)}={raw!r} is not a number") from None
            if v <= 0:
                raise FileFormatError(f"{env_name(f.name)} must be above 0, found {raw!r}")
            values[f.name] = v
        return cls(**values)


def env_name(field_name: str) -> str:
    return "OPENDVI_" + field_name.upper()


_override: Limits | None = None


def set_limits(limits: Limits | None) -> None:
    """Use ``limits`` in this process (``None``: back to the environment's)."""
    global _override
    _override = limits


def current() -> Limits:
    """The limits in force: :func:`set_limits`, else the environment's."""
    return _override if _override is not None else Limits.from_env()


def _refuse(path: str | Path, what: str, limit_name: str, limit: float, *, line: int | None = None,
            field: str | None = None) -> LimitError:
    shown = f"{limit:g}" if isinstance(limit, float) else _size(limit) if limit_name.endswith("bytes") else f"{limit:,}"
    return LimitError(f"{what}: over the limit of {shown} ({env_name(limit_name)})", path=str(path), line=line,
                      field=field)


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n:,} bytes"


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------


def check_file(path: str | Path, limits: Limits | None = None, *, name: str | None = None) -> None:
    """The file's size, from the file system, before anything is read
    (``name``: how messages name the file; default the path)."""
    lim = limits or current()
    p = Path(path)
    shown = name if name is not None else str(p)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise FileFormatError("file not found", path=shown) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read: {exc.strerror}", path=shown) from None
    if size > lim.max_file_bytes:
        raise _refuse(shown, f"the file is {_size(size)}", "max_file_bytes", lim.max_file_bytes)


def check_bytes(raw: bytes, path: str | Path, limits: Limits | None = None) -> None:
    lim = limits or current()
    if len(raw) > lim.max_file_bytes:
        raise _refuse(path, f"the file is {_size(len(raw))}", "max_file_bytes", lim.max_file_bytes)


def check_text(text: str | bytes, path: str | Path, *, delimiter: str | None = None,
               limits: Limits | None = None) -> None:
    """Lines, and cells (delimiters) of a delimited text, counted before parsing."""
    lim = limits or current()
    if isinstance(text, bytes):
        lines = text.count(b"\n") + 1
    else:
        lines = text.count("\n") + 1
    if lines > lim.max_rows:
        raise _refuse(path, f"the file has {lines:,} lines", "max_rows", lim.max_rows)
    if delimiter:
        sep = delimiter.encode() if isinstance(text, bytes) else delimiter
        cells = text.count(sep) + lines  # type: ignore[arg-type]
        if cells > lim.max_cells:
            raise _refuse(path, f"the file has about {cells:,} cells", "max_cells", lim.max_cells)


def check_row(n_cells: int, path: str | Path, line: int | None, limits: Limits | None = None) -> None:
    lim = limits or current()
    if n_cells > lim.max_columns:
        raise _refuse(path, f"a row of {n_cells:,} columns", "max_columns", lim.max_columns, line=line)


def check_count(n: int, what: str, path: str | Path, *, line: int | None = None, limits: Limits | None = None,
                limit_name: str = "max_rows") -> None:
    """A count a file declares (persons, loci, alleles, relations...)."""
    lim = limits or current()
    cap = getattr(lim, limit_name)
    if n > cap:
        raise _refuse(path, f"{what}: {n:,}", limit_name, cap, line=line)


_KEEP = bytes(b for b in range(256) if b not in b'"[]{}')
_CHUNK = 1 << 22


def json_depth(raw: bytes | str) -> int:
    """The deepest nesting of arrays and objects in a JSON text, brackets
    inside strings ignored; computed without recursion, at C speed (escaped
    backslashes and quotes are removed, then only quotes and brackets are
    walked, with NumPy, in chunks)."""
    import numpy as np

    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    data = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, delete=_KEEP)
    best = depth = 0
    inside = 0  # 1 while in a string at the chunk's start
    for start in range(0, len(data), _CHUNK):
        a = np.frombuffer(data, dtype=np.uint8, count=min(_CHUNK, len(data) - start), offset=start)
        q = (a == 0x22).astype(np.int64)
        before = (np.cumsum(q) - q + inside) % 2  # quotes before each byte: odd = inside a string
        out = before == 0
        step = (((a == 0x5B) | (a == 0x7B)) & out).astype(np.int64) - (((a == 0x5D) | (a == 0x7D)) & out)
        levels = np.cumsum(step) + depth
        if len(levels):
            best = max(best, int(levels.max()))
            depth = int(levels[-1])
        inside = int((inside + int(q.sum())) % 2)
    return best


def check_json(raw: bytes | str, path: str | Path, limits: Limits | None = None) -> None:
    """Size, nesting depth and number of values of a JSON text, before ``json.loads``."""
    lim = limits or current()
    n = len(raw)
    if n > lim.max_file_bytes:
        raise _refuse(path, f"the file is {_size(n)}", "max_file_bytes", lim.max_file_bytes)
    depth = json_depth(raw)
    if depth > lim.max_depth:
        raise _refuse(path, f"JSON nested {depth:,} levels deep", "max_depth", lim.max_depth)
    sep = b"," if isinstance(raw, bytes) else ","
    values = raw.count(sep) + 1  # type: ignore[arg-type]
    if values > lim.max_cells:
        raise _refuse(path, f"about {values:,} JSON values", "max_cells", lim.max_cells)


def check_xml(raw: bytes, path: str | Path, limits: Limits | None = None) -> None:
    """Size and number of elements of an XML document, before parsing."""
    lim = limits or current()
    check_bytes(raw, path, lim)
    elements = raw.count(b"<") - raw.count(b"</")
    if elements > lim.max_cells:
        raise _refuse(path, f"about {elements:,} XML elements", "max_cells", lim.max_cells)


def check_tree_depth(root: Any, path: str | Path, limits: Limits | None = None) -> None:
    """The depth of a parsed XML tree, without recursion."""
    lim = limits or current()
    stack = [(root, 1)]
    while stack:
        el, d = stack.pop()
        if d > lim.max_depth:
            raise _refuse(path, f"XML nested {d:,} elements deep", "max_depth", lim.max_depth)
        stack.extend((ch, d + 1) for ch in el)


_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def check_zip(source: str | Path | bytes, limits: Limits | None = None, *, name: str | None = None) -> None:
    """The members of a zip archive (an ``.xlsx``, a path or its bytes):
    their number, declared uncompressed sizes, their sum and compression
    ratios, read from the central directory before anything is inflated."""
    lim = limits or current()
    if isinstance(source, bytes):
        shown = name or "<stream>"
        check_bytes(source, shown, lim)
        archive: Path | io.BytesIO = io.BytesIO(source)
    else:
        shown = name if name is not None else str(Path(source))
        check_file(source, lim, name=shown)
        archive = Path(source)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    # NotImplementedError: a zip version that zipfile does not read
    except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError) as exc:
        raise FileFormatError(f"not a readable Excel workbook (not a zip archive: {exc})", path=shown) from None
    if len(infos) > lim.max_archive_members:
        raise _refuse(shown, f"the archive holds {len(infos):,} members", "max_archive_members",
                      lim.max_archive_members)
    total = 0
    for info in infos:
        if info.flag_bits & 0x1 or info.compress_type not in _ZIP_METHODS:  # what zipfile cannot open
            what = "is encrypted" if info.flag_bits & 0x1 else f"uses compression method {info.compress_type}"
            raise FileFormatError(f"not a readable Excel workbook: member {info.filename} {what}", path=shown)
        total += info.file_size
        if info.file_size > lim.max_decompressed_bytes or total > lim.max_decompressed_bytes:
            raise _refuse(shown, f"the archive inflates to {_size(total)} or more (member {info.filename})",
                          "max_decompressed_bytes", lim.max_decompressed_bytes)
        if info.file_size > MiB:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > lim.max_compression_ratio:
                raise _refuse(shown, f"member {info.filename} is compressed {ratio:,.0f} to 1 (a zip bomb?)",
                              "max_compression_ratio", lim.max_compression_ratio)


def check_sheet_dimension(max_row: int | None, max_column: int | None, path: str | Path, sheet: str,
                          limits: Limits | None = None) -> None:
    """A sheet's declared dimension (``<dimension ref="A1:XFD1048576"/>``), before its rows are read."""
    lim = limits or current()
    if max_row is not None and max_row > lim.max_rows:
        raise _refuse(path, f"sheet {sheet!r} declares {max_row:,} rows", "max_rows", lim.max_rows)
    if max_column is not None and max_column > lim.max_columns:
        raise _refuse(path, f"sheet {sheet!r} declares {max_column:,} columns", "max_columns", lim.max_columns)
    if max_row is not None and max_column is not None and max_row * max_column > lim.max_cells:
        raise _refuse(path, f"sheet {sheet!r} declares {max_row * max_column:,} cells", "max_cells", lim.max_cells)


def excel_errors() -> tuple[type[BaseException], ...]:
    """What ``openpyxl`` raises on a damaged workbook or sheet: its
    ``InvalidFileException``, a damaged zip or deflate stream, a missing
    member (``KeyError``), values it cannot convert, XML it cannot parse
    (``SyntaxError`` covers ElementTree's and lxml's parse errors)."""
    from openpyxl.utils.exceptions import InvalidFileException

    return (InvalidFileException, zipfile.BadZipFile, zlib.error, KeyError, ValueError, TypeError, IndexError,
            AttributeError, OSError, EOFError, SyntaxError)


def open_workbook(source: str | Path | bytes, limits: Limits | None = None, *, name: str | None = None) -> Any:
    """An ``openpyxl`` workbook (from a path or its bytes) in read-only mode,
    opened only after :func:`check_zip` (and with every sheet's declared
    dimension checked)."""
    lim = limits or current()
    shown = name if name is not None else "<stream>" if isinstance(source, bytes) else str(Path(source))
    check_zip(source, lim, name=shown)
    try:
        import openpyxl
    except ImportError:  # pragma: no cover
        raise FileFormatError("reading Excel needs openpyxl: pip install openpyxl", path=shown) from None
    try:
        wb = openpyxl.load_workbook(io.BytesIO(source) if isinstance(source, bytes) else Path(source),
                                    read_only=True, data_only=True)
    except FileNotFoundError:
        raise FileFormatError("file not found", path=shown) from None
    except excel_errors() as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FileFormatError(f"not a readable Excel workbook: {first}", path=shown) from None
    try:
        for ws in wb.worksheets:
            check_sheet_dimension(getattr(ws, "max_row", None), getattr(ws, "max_column", None), shown, ws.title,
                                  lim)
    except BaseException:
        wb.close()
        raise
    return wb
