"""The interface in Ukrainian and English (opendvi.i18n, docs/i18n.md).

(a) the Ukrainian catalogue is complete: every message Babel extracts from the source tree (at test
    time) has a non-empty, non-fuzzy translation with the same placeholders, three plural forms,
    and no entry is left over;
(b) every text of every template goes through gettext (Jinja's lexer: no literal text node with
    letters outside ``{{ }}``/``{% %}``, no literal ``title``/``alt``/``placeholder``/``aria-label``),
    and the pages' scripts hold no sentence of their own;
(c) the pages rendered in Ukrainian (cookie or ``Accept-Language: uk``) are Ukrainian: ``<html lang="uk">``,
    Ukrainian dates, no English message of the catalogue left whole; English stays the default;
(d) the language switch (header, sign-in page, account page, API) works and is kept per user.
"""

from __future__ import annotations

import ast
import html
import re
from collections.abc import Iterator
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.catalog import Catalog
from fastapi.testclient import TestClient
from jinja2 import Environment
from sqlalchemy import update

from opendvi import i18n
from opendvi.i18n import catalog as cat
from opendvi.i18n import terms
from opendvi.store import db as store_db
from opendvi.store.models import User
from tests import webkit
from tests.servicekit import bearer, make_app, match, migrated_engine, password_of

SRC = Path(i18n.__file__).resolve().parents[1]
TEMPLATES = sorted(SRC.glob("**/templates/*.html"))
SCRIPTS = sorted((SRC / "service" / "templates").glob("*.js"))

#: literal words a template may show untranslated, as Ukrainian texts write them too: the product's name,
#: the statistical notation of forensic reports (LR, GLR, log10 LR, P(LR ≥ 10⁴), E[LR], θ), the names of
#: file formats and of the API documentation tools
EXEMPT = re.compile(r"\bopendvi\b|\blog10\b|\bG?LR\b|\bP\b|\bE\b|θ|\bSHA-256\b|\b(PDF|CSV|JSON|PNG|SVG|Excel)\b"
                    r"|\bSwagger UI\b|\bReDoc\b")
#: attributes whose text a person reads (or a screen reader speaks)
READ_ATTRIBUTES = re.compile(r"""\b(title|alt|placeholder|aria-label|aria-description)\s*=\s*(["'])(.*?)\2""", re.S)
CYRILLIC = re.compile(r"[А-Яа-яІіЇїЄєҐґ]")
SENTINEL = "\x00"


def has_letter(text: str) -> bool:
    """Letters, not digits: a superscript "⁴" matches ``\\w`` but is no letter."""
    return any(c.isalpha() for c in text)


# ---------------------------------------------------------------------------
# (a) the catalogue
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted() -> Catalog:
    return cat.extract()


def test_catalogue__extraction_finds_the_interface(extracted: Catalog) -> None:
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.id}
    assert len(ids) > 300
    # a template, a Python message, a plural, a context and a module-level (lazy) string
    assert {"Sign in", "the current password is wrong", "%(num)s donor", "Reviewer"} <= ids
    assert any(m.context == "identification state" and m.id == "confirmed" for m in extracted)


def test_catalogue__every_message_is_translated(extracted: Catalog) -> None:
    found = cat.problems(cat.read(), extracted)
    assert not found, f"{len(found)} problems (python -m opendvi.i18n.catalog update; docs/i18n.md):\n" + "\n".join(
        found[:40])


def test_catalogue__header_and_plural_rule() -> None:
    uk = cat.read()
    assert uk.num_plurals == 3
    assert not uk.obsolete
    with i18n.use_locale("uk"):
        forms = [i18n.ngettext("%(num)s donor", "%(num)s donors", n) for n in (1, 2, 5, 11, 21, 22, 25)]
    assert forms == ["1 донор", "2 донори", "5 донорів", "11 донорів", "21 донор", "22 донори", "25 донорів"]


def test_catalogue__the_check_finds_each_kind_of_problem() -> None:
    template = Catalog(locale="uk")
    template.add("Remains %(b)s")
    template.add("Save")
    template.add("Draft")
    template.add(("%(num)s marker", "%(num)s markers"))
    template.add("open", context="state")
    po = Catalog(locale="uk")
    po.add("Remains %(b)s", "Останки %(x)s")  # placeholder renamed
    po.add("Save", "Зберегти", flags=["fuzzy"])
    po.add("Draft", "")
    po.add(("%(num)s marker", "%(num)s markers"), ("%(num)s маркер", "%(num)s маркери"))  # two forms
    po.add("Gone", "Зникло")  # not in the source any more
    found = "\n".join(cat.problems(po, template))
    for what in ("placeholders", "fuzzy: 'Save'", "untranslated: 'Draft'", "2 plural forms", "missing: 'open'",
                 "obsolete: 'Gone'"):
        assert what in found, (what, found)


