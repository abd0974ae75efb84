"""The catalogue's upkeep: extraction from the source tree, the Ukrainian ``.po`` brought up to date,
and the checks ``tests/test_i18n.py`` runs (docs/i18n.md).

``python -m opendvi.i18n.catalog update``  extract, merge into ``uk/LC_MESSAGES/messages.po``
                                           (new entries empty, obsolete ones dropped)
``python -m opendvi.i18n.catalog check``   list what is missing, fuzzy, obsolete or mismatched

The same as ``pybabel extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 -k pgettext:1c,2 -k lazy
-o /tmp/messages.pot src`` and ``pybabel update -i /tmp/messages.pot -d src/opendvi/i18n/locales -l uk
--no-fuzzy-matching --ignore-obsolete``, with Babel's API.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from babel.messages import pofile
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from opendvi.i18n import DOMAIN, LOCALES_DIR

#: the repository (``src/opendvi/i18n`` → three levels up); babel.cfg lies there
ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "src"
#: gettext names and where their arguments are (``lazy`` marks module-level strings)
KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "lazy": None,
}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")


def po_path(locale: str = "uk") -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract(source: Path = SOURCE, config: Path | None = None) -> Catalog:
    """Every message of the source tree (Python and templates) as Babel's extraction finds it."""
    config = config or ROOT / "babel.cfg"
    with config.open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    template = Catalog(project="opendvi", domain=DOMAIN)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(source), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        where = (source / filename).relative_to(ROOT).as_posix()
        template.add(message, None, [(where, lineno)], auto_comments=comments, context=context)
    return template


def read(locale: str = "uk") -> Catalog:
    with po_path(locale).open("rb") as fh:
        return pofile.read_po(fh, locale=locale, domain=DOMAIN)


def write(catalog: Catalog, locale: str = "uk") -> None:
    """Write the ``.po`` whole or not at all (a temporary file renamed over it)."""
    catalog.project, catalog.version = "opendvi", ""
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "opendvi maintainers"
    catalog.language_team = "Ukrainian"
    catalog.revision_date = catalog.creation_date
    buf = io.BytesIO()
    pofile.write_po(buf, catalog, width=116, ignore_obsolete=True, include_previous=False, sort_output=False)
    path = po_path(locale)
    tmp = path.with_suffix(".po.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)


def update(locale: str = "uk") -> tuple[int, int]:
    """Merge the extracted messages into the ``.po``: (new entries, obsolete entries dropped)."""
    catalog = read(locale)
    before = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    catalog.update(extract(), no_fuzzy_matching=True, update_header_comment=False, update_creation_date=False)
    dropped = len(catalog.obsolete)
    catalog.obsolete.clear()
    write(catalog, locale)
    new = sum(1 for m in catalog if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in before)
    return new, dropped


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def _forms(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def problems(catalog: Catalog, template: Catalog, *, plural_forms: int = 3) -> list[str]:
    """What keeps the catalogue from being complete: each a line naming the message."""
    out: list[str] = []

    def key(m: Message) -> tuple[str | None, str]:
        return (m.context, m.id if isinstance(m.id, str) else m.id[0])

    have = {key(m): m for m in catalog if m.id}
    want = {key(m): m for m in template if m.id}
    for k, m in want.items():
        got = have.get(k)
        name = f"{k[1]!r}" + (f" (context {k[0]!r})" if k[0] else "")
        if got is None:
            out.append(f"missing: {name}")
            continue
        if got.fuzzy:
            out.append(f"fuzzy: {name}")
        ids = _forms(m.id)
        strs = _forms(got.string)
        if m.pluralizable and len(strs) != plural_forms:
            out.append(f"{len(strs)} plural forms, {plural_forms} wanted: {name}")
        if not strs or any(not s.strip() for s in strs):
            out.append(f"untranslated: {name}")
            continue
        wanted = set().union(*(placeholders(i) for i in ids))
        for s in strs:
            found = placeholders(s)
            # a plural form may leave %(num)s out ("один"), never add or lose another placeholder
            if found - wanted or (wanted - {"num"}) - found:
                out.append(f"placeholders {sorted(found)} for {sorted(wanted)}: {name}")
                break
    for k in have.keys() - want.keys():
        out.append(f"obsolete: {k[1]!r}" + (f" (context {k[0]!r})" if k[0] else ""))
    if catalog.obsolete:
        out.append(f"{len(catalog.obsolete)} obsolete (#~) entries")
    return out


def main(argv: Iterable[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["update"]:
        new, dropped = update()
        print(f"{po_path().relative_to(ROOT)}: {new} new, {dropped} obsolete dropped")
        return 0
    if args == ["check"]:
        found = problems(read(), extract())
        print("\n".join(found) or "complete")
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
