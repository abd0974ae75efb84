"""The browser tests' kit: `opendvi serve` in a subprocess, Debian's Chromium through Playwright.

* :func:`serve` starts the service on a free port of 127.0.0.1 with a fresh data dir (SQLite), the
  administrator's one-time password changed; it yields a :class:`Server`.
* :func:`tour_world` fills a served demo case with what every page needs: a user of every role,
  their passwords changed, one finished matching run, one proposed and one confirmed
  identification, the missing persons' and the donors' names set by the intake officer
  (:data:`NAMES`: they must never reach a DNA-side role).
* :func:`chromium` launches the browser (skips the test where Playwright or Chromium is absent);
  :func:`sign_in` opens a signed-in page in a language; :func:`shot` saves a screenshot under
  ``$OPENDVI_TEST_ARTIFACTS`` (default ``build/test-artifacts``).

Test modules wrap these in their own module-scoped fixtures (one server and one browser per
module), e.g.::

    @pytest.fixture(scope="module")
    def server(tmp_path_factory):
        with webkit.serve(tmp_path_factory.mktemp("x")) as s:
            yield s
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("OPENDVI_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
#: a module's marker: its tests are skipped, with the reason, where Debian's chromium is absent
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")

ADMIN_ONE_TIME = "webkit-admin-password-1"  # OPENDVI_ADMIN_PASSWORD: one-time, changed at once
#: every user's own password (set after the first sign-in with a one-time one)
PASSWORDS = {"admin": "harbour lantern 7731", "intake": "woollen compass 6620", "lab": "copper kettle 4417",
             "dvi": "violet ferry 2290", "reviewer": "granite orchard 5183", "liaison": "linen harbour 3318"}
ROLES = {"admin": "administrator", "intake": "intake_officer", "lab": "laboratory_analyst",
         "dvi": "dvi_analyst", "reviewer": "reviewer", "liaison": "family_liaison"}
#: the DNA side: these roles never see a name
DNA_SIDE = ("admin", "lab", "dvi", "reviewer")
#: names the intake officer records (missing persons, then donors): unlike anything else on a page
NAMES = {"M1": "Kvitoslava Probename", "M2": "Yaroslav Probename", "F1-R1": "Bohdan Donorprobe",
         "F1-R2": "Zinaida Donorprobe", "F2-R1": "Ostap Donorprobe"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running `opendvi serve`: its base URL, data dir and environment, and the users' passwords."""

    base: str
    data_dir: Path
    env: dict[str, str]
    passwords: dict[str, str] = field(default_factory=lambda: {"admin": PASSWORDS["admin"]})
    world: dict[str, Any] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        """A bearer header of a fresh API session of ``user``."""
        r = httpx.post(f"{self.base}/api/auth/login", json={"username": user, "password": self.passwords[user]})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def add_user(self, user: str, role: str, password: str | None = None) -> None:
        """Creates ``user`` with a one-time password and changes it to its own (:data:`PASSWORDS`)."""
        password = password or PASSWORDS.get(user) or f"{user} own password 4242"
        one_time = "provisional gate 90210"
        r = httpx.post(f"{self.base}/api/users", json={"username": user, "password": one_time, "role": role},
                       headers=self.headers("admin"))
        assert r.status_code == 201, r.text
        t = httpx.post(f"{self.base}/api/auth/login", json={"username": user, "password": one_time})
        r = httpx.post(f"{self.base}/api/auth/password", json={"old_password": one_time, "new_password": password},
                       headers={"Authorization": f"Bearer {t.json()['token']}"})
        assert r.status_code == 200, r.text
        self.passwords[user] = password


