"""Imports parsed and checked in the import process (service/offload.py): the same answers, refusals
(file, line, field) and audit entries as in the request's thread, and nothing written on a refusal."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opendvi.data import demo_case_path
from opendvi.service import offload
from opendvi.store.models import AuditEntry, Import, Remains
from tests.servicekit import assert_error_shape, bearer, family_files, make_app, migrated_engine


def _case(n: int, prefix: str) -> dict[str, Any]:
    case = json.loads(Path(demo_case_path()).read_text())
    template = case["remains"]
    case["remains"] = [dict(template[i % len(template)], id=f"{prefix}-{i}") for i in range(n)]
    case["families"] = []
    return case


def _counts(app: Any) -> tuple[int, int, int]:
    with app.state.sessionmaker() as db:
        return (db.scalar(select(func.count()).select_from(Remains)) or 0,
                db.scalar(select(func.count()).select_from(Import)) or 0,
                db.scalar(select(func.count()).select_from(AuditEntry)) or 0)


@pytest.fixture(params=["process", "thread"])
def world(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The service with its lifespan: uploads parsed in the import process, or (``0``) in the request's thread."""
    monkeypatch.setenv(offload.PROCESSES_ENV, "1" if request.param == "process" else "0")
    with migrated_engine("sqlite", tmp_path) as engine:
        app = make_app(engine)
        with TestClient(app) as client:
            h = bearer(client, "lab")
            assert client.post("/api/operations", json={"code": "OFF", "name": "offload"},
                               headers=bearer(client, "admin")).status_code == 201
            yield {"app": app, "client": client, "h": h, "mode": request.param}
            if request.param == "process":  # the uploads did go to the child
                assert offload._POOLS and offload._POOLS[-1]._executor is not None
            else:
                assert not offload._POOLS
    assert not offload._POOLS  # closed with the lifespan


