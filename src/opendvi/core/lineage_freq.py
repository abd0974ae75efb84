"""Haplotype frequency estimators (``shared/design/lineage.md``).

* :func:`augmented_counting`: f = (x + 1) / (N + 1);
* :func:`clopper_pearson_upper`: the one-sided upper 95 % Clopper-Pearson
  bound of x / N (for x = 0 it is 1 − 0.05^(1/N), SWGDAM's formula);
* the discrete Laplace mixture of Andersen, Eriksen & Morling (2013) as R
  ``disclapmix`` fits it: :func:`fit_discrete_laplace` and
  :class:`DiscreteLaplaceModel`.

The discrete Laplace model: a haplotype x (integer repeat numbers at K
coordinates) has probability

    P(x) = Σ_j τ_j Π_k DL(x_k − y_jk; p_jk),   DL(d; p) = (1 − p)/(1 + p) p^|d|,

with central haplotypes y_j, cluster weights τ_j and dispersions
log p_jk = θ_j + λ_k (a cluster effect plus a locus effect, the GLM of
``disclapmix``). Like ``disclapmix`` the fit alternates an EM (E-step: the
posterior cluster memberships v_ij; M-step: τ_j = mean v_ij and the weighted
maximum likelihood of θ, λ, here by Newton's method on the concave
log-likelihood) with moving each central haplotype to the v-weighted median
(which maximises the same expected log-likelihood). Every step increases the
marginal log-likelihood; the trace is kept in :class:`DiscreteLaplaceFit`.
Initial centres: the median (one cluster) or k-medoids (PAM, Manhattan
distance) as in ``disclapmix``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import betaincinv, logsumexp

from opendvi.core.errors import MarkerError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def augmented_counting(x: int, n: int) -> float:
    """(x + 1) / (n + 1): the haplotype counted once more, in a database one larger.

    >>> augmented_counting(0, 185)
    0.005376344086021506
    """
    _check_count(x, n)
    return (x + 1) / (n + 1)


def clopper_pearson_upper(x: int, n: int, *, confidence: float = 0.95) -> float:
    """The one-sided upper Clopper-Pearson bound of x / n at ``confidence``.

    The p at which P(X <= x | n, p) = 1 − confidence, i.e. the
    ``confidence`` quantile of Beta(x + 1, n − x); 1 when x = n.

    >>> round(clopper_pearson_upper(0, 100), 10) == round(1 - 0.05 ** (1 / 100), 10)
    True
    """
    _check_count(x, n)
    if n == 0:
        raise MarkerError("Clopper-Pearson: the database is empty (N = 0)")
    if not 0.0 < confidence < 1.0:
        raise MarkerError(f"Clopper-Pearson: confidence must be in (0, 1), found {confidence!r}")
    if x >= n:
        return 1.0
    if x == 0:
        return float(-math.expm1(math.log1p(-confidence) / n))
    return float(betaincinv(x + 1, n - x, confidence))


def _check_count(x: int, n: int) -> None:
    if x < 0 or n < 0 or x > n:
        raise MarkerError(f"haplotype count: need 0 <= x <= N, found x={x}, N={n}")


# ---------------------------------------------------------------------------
# Discrete Laplace
# ---------------------------------------------------------------------------


def disclap_logpmf(d: NDArray[Any], p: NDArray[Any] | float) -> FloatArray:
    """ln DL(d; p) = ln((1 − p)/(1 + p)) + |d| ln p."""
    p = np.asarray(p, dtype=float)
    return np.asarray(np.log1p(-p) - np.log1p(p) + np.abs(d) * np.log(p), dtype=float)


def coordinate_names(loci: Sequence[str], copies: Mapping[str, int]) -> tuple[str, ...]:
    """Model coordinates: one per single-copy locus, ``name[i]`` per copy otherwise."""
    out: list[str] = []
    for k in loci:
        c = copies.get(k, 1)
        out.extend([k] if c == 1 else [f"{k}[{i + 1}]" for i in range(c)])
    return tuple(out)


def haplotype_coordinates(h: Mapping[str, tuple[str, ...]], loci: Sequence[str]) -> dict[str, int]:
    """The integer coordinates of a Y haplotype at ``loci`` (copies named ``name[i]``)."""
    out: dict[str, int] = {}
    for k in loci:
        vals = h[k]
        for i, v in enumerate(vals):
            name = k if len(vals) == 1 else f"{k}[{i + 1}]"
            try:
                iv = int(v)
            except ValueError:
                raise MarkerError(
                    f"locus {k}: the discrete Laplace model needs integer repeat numbers, found {v!r} "
                    "(use augmented-counting for haplotypes with microvariants or null alleles)"
                ) from None
            out[name] = iv
    return out


@dataclass(frozen=True, eq=False)
class DiscreteLaplaceModel:
    """A fitted discrete Laplace mixture: ``centers`` (J x K), ``tau`` (J),
    ``p`` (J x K) over the coordinates ``markers``."""

    markers: tuple[str, ...]
    centers: IntArray
    tau: FloatArray
    p: FloatArray

    def __post_init__(self) -> None:
        j, k = self.centers.shape
        if self.p.shape != (j, k) or self.tau.shape != (j,) or len(self.markers) != k:
            raise MarkerError("discrete Laplace model: centers, p, tau and markers do not fit together")
        if not np.all((self.p > 0) & (self.p < 1)):
            raise MarkerError("discrete Laplace model: every p must be in (0, 1)")
        if abs(float(self.tau.sum()) - 1.0) > 1e-6 or np.any(self.tau < 0):
            raise MarkerError("discrete Laplace model: tau must be non-negative and sum to 1")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DiscreteLaplaceModel):
            return NotImplemented
        return (
            self.markers == other.markers
            and np.array_equal(self.centers, other.centers)
            and np.array_equal(self.tau, other.tau)
            and np.array_equal(self.p, other.p)
        )

    def __hash__(self) -> int:
        return hash((self.markers, self.centers.tobytes(), self.tau.tobytes(), self.p.tobytes()))

    @property
    def clusters(self) -> int:
        return int(self.centers.shape[0])

    def log_prob_matrix(self, x: NDArray[Any], columns: Sequence[int] | None = None) -> FloatArray:
        """ln P(x_i) for rows of integer coordinates; ``columns`` restricts the
        model to those coordinates (the other loci summed out exactly)."""
        cols = list(range(len(self.markers))) if columns is None else list(columns)
        x = np.asarray(x, dtype=np.int64)
        d = x[:, None, :] - self.centers[None, :, cols]
        comp = disclap_logpmf(d, self.p[None, :, cols]).sum(axis=2) + np.log(self.tau)[None, :]
        return np.asarray(logsumexp(comp, axis=1), dtype=float)

    def log_prob(self, h: Mapping[str, tuple[str, ...]], loci: Sequence[str]) -> float:
        """ln f(h) over ``loci`` (loci of the model not in ``loci`` are summed out)."""
        coords = haplotype_coordinates(h, loci)
        index = {m: i for i, m in enumerate(self.markers)}
        missing = [c for c in coords if c not in index]
        if missing:
            raise MarkerError(f"discrete Laplace model: no locus {missing[0]} in the model ({', '.join(self.markers)})")
        cols = [index[c] for c in coords]
        return float(self.log_prob_matrix(np.array([list(coords.values())]), cols)[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "markers": list(self.markers),
            "centers": self.centers.tolist(),
            "tau": self.tau.tolist(),
            "p": self.p.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DiscreteLaplaceModel:
        try:
            return cls(
                markers=tuple(str(m) for m in d["markers"]),
                centers=np.array(d["centers"], dtype=np.int64).reshape(len(d["tau"]), len(d["markers"])),
                tau=np.array(d["tau"], dtype=float),
                p=np.array(d["p"], dtype=float).reshape(len(d["tau"]), len(d["markers"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MarkerError(
                f"discrete Laplace model: expected markers, centers, tau and p, found a problem: {exc}"
            ) from None


@dataclass(frozen=True)
class DiscreteLaplaceFit:
    """The result of :func:`fit_discrete_laplace`."""

    model: DiscreteLaplaceModel
    loglik: float
    trace: tuple[float, ...]
    iterations: int
    converged: bool
    center_moves: int
    n: int
    bic: float = field(default=math.nan)


def _weighted_median(values: IntArray, weights: FloatArray) -> int:
    """The smallest integer minimising Σ w |x − y| over y in [min x, max x]."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    half = cum[-1] / 2.0
    return int(v[int(np.searchsorted(cum, half - 1e-12 * cum[-1]))])


