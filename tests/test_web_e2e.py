"""End to end in headless Chromium (Debian's package) driven by Playwright.

`opendvi serve` runs in a subprocess on a fresh SQLite data dir; a laboratory
analyst imports the demo case, a DVI analyst runs matching and proposes, a
reviewer confirms, the administrator sees the audit entry. Screenshots go to
``$OPENDVI_TEST_ARTIFACTS`` (default ``build/test-artifacts/e2e``). The server, the browser and the
sign-in come from tests/webkit.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from opendvi.data import demo_case_path
from tests import webkit
from tests.servicekit import family_files, frequencies_long_csv
from tests.webkit import PASSWORDS

ARTIFACTS = webkit.ARTIFACTS / "e2e"
ADMIN_PASSWORD = PASSWORDS["admin"]

pytestmark = [webkit.needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`opendvi serve` without the demo case; a laboratory analyst, a DVI analyst and a reviewer."""
    with webkit.serve(tmp_path_factory.mktemp("e2e-data"), demo=False) as s:
        for user, role in (("lab", "laboratory_analyst"), ("dvi", "dvi_analyst"), ("reviewer", "reviewer")):
            s.add_user(user, role)
        yield s.base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with webkit.chromium() as b:
        yield b


def _sign_in(browser: Any, base: str, user: str, password: str, *, change_to: str | None = None) -> Any:
    return webkit.sign_in(browser, base, user, password, change_to=change_to)


def _shot(page: Any, name: str) -> None:
    webkit.shot(page, name, folder="e2e")


def test_sign_in_import_match_propose_confirm_audit(server: str, browser: Any) -> None:
    base = server
    # a wrong password is refused on the page
    page = browser.new_context().new_page()
    page.goto(f"{base}/login")
    page.fill("#username", "lab")
    page.fill("#password", "wrong")
    page.click("#sign-in")
    assert "Wrong username or password" in page.inner_text("#login-error")
    page.context.close()

    # laboratory analyst: a new operation, then the demo case imported into it
    lab = _sign_in(browser, base, "lab", PASSWORDS["lab"])
    _shot(lab, "01-lab-home")
    lab.fill("input[name=code]", "EX-E2E")
    lab.fill("input[name=name]", "Exchange seen end to end")
    lab.fill("input[name=expected_count]", "8")
    lab.click("form[action='/operations'] button")
    lab.wait_for_url(f"{base}/operations/EX-E2E")
    lab.goto(f"{base}/imports")
    lab.select_option("#operation", "EX-E2E")
    lab.set_input_files("#file", str(demo_case_path()))
    lab.click("#import")
    result = lab.wait_for_selector("#import-result")
    assert "8 new remains" in result.inner_text()
    _shot(lab, "02-lab-imported")
    # a broken file is refused with its errors shown
    bad = ARTIFACTS.parent / "broken-case.json"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text('{"format": "dvi-case/1", "markers": []}')
    lab.set_input_files("#file", str(bad))
    lab.click("#import")
    assert "markers" in lab.wait_for_selector("#import-errors").inner_text()
    _shot(lab, "03-lab-import-refused")
    lab.click("text=Sign out")
    lab.wait_for_url(f"{base}/login")

    # DVI analyst: matching, the candidates of V1, the match page, a proposal
    dvi = _sign_in(browser, base, "dvi", PASSWORDS["dvi"])
    dvi.goto(f"{base}/operations/EX-E2E")
    dvi.click("#run-matching")  # queued; the service's worker executes it, the page shows it and reloads
    dvi.wait_for_selector("#run", timeout=120_000)
    assert dvi.inner_text("[data-count=matched] b") != "0"
    _shot(dvi, "04-dvi-dashboard")
    dvi.goto(f"{base}/remains?q=V1")
    dvi.click("#remains >> text=V1")
    dvi.wait_for_selector("#candidates")
    _shot(dvi, "05-dvi-candidates")
    dvi.click("#candidates a.match-link >> nth=0")
    dvi.wait_for_selector("#pedigree svg")
    assert dvi.locator("#per-marker tr").count() == 24
    assert "M1" in dvi.inner_text("h1")
    _shot(dvi, "06-dvi-match-page")
    dvi.fill("#note", "LR above 1e20, no exclusion")
    dvi.click("#propose")
    dvi.wait_for_selector("#identifications .proposed")
    _shot(dvi, "07-dvi-proposed")

    # reviewer: confirms
    rev = _sign_in(browser, base, "reviewer", PASSWORDS["reviewer"])
    rev.goto(f"{base}/identifications?state=proposed")
    rev.click("#identifications button.confirm >> nth=0")
    rev.wait_for_selector("#identifications .confirmed")
    _shot(rev, "08-reviewer-confirmed")

    # administrator: the audit entry and an intact chain
    admin = _sign_in(browser, base, "admin", ADMIN_PASSWORD)
    admin.goto(f"{base}/audit")
    row = admin.wait_for_selector("tr[data-action='identification.confirm']")
    assert "reviewer" in row.inner_text()
    admin.click("#verify")  # the whole chain, on demand
    assert "intact" in admin.wait_for_selector("#chain").inner_text()
    _shot(admin, "09-admin-audit")
    for p in (dvi, rev, admin):
        p.context.close()


