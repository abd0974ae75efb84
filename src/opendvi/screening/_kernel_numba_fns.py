# mypy: disable-error-code="no-untyped-def"
"""Numba kernels of the screening: gather-and-add, top-K, merge.

Scores are ln LR (float64). Candidates of a remains are ordered by score,
highest first, ties by row (missing person) index, lowest first; this total
order makes the kept set independent of the order in which shards are
processed (in-process, resumed or on a Dask cluster).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _better(s1: float, r1: int, s2: float, r2: int) -> bool:
    return s1 > s2 or (s1 == s2 and r1 < r2)


@njit(cache=True)
def _insert(v, s, r, x, top_s, top_r, top_x, top_n, worst, floor_s, floor_r):
    """Put (score s, row r, exclusions x) into remains v's top-K list (the
    caller has checked that it beats the floor)."""
    K = top_s.shape[1]
    n = top_n[v]
    if n < K:
        w = n
        top_n[v] = n + 1
    else:
        w = worst[v]
    top_s[v, w] = s
    top_r[v, w] = r
    top_x[v, w] = x
    if top_n[v] < K:
        return
    w = 0
    for k in range(1, K):
        if _better(top_s[v, w], top_r[v, w], top_s[v, k], top_r[v, k]):
            w = k
    worst[v] = w
    # the floor never falls (it may have been seeded from earlier shards)
    if _better(top_s[v, w], top_r[v, w], floor_s[v], floor_r[v]):
        floor_s[v] = top_s[v, w]
        floor_r[v] = top_r[v, w]


@njit(cache=True)
def _allowed(v, r, restricted, ptr, rows):
    if not restricted[v]:
        return True
    lo = ptr[v]
    hi = ptr[v + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if rows[mid] < r:
            lo = mid + 1
        else:
            hi = mid
    return lo < ptr[v + 1] and rows[lo] == r


@njit(cache=True, inline="always")
def _offer(v, s, rl, rg, rs, ex, pos, v_sex, restricted, ptr, rows, log_thr, top_s, top_r, top_x, top_n, worst,
           floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk, buf_n):
    vs = v_sex[v]
    if vs >= 0 and vs != rs:
        return
    keep_top = top_s.shape[1] > 0 and _better(s, rg, floor_s[v], floor_r[v])
    keep_thr = s >= log_thr
    if not (keep_top or keep_thr):
        return
    if not _allowed(v, rg, restricted, ptr, rows):
        return
    x = 0
    exr = ex[rl]
    for m in range(pos.shape[1]):
        x += exr[pos[v, m]]
    if keep_top:
        _insert(v, s, rg, x, top_s, top_r, top_x, top_n, worst, floor_s, floor_r)
    if keep_thr:
        k = buf_n[blk]
        if k < buf_v.shape[1]:
            buf_v[blk, k] = v
            buf_r[blk, k] = rg
            buf_s[blk, k] = s
            buf_x[blk, k] = x
        buf_n[blk] = k + 1


@njit(cache=True)
def _score_range(v0, v1, lt, ex, perm, row_ids, row_sex, pos, v_sex, restricted, ptr, rows, log_thr,
                 top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk,
                 buf_n):
    """Rows in tiles of four (four independent sums per remains: the adds
    overlap instead of waiting on each other); rows sorted by sex so that a
    tile is skipped at once for a remains of the other sex. Only the rows
    listed in ``perm`` are scored (a family that cannot be evaluated is left
    out of it)."""
    R = perm.shape[0]
    nm = pos.shape[1]
    for t0 in range(0, R, 4):
        nt = min(4, R - t0)
        a0 = perm[t0]
        a1 = perm[t0 + 1] if nt > 1 else a0
        a2 = perm[t0 + 2] if nt > 2 else a0
        a3 = perm[t0 + 3] if nt > 3 else a0
        L0 = lt[a0]
        L1 = lt[a1]
        L2 = lt[a2]
        L3 = lt[a3]
        sx = row_sex[a0]
        x0, x1, x2, x3 = row_sex[a0], row_sex[a1], row_sex[a2], row_sex[a3]
        r0g, r1g, r2g, r3g = row_ids[a0], row_ids[a1], row_ids[a2], row_ids[a3]
        mixed = x1 != sx or x2 != sx or x3 != sx
        for v in range(v0, v1):
            vs = v_sex[v]
            if not mixed and vs >= 0 and vs != sx:
                continue
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for m in range(nm):
                p = pos[v, m]
                s0 += L0[p]
                s1 += L1[p]
                s2 += L2[p]
                s3 += L3[p]
            # the cheap test inline; the bookkeeping call only for candidates that are kept
            fs = floor_s[v]
            fr = floor_r[v]
            if (s0 >= log_thr or _better(s0, r0g, fs, fr)) and (vs < 0 or vs == x0):
                _offer(v, s0, a0, r0g, x0, ex, pos, v_sex, restricted, ptr, rows, log_thr, top_s,
                       top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk, buf_n)
                fs = floor_s[v]
                fr = floor_r[v]
            if nt > 1 and (s1 >= log_thr or _better(s1, r1g, fs, fr)) and (vs < 0 or vs == x1):
                _offer(v, s1, a1, r1g, x1, ex, pos, v_sex, restricted, ptr, rows, log_thr,
                       top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk, buf_n)
                fs = floor_s[v]
                fr = floor_r[v]
            if nt > 2 and (s2 >= log_thr or _better(s2, r2g, fs, fr)) and (vs < 0 or vs == x2):
                _offer(v, s2, a2, r2g, x2, ex, pos, v_sex, restricted, ptr, rows, log_thr,
                       top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk, buf_n)
                fs = floor_s[v]
                fr = floor_r[v]
            if nt > 3 and (s3 >= log_thr or _better(s3, r3g, fs, fr)) and (vs < 0 or vs == x3):
                _offer(v, s3, a3, r3g, x3, ex, pos, v_sex, restricted, ptr, rows, log_thr,
                       top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk, buf_n)


@njit(cache=True, parallel=True, nogil=True)
def score_parallel(lt, ex, perm, row_ids, row_sex, pos, v_sex, restricted, ptr, rows, log_thr,
                   top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x,
                   buf_n):
    """Score the rows of ``lt`` (global ids ``row_ids``) against every
    remains, in parallel over blocks of remains (one per entry of ``buf_n``)."""
    V = pos.shape[0]
    nb = buf_n.shape[0]
    per = (V + nb - 1) // nb
    for blk in prange(nb):
        v0 = blk * per
        v1 = min(V, v0 + per)
        if v0 < v1:
            _score_range(v0, v1, lt, ex, perm, row_ids, row_sex, pos, v_sex, restricted, ptr, rows, log_thr,
                         top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk,
                         buf_n)


@njit(cache=True, nogil=True)
def score_serial(lt, ex, perm, row_ids, row_sex, pos, v_sex, restricted, ptr, rows, log_thr,
                 top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x,
                 buf_n):
    """The same as :func:`score_parallel` in one thread (for Dask workers)."""
    V = pos.shape[0]
    nb = buf_n.shape[0]
    per = (V + nb - 1) // nb
    for blk in range(nb):
        v0 = blk * per
        v1 = min(V, v0 + per)
        if v0 < v1:
            _score_range(v0, v1, lt, ex, perm, row_ids, row_sex, pos, v_sex, restricted, ptr, rows, log_thr,
                         top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r, buf_s, buf_x, blk,
                         buf_n)


@njit(cache=True)
def merge_topk(top_s, top_r, top_x, top_n, worst, floor_s, floor_r, s_v, s_s, s_r, s_x):
    """Offer a list of candidates (remains, score, row, exclusions) to the top-K lists."""
    if top_s.shape[1] == 0:
        return
    for i in range(s_v.shape[0]):
        v = s_v[i]
        if _better(s_s[i], s_r[i], floor_s[v], floor_r[v]):
            _insert(v, s_s[i], s_r[i], s_x[i], top_s, top_r, top_x, top_n, worst, floor_s, floor_r)


def new_topk(n_remains: int, k: int) -> tuple[np.ndarray, ...]:
    """Empty top-K state: scores, rows, exclusions, counts, worst positions,
    and the floor (score, row) a candidate must beat (-inf, max while not full)."""
    return (
        np.full((n_remains, k), -np.inf),
        np.full((n_remains, k), -1, dtype=np.int64),
        np.zeros((n_remains, k), dtype=np.int16),
        np.zeros(n_remains, dtype=np.int64),
        np.zeros(n_remains, dtype=np.int64),
        np.full(n_remains, -np.inf),
        np.full(n_remains, np.iinfo(np.int64).max, dtype=np.int64),
    )


def numba_threads() -> int:
    """Threads numba's parallel kernels use."""
    import numba

    return int(numba.get_num_threads())
