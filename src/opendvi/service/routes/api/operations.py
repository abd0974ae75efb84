"""The API's operations: creation, dashboards, imports and matching runs."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from opendvi.service import actions
from opendvi.service import schemas as s
from opendvi.service import views as v
from opendvi.service.deps import DB, P, Principal
from opendvi.service.routes.api._common import Code, Id, router
from opendvi.service.writes import writing
from opendvi.store import repositories as repo


class OperationCreate(BaseModel):
    code: Code
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="exchange", pattern="^(exchange|recovery)$")
    received_on: date | None = None
    expected_count: int | None = Field(default=None, ge=0, le=10_000_000)


class MatchingIn(BaseModel):
    top_k: int = Field(default=10, ge=1, le=1000, description="candidates kept per remains, best first")
    lr_threshold: float = Field(default=1e4, gt=0, description="every pairing with LR at or above it is kept too")


@router.get("/operations", tags=["operations"], response_model=list[s.OperationOut])
def list_operations(db: DB, principal: Principal = P("operations.read")) -> list[dict[str, Any]]:
    return [v.operation_public(db, op) for op in repo.list_operations(db)]


@router.post("/operations", tags=["operations"], status_code=201, response_model=s.OperationOut)
def create_operation(body: OperationCreate, db: DB, principal: Principal = P("operations.create")) -> dict[str, Any]:
    with writing(db):
        op = repo.create_operation(db, code=body.code, name=body.name, kind=body.kind,
                                   received_on=body.received_on, expected_count=body.expected_count,
                                   by=principal.username)
    return v.operation_public(db, op)


@router.get("/operations/{code}", tags=["operations"], response_model=s.OperationOut)
def get_operation(code: Code, db: DB, principal: Principal = P("operations.read")) -> dict[str, Any]:
    """The operation with its dashboard counts and latest matching run."""
    return v.operation_public(db, repo.get_operation(db, code=code), counts=True)


# ---------------------------------------------------------------------------
# imports
# ---------------------------------------------------------------------------


#: the JSON body of ``POST /operations/{code}/imports``, as the API documentation shows it (the route reads
#: the bytes itself: parsed and checked in the import process, not on the event loop)
_CASE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "title": "Document", "description": "A dvi-case/1 document"}}}}}


@router.post("/operations/{code}/imports", tags=["imports"], status_code=201, response_model=s.ImportOut,
             openapi_extra=_CASE_BODY)
async def import_case(
    code: Code,
    db: DB,
    request: Request,
    filename: str = Query("upload.json", max_length=255),
    principal: Principal = P("imports.create"),
) -> dict[str, Any]:
    """Import a ``dvi-case/1`` case into the operation: all or nothing; a refusal lists every problem.
    The import records the SHA-256 of the body as it came."""
    raw = await request.body()  # parsed (with the file limits) and checked in the import process
    summary = await run_in_threadpool(
        lambda: actions.import_case(db, principal=principal, operation_code=code, data=None, raw=raw,
                                    filename=filename)
    )
    return summary.as_dict()


@router.post("/operations/{code}/imports/file", tags=["imports"], status_code=201, response_model=s.ImportOut)
async def import_file(
    code: Code,
    db: DB,
    file: UploadFile = File(..., description="dvi-case/1, Familias .fam, GeneMapper, CODIS CMF, CSV or Excel"),
    laboratory: str | None = Form(None, max_length=128),
    kit: str | None = Form(None, max_length=128),
    principal: Principal = P("imports.create"),
) -> dict[str, Any]:
    """Import a file of any accepted format into the operation: all or nothing.
    ``laboratory`` and ``kit`` are recorded on the remains and profiles it brings."""
    raw = await file.read(actions.MAX_IMPORT_BYTES + 1)
    filename = (file.filename or "upload")[:255]
    summary = await run_in_threadpool(
        lambda: actions.import_file(db, principal=principal, operation_code=code, raw=raw, filename=filename,
                                    laboratory=laboratory or None, kit=kit or None)
    )
    return summary.as_dict()


@router.post("/operations/{code}/imports/families", tags=["imports"], status_code=201, response_model=s.ImportOut)
async def import_families(
    code: Code,
    db: DB,
    families: UploadFile = File(..., description="families template, CSV or Excel (family, id, father, mother, "
                                                 "sex, missing, sample)"),
    profiles: UploadFile | None = File(None, description="the references' profiles: CSV, Excel, GeneMapper or "
                                                         "CODIS CMF, matched by sample barcode"),
    principal: Principal = P("families.import"),
) -> dict[str, Any]:
    """Register families (pedigrees, missing persons, reference donors) from the families template, with
    the reference profiles matched by sample barcode; markers are the operation's. All or nothing."""
    fam_raw = await families.read(actions.MAX_IMPORT_BYTES + 1)
    prof_raw = await profiles.read(actions.MAX_IMPORT_BYTES + 1) if profiles is not None else None
    summary = await run_in_threadpool(
        lambda: actions.import_families(
            db, principal=principal, operation_code=code, families_raw=fam_raw,
            families_name=(families.filename or "families.csv")[:255], profiles_raw=prof_raw,
            profiles_name=((profiles.filename or "profiles.csv")[:255]) if profiles is not None else None)
    )
    return summary.as_dict()


