"""The operation page shows a matching run's progress live, without a reload (headless Chromium).

``opendvi serve --no-matching-worker`` runs on a fresh SQLite data dir with the demo case; a DVI
analyst queues a run on the operation's page (it shows "queued"); then an ``opendvi worker --once``
process executes it, and the page, never reloaded (a value set in its window survives), shows the
status and progress change to "finished" from the JSON API; then it reloads itself and shows the run
in the history. Screenshots go to ``$OPENDVI_TEST_ARTIFACTS/e2e``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests import webkit

pytestmark = [webkit.needs_chromium, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`opendvi serve --no-matching-worker` with the demo case and a DVI analyst."""
    with webkit.serve(tmp_path_factory.mktemp("jobs-data"), matching_worker=False) as s:
        s.add_user("dvi", "dvi_analyst")
        yield {"base": s.base, "data_dir": s.data_dir, "env": s.env, "server": s}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with webkit.chromium() as b:
        yield b


def test_operation_page_shows_the_runs_progress_live(served: dict[str, Any], browser: Any) -> None:
    base = served["base"]
    page = webkit.sign_in(browser, served["server"], "dvi")
    page.goto(f"{base}/operations/demo")
    page.click("#run-matching")
    page.wait_for_selector("#active-run")
    assert page.inner_text("#run-status") == "queued"
    page.wait_for_function("() => Number(document.querySelector('#active-run').dataset.polls || 0) >= 2")
    assert page.inner_text("#run-status") == "queued"  # polled, still queued: no worker yet
    page.evaluate("window.__notReloaded = 42")
    webkit.shot(page, "jobs-01-queued")
    env = {**served["env"], "OPENDVI_DATA_DIR": str(served["data_dir"]), "OPENDVI_JOB_POLL_S": "0.2"}
    worker = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "worker", "--once", "--data-dir",
                               str(served["data_dir"])], env=env)
    try:
        # the page, not reloaded, shows the run's progress and then the finished run, from the API; read in
        # the same call that sees it finished (the page reloads itself 1.5 s later: a busy machine can take
        # longer than that between two calls)
        seen = page.wait_for_function(
            "() => window.__notReloaded === 42 && document.querySelector('#active-run').dataset.done === 'finished'"
            " && [window.__notReloaded, document.querySelector('#run-status').textContent, "
            "document.querySelector('#run-progress').value, document.querySelector('#run-percent').textContent]",
            timeout=180_000).json_value()
    finally:
        assert worker.wait(180) == 0
    assert seen == [42, "finished", 1, "100 %"], seen
    webkit.shot(page, "jobs-02-finished-live")
    # then it reloads itself and shows the run's results and the history
    page.wait_for_selector("#run", timeout=30_000)
    assert page.evaluate("() => window.__notReloaded") is None
    assert page.locator("#runs tr.run-row.finished").count() == 1
    assert page.inner_text("[data-count=matched] b") != "0"
    webkit.shot(page, "jobs-03-reloaded")