def test_json_import_is_written_with_the_hash_of_the_body(world: dict[str, Any]) -> None:
    client, app = world["client"], world["app"]
    body = json.dumps(_case(5, "OK")).encode()
    r = client.post("/api/operations/OFF/imports?filename=five.json", content=body,
                    headers={**world["h"], "content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["remains_new"] == 5
    with app.state.sessionmaker() as db:
        imp = db.execute(select(Import).order_by(Import.id.desc())).scalars().first()
        assert imp is not None and imp.filename == "five.json"
        assert imp.sha256 == hashlib.sha256(body).hexdigest()
        entry = db.execute(select(AuditEntry).where(AuditEntry.action == "import.case")
                           .order_by(AuditEntry.id.desc())).scalars().first()
        assert entry is not None
        details = json.loads(entry.details) if isinstance(entry.details, str) else entry.details
        assert details["sha256"] == imp.sha256 and details["remains_new"] == 5


def test_bad_json_document_is_refused_naming_file_and_field_nothing_written(world: dict[str, Any]) -> None:
    client, app = world["client"], world["app"]
    doc = _case(3, "BAD")
    doc["remains"][1]["genotypes"]["TPOX"] = ["8", "9", "10"]
    before = _counts(app)
    r = client.post("/api/operations/OFF/imports?filename=bad.json", json=doc, headers=world["h"])
    err = assert_error_shape(r, 422)
    assert err["code"] == "import_invalid"
    assert len(err["details"]) == 1
    assert "bad.json" in err["details"][0] and "remains[1] (BAD-1).genotypes.TPOX" in err["details"][0]
    assert "3 alleles" in err["details"][0]
    assert _counts(app) == before


def test_a_body_that_is_no_case_is_refused_naming_file_and_line_nothing_written(world: dict[str, Any]) -> None:
    client, app = world["client"], world["app"]
    before = _counts(app)
    json_h = {**world["h"], "content-type": "application/json"}
    err = assert_error_shape(client.post("/api/operations/OFF/imports?filename=b.json", content=b'{\n "x": }',
                                         headers=json_h), 422)
    assert err["code"] == "import_invalid" and err["details"][0].startswith("b.json:2: invalid JSON")
    err = assert_error_shape(client.post("/api/operations/OFF/imports", content=b"[1, 2]", headers=json_h), 422)
    assert err["details"] == ["upload.json: the top level must be a JSON object"]
    assert _counts(app) == before


def test_bad_json_file_is_refused_naming_file_and_line_nothing_written(world: dict[str, Any]) -> None:
    client, app = world["client"], world["app"]
    text = json.dumps(_case(2, "SYN"), indent=1).replace('"sex"', '"sex" "x"', 1)
    before = _counts(app)
    r = client.post("/api/operations/OFF/imports/file", files={"file": ("broken.json", text.encode(),
                                                                          "application/json")}, headers=world["h"])
    err = assert_error_shape(r, 422)
    assert err["code"] == "import_invalid"
    line = text[:text.index('"sex" "x"')].count("\n") + 1
    assert err["details"][0].startswith(f"broken.json:{line}: invalid JSON"), err["details"]
    assert _counts(app) == before


def test_bad_profile_table_is_refused_naming_file_line_and_field_nothing_written(world: dict[str, Any]) -> None:
    client, app = world["client"], world["app"]
    assert client.post("/api/operations/OFF/imports", json=_case(1, "M"), headers=world["h"]).status_code == 201
    table = "sample,D3S1358,D3S1358,TH01,TH01\nP-1,14,15,6,9.3\nP-2,14,abc,7,9.3\n"
    before = _counts(app)
    r = client.post("/api/operations/OFF/imports/file", files={"file": ("profiles.csv", table.encode(), "text/csv")},
                    headers=world["h"])
    err = assert_error_shape(r, 422)
    assert err["code"] == "import_invalid"
    assert err["details"] == ["profiles.csv:3: D3S1358: allele 'abc' is not an STR allele"]
    assert _counts(app) == before


def test_profile_file_and_families_template_are_imported(world: dict[str, Any]) -> None:
    client = world["client"]
    assert client.post("/api/operations/OFF/imports", json=_case(1, "M"), headers=world["h"]).status_code == 201
    table = "sample,D3S1358,D3S1358,TH01,TH01\nP-1,14,15,6,9.3\nP-2,14,16,7,9.3\n"
    r = client.post("/api/operations/OFF/imports/file", files={"file": ("profiles.csv", table.encode(), "text/csv")},
                    headers=world["h"])
    assert r.status_code == 201, r.text
    assert r.json()["remains_new"] == 2
    fam, prof = family_files("-OFF")
    r = client.post("/api/operations/OFF/imports/families", headers=world["h"],
                    files={"families": ("families.csv", fam, "text/csv"),
                           "profiles": ("profiles.csv", prof, "text/csv")})
    assert r.status_code == 201, r.text
    assert (r.json()["families_new"], r.json()["donors_new"], r.json()["missing_persons_new"]) == (1, 2, 1)


def test_the_pool_runs_in_the_requests_language_and_raises_the_same_refusal() -> None:
    from opendvi import i18n
    from opendvi.store.errors import ImportValidationError

    with offload.import_pool(processes=1, warm=False) as pool:
        assert pool is not None
        with i18n.use_locale("uk"):
            assert pool.run(i18n.get_locale) == "uk"
            with pytest.raises(ImportValidationError) as there:
                pool.run(offload.case_from_upload, b"[" * 100, None, "deep.json")
        with pytest.raises(ImportValidationError) as here:
            offload.case_from_upload(b"[" * 100, None, "deep.json")
        assert there.value.problems == here.value.problems and str(there.value) == str(here.value)
        assert "deep.json" in there.value.problems[0]
    assert pool._executor is None


def test_a_child_that_dies_fails_that_import_and_is_replaced() -> None:
    import os
    from concurrent.futures.process import BrokenProcessPool

    with offload.import_pool(processes=1, warm=False) as pool:
        assert pool is not None
        first = pool.run(os.getpid)
        assert first != os.getpid()
        with pytest.raises(BrokenProcessPool):  # killed mid-parse (memory, a hostile file): a 500
            pool.run(os._exit, 3)
        second = pool.run(os.getpid)  # a fresh child for the next upload
        assert second not in (first, os.getpid()) and not pool.disabled


def test_families_workbook_without_a_families_sheet__the_problem_itself() -> None:
    """A workbook holding only profiles is refused naming what is missing (it was re-wrapped as
    "import refused ... (1 problem(s))", the problem lost)."""
    import io

    import openpyxl

    from opendvi.service import offload
    from opendvi.store.errors import ImportValidationError

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "profiles"
    ws.append(["sample", "D3S1358"])
    ws.append(["S1", "15,16"])
    buf = io.BytesIO()
    wb.save(buf)
    with pytest.raises(ImportValidationError) as err:
        offload.families_from_upload(buf.getvalue(), "fam.xlsx", None, None, [], 0.0, "x")
    assert err.value.problems == ["fam.xlsx: no families sheet (columns family, id, father, mother, sex, missing, "
                                  "sample)"]
