"""The operation page shows a matching run's progress live, without a reload (headless Chromium).

``opendvi serve --no-matching-worker`` runs on a fresh SQLite data dir with the demo case; a DVI
analyst queues a run on the operation's page (it shows "queued"); then an ``opendvi worker --once``
process executes it, and the page, never reloaded (a value set in its window survives), shows the
status and progress change to "finished" from the JSON API; then it reloads itself and shows the run
in the history. Screenshots go to ``$OPENDVI_TEST_ARTIFACTS/e2e``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.test_web_e2e import CHROMIUM, LAUNCH_ARGS, _free_port, _shot, _sign_in

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")
ADMIN_ONE_TIME = "jobs-admin-password-1"
ADMIN_PASSWORD = "tidal beacon 6612"
DVI_PASSWORD = "amber quarry 3051"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("jobs-data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(OPENDVI_ADMIN_PASSWORD=ADMIN_ONE_TIME, OPENDVI_ENV="development")
    log = (data_dir / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "serve", "--port", str(port), "--data-dir",
                             str(data_dir), "--no-matching-worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + (data_dir / "server.log").read_text())
            time.sleep(0.3)
        tok = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": ADMIN_ONE_TIME}).json()
        h = {"Authorization": f"Bearer {tok['token']}"}
        r = httpx.post(f"{base}/api/auth/password", json={"old_password": ADMIN_ONE_TIME,
                                                           "new_password": ADMIN_PASSWORD}, headers=h)
        assert r.status_code == 200, r.text
        r = httpx.post(f"{base}/api/users", json={"username": "dvi", "password": "one-time jobs 4410",
                                                  "role": "dvi_analyst"}, headers=h)
        assert r.status_code == 201, r.text
        t = httpx.post(f"{base}/api/auth/login", json={"username": "dvi", "password": "one-time jobs 4410"})
        r = httpx.post(f"{base}/api/auth/password", json={"old_password": "one-time jobs 4410",
                                                           "new_password": DVI_PASSWORD},
                       headers={"Authorization": f"Bearer {t.json()['token']}"})
        assert r.status_code == 200, r.text
        yield {"base": base, "data_dir": data_dir, "env": env}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield b
        b.close()


def test_operation_page_shows_the_runs_progress_live(served: dict[str, Any], browser: Any) -> None:
    base = served["base"]
    page = _sign_in(browser, base, "dvi", DVI_PASSWORD)
    page.goto(f"{base}/operations/demo")
    page.click("#run-matching")
    page.wait_for_selector("#active-run")
    assert page.inner_text("#run-status") == "queued"
    page.wait_for_function("() => Number(document.querySelector('#active-run').dataset.polls || 0) >= 2")
    assert page.inner_text("#run-status") == "queued"  # polled, still queued: no worker yet
    page.evaluate("window.__notReloaded = 42")
    _shot(page, "jobs-01-queued")
    env = {**served["env"], "OPENDVI_DATA_DIR": str(served["data_dir"]), "OPENDVI_JOB_POLL_S": "0.2"}
    worker = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "worker", "--once", "--data-dir",
                               str(served["data_dir"])], env=env)
    try:
        # the page, not reloaded, shows the run's progress and then the finished run, from the API
        page.wait_for_function("() => window.__notReloaded === 42 && "
                               "document.querySelector('#active-run').dataset.done === 'finished'",
                               timeout=180_000)
    finally:
        assert worker.wait(180) == 0
    seen = page.evaluate("() => [window.__notReloaded, document.querySelector('#run-status').textContent, "
                         "document.querySelector('#run-progress').value, "
                         "document.querySelector('#run-percent').textContent]")
    assert seen == [42, "finished", 1, "100 %"], seen
    _shot(page, "jobs-02-finished-live")
    # then it reloads itself and shows the run's results and the history
    page.wait_for_selector("#run", timeout=30_000)
    assert page.evaluate("() => window.__notReloaded") is None
    assert page.locator("#runs tr.run-row.finished").count() == 1
    assert page.inner_text("[data-count=matched] b") != "0"
    _shot(page, "jobs-03-reloaded")