# ---------------------------------------------------------------------------
# (b) every template text wrapped
# ---------------------------------------------------------------------------


def _literal_stream(source: str) -> str:
    """The template with every ``{{ }}``, ``{% %}`` and ``{# #}`` replaced by one sentinel (Jinja's lexer)."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    out: list[str] = []
    for _lineno, kind, value in env.lex(source):
        if kind == "data":
            out.append(value)
        elif not out or out[-1] != SENTINEL:
            out.append(SENTINEL)
    return "".join(out)


def unwrapped(source: str) -> list[str]:
    """Literal texts with letters that a person would read: text nodes and reading attributes."""
    text = _literal_stream(source)
    text = re.sub(r"<!--.*?-->", SENTINEL, text, flags=re.S)
    # machine text: scripts, styles, and code samples (file formats, API calls) are not translated
    text = re.sub(r"<(script|style|code|kbd|samp)\b[^>]*>.*?</\1\s*>", SENTINEL, text, flags=re.S | re.I)
    found: list[str] = []
    for tag in re.findall(r"<[^>]*>", text):
        for _name, _q, value in READ_ATTRIBUTES.findall(tag):
            for piece in value.split(SENTINEL):
                if has_letter(EXEMPT.sub("", piece)):
                    found.append(f"{_name}={piece.strip()!r}")
    text = re.sub(r"<[^>]*>", SENTINEL, text)
    text = re.sub(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);", " ", text)
    for piece in text.split(SENTINEL):
        if has_letter(EXEMPT.sub("", piece)):
            found.append(" ".join(piece.split()))
    return found


def test_templates__the_check_finds_unwrapped_text() -> None:
    assert unwrapped('<p>Remains {{ r.barcode }}</p>') == ["Remains"]
    assert unwrapped('<input placeholder="full name" name="q">') == ["placeholder='full name'"]
    assert unwrapped('<img alt="{{ _("plot") }}" src="/x.png">') == []
    assert unwrapped('<th scope="col">{{ _("marker") }}</th><th scope="col">log10 LR</th>') == []
    assert unwrapped("<p>{{ _('a %(x)s', x=1) }} &middot; <code>dvi-case/1</code> {# a note #}</p>") == []
    assert unwrapped("{% if x %}<b>Filter</b>{% endif %}<style>b{color:red}</style>") == ["Filter"]


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_templates__every_text_goes_through_gettext(path: Path) -> None:
    found = unwrapped(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(SRC)}: text outside gettext: {found}"


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_scripts__show_only_texts_the_page_gives_them(path: Path) -> None:
    """A script's sentences come from the page (data-messages, opendvi.i18n.terms): a string literal of
    three words or more in a script is a text left in English."""
    code = re.sub(r"^\s*//.*$", "", path.read_text(encoding="utf-8"), flags=re.M)
    literals = re.findall(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'', code)
    sentences = [a or b for a, b in literals if sum(has_letter(w) for w in (a or b).split()) >= 3]
    assert not sentences, f"{path.name}: {sentences}"


#: exceptions whose message reaches a page or the API's ``message``: (name, index of the message argument)
MESSAGE_ARGS = {"APIError": 1, "ImportValidationError": 0, "ConflictError": 0}


def literal_messages(source: str) -> list[str]:
    """Messages of :data:`MESSAGE_ARGS` written as a bare string (or f-string, or a list of them) instead of
    going through ``_()``/``lazy()``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name in MESSAGE_ARGS and len(node.args) > MESSAGE_ARGS[name]:
                arg = node.args[MESSAGE_ARGS[name]]
                for a in arg.elts if isinstance(arg, ast.List) else [arg]:
                    if isinstance(a, ast.JoinedStr | ast.BinOp) or (isinstance(a, ast.Constant)
                                                                   and isinstance(a.value, str)):
                        found.append(f"line {node.lineno}: {ast.unparse(a)[:80]}")
    return found


