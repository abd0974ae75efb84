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
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from opendvi.core.errors import LikelihoodError, ProfileError
from opendvi.core.markers import Marker
from opendvi.core.mutation import is_lumpable
from opendvi.core.observation import genotype_observation, hemizygous_observation
from opendvi.core.pedigree import Pedigree
from opendvi.core.profiles import Genotype, check_genotype
from opendvi.core.rules import safe_exp

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: ``np.einsum`` in its sublist form (the stubs do not describe that form).
_einsum = cast(Any, np.einsum)

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
    """Log-likelihood of every marker. ``genotypes`` maps person -> marker -> genotype.

    Markers whose factor graphs have the same shape (same typed people) are
    eliminated together, as one batch with a leading marker axis: the result
    is the same as :func:`marker_loglik` marker by marker, with the Python
    overhead paid once per batch.
    """
    if not (0.0 <= theta < 1.0):
        raise LikelihoodError(f"theta must be in [0, 1), found {theta!r}")
    result = LogLikelihood()
    groups: dict[tuple[object, ...], list[tuple[str, _Problem]]] = {}
    for marker in markers:
        per_person = {pid: g[marker.name] for pid, g in genotypes.items() if marker.name in g}
        problem = _Problem.build(pedigree, marker, per_person, dropout or {}, theta)
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
        values = _solve_batch([prob for _, prob in members])
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
    problem = _Problem.build(pedigree, marker, genotypes, dropout or {}, theta)
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
    problem = _Problem.build(pedigree, marker, genotypes, dropout or {}, theta, target=target)
    assert problem is not None
    log_scale, tab = problem.eliminate(problem.target_vars)
    n = marker.n_alleles
    full = np.zeros((n,) * len(problem.target_vars))
    idx = np.ix_(*[problem.domains[v] for v in problem.target_vars])
    full[idx] = tab
    return GenotypeTable(log_scale=log_scale, table=full)


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
        self.full: IntArray = np.zeros(0, dtype=np.intp)
        self.identity: FloatArray = np.zeros((0, 0))
        self.target_vars: list[int] = []

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
        target: str | None = None,
    ) -> _Problem | None:
        typed: dict[int, Genotype] = {}
        for pid, gt in genotypes.items():
            if not gt:
                continue
            i = ped.index(pid)
            check_genotype(gt, marker, sex=ped.sex[i], who=pid)
            typed[i] = gt
        target_idx = ped.index(target) if target is not None else None
        if target_idx is not None and target_idx in typed:
            raise LikelihoodError(f"{target}: the target person of a genotype table must be untyped")
        if not typed and target_idx is None:
            return None
        is_x = marker.is_x
        # -- prune: keep typed people (and the target) and all their ancestors
        keep: set[int] = set()
        stack = list(typed) + ([target_idx] if target_idx is not None else [])
        while stack:
            i = stack.pop()
            if i in keep:
                continue
            keep.add(i)
            # at an X marker a son inherits nothing from his father
            father = -1 if is_x and ped.sex[i] == "M" else ped.father[i]
            for par in (father, ped.mother[i]):
                if par >= 0:
                    stack.append(int(par))
        if is_x:
            for i in keep:
                if ped.sex[i] is None:
                    raise ProfileError(f"{ped.ids[i]}: sex unknown, needed at X marker {marker.name}")
        # -- working allele space (lumping of unobserved alleles)
        observed = sorted({marker.index[a] for gt in typed.values() for a in gt})
        n = marker.n_alleles
        p_full = marker.p
        Mf_full = marker.female_matrix
        Mm_full = marker.male_matrix
        unobserved = np.array([a for a in range(n) if a not in set(observed)], dtype=np.intp)
        lump = target is None and len(unobserved) >= 2 and _lumpable(marker, unobserved)
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
        prob.full = full
        prob.identity = np.eye(n_work)

        # -- variables
        pat: dict[int, int] = {}
        mat: dict[int, int] = {}
        order = [i for i in ped.topological_order if i in keep]
        for i in order:
            g0 = typed.get(i)
            male_x = is_x and ped.sex[i] == "M"
            if g0 is not None and (len(g0) == 2 or male_x):
                dom = np.array(sorted({int(to_work[marker.index[a]]) for a in g0}), dtype=np.intp)
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
                for v in [mat[i]] if male_x else [pat[i], mat[i]]:
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
            g1 = typed.get(i)
            if g1 is not None:
                d = float(dropout.get(ped.ids[i], 0.0))
                if not (0.0 <= d < 1.0):
                    raise LikelihoodError(f"{ped.ids[i]}: dropout must be in [0, 1), found {d!r}")
                obs = [int(to_work[marker.index[a]]) for a in g1]
                if male_x:
                    v = mat[i]
                    prob.factors.append(((v,), hemizygous_observation(obs, d, prob.domains[v])))
                else:
                    prob.add_observation(pat[i], mat[i], obs, d)
        if target_idx is not None:
            prob.target_vars = (
                [mat[target_idx]] if is_x and ped.sex[target_idx] == "M" else [pat[target_idx], mat[target_idx]]
            )
        return prob

    def add_transmission(self, parent_vars: tuple[int, ...], child: int, M: FloatArray | None) -> None:
        cdom = self.domains[child]
        tabs = []
        for v in parent_vars:
            pdom = self.domains[v]
            if pdom is self.full and cdom is self.full:
                t = self.identity if M is None else M
            elif M is None:
                t = (pdom[:, None] == cdom[None, :]).astype(float)
            else:
                t = M[pdom][:, cdom]
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
        self.factors.append(((vp, vm), genotype_observation(obs, d, x, y).astype(float)))

    # -----------------------------------------------------------------------
    # variable elimination
    # -----------------------------------------------------------------------
    def solve(self) -> float:
        """ln P(data)."""
        log_scale, table = self.eliminate(())
        val = float(table)
        if val == 0.0 or log_scale == -math.inf:
            return -math.inf
        return log_scale + math.log(val)

    def eliminate(self, out_vars: Sequence[int]) -> tuple[float, FloatArray]:
        """Sum out every variable but ``out_vars``: returns ``(log_scale, T)``
        with ``P(data, out_vars = x) = exp(log_scale) * T[x]``."""
        factors = list(self.factors)
        keep = set(out_vars)
        if self.theta > 0.0:
            keep.update(self.founder_vars)
            # a founder allele that no factor mentions is summed with its
            # Balding-Nichols weight (a factor of ones keeps it in the table)
            seen = {u for vars_, _ in factors for u in vars_}
            factors.extend(((v,), np.ones(len(self.domains[v]))) for v in keep if v not in seen)
        sizes = [len(d) for d in self.domains]
        order = _elimination_order([f[0] for f in factors], sizes, keep)
        factors, scales, dead = _eliminate_vars(factors, order)
        if dead[0]:
            return -math.inf, np.zeros([len(self.domains[u]) for u in out_vars])
        log_scale = float(scales[0])
        if self.theta == 0.0:
            return log_scale, _contract(factors, list(out_vars))
        return self._theta_weight(factors, list(out_vars), log_scale)

    def _theta_weight(
        self, factors: list[tuple[tuple[int, ...], FloatArray]], out_vars: list[int], log_scale: float
    ) -> tuple[float, FloatArray]:
        """Weight the joint table of founder alleles with the Balding-Nichols
        sampling probability of those alleles, and sum them out."""
        fvars = list(self.founder_vars)
        rest = [v for v in out_vars if v not in fvars]
        all_vars = fvars + rest
        size = 1
        for v in all_vars:
            size *= len(self.domains[v])
        if size > THETA_TABLE_LIMIT:
            raise LikelihoodError(
                f"theta correction over {len(fvars)} founder alleles needs a table of {size:,} entries "
                f"(limit {THETA_TABLE_LIMIT:,}); type more founders or set theta to 0"
            )
        table = _contract(factors, all_vars)
        shape_out = [len(self.domains[v]) for v in out_vars]
        nz = np.nonzero(table)
        if len(nz[0]) == 0:
            return -math.inf, np.zeros(shape_out)
        vals = table[nz]
        alleles = (
            np.stack([self.domains[v][idx] for v, idx in zip(fvars, nz[: len(fvars)], strict=True)], axis=1)
            if fvars
            else np.zeros((len(vals), 0), dtype=np.intp)
        )
        th = self.theta
        logw = np.zeros(len(vals))
        for j in range(alleles.shape[1]):
            a = alleles[:, j]
            b = (alleles[:, :j] == a[:, None]).sum(axis=1)
            logw += np.log(b * th + (1.0 - th) * self.p[a]) - math.log1p((j - 1) * th)
        mx = float(np.max(logw))
        w = vals * np.exp(logw - mx)
        # scatter into the output variables' table
        out = np.zeros(shape_out)
        pos = {v: k for k, v in enumerate(all_vars)}
        if out_vars:
            idx = tuple(nz[pos[v]] for v in out_vars)
            np.add.at(out, idx, w)
        else:
            out = np.asarray(w.sum())
        return log_scale + mx, out


