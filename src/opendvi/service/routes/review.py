"""The geneticist's review: the match review page, the proposal, the identification report.

* ``GET /candidates/{id}``: the evidence of a candidate first (pedigree, alleles, LR and posterior
  with their provenance, the verbal equivalent, rank and GLR, warnings), then the decisions
  (propose; confirm or reject a proposal of this pairing, posting to the identifications' routes);
* ``POST /candidates/{id}/propose``;
* ``GET /identifications/{id}/report`` (printable HTML) and ``/report.pdf`` (the same HTML through
  WeasyPrint). The PDF download appends an audit entry ``report.export`` with the SHA-256 of the
  file handed out (``docs/reports.md``); reading the page writes nothing.

Everything shown comes from :mod:`opendvi.reports.evidence`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from opendvi.i18n import gettext as _
from opendvi.reports import evidence as evmod
from opendvi.reports.identification import PDFUnavailable, fragments, report_html, report_pdf
from opendvi.service import access, actions, writes
from opendvi.service.deps import DB, P, Principal
from opendvi.service.errors import APIError
from opendvi.service.policy import EVIDENCE_OVERRIDABLE
from opendvi.service.routes.pages import render
from opendvi.store import audit
from opendvi.store import repositories as repo
from opendvi.store.db import begin_write
from opendvi.store.models import Identification, IdentificationState

router = APIRouter(include_in_schema=False)


@router.get("/candidates/{candidate_id}")
def match_page(request: Request, candidate_id: int, db: DB, principal: Principal = P("candidates.read")) -> Response:
    """The match review page: the evidence first, then the decision forms."""
    cand = repo.get_candidate(db, candidate_id=candidate_id)
    ev = evmod.candidate_evidence(db, cand, names=principal.can("names.read"),
                                  policy=request.app.state.settings.decision_policy)
    # identifications of this pairing (this remains as this missing person) and the others
    mine = [o for o in ev["other_active"] if o["same_remains"] and o["same_missing_person"]]
    others = [o for o in ev["other_active"] if o not in mine]
    # the reviewer decides a proposal of this pairing here, with the version he saw
    this = []
    for o in mine:
        ident = db.get(Identification, o["id"])
        if ident is not None:
            this.append({**o, "version": ident.version, "proposed_by": ident.proposed_by.username})
    # one line per rule (its words in the reader's language); missing_person_identified is told above
    problems = list({p["rule"]: p for p in ev["evidence_problems"] if p["rule"] != "missing_person_identified"}
                    .values())
    # rules the policy lets a decision break with a reason (recorded in the audit): the forms ask for one
    overridable = sorted({p["rule"] for p in ev["evidence_problems"] if p["rule"] in EVIDENCE_OVERRIDABLE})
    return render(request, "match.html", principal, c=ev, ev=ev, frag=fragments(ev), this=this, others=others,
                   problems=problems, overridable=overridable)


@router.post("/candidates/{candidate_id}/propose")
def propose(request: Request, candidate_id: int, db: DB, note: str = Form("", max_length=10_000),
            override_reason: str = Form("", max_length=10_000),
            principal: Principal = P("identifications.propose")) -> Response:
    ident = actions.propose(db, principal=principal, candidate_id=candidate_id, note=note,
                            override_reason=override_reason, policy=request.app.state.settings.decision_policy)
    return RedirectResponse(f"/identifications#ident-{ident.id}", status_code=303)


def _report_evidence(db: DB, identification_id: int, principal: Principal) -> tuple[Identification, dict[str, Any]]:
    # the family liaison sees confirmed identifications only (as on the identifications page and the API)
    ident = access.visible_identification(db, principal, identification_id)
    if ident.candidate is None:
        raise APIError(409, _("identification #%(id)s has no candidate to report on", id=identification_id),
                       code="conflict")
    return ident, evmod.identification_evidence(db, ident, names=principal.can("names.read"))


@router.get("/identifications/{identification_id}/report")
def report_page(request: Request, identification_id: int, db: DB,
                principal: Principal = P("identifications.read")) -> Response:
    """The identification report, printable (print CSS), with a link to its PDF."""
    _ident, ev = _report_evidence(db, identification_id, principal)
    return HTMLResponse(report_html(ev, links=True))


@router.get("/identifications/{identification_id}/report.pdf")
def report_pdf_download(request: Request, identification_id: int, db: DB,
                        principal: Principal = P("identifications.read")) -> Response:
    """The same report as PDF; its SHA-256 goes into an audit entry ``report.export``."""
    ident, ev = _report_evidence(db, identification_id, principal)
    try:
        pdf = report_pdf(report_html(ev))
    except PDFUnavailable:
        raise APIError(503, _("PDF reports cannot be made on this server (WeasyPrint's system libraries are "
                              "missing): use the printable report"), code="pdf_unavailable") from None
    digest = hashlib.sha256(pdf).hexdigest()
    begin_write(db)
    audit.append(db, action="report.export", username=principal.username, object_type="identification",
                 object_id=ident.id, details={"format": "pdf", "state": ident.state.value,
                                              "version": ident.version, "names": bool(ev["names"]),
                                              "sha256": digest, "bytes": len(pdf)})
    writes.commit(db)
    state = "" if ident.state == IdentificationState.confirmed else "-draft"
    filename = f"identification-{ident.id}{state}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "X-Report-SHA256": digest})