@contextmanager
def serve(data_dir: Path, *, demo: bool = True, matching_worker: bool = True,
          extra_args: tuple[str, ...] = ()) -> Iterator[Server]:
    """`opendvi serve` on a free port with ``data_dir``, the administrator's password changed to
    :data:`PASSWORDS` ``["admin"]``; stopped (SIGTERM) on exit. Its output is in ``server.log``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(OPENDVI_ADMIN_PASSWORD=ADMIN_ONE_TIME, OPENDVI_ENV="development")
    args = [sys.executable, "-m", "opendvi.cli.main", "serve", "--port", str(port), "--data-dir", str(data_dir),
            "--demo" if demo else "--no-demo", *(() if matching_worker else ("--no-matching-worker",)), *extra_args]
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Server(base=f"http://127.0.0.1:{port}", data_dir=data_dir, env=env)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(f"{server.base}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start:\n" + log_path.read_text())
                time.sleep(0.3)
            tok = httpx.post(f"{server.base}/api/auth/login",
                             json={"username": "admin", "password": ADMIN_ONE_TIME}).json()
            assert tok["must_change_password"] is True
            r = httpx.post(f"{server.base}/api/auth/password",
                           json={"old_password": ADMIN_ONE_TIME, "new_password": PASSWORDS["admin"]},
                           headers={"Authorization": f"Bearer {tok['token']}"})
            assert r.status_code == 200, r.text
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover
                proc.kill()
                proc.wait()


def tour_world(server: Server) -> dict[str, Any]:
    """Every role's user, a finished matching run on operation ``demo``, the names of :data:`NAMES`,
    a proposed (V1) and a confirmed (V2) identification. Kept in ``server.world`` and returned."""
    base = server.base
    for user, role in ROLES.items():
        if user not in server.passwords:
            server.add_user(user, role)
    h = {u: server.headers(u) for u in ROLES}
    r = httpx.post(f"{base}/api/operations/demo/matching-runs", json={}, headers=h["dvi"])
    assert r.status_code == 202, r.text
    run_id = r.json()["run"]
    deadline = time.monotonic() + 300
    while (run := httpx.get(f"{base}/api/matching-runs/{run_id}", headers=h["dvi"]).json())["status"] != "finished":
        assert run["status"] in ("queued", "running") and time.monotonic() < deadline, run
        time.sleep(0.3)
    for code, name in NAMES.items():
        if code.startswith("M"):
            r = httpx.put(f"{base}/api/missing-persons/{code}/details", json={"full_name": name},
                          headers=h["intake"])
        else:
            r = httpx.patch(f"{base}/api/donors/{code}", json={"full_name": name, "relationship": "father",
                                                                "consent": "identification",
                                                                "consent_date": "2026-11-30"}, headers=h["intake"])
        assert r.status_code == 200, r.text
    best = {b: httpx.get(f"{base}/api/remains/{b}/candidates", headers=h["dvi"]).json()[0] for b in ("V1", "V2")}
    proposed = httpx.post(f"{base}/api/identifications", json={"candidate_id": best["V1"]["id"]}, headers=h["dvi"])
    confirmed = httpx.post(f"{base}/api/identifications", json={"candidate_id": best["V2"]["id"]},
                           headers=h["dvi"])
    assert proposed.status_code == confirmed.status_code == 201, (proposed.text, confirmed.text)
    r = httpx.post(f"{base}/api/identifications/{confirmed.json()['id']}/confirm", json={}, headers=h["reviewer"])
    assert r.status_code == 200, r.text
    server.world = {"run": run_id, "candidate": best["V1"]["id"], "proposed": proposed.json()["id"],
                    "confirmed": confirmed.json()["id"], "family": best["V1"]["family"]}
    return server.world


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright (the test is skipped without Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def set_language(context: Any, base: str, lang: str) -> None:
    """The interface language of a browser context: the ``opendvi_lang`` cookie, as the language switch sets it."""
    context.add_cookies([{"name": "opendvi_lang", "value": lang, "url": base}])


def sign_in(browser: Any, server: Server | str, user: str, password: str | None = None, *, lang: str | None = None,
            change_to: str | None = None, width: int = 1280, height: int = 900) -> Any:
    """A page of a new browser context, signed in as ``user`` on the sign-in page (its password from
    ``server.passwords`` unless given); with ``lang``, the browser asks for that language and the
    interface is set to it. With ``change_to``, the password is a one-time one: the page that asks
    for a new one comes first, and the new one is set."""
    base = server if isinstance(server, str) else server.base
    if password is None:
        assert isinstance(server, Server)
        password = server.passwords[user]
    context = browser.new_context(viewport={"width": width, "height": height},
                                  locale={"uk": "uk-UA", "en": "en-GB"}.get(lang or "en", lang))
    page = context.new_page()
    page.goto(f"{base}/")
    assert "/login" in page.url
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_selector("#whoami")
    assert user in page.inner_text("#whoami")
    if change_to is not None:
        assert page.url.endswith("/account/password") and page.is_visible("#must-change")
        page.goto(f"{base}/families")  # every page sends him back until he has changed it
        assert page.url.endswith("/account/password")
        page.fill("#old_password", password)
        page.fill("#new_password", change_to)
        page.fill("#new_password_again", change_to)
        page.click("#change-password")
        page.wait_for_selector("#account-message")
        if isinstance(server, Server):
            server.passwords[user] = change_to
    if lang is not None:
        set_language(context, base, lang)
    if change_to is not None or lang is not None:
        page.goto(f"{base}/")
    return page


def shot(page: Any, name: str, *, folder: str = "e2e") -> Path:
    """A full-page screenshot ``<artefacts>/<folder>/<name>.png``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    path = ARTIFACTS / folder / f"{safe}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


AXE_JS = REPO / "tests" / "vendor" / "axe-core" / "axe.min.js"
#: impacts that fail a page
AXE_FAILING = ("serious", "critical")


def axe_violations(page: Any, *, impacts: tuple[str, ...] = AXE_FAILING,
                   rules: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """axe-core's violations of ``page`` (WCAG 2.x A and AA and best practices; only ``rules`` if
    given) of these impacts, each ``{id, impact, help, nodes: [target, ...]}``. axe is evaluated by
    the driver, so the page's Content-Security-Policy stays as the server sent it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    found = page.evaluate("""async (rules) => {
        const options = {resultTypes: ["violations"]};
        if (rules.length) { options.runOnly = {type: "rule", values: rules}; }
        const r = await window.axe.run(document, options);
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 8).map(n => n.target.join(" "))}));
    }""", list(rules))
    return [v for v in found if v["impact"] in impacts]


_AXE: list[str] = []


def _axe_source() -> str:
    if not _AXE:
        _AXE.append(AXE_JS.read_text(encoding="utf-8"))
    return _AXE[0]
