"""dvi-case/1 JSON: round trips, and malformed input rejected with a
FileFormatError that names the file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from opendvi.core.errors import FileFormatError
from opendvi.data import demo_case_path
from opendvi.io.case_json import case_from_dict, case_to_dict, read_case, write_case

from .conftest import REFERENCE

CASE_FILES = [
    demo_case_path(),
    *sorted(p for p in (REFERENCE / "likelihood").glob("*.json") if not p.name.endswith(".expected.json")),
]


def _base() -> dict[str, Any]:
    return {
        "format": "dvi-case/1",
        "name": "small",
        "theta": 0.01,
        "markers": [
            {
                "name": "TPOX",
                "chromosome": "autosomal",
                "alleles": ["8", "9", "10", "11.3"],
                "frequencies": [0.4, 0.3, 0.2, 0.1],
                "mutation": {
                    "female": {"model": "stepwise", "rate": 0.001, "rate2": 1e-6, "range": 0.1},
                    "male": {"model": "proportional", "rate": 0.002, "transform": "stationary"},
                },
                "database_size": 700,
            },
            {
                "name": "DXS10135",
                "chromosome": "X",
                "alleles": ["17", "18", "19"],
                "frequencies": [0.2, 0.3, 0.5],
                "mutation": None,
            },
        ],
        "remains": [
            {"id": "V1", "sex": "F", "genotypes": {"TPOX": ["8", "9"], "DXS10135": ["18"]}, "dropout": 0.2},
            {"id": "V2", "sex": None, "genotypes": {}},
        ],
        "families": [
            {
                "id": "F1",
                "members": [
                    {"id": "R1", "father": None, "mother": None, "sex": "M", "genotypes": {"TPOX": ["8", "10"]}},
                    {"id": "A1", "father": None, "mother": None, "sex": "F"},
                    {"id": "M1", "father": "R1", "mother": "A1", "sex": "F", "missing": True},
                    {
                        "id": "R2",
                        "father": "R1",
                        "mother": "A1",
                        "sex": "M",
                        "genotypes": {"DXS10135": ["19", "19"]},
                        "dropout": 0.05,
                    },
                ],
            }
        ],
        "pairings": {"V1": ["M1"]},
    }


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.name for p in CASE_FILES])
def test_read_case__round_trips(path: Path, tmp_path: Path) -> None:
    case = read_case(path)
    out = tmp_path / "again.json"
    write_case(case, out)
    again = read_case(out)
    assert again == case
    assert case_to_dict(again) == case_to_dict(case)
    assert not (tmp_path / "again.json.tmp").exists()


def test_case_from_dict__round_trips_every_field(tmp_path: Path) -> None:
    case = case_from_dict(_base())
    assert case.theta == 0.01
    assert case.remains[0].dropout == 0.2
    assert case.remains[0].genotypes["DXS10135"] == ("18",)
    fam = case.family("F1")
    assert fam.missing == ("M1",)
    assert fam.dropout == {"R2": 0.05}
    assert fam.references == ("R1", "R2")
    assert case.pairings == {"V1": ("M1",)}
    assert case.marker("TPOX").database_size == 700
    out = tmp_path / "c.json"
    write_case(case, out)
    assert read_case(out) == case
    # and the JSON written is the JSON read, field by field
    assert json.loads(out.read_text()) == case_to_dict(case)
    data = case_to_dict(case)
    assert data["markers"][0]["mutation"] == _base()["markers"][0]["mutation"]
    assert data["families"][0]["members"][2]["missing"] is True


def test_case_from_dict__defaults() -> None:
    data = _base()
    del data["theta"], data["pairings"], data["markers"][0]["chromosome"], data["name"]
    case = case_from_dict(data)
    assert case.theta == 0.0 and case.pairings is None and case.name == "case"
    assert case.marker("TPOX").chromosome == "autosomal"


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()

# (where to change, new value, expected field, fragment of the message)
MALFORMED = [
    (("format",), "dvi-case/2", "format", "expected 'dvi-case/1'"),
    (("theta",), 1.0, "theta", "must be a number in [0, 1)"),
    (("theta",), "0.1", "theta", "must be a number in [0, 1)"),
    (("markers",), [], "markers", "must be a non-empty list"),
    (("markers", 0, "name"), "", "markers[0].name", "non-empty string"),
    (("markers", 1, "name"), "TPOX", "markers[1] (TPOX).name", "listed twice"),
    (("markers", 0, "alleles"), ["8", 9, "10", "11.3"], "markers[0] (TPOX).alleles", "allele strings"),
    (("markers", 0, "frequencies"), "0.4,0.6", "markers[0] (TPOX).frequencies", "list of numbers"),
    (("markers", 0, "frequencies"), [0.4, 0.3, 0.2, 0.2], "markers[0] (TPOX)", "frequencies sum to 1.1"),
    (("markers", 0, "frequencies"), [0.4, 0.3, 0.3], "markers[0] (TPOX)", "4 alleles but 3 frequencies"),
    (("markers", 0, "chromosome"), "Y", "markers[0] (TPOX).chromosome", "must be 'autosomal' or 'X'"),
    (("markers", 0, "mutation"), {"mother": {}}, "markers[0] (TPOX).mutation", "'female' and 'male'"),
    (
        ("markers", 0, "mutation", "female", "rate"),
        1.5,
        "markers[0] (TPOX)",
        "stepwise mutation parameter rate=1.5",
    ),
    (
        ("markers", 0, "mutation", "male"),
        {"model": "custom", "matrix": [[1.0]]},
        "markers[0] (TPOX)",
        "custom mutation matrix must be 4 x 4",
    ),
    (("remains", 0, "id"), 7, "remains[0].id", "non-empty string"),
    (("remains", 1, "id"), "V1", "remains[1].id", "used twice"),
    (("remains", 0, "sex"), "male", "remains[0] (V1).sex", "must be 'M' or 'F' or null"),
    (("remains", 0, "genotypes", "CSF1PO"), ["10", "11"], "remains[0] (V1).genotypes", "unknown marker 'CSF1PO'"),
    (("remains", 0, "genotypes", "TPOX"), ["8", "9", "10"], "remains[0] (V1).genotypes.TPOX", "3 alleles"),
    (("remains", 0, "genotypes", "TPOX"), "8,9", "remains[0] (V1).genotypes.TPOX", "list of 1 or 2"),
    (("remains", 0, "genotypes", "TPOX"), ["8", ""], "remains[0] (V1).genotypes.TPOX", "empty allele"),
    (("remains", 0, "dropout"), 1.0, "remains[0] (V1).dropout", "must be a number in [0, 1)"),
    (("families", 0, "members"), [], "families[0] (F1).members", "non-empty list"),
    (("families", 0, "members", 0, "sex"), None, "families[0] (F1).members[0] (R1).sex", "must be 'M' or 'F'"),
    (
        ("families", 0, "members", 2, "father"),
        3,
        "families[0] (F1).members[2] (M1).father",
        "member id or null",
    ),
    (
        ("families", 0, "members", 2, "genotypes"),
        {"TPOX": ["8", "8"]},
        "families[0] (F1).members[2] (M1).genotypes",
        "a missing person must not be typed",
    ),
    (("families", 0, "members", 2, "missing"), "yes", "families[0] (F1).members[2] (M1).missing", "true or false"),
    (("families", 0, "members", 1, "father"), "R2", "families[0] (F1).members", "cycle"),
    (("families", 0, "members", 2, "mother"), _DELETE, "families[0] (F1).members", "single parent"),
    (
        ("families", 0, "members", 2, "mother"),
        "R9",
        "families[0] (F1).members[2] (M1).mother",
        "'R9' is not in the pedigree",
    ),
    (("families", 0, "members", 1, "sex"), "M", "families[0] (F1).members", "a mother must be F"),
    (("families", 0, "members", 3, "id"), "V1", "families[0] (F1).members[3].id", "used twice"),
    (
        ("families", 0, "members", 3, "genotypes", "DXS10135"),
        ["18", "19"],
        "families[0] (F1).members[3] (R2).genotypes.DXS10135",
        "a male has one X allele",
    ),
    (("pairings",), {"V9": ["M1"]}, "pairings", "unknown remains 'V9'"),
    (("pairings",), {"V1": ["R1"]}, "pairings", "must be a list of missing person ids"),
]


@pytest.mark.parametrize(
    "where, value, field, fragment", MALFORMED, ids=[f"{'.'.join(map(str, m[0]))}={m[1]!r}"[:60] for m in MALFORMED]
)
def test_read_case__malformed_names_path_and_field(
    tmp_path: Path, where: tuple[Any, ...], value: Any, field: str, fragment: str
) -> None:
    data = copy.deepcopy(_base())
    _set(data, where, value)
    path = tmp_path / "bad-case.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FileFormatError) as info:
        read_case(path)
    err = info.value
    assert err.path == str(path)
    assert err.field == field
    assert fragment in str(err)
    assert str(err).startswith(f"{path}: {field}: ")
    assert "\n" not in str(err)


def test_read_case__invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "dvi-case/1",\n  "markers": [,]\n}\n')
    with pytest.raises(FileFormatError) as info:
        read_case(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: invalid JSON")


def test_read_case__not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(FileFormatError, match="the top level must be a JSON object"):
        read_case(path)


def test_read_case__missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="file not found"):
        read_case(tmp_path / "nope.json")


def test_read_case__allele_outside_frequency_table_is_accepted_then_added(tmp_path: Path) -> None:
    data = _base()
    data["remains"][0]["genotypes"]["TPOX"] = ["8", "12"]
    case = case_from_dict(data)
    new, notes = case.with_unseen_alleles()
    assert new.marker("TPOX").added_alleles == ("12",)
    assert new.marker("TPOX").frequencies[-1] == pytest.approx((5 / 1400) / (1 + 5 / 1400), rel=1e-15)
    assert len(notes) == 1 and "allele 12" in notes[0]
