"""The role matrix: every endpoint (API and pages) against every role.

A refusal is a 403 in the one error shape; an allowed call is never 401/403.
Names of missing persons never reach the laboratory, DVI, reviewer or
administrator side; a proposer never confirms his own proposal.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.service.policy import PERMISSIONS
from opendvi.store.models import Role
from tests.servicekit import (
    ROLE_USERS,
    SECRET_NAME,
    assert_error_shape,
    bearer,
    family_files,
    frequencies_long_csv,
    make_app,
    match,
    migrated_engine,
    password_of,
)

ROLES = [u for u in ROLE_USERS if u != "reviewer2"]
_counter = itertools.count()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Demo case, a matching run, names, a proposed and a confirmed identification."""
    tmp = tmp_path_factory.mktemp("roles")
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ROLE_USERS}
        run_id = match(client, app, h["dvi"])["id"]
        for code in ("M1", "M2", "M3", "M4a", "M4b", "M5"):
            r = client.put(f"/api/missing-persons/{code}/details", json={"full_name": f"{SECRET_NAME} {code}"},
                           headers=h["intake"])
            assert r.status_code == 200, r.text
        best = {b: client.get(f"/api/remains/{b}/candidates", headers=h["dvi"]).json()[0] for b in ("V1", "V2", "V3")}
        proposed = client.post("/api/identifications", json={"candidate_id": best["V1"]["id"]}, headers=h["dvi"])
        confirmed = client.post("/api/identifications", json={"candidate_id": best["V2"]["id"]}, headers=h["dvi"])
        assert proposed.status_code == confirmed.status_code == 201
        r = client.post(f"/api/identifications/{confirmed.json()['id']}/confirm", json={}, headers=h["reviewer"])
        assert r.status_code == 200, r.text
        group = client.post("/api/fragment-groups", json={"remains": ["V4", "V5"]}, headers=h["dvi"])
        assert group.status_code == 201, group.text
        yield {"fragment_group": group.json()["id"],
            "app": app, "client": client, "headers": h, "run_id": run_id, "candidate": best["V1"]["id"],
            "candidate_v3": best["V3"]["id"], "proposed": proposed.json()["id"],
            "confirmed": confirmed.json()["id"], "case": json.loads(Path(demo_case_path()).read_text()),
        }


