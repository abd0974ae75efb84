"""The families page's power panel in a real browser: `opendvi serve` (SQLite,
the bundled demo case) in a subprocess and Debian's chromium through
Playwright; the panel's same-origin script fills it from the JSON API under
the page's Content-Security-Policy (no inline script)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import webkit

pytestmark = [webkit.needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webkit.Server]:
    with webkit.serve(tmp_path_factory.mktemp("power-web")) as s:
        yield s


def test_families_page__power_panel_is_filled_by_its_script(server: webkit.Server) -> None:
    with webkit.chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        errors: list[str] = []  # failed requests other than the browser's own favicon
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.goto(f"{server.base}/login")
        page.fill("#username", "admin")
        page.fill("#password", server.passwords["admin"])
        page.click("#sign-in")
        page.wait_for_selector("#whoami")
        page.goto(f"{server.base}/families?q=F5")
        panel = page.wait_for_selector('#power-F5[data-state="done"]', timeout=120_000)
        assert panel is not None
        text = panel.inner_text()
        assert "Missing person" in text and "P(LR ≥ 10⁴)" in text and "exclusion power" in text
        assert "Suggested next sample:" in text and "method exact" in text
        page.wait_for_function(
            "() => { const i = document.querySelector('#power-F5 img.power-plot');"
            " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
        data: list[dict[str, Any]] = httpx.get(f"{server.base}/api/power/families/F5",
                                               headers=server.headers("admin")).json()
        assert data[0]["next"][0]["candidate"] in text
        assert not errors, errors
