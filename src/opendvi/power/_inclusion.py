"""Inclusion power P(LR >= t): exact convolution on a grid with a rigorous
error bound, or simulation with a seed and a standard error; and the
Poisson-binomial distribution of the number of excluding markers.

Exact method
------------
Markers are independent, so log10 LR is a sum of independent discrete
variables (one per marker, with the atoms of :class:`MarkerPower`). Each
atom l is replaced by ``floor(l / h) * h`` on a grid of width h; the
floored sum S has an exact distribution, the convolution of the markers'
grid distributions (one real FFT per marker, their product, one inverse).
Every floored term is at most h below the true term, and the K markers with
more than one atom shift the sum by less than K h, so

    P(S >= t)  <=  P(log10 LR >= t)  <=  P(S > t - K h),

a rigorous interval. The value reported is ``P(S >= t - K h / 2)`` (the
middle of the shift), and the bound is the larger distance to the
interval's ends plus 1e-12 for the floating-point error of the FFT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

FloatArray = NDArray[np.float64]

#: The thresholds of inclusion power and their JSON keys.
THRESHOLDS: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 1e4, 1e5, 1e6)
THRESHOLD_KEYS: tuple[str, ...] = ("1", "10", "100", "1000", "1e4", "1e5", "1e6")
#: Default grid width in log10 units, and the most grid points one convolution may use.
DEFAULT_GRID = 2e-4
MAX_BINS = 1 << 21
#: Added to every exact bound for the rounding error of the FFT.
FFT_ERROR = 1e-12


def threshold_key(t: float) -> str:
    """JSON key of a threshold: "1", "10", "100", "1000", then "1e4" ..."""
    if t < 1e4 and float(t).is_integer():
        return str(int(t))
    e = math.log10(t)
    if abs(e - round(e)) < 1e-12:
        return f"1e{round(e)}"
    return f"{t:g}"


@dataclass
class Inclusion:
    """P(LR >= t) per threshold, with how it was obtained.

    ``method`` "exact": ``bound[t]`` bounds the error (``lower``/``upper``
    hold the rigorous interval) and ``grid`` is the grid width; "simulation":
    ``se[t]`` is the standard error of ``nsim`` draws with ``seed``.
    """

    thresholds: tuple[float, ...]
    ip: FloatArray
    method: str
    bound: FloatArray | None = None
    lower: FloatArray | None = None
    upper: FloatArray | None = None
    grid: float | None = None
    se: FloatArray | None = None
    nsim: int | None = None
    seed: int | None = None
    mean_log10_lr: float | None = None

    def as_dict(self) -> dict[str, float]:
        return {threshold_key(t): float(v) for t, v in zip(self.thresholds, self.ip, strict=True)}

    def error_dict(self) -> dict[str, float]:
        err = self.bound if self.method == "exact" else self.se
        assert err is not None
        return {threshold_key(t): float(v) for t, v in zip(self.thresholds, err, strict=True)}

    def at(self, t: float) -> float:
        for tt, v in zip(self.thresholds, self.ip, strict=True):
            if math.isclose(tt, t):
                return float(v)
        raise KeyError(t)


Atoms = tuple[FloatArray, FloatArray]


def _split(atoms: Sequence[Atoms]) -> tuple[float, list[Atoms]]:
    const = 0.0
    rest: list[Atoms] = []
    for p, lv in atoms:
        if len(p) == 1 or np.all(lv == lv[0]):
            const += float(lv[0])
        else:
            rest.append((np.asarray(p, dtype=float), np.asarray(lv, dtype=float)))
    return const, rest


def grid_pmf(atoms: Sequence[Atoms], *, grid: float = DEFAULT_GRID,
             max_bins: int = MAX_BINS) -> tuple[FloatArray, float, float, int]:
    """The exact distribution of the floored sum: ``(pmf, start, h, K)`` with
    ``pmf[i] = P(S = start + i h)`` and K the number of markers with more than
    one atom (the sum of the true values lies in [S, S + K h))."""
    const, rest = _split(atoms)
    h = float(grid)
    while True:
        ks = [np.floor(lv / h).astype(np.int64) for _, lv in rest]
        lo = [int(k.min()) for k in ks]
        widths = [int(k.max()) - a + 1 for k, a in zip(ks, lo, strict=True)]
        n = sum(w - 1 for w in widths) + 1
        if n <= max_bins:
            break
        h *= math.ceil(n / max_bins) * 1.0001
    start = const + sum(lo) * h
    if not rest:
        return np.ones(1), const, h, 0
    pmfs = [np.asarray(np.bincount(k - a, weights=p, minlength=w), dtype=np.float64)[None, :]
            for (p, _), k, a, w in zip(rest, ks, lo, widths, strict=True)]
    out = convolve_all(pmfs)[0]
    assert len(out) == n
    return out, start, h, len(rest)


def convolve_all(pmfs: list[FloatArray]) -> FloatArray:
    """The convolution of (B, w_j) arrays along their last axis, row by row,
    as a balanced tree of FFT convolutions (each FFT as short as its two
    factors need); negative rounding residue is set to 0."""
    items = list(pmfs)
    while len(items) > 1:
        nxt = []
        for i in range(0, len(items) - 1, 2):
            a, b = items[i], items[i + 1]
            n = a.shape[1] + b.shape[1] - 1
            if min(a.shape[1], b.shape[1]) <= 8:
                out = np.zeros((a.shape[0], n))
                small, big = (a, b) if a.shape[1] <= b.shape[1] else (b, a)
                for j in range(small.shape[1]):
                    out[:, j : j + big.shape[1]] += small[:, j : j + 1] * big
            else:
                size = sfft.next_fast_len(n, real=True)
                out = sfft.irfft(sfft.rfft(a, size, axis=1) * sfft.rfft(b, size, axis=1), size, axis=1)[:, :n]
                np.clip(out, 0.0, None, out=out)
            nxt.append(out)
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def exact_inclusion(atoms: Sequence[Atoms], thresholds: Sequence[float] = THRESHOLDS, *,
                    grid: float = DEFAULT_GRID, max_bins: int = MAX_BINS) -> Inclusion:
    """Inclusion power by convolution on a grid (see the module docstring)."""
    pmf, start, h, K = grid_pmf(atoms, grid=grid, max_bins=max_bins)
    # survival: surv[i] = P(S >= start + i h)
    surv = np.concatenate([np.cumsum(pmf[::-1])[::-1], [0.0]])
    total = float(surv[0]) if len(surv) else 1.0
    surv = surv / total if total > 0 else surv

    def p_at_least(x: float) -> float:
        # P(S >= x) with S on start + i h
        i = math.ceil((x - start) / h - 1e-9)
        i = min(max(i, 0), len(pmf))
        return float(surv[i])

    def p_above(x: float) -> float:
        i = math.floor((x - start) / h + 1e-9) + 1
        i = min(max(i, 0), len(pmf))
        return float(surv[i])

    ts = tuple(float(t) for t in thresholds)
    lg = [math.log10(t) for t in ts]
    lower = np.array([p_at_least(x) for x in lg])
    upper = np.array([p_above(x - K * h) for x in lg]) if K else lower.copy()
    mid = np.array([p_at_least(x - K * h / 2.0) for x in lg]) if K else lower.copy()
    mid = np.clip(mid, lower, upper)
    bound = np.maximum(mid - lower, upper - mid) + FFT_ERROR
    idx = np.arange(len(pmf))
    mean = float(np.dot(pmf, start + idx * h)) / total + K * h / 2.0 if total > 0 else math.nan
    return Inclusion(thresholds=ts, ip=mid, method="exact", bound=bound, lower=lower, upper=upper, grid=h,
                     mean_log10_lr=mean)


def simulate_log10_lr(atoms: Sequence[Atoms], *, nsim: int, seed: int) -> FloatArray:
    """``nsim`` draws of the total log10 LR (each marker drawn from its atoms)."""
    rng = np.random.default_rng(seed)
    const, rest = _split(atoms)
    tot = np.full(nsim, const)
    for p, lv in rest:
        cp = np.cumsum(p)
        cp /= cp[-1]
        idx = np.minimum(np.searchsorted(cp, rng.random(nsim), side="right"), len(p) - 1)
        tot += lv[idx]
    return tot


def simulated_inclusion(atoms: Sequence[Atoms], thresholds: Sequence[float] = THRESHOLDS, *, nsim: int,
                        seed: int) -> Inclusion:
    """Inclusion power by simulation: IP and its standard error sqrt(IP (1 - IP) / nsim)."""
    if nsim < 1:
        raise ValueError("nsim must be >= 1")
    tot = simulate_log10_lr(atoms, nsim=nsim, seed=seed)
    ts = tuple(float(t) for t in thresholds)
    ip = np.array([float(np.mean(tot >= math.log10(t) - 1e-12)) for t in ts])
    se = np.sqrt(ip * (1.0 - ip) / nsim)
    return Inclusion(thresholds=ts, ip=ip, method="simulation", se=se, nsim=nsim, seed=seed,
                     mean_log10_lr=float(tot.mean()))


def poisson_binomial(ps: Sequence[float]) -> FloatArray:
    """P(exactly k of independent events happen), k = 0 .. len(ps) (exact recursion)."""
    dist = np.zeros(len(ps) + 1)
    dist[0] = 1.0
    for j, p in enumerate(ps):
        dist[1 : j + 2] = dist[1 : j + 2] * (1.0 - p) + dist[0 : j + 1] * p
        dist[0] *= 1.0 - p
    return dist
