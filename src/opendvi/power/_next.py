"""The best next relative of many weak families at once.

:func:`best_next_batched` gives, for each (family, missing person), what
:func:`opendvi.power.family_power` with every untyped relative as a
candidate ranks first (``rank_by="inclusion"``, exact inclusion power), but
batched like the registry's power: the per-marker work of every (family,
candidate) is grouped by the template of the pedigree with the candidate
typed, the marker and the size of the lumped allele space, and each group is
one NumPy pass (:func:`opendvi.screening._tables.template_tables` over every
candidate genotype of every family of the group, then the exact per-marker
facts as array operations); inclusion power of every (family, candidate) is
one batched grid convolution (:func:`batch_exact_inclusion`, the method and
bound of :func:`opendvi.power._inclusion.exact_inclusion`, row by row). The
numbers are those of the per-family path up to floating-point rounding
(``tests/test_power.py`` checks a few hundred simulated families).

Markers where the per-family path leaves the lumped evaluator (a mutation
model kept, a pedigree with the candidate typed that is no template) go
through :func:`opendvi.power._distribution.marker_power` item by item, as
there.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Family
from opendvi.core.markers import Marker
from opendvi.power._distribution import _triu, marker_power, unordered
from opendvi.power._family import untyped_relatives
from opendvi.power._inclusion import FFT_ERROR, convolve_all

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: (pair index, the template's roles, the references at the marker, the candidate)
_Item = tuple[int, tuple[str | None, ...], dict[str, tuple[str, ...]], str]
#: Complex numbers one batched convolution may hold.
_FFT_BUDGET = 1 << 23


@dataclass
class NextJob:
    """One weak (family, missing person) and, per marker, whether the
    baseline keeps the marker's mutation model (forrel's convention)."""

    family: Family
    missing: str
    kept: Sequence[bool]


@dataclass
class _Grid:
    """One marker's log10 LR of B rows on the grid of width h, as
    :func:`opendvi.power._inclusion.exact_inclusion` sees it: a constant
    (``is_const``: one atom, or atoms of one value ``l0``), or the histogram
    of ``floor(l / h) - klo`` over ``wid`` bins (``blocks``: row indices and
    their histograms, (rows, W) with W >= their widths)."""

    is_const: NDArray[np.bool_]
    l0: FloatArray
    klo: IntArray
    wid: IntArray
    blocks: list[tuple[IntArray, FloatArray]]

    @classmethod
    def empty(cls, B: int) -> _Grid:
        return cls(np.ones(B, dtype=bool), np.zeros(B), np.zeros(B, dtype=np.int64), np.ones(B, dtype=np.int64), [])

    def add(self, rows: IntArray, P: FloatArray, L: FloatArray, h: float) -> None:
        """Rows ``rows`` from their atoms ``P``/``L`` (len(rows), G) (probability 0 = absent)."""
        if not len(rows):
            return
        pos = P > 0.0
        r = np.arange(len(rows))
        first = np.argmax(pos, axis=1)
        lmax = np.where(pos, L, -np.inf).max(axis=1)
        lmin = np.where(pos, L, np.inf).min(axis=1)
        const = (pos.sum(axis=1) <= 1) | (lmax == lmin)
        k = np.floor(L / h).astype(np.int64)
        klo = np.where(const, 0, np.where(pos, k, np.iinfo(np.int64).max).min(axis=1))
        khi = np.where(const, 0, np.where(pos, k, np.iinfo(np.int64).min).max(axis=1))
        wid = khi - klo + 1
        self.is_const[rows] = const
        self.l0[rows] = L[r, first]
        self.klo[rows] = klo
        self.wid[rows] = wid
        multi = ~const
        if multi.any():
            W = int(wid[multi].max())
            use = pos & multi[:, None]
            flat = (r[:, None] * W + (k - klo[:, None]))[use]
            hist = np.bincount(flat, weights=P[use], minlength=len(rows) * W).astype(np.float64)
            self.blocks.append((rows[multi], hist.reshape(len(rows), W)[multi]))

    def hist(self, sel: IntArray) -> FloatArray:
        """(len(sel), W) histograms of rows ``sel`` (a constant: 1 at bin 0)."""
        W = int(np.where(self.is_const[sel], 1, self.wid[sel]).max()) if len(sel) else 1
        out = np.zeros((len(sel), W))
        where = np.full(len(self.is_const), -1, dtype=np.int64)
        where[sel] = np.arange(len(sel))
        for rows, H in self.blocks:
            at = where[rows]
            ok = at >= 0
            if ok.any():
                w = min(W, H.shape[1])
                out[at[ok], :w] = H[ok, :w]
        out[self.is_const[sel], 0] = 1.0
        return out


@dataclass
class _Facts:
    """Per (pair, marker): the exact facts, and log10 LR on the grid."""

    ep: FloatArray  # (pairs, markers)
    e_lr: FloatArray
    e_l: FloatArray
    var: FloatArray
    grids: list[_Grid]


def best_next_batched(jobs: Sequence[NextJob], markers: Sequence[Marker], *, mutations: str,
                      thresholds: Sequence[float], grid: float,
                      threshold: float) -> list[tuple[str, float, float, float] | None]:
    """Per job: (best candidate, its E[log10 LR], inclusion power at
    ``threshold`` and exclusion power expected after typing him or her), or
    None when the family has no untyped relative. The jobs' families must be
    template families (theta 0, autosomal markers, exact references)."""
    pairs: list[tuple[int, str]] = []
    for i, job in enumerate(jobs):
        pairs.extend((i, c) for c in untyped_relatives(job.family, job.missing))
    out: list[tuple[str, float, float, float] | None] = [None] * len(jobs)
    if not pairs:
        return out
    facts = _pair_facts(jobs, pairs, markers, mutations, grid)
    ts = tuple(float(t) for t in thresholds)
    ti = next(k for k, t in enumerate(ts) if math.isclose(t, threshold))
    ip = _pair_inclusion(facts.grids, ts, grid)[:, ti]
    ep_total = 1.0 - np.prod(1.0 - facts.ep, axis=1)
    e_l = [math.fsum(row) for row in facts.e_l.tolist()]
    best: dict[int, tuple[tuple[float, float], int]] = {}
    for q, (i, _c) in enumerate(pairs):
        key = (-round(float(ip[q]), 9), -e_l[q])  # rank_key(rank_by="inclusion"); ties: the first candidate
        if i not in best or key < best[i][0]:
            best[i] = (key, q)
    for i, (_key, q) in best.items():
        out[i] = (pairs[q][1], e_l[q], float(ip[q]), float(ep_total[q]))
    return out


# ---------------------------------------------------------------------------
# per-marker facts of every (family, candidate)
# ---------------------------------------------------------------------------


def _refs_at(fam: Family, marker: Marker) -> dict[str, tuple[str, ...]]:
    return {pid: tuple(g[marker.name]) for pid, g in fam.genotypes.items() if g.get(marker.name)}


#: Elements of one group's (items, configurations, genotypes) arrays.
_GROUP_BUDGET = 1 << 22


def _pair_facts(jobs: Sequence[NextJob], pairs: Sequence[tuple[int, str]], markers: Sequence[Marker],
                mutations: str, h: float) -> _Facts:
    from opendvi.screening._shapes import match_template

    nq, nm = len(pairs), len(markers)
    facts = _Facts(ep=np.zeros((nq, nm)), e_lr=np.ones((nq, nm)), e_l=np.zeros((nq, nm)), var=np.zeros((nq, nm)),
                   grids=[])
    tpl_cache: dict[tuple[int, str, frozenset[str]], tuple[Hashable, tuple[str | None, ...]] | None] = {}
    for j, m in enumerate(markers):
        groups: dict[tuple[Hashable, int], list[_Item]] = {}
        slow: list[int] = []
        for q, (i, c) in enumerate(pairs):
            job = jobs[i]
            fam = job.family
            refs = _refs_at(fam, m)
            if job.kept[j] or m.is_x or any(fam.dropout.get(pid, 0.0) for pid in fam.genotypes):
                slow.append(q)
                continue
            ck = (i, c, frozenset(refs))
            if ck not in tpl_cache:
                gts = {pid: {m.name: g} for pid, g in refs.items()}
                gts[c] = {m.name: (m.alleles[0], m.alleles[0])}
                probe = Family(id=fam.id, pedigree=fam.pedigree, genotypes=gts, missing=fam.missing,
                               dropout=fam.dropout)
                tpl = match_template(probe, job.missing)
                tpl_cache[ck] = None if tpl is None else (tpl.key, tpl.roles)
            hit = tpl_cache[ck]
            if hit is None:
                slow.append(q)
                continue
            n_ref = len({a for g in refs.values() for a in g})
            K = n_ref + min(2, m.n_alleles - n_ref)  # the most alleles of one configuration
            groups.setdefault((hit[0], K), []).append((q, hit[1], refs, c))
        g_j = _Grid.empty(nq)
        C = m.n_alleles * (m.n_alleles + 1) // 2
        for (key, K), items in groups.items():
            size = max(1, _GROUP_BUDGET // (C * (K + 1) * (K + 2) // 2 + C * m.n_alleles))
            for s in range(0, len(items), size):
                slow.extend(_lumped_group(key, K, items[s : s + size], m, facts, j, g_j, h))
        for q in slow:
            i, c = pairs[q]
            job = jobs[i]
            choice = "kept" if job.kept[j] else ("removed" if m.has_mutation else "none")
            mp = marker_power(job.family, job.missing, m, mode=mutations, candidates=(c,), choice=choice)
            facts.ep[q, j], facts.e_lr[q, j], facts.e_l[q, j], facts.var[q, j] = (mp.ep, mp.e_lr, mp.e_log10_lr,
                                                                                  mp.var_log10_lr)
            g_j.add(np.array([q]), mp.atoms_p[None, :], mp.atoms_l[None, :], h)
        facts.grids.append(g_j)
    return facts


def _lumped_group(key: Hashable, K: int, items: Sequence[_Item], m: Marker, facts: _Facts, j: int,
                  g_j: _Grid, h: float) -> list[int]:
    """The lumped evaluation (:func:`opendvi.power._distribution.lumped_candidates`)
    of every candidate genotype of every item of one (template, K) group at
    marker ``j``; fills the facts and atoms, returns the items left to the
    per-item path (no possible configuration)."""
    from opendvi.screening._tables import batch_size, template_tables

    n = m.n_alleles
    idx = m.index
    p = m.p
    iu, ju, _ = _triu(n)
    C = len(iu)
    nI = len(items)
    R = len(items[0][1])
    n_loc = K + 1  # K local alleles, then "other"; n_loc is "untyped" in the template's alleles
    # membership of each configuration's alleles: the references' and the candidate's own
    member = np.zeros((nI, C, n), dtype=bool)
    for t, (_q, _roles, refs, _c) in enumerate(items):
        ra = [idx[a] for g in refs.values() for a in g]
        if ra:
            member[t, :, ra] = True
    member[:, np.arange(C), iu] = True
    member[:, np.arange(C), ju] = True
    rank = np.cumsum(member, axis=2) - 1  # local index of allele a in a configuration's sorted row
    p_loc = np.zeros((nI, C, n_loc))
    ti, ci, ai = np.nonzero(member)
    p_loc[ti, ci, rank[ti, ci, ai]] = p[ai]
    p_loc[:, :, K] = np.maximum(0.0, 1.0 - p_loc[:, :, :K].sum(axis=2))
    A = np.full((nI, C, R, 2), n_loc, dtype=np.int64)
    cr = np.arange(C)
    for t, (_q, roles, refs, cname) in enumerate(items):
        cand = roles.index(cname)
        A[t, :, cand, 0] = rank[t, cr, iu]
        A[t, :, cand, 1] = rank[t, cr, ju]
        for r, pid in enumerate(roles):
            g = refs.get(pid) if pid is not None else None
            if g:
                A[t, :, r, 0] = rank[t, :, idx[g[0]]]
                A[t, :, r, 1] = rank[t, :, idx[g[-1]]]
    A2 = A.reshape(nI * C, R, 2)
    p2 = p_loc.reshape(nI * C, n_loc)
    step = batch_size(n_loc)
    U = np.concatenate([template_tables(key, A2[s : s + step], m, p_batch=p2[s : s + step])
                        for s in range(0, nI * C, step)])
    G = n_loc * (n_loc + 1) // 2
    T = unordered(U).reshape(nI, C, G)
    lu, lj, _ = _triu(n_loc)
    Q = np.where(lu == lj, p_loc[:, :, lu] * p_loc[:, :, lj], 2.0 * p_loc[:, :, lu] * p_loc[:, :, lj])
    tot = T.sum(axis=2)
    ok = tot > 0.0
    tsum = tot.sum(axis=1)
    good = tsum > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(ok, tot / np.where(good, tsum, 1.0)[:, None], 0.0)
        P = np.where(ok[:, :, None], T / np.where(ok, tot, 1.0)[:, :, None], 0.0)
        pos = P > 0.0
        lr = np.where(pos, P / np.where(Q > 0.0, Q, 1.0), 0.0)
        l10 = np.where(pos, np.log10(np.where(pos, lr, 1.0)), 0.0)
    l10 = np.where(np.abs(l10) < 1e-13, 0.0, l10)
    joint = w[:, :, None] * P
    ep_b = np.where(pos, 0.0, Q).sum(axis=2)
    e_lr = (joint * lr).sum(axis=(1, 2))
    e_l = (joint * l10).sum(axis=(1, 2))
    var = np.maximum(0.0, (joint * l10 * l10).sum(axis=(1, 2)) - e_l * e_l)
    ep = (w * ep_b).sum(axis=1)
    qs = np.array([it[0] for it in items], dtype=np.int64)
    g = good
    facts.ep[qs[g], j], facts.e_lr[qs[g], j], facts.e_l[qs[g], j], facts.var[qs[g], j] = ep[g], e_lr[g], e_l[g], var[g]
    ng = int(g.sum())
    g_j.add(qs[g], joint[g].reshape(ng, C * G), np.where(joint[g] > 0.0, l10[g], 0.0).reshape(ng, C * G), h)
    return [int(q) for q in qs[~g]]


# ---------------------------------------------------------------------------
# inclusion power of every (family, candidate): exact_inclusion, batched
# ---------------------------------------------------------------------------


def _pair_inclusion(grids: Sequence[_Grid], ts: Sequence[float], h: float) -> FloatArray:
    B = len(grids[0].is_const)
    n = sum(int(g.wid.max()) for g in grids) + 1
    step = max(1, _FFT_BUDGET // (2 * n))
    out = np.zeros((B, len(ts)))
    for s in range(0, B, step):
        sel = np.arange(s, min(B, s + step))
        out[sel] = batch_exact_inclusion(grids, sel, ts, h)[0]
    return out


def batch_exact_inclusion(grids: Sequence[_Grid], sel: IntArray, thresholds: Sequence[float],
                          h: float) -> tuple[FloatArray, FloatArray]:
    """:func:`opendvi.power._inclusion.exact_inclusion` (without a bin limit)
    of rows ``sel`` at once, from each marker's :class:`_Grid`. Each row gets
    exactly that function's arithmetic: markers with one atom or one value are
    a constant, the others are floored on the grid from their own lowest
    point, and the interval and value are read at the same indices; only the
    FFT's rounding differs. Returns ``(value, bound)``, each (rows, thresholds)."""
    B = len(sel)
    rows = np.arange(B)
    const = np.zeros(B)
    lo_tot = np.zeros(B, dtype=np.int64)
    K = np.zeros(B, dtype=np.int64)
    n_row = np.ones(B, dtype=np.int64)
    hists: list[FloatArray] = []
    for g in grids:
        is_const = g.is_const[sel]
        const += np.where(is_const, g.l0[sel], 0.0)
        multi = ~is_const
        lo_tot += np.where(multi, g.klo[sel], 0)
        K += multi
        n_row += np.where(multi, g.wid[sel] - 1, 0)
        hists.append(g.hist(sel))
    dens = convolve_all(hists)
    n = dens.shape[1]
    dens[np.arange(n)[None, :] >= n_row[:, None]] = 0.0
    surv = np.concatenate([np.cumsum(dens[:, ::-1], axis=1)[:, ::-1], np.zeros((B, 1))], axis=1)
    tot = surv[:, :1]
    surv = surv / np.where(tot > 0.0, tot, 1.0)
    start = const + lo_tot * h

    def at_least(x: FloatArray) -> FloatArray:
        i = np.minimum(np.maximum(np.ceil((x - start) / h - 1e-9).astype(np.int64), 0), n_row)
        return surv[rows, i]

    def above(x: FloatArray) -> FloatArray:
        i = np.minimum(np.maximum(np.floor((x - start) / h + 1e-9).astype(np.int64) + 1, 0), n_row)
        return surv[rows, i]

    lg = [math.log10(float(t)) for t in thresholds]
    has = K > 0
    Kh: FloatArray = np.asarray(K * h, dtype=np.float64)
    lower = np.stack([at_least(np.full(B, x)) for x in lg], axis=1)
    upper = np.stack([np.where(has, above(x - Kh), at_least(np.full(B, x))) for x in lg], axis=1)
    mid = np.stack([np.where(has, at_least(x - Kh / 2.0), at_least(np.full(B, x))) for x in lg], axis=1)
    mid = np.clip(mid, lower, upper)
    bound = np.maximum(mid - lower, upper - mid) + FFT_ERROR
    return mid, bound
