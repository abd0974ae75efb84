"""Frequency databases: every shared file reads, aliases merge, problems name
the file and the line, and alleles absent from the database are added as
likelihood.md says (5 / (2N), or 0.001) and reported."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from opendvi.core.errors import FileFormatError, MarkerError
from opendvi.core.markers import canonical_marker_name, make_marker
from opendvi.io.case_json import case_from_dict
from opendvi.io.frequencies import read_familias_frequencies, read_frequencies, read_long_csv

from .conftest import SHARED

FREQS = SHARED / "data" / "freqs"
NORSTR = sorted((FREQS / "norSTR").glob("*.txt"))
GLOBALFILER_CORE = ("D3S1358", "vWA", "D16S539", "CSF1PO", "TPOX", "D8S1179", "D21S11", "D18S51", "TH01", "FGA")


@pytest.mark.parametrize("path", NORSTR, ids=[p.name for p in NORSTR])
def test_read_familias_frequencies__every_norstr_file(path: Path) -> None:
    db = read_frequencies(path)
    assert len(db) >= 30
    assert db.sha256 and db.source == str(path)
    for marker in db.markers():
        assert math.fsum(marker.frequencies) == pytest.approx(1.0, abs=1e-12)
        assert all(0 < f <= 1 for f in marker.frequencies)
        assert len(set(marker.alleles)) == len(marker.alleles)
    assert "D1S1656" in db and "TPOX" in db


def test_read_familias_frequencies__norstr_values_as_in_the_file() -> None:
    db = read_familias_frequencies(FREQS / "norSTR" / "NorskDB_v2023.txt")
    t = db.table("D1S1656")
    # the file's first lines: 10 0.001000, 11 0.073863, ..., 14.3 0.003449
    assert t.alleles[:6] == ("10", "11", "12", "13", "14", "14.3")
    assert t.frequencies[:2] == (0.001, 0.073863)
    assert t.line == 1


def test_read_familias_frequencies__norstr_count() -> None:
    assert len(NORSTR) == 7


@pytest.mark.parametrize(
    "relpath, population, n_min",
    [
        ("NIST1036/NIST1036_allele_freqs_long.csv", "Cauc", 29),
        ("NIST1036/NIST1036_allele_freqs_long.csv", "AfAm", 29),
        ("UK_DNA17/UKDNA17_allele_freqs_long.csv", "White_-_EA1_&_EA2", 16),
        ("FBI2015_Moretti/FBI2015_allele_freqs_long.csv", "Caucasian", 23),
        ("FBI2015_Moretti/FBI2015_allele_freqs_long.csv", "Navajo", 23),
    ],
)
def test_read_long_csv__shared_files(relpath: str, population: str, n_min: int) -> None:
    db = read_frequencies(FREQS / relpath, population=population)
    assert len(db) >= n_min
    for name in ("vWA", "TH01", "D8S1179", "FGA"):
        assert name in db
        m = db.marker(name)
        assert math.fsum(m.frequencies) == pytest.approx(1.0, abs=1e-12)
    assert db.table("VWA").name == "vWA"


def test_read_long_csv__several_populations_need_a_choice() -> None:
    path = FREQS / "FBI2015_Moretti" / "FBI2015_allele_freqs_long.csv"
    with pytest.raises(FileFormatError) as info:
        read_long_csv(path)
    assert info.value.path == str(path) and info.value.field == "population"
    assert "choose one" in str(info.value)
    with pytest.raises(FileFormatError, match="population 'Martian' not in the file"):
        read_long_csv(path, population="Martian")


def test_read_long_csv__populations_differ() -> None:
    path = FREQS / "NIST1036" / "NIST1036_allele_freqs_long.csv"
    a = read_long_csv(path, population="Cauc").table("TH01")
    b = read_long_csv(path, population="AfAm").table("TH01")
    assert a.frequencies != b.frequencies


# -- aliases -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "names, canonical",
    [
        (("vWA", "VWA", "vwa"), "VWA"),
        (("TH01", "THO1", "th01"), "TH01"),
        (("Penta D", "PENTA_D", "PentaD", "penta-d"), "PENTAD"),
    ],
)
def test_canonical_marker_name__aliases_merge(names: tuple[str, ...], canonical: str) -> None:
    assert {canonical_marker_name(n) for n in names} == {canonical}


def _familias(tmp_path: Path, text: str, name: str = "db.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_familias_frequencies__aliases_are_found_and_displayed(tmp_path: Path) -> None:
    path = _familias(tmp_path, "VWA\n14\t0.4\n15\t0.6\n\nTHO1\n6\t0.5\n7\t0.5\n\nPENTA_D\n9\t0.3\n10\t0.7\n")
    db = read_familias_frequencies(path)
    for alias in ("vWA", "VWA", "TH01", "THO1", "Penta D", "PENTA_D", "PentaD"):
        assert alias in db
    assert db.marker_names == ["vWA", "TH01", "Penta D"]
    assert db.marker("PentaD").alleles == ("9", "10")


def test_read_familias_frequencies__two_aliases_of_one_marker_collide(tmp_path: Path) -> None:
    path = _familias(tmp_path, "vWA\n14\t0.4\n15\t0.6\n\nVWA\n14\t0.5\n15\t0.5\n")
    with pytest.raises(FileFormatError) as info:
        read_familias_frequencies(path)
    assert info.value.path == str(path) and info.value.line == 5
    assert "appears twice (first at line 1)" in str(info.value)


def test_read_long_csv__aliases_merge_rows(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("marker,allele,frequency\nvWA,14,0.4\nVWA,15,0.6\nPenta D,9,0.3\nPENTA_D,10,0.7\n")
    db = read_long_csv(path)
    assert len(db) == 2
    assert db.table("vwa").alleles == ("14", "15")
    assert db.table("PentaD").frequencies == (0.3, 0.7)


@pytest.mark.parametrize(
    "text, line, field, fragment",
    [
        ("TPOX\n8\tabc\n", 2, "frequency", "frequency 'abc' is not a number"),
        ("TPOX\n8\t0\n9\t1.0\n", 2, "frequency", "frequency '0' must be in (0, 1]"),
        ("TPOX\n8\t0.5\n9\t0.2\n", 1, "frequency", "frequencies sum to 0.7"),
        ("8\t0.5\n", 1, "marker", "before any marker name"),
        ("TPOX\n8\t0.5\n8\t0.5\n", 3, "allele", "allele 8 listed twice"),
        ("TPOX\n8\t1.5\n", 2, "frequency", "must be in (0, 1]"),
        ("TPOX\n-3\t1.0\n", 2, "allele", "not a valid STR allele"),
    ],
)
def test_read_familias_frequencies__errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, field: str, fragment: str
) -> None:
    path = _familias(tmp_path, text)
    with pytest.raises(FileFormatError) as info:
        read_familias_frequencies(path)
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert fragment in str(err)
    assert str(err).startswith(f"{path}:{line}: {field}: ")


def test_read_frequencies__missing_file() -> None:
    with pytest.raises(FileFormatError, match="file not found"):
        read_frequencies("/nonexistent/freqs.txt")


def test_read_long_csv__missing_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("marker,allele,freqq\nTPOX,8,1.0\n")
    with pytest.raises(FileFormatError) as info:
        read_long_csv(path)
    assert info.value.line == 1 and info.value.field == "frequency"


def test_frequency_database__unknown_marker_is_a_marker_error() -> None:
    db = read_frequencies(NORSTR[0])
    with pytest.raises(MarkerError, match="marker NOPE is not in the frequency database"):
        db.marker("NOPE")


# -- alleles absent from the database -------------------------------------------------
def _case(database_size: int | None, genotype: list[str]) -> dict[str, Any]:
    marker: dict[str, Any] = {"name": "TPOX", "alleles": ["8", "9"], "frequencies": [0.4, 0.6]}
    if database_size is not None:
        marker["database_size"] = database_size
    return {
        "format": "dvi-case/1",
        "markers": [marker],
        "remains": [{"id": "V1", "sex": "M", "genotypes": {"TPOX": genotype}}],
        "families": [],
    }


@pytest.mark.parametrize("database_size, fmin", [(None, 0.001), (500, 5 / 1000)])
def test_with_unseen_alleles__minimum_frequency_then_renormalised(database_size: int | None, fmin: float) -> None:
    case = case_from_dict(_case(database_size, ["9", "10.1"]))
    new, notes = case.with_unseen_alleles()
    m = new.marker("TPOX")
    assert m.alleles == ("8", "9", "10.1")
    assert m.added_alleles == ("10.1",)
    total = 1.0 + fmin
    assert m.frequencies == pytest.approx((0.4 / total, 0.6 / total, fmin / total), rel=1e-15)
    assert notes == [
        f"marker TPOX: allele 10.1 is not in the frequency table; added with frequency {fmin:g} (then renormalised)"
    ]


def test_with_unseen_alleles__nothing_to_add() -> None:
    case = case_from_dict(_case(None, ["8", "9"]))
    new, notes = case.with_unseen_alleles()
    assert new is case and notes == []


def test_marker_with_alleles__custom_matrix_cannot_grow() -> None:
    from opendvi.core.mutation import MutationModel

    m = make_marker("TPOX", ["8", "9"], female=MutationModel("custom", matrix_values=((0.9, 0.1), (0.1, 0.9))))
    with pytest.raises(MarkerError, match="not in the custom mutation matrix"):
        m.with_alleles(["10"])
