"""The tables of one shard: rows (missing persons) ``r0 .. r1`` of a case.

``lt[r, pos]`` = ln LR of the observation code at flat position ``pos`` for
row ``r``; ``ex[r, pos]`` = 1 where that observation is a Mendelian
incompatibility once the mutation models are removed. Memory: ``(r1 - r0) *
width * 9`` bytes, whatever the size of the case.

The rules of :mod:`opendvi.core.rules` apply as in ``opendvi pairwise``: a
marker untyped in the remains or in every reference contributes LR 1; a
family whose references are impossible at a marker cannot be evaluated (its
rows are flagged in ``skip`` and never scored, with a note); a marker at
which the references are inconsistent without mutation counts as an
exclusion of every pairing with the family's missing persons, the remains
typed there or not (with a note).
"""

from __future__ import annotations

from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Family
from opendvi.core.rules import inconsistent_references_note, lr_is_one, unevaluable_family_note
from opendvi.screening._encode import KIND_UNTYPED, Encoded, log_denominator
from opendvi.screening._lineage import fill_lineage
from opendvi.screening._shapes import match_template
from opendvi.screening._tables import (
    batch_size,
    engine_table,
    exclusion_flags,
    finish_tables,
    template_tables,
    theta_codes,
)

FloatArray = NDArray[np.float64]


@dataclass
class ShardTables:
    lt: FloatArray
    ex: NDArray[np.uint8]
    #: rows (local) whose family cannot be evaluated: never scored
    skip: NDArray[np.bool_]
    n_template: int = 0
    n_engine: int = 0
    engine_calls: int = 0
    notes: list[str] = field(default_factory=list)
    #: lineage mismatches per system: (rows, haplotype codes) (``_lineage.fill_lineage``)
    lineage_mismatches: dict[str, NDArray[np.int16]] = field(default_factory=dict)
    #: what the notes say, as data (core.rules): family -> markers at which its references are
    #: impossible (the family is skipped), or inconsistent without mutation (an exclusion of each pairing)
    unevaluable: dict[str, list[str]] = field(default_factory=dict)
    inconsistent: dict[str, list[str]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.lt.nbytes + self.ex.nbytes + sum(a.nbytes for a in self.lineage_mismatches.values()))


def _member_alleles(enc: Encoded, fam: Family, cache: dict[tuple[int, str], NDArray[np.int64]],
                    fi: int, pid: str) -> NDArray[np.int64]:
    key = (fi, pid)
    arr = cache.get(key)
    if arr is None:
        nm = len(enc.markers)
        arr = np.full((nm, 2), -1, dtype=np.int64)
        g = fam.genotypes.get(pid)
        if g:
            for j, m in enumerate(enc.markers):
                gt = g.get(m.name)
                if gt:
                    idx = m.index
                    arr[j, 0] = idx[gt[0]]
                    arr[j, 1] = idx[gt[-1]]
        cache[key] = arr
    return arr


