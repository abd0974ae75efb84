"""Web pages without a browser: sign-in form, CSRF on forms, redirects, the pedigree drawing."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from opendvi.service.pedigree_svg import Person, pedigree_svg
from opendvi.service.routes.pages import _safe_next
from tests.servicekit import SECRET_NAME, make_app, migrated_engine, password_of


def _login_form(client: TestClient, username: str, *, next_: str = "/") -> tuple[int, str]:
    page = client.get(f"/login?next={next_}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"username": username, "password": password_of(username),
                                    "csrf_token": token.group(1), "next": next_}, follow_redirects=False)
    return r.status_code, r.headers.get("location", "")


def test_sign_in_form__csrf_redirect_and_forms(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        # the form without its token is refused
        r = client.post("/login", data={"username": "dvi", "password": password_of("dvi"), "csrf_token": "x"},
                        headers={"accept": "text/html"})
        assert r.status_code == 403 and "form expired" in r.text
        assert _login_form(client, "dvi", next_="//evil.example") == (303, "/")
        client.cookies.clear()
        assert _login_form(client, "dvi", next_="/remains") == (303, "/remains")
        page = client.get("/remains", headers={"accept": "text/html"})
        assert page.status_code == 200 and "V1" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        # a form post without the session's CSRF token is refused, with it accepted
        r = client.post("/operations/demo/match", data={}, headers={"accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text
        r = client.post("/operations/demo/match", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/operations/demo")
        # a forbidden page is an HTML error page for a browser
        r = client.get("/audit", headers={"accept": "text/html"})
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text
        # sign out ends the session
        r = client.post("/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        assert r.status_code == 303
        assert client.get("/remains", headers={"accept": "text/html"}, follow_redirects=False).status_code == 303


def test_intake_officer_records_a_name_on_the_families_page(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine))
        _login_form(client, "intake")
        page = client.get("/families")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        r = client.post("/missing-persons/M5/details", data={"full_name": SECRET_NAME, "csrf_token": csrf.group(1)},
                        follow_redirects=True)
        assert r.status_code == 200 and SECRET_NAME in r.text


def test_safe_next__only_local_paths() -> None:
    assert _safe_next("/remains?q=1") == "/remains?q=1"
    for bad in ("//evil", "/\\evil", "https://evil", "", None):
        assert _safe_next(bad) == "/"


def test_pedigree_svg__shapes_placement_and_escaping() -> None:
    people = [
        Person("FA", None, None, "M", typed=True),
        Person("MO", None, None, "F"),
        Person("<M1>", "FA", "MO", None, missing=True, placed="V&1"),
    ]
    svg = pedigree_svg(people, title="F<1>")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<rect" in svg and "<circle" in svg and "<polygon" in svg  # male, female, unknown sex
    assert "&lt;M1&gt;" in svg and "V&amp;1" in svg and "F&lt;1&gt;" in svg
    assert "<M1>" not in svg
    import xml.etree.ElementTree as ET

    ET.fromstring(svg)  # well-formed
