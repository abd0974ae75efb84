"""Lineage additions of dvi-case/1 (reading, writing, errors), the haplotype
readers, and the combined LR of a case (autosomal x Y x mt)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage import parse_y_value, y_value_text
from opendvi.core.lineage_mt import MtHaplotype, rcrs
from opendvi.dvi.lineage import lineage_detail_json, lineage_pairwise
from opendvi.dvi.pairwise import pairwise_lr
from opendvi.dvi.problem import DVIProblem
from opendvi.io.case_json import case_from_dict, case_to_dict, read_case, write_case
from opendvi.io.haplotypes import read_mt_database, read_mt_haplotypes, read_y_database, read_y_haplotypes

DANES = Path(__file__).resolve().parents[1] / "src" / "opendvi" / "data" / "disclapmix_danes.txt"
RANGE = "16024-16569 1-576"


def case_dict() -> dict[str, Any]:
    """F1: missing M1 (male), his paternal uncle U1 (Y + autosomal) and his
    mother's sister A1 (mtDNA). V1 is M1's true haplotype, V2 unrelated."""
    return {
        "format": "dvi-case/1",
        "name": "lineage-demo",
        "markers": [
            {"name": "D1", "alleles": ["1", "2", "3"], "frequencies": [0.2, 0.3, 0.5]},
            {"name": "D2", "alleles": ["1", "2"], "frequencies": [0.6, 0.4]},
        ],
        "lineage": {
            "Y": {
                "markers": [{"name": "DYS391", "rate": 0.0026}, {"name": "DYS385", "rate": 0.0041, "copies": 2},
                            {"name": "DYS19"}],
                "database": {
                    "haplotypes": [
                        {"alleles": {"DYS391": "10", "DYS385": "11,14", "DYS19": "14"}, "count": 3},
                        {"alleles": {"DYS391": "11", "DYS385": "13,14", "DYS19": "15"}, "count": 6},
                    ],
                    "estimator": "augmented-counting",
                },
            },
            "mt": {
                "rate": 0.002,
                "database": {
                    "haplotypes": [
                        {"range": RANGE, "variants": ["16519C", "263G", "315.1C"], "count": 2},
                        {"range": RANGE, "variants": ["263G", "315.1C"], "count": 7},
                    ],
                    "estimator": "augmented-counting",
                },
            },
        },
        "remains": [
            {"id": "V1", "sex": "M", "genotypes": {"D1": ["1", "2"], "D2": ["1", "2"]},
             "haplotypes": {"Y": {"DYS391": "10", "DYS385": "14,11", "DYS19": "15"},
                            "mt": {"range": RANGE, "variants": ["16519C", "263G", "315.1C"]}}},
            {"id": "V2", "sex": "M", "genotypes": {"D1": ["3", "3"], "D2": ["2", "2"]},
             "haplotypes": {"Y": {"DYS391": "11", "DYS385": "13,14", "DYS19": "15"},
                            "mt": {"range": RANGE, "variants": ["263G", "315.1C", "16093C", "73G"]}}},
        ],
        "families": [
            {
                "id": "F1",
                "members": [
                    {"id": "GF", "father": None, "mother": None, "sex": "M"},
                    {"id": "GM", "father": None, "mother": None, "sex": "F"},
                    {"id": "MGF", "father": None, "mother": None, "sex": "M"},
                    {"id": "MGM", "father": None, "mother": None, "sex": "F"},
                    {"id": "FA", "father": "GF", "mother": "GM", "sex": "M"},
                    {"id": "U1", "father": "GF", "mother": "GM", "sex": "M",
                     "genotypes": {"D1": ["1", "3"], "D2": ["1", "1"]},
                     "haplotypes": {"Y": {"DYS391": "10", "DYS385": "11,14", "DYS19": "14"}}},
                    {"id": "MO", "father": "MGF", "mother": "MGM", "sex": "F"},
                    {"id": "A1", "father": "MGF", "mother": "MGM", "sex": "F",
                     "haplotypes": {"mt": {"range": RANGE, "variants": ["16519C", "263G", "315.1C"]}}},
                    {"id": "M1", "father": "FA", "mother": "MO", "sex": "M", "missing": True},
                ],
            }
        ],
    }


def test_case_json__read_write_roundtrip(tmp_path: Path) -> None:
    case = case_from_dict(case_dict(), path="demo.json")
    lin = case.lineage
    assert lin is not None and lin.y is not None and lin.mt is not None
    assert lin.y.by_name["DYS385"].copies == 2
    assert lin.y.by_name["DYS19"].rate == pytest.approx(0.0022374145431945307)  # bundled YHRD rate
    assert lin.y_of("V1") == {"DYS391": ("10",), "DYS385": ("11", "14"), "DYS19": ("15",)}
    assert lin.mt_of("A1") == MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C"])
    assert lin.y_of("A1") is None and lin.mt_of("U1") is None
    out = tmp_path / "case.json"
    write_case(case, out)
    again = read_case(out)
    assert again.lineage == case.lineage
    assert again.lineage is not None and again.lineage.y is not None
    assert again.lineage.y.database.digest == lin.y.database.digest
    d = case_to_dict(again)
    assert d["remains"][0]["haplotypes"]["Y"]["DYS385"] == "11,14"
    assert d["lineage"]["mt"]["database"]["haplotypes"][0]["variants"] == ["263G", "315.1C", "16519C"]
    plain = case_dict()
    del plain["lineage"]
    for r in plain["remains"]:
        del r["haplotypes"]
    for m in plain["families"][0]["members"]:
        m.pop("haplotypes", None)
    assert case_from_dict(plain).lineage is None and "lineage" not in case_to_dict(case_from_dict(plain))


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda d: d["remains"][0]["haplotypes"]["Y"].update(DYS999="10"), "remains[0] (V1).haplotypes.Y",
         "unknown Y locus"),
        (lambda d: d["remains"][0]["haplotypes"]["Y"].update(DYS385="11"), "remains[0] (V1).haplotypes.Y.DYS385",
         "1 value(s)"),
        (lambda d: d["remains"][0]["haplotypes"]["Y"].update(DYS391="ten"), "remains[0] (V1).haplotypes.Y.DYS391",
         "invalid Y-STR allele"),
        (lambda d: d["remains"][0]["haplotypes"]["mt"].update(variants=["263QQ"]), "remains[0] (V1).haplotypes.mt",
         "invalid mtDNA variant"),
        (lambda d: d["lineage"]["mt"].update(rate=2), "lineage.mt.rate", "[0, 1)"),
        (lambda d: d["lineage"]["Y"]["markers"].append({"name": "DYSX1"}), "lineage.Y.markers[3].rate",
         "no bundled mutation rate"),
        (lambda d: d["lineage"]["Y"]["database"].update(estimator="counting"), "lineage.Y.database.estimator",
         "must be one of"),
        (lambda d: d["lineage"]["Y"]["database"]["haplotypes"][0].update(count=0),
         "lineage.Y.database.haplotypes[0].count", "positive integer"),
        (lambda d: d["families"][0]["members"][7].update(haplotypes={"Y": {"DYS391": "10"}}),
         "families[0] (F1).members[7] (A1).haplotypes.Y", "female"),
        (lambda d: d["families"][0]["members"][8].update(haplotypes={"Y": {"DYS391": "10"}}),
         "families[0] (F1).members[8] (M1).haplotypes", "missing person"),
        (lambda d: d.pop("lineage"), "remains[0] (V1).haplotypes.Y", "needs 'lineage.Y'"),
    ],
)
def test_case_json__errors_name_the_field(edit: Any, field: str, message: str) -> None:
    d = copy.deepcopy(case_dict())
    edit(d)
    with pytest.raises(FileFormatError) as info:
        case_from_dict(d, path="bad.json")
    assert info.value.field == field, str(info.value)
    assert message in str(info.value) and str(info.value).startswith("bad.json: ")


def test_case_json__discrete_laplace_model_fitted_and_stored() -> None:
    d = case_dict()
    d["lineage"]["Y"]["database"]["estimator"] = "discrete-laplace"
    d["lineage"]["Y"]["database"]["haplotypes"].append(
        {"alleles": {"DYS391": "10", "DYS385": "12,14", "DYS19": "14"}, "count": 2}
    )
    case = case_from_dict(d)
    assert case.lineage is not None and case.lineage.y is not None
    model = case.lineage.y.database.model
    assert model is not None and model.markers == ("DYS391", "DYS385[1]", "DYS385[2]", "DYS19")
    stored = case_to_dict(case)
    assert stored["lineage"]["Y"]["database"]["model"]["markers"] == list(model.markers)
    assert case_from_dict(stored).lineage == case.lineage
    # the LR uses the model's f(h_V) over the loci compared (DYS385 as its two copies)
    res = lineage_pairwise(case)
    y = res.details[("V1", "M1")]["Y"]
    assert y.frequency is not None and y.frequency.estimator == "discrete-laplace"
    assert y.compared == ("DYS391", "DYS385", "DYS19")
    h = case.lineage.y_of("V1")
    assert h is not None
    assert y.frequency.frequency == pytest.approx(math.exp(model.log_prob(h, y.compared)), rel=1e-12)
    assert y.log_lr == pytest.approx(y.log_numerator - model.log_prob(h, y.compared), rel=1e-12)


# ---------------------------------------------------------------------------
# combined LR of a case
# ---------------------------------------------------------------------------


def test_combined_lr_is_product_of_systems() -> None:
    case = case_from_dict(case_dict())
    res = lineage_pairwise(case)
    assert res.systems == ("autosomal", "Y", "mt")
    auto = pairwise_lr(DVIProblem(case))
    for rid, mp, log_lr in res.pairs():
        by = res.log_lr_by_system[rid][mp]
        assert by["autosomal"] == pytest.approx(auto.log_lr[rid][mp], rel=1e-12)
        total = by["autosomal"] + by["Y"] + by["mt"] if all(v > -math.inf for v in by.values()) else -math.inf
        assert log_lr == pytest.approx(total, rel=1e-12)
        lr = res.lr(rid, mp)
        assert lr == pytest.approx(math.prod(res.lr_by_system()[rid][mp].values()), rel=1e-12)
    # V1 as M1: Y one step at DYS19 over 3 links (uncle U1: M1-FA-GF-U1), mt identical over 3 (M1-MO-MGM-A1)
    mu19 = 0.0022374145431945307
    p_y = ((1 - 0.0026) ** 3 + 3 * (1 - 0.0026) * 0.0026**2 / 2) * (
        (1 - 0.0041) ** 3 + 3 * (1 - 0.0041) * 0.0041**2 / 2
    ) ** 2 * (3 * mu19 * (1 - mu19) ** 2 / 2 + 3 * mu19**3 / 8)
    f_y = (0 + 1) / (9 + 1)
    assert res.lr_by_system()["V1"]["M1"]["Y"] == pytest.approx(p_y / f_y, rel=1e-12)
    assert res.lr_by_system()["V1"]["M1"]["mt"] == pytest.approx((1 - 0.002) ** 3 / ((2 + 1) / (9 + 1)), rel=1e-12)
    assert res.mismatches["V1"]["M1"] == {"Y": 1, "mt": 0}
    # V2: three Y loci differ (5 steps over 3 links: possible, tiny); mt differs at 73, 16093 and 16519:
    # an exclusion, so the combined LR is 0
    assert 0.0 < res.lr_by_system()["V2"]["M1"]["Y"] < 1e-6
    assert res.lr_by_system()["V2"]["M1"]["mt"] == 0.0 and res.lr("V2", "M1") == 0.0
    assert res.mismatches["V2"]["M1"] == {"Y": 3, "mt": 3}
    out = res.to_json()
    assert out["mismatches"]["V1"]["M1"] == {"Y": 1, "mt": 0} and out["lr"]["V2"]["M1"] == 0.0
    assert set(out["lr_by_system"]["V1"]["M1"]) == {"autosomal", "Y", "mt"}
    json.loads(json.dumps(out, allow_nan=False))
    detail = lineage_detail_json(res.details[("V1", "M1")]["Y"])
    assert detail["reference"] == "U1" and detail["links"] == 3 and len(detail["frequency"]["database_sha256"]) == 64
    json.dumps(detail)


def test_identified_remains_become_typed_on_the_line() -> None:
    # V1 identified as M1: M1's haplotypes are V1's, V1 leaves the lineage data
    case = case_from_dict(case_dict())
    assert case.lineage is not None
    lin = case.lineage.with_identified({"V1": "M1"})
    assert lin.y_of("M1") == case.lineage.y_of("V1") and lin.y_of("V1") is None
    assert lin.mt_of("M1") == case.lineage.mt_of("V1")


def test_case_without_lineage_has_only_autosomal() -> None:
    d = case_dict()
    del d["lineage"]
    for r in d["remains"]:
        del r["haplotypes"]
    for m in d["families"][0]["members"]:
        m.pop("haplotypes", None)
    res = lineage_pairwise(case_from_dict(d))
    assert res.systems == ("autosomal",)
    assert set(res.log_lr_by_system["V1"]["M1"]) == {"autosomal"}


def test_x_markers_are_their_own_system_and_female_with_y_is_excluded() -> None:
    d = case_dict()
    d["markers"].append({"name": "DXS1", "chromosome": "X", "alleles": ["1", "2"], "frequencies": [0.5, 0.5]})
    d["remains"][0]["genotypes"]["DXS1"] = ["1", "1"]
    d["families"][0]["members"][5]["genotypes"]["DXS1"] = ["2", "2"]
    d["remains"].append({"id": "V3", "sex": None, "genotypes": {"D1": ["1", "2"]},
                         "haplotypes": {"Y": {"DYS391": "10"}}})
    d["families"][0]["members"].append({"id": "M2", "father": "FA", "mother": "MO", "sex": "F", "missing": True})
    case = case_from_dict(d)
    res = lineage_pairwise(case)
    assert res.systems == ("autosomal", "X", "Y", "mt")
    auto = pairwise_lr(DVIProblem(case))
    by = res.log_lr_by_system["V1"]["M1"]
    assert by["autosomal"] + by["X"] == pytest.approx(auto.log_lr["V1"]["M1"], rel=1e-12)
    # V3 (sex unknown) carries a Y haplotype: as the female M2 the Y system excludes
    assert res.lr_by_system()["V3"]["M2"]["Y"] == 0.0 and "female" in res.details[("V3", "M2")]["Y"].note
    assert res.lr("V3", "M2") == 0.0
    # as M1 the Y LR is computed (one locus, DYS391, against the uncle)
    assert res.details[("V3", "M1")]["Y"].compared == ("DYS391",)


# ---------------------------------------------------------------------------
# readers
# ---------------------------------------------------------------------------


def test_read_y_haplotypes_csv(tmp_path: Path) -> None:
    p = tmp_path / "y.csv"
    p.write_text("Sample,DYS19,DYS385a,DYS385b,DYS391\nS1,14,14,11,10\nS2,15.2,,,-\n")
    haps = read_y_haplotypes(p)
    assert haps == {"S1": {"DYS19": ("14",), "DYS385": ("11", "14"), "DYS391": ("10",)}, "S2": {"DYS19": ("15.2",)}}
    p.write_text("Sample,DYS19\nS1,14\nS1,15\n")
    with pytest.raises(FileFormatError, match=r"y\.csv:3: Sample: sample 'S1' is listed twice"):
        read_y_haplotypes(p)
    p.write_text("Sample,DYS19\nS1,1x\n")
    with pytest.raises(FileFormatError, match=r"y\.csv:2: DYS19: invalid Y-STR allele"):
        read_y_haplotypes(p)


def test_read_mt_haplotypes_empop_and_csv(tmp_path: Path) -> None:
    empop = tmp_path / "mt.emp"
    empop.write_text(f"Sample\tRange\tVariants\nS1\t{RANGE}\t16519C\t263G\t315.1C\nS2\t16024-16365\t16093Y\n")
    haps = read_mt_haplotypes(empop)
    assert haps["S1"] == MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C"])
    assert haps["S2"].heteroplasmies == ("16093Y",)
    noheader = tmp_path / "mt2.emp"
    noheader.write_text(f"S1\t{RANGE}\t16519C 263G\n")
    assert read_mt_haplotypes(noheader)["S1"].variants == ("263G", "16519C")
    csvp = tmp_path / "mt.csv"
    csvp.write_text(f'sample,range,variants\nS1,{RANGE},"16519C 263G 315.1C"\nS2,16024-16365,"263G"\n')
    with pytest.raises(FileFormatError, match=r"mt\.csv:3: variants: .*outside the typed range"):
        read_mt_haplotypes(csvp)
    csvp.write_text(f'sample,range,variants\nS1,{RANGE},"16519C 263G 315.1C"\n')
    assert read_mt_haplotypes(csvp)["S1"] == haps["S1"]


def test_read_databases(tmp_path: Path) -> None:
    db, markers = read_y_database(DANES)
    assert db.size == 185 and len(db.haplotypes) == 136 and len(markers) == 10
    assert all(m.rate > 0 for m in markers)
    h = db.haplotypes[0]
    assert db.frequency(h, list(h)).x == 1
    dl, _ = read_y_database(DANES, estimator="discrete-laplace")
    assert dl.model is not None and dl.model.clusters == 4
    yhrd = tmp_path / "yhrd.csv"
    yhrd.write_text("DYS19,DYS385a,DYS385b,Count\n14,11,14,5\n15,13,14,2\n")
    db2, m2 = read_y_database(yhrd)
    assert db2.haplotypes[0]["DYS385"] == ("11", "14") and db2.counts == (5, 2)
    assert [m.copies for m in m2] == [1, 2]
    yhrd.write_text("DYS19,Count\n14,five\n")
    with pytest.raises(FileFormatError, match=r"yhrd\.csv:2: Count: must be a positive integer"):
        read_y_database(yhrd)
    mtp = tmp_path / "mtdb.csv"
    mtp.write_text(f'range,variants,count\n{RANGE},"263G 315.1C",7\n{RANGE},"16519C 263G",2\n')
    mdb = read_mt_database(mtp)
    assert mdb.size == 9 and mdb.haplotypes[1].variants == ("263G", "16519C")
    assert parse_y_value("11,14", copies=2) == ("11", "14")


# ---------------------------------------------------------------------------
# parsers: round trips and one-line errors on anything
# ---------------------------------------------------------------------------


_positions = st.integers(min_value=16024, max_value=16569) | st.integers(min_value=1, max_value=576)


@st.composite
def mt_variants(draw: Any) -> list[str]:
    out = {}
    for pos in draw(st.lists(_positions, max_size=8, unique=True)):
        kind = draw(st.sampled_from(["sub", "ins", "del", "het"]))
        if kind == "sub":
            out[(pos, 0)] = f"{pos}{draw(st.sampled_from([b for b in 'ACGT' if b != rcrs()[pos - 1]]))}"
        elif kind == "ins":
            out[(pos, 1)] = f"{pos}.1{draw(st.sampled_from('ACGT'))}"
        elif kind == "del":
            out[(pos, 0)] = f"{pos}del"
        else:
            out[(pos, 0)] = f"{pos}{draw(st.sampled_from('RYKMSW'))}"
    return list(out.values())


@settings(max_examples=60, deadline=None)
@given(mt_variants())
def test_mt_haplotype__roundtrip(variants: list[str]) -> None:
    h = MtHaplotype.parse(RANGE, variants)
    again = MtHaplotype.parse(h.range_text, h.variants)
    assert again == h and len(h.variants) == len(variants)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=5, max_value=40) | st.just(-1), min_size=1, max_size=3),
       st.sampled_from(["", ".1", ".2", ".3"]))
def test_y_value__roundtrip(values: list[int], suffix: str) -> None:
    text = ",".join("null" if v < 0 else f"{v}{suffix}" for v in values)
    parsed = parse_y_value(text, copies=len(values))
    assert parse_y_value(y_value_text(parsed), copies=len(values)) == parsed
    assert list(parsed) == sorted(parsed, key=lambda t: (t == "null", float(t) if t != "null" else 0.0))


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=12))
def test_parsers__only_opendvi_errors(text: str) -> None:
    for call in (lambda: parse_y_value(text, copies=1), lambda: MtHaplotype.parse(text, [text]),
                 lambda: MtHaplotype.parse(RANGE, [text])):
        try:
            call()
        except OpenDVIError as exc:
            assert "\n" not in str(exc)


def test_pairwise_cli_gives_the_combined_lr_and_each_system(tmp_path: Path) -> None:
    """``opendvi pairwise`` on a case with Y and mt: ``lr`` is the combined LR, ``lr_by_system`` and
    ``mismatches`` as lineage.md's Outputs section fixes them; the table shows each system."""
    from typer.testing import CliRunner

    from opendvi.cli.main import app

    path = tmp_path / "case.json"
    path.write_text(json.dumps(case_dict()))
    res = lineage_pairwise(case_from_dict(case_dict()))
    r = CliRunner().invoke(app, ["pairwise", str(path), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["systems"] == ["autosomal", "Y", "mt"]
    assert doc["lr"]["V1"]["M1"] == pytest.approx(res.lr("V1", "M1"), rel=1e-12)
    assert doc["lr"]["V2"]["M1"] == 0.0 and doc["log10_lr"]["V2"]["M1"] == "-inf"
    assert doc["lr_by_system"]["V1"]["M1"]["mt"] == pytest.approx(res.lr_by_system()["V1"]["M1"]["mt"], rel=1e-12)
    assert doc["mismatches"]["V2"]["M1"] == {"Y": 3, "mt": 3}
    assert doc["exclusions"]["V1"]["M1"] == 0
    table = CliRunner().invoke(app, ["pairwise", str(path)])
    assert table.exit_code == 0 and "LR by system" in table.stdout and "combined" in table.stdout
