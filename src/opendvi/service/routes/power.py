"""Power planning in the service: a family's power and its suggested next
sample, the intake officer's list of weak families, and a picture of the LR
distribution (``docs/power.md``).

Power is a statistic about the references, so it is shown to the roles that
see families (``families.read``); it names family and member codes, never
persons. The markers are those of an operation's frequency database (query
parameter ``operation``; by default the first operation, by code, that has
one). Results are kept in a small in-process cache keyed by the frequency
database and the family's current data, so a page is computed once per
change of the references.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from threading import Lock
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from opendvi.core.case import Case
from opendvi.core.errors import OpenDVIError
from opendvi.i18n import format_number, get_locale
from opendvi.i18n import gettext as _
from opendvi.io.case_json import case_from_dict
from opendvi.service.deps import DB, CurrentPrincipal, Principal, require
from opendvi.service.errors import APIError
from opendvi.service.policy import ROLE_TITLES
from opendvi.store import repositories as repo
from opendvi.store.models import Family, FrequencyDatabase
from opendvi.workflows.planning import FamilyPower, RegistryPower, family_plan, lr_distribution_png, plan_registry
from opendvi.workflows.results import clean, power_json

router = APIRouter()

PERMISSION = "families.read"
#: Weak families get their best next relative, at most this many per list (weakest first).
NEXT_LIMIT = 50
SEP = "::"
SORTS = ("inclusion", "family", "missing", "e_log10_lr", "exclusion", "n_typed", "next_inclusion")
_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_MAX = 256
_LOCK = Lock()


def _perm() -> Any:
    return Depends(require(PERMISSION))


def _cached(key: str, make: Any) -> Any:
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = make()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return value


# ---------------------------------------------------------------------------
# the store -> a case of families
# ---------------------------------------------------------------------------


def _frequencies(db: Session, operation: str | None) -> tuple[str, FrequencyDatabase]:
    if operation:
        op = repo.get_operation(db, code=operation)
        if op.frequency_database is None:
            raise APIError(409, _("operation %(operation)s has no markers yet: import a case first",
                                     operation=operation), code="conflict")
        return op.code, op.frequency_database
    for op in sorted(repo.list_operations(db), key=lambda o: o.code):
        if op.frequency_database is not None:
            return op.code, op.frequency_database
    raise APIError(409, _("no operation has markers yet: import a case or frequencies first"), code="conflict")


def _family_row(db: Session, fam: Family, *, prefix: bool = False,
                lineage: dict[str, Any] | None = None) -> dict[str, Any]:
    """The family as dvi-case/1; with ``prefix`` member ids become "FAMILY::ID"
    (member codes are unique within a family only, ids within a case); with ``lineage``
    (:func:`_lineage_content`), the donors' haplotypes of its systems and Y loci."""
    y_loci = {m["name"] for m in (lineage or {}).get("Y", {}).get("markers", [])}
    mps = {mp.member_id for mp in repo.missing_of(db, family=fam)}
    donors = {d.member_id: d for d in repo.donors_of(db, family=fam)}
    members = []

    def pid(x: str | None) -> str | None:
        return f"{fam.code}{SEP}{x}" if prefix and x is not None else x

    for m in fam.members:
        row: dict[str, Any] = {"id": pid(m.code), "father": pid(m.father), "mother": pid(m.mother), "sex": m.sex}
        if m.id in mps:
            row["missing"] = True
        if m.id in donors and donors[m.id].profile_usable:  # not after consent is withdrawn
            prof = repo.current_profile(db, donor=donors[m.id])
            if prof is not None:
                row["genotypes"] = prof.genotypes
                if prof.dropout:
                    row["dropout"] = prof.dropout
                haps = {"Y": {k: v for k, v in (prof.haplotypes or {}).get("Y", {}).items() if k in y_loci},
                        "mt": (prof.haplotypes or {}).get("mt")} if lineage else {}
                haps = {s: h for s, h in haps.items() if s in (lineage or {}) and h}
                if haps:
                    row["haplotypes"] = haps
        members.append(row)
    return {"id": fam.code, "members": members}


