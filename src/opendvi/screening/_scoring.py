"""One shard of the screening: its tables, then the kernel's top-K lists
and threshold pairs, as plain arrays (what a shard file and a Dask task
hold). Used by the in-process driver (:mod:`opendvi.screening._engine`) and
by the Dask tasks (:mod:`opendvi.screening._dask`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.screening._encode import Encoded
from opendvi.screening._shard import ShardTables, shard_tables

#: Threshold candidates buffered per block of remains before a kernel re-run.
_BUFFER = 1 << 15


def compute_shard(enc: Encoded, r0: int, r1: int, top: int, log_thr: float, *, parallel: bool = True,
                  use_templates: bool = True,
                  floor: tuple[NDArray[np.float64], NDArray[np.int64]] | None = None,
                  per_marker: bool = False) -> dict[str, Any]:
    """Tables and scores of rows ``r0 .. r1``: this shard's top-K lists and
    threshold pairs, as plain arrays (what a shard file and a Dask task hold).

    ``floor`` (per remains: the score and row of the K-th best candidate so
    far) lets the kernel skip candidates that cannot enter the final top-K;
    the merged result is the same with or without it.
    """
    from opendvi.screening import _kernel_numba_fns as K

    t0 = time.perf_counter()
    tabs = shard_tables(enc, r0, r1, use_templates=use_templates, threads=K.numba_threads() if parallel else 1)
    return score_shard(enc, r0, r1, tabs, time.perf_counter() - t0, top, log_thr, parallel=parallel, floor=floor,
                       per_marker=per_marker)


def score_shard(enc: Encoded, r0: int, r1: int, tabs: ShardTables, seconds_tables: float, top: int,
                log_thr: float, *, parallel: bool = True,
                floor: tuple[NDArray[np.float64], NDArray[np.int64]] | None = None,
                per_marker: bool = False) -> dict[str, Any]:
    """The kernel part of :func:`compute_shard`, on tables already made.

    ``per_marker``: also the ln LR at each marker of every pairing this shard keeps (``top_pm``,
    ``thr_pm``: one row per pairing, one column per marker), read from the same tables as the totals."""
    from opendvi.screening import _kernel_numba_fns as K

    t1 = time.perf_counter()
    n_blocks = max(1, 4 * (K.numba_threads() if parallel else 1))
    cap = _BUFFER
    kern = K.score_parallel if parallel else K.score_serial
    pos = enc.positions if enc.width >= 1 << 16 else enc.positions.astype(np.uint16)
    row_sex = enc.row_sex[r0:r1]
    row_ids = np.arange(r0, r1, dtype=np.int64)
    perm = np.argsort(row_sex, kind="stable").astype(np.int64)
    perm = perm[~tabs.skip[perm]]  # families that cannot be evaluated are not scored
    while True:
        top_s, top_r, top_x, top_n, worst, floor_s, floor_r = K.new_topk(enc.n_remains, top)
        if floor is not None:
            floor_s[:] = floor[0]
            floor_r[:] = floor[1]
        buf_v = np.zeros((n_blocks, cap), dtype=np.int64)
        buf_r = np.zeros((n_blocks, cap), dtype=np.int64)
        buf_s = np.zeros((n_blocks, cap))
        buf_x = np.zeros((n_blocks, cap), dtype=np.int16)
        buf_n = np.zeros(n_blocks, dtype=np.int64)
        kern(tabs.lt, tabs.ex, perm, row_ids, row_sex, pos, enc.remains_sex, enc.restricted, enc.allowed_ptr,
             enc.allowed_rows, log_thr, top_s, top_r, top_x, top_n, worst, floor_s, floor_r, buf_v, buf_r,
             buf_s, buf_x, buf_n)
        if int(buf_n.max(initial=0)) <= cap:
            break
        cap = int(buf_n.max()) + 1
    t2 = time.perf_counter()
    mask = np.arange(top)[None, :] < top_n[:, None]
    vv = np.nonzero(mask)
    thr_parts = [slice(0, int(buf_n[b])) for b in range(n_blocks)]
    extra: dict[str, Any] = {}
    if enc.lineage is not None:
        for pre, v, r in (
            ("top", vv[0].astype(np.int64), top_r[mask]),
            ("thr", np.concatenate([buf_v[b, sl] for b, sl in enumerate(thr_parts)]),
             np.concatenate([buf_r[b, sl] for b, sl in enumerate(thr_parts)])),
        ):
            extra[f"{pre}_sys"], extra[f"{pre}_mis"] = system_parts(enc, tabs, r0, v, r)
    if per_marker:
        for pre, v, r in (
            ("top", vv[0].astype(np.int64), top_r[mask]),
            ("thr", np.concatenate([buf_v[b, sl] for b, sl in enumerate(thr_parts)]),
             np.concatenate([buf_r[b, sl] for b, sl in enumerate(thr_parts)])),
        ):
            extra[f"{pre}_pm"] = marker_parts(enc, tabs, r0, v, r)
    return {
        **extra,
        "r0": r0,
        "r1": r1,
        "top_v": vv[0].astype(np.int64),
        "top_s": top_s[mask],
        "top_r": top_r[mask],
        "top_x": top_x[mask],
        "thr_v": np.concatenate([buf_v[b, sl] for b, sl in enumerate(thr_parts)]),
        "thr_s": np.concatenate([buf_s[b, sl] for b, sl in enumerate(thr_parts)]),
        "thr_r": np.concatenate([buf_r[b, sl] for b, sl in enumerate(thr_parts)]),
        "thr_x": np.concatenate([buf_x[b, sl] for b, sl in enumerate(thr_parts)]),
        "notes": list(tabs.notes),
        "unevaluable": dict(tabs.unevaluable),
        "inconsistent": dict(tabs.inconsistent),
        "n_template": tabs.n_template,
        "n_engine": tabs.n_engine,
        "engine_calls": tabs.engine_calls,
        "table_bytes": tabs.nbytes,
        "seconds_tables": seconds_tables,
        "seconds_kernel": t2 - t1,
        "lookups": int(_n_lookups(enc, r0, r1)),
    }


def system_parts(enc: Encoded, tabs: ShardTables, r0: int, v: NDArray[np.int64],
                 r: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.int16]]:
    """ln LR per system (``screening_systems``: autosomal first, then Y, mt)
    and lineage mismatches of the pairings (remains ``v``, row ``r``), read
    from this shard's tables."""
    le = enc.lineage
    assert le is not None
    nm = len(enc.markers)
    rl = r - r0
    pos = enc.positions
    parts: list[NDArray[np.float64]] = []
    if nm:
        parts.append(tabs.lt[rl[:, None], pos[v, :nm]].sum(axis=1) if len(v) else np.zeros(0))
    mis: list[NDArray[np.int16]] = []
    for j, sysname in enumerate(le.systems):
        col = pos[v, nm + j]
        parts.append(tabs.lt[rl, col])
        base = le.y_col if sysname == "Y" else le.mt_col
        if sysname == "Y":
            mis.append(le.y_mismatches(col - base, tabs.lineage_mismatches["Y"][rl]))
        else:
            mis.append(tabs.lineage_mismatches[sysname][rl, col - base])
    return np.stack(parts, axis=1), np.stack(mis, axis=1).astype(np.int16)


def marker_parts(enc: Encoded, tabs: ShardTables, r0: int, v: NDArray[np.int64],
                 r: NDArray[np.int64]) -> NDArray[np.float64]:
    """ln LR at each (autosomal and X) marker of the pairings (remains ``v``, row ``r``): the table
    entries the kernel adds up (0 where the remains is untyped)."""
    nm = len(enc.markers)
    if not len(v):
        return np.zeros((0, nm))
    return np.ascontiguousarray(tabs.lt[(r - r0)[:, None], enc.positions[v, :nm]])


def _n_lookups(enc: Encoded, r0: int, r1: int) -> int:
    """Sex-admissible (remains, row) pairs times markers."""
    rs = enc.row_sex[r0:r1]
    vs = enc.remains_sex
    n_unknown = int((vs < 0).sum())
    pairs = 0
    for code in (0, 1):
        pairs += int((rs == code).sum()) * (int((vs == code).sum()) + n_unknown)
    return pairs * len(enc.markers)
