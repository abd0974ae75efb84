"""Stored values shown in words, and the strings the pages' scripts show.

The database, the API, CSV exports and the audit keep the English machine
values (``proposed``, ``running``, ``F``, ...); a page shows them through the
``term`` filter, which finds the word in the current locale. A value that is
not known here is shown as it is.

The scripts (``power_panel.js``, ``run_progress.js``) get their texts from
the page: ``data-messages='{{ js_messages("power-panel") }}'`` (JSON of
the texts in the current locale, placeholders ``%(name)s`` left for the
script to fill).

Every text here is written out in a ``pgettext``/``gettext`` call, so that
Babel's extraction finds it; the tables are built at call time, in the
request's locale.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from markupsafe import Markup

from opendvi.i18n import _lookup, _plookup

pgettext = _plookup
gettext = _lookup


def _identification() -> dict[str, str]:
    return {
        "proposed": pgettext("identification state", "proposed"),
        "confirmed": pgettext("identification state", "confirmed"),
        "rejected": pgettext("identification state", "rejected"),
        "withdrawn": pgettext("identification state", "withdrawn"),
        "none": pgettext("identification state", "none"),
    }


def _run() -> dict[str, str]:
    return {
        "queued": pgettext("matching run status", "queued"),
        "running": pgettext("matching run status", "running"),
        "finished": pgettext("matching run status", "finished"),
        "failed": pgettext("matching run status", "failed"),
        "cancelled": pgettext("matching run status", "cancelled"),
    }


def _phase() -> dict[str, str]:
    return {
        "queued": pgettext("matching run phase", "queued"),
        "queued again": pgettext("matching run phase", "queued again"),
        "loading": pgettext("matching run phase", "loading"),
        "screening": pgettext("matching run phase", "screening"),
        "per-marker LRs": pgettext("matching run phase", "per-marker LRs"),
        "joint": pgettext("matching run phase", "joint"),
        "storing": pgettext("matching run phase", "storing"),
        "finished": pgettext("matching run phase", "finished"),
        "failed": pgettext("matching run phase", "failed"),
        "cancelled": pgettext("matching run phase", "cancelled"),
    }


def _sex() -> dict[str, str]:
    return {
        "M": pgettext("sex", "male"),
        "F": pgettext("sex", "female"),
        "male": pgettext("sex", "male"),
        "female": pgettext("sex", "female"),
        "U": pgettext("sex", "unknown"),
        "unknown": pgettext("sex", "unknown"),
    }


def _operation() -> dict[str, str]:
    return {
        "exchange": pgettext("operation kind", "exchange"),
        "recovery": pgettext("operation kind", "recovery"),
    }


def _consent() -> dict[str, str]:
    return {
        "identification": pgettext("consent", "identification"),
        "identification_and_database": pgettext("consent", "identification and database"),
        "withdrawn": pgettext("consent", "withdrawn"),
    }


def _relationship() -> dict[str, str]:
    """A donor's relationship to the missing person (``store.liaison.RELATIONSHIPS``)."""
    return {
        "father": pgettext("relationship", "father"),
        "mother": pgettext("relationship", "mother"),
        "full_sibling": pgettext("relationship", "full sibling"),
        "half_sibling": pgettext("relationship", "half sibling"),
        "child": pgettext("relationship", "child"),
        "spouse": pgettext("relationship", "spouse (untyped partner)"),
        "grandparent": pgettext("relationship", "grandparent"),
        "uncle_aunt": pgettext("relationship", "uncle or aunt"),
        "cousin": pgettext("relationship", "cousin"),
        "other": pgettext("relationship", "other"),
    }


def _method() -> dict[str, str]:
    return {
        "exact": pgettext("power method", "exact"),
        "simulation": pgettext("power method", "simulation"),
    }


def _yes_no() -> dict[str, str]:
    return {"yes": gettext("yes"), "no": gettext("no")}


TABLES: dict[str, Callable[[], dict[str, str]]] = {
    "identification": _identification,
    "run": _run,
    "phase": _phase,
    "sex": _sex,
    "operation": _operation,
    "consent": _consent,
    "relationship": _relationship,
    "method": _method,
    "yes_no": _yes_no,
}


def term(value: object, kind: str) -> str:
    """``value`` (a stored state, status, phase, sex, ...) in the current locale; unknown values as they are,
    None as an empty string. ``kind`` is one of :data:`TABLES`."""
    if value is None:
        return ""
    text = str(getattr(value, "value", value))
    table = TABLES[kind]()
    if kind == "relationship" and text.startswith("other:"):  # "other: step-father": the word, then the text
        return f"{table['other']}: {text.removeprefix('other:').strip()}"
    return table.get(text, text)


def _power_panel() -> dict[str, str]:
    return {
        "summary": gettext("Missing person %(missing)s: P(LR ≥ 10⁴) %(ip)s · exclusion power %(ep)s · "
                           "E[log10 LR] %(e)s · method %(method)s"),
        "next": gettext("Suggested next sample: %(candidate)s (expected P(LR ≥ 10⁴) %(ip)s, E[log10 LR] %(e)s)"),
        "none": gettext("No untyped relative to suggest."),
        "lineage": gettext("Lineage %(system)s: the line of %(reference)s (%(links)s links) adds E[log10 LR] %(e)s"),
        "next_lineage": gettext("of which lineage %(system)s: E[log10 LR] %(e)s"),
        "plot_alt": gettext("distribution of log10 LR of the true missing person %(missing)s"),
        "failed": gettext("power cannot be computed"),
        "percent": gettext("%(value)s %%"),
        **{f"method.{k}": v for k, v in _method().items()},
    }


def _run_progress() -> dict[str, str]:
    return {
        "percent": gettext("%(value)s %%"),
        "skipped": gettext("families skipped: %(num)s"),
        **{f"status.{k}": v for k, v in _run().items()},
        **{f"phase.{k}": v for k, v in _phase().items()},
    }


SCRIPTS: dict[str, Callable[[], dict[str, str]]] = {"power-panel": _power_panel, "run-progress": _run_progress}


def js_messages(name: str) -> Markup:
    """The texts of script ``name`` in the current locale, as JSON safe inside a single-quoted HTML
    attribute (``<``, ``>``, ``&`` and ``'`` escaped as JSON unicode escapes)."""
    text = json.dumps(SCRIPTS[name](), ensure_ascii=False, sort_keys=True)
    for ch, esc in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("'", "\\u0027")):
        text = text.replace(ch, esc)
    return Markup(text)
