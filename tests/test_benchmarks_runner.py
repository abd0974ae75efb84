"""benchmarks/run.py: finds every bench_*.py with run(quick) and writes
<name>.md and <name>.json with the machine and the date (no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("opendvi_bench_runner", REPO / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run__writes_markdown_and_json(tmp_path: Path) -> None:
    (tmp_path / "bench_fake.py").write_text(
        "def run(quick):\n"
        "    return [{'case': 'a|b', 'n': 3, 'ok': True, 'quick': quick}, {'case': 'c', 'extra': 1.5}]\n"
    )
    (tmp_path / "bench_norun.py").write_text("X = 1\n")
    (tmp_path / "helper.py").write_text("raise RuntimeError('not a benchmark')\n")
    out = tmp_path / "results"
    assert _runner().main(["--quick", "--out", str(out)], directory=tmp_path) == 0
    assert sorted(p.name for p in out.iterdir()) == ["fake.json", "fake.md"]
    data = json.loads((out / "fake.json").read_text())
    assert data["benchmark"] == "fake" and data["quick"] is True
    assert data["rows"][0] == {"case": "a|b", "n": 3, "ok": True, "quick": True}
    assert {"cpu_count", "python", "numpy", "date"} <= set(data["machine"])
    md = (out / "fake.md").read_text()
    assert "| case | n | ok | quick | extra |" in md
    assert "| a\\|b | 3 | yes | yes |  |" in md
    assert "| c |  |  |  | 1.5 |" in md


def test_run__unknown_name_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bench_fake.py").write_text("def run(quick):\n    return []\n")
    with pytest.raises(SystemExit):
        _runner().main(["nope"], directory=tmp_path)


def test_run__failing_benchmark_sets_status(tmp_path: Path) -> None:
    (tmp_path / "bench_bad.py").write_text("def run(quick):\n    raise ValueError('boom')\n")
    (tmp_path / "bench_good.py").write_text("def run(quick):\n    return [{'x': 1}]\n")
    out = tmp_path / "r"
    assert _runner().main(["--out", str(out)], directory=tmp_path) == 1
    assert (out / "good.md").exists() and not (out / "bad.md").exists()


def test_bench_likelihood__has_run_and_the_brief_cases() -> None:
    spec = importlib.util.spec_from_file_location(
        "opendvi_bench_likelihood", REPO / "benchmarks" / "bench_likelihood.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sizes = {(len(build()), build().has_loops()) for _, build, _ in module.PEDIGREES}
    assert {(3, False), (10, False), (10, True), (30, False), (30, True)} <= sizes
