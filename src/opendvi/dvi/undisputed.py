"""Undisputed identifications, as dvir's ``findUndisputed`` defines them.

A pairing V = M is undisputed when LR(V, M) >= threshold and every other LR
in V's row (V against the other missing persons) and in M's column (the
other remains against M) is at most LR(V, M) / threshold. All undisputed
pairings of a step are then placed: V's profile becomes M's genotypes in
M's family, V and M leave the problem, the pairwise LRs are recomputed, and
the search repeats until a step finds nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from opendvi.dvi.pairwise import PairwiseResult, pairwise_lr
from opendvi.dvi.problem import DVIProblem, safe_exp

DEFAULT_THRESHOLD = 1e4


@dataclass(frozen=True)
class Undisputed:
    """One undisputed identification: remains V is missing person M of family F."""

    family: str
    missing: str
    remains: str
    log_lr: float
    step: int

    @property
    def lr(self) -> float:
        return safe_exp(self.log_lr)


@dataclass
class UndisputedResult:
    """The identifications in the order found, and the problem that is left
    (the identified remains placed in their families)."""

    identified: list[Undisputed]
    remaining: DVIProblem
    pairwise: PairwiseResult

    @property
    def assignment(self) -> dict[str, str]:
        return {u.remains: u.missing for u in self.identified}


def undisputed_pairs(pw: PairwiseResult, threshold: float) -> list[tuple[str, str, float]]:
    """The pairings of one step that pass the row and column condition."""
    log_t = math.log(threshold)
    columns: dict[str, list[tuple[str, float]]] = {}
    for rid, mp, v in pw.pairs():
        columns.setdefault(mp, []).append((rid, v))
    out = []
    for rid, mp, v in pw.pairs():
        if v == -math.inf or v < log_t:
            continue
        row_ok = all(w <= v - log_t for m2, w in pw.log_lr[rid].items() if m2 != mp)
        col_ok = all(w <= v - log_t for r2, w in columns[mp] if r2 != rid)
        if row_ok and col_ok:
            out.append((rid, mp, v))
    return out


def find_undisputed(
    problem: DVIProblem, *, threshold: float = DEFAULT_THRESHOLD, pairwise: PairwiseResult | None = None
) -> UndisputedResult:
    """Iterate the undisputed search until nothing more is found."""
    if threshold <= 1:
        from opendvi.dvi.errors import DVIError

        raise DVIError(f"the undisputed threshold must be > 1, found {threshold}")
    found: list[Undisputed] = []
    pw = pairwise if pairwise is not None else pairwise_lr(problem)
    step = 0
    while True:
        step += 1
        pairs = undisputed_pairs(pw, threshold)
        if not pairs:
            return UndisputedResult(found, problem, pw)
        for rid, mp, v in pairs:
            found.append(Undisputed(problem.family_of(mp), mp, rid, v, step))
        problem = problem.with_identified({rid: mp for rid, mp, _ in pairs})
        pw = pairwise_lr(problem)
