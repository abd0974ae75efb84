"""A tour of every page, as every role that may see it, in English and in Ukrainian (Debian's Chromium).

One `opendvi serve` (the demo case, a user of every role, a finished matching run, a proposed and a
confirmed identification, names recorded by the intake officer: tests/webkit.py) and one browser for
the module; one signed-in browser context per role, its language switched by the language cookie.
Each page: loaded (200), ``<html lang>`` in the language, a screenshot in
``$OPENDVI_TEST_ARTIFACTS/tour``, no axe-core violation of impact serious or critical, and, for the
DNA side (administrator, laboratory, DVI analyst, reviewer), no name of a missing person or donor.
Then: the keyboard reaches every control of a form page and submits forms; the pages are usable
800 px wide (no horizontal scroll of the document).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from opendvi.service.policy import PERMISSIONS
from opendvi.store.models import Role
from tests import webkit

pytestmark = [webkit.needs_chromium, pytest.mark.slow]

LANGS = ("en", "uk")
#: (name, path, permission): None for every signed-in user
PAGES: list[tuple[str, str, str | None]] = [
    ("home", "/", None),
    ("operation", "/operations/demo", "operations.read"),
    ("imports", "/imports", "imports.page"),
    ("remains-list", "/remains", "remains.read"),
    ("remains", "/remains/V1", "remains.read"),
    ("families", "/families", "families.read"),
    ("family", "/families/{family}", "families.read"),
    ("weak-families", "/power", "families.read"),
    ("match", "/candidates/{candidate}", "candidates.read"),
    ("identifications", "/identifications", "identifications.read"),
    ("report", "/identifications/{confirmed}/report", "identifications.read"),
    ("liaison", "/liaison", "notifications.read"),
    ("audit", "/audit", "audit.read"),
    ("users", "/users", "users.manage"),
    ("account", "/account/password", None),
]
#: public pages, the same for every role: toured once per language (as the administrator)
DOCS = [("api-docs", "/api/docs", "#api-docs[data-ready='1'] .opblock"),
        ("api-redoc", "/api/redoc", "#api-docs[data-ready='1'] [data-section-id^='operation/']")]


def _may_see(user: str, permission: str | None) -> bool:
    return permission is None or Role(webkit.ROLES[user]) in PERMISSIONS[permission]


CASES = [pytest.param(user, lang, name, path, perm, id=f"{user}-{lang}-{name}")
         for user in webkit.ROLES for lang in LANGS for name, path, perm in PAGES if _may_see(user, perm)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webkit.Server]:
    with webkit.serve(tmp_path_factory.mktemp("tour"), extra_args=("--workers", "1")) as s:
        webkit.tour_world(s)
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with webkit.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def signed_in(server: webkit.Server, browser: Any) -> Iterator[dict[str, Any]]:
    """One signed-in page per role (created on first use), reused by every test of the module."""
    pages: dict[str, Any] = {}

    def page_of(user: str) -> Any:
        if user not in pages:
            pages[user] = webkit.sign_in(browser, server, user)
        return pages[user]

    yield {"page": page_of}
    for page in pages.values():
        page.context.close()


def _open(server: webkit.Server, page: Any, path: str, lang: str) -> Any:
    webkit.set_language(page.context, server.base, lang)
    return page.goto(server.base + path.format(**server.world))


def _names_in(text: str) -> list[str]:
    return [name for name in webkit.NAMES.values() if name in text]


@pytest.mark.parametrize(("user", "lang", "name", "path", "permission"), CASES)
def test_page(server: webkit.Server, signed_in: dict[str, Any], user: str, lang: str, name: str, path: str,
              permission: str | None) -> None:
    page = signed_in["page"](user)
    response = _open(server, page, path, lang)
    assert response.status == 200, (user, path, response.status)
    assert page.get_attribute("html", "lang") == lang
    webkit.shot(page, f"{user}-{lang}-{name}", folder="tour")
    if user in webkit.DNA_SIDE:
        assert not _names_in(page.content()), f"{user} sees a name on {path}"
    violations = webkit.axe_violations(page)
    assert not violations, violations
    # every table header says what it heads (axe leaves simple tables alone)
    unscoped = page.evaluate("() => Array.from(document.querySelectorAll('th:not([scope=col]):not([scope=row])'))"
                             ".map(th => th.outerHTML.slice(0, 80))")
    assert not unscoped, unscoped


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("name", "path", "ready"), DOCS, ids=[d[0] for d in DOCS])
def test_api_docs_page(server: webkit.Server, signed_in: dict[str, Any], lang: str, name: str, path: str,
                       ready: str) -> None:
    page = signed_in["page"]("admin")
    assert _open(server, page, path, lang).status == 200
    page.wait_for_selector(ready, timeout=60_000, state="attached")
    assert page.get_attribute("html", "lang") == lang
    webkit.shot(page, f"admin-{lang}-{name}", folder="tour")
    violations = webkit.axe_violations(page)
    assert not violations, violations


@pytest.mark.parametrize("lang", LANGS)
def test_sign_in_and_error_pages(server: webkit.Server, browser: Any, signed_in: dict[str, Any], lang: str) -> None:
    """The pages outside the tour: the sign-in page (signed out) and an error page (a remains that is not there)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        _open(server, page, "/login", lang)
        assert page.get_attribute("html", "lang") == lang
        webkit.shot(page, f"anonymous-{lang}-login", folder="tour")
        assert not webkit.axe_violations(page)
    finally:
        context.close()
    page = signed_in["page"]("dvi")
    assert _open(server, page, "/remains/NO-SUCH-REMAINS", lang).status == 404
    assert page.get_attribute("html", "lang") == lang
    webkit.shot(page, f"dvi-{lang}-error-404", folder="tour")
    assert not webkit.axe_violations(page)