def _pam(x: IntArray, w: FloatArray, k: int) -> IntArray:
    """k-medoids (PAM: BUILD then SWAP) with Manhattan distance, rows weighted."""
    n = x.shape[0]
    dist = np.abs(x[:, None, :] - x[None, :, :]).sum(axis=2).astype(float)
    medoids = [int(np.argmin((dist * w[None, :]).sum(axis=1)))]
    while len(medoids) < k:
        nearest = dist[:, medoids].min(axis=1)
        gain = (np.maximum(nearest[None, :] - dist, 0.0) * w[None, :]).sum(axis=1)
        gain[medoids] = -1.0
        medoids.append(int(np.argmax(gain)))

    def cost(meds: Sequence[int]) -> float:
        return float((dist[:, list(meds)].min(axis=1) * w).sum())

    best = cost(medoids)
    improved = True
    while improved:
        improved = False
        for i in range(k):
            for h in range(n):
                if h in medoids:
                    continue
                trial = medoids.copy()
                trial[i] = h
                c = cost(trial)
                if c < best - 1e-9:
                    best, medoids, improved = c, trial, True
    return x[sorted(medoids)].copy()


def _loglik(x: IntArray, w: FloatArray, y: IntArray, p: FloatArray, tau: FloatArray) -> tuple[float, FloatArray]:
    """Marginal log-likelihood and the component log-densities (n x J)."""
    d = x[:, None, :] - y[None, :, :]
    comp = disclap_logpmf(d, p[None, :, :]).sum(axis=2) + np.log(tau)[None, :]
    ll = logsumexp(comp, axis=1)
    return float((w * ll).sum()), comp - ll[:, None]


