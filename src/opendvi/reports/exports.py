"""Exports of the lists people work from: candidates, identifications and the audit trail, as CSV,
Excel (``.xlsx``) and, for the audit trail, JSON lines with each entry's hashes (``docs/reports.md``).

National scale (tens of thousands of rows) in bounded memory: rows are read in keyset pages
(``id > last``, :data:`PAGE_ROWS` at a time, each page in a short read transaction of its own, so a slow
download holds no database connection), CSV and JSON lines are yielded page by page, and the Excel
workbook is written by openpyxl's write-only mode (rows go to a temporary file, not to memory).

Two header rows for two readers: a CSV's header row is the stable English column keys (``log10_lr``,
``missing_person``): programs read them; an Excel sheet's header row is the column titles in the reader's
language. Values are the same in both: numbers as numbers (log10 LR, posterior), times in ISO 8601 UTC.

Every text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
apostrophe (:func:`guard`): a spreadsheet would otherwise run it as a formula (CSV injection), and the
barcodes, notes and reasons in these lists come from files and from people.

No HTTP here: the service's routes check the role, write the audit entry and stream what these
functions yield.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from opendvi.i18n import gettext as _
from opendvi.store import repositories as repo
from opendvi.store.models import (
    AuditEntry,
    Candidate,
    Family,
    Identification,
    IdentificationState,
    MatchingRun,
    MissingPerson,
    MissingPersonDetails,
    Operation,
    Remains,
    User,
)

#: rows read per database round trip (and per chunk of a streamed file)
PAGE_ROWS = 1000
#: the most data rows an Excel sheet holds (1,048,576 rows, one of them the header)
XLSX_MAX_ROWS = 1_048_575
#: characters that make a spreadsheet read a cell as a formula
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "xlsx", "jsonl")

Factory = Callable[[], Session]


def guard(value: Any) -> Any:
    """A cell value safe to open in a spreadsheet: text beginning with ``= + - @``, a tab or a carriage
    return gets a leading apostrophe (numbers, None and other text pass unchanged).

    >>> guard("=HYPERLINK(\\"http://x\\")"), guard("-V1"), guard("V-1"), guard(-2.5), guard(None)
    ('\\'=HYPERLINK("http://x")', "'-V1", 'V-1', -2.5, None)
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def iso(x: Any) -> str | None:
    """ISO 8601 UTC (times stored without a zone, as SQLite keeps them, are UTC)."""
    if x is None:
        return None
    if isinstance(x, datetime):
        if x.tzinfo is None:
            x = x.replace(tzinfo=UTC)
        return x.astimezone(UTC).isoformat()
    return str(x)


def safe_filename(*parts: str, ext: str, now: datetime | None = None) -> str:
    """``opendvi-candidates-demo-20261207T093000Z.csv``: letters, digits, ``.``, ``_`` and ``-`` only
    (other characters become ``_``), at most 120 characters, the time of the export at the end."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    stem = "-".join(["opendvi", *(p for p in parts if p), stamp])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:120]
    return f"{stem}.{ext}"


def content_disposition(filename: str) -> str:
    """``attachment`` with a file name of :func:`safe_filename` (ASCII: no quoting needed)."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", filename):
        raise ValueError(f"unsafe file name {filename!r}")
    return f'attachment; filename="{filename}"'


# ---------------------------------------------------------------------------
# what is exported
# ---------------------------------------------------------------------------


@dataclass
class Export:
    """One export: its kind, its columns (machine key, title in the current language), the statement of
    its rows (keyset-paged on ``key``), how a database row becomes a row of values, and its filters."""

    kind: str
    columns: list[tuple[str, str]]
    stmt: Select[Any]
    key: Any
    to_row: Callable[[Session, list[Any]], list[list[Any]]]
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [k for k, _t in self.columns]

    @property
    def titles(self) -> list[str]:
        return [t for _k, t in self.columns]

    def count(self, db: Session) -> int:
        return int(db.scalar(select(func.count()).select_from(self.stmt.order_by(None).subquery())) or 0)

    def pages(self, factory: Factory, *, page_rows: int | None = None) -> Iterator[list[list[Any]]]:
        """The rows, ``page_rows`` at a time, in ``key`` order; each page in a session of its own."""
        page_rows = page_rows or PAGE_ROWS
        last: Any = None
        while True:
            with factory() as db:
                stmt = self.stmt if last is None else self.stmt.where(self.key > last)
                raw = list(db.execute(stmt.order_by(self.key).limit(page_rows)).all())
                if not raw:
                    return
                rows = self.to_row(db, raw)
                db.rollback()  # end the read transaction before the rows go out
            last = raw[-1][0]
            yield rows
            if len(raw) < page_rows:
                return


def candidate_columns() -> list[tuple[str, str]]:
    return [("candidate_id", _("Candidate")), ("run_id", _("Matching run")), ("operation", _("Operation")),
            ("remains", _("Remains")), ("missing_person", _("Missing person")), ("family", _("Family")),
            ("rank", _("Rank")), ("log10_lr", _("log10 LR")), ("posterior", _("Posterior")),
            ("exclusions", _("Exclusions")), ("n_markers", _("Markers compared"))]


def _lineage_columns(systems: Sequence[str]) -> list[tuple[str, str]]:
    """Each system's log10 LR and each lineage system's mismatches (a run with Y-STR / mtDNA data)."""
    return ([("log10_lr_autosomal", _("log10 LR, autosomal"))]
            + [(f"log10_lr_{s}", _("log10 LR, %(system)s", system=s)) for s in systems]
            + [(f"mismatches_{s}", _("Mismatches, %(system)s", system=s)) for s in systems])


def candidates_export(
    db: Session, *, run_id: int | None = None, operation: Operation | None = None, q: str | None = None,
    min_log10_lr: float | None = None, max_log10_lr: float | None = None, unreviewed: bool = False,
) -> Export:
    """The candidates of a run (default: the current, latest finished one) with the filters of
    ``GET /api/candidates`` (:func:`opendvi.store.repositories.page_candidates`), in id order; a run
    with lineage data adds each system's log10 LR and the lineage mismatches.
    Candidates carry codes and barcodes only: no role sees a name here."""
    rid = run_id if run_id is not None else repo.current_run_id(db)
    run = db.get(MatchingRun, rid) if rid is not None else None
    systems = [s for s in ("Y", "mt") if run is not None and s in (run.lineage_databases or {})]
    stmt: Any = (
        select(Candidate.id, Candidate.run_id, Operation.code, Remains.barcode, MissingPerson.code, Family.code,
               Candidate.rank, Candidate.log10_lr, Candidate.posterior, Candidate.exclusions, Candidate.n_markers,
               *((Candidate.systems,) if systems else ()))
        .join(Remains, Remains.id == Candidate.remains_id).join(Operation, Operation.id == Remains.operation_id)
        .join(MissingPerson, MissingPerson.id == Candidate.missing_person_id)
        .join(Family, Family.id == MissingPerson.family_id)
        .where(Candidate.run_id == (rid if rid is not None else -1)))
    stmt = repo.filter_candidates(stmt, operation=operation, q=q, min_log10_lr=min_log10_lr,
                                  max_log10_lr=max_log10_lr, unreviewed=unreviewed)

    def rows(_db: Session, raw: list[Any]) -> list[list[Any]]:
        if not systems:
            return [list(r) for r in raw]
        out = []
        for r in raw:
            sy = r[-1] or {}
            by, mis = sy.get("log10_lr", {}), sy.get("mismatches", {})
            out.append([*r[:-1], by.get("autosomal"), *(by.get(s) for s in systems), *(mis.get(s) for s in systems)])
        return out

    filters = {"run": rid, "operation": operation.code if operation else None, "q": q,
               "min_log10_lr": min_log10_lr, "max_log10_lr": max_log10_lr, "unreviewed": unreviewed}
    columns = candidate_columns() + (_lineage_columns(systems) if systems else [])
    return Export("candidates", columns, stmt, Candidate.id, rows, filters)


def identification_columns(*, names: bool) -> list[tuple[str, str]]:
    cols = [("identification_id", _("Identification")), ("state", _("State")), ("version", _("Version")),
            ("operation", _("Operation")), ("remains", _("Remains")), ("missing_person", _("Missing person"))]
    if names:
        cols.append(("missing_person_name", _("Name")))
    cols += [("family", _("Family")), ("candidate_id", _("Candidate")), ("log10_lr", _("log10 LR")),
             ("posterior", _("Posterior")), ("proposed_by", _("Proposed by")), ("proposed_at", _("Proposed at (UTC)")),
             ("proposal_note", _("Proposal note")), ("decided_by", _("Decided by")),
             ("decided_at", _("Decided at (UTC)")), ("decision_reason", _("Decision reason"))]
    return cols


def identifications_export(
    db: Session, *, states: Sequence[IdentificationState] | None = None, operation: Operation | None = None,
    q: str | None = None, names: bool = False,
) -> Export:
    """Identifications with the filters of the identifications page and ``GET /api/identifications``
    (the caller narrows ``states`` for the family liaison), in id order. ``names``: a column with the
    missing person's full name, filled for confirmed identifications only (give it only to the roles
    holding ``names.read``)."""
    proposer = aliased(User)
    decider = aliased(User)
    stmt: Any = (
        select(Identification.id, Identification.state, Identification.version, Operation.code, Remains.barcode,
               MissingPerson.code, MissingPerson.id, Family.code, Identification.candidate_id, Candidate.log10_lr,
               Candidate.posterior, proposer.username, Identification.proposed_at, Identification.proposal_note,
               decider.username, Identification.decided_at, Identification.decision_reason)
        .join(Remains, Remains.id == Identification.remains_id).join(Operation, Operation.id == Remains.operation_id)
        .join(MissingPerson, MissingPerson.id == Identification.missing_person_id)
        .join(Family, Family.id == MissingPerson.family_id)
        .outerjoin(Candidate, Candidate.id == Identification.candidate_id)
        .join(proposer, proposer.id == Identification.proposed_by_id)
        .outerjoin(decider, decider.id == Identification.decided_by_id))
    stmt = repo.filter_identifications(stmt, states=states, operation=operation, q=q)

    def rows(session: Session, raw: list[Any]) -> list[list[Any]]:
        full: dict[int, str] = {}
        if names:
            confirmed = [r[6] for r in raw if r[1] == IdentificationState.confirmed]
            if confirmed:
                full = {mid: name for mid, name in session.execute(
                    select(MissingPersonDetails.missing_person_id, MissingPersonDetails.full_name)
                    .where(MissingPersonDetails.missing_person_id.in_(confirmed)))}
        out = []
        for r in raw:
            state = r[1].value if isinstance(r[1], IdentificationState) else str(r[1])
            row = [r[0], state, r[2], r[3], r[4], r[5]]
            if names:
                row.append(full.get(r[6]) if state == IdentificationState.confirmed.value else None)
            row += [r[7], r[8], r[9], r[10], r[11], iso(r[12]), r[13], r[14], iso(r[15]), r[16]]
            out.append(row)
        return out

    filters = {"state": [s.value for s in states] if states is not None else None,
               "operation": operation.code if operation else None, "q": q}
    return Export("identifications", identification_columns(names=names), stmt, Identification.id, rows, filters)


def audit_columns() -> list[tuple[str, str]]:
    return [("seq", _("Sequence number")), ("at", _("Time (UTC)")), ("username", _("User")),
            ("action", _("Action")), ("object_type", _("Object type")), ("object_id", _("Object")),
            ("details", _("Details")), ("prev_hash", _("Previous hash")), ("hash", _("Hash"))]


def audit_export(
    db: Session, *, action: str | None = None, username: str | None = None, object_type: str | None = None,
    object_id: str | None = None, up_to_seq: int | None = None,
) -> Export:
    """Audit entries with the filters of the audit page, oldest first, up to ``up_to_seq`` (the head
    when the export was asked for: the export's own entry, appended after, is not in it). Every value
    exactly as stored: ``details`` is the stored JSON text the hash covers."""
    stmt: Any = select(AuditEntry.seq, AuditEntry.at, AuditEntry.username, AuditEntry.action,
                               AuditEntry.object_type, AuditEntry.object_id, AuditEntry.details,
                               AuditEntry.prev_hash, AuditEntry.hash)
    stmt = repo.filter_audit(stmt, action=action, username=username, object_type=object_type, object_id=object_id)
    if up_to_seq is not None:
        stmt = stmt.where(AuditEntry.seq <= up_to_seq)

    def rows(_db: Session, raw: list[Any]) -> list[list[Any]]:
        return [list(r) for r in raw]

    filters = {"action": action, "username": username, "object_type": object_type, "object_id": object_id,
               "up_to_seq": up_to_seq}
    return Export("audit", audit_columns(), stmt, AuditEntry.seq, rows, filters)


# ---------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)  # every digit, the same on every platform
    return guard(v)


def csv_chunks(export: Export, factory: Factory, *, page_rows: int | None = None) -> Iterator[bytes]:
    """The CSV file, a page of rows per chunk: UTF-8 with a byte-order mark (so that a spreadsheet reads
    Cyrillic right), the machine keys as the header row, ``\\r\\n`` line ends (RFC 4180)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(export.keys)
    yield ("\ufeff" + buf.getvalue()).encode("utf-8")
    for rows in export.pages(factory, page_rows=page_rows):
        buf.seek(0)
        buf.truncate()
        writer.writerows([_csv_value(v) for v in row] for row in rows)
        yield buf.getvalue().encode("utf-8")


def jsonl_chunks(export: Export, factory: Factory, *, page_rows: int | None = None) -> Iterator[bytes]:
    """JSON lines: one object per row with the machine keys, values as stored (no formula guard: no
    spreadsheet reads this, and the hashes cover the exact text)."""
    keys = export.keys
    for rows in export.pages(factory, page_rows=page_rows):
        yield "".join(json.dumps(dict(zip(keys, row, strict=True)), ensure_ascii=False, separators=(",", ":"))
                      + "\n" for row in rows).encode("utf-8")


def xlsx_value(value: Any) -> Any:
    """A value for an Excel cell: :func:`guard`, and the control characters XML cannot hold (which
    openpyxl refuses) replaced by U+FFFD.

    >>> xlsx_value("=1"), xlsx_value("a\x07b"), xlsx_value(1.5)
    ("'=1", 'a\ufffdb', 1.5)
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    value = guard(value)
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value


def write_xlsx(export: Export, factory: Factory, out: IO[bytes], *, sheet: str, page_rows: int | None = None) -> int:
    """The workbook (one sheet, the translated titles as the header row, frozen) into ``out`` with
    openpyxl's write-only mode; returns the number of data rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=re.sub(r"[\[\]:*?/\\]", "_", sheet)[:31] or "export")
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for title in export.titles:
        cell = WriteOnlyCell(ws, value=title)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    n = 0
    for rows in export.pages(factory, page_rows=page_rows):
        for row in rows:
            # plain values (a cell object each costs ten times more): after the guard no text begins
            # with "=", the only thing openpyxl would store as a formula
            ws.append([xlsx_value(v) for v in row])
            n += 1
            if n > XLSX_MAX_ROWS:
                raise ValueError(f"more than {XLSX_MAX_ROWS:,} rows do not fit in an Excel sheet: export CSV")
    wb.save(out)
    return n


def xlsx_file(export: Export, factory: Factory, *, sheet: str) -> IO[bytes]:
    """The workbook in a temporary file (deleted when closed), positioned at its start."""
    tmp = tempfile.TemporaryFile(prefix="opendvi-export-", suffix=".xlsx")  # noqa: SIM115 - closed by file_chunks
    try:
        write_xlsx(export, factory, tmp, sheet=sheet)
        tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    return tmp


def file_chunks(fh: IO[bytes], *, size: int = 1 << 16) -> Iterator[bytes]:
    """A file's bytes in chunks; the file is closed (and, a temporary one, deleted) at the end."""
    try:
        while chunk := fh.read(size):
            yield chunk
    finally:
        fh.close()
