"""Per-marker distributions: the missing person's genotype given the references.

For one missing person M and one marker, ``P(g | data)`` over M's genotypes
g (unordered pairs; single alleles for a male at an X marker) and the
genotype distribution ``q(g)`` of a random unrelated person (Hardy-Weinberg;
with theta > 0 the Balding-Nichols distribution given the typed alleles).
The LR of a person of interest with genotype g is ``P(g | data) / q(g)``
(``likelihood.md``). Everything in :mod:`opendvi.power` is derived from
these two vectors, or from mixtures of them when an untyped relative is
typed next (:class:`MarkerPower`).

Two exact evaluators give ``P(data, configuration, M = (x, y))`` for a batch
of configurations of the candidates' genotypes: the screening templates
(NumPy, batched; :func:`opendvi.screening._tables.template_tables`) and the
general engine (:func:`opendvi.core.likelihood.marker_genotype_table`) for
every other pedigree, theta > 0 and references with dropout.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Family
from opendvi.core.errors import OpenDVIError
from opendvi.core.likelihood import marker_genotype_table
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Individual
from opendvi.core.profiles import Genotype

if TYPE_CHECKING:
    from opendvi.screening._shapes import Template

FloatArray = NDArray[np.float64]

#: Placeholder id of the unrelated person of interest (theta > 0 only).
POI = "__power_POI__"
#: Largest number of joint genotype configurations of a candidate set per marker.
MAX_CONFIGS = 60_000


class PowerError(OpenDVIError):
    """Power cannot be computed as asked (an unknown or typed candidate, a
    candidate set with too many joint genotypes); the message says what to change."""


@dataclass
class MarkerPower:
    """What one marker contributes: the exclusion power, the moments of
    log10 LR of the true missing person, and the atoms of its distribution.

    ``atoms_p`` / ``atoms_l`` are the probabilities and log10 LRs of the
    distinct outcomes (a genotype of M, or a pair of a candidate
    configuration and a genotype of M); ``ep`` is the exclusion power (its
    expectation over the candidates' genotypes when a relative is typed next).
    """

    marker: str
    ep: float
    e_lr: float
    e_log10_lr: float
    var_log10_lr: float
    atoms_p: FloatArray
    atoms_l: FloatArray
    n_genotypes: int
    n_possible: int
    mutation: str  # "none", "removed" or "kept"
    typed: bool = True
    notes: list[str] = field(default_factory=list)
    #: The references are impossible here (likelihood 0 even with the mutation
    #: model): the family cannot be evaluated (core.rules, :func:`unevaluable_family_note`).
    impossible: bool = False

    @classmethod
    def trivial(cls, marker: str, n_genotypes: int, mutation: str, *, note: str | None = None) -> MarkerPower:
        """A marker at which no reference is typed: LR 1 for everybody."""
        return cls(marker=marker, ep=0.0, e_lr=1.0, e_log10_lr=0.0, var_log10_lr=0.0, atoms_p=np.ones(1),
                   atoms_l=np.zeros(1), n_genotypes=n_genotypes, n_possible=n_genotypes, mutation=mutation,
                   typed=False, notes=[note] if note else [])

    @classmethod
    def from_mixture(cls, marker: str, weights: FloatArray, P: FloatArray, Q: FloatArray, mutation: str) -> MarkerPower:
        """From configurations b with probabilities ``weights[b]`` (summing to
        1), M's genotype distribution ``P[b]`` given the data and b, and the
        random person's ``Q[b]`` (rows sum to 1)."""
        pos = P > 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.where(pos, P / np.where(Q > 0.0, Q, 1.0), 0.0)
            l10 = np.where(pos, np.log10(np.where(pos, lr, 1.0)), 0.0)
        l10 = np.where(np.abs(l10) < 1e-13, 0.0, l10)
        joint = weights[:, None] * P
        ep_b = np.where(pos, 0.0, Q).sum(axis=1)
        e_lr = float(np.sum(joint * lr))
        e_l = float(np.sum(joint * l10))
        var = max(0.0, float(np.sum(joint * l10 * l10)) - e_l * e_l)
        keep = joint > 0.0
        return cls(
            marker=marker,
            ep=float(np.dot(weights, ep_b)),
            e_lr=e_lr,
            e_log10_lr=e_l,
            var_log10_lr=var,
            atoms_p=joint[keep],
            atoms_l=l10[keep],
            n_genotypes=int(P.shape[1]),
            n_possible=int(pos.any(axis=0).sum()),
            mutation=mutation,
        )


# ---------------------------------------------------------------------------
# genotype classes
# ---------------------------------------------------------------------------


def is_haploid(marker: Marker, sex: str | None) -> bool:
    """Whether the person carries one allele at the marker (a male at an X marker)."""
    return marker.is_x and sex == "M"


@functools.lru_cache(maxsize=256)
def _triu(n: int) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
    iu, ju = np.triu_indices(n)
    return iu, ju, iu != ju


def genotype_classes(marker: Marker, sex: str | None) -> list[Genotype]:
    """The genotypes of a person of this sex at the marker, in the order of the vectors."""
    return list(_classes(marker.alleles, is_haploid(marker, sex)))


@functools.lru_cache(maxsize=1024)
def _classes(a: tuple[str, ...], haploid: bool) -> tuple[Genotype, ...]:
    if haploid:
        return tuple((x, x) for x in a)
    iu, ju, _ = _triu(len(a))
    return tuple((a[i], a[j]) for i, j in zip(iu, ju, strict=True))


_NO_MUTATION: dict[int, tuple[Marker, Marker]] = {}


def without_mutation(marker: Marker) -> Marker:
    """``marker.without_mutation()``, made once per marker object."""
    hit = _NO_MUTATION.get(id(marker))
    if hit is not None and hit[0] is marker:
        return hit[1]
    m0 = marker.without_mutation()
    if len(_NO_MUTATION) > 4096:
        _NO_MUTATION.clear()
    _NO_MUTATION[id(marker)] = (marker, m0)
    return m0


def unordered(table: FloatArray) -> FloatArray:
    """Ordered tables (..., n, n) -> unordered genotypes (..., n(n+1)/2); (..., n) unchanged."""
    if table.ndim >= 2 and table.shape[-1] == table.shape[-2]:
        iu, ju, off = _triu(table.shape[-1])
        out = table[..., iu, ju].copy()
        out[..., off] += table[..., ju[off], iu[off]]
        return np.asarray(out)
    return table


def hardy_weinberg(marker: Marker, sex: str | None) -> FloatArray:
    """q(g) of a random unrelated person: p_a^2, 2 p_a p_b; p_a for one allele."""
    p = marker.p
    if is_haploid(marker, sex):
        return np.array(p, dtype=float)
    iu, ju, _ = _triu(marker.n_alleles)
    return np.where(iu == ju, p[iu] * p[ju], 2.0 * p[iu] * p[ju])


# ---------------------------------------------------------------------------
# P(data, configuration, M = g) for a batch of configurations
# ---------------------------------------------------------------------------


def _refs_at(fam: Family, marker: Marker) -> dict[str, Genotype]:
    return {pid: g[marker.name] for pid, g in fam.genotypes.items() if g.get(marker.name)}


def engine_joint(fam: Family, target: str, marker: Marker, configs: Sequence[Mapping[str, Genotype]], *,
                 theta: float, extra: Individual | None = None) -> FloatArray:
    """``P(data, config_b, target = g)`` (B, classes) from the general engine,
    scaled by one constant common to all b (the largest is 1)."""
    ped = fam.pedigree if extra is None else fam.pedigree.add(extra)
    refs = _refs_at(fam, marker)
    logs = np.full(len(configs), -math.inf)
    tabs: list[FloatArray | None] = []
    for b, cfg in enumerate(configs):
        gts = {**refs, **cfg}
        tab = marker_genotype_table(ped, marker, gts, target, theta=theta, dropout=fam.dropout)
        u = unordered(tab.table)
        s = float(u.sum())
        if s > 0.0 and tab.log_scale > -math.inf:
            logs[b] = tab.log_scale + math.log(s)
            tabs.append(u / s)
        else:
            tabs.append(None)
    top = float(logs.max()) if len(logs) else -math.inf
    width = len(genotype_classes(marker, ped.sex[ped.index(target)]))
    out = np.zeros((len(configs), width))
    if top == -math.inf:
        return out
    for b, ub in enumerate(tabs):
        if ub is not None:
            out[b] = ub * math.exp(logs[b] - top)
    return out


def _template_of(fam: Family, target: str, marker: Marker, configs: Sequence[Mapping[str, Genotype]]
                 ) -> tuple[list[str], dict[str, Genotype], Template] | None:
    """The candidates of ``configs``, the references' genotypes at ``marker`` and the screening template
    of the family with both typed (None when the pedigree is no template)."""
    from opendvi.screening._shapes import match_template

    cands = sorted({pid for cfg in configs for pid in cfg})
    refs = _refs_at(fam, marker)
    typed = {marker.name: (marker.alleles[0], marker.alleles[0])}
    gts: dict[str, Mapping[str, Genotype]] = {pid: {marker.name: g} for pid, g in refs.items()}
    gts |= dict.fromkeys(cands, typed)
    probe = Family(id=fam.id, pedigree=fam.pedigree, genotypes=gts, missing=fam.missing, dropout=fam.dropout)
    tpl = match_template(probe, target)
    return None if tpl is None else (cands, refs, tpl)


def template_joint(fam: Family, target: str, marker: Marker, configs: Sequence[Mapping[str, Genotype]], *,
                   mutation: bool) -> FloatArray | None:
    """As :func:`engine_joint`, from the screening templates (theta 0,
    autosomal, exact references); None when the pedigree is no template."""
    from opendvi.screening._tables import batch_size, template_tables

    found = None if marker.is_x else _template_of(fam, target, marker, configs)
    if found is None:
        return None
    cands, refs, tpl = found
    n = marker.n_alleles
    idx = marker.index
    B = len(configs)
    A = np.full((B, len(tpl.roles), 2), n, dtype=np.int64)
    for r, pid in enumerate(tpl.roles):
        if pid in cands:
            for b, cfg in enumerate(configs):
                g = cfg[pid]
                A[b, r, 0], A[b, r, 1] = idx[g[0]], idx[g[-1]]
        elif pid in refs:
            g = refs[pid]
            A[:, r, 0], A[:, r, 1] = idx[g[0]], idx[g[-1]]
    step = batch_size(n)
    parts = [unordered(template_tables(tpl.key, A[s : s + step], marker, mutation=mutation))
             for s in range(0, B, step)]
    out = np.concatenate(parts) if parts else np.zeros((0, n * (n + 1) // 2))
    top = float(out.max()) if out.size else 0.0
    return out / top if top > 0.0 else out


def joint_table(fam: Family, target: str, marker: Marker, configs: Sequence[Mapping[str, Genotype]], *,
                theta: float, mutation: bool, use_templates: bool = True) -> FloatArray:
    """``P(data, config_b, target = g)`` up to a constant, by the fastest exact evaluator."""
    mk = marker if mutation else without_mutation(marker)
    if use_templates and theta == 0.0 and not any(fam.dropout.get(pid, 0.0) for pid in fam.genotypes):
        res = template_joint(fam, target, mk, configs, mutation=mutation)
        if res is not None:
            return res
    return engine_joint(fam, target, mk, configs, theta=theta)


def random_person(fam: Family, target: str, marker: Marker, configs: Sequence[Mapping[str, Genotype]], *,
                  theta: float, mutation: bool) -> FloatArray:
    """q(g) per configuration (B, classes): Hardy-Weinberg, or with theta > 0
    the genotype of an extra unrelated founder given every typed allele."""
    sex = fam.sex_of(target)
    if theta == 0.0:
        q = hardy_weinberg(marker, sex)
        return np.broadcast_to(q, (len(configs), len(q)))
    mk = marker if mutation else without_mutation(marker)
    Q = engine_joint(fam, POI, mk, configs, theta=theta, extra=Individual(POI, sex=sex or "M"))
    s = Q.sum(axis=1, keepdims=True)
    return np.asarray(Q / np.where(s > 0.0, s, 1.0))


# ---------------------------------------------------------------------------
# one marker, baseline and with candidates typed
# ---------------------------------------------------------------------------


def mutation_choice(fam: Family, target: str, marker: Marker, *, theta: float, mode: str,
                    use_templates: bool = True) -> tuple[str, FloatArray | None]:
    """forrel's convention (``mode="forrel"``): a marker's mutation model is
    removed when the references are consistent without it, kept otherwise;
    ``mode="kept"`` keeps every model. Returns ("none" | "removed" | "kept",
    the baseline table when it was computed on the way)."""
    if not marker.has_mutation:
        return "none", None
    if mode == "kept":
        return "kept", None
    T0 = joint_table(fam, target, marker, [{}], theta=theta, mutation=False, use_templates=use_templates)
    if T0.sum() > 0.0:
        return "removed", T0
    return "kept", None


def marker_power(fam: Family, target: str, marker: Marker, *, theta: float = 0.0, mode: str = "forrel",
                 candidates: Sequence[str] = (), use_templates: bool = True,
                 choice: str | None = None) -> MarkerPower:
    """The :class:`MarkerPower` of one marker, with the current references
    (``candidates`` empty) or averaged over the genotypes of ``candidates``
    given the data, as if they were typed next. ``choice`` is the mutation
    choice of the baseline when already known (see :func:`mutation_choice`)."""
    sex = fam.sex_of(target)
    n_classes = len(genotype_classes(marker, sex))
    refs = _refs_at(fam, marker)
    T0: FloatArray | None = None
    if choice is None:
        choice, T0 = mutation_choice(fam, target, marker, theta=theta, mode=mode, use_templates=use_templates)
    if not refs and not candidates:
        return MarkerPower.trivial(marker.name, n_classes, choice)
    mutation = choice == "kept"
    if not candidates:
        T = T0 if T0 is not None else joint_table(fam, target, marker, [{}], theta=theta, mutation=mutation,
                                                  use_templates=use_templates)
        if not T.sum() > 0.0:
            out = MarkerPower.trivial(marker.name, n_classes, choice)
            out.impossible = True
            return out
        P = T / T.sum()
        Q = random_person(fam, target, marker, [{}], theta=theta, mutation=mutation)
        return MarkerPower.from_mixture(marker.name, np.ones(1), P, np.asarray(Q), choice)
    if not mutation and use_templates and theta == 0.0 and not marker.is_x \
            and not any(fam.dropout.get(pid, 0.0) for pid in fam.genotypes):
        # one candidate: every genotype (impossible ones get weight 0), which
        # on lumped classes costs less than finding the possible ones first
        every = ([{candidates[0]: g} for g in genotype_classes(marker, fam.sex_of(candidates[0]))]
                 if len(candidates) == 1 else
                 candidate_configs(fam, target, marker, candidates, theta=theta, mutation=mutation,
                                   use_templates=use_templates))
        lumped = lumped_candidates(fam, target, marker, every) if every else None
        if lumped is not None:
            w, P, Q = lumped
            return MarkerPower.from_mixture(marker.name, w, P, Q, choice)
    configs = candidate_configs(fam, target, marker, candidates, theta=theta, mutation=mutation,
                                use_templates=use_templates)
    if not configs:
        return marker_power(fam, target, marker, theta=theta, mode=mode, use_templates=use_templates)
    T = joint_table(fam, target, marker, configs, theta=theta, mutation=mutation, use_templates=use_templates)
    tot = T.sum(axis=1)
    ok = tot > 0.0
    if not ok.any():
        return marker_power(fam, target, marker, theta=theta, mode=mode, use_templates=use_templates)
    T, tot = T[ok], tot[ok]
    configs = [c for c, k in zip(configs, ok, strict=True) if k]
    w = tot / tot.sum()
    P = T / tot[:, None]
    Q = random_person(fam, target, marker, configs, theta=theta, mutation=mutation)
    return MarkerPower.from_mixture(marker.name, w, P, np.asarray(Q), choice)


def lumped_candidates(fam: Family, target: str, marker: Marker, configs: Sequence[Mapping[str, Genotype]]
                      ) -> tuple[FloatArray, FloatArray, FloatArray] | None:
    """Weights, P and q of the candidate configurations at a marker without
    mutation, on lumped allele classes (None when the pedigree is no template).

    Without mutation the alleles that no reference and no candidate carries
    are exchangeable, and in a template (no loops) M's two alleles come from
    different founder alleles, so every genotype of M with such "other"
    alleles has the same LR: the genotypes (a, other) and (other, other)
    are classes whose probability, q and LR are exact, and EP, E[LR] (each
    class contributes P^2 / q) and the log10 LR atoms are unchanged. Each
    configuration gets its own class space: the references' and its own
    alleles, plus "other" (the screening's exclusion flags use the same trick).
    """
    from opendvi.screening._tables import batch_size, template_tables

    found = _template_of(fam, target, marker, configs)
    if found is None:
        return None
    cands, refs, tpl = found
    idx = marker.index
    p = marker.p
    ref_alleles = sorted({idx[a] for g in refs.values() for a in g})
    B = len(configs)
    per_row = [sorted(set(ref_alleles) | {idx[a] for c in cands for a in cfg[c]}) for cfg in configs]
    K = max(len(r) for r in per_row)
    other = K  # the lumped class; K + 1 = "untyped" in the template's alleles
    p_loc = np.zeros((B, K + 1))
    A = np.full((B, len(tpl.roles), 2), K + 1, dtype=np.int64)
    for b, (row, cfg) in enumerate(zip(per_row, configs, strict=True)):
        loc = {a: i for i, a in enumerate(row)}
        p_loc[b, : len(row)] = p[row]
        p_loc[b, other] = max(0.0, 1.0 - float(p[row].sum()))
        for r, pid in enumerate(tpl.roles):
            g = cfg.get(pid) if pid in cands else (refs.get(pid))
            if g:
                A[b, r, 0], A[b, r, 1] = loc[idx[g[0]]], loc[idx[g[-1]]]
    n_loc = K + 1
    step = batch_size(n_loc)
    U = np.concatenate([template_tables(tpl.key, np.where(A[s : s + step] > K, n_loc, A[s : s + step]), marker,
                                        p_batch=p_loc[s : s + step]) for s in range(0, B, step)])
    T = unordered(U)
    iu, ju, _ = _triu(n_loc)
    Q = np.where(iu == ju, p_loc[:, iu] * p_loc[:, ju], 2.0 * p_loc[:, iu] * p_loc[:, ju])
    tot = T.sum(axis=1)
    ok = tot > 0.0
    if not ok.any():
        return None
    T, tot, Q = T[ok], tot[ok], Q[ok]
    return tot / tot.sum(), T / tot[:, None], Q


def candidate_configs(fam: Family, target: str, marker: Marker, candidates: Sequence[str], *, theta: float,
                      mutation: bool, use_templates: bool = True) -> list[dict[str, Genotype]]:
    """The joint genotype configurations of ``candidates`` that are possible
    given the data (each candidate's own support, then their product)."""
    supports: list[list[Genotype]] = []
    for c in candidates:
        classes = genotype_classes(marker, fam.sex_of(c))
        T = joint_table(fam, c, marker, [{}], theta=theta, mutation=mutation, use_templates=use_templates)
        if T.shape[1] != len(classes):  # pragma: no cover - guarded by genotype_classes
            raise PowerError(f"{c}: unexpected genotype table at marker {marker.name}")
        supports.append([g for g, v in zip(classes, T[0], strict=True) if v > 0.0])
    size = math.prod(len(s) for s in supports)
    if size > MAX_CONFIGS:
        raise PowerError(
            f"family {fam.id}: typing {'+'.join(candidates)} together has {size:,} joint genotypes at marker "
            f"{marker.name} (limit {MAX_CONFIGS:,}); give fewer candidates per set"
        )
    return [dict(zip(candidates, combo, strict=True)) for combo in itertools.product(*supports)]
