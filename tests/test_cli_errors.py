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

from tests.clikit import Result
from tests.clikit import run as _run


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


def _assert_one_line_error(out: Result | subprocess.CompletedProcess[str], fragments: list[str]) -> None:
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


# ---------------------------------------------------------------------------
# a bug (an exception that is not an OpenDVIError): one line and status 1, or the traceback with --debug
# ---------------------------------------------------------------------------


def _bug(*args: object, **kwargs: object) -> None:
    raise RuntimeError("unexpected\nsecond line")


def test_cli__internal_error_is_one_line_naming_it_a_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import opendvi.cli.likelihood_cmd

    monkeypatch.setattr(opendvi.cli.likelihood_cmd, "read_case", _bug)
    out = _run("likelihood", str(_write(tmp_path, _case())))
    assert out.returncode == 1
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        "opendvi: internal error: RuntimeError: unexpected second line (a bug; rerun with --debug for the traceback)"
    ]


def test_cli__debug_shows_the_traceback_of_an_internal_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import opendvi.cli.likelihood_cmd

    monkeypatch.setattr(opendvi.cli.likelihood_cmd, "read_case", _bug)
    out = _run("--debug", "likelihood", str(_write(tmp_path, _case())))
    assert out.returncode == 1
    assert out.stderr.startswith("Traceback (most recent call last):")
    assert "likelihood_cmd.py" in out.stderr and "in _bug" in out.stderr
    assert out.stderr.rstrip().endswith("RuntimeError: unexpected\nsecond line")
    assert "internal error" not in out.stderr


def test_cli__debug_leaves_expected_errors_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    out = _run("--debug", "likelihood", str(path))
    _assert_one_line_error(out, [str(path), "file not found"])
    assert out.returncode == 2


def test_cli__debug_is_reset_between_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import opendvi.cli.likelihood_cmd

    path = _write(tmp_path, _case())
    assert _run("--debug", "likelihood", str(path)).returncode == 0
    monkeypatch.setattr(opendvi.cli.likelihood_cmd, "read_case", _bug)
    out = _run("likelihood", str(path))
    assert out.returncode == 1 and "Traceback" not in out.stderr


# ---------------------------------------------------------------------------
# the real entry points, in a fresh process (the tests above run the command line in this one)
# ---------------------------------------------------------------------------


def _entry_points() -> list[list[str]]:
    points = [[sys.executable, "-m", "opendvi.cli.main"]]
    script = Path(sys.executable).with_name("opendvi")
    if script.is_file():
        points.append([str(script)])
    return points


@pytest.mark.parametrize("entry", _entry_points(), ids=lambda e: "script" if len(e) == 1 else "module")
def test_cli_entry_point__error_is_one_line_exit_2(tmp_path: Path, entry: list[str]) -> None:
    path = tmp_path / "absent.json"
    out = subprocess.run([*entry, "likelihood", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    _assert_one_line_error(out, [str(path), "file not found"])
    version = subprocess.run([*entry, "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("opendvi ")
