"""The factor graph of one marker on one pedigree (see :mod:`opendvi.core.likelihood`).

Built in named steps: the typed people, the people that matter (typed people,
the target and their ancestors), the working allele space (unobserved alleles
lumped into one where that is exact), one or two allele variables per person,
and the factors (founder frequencies, transmissions, observations). Solved by
the variable elimination of :mod:`opendvi.core.elimination`, with the
Balding-Nichols weight of the founder alleles when ``theta > 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from opendvi.core.elimination import Factor, FloatArray, IntArray, contract, eliminate_vars, elimination_order
from opendvi.core.errors import LikelihoodError, ProfileError
from opendvi.core.markers import Marker
from opendvi.core.mutation import is_lumpable
from opendvi.core.observation import genotype_observation, hemizygous_observation
from opendvi.core.pedigree import Pedigree
from opendvi.core.profiles import Genotype, check_genotype

#: Largest joint table of founder alleles enumerated under theta > 0.
THETA_TABLE_LIMIT = 4_000_000


@dataclass(frozen=True)
class AlleleSpace:
    """The working alleles of one marker: every allele, or the observed ones
    and one lumped allele for all the others (last)."""

    #: founder frequency of each working allele
    p: FloatArray
    #: marker allele index -> working allele index
    to_work: IntArray
    #: the mutation matrices over the working alleles (None: no mutation)
    female: FloatArray | None
    male: FloatArray | None

    @property
    def size(self) -> int:
        return len(self.p)


def typed_people(ped: Pedigree, marker: Marker, genotypes: Mapping[str, Genotype]) -> dict[int, Genotype]:
    """Person index -> genotype of everybody typed at ``marker`` (each checked)."""
    typed: dict[int, Genotype] = {}
    for pid, gt in genotypes.items():
        if not gt:
            continue
        i = ped.index(pid)
        check_genotype(gt, marker, sex=ped.sex[i], who=pid)
        typed[i] = gt
    return typed


def relevant_people(ped: Pedigree, marker: Marker, start: Sequence[int]) -> set[int]:
    """``start`` and all their ancestors (through the mother only for a male
    at an X marker): everybody else is untyped with no typed descendant, and
    their factors sum to one."""
    is_x = marker.is_x
    keep: set[int] = set()
    stack = list(start)
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
    return keep


def allele_space(marker: Marker, typed: Mapping[int, Genotype], *, lump: bool) -> AlleleSpace:
    """The working alleles: with ``lump``, the unobserved alleles are merged
    into one when both sexes' mutation matrices allow it exactly."""
    observed = sorted({marker.index[a] for gt in typed.values() for a in gt})
    n = marker.n_alleles
    unobserved = np.array([a for a in range(n) if a not in set(observed)], dtype=np.intp)
    if not (lump and len(unobserved) >= 2 and _lumpable(marker, unobserved)):
        return AlleleSpace(
            np.asarray(marker.p, dtype=float), np.arange(n, dtype=np.intp), marker.female_matrix, marker.male_matrix
        )
    work = np.array(observed, dtype=np.intp)
    k = len(work)
    p = np.empty(k + 1)
    p[:k] = marker.p[work]
    p[k] = float(marker.p[unobserved].sum())
    to_work = np.full(n, k, dtype=np.intp)
    to_work[work] = np.arange(k)
    return AlleleSpace(
        p,
        to_work,
        _lumped_matrix(marker.female_matrix, work, unobserved),
        _lumped_matrix(marker.male_matrix, work, unobserved),
    )


def _lumped_matrix(matrix: FloatArray | None, work: IntArray, unobserved: IntArray) -> FloatArray | None:
    """A mutation matrix over the observed alleles ``work`` and one lumped allele."""
    if matrix is None:
        return None
    k = len(work)
    lumped = np.empty((k + 1, k + 1))
    lumped[:k, :k] = matrix[np.ix_(work, work)]
    lumped[:k, k] = matrix[np.ix_(work, unobserved)].sum(axis=1)
    first = unobserved[0]
    lumped[k, :k] = matrix[first, work]
    lumped[k, k] = matrix[first, unobserved].sum()
    return lumped


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


