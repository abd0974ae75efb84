"""Bad input at the command line: one line on stderr that says what and where,
a non-zero exit status, never a traceback. And "-inf" in JSON output for an
impossible marker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opendvi.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _case() -> dict[str, Any]:
    return {
        "format": "dvi-case/1",
        "name": "cli",
        "markers": [
            {"name": "TPOX", "alleles": ["8", "9", "10"], "frequencies": [0.5, 0.3, 0.2]},
            {"name": "TH01", "alleles": ["6", "7"], "frequencies": [0.4, 0.6]},
        ],
        "remains": [],
        "families": [
            {
                "id": "F1",
                "members": [
                    {"id": "FA", "father": None, "mother": None, "sex": "M", "genotypes": {"TPOX": ["8", "8"]}},
                    {"id": "MO", "father": None, "mother": None, "sex": "F"},
                    {
                        "id": "CH",
                        "father": "FA",
                        "mother": "MO",
                        "sex": "M",
                        "genotypes": {"TPOX": ["9", "10"], "TH01": ["6", "7"]},
                    },
                ],
            }
        ],
    }


def _write(tmp_path: Path, data: Any, name: str = "case.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _bad_format(data: dict[str, Any]) -> None:
    data["format"] = "dvi-case/0"


def _cycle(data: dict[str, Any]) -> None:
    data["families"][0]["members"][0].update(father="CH", mother="MO")


def _bad_marker(data: dict[str, Any]) -> None:
    data["markers"][1]["frequencies"] = [0.4, 0.5]


def _bad_mutation(data: dict[str, Any]) -> None:
    data["markers"][0]["mutation"] = {"female": {"model": "equal", "rate": 3}, "male": None}


def _bad_genotype(data: dict[str, Any]) -> None:
    data["families"][0]["members"][2]["genotypes"]["TPOX"] = ["8", "9", "10"]


@pytest.mark.parametrize(
    "mutate, fragments",
    [
        (_bad_format, ["format", "expected 'dvi-case/1'"]),
        (_cycle, ["families[0] (F1).members", "cycle"]),
        (_bad_marker, ["markers[1] (TH01)", "frequencies sum to 0.9"]),
        (_bad_mutation, ["markers[0] (TPOX)", "rate=3.0"]),
        (_bad_genotype, ["members[2] (CH).genotypes.TPOX", "3 alleles"]),
    ],
    ids=["malformed_case", "pedigree_cycle", "marker_frequencies", "mutation_rate", "genotype"],
)
def test_cli_likelihood__bad_input_one_line_error(tmp_path: Path, mutate: Any, fragments: list[str]) -> None:
    data = _case()
    mutate(data)
    path = _write(tmp_path, data)
    out = _run("likelihood", str(path))
    _assert_one_line_error(out, [str(path), *fragments])


def test_cli_likelihood__missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    out = _run("likelihood", str(path), "--format", "json")
    _assert_one_line_error(out, [str(path), "file not found"])


def test_cli_likelihood__invalid_json(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"format": "dvi-case/1",\n "markers": [\n')
    out = _run("likelihood", str(path))
    _assert_one_line_error(out, [f"{path}:3", "invalid JSON"])


def _assert_one_line_error(out: subprocess.CompletedProcess[str], fragments: list[str]) -> None:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("opendvi: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert out.stdout == ""


def test_cli_likelihood__json_gives_minus_inf_strings(tmp_path: Path) -> None:
    # father 8/8, child 9/10, no mutation model: TPOX is an exclusion
    path = _write(tmp_path, _case())
    out = _run("likelihood", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    (fam,) = data["families"]
    assert fam["family"] == "F1"
    assert fam["loglik"]["TPOX"] == "-inf"
    assert fam["loglik_total"] == "-inf"
    # TH01 only typed in the child: 2 p q
    assert fam["loglik"]["TH01"] == pytest.approx(-0.7339691750802004, rel=1e-12)
    assert "-Infinity" not in out.stdout and "NaN" not in out.stdout


def test_cli_likelihood__table_output(tmp_path: Path) -> None:
    path = _write(tmp_path, _case())
    out = _run("likelihood", str(path))
    assert out.returncode == 0, out.stderr
    assert "F1" in out.stdout and "TPOX" in out.stdout and "-inf" in out.stdout
