"""The lineage section of the match page in a real browser (issue 12): `opendvi serve` (SQLite) in a
subprocess, a case with Y-STR and mtDNA imported through the API and matched by the service's own worker,
then Debian's chromium through Playwright: the Y haplotypes side by side with the one-repeat difference
marked in words and outlined, no axe-core violation of impact serious or critical, and no sideways
scroll of the page at 800 px (the wide tables scroll in their focusable regions)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests import webkit
from tests.test_service_lineage import TRUE_MISSING, TRUE_REMAINS, _whole

pytestmark = [webkit.needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webkit.Server]:
    with webkit.serve(tmp_path_factory.mktemp("lineage-web"), demo=False) as s:
        yield s


def test_match_page__lineage_tables_in_chromium(server: webkit.Server) -> None:
    doc, locus, _het = _whole()
    for user, role in (("lab", "laboratory_analyst"), ("dvi", "dvi_analyst")):
        server.add_user(user, role)
    lab, dvi = server.headers("lab"), server.headers("dvi")
    assert httpx.post(f"{server.base}/api/operations", json={"code": "L", "name": "L"}, headers=lab).status_code == 201
    r = httpx.post(f"{server.base}/api/operations/L/imports", json=doc, headers=lab, timeout=60)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{server.base}/api/operations/L/matching-runs", json={"top_k": 5}, headers=dvi)
    assert r.status_code == 202, r.text
    url = f"{server.base}{r.json()['url']}"
    deadline = time.monotonic() + 180
    while (run := httpx.get(url, headers=dvi).json())["status"] not in ("finished", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.3)
    assert run["status"] == "finished", run
    cands = httpx.get(f"{server.base}/api/candidates", params={"run": run["id"], "per_page": 500}, headers=dvi).json()
    c = next(x for x in cands if (x["remains"], x["missing_person"]) == (TRUE_REMAINS, TRUE_MISSING))
    with webkit.chromium() as browser:
        page = webkit.sign_in(browser, server, "dvi", width=800, height=900)
        page.goto(f"{server.base}/candidates/{c['id']}")
        row = page.locator(f'#y-haplotypes tr[data-locus="{locus}"]')
        assert "differs by 1 repeat" in row.inner_text()
        cell = row.locator("td.differs")
        assert cell.count() == 1 and "solid" in cell.evaluate("e => getComputedStyle(e).outlineStyle")
        assert page.locator("#mt-haplotypes").is_visible() and page.locator("#lr-by-system").is_visible()
        webkit.shot(page, "match-lineage", folder="lineage")
        assert webkit.axe_violations(page) == []
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
