"""The JSON API: imports all or nothing, conflicts, CSRF, error shapes, settings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.service.settings import Settings, SettingsError
from tests.servicekit import (
    ADMIN_PASSWORD,
    BACKENDS,
    assert_error_shape,
    bearer,
    make_app,
    match,
    migrated_engine,
    password_of,
)


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with migrated_engine(request.param, tmp_path) as engine:
        yield TestClient(make_app(engine, demo=False))


def _demo() -> dict[str, Any]:
    return json.loads(Path(demo_case_path()).read_text())


def test_import_then_match_then_four_eyes(client: TestClient) -> None:
    lab, dvi, rev, admin = (bearer(client, u) for u in ("lab", "dvi", "reviewer", "admin"))
    assert client.post("/api/operations", json={"code": "EX-7", "name": "exchange 7", "expected_count": 8},
                       headers=lab).status_code == 201
    r = client.post("/api/operations/EX-7/imports?filename=demo.json", json=_demo(), headers=lab)
    assert r.status_code == 201, r.text
    assert r.json()["remains_new"] == 8
    run = match(client, client.app, dvi, "EX-7", top_k=3)
    assert run["parameters"]["top_k"] == 3 and len(run["frequency_database_sha256"]) == 64
    assert run["software_version"].startswith("opendvi ")
    assert set(run["mutation_models"]) and run["finished_at"]
    cands = client.get("/api/remains/V1/candidates", headers=dvi).json()
    assert len(cands) <= 3 and cands[0]["missing_person"] == "M1" and cands[0]["log10_lr"] > 10
    assert cands[0]["posterior"] > 0.99 and cands[0]["exclusions"] == 0
    detail = client.get(f"/api/candidates/{cands[0]['id']}", headers=dvi).json()
    assert len(detail["per_marker"]) == 23
    total = sum(m["log10_lr"] for m in detail["per_marker"])
    assert total == pytest.approx(cands[0]["log10_lr"], abs=1e-9)
    ident = client.post("/api/identifications", json={"candidate_id": cands[0]["id"], "note": "LR 1e23"},
                        headers=dvi).json()
    # a second proposal for the same remains: 409
    err = assert_error_shape(client.post("/api/identifications", json={"candidate_id": cands[1]["id"]},
                                         headers=dvi), 409)
    assert "already has a proposed identification" in err["message"]
    # reject needs a reason
    assert_error_shape(client.post(f"/api/identifications/{ident['id']}/reject", json={}, headers=rev), 409)
    ok = client.post(f"/api/identifications/{ident['id']}/confirm", json={"version": ident["version"]}, headers=rev)
    assert ok.status_code == 200 and ok.json()["state"] == "confirmed" and ok.json()["decided_by"] == "reviewer"
    # a stale version, or a second confirmation: 409 with a clear message
    err = assert_error_shape(client.post(f"/api/identifications/{ident['id']}/confirm",
                                         json={"version": ident["version"]}, headers=bearer(client, "reviewer2")),
                             409)
    assert "changed by someone else" in err["message"]
    # a DVI analyst cannot withdraw a confirmed identification; a reviewer can
    assert_error_shape(client.post(f"/api/identifications/{ident['id']}/withdraw", json={"reason": "x"},
                                   headers=dvi), 403)
    dash = client.get("/api/operations/EX-7", headers=admin).json()["dashboard"]
    assert dash == {"expected": 8, "received": 8, "typed": 8, "matched": dash["matched"], "proposed": 0,
                    "confirmed": 1, "runs": 1}
    actions = [e["action"] for e in client.get("/api/audit", headers=admin).json()]
    for a in ("identification.confirm", "identification.propose", "matching.run", "import.case",
              "operation.create"):
        assert a in actions
    assert client.get("/api/audit/verify", headers=admin).json()["ok"] is True


def test_import__all_or_nothing_with_every_error_shown(client: TestClient) -> None:
    lab, admin = bearer(client, "lab"), bearer(client, "admin")
    client.post("/api/operations", json={"code": "A", "name": "a"}, headers=lab)
    client.post("/api/operations", json={"code": "B", "name": "b"}, headers=lab)
    before = len(client.get("/api/audit?limit=5000", headers=admin).json())
    bad = _demo()
    bad["remains"][0]["genotypes"]["D3S1358"] = ["15", "16", "17"]
    r = client.post("/api/operations/A/imports", json=bad, headers=lab)
    err = assert_error_shape(r, 422)
    assert err["code"] == "import_invalid" and err["details"] and "D3S1358" in err["details"][0]
    assert client.get("/api/remains", headers=lab).json() == []
    assert_error_shape(client.post("/api/operations/A/imports", json={"format": "other"}, headers=lab), 422)
    assert client.post("/api/operations/A/imports", json=_demo(), headers=lab).status_code == 201
    # the same remains into another operation: refused whole, each problem listed
    err = assert_error_shape(client.post("/api/operations/B/imports", json=_demo(), headers=lab), 422)
    assert len(err["details"]) == 8
    assert client.get("/api/remains?operation=B", headers=lab).json() == []
    after = client.get("/api/audit?limit=5000", headers=admin).json()
    assert [e["action"] for e in after[: len(after) - before]].count("import.case") == 1


def test_cookie_session_needs_csrf_for_changes(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "lab", "password": password_of("lab")})
    csrf = r.json()["csrf_token"]
    assert "opendvi_session" in client.cookies
    assert client.get("/api/me").json()["username"] == "lab"
    err = assert_error_shape(client.post("/api/operations", json={"code": "C", "name": "c"}), 403)
    assert err["code"] == "csrf"
    r = client.post("/api/operations", json={"code": "C", "name": "c"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.clear()
    assert_error_shape(client.get("/api/me"), 401)


def test_login_cookie_flags_and_failures(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert_error_shape(client.post("/api/auth/login", json={"username": "admin", "password": "wrong"}), 401)
    assert_error_shape(client.post("/api/auth/login", json={"username": "nobody", "password": "x"}), 401)
    entries = client.get("/api/audit", headers=bearer(client, "admin")).json()
    # failures are counted, not one row each: the next sign-in of the account carries the count,
    # and the unknown name typed is stored nowhere
    assert [e["action"] for e in entries].count("auth.login_failed") == 0
    assert entries[0]["action"] == "auth.login" and entries[0]["details"] == {"failed_attempts": 1}
    assert "nobody" not in str(entries)
    assert r.headers["x-frame-options"] == "DENY" and "cache-control" in r.headers


def test_one_error_shape_everywhere(client: TestClient) -> None:
    h = bearer(client, "admin")
    assert_error_shape(client.get("/api/nowhere", headers=h), 404)
    assert_error_shape(client.get("/api/remains/NOPE", headers=h), 404)
    assert_error_shape(client.get("/api/matching-runs/0", headers=h), 422)
    assert_error_shape(client.post("/api/users", json={"username": "x"}, headers=h), 422)
    assert_error_shape(client.delete("/api/users", headers=h), 405)
    assert_error_shape(client.post("/api/users", content=b"{not json", headers={**h, "content-type":
                                                                                 "application/json"}), 422)
    again = {"username": "admin", "password": "long-enough-pass-1", "role": "reviewer"}
    assert_error_shape(client.post("/api/users", json=again, headers=h), 409)


def test_personal_data_is_written_by_intake_only_and_audited_without_the_name(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = bearer(client, "intake")
        r = client.put("/api/missing-persons/M3/details", json={"full_name": "Petro Testenko",
                                                                "date_of_birth": "1990-02-03"}, headers=h)
        assert r.status_code == 200
        r = client.patch("/api/donors/F3-R1", json={"relationship": "mother", "consent": "identification",
                                                    "full_name": "Maria Testenko"}, headers=h)
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "consent_date"  # consent: dated
        r = client.patch("/api/donors/F3-R1", json={"relationship": "mother", "consent": "identification",
                                                    "consent_date": "2026-03-01", "full_name": "Maria Testenko"},
                         headers=h)
        assert r.status_code == 200, r.text
        fam = client.get("/api/families/F3", headers=h).json()
        assert any(m.get("name") == "Petro Testenko" for m in fam["members"])
        log = json.dumps(client.get("/api/audit?limit=5000", headers=bearer(client, "admin")).json())
        assert "Testenko" not in log and "missing_person.details" in log


def test_settings_refuse_default_secrets_outside_development() -> None:
    Settings(environment="development", admin_password="admin").check()
    with pytest.raises(SettingsError, match="OPENDVI_ADMIN_PASSWORD"):
        Settings(environment="production", admin_password="changeme", secure_cookies=True).check()
    with pytest.raises(SettingsError, match="OPENDVI_ADMIN_PASSWORD"):
        Settings(environment="production", admin_password="short", secure_cookies=True).check()
    with pytest.raises(SettingsError, match="OPENDVI_SECURE_COOKIES"):
        Settings(environment="production", secure_cookies=False).check()
    s = Settings.from_env(environ={"OPENDVI_ENV": "production"})
    assert s.secure_cookies is True
    s.check()
    with pytest.raises(SettingsError):
        Settings(environment="staging").check()


def test_openapi_describes_every_api_route(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    from opendvi.service.routes import api

    paths = {re.sub(r"\{[^}]+\}", "{}", p) for p in spec["paths"]}
    for route in api.router.routes:
        assert re.sub(r"\{[^}]+\}", "{}", getattr(route, "path", "")) in paths


def test_docs_roles_table_is_the_policy() -> None:
    from opendvi.service.policy import PERMISSIONS
    from opendvi.store.models import Role

    text = (Path(__file__).resolve().parents[1] / "docs" / "service.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| permission |"))
    roles = [Role(c.strip()) for c in header.strip("|").split("|")[1:]]
    table = {}
    for line in text.splitlines():
        m = re.match(r"^\| `([a-z.]+)` \|(.*)\|$", line)
        if m and m.group(1) in PERMISSIONS:
            cells = [c.strip() for c in m.group(2).split("|")]
            table[m.group(1)] = frozenset(r for r, c in zip(roles, cells, strict=True) if c == "yes")
    assert table == PERMISSIONS


@pytest.mark.parametrize("fmt", ["profiles-csv", "cmf"])
def test_import_file__laboratory_profiles_into_an_operation(fmt: str, tmp_path: Path) -> None:
    from opendvi.core.case import Sample
    from opendvi.io.case_json import read_case
    from opendvi.io.convert import save_profiles
    from opendvi.io.profiles import ProfileSet, records_from_samples

    case = read_case(demo_case_path())
    samples = [Sample(f"PM-{k}", r.sex, dict(r.genotypes)) for k, r in enumerate(case.remains, start=101)]
    path = tmp_path / ("profiles.csv" if fmt == "profiles-csv" else "profiles.xml")
    save_profiles(ProfileSet(records=records_from_samples(samples)), path, fmt)
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        lab = bearer(client, "lab")
        client.post("/api/operations", json={"code": "EMPTY", "name": "no markers"}, headers=lab)
        files = {"file": (path.name, path.read_bytes(), "application/octet-stream")}
        err = assert_error_shape(client.post("/api/operations/EMPTY/imports/file", files=files, headers=lab), 422)
        assert "no markers yet" in err["details"][0]
        r = client.post("/api/operations/demo/imports/file", files=files, headers=lab,
                        data={"laboratory": "Lab K", "kit": "GlobalFiler"})
        assert r.status_code == 201, r.text
        assert r.json()["remains_new"] == 8
        pm = client.get("/api/remains/PM-101", headers=lab).json()
        assert pm["profile_version"] == 1 and pm["laboratory"] == "Lab K" and pm["profiles"][0]["kit"] == "GlobalFiler"
        r = client.patch("/api/remains/PM-101", json={"bag": "B-17", "sample_type": "femur"}, headers=lab)
        assert r.json()["bag"] == "B-17" and r.json()["laboratory"] == "Lab K"
        # the same file again: nothing new
        assert client.post("/api/operations/demo/imports/file", files=files, headers=lab).json()["remains_new"] == 0
        # the demo case itself through the same endpoint (dvi-case/1 is told by its content)
        demo = {"file": ("case.json", Path(demo_case_path()).read_bytes(), "application/json")}
        assert client.post("/api/operations/demo/imports/file", files=demo, headers=lab).status_code == 201
        # a file that is no profile file at all
        junk = {"file": ("junk.csv", b"a,b\n1,2\n", "text/csv")}
        assert_error_shape(client.post("/api/operations/demo/imports/file", files=junk, headers=lab), 422)
        actions = [e["action"] for e in client.get("/api/audit", headers=bearer(client, "admin")).json()]
        assert actions.count("import.profiles") == 2


def test_concurrent_http_decisions__one_200_one_409(client: TestClient) -> None:
    import threading

    dvi, rev1, rev2 = (bearer(client, u) for u in ("dvi", "reviewer", "reviewer2"))
    client.post("/api/operations", json={"code": "R", "name": "race"}, headers=bearer(client, "lab"))
    assert client.post("/api/operations/R/imports", json=_demo(), headers=bearer(client, "lab")).status_code == 201
    match(client, client.app, dvi, "R")
    cands = client.get("/api/remains/V3/candidates", headers=dvi).json()
    # two analysts propose two different missing persons for one remains at once
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def call(method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        barrier.wait()
        codes.append(client.request(method, url, json=body, headers=headers).status_code)

    # (the second candidate is below the decision policy: the reason lets both reach the race)
    threads = [threading.Thread(target=call, args=("POST", "/api/identifications",
                                                   {"candidate_id": c["id"], "override_reason": "race"}, dvi))
               for c in cands[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201, 409]
    ident = client.get("/api/identifications?state=proposed", headers=dvi).json()
    assert len(ident) == 1
    codes.clear()
    url = f"/api/identifications/{ident[0]['id']}/confirm"
    threads = [threading.Thread(target=call, args=("POST", url, {"version": 1, "override_reason": "race"}, h))
               for h in (rev1, rev2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]
    assert client.get("/api/audit/verify", headers=bearer(client, "admin")).json()["ok"]
