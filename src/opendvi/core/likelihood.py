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
from numpy.typing import NDArray

from opendvi.core.errors import LikelihoodError, ProfileError
from opendvi.core.markers import Marker
from opendvi.core.mutation import is_lumpable
from opendvi.core.pedigree import Pedigree
from opendvi.core.profiles import Genotype, check_genotype

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Largest joint table of founder alleles enumerated under theta > 0.
THETA_TABLE_LIMIT = 4_000_000


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
    """Log-likelihood of every marker. ``genotypes`` maps person -> marker -> genotype."""
    result = LogLikelihood()
    for marker in markers:
        per_person = {
            pid: g[marker.name] for pid, g in genotypes.items() if marker.name in g
        }
        result.per_marker[marker.name] = marker_loglik(
            pedigree, marker, per_person, theta=theta, dropout=dropout
        )
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
    problem = _Problem.build(pedigree, marker, genotypes, dropout or {}, theta)
    if problem is None:
        return 0.0
    return problem.solve()


# ---------------------------------------------------------------------------
# building the factor graph
# ---------------------------------------------------------------------------


class _Problem:
    """The factor graph of one marker on one pedigree (after pruning/lumping)."""

    def __init__(self, theta: float) -> None:
        self.theta = theta
        self.domains: list[IntArray] = []  # per variable: working-allele indices
        self.factors: list[tuple[tuple[int, ...], FloatArray]] = []
        self.founder_vars: list[int] = []
        self.p: FloatArray = np.zeros(0)

    def new_var(self, domain: IntArray) -> int:
        self.domains.append(domain)
        return len(self.domains) - 1

    @classmethod
    def build(
        cls,
        ped: Pedigree,
        marker: Marker,
        genotypes: Mapping[str, Genotype],
        dropout: Mapping[str, float],
        theta: float,
    ) -> _Problem | None:
        typed: dict[int, Genotype] = {}
        for pid, gt in genotypes.items():
            if not gt:
                continue
            i = ped.index(pid)
            check_genotype(gt, marker, sex=ped.sex[i], who=pid)
            typed[i] = gt
        if not typed:
            return None
        is_x = marker.is_x
        # -- prune: keep typed people and all their ancestors
        keep: set[int] = set()
        stack = list(typed)
        while stack:
            i = stack.pop()
            if i in keep:
                continue
            keep.add(i)
            for par in (ped.father[i], ped.mother[i]):
                if par >= 0:
                    stack.append(int(par))
        if is_x:
            for i in keep:
                if ped.sex[i] is None:
                    raise ProfileError(
                        f"{ped.ids[i]}: sex unknown, needed at X marker {marker.name}"
                    )
        # -- working allele space (lumping of unobserved alleles)
        observed = sorted({marker.index[a] for gt in typed.values() for a in gt})
        n = marker.n_alleles
        p_full = marker.p
        Mf_full = marker.female_matrix
        Mm_full = marker.male_matrix
        unobserved = np.array([a for a in range(n) if a not in set(observed)], dtype=np.intp)
        lump = len(unobserved) >= 2 and all(
            M is None or is_lumpable(M, unobserved) for M in (Mf_full, Mm_full)
        )
        if lump:
            work = np.array(observed, dtype=np.intp)
            k = len(work)
            p = np.empty(k + 1)
            p[:k] = p_full[work]
            p[k] = float(p_full[unobserved].sum())
            to_work = np.full(n, k, dtype=np.intp)
            to_work[work] = np.arange(k)

            def lumped(M: FloatArray | None) -> FloatArray | None:
                if M is None:
                    return None
                L = np.empty((k + 1, k + 1))
                L[:k, :k] = M[np.ix_(work, work)]
                L[:k, k] = M[np.ix_(work, unobserved)].sum(axis=1)
                l0 = unobserved[0]
                L[k, :k] = M[l0, work]
                L[k, k] = M[l0, unobserved].sum()
                return L

            Mf, Mm = lumped(Mf_full), lumped(Mm_full)
            n_work = k + 1
        else:
            p = np.asarray(p_full, dtype=float)
            to_work = np.arange(n, dtype=np.intp)
            Mf, Mm = Mf_full, Mm_full
            n_work = n

        prob = cls(theta)
        prob.p = p
        full = np.arange(n_work, dtype=np.intp)

        # -- variables
        pat: dict[int, int] = {}
        mat: dict[int, int] = {}
        order = [i for i in ped.topological_order if i in keep]
        for i in order:
            gt = typed.get(i)
            male_x = is_x and ped.sex[i] == "M"
            if gt is not None and (len(gt) == 2 or male_x):
                dom = np.unique(to_work[[marker.index[a] for a in gt]])
            else:
                dom = full
            if not male_x:
                pat[i] = prob.new_var(dom)
            mat[i] = prob.new_var(dom)

        # -- factors
        for i in order:
            f, m = int(ped.father[i]), int(ped.mother[i])
            male_x = is_x and ped.sex[i] == "M"
            if f < 0:
                for v in ([mat[i]] if male_x else [pat[i], mat[i]]):
                    prob.founder_vars.append(v)
                    if theta == 0.0:
                        prob.factors.append(((v,), p[prob.domains[v]].copy()))
            else:
                # mother's contribution: one of her two alleles, female matrix
                prob.add_transmission((pat[m], mat[m]), mat[i], Mf)
                if not male_x:
                    if is_x:  # father passes his single X allele to a daughter
                        prob.add_transmission((mat[f],), pat[i], Mm)
                    else:
                        prob.add_transmission((pat[f], mat[f]), pat[i], Mm)
            gt = typed.get(i)
            if gt is not None:
                d = float(dropout.get(ped.ids[i], 0.0))
                if not (0.0 <= d < 1.0):
                    raise LikelihoodError(f"{ped.ids[i]}: dropout must be in [0, 1), found {d!r}")
                obs = [int(to_work[marker.index[a]]) for a in gt]
                if male_x:
                    v = mat[i]
                    tab = np.where(prob.domains[v] == obs[0], 1.0 - d, 0.0)
                    prob.factors.append(((v,), tab))
                else:
                    prob.add_observation(pat[i], mat[i], obs, d)
        return prob

    def add_transmission(self, parent_vars: tuple[int, ...], child: int, M: FloatArray | None) -> None:
        cdom = self.domains[child]
        tabs = []
        for v in parent_vars:
            pdom = self.domains[v]
            if M is None:
                t = (pdom[:, None] == cdom[None, :]).astype(float)
            else:
                t = M[np.ix_(pdom, cdom)]
            tabs.append(t)
        if len(tabs) == 1:
            self.factors.append(((parent_vars[0], child), np.array(tabs[0], dtype=float)))
        else:
            a, b = tabs
            tab = 0.5 * (a[:, None, :] + b[None, :, :])
            self.factors.append(((parent_vars[0], parent_vars[1], child), tab))

    def add_observation(self, vp: int, vm: int, obs: list[int], d: float) -> None:
        x = self.domains[vp][:, None]
        y = self.domains[vm][None, :]
        if len(obs) == 2 and obs[0] != obs[1]:
            a, b = obs
            hit = ((x == a) & (y == b)) | ((x == b) & (y == a))
            tab = np.where(hit, (1.0 - d) ** 2, 0.0)
        elif len(obs) == 2:  # a homozygote, taken as such
            a = obs[0]
            tab = np.where((x == a) & (y == a), 1.0 - d * d, 0.0)
        else:  # one allele seen: homozygote, or heterozygote with one dropout
            a = obs[0]
            hom = (x == a) & (y == a)
            het = (x == a) ^ (y == a)
            tab = np.where(hom, 1.0 - d * d, np.where(het, d * (1.0 - d), 0.0))
        self.factors.append(((vp, vm), tab.astype(float)))

    # -----------------------------------------------------------------------
    # variable elimination
    # -----------------------------------------------------------------------
    def solve(self) -> float:
        keep_vars = set(self.founder_vars) if self.theta > 0.0 else set()
        factors = list(self.factors)
        log_scale = 0.0
        sizes = [len(d) for d in self.domains]
        # quick exit: an empty domain or all-zero factor
        for _, tab in factors:
            if tab.size == 0 or not tab.any():
                return -math.inf
        remaining = {v for vars_, _ in factors for v in vars_} - keep_vars
        while remaining:
            # greedy: the variable whose elimination builds the smallest table
            best_v, best_cost = -1, math.inf
            for v in remaining:
                scope: set[int] = set()
                for vars_, _ in factors:
                    if v in vars_:
                        scope.update(vars_)
                cost = 1
                for u in scope:
                    cost *= sizes[u]
                if cost < best_cost:
                    best_v, best_cost = v, cost
            v = best_v
            involved = [f for f in factors if v in f[0]]
            factors = [f for f in factors if v not in f[0]]
            scope_vars: list[int] = []
            for vars_, _ in involved:
                for u in vars_:
                    if u != v and u not in scope_vars:
                        scope_vars.append(u)
            new = _contract(involved, scope_vars)
            mx = float(new.max()) if new.size else 0.0
            if mx == 0.0:
                return -math.inf
            log_scale += math.log(mx)
            factors.append((tuple(scope_vars), new / mx))
            remaining.discard(v)
        if self.theta == 0.0:
            total = log_scale
            for vars_, tab in factors:
                assert not vars_
                val = float(tab)
                if val == 0.0:
                    return -math.inf
                total += math.log(val)
            return total
        return log_scale + self._theta_sum(factors)

    def _theta_sum(self, factors: list[tuple[tuple[int, ...], FloatArray]]) -> float:
        fvars = self.founder_vars
        size = 1
        for v in fvars:
            size *= len(self.domains[v])
        if size > THETA_TABLE_LIMIT:
            raise LikelihoodError(
                f"theta correction over {len(fvars)} founder alleles needs a table of {size:,} entries "
                f"(limit {THETA_TABLE_LIMIT:,}); type more founders or set theta to 0"
            )
        table = _contract(factors, fvars, eliminate_none=True)
        nz = np.nonzero(table)
        if len(nz[0]) == 0:
            return -math.inf
        vals = table[nz]
        alleles = np.stack([self.domains[v][idx] for v, idx in zip(fvars, nz, strict=True)], axis=1)
        th = self.theta
        logw = np.zeros(len(vals))
        for j in range(alleles.shape[1]):
            a = alleles[:, j]
            b = (alleles[:, :j] == a[:, None]).sum(axis=1)
            logw += np.log(b * th + (1.0 - th) * self.p[a]) - math.log1p((j - 1) * th)
        mx = float(np.max(logw))
        s = float(np.sum(vals * np.exp(logw - mx)))
        if s == 0.0:
            return -math.inf
        return mx + math.log(s)


def _contract(
    factors: Sequence[tuple[tuple[int, ...], FloatArray]],
    out_vars: Sequence[int],
    *,
    eliminate_none: bool = False,
) -> FloatArray:
    """Product of ``factors`` summed over every variable not in ``out_vars``."""
    if not factors:
        return np.ones(())
    labels: dict[int, int] = {}
    for vars_, _ in factors:
        for u in vars_:
            labels.setdefault(u, len(labels))
    for u in out_vars:
        labels.setdefault(u, len(labels))
    if len(labels) > 52:
        raise LikelihoodError("pedigree too entangled for exact elimination at this marker")
    args: list[object] = []
    for vars_, tab in factors:
        args.append(tab)
        args.append([labels[u] for u in vars_])
    args.append([labels[u] for u in out_vars])
    result = np.einsum(*args, optimize=len(factors) > 2)
    return np.asarray(result, dtype=float)
