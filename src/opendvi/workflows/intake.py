"""Cases in: a case file of either kind (dvi-case/1 JSON or a compact ``.npz`` store), and simulated
national cases written to a file (``opendvi simulate``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from opendvi.core.case import Case
from opendvi.io.case_json import read_case, write_case
from opendvi.io.npz_store import read_store, write_store
from opendvi.screening import ScreeningError

__all__ = ["ScreeningError", "Simulated", "read_case_file", "simulate_to_file"]

LINEAGE_SYSTEMS = ("Y", "mt")


def read_case_file(path: Path) -> Case:
    """A dvi-case/1 JSON file, or a ``.npz`` store written by ``opendvi simulate``."""
    if path.suffix.lower() == ".npz":
        return read_store(path)[0]
    return read_case(path)


@dataclass(frozen=True)
class Simulated:
    """A simulated case as written: the case, its file, and the truth's file (beside a JSON case;
    None for a store, which holds it inside)."""

    case: Case
    path: Path
    truth_path: Path | None


def simulate_to_file(*, families: int, remains: int, seed: int, output: Path, lineage: str = "") -> Simulated:
    """Simulate a national case (:func:`opendvi.screening.simulate_case`) and write it to ``output``
    (``.npz``: a store with its truth inside; otherwise dvi-case/1 JSON and ``CASE.truth.json``).
    ``lineage``: "Y", "mt" or "Y,mt" (JSON cases only)."""
    from opendvi.screening import simulate_case

    systems = tuple(x.strip() for x in lineage.split(",") if x.strip())
    bad = [x for x in systems if x not in LINEAGE_SYSTEMS]
    if bad:
        raise ScreeningError(f"--lineage: the systems are Y and mt, found {bad[0]!r}")
    store = output.suffix.lower() == ".npz"
    if systems and store:
        raise ScreeningError("--lineage: a store (.npz) holds no lineage data; write CASE.json")
    case, truth = simulate_case(families=families, remains=remains, seed=seed, lineage=systems)
    if store:
        write_store(case, output, truth=truth)
        return Simulated(case, output, None)
    write_case(case, output)
    tpath = output.with_name(output.stem + ".truth.json")
    tpath.write_text(json.dumps({"missing": truth.missing, "kind": truth.kind}, indent=1) + "\n")
    return Simulated(case, output, tpath)
