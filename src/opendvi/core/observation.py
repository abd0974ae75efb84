"""The observation model: P(observed alleles | true genotype), with allelic
dropout (``likelihood.md``, "Observation models"). The one home of the rule:
the engine's observation factors, the pairwise and joint numerators, the
screening tables and the direct matching of remains all call these functions.

A sample with dropout probability d shows

* a true heterozygote a/b as {a, b} with (1 − d)², as {a} alone with
  d (1 − d), as {b} alone with d (1 − d);
* a true homozygote a/a as {a} with 1 − d² (written ``("a",)`` or, taken as a
  homozygote, ``("a", "a")``);
* a male at an X marker (one allele a) as {a} with 1 − d.

With d = 0 the model is exact typing.

Genotypes are ordered pairs (x, y) of allele indices (paternal, maternal);
an observation is one or two allele indices.

>>> import numpy as np
>>> x, y = np.meshgrid(np.arange(3), np.arange(3), indexing="ij")
>>> genotype_observation((0,), 0.2, x, y)[0]  # a/a, a/b, a/c with "a" seen alone
array([0.96, 0.16, 0.16])
>>> round(float(genotype_observation((0,), 0.2, x, y).sum(where=x <= y)), 12)  # hom + 2 hets
1.28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def dropout_weights(d: Any) -> tuple[Any, Any, Any]:
    """The three probabilities of the model, for a scalar or an array ``d``:
    (both alleles of a heterozygote seen = (1 − d)², a homozygote seen =
    1 − d², one allele of a heterozygote seen alone = d (1 − d)).

    >>> dropout_weights(0.1)
    (0.81, 0.99, 0.09000000000000001)
    """
    return (1.0 - d) ** 2, 1.0 - d * d, d * (1.0 - d)


def genotype_observation(obs: Sequence[int], d: float, x: ArrayLike, y: ArrayLike) -> FloatArray:
    """P(observation ``obs`` | ordered true genotype (x, y)), broadcast over
    the allele-index arrays ``x`` and ``y``.

    ``obs`` holds one allele index (the partner may have dropped out) or two
    (``(a, a)``: a homozygote, taken as such)."""
    xa, ya = np.asarray(x), np.asarray(y)
    both, hom, one = dropout_weights(d)
    if len(obs) == 2 and obs[0] != obs[1]:
        a, b = obs
        hit = ((xa == a) & (ya == b)) | ((xa == b) & (ya == a))
        return np.where(hit, both, 0.0)
    a = obs[0]
    is_hom = (xa == a) & (ya == a)
    if len(obs) == 2:
        return np.where(is_hom, hom, 0.0)
    return np.where(is_hom, hom, np.where((xa == a) ^ (ya == a), one, 0.0))


def hemizygous_observation(obs: Sequence[int], d: float, x: ArrayLike) -> FloatArray:
    """P(observation | a male's single X allele x): 1 − d when ``obs`` is
    that allele (written once or twice), 0 otherwise (two different alleles
    cannot be a male's X)."""
    xa = np.asarray(x)
    if len(set(obs)) > 1:
        return np.zeros(xa.shape)
    return np.where(xa == obs[0], 1.0 - d, 0.0)


def observed_value(table: FloatArray, obs: Sequence[int], d: float) -> float:
    """Σ over the true genotypes g of P(obs | g) · table[g], for one
    observation: ``table`` is over ordered genotypes (n × n), or over a male's
    single X allele (n,). The closed form of
    ``(genotype_observation(obs, d, x, y) * table).sum()``."""
    a = obs[0]
    if table.ndim == 1:
        return float(table[a] * hemizygous_observation(obs, d, a))
    both, hom, one = dropout_weights(d)
    if len(obs) == 2 and obs[0] != obs[1]:
        b = obs[1]
        return float(table[a, b] + table[b, a]) * both
    if len(obs) == 2:
        return float(table[a, a]) * hom
    line = float(table[a, :].sum() + table[:, a].sum() - 2.0 * table[a, a])
    return float(table[a, a]) * hom + one * line


def observed_values(
    tables: FloatArray, a: NDArray[np.int64], b: NDArray[np.int64], one_allele: NDArray[np.bool_], d: FloatArray
) -> FloatArray:
    """:func:`observed_value` for a batch of tables (B, n, n) and K
    observations at once: observation k is {a[k], b[k]} (``b[k] == a[k]``:
    a homozygote, taken as such), or with ``one_allele[k]`` allele a[k] seen
    alone; d[k] is its sample's dropout probability. Returns (B, K)."""
    B = tables.shape[0]
    out = np.zeros((B, len(a)))
    both, hom, one = dropout_weights(np.asarray(d, dtype=float))
    two = np.nonzero(~one_allele)[0]
    if len(two):
        ta, tb = a[two], b[two]
        het = ta != tb
        pair = tables[:, ta, tb] + np.where(het, tables[:, tb, ta], 0.0)
        out[:, two] = pair * np.where(het, both[two], hom[two])[None, :]
    single = np.nonzero(one_allele)[0]
    if len(single):
        sa = a[single]
        diag = tables[:, sa, sa]
        line = tables.sum(axis=2)[:, sa] + tables.sum(axis=1)[:, sa] - 2.0 * diag
        out[:, single] = hom[single][None, :] * diag + one[single][None, :] * line
    return out


__all__ = [
    "dropout_weights",
    "genotype_observation",
    "hemizygous_observation",
    "observed_value",
    "observed_values",
]
