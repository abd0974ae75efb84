"""The exact pedigree likelihood.

``P(observed genotypes | pedigree)`` for one marker, summing over the
genotypes of every untyped person, exactly, for any pedigree (loops
included). Conventions: ``shared/design/likelihood.md`` (Hardy-Weinberg or
Balding-Nichols founders, transmission through the parent's sex's mutation
matrix, X-chromosomal inheritance, allelic dropout per sample).

Method
------
Each person carries two allele variables, the allele received from the
father and the one received from the mother (a male at an X marker carries
only the maternal one). The likelihood is a product of small factors:

* founder allele frequencies (one factor per founder allele),
* transmissions ``T(a_parent_pat, a_parent_mat, a_child) =
  (M[a_pat, a_child] + M[a_mat, a_child]) / 2`` (a father's X allele passes
  whole to daughters),
* observations ``O(a_pat, a_mat) = P(observed | genotype)``.

Variables are summed out one at a time (variable elimination, greedy
min-size order), which is exact for any graph, loops included; factors are
rescaled after each step and the scale kept in log space, so no underflow
occurs. Before that, people who are untyped and have no typed descendant
are removed (their factors sum to one), and alleles observed in nobody are
merged into one when the mutation matrices allow it exactly (lumping).

With ``theta > 0`` founder alleles are not independent: the elimination
stops at the founder alleles and their joint table is weighted with the
Balding-Nichols (Dirichlet-multinomial) sampling probability, exactly.

This module holds the entry points; the graph is built in
:mod:`opendvi.core.factor_graph` and summed out in
:mod:`opendvi.core.elimination`.

>>> from opendvi.core.markers import make_marker
>>> from opendvi.core.pedigree import singleton
>>> m = make_marker("M", ["a", "b"], [0.1, 0.9])
>>> round(float(np.exp(marker_loglik(singleton("P"), m, {"P": ("a", "b")}))), 12)
0.18
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from opendvi.core.elimination import FloatArray, solve_batch
from opendvi.core.errors import LikelihoodError
from opendvi.core.factor_graph import FactorGraph
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Pedigree
from opendvi.core.profiles import Genotype
from opendvi.core.rules import safe_exp

__all__ = [
    "GenotypeTable", "KinshipLR", "LogLikelihood", "kinship_lr", "marker_genotype_table", "marker_loglik",
    "pedigree_loglik",
]


@dataclass
class LogLikelihood:
    """Natural-log likelihood of one pedigree, per marker and in total."""

    per_marker: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        vals = list(self.per_marker.values())
        if any(v == -math.inf for v in vals):
            return -math.inf
        return math.fsum(vals)


# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------


def pedigree_loglik(
    pedigree: Pedigree,
    markers: Sequence[Marker],
    genotypes: Mapping[str, Mapping[str, Genotype]],
    *,
    theta: float = 0.0,
    dropout: Mapping[str, float] | None = None,
) -> LogLikelihood:
    """Log-likelihood of every marker. ``genotypes`` maps person -> marker -> genotype.

    Markers whose factor graphs have the same shape (same typed people) are
    eliminated together, as one batch with a leading marker axis: the result
    is the same as :func:`marker_loglik` marker by marker, with the Python
    overhead paid once per batch.
    """
    if not (0.0 <= theta < 1.0):
        raise LikelihoodError(f"theta must be in [0, 1), found {theta!r}")
    result = LogLikelihood()
    groups: dict[tuple[object, ...], list[tuple[str, FactorGraph]]] = {}
    for marker in markers:
        per_person = {pid: g[marker.name] for pid, g in genotypes.items() if marker.name in g}
        problem = FactorGraph.build(pedigree, marker, per_person, dropout or {}, theta)
        result.per_marker[marker.name] = 0.0
        if problem is None:
            continue
        if theta > 0.0:
            result.per_marker[marker.name] = problem.solve()
            continue
        # same graph shape, and similar allele counts (padding stays cheap)
        n_work = len(problem.full)
        key = (max(8, -(-n_work // 8) * 8), *(f[0] for f in problem.factors))
        groups.setdefault(key, []).append((marker.name, problem))
    for members in groups.values():
        if len(members) == 1:
            name, problem = members[0]
            result.per_marker[name] = problem.solve()
            continue
        values = solve_batch([prob for _, prob in members])
        for (name, _), val in zip(members, values, strict=True):
            result.per_marker[name] = val
    return result


def marker_loglik(
    pedigree: Pedigree,
    marker: Marker,
    genotypes: Mapping[str, Genotype],
    *,
    theta: float = 0.0,
    dropout: Mapping[str, float] | None = None,
) -> float:
    """Natural log of P(observed genotypes at ``marker`` | ``pedigree``).

    ``genotypes`` maps person id -> genotype (absent = untyped);
    ``dropout`` maps person id -> that sample's dropout probability.
    Returns ``-inf`` for an impossible configuration.
    """
    if not (0.0 <= theta < 1.0):
        raise LikelihoodError(f"theta must be in [0, 1), found {theta!r}")
    problem = FactorGraph.build(pedigree, marker, genotypes, dropout or {}, theta)
    if problem is None:
        return 0.0
    return problem.solve()


@dataclass
class KinshipLR:
    """A likelihood ratio between two hypotheses, per marker and in total (natural log)."""

    log_lr: dict[str, float]
    numerator: LogLikelihood
    denominator: LogLikelihood

    @property
    def total_log_lr(self) -> float:
        num, den = self.numerator.total, self.denominator.total
        if den == -math.inf:
            return math.nan if num == -math.inf else math.inf
        return num - den

    @property
    def lr(self) -> float:
        """The total LR (may overflow to inf for very large values: use the log)."""
        return safe_exp(self.total_log_lr)


def kinship_lr(
    hypothesis: Pedigree,
    alternative: Pedigree,
    markers: Sequence[Marker],
    genotypes: Mapping[str, Mapping[str, Genotype]],
    *,
    theta: float = 0.0,
    dropout: Mapping[str, float] | None = None,
) -> KinshipLR:
    """LR of ``hypothesis`` against ``alternative``: two pedigrees over the
    same typed people (e.g. paternity: a trio against the same people
    unrelated).

    >>> from opendvi.core.markers import make_marker
    >>> from opendvi.core.pedigree import parent_child, Pedigree, Individual
    >>> m = make_marker("M", ["a", "b", "c"], [0.2, 0.3, 0.5])
    >>> h1 = parent_child()  # P is the father of C
    >>> h2 = Pedigree([Individual("P", sex="M"), Individual("C", sex="M")])
    >>> res = kinship_lr(h1, h2, [m], {"P": {"M": ("a", "b")}, "C": {"M": ("a", "c")}})
    >>> round(res.lr, 12)  # paternity index 1 / (4 p_a)
    1.25
    """
    typed = {pid for pid, g in genotypes.items() if g}
    for ped, label in ((hypothesis, "hypothesis"), (alternative, "alternative")):
        absent = sorted(typed - set(ped.ids))
        if absent:
            raise LikelihoodError(f"typed people {', '.join(absent)} are not in the {label} pedigree")
    num = pedigree_loglik(hypothesis, markers, genotypes, theta=theta, dropout=dropout)
    den = pedigree_loglik(alternative, markers, genotypes, theta=theta, dropout=dropout)
    log_lr: dict[str, float] = {}
    for m in markers:
        a, b = num.per_marker[m.name], den.per_marker[m.name]
        if b == -math.inf:
            log_lr[m.name] = math.nan if a == -math.inf else math.inf
        else:
            log_lr[m.name] = a - b
    return KinshipLR(log_lr=log_lr, numerator=num, denominator=den)


@dataclass(frozen=True)
class GenotypeTable:
    """Joint probability of the data and one untyped person's genotype.

    ``P(data, target has paternal allele a and maternal allele b) =
    exp(log_scale) * table[a, b]`` over the marker's alleles in order (for a
    male at an X marker, ``table[a]`` over his single allele). The
    probability of an unordered genotype {a, b} is ``table[a, b] + table[b, a]``
    for a != b.
    """

    log_scale: float
    table: FloatArray

    def unordered(self) -> FloatArray:
        """``U[a, b]`` = P(data, genotype {a, b}) / exp(log_scale), symmetric."""
        t = self.table
        if t.ndim == 1:
            return np.diag(t)
        u = t + t.T
        np.fill_diagonal(u, np.diag(t))
        return u


def marker_genotype_table(
    pedigree: Pedigree,
    marker: Marker,
    genotypes: Mapping[str, Genotype],
    target: str,
    *,
    theta: float = 0.0,
    dropout: Mapping[str, float] | None = None,
) -> GenotypeTable:
    """The joint probability of the observed data and each genotype of the
    untyped person ``target``, in one elimination pass.

    Summing the table gives ``P(data)``; dividing by it gives the target's
    genotype distribution given the data. This is what turns a pairwise LR
    into a table look-up: for a missing person M, ``P(refs, M = g)`` for every
    genotype g at once.
    """
    if not (0.0 <= theta < 1.0):
        raise LikelihoodError(f"theta must be in [0, 1), found {theta!r}")
    problem = FactorGraph.build(pedigree, marker, genotypes, dropout or {}, theta, target=target)
    assert problem is not None
    log_scale, tab = problem.eliminate(problem.target_vars)
    n = marker.n_alleles
    full = np.zeros((n,) * len(problem.target_vars))
    idx = np.ix_(*[problem.domains[v] for v in problem.target_vars])
    full[idx] = tab
    return GenotypeTable(log_scale=log_scale, table=full)