class FactorGraph:
    """The factor graph of one marker on one pedigree (after pruning/lumping)."""

    def __init__(self, theta: float) -> None:
        self.theta = theta
        self.domains: list[IntArray] = []  # per variable: working-allele indices
        self.factors: list[Factor] = []
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
    ) -> FactorGraph | None:
        """The graph of ``P(data)`` (or of ``P(data, target's alleles)``);
        None when nobody is typed and there is no target (``P = 1``)."""
        typed = typed_people(ped, marker, genotypes)
        target_idx = ped.index(target) if target is not None else None
        if target_idx is not None and target_idx in typed:
            raise LikelihoodError(f"{target}: the target person of a genotype table must be untyped")
        if not typed and target_idx is None:
            return None
        keep = relevant_people(ped, marker, list(typed) + ([target_idx] if target_idx is not None else []))
        space = allele_space(marker, typed, lump=target is None)
        graph = cls(theta)
        graph.p = space.p
        graph.full = np.arange(space.size, dtype=np.intp)
        graph.identity = np.eye(space.size)
        order = [i for i in ped.topological_order if i in keep]
        pat, mat = graph._add_variables(ped, marker, order, typed, space)
        graph._add_factors(ped, marker, order, typed, dropout, space, pat, mat)
        if target_idx is not None:
            male_x = marker.is_x and ped.sex[target_idx] == "M"
            graph.target_vars = [mat[target_idx]] if male_x else [pat[target_idx], mat[target_idx]]
        return graph

    def _add_variables(
        self, ped: Pedigree, marker: Marker, order: Sequence[int], typed: Mapping[int, Genotype], space: AlleleSpace
    ) -> tuple[dict[int, int], dict[int, int]]:
        """The paternal and maternal allele variable of each person (a male
        at an X marker: the maternal one only). A person typed with both
        alleles (or hemizygous) ranges over the alleles observed in them."""
        pat: dict[int, int] = {}
        mat: dict[int, int] = {}
        for i in order:
            gt = typed.get(i)
            male_x = marker.is_x and ped.sex[i] == "M"
            if gt is not None and (len(gt) == 2 or male_x):
                dom = np.array(sorted({int(space.to_work[marker.index[a]]) for a in gt}), dtype=np.intp)
            else:
                dom = self.full
            if not male_x:
                pat[i] = self.new_var(dom)
            mat[i] = self.new_var(dom)
        return pat, mat

    def _add_factors(
        self,
        ped: Pedigree,
        marker: Marker,
        order: Sequence[int],
        typed: Mapping[int, Genotype],
        dropout: Mapping[str, float],
        space: AlleleSpace,
        pat: Mapping[int, int],
        mat: Mapping[int, int],
    ) -> None:
        """Founder frequencies (theta = 0 only), transmissions and observations."""
        is_x = marker.is_x
        for i in order:
            f, m = int(ped.father[i]), int(ped.mother[i])
            male_x = is_x and ped.sex[i] == "M"
            if f < 0:
                for v in [mat[i]] if male_x else [pat[i], mat[i]]:
                    self.founder_vars.append(v)
                    if self.theta == 0.0:
                        self.factors.append(((v,), space.p[self.domains[v]].copy()))
            else:
                # mother's contribution: one of her two alleles, female matrix
                self.add_transmission((pat[m], mat[m]), mat[i], space.female)
                if not male_x:
                    if is_x:  # father passes his single X allele to a daughter
                        self.add_transmission((mat[f],), pat[i], space.male)
                    else:
                        self.add_transmission((pat[f], mat[f]), pat[i], space.male)
            gt = typed.get(i)
            if gt is not None:
                d = float(dropout.get(ped.ids[i], 0.0))
                if not (0.0 <= d < 1.0):
                    raise LikelihoodError(f"{ped.ids[i]}: dropout must be in [0, 1), found {d!r}")
                obs = [int(space.to_work[marker.index[a]]) for a in gt]
                if male_x:
                    v = mat[i]
                    self.factors.append(((v,), hemizygous_observation(obs, d, self.domains[v])))
                else:
                    self.add_observation(pat[i], mat[i], obs, d)

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
        order = elimination_order([f[0] for f in factors], sizes, keep)
        factors, scales, dead = eliminate_vars(factors, order)
        if dead[0]:
            return -math.inf, np.zeros([len(self.domains[u]) for u in out_vars])
        log_scale = float(scales[0])
        if self.theta == 0.0:
            return log_scale, contract(factors, list(out_vars))
        return self._theta_weight(factors, list(out_vars), log_scale)

    def _theta_weight(
        self, factors: list[Factor], out_vars: list[int], log_scale: float
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
        table = contract(factors, all_vars)
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
