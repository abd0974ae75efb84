"""The service's write actions, shared by the JSON API and the web pages.

Each runs in one transaction: committed when it succeeds, rolled back (with
nothing written, audit entry included) when it fails.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from opendvi import __version__
from opendvi.core.errors import OpenDVIError
from opendvi.i18n import gettext as _
from opendvi.i18n import lazy, translate
from opendvi.service import offload
from opendvi.service.deps import Principal
from opendvi.service.policy import EVIDENCE_OVERRIDABLE
from opendvi.service.writes import writing
from opendvi.store import repositories as repo
from opendvi.store.db import begin_write
from opendvi.store.errors import ImportValidationError
from opendvi.store.models import Identification, MatchingRun, User
from opendvi.store.repositories import DecisionPolicy
from opendvi.workflows.matching import ENGINE

MAX_IMPORT_BYTES = 50 * 1024 * 1024


def _check_size(raw: bytes, filename: str | None) -> None:
    """An upload over :data:`MAX_IMPORT_BYTES` is refused (413) before any parsing."""
    if len(raw) > MAX_IMPORT_BYTES:
        from opendvi.service.errors import APIError

        raise APIError(413, _("%(file)s: the file is larger than %(size)s MiB, the limit of an import",
                              file=filename, size=MAX_IMPORT_BYTES // (1024 * 1024)), code="too_large")


def import_case(
    db: Session,
    *,
    principal: Principal,
    operation_code: str,
    data: Any,
    filename: str,
    raw: bytes | None = None,
    laboratory: str | None = None,
    kit: str | None = None,
) -> repo.ImportSummary:
    """Import a ``dvi-case/1`` document (parsed JSON or raw bytes): all or nothing. Parsed and checked in
    the import process (:mod:`opendvi.service.offload`), then written in one short transaction. The
    ``Import`` row's SHA-256 is that of ``raw``, the bytes as they came (the API's JSON body too); of
    ``data`` in canonical form (sorted keys) when there are no bytes."""
    with writing(db, begin=False):
        if raw is not None:
            _check_size(raw, filename)
            body = raw
        else:
            body = json.dumps(data, sort_keys=True).encode("utf-8")
        case = offload.parse(offload.case_from_upload, raw, data if raw is None else None, filename)
        begin_write(db)  # parsed and checked: one short write transaction
        operation = repo.get_operation(db, code=operation_code)
        return repo.import_case(db, case=case, operation=operation, filename=filename,
                                sha256=hashlib.sha256(body).hexdigest(), by=principal.user,
                                laboratory=laboratory, kit=kit)


#: file formats the service imports, by what they hold
FILE_FORMATS = {
    "json": lazy("a dvi-case/1 case (markers, remains, families)"),
    "fam": lazy("a Familias .fam file (markers, families, remains)"),
    "genemapper": lazy("GeneMapper export (remains profiles)"),
    "cmf": lazy("CODIS CMF XML (remains profiles)"),
    "profiles-csv": lazy("profile table, CSV (remains profiles)"),
    "xlsx": lazy("Excel workbook with a profiles sheet (remains profiles)"),
}


def file_formats() -> dict[str, str]:
    """:data:`FILE_FORMATS` in the request's language."""
    return {k: translate(v) for k, v in FILE_FORMATS.items()}


def import_file(
    db: Session,
    *,
    principal: Principal,
    operation_code: str,
    raw: bytes,
    filename: str,
    laboratory: str | None = None,
    kit: str | None = None,
) -> repo.ImportSummary:
    """Import an uploaded file of any format :data:`FILE_FORMATS` lists
    (the format is told from the name and the first line): all or nothing."""
    _check_size(raw, filename)
    if Path(filename).suffix.lower() == ".json" or raw.lstrip()[:1] == b"{":
        return import_case(db, principal=principal, operation_code=operation_code, data=None, raw=raw,
                           filename=filename, laboratory=laboratory, kit=kit)
    with writing(db, begin=False):
        parsed = offload.parse(offload.file_from_upload, raw, filename)  # in the import process
        sha = hashlib.sha256(raw).hexdigest()
        begin_write(db)
        operation = repo.get_operation(db, code=operation_code)
        if parsed.case is not None:
            summary = repo.import_case(db, case=parsed.case, operation=operation, filename=filename, sha256=sha,
                                       by=principal.user, notes=parsed.notes, laboratory=laboratory, kit=kit)
        elif parsed.samples is not None:
            summary = repo.import_remains_profiles(db, samples=parsed.samples, operation=operation,
                                                   filename=filename, sha256=sha, file_format=parsed.format,
                                                   by=principal.user, notes=parsed.notes, laboratory=laboratory,
                                                   kit=kit, y_haplotypes=parsed.y_haplotypes)
        else:
            raise ImportValidationError(
                [_("a %(format)s file is not imported through the service; accepted: %(accepted)s",
                   format=parsed.format, accepted="; ".join(file_formats().values()))], filename=filename)
        return summary


