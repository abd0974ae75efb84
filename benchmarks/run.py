"""Run the benchmarks and write their results tables.

Every ``benchmarks/bench_*.py`` module with a ``run(quick: bool) -> list[dict]``
function is run; for each, ``benchmarks/results/<name>.md`` (a markdown table,
with the machine and the date above it) and ``<name>.json`` (the same rows
and the machine) are written. ``<name>`` is the module name without
``bench_``.

    python benchmarks/run.py                 # every benchmark, full repeats
    python benchmarks/run.py --quick         # fewer repeats and smaller cases
    python benchmarks/run.py likelihood      # only bench_likelihood.py
    python benchmarks/run.py --out /tmp/res  # elsewhere
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import numpy as np

    try:
        from opendvi import __version__ as opendvi_version
    except ImportError:  # pragma: no cover
        opendvi_version = "?"
    return {
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opendvi": opendvi_version,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def discover(directory: Path = HERE) -> dict[str, Path]:
    """name -> path of every ``bench_<name>.py`` in ``directory``."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(directory.glob("bench_*.py"))}


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"opendvi_bench_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses of the module look their module up there
    spec.loader.exec_module(module)
    return module


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    return str(value).replace("|", "\\|")


def markdown(name: str, rows: Sequence[dict[str, Any]], info: dict[str, Any], *, quick: bool, seconds: float) -> str:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    lines = [
        f"# Benchmark: {name}",
        "",
        f"Run {info['date']} with `python benchmarks/run.py{' --quick' if quick else ''}` ({seconds:.1f} s in all).",
        "",
        f"Machine: {info['cpu_count']} CPUs ({info['cpu']}), {info['platform']}; "
        f"Python {info['python']}, numpy {info['numpy']}, opendvi {info['opendvi']}.",
        "",
        "See benchmarks/README.md for what each column means.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None, *, directory: Path = HERE) -> int:
    available = discover(directory)
    parser = argparse.ArgumentParser(description="Run opendvi's benchmarks and write results tables.")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available)})")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller cases (a smoke run)")
    parser.add_argument("--out", type=Path, default=directory / "results", help="directory for the results files")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
    chosen = args.names or list(available)
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for name in chosen:
        module = load(available[name])
        run = getattr(module, "run", None)
        if not callable(run):
            print(f"skip {name}: no run(quick) function", file=sys.stderr)
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        info = machine()
        t0 = time.perf_counter()
        try:
            rows = list(run(quick=args.quick))
        except Exception as exc:  # one broken benchmark must not hide the others
            print(f"benchmark {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = 1
            continue
        seconds = time.perf_counter() - t0
        md = markdown(name, rows, info, quick=args.quick, seconds=seconds)
        (args.out / f"{name}.md").write_text(md, encoding="utf-8")
        payload = {"benchmark": name, "quick": args.quick, "seconds": round(seconds, 2), "machine": info, "rows": rows}
        (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(md)
    return status


if __name__ == "__main__":
    sys.exit(main())
