"""dvi-case/1 validation collects every problem of a document at once, each
with its path, in one one-line CaseDocumentError (a FileFormatError); the
same rules check a Case built in memory (validate_case)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendvi.core.case import Family, Sample
from opendvi.core.errors import FileFormatError
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.io.case_checks import SHOWN_PROBLEMS, CaseDocumentError
from opendvi.io.case_json import case_from_dict, case_to_dict, parse_markers, read_case, validate_case, write_case

TPOX = {
    "name": "TPOX",
    "alleles": ["8", "9", "10"],
    "frequencies": [0.5, 0.3, 0.2],
    "mutation": {"female": {"model": "equal", "rate": 0.001}, "male": {"model": "equal", "rate": 0.002}},
}
DXS = {"name": "DXS10135", "chromosome": "X", "alleles": ["17", "18"], "frequencies": [0.4, 0.6]}


def _family(k: int) -> dict[str, Any]:
    return {
        "id": f"F{k}",
        "members": [
            {"id": f"R{k}", "father": None, "mother": None, "sex": "M", "genotypes": {"TPOX": ["8", "9"]}},
            {"id": f"A{k}", "father": None, "mother": None, "sex": "F"},
            {"id": f"M{k}", "father": f"R{k}", "mother": f"A{k}", "sex": "F", "missing": True},
        ],
    }


def _case() -> dict[str, Any]:
    return {
        "format": "dvi-case/1",
        "name": "five",
        "markers": [copy.deepcopy(TPOX), copy.deepcopy(DXS)],
        "remains": [{"id": "V1", "sex": "M", "genotypes": {"TPOX": ["8", "10"], "DXS10135": ["17"]}}],
        "families": [_family(k) for k in range(1, 6)],
        "pairings": {"V1": ["M1", "M2"]},
    }


def _five_problems() -> dict[str, Any]:
    d = _case()
    fams = d["families"]
    fams[0]["members"][2]["father"] = 3
    fams[1]["members"][0]["sex"] = "male"
    fams[2]["members"][0]["genotypes"]["TPOX"] = ["8", "9", "10"]
    fams[3]["members"][2]["mother"] = "X"
    fams[4]["members"][0]["genotypes"]["CSF1PO"] = ["10", "11"]
    return d


def _refused(read: Any, data: Any, **kwargs: Any) -> pytest.ExceptionInfo[CaseDocumentError]:
    with pytest.raises(CaseDocumentError) as info:
        read(data, **kwargs)
    return info


FIVE = [
    ("families[0] (F1).members[2] (M1).father", "must be a member id or null, found 3"),
    ("families[1] (F2).members[0] (R2).sex", "must be 'M' or 'F', found 'male'"),
    ("families[2] (F3).members[0] (R3).genotypes.TPOX", "3 alleles (8, 9, 10)"),
    ("families[3] (F4).members[2] (M4).mother", "M4's mother 'X' is not in the pedigree"),
    ("families[4] (F5).members[0] (R5).genotypes", "unknown marker 'CSF1PO' (not in 'markers')"),
]


def test_case_from_dict__five_problems_in_five_families__one_error_with_every_path(tmp_path: Path) -> None:
    path = tmp_path / "five.json"
    path.write_text(json.dumps(_five_problems()))
    with pytest.raises(FileFormatError) as info:
        read_case(path)
    err = info.value
    assert isinstance(err, CaseDocumentError)
    assert [w for w, _m in err.problems] == [w for w, _m in FIVE]
    for (_w, msg), (_w2, fragment) in zip(err.problems, FIVE, strict=True):
        assert fragment in msg
    text = str(err)
    assert "\n" not in text
    assert text.startswith(f"{path}: {FIVE[0][0]}: must be a member id or null, found 3; and 4 more problems: ")
    for where, fragment in FIVE[1:]:
        assert f"{where}: {fragment}" in text
    assert err.field == FIVE[0][0] and err.path == str(path)


def test_case_from_dict__problems_in_every_part_are_collected() -> None:
    d = _case()
    d["theta"] = 2
    d["markers"][1]["frequencies"] = [0.4, 0.5]
    d["remains"].append({"id": "V1", "sex": None})
    d["remains"][0]["dropout"] = "high"
    d["families"][1]["members"][1]["sex"] = "M"  # A2 is M2's mother: the pedigree says so
    d["pairings"] = {"V9": ["M1"]}
    info = _refused(case_from_dict, d, path="c.json")
    assert [w for w, _m in info.value.problems] == [
        "theta",
        "markers[1] (DXS10135)",
        "remains[0] (V1).dropout",
        "remains[1].id",
        "families[1] (F2).members",
        "pairings",
    ]
    msgs = dict(info.value.problems)
    assert "frequencies sum to 0.9, not 1" in msgs["markers[1] (DXS10135)"]
    assert msgs["remains[1].id"] == "id 'V1' is used twice in the case"
    assert "a mother must be F" in msgs["families[1] (F2).members"]
    assert msgs["pairings"] == "unknown remains 'V9'"


def test_case_from_dict__x_marker_checked_against_the_sex_with_its_path() -> None:
    d = _case()
    d["remains"][0]["genotypes"]["DXS10135"] = ["17", "18"]
    d["families"][0]["members"][0]["genotypes"]["DXS10135"] = ["17", "18"]
    with pytest.raises(CaseDocumentError) as info:
        case_from_dict(d)
    assert info.value.problems == [
        ("remains[0] (V1).genotypes.DXS10135", "a male has one X allele, found 17/18"),
        ("families[0] (F1).members[0] (R1).genotypes.DXS10135", "a male has one X allele, found 17/18"),
    ]


def test_case_from_dict__many_problems_are_capped_in_the_message() -> None:
    d = _case()
    for fam in d["families"]:
        for m in fam["members"]:
            m["sex"] = "?"
    with pytest.raises(CaseDocumentError) as info:
        case_from_dict(d)
    assert len(info.value.problems) == 15
    text = str(info.value)
    assert text.count("must be 'M' or 'F', found '?'") == SHOWN_PROBLEMS
    assert text.endswith(f"; ... and {15 - SHOWN_PROBLEMS} more")
    assert "\n" not in text


def test_case_from_dict__a_member_not_an_object_and_a_required_field_missing() -> None:
    d = _case()
    d["families"][0]["members"][1] = "A1"
    del d["families"][2]["members"][1]["sex"]
    with pytest.raises(CaseDocumentError) as info:
        case_from_dict(d)
    assert info.value.problems == [
        ("families[0] (F1).members[1]", "must be an object"),
        ("families[2] (F3).members[1] (A3).sex", "missing (required)"),
    ]


def test_case_from_dict__valid_document_round_trips(tmp_path: Path) -> None:
    case = case_from_dict(_case(), path="five.json")
    assert [f.id for f in case.families] == ["F1", "F2", "F3", "F4", "F5"]
    assert case.pairings == {"V1": ("M1", "M2")}
    out = tmp_path / "five.json"
    write_case(case, out)
    assert read_case(out) == case
    assert case_from_dict(case_to_dict(case)) == case
    assert validate_case(case) is case


def test_validate_case__checks_the_case_itself_and_collects_every_problem() -> None:
    case = case_from_dict(_case())
    f1 = case.families[0]
    bad_f1 = replace(f1, genotypes={**f1.genotypes, "M1": {"TPOX": ("8", "8")}})
    ped = Pedigree([Individual("V1", None, None, "M"), Individual("Q", None, None, None)])
    extra = Family(id="F6", pedigree=ped, genotypes={"Q": {"DXS10135": ("17",)}})
    bad = replace(
        case,
        remains=(*case.remains, Sample(id="V2", sex="X", dropout=1.5)),
        families=(bad_f1, *case.families[1:], extra),
    )
    with pytest.raises(CaseDocumentError) as info:
        validate_case(bad, path="mem")
    assert info.value.problems == [
        ("remains[1] (V2).sex", "must be 'M' or 'F' or null, found 'X'"),
        ("remains[1] (V2).dropout", "must be a number in [0, 1), found 1.5"),
        ("families[0] (F1).members[2] (M1).genotypes", "a missing person must not be typed"),
        ("families[5] (F6).members[0].id", "id 'V1' is used twice in the case"),
        ("families[5] (F6).members[1] (Q).sex", "must be 'M' or 'F', found None"),
        ("families[5] (F6).members[1] (Q).genotypes.DXS10135", "typed person of unknown sex"),
    ]
    assert str(info.value).startswith("mem: remains[1] (V2).sex: ")


def test_parse_markers__decodes_a_marker_list_and_names_each_problem() -> None:
    markers = parse_markers([TPOX, DXS])
    assert [m.name for m in markers] == ["TPOX", "DXS10135"]
    assert markers == case_from_dict(_case()).markers
    bad = [dict(TPOX, frequencies=[0.5, 0.5]), dict(DXS, chromosome="Y"), TPOX]
    info = _refused(parse_markers, bad, path="store.npz")
    assert [w for w, _m in info.value.problems] == [
        "markers[0] (TPOX)",
        "markers[1] (DXS10135).chromosome",
        "markers[2] (TPOX).name",
    ]
    with pytest.raises(CaseDocumentError, match="markers: must be a non-empty list"):
        parse_markers([])


def test_case_document_error__lines_give_each_problem_with_file_and_field() -> None:
    with pytest.raises(CaseDocumentError) as info:
        case_from_dict(_five_problems(), path="five.json")
    assert info.value.lines() == [f"five.json: {where}: {msg}" for where, msg in info.value.problems]
    assert len(info.value.lines()) == 5
    with pytest.raises(CaseDocumentError) as top:
        case_from_dict([1, 2])
    assert top.value.lines() == ["<input>: the top level must be a JSON object"]


def test_service_import__every_problem_of_the_document_is_a_detail(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.servicekit import assert_error_shape, bearer, make_app, migrated_engine

    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine, demo=False))
        lab = bearer(client, "lab")
        client.post("/api/operations", json={"code": "A", "name": "a"}, headers=lab)
        r = client.post("/api/operations/A/imports", json=_five_problems(), headers=lab)
        err = assert_error_shape(r, 422)
        assert err["code"] == "import_invalid"
        assert len(err["details"]) == 5
        for detail, (where, fragment) in zip(err["details"], FIVE, strict=True):
            assert where in detail and fragment in detail
        assert client.get("/api/remains", headers=lab).json() == []


def _with_lineage() -> dict[str, Any]:
    d = _case()
    d["lineage"] = {
        "Y": {
            "markers": [{"name": "DYS391", "rate": 0.0026}],
            "database": {"haplotypes": [{"alleles": {"DYS391": "10"}, "count": 3}, {"alleles": {"DYS391": "11"}}]},
        },
        "mt": {"rate": 0.002, "database": {"haplotypes": [{"range": "16024-16569", "variants": ["16519C"]}]}},
    }
    d["remains"][0]["haplotypes"] = {"Y": {"DYS391": "10"}, "mt": {"range": "16024-16569", "variants": []}}
    d["families"][0]["members"][0]["haplotypes"] = {"Y": {"DYS391": "11"}}
    return d


def test_case_from_dict__lineage_problems_are_collected_with_the_others() -> None:
    case = case_from_dict(_with_lineage())
    assert case.lineage is not None and set(case.lineage.haplotypes) == {"V1", "R1"}
    d = _with_lineage()
    d["families"][1]["members"][0]["sex"] = "male"
    d["lineage"]["Y"]["database"]["haplotypes"][1]["count"] = 0
    d["remains"][0]["haplotypes"]["mt"]["variants"] = ["16519QQ"]
    d["families"][0]["members"][1]["haplotypes"] = {"Y": {"DYS391": "10"}}  # A1 is female
    d["families"][0]["members"][2]["haplotypes"] = {"mt": {"range": "16024-16569", "variants": []}}  # missing
    info = _refused(case_from_dict, d)
    assert [w for w, _m in info.value.problems] == [
        "families[1] (F2).members[0] (R2).sex",
        "lineage.Y.database.haplotypes[1].count",
        "remains[0] (V1).haplotypes.mt",
        "families[0] (F1).members[1] (A1).haplotypes.Y",
        "families[0] (F1).members[2] (M1).haplotypes",
    ]
    msgs = [m for _w, m in info.value.problems]
    assert "positive integer" in msgs[1] and "invalid mtDNA variant" in msgs[2]
    assert msgs[3] == "a female carries no Y chromosome" and msgs[4] == "a missing person must not be typed"


def test_cli__several_problems_one_line_each_after_a_count(tmp_path: Path) -> None:
    from tests.clikit import run

    path = tmp_path / "five.json"
    path.write_text(json.dumps(_five_problems()))
    out = run("likelihood", str(path))
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.rstrip().splitlines()
    assert lines[0] == f"opendvi: error: {path}: 5 problems:"
    assert len(lines) == 6
    for line, (where, fragment) in zip(lines[1:], FIVE, strict=True):
        assert line.startswith(f"  {where}: ") and fragment in line


def test_case_document_error__report_caps_the_lines() -> None:
    err = CaseDocumentError([(f"remains[{k}].sex", "bad") for k in range(25)], path="c.json")
    lines = err.report(limit=20).splitlines()
    assert lines[0] == "c.json: 25 problems:" and lines[1] == "  remains[0].sex: bad"
    assert len(lines) == 22 and lines[-1] == "  ... and 5 more"
    one = CaseDocumentError([("theta", "must be a number in [0, 1), found 2")], path="c.json")
    assert one.report() == str(one) == "c.json: theta: must be a number in [0, 1), found 2"


_ODD_VALUES: list[Any] = [
    None, 0, -1, 0.5, 1.5, True, "", "x", "M", "R1", "TPOX", [], {}, ["8", "9", "10"], [{"a": 1}], {"a": {}},
]


def _paths(x: Any, pre: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [pre] if pre else []
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else []
    for k, v in items:
        out.extend(_paths(v, (*pre, k)))
    return out


@settings(max_examples=80, deadline=None)
@given(picks=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_ODD_VALUES)), min_size=1, max_size=3),
       lineage=st.booleans())
def test_case_from_dict__any_edit_gives_a_case_or_one_file_format_error(
    picks: list[tuple[int, Any]], lineage: bool
) -> None:
    d = _with_lineage() if lineage else _case()
    for k, value in picks:
        where = _paths(d)
        *parents, key = where[k % len(where)]
        target: Any = d
        for p in parents:
            target = target[p]
        target[key] = copy.deepcopy(value)
    try:
        case_from_dict(d, path="fuzz.json")
    except CaseDocumentError as exc:
        assert exc.problems and "\n" not in str(exc)
        assert exc.field == (exc.problems[0][0] or None)
        assert str(exc).startswith(f"fuzz.json: {exc.problems[0][0]}")


def test_validate_case__returns_the_case_as_its_file_holds_it() -> None:
    case = case_from_dict(_with_lineage())
    assert validate_case(case) is case  # nothing to drop: the same object
    f1 = case.families[0]
    messy = replace(
        case,
        remains=(replace(case.remains[0], genotypes={**case.remains[0].genotypes, "DXS10135": ()}),),
        families=(
            replace(
                f1,
                genotypes={"A1": {}, **f1.genotypes, "NOBODY": {"TPOX": ("8", "8")}},
                missing=("M1", "NOBODY"),
                dropout={"A1": 0.0, "R1": 0.1},
            ),
            *case.families[1:],
        ),
        pairings={"V1": ("M1",)},
    )
    clean = validate_case(messy)
    assert clean == case_from_dict(case_to_dict(messy))  # what the JSON round trip used to give
    assert clean.remains[0].genotypes == {"TPOX": ("8", "10")}
    fam = clean.families[0]
    assert fam.genotypes == {"R1": {"TPOX": ("8", "9")}} and fam.missing == ("M1",) and fam.dropout == {"R1": 0.1}


def test_case_document__json_schema_of_the_format() -> None:
    from opendvi.io.case_schema import CaseDocument

    schema = CaseDocument.model_json_schema()
    assert schema["required"] == ["format"]
    assert schema["properties"]["format"]["const"] == "dvi-case/1"
    member = schema["$defs"]["MemberDoc"]
    assert member["required"] == ["id", "sex"] and member["properties"]["sex"]["enum"] == ["M", "F"]
    assert schema["$defs"]["MarkerDoc"]["properties"]["chromosome"]["enum"] == ["autosomal", "X"]
