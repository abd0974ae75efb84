# mypy: disable-error-code="no-untyped-def"
"""Remains against remains at national scale: every pair's direct-match LR
(``opendvi.core.direct_match``: the LR of ``match-remains``, with dropout, theta and
lineage), kept where it reaches a threshold.

The table-and-gather idea of the screening: per marker, the remains fall into
*classes* of (observed genotype, dropout) (and sex at an X marker); a table
holds the ln LR of every pair of classes, computed by the one
home of the rule (:func:`opendvi.core.direct_match.marker_direct_table`, whose two-sample case
is the ``match-remains`` pair's);
the lineage systems likewise (classes of Y haplotype and sex, of mtDNA
haplotype; entries by :func:`opendvi.core.direct_match.lineage_direct_match`). A
numba kernel sums the tables over the markers for each pair of the upper
triangle, parallel over rows, one block of rows at a time (never n x n in
memory), and the pairs at or above the threshold are kept.

>>> from opendvi.core.case import Sample
>>> from opendvi.core.markers import make_marker
>>> m = make_marker("M", ["a", "b", "c"], [0.1, 0.2, 0.7])
>>> a, b, c = (Sample(x, genotypes={"M": gt}) for x, gt in (("A", ("a", "b")), ("B", ("a", "b")), ("C", ("c",))))
>>> links = screen_remains([a, b, c], [m], threshold=10.0)
>>> [(x, y, round(math.exp(v), 9)) for x, y, v in links.pairs()]  # 1 / (2 * 0.1 * 0.2)
[('A', 'B', 25.0)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from opendvi.core.case import Sample
from opendvi.core.direct_match import lineage_direct_match, marker_direct_table
from opendvi.core.lineage import CaseLineage
from opendvi.core.markers import Marker

__all__ = ["RemainsLinks", "screen_remains"]

#: floats of one block of rows (64 MB)
BLOCK_FLOATS = 1 << 23


@dataclass(frozen=True)
class RemainsLinks:
    """Pairs of remains ``(ids[i[k]], ids[j[k]])``, ``i < j`` in the order of ``ids``, with their
    combined direct-match ln LR ``log_lr[k]`` (>= the threshold); ``by_system`` (only where the case
    has lineage data: ``{"autosomal": array, "Y": array, "mt": array}``, the systems of the case) and
    ``mismatches`` (``{"Y": array, "mt": array}``) per pair, as :func:`opendvi.dvi.remains.group_remains`
    reports them."""

    ids: tuple[str, ...]
    i: np.ndarray
    j: np.ndarray
    log_lr: np.ndarray
    threshold: float
    by_system: dict[str, np.ndarray] = field(default_factory=dict)
    mismatches: dict[str, np.ndarray] = field(default_factory=dict)
    #: seconds: ``tables`` (classes and tables), ``kernel`` (the sums and the pairs kept)
    timings: dict[str, float] = field(default_factory=dict)
    #: with ``max_per_row``: the connected sets of *every* pair at or above the threshold (a label per
    #: sample, equal labels for samples linked directly or through others), and how many such pairs were
    #: left out of ``i``/``j``/``log_lr`` (0 when none); None and 0 without
    component: np.ndarray | None = None
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.log_lr)

    def pairs(self) -> list[tuple[str, str, float]]:
        """``(a, b, ln LR)`` of every kept pair."""
        return [(self.ids[a], self.ids[b], float(v)) for a, b, v in
                zip(self.i.tolist(), self.j.tolist(), self.log_lr.tolist(), strict=True)]

    def systems_of(self, k: int) -> tuple[dict[str, float], dict[str, int]]:
        """The ln LR by system and the mismatches by system of pair ``k`` (empty without lineage)."""
        return ({s: float(v[k]) for s, v in self.by_system.items()},
                {s: int(v[k]) for s, v in self.mismatches.items()})


def _classes(keys: Sequence[Hashable | None]) -> tuple[np.ndarray, list[int]]:
    """Codes (-1 for None) and one representative index per class."""
    code = np.full(len(keys), -1, dtype=np.int32)
    seen: dict[Hashable, int] = {}
    reps: list[int] = []
    for k, key in enumerate(keys):
        if key is None:
            continue
        c = seen.get(key)
        if c is None:
            c = seen[key] = len(reps)
            reps.append(k)
        code[k] = c
    return code, reps


def _marker_table(m: Marker, samples: Sequence[Sample], theta: float) -> tuple[np.ndarray, np.ndarray]:
    """The classes of the remains at marker ``m`` and the table of ln LR of every pair of classes
    (:func:`opendvi.core.direct_match.marker_direct_table`; at an X marker the pair's sex chooses
    the hemizygous or the diploid table, and a pair of unknown sex leaves the marker out)."""
    keys: list[Hashable | None] = []
    for s in samples:
        gt = s.genotypes.get(m.name)
        keys.append(None if not gt else (tuple(gt), float(s.dropout), s.sex if m.is_x else None))
    code, reps = _classes(keys)
    obs = [(samples[r].genotypes[m.name], samples[r].dropout) for r in reps]
    if not obs:
        return code, np.zeros((0, 0))
    if not m.is_x:
        return code, marker_direct_table(m, obs, theta=theta)
    sexes = np.array([{"M": 1, "F": 2}.get(samples[r].sex or "", 0) for r in reps])
    pair_sex = np.maximum(sexes[:, None], sexes[None, :])  # a.sex or b.sex (a conflict is excluded anyway)
    conflict = (sexes[:, None] != 0) & (sexes[None, :] != 0) & (sexes[:, None] != sexes[None, :])
    tab = np.zeros((len(obs), len(obs)))
    if (pair_sex == 1).any():
        hemi = marker_direct_table(m, obs, theta=theta, hemizygous=True)
        tab = np.where(pair_sex == 1, hemi, tab)
    if (pair_sex == 2).any():
        dip = marker_direct_table(m, obs, theta=theta)
        tab = np.where(pair_sex == 2, dip, tab)
    tab[conflict] = 0.0  # not used: direct_match_log_lr excludes the pair
    return code, tab


def _hashable(x: object) -> Hashable:
    try:
        hash(x)
        return x
    except TypeError:
        return repr(x)


def _lineage_tables(lineage: CaseLineage, samples: Sequence[Sample]) -> dict[str, tuple[np.ndarray, np.ndarray,
                                                                                        np.ndarray]]:
    """Per system of the case: class codes, the ln LR table and the mismatch table."""
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for system in lineage.systems:
        keys: list[Hashable | None] = []
        for s in samples:
            if system == "Y":
                hy = lineage.y_of(s.id)
                keys.append((tuple(sorted((k, tuple(v)) for k, v in hy.items())) if hy else None, s.sex))
            else:
                mt = lineage.mt_of(s.id)
                keys.append(("mt", None if mt is None else _hashable(mt)))
        code, reps = _classes(keys)
        c = len(reps)
        tab, mis = np.zeros((c, c)), np.zeros((c, c), dtype=np.int64)
        for x in range(c):
            a = samples[reps[x]]
            for y in range(x, c):
                b = samples[reps[y]]
                d = lineage_direct_match(lineage, a.id, b.id, sex_a=a.sex, sex_b=b.sex)[system]
                tab[x, y] = tab[y, x] = d.log_lr
                mis[x, y] = mis[y, x] = d.mismatches
        out[system] = (code, tab, mis)
    return out


@njit(parallel=True, cache=True)
def _block(codes, offsets, sizes, tables, sex, extra_codes, extra_offsets, extra_sizes, extra_tables, r0, r1, out):
    """``out[i - r0, j]``: the combined ln LR of rows ``i`` in [r0, r1) and ``j > i`` (NaN for j <= i).
    Autosomal and X markers summed in marker order (-inf stays -inf); a sex mismatch is -inf; the
    lineage systems (``extra``) are added after, the total -inf if any is."""
    n, n_m = codes.shape
    n_x = extra_codes.shape[1]
    for ii in prange(r1 - r0):
        i = r0 + ii
        base = np.empty(n_m, dtype=np.int64)
        for m in range(n_m):
            base[m] = offsets[m] + codes[i, m] * sizes[m]
        xbase = np.empty(n_x, dtype=np.int64)
        for s in range(n_x):
            xbase[s] = extra_offsets[s] + extra_codes[i, s] * extra_sizes[s]
        for j in range(i + 1):
            out[ii, j] = np.nan
        for j in range(i + 1, n):
            if sex[i] != 0 and sex[j] != 0 and sex[i] != sex[j]:
                out[ii, j] = -np.inf
                continue
            t = 0.0
            for m in range(n_m):
                b = codes[j, m]
                if codes[i, m] >= 0 and b >= 0:
                    t += tables[base[m] + b]
                    if t == -np.inf:  # an exclusion: the pair is done
                        break
            if t != -np.inf:
                for s in range(n_x):
                    v = extra_tables[xbase[s] + extra_codes[j, s]]
                    if v == -np.inf:
                        t = -np.inf
                        break
                    t += v
            out[ii, j] = t


@njit(cache=True)
def _union(parent, a, b):
    """Union-find: join the sets of ``a[k]`` and ``b[k]`` for every k (path halving)."""
    for k in range(a.shape[0]):
        x, y = a[k], b[k]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x != y:
            if x < y:
                parent[y] = x
            else:
                parent[x] = y


@njit(cache=True)
def _roots(parent):
    out = np.empty_like(parent)
    for k in range(parent.shape[0]):
        x = k
        while parent[x] != x:
            x = parent[x]
        out[k] = x
    return out


def _strongest(a: np.ndarray, b: np.ndarray, v: np.ndarray, most: int) -> np.ndarray:
    """The positions of at most ``most`` pairs per row ``a`` (``a`` ascending, as ``np.nonzero`` gives it):
    the largest ``v`` of each row, ties to the smaller ``b``."""
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]]) if len(a) else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(a)]
    keep = np.ones(len(a), dtype=bool)
    for s0, s1 in zip(starts[(ends - starts) > most].tolist(), ends[(ends - starts) > most].tolist(), strict=True):
        order = np.lexsort((b[s0:s1], -v[s0:s1]))
        keep[s0 + order[most:]] = False
    return keep


def _flat(tables: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sizes = np.array([t.shape[0] for t in tables], dtype=np.int64)
    offsets = np.zeros(len(tables), dtype=np.int64)
    if len(tables) > 1:
        offsets[1:] = np.cumsum(sizes * sizes)[:-1]
    flat = np.concatenate([t.ravel() for t in tables]) if tables else np.zeros(0)
    return offsets, sizes, flat


def screen_remains(
    samples: Sequence[Sample],
    markers: Sequence[Marker],
    *,
    theta: float = 0.0,
    lineage: CaseLineage | None = None,
    threshold: float | None = None,
    block_floats: int = BLOCK_FLOATS,
    progress: Callable[[int, int], None] | None = None,
    first_rows: int | None = None,
    max_per_row: int | None = None,
) -> RemainsLinks:
    """Every pair of ``samples`` (sexes resolved, as :class:`opendvi.dvi.DVIProblem` has them) with
    direct-match LR >= ``threshold`` (None: every pair, -inf included): the numbers of
    :func:`opendvi.core.direct_match.direct_match_log_lr` and, with lineage data,
    :func:`opendvi.dvi.remains.group_remains`' combined LR and systems. ``progress(rows done, rows)``
    after each block of rows (it may raise to stop). ``first_rows``: only the pairs of the first
    ``first_rows`` samples with any other (an incremental run puts the new ones first).

    ``max_per_row``: keep at most that many pairs ``(i, j > i)`` of each row ``i``, the strongest (ties
    to the smaller j), so that many samples of one profile (a contamination, a data error) cannot
    fill the memory with n x n pairs; ``component`` then still holds the connected sets of every
    pair at or above the threshold, and ``dropped`` counts those left out."""
    t0 = time.perf_counter()
    n = len(samples)
    ids = tuple(s.id for s in samples)
    lin = lineage if lineage is not None and lineage.systems else None
    codes = np.full((n, len(markers)), -1, dtype=np.int32)
    tabs: list[np.ndarray] = []
    for k, m in enumerate(markers):
        codes[:, k], tab = _marker_table(m, samples, theta)
        tabs.append(tab)
    offsets, sizes, flat = _flat(tabs)
    sex = np.array([{"M": 1, "F": 2}.get(s.sex or "", 0) for s in samples], dtype=np.int8)
    ltabs = _lineage_tables(lin, samples) if lin is not None else {}
    systems = list(ltabs)
    xcodes = np.zeros((n, len(systems)), dtype=np.int32)
    for k, s in enumerate(systems):
        xcodes[:, k] = ltabs[s][0]
    xoff, xsizes, xflat = _flat([ltabs[s][1] for s in systems])
    log_t = -math.inf if threshold is None else math.log(threshold)
    rows = max(1, block_floats // max(n, 1))
    t1 = time.perf_counter()
    ii: list[np.ndarray] = []
    jj: list[np.ndarray] = []
    vv: list[np.ndarray] = []
    stop = n if first_rows is None else min(n, max(0, first_rows))
    parent = np.arange(n, dtype=np.int64) if max_per_row is not None else None
    dropped = 0
    for r0 in range(0, stop, rows):
        r1 = min(stop, r0 + rows)
        out = np.empty((r1 - r0, n))
        _block(codes, offsets, sizes, flat, sex, xcodes, xoff, xsizes, xflat, r0, r1, out)
        a, b = np.nonzero(out >= log_t)
        a = (a + r0).astype(np.int64)
        b = b.astype(np.int64)
        w = out[a - r0, b]
        if parent is not None and max_per_row is not None:
            _union(parent, a, b)
            keep = _strongest(a, b, w, max(0, max_per_row))
            dropped += int(len(keep) - keep.sum())
            a, b, w = a[keep], b[keep], w[keep]
        ii.append(a)
        jj.append(b)
        vv.append(w)
        if progress is not None:
            progress(r1, stop)
    i = np.concatenate(ii) if ii else np.zeros(0, dtype=np.int64)
    j = np.concatenate(jj) if jj else np.zeros(0, dtype=np.int64)
    v = np.concatenate(vv) if vv else np.zeros(0)
    t2 = time.perf_counter()
    by: dict[str, np.ndarray] = {}
    mism: dict[str, np.ndarray] = {}
    if lin is not None:
        if markers:
            auto = np.zeros(len(i))
            for k in range(len(markers)):
                ci, cj = codes[i, k], codes[j, k]
                ok = (ci >= 0) & (cj >= 0)
                auto[ok] += tabs[k][ci[ok], cj[ok]]
            sx = (sex[i] != 0) & (sex[j] != 0) & (sex[i] != sex[j])
            auto[sx] = -math.inf
            by["autosomal"] = auto
        for s in systems:
            code, tab, mis = ltabs[s]
            by[s] = tab[code[i], code[j]]
            mism[s] = mis[code[i], code[j]]
    return RemainsLinks(ids, i, j, v, -math.inf if threshold is None else float(threshold), by, mism,
                        {"tables": t1 - t0, "kernel": t2 - t1},
                        component=_roots(parent) if parent is not None else None, dropped=dropped)