def _m_step_dispersion(
    a: FloatArray, b: FloatArray, theta: FloatArray, lam: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Maximise Σ_jk a_jk ln((1 − p)/(1 + p)) + b_jk ln p, ln p_jk = θ_j + λ_k (λ_0 = 0),
    by Newton's method with a backtracking line search (the function is concave)."""
    jn, kn = a.shape

    def objective(th: FloatArray, la: FloatArray) -> float:
        eta = th[:, None] + la[None, :]
        if np.any(eta >= 0):
            return -math.inf
        p = np.exp(eta)
        return float((a * (np.log1p(-p) - np.log1p(p)) + b * eta).sum())

    cur = objective(theta, lam)
    for _ in range(100):
        eta = theta[:, None] + lam[None, :]
        p = np.exp(eta)
        g = b - a * 2.0 * p / (1.0 - p * p)
        h = -a * (p / (1.0 - p) ** 2 + p / (1.0 + p) ** 2)
        grad = np.concatenate([g.sum(axis=1), g.sum(axis=0)[1:]])
        hess = np.zeros((jn + kn - 1, jn + kn - 1))
        hess[:jn, :jn] = np.diag(h.sum(axis=1))
        hess[jn:, jn:] = np.diag(h.sum(axis=0)[1:])
        hess[:jn, jn:] = h[:, 1:]
        hess[jn:, :jn] = h[:, 1:].T
        try:
            step = -np.linalg.solve(hess - 1e-12 * np.eye(len(grad)), grad)
        except np.linalg.LinAlgError:
            step = grad / (np.abs(np.diag(hess)) + 1.0)
        t = 1.0
        while t > 1e-10:
            nt = theta + t * step[:jn]
            nl = lam.copy()
            nl[1:] += t * step[jn:]
            new = objective(nt, nl)
            if new >= cur:
                break
            t /= 2.0
        else:
            break
        gain = new - cur
        theta, lam, cur = nt, nl, new
        if gain < 1e-12 * (1.0 + abs(cur)) and float(np.abs(grad).max()) < 1e-8 * (1.0 + float(a.sum())):
            break
        if gain <= 0.0:
            break
    return theta, lam


def fit_discrete_laplace(
    x: NDArray[Any],
    *,
    clusters: int,
    counts: Sequence[int] | NDArray[Any] | None = None,
    markers: Sequence[str] | None = None,
    init_centers: NDArray[Any] | None = None,
    max_iterations: int = 500,
    tol: float = 1e-10,
) -> DiscreteLaplaceFit:
    """Fit the discrete Laplace mixture to haplotypes ``x`` (rows; integer
    repeat numbers) with ``counts`` (default 1 each).

    Converged when an EM iteration raises the log-likelihood by less than
    ``tol`` (relative) and the centres no longer move.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise MarkerError("discrete Laplace: need at least 2 haplotypes of at least 1 locus")
    if not np.all(np.equal(np.mod(x, 1), 0)):
        raise MarkerError("discrete Laplace: haplotypes must be integer repeat numbers")
    x = x.astype(np.int64)
    w = np.ones(x.shape[0]) if counts is None else np.asarray(counts, dtype=float)
    if w.shape != (x.shape[0],) or np.any(w <= 0):
        raise MarkerError("discrete Laplace: one positive count per haplotype")
    if not 1 <= clusters <= x.shape[0]:
        raise MarkerError(f"discrete Laplace: clusters must be 1 to {x.shape[0]}, found {clusters}")
    names = tuple(markers) if markers is not None else tuple(f"L{i + 1}" for i in range(x.shape[1]))
    kn = x.shape[1]
    if init_centers is not None:
        y = np.asarray(init_centers, dtype=np.int64).reshape(clusters, kn).copy()
    elif clusters == 1:
        y = np.array([[_weighted_median(x[:, k], w) for k in range(kn)]], dtype=np.int64)
    else:
        y = _pam(x, w, clusters)
    v = np.full((x.shape[0], clusters), 1.0 / clusters)
    theta = np.full(clusters, -1.0)
    lam = np.zeros(kn)
    trace: list[float] = []
    moves = 0
    converged = False
    it = 0
    while it < max_iterations:
        it += 1
        # M-step: tau, then the dispersions, from the memberships v
        wv = v * w[:, None]
        tau = wv.sum(axis=0) / w.sum()
        tau = np.maximum(tau, 1e-300)
        tau = tau / tau.sum()
        dist = np.abs(x[:, None, :] - y[None, :, :]).astype(float)
        a = np.repeat(wv.sum(axis=0)[:, None], kn, axis=1)
        b = np.einsum("ij,ijk->jk", wv, dist)
        theta, lam = _m_step_dispersion(a, b, theta, lam)
        p = np.exp(theta[:, None] + lam[None, :])
        # E-step
        ll, logv = _loglik(x, w, y, p, tau)
        v = np.exp(logv)
        settled = bool(trace) and ll - trace[-1] <= tol * (1.0 + abs(ll))
        trace.append(ll)
        if not settled:
            continue
        # the EM has settled for these centres: move each centre to the
        # v-weighted median (as disclapmix does), which raises Q as well
        wv = v * w[:, None]
        new_y = np.array(
            [[_weighted_median(x[:, k], wv[:, j]) if wv[:, j].sum() > 0 else y[j, k] for k in range(kn)]
             for j in range(clusters)],
            dtype=np.int64,
        )
        q_old = float((np.einsum("ij,ijk->jk", wv, np.abs(x[:, None, :] - y[None, :, :])) * np.log(p)).sum())
        q_new = float((np.einsum("ij,ijk->jk", wv, np.abs(x[:, None, :] - new_y[None, :, :])) * np.log(p)).sum())
        if np.array_equal(new_y, y) or q_new <= q_old + 1e-12 * abs(q_old):
            converged = True
            break
        y = new_y
        moves += 1
        ll, logv = _loglik(x, w, y, p, tau)
        v = np.exp(logv)
        trace.append(ll)
    model = DiscreteLaplaceModel(markers=names, centers=y, tau=tau, p=p)
    n = float(w.sum())
    k_par = clusters * kn + (kn + clusters - 1) + (clusters - 1)
    bic = math.log(n) * k_par - 2.0 * trace[-1]
    return DiscreteLaplaceFit(
        model=model,
        loglik=trace[-1],
        trace=tuple(trace),
        iterations=it,
        converged=converged,
        center_moves=moves,
        n=int(n),
        bic=bic,
    )


def fit_discrete_laplace_bic(
    x: NDArray[Any],
    *,
    counts: Sequence[int] | NDArray[Any] | None = None,
    markers: Sequence[str] | None = None,
    max_clusters: int = 5,
) -> DiscreteLaplaceFit:
    """Fit 1 .. ``max_clusters`` clusters and keep the lowest (marginal) BIC,
    as the ``disclapmix`` examples choose the number of clusters."""
    best: DiscreteLaplaceFit | None = None
    for c in range(1, min(max_clusters, np.asarray(x).shape[0]) + 1):
        fit = fit_discrete_laplace(x, clusters=c, counts=counts, markers=markers)
        if best is None or fit.bic < best.bic:
            best = fit
    assert best is not None
    return best
