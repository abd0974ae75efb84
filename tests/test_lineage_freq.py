"""Haplotype frequency estimators against independently computed values.

* augmented counting: exact fractions;
* Clopper-Pearson: the exact binomial tail inverted by bisection in 50-digit
  decimal arithmetic (independent of scipy), SWGDAM's 1 − 0.05^(1/N) for
  x = 0, and scipy.stats.beta.ppf;
* discrete Laplace: the fit of the 185 Danish haplotypes against the values R
  ``disclapmix`` prints in its vignette (see DISCLAPMIX_R below), a monotone EM
  log-likelihood, the fitted model's log-likelihood against a direct
  evaluation, and the one-cluster closed form.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from opendvi.core.errors import MarkerError
from opendvi.core.lineage import YDatabase, parse_y_value
from opendvi.core.lineage_freq import (
    DiscreteLaplaceModel,
    augmented_counting,
    clopper_pearson_upper,
    fit_discrete_laplace,
    fit_discrete_laplace_bic,
)

DANES = Path(__file__).resolve().parents[1] / "src" / "opendvi" / "data" / "disclapmix_danes.txt"


def test_augmented_counting__exact() -> None:
    for x, n in [(0, 185), (3, 185), (0, 1), (7, 1000), (1000, 1000)]:
        assert augmented_counting(x, n) == pytest.approx(float(Fraction(x + 1, n + 1)), rel=1e-12, abs=0)
    with pytest.raises(MarkerError):
        augmented_counting(5, 3)


def _binom_cdf(x: int, n: int, p: Decimal) -> Decimal:
    q = 1 - p
    total = Decimal(0)
    for i in range(x + 1):
        total += Decimal(math.comb(n, i)) * p**i * q ** (n - i)
    return total


def _cp_upper_bisection(x: int, n: int, alpha: Decimal) -> float:
    """The p with P(X <= x | n, p) = alpha, by bisection (the CDF falls with p)."""
    getcontext().prec = 50
    lo, hi = Decimal(0), Decimal(1)
    for _ in range(120):
        mid = (lo + hi) / 2
        if _binom_cdf(x, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return float((lo + hi) / 2)


@pytest.mark.parametrize(("x", "n"), [(0, 185), (1, 185), (3, 185), (0, 20), (5, 40), (12, 300), (1, 2)])
def test_clopper_pearson__exact_tail_inversion(x: int, n: int) -> None:
    got = clopper_pearson_upper(x, n)
    assert got == pytest.approx(_cp_upper_bisection(x, n, Decimal("0.05")), rel=1e-12, abs=0)
    assert got == pytest.approx(float(stats.beta.ppf(0.95, x + 1, n - x)), rel=1e-12, abs=0)
    if x == 0:
        assert got == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-12, abs=0)


def test_clopper_pearson__edges() -> None:
    assert clopper_pearson_upper(10, 10) == 1.0
    with pytest.raises(MarkerError, match="empty"):
        clopper_pearson_upper(0, 0)
    assert clopper_pearson_upper(2, 50, confidence=0.99) == pytest.approx(
        _cp_upper_bisection(2, 50, Decimal("0.01")), rel=1e-12
    )


def test_database_frequency__counts_over_loci_typed() -> None:
    haps = (
        {"DYS19": ("14",), "DYS391": ("10",)},
        {"DYS19": ("14",), "DYS391": ("11",)},
        {"DYS19": ("14",)},  # not typed at DYS391: not in N over both loci
    )
    db = YDatabase(haps, (3, 2, 4))
    h = {"DYS19": ("14",), "DYS391": ("10",)}
    est = db.frequency(h, ["DYS19", "DYS391"])
    assert (est.x, est.n) == (3, 5) and est.frequency == pytest.approx(4 / 6, rel=1e-12)
    est1 = db.frequency(h, ["DYS19"])
    assert (est1.x, est1.n) == (9, 9)
    cp = YDatabase(haps, (3, 2, 4), "clopper-pearson").frequency(h, ["DYS19", "DYS391"])
    assert cp.frequency == pytest.approx(float(stats.beta.ppf(0.95, 4, 2)), rel=1e-12)
    assert cp.digest != est.digest and len(cp.digest) == 64


# ---------------------------------------------------------------------------
# discrete Laplace
# ---------------------------------------------------------------------------


def danes() -> tuple[np.ndarray, np.ndarray, list[str]]:
    lines = DANES.read_text().split("\n")
    header = lines[0].split()
    rows = np.array([[int(v) for v in line.split()] for line in lines[1:] if line.strip()])
    return rows[:, :-1], rows[:, -1], header[:-1]


#: R disclapmix (version of 2019-01-09, glm_method "internal_coef", PAM start)
#: on the danes data, 4 clusters (the lowest marginal BIC of 1..5), as printed
#: by ``bestfit$y`` and ``bestfit$disclap_parameters`` in the package vignette
#: ``inst/doc/introduction.html`` (CRAN disclapmix). R was not run here; these
#: are the vignette's printed values (7 significant digits). disclapmix stops
#: its EM at a v-gain below 1e-3 and its IWLS at a relative change below 1e-4,
#: so its estimates lie within about 1e-3 (relative) of the maximum.
DISCLAPMIX_R_Y = [
    [14, 13, 29, 24, 11, 13, 13, 15, 12, 12],
    [15, 14, 31, 23, 10, 12, 14, 14, 10, 11],
    [15, 13, 30, 25, 10, 11, 13, 14, 11, 11],
    [14, 12, 28, 22, 10, 11, 13, 16, 10, 11],
]
DISCLAPMIX_R_P = [
    [0.1519902, 0.10790796, 0.2309797, 0.2190487, 0.11291165,
     0.06488933, 0.10614775, 0.04510183, 0.04104708, 0.1842068],
    [0.2119974, 0.15051099, 0.3221725, 0.3055310, 0.15749018,
     0.09050823, 0.14805584, 0.06290844, 0.05725284, 0.2569333],
    [0.1874694, 0.13309693, 0.2848973, 0.2701812, 0.13926864,
     0.08003646, 0.13092584, 0.05562996, 0.05062871, 0.2272062],
    [0.1235191, 0.08769439, 0.1877120, 0.1780160, 0.09176078,
     0.05273412, 0.08626391, 0.03665325, 0.03335805, 0.1497008],
]


def test_discrete_laplace__danes_against_r_disclapmix() -> None:
    x, n, loci = danes()
    assert n.sum() == 185 and x.shape == (136, 10)
    best = fit_discrete_laplace_bic(x, counts=n, markers=loci, max_clusters=5)
    assert best.model.clusters == 4  # disclapmix's choice too
    rows = {tuple(r): i for i, r in enumerate(best.model.centers.tolist())}
    assert set(rows) == {tuple(r) for r in DISCLAPMIX_R_Y}
    for r_center, r_p in zip(DISCLAPMIX_R_Y, DISCLAPMIX_R_P, strict=True):
        got = best.model.p[rows[tuple(r_center)]]
        np.testing.assert_allclose(got, r_p, rtol=2e-3)


def _direct_loglik(model: DiscreteLaplaceModel, x: np.ndarray, n: np.ndarray) -> float:
    total = 0.0
    for row, c in zip(x.tolist(), n.tolist(), strict=True):
        prob = 0.0
        for j in range(model.clusters):
            term = float(model.tau[j])
            for k, v in enumerate(row):
                p = float(model.p[j, k])
                term *= (1 - p) / (1 + p) * p ** abs(v - int(model.centers[j, k]))
            prob += term
        total += c * math.log(prob)
    return total


@pytest.mark.parametrize("clusters", [1, 2, 3, 4])
def test_discrete_laplace__em_monotone_and_direct_evaluation(clusters: int) -> None:
    x, n, loci = danes()
    fit = fit_discrete_laplace(x, clusters=clusters, counts=n, markers=loci)
    assert fit.converged
    trace = np.array(fit.trace)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:])), np.diff(trace)
    assert fit.loglik == pytest.approx(_direct_loglik(fit.model, x, n), rel=1e-12)
    # expanded rows (one per individual, as disclapmix takes them) give the same fit
    if clusters == 2:
        expanded = np.repeat(x, n, axis=0)
        fit2 = fit_discrete_laplace(expanded, clusters=2, markers=loci)
        assert fit2.loglik == pytest.approx(fit.loglik, rel=1e-9)


def test_discrete_laplace__one_cluster_closed_form() -> None:
    # one cluster: the centre is the median, and per locus the MLE solves
    # mean|d| = 2p / (1 - p^2), i.e. p = (sqrt(1 + m^2) - 1) / m
    x, n, loci = danes()
    fit = fit_discrete_laplace(x, clusters=1, counts=n, markers=loci)
    expanded = np.repeat(x, n, axis=0)
    med = np.median(expanded, axis=0)
    assert np.array_equal(fit.model.centers[0], med.astype(int))
    m = np.abs(expanded - med).mean(axis=0)
    np.testing.assert_allclose(fit.model.p[0], (np.sqrt(1 + m**2) - 1) / m, rtol=1e-9)


def test_discrete_laplace__model_frequency_and_roundtrip() -> None:
    x, n, loci = danes()
    fit = fit_discrete_laplace(x, clusters=2, counts=n, markers=loci)
    model = DiscreteLaplaceModel.from_dict(fit.model.to_dict())
    h = {k: parse_y_value(int(v)) for k, v in zip(loci, x[0].tolist(), strict=True)}
    direct = math.exp(_direct_loglik(model, x[:1], np.array([1])))
    assert math.exp(model.log_prob(h, loci)) == pytest.approx(direct, rel=1e-12)
    # a subset of loci: the others summed out (each DL sums to 1)
    sub = loci[:3]
    rows = np.array([[int(h[k][0]) for k in sub]])
    manual = sum(
        float(model.tau[j]) * math.prod(
            (1 - model.p[j, i]) / (1 + model.p[j, i]) * model.p[j, i] ** abs(rows[0, i] - model.centers[j, i])
            for i in range(3)
        )
        for j in range(2)
    )
    assert math.exp(model.log_prob(h, sub)) == pytest.approx(manual, rel=1e-12)
    db = YDatabase(
        tuple({k: parse_y_value(int(v)) for k, v in zip(loci, r.tolist(), strict=True)} for r in x),
        tuple(int(c) for c in n),
        "discrete-laplace",
        model=model,
    )
    est = db.frequency(h, loci)
    assert est.estimator == "discrete-laplace" and est.frequency == pytest.approx(direct, rel=1e-12)
    with pytest.raises(MarkerError, match="integer repeat"):
        model.log_prob({**h, "DYS19": ("13.2",)}, loci)
