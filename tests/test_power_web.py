"""The families page's power panel in a real browser: `opendvi serve` (SQLite,
the bundled demo case) in a subprocess and Debian's chromium through
Playwright; the panel's same-origin script fills it from the JSON API under
the page's Content-Security-Policy (no inline script)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.test_web_e2e import CHROMIUM, LAUNCH_ARGS, _free_port

ONE_TIME = "power-web-admin-1"
PASSWORD = "quartz meadow 4482"

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)"),
              pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("power-web")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["OPENDVI_ADMIN_PASSWORD"] = ONE_TIME
    env["OPENDVI_ENV"] = "development"
    log = (data_dir / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "serve", "--port", str(port), "--data-dir",
                             str(data_dir)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (data_dir / "server.log").read_text())
            time.sleep(0.3)
        tok = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": ONE_TIME}).json()
        r = httpx.post(f"{base}/api/auth/password", json={"old_password": ONE_TIME, "new_password": PASSWORD},
                       headers={"Authorization": f"Bearer {tok['token']}"})
        assert r.status_code == 200, r.text
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_families_page__power_panel_is_filled_by_its_script(server: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            errors: list[str] = []  # failed requests other than the browser's own favicon
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            page.goto(f"{server}/login")
            page.fill("#username", "admin")
            page.fill("#password", PASSWORD)
            page.click("#sign-in")
            page.wait_for_selector("#whoami")
            page.goto(f"{server}/families?q=F5")
            panel = page.wait_for_selector('#power-F5[data-state="done"]', timeout=120_000)
            assert panel is not None
            text = panel.inner_text()
            assert "Missing person" in text and "P(LR ≥ 10⁴)" in text and "exclusion power" in text
            assert "Suggested next sample:" in text and "method exact" in text
            page.wait_for_function(
                "() => { const i = document.querySelector('#power-F5 img.power-plot');"
                " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
            want = httpx.Client(base_url=server)
            tok = want.post("/api/auth/login", json={"username": "admin", "password": PASSWORD}).json()["token"]
            data: list[dict[str, Any]] = want.get("/api/power/families/F5",
                                                   headers={"Authorization": f"Bearer {tok}"}).json()
            assert data[0]["next"][0]["candidate"] in text
            assert not errors, errors
        finally:
            browser.close()