# (method, path template, permission or None for any signed-in user)
ENDPOINTS: list[tuple[str, str, str | None]] = [
    ("POST", "/api/auth/logout", None),
    ("GET", "/api/me", None),
    ("GET", "/api/me/language", None),
    ("PUT", "/api/me/language", None),
    ("POST", "/api/auth/password", None),
    ("POST", "/api/auth/totp/setup", "account.totp"),
    ("POST", "/api/auth/totp/enable", "account.totp"),
    ("POST", "/api/auth/totp/disable", "account.totp"),
    ("GET", "/api/users", "users.manage"),
    ("POST", "/api/users", "users.manage"),
    ("PATCH", "/api/users/{username}", "users.manage"),
    ("GET", "/api/operations", "operations.read"),
    ("POST", "/api/operations", "operations.create"),
    ("GET", "/api/operations/{code}", "operations.read"),
    ("POST", "/api/operations/{code}/imports", "imports.create"),
    ("POST", "/api/operations/{code}/imports/file", "imports.create"),
    ("POST", "/api/operations/{code}/imports/families", "families.import"),
    ("POST", "/api/operations/{code}/imports/frequencies", "frequencies.import"),
    ("POST", "/api/operations/{code}/matching-runs", "matching.run"),
    ("GET", "/api/operations/{code}/matching-runs", "operations.read"),
    ("GET", "/api/matching-runs/{run_id}", "operations.read"),
    ("POST", "/api/matching-runs/{run_id}/cancel", "matching.run"),
    ("GET", "/api/candidates", "candidates.read"),
    ("GET", "/api/remains", "remains.read"),
    ("GET", "/api/remains/{barcode}", "remains.read"),
    ("PATCH", "/api/remains/{barcode}", "remains.write"),
    ("GET", "/api/remains/{barcode}/candidates", "candidates.read"),
    ("GET", "/api/candidates/{candidate_id}", "candidates.read"),
    ("GET", "/api/families", "families.read"),
    ("GET", "/api/families/{code}", "families.read"),
    ("PUT", "/api/missing-persons/{code}/details", "persons.write"),
    ("PATCH", "/api/donors/{barcode}", "donors.write"),
    ("GET", "/api/identifications", "identifications.read"),
    # fragments of one person (routes/api/fragments.py, routes/fragments_pages.py)
    ("GET", "/api/fragment-groups", "remains.read"),
    ("GET", "/api/fragment-groups/{group_id}", "remains.read"),
    ("GET", "/api/fragment-links", "remains.read"),
    ("POST", "/api/fragment-groups", "fragments.propose"),
    ("POST", "/api/fragment-groups/{group_id}/propose", "fragments.propose"),
    ("POST", "/api/fragment-groups/{group_id}/confirm", "fragments.decide"),
    ("POST", "/api/fragment-groups/{group_id}/split", "fragments.split"),
    ("POST", "/fragment-groups/{group_id}/propose", "fragments.propose"),
    ("POST", "/fragment-groups/{group_id}/confirm", "fragments.decide"),
    ("POST", "/fragment-groups/{group_id}/split", "fragments.split"),
    ("POST", "/api/identifications", "identifications.propose"),
    ("GET", "/api/identifications/{identification_id}", "identifications.read"),
    ("POST", "/api/identifications/{identification_id}/confirm", "identifications.decide"),
    ("POST", "/api/identifications/{identification_id}/reject", "identifications.decide"),
    ("POST", "/api/identifications/{identification_id}/withdraw", "identifications.withdraw"),
    ("GET", "/api/audit", "audit.read"),
    ("GET", "/api/audit/verify", "audit.verify"),
    # pages
    ("POST", "/logout", None),
    ("GET", "/", None),
    ("GET", "/account/password", None),
    ("POST", "/account/language", None),
    ("POST", "/account/password", None),
    ("POST", "/account/totp/setup", "account.totp"),
    ("POST", "/account/totp/enable", "account.totp"),
    ("POST", "/account/totp/disable", "account.totp"),
    ("GET", "/operations/{code}", "operations.read"),
    ("POST", "/operations/{code}/match", "matching.run"),
    ("POST", "/matching-runs/{run_id}/cancel", "matching.run"),
    ("GET", "/assets/run-progress.js", None),
    ("POST", "/operations", "operations.create"),
    ("GET", "/imports", "imports.page"),
    ("POST", "/imports", "imports.create"),
    ("POST", "/imports/families", "families.import"),
    ("POST", "/imports/frequencies", "frequencies.import"),
    ("GET", "/remains", "remains.read"),
    ("GET", "/remains/{barcode}", "remains.read"),
    ("GET", "/candidates/{candidate_id}", "candidates.read"),
    ("POST", "/candidates/{candidate_id}/propose", "identifications.propose"),
    # the identification report (routes/review.py)
    ("GET", "/identifications/{identification_id}/report", "identifications.read"),
    ("GET", "/identifications/{identification_id}/report.pdf", "identifications.read"),
    ("GET", "/identifications", "identifications.read"),
    ("POST", "/identifications/{identification_id}/{action}", "identifications.decide"),
    ("GET", "/families", "families.read"),
    ("POST", "/missing-persons/{code}/details", "persons.write"),
    ("GET", "/users", "users.manage"),
    ("POST", "/users", "users.manage"),
    ("POST", "/users/{username}", "users.manage"),
    ("GET", "/audit", "audit.read"),
    # power planning (routes/power.py)
    ("GET", "/api/power/families/{code}", "families.read"),
    ("GET", "/api/power/weak", "families.read"),
    ("GET", "/power", "families.read"),
    ("GET", "/power/families/{code}", "families.read"),
    ("GET", "/power/lr-plot/families/{code}", "families.read"),
    ("GET", "/assets/power-panel.js", None),
    # exports and plots (routes/exports.py, routes/plots.py)
    ("GET", "/api/exports/candidates.csv", "candidates.read"),
    ("GET", "/api/exports/candidates.xlsx", "candidates.read"),
    ("GET", "/api/exports/identifications.csv", "identifications.read"),
    ("GET", "/api/exports/identifications.xlsx", "identifications.read"),
    ("GET", "/api/exports/audit.csv", "audit.read"),
    ("GET", "/api/exports/audit.xlsx", "audit.read"),
    ("GET", "/api/exports/audit.jsonl", "audit.read"),
    ("GET", "/plots/operations/{code}/lr-histogram.svg", "operations.read"),
    ("GET", "/plots/operations/{code}/lr-histogram.png", "operations.read"),
    ("GET", "/plots/operations/{code}/progress.svg", "operations.read"),
    ("GET", "/plots/operations/{code}/progress.png", "operations.read"),
    ("GET", "/plots/families/{code}/lr-distribution.svg", "families.read"),
    ("GET", "/plots/families/{code}/lr-distribution.png", "families.read"),
    ("GET", "/plots/candidates/{candidate_id}/lr-distribution.svg", "candidates.read"),
    ("GET", "/plots/candidates/{candidate_id}/lr-distribution.png", "candidates.read"),
    # intake and liaison (routes/families_pages.py)
    ("GET", "/families/{code}", "families.read"),
    ("POST", "/donors/{barcode}/details", "donors.write"),
    ("POST", "/families/{code}/members", "pedigree.write"),
    ("POST", "/families/{code}/donor-links", "pedigree.write"),
    ("GET", "/liaison", "notifications.read"),
    ("POST", "/liaison/identifications/{identification_id}/notifications", "notifications.write"),
    ("GET", "/api/identifications/{identification_id}/notifications", "notifications.read"),
    ("POST", "/api/identifications/{identification_id}/notifications", "notifications.write"),
    ("POST", "/api/families/{code}/members", "pedigree.write"),
    ("POST", "/api/families/{code}/donor-links", "pedigree.write"),
]
PUBLIC = {("GET", "/api/health"), ("POST", "/api/auth/login"), ("GET", "/login"), ("POST", "/login"),
          ("POST", "/login/language"),
          # the API's documentation pages and their vendored files (routes/docs.py): no data in them
          ("GET", "/api/docs"), ("GET", "/api/redoc"), ("GET", "/static/{name}")}


