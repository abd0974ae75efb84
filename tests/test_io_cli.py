"""``opendvi convert`` and ``opendvi case build`` run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .clikit import Result, run
from .conftest import SHARED

FORMATS = SHARED / "data" / "formats"
EUROPA = SHARED / "data" / "freqs" / "norSTR" / "EuropaDB_v2023.txt"


def opendvi(*args: object, cwd: Path) -> Result:
    return run(*args, cwd=cwd)


def _without_name(path: Path) -> dict[str, object]:
    d = json.loads(path.read_text())
    d.pop("name")
    return d  # type: ignore[no-any-return]


def test_convert__fam_json_fam_json(tmp_path: Path) -> None:
    src = FORMATS / "familias_fam" / "dvir" / "Solution3_3.fam"
    assert opendvi("convert", src, "a.json", "-q", cwd=tmp_path).returncode == 0
    assert opendvi("convert", "a.json", "a.fam", cwd=tmp_path).returncode == 0
    assert opendvi("convert", "a.fam", "b.json", "-q", cwd=tmp_path).returncode == 0
    assert _without_name(tmp_path / "a.json") == _without_name(tmp_path / "b.json")
    r = opendvi("likelihood", "b.json", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("rel", "where"),
    [
        ("genemapper/smartrank_GeneMapperExampleBrokenHeader.txt", ":1: header:"),
        ("codis_cmf/smartrank_broken-allele.xml", "/LOCUS[3]/ALLELE[1]"),
        ("codis_cmf/smartrank_broken-locus.xml", "/LOCUS[4]"),
        ("codis_cmf/smartrank_not-a-codis-file.xml", "/rootnode"),
        ("codis_cmf/smartrank_no-profiles.xml", "/CODISImportFile"),
    ],
)
def test_convert__broken_inputs_fail_with_one_line(tmp_path: Path, rel: str, where: str) -> None:
    r = opendvi("convert", FORMATS / rel, "out.csv", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("opendvi: error: ") and where in lines[0] and Path(rel).name in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.csv").exists()


def test_convert__cmf_to_csv_to_json_with_freqs(tmp_path: Path) -> None:
    src = FORMATS / "codis_cmf" / "smartrank_Codis-Single-Profile.xml"
    r = opendvi("convert", src, "p.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "SOURCELAB" in r.stderr  # the note about the over-long header field
    r = opendvi("convert", "p.csv", "c.json", "--freqs", EUROPA, "--mutation", "stepwise", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    case = json.loads((tmp_path / "c.json").read_text())
    assert [x["id"] for x in case["remains"]] == ["ABCD1234NL#01"]
    assert case["markers"][0]["mutation"]["male"]["rate"] == 0.002
    r = opendvi("convert", "c.json", "back.xml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_convert__profiles_need_freqs_for_a_case(tmp_path: Path) -> None:
    src = FORMATS / "codis_cmf" / "smartrank_Codis-Single-Profile.xml"
    r = opendvi("convert", src, "c.json", cwd=tmp_path)
    assert r.returncode == 2 and "--freqs" in r.stderr
    assert not (tmp_path / "c.json").exists()


def test_convert__unknown_format_is_one_line(tmp_path: Path) -> None:
    r = opendvi("convert", EUROPA, "x.out", "--to", "word", cwd=tmp_path)
    assert r.returncode == 2 and "unknown output format 'word'" in r.stderr and "Traceback" not in r.stderr


def test_convert__references_with_families(tmp_path: Path) -> None:
    (tmp_path / "fam.csv").write_text(
        "family,id,father,mother,sex,missing,sample\nF1,FA,,,M,,R-1\nF1,MO,,,F,,\nF1,MP,FA,MO,F,yes,\n"
    )
    (tmp_path / "refs.csv").write_text("sample,D3S1358,TH01\nR-1,15/16,6/7\n")
    r = opendvi(
        "convert",
        "refs.csv",
        "case.json",
        "--as",
        "references",
        "--families",
        "fam.csv",
        "--freqs",
        EUROPA,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    case = json.loads((tmp_path / "case.json").read_text())
    assert case["remains"] == []
    fa = case["families"][0]["members"][0]
    assert fa["id"] == "FA" and fa["genotypes"] == {"D3S1358": ["15", "16"], "TH01": ["6", "7"]}


def test_case_build__from_several_files_and_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "fam.csv").write_text(
        "family,id,father,mother,sex,missing,sample\nF1,FA,,,M,,R-1\nF1,MO,,,F,,\nF1,MP,FA,MO,F,yes,\n"
    )
    (tmp_path / "refs.csv").write_text("sample,D3S1358,TH01\nR-1,15/16,6/7\n")
    (tmp_path / "pm.csv").write_text("sample,sex,D3S1358,TH01\nPM-1,F,15/17,6/9.3\nPM-2,M,16/16,7/8\n")
    r = opendvi(
        "case", "build", "--remains", "pm.csv", "--families", "fam.csv", "--references", "refs.csv",
        "--freqs", EUROPA, "-o", "case.json", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    case = json.loads((tmp_path / "case.json").read_text())
    assert [x["id"] for x in case["remains"]] == ["PM-1", "PM-2"]
    r = opendvi("likelihood", "case.json", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # one bad row: nothing is written, the row is named
    (tmp_path / "pm.csv").write_text("sample,sex,D3S1358,TH01\nPM-1,F,15/17,6/9.3\nPM-2,M,16/16,7/eight\n")
    r = opendvi(
        "case", "build", "--remains", "pm.csv", "--families", "fam.csv", "--references", "refs.csv",
        "--freqs", EUROPA, "-o", "case2.json", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2
    assert "pm.csv:3: TH01:" in r.stderr and "'eight'" in r.stderr
    assert not (tmp_path / "case2.json").exists()


def test_convert__mixtures_stay_profiles_but_never_join_a_case(tmp_path: Path) -> None:
    src = FORMATS / "genemapper" / "smartrank_GeneMapperExample.txt"
    r = opendvi("convert", src, "mix.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "10/11/12" in (tmp_path / "mix.csv").read_text()
    assert "mixture" in r.stderr
    r = opendvi("convert", src, "mix.xml", cwd=tmp_path)  # sample names too long for CODIS
    assert r.returncode == 2 and "24 characters" in r.stderr and not (tmp_path / "mix.xml").exists()
    cmf_mix = FORMATS / "codis_cmf" / "smartrank_Codis-Mix-Profile-With-BOM-Header.xml"
    r = opendvi("convert", cmf_mix, "mix.xml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Forensic Mixture" in (tmp_path / "mix.xml").read_text()
    r = opendvi("convert", src, "c.json", "--freqs", EUROPA, cwd=tmp_path)
    assert r.returncode == 2 and ":2:" in r.stderr and "mixture" in r.stderr
    assert not (tmp_path / "c.json").exists()
    r = opendvi("convert", src, "c.json", "--freqs", EUROPA, "--skip-mixtures", cwd=tmp_path)
    assert r.returncode == 2 and "no single-source profile left" in r.stderr.splitlines()[-1]
