"""Y-STR kits in the laboratory formats (GeneMapper, CODIS CMF, profile
CSV/Excel): read as Y haplotypes, never as autosomal markers; Amelogenin and
the Yindel as sex evidence; carried by ``opendvi case build`` / ``convert``
into the ``lineage`` part of a case, whose lineage LR is then checked against
its closed form."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opendvi.cli.main import app
from opendvi.core.errors import FileFormatError
from opendvi.core.lineage_lr import y_lineage_lr
from opendvi.dvi.lineage import lineage_pairwise
from opendvi.io.case_json import case_from_dict, case_to_dict, read_case
from opendvi.io.cmf import read_cmf
from opendvi.io.convert import LineageSources, case_of, load, save_case
from opendvi.io.frequencies import read_frequencies
from opendvi.io.genemapper import read_genemapper
from opendvi.io.tables import read_profiles_table

from .clikit import run
from .conftest import SHARED

EUROPA = SHARED / "data" / "freqs" / "norSTR" / "EuropaDB_v2023.txt"
YSTR = SHARED / "data" / "ystr_mtdna" / "ystr"
DANES = YSTR / "disclapmix_danes_10locus_haplotypes.txt"
RATES = YSTR / "malan_ystr_mutation_rates_yhrd.csv"
GM_SAMPLE = SHARED / "data" / "formats" / "genemapper" / "smartrank_GeneMapperExample.txt"

#: GlobalFiler in kit order (shared/data/kits/str_kits_loci.csv), as GeneMapper names them.
GLOBALFILER = [
    "D3S1358", "vWA", "D16S539", "CSF1PO", "TPOX", "Yindel", "AMEL", "D8S1179", "D21S11", "D18S51", "DYS391",
    "D2S441", "D19S433", "TH01", "FGA", "D22S1045", "D5S818", "D13S317", "D7S820", "SE33", "D10S1248", "D1S1656",
    "D12S391", "D2S1338",
]  # fmt: skip
AUTOSOMAL = [m for m in GLOBALFILER if m not in ("Yindel", "AMEL", "DYS391")]
DANES_LOCI = ["DYS19", "DYS389I", "DYS389II", "DYS390", "DYS391", "DYS392", "DYS393", "DYS437", "DYS438", "DYS439"]
#: Yfiler Plus marker names as the GeneMapper panel writes them -> opendvi's spelling.
YFILER_PLUS = {
    "DYS576": "DYS576", "DYS389 I": "DYS389I", "DYS635": "DYS635", "DYS389 II": "DYS389II", "DYS627": "DYS627",
    "DYS460": "DYS460", "DYS458": "DYS458", "DYS19": "DYS19", "Y GATA H4": "YGATAH4", "DYS448": "DYS448",
    "DYS391": "DYS391", "DYS456": "DYS456", "DYS390": "DYS390", "DYS438": "DYS438", "DYS392": "DYS392",
    "DYS518": "DYS518", "DYS570": "DYS570", "DYS437": "DYS437", "DYS385": "DYS385", "DYS449": "DYS449",
    "DYS393": "DYS393", "DYS439": "DYS439", "DYS481": "DYS481", "DYF387S1": "DYF387S1", "DYS533": "DYS533",
}  # fmt: skip


# -- files in the layouts of the laboratory exports ---------------------------------------


def gm_wide(path: Path, samples: dict[str, dict[str, list[str]]], markers: list[str] = GLOBALFILER) -> Path:
    """A GeneMapper ID-X wide export as smartrank's sample (calls padded with
    empty slots, a trailing tab, CRLF)."""
    lines = ["\t".join(["Sample File", "Sample Name", *markers, ""])]
    for sid, calls in samples.items():
        cells = [", ".join([*calls.get(m, []), "", "", "", "", "", ""]) for m in markers]
        lines.append("\t".join(["A01_run.fsa", sid, *cells, ""]))
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def gm_long(path: Path, rows: list[tuple[str, str, list[str]]], panel: str = "Yfiler_Plus") -> Path:
    """A GeneMapper "Genotypes" table (one row per sample and marker)."""
    head = "Sample File\tSample Name\tPanel\tMarker\tDye\tAllele 1\tAllele 2\tAllele 3\tSize 1\tHeight 1"
    lines = [head]
    for sid, marker, calls in rows:
        lines.append("\t".join(["B01_run.fsa", sid, panel, marker, "B", *[*calls, "", "", ""][:3], "150.2", "900"]))
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def cmf(path: Path, specimens: dict[str, list[tuple[str, list[str]]]]) -> Path:
    loci = []
    for sid, locs in specimens.items():
        body = "".join(
            f"<LOCUS><LOCUSNAME>{name}</LOCUSNAME><READINGBY>lab</READINGBY>"
            f"<READINGDATETIME>2024-01-01T10:00:00</READINGDATETIME>"
            + "".join(f"<ALLELE><ALLELEVALUE>{a}</ALLELEVALUE></ALLELE>" for a in alleles)
            + "</LOCUS>"
            for name, alleles in locs
        )
        loci.append(
            f'<SPECIMEN SOURCEID="N/A" CASEID="1"><SPECIMENID>{sid}</SPECIMENID>'
            f"<SPECIMENCATEGORY>Unidentified Person</SPECIMENCATEGORY>{body}</SPECIMEN>"
        )
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<CODISImportFile xmlns="urn:CODISImportFile-schema">'
        "<HEADERVERSION>3.2</HEADERVERSION><MESSAGETYPE>Import</MESSAGETYPE><DESTINATIONORI>NONE</DESTINATIONORI>"
        "<SOURCELAB>LAB</SOURCELAB><SUBMITBYUSERID>me</SUBMITBYUSERID>"
        "<SUBMITDATETIME>2024-01-01T10:00:00</SUBMITDATETIME><KIT>AmpFlSTR Yfiler Plus</KIT>"
        + "".join(loci)
        + "</CODISImportFile>"
    )
    return path


def autosomal_genotypes(shift: int) -> dict[str, list[str]]:
    """GlobalFiler calls from EuropaDB alleles: the first and the ``shift``-th (cyclically)."""
    db = read_frequencies(EUROPA)
    out: dict[str, list[str]] = {}
    for m in AUTOSOMAL:
        key = "VWA" if m == "vWA" else m
        alleles = [a for a in db.tables[key].alleles if "." not in a]
        out[m] = [alleles[0], alleles[shift % len(alleles)]]
    return out


# -- 1. GlobalFiler: DYS391 a haplotype locus, the Yindel a sex test -------------------------


def test_globalfiler_export__imports_with_dys391_as_haplotype_and_yindel_as_sex(tmp_path: Path) -> None:
    # the layout of the shared smartrank export, with the GlobalFiler loci it lacks
    first = GM_SAMPLE.read_text().splitlines()[0].split("\t")
    assert first[:2] == ["Sample File", "Sample Name"] and first[-1] == ""
    gts = autosomal_genotypes(1)
    f = gm_wide(
        tmp_path / "globalfiler.txt",
        {
            "PM1": {**gts, "AMEL": ["X", "Y"], "Yindel": ["2"], "DYS391": ["10"]},
            "PM2": {**gts, "AMEL": ["X"], "Yindel": ["1"], "DYS391": ["11"]},  # AMELY deletion: Y markers say male
            "PM3": {**gts, "AMEL": ["X"]},  # a lone X: unknown
        },
    )
    ps = read_genemapper(f)
    pm1, pm2, pm3 = ps.records
    assert "DYS391" not in ps.marker_names and "Yindel" not in ps.marker_names
    assert pm1.y_calls == {"DYS391": ("10",)} and pm1.sex_calls == {"AMEL": ("X", "Y"), "Yindel": ("2",)}
    assert (pm1.sex, pm2.sex, pm3.sex) == ("M", "M", None)
    # before: "marker(s) not in the frequency database: Yindel, DYS391"; now it imports
    notes: list[str] = []
    case = case_of([load(f)], name="gf", freqs=read_frequencies(EUROPA), notes=notes)
    assert sorted(m.name for m in case.markers) == sorted(AUTOSOMAL)
    assert case.lineage is None  # no Y database: the haplotypes are named in a note, not guessed into f(h)
    assert any("DYS391" in n and "--y-database" in n for n in notes)
    # with a database, DYS391 is a Y locus of the case
    notes = []
    case = case_of(
        [load(f)], name="gf", freqs=read_frequencies(EUROPA), notes=notes, lineage=LineageSources(y_database=DANES)
    )
    assert case.lineage is not None and case.lineage.y is not None
    assert case.lineage.y_of("PM1") == {"DYS391": ("10",)} and case.lineage.y_of("PM3") is None
    assert next(m.name for m in case.lineage.y.markers) == "DYS391"


def test_fusion_6c__three_dys_loci_are_haplotype_loci(tmp_path: Path) -> None:
    f = gm_wide(
        tmp_path / "f6c.txt",
        {"PM1": {"D3S1358": ["15", "16"], "AMEL": ["X", "Y"], "DYS391": ["10"], "DYS576": ["18"], "DYS570": ["17"]}},
        markers=["D3S1358", "AMEL", "DYS391", "FGA", "DYS576", "DYS570"],
    )
    (rec,) = read_genemapper(f).records
    assert rec.y_haplotype() == {"DYS391": ("10",), "DYS576": ("18",), "DYS570": ("17",)}
    assert list(rec.genotypes) == ["D3S1358"]


# -- 2. Yfiler Plus (GeneMapper long), CMF, CSV -------------------------------------------------


def yfiler_plus_rows(sid: str, values: dict[str, list[str]]) -> list[tuple[str, str, list[str]]]:
    return [(sid, gm_name, values[name]) for gm_name, name in YFILER_PLUS.items() if name in values]


YP = {
    "DYS576": ["18"], "DYS389I": ["13"], "DYS635": ["23"], "DYS389II": ["29"], "DYS627": ["21"],
    "DYS460": ["11"], "DYS458": ["17.2"], "DYS19": ["14"], "YGATAH4": ["12"], "DYS448": ["19"],
    "DYS391": ["10"], "DYS456": ["15"], "DYS390": ["24"], "DYS438": ["12"], "DYS392": ["13"],
    "DYS518": ["38"], "DYS570": ["17"], "DYS437": ["15"], "DYS385": ["11", "14"], "DYS449": ["30"],
    "DYS393": ["13"], "DYS439": ["12"], "DYS481": ["22"], "DYF387S1": ["37"], "DYS533": ["12"],
}  # fmt: skip


def test_yfiler_plus_genemapper__haplotype_multi_copy_and_microvariant(tmp_path: Path) -> None:
    f = gm_long(tmp_path / "yfp.txt", yfiler_plus_rows("REF1", YP))
    ps = read_genemapper(f)
    (rec,) = ps.records
    assert rec.genotypes == {} and rec.sex == "M"  # Y-STRs show a Y chromosome
    h = rec.y_haplotype()
    assert len(h) == 25
    assert h["DYS385"] == ("11", "14")
    assert h["DYF387S1"] == ("37", "37")  # GeneMapper lists distinct alleles: one call, two copies
    assert h["DYS458"] == ("17.2",) and h["YGATAH4"] == ("12",) and h["DYS389I"] == ("13",)


def test_yfiler_dys385_a_b_spelling_and_copies_in_two_rows(tmp_path: Path) -> None:
    f = gm_long(
        tmp_path / "yfiler.txt",
        [("S1", "DYS385 a/b", ["14", "11"]), ("S2", "DYS385a", ["13"]), ("S2", "DYS385b", ["16"])],
        panel="Yfiler",
    )
    s1, s2 = read_genemapper(f).records
    assert s1.y_haplotype() == {"DYS385": ("11", "14")}
    assert s2.y_haplotype() == {"DYS385": ("13", "16")}


def test_cmf_with_y_loci__haplotype_sex_and_yindel(tmp_path: Path) -> None:
    f = cmf(
        tmp_path / "y.xml",
        {
            "V1": [
                ("AMEL", ["X"]), ("Yindel", ["2"]), ("DYS385", ["11", "14"]), ("DYS389 I", ["13"]),
                ("DYS389 II", ["29"]), ("YGATAH4", ["12"]), ("DYS458", ["17.2"]), ("DYF387S1", ["36", "38"]),
                ("D3S1358", ["15", "16"]),
            ],
            "V2": [("AMEL", ["X", "Y"]), ("DYS391", ["10", "11"])],
        },
    )  # fmt: skip
    ps = read_cmf(f)
    v1, v2 = ps.records
    assert v1.sex == "M" and v1.sex_calls["Yindel"] == ("2",)
    assert v1.y_haplotype() == {
        "DYS385": ("11", "14"), "DYS389I": ("13",), "DYS389II": ("29",), "YGATAH4": ("12",),
        "DYS458": ("17.2",), "DYF387S1": ("36", "38"),
    }  # fmt: skip
    assert v1.genotypes == {"D3S1358": ("15", "16")}
    # two values at a one-copy locus: a mixture of males (or a duplication), not one haplotype
    assert v2.is_mixture and v2.y_mixture_loci == ["DYS391"]
    with pytest.raises(FileFormatError, match=r"DYS391.*mixture") as info:
        ps.samples()
    assert info.value.field == "/CODISImportFile/SPECIMEN[2]"
    notes: list[str] = []
    samples, haps = ps.samples_and_haplotypes(skip_mixtures=True, notes=notes)
    assert [s.id for s in samples] == ["V1"] and list(haps) == ["V1"]


def test_csv_with_dys385_a_b_columns_nulls_and_off_ladder(tmp_path: Path) -> None:
    f = tmp_path / "y.csv"
    f.write_text(
        "sample,sex,D3S1358,DYS19,DYS385a,DYS385b,DYS389 I,DYS448,Yindel\n"
        "R1,M,15/16,14,11,14,13,null,2\n"
        "R2,,15/15,15,12,,13.2,19,\n"
        "R3,,15/15,OL,12,13,13,NA,\n"
    )
    ps = read_profiles_table(f)
    r1, r2, r3 = ps.records
    assert r1.y_haplotype() == {"DYS19": ("14",), "DYS385": ("11", "14"), "DYS389I": ("13",), "DYS448": ("null",)}
    assert r2.y_haplotype() == {"DYS19": ("15",), "DYS385": ("12", "12"), "DYS389I": ("13.2",), "DYS448": ("19",)}
    assert r1.genotypes == {"D3S1358": ("15", "16")} and "DYS19" not in ps.marker_names
    notes: list[str] = []
    assert "DYS19" not in r3.y_haplotype(notes, str(f))  # off-ladder: the locus left untyped, with a note
    assert any("DYS19" in n and "off-ladder" in n for n in notes)
    assert (r1.sex, r2.sex, r3.sex) == ("M", "M", "M")


def test_female_by_amelogenin_with_a_y_locus_is_unknown_with_a_note(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("sample,AMEL,DYS391,D3S1358\nV1,X/X,10,15/16\nV2,X,,15/16\n")
    ps = read_profiles_table(f)
    assert [r.sex for r in ps.records] == [None, None]
    assert any("V1" in n and "DYS391" in n and "sex unknown" in n for n in ps.notes)


# -- 3. errors: one line, file, line, field; nothing half-read ---------------------------------


@pytest.mark.parametrize("bad", ["10.12", "abc", "1O"])
def test_bad_y_value__one_line_error_with_file_line_field(tmp_path: Path, bad: str) -> None:
    rows = yfiler_plus_rows("REF1", YP)
    rows[5] = ("REF1", rows[5][1], [bad])
    f = gm_long(tmp_path / "bad.txt", rows)
    with pytest.raises(FileFormatError) as info:
        read_genemapper(f)
    e = info.value
    assert (e.path, e.line, e.field) == (str(f), 7, rows[5][1])
    assert "\n" not in str(e) and str(f) in str(e) and "7" in str(e) and bad in str(e)

    c = tmp_path / "bad.csv"
    c.write_text(f"sample,DYS19,DYS385a,DYS385b\nR1,14,11,14\nR2,15,{bad},13\n")
    with pytest.raises(FileFormatError) as info:
        read_profiles_table(c)
    assert (info.value.line, info.value.field) == (3, "DYS385a")

    x = cmf(tmp_path / "bad.xml", {"V1": [("DYS19", ["14"]), ("DYS385", ["11", bad])]})
    with pytest.raises(FileFormatError) as info:
        read_cmf(x)
    assert info.value.field == "/CODISImportFile/SPECIMEN[1]/LOCUS[2]/ALLELE[2]"


def test_bad_yindel_call_is_an_error(tmp_path: Path) -> None:
    f = gm_wide(tmp_path / "gf.txt", {"PM1": {"AMEL": ["X", "Y"], "Yindel": ["3"], "D3S1358": ["15"]}})
    with pytest.raises(FileFormatError, match="Yindel") as info:
        read_genemapper(f)
    assert (info.value.line, info.value.field) == (2, "Yindel")


def test_same_sample_in_two_files_must_agree(tmp_path: Path) -> None:
    gf = gm_wide(tmp_path / "gf.txt", {"PM1": {"D3S1358": ["15", "16"], "AMEL": ["X", "Y"], "DYS391": ["10"]}})
    yf = gm_long(tmp_path / "yf.txt", yfiler_plus_rows("PM1", {**YP, "DYS391": ["11"]}))
    with pytest.raises(FileFormatError, match=r"DYS391 is 11 here but 10") as info:
        case_of([load(gf), load(yf)], name="x", freqs=read_frequencies(EUROPA), notes=[],
                lineage=LineageSources(y_database=DANES))  # fmt: skip
    assert info.value.path == str(yf)


def test_unknown_y_locus_rate_is_an_error_unless_skipped(tmp_path: Path) -> None:
    f = tmp_path / "y.csv"
    f.write_text("sample,DYS19,DYS464\nV1,14,12\n")
    with pytest.raises(FileFormatError, match=r"DYS464.*no bundled mutation rate"):
        case_of([load(f)], name="x", notes=[], lineage=LineageSources(y_database=DANES))
    notes: list[str] = []
    case = case_of([load(f)], name="x", notes=notes, lineage=LineageSources(y_database=DANES),
                   skip_unknown_markers=True)  # fmt: skip
    assert case.lineage is not None and case.lineage.y_of("V1") == {"DYS19": ("14",)}


# -- 4. case build: PM + AM files + the danes database -> lineage_pairwise -------------------


def mu() -> dict[str, float]:
    with RATES.open() as fh:
        return {r["Marker"]: float(r["MutProb"]) for r in csv.DictReader(fh)}


def danes() -> list[tuple[dict[str, str], int]]:
    with DANES.open() as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return [(dict(zip(rows[0][:-1], r[:-1], strict=True)), int(r[-1])) for r in rows[1:]]


def write_case_files(tmp_path: Path) -> dict[str, Path]:
    """PM: a GlobalFiler export (V1 the missing son, V2 unrelated) and a
    Yfiler Plus export of V1; AM: the families table, the father's
    GlobalFiler and Yfiler Plus exports. The son's Y haplotype is a danes
    haplotype; the father's differs from it by one step at DYS391."""
    hap, _ = next((h, n) for h, n in danes() if n == 1)
    son_y = {**YP, **{k: [v] for k, v in hap.items()}}
    father_y = {**son_y, "DYS391": [str(int(hap["DYS391"]) + 1)]}
    son, father = autosomal_genotypes(1), autosomal_genotypes(2)
    for m in AUTOSOMAL:  # the son has one of his father's alleles
        son[m] = [father[m][0], son[m][1]]
    other = autosomal_genotypes(3)
    files = {
        "pm_gf": gm_wide(
            tmp_path / "pm_globalfiler.txt",
            {
                "V1": {**son, "AMEL": ["X", "Y"], "Yindel": ["2"], "DYS391": son_y["DYS391"]},
                "V2": {**other, "AMEL": ["X"]},
            },
        ),
        "pm_yf": gm_long(tmp_path / "pm_yfilerplus.txt", yfiler_plus_rows("V1", son_y)),
        "am_gf": gm_wide(
            tmp_path / "am_globalfiler.txt",
            {"REF-R1": {**father, "AMEL": ["X", "Y"], "Yindel": ["2"], "DYS391": father_y["DYS391"]}},
        ),
        "am_yf": gm_long(tmp_path / "am_yfilerplus.txt", yfiler_plus_rows("REF-R1", father_y)),
        "families": tmp_path / "families.csv",
    }
    files["families"].write_text(
        "family,id,father,mother,sex,missing,sample\nF1,R1,,,M,,REF-R1\nF1,A1,,,F,,\nF1,M1,R1,A1,M,yes,\n"
    )
    return files