def test_matrix_covers_every_route(world: dict[str, Any]) -> None:
    routes = set()
    from opendvi.service.routes import api, docs, families_pages, fragments_pages, pages, power, review
    from opendvi.service.routes import exports as exports_routes
    from opendvi.service.routes import plots as plots_routes

    for route in [*api.router.routes, *pages.router.routes, *power.router.routes, *docs.router.routes,
                  *review.router.routes,
                  *exports_routes.router.routes, *plots_routes.router.routes,
                  *families_pages.router.routes, *fragments_pages.router.routes]:
        # "{barcode:path}" (identifiers may hold "/") is listed as "{barcode}"
        path = re.sub(r"\{(\w+):path\}", r"{\1}", getattr(route, "path", ""))
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                routes.add((method, path))
    assert len(routes) > 30
    listed = {(m, p) for m, p, _ in ENDPOINTS} | PUBLIC
    assert routes == listed, f"unlisted: {routes - listed}; gone: {listed - routes}"
    for _, _, perm in ENDPOINTS:
        assert perm is None or perm in PERMISSIONS


def _request(world: dict[str, Any], method: str, template: str, headers: dict[str, str],
             user: str = "nobody") -> Any:
    n = next(_counter)
    pw = password_of(user)
    ident = world["confirmed"] if "{identification_id}" in template and method == "GET" else world["proposed"]
    path = template.format(
        username="lab", code="M1" if "missing-persons" in template else ("F1" if "families" in template else "demo"),
        run_id=world["run_id"], barcode="F1-R1" if "donors" in template else "V1",
        candidate_id=world["candidate_v3"] if "propose" in template else world["candidate"],
        identification_id=ident, action="confirm",
        # a POST on a group that does not exist (404 where the role may): the module's world stays
        group_id=world["fragment_group"] if method == "GET" else 2**40,
    )
    client = world["client"]
    client.cookies.clear()
    kwargs: dict[str, Any] = {"headers": headers}
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/users"): {"username": f"user{n}", "password": "a-long-password-1", "role": "reviewer"},
        ("PATCH", "/api/users/{username}"): {"active": True},
        ("POST", "/api/operations"): {"code": f"OP{n}", "name": "an exchange"},
        ("POST", "/api/operations/{code}/imports"): world["case"],
        ("PUT", "/api/missing-persons/{code}/details"): {"full_name": f"{SECRET_NAME} M1"},
        ("PATCH", "/api/donors/{barcode}"): {"relationship": "father", "consent": "identification"},
        ("PATCH", "/api/remains/{barcode}"): {"bag": "B-17", "sample_type": "femur"},
        ("POST", "/api/identifications"): {"candidate_id": world["candidate_v3"]},
        ("POST", "/api/identifications/{identification_id}/confirm"): {},
        ("POST", "/api/identifications/{identification_id}/reject"): {"reason": "test"},
        ("POST", "/api/identifications/{identification_id}/withdraw"): {"reason": "test"},
        # the right current password and a new one the policy refuses: 422, nothing changes
        ("POST", "/api/auth/password"): {"old_password": pw, "new_password": "short"},
        ("POST", "/api/auth/totp/setup"): {"password": pw},
        ("POST", "/api/auth/totp/enable"): {"code": "000000"},
        ("POST", "/api/auth/totp/disable"): {"password": pw},
        # a proposal (POST): 409, only a confirmed identification is notified
        ("POST", "/api/identifications/{identification_id}/notifications"): {"method": "phone",
                                                                             "notified_on": "2026-01-02"},
        # invalid (a member already there; a missing person is no reference): 422, nothing written
        ("POST", "/api/families/{code}/members"): {"member": "F1-R1", "sex": "M"},
        ("POST", "/api/families/{code}/donor-links"): {"member": "M1", "barcode": f"BC{n}"},
        ("PUT", "/api/me/language"): {"language": "en"},
        ("POST", "/api/fragment-groups"): {"remains": ["V1", "NO-SUCH-REMAINS"]},  # 404, nothing written
        ("POST", "/api/fragment-groups/{group_id}/split"): {"reason": "test"},
    }
    forms: dict[tuple[str, str], Any] = {
        ("POST", "/operations"): {"code": f"PG{n}", "name": "an exchange"},
        ("POST", "/identifications/{identification_id}/{action}"): {"reason": "test"},
        ("POST", "/candidates/{candidate_id}/propose"): {"note": "n"},
        ("POST", "/missing-persons/{code}/details"): {"full_name": f"{SECRET_NAME} M1"},
        ("POST", "/users"): {"username": f"page{n}", "role": "reviewer"},
        ("POST", "/users/{username}"): {"role": "laboratory_analyst", "active": "yes"},
        ("POST", "/account/password"): {"old_password": pw, "new_password": "short", "new_password_again": "short"},
        ("POST", "/account/totp/setup"): {"password": pw},
        ("POST", "/account/totp/enable"): {"code": "000000"},
        ("POST", "/account/totp/disable"): {"password": pw},
        ("POST", "/donors/{barcode}/details"): {"relationship": "father", "consent": "identification",
                                                "consent_date": "2026-01-02", "full_name": f"{SECRET_NAME} R1",
                                                "date_of_birth": "1950-01-01"},
        # a member already there: 422, the pedigree unchanged (the module's world stays as it is)
        ("POST", "/families/{code}/members"): {"member": "F1-R1", "sex": "M"},
        ("POST", "/families/{code}/donor-links"): {"member": "M1", "barcode": f"BC{n}"},
        ("POST", "/liaison/identifications/{identification_id}/notifications"): {"method": "phone",
                                                                                 "notified_on": "2026-01-02"},
        ("POST", "/account/language"): {"language": "en"},
        ("POST", "/fragment-groups/{group_id}/propose"): {"back": "V1"},
        ("POST", "/fragment-groups/{group_id}/confirm"): {"back": "V1"},
        ("POST", "/fragment-groups/{group_id}/split"): {"back": "V1", "reason": "test"},
    }
    if (method, template) in bodies:
        kwargs["json"] = bodies[(method, template)]
    elif (method, template) in forms:
        kwargs["data"] = forms[(method, template)]
    elif (method, template) == ("POST", "/api/operations/{code}/imports/file"):
        kwargs["files"] = {"file": ("demo.json", json.dumps(world["case"]).encode(), "application/json")}
    elif (method, template) in (("POST", "/api/operations/{code}/imports/families"), ("POST", "/imports/families")):
        fam, prof = family_files(str(n))
        if not template.startswith("/api/"):
            kwargs["data"] = {"operation": "demo"}
        kwargs["files"] = {"families": ("families.csv", fam, "text/csv"),
                           "profiles": ("profiles.csv", prof, "text/csv")}
    elif (method, template) in (("POST", "/api/operations/{code}/imports/frequencies"),
                                ("POST", "/imports/frequencies")):
        kwargs["data"] = {"population": "A"} if template.startswith("/api/") else {"operation": "demo",
                                                                                     "population": "A"}
        kwargs["files"] = {"file": ("freqs.csv", frequencies_long_csv(), "text/csv")}
    elif (method, template) == ("POST", "/imports"):
        kwargs["data"] = {"operation": "demo"}
        kwargs["files"] = {"file": ("demo.json", json.dumps(world["case"]).encode(), "application/json")}
    return client.request(method, path, follow_redirects=False, **kwargs)


