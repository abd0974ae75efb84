"""Exports (``/api/exports/...``): candidates, identifications and the audit trail as CSV and Excel, the
audit trail also as JSON lines with its hashes (``docs/reports.md``, Exports and plots).

Each export is checked like the list it exports (``candidates.read``, ``identifications.read``,
``audit.read``), takes that list's filters as query parameters, works with the session cookie (links on
the pages) and with a bearer token, and appends an audit entry (``export.candidates``,
``export.identifications``, ``export.audit``: the format, the filters and the number of rows) before
the first byte goes out. Names only for the roles holding ``names.read``, and only where the pages show
them: the family liaison's export of confirmed identifications.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from opendvi.i18n import format_number
from opendvi.i18n import gettext as _
from opendvi.reports import exports as ex
from opendvi.service import access, writes
from opendvi.service.deps import DB, P, Principal
from opendvi.service.errors import APIError
from opendvi.store import audit
from opendvi.store import repositories as repo
from opendvi.store.db import begin_write
from opendvi.store.models import AuditEntry, IdentificationState

router = APIRouter(prefix="/api/exports", tags=["exports"])

MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "jsonl": "application/x-ndjson; charset=utf-8"}

Text64 = Annotated[str | None, Query(max_length=64)]


def _record(db: DB, principal: Principal, export: ex.Export, fmt: str, rows: int) -> None:
    """The export's audit entry, committed before anything is sent."""
    begin_write(db)
    audit.append(db, action=f"export.{export.kind}", username=principal.username, object_type="export",
                 object_id=export.kind,
                 details={"format": fmt, "filters": {k: v for k, v in export.filters.items() if v not in (None, False)},
                          "rows": rows})
    writes.commit(db)


def _send(request: Request, db: DB, principal: Principal, export: ex.Export, fmt: str, *name: str) -> StreamingResponse:
    factory = request.app.state.sessionmaker
    rows = export.count(db)
    if fmt == "xlsx" and rows > ex.XLSX_MAX_ROWS:
        raise APIError(413, _("%(n)s rows do not fit in an Excel sheet: export CSV instead", n=format_number(rows)),
                       code="too_large")
    filename = ex.safe_filename(export.kind, *name, ext=fmt)
    if fmt == "xlsx":
        fh = ex.xlsx_file(export, factory, sheet=export.kind)  # written before the audit entry: no half export
        _record(db, principal, export, fmt, rows)
        body: Any = ex.file_chunks(fh)
    else:
        _record(db, principal, export, fmt, rows)
        body = (ex.jsonl_chunks if fmt == "jsonl" else ex.csv_chunks)(export, factory)
    return StreamingResponse(body, media_type=MEDIA[fmt],
                             headers={"Content-Disposition": ex.content_disposition(filename),
                                      "X-Row-Count": str(rows)})


