"""A slow, obviously-correct pairwise LR for the screening tests.

For every admissible (remains V, missing person M) and every marker it calls
the core engine directly (:func:`opendvi.core.likelihood.marker_loglik`):
ln LR = ln P(refs, g_V on M) - ln P(refs) - ln P(g_V) (theta = 0), or with
theta the denominator P(refs, g_V) with V an extra unrelated founder of the
family's pedigree. A marker untyped in V, or in every member of the family,
contributes 0. The exclusion count is the number of markers at which the
numerator is 0 once the mutation models are removed (V untyped there: the
references alone), as dvir counts. A family whose references are impossible
at a marker is skipped (no pairing). Shares no code with
:mod:`opendvi.screening`.
"""

from __future__ import annotations

import math

from opendvi.core.case import Case, Family
from opendvi.core.likelihood import marker_loglik
from opendvi.core.markers import Marker, canonical_marker_name
from opendvi.core.pedigree import Individual, Pedigree


def brute_pairwise(case: Case) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """``(log_lr[V][M], exclusions[V][M])`` for every admissible pairing."""
    case, _ = case.with_unseen_alleles()
    markers = [m for m in case.markers if canonical_marker_name(m.name) != "AMEL"]
    log_lr: dict[str, dict[str, float]] = {}
    excl: dict[str, dict[str, int]] = {}
    skipped: set[str] = set()
    inconsistent: set[tuple[str, str]] = set()
    for fam in case.families:
        for m in markers:
            refs = _refs(fam, m)
            if marker_loglik(fam.pedigree, m, refs, theta=case.theta, dropout=fam.dropout) == -math.inf:
                skipped.add(fam.id)
            m0 = m.without_mutation()
            if marker_loglik(fam.pedigree, m0, refs, theta=case.theta, dropout=fam.dropout) == -math.inf:
                inconsistent.add((fam.id, m.name))
    for v in case.remains:
        log_lr[v.id] = {}
        excl[v.id] = {}
        for fam in case.families:
            if fam.id in skipped:
                continue  # the family cannot be evaluated
            for mp in fam.missing:
                ms = fam.sex_of(mp)
                if v.sex is not None and ms is not None and v.sex != ms:
                    continue
                if case.pairings and v.id in case.pairings and mp not in case.pairings[v.id]:
                    continue
                total, nx = 0.0, 0
                for m in markers:
                    gv = v.genotypes.get(m.name)
                    refs = _refs(fam, m)
                    if refs and not gv:
                        nx += (fam.id, m.name) in inconsistent
                    if not gv or not refs:
                        continue
                    drop = dict(fam.dropout)
                    if v.dropout:
                        drop[mp] = v.dropout
                    num = marker_loglik(fam.pedigree, m, {**refs, mp: gv}, theta=case.theta, dropout=drop)
                    if case.theta == 0.0:
                        den = marker_loglik(fam.pedigree, m, refs, dropout=fam.dropout) + marker_loglik(
                            Pedigree([Individual("_V", sex="M")]), m, {"_V": gv}, dropout={"_V": v.dropout}
                        )
                    else:
                        ped = fam.pedigree.add(Individual("_V", sex="M"))
                        den = marker_loglik(
                            ped, m, {**refs, "_V": gv}, theta=case.theta, dropout={**fam.dropout, "_V": v.dropout}
                        )
                    total = -math.inf if num == -math.inf or total == -math.inf else total + num - den
                    num0 = (
                        marker_loglik(fam.pedigree, m.without_mutation(), {**refs, mp: gv}, theta=case.theta,
                                      dropout=drop)
                        if m.has_mutation
                        else num
                    )
                    nx += num0 == -math.inf
                log_lr[v.id][mp] = total
                excl[v.id][mp] = nx
    return log_lr, excl


def _refs(fam: Family, m: Marker) -> dict[str, tuple[str, ...]]:
    return {pid: g[m.name] for pid, g in fam.genotypes.items() if g.get(m.name)}


def screen_all(case: Case, **kwargs: object) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """Every admissible pairing from the screening (top = all, no threshold),
    in the shape of :func:`brute_pairwise`."""
    from opendvi.screening import screen

    n = sum(len(f.missing) for f in case.families)
    res = screen(case, top=max(1, n), threshold=None, **kwargs)  # type: ignore[arg-type]
    log_lr: dict[str, dict[str, float]] = {r.id: {} for r in case.remains}
    excl: dict[str, dict[str, int]] = {r.id: {} for r in case.remains}
    for v, m, s, x in res.pairs():
        log_lr[v][m] = s
        excl[v][m] = x
    return log_lr, excl


def assert_same(got: dict[str, dict[str, float]], want: dict[str, dict[str, float]], *, rel: float = 1e-9) -> None:
    """Same pairings; ln LR within ``rel`` (relative LR difference), -inf exactly."""
    assert set(got) == set(want)
    for v in want:
        assert set(got[v]) == set(want[v]), v
        for m, w in want[v].items():
            g = got[v][m]
            if w == -math.inf or g == -math.inf:
                assert g == w, (v, m, g, w)
            else:
                assert abs(math.expm1(g - w)) <= rel, (v, m, g, w)