@router.post("/operations/{code}/imports/frequencies", tags=["imports"], status_code=201,
             response_model=s.FrequencyImportOut)
async def import_frequencies(
    code: Code,
    db: DB,
    file: UploadFile = File(..., description="Familias frequency list, ladder CSV or long CSV"),
    population: str | None = Form(None, max_length=128, description="the population of a long CSV"),
    principal: Principal = P("frequencies.import"),
) -> dict[str, Any]:
    """Set the operation's allele frequencies from a file: its markers keep their mutation models and take
    the new frequencies (the file must cover them all); an operation without markers takes the file's.
    All or nothing; later matching runs record the new database and its hash."""
    raw = await file.read(actions.MAX_IMPORT_BYTES + 1)
    filename = (file.filename or "frequencies.txt")[:255]
    return await run_in_threadpool(
        lambda: actions.import_frequencies(db, principal=principal, operation_code=code, raw=raw,
                                           filename=filename, population=population or None)
    )


# ---------------------------------------------------------------------------
# matching runs
# ---------------------------------------------------------------------------


@router.post("/operations/{code}/matching-runs", tags=["matching"], status_code=202, response_model=s.RunQueuedOut)
def run_matching(code: Code, db: DB, body: MatchingIn | None = None,
                 principal: Principal = P("matching.run")) -> dict[str, Any]:
    """Queue a matching run: every remains of the database against every missing person (exact screening,
    top-K and every pairing above the LR threshold, joint posteriors per component), with the operation's
    frequencies. Answers at once; a worker executes it: poll ``GET /api/matching-runs/{run}``."""
    b = body or MatchingIn()
    run = actions.run_matching(db, principal=principal, operation_code=code, top_k=b.top_k,
                               lr_threshold=b.lr_threshold)
    return {"run": run.id, "status": run.status, "url": f"/api/matching-runs/{run.id}"}


@router.get("/operations/{code}/matching-runs", tags=["matching"], response_model=list[s.RunOut])
def list_runs(code: Code, db: DB, limit: int = Query(50, ge=1, le=500),
              principal: Principal = P("operations.read")) -> list[dict[str, Any]]:
    """The operation's matching runs, newest first (status, progress, counts, provenance)."""
    return [v.run_public(r) for r in repo.runs_of(db, operation=repo.get_operation(db, code=code), limit=limit)]


@router.get("/matching-runs/{run_id}", tags=["matching"], response_model=s.RunOut)
def get_run(run_id: Id, db: DB, principal: Principal = P("operations.read")) -> dict[str, Any]:
    """A run: status (queued, running, finished, failed, cancelled), progress 0..1, phase, timings, counts,
    the families skipped, the error of a failed run, and its provenance."""
    return v.run_public(repo.get_run(db, run_id=run_id))


@router.post("/matching-runs/{run_id}/cancel", tags=["matching"], status_code=202, response_model=s.RunOut)
def cancel_run(run_id: Id, db: DB, principal: Principal = P("matching.run")) -> dict[str, Any]:
    """Cancel a queued run (at once) or a running one (its worker stops at the next step and keeps
    nothing); 409 for a run that ended."""
    return v.run_public(actions.cancel_run(db, principal=principal, run_id=run_id))
