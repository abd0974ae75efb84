"""Families template + reference profiles through the service, and the users page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.servicekit import (
    BACKENDS,
    assert_error_shape,
    bearer,
    family_files,
    frequencies_long_csv,
    make_app,
    match,
    migrated_engine,
    password_of,
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_families_template_with_reference_profiles__all_or_nothing(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = {u: bearer(client, u) for u in ("intake", "lab", "dvi", "admin")}
        fam, prof = family_files("9")
        files = {"families": ("families.csv", fam, "text/csv"), "profiles": ("profiles.csv", prof, "text/csv")}
        # a profile missing for a barcode of the template: refused, nothing written
        bad = {"families": files["families"], "profiles": ("p.csv", prof.splitlines()[0] + b"\n" +
                                                           prof.splitlines()[1] + b"\n", "text/csv")}
        r = client.post("/api/operations/demo/imports/families", files=bad, headers=h["intake"])
        err = assert_error_shape(r, 422)
        assert "BC-MO9" in str(err)
        assert client.get("/api/families/FT9", headers=h["intake"]).status_code == 404
        # an unknown marker in the profiles: refused
        bad_marker = prof.replace(b"TH01,TH01", b"XYZ99,XYZ99")
        r = client.post("/api/operations/demo/imports/families", headers=h["intake"],
                        files={"families": files["families"], "profiles": ("p.csv", bad_marker, "text/csv")})
        assert_error_shape(r, 422)
        # DVI analyst may not
        r = client.post("/api/operations/demo/imports/families", files=files, headers=h["dvi"])
        assert assert_error_shape(r, 403)["code"] == "forbidden"
        r = client.post("/api/operations/demo/imports/families", files=files, headers=h["intake"])
        assert r.status_code == 201, r.text
        s = r.json()
        counts = (s["families_new"], s["missing_persons_new"], s["donors_new"], s["reference_profiles_new"])
        assert counts == (1, 1, 2, 2)
        fam_json = client.get("/api/families/FT9", headers=h["intake"]).json()
        assert "BC-FA9" in str(fam_json) and "BC-MO9" in str(fam_json)
        # the donors are known by their sample barcode
        r = client.patch("/api/donors/BC-FA9", json={"relationship": "father"}, headers=h["intake"])
        assert r.status_code == 200, r.text
        # re-import: nothing new
        r = client.post("/api/operations/demo/imports/families", files=files, headers=h["lab"])
        assert r.status_code == 201 and r.json()["families_new"] == 0 and r.json()["reference_profiles_new"] == 0
        # matching sees the new family
        assert match(client, client.app, h["dvi"])["counts"]["missing_persons"] == 7
        audit = client.get("/api/audit?object_type=import", headers=h["admin"]).json()
        assert any("families.csv" in str(e) for e in audit)


def _signed_in(client: TestClient, username: str) -> str:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"username": username, "password": password_of(username),
                                    "csrf_token": token.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    return ""


def _csrf(text: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert m
    return m.group(1)


def test_families_import_page__errors_shown_and_success(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        _signed_in(client, "intake")
        page = client.get("/imports")
        assert page.status_code == 200 and 'action="/imports/families"' in page.text
        assert 'action="/imports"' not in page.text  # the case form is the laboratory's
        csrf = _csrf(page.text)
        fam, prof = family_files("7")
        r = client.post("/imports/families", data={"operation": "demo", "csrf_token": csrf},
                        files={"families": ("families.csv", fam, "text/csv")})
        assert r.status_code == 422 and 'id="import-errors"' in r.text and "BC-FA7" in r.text
        r = client.post("/imports/families", data={"operation": "demo", "csrf_token": csrf},
                        files={"families": ("families.csv", fam, "text/csv"),
                               "profiles": ("profiles.csv", prof, "text/csv")})
        assert r.status_code == 200 and 'id="import-result"' in r.text, r.text[-2000:]
        # without the CSRF token: refused
        r = client.post("/imports/families", data={"operation": "demo"},
                        files={"families": ("families.csv", fam, "text/csv")}, headers={"accept": "text/html"})
        assert r.status_code == 403


def test_users_page__create_change_role_deactivate_with_audit(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        _signed_in(client, "admin")
        page = client.get("/users")
        assert page.status_code == 200 and 'id="users"' in page.text
        csrf = _csrf(page.text)
        r = client.post("/users", data={"username": "newbie", "role": "reviewer", "full_name": "N B",
                                        "csrf_token": csrf})
        assert r.status_code == 200 and "One-time password" in r.text
        password = re.search(r"shown once\): (\S+)", r.text)
        assert password
        # change the role, then deactivate
        r = client.post("/users/newbie", data={"role": "dvi_analyst", "active": "yes", "csrf_token": csrf})
        assert r.status_code == 200 and "DVI analyst" in r.text
        r = client.post("/users/newbie", data={"role": "dvi_analyst", "active": "no", "csrf_token": csrf})
        assert r.status_code == 200 and "deactivated" in r.text
        # no CSRF token: refused; oneself: refused
        r = client.post("/users/newbie", data={"role": "reviewer", "active": "yes"}, headers={"accept": "text/html"})
        assert r.status_code == 403
        r = client.post("/users/admin", data={"role": "reviewer", "active": "yes", "csrf_token": csrf},
                        headers={"accept": "text/html"})
        assert r.status_code == 409
        api = TestClient(client.app)
        h = bearer(api, "admin")
        users = {u["username"]: u for u in api.get("/api/users", headers=h).json()}
        assert users["newbie"]["role"] == "dvi_analyst" and users["newbie"]["active"] is False
        entries = api.get("/api/audit?object_type=user&object_id=newbie", headers=h).json()
        actions = [e["action"] for e in entries]
        assert actions.count("user.create") == 1 and actions.count("user.update") == 2, actions
        # the deactivated user cannot sign in
        r = api.post("/api/auth/login", json={"username": "newbie", "password": password.group(1)})
        assert_error_shape(r, 401)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frequency_database_import__population_all_or_nothing_and_provenance(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = {u: bearer(client, u) for u in ("dvi", "lab", "intake", "admin")}
        url = "/api/operations/demo/imports/frequencies"
        before = match(client, client.app, h["dvi"])
        good = frequencies_long_csv()
        # two populations and none named: refused
        r = client.post(url, files={"file": ("freqs.csv", good, "text/csv")}, headers=h["dvi"])
        assert "population" in str(assert_error_shape(r, 422))
        # a marker of the operation left out: refused, listing it
        r = client.post(url, files={"file": ("freqs.csv", frequencies_long_csv(drop="TH01"), "text/csv")},
                        data={"population": "A"}, headers=h["dvi"])
        assert "TH01" in str(assert_error_shape(r, 422))
        # frequencies not summing to 1: refused
        r = client.post(url, files={"file": ("freqs.csv", frequencies_long_csv(scale=0.5), "text/csv")},
                        data={"population": "A"}, headers=h["dvi"])
        assert_error_shape(r, 422)
        # the laboratory and intake may not
        for who in ("lab", "intake"):
            r = client.post(url, files={"file": ("freqs.csv", good, "text/csv")}, data={"population": "A"},
                            headers=h[who])
            assert assert_error_shape(r, 403)["code"] == "forbidden"
        r = client.post(url, files={"file": ("freqs.csv", good, "text/csv")}, data={"population": "B"},
                        headers=h["dvi"])
        assert r.status_code == 201, r.text
        s = r.json()
        assert s["population"] == "B" and s["markers"] == 23 and s["replaced"]
        after = match(client, client.app, h["dvi"])
        assert after["frequency_database_sha256"] == s["frequency_database_sha256"], after
        assert s["replaced"] == before["frequency_database_sha256"] != s["frequency_database_sha256"]
        entries = client.get("/api/audit?object_type=import", headers=h["admin"]).json()
        assert any(e["action"] == "import.frequencies" for e in entries)


def test_frequency_import_page__shows_errors(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        _signed_in(client, "dvi")
        page = client.get("/imports")
        assert page.status_code == 200 and 'action="/imports/frequencies"' in page.text
        assert 'action="/imports/families"' not in page.text
        csrf = _csrf(page.text)
        r = client.post("/imports/frequencies", data={"operation": "demo", "csrf_token": csrf},
                        files={"file": ("freqs.csv", frequencies_long_csv(), "text/csv")})
        assert r.status_code == 422 and 'id="import-errors"' in r.text and "population" in r.text
        r = client.post("/imports/frequencies", data={"operation": "demo", "population": "A", "csrf_token": csrf},
                        files={"file": ("freqs.csv", frequencies_long_csv(), "text/csv")})
        assert r.status_code == 200 and 'id="import-result"' in r.text and "23 markers" in r.text


def test_families_and_profiles_in_one_excel_workbook(tmp_path: Path) -> None:
    from opendvi.io.tables import read_rows, write_table

    fam, prof = family_files("X")
    (tmp_path / "f.csv").write_bytes(fam)
    (tmp_path / "p.csv").write_bytes(prof)
    fh, frows = read_rows(tmp_path / "f.csv")
    ph, prows = read_rows(tmp_path / "p.csv")
    book = tmp_path / "families.xlsx"
    write_table(ph, [r for _, r in prows], book, sheet="profiles", sheets={"families": (fh, [r for _, r in frows])})
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = bearer(client, "intake")
        r = client.post("/api/operations/demo/imports/families", headers=h,
                        files={"families": ("families.xlsx", book.read_bytes(), "application/octet-stream")})
        assert r.status_code == 201, r.text
        assert r.json()["donors_new"] == 2 and r.json()["reference_profiles_new"] == 2
        # a file that is no families template: refused in the error shape
        r = client.post("/api/operations/demo/imports/families", headers=h,
                        files={"families": ("families.csv", prof, "text/csv")})
        assert_error_shape(r, 422)
