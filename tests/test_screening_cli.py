"""The commands: ``opendvi simulate`` and ``opendvi screen`` (JSON, Parquet,
CSV, the compact store), and ``opendvi screen`` == ``opendvi pairwise``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from opendvi.io.case_json import read_case
from opendvi.screening import read_results, read_store, screen

from .clikit import Result, run


def _run(*args: str) -> Result:
    return run(*args, check=True)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    path = d / "small.json"
    _run("simulate", "--families", "10", "--remains", "14", "--seed", "3", "-o", str(path))
    return path


def test_simulate__json_with_truth(small: Path) -> None:
    case = read_case(small)
    assert len(case.families) == 10 and len(case.remains) == 14 and len(case.markers) == 23
    truth = json.loads(small.with_name("small.truth.json").read_text())
    assert set(truth["missing"]) == {r.id for r in case.remains}
    assert set(truth["kind"].values()) <= {"missing", "unrelated", "fragment"}


def test_screen__json_equals_opendvi_pairwise(small: Path) -> None:
    got = json.loads(_run("screen", str(small), "--top", "1000", "--threshold", "0", "--format", "json").stdout)
    want = json.loads(_run("pairwise", str(small), "--format", "json").stdout)
    n = 0
    for v, row in want["lr"].items():
        cands = {c["missing"]: c for c in got["candidates"][v]}
        assert set(cands) == {m for m, lr in row.items() if lr is not None}
        for m, c in cands.items():
            w = want["log10_lr"][v][m]
            g = c["log10_lr"]
            if w == "-inf" or g == "-inf":
                assert g == w
            else:
                assert abs(math.expm1((g - w) * math.log(10))) <= 1e-9
            assert c["exclusions"] == want["exclusions"][v][m]
            n += 1
    assert n > 50
    for lst in got["candidates"].values():
        scores = [-math.inf if c["log10_lr"] == "-inf" else c["log10_lr"] for c in lst]
        assert scores == sorted(scores, reverse=True)


def test_screen__parquet_and_csv_hold_the_same_rows(small: Path, tmp_path: Path) -> None:
    pq = tmp_path / "res.parquet"
    csv = tmp_path / "res.csv"
    _run("screen", str(small), "--top", "3", "--threshold", "100", "-o", str(pq))
    _run("screen", str(small), "--top", "3", "--threshold", "100", "-o", str(csv))
    a, b = read_results(pq), read_results(csv)
    assert len(a) >= 3 * 14 - 5 and len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x == y or all(x[k] == y[k] for k in ("remains", "rank", "missing", "family", "exclusions"))
    assert not (tmp_path / "res.parquet.parts").exists()  # removed after a complete run
    res = screen(read_case(small), top=3, threshold=100)
    assert [(r["remains"], r["missing"]) for r in a] == [(v, m) for v, m, _, _ in res.pairs()]


def test_simulate_store__round_trip_and_screen(tmp_path: Path) -> None:
    store = tmp_path / "case.npz"
    _run("simulate", "--families", "12", "--remains", "9", "--seed", "5", "-o", str(store))
    case, truth = read_store(store)
    assert truth is not None and len(case.remains) == 9
    out = json.loads(_run("screen", str(store), "--top", "2", "--format", "json").stdout)
    assert set(out["candidates"]) == {r.id for r in case.remains}


def test_screen__bad_output_suffix_is_one_line_error(small: Path, tmp_path: Path) -> None:
    p = run("screen", small, "-o", tmp_path / "x.txt")
    assert p.returncode == 2
    assert "parquet" in p.stderr and "Traceback" not in p.stderr
