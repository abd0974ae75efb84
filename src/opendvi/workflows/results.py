"""Results as JSON-ready dicts, and LRs as text: the one home of both, for the CLI (``--format json``,
its tables) and the service (the power API, the pages' ``lr`` filter).

Numbers follow ``case-json.md``: -inf as the string "-inf", inf as "inf", NaN as null
(:func:`opendvi.core.rules.json_number`); an LR is written for people by :func:`format_lr` (its home is
:mod:`opendvi.reports.numbers`, so that the reports, a layer below, write LRs by the same rule).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opendvi.core.rules import json_number as jnum
from opendvi.core.rules import safe_exp
from opendvi.dvi import Component, JointResult, UndisputedResult
from opendvi.dvi.workflow import EXCLUDED, IDENTIFIED, PROBABLE, UNDECIDED, Conclusion, Solution, SolveOptions
from opendvi.reports.numbers import format_lr

if TYPE_CHECKING:
    from opendvi.power import FamilyPower, RegistryPower
    from opendvi.screening import ScreenResult
    from opendvi.workflows.identify import Likelihoods, PairwiseRun, RemainsRun, SolveRun

__all__ = [
    "clean",
    "format_lr",
    "joint_json",
    "likelihood_json",
    "log10_of",
    "pairwise_json",
    "power_json",
    "registry_json",
    "remains_json",
    "screen_json",
    "solve_json",
    "summary_json",
    "undisputed_json",
    "write_screen_results",
]

LN10 = math.log(10.0)

def clean(x: Any) -> Any:
    """JSON-safe numbers (:func:`~opendvi.core.rules.json_number`), recursively through dicts and lists."""
    if isinstance(x, float):
        return jnum(x)
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clean(v) for v in x]
    return x


def log10_of(log_lr: float | None) -> float | str | None:
    """log10 LR for JSON from a natural-log LR: null when not admissible, "-inf" for an LR of 0."""
    if log_lr is None:
        return None
    return jnum(log_lr / LN10)


def _lr(log_lr: float | None) -> float | str | None:
    """The LR for JSON from a natural-log LR (null when not admissible)."""
    return None if log_lr is None else jnum(safe_exp(log_lr))


# -- the references' likelihood ------------------------------------------------------------------------
def likelihood_json(res: Likelihoods) -> dict[str, Any]:
    """``{"case", "theta", "families": [{"family", "loglik": {marker: ln L}, "loglik_total"}], "notes"}``."""
    return {
        "case": res.case.name,
        "theta": res.case.theta,
        "families": [
            {"family": fid, "loglik": {m: jnum(v) for m, v in ll.per_marker.items()}, "loglik_total": jnum(ll.total)}
            for fid, ll in res.families
        ],
        "notes": res.notes,
    }


# -- pairwise -----------------------------------------------------------------------------------------
def pairwise_json(run: PairwiseRun) -> dict[str, Any]:
    """``{"lr", "log10_lr", "exclusions"}``: remains -> missing person -> value (null: not admissible);
    with lineage evidence also ``systems``, ``lr_by_system`` and ``mismatches``."""
    problem, pw = run.problem, run.pairwise
    lr: dict[str, dict[str, float | str | None]] = {}
    log10: dict[str, dict[str, float | str | None]] = {}
    excl: dict[str, dict[str, int | None]] = {}
    for rid in problem.remains:
        lr[rid], log10[rid], excl[rid] = {}, {}, {}
        for mp in problem.missing:
            v = pw.log_lr[rid].get(mp)
            lr[rid][mp] = jnum(pw.lr(rid, mp))
            log10[rid][mp] = log10_of(v)
            excl[rid][mp] = pw.exclusions[rid].get(mp)
    doc: dict[str, Any] = {"lr": lr, "log10_lr": log10, "exclusions": excl}
    if run.lineage is not None:
        extra = run.lineage.to_json()
        doc["systems"] = list(run.lineage.systems)
        doc["lr_by_system"] = extra["lr_by_system"]
        doc["mismatches"] = extra["mismatches"]
    return doc


# -- solve --------------------------------------------------------------------------------------------
def _interval(b: tuple[float, float] | None) -> list[float] | None:
    return None if b is None else [float(b[0]), float(b[1])]


def joint_json(res: JointResult) -> list[dict[str, Any]]:
    """The best joint assignments: assignment, log-likelihood, LR, posterior (or its interval)."""
    out = []
    for row in res.rows:
        item: dict[str, Any] = {
            "assignment": row.assignment,
            "loglik": jnum(row.loglik),
            "lr": jnum(row.lr),
            "posterior": jnum(row.posterior) if row.exact else None,
        }
        if not row.exact:
            item["posterior_interval"] = _interval(row.posterior_bounds)
        out.append(item)
    return out


def undisputed_json(und: UndisputedResult) -> list[dict[str, Any]]:
    return [{"family": u.family, "missing": u.missing, "remains": u.remains, "lr": jnum(u.lr)} for u in und.identified]


def conclusion_json(c: Conclusion) -> dict[str, Any]:
    """One line of the summary (a remains or a missing person)."""
    return {
        "remains": c.remains,
        "missing": c.missing,
        "family": c.family,
        "conclusion": c.conclusion,
        "lr": _lr(c.log_lr),
        "log10_lr": log10_of(c.log_lr),
        "posterior": None if c.posterior is None or not c.posterior_exact else c.posterior[0],
        "posterior_interval": _interval(c.posterior),
        "posterior_exact": c.posterior_exact if c.posterior is not None else None,
        "glr": _lr(c.log_glr),
        "log10_glr": log10_of(c.log_glr),
        "glr_exact": c.glr_exact if c.log_glr is not None else None,
        "symmetric": c.symmetric,
        "step": c.step,
        "comment": c.comment,
    }


def component_json(c: Component) -> dict[str, Any]:
    return {
        "remains": list(c.remains),
        "missing": list(c.missing),
        "families": list(c.families),
        "method": c.method,
        "posterior_exact": c.exact,
        "max_error": c.max_error,
        "log10_assignments": c.log_count / LN10,
        "assignments_exact": c.count_exact,
        "top_complete": c.top_complete,
        "message": c.message,
    }


def summary_json(sol: Solution, opts: SolveOptions) -> dict[str, Any]:
    """The summary per remains, per missing person and per family, the components, the options, the
    counts of each conclusion, the timings and the notes."""
    families: dict[str, list[dict[str, Any]]] = {}
    for c in sol.missing:
        families.setdefault(c.family or "", []).append(conclusion_json(c))
    return {
        "remains": [conclusion_json(c) for c in sol.remains],
        "missing": [conclusion_json(c) for c in sol.missing],
        "families": [{"family": f, "missing": v} for f, v in families.items()],
        "components": [component_json(c) for c in sol.joint.components],
        "options": {
            "pairwise": sol.pairwise_method,
            "max_exclusions": opts.max_exclusions,
            "threshold": opts.threshold,
            "threshold2": opts.probable_threshold,
            "min_posterior": opts.min_posterior,
            "lr_threshold": opts.lr_threshold,
            "undisputed": opts.undisputed,
            "max_assignments": opts.max_assignments,
        },
        "counts": {
            k: sum(1 for c in sol.remains if c.conclusion == k) for k in (IDENTIFIED, PROBABLE, EXCLUDED, UNDECIDED)
        },
        "seconds": {k: round(v, 3) for k, v in sol.seconds.items()},
        "notes": sol.notes,
    }


def solve_json(run: SolveRun) -> dict[str, Any]:
    """``{"joint", "undisputed", "groups", "summary"}`` (``opendvi solve --format json``)."""
    sol = run.solution
    return {
        "joint": joint_json(sol.joint),
        "undisputed": undisputed_json(sol.undisputed),
        "groups": run.groups,
        "summary": summary_json(sol, run.options),
    }


# -- remains against remains --------------------------------------------------------------------------
def remains_json(run: RemainsRun) -> dict[str, Any]:
    """Direct matches (LR >= 1, best first), groups, conflicts, consensus profiles, personal effects."""
    m = run.matching
    pairs = [
        {"remains": [a, b], "lr": _lr(v), "log10_lr": log10_of(v), **m.systems_json(a, b)}
        for (a, b), v in sorted(m.log_lr.items(), key=lambda kv: -kv[1])
        if v >= 0
    ]
    consensus = {}
    for g in m.groups:
        prof, notes = run.consensus["+".join(g)]
        consensus["+".join(g)] = {
            "remains": g,
            "sex": prof.sex,
            "dropout": prof.dropout,
            "genotypes": {k: list(v) for k, v in prof.genotypes.items()},
            "notes": notes,
        }
    return {
        "threshold": m.threshold,
        "groups": m.groups,
        "pairs": pairs,
        "conflicts": [{"remains": [a, b], "log10_lr": log10_of(v)} for a, b, v in m.conflicts],
        "consensus": consensus,
        "personal_effects": [
            {"remains": r, "missing": mp, "lr": _lr(v), "log10_lr": log10_of(v)}
            for (r, mp), v in sorted(m.personal_effects.items(), key=lambda kv: -kv[1])
        ],
    }


# -- screening ----------------------------------------------------------------------------------------
def screen_json(res: ScreenResult) -> dict[str, Any]:
    """``{"candidates": {remains: [...]}, "top", "threshold", "notes"}``; with lineage data each
    candidate adds ``lr_by_system`` and ``mismatches`` (:meth:`ScreenResult.candidates`) and the
    result ``systems``."""
    cands = res.candidates()
    for lst in cands.values():
        for c in lst:
            c["lr"] = jnum(c["lr"])
            c["log10_lr"] = jnum(c["log10_lr"])
            if "lr_by_system" in c:
                c["lr_by_system"] = {k: jnum(v) for k, v in c["lr_by_system"].items()}
    out: dict[str, Any] = {"candidates": cands, "top": res.top, "threshold": res.threshold, "notes": res.notes}
    if res.systems:
        out["systems"] = list(res.systems)
    return out


def write_screen_results(res: ScreenResult, path: Path) -> None:
    """The kept pairings as ``.parquet`` or ``.csv`` (:func:`opendvi.screening.write_results`)."""
    from opendvi.screening import write_results

    write_results(res, path)


# -- power --------------------------------------------------------------------------------------------
def power_json(results: list[FamilyPower]) -> list[dict[str, Any]]:
    """Each (family, missing person)'s power, as ``opendvi power --format json`` and the service's
    ``/api/power/families/{code}`` give it."""
    return [clean(r.to_json()) for r in results]


def registry_json(res: RegistryPower, *, level: float, threshold: float) -> dict[str, Any]:
    """``opendvi power-registry --format json``: the weak families, weakest first."""
    return clean({"level": level, "threshold": threshold, "n_families": len(res.rows),
                  "fraction_weak": res.fraction_weak, "weak": [r.to_json() for r in res.weak()], "notes": res.notes})