def test_admin_users_page_and_intake_families_import(server: str, browser: Any, tmp_path: Path) -> None:
    base = server
    tok = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()
    h = {"Authorization": f"Bearer {tok['token']}"}
    assert httpx.post(f"{base}/api/operations", json={"code": "FAM-E2E", "name": "families"},
                      headers=h).status_code == 201
    # an operation without markers takes those of a frequency file
    r = httpx.post(f"{base}/api/operations/FAM-E2E/imports/frequencies", headers=h, data={"population": "A"},
                   files={"file": ("freqs.csv", frequencies_long_csv(), "text/csv")})
    assert r.status_code == 201 and r.json()["markers"] == 23, r.text
    # administrator: two new users, a role change, a deactivation
    admin = _sign_in(browser, base, "admin", ADMIN_PASSWORD)
    admin.goto(f"{base}/users")
    passwords = {}
    for user in ("intake", "leaver"):
        admin.fill("#new-user input[name=username]", user)
        admin.select_option("#new-user select[name=role]", "dvi_analyst")
        admin.click("#new-user button")
        message = admin.wait_for_selector("#user-message").inner_text()
        assert user in message
        passwords[user] = message.rsplit(": ", 1)[1].strip()
    admin.select_option("#user-intake select[name=role]", "intake_officer")
    admin.click("#user-intake button")
    assert "Intake officer" in admin.wait_for_selector("#user-intake").inner_text()
    admin.select_option("#user-leaver select[name=active]", "no")
    admin.click("#user-leaver button")
    admin.wait_for_selector("#user-message")
    assert admin.inner_text("#user-leaver td:nth-child(4)") == "no"
    _shot(admin, "10-admin-users")
    admin.goto(f"{base}/audit")
    assert admin.locator("tr[data-action='user.update']").count() >= 2
    # the deactivated user cannot sign in
    page = browser.new_context().new_page()
    page.goto(f"{base}/login")
    page.fill("#username", "leaver")
    page.fill("#password", passwords["leaver"])
    page.click("#sign-in")
    assert "Wrong username or password" in page.inner_text("#login-error")
    page.context.close()

    # the intake officer registers a family with its reference profiles
    fam, prof = family_files("E2E")
    (tmp_path / "families.csv").write_bytes(fam)
    (tmp_path / "profiles.csv").write_bytes(prof)
    intake = _sign_in(browser, base, "intake", passwords["intake"], change_to=PASSWORDS["intake"])
    intake.click("header >> text=Imports")
    intake.select_option("#families-operation", "FAM-E2E")
    intake.set_input_files("#families-file", str(tmp_path / "families.csv"))
    intake.click("#import-families")
    assert "BC-FAE2E" in intake.wait_for_selector("#import-errors").inner_text()  # no profiles given
    assert intake.input_value("#families-operation") == "FAM-E2E"  # the form keeps the operation
    intake.set_input_files("#families-file", str(tmp_path / "families.csv"))
    intake.set_input_files("#profiles-file", str(tmp_path / "profiles.csv"))
    intake.click("#import-families")
    assert "2 donors" in intake.wait_for_selector("#import-result").inner_text()
    _shot(intake, "11-intake-families-imported")
    intake.goto(f"{base}/families")
    assert "BC-MOE2E" in intake.inner_text("body")
    for p in (admin, intake):
        p.context.close()