def test_python__the_check_finds_bare_messages() -> None:
    assert literal_messages('raise APIError(404, f"no family {c}", code="not_found")') == [
        "line 1: f'no family {c}'"]
    assert literal_messages('raise ImportValidationError(["bad " + x], filename=f)') == ["line 1: 'bad ' + x"]
    assert literal_messages('raise APIError(404, _("no family %(c)s", c=c))\nAPIError(401, lazy("x"))') == []


SERVICE_PY = sorted((SRC / "service").rglob("*.py"))


@pytest.mark.parametrize("path", SERVICE_PY, ids=[p.relative_to(SRC).as_posix() for p in SERVICE_PY])
def test_python__service_messages_go_through_gettext(path: Path) -> None:
    """An error message of the service is read by a person (a page, the API's ``message``): ``_()`` where it
    is raised, or ``lazy()`` for a fixed one that ``errors.py`` translates when it answers."""
    found = literal_messages(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(SRC)}: {found}"


def test_terms__every_script_message_and_stored_value_is_known() -> None:
    with i18n.use_locale("uk"):
        assert terms.term("confirmed", "identification") == "підтверджена"
        assert terms.term("running", "run") == "виконується"
        assert terms.term("F", "sex") == "жіноча"
        assert terms.term("something new", "run") == "something new"  # shown as it is
        js = str(terms.js_messages("power-panel"))
    assert "'" not in js and "<" not in js and "Зникла безвісти особа %(missing)s" in js


# ---------------------------------------------------------------------------
# the module: negotiation, formats, Jinja's gettext
# ---------------------------------------------------------------------------


def test_negotiate__accept_language() -> None:
    assert i18n.negotiate("uk-UA,uk;q=0.9,en;q=0.8") == "uk"
    assert i18n.negotiate("de-DE,en;q=0.5,uk;q=0.4") == "en"
    assert i18n.negotiate("fr, de") == "en"
    assert i18n.negotiate("en;q=0, uk;q=0.1") == "uk"
    assert i18n.negotiate(None) == "en"


def test_formats__dates_and_numbers_by_locale() -> None:
    when = datetime(2026, 12, 7, 9, 30, 10)
    assert i18n.format_date(date(2026, 12, 7)) == "7 Dec 2026"  # not 12/7/2026
    assert i18n.format_number(12345.678, 2) == "12,345.68"
    with i18n.use_locale("uk"):
        assert i18n.format_date("2026-12-07") == "7 груд. 2026\u202fр."  # CLDR: a narrow no-break space
        assert i18n.format_datetime(when) == "7 груд. 2026\u202fр., 09:30:10"
        assert i18n.format_number(12345.678, 2) == "12\xa0345,68"
    assert i18n.format_date(None) == "" and i18n.format_datetime("") == ""


def test_jinja__placeholders_plurals_and_escaping() -> None:
    env = Environment(autoescape=True)
    i18n.install(env)
    t = env.from_string('{{ ngettext("%(num)s donor of %(f)s", "%(num)s donors of %(f)s", n, f=f) }}|'
                        '{{ _("Welcome, %(name)s", name=name) }}|{{ d|date }}|{{ x|number(1) }}|{{ lang() }}')
    with i18n.use_locale("uk"):
        out = t.render(n=3, f="F<1>", name="<b>", d=date(2026, 12, 7), x=0.27)
    # a placeholder beside num in a plural (not in the catalogue: the English plural), arguments escaped
    assert out == "3 donors of F&lt;1&gt;|Вітаємо, &lt;b&gt;|7 груд. 2026\u202fр.|0,3|uk"


def test_jinja__filters_on_constants_follow_each_request() -> None:
    """Jinja folds a filter on constants into the compiled template unless the filter takes the context:
    compiled in English, rendered in Ukrainian, the words must still be Ukrainian."""
    env = Environment(autoescape=True)
    i18n.install(env)
    t = env.from_string('{{ "exchange"|term("operation") }}|{{ 1234.5|number(1) }}|{{ "2026-12-07"|date }}')
    assert t.render() == "exchange|1,234.5|7 Dec 2026"
    with i18n.use_locale("uk"):
        assert t.render() == "обмін|1\xa0234,5|7 груд. 2026\u202fр."


# ---------------------------------------------------------------------------
# (c) the pages in Ukrainian
# ---------------------------------------------------------------------------


