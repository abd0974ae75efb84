"""benchmarks/bench_national.py: its sizes, the cut of the simulated case (database, exchange,
held-back references), the readers' URLs, and (slow) the quick run end to end through a served
instance: every step answered, nothing refused (no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("opendvi_bench_national", REPO / "benchmarks" / "bench_national.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look the module up there
    spec.loader.exec_module(module)
    return module


def test_sizes__national_quick_and_parsed() -> None:
    b = _bench()
    assert b.Sizes.national() == b.Sizes(30_000, 50_000, 6_000, 100)
    assert b.Sizes.parse("5000x8000") == b.Sizes(5000, 8000, 1000, 100)
    assert b.Sizes.parse("1_000x2,000x30x4") == b.Sizes(1000, 2000, 30, 4)
    with pytest.raises(ValueError, match="REMAINSxFAMILIES"):
        b.Sizes.parse("1000")


def test_plan__cuts_exchange_and_references(tmp_path: Path) -> None:
    b = _bench()
    out = tmp_path / "case.json"
    subprocess.run([sys.executable, "-m", "opendvi.cli.main", "simulate", "--families", "60", "--remains", "30",
                    "--seed", "7", "-o", str(out)], check=True, stdout=subprocess.DEVNULL)
    case = json.loads(out.read_text())
    sizes = b.Sizes(20, 60, len(case["remains"]) - 20, 5)
    p = b.plan(case, sizes)
    assert [r["id"] for r in p.remains + p.exchange] == [r["id"] for r in case["remains"]]
    assert len(p.remains) == 20 and len(p.families) == 60 and len(p.full_families) == 5
    by_id = {f["id"]: f for f in p.families}
    for full in p.full_families:
        typed_full = [m["id"] for m in full["members"] if m.get("genotypes")]
        typed_cut = [m["id"] for m in by_id[full["id"]]["members"] if m.get("genotypes")]
        assert typed_cut == typed_full[:-1] and len(typed_cut) >= 1  # one reference held back, one kept at least
        # the pedigree itself is the same: the later import only adds the reference
        assert [(m["id"], m["father"], m["mother"], m["sex"]) for m in full["members"]] == \
            [(m["id"], m["father"], m["mother"], m["sex"]) for m in by_id[full["id"]]["members"]]
    doc = p.document(p.remains, [])
    assert doc["format"] == case["format"] and doc["markers"] == case["markers"] and doc["families"] == []
    assert [len(c) for c in b.chunks(list(range(25_001)))] == [10_000, 10_000, 5_001]
    with pytest.raises(ValueError, match="two typed relatives"):
        b.plan(case, b.Sizes(20, 60, 10, 10_000))


def test_reader_paths__barcodes_quoted() -> None:
    paths = _bench().reader_paths(["A #1/2", "B"], ["F 1"])
    assert "/remains/A%20%231%2F2" in paths and "/api/remains/A%20%231%2F2/candidates" in paths
    assert "/families/F%201" in paths


@pytest.mark.slow
def test_quick_run__every_step_through_the_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    b = _bench()
    monkeypatch.setattr(b, "ARTIFACTS", tmp_path)
    monkeypatch.delenv("OPENDVI_BENCH_NATIONAL", raising=False)
    rows = b.run(quick=True, backends=("sqlite",))
    steps = {(r["backend"], r["step"], r["metric"]) for r in rows}
    for step, metric in (("import", "families"), ("import", "remains"), ("full_run", "run"), ("readers", "p99"),
                         ("exchange", "import + run"), ("references", "import + run")):
        assert ("sqlite", step, metric) in steps, (step, metric)
    assert next(r for r in rows if r["metric"] == "errors")["value"] == 0
    assert {r["step"] for r in rows if r["backend"] == "cli"} == {"full", "exchange", "references"}
    pages = [r for r in rows if r["step"] == "page"]
    assert pages and all(r["metric"] == "skipped" or "HTTP 200" in r["note"] for r in pages)