def test_names__reach_the_intake_officer_and_the_liaison(server: webkit.Server, signed_in: dict[str, Any]) -> None:
    """The names test above can fail: the names are there, for the roles that may see them."""
    page = signed_in["page"]("intake")
    _open(server, page, "/families?q=F1", "en")
    assert webkit.NAMES["M1"] in page.content()


# -- keyboard ------------------------------------------------------------------------------------------

_CONTROLS = """() => Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])'))
  .filter(e => !e.disabled && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
  .filter(e => !(e.tagName === 'SUMMARY' ? e.parentElement.parentElement : e).closest('details:not([open])'))
  .map((e, i) => { e.dataset.kb = String(i); return String(i); })"""


def _tab_through(page: Any, limit: int) -> list[str]:
    """The controls focused by pressing Tab from the top of the page, in order (``data-kb`` marks)."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    seen: list[str] = []
    for _ in range(3 * limit):  # a date field takes a Tab per part (day, month, year)
        page.keyboard.press("Tab")
        mark = page.evaluate("() => document.activeElement ? (document.activeElement.dataset.kb || '') : ''")
        if seen and mark == seen[0]:
            break  # round the page and back to the first control
        if mark not in seen:
            seen.append(mark)
    return seen


@pytest.mark.parametrize(("user", "path"), [("admin", "/users"), ("dvi", "/operations/demo"),
                                            ("dvi", "/candidates/{candidate}"), ("intake", "/imports"),
                                            ("intake", "/families/{family}"), ("reviewer", "/identifications"),
                                            ("liaison", "/liaison")])
def test_keyboard__tab_reaches_every_control(server: webkit.Server, signed_in: dict[str, Any], user: str,
                                             path: str) -> None:
    page = signed_in["page"](user)
    _open(server, page, path, "en")
    for opened in (False, True):
        if opened:  # each folded part (<details>) opens from the keyboard, and its controls are reached too
            closed = page.locator("main details:not([open]) > summary")
            for _ in range(closed.count()):
                closed.first.focus()
                page.keyboard.press("Enter")
            assert closed.count() == 0
        controls = page.evaluate(_CONTROLS)
        assert len(controls) > 3
        seen = _tab_through(page, len(controls) + 5)
        missed = [page.evaluate(f"() => document.querySelector('[data-kb=\"{c}\"]').outerHTML.slice(0, 120)")
                  for c in controls if c not in seen]
        assert not missed, missed
    # the first stop is the skip link, and it leads to the main content
    first = page.locator("[data-kb='0']")
    assert first.get_attribute("href") == "#content"


def test_keyboard__sign_in_and_search_without_a_mouse(server: webkit.Server, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server.base}/login")
    for _ in range(10):  # from the top of the page to the username field
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "username":
            break
    page.keyboard.type("dvi")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "password"
    page.keyboard.type(server.passwords["dvi"])
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == "sign-in":
            break
    page.keyboard.press("Space")  # a button is pressed with the space bar
    page.wait_for_selector("#whoami")
    page.goto(f"{server.base}/remains")
    page.focus("input[name=q]")
    page.keyboard.type("V1")
    page.keyboard.press("Enter")  # a form is submitted with Enter
    page.wait_for_url("**/remains?*q=V1*")
    context.close()


# -- 800 px wide ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", list(webkit.ROLES))
def test_pages_at_800_px__no_horizontal_scroll(server: webkit.Server, browser: Any, user: str) -> None:
    page = webkit.sign_in(browser, server, user, lang="uk", width=800)  # Ukrainian: the longer words
    wide: list[str] = []
    try:
        for name, path, permission in PAGES:
            if not _may_see(user, permission):
                continue
            response = page.goto(server.base + path.format(**server.world))
            if response.status != 200:
                continue  # pages not built yet or not for this role: see test_page
            width = page.evaluate("() => document.scrollingElement.scrollWidth")
            if width > 800 + 2:
                wide.append(f"{path}: {width}px")
                webkit.shot(page, f"{user}-800px-{name}", folder="tour")
            # a table that scrolls in its place must be reachable by the keyboard
            stuck = webkit.axe_violations(page, rules=("scrollable-region-focusable",))
            if stuck:
                wide.append(f"{path}: {stuck}")
    finally:
        page.context.close()
    assert not wide, wide