class _Text(HTMLParser):
    """Text nodes and read attributes of a page (scripts, styles and code samples left out)."""

    SKIP = ("script", "style", "code", "kbd", "samp")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "alt", "placeholder", "aria-label") and value:
                self.texts.append(" ".join(value.split()))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(" ".join(data.split()))


def texts_of(page: str) -> list[str]:
    parser = _Text()
    parser.feed(page)
    return parser.texts


@pytest.fixture(scope="module")
def english_messages() -> set[str]:
    """Whole messages of the catalogue (no placeholder) whose Ukrainian differs from the English."""
    out: set[str] = set()
    for m in cat.read():
        ids = [m.id] if isinstance(m.id, str) else list(m.id or ())
        strs = [m.string] if isinstance(m.string, str) else list(m.string or ())
        for msgid in ids:
            if msgid and "%(" not in msgid and has_letter(msgid) and msgid not in strs:
                out.add(html.unescape(re.sub(r"<[^>]+>", "", msgid)).replace("%%", "%"))
    return out


def _routes(app: Any) -> Iterator[Any]:
    def walk(routes: Any) -> Iterator[Any]:
        for r in routes:
            if hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)
            else:
                yield r

    yield from walk(app.routes)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo case matched, one identification proposed and one confirmed."""
    tmp = tmp_path_factory.mktemp("i18n")
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        # the bootstrap administrator is named "Administrator": data that would read as an English text
        with store_db.transaction(app.state.sessionmaker) as db:
            db.execute(update(User).where(User.username == "admin").values(full_name="Олена Адмін"))
        client = TestClient(app)
        h = {u: bearer(client, u) for u in ("admin", "dvi", "reviewer", "intake", "liaison", "lab")}
        match(client, app, h["dvi"])
        best = {b: client.get(f"/api/remains/{b}/candidates", headers=h["dvi"]).json()[0] for b in ("V1", "V2")}
        proposed = client.post("/api/identifications", json={"candidate_id": best["V1"]["id"]}, headers=h["dvi"])
        confirmed = client.post("/api/identifications", json={"candidate_id": best["V2"]["id"]}, headers=h["dvi"])
        assert proposed.status_code == confirmed.status_code == 201, proposed.text
        r = client.post(f"/api/identifications/{confirmed.json()['id']}/confirm", json={}, headers=h["reviewer"])
        assert r.status_code == 200, r.text
        yield {"app": app, "client": client, "headers": h, "candidate": best["V1"]["id"],
               "identification": confirmed.json()["id"]}


def _path(world: dict[str, Any], template: str) -> str | None:
    values = {"code": "F1" if template.startswith(("/families", "/power")) else "demo", "barcode": "V1",
              "candidate_id": world["candidate"], "identification_id": world["identification"]}
    path = re.sub(r"\{(\w+)(:path)?\}", lambda m: str(values.get(m.group(1), SENTINEL)), template)
    return None if SENTINEL in path else path


def _pages(world: dict[str, Any]) -> list[str]:
    paths = []
    for r in _routes(world["app"]):
        if "GET" in (getattr(r, "methods", None) or ()) and not r.path.startswith(("/api/", "/assets/", "/static/")):
            path = _path(world, r.path)
            if path is not None:
                paths.append(path)
    return sorted(set(paths))


def _render(world: dict[str, Any], path: str, **headers: str) -> tuple[str, str] | None:
    """The page as the first role that may see it (HTML only), or None."""
    client = world["client"]
    for user in ("admin", "dvi", "intake", "liaison", "reviewer", "lab"):
        client.cookies.clear()
        r = client.get(path, headers={**world["headers"][user], "accept": "text/html", **headers})
        if r.status_code == 200 and r.headers["content-type"].startswith("text/html"):
            return user, r.text
    return None


def test_pages__english_by_default_ukrainian_by_cookie_or_browser(world: dict[str, Any]) -> None:
    client, h = world["client"], world["headers"]["admin"]
    client.cookies.clear()
    en = client.get("/", headers=h)
    assert '<html lang="en">' in en.text and ">Operations<" in en.text and en.headers["content-language"] == "en"
    uk = client.get("/", headers={**h, "accept-language": "uk-UA,uk;q=0.9,en;q=0.5"})
    assert '<html lang="uk">' in uk.text and ">Операції<" in uk.text and uk.headers["content-language"] == "uk"
    client.cookies.set(i18n.COOKIE, "uk")
    assert '<html lang="uk">' in client.get("/", headers=h).text  # the cookie, whatever the browser says
    client.cookies.set(i18n.COOKIE, "en")
    assert '<html lang="en">' in client.get("/", headers={**h, "accept-language": "uk"}).text
    client.cookies.clear()
    login = client.get("/login", headers={"accept-language": "uk"})
    assert '<html lang="uk">' in login.text and "Ім'я користувача" in login.text


def test_pages__every_page_in_ukrainian(world: dict[str, Any], english_messages: set[str]) -> None:
    pages = _pages(world)
    assert len(pages) >= 12, pages
    seen: dict[str, str] = {}
    for path in pages:
        got = _render(world, path, cookie=f"{i18n.COOKIE}=uk")
        if got is None:
            continue
        user, page = got
        seen[path] = user
        assert '<html lang="uk">' in page, path
        assert CYRILLIC.search(page), path
        left = sorted({t for t in texts_of(page) if t in english_messages})
        assert not left, f"{path} ({user}): English left: {left}"
    assert {"/", "/audit", "/remains", "/identifications", "/account/password", "/operations/demo"} <= set(seen), seen


def test_pages__the_check_finds_english(world: dict[str, Any], english_messages: set[str]) -> None:
    got = _render(world, "/operations/demo")
    assert got is not None
    left = {t for t in texts_of(got[1]) if t in english_messages}
    assert {"Operations", "Run matching"} & left or "Remains of this operation" in left, left


def test_pages__ukrainian_dates_numbers_and_states(world: dict[str, Any]) -> None:
    cookie = {"cookie": f"{i18n.COOKIE}=uk"}
    got = _render(world, "/audit", **cookie)
    assert got is not None
    assert re.search(r"\d{1,2} [а-яії]+\.?\s\d{4}\sр\., \d\d:\d\d:\d\d", got[1]), "no Ukrainian time stamp"
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", " ".join(texts_of(got[1]))), "an ISO time stamp on a page"
    page = _render(world, "/identifications", **cookie)
    assert page is not None and "підтверджена" in page[1] and "запропонована" in page[1]
    # the API's data stay ISO, whatever the language
    api = world["client"].get("/api/identifications", headers={**world["headers"]["admin"], **cookie}).json()
    assert re.match(r"\d{4}-\d\d-\d\dT", api[0]["proposed_at"])


def test_errors__message_translated_code_kept(world: dict[str, Any]) -> None:
    client = world["client"]
    client.cookies.clear()
    r = client.get("/api/me", headers={"accept-language": "uk"})
    body = r.json()["error"]
    assert r.status_code == 401 and body["code"] == "unauthenticated" and body["message"] == "спершу увійдіть"
    r = client.get("/api/me")
    assert r.json()["error"]["message"] == "sign in first"
    r = client.get("/audit", headers={**world["headers"]["dvi"], "accept": "text/html", "accept-language": "uk"})
    assert r.status_code == 403 and 'data-code="forbidden"' in r.text and "Помилка 403" in r.text


# ---------------------------------------------------------------------------
# (d) the language switch
# ---------------------------------------------------------------------------


def _token(page: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, page[:500]
    return m.group(1)


def _sign_in(client: TestClient, username: str) -> Any:
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password_of(username),
                                       "csrf_token": _token(page.text), "next": "/"}, follow_redirects=False)


def test_switch__on_the_sign_in_page(world: dict[str, Any]) -> None:
    client = world["client"]
    client.cookies.clear()
    page = client.get("/login?next=/remains")
    assert 'id="language-switch"' in page.text and 'action="/login/language"' in page.text
    r = client.post("/login/language", data={"language": "uk", "csrf_token": "wrong", "next": "/remains"},
                    follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/login/language", data={"language": "uk", "csrf_token": _token(page.text), "next": "/remains"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fremains"
    assert client.cookies.get(i18n.COOKIE) == "uk"
    assert '<html lang="uk">' in client.get(r.headers["location"]).text
    bad = client.post("/login/language", data={"language": "fr", "csrf_token": _token(page.text)},
                      headers={"accept": "application/json"})
    assert bad.status_code == 422 and "language" in bad.text
    client.cookies.clear()


def test_switch__kept_per_user_from_one_sign_in_to_the_next(world: dict[str, Any]) -> None:
    client = world["client"]
    client.cookies.clear()
    assert _sign_in(client, "reviewer").status_code == 303
    home = client.get("/")
    assert '<html lang="en">' in home.text and 'action="/account/language"' in home.text
    # the header's switch: a form with the session's CSRF token
    r = client.post("/account/language", data={"language": "uk", "next": "/identifications"},
                    follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = client.post("/account/language", data={"language": "uk", "next": "/identifications",
                                               "csrf_token": _token(home.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/identifications"
    assert '<html lang="uk">' in client.get("/identifications").text
    account = client.get("/account/password").text
    assert re.search(r'<option value="uk" lang="uk" selected>', account)
    # a new browser (no cookie) that asks for English: the user's choice wins once signed in
    client.cookies.clear()
    r = _sign_in(client, "reviewer")
    assert r.status_code == 303 and client.cookies.get(i18n.COOKIE) == "uk"
    assert '<html lang="uk">' in client.get("/", headers={"accept-language": "en"}).text
    # back to the browser's language: the setting and the cookie go
    r = client.post("/account/language", data={"language": "", "next": "/account/password",
                                               "csrf_token": _token(client.get("/").text)}, follow_redirects=False)
    assert r.status_code == 303 and client.cookies.get(i18n.COOKIE) is None
    assert '<html lang="en">' in client.get("/", headers={"accept-language": "en"}).text
    client.cookies.clear()
    _sign_in(client, "reviewer")
    assert client.cookies.get(i18n.COOKIE) is None
    client.cookies.clear()


def test_switch__the_api(world: dict[str, Any]) -> None:
    client, h = world["client"], world["headers"]["lab"]
    client.cookies.clear()
    r = client.get("/api/me/language", headers={**h, "accept-language": "uk"})
    assert r.json() == {"language": None, "locale": "uk", "supported": ["en", "uk"]}
    r = client.put("/api/me/language", json={"language": "fr"}, headers=h)
    assert r.status_code == 422 and "language" in r.text
    r = client.put("/api/me/language", json={"language": "uk"}, headers=h)
    assert r.status_code == 200 and r.json()["language"] == "uk"
    client.cookies.clear()
    assert client.get("/api/me/language", headers=h).json()["language"] == "uk"
    # kept for the next sign-in, through the page or the API
    assert _sign_in(client, "lab").status_code == 303 and client.cookies.get(i18n.COOKIE) == "uk"
    client.cookies.clear()
    r = client.post("/api/auth/login", json={"username": "lab", "password": password_of("lab")})
    assert r.status_code == 200 and client.cookies.get(i18n.COOKIE) == "uk"
    client.cookies.clear()
    r = client.put("/api/me/language", json={"language": None}, headers=h)
    assert r.status_code == 200 and r.json()["language"] is None
    client.cookies.clear()


# ---------------------------------------------------------------------------
# the scripts in a browser (Debian's chromium through Playwright)
# ---------------------------------------------------------------------------


@webkit.needs_chromium
@pytest.mark.slow
def test_browser__power_panel_in_ukrainian_and_the_header_switch(tmp_path: Path) -> None:
    """The power panel's script writes its texts from the page's data-messages and its numbers by
    <html lang>; the header's switch turns the page to English and back, for the user."""
    with webkit.serve(tmp_path) as server, webkit.chromium() as browser:
        page = webkit.sign_in(browser, server, "admin", lang="uk")
        page.goto(f"{server.base}/families?q=F5")
        assert page.get_attribute("html", "lang") == "uk"
        panel = page.wait_for_selector('#power-F5[data-state="done"]', timeout=120_000)
        assert panel is not None
        text = panel.inner_text()
        assert "Зникла безвісти особа" in text and "потужність виключення" in text and "метод: точний" in text
        assert re.search(r"потужність виключення \d,\d{4}", text), text  # a decimal comma
        assert "Missing person" not in text and "exclusion power" not in text
        alt = page.get_attribute("#power-F5 img.power-plot", "alt") or ""
        assert alt.startswith("розподіл log10 LR"), alt
        page.click("#lang-en")
        page.wait_for_selector('html[lang="en"]')
        assert page.url.endswith("/families?q=F5")
        page.click("#lang-uk")
        page.wait_for_selector('html[lang="uk"]')
        r = httpx.get(f"{server.base}/api/me/language", headers=server.headers("admin"))
        assert r.json()["language"] == "uk"
