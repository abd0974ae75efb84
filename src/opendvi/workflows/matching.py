"""The service's matching run (a worker job, ``service/worker.py``): screening, per-marker LRs of the kept
pairings, joint identification of each component of the candidate graph, and the candidate rows the
worker stores (:func:`match_case`)."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opendvi.core.case import Case
from opendvi.core.rules import unevaluable_family_note
from opendvi.dvi import UNASSIGNED, DVIError, DVIProblem, PairwiseResult, solve_joint
from opendvi.dvi.workflow import SolveOptions
from opendvi.store.repositories import CandidateRow
from opendvi.workflows import incremental
from opendvi.workflows.candidate_systems import candidate_systems
from opendvi.workflows.incremental import RunState

LOG10 = math.log(10.0)
ENGINE = "opendvi.screening (exact) + opendvi.dvi.solve_joint (flat prior, per component)"
#: the share of the run's progress each phase ends at
PHASE_END = {"loading": 0.05, "screening": 0.70, "per-marker LRs": 0.85, "joint": 0.95, "storing": 1.0}

ProgressFn = Callable[[str, float], None]


@dataclass(frozen=True)
class MatchingResult:
    """The candidate rows of a matching run and its provenance."""

    candidates: list[CandidateRow]
    engine: str
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    #: families that could not be evaluated: ``{"family", "markers", "note"}``
    skipped: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: the run's inputs and kept lists, for the next run (``matching_run_inputs``)
    state: RunState | None = None
    #: what the run recomputed and why (``matching_runs.recomputed``)
    recomputed: dict[str, Any] = field(default_factory=dict)


def _log10(x: float) -> float | None:
    return None if x == -math.inf else x / LOG10


def match_case(
    case: Case,
    *,
    top_k: int = 10,
    lr_threshold: float = 1e4,
    progress: ProgressFn | None = None,
    current: RunState | None = None,
    previous: RunState | None = None,
    carried_rows: Mapping[tuple[str, str], dict[str, Any]] | None = None,
) -> MatchingResult:
    """Candidates of every remains: its ``top_k`` best pairings by LR and every pairing with
    LR >= ``lr_threshold``, with joint posteriors (``docs/service.md``, matching runs).

    1. **screening** (exact pairwise LRs, the numbers of ``opendvi pairwise`` and ``opendvi screen``);
       families that cannot be evaluated (references impossible at a marker) are skipped with a note
       naming them and the markers, and the run goes on. With ``previous`` (the state of an earlier
       run, :mod:`opendvi.workflows.incremental`) and ``current`` (this case's fingerprints) only the
       new or re-typed remains and the new or changed families are screened, the rest carried over
       (``carried_rows``: the earlier run's candidates' per-marker LRs), exactly as a full run;
    2. **per-marker LRs** of the kept pairings, for the match pages, from the screening's own tables
       (they add up to the pairing's LR and equal the general engine's);
    3. **joint identification** of each component of the candidate graph (flat prior): each pairing's
       marginal posterior, exact, or the lower end of a certified interval in a component too large
       for exact sums (a note says so); the GLR of each call of the best assignment, as
       ``opendvi solve`` computes it (not below the LR of a probable identification; a certified lower
       bound that reaches the identification threshold is kept as a bound).

    ``progress(phase, fraction)`` is called between steps and after each screening shard; it may raise
    to stop the run (a cancellation)."""

    def report(phase: str, fraction: float) -> None:
        if progress is not None:
            progress(phase, fraction)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    start = PHASE_END["loading"]
    span = PHASE_END["screening"] - start
    report("screening", start)
    cur = current or incremental.current_state(case, profile_ids={}, top_k=top_k, lr_threshold=lr_threshold,
                                               frequency_database_sha256="", mutation_models={})
    plan = incremental.plan(previous, cur)
    kept = incremental.kept_lists(case, previous=previous, plan_=plan, top_k=top_k, lr_threshold=lr_threshold,
                                  carried_rows=carried_rows or {},
                                  progress=lambda f: report("screening", start + span * f))
    t1 = time.perf_counter()
    timings["screening"] = t1 - t0
    notes = list(kept.notes)
    log_thr = math.log(lr_threshold)
    kept_mp: dict[str, list[str]] = {r.id: [] for r in case.remains}
    screened: dict[tuple[str, str], tuple[float, int, int]] = {}
    for rid, (_complete, entries) in kept.lists.items():
        for rank, (mp, v, x) in enumerate(incremental.candidates_of(entries, top_k, log_thr), start=1):
            kept_mp[rid].append(mp)
            screened[(rid, mp)] = (v, x, rank)
    report("per-marker LRs", PHASE_END["screening"])
    # the screening made the reference checks of core.rules already: not again
    problem = DVIProblem(replace(case, pairings={r: tuple(v) for r, v in kept_mp.items()}),
                         reference_checks=(kept.unevaluable, kept.inconsistent))
    for n in problem.notes:
        if n not in notes and not n.startswith("pairings:"):
            notes.append(n)
    # the joint step works on the screening's numbers; per-marker LRs come from its tables too
    pw = PairwiseResult.from_pairs(problem, {pair: (v, x) for pair, (v, x, _rank) in screened.items()})
    t2 = time.perf_counter()
    timings["per_marker"] = t2 - t1
    report("joint", PHASE_END["per-marker LRs"])
    decide = SolveOptions()
    posterior, calls, posterior_method, n_components = _joint_posteriors(problem, pw, decide, notes)
    t3 = time.perf_counter()
    timings["joint"] = t3 - t2
    rows: list[CandidateRow] = []
    typed_of = {rid: [m.name for m in problem.markers if problem.remains[rid].genotypes.get(m.name)]
                for rid in problem.remains}
    names = kept.markers
    y_tables: dict[str, Any] = {}  # each missing person's Y table (candidate_systems)
    for (rid, mp), (v, x, rank) in screened.items():
        per_marker = kept.carried.get((rid, mp))
        if per_marker is None:
            per = zip(names, kept.per_marker[(rid, mp)], strict=True)
            per_marker = {"log10_lr": {m: (None if y == -math.inf else y / LOG10) for m, y in per},
                          "typed": typed_of.get(rid, [])}
        call = calls.get((rid, mp))
        rows.append(
            CandidateRow(
                remains=rid, missing=mp, log10_lr=_log10(v), posterior=posterior.get((rid, mp), 0.0),
                exclusions=x, n_markers=len(typed_of.get(rid, ())), rank=rank, per_marker=per_marker,
                log10_glr=None if call is None else call[0] / LOG10, glr_bound=None if call is None else call[1],
                systems=candidate_systems(problem, rid, mp, per_marker, y_tables),
            )
        )
    skipped = [{"family": f, "markers": list(m), "note": unevaluable_family_note(f, m)}
               for f, m in kept.unevaluable.items()]
    cur.lists = kept.lists
    cur.unevaluable = {f: list(m) for f, m in kept.unevaluable.items()}
    cur.inconsistent = {f: list(m) for f, m in kept.inconsistent.items()}
    recomputed = plan.summary(pairs_screened=kept.pairs_screened, pairs_carried=kept.pairs_carried,
                              n_remains=len(case.remains), n_families=len(case.families))
    return MatchingResult(
        candidates=rows,
        engine=ENGINE,
        parameters={"top_k": top_k, "lr_threshold": lr_threshold, "theta": case.theta, "prior": "flat",
                    "posterior": posterior_method, "scope": "every remains x every missing person",
                    "glr_from_lr": decide.probable_threshold, "glr_settled_at": decide.threshold},
        notes=notes,
        skipped=skipped,
        timings=timings,
        counts={"remains": len(case.remains), "missing_persons": sum(len(f.missing) for f in case.families),
                "candidates": len(rows), "components": n_components, "families_skipped": len(skipped)},
        state=cur,
        recomputed=recomputed,
    )


def _joint_posteriors(
    problem: DVIProblem, pw: PairwiseResult, decide: SolveOptions, notes: list[str]
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], tuple[float, bool]], str, int]:
    """The pairings' posteriors, the best assignment's calls with their log GLR (and whether it is a
    certified bound), the posterior method and the number of components; notes appended to ``notes``.
    GLRs as ``opendvi solve`` computes them: not below the LR of a probable identification, and a
    certified lower bound that reaches the identification threshold settles the call."""
    posterior: dict[tuple[str, str], float] = defaultdict(float)
    calls: dict[tuple[str, str], tuple[float, bool]] = {}
    posterior_method = "joint"
    n_components = 0
    try:
        # absolute=False: no absolute log-likelihood is stored, so families' null likelihoods are
        # computed only where a family takes several remains (the same posteriors and GLRs)
        joint = solve_joint(problem, pw, top=1, glr_floor=math.log(decide.probable_threshold) - 1e-9,
                            glr_enough=math.log(decide.threshold), absolute=False)
        n_components = len(joint.components)
        if joint.rows:
            glr = joint.glr()
            bound = {r for c in joint.components for r in c.remains if r in c.glr_bound}
            for rid, mp in joint.rows[0].assignment.items():
                g = glr.get(rid, math.nan)
                if mp != UNASSIGNED and not math.isnan(g):
                    calls[(rid, mp)] = (g, rid in bound)
        for comp in joint.components:
            if comp.glr_not_computed:
                notes.append(comp.glr_limit_note())
            # exact marginals; beyond, the lower end of the certified interval, and a note says so
            for key, (low, _high) in comp.marginals.items():
                posterior[key] = low
            if comp.message:
                notes.append(f"a component of {len(comp.remains)} remains ({comp.remains[0]} ...) was not "
                             f"solved jointly: {comp.message}; its posteriors are per remains")
                _per_remains(pw.log_lr, posterior, comp.remains)
            elif not comp.exact:
                posterior_method = "joint, certified lower bounds in large components"
                notes.append(
                    f"a component of {len(comp.remains)} remains: posteriors are the lower ends of certified "
                    f"intervals (method {comp.method}, half-width up to {comp.max_error:.2g})"
                )
    except DVIError as exc:
        posterior_method = "per-remains"
        notes.append(f"joint identification not possible ({exc}); posteriors are per remains")
        _per_remains(pw.log_lr, posterior, list(pw.log_lr))
    return posterior, calls, posterior_method, n_components


def _per_remains(log_lr: Mapping[str, Mapping[str, float]], posterior: dict[tuple[str, str], float],
                 remains: Sequence[str]) -> None:
    """Flat prior over "one of its candidates, or nobody among the missing", one remains at a time."""
    for rid in remains:
        row = log_lr.get(rid, {})
        finite = [v for v in row.values() if v != -math.inf]
        mx = max([0.0, *finite])
        norm = math.exp(-mx) + math.fsum(math.exp(v - mx) for v in finite)
        for mp, v in row.items():
            posterior[(rid, mp)] = 0.0 if v == -math.inf else math.exp(v - mx) / norm