def _solve_batch(problems: Sequence[_Problem]) -> list[float]:
    """ln P(data) of several markers whose factor graphs share one shape.

    Tables are padded with zeros to the largest domain of each variable
    (a padded state has probability 0, so the sums are unchanged) and
    stacked along a leading marker axis.
    """
    first = problems[0]
    n_vars = len(first.domains)
    K = len(problems)
    sizes = [max(len(p.domains[v]) for p in problems) for v in range(n_vars)]
    factors: list[tuple[tuple[int, ...], FloatArray]] = []
    for fi, (vars_, _) in enumerate(first.factors):
        arr = np.zeros((K, *(sizes[v] for v in vars_)))
        for k, prob in enumerate(problems):
            tab = prob.factors[fi][1]
            region: tuple[Any, ...] = (k, *(slice(0, d) for d in tab.shape))
            arr[region] = tab
        factors.append((vars_, arr))
    order = _elimination_order([f[0] for f in factors], sizes, set())
    factors, log_scale, dead = _eliminate_vars(factors, order, batch=K)
    if dead.all():  # stopped early: the remaining factors need not be multiplied
        return [-math.inf] * K
    final = _contract(factors, [], batch=True) if factors else np.ones(K)
    out: list[float] = []
    for k in range(K):
        val = float(final[k])
        out.append(-math.inf if dead[k] or val <= 0.0 else float(log_scale[k]) + math.log(val))
    return out


