"""Hypothesis fuzzing (bounded) of the readers the other fuzz tests leave out - case JSON, frequency lists
and long CSVs, profile tables, Excel workbooks with damaged bytes - and of the limit checks themselves:
a damaged file raises one ``FileFormatError`` of one line, never anything else; the JSON depth scanner
agrees with the real nesting whatever the strings hold; a limit set low refuses, in one line."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendvi.core.errors import FileFormatError
from opendvi.data import demo_case_path
from opendvi.io import limits
from opendvi.io.case_json import read_case
from opendvi.io.frequencies import read_frequencies
from opendvi.io.tables import read_profiles_table, write_table

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

DEMO = Path(demo_case_path()).read_bytes()
FAMILIAS_LIST = "TH01\n6\t0.25\n7\t0.25\n9.3\t0.5\n\nvWA\n14\t0.5\n17\t0.5\n"
LONG_CSV = "marker,allele,frequency,population\nTH01,6,0.5,A\nTH01,7,0.5,A\nvWA,14,1.0,A\n"
PROFILES = "sample,sex,D3S1358,TH01\nV1,M,14/15,6/9.3\nV2,F,15,7/9.3\n"


def _one_line(exc: FileFormatError) -> None:
    assert "\n" not in str(exc), str(exc)


def _corrupt(data: bytes, pos: int, junk: bytes) -> bytes:
    k = pos % max(len(data), 1)
    return data[:k] + junk + data[k + 1:]


@FUZZ
@given(pos=st.integers(0, 100_000), junk=st.binary(max_size=4))
def test_read_case__damaged_json_raises_only_file_format_error(tmp_path: Path, pos: int, junk: bytes) -> None:
    f = tmp_path / "case.json"
    f.write_bytes(_corrupt(DEMO, pos, junk))
    try:
        read_case(f)
    except FileFormatError as exc:
        _one_line(exc)


@FUZZ
@given(pos=st.integers(0, 10_000), junk=st.text(max_size=3), long=st.booleans())
def test_frequencies__damaged_lists_and_long_csv_raise_only_file_format_error(
    tmp_path: Path, pos: int, junk: str, long: bool
) -> None:
    text = LONG_CSV if long else FAMILIAS_LIST
    f = tmp_path / ("f.csv" if long else "f.txt")
    f.write_text(text[: pos % len(text)] + junk + text[pos % len(text) + 1:], encoding="utf-8")
    try:
        read_frequencies(f, population="A") if long else read_frequencies(f)
    except FileFormatError as exc:
        _one_line(exc)


@FUZZ
@given(pos=st.integers(0, 10_000), junk=st.text(max_size=3))
def test_profiles_table__damaged_csv_raises_only_file_format_error(tmp_path: Path, pos: int, junk: str) -> None:
    f = tmp_path / "p.csv"
    f.write_text(PROFILES[: pos % len(PROFILES)] + junk + PROFILES[pos % len(PROFILES) + 1:], encoding="utf-8")
    try:
        read_profiles_table(f)
    except FileFormatError as exc:
        _one_line(exc)


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    f = tmp_path_factory.mktemp("xlsx") / "p.xlsx"
    write_table(["sample", "sex", "D3S1358", "TH01"], [["V1", "M", "14/15", "6/9.3"], ["V2", "F", "15", "7"]], f)
    return f.read_bytes()


@FUZZ
@given(pos=st.integers(0, 100_000), junk=st.binary(min_size=1, max_size=8))
def test_profiles_table__damaged_workbook_raises_only_file_format_error(
    tmp_path: Path, workbook: bytes, pos: int, junk: bytes
) -> None:
    f = tmp_path / "p.xlsx"
    f.write_bytes(_corrupt(workbook, pos, junk))
    try:
        read_profiles_table(f)
    except FileFormatError as exc:
        _one_line(exc)


@FUZZ
@given(pos=st.integers(0, 100_000))
def test_profiles_table__damaged_sheet_xml_raises_only_file_format_error(
    tmp_path: Path, workbook: bytes, pos: int
) -> None:
    """The bytes inflated from the sheet damaged, the zip itself sound."""
    src = zipfile.ZipFile(io.BytesIO(workbook))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("xl/worksheets/"):
                data = _corrupt(data, pos, b"<")
            zf.writestr(info.filename, data)
    f = tmp_path / "p.xlsx"
    f.write_bytes(out.getvalue())
    try:
        read_profiles_table(f)
    except FileFormatError as exc:
        _one_line(exc)


def _depth(x: Any) -> int:
    if isinstance(x, list):
        return 1 + max((_depth(v) for v in x), default=0)
    if isinstance(x, dict):
        return 1 + max((_depth(v) for v in x.values()), default=0)
    return 0


TRICKY = st.text(alphabet='[]{}"\\ab,:\n', max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_json_depth__is_the_nesting_whatever_the_strings_hold(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert limits.json_depth(text) == _depth(value)
    assert limits.json_depth(text.encode()) == _depth(value)


def test_limits__set_low_they_refuse_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "p.csv"
    f.write_text(PROFILES)
    assert len(read_profiles_table(f).records) == 2
    monkeypatch.setenv("OPENDVI_MAX_ROWS", "2")
    with pytest.raises(limits.LimitError) as exc:
        read_profiles_table(f)
    assert str(exc.value) == f"{f}: the file has 4 lines: over the limit of 2 (OPENDVI_MAX_ROWS)"
    monkeypatch.delenv("OPENDVI_MAX_ROWS")
    limits.set_limits(limits.Limits(max_file_bytes=10))
    try:
        with pytest.raises(limits.LimitError, match="OPENDVI_MAX_FILE_BYTES"):
            read_case(demo_case_path())
    finally:
        limits.set_limits(None)
    monkeypatch.setenv("OPENDVI_MAX_DEPTH", "two")
    with pytest.raises(FileFormatError, match="OPENDVI_MAX_DEPTH='two' is not a number"):
        read_case(demo_case_path())
