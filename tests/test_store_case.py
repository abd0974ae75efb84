"""The stored case for matching (``repositories.build_case``), built directly as a core Case: the same
Case as the old path, which wrote the stored rows as a ``dvi-case/1`` document and parsed it; and the
markers of an imported frequency table, checked as a case file's (no fake case)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from opendvi.core.case import Case
from opendvi.data import demo_case_path
from opendvi.dvi.simulate import SHAPES, simulate_case
from opendvi.io.case_json import case_from_dict, read_case
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.errors import ImportValidationError
from opendvi.store.models import Operation, Remains
from tests.servicekit import BACKENDS, migrated_engine


def _through_json(db: Session, op: Operation) -> Case:
    """The old path: the stored case as a dvi-case/1 document, parsed by the case reader."""
    fdb = op.frequency_database
    assert fdb is not None
    names = {m["name"] for m in fdb.markers}
    remains: list[dict[str, Any]] = []
    for r in db.execute(select(Remains).order_by(Remains.barcode)).scalars():
        p = repo.current_profile(db, remains=r)
        gts = {m: g for m, g in p.genotypes.items() if m in names} if p is not None else {}
        if p is not None and gts:
            remains.append({"id": r.barcode, "sex": r.sex, "genotypes": gts, "dropout": p.dropout})
    families: list[dict[str, Any]] = []
    for fam in repo.list_families(db):
        missing = {mp.member_id for mp in repo.missing_of(db, family=fam)}
        donors = {d.member_id: d for d in repo.donors_of(db, family=fam) if d.profile_usable}
        members: list[dict[str, Any]] = []
        for m in fam.members:
            row: dict[str, Any] = {"id": m.code, "father": m.father, "mother": m.mother, "sex": m.sex,
                                   "missing": m.id in missing}
            p = repo.current_profile(db, donor=donors[m.id]) if m.id in donors else None
            if p is not None:
                row["genotypes"] = {k: g for k, g in p.genotypes.items() if k in names}
                if p.dropout:
                    row["dropout"] = p.dropout
            members.append(row)
        if missing:
            families.append({"id": fam.code, "members": members})
    return case_from_dict({"format": "dvi-case/1", "name": op.code, "theta": fdb.theta, "markers": fdb.markers,
                           "remains": remains, "families": families})


def _demo() -> Case:
    return read_case(demo_case_path())


def _simulated() -> Case:
    """Simulated families, with a drop-out rate on a remains and on a reference."""
    case = simulate_case(SHAPES, n_unrelated=3, seed=11, markers=_demo().markers)[0]
    f1 = case.families[0]
    return replace(case, remains=(replace(case.remains[0], dropout=0.2), *case.remains[1:]),
                   families=(replace(f1, dropout={f1.references[0]: 0.1}), *case.families[1:]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [_demo, _simulated], ids=["demo", "simulated"])
def test_build_case__the_same_case_as_through_the_json_reader(backend: str, make: Any, tmp_path: Path) -> None:
    case = make()
    with migrated_engine(backend, tmp_path) as engine:
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            op = repo.create_operation(db, code="EX", name="exchange")
            repo.import_case(db, case=case, operation=op, filename="case.json", sha256="0" * 64, by=None)
        with factory() as db:
            op = repo.get_operation(db, code="EX")
            stored = repo.build_case(db, operation=op)
            old = _through_json(db, op)
    assert len(stored.case.remains) == len(case.remains) and len(stored.case.families) == len(case.families)
    assert sum(len(f.genotypes) for f in stored.case.families) > 0
    assert make is _demo or (stored.case.families[0].dropout and stored.case.remains[0].dropout)
    assert stored.case == old
    assert stored.case.markers == case.markers


def test_import_frequencies__markers_checked_as_a_case_file_checks_them(tmp_path: Path) -> None:
    """A frequency table the case format refuses (an allele listed twice) is refused whole, with the case
    reader's message, and nothing is written."""
    with migrated_engine("sqlite", tmp_path) as engine:
        factory = store_db.session_factory(engine)
        with store_db.transaction(factory) as db:
            repo.create_operation(db, code="EX", name="exchange")
        with factory() as db, pytest.raises(ImportValidationError) as err:
            repo.import_frequencies(db, tables={"A": ("A", ("1", "1"), (0.5, 0.5))},
                                    operation=repo.get_operation(db, code="EX"), filename="f.csv",
                                    sha256="0" * 64, file_format="frequencies", population=None, by=None)
        assert err.value.problems == ["<input>: markers[0] (A): marker A: allele '1' listed twice"]
        with factory() as db:
            assert repo.get_operation(db, code="EX").frequency_database is None
