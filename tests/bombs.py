"""Hostile files for the limit tests: small files that declare or inflate to huge ones.

* :func:`excel_dimension_bomb` - a real workbook (a few KB) whose sheet declares
  ``A1:XFD1048576`` and has a cell in its last row and column (openpyxl's
  read-only reader pads every row to the declared width and yields every
  row up to the last);
* :func:`excel_deflate_bomb` - a workbook whose sheet inflates from about
  4 MB to about 4 GB (deflate blocks of spaces, repeated; valid XML);
* :func:`deep_json` - arrays nested 50,000 deep (100 KB);
* :func:`deep_xml` - a CMF document nested 50,000 elements deep;
* :func:`fam_count_bomb` - a Familias file (a few lines) declaring a billion
  extra persons;
* :func:`huge_file` - a sparse file of 1 GiB (no disk used).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path


def _small_workbook() -> dict[str, bytes]:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "profiles"
    ws.append(["sample", "D3S1358"])
    ws.append(["V1", "14/15"])
    buf = io.BytesIO()
    wb.save(buf)
    import zipfile

    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        return {i.filename: zf.read(i.filename) for i in zf.infolist()}


def _zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip archive from (name, deflated data, crc32, uncompressed size): written by hand so that
    a member may hold deflate data made without inflating it."""
    out = io.BytesIO()
    central = io.BytesIO()
    for name, data, crc, usize in members:
        offset = out.tell()
        fn = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), usize, len(fn), 0))
        out.write(fn)
        out.write(data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), usize,
                                  len(fn), 0, 0, 0, 0, 0, offset))
        central.write(fn)
    cd = central.getvalue()
    start = out.tell()
    out.write(cd)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), start, 0))
    return out.getvalue()


def _deflate(raw: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush()


def _plain_members(parts: dict[str, bytes], skip: str) -> list[tuple[str, bytes, int, int]]:
    return [(n, _deflate(b), zlib.crc32(b), len(b)) for n, b in parts.items() if n != skip]


SHEET = "xl/worksheets/sheet1.xml"


def excel_dimension_bomb(path: Path) -> Path:
    parts = _small_workbook()
    sheet = parts[SHEET].decode()
    start = sheet.index("<dimension ref=")
    end = sheet.index("/>", start) + 2
    sheet = sheet[:start] + '<dimension ref="A1:XFD1048576"/>' + sheet[end:]
    # and one cell in the last row and column, so that every declared row and column is "there"
    last = '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    parts[SHEET] = sheet.replace("</sheetData>", last, 1).encode()
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


def excel_deflate_bomb(path: Path, *, mib: int = 4000) -> Path:
    """``mib`` MiB of XML (under 4 GiB, so no zip64) from about ``mib`` KB of deflate data."""
    parts = _small_workbook()
    sheet = parts[SHEET]
    cut = sheet.index(b"<sheetData>") + len(b"<sheetData>")
    head, tail = sheet[:cut], sheet[cut:]
    block = b" " * (1 << 20)  # whitespace between elements: valid XML, read and thrown away
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    # after a full flush each block is byte-aligned and needs no earlier data: repeat it
    chunk = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(tail) + c.flush()
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(tail, crc)
    data = first + chunk * mib + last
    usize = len(head) + len(block) * mib + len(tail)
    assert usize < 2**32
    members = [*_plain_members(parts, SHEET), (SHEET, data, crc, usize)]
    path.write_bytes(_zip(members))
    return path


def deep_json(path: Path, depth: int = 50_000) -> Path:
    path.write_bytes(b"[" * depth + b"]" * depth)
    return path


def deep_xml(path: Path, depth: int = 50_000) -> Path:
    path.write_bytes(b'<?xml version="1.0"?><CODISImportFile xmlns="urn:CODISImportFile-schema">'
                     + b"<a>" * depth + b"</a>" * depth + b"</CODISImportFile>")
    return path


def fam_count_bomb(path: Path) -> Path:
    path.write_bytes(b'"Output from Familias, version 3.3.1"\r\n"DO NOT EDIT!"\r\n"3.3.1"\r\n""\r\n0\r\n'
                     b'"Known relations"\r\n1000000000\r\n0\r\n0\r\n0\r\n')
    return path


def huge_file(path: Path, size: int = 1 << 30) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path
