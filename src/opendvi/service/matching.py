"""Matching for the service: the one adapter between the store and the engine.

:func:`match_case` turns a core :class:`~opendvi.core.case.Case` into
candidate rows: pairwise LRs and exclusion counts from
:func:`opendvi.dvi.pairwise_lr`, and each pairing's marginal posterior from
the joint identification (:func:`opendvi.dvi.solve_joint`: flat prior over
every admissible assignment of remains to missing persons, each component of
the candidate graph enumerated exactly). When a component is too large to
enumerate, the posterior falls back to one remains at a time (flat prior over
"one of its candidates, or nobody among the missing") and the run's
parameters say so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from opendvi.core.case import Case
from opendvi.dvi import DVIError, DVIProblem, pairwise_lr, solve_joint
from opendvi.store.repositories import CandidateRow

LOG10 = math.log(10.0)
ENGINE = "opendvi.dvi.pairwise_lr + opendvi.dvi.solve_joint (exact, flat prior)"


@dataclass
class MatchingResult:
    candidates: list[CandidateRow]
    engine: str
    parameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _log10(x: float) -> float | None:
    return None if x == -math.inf else x / LOG10


def match_case(case: Case, *, top_k: int = 10, min_posterior: float = 1e-4) -> MatchingResult:
    """Candidates of every remains: its ``top_k`` best pairings by LR, and
    every pairing whose posterior is at least ``min_posterior``."""
    problem = DVIProblem(case)
    pw = pairwise_lr(problem, keep_markers=True)
    notes = list(problem.notes)
    posterior: dict[tuple[str, str], float] = defaultdict(float)
    posterior_method = "joint"
    try:
        joint = solve_joint(problem, pw, top=1)
        for comp in joint.components:
            # exact marginals (enumeration or dynamic programming); beyond, the
            # lower end of the certified interval, and a note says so
            for key, (low, _high) in comp.marginals.items():
                posterior[key] = low
            if not comp.exact:
                posterior_method = "joint, certified lower bounds in large components"
                notes.append(
                    f"a component of {len(comp.remains)} remains: posteriors are the lower ends of certified "
                    f"intervals (method {comp.method}, half-width up to {comp.max_error:.2g})"
                )
    except DVIError as exc:
        posterior_method = "per-remains"
        notes.append(f"joint identification not possible ({exc}); posteriors are per remains")
        for rid, row in pw.log_lr.items():
            finite = [v for v in row.values() if v != -math.inf]
            mx = max([0.0, *finite])
            norm = math.exp(-mx) + math.fsum(math.exp(v - mx) for v in finite)
            for mp, v in row.items():
                posterior[(rid, mp)] = 0.0 if v == -math.inf else math.exp(v - mx) / norm
    rows: list[CandidateRow] = []
    for rid, row in pw.log_lr.items():
        ranked = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))
        for rank, (mp, v) in enumerate(ranked, start=1):
            post = posterior.get((rid, mp), 0.0)
            if rank > top_k and post < min_posterior:
                continue
            per = pw.per_marker.get((rid, mp), {})
            typed = [m for m in problem.markers if problem.remains[rid].genotypes.get(m.name)]
            rows.append(
                CandidateRow(
                    remains=rid,
                    missing=mp,
                    log10_lr=_log10(v),
                    posterior=post,
                    exclusions=pw.exclusions[rid][mp],
                    n_markers=len(typed),
                    rank=rank,
                    per_marker={
                        "log10_lr": {m: (None if x == -math.inf else x / LOG10) for m, x in per.items()},
                        "typed": [m.name for m in typed],
                    },
                )
            )
    return MatchingResult(
        candidates=rows,
        engine=ENGINE,
        parameters={"top_k": top_k, "min_posterior": min_posterior, "theta": case.theta,
                    "prior": "flat", "posterior": posterior_method},
        notes=notes,
    )