@pytest.mark.parametrize("role_user", ROLES)
@pytest.mark.parametrize(("method", "template", "permission"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_role_matrix(world: dict[str, Any], role_user: str, method: str, template: str, permission: str | None) -> None:
    role = Role(ROLE_USERS[role_user])
    if template.endswith("logout"):
        headers = bearer(world["client"], role_user)  # a session of its own, ended by the call
    else:
        headers = world["headers"][role_user]
    r = _request(world, method, template, headers, user=role_user)
    allowed = permission is None or role in PERMISSIONS[permission]
    if allowed:
        # a rule may still refuse (e.g. withdrawing a confirmed identification), never the role
        refused_by_role = r.status_code == 403 and r.json()["error"]["code"] != "forbidden_by_rule"
        assert r.status_code != 401 and not refused_by_role, (role_user, method, template, r.status_code,
                                                              r.text[:300])
        assert r.status_code < 500, r.text[:500]
    else:
        if template.startswith("/api/"):
            err = assert_error_shape(r, 403)
            assert err["code"] == "forbidden"
        else:
            assert r.status_code == 403, (role_user, method, template, r.status_code)


@pytest.mark.parametrize(("method", "template", "permission"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_anonymous_gets_401_in_the_error_shape(world: dict[str, Any], method: str, template: str,
                                               permission: str | None) -> None:
    r = _request(world, method, template, {})
    assert_error_shape(r, 401)


def test_anonymous_page_visit_redirects_to_sign_in(world: dict[str, Any]) -> None:
    client = world["client"]
    client.cookies.clear()
    r = client.get("/remains", headers={"accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def _all_get_responses(world: dict[str, Any], role_user: str) -> Iterator[tuple[str, str]]:
    role = Role(ROLE_USERS[role_user])
    for method, template, permission in ENDPOINTS:
        if method != "GET" or (permission is not None and role not in PERMISSIONS[permission]):
            continue
        r = _request(world, method, template, world["headers"][role_user])
        assert r.status_code == 200, (template, r.status_code, r.text[:300])
        yield template, r.text
    for code in ("F1", "F2", "F5"):
        for template in ("/api/families/{code}",):
            if role in PERMISSIONS["families.read"]:
                r = world["client"].get(template.format(code=code), headers=world["headers"][role_user])
                yield template, r.text
    for path in ("/api/identifications?state=confirmed", "/identifications?state=confirmed",
                 f"/api/identifications/{world['confirmed']}", "/api/audit?limit=5000"):
        r = world["client"].get(path, headers=world["headers"][role_user])
        yield path, r.text


@pytest.mark.parametrize("role_user", ["lab", "dvi", "reviewer", "admin"])
def test_names_never_reach_the_dna_side(world: dict[str, Any], role_user: str) -> None:
    seen = 0
    for where, text in _all_get_responses(world, role_user):
        seen += 1
        assert SECRET_NAME not in text, f"{role_user} saw a name at {where}"
    assert seen >= 3


def test_intake_and_liaison_see_names(world: dict[str, Any]) -> None:
    client, h = world["client"], world["headers"]
    assert SECRET_NAME in client.get("/api/families/F1", headers=h["intake"]).text
    confirmed = client.get("/api/identifications", headers=h["liaison"]).json()
    assert confirmed and all(i["state"] == "confirmed" for i in confirmed)
    assert all(i["missing_person_name"].startswith(SECRET_NAME) for i in confirmed)
    # the liaison never sees a proposal
    r = client.get(f"/api/identifications/{world['proposed']}", headers=h["liaison"])
    assert_error_shape(r, 404)
    assert client.get("/api/identifications?state=proposed", headers=h["liaison"]).json() == []


def test_a_proposer_never_confirms_his_own_proposal(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = {u: bearer(client, u) for u in ("admin", "dvi", "reviewer")}
        match(client, client.app, h["dvi"])
        cand = client.get("/api/remains/V1/candidates", headers=h["dvi"]).json()[0]
        ident = client.post("/api/identifications", json={"candidate_id": cand["id"]}, headers=h["dvi"]).json()
        # the DVI analyst becomes a reviewer: still not for his own proposal
        r = client.patch("/api/users/dvi", json={"role": "reviewer"}, headers=h["admin"])
        assert r.status_code == 200
        h["dvi"] = bearer(client, "dvi")
        for action, body in (("confirm", {}), ("reject", {"reason": "mine"})):
            r = client.post(f"/api/identifications/{ident['id']}/{action}", json=body, headers=h["dvi"])
            err = assert_error_shape(r, 403)
            assert "you proposed it" in err["message"]
        r = client.post(f"/api/identifications/{ident['id']}/confirm", json={}, headers=h["reviewer"])
        assert r.status_code == 200 and r.json()["state"] == "confirmed"