def _lineage_content(db: Session, op_code: str) -> dict[str, Any]:
    """The operation's lineage databases (Y-STR, mtDNA) as dvi-case/1 ``lineage``; empty without:
    the power of a family then counts the lineage markers of its donors (``docs/power.md``)."""
    dbs = repo.operation_lineage(db, operation=repo.get_operation(db, code=op_code))
    return {s: r.content for s, r in dbs.items()}


def _case(fdb: FrequencyDatabase, rows: list[dict[str, Any]],
          lineage: dict[str, Any] | None = None) -> tuple[Case, str]:
    data = {"format": "dvi-case/1", "name": "power", "theta": fdb.theta, "markers": fdb.markers, "remains": [],
            "families": [r for r in rows if any(m.get("missing") for m in r["members"])]}
    text = fdb.sha256 + json.dumps(data["families"], sort_keys=True)
    if lineage:
        data["lineage"] = lineage
        text += json.dumps(lineage, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()
    try:
        return case_from_dict(data), key
    except OpenDVIError as exc:
        raise APIError(409, _("the family data cannot be evaluated: %(why)s", why=exc), code="conflict") from None


def family_result(db: Session, code: str, operation: str | None) -> tuple[str, list[FamilyPower], str]:
    """The power of every missing person of family ``code``, with every
    untyped relative ranked as the next sample."""
    op_code, fdb = _frequencies(db, operation)
    fam = repo.get_family(db, code=code)
    lineage = _lineage_content(db, op_code)
    case, key = _case(fdb, [_family_row(db, fam, lineage=lineage)], lineage)
    if not case.families:
        raise APIError(409, _("family %(family)s has no missing person", family=code), code="conflict")

    def make() -> list[FamilyPower]:
        try:
            return family_plan(case, case.families[0].id)
        except OpenDVIError as exc:
            raise APIError(409, _("power cannot be computed: %(why)s", why=exc), code="conflict") from None

    return op_code, _cached("family:" + key, make), key


def registry_result(db: Session, operation: str | None, level: float, threshold: float) -> tuple[str, RegistryPower]:
    op_code, fdb = _frequencies(db, operation)
    case, key = _case(fdb, [_family_row(db, f, prefix=True) for f in repo.list_families(db)])

    def make() -> RegistryPower:
        try:
            return plan_registry(case, level=level, threshold=threshold, next_limit=NEXT_LIMIT)
        except OpenDVIError as exc:
            raise APIError(409, _("power cannot be computed: %(why)s", why=exc), code="conflict") from None

    return op_code, _cached(f"registry:{level!r}:{threshold!r}:{key}", make)


def _sorted_rows(res: RegistryPower, sort: str, order: str) -> list[dict[str, Any]]:
    k = res.key
    def local(x: str | None, fam: str) -> str | None:
        return x[len(fam) + len(SEP):] if x is not None and x.startswith(fam + SEP) else x

    rows = [r.to_json() | {"ip": r.inclusion[k], "bound": r.inclusion_bound[k], "missing": local(r.missing, r.family),
                           "next_candidate": local(r.next_candidate, r.family)} for r in res.weak()]
    field = {"inclusion": "ip", "exclusion": "ep_total"}.get(sort, sort)

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        v = r[field]
        return (v is None, v if v is not None else 0, r["family"], r["missing"])

    rows.sort(key=key, reverse=order == "desc")
    if order == "desc":  # keep empty values last
        rows.sort(key=lambda r: r[field] is None)
    return rows


# ---------------------------------------------------------------------------
# JSON API
# ---------------------------------------------------------------------------


@router.get("/api/power/families/{code:path}", tags=["power"])
def api_family_power(code: str, db: DB, operation: str | None = Query(None, max_length=64),
                     principal: Principal = _perm()) -> list[dict[str, Any]]:
    """Exclusion power, the LR distribution of the true missing person,
    inclusion power and the ranked next relatives, per missing person of the
    family (the shape of ``opendvi power --format json``)."""
    _op, results, _key = family_result(db, code, operation)
    return power_json(results)


@router.get("/api/power/weak", tags=["power"])
def api_weak(db: DB, operation: str | None = Query(None, max_length=64),
             level: float = Query(0.9, gt=0.0, le=1.0), threshold: float = Query(1e4, gt=1.0, le=1e12),
             sort: str = Query("inclusion", pattern="^(" + "|".join(SORTS) + ")$"),
             order: str = Query("asc", pattern="^(asc|desc)$"),
             principal: Principal = _perm()) -> dict[str, Any]:
    """Families whose inclusion power at ``threshold`` is below ``level``,
    with the best next relative of the weakest."""
    op_code, res = registry_result(db, operation, level, threshold)
    return clean({"operation": op_code, "level": level, "threshold": threshold, "n_missing": len(res.rows),
                   "fraction_weak": res.fraction_weak, "weak": _sorted_rows(res, sort, order)})


# ---------------------------------------------------------------------------
# pages
# ---------------------------------------------------------------------------


def _render(request: Request, template: str, principal: Principal, **context: Any) -> HTMLResponse:
    ctx = {"user": principal.user, "principal": principal, "csrf": principal.csrf, "role_titles": ROLE_TITLES,
           **context}
    resp: HTMLResponse = request.app.state.templates.TemplateResponse(request, template, ctx)
    return resp


@router.get("/power", include_in_schema=False)
def weak_page(request: Request, db: DB, operation: str | None = Query(None, max_length=64),
              level: float = Query(0.9, gt=0.0, le=1.0),
              sort: str = Query("inclusion", pattern="^(" + "|".join(SORTS) + ")$"),
              order: str = Query("asc", pattern="^(asc|desc)$"),
              principal: Principal = _perm()) -> Response:
    op_code, res = registry_result(db, operation, level, 1e4)
    return _render(request, "power_weak.html", principal, rows=_sorted_rows(res, sort, order), level=level,
                   sort=sort, order=order, operation=op_code, n_missing=len(res.rows),
                   fraction=res.fraction_weak, next_limit=NEXT_LIMIT, sorts=SORTS)


@router.get("/power/families/{code:path}", include_in_schema=False)
def family_page(request: Request, code: str, db: DB, operation: str | None = Query(None, max_length=64),
                principal: Principal = _perm()) -> Response:
    op_code, results, _key = family_result(db, code, operation)
    return _render(request, "power_family.html", principal, code=code, operation=op_code,
                   results=[(r, r.to_json()) for r in results])


_PANEL_JS = Path(__file__).resolve().parents[1] / "templates" / "power_panel.js"


@router.get("/assets/power-panel.js", include_in_schema=False)
def power_panel_js(principal: CurrentPrincipal) -> Response:
    """The families page's power panels (same origin: the Content-Security-Policy allows no inline script)."""
    return Response(_PANEL_JS.read_text(encoding="utf-8"), media_type="text/javascript")


@router.get("/power/lr-plot/families/{code:path}", include_in_schema=False)
def plot(code: str, db: DB, missing: str | None = Query(None, min_length=1, max_length=200),
         operation: str | None = Query(None, max_length=64), principal: Principal = _perm()) -> Response:
    """PNG: the distribution of log10 LR of ``missing`` (default: the family's first missing person)."""
    _op, results, key = family_result(db, code, operation)
    for r in results:
        if missing is None or r.missing == missing:
            labels = {"x": _("log10 LR of the true missing person"), "y": _("probability"),
                      "title": _("Family {family}, {missing}: E[log10 LR] = {mean} (sd {sd})")}
            png = _cached(f"png:{key}:{missing}:{get_locale()}",
                          lambda r=r, labels=labels: lr_distribution_png(r, labels=labels, number=format_number))
            return Response(content=png, media_type="image/png")
    raise APIError(404, _("family %(family)s has no missing person %(missing)s", family=code, missing=repr(missing)),
                   code="not_found")