def shard_tables(enc: Encoded, r0: int, r1: int, *, use_templates: bool = True, threads: int = 1) -> ShardTables:
    """Compute the tables of rows ``r0 .. r1`` (exact; see the module docstring)."""
    R = r1 - r0
    W = enc.width
    nm = len(enc.markers)
    lt = np.zeros((R, W))
    ex = np.zeros((R, W), dtype=np.uint8)
    out = ShardTables(lt=lt, ex=ex, skip=np.zeros(R, dtype=bool))
    # the lineage columns (Python, mostly) are written in a thread of their own
    # while the markers' tables (NumPy, releasing the GIL) are made: disjoint columns
    lin_pool = ThreadPoolExecutor(max_workers=1) if enc.lineage is not None else None
    lin_job = (
        lin_pool.submit(fill_lineage, enc.lineage, enc.families, enc.row_family, enc.row_missing, r0, r1, lt)
        if lin_pool is not None and enc.lineage is not None
        else None
    )
    #: per local row and marker: references impossible / inconsistent without mutation
    bad_at = np.zeros((R, nm), dtype=bool)
    incons_at = np.zeros((R, nm), dtype=bool)
    groups: dict[Hashable, list[tuple[int, tuple[str, ...]]]] = {}
    general: list[int] = []
    typed_at = np.zeros((R, nm), dtype=bool)
    alle_cache: dict[tuple[int, str], NDArray[np.int64]] = {}
    for k in range(R):
        r = r0 + k
        fi = int(enc.row_family[r])
        fam = enc.families[fi]
        for pid, g in fam.genotypes.items():
            if g:
                typed_at[k] |= _member_alleles(enc, fam, alle_cache, fi, pid)[:, 0] >= 0
        tpl = match_template(fam, enc.row_missing[r]) if (use_templates and enc.theta == 0.0) else None
        if tpl is None:
            general.append(k)
        else:
            groups.setdefault(tpl.key, []).append((k, tpl.roles))
    lden = [log_denominator(enc.codes[j], m.p) for j, m in enumerate(enc.markers)]
    offs = enc.offsets
    # -- batched templates, one marker per task (NumPy releases the GIL in
    #    its loops, so two threads use two cores)
    prepared = []
    for key, members in groups.items():
        out.n_template += len(members)
        local = np.array([k for k, _ in members], dtype=np.int64)
        arr = np.stack(
            [
                np.stack([
                    _member_alleles(enc, enc.families[int(enc.row_family[r0 + k])], alle_cache,
                                    int(enc.row_family[r0 + k]), pid)
                    for pid in roles
                ])
                for k, roles in members
            ]
        )  # (B, n_roles, nm, 2)
        prepared.append((key, local, arr))

    def one_marker(j: int) -> None:
        m = enc.markers[j]
        n = m.n_alleles
        step = batch_size(n)
        sl = slice(int(offs[j]), int(offs[j + 1]))
        for key, local, arr in prepared:
            for s in range(0, len(local), step):
                rows = local[s : s + step]
                A = arr[s : s + step, :, j, :]
                A = np.where(A < 0, n, A)
                U = template_tables(key, A, m)
                lumped = m.has_mutation and 2 * A.shape[1] + 1 < n
                U0 = template_tables(key, A, m, mutation=False) if m.has_mutation and not lumped else U
                t, e, bad, incons = finish_tables(U, U0, enc.codes[j], lden[j])
                if lumped:
                    e, incons = exclusion_flags(key, A, m, enc.codes[j])
                    e[bad] = 0
                lt[rows, sl] = t
                ex[rows, sl] = e
                bad_at[rows, j] = bad
                incons_at[rows, j] = incons

    if prepared:
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(one_marker, range(nm)))
        else:
            for j in range(nm):
                one_marker(j)
    # -- the general engine
    for k in general:
        out.n_engine += 1
        r = r0 + k
        fam = enc.families[int(enc.row_family[r])]
        mp = enc.row_missing[r]
        sex = fam.sex_of(mp)
        for j, m in enumerate(enc.markers):
            if not typed_at[k, j]:
                continue
            sl = slice(int(offs[j]), int(offs[j + 1]))
            if enc.theta > 0.0:
                tc = theta_codes(fam, mp, m, enc.codes[j], theta=enc.theta, sex=sex)
                out.engine_calls += tc.calls
                lt[k, sl] = tc.lt
                ex[k, sl] = tc.ex
                bad_at[k, j] = tc.impossible
                incons_at[k, j] = tc.inconsistent
                continue
            U, s1 = engine_table(fam, mp, m, theta=enc.theta)
            U0, _ = engine_table(fam, mp, m, theta=enc.theta, mutation=False) if m.has_mutation else (U, s1)
            out.engine_calls += 2 if m.has_mutation else 1
            t, e, bad, incons = finish_tables(U[None], U0[None], enc.codes[j], lden[j])
            lt[k, sl] = t[0]
            ex[k, sl] = e[0]
            bad_at[k, j] = bad[0]
            incons_at[k, j] = incons[0]
    # -- markers that carry no evidence contribute LR 1 (core.rules.lr_is_one)
    for j in range(nm):
        sl = slice(int(offs[j]), int(offs[j + 1]))
        one = lr_is_one(typed_at[:, j][:, None], (enc.codes[j].kind != KIND_UNTYPED)[None, :])
        lt[:, sl][one] = 0.0
        ex[~typed_at[:, j], sl] = 0
    # -- families that cannot be evaluated; markers not counted as exclusions
    bad_at &= typed_at
    incons_at &= typed_at & ~bad_at.any(axis=1, keepdims=True)
    out.skip = np.asarray(bad_at.any(axis=1), dtype=bool)
    if lin_job is not None and lin_pool is not None:
        mms, lskip, lnotes = lin_job.result()
        lin_pool.shutdown()
        out.lineage_mismatches = mms
        out.notes.extend(lnotes)
        out.skip |= lskip
    names = [m.name for m in enc.markers]
    for k in range(R):
        fam_id = enc.families[int(enc.row_family[r0 + k])].id
        if bad_at[k].any():
            out.unevaluable[fam_id] = [names[j] for j in np.nonzero(bad_at[k])[0]]
        if out.skip[k]:
            out.notes.append(unevaluable_family_note(fam_id, [names[j] for j in np.nonzero(bad_at[k])[0]]))
        elif incons_at[k].any():
            out.inconsistent[fam_id] = [names[j] for j in np.nonzero(incons_at[k])[0]]
            out.notes.append(inconsistent_references_note(fam_id, out.inconsistent[fam_id]))
    return out
