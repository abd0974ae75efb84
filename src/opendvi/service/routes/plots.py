"""Plots (``/plots/...``): SVG and PNG pictures of an operation, a family and a candidate
(:mod:`opendvi.reports.plots`; ``docs/reports.md``, Exports and plots).

Fixed URLs that pages embed as ``<img>``:

* ``/plots/operations/{code}/lr-histogram.svg|png`` (``operations.read``): best log10 LR per remains in
  the current run;
* ``/plots/operations/{code}/progress.svg|png`` (``operations.read``): received, typed, matched, proposed,
  confirmed over time;
* ``/plots/families/{code}/lr-distribution.svg|png`` (``families.read``; ``missing``: which missing
  person, default the first; ``operation``: whose frequencies, default as the power pages);
* ``/plots/candidates/{id}/lr-distribution.svg|png`` (``candidates.read``): the family's distribution for
  the candidate's missing person, with the frequencies of the candidate's run, and its log10 LR marked.

Any object the caller may read gets a valid picture: one with a message when there is nothing to draw
(no run, no typed reference, no frequencies), never an error page. Endpoints are plain functions (run in
worker threads, off the event loop); pictures are cached per process by what they depend on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from opendvi import i18n
from opendvi.core.errors import OpenDVIError
from opendvi.i18n import gettext as _
from opendvi.reports import plots as pl
from opendvi.service.deps import DB, P, Principal
from opendvi.service.errors import APIError
from opendvi.service.routes import power
from opendvi.store import repositories as repo
from opendvi.store.models import FrequencyDatabase

router = APIRouter(prefix="/plots", include_in_schema=False)
FORMATS = ("svg", "png")


def _image(data: bytes, fmt: str) -> Response:
    return Response(content=data, media_type=pl.MEDIA[fmt])


def each_format(path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register ``draw`` (its last parameter ``fmt``) as one GET route per picture format: ``path`` with
    ``{fmt}`` replaced by ``svg``, then ``png`` (fixed URLs that pages embed)."""

    def register(draw: Callable[..., Response]) -> Callable[..., Response]:
        sig = inspect.signature(draw)
        params = [p for name, p in sig.parameters.items() if name != "fmt"]
        for fmt in FORMATS:
            def endpoint(*, _fmt: str = fmt, **kwargs: Any) -> Response:
                return draw(**kwargs, fmt=_fmt)

            endpoint.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
            endpoint.__name__ = f"{draw.__name__}_{fmt}"
            endpoint.__doc__ = draw.__doc__
            router.get(path.replace("{fmt}", fmt))(endpoint)
        return draw

    return register


# ---------------------------------------------------------------------------
# operations
# ---------------------------------------------------------------------------


def _histogram(db: DB, code: str, fmt: str) -> Response:
    op = repo.get_operation(db, code=code)
    run_id = repo.current_run_id(db)
    key = ("lr-histogram", op.id, op.code, run_id, i18n.get_locale(), fmt)
    return _image(pl.CACHE.get(key, lambda: pl.lr_histogram(pl.operation_best_lr(db, operation=op),
                                                            operation=op.code, fmt=fmt)), fmt)


def _progress(db: DB, code: str, fmt: str) -> Response:
    op = repo.get_operation(db, code=code)
    key = ("progress", op.code, repo.progress_fingerprint(db, operation=op), i18n.get_locale(), fmt)
    return _image(pl.CACHE.get(key, lambda: pl.progress_plot(repo.operation_progress(db, operation=op),
                                                             operation=op.code, expected=op.expected_count,
                                                             fmt=fmt)), fmt)


@each_format("/operations/{code}/lr-histogram.{fmt}")
def histogram(code: str, db: DB, principal: Principal = P("operations.read"), *, fmt: str) -> Response:
    return _histogram(db, code, fmt)


@each_format("/operations/{code}/progress.{fmt}")
def progress(code: str, db: DB, principal: Principal = P("operations.read"), *, fmt: str) -> Response:
    return _progress(db, code, fmt)


# ---------------------------------------------------------------------------
# families and candidates
# ---------------------------------------------------------------------------


