"""Readers and writers take a file object as well as a path: the same result, and the
messages name the file by the name given with the stream (the service's
uploads: the user's file name, never a temporary path)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.core.errors import FileFormatError
from opendvi.data import demo_case_path
from opendvi.io import limits
from opendvi.io.case_json import read_case
from opendvi.io.cmf import read_cmf
from opendvi.io.convert import load
from opendvi.io.familias import parse_fam, read_fam
from opendvi.io.frequencies import read_frequencies
from opendvi.io.genemapper import read_genemapper
from opendvi.io.haplotypes import read_mt_haplotypes, read_y_database, read_y_haplotypes
from opendvi.io.tables import ped_text, read_families_table, read_ped, read_profiles_table, write_table

from .conftest import SHARED
from .servicekit import assert_error_shape, bearer, family_files, frequencies_long_csv, make_app, migrated_engine

FORMATS = SHARED / "data" / "formats"
GENEMAPPER = FORMATS / "genemapper" / "smartrank_GeneMapperExampleWithHeightsAndOL.txt"
CMF = FORMATS / "codis_cmf" / "smartrank_Codis-Single-Profile.xml"
FAM = FORMATS / "familias_fam" / "dvir" / "dvi-example.fam"


def _files(tmp_path: Path) -> dict[str, tuple[Path, Callable[..., Any]]]:
    """A file of every layout the readers take, and its reader."""
    fam, prof = family_files("S")
    (tmp_path / "families.csv").write_bytes(fam)
    (tmp_path / "profiles.csv").write_bytes(prof)
    write_table(["sample", "D3S1358", "TH01"], [["V1", "14/15", "6/9.3"], ["V2", "15", "7"]], tmp_path / "p.xlsx")
    (tmp_path / "families.ped").write_text(ped_text(read_case(demo_case_path())), encoding="utf-8")
    (tmp_path / "freqs.csv").write_bytes(frequencies_long_csv())
    (tmp_path / "y.csv").write_text("sample,DYS19,DYS385a,DYS385b\nS1,14,11,14\nS2,15,12,12\n", encoding="utf-8")
    (tmp_path / "ydb.csv").write_text("DYS19,DYS385a,DYS385b,count\n14,11,14,3\n15,12,12,1\n", encoding="utf-8")
    (tmp_path / "mt.tsv").write_text("sample\trange\tvariants\nS1\t16024-16365\t16069T 16126C\n",
                                     encoding="utf-8")
    return {
        "genemapper": (GENEMAPPER, read_genemapper),
        "cmf": (CMF, read_cmf),
        "fam": (FAM, read_fam),
        "fam-parsed": (FAM, parse_fam),
        "profiles-csv": (tmp_path / "profiles.csv", read_profiles_table),
        "profiles-xlsx": (tmp_path / "p.xlsx", read_profiles_table),
        "families-csv": (tmp_path / "families.csv", read_families_table),
        "ped": (tmp_path / "families.ped", read_ped),
        "freq": (tmp_path / "freqs.csv", lambda s, **kw: read_frequencies(s, population="A", **kw)),
        "y-haplotypes": (tmp_path / "y.csv", read_y_haplotypes),
        "y-database": (tmp_path / "ydb.csv", read_y_database),
        "mt-haplotypes": (tmp_path / "mt.tsv", read_mt_haplotypes),
        "load": (tmp_path / "families.csv", load),
        "load-xlsx": (tmp_path / "p.xlsx", load),
        "load-fam": (FAM, load),
    }


KINDS = ["genemapper", "cmf", "fam", "fam-parsed", "profiles-csv", "profiles-xlsx", "families-csv", "ped", "freq",
         "y-haplotypes", "y-database", "mt-haplotypes", "load", "load-xlsx", "load-fam"]


@pytest.mark.parametrize("kind", KINDS)
def test_reader__binary_stream_gives_what_the_path_gives(tmp_path: Path, kind: str) -> None:
    path, reader = _files(tmp_path)[kind]
    from_path = reader(path)
    with path.open("rb") as f:
        from_stream = reader(f, filename=str(path))
    assert from_stream == from_path


@pytest.mark.parametrize("kind", ["genemapper", "fam", "profiles-csv", "families-csv", "ped", "load"])
def test_reader__text_stream_gives_what_the_path_gives(tmp_path: Path, kind: str) -> None:
    path, reader = _files(tmp_path)[kind]
    text = path.read_bytes().decode("utf-8-sig")
    assert reader(io.StringIO(text), filename=str(path)) == reader(path)


@pytest.mark.parametrize(
    ("reader", "name", "data", "line"),
    [
        (read_genemapper, "Lab run 7.txt", (FORMATS / "genemapper" / "smartrank_GeneMapperExampleBrokenHeader.txt")
         .read_bytes(), 1),
        (read_cmf, "codis export.xml", (FORMATS / "codis_cmf" / "smartrank_broken-allele.xml").read_bytes(), None),
        (read_fam, "family Ø.fam", b'"Output from Familias, version 3.3.1"\r\n"c"\r\n3.3.1\r\n""\r\nx\r\n', 5),
        (read_profiles_table, "profiles (2).csv", b"sample,D3S1358\nV1,14/abc\n", 2),
    ],
)
def test_reader__stream_error_names_the_given_file(reader: Callable[..., Any], name: str, data: bytes,
                                                    line: int | None) -> None:
    with pytest.raises(FileFormatError) as info:
        reader(io.BytesIO(data), filename=name)
    assert info.value.path == name and str(info.value).startswith(name)
    assert info.value.line == line


def test_reader__stream_over_the_size_limit_refused_before_parsing() -> None:
    limits.set_limits(limits.Limits(max_file_bytes=64))
    try:
        with pytest.raises(limits.LimitError, match="OPENDVI_MAX_FILE_BYTES") as info:
            read_genemapper(io.BytesIO(b"Sample Name\tMarker\tAllele 1\n" * 10), filename="big.txt")
        assert info.value.path == "big.txt"
        with pytest.raises(limits.LimitError, match="OPENDVI_MAX_FILE_BYTES"):
            load(io.BytesIO(b"x" * 100), filename="big.xlsx")
    finally:
        limits.set_limits(None)


def test_stream_without_a_name_is_named_by_its_name_attribute() -> None:
    class Named(io.BytesIO):
        name = "from-a-socket.txt"

    with pytest.raises(FileFormatError) as info:
        read_genemapper(Named(b"Marker\tAllele 1\nD3S1358\t14\n"))
    assert info.value.path == "from-a-socket.txt"


# ---------------------------------------------------------------------------
# the service: an upload is read as it came, named as the user named it
# ---------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Any:
    with migrated_engine("sqlite", tmp_path) as engine:
        yield TestClient(make_app(engine))


def test_import_file__error_names_the_upload_not_a_temporary_file(client: TestClient) -> None:
    lab = bearer(client, "lab")
    bad = FAM.read_bytes().replace(b"#FALSE# (#Databases", b"#MAYBE# (#Databases")
    r = client.post("/api/operations/demo/imports/file", headers=lab,
                    files={"file": ("Family Ø 7.fam", bad, "application/octet-stream")})
    err = assert_error_shape(r, 422)
    text = str(err)
    assert "Family Ø 7.fam" in text and "database header" in text
    assert "opendvi-import" not in text and "upload" not in text and "/tmp" not in text


def test_import_families__errors_name_each_upload(client: TestClient) -> None:
    intake = bearer(client, "intake")
    fam, prof = family_files("Q")
    bad_prof = prof.replace(b"14,15,6,9.3", b"14,15,6,x")
    r = client.post("/api/operations/demo/imports/families", headers=intake,
                    files={"families": ("Familien.csv", fam, "text/csv"),
                           "profiles": ("Referenzen März.csv", bad_prof, "text/csv")})
    text = str(assert_error_shape(r, 422))
    assert "Referenzen März.csv:2: TH01" in text
    assert "opendvi-import" not in text and "/tmp" not in text
    bad_fam = fam.replace(b"FTQ,FA,,,M", b"FTQ,FA,,,Q")
    r = client.post("/api/operations/demo/imports/families", headers=intake,
                    files={"families": ("Familien.csv", bad_fam, "text/csv"),
                           "profiles": ("Referenzen.csv", prof, "text/csv")})
    text = str(assert_error_shape(r, 422))
    assert "Familien.csv" in text and "opendvi-import" not in text


def test_import_frequencies__error_names_the_upload(client: TestClient) -> None:
    dvi = bearer(client, "dvi")
    bad = frequencies_long_csv().replace(b",A\n", b",A,extra\n", 1) + b"D3S1358,12,abc,A\n"
    r = client.post("/api/operations/demo/imports/frequencies", headers=dvi,
                    files={"file": ("Allelfrekvenser 2026.csv", bad, "text/csv")}, data={"population": "A"})
    text = str(assert_error_shape(r, 422))
    assert "Allelfrekvenser 2026.csv" in text and "opendvi-import" not in text


def test_import_file__notes_name_the_upload(client: TestClient) -> None:
    lab = bearer(client, "lab")
    gm = b"Sample Name\tMarker\tAllele 1\tAllele 2\nLadder\tD3S1358\t14\t15\nSTREAM-1\tD3S1358\t14\t15\n"
    r = client.post("/api/operations/demo/imports/file", headers=lab,
                    files={"file": ("Run 12 Genotypes.txt", gm, "text/plain")})
    assert r.status_code == 201, r.text
    notes = r.json()["notes"]
    assert any(n.startswith("Run 12 Genotypes.txt: line 2: ladder or control") for n in notes), notes
    assert not any("opendvi-import" in n or "upload" in n for n in notes)


@pytest.mark.parametrize("fmt", ["json", "fam", "cmf", "ped", "freq", "profiles-csv", "xlsx"])
def test_save_case__binary_stream_gets_the_bytes_the_path_gets(tmp_path: Path, fmt: str) -> None:
    from opendvi.io.convert import save_case

    case = read_case(demo_case_path())
    ext = {"json": ".json", "fam": ".fam", "cmf": ".xml", "ped": ".ped", "freq": ".txt", "profiles-csv": ".csv",
           "xlsx": ".xlsx"}[fmt]
    out = tmp_path / f"case{ext}"
    notes: list[str] = []
    if fmt == "cmf":  # the CMF timestamp is the time of writing: compare what a reader makes of both
        save_case(case, out, fmt, notes=notes)
        buf = io.BytesIO()
        save_case(case, buf, fmt, notes=[], filename=str(out))
        assert read_cmf(io.BytesIO(buf.getvalue()), filename=str(out)) == read_cmf(out)
        return
    save_case(case, out, notes=notes)
    buf = io.BytesIO()
    stream_notes: list[str] = []
    save_case(case, buf, notes=stream_notes, filename=out.name)  # the format from the name, as from the path
    if fmt == "xlsx":  # a workbook's zip stamps its members: compare what a reader makes of both
        assert load(io.BytesIO(buf.getvalue()), filename="case.xlsx") == load(out, filename="case.xlsx")
    else:
        assert buf.getvalue() == out.read_bytes()
    assert [n.replace(out.name, "") for n in stream_notes] == [n.replace(str(out), "") for n in notes]