def test_case_build__globalfiler_and_yfiler_plus_with_danes__father_son_y_lr_closed_form(tmp_path: Path) -> None:
    files = write_case_files(tmp_path)
    out = tmp_path / "case.json"
    res = CliRunner().invoke(
        app,
        [
            "case", "build", "--remains", str(files["pm_gf"]), "--remains", str(files["pm_yf"]),
            "--families", str(files["families"]), "--references", str(files["am_gf"]),
            "--references", str(files["am_yf"]), "--freqs", str(EUROPA), "--y-database", str(DANES), "-o", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "25 Y loci (2 Y haplotypes)" in res.output
    data = json.loads(out.read_text())
    assert {m["name"] for m in data["markers"]} == set(AUTOSOMAL)  # no DYS391, no Yindel
    y_names = [m["name"] for m in data["lineage"]["Y"]["markers"]]
    assert "DYS391" in y_names and "DYS385" in y_names and "Yindel" not in y_names
    dys385 = next(m for m in data["lineage"]["Y"]["markers"] if m["name"] == "DYS385")
    assert dys385["copies"] == 2
    v1 = data["remains"][0]
    assert v1["sex"] == "M" and v1["haplotypes"]["Y"]["DYS385"] == "11,14"
    r1 = next(m for m in data["families"][0]["members"] if m["id"] == "R1")
    assert r1["haplotypes"]["Y"]["DYS458"] == "17.2"

    case = read_case(out)
    result = lineage_pairwise(case)
    by = result.lr_by_system()
    # closed form: one father-son link; LR_Y = prod_l P(d_l) / f(h_V) over the 10 danes loci
    rates = mu()
    hap, _ = next((h, n) for h, n in danes() if n == 1)
    x = sum(n for h, n in danes() if h == hap)
    big_n = sum(n for _, n in danes())
    num = math.prod((rates[k] / 2) if k == "DYS391" else (1 - rates[k]) for k in DANES_LOCI)
    want = num / ((x + 1) / (big_n + 1))
    assert by["V1"]["M1"]["Y"] == pytest.approx(want, rel=1e-12)
    assert result.mismatches["V1"]["M1"]["Y"] == 1
    assert by["V2"]["M1"]["Y"] == 1.0  # V2 has no Y haplotype: LR 1
    assert result.lr("V1", "M1") == pytest.approx(by["V1"]["M1"]["autosomal"] * want, rel=1e-9)
    detail = result.details[("V1", "M1")]["Y"]
    assert detail.frequency is not None and (detail.frequency.x, detail.frequency.n) == (x, big_n)


def test_case_json_round_trip_keeps_the_haplotypes(tmp_path: Path) -> None:
    files = write_case_files(tmp_path)
    datasets = [load(files["pm_gf"]), load(files["pm_yf"]), load(files["families"]), load(files["am_gf"]),
                load(files["am_yf"])]  # fmt: skip
    case = case_of(datasets, name="rt", freqs=read_frequencies(EUROPA), notes=[],
                   lineage=LineageSources(y_database=DANES))  # fmt: skip
    assert case.lineage is not None and set(case.lineage.haplotypes) == {"V1", "R1"}
    d = case_to_dict(case)
    back = case_from_dict(json.loads(json.dumps(d)))
    assert back.lineage is not None
    assert dict(back.lineage.haplotypes) == dict(case.lineage.haplotypes)
    assert back.lineage.y == case.lineage.y
    assert case_to_dict(back) == d


def test_y_only_case__no_autosomal_marker_is_accepted(tmp_path: Path) -> None:
    """A Yfiler Plus case (PM and AM) without any autosomal marker or frequency file."""
    hap, _ = next((h, n) for h, n in danes() if n == 1)
    son_y = {**YP, **{k: [v] for k, v in hap.items()}}
    pm = gm_long(tmp_path / "pm.txt", yfiler_plus_rows("V1", son_y))
    am = gm_long(tmp_path / "am.txt", yfiler_plus_rows("REF-U", son_y))
    fam = tmp_path / "fam.csv"
    fam.write_text(
        "family,id,father,mother,sex,missing,sample\nF1,GF,,,M,,\nF1,GM,,,F,,\nF1,FA,GF,GM,M,,\nF1,U,GF,GM,M,,REF-U\n"
        "F1,MO,,,F,,\nF1,M1,FA,MO,M,yes,\n"
    )
    out = tmp_path / "y.json"
    res = CliRunner().invoke(
        app, ["case", "build", "--remains", str(pm), "--families", str(fam), "--references", str(am),
              "--y-database", str(DANES), "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["markers"] == []
    case = read_case(out)
    assert case.lineage is not None and case.lineage.y is not None
    # the Y LR from the core, then the same through the DVI engine
    family = case.families[0]
    refs = {pid: h for pid in family.pedigree.ids if (h := case.lineage.y_of(pid))}
    lr = y_lineage_lr(family.pedigree, "M1", refs, case.lineage.y_of("V1"), case.lineage.y)
    # uncle and nephew: 3 links, no difference at the 10 compared loci
    rates = mu()
    x = sum(n for h, n in danes() if h == hap)
    big_n = sum(n for _, n in danes())

    def p0(m: float) -> float:  # 3-step walk back to 0
        return (1 - m) ** 3 + 3 * (1 - m) * m * m / 2

    want = math.prod(p0(rates[k]) for k in DANES_LOCI) / ((x + 1) / (big_n + 1))
    assert (lr.reference, lr.links) == ("U", 3)
    assert lr.lr == pytest.approx(want, rel=1e-12)
    # and through the DVI engine: a case with lineage data and no autosomal marker
    res = lineage_pairwise(case)
    assert res.lr_by_system()["V1"]["M1"]["Y"] == pytest.approx(want, rel=1e-12)
    assert res.lr("V1", "M1") == pytest.approx(want, rel=1e-12)


def test_convert_globalfiler_to_case_json_with_y_and_mt(tmp_path: Path) -> None:
    """``opendvi convert`` with --y-database, --mt-database and --mt-haplotypes."""
    gf = gm_wide(tmp_path / "gf.txt", {"V1": {**autosomal_genotypes(1), "AMEL": ["X", "Y"], "Yindel": ["2"],
                                              "DYS391": ["10"]}})  # fmt: skip
    mtdb = tmp_path / "mtdb.csv"
    mtdb.write_text("range,variants,count\n16024-16569 1-576,16519C 263G,3\n16024-16569 1-576,263G,5\n")
    mth = tmp_path / "mt.csv"
    mth.write_text("sample,range,variants\nV1,16024-16569 1-576,16519C 263G\n")
    out = tmp_path / "c.json"
    res = CliRunner().invoke(
        app, ["convert", str(gf), str(out), "--freqs", str(EUROPA), "--y-database", str(DANES),
              "--mt-database", str(mtdb), "--mt-haplotypes", str(mth), "--mt-rate", "0.003"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["lineage"]["mt"]["rate"] == 0.003
    assert data["remains"][0]["haplotypes"] == {
        "Y": {"DYS391": "10"}, "mt": {"range": "16024-16569 1-576", "variants": ["263G", "16519C"]},
    }  # fmt: skip
    bad = tmp_path / "mt2.csv"
    bad.write_text("sample,range,variants\nNOBODY,16024-16569 1-576,263G\n")
    proc = run("convert", gf, out, "--freqs", EUROPA, "--mt-database", mtdb, "--mt-haplotypes", bad)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("opendvi: error: ") and str(bad) in line and "NOBODY" in line


def test_female_reference_with_y_haplotype_is_an_error(tmp_path: Path) -> None:
    am = gm_long(tmp_path / "am.txt", yfiler_plus_rows("REF-A", YP))
    fam = tmp_path / "fam.csv"
    fam.write_text("family,id,father,mother,sex,missing,sample\nF1,A,,,F,,REF-A\nF1,B,,,M,,\nF1,M1,B,A,M,yes,\n")
    with pytest.raises(FileFormatError, match=r"member A is female.*REF-A.*Y haplotype") as info:
        case_of([load(fam), load(am)], name="x", notes=[], role="remains", lineage=LineageSources(y_database=DANES))
    assert (info.value.path, info.value.line, info.value.field) == (str(fam), 2, "sex")


# -- 5. profile-to-profile conversions keep the Y loci and the sex tests ------------------------


@pytest.mark.parametrize("ext", ["xml", "csv", "xlsx"])
def test_convert_profiles__y_loci_and_sex_tests_kept(tmp_path: Path, ext: str) -> None:
    gf = gm_wide(
        tmp_path / "gf.txt",
        {
            "PM1": {"D3S1358": ["15", "16"], "AMEL": ["X", "Y"], "Yindel": ["2"], "DYS391": ["10"]},
            "PM2": {"D3S1358": ["15"], "AMEL": ["X"], "Yindel": ["1"], "DYS391": ["11"]},
            "PM3": {"D3S1358": ["17"], "AMEL": ["X"]},
        },
    )
    yf = gm_long(tmp_path / "yf.txt", yfiler_plus_rows("PM1", YP))
    out = tmp_path / f"out.{ext}"
    res = CliRunner().invoke(app, ["convert", str(yf), str(tmp_path / "yf.csv")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["convert", str(gf), str(out)])
    assert res.exit_code == 0, res.output
    before, after = read_genemapper(gf), load(out).profiles
    assert after is not None
    for a, b in zip(before.records, after.records, strict=True):
        assert (b.id, b.sex, b.y_haplotype()) == (a.id, a.sex, a.y_haplotype())
        assert {m: set(v) for m, v in b.genotypes.items()} == {m: set(v) for m, v in a.genotypes.items()}
        assert b.sex_calls.get("Yindel") == a.sex_calls.get("Yindel")
    back = read_profiles_table(tmp_path / "yf.csv").records[0]
    assert back.y_haplotype() == read_genemapper(yf).records[0].y_haplotype()
    assert back.y_haplotype()["DYS385"] == ("11", "14")


def test_case_with_lineage_to_profiles_csv_has_the_y_columns(tmp_path: Path) -> None:
    files = write_case_files(tmp_path)
    datasets = [load(files["pm_gf"]), load(files["pm_yf"]), load(files["families"]), load(files["am_gf"]),
                load(files["am_yf"])]  # fmt: skip
    case = case_of(datasets, name="rt", freqs=read_frequencies(EUROPA), notes=[],
                   lineage=LineageSources(y_database=DANES))  # fmt: skip
    out = tmp_path / "profiles.csv"
    save_case(case, out, notes=[])
    recs = {r.id: r for r in read_profiles_table(out).records}
    assert case.lineage is not None
    assert recs["V1"].y_haplotype() == dict(case.lineage.y_of("V1") or {})
    assert recs["R1"].y_haplotype() == dict(case.lineage.y_of("R1") or {})


def test_case_build__discrete_laplace_estimator_changes_only_f(tmp_path: Path) -> None:
    files = write_case_files(tmp_path)
    lrs = {}
    for est in ("augmented-counting", "discrete-laplace"):
        out = tmp_path / f"{est}.json"
        res = CliRunner().invoke(
            app,
            [
                "case", "build", "--remains", str(files["pm_gf"]), "--remains", str(files["pm_yf"]),
                "--families", str(files["families"]), "--references", str(files["am_gf"]),
                "--references", str(files["am_yf"]), "--freqs", str(EUROPA), "--y-database", str(DANES),
                "--y-estimator", est, "-o", str(out),
            ],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        data = json.loads(out.read_text())
        assert data["lineage"]["Y"]["database"]["estimator"] == est
        assert ("model" in data["lineage"]["Y"]["database"]) == (est == "discrete-laplace")
        d = lineage_pairwise(read_case(out)).details[("V1", "M1")]["Y"]
        assert d.frequency is not None and d.frequency.estimator == est
        lrs[est] = (d.lr, d.frequency.frequency)
    (lr_c, f_c), (lr_d, f_d) = lrs["augmented-counting"], lrs["discrete-laplace"]
    assert f_c != f_d
    assert lr_c * f_c == pytest.approx(lr_d * f_d, rel=1e-12)  # the same P(h_V | h_refs)


# -- 6. generated haplotypes: every layout reads back what was written --------------------------

_REPEAT = st.integers(min_value=5, max_value=45)
_COPY = st.one_of(_REPEAT.map(str), st.tuples(_REPEAT, st.integers(1, 3)).map(lambda t: f"{t[0]}.{t[1]}"))
_HAPLOTYPE = st.fixed_dictionaries(
    {},
    optional={
        name: st.lists(_COPY, min_size=2 if name in ("DYS385", "DYF387S1") else 1, max_size=2 if name in (
            "DYS385", "DYF387S1") else 1)
        for name in YFILER_PLUS.values()
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(haps=st.lists(_HAPLOTYPE, min_size=1, max_size=4), layout=st.sampled_from(["long", "wide", "csv", "cmf"]))
def test_generated_y_haplotypes__read_back_in_every_layout(tmp_path: Path, haps: list, layout: str) -> None:
    gm_name = {v: k for k, v in YFILER_PLUS.items()}
    samples = {f"S{i}": h for i, h in enumerate(haps)}
    if layout == "long":
        rows = [(sid, gm_name[m], v) for sid, h in samples.items() for m, v in h.items()]
        rows += [(sid, "AMEL", ["X", "Y"]) for sid in samples]
        ps = read_genemapper(gm_long(tmp_path / "y.txt", rows))
    elif layout == "wide":
        wide = {sid: {gm_name[m]: v for m, v in h.items()} for sid, h in samples.items()}
        ps = read_genemapper(gm_wide(tmp_path / "y.txt", wide, markers=list(YFILER_PLUS)))
    elif layout == "csv":
        names = list(YFILER_PLUS.values())
        lines = ["sample," + ",".join(n if n != "DYS385" else "DYS385a,DYS385b" for n in names)]
        for sid, h in samples.items():
            cells = []
            for n in names:
                v = h.get(n, [])
                cells += [v[0], v[1]] if n == "DYS385" and v else ["", ""] if n == "DYS385" else ["/".join(v)]
            lines.append(",".join([sid, *cells]))
        (tmp_path / "y.csv").write_text("\n".join(lines) + "\n")
        ps = read_profiles_table(tmp_path / "y.csv")
    else:
        spec = {sid: [("AMEL", ["X", "Y"])] + [(n if n != "DYS389I" else "DYS389 I", v) for n, v in h.items()]
                for sid, h in samples.items()}  # fmt: skip
        spec = {sid: [(("DYS389 II" if n == "DYS389II" else n), v) for n, v in locs] for sid, locs in spec.items()}
        ps = read_cmf(cmf(tmp_path / "y.xml", spec))
    got = {r.id: r.y_haplotype() for r in ps.records}

    def expect(v: list[str]) -> tuple[str, ...]:
        return tuple(sorted(v, key=float))

    assert got == {sid: {m: expect(v) for m, v in h.items()} for sid, h in samples.items()}
    assert all(r.sex == "M" for r in ps.records if r.y_calls or r.sex_calls)
