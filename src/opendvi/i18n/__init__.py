"""The interface language: gettext catalogues (Babel), one locale per request.

Ukrainian (``uk``) and English (``en``, the language the source strings are
written in). Every text a person reads, in a page, a message, an error or a
report, goes through :func:`gettext` (``_`` in templates), so the catalogue
``locales/uk/LC_MESSAGES/messages.po`` holds all of it; ``tests/test_i18n.py``
checks that it is complete.

The locale of a request is set once, by :class:`LocaleMiddleware` (the user's
choice kept in the ``opendvi_lang`` cookie, else the browser's
``Accept-Language``), in a context variable that the worker threads running
the endpoints inherit. Code outside a request (the CLI, a report rendered by
a script) uses :func:`use_locale`.

Catalogues are read from the ``.po`` text and compiled in memory once per
process: no compiled ``.mo`` file is kept in the repository.
"""

from __future__ import annotations

import contextvars
import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from babel import Locale, dates, numbers
from babel.messages import mofile, pofile
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"
#: languages of the interface; the first is the language of the source strings
SUPPORTED = ("en", "uk")
DEFAULT = "en"
LANGUAGE_NAMES = {"en": "English", "uk": "Українська"}
#: cookie that carries the user's choice (set at sign-in from the user's setting, and by the language switch)
COOKIE = "opendvi_lang"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("opendvi_locale", default=DEFAULT)


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalogue of ``locale`` (English: the source strings themselves)."""
    po = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == DEFAULT or not po.is_file():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = pofile.read_po(fh, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    mofile.write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def get_locale() -> str:
    """The locale of the current request (or of :func:`use_locale`)."""
    return _current.get()


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current.set(normalize(locale) or DEFAULT)


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = set_locale(locale)
    try:
        yield
    finally:
        _current.reset(token)


def normalize(value: str | None) -> str | None:
    """``"uk"``, ``"uk-UA"``, ``"uk_UA"`` → ``"uk"``; an unsupported or empty value → None."""
    if not value:
        return None
    code = value.strip().replace("_", "-").split("-")[0].lower()
    return code if code in SUPPORTED else None


def negotiate(accept_language: str | None) -> str:
    """The best supported locale for an ``Accept-Language`` header (RFC 9110 weights)."""
    if not accept_language:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")[:32]):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _eq, val = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        code = normalize(tag)
        if code and q > 0:
            ranked.append((-q, i, code))
    return min(ranked)[2] if ranked else DEFAULT


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the current locale, ``%(name)s`` placeholders filled from ``variables``."""
    text = translations(get_locale()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    """The singular or plural form for ``n`` by the locale's plural rule; ``%(num)s`` is ``n``."""
    text = translations(get_locale()).ungettext(singular, plural, n)
    return text % {"num": n, **variables}


def pgettext(context: str, message: str, **variables: Any) -> str:
    text = translations(get_locale()).upgettext(context, message)
    return text % variables if variables else text


_ = gettext


def lazy(message: str) -> str:
    """Marks a module-level string for extraction; translate it where it is shown, with :func:`gettext`."""
    return message


def translate(message: str) -> str:
    """``message`` in the current locale when the catalogue has it (a string marked with :func:`lazy`,
    an error's message), else unchanged; no placeholder is filled."""
    return translations(get_locale()).ugettext(message)


# The template side: Jinja's newstyle gettext formats the text itself (``rv % variables``, always, so a
# literal percent sign is written ``%%`` in a template's msgid), so the callables it is given only look
# the text up: formatting here too would fail on placeholders other than ``num``.


def _lookup(message: str) -> str:
    return translations(get_locale()).ugettext(message)


def _nlookup(singular: str, plural: str, n: int) -> str:
    return translations(get_locale()).ungettext(singular, plural, n)


def _plookup(context: str, message: str) -> str:
    return translations(get_locale()).upgettext(context, message)


def language_of(value: str | None) -> str | None:
    """A stored or submitted language choice, checked: ``"uk"``/``"en"``, else None."""
    return value if value in SUPPORTED else None


# -- dates and numbers by locale ----------------------------------------------


def _babel_locale() -> Locale:
    return Locale.parse("uk_UA" if get_locale() == "uk" else "en_GB")


def format_date(value: date | datetime | str | None, format: str = "medium") -> str:
    """A date in the current locale (``7 Dec 2026``, ``7 груд. 2026 р.``); empty for None; ISO strings
    are parsed first."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.date()
    return dates.format_date(value, format=format, locale=_babel_locale())


def format_datetime(value: datetime | str | None, format: str = "medium") -> str:
    """A time stamp (UTC as stored) in the current locale; ISO strings are parsed first."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dates.format_datetime(value, format=format, tzinfo=value.tzinfo, locale=_babel_locale())


def format_number(value: float | int | None, digits: int | None = None) -> str:
    """A number with the locale's separators; ``digits``: fixed decimals."""
    if value is None:
        return ""
    if digits is None:
        return numbers.format_decimal(value, locale=_babel_locale())
    return numbers.format_decimal(value, format="#,##0." + "0" * digits if digits else "#,##0",
                                  locale=_babel_locale(), decimal_quantization=True)


def install(env: Any) -> None:
    """Gives a Jinja2 environment ``_``/``gettext``/``ngettext``/``pgettext`` (newstyle, autoescaped
    arguments), the ``lang``, ``language_names`` and ``js_messages`` globals, the ``date``/``datetime``/
    ``number`` filters and ``term`` (a stored value such as a state, in words: :mod:`opendvi.i18n.terms`)."""
    from opendvi.i18n import terms

    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(gettext=_lookup, ngettext=_nlookup, pgettext=_plookup, newstyle=True)
    env.globals["lang"] = get_locale
    env.globals["language_names"] = LANGUAGE_NAMES
    env.globals["js_messages"] = terms.js_messages
    # the filters depend on the request's locale: marked ``pass_context`` so that Jinja never folds
    # ``{{ "exchange"|term("operation") }}`` into the template at compile time, in whatever locale compiled it
    env.filters["term"] = _per_request(terms.term)
    env.filters["date"] = _per_request(format_date)
    env.filters["datetime"] = _per_request(format_datetime)
    env.filters["number"] = _per_request(format_number)


def _per_request(fn: Any) -> Any:
    """A Jinja filter evaluated at each rendering, never as a compile-time constant."""
    from jinja2 import pass_context

    @pass_context
    def filter_(_context: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return filter_


class LocaleMiddleware:
    """Sets the request's locale before anything runs: the ``opendvi_lang`` cookie, else the browser's
    ``Accept-Language``; adds ``Content-Language`` and ``Vary`` to the response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = accept = None
        for key, value in scope.get("headers", ()):
            if key == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    name, _eq, val = part.strip().partition("=")
                    if name == COOKIE:
                        cookie = val
            elif key == b"accept-language":
                accept = value.decode("latin-1")
        locale = normalize(cookie) or negotiate(accept)
        token = set_locale(locale)

        async def send_with_language(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-language", locale.encode()))
                headers.append((b"vary", b"Accept-Language, Cookie"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_language)
        finally:
            _current.reset(token)


#: how long the language cookie is kept (a year; the user's setting renews it at each sign-in)
COOKIE_MAX_AGE = 365 * 24 * 3600


def remember(response: Any, language: str | None, *, secure: bool) -> None:
    """Set (or, for None, delete) the language cookie on a Starlette response."""
    if language:
        response.set_cookie(COOKIE, language, max_age=COOKIE_MAX_AGE, httponly=True, samesite="lax", secure=secure,
                            path="/")
    else:
        response.delete_cookie(COOKIE, path="/")