def _distribution(db: DB, fdb: FrequencyDatabase, family_code: str, missing: str | None, fmt: str,
                  mark: tuple[str, float | None] | None = None, mark_key: Any = None) -> Response:
    """The family's distribution picture, or an empty-state one saying why there is none."""
    fam = repo.get_family(db, code=family_code)
    title = _("Family %(family)s: simulated LR distribution", family=fam.code)
    try:
        case, key = power._case(fdb, [power._family_row(db, fam)])
    except APIError as exc:  # the references cannot be evaluated
        return _image(pl.empty_plot(exc.message, title=title, fmt=fmt), fmt)
    if not case.families:
        return _image(pl.empty_plot(_("Family %(family)s has no missing person.", family=fam.code), title=title,
                                    fmt=fmt), fmt)
    f = case.families[0]
    if missing is not None and missing not in f.missing:
        raise APIError(404, _("family %(family)s has no missing person %(missing)s", family=fam.code,
                              missing=repr(missing)), code="not_found")
    mp = missing or f.missing[0]
    if not any(f.genotypes.get(pid) for pid in f.pedigree.ids):
        return _image(pl.empty_plot(_("No typed reference in family %(family)s yet: no LR distribution.",
                                      family=fam.code), title=title, fmt=fmt), fmt)

    def simulate() -> Any:
        try:
            return pl.family_distribution(case, f.id, mp)
        except OpenDVIError as exc:
            return str(exc)

    dist = pl.CACHE.get(("distribution", key, mp, pl.NSIM, pl.SEED), simulate)
    if isinstance(dist, str):
        return _image(pl.empty_plot(_("The LR distribution cannot be computed: %(why)s", why=dist), title=title,
                                    fmt=fmt), fmt)
    image_key = ("lr-distribution", key, mp, mark_key, i18n.get_locale(), fmt)
    return _image(pl.CACHE.get(image_key, lambda: pl.distribution_plot(dist, mark=mark, fmt=fmt)), fmt)


def _family(db: DB, code: str, missing: str | None, operation: str | None, fmt: str) -> Response:
    try:
        _op, fdb = power._frequencies(db, operation)
    except APIError as exc:
        if exc.status != 409:
            raise
        fam = repo.get_family(db, code=code)  # 404 for an unknown family, before any picture
        return _image(pl.empty_plot(_("No frequency database yet: import a case or frequencies first."),
                                    title=_("Family %(family)s: simulated LR distribution", family=fam.code),
                                    fmt=fmt), fmt)
    return _distribution(db, fdb, code, missing, fmt)


def _candidate(db: DB, candidate_id: int, fmt: str) -> Response:
    cand = repo.get_candidate(db, candidate_id=candidate_id)
    fdb = db.get(FrequencyDatabase, cand.run.frequency_database_id)
    if fdb is None:  # pragma: no cover - a run keeps its frequency database
        raise APIError(404, _("the frequency database of run %(run)s is gone", run=cand.run_id), code="not_found")
    mp = cand.missing_person
    what = _("candidate %(id)s (%(remains)s)", id=cand.id, remains=cand.remains.barcode)
    return _distribution(db, fdb, mp.family.code, mp.member.code, fmt, mark=(what, cand.log10_lr),
                         mark_key=("candidate", cand.id, cand.log10_lr))


Missing = Query(None, min_length=1, max_length=200, description="the missing person (default: the first)")
OperationQ = Query(None, max_length=64, description="whose frequency database (default: as the power pages)")


@each_format("/families/{code:path}/lr-distribution.{fmt}")
def family(code: str, db: DB, missing: str | None = Missing, operation: str | None = OperationQ,
           principal: Principal = P("families.read"), *, fmt: str) -> Response:
    return _family(db, code, missing, operation, fmt)


@each_format("/candidates/{candidate_id}/lr-distribution.{fmt}")
def candidate(candidate_id: int, db: DB, principal: Principal = P("candidates.read"), *, fmt: str) -> Response:
    return _candidate(db, candidate_id, fmt)