def _ok(fmt: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a 200 of format ``fmt``."""
    return {200: {"description": f"the file ({fmt}); its number of rows in the header X-Row-Count",
                  "content": {MEDIA[fmt].split(";")[0]: {}}}}


def _operation(db: DB, code: str | None) -> Any:
    return repo.get_operation(db, code=code) if code else None


# ---------------------------------------------------------------------------
# candidates
# ---------------------------------------------------------------------------


def _candidates(request: Request, db: DB, principal: Principal, fmt: str, run: int | None, operation: str | None,
                q: str | None, min_log10_lr: float | None, max_log10_lr: float | None,
                unreviewed: bool) -> StreamingResponse:
    op = _operation(db, operation)
    export = ex.candidates_export(db, run_id=run, operation=op, q=q, min_log10_lr=min_log10_lr,
                                  max_log10_lr=max_log10_lr, unreviewed=unreviewed)
    return _send(request, db, principal, export, fmt, operation or "")


@router.get("/candidates.csv", response_class=StreamingResponse, responses=_ok("csv"))
def candidates_csv(request: Request, db: DB, run: int | None = Query(None, ge=1, le=2**62),
                   operation: Text64 = None, q: Text64 = None, min_log10_lr: float | None = None,
                   max_log10_lr: float | None = None, unreviewed: bool = False,
                   principal: Principal = P("candidates.read")) -> StreamingResponse:
    """The candidates of a run (default: the latest finished one) with the filters of
    ``GET /api/candidates``, in id order, as CSV (header row: stable column keys)."""
    return _candidates(request, db, principal, "csv", run, operation, q, min_log10_lr, max_log10_lr, unreviewed)


@router.get("/candidates.xlsx", response_class=StreamingResponse, responses=_ok("xlsx"))
def candidates_xlsx(request: Request, db: DB, run: int | None = Query(None, ge=1, le=2**62),
                    operation: Text64 = None, q: Text64 = None, min_log10_lr: float | None = None,
                    max_log10_lr: float | None = None, unreviewed: bool = False,
                    principal: Principal = P("candidates.read")) -> StreamingResponse:
    """The same as ``candidates.csv``, as an Excel workbook (header row: column titles in the reader's
    language)."""
    return _candidates(request, db, principal, "xlsx", run, operation, q, min_log10_lr, max_log10_lr, unreviewed)


# ---------------------------------------------------------------------------
# identifications
# ---------------------------------------------------------------------------


def _identifications(request: Request, db: DB, principal: Principal, fmt: str, state: IdentificationState | None,
                     operation: str | None, q: str | None) -> StreamingResponse:
    states = access.identification_states(principal, state)  # the family liaison: confirmed ones only
    op = _operation(db, operation)
    export = ex.identifications_export(db, states=states, operation=op, q=q, names=principal.can("names.read"))
    return _send(request, db, principal, export, fmt, operation or "", state.value if state else "")


@router.get("/identifications.csv", response_class=StreamingResponse, responses=_ok("csv"))
def identifications_csv(request: Request, db: DB, state: IdentificationState | None = None,
                        operation: Text64 = None, q: Text64 = None,
                        principal: Principal = P("identifications.read")) -> StreamingResponse:
    """Identifications with the filters of the identifications page (``state``, ``q``) and of
    ``GET /api/identifications`` (``operation``), in id order, as CSV. The family liaison gets the
    confirmed ones, with the missing person's name."""
    return _identifications(request, db, principal, "csv", state, operation, q)


@router.get("/identifications.xlsx", response_class=StreamingResponse, responses=_ok("xlsx"))
def identifications_xlsx(request: Request, db: DB, state: IdentificationState | None = None,
                         operation: Text64 = None, q: Text64 = None,
                         principal: Principal = P("identifications.read")) -> StreamingResponse:
    """The same as ``identifications.csv``, as an Excel workbook."""
    return _identifications(request, db, principal, "xlsx", state, operation, q)


# ---------------------------------------------------------------------------
# audit trail
# ---------------------------------------------------------------------------


def _audit(request: Request, db: DB, principal: Principal, fmt: str, action: str | None, username: str | None,
           object_type: str | None, object_id: str | None) -> StreamingResponse:
    head = db.scalar(select(func.max(AuditEntry.seq))) or 0
    export = ex.audit_export(db, action=action or None, username=username or None, object_type=object_type or None,
                             object_id=object_id or None, up_to_seq=head)
    return _send(request, db, principal, export, fmt)


AuditText = Annotated[str | None, Query(max_length=64)]
AuditObject = Annotated[str | None, Query(max_length=128)]


@router.get("/audit.csv", response_class=StreamingResponse, responses=_ok("csv"))
def audit_csv(request: Request, db: DB, action: AuditText = None, username: AuditText = None,
              object_type: AuditText = None, object_id: AuditObject = None,
              principal: Principal = P("audit.read")) -> StreamingResponse:
    """Audit entries with the filters of the audit page, oldest first, up to the head at the time of
    the request, as CSV: every field as stored (``details`` is the JSON text the hash covers)."""
    return _audit(request, db, principal, "csv", action, username, object_type, object_id)


@router.get("/audit.xlsx", response_class=StreamingResponse, responses=_ok("xlsx"))
def audit_xlsx(request: Request, db: DB, action: AuditText = None, username: AuditText = None,
               object_type: AuditText = None, object_id: AuditObject = None,
               principal: Principal = P("audit.read")) -> StreamingResponse:
    """The same as ``audit.csv``, as an Excel workbook."""
    return _audit(request, db, principal, "xlsx", action, username, object_type, object_id)


@router.get("/audit.jsonl", response_class=StreamingResponse, responses=_ok("jsonl"))
def audit_jsonl(request: Request, db: DB, action: AuditText = None, username: AuditText = None,
                object_type: AuditText = None, object_id: AuditObject = None,
                principal: Principal = P("audit.read")) -> StreamingResponse:
    """The same entries as JSON lines: ``seq``, ``at``, ``username``, ``action``, ``object_type``,
    ``object_id``, ``details`` (the stored JSON text), ``prev_hash`` and ``hash``, exactly as stored,
    so that anyone can recompute the chain (``docs/reports.md``)."""
    return _audit(request, db, principal, "jsonl", action, username, object_type, object_id)
