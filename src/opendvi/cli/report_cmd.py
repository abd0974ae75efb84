"""``opendvi report``: the identification report of the service's database, as PDF or HTML.

The same document as ``GET /identifications/{id}/report.pdf`` (``docs/reports.md``), for whoever
runs the service's machine: without ``--names`` the DNA side's version (codes and barcodes only),
with ``--names`` the family liaison's (names, confirmed identifications only). A PDF appends the
audit entry ``report.export`` with the file's SHA-256, as the download does.
"""

from __future__ import annotations

import getpass
import hashlib
from pathlib import Path

import typer

from opendvi.cli.data_cmd import DataError, _data_dir_option, _target


def report(
    identification: int = typer.Argument(..., help="The identification's number (#)."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write: .pdf, or .html for the page."),
    names: bool = typer.Option(False, "--names", help="The family liaison's version: names (confirmed only)."),
    lang: str = typer.Option("en", "--lang", help="Language of the report: en or uk."),
    data_dir: Path | None = _data_dir_option(),
) -> None:
    """Write the report of an identification (PDF or printable HTML)."""
    from opendvi import i18n
    from opendvi.reports.evidence import identification_evidence
    from opendvi.reports.identification import PDFUnavailable, report_html, report_pdf
    from opendvi.store import audit
    from opendvi.store import db as store_db
    from opendvi.store import repositories as repo
    from opendvi.store.errors import NotFoundError
    from opendvi.store.models import IdentificationState

    if i18n.normalize(lang) is None:
        raise DataError(f"--lang must be one of {', '.join(i18n.SUPPORTED)}, found {lang!r}")
    suffix = output.suffix.lower()
    if suffix not in (".pdf", ".html", ".htm"):
        raise DataError(f"--output must end in .pdf or .html, found {output.name!r}")
    url, _folder, _file = _target(data_dir, must_exist=True)
    engine = store_db.make_engine(url)
    try:
        store_db.upgrade(engine)
        factory = store_db.session_factory(engine)
        with i18n.use_locale(lang), factory() as db:
            try:
                ident = repo.get_identification(db, identification_id=identification)
            except NotFoundError as exc:
                raise DataError(str(exc)) from None
            if names and ident.state != IdentificationState.confirmed:
                raise DataError(f"identification #{identification} is {ident.state.value}: the liaison's version "
                                "(--names) is for confirmed identifications only")
            if ident.candidate is None:
                raise DataError(f"identification #{identification} has no candidate to report on")
            ev = identification_evidence(db, ident, names=names)
            html = report_html(ev)
            state, version = ident.state.value, ident.version
        if suffix == ".pdf":
            try:
                data = report_pdf(html)
            except PDFUnavailable as exc:
                raise DataError(str(exc)) from None
            with store_db.transaction(factory) as db:
                audit.append(db, action="report.export", username=None, object_type="identification",
                             object_id=identification,
                             details={"format": "pdf", "state": state, "version": version, "names": names,
                                      "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                      "via": "cli", "os_user": getpass.getuser()})
        else:
            data = html.encode("utf-8")
    finally:
        engine.dispose()
    output.write_bytes(data)
    typer.echo(f"{output}: identification #{identification} ({state}), sha256 {hashlib.sha256(data).hexdigest()}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
