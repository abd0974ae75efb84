"""`opendvi serve` on a fresh data dir: demo case loaded, one-time admin password printed and working."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.clikit import run

#: Variables of this environment that the server (and then ``audit verify``) runs without.
REMOVED = ("DATABASE_URL", "OPENDVI_ADMIN_PASSWORD", "OPENDVI_ENV")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve__prints_a_working_one_time_password_and_loads_the_demo(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in REMOVED}
    out = (tmp_path / "out.txt").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "serve", "--port", str(port), "--data-dir",
                             str(tmp_path)], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        text = (tmp_path / "out.txt").read_text()
        assert "serving on http://127.0.0.1" in text, text
        password = re.search(r"one-time password.*?\n\n\s+(\S+)\n", text, re.S)
        assert password, text
        r = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": password.group(1)})
        assert r.status_code == 200 and r.json()["must_change_password"] is True
        h = {"Authorization": f"Bearer {r.json()['token']}"}
        # a one-time password: nothing but the change until it is changed
        blocked = httpx.get(f"{base}/api/operations/demo", headers=h)
        assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "password_change_required"
        r = httpx.post(f"{base}/api/auth/password", headers=h,
                       json={"old_password": password.group(1), "new_password": "grey heron over the marsh"})
        assert r.status_code == 200, r.text
        demo = httpx.get(f"{base}/api/operations/demo", headers=h).json()
        assert demo["dashboard"]["received"] == 8
        assert (tmp_path / "opendvi.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        out.close()
    # the audit log of that database is intact
    ok = run("audit", "verify", env={**dict.fromkeys(REMOVED), "OPENDVI_DATA_DIR": str(tmp_path)})
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stderr
