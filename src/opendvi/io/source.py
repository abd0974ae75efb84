"""Where a reader's input comes from (a path, or an open file and its name),
and where a writer's output goes (a path, or a binary file object).

Every reader takes a ``source`` (a path, or a binary or text file object)
and a ``filename``: the name its messages give the file (default: the path,
or the stream's ``name``). The service passes an upload as it came, under
the name the user gave it; the command line passes paths. The size limit of
:mod:`opendvi.io.limits` is checked before the content is read: from the
file system for a path, for a stream by reading at most one byte over it.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Union

from opendvi.core.errors import FileFormatError
from opendvi.io import limits

#: What a reader reads: a path, or an open file (binary or text).
Source = Union[str, "os.PathLike[str]", IO[bytes], IO[str]]

#: Where a writer writes: a path (written atomically) or a binary file object.
Target = Union[str, "os.PathLike[str]", IO[bytes]]

#: What reading or writing files raises that is the file's or the system's
#: fault, not a bug (the readers turn them into
#: :class:`~opendvi.core.errors.FileFormatError` where they meet them; a
#: command driving several readers and writers turns the rest into one line).
FILE_ERRORS: tuple[type[BaseException], ...] = (OSError, UnicodeError, csv.Error, zipfile.BadZipFile, ET.ParseError)


def is_stream(source: Source) -> bool:
    return hasattr(source, "read")


def source_name(source: Source, filename: str | None = None) -> str:
    """The name messages give the file: ``filename``, else the path, else the stream's name."""
    if filename is not None:
        return filename
    if is_stream(source):
        name = getattr(source, "name", None)
        return str(name) if isinstance(name, (str, os.PathLike)) else "<stream>"
    return str(Path(source))  # type: ignore[arg-type]


def suffix(source: Source, filename: str | None = None) -> str:
    """The file's extension, lower case (from ``filename`` or the path)."""
    return Path(source_name(source, filename)).suffix.lower()


def read_bytes(source: Source, filename: str | None = None, *, lim: limits.Limits | None = None) -> bytes:
    """The whole content, its size checked against ``max_file_bytes`` first
    (a text stream is encoded as UTF-8)."""
    name = source_name(source, filename)
    lim = lim or limits.current()
    if is_stream(source):
        data = source.read(lim.max_file_bytes + 1)  # type: ignore[union-attr]
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        limits.check_bytes(raw, name, lim)
        return raw
    p = Path(source)  # type: ignore[arg-type]
    limits.check_file(p, lim, name=name)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise FileFormatError("file not found", path=name) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read: {exc.strerror}", path=name) from None


def read_text(source: Source, filename: str | None = None, *, lim: limits.Limits | None = None) -> str:
    """The content as text: UTF-8 (BOM dropped), else Latin-1; a binary file
    is refused. Errors are :class:`FileFormatError` naming the file."""
    raw = read_bytes(source, filename, lim=lim)
    if b"\x00" in raw[:4096]:
        raise FileFormatError("this is a binary file, not text", path=source_name(source, filename))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_utf8(source: Source, filename: str | None = None, *, lim: limits.Limits | None = None) -> str:
    """The content as UTF-8 text (BOM dropped); anything else is refused."""
    raw = read_bytes(source, filename, lim=lim)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"cannot read: {exc}", path=source_name(source, filename)) from None


def reopenable(source: Source, filename: str | None = None) -> tuple[Source, str]:
    """A source that can be read more than once (a stream is read into
    memory, its size checked) and its name."""
    name = source_name(source, filename)
    if is_stream(source):
        return io.BytesIO(read_bytes(source, name)), name
    return source, name


def rewind(source: Source) -> Source:
    """A stream back at its start (a path as it is)."""
    if is_stream(source):
        source.seek(0)  # type: ignore[union-attr]
    return source


def put_bytes(target: Target, data: bytes) -> None:
    """``data`` written to a binary stream, or to a path atomically (a
    temporary file beside it renamed into place: the complete new file or
    the old one untouched)."""
    if is_stream(target):
        target.write(data)  # type: ignore[union-attr]
        return
    write_atomic(target, lambda tmp: tmp.write_bytes(data))  # type: ignore[arg-type]


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path`` and rename it into
    place, so that ``path`` is either the complete new file or untouched."""
    p = Path(path)
    directory = p.parent if str(p.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