def _eliminate_vars(
    factors: list[tuple[tuple[int, ...], FloatArray]], order: Sequence[int], *, batch: int = 0
) -> tuple[list[tuple[tuple[int, ...], FloatArray]], FloatArray, NDArray[np.bool_]]:
    """Sum out the variables of ``order`` one at a time.

    Each new table is divided by its maximum (per marker with ``batch``, the
    size of the leading marker axis) and the log of that maximum kept, so no
    table underflows. Returns the remaining factors, the log scales and which
    markers became impossible (a table of zeros). When every marker is
    impossible it stops at once: the remaining factors are then meaningless.
    """
    n = max(batch, 1)
    log_scale = np.zeros(n)
    dead = np.zeros(n, dtype=bool)
    for v in order:
        involved = [f for f in factors if v in f[0]]
        if not involved:
            continue
        factors = [f for f in factors if v not in f[0]]
        scope_vars: list[int] = []
        for vars_, _ in involved:
            for u in vars_:
                if u != v and u not in scope_vars:
                    scope_vars.append(u)
        new = _contract(involved, scope_vars, batch=batch > 0)
        mx = new.reshape(n, -1).max(axis=1) if new.size else np.zeros(n)
        zero = mx <= 0.0
        dead |= zero
        if dead.all():
            break
        mx = np.where(zero, 1.0, mx)
        log_scale += np.log(mx)
        factors.append((tuple(scope_vars), new / (mx.reshape((n,) + (1,) * (new.ndim - 1)) if batch else mx[0])))
    return factors, log_scale, dead


_ORDER_CACHE: dict[tuple[object, ...], tuple[int, ...]] = {}
_ORDER_CACHE_MAX = 4096


def _lumpable(marker: Marker, unobserved: IntArray) -> bool:
    """Whether the alleles ``unobserved`` can be merged exactly under both
    sexes' mutation matrices (memoised per marker and allele set)."""
    if marker.female_lumpable and marker.male_lumpable:
        return True
    cache = marker.lump_cache
    key = unobserved.tobytes()
    hit = cache.get(key)
    if hit is None:
        hit = all(M is None or is_lumpable(M, unobserved) for M in (marker.female_matrix, marker.male_matrix))
        if len(cache) < 10_000:
            cache[key] = hit
    return hit


