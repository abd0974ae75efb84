"""A matching run's loading and storing (issue 9), on SQLite and PostgreSQL. A stored genotype already
normalised is taken as it is by ``make_genotype``, anything else goes its general way (the same genotypes, the same
errors). Candidates go in through
:func:`opendvi.store.repositories.bulk.insert_rows` (``COPY`` on PostgreSQL, the driver's ``executemany``
on SQLite) with the values an ORM read gives back; an incremental run stores its carried rows with the
JSON they were stored with (decoded once, never serialised again), and a row whose per-marker LRs are
not that very carried object is serialised afresh.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Text, cast, select

from opendvi.core import profiles
from opendvi.core.profiles import ProfileError, make_genotype
from opendvi.io.case_json import case_to_dict
from opendvi.screening import simulate_case
from opendvi.store import db as store_db
from opendvi.store import repositories as repo
from opendvi.store.models import Candidate, FrequencyDatabase, MatchingRun, Operation
from opendvi.store.repositories.run_inputs import carried_per_marker
from tests.servicekit import BACKENDS, bearer, make_app, match, migrated_engine


@pytest.mark.parametrize("alleles", [
    ["12", "13"], ["12"], ["9.3", "9.3"], [" 12", "13"], ["12", "13 "], ["12", ""], [""], [], None, [12, "13"],
    [12.0], ["12", "13", "14"], "12", ("12", "13"), [True], ["X"], [" "], ["12", None],
])
def test_make_genotype__the_stored_form_taken_as_it_is_equals_the_general_path(alleles: Any) -> None:
    """``make_genotype`` takes a list already in normal form as it is; every input gives what the
    general path (each allele checked and converted) gives, errors included."""
    try:
        want: Any = profiles._normalise(alleles, who="V1", marker="M")
    except ProfileError as exc:
        with pytest.raises(ProfileError, match=str(exc).split(":")[0]):
            make_genotype(alleles, who="V1", marker="M")
        return
    got = make_genotype(alleles, who="V1", marker="M")
    assert got == want and type(got) is type(want)


@pytest.fixture(params=BACKENDS)
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with migrated_engine(request.param, tmp_path) as engine:
        app = make_app(engine, demo=False)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("lab", "dvi")}
        case, _truth = simulate_case(families=8, remains=12, seed=4)
        doc = case_to_dict(case)
        for m in doc["markers"]:
            m.pop("mutation", None)
        r = client.post("/api/operations", json={"code": "A", "name": "A"}, headers=h["lab"])
        assert r.status_code == 201, r.text
        r = client.post("/api/operations/A/imports", json=copy.deepcopy(doc), headers=h["lab"])
        assert r.status_code == 201, r.text
        yield {"app": app, "client": client, "h": h, "engine": engine}


def _stored(world: dict[str, Any], run_id: int) -> dict[tuple[int, int], tuple[Any, ...]]:
    """(remains id, missing person id) -> the row's values and its per-marker JSON as stored."""
    with world["engine"].connect() as conn:
        return {(r.remains_id, r.missing_person_id): tuple(r) for r in conn.execute(
            select(Candidate.remains_id, Candidate.missing_person_id, Candidate.remains_profile_id,
                   Candidate.log10_lr, Candidate.posterior, Candidate.exclusions, Candidate.n_markers,
                   Candidate.rank, Candidate.log10_glr, Candidate.glr_bound, Candidate.systems,
                   Candidate.per_marker, cast(Candidate.per_marker, Text).label("raw"))
            .where(Candidate.run_id == run_id))}


def test_an_incremental_run_stores_the_carried_rows_as_they_were_stored(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    run1 = match(client, world["app"], h["dvi"], "A", top_k=3, lr_threshold=1e4)
    run2 = match(client, world["app"], h["dvi"], "A", top_k=3, lr_threshold=1e4)
    assert run2["recomputed"]["mode"] == "incremental"
    assert run2["recomputed"]["pairs_carried"] == run1["counts"]["candidates"] > 0
    first, second = _stored(world, run1["id"]), _stored(world, run2["id"])
    assert first.keys() == second.keys()
    for key, row in first.items():
        assert second[key] == row  # every value, the JSON text too
        assert json.loads(row[-1]) == row[-2]


def test_insert_candidates__carried_json_only_for_the_very_carried_object(world: dict[str, Any]) -> None:
    client, h = world["client"], world["h"]
    run1 = match(client, world["app"], h["dvi"], "A", top_k=3, lr_threshold=1e4)
    factory = world["app"].state.sessionmaker
    with factory() as db:
        run = db.get(MatchingRun, run1["id"])
        assert run is not None
        op, fdb = db.get(Operation, run.operation_id), db.get(FrequencyDatabase, run.frequency_database_id)
        assert op is not None and fdb is not None
        stored = repo.build_case(db, operation=op, frequency_database=fdb)
        carried = carried_per_marker(db, run_id=run1["id"])
        db.rollback()
    assert carried and all(json.loads(raw) == pm for pm, raw in carried.values())
    # the JSON "as stored" made recognisable: the same value, written otherwise
    known = {k: (pm, json.dumps(pm, indent=1)) for k, (pm, _raw) in carried.items()}
    (k1, (pm1, _r1)), (k2, (pm2, _r2)) = list(known.items())[:2]
    rows = [repo.CandidateRow(k1[0], k1[1], 1.5, 0.5, 0, 20, 1, dict(pm1)),  # a copy of the carried row
            repo.CandidateRow(k2[0], k2[1], 2.5, 0.25, 1, 20, 1, copy.deepcopy(pm2))]  # equal, not carried
    queued = client.post("/api/operations/A/matching-runs", json={"top_k": 3}, headers=h["dvi"])
    assert queued.status_code == 202, queued.text
    with store_db.transaction(factory) as db:
        claimed = repo.claim_run(db, worker="w-test", lease=timedelta(seconds=60))
        assert claimed is not None
        assert repo.insert_candidates(db, run_id=claimed.id, stored=stored, candidates=rows, serialised=known) == 2
        run_id = claimed.id
    got = _stored(world, run_id)
    by_key = {(stored.remains[r][0], stored.missing[m]): (r, m) for r, m in (k1, k2)}
    for key, (_rid, _mid, pid, lr, post, excl, n, rank, glr, bound, systems, pm, raw) in got.items():
        barcode_mp = by_key[key]
        assert pid == stored.remains[barcode_mp[0]][1] and glr is None and bound is None and systems is None
        if barcode_mp == k1:
            assert raw == known[k1][1] and pm == pm1 and (lr, post, excl, n, rank) == (1.5, 0.5, 0, 20, 1)
        else:
            assert raw == json.dumps(pm2) and pm == pm2 and (lr, post, excl, n, rank) == (2.5, 0.25, 1, 20, 1)
