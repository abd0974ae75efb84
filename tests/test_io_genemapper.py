"""GeneMapper ID/ID-X genotype tables: the sample exports, the quirks, and
generated tables in both layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendvi.core.errors import FileFormatError
from opendvi.io.genemapper import read_genemapper

from .conftest import SHARED

GM = SHARED / "data" / "formats" / "genemapper"
GOOD = [
    "smartrank_GeneMapperExample.txt",
    "smartrank_GeneMapperExampleDifferentCaseNumbers.txt",
    "smartrank_GeneMapperExampleWithHeights.txt",
    "smartrank_GeneMapperExampleWithHeightsAndOL.txt",
]


@pytest.mark.parametrize("name", GOOD)
def test_read_genemapper__sample_exports_read(name: str) -> None:
    ps = read_genemapper(GM / name)
    assert len(ps) >= 1
    # a lone X (how GeneMapper writes X/X) is unknown sex: a degraded male's Y may have dropped out
    assert all(r.sex in ("M", None) for r in ps.records) and any(r.sex == "M" for r in ps.records)
    assert "D10S1248" in ps.marker_names and "vWA" in ps.marker_names
    assert "AMEL" not in ps.marker_names  # amelogenin gives the sex


def test_read_genemapper__broken_header_names_line_1() -> None:
    with pytest.raises(FileFormatError) as info:
        read_genemapper(GM / "smartrank_GeneMapperExampleBrokenHeader.txt")
    assert info.value.line == 1
    assert "Smaple File" in str(info.value) and "Sample File" in str(info.value)


def test_read_genemapper__mixtures_are_flagged_not_taken_as_profiles() -> None:
    ps = read_genemapper(GM / "smartrank_GeneMapperExample.txt")
    first = ps.records[0]
    assert first.genotypes["D16S539"] == ("10", "11", "12")
    assert first.is_mixture
    with pytest.raises(FileFormatError, match="mixture") as info:
        ps.samples()
    assert info.value.line == 2
    notes: list[str] = []
    assert ps.samples(skip_mixtures=True, notes=notes) == []
    assert len(notes) == 4


def test_read_genemapper__off_ladder_reported_not_guessed() -> None:
    ps = read_genemapper(GM / "smartrank_GeneMapperExampleWithHeightsAndOL.txt")
    rec = ps.records[0]
    assert rec.genotypes["vWA"] == ("OL", "17")
    assert "vWA" in rec.off_ladder_markers
    assert any("off-ladder" in n and "vWA" in n for n in ps.notes)
    assert rec.heights["vWA"] == (319.0, 164.0)


def _long(rows: list[tuple[str, str, list[str]]], extra: str = "") -> str:
    head = "Sample File\tSample Name\tPanel\tMarker\tDye\tAllele 1\tAllele 2\tAllele 3\tSize 1\tHeight 1" + extra
    lines = [head]
    for sample, marker, alleles in rows:
        al = [*alleles, "", "", ""][:3]
        lines.append("\t".join(["a.fsa", sample, "GlobalFiler", marker, "B", *al, "100.1", "1200"]))
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("calls", "sex"),
    [(["X", "Y"], "M"), (["X"], None), (["X", "X"], "F"), (["XX"], "F"), (["XY"], "M"), (["Y"], "M")],
)
def test_read_genemapper__amelogenin_spellings(tmp_path: Path, calls: list[str], sex: str | None) -> None:
    for marker in ("AMEL", "Amelogenin", "AM"):
        f = tmp_path / "gm.txt"
        f.write_text(_long([("S1", marker, calls), ("S1", "TH01", ["6", "9.3"])]))
        ps = read_genemapper(f)
        assert ps.records[0].sex == sex
        assert ps.records[0].genotypes == {"TH01": ("6", "9.3")}


def test_read_genemapper__ladder_and_controls_dropped(tmp_path: Path) -> None:
    f = tmp_path / "gm.txt"
    f.write_text(
        _long(
            [
                ("Allelic Ladder", "TH01", ["4", "5", "6"]),
                ("PC_9947A", "TH01", ["8", "9.3"]),
                ("Negative Control", "TH01", []),
                ("PM-001", "THO1", ["7"]),
                ("PM-001", "VWA", ["16", "18"]),
            ]
        )
    )
    ps = read_genemapper(f)
    assert [r.id for r in ps.records] == ["PM-001"]
    assert ps.records[0].genotypes == {"TH01": ("7",), "vWA": ("16", "18")}
    assert ps.samples()[0].genotypes["TH01"] == ("7", "7")  # one call: homozygote
    assert sum("control" in n for n in ps.notes) >= 2


def test_read_genemapper__unknown_marker_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "gm.txt"
    f.write_text(_long([("S1", "TH01", ["6", "7"]), ("S1", "Banana", ["1", "2"])]))
    with pytest.raises(FileFormatError, match="unknown marker 'Banana'") as info:
        read_genemapper(f)
    assert info.value.line == 3


def test_read_genemapper__one_bad_allele_imports_nothing(tmp_path: Path) -> None:
    f = tmp_path / "gm.txt"
    rows = [(f"S{k}", "TH01", ["6", "7"]) for k in range(20)]
    rows[13] = ("S13", "TH01", ["6", "seven"])
    f.write_text(_long(rows))
    with pytest.raises(FileFormatError, match="'seven'") as info:
        read_genemapper(f)
    assert info.value.line == 15 and info.value.field == "TH01"


# ---------------------------------------------------------------------------
# generated tables
# ---------------------------------------------------------------------------

ALLELES = st.sampled_from(["6", "7", "8", "9.3", "10", "11", "12", "13.2", "31.2"])
MARKERS = ["D3S1358", "vWA", "TH01", "D21S11", "Penta D", "FGA"]


@st.composite
def profiles(draw: st.DrawFn) -> list[tuple[str, str, dict[str, tuple[str, ...]]]]:
    n = draw(st.integers(1, 5))
    out = []
    for k in range(n):
        sex = draw(st.sampled_from(["M", "F"]))
        gts = {}
        for m in MARKERS:
            if draw(st.booleans()):
                gts[m] = tuple(draw(st.lists(ALLELES, min_size=1, max_size=2, unique=True)))
        out.append((f"PM{k:03d}", sex, gts))
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles(), wide=st.booleans())
def test_read_genemapper__generated_tables_read_back(tmp_path: Path, data: list, wide: bool) -> None:
    f = tmp_path / "gen.txt"
    if wide:
        head = ["Sample File", "Sample Name", "AMEL", *MARKERS, ""]
        lines = ["\t".join(head)]
        for sid, sex, gts in data:
            amel = "X, Y, , " if sex == "M" else "X, X, , "
            cells = [", ".join([*gts.get(m, ()), "", ""]) for m in MARKERS]
            lines.append("\t".join(["x.fsa", sid, amel, *cells, ""]))
        f.write_text("\r\n".join(lines) + "\r\n")
    else:
        rows = []
        for sid, sex, gts in data:
            rows.append((sid, "AMEL", ["X", "Y"] if sex == "M" else ["X", "X"]))
            rows += [(sid, m, list(a)) for m, a in gts.items()]
        f.write_text(_long(rows))
    ps = read_genemapper(f)
    assert [(r.id, r.sex, r.genotypes) for r in ps.records] == [(s, x, g) for s, x, g in data]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=profiles(), pos=st.integers(0, 10_000), junk=st.text(min_size=0, max_size=4))
def test_read_genemapper__corrupted_tables_raise_only_file_format_error(
    tmp_path: Path, data: list, pos: int, junk: str
) -> None:
    rows = []
    for sid, _sex, gts in data:
        rows += [(sid, m, list(a)) for m, a in gts.items()] or [(sid, "TH01", ["7"])]
    text = _long(rows)
    k = pos % (len(text) + 1)
    f = tmp_path / "bad.txt"
    f.write_text(text[:k] + junk + text[k + len(junk) :], encoding="utf-8")
    try:
        read_genemapper(f)
    except FileFormatError as exc:
        assert "\n" not in str(exc)