def _elimination_order(scopes: Sequence[tuple[int, ...]], sizes: Sequence[int], keep: set[int]) -> tuple[int, ...]:
    """Greedy min-size elimination order (cached by graph shape and size class).

    Any order is exact; a good one keeps the intermediate tables small. The
    order depends on the sizes only through whether a variable is pinned
    (typed, 1-2 states) or free, so markers of one pedigree share it.
    """
    n_vars = len(sizes)
    key = (tuple(scopes), tuple(s > 2 for s in sizes), tuple(sorted(keep)))
    hit = _ORDER_CACHE.get(key)
    if hit is not None:
        return hit
    nbrs: list[set[int]] = [set() for _ in range(n_vars)]
    for sc in scopes:
        for u in sc:
            nbrs[u].update(sc)
    for u in range(n_vars):
        nbrs[u].discard(u)
    remaining = {u for sc in scopes for u in sc} - keep
    order: list[int] = []
    while remaining:
        best_v, best_cost = -1, math.inf
        for v in remaining:
            cost = sizes[v]
            for u in nbrs[v]:
                cost *= sizes[u]
            if cost < best_cost or (cost == best_cost and v < best_v):
                best_v, best_cost = v, cost
        v = best_v
        order.append(v)
        remaining.discard(v)
        for u in nbrs[v]:
            nbrs[u].discard(v)
            nbrs[u].update(w for w in nbrs[v] if w != u)
        nbrs[v] = set()
    result = tuple(order)
    if len(_ORDER_CACHE) >= _ORDER_CACHE_MAX:
        _ORDER_CACHE.clear()
    _ORDER_CACHE[key] = result
    return result


def _contract(
    factors: Sequence[tuple[tuple[int, ...], FloatArray]],
    out_vars: Sequence[int],
    *,
    batch: bool = False,
) -> FloatArray:
    """Product of ``factors`` summed over every variable not in ``out_vars``.

    With ``batch``, every table has a leading axis (one entry per marker)
    that is kept.
    """
    if not factors:
        return np.ones(())
    labels: dict[int, int] = {-1: 0} if batch else {}
    for vars_, _ in factors:
        for u in vars_:
            labels.setdefault(u, len(labels))
    for u in out_vars:
        labels.setdefault(u, len(labels))
    if len(labels) > 52:
        raise LikelihoodError("pedigree too entangled for exact elimination at this marker")
    lead = [0] if batch else []

    def lab(vs: Sequence[int]) -> list[int]:
        return lead + [labels[u] for u in vs]

    out_labels = lab(out_vars)
    if len(factors) == 1 and not batch:
        vars_, tab = factors[0]
        summed = tuple(k for k, u in enumerate(vars_) if u not in out_vars)
        red = tab.sum(axis=summed) if summed else tab
        kept = [u for u in vars_ if u in out_vars]
        if kept == list(out_vars):
            return np.asarray(red, dtype=float)
    if len(factors) <= 2:
        args: list[object] = []
        for vars_, tab in factors:
            args.append(tab)
            args.append(lab(vars_))
        args.append(out_labels)
        return np.asarray(_einsum(*args), dtype=float)
    # several factors: multiply pairwise (smallest first), summing each
    # variable out as soon as no remaining factor needs it
    pending = sorted(factors, key=lambda f: f[1].size)
    cur_vars: list[int] = list(pending[0][0])
    cur: FloatArray = pending[0][1]
    for k in range(1, len(pending)):
        vars_, tab = pending[k]
        later = {u for f in pending[k + 1 :] for u in f[0]} | set(out_vars)
        union = cur_vars + [u for u in vars_ if u not in cur_vars]
        keep_vars = [u for u in union if u in later]
        cur = _einsum(cur, lab(cur_vars), tab, lab(vars_), lab(keep_vars))
        cur_vars = keep_vars
    return np.asarray(_einsum(cur, lab(cur_vars), out_labels), dtype=float)