def run_matching(db: Session, *, principal: Principal, operation_code: str, top_k: int = 10,
                 lr_threshold: float = 1e4) -> MatchingRun:
    """Queue a matching run (every remains against every missing person, with the operation's
    frequencies); a worker executes it (:mod:`opendvi.service.worker`). One short write transaction."""
    with writing(db):
        operation = repo.get_operation(db, code=operation_code)
        return repo.enqueue_run(db, operation=operation, software_version=f"opendvi {__version__}", engine=ENGINE,
                                parameters={"top_k": top_k, "lr_threshold": lr_threshold}, by=principal.user)


def cancel_run(db: Session, *, principal: Principal, run_id: int) -> MatchingRun:
    """Cancel a queued run, or ask the worker of a running one to stop."""
    with writing(db):
        return repo.cancel_run(db, run_id=run_id, by=principal.user)


def propose(db: Session, *, principal: Principal, candidate_id: int, note: str = "",
            override_reason: str = "", policy: DecisionPolicy | None = None) -> Identification:
    """Propose a candidate; refused (409) on evidence that no longer holds, unless the policy
    (:data:`opendvi.service.policy.EVIDENCE_OVERRIDABLE`) allows it and ``override_reason`` says why."""
    with writing(db):
        cand = repo.get_candidate(db, candidate_id=candidate_id)
        return repo.propose_identification(db, candidate=cand, by=principal.user, note=note,
                                           allow=EVIDENCE_OVERRIDABLE, override_reason=override_reason,
                                           policy=policy)


def decide(db: Session, *, principal: Principal, identification_id: int, action: str, reason: str = "",
           expected_version: int | None = None, override_reason: str = "",
           policy: DecisionPolicy | None = None) -> Identification:
    with writing(db):
        return repo.decide_identification(db, identification_id=identification_id, action=action,
                                          by=principal.user, reason=reason, expected_version=expected_version,
                                          allow=EVIDENCE_OVERRIDABLE, override_reason=override_reason,
                                          policy=policy)


def set_language(db: Session, *, principal: Principal, language: str | None) -> None:
    """The user's interface language (``"uk"``, ``"en"``; None: the browser's ``Accept-Language``)."""
    with writing(db):
        user = db.get(User, principal.user.id)
        if user is not None:
            user.language = language


def import_families(
    db: Session,
    *,
    principal: Principal,
    operation_code: str,
    families_raw: bytes,
    families_name: str,
    profiles_raw: bytes | None = None,
    profiles_name: str | None = None,
) -> repo.ImportSummary:
    """Import a families template (CSV or Excel: family, id, father, mother,
    sex, missing, sample barcode) with the reference profiles of its members
    from a profiles file (CSV, Excel, GeneMapper or CODIS CMF) matched by
    sample barcode; markers are the operation's. All or nothing."""
    with writing(db, begin=False):
        for raw_, name_ in ((families_raw, families_name), (profiles_raw, profiles_name)):
            if raw_ is not None:
                _check_size(raw_, name_)
        operation = repo.get_operation(db, code=operation_code)
        fdb = operation.frequency_database
        if fdb is None:
            raise ImportValidationError(
                [_("operation %(operation)s has no markers yet: import a dvi-case/1 or Familias file first",
                   operation=operation.code)], filename=families_name)
        case, notes, barcodes = offload.parse(  # in the import process
            offload.families_from_upload, families_raw, families_name, profiles_raw, profiles_name,
            fdb.markers, fdb.theta, operation.code)
        sha = hashlib.sha256(families_raw + (profiles_raw or b"")).hexdigest()
        begin_write(db)
        filename = families_name if profiles_name is None else f"{families_name} + {profiles_name}"[:255]
        return repo.import_case(db, case=case, operation=operation, filename=filename, sha256=sha,
                                by=principal.user, notes=notes, donor_barcodes=barcodes,
                                file_format="families-table")


def import_frequencies(
    db: Session,
    *,
    principal: Principal,
    operation_code: str,
    raw: bytes,
    filename: str,
    population: str | None = None,
) -> dict[str, Any]:
    """Import a frequency database (Familias list, ladder CSV, long CSV with
    ``population``) as the operation's frequencies: all or nothing."""
    from opendvi.io.frequencies import read_frequencies

    with writing(db, begin=False):
        _check_size(raw, filename)
        operation = repo.get_operation(db, code=operation_code)
        try:  # the upload as it came, named as the user named it
            upload = io.BytesIO(raw)
            fdb = (read_frequencies(upload, filename=filename, population=population) if population
                   else read_frequencies(upload, filename=filename))
        except OpenDVIError as exc:
            raise ImportValidationError([str(exc)], filename=filename) from None
        tables = {key: (t.name, t.alleles, t.frequencies) for key, t in fdb.tables.items()}
        begin_write(db)
        return repo.import_frequencies(db, tables=tables, operation=operation, filename=filename,
                                       sha256=hashlib.sha256(raw).hexdigest(), file_format="frequencies",
                                       population=population, by=principal.user)
