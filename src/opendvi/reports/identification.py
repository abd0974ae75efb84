"""The identification report: printable HTML and PDF (WeasyPrint), from one template.

:func:`report_html` renders ``templates/identification_report.html`` from the
:func:`opendvi.reports.evidence.identification_evidence` of an
identification; :func:`report_pdf` turns that same HTML into a PDF. The
allele table and the provenance are fragments (``templates/_alleles.html``,
``templates/_provenance.html``) that the match review page shows too
(:func:`fragments`), so the page and the report cannot differ.

Every text goes through gettext in the current locale (:func:`opendvi.i18n.use_locale`
outside a request). No script, no external resource: the pedigree is inline
SVG, the fonts are the system's (DejaVu Sans).
"""

from __future__ import annotations

import functools
import io
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from opendvi import i18n
from opendvi.core.errors import OpenDVIError
from opendvi.reports.pedigree import Person, pedigree_svg

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: one PDF at a time per process: Pango, Cairo and fontconfig under WeasyPrint have crashed when
#: several threads laid out documents at once (Kozea/WeasyPrint#1402); a report takes a second or two
_PDF_LOCK = threading.Lock()


@functools.cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      auto_reload=False)
    i18n.install(env)
    return env


def pedigree_of(ev: dict[str, Any]) -> str:
    """The evidence's pedigree drawn, the remains placed on the missing person."""
    people = [Person(id=p["id"], father=p["father"], mother=p["mother"], sex=p["sex"], typed=p["typed"],
                     missing=p["missing"], placed=p["placed"]) for p in ev["pedigree"]]
    title = i18n.gettext("Family %(family)s: remains %(remains)s placed as %(mp)s", family=ev["family"],
                         remains=ev["remains"]["barcode"], mp=ev["missing_person"]["code"])
    return pedigree_svg(people, title=title)


def fragments(ev: dict[str, Any]) -> dict[str, Markup]:
    """The HTML fragments the page and the report share: ``alleles`` (the per-marker table),
    ``provenance`` (how the numbers were computed), ``pedigree`` (the SVG)."""
    env = environment()
    return {
        "alleles": Markup(env.get_template("_alleles.html").render(ev=ev)),
        "provenance": Markup(env.get_template("_provenance.html").render(ev=ev)),
        "pedigree": Markup(pedigree_of(ev)),
    }


def report_html(ev: dict[str, Any], *, links: bool = False, generated_at: datetime | None = None) -> str:
    """The report of an identification (``ev`` from :func:`identification_evidence`) as one HTML
    document; ``links``: the screen-only bar with the PDF link (the page, not the PDF)."""
    env = environment()
    return env.get_template("identification_report.html").render(
        ev=ev, ident=ev["identification"], frag=fragments(ev), links=links,
        generated_at=(generated_at or datetime.now(UTC)).replace(microsecond=0).isoformat(),
    )


class PDFUnavailable(OpenDVIError):
    """WeasyPrint cannot run here: its system libraries (Pango) are missing."""


def report_pdf(html: str) -> bytes:
    """The PDF of :func:`report_html`'s document (WeasyPrint). :class:`PDFUnavailable` when WeasyPrint's
    system libraries are missing (the printable HTML works without them)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:
        raise PDFUnavailable(
            "PDF reports need WeasyPrint's system libraries (Debian: apt install libpango-1.0-0 "
            f"libpangoft2-1.0-0); the printable HTML report works without them ({exc})".replace("\n", " ")
        ) from None

    buf = io.BytesIO()
    with _PDF_LOCK:
        HTML(string=html, base_url=str(TEMPLATES)).write_pdf(buf)
    return buf.getvalue()
