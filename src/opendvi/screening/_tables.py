"""Per-family, per-marker tables of ln LR over the remains' observation codes.

Two evaluators give ``U[b, x, y] = P(references, M has paternal allele x and
maternal allele y)`` (up to a constant per family) for a batch of families:

* :func:`template_tables`: NumPy, batched over families of one template
  shape (:mod:`opendvi.screening._shapes`). Every couple is summed out in
  O(n^2) per family: a leaf child's exact genotype {a, b} couples its parents
  only through ``T(a | father) T(b | mother) + T(b | father) T(a | mother)``,
  two separable terms, and ``sum_G w(G) T(x | G) = (w.sum(1) + w.sum(0)) / 2 @ M``.
  An untyped member is the allele index ``n`` ("any allele"), whose
  transmission column is all ones.
* :func:`engine_table`: the general engine
  (:func:`opendvi.core.likelihood.marker_genotype_table`), for everything
  else (several generations, loops, references with dropout); with theta,
  :func:`theta_codes`.

Both end in :func:`finish_tables`: ln LR per code, and the exclusion flags
from the same computation with the mutation models removed. The rules they
apply (the observation model, which markers count as exclusions, families
whose references are impossible) are those of :mod:`opendvi.core.rules`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Family
from opendvi.core.errors import LikelihoodError
from opendvi.core.likelihood import marker_genotype_table, marker_loglik
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype
from opendvi.core.rules import counts_as_exclusion
from opendvi.screening._encode import KIND_EXACT, KIND_ONE, MarkerCodes, code_numerators

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class _Transmission:
    """A parent's transmission matrix ``M`` (n x n) and, for look-ups, the
    columns ``MT_ext[a] = M[:, a]`` with an extra all-ones column ``n``."""

    def __init__(self, M: FloatArray | None, n: int) -> None:
        self.M = M
        ext = np.ones((n + 1, n))
        ext[:n] = np.eye(n) if M is None else np.asarray(M).T
        self.MT_ext = ext

    def tgen(self, a: IntArray) -> FloatArray:
        """``T[b, i, j] = P(parent with genotype (i, j) transmits a[b])``."""
        C = self.MT_ext[a]
        return 0.5 * (C[:, :, None] + C[:, None, :])

    def push(self, W: FloatArray) -> FloatArray:
        """``sum_{i,j} W[b, i, j] T(x | (i, j))`` for every x: (B, n)."""
        v = 0.5 * (W.sum(axis=2) + W.sum(axis=1))
        return v if self.M is None else np.einsum("bi,ij->bj", v, self.M)


def _obs(a: IntArray, b: IntArray, n: int) -> FloatArray:
    """Observation factors (B, n, n): indicator of the ordered pairs of {a, b};
    all ones for an untyped member (a == n)."""
    B = len(a)
    obs = np.zeros((B, n, n))
    typed = a < n
    idx = np.nonzero(typed)[0]
    obs[idx, a[idx], b[idx]] = 1.0
    obs[idx, b[idx], a[idx]] = 1.0
    obs[~typed] = 1.0
    return obs


class _Kid:
    """A leaf child's alleles and its parents' transmission factors for them."""

    def __init__(self, a: IntArray, b: IntArray, tf: _Transmission, tm: _Transmission) -> None:
        self.het = (a != b).astype(float)
        # father gives a / mother gives b (term 0), or the reverse (term 1)
        self.fa = (tf.tgen(a), tf.tgen(b))
        self.mo = (tm.tgen(b), tm.tgen(a))


def _terms(kids: Sequence[_Kid], B: int) -> Iterator[tuple[FloatArray, list[FloatArray], list[FloatArray]]]:
    """The 2^k separable terms of k leaf children: weight, father factors, mother factors."""
    for tau in itertools.product((0, 1), repeat=len(kids)):
        w = np.ones(B)
        ff: list[FloatArray] = []
        mf: list[FloatArray] = []
        for kid, t in zip(kids, tau, strict=True):
            if t:
                w = w * kid.het
            ff.append(kid.fa[t])
            mf.append(kid.mo[t])
        if not w.any():
            continue
        yield w, ff, mf


def _prod(base: FloatArray, factors: list[FloatArray]) -> FloatArray:
    out = base
    for f in factors:
        out = out * f
    return out


def _to_child(a_fa: FloatArray, a_mo: FloatArray, tf: _Transmission, tm: _Transmission,
              kids: Sequence[_Kid]) -> FloatArray:
    """Table over a child (x from the father, y from the mother) of a couple
    with messages ``a_fa``, ``a_mo`` (B, n, n) and leaf children ``kids``."""
    B = a_fa.shape[0]
    n = a_fa.shape[1]
    U = np.zeros((B, n, n))
    for w, ff, mf in _terms(kids, B):
        A = tf.push(_prod(a_fa, ff))
        C = tm.push(_prod(a_mo, mf))
        U += (w[:, None] * A)[:, :, None] * C[:, None, :]
    return U


def _to_parent(a_partner: FloatArray, self_is_father: bool, tf: _Transmission, tm: _Transmission,
               kids: Sequence[_Kid]) -> FloatArray:
    """Factor over one parent's genotype from a couple whose other parent
    (message ``a_partner``) is a founder, with leaf children ``kids``."""
    B = a_partner.shape[0]
    n = a_partner.shape[1]
    out = np.zeros((B, n, n))
    for w, ff, mf in _terms(kids, B):
        mine, theirs = (ff, mf) if self_is_father else (mf, ff)
        s = _prod(a_partner, theirs).sum(axis=(1, 2))
        out += (w * s)[:, None, None] * _prod(np.ones((B, n, n)), mine)
    return out


def template_tables(key: Any, alleles: NDArray[np.int64], marker: Marker,
                    *, mutation: bool = True, p_batch: FloatArray | None = None) -> FloatArray:
    """``U`` (B, n, n) for a batch of one template ``key``; ``alleles``
    (B, n_roles, 2) holds each role's allele indices at this marker (n = untyped).

    ``p_batch`` (B, n'): per-family frequencies over a family's own (lumped)
    alleles, without mutation (see :func:`exclusion_flags`).
    """
    B = alleles.shape[0]
    if p_batch is None:
        n = marker.n_alleles
        p = marker.p
        alpha0 = np.broadcast_to((p[:, None] * p[None, :])[None], (B, n, n))
    else:
        n = p_batch.shape[1]
        alpha0 = p_batch[:, :, None] * p_batch[:, None, :]
        mutation = False
    tf = _Transmission(marker.male_matrix if mutation else None, n)
    tm = _Transmission(marker.female_matrix if mutation else None, n)
    pos = iter(range(alleles.shape[1]))

    def take() -> tuple[IntArray, IntArray]:
        k = next(pos)
        return alleles[:, k, 0], alleles[:, k, 1]

    def founder_msg() -> FloatArray:
        a, b = take()
        return alpha0 * _obs(a, b, n)

    def kids(count: int) -> list[_Kid]:
        out = []
        for _ in range(count):
            a, b = take()
            out.append(_Kid(a, b, tf, tm))
        return out

    t_sex, anterior, spouse_sizes = key
    t_male = t_sex == "M"
    take()  # the target (untyped)
    post: list[FloatArray] = []
    for size in spouse_sizes:
        partner = founder_msg()
        post.append(_to_parent(partner, t_male, tf, tm, kids(size)))
    if anterior is None:
        U = np.array(alpha0)
    else:
        side_fa, side_mo, n_sibs = anterior
        msgs = []
        for (n_unc, half_sizes), is_father in ((side_fa, True), (side_mo, False)):
            a, b = take()
            if n_unc >= 0:
                g1 = founder_msg()
                g2 = founder_msg()
                msg = _to_child(g1, g2, tf, tm, kids(n_unc))
            else:
                msg = np.array(alpha0)
            msg = msg * _obs(a, b, n)
            for size in half_sizes:
                partner = founder_msg()
                msg = msg * _to_parent(partner, is_father, tf, tm, kids(size))
            msgs.append(msg)
        U = _to_child(msgs[0], msgs[1], tf, tm, kids(n_sibs))
    for f in post:
        U = U * f
    return U


def exclusion_flags(
    key: Any, alleles: NDArray[np.int64], marker: Marker, codes: MarkerCodes
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Exclusion flags (B, K) of every code (``core.rules.counts_as_exclusion``:
    the mutation-free numerator is 0, or the references alone are
    inconsistent without mutation, which flags every code, code 0 included),
    and which families' references are inconsistent without mutation (B,).

    Without mutation every partition of the alleles is exactly lumpable, so
    each family is evaluated on its own alleles (those of its members at this
    marker) plus one "other" allele that stands for all the rest: a genotype
    with an allele no member carries is possible exactly when the "other"
    allele is. This is (2 x members + 1)^2 states instead of n^2.
    ``alleles`` as for :func:`template_tables` (n = untyped).
    """
    n = marker.n_alleles
    B, R = alleles.shape[0], alleles.shape[1]
    flat = np.sort(alleles.reshape(B, 2 * R), axis=1)
    first = np.ones(flat.shape, dtype=bool)
    first[:, 1:] = flat[:, 1:] != flat[:, :-1]
    first &= flat < n
    lid = np.cumsum(first, axis=1) - 1
    k = int(first.sum(axis=1).max(initial=0))
    other, any_ = k, k + 1
    local = np.full((B, n + 1), other, dtype=np.int64)
    rows = np.nonzero(flat < n)
    local[rows[0], flat[rows]] = lid[rows]
    local[:, n] = any_
    p_loc = np.zeros((B, k + 1))
    obs = np.nonzero(first)
    p_loc[obs[0], lid[obs]] = marker.p[flat[obs]]
    p_loc[:, other] = np.maximum(0.0, 1.0 - p_loc[:, :other].sum(axis=1))
    bi = np.arange(B)[:, None]
    la = local[bi, alleles[:, :, 0]]
    lb = local[bi, alleles[:, :, 1]]
    U0 = template_tables(key, np.stack([la, lb], axis=2), marker, p_batch=p_loc)
    ca = local[:, codes.a]  # (B, K)
    cb = local[:, codes.b]
    zero = np.zeros((B, len(codes)), dtype=bool)
    ex_i = np.nonzero(codes.kind == KIND_EXACT)[0]
    if len(ex_i):
        a, b = ca[:, ex_i], cb[:, ex_i]
        zero[:, ex_i] = (U0[bi, a, b] + U0[bi, b, a]) == 0.0
    one_i = np.nonzero(codes.kind == KIND_ONE)[0]
    if len(one_i):
        line = U0.sum(axis=2) + U0.sum(axis=1)
        zero[:, one_i] = line[bi, ca[:, one_i]] == 0.0
    zero[:, 0] = False
    incons = ~(U0.sum(axis=(1, 2)) > 0.0)
    return counts_as_exclusion(~zero, ~incons[:, None]).astype(np.uint8), incons


def engine_table(fam: Family, target: str, marker: Marker, *, theta: float,
                 mutation: bool = True) -> tuple[FloatArray, float]:
    """``(U, log_scale)`` from the general engine: P(refs, target = (x, y))."""
    mk = marker if mutation else marker.without_mutation()
    gts = {pid: g[marker.name] for pid, g in fam.genotypes.items() if g.get(marker.name)}
    tab = marker_genotype_table(fam.pedigree, mk, gts, target, theta=theta, dropout=fam.dropout)
    return tab.table, tab.log_scale


def _per_code(ped: Pedigree, marker: Marker, gts: dict[str, Genotype], who: str, codes: MarkerCodes,
              theta: float, dropout: dict[str, float]) -> FloatArray:
    """ln P(refs, ``who`` observed as each code): one engine call per code."""
    out = np.zeros(len(codes))
    for c in range(1, len(codes)):
        a, b = int(codes.a[c]), int(codes.b[c])
        gt = (marker.alleles[a],) if codes.kind[c] == KIND_ONE else (marker.alleles[a], marker.alleles[b])
        d = float(codes.d[c])
        out[c] = marker_loglik(ped, marker, {**gts, who: gt}, theta=theta,
                               dropout={**dropout, who: d} if d else dropout)
    return out


def _joint_codes(ped: Pedigree, marker: Marker, gts: dict[str, Genotype], who: str, codes: MarkerCodes,
                 theta: float, dropout: dict[str, float]) -> tuple[FloatArray, int]:
    """ln P(refs, ``who``'s observation) per code (0 for code 0), and the
    engine calls made: one genotype table when the engine can make it,
    else one call per code (the engine's theta path limits the size of the
    founder-allele table, which a table over every allele of the marker can
    exceed where a direct evaluation, with lumping, does not)."""
    try:
        tab = marker_genotype_table(ped, marker, gts, who, theta=theta, dropout=dropout)
    except (LikelihoodError, ValueError):
        return _per_code(ped, marker, gts, who, codes, theta, dropout), len(codes) - 1
    with np.errstate(divide="ignore"):
        out = np.log(code_numerators(tab.table[None], codes)[0]) + tab.log_scale
    out[0] = 0.0
    return out, 1


@dataclass
class ThetaCodes:
    """:func:`theta_codes` for one missing person and marker."""

    lt: FloatArray
    ex: NDArray[np.uint8]
    calls: int
    #: the references alone are impossible (the family cannot be evaluated)
    impossible: bool
    #: the references alone are inconsistent without mutation
    inconsistent: bool


def theta_codes(fam: Family, target: str, marker: Marker, codes: MarkerCodes, *, theta: float,
                sex: str | None) -> ThetaCodes:
    """With theta > 0, for one missing person and marker: ln LR per code
    (the denominator with V an extra unrelated founder of the pedigree,
    theta applied jointly), the exclusion flags, the engine calls made, and
    whether the references alone are impossible, or inconsistent without
    mutation."""
    gts = {pid: g[marker.name] for pid, g in fam.genotypes.items() if g.get(marker.name)}
    drop = dict(fam.dropout)
    impossible = marker_loglik(fam.pedigree, marker, gts, theta=theta, dropout=drop) == -np.inf
    num, c1 = _joint_codes(fam.pedigree, marker, gts, target, codes, theta, drop)
    vid = "__screening_V__"
    ped = fam.pedigree.add(Individual(vid, sex=sex or "M"))
    den, c2 = _joint_codes(ped, marker, gts, vid, codes, theta, drop)
    calls = c1 + c2 + 1
    inconsistent = impossible
    if marker.has_mutation:
        m0 = marker.without_mutation()
        num0, c3 = _joint_codes(fam.pedigree, m0, gts, target, codes, theta, drop)
        inconsistent = marker_loglik(fam.pedigree, m0, gts, theta=theta, dropout=drop) == -np.inf
        calls += c3 + 1
    else:
        num0 = num
    with np.errstate(invalid="ignore"):
        lt = num - den
    lt[0] = 0.0
    ex = counts_as_exclusion(num0 != -np.inf, not inconsistent).astype(np.uint8)
    ex[0] = inconsistent
    return ThetaCodes(lt, ex, calls, bool(impossible), bool(inconsistent))


def finish_tables(
    U: FloatArray, U0: FloatArray, codes: MarkerCodes, lden: FloatArray
) -> tuple[FloatArray, NDArray[np.uint8], NDArray[np.bool_], NDArray[np.bool_]]:
    """ln LR per code (B, K) and exclusion flags (B, K) from ``U`` (with
    mutation) and ``U0`` (without), both (B, n, n), theta = 0. The third
    result flags families whose references are impossible at this marker
    (P(refs) = 0: the family cannot be evaluated, its row is left at 0), the
    fourth families whose references are inconsistent without mutation
    (every code counts as an exclusion there, code 0 included:
    ``core.rules.counts_as_exclusion``)."""
    P = U.sum(axis=(1, 2))
    num = code_numerators(U, codes)
    bad = ~(P > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lt = np.log(num) - np.log(P)[:, None] - lden[None, :]
    lt[:, 0] = 0.0
    if U0 is U:
        num0, incons = num, bad
    else:
        num0, incons = code_numerators(U0, codes), ~(U0.sum(axis=(1, 2)) > 0.0)
    ex = counts_as_exclusion(num0 > 0.0, ~incons[:, None]).astype(np.uint8)
    ex[:, 0] = incons
    if bad.any():
        lt[bad] = 0.0
        ex[bad] = 0
    return lt, ex, bad, incons


def batch_size(n: int, budget: int = 1 << 18) -> int:
    """Families per NumPy batch so that one (B, n, n) array stays near ``budget`` elements."""
    return max(16, budget // max(1, n * n))


__all__ = [
    "ThetaCodes",
    "engine_table",
    "exclusion_flags",
    "finish_tables",
    "template_tables",
    "theta_codes",
]
