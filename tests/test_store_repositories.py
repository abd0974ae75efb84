"""The repositories package: its public names, and the case import's checks without a database."""

from __future__ import annotations

import ast
from pathlib import Path

from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.store import repositories as repo
from opendvi.store.repositories import KnownRecords, case_import_problems

ROOT = Path(__file__).resolve().parents[1]


def _python_files() -> list[Path]:
    return [p for d in ("src", "tests", "benchmarks", "scripts") for p in (ROOT / d).rglob("*.py")
            if "repositories" not in p.parts]


def test_all__names_every_public_name_once_and_each_exists() -> None:
    assert len(set(repo.__all__)) == len(repo.__all__)
    assert [name for name in repo.__all__ if not hasattr(repo, name)] == []


def _names_used(path: Path) -> set[str]:
    """The repositories' names a file uses: ``repo.X`` (with ``repositories as repo``) and
    ``from opendvi.store.repositories import X``."""
    text = path.read_text(encoding="utf-8")
    if "repositories" not in text:
        return set()
    tree = ast.parse(text)
    aliases = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               and node.module == "opendvi.store" for a in node.names if a.name == "repositories"}
    used = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and node.module == "opendvi.store.repositories" for a in node.names}
    return used | {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                   and isinstance(node.value, ast.Name) and node.value.id in aliases}


def test_all__covers_every_name_the_project_uses() -> None:
    used = set().union(*(_names_used(p) for p in _python_files()))
    assert {"get_operation", "DecisionPolicy", "import_case"} <= used  # the scan finds the uses
    assert sorted(used - set(repo.__all__) - {"__all__"}) == []


def _known(**changes: object) -> KnownRecords:
    values: dict[str, object] = {"operation_id": 2, "operation_code": "EX-2", "markers": None, "remains": {},
                                 "pedigrees": {}, "missing_persons": {}, "donors": {}, "remains_among_donors": []}
    values.update(changes)
    return KnownRecords(**values)  # type: ignore[arg-type]


def test_case_import_problems__none_for_a_new_case() -> None:
    case = read_case(demo_case_path())
    assert case_import_problems(case, _known(), donor_barcodes={}) == []
    pedigree = [(i.id, i.father, i.mother, i.sex) for i in case.families[0].pedigree.individuals]
    same = _known(remains={"V1": (2, "EX-2")}, pedigrees={"F1": pedigree[::-1]}, missing_persons={"M1": "F1"},
                  donors={"F1-R1": "F1"}, markers=frozenset(m.name for m in case.markers))
    assert case_import_problems(case, same, donor_barcodes={}) == []


def test_case_import_problems__lists_every_problem_in_order() -> None:
    case = read_case(demo_case_path())
    known = _known(remains={"V1": (1, "EX-1"), "V2": (2, "EX-2"), "V3": (1, "EX-1")}, pedigrees={"F2": []},
                   missing_persons={"M1": "F9"}, donors={"F1-R1": "F1", "R9": "F9"},
                   remains_among_donors=["R9"], markers=frozenset({"TPOX"}))
    problems = case_import_problems(case, known, donor_barcodes={("F2", "F2-R1"): "R9", ("F3", "F3-R1"): "V8",
                                                                 ("F4", "F4-R1"): "M1"})
    names = sorted(m.name for m in case.markers)
    assert problems == [
        "remains V1: barcode already registered in operation EX-1",
        "remains V3: barcode already registered in operation EX-1",
        "family F2: already registered with a different pedigree",
        "missing person M1: code already used in family F9",
        "reference sample R9: barcode already used in family F9",
        "M1: used in families F1 and F4",
        "V8: used both as a remains barcode and as a family member",
        "reference sample R9: barcode already registered as a remains",
        f"operation EX-2 uses markers ['TPOX']; this file has {names}",
    ]
