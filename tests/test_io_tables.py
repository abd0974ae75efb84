"""CSV/Excel templates, pedtools text, the ladder frequency layout, results
tables, and assembling a case from several files (all or nothing)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendvi.core.case import Sample
from opendvi.core.errors import FileFormatError, one_line
from opendvi.io.convert import Dataset, case_of, load, mutation_models
from opendvi.io.frequencies import read_frequencies, read_ladder_csv
from opendvi.io.normalise import marker_name, normalise_allele
from opendvi.io.tables import (
    profiles_table_rows,
    read_families_table,
    read_ped,
    read_profiles_table,
    write_matrix,
    write_rows,
    write_table,
)

from .conftest import SHARED

FREQS = SHARED / "data" / "freqs"
EUROPA = FREQS / "norSTR" / "EuropaDB_v2023.txt"


# -- normalisation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [("VWA", "vWA"), ("vWA", "vWA"), ("THO1", "TH01"), ("PENTA_D", "Penta D"), ("PentaD", "Penta D"), ("TP0X", "TPOX")],
)
def test_marker_name__aliases_meet(raw: str, name: str) -> None:
    assert marker_name(raw) == name


@pytest.mark.parametrize(
    ("raw", "label"), [("31.2", "31.2"), (" 12 ", "12"), ("12.0", "12"), (9.3, "9.3"), ("ol", "OL"), ("x12", None)]
)
def test_normalise_allele__labels(raw: object, label: str | None) -> None:
    assert normalise_allele(raw) == label


# -- profiles template -------------------------------------------------------------


def test_read_profiles_table__one_column_and_two_column_layouts(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    # a recorded F beside a lone X is unknown (core.rules.resolve_sex): PM2 shows X/X
    one.write_text("sample,sex,D21S11,THO1,AMEL\nPM1,,31.2/30,9.3,X/Y\nPM2,F,29/29,6/7,X/X\n")
    two = tmp_path / "two.csv"
    two.write_text(
        "Sample Name;D21S11_1;D21S11_2;TH01 Allele 1;TH01 Allele 2;Amelogenin\n"
        "PM1;31.2;30;9.3;9.3;XY\nPM2;29;;6;7;X/X\n"
    )
    a = read_profiles_table(one).samples()
    b = read_profiles_table(two).samples()
    assert a == b
    assert a[0] == Sample("PM1", "M", {"D21S11": ("31.2", "30"), "TH01": ("9.3", "9.3")})


def test_read_profiles_table__unknown_marker_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("sample,D21S11,Banana\nPM1,30/31,1/2\n")
    with pytest.raises(FileFormatError, match="Banana") as info:
        read_profiles_table(f)
    assert info.value.line == 1


def test_read_profiles_table__excel(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["barcode", "D3S1358", "TH01"])
    ws.append(["PM1", "15/16", 9.3])
    ws.append(["PM2", 17, "6/7"])
    f = tmp_path / "p.xlsx"
    wb.save(f)
    s = read_profiles_table(f).samples()
    assert s[0].genotypes == {"D3S1358": ("15", "16"), "TH01": ("9.3", "9.3")}
    assert s[1].genotypes == {"D3S1358": ("17", "17"), "TH01": ("6", "7")}


# -- families template ------------------------------------------------------------

FAMILIES = """family,id,father,mother,sex,missing,sample
F1,FA,,,M,,
F1,MO,,,F,,REF-2
F1,MP,FA,MO,M,yes,
F1,BR,FA,MO,M,,REF-1
F2,R1,,,F,no,REF-3
F2,X,,,M,,
F2,M2,X,R1,F,x,
"""
PROFILES = """sample,D3S1358,TH01
REF-1,15/16,6/7
REF-2,15/17,6/9.3
REF-3,16/16,7/8
PM-1,15/16,6/9.3
PM-2,16/18,7/7
"""


def test_case_of__families_references_and_remains(tmp_path: Path) -> None:
    (tmp_path / "fam.csv").write_text(FAMILIES)
    (tmp_path / "ref.csv").write_text(PROFILES)
    ds_f = load(tmp_path / "fam.csv")
    ds_p = load(tmp_path / "ref.csv")
    assert ds_f.format == "families-csv" and ds_p.format == "profiles-csv"
    notes: list[str] = []
    db = read_frequencies(EUROPA)
    case = case_of([ds_p, ds_f], name="t", freqs=db, mutation=mutation_models("stepwise"), notes=notes)
    assert [r.id for r in case.remains] == ["PM-1", "PM-2"]
    f1 = case.family("F1")
    assert f1.missing == ("MP",) and set(f1.references) == {"MO", "BR"}
    assert f1.genotypes["BR"]["TH01"] == ("6", "7")
    assert [m.name for m in case.markers] == ["D3S1358", "TH01"]
    case, _ = case.with_unseen_alleles()
    assert all(math.isfinite(f.loglik(case.markers).total) for f in case.families)


def test_read_families_table__one_bad_row_imports_nothing(tmp_path: Path) -> None:
    lines = FAMILIES.splitlines()
    lines[5] = "F2,R1,,,Q,no,REF-3"  # file line 6: a sex that is not M or F
    f = tmp_path / "fam.csv"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError) as info:
        read_families_table(f)
    assert info.value.line == 6 and info.value.field == "sex"


def test_read_families_table__unknown_parent_names_the_row(tmp_path: Path) -> None:
    f = tmp_path / "fam.csv"
    f.write_text("family,id,father,mother,sex\nF1,A,,,M\nF1,B,A,ZZ,F\n")
    with pytest.raises(FileFormatError, match="ZZ") as info:
        read_families_table(f)
    assert info.value.line == 3


def test_case_of__unknown_marker_is_an_error_unless_skipped(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    # D6S1043 is not in EuropaDB (a Y-STR such as DYS391 is a haplotype locus: tests/test_lineage_formats.py)
    f.write_text("sample,D3S1358,D6S1043\nPM1,15/16,11/12\n")
    ds = load(f)
    db = read_frequencies(EUROPA)
    with pytest.raises(FileFormatError, match="D6S1043"):
        case_of([ds], name="t", freqs=db, notes=[])
    notes: list[str] = []
    case = case_of([ds], name="t", freqs=db, skip_unknown_markers=True, notes=notes)
    assert [m.name for m in case.markers] == ["D3S1358"]
    assert any("D6S1043" in n for n in notes)


# -- pedtools text ------------------------------------------------------------------


def test_read_ped__pedtools_layout(tmp_path: Path) -> None:
    f = tmp_path / "x.ped"
    f.write_text("famid id fid mid sex vWA TH01\nF1 1 0 0 1 14/16 -/-\nF1 2 0 0 2 15/15 6/7\nF1 M3 1 2 1 -/- -/-\n")
    fams, markers = read_ped(f, missing_prefix="M")
    assert markers == ["vWA", "TH01"]
    (fam,) = fams
    assert fam.missing == ("M3",)
    assert fam.genotypes["1"] == {"vWA": ("14", "16")}


def test_read_ped__bad_genotype_names_line(tmp_path: Path) -> None:
    f = tmp_path / "x.ped"
    f.write_text("id fid mid sex vWA\n1 0 0 1 14/16\n2 0 0 2 15-x\n")
    with pytest.raises(FileFormatError) as info:
        read_ped(f)
    assert info.value.line == 3 and info.value.field == "vWA"


# -- frequency layouts ---------------------------------------------------------------


def test_read_ladder_csv__fbi_extended() -> None:
    db = read_frequencies(FREQS / "FBI2015_Moretti" / "FBI_extended_Cauc_022024.csv")
    assert "AMEL" not in db and "D3S1358" in db and "Penta D" in db
    t = db.table("D3S1358")
    assert math.isclose(sum(t.frequencies), 1.0, abs_tol=0.02)
    assert read_ladder_csv(FREQS / "FBI2015_Moretti" / "FBI_extended_Cauc_022024.csv").tables.keys() == db.tables.keys()


def test_read_ladder_csv__bad_cell_names_line(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_text("Allele,TH01,vWA\n6,0.5,\n7,0.5,0.5\n8,abc,0.5\n")
    with pytest.raises(FileFormatError) as info:
        read_frequencies(f)
    assert info.value.line == 4


# -- results tables -----------------------------------------------------------------


def test_write_rows__csv_and_excel(tmp_path: Path) -> None:
    rows = [
        {"remains": "V1", "missing": "M1", "lr": 1e12, "log10_lr": 12.0},
        {"remains": "V2", "missing": "M1", "lr": 0.0, "log10_lr": -math.inf, "exclusions": 3},
    ]
    write_rows(rows, tmp_path / "r.csv")
    got = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert got[1]["log10_lr"] == "-inf" and got[1]["exclusions"] == "3" and got[0]["exclusions"] == ""
    write_rows(rows, tmp_path / "r.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert ws is not None
    assert [c.value for c in ws[1]] == ["remains", "missing", "lr", "log10_lr", "exclusions"]
    assert ws["C2"].value == 1e12


def test_write_matrix__labels(tmp_path: Path) -> None:
    write_matrix(["V1", "V2"], ["M1", "M2"], [[1.5, None], [-math.inf, 2]], tmp_path / "m.csv", corner="log10 LR")
    assert (tmp_path / "m.csv").read_text().splitlines() == ["log10 LR,M1,M2", "V1,1.5,", "V2,-inf,2"]
    with pytest.raises(ValueError):
        write_matrix(["V1"], ["M1"], [[1, 2]], tmp_path / "bad.csv")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from(["M", "F", None]),
            st.dictionaries(
                st.sampled_from(["D3S1358", "vWA", "TH01", "Penta D"]),
                st.tuples(st.sampled_from(["6", "9.3", "12", "31.2"]), st.sampled_from(["7", "10", "12"])),
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    excel=st.booleans(),
)
def test_profiles_table__generated_files_read_back(tmp_path: Path, data: list, excel: bool) -> None:
    samples = [Sample(f"S{k}", sex, g) for k, (sex, g) in enumerate(data)]
    h, rows = profiles_table_rows(samples, ["D3S1358", "vWA", "TH01", "Penta D"])
    f = tmp_path / ("p.xlsx" if excel else "p.csv")
    write_table(h, rows, f)
    assert read_profiles_table(f).samples() == samples


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 10_000), junk=st.text(max_size=3))
def test_families_table__corrupted_files_raise_only_file_format_error(tmp_path: Path, pos: int, junk: str) -> None:
    k = pos % len(FAMILIES)
    f = tmp_path / "fam.csv"
    f.write_text(FAMILIES[:k] + junk + FAMILIES[k + 1 :], encoding="utf-8")
    p = tmp_path / "ref.csv"
    p.write_text(PROFILES)
    try:
        case_of([load(p, "profiles-csv"), load(f, "families-csv")], name="t", freqs=read_frequencies(EUROPA), notes=[])
    except FileFormatError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        ('"amily\nx",id,father,mother,sex,missing,sample', "header: amily\\nx, id"),  # a quoted cell spans lines
        ("family,id,father,mother,sex,missing,sample,\"no\rte\"", "'no\\rte'"),  # an unknown column, CR inside
    ],
)
def test_families_table__error_naming_a_cell_with_a_line_break_is_one_line(
    tmp_path: Path, header: str, shown: str
) -> None:
    # found by the corruption test above: a header cell quoted across lines
    # broke the message ("missing column ... (header: ...)") into two lines
    f = tmp_path / "fam.csv"
    f.write_text(header + "\n" + FAMILIES.split("\n", 1)[1], encoding="utf-8")
    with pytest.raises(FileFormatError) as exc:
        read_families_table(f)
    assert "\n" not in str(exc.value) and "\r" not in str(exc.value)
    assert shown in str(exc.value) and "fam.csv:1" in str(exc.value)


def test_file_format_error__control_characters_escaped_in_message_and_field() -> None:
    e = FileFormatError("bad value 'a\nb\x00'", path="x.csv", line=3, field="col\t1")
    assert str(e) == "x.csv:3: col\\t1: bad value 'a\\nb\\x00'"
    assert e.field == "col\\t1" and e.reason == "bad value 'a\\nb\\x00'"
    assert one_line("Ωmega ✓") == "Ωmega ✓"  # only control characters change


def test_dataset_defaults() -> None:
    assert Dataset(source="x", format="json").notes == []


@st.composite
def family_cases(draw: st.DrawFn) -> list[tuple[str, str, str | None, str | None, str, bool]]:
    rows = []
    for f in range(draw(st.integers(1, 3))):
        rows.append((f"F{f}", "FA", None, None, "M", False))
        rows.append((f"F{f}", "MO", None, None, "F", False))
        for k in range(draw(st.integers(1, 3))):
            rows.append((f"F{f}", f"C{k}", "FA", "MO", draw(st.sampled_from(["M", "F"])), draw(st.booleans())))
    return rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=family_cases(), ped=st.booleans())
def test_families_and_ped__generated_files_read_back(tmp_path: Path, rows: list, ped: bool) -> None:
    if ped:
        lines = ["famid\tid\tfid\tmid\tsex\tmissing\tTH01"]
        for fid, pid, fa, mo, sex, miss in rows:
            gt = "-/-" if miss else "6/9.3"
            lines.append(
                f"{fid}\t{pid}\t{fa or 0}\t{mo or 0}\t{1 if sex == 'M' else 2}\t{'yes' if miss else 'no'}\t{gt}"
            )
        f = tmp_path / "x.ped"
        f.write_text("\n".join(lines) + "\n")
        fams, _ = read_ped(f)
    else:
        f = tmp_path / "f.csv"
        write_table(
            ["family", "id", "father", "mother", "sex", "missing"],
            [[fid, pid, fa or "", mo or "", sex, "yes" if miss else ""] for fid, pid, fa, mo, sex, miss in rows],
            f,
        )
        fams = read_families_table(f).build({})
    got = [
        (fam.id, ind.id, ind.father, ind.mother, ind.sex, ind.id in fam.missing)
        for fam in fams
        for ind in fam.pedigree.individuals
    ]
    assert got == rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 10_000), junk=st.text(max_size=3), ladder=st.booleans())
def test_ped_and_ladder__corrupted_files_raise_only_file_format_error(
    tmp_path: Path, pos: int, junk: str, ladder: bool
) -> None:
    if ladder:
        text, name = "Allele,TH01,vWA\n6,0.25,\n7,0.25,0.5\n9.3,0.5,0.5\nN,404,404\n", "l.csv"
    else:
        text, name = "famid id fid mid sex TH01\nF1 FA 0 0 1 6/7\nF1 MO 0 0 2 -/-\nF1 C FA MO 1 6/9.3\n", "x.ped"
    k = pos % len(text)
    f = tmp_path / name
    f.write_text(text[:k] + junk + text[k + 1 :], encoding="utf-8")
    try:
        read_frequencies(f) if ladder else read_ped(f)
    except FileFormatError as exc:
        assert "\n" not in str(exc)
