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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opendvi.core.lineage_lr import combined_log_lr
from opendvi.dvi.pairwise import PairwiseResult, combined_pairwise_lr, pairwise_marker_log_lr
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
    #: the candidate pairings left (when the search was restricted to candidates)
    candidates: dict[str, tuple[str, ...]] | None = field(default=None)

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


def restrict(pw: PairwiseResult, candidates: Mapping[str, Sequence[str]]) -> PairwiseResult:
    """The pairwise result with only the candidate pairings."""
    out = PairwiseResult(remains=pw.remains, missing=pw.missing)
    for rid in pw.remains:
        keep = set(candidates.get(rid, ()))
        out.log_lr[rid] = {m: v for m, v in pw.log_lr.get(rid, {}).items() if m in keep}
        out.exclusions[rid] = {m: v for m, v in pw.exclusions.get(rid, {}).items() if m in keep}
    return out


def find_undisputed(
    problem: DVIProblem,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    pairwise: PairwiseResult | None = None,
    candidates: Mapping[str, Sequence[str]] | None = None,
    max_exclusions: int | None = None,
) -> UndisputedResult:
    """Iterate the undisputed search until nothing more is found.

    With ``candidates`` (remains -> missing persons, e.g. after the exclusion
    reduction) only those pairings count, in the row and column conditions
    too (as dvir's ``findUndisputed`` on a reduced ``dviData``); after each
    step only the pairings of the changed families are recomputed, and those
    with more than ``max_exclusions`` exclusions leave the candidates (an
    exclusion cannot disappear when a typed member is added).
    """
    if threshold <= 1:
        from opendvi.dvi.errors import DVIError

        raise DVIError(f"the undisputed threshold must be > 1, found {threshold}")
    found: list[Undisputed] = []
    pw = pairwise if pairwise is not None else combined_pairwise_lr(problem)
    if candidates is None:
        return _find_all(problem, threshold, pw, found)
    cands = {r: tuple(candidates.get(r, ())) for r in problem.remains}
    pw = restrict(pw, cands)
    step = 0
    while True:
        step += 1
        pairs = undisputed_pairs(pw, threshold)
        if not pairs:
            return UndisputedResult(found, problem, pw, cands)
        for rid, mp, v in pairs:
            found.append(Undisputed(problem.family_of(mp), mp, rid, v, step))
        ident = {rid: mp for rid, mp, _ in pairs}
        changed = {problem.family_of(mp) for mp in ident.values()}
        gone = set(ident.values())
        problem = problem.with_identified(ident)
        new = PairwiseResult(remains=tuple(problem.remains), missing=tuple(problem.missing))
        new_cands: dict[str, tuple[str, ...]] = {}
        for rid in problem.remains:
            row: dict[str, float] = {}
            exc: dict[str, int] = {}
            for mp in cands.get(rid, ()):
                if mp in gone:
                    continue
                if problem.family_of(mp) in changed:
                    per, n_excl = pairwise_marker_log_lr(problem, rid, mp)
                    vals = list(per.values())
                    v = -math.inf if any(x == -math.inf for x in vals) else math.fsum(vals)
                    if v != -math.inf and problem.case.lineage is not None:  # the combined LR
                        v = combined_log_lr({"autosomal": v, "lineage": problem.lineage_factors.pair_log_lr(rid, mp)})
                    if v == -math.inf or (max_exclusions is not None and n_excl > max_exclusions):
                        continue
                    row[mp], exc[mp] = v, n_excl
                else:
                    row[mp], exc[mp] = pw.log_lr[rid][mp], pw.exclusions[rid][mp]
            new.log_lr[rid], new.exclusions[rid] = row, exc
            new_cands[rid] = tuple(row)
        pw, cands = new, new_cands


def _find_all(problem: DVIProblem, threshold: float, pw: PairwiseResult, found: list[Undisputed]) -> UndisputedResult:
    step = 0
    while True:
        step += 1
        pairs = undisputed_pairs(pw, threshold)
        if not pairs:
            return UndisputedResult(found, problem, pw)
        for rid, mp, v in pairs:
            found.append(Undisputed(problem.family_of(mp), mp, rid, v, step))
        problem = problem.with_identified({rid: mp for rid, mp, _ in pairs})
        pw = combined_pairwise_lr(problem)
