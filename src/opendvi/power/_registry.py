"""Power of a whole registry, batched by pedigree shape, and its weak families.

Families whose pruned pedigree is a screening template
(:mod:`opendvi.screening._shapes`) are evaluated together: per shape and
marker one NumPy pass gives every family's ``P(refs, M = g)``, from which
the exact per-marker facts follow as array operations, and inclusion power
comes from one batched FFT convolution per chunk of families (the grid
method of :mod:`opendvi.power._inclusion`, with its rigorous bound per
family). A family whose interval at the level's threshold straddles the
level is recomputed on a grid twenty times finer, so that "below the level" is
decided by the bound, not by the grid. Other families (several generations,
loops, theta > 0, X markers, references with dropout) go through the
general engine one by one. Weak families get their best next relative: what
:func:`opendvi.power.family_power` with every untyped relative as a candidate
ranks first, batched by shape for template families
(:mod:`opendvi.power._next`), one by one for the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Case, Family
from opendvi.core.markers import Marker
from opendvi.core.rules import unevaluable_family_note
from opendvi.power._distribution import hardy_weinberg, marker_power, unordered
from opendvi.power._family import PowerSettings, family_power, one_family, untyped_relatives
from opendvi.power._inclusion import FFT_ERROR, THRESHOLDS, convolve_all, exact_inclusion, threshold_key
from opendvi.power._next import NextJob, best_next_batched

FloatArray = NDArray[np.float64]

#: Grid width (log10 units) of the registry's first pass, and of its refinement.
REGISTRY_GRID = 1e-2
REFINE_FACTOR = 20
#: Complex numbers one batched convolution may hold.
_FFT_BUDGET = 1 << 23
#: Weak rows per batched "next relative" pass (bounds its memory).
NEXT_CHUNK = 512


@dataclass
class RegistryRow:
    """One (family, missing person) of the registry."""

    family: str
    missing: str
    ep_total: float
    expected_mismatch: float
    e_log10_lr: float
    sd_log10_lr: float
    log10_e_lr: float
    inclusion: dict[str, float]
    inclusion_bound: dict[str, float]
    n_typed: int
    path: str  # "template" or "engine"
    weak: bool = False
    next_candidate: str | None = None
    next_e_log10_lr: float | None = None
    next_inclusion: float | None = None
    next_exclusion: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RegistryStats:
    n_rows: int = 0
    n_template: int = 0
    n_engine: int = 0
    n_refined: int = 0
    n_weak: int = 0
    n_next: int = 0
    n_skipped: int = 0
    seconds_tables: float = 0.0
    seconds_inclusion: float = 0.0
    seconds_refine: float = 0.0
    seconds_next: float = 0.0


@dataclass
class RegistryPower:
    """Every row, the level and threshold that define "weak", and what the run did."""

    rows: list[RegistryRow]
    level: float
    threshold: float
    grid: float
    stats: RegistryStats
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return threshold_key(self.threshold)

    def weak(self) -> list[RegistryRow]:
        """Rows below the level, weakest first."""
        return sorted((r for r in self.rows if r.weak), key=lambda r: (r.inclusion[self.key], r.family, r.missing))

    @property
    def fraction_weak(self) -> float:
        return sum(r.weak for r in self.rows) / len(self.rows) if self.rows else 0.0


# ---------------------------------------------------------------------------
# batched per-marker facts
# ---------------------------------------------------------------------------


@dataclass
class _Batch:
    """Per-marker facts of B families: (B, markers) arrays and the atoms."""

    ep: FloatArray
    e_lr: FloatArray
    e_l: FloatArray
    var: FloatArray
    P: list[FloatArray]  # per marker (B, G): probabilities of the atoms (0 = absent)
    L: list[FloatArray]  # per marker (B, G): log10 LR of the atoms
    kept: NDArray[np.bool_] | None = None  # (B, markers): the marker's mutation model is kept
    impossible: list[tuple[int, str]] = field(default_factory=list)


def _facts(P: FloatArray, q: FloatArray) -> tuple[FloatArray, ...]:
    pos = P > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.where(pos, P / q[None, :], 0.0)
        lv = np.where(pos, np.log10(np.where(pos, lr, 1.0)), 0.0)
    lv = np.where(np.abs(lv) < 1e-13, 0.0, lv)
    ep = np.where(pos, 0.0, q[None, :]).sum(axis=1)
    e_lr = (P * lr).sum(axis=1)
    e_l = (P * lv).sum(axis=1)
    var = np.maximum(0.0, (P * lv * lv).sum(axis=1) - e_l * e_l)
    return ep, e_lr, e_l, var, lv


def _template_batch(key: Hashable, alleles: list[NDArray[np.int64]], markers: Sequence[Marker],
                    mode: str) -> _Batch:
    """Facts of a batch of families of one template; ``alleles[j]`` (B, roles, 2), n = untyped."""
    from opendvi.screening._tables import batch_size, template_tables

    B = alleles[0].shape[0]
    nm = len(markers)
    out = _Batch(ep=np.zeros((B, nm)), e_lr=np.ones((B, nm)), e_l=np.zeros((B, nm)), var=np.zeros((B, nm)),
                 P=[], L=[], kept=np.zeros((B, nm), dtype=bool))
    assert out.kept is not None
    for j, m in enumerate(markers):
        A = alleles[j]
        step = batch_size(m.n_alleles)

        def tables(rows: NDArray[np.int64], mutation: bool, A: NDArray[np.int64] = A, m: Marker = m,
                   step: int = step) -> FloatArray:
            parts = [unordered(template_tables(key, A[rows[s : s + step]], m, mutation=mutation))
                     for s in range(0, len(rows), step)]
            return np.concatenate(parts) if parts else np.zeros((0, m.n_alleles * (m.n_alleles + 1) // 2))

        all_rows = np.arange(B)
        use_mut = m.has_mutation and mode == "kept"
        T = tables(all_rows, use_mut)
        tot = T.sum(axis=1)
        out.kept[:, j] = use_mut
        if m.has_mutation and mode == "forrel":
            redo = np.nonzero(~(tot > 0.0))[0]
            if len(redo):
                T[redo] = tables(redo, True)
                tot[redo] = T[redo].sum(axis=1)
                out.kept[redo, j] = True
        q = hardy_weinberg(m, None)
        bad = ~(tot > 0.0)
        P = T / np.where(bad, 1.0, tot)[:, None]
        if bad.any():
            P[bad] = q[None, :]  # skipped marker: LR 1 for everybody
            out.impossible.extend((int(b), m.name) for b in np.nonzero(bad)[0])
        ep, e_lr, e_l, var, lv = _facts(P, q)
        out.ep[:, j], out.e_lr[:, j], out.e_l[:, j], out.var[:, j] = ep, e_lr, e_l, var
        out.P.append(P)
        out.L.append(lv)
    return out


def batch_inclusion(P: Sequence[FloatArray], L: Sequence[FloatArray], thresholds: Sequence[float],
                    h: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Inclusion power of B families at once: ``(value, lower, upper)``, each
    (B, thresholds), by the grid method of :func:`exact_inclusion` (atoms
    with probability 0 are ignored)."""
    B = P[0].shape[0]
    const = np.zeros(B)
    K = np.zeros(B)
    ks: list[NDArray[np.int64]] = []
    los: list[int] = []
    widths: list[int] = []
    for Pj, Lj in zip(P, L, strict=True):
        pos = Pj > 0.0
        k = np.floor(Lj / h).astype(np.int64)
        n_pos = pos.sum(axis=1)
        multi = n_pos > 1
        kk = np.where(pos, k, np.iinfo(np.int64).max)
        lo = int(kk[multi].min()) if multi.any() else 0
        kk = np.where(pos, k, np.iinfo(np.int64).min)
        hi = int(kk[multi].max()) if multi.any() else 0
        single = ~multi
        if single.any():
            # one atom: an exact constant, placed at the grid's first point
            lone = (np.where(pos, Lj, 0.0)).sum(axis=1)
            const[single] += lone[single] - lo * h
            k = np.where(single[:, None], lo, k)
        K += multi
        ks.append(k - lo)
        los.append(lo)
        widths.append(hi - lo + 1)
    n = sum(w - 1 for w in widths) + 1
    rows = np.arange(B)[:, None]
    hists = []
    for Pj, kj, w in zip(P, ks, widths, strict=True):
        pos = Pj > 0.0
        flat = (rows * w + kj)[pos]
        hists.append(np.asarray(np.bincount(flat, weights=Pj[pos], minlength=B * w), dtype=np.float64).reshape(B, w))
    dens = convolve_all(hists)
    assert dens.shape[1] == n
    surv = np.concatenate([np.cumsum(dens[:, ::-1], axis=1)[:, ::-1], np.zeros((B, 1))], axis=1)
    tot = surv[:, :1]
    surv = surv / np.where(tot > 0.0, tot, 1.0)
    start = h * sum(los) + const

    def at_least(x: FloatArray) -> FloatArray:
        i = np.clip(np.ceil((x - start) / h - 1e-9).astype(np.int64), 0, n)
        return surv[np.arange(B), i]

    def above(x: FloatArray) -> FloatArray:
        i = np.clip(np.floor((x - start) / h + 1e-9).astype(np.int64) + 1, 0, n)
        return surv[np.arange(B), i]

    lg = [math.log10(t) for t in thresholds]
    lower = np.stack([at_least(np.full(B, x)) for x in lg], axis=1)
    upper = np.stack([np.where(K > 0, above(x - K * h), at_least(np.full(B, x))) for x in lg], axis=1)
    mid = np.stack([at_least(x - K * h / 2.0) for x in lg], axis=1)
    mid = np.clip(mid, lower, upper)
    return mid, lower, upper


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + size)) for s in range(0, n, size)]


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------

ProgressFn = Callable[[int, int], None]


def registry_power(
    case: Case,
    *,
    level: float = 0.9,
    threshold: float = 1e4,
    thresholds: Sequence[float] = THRESHOLDS,
    grid: float = REGISTRY_GRID,
    mutations: str = "forrel",
    next_relative: bool = True,
    next_limit: int | None = None,
    next_batched: bool = True,
    workers: int = 1,
    chunk: int = 512,
    progress: ProgressFn | None = None,
) -> RegistryPower:
    """Power of every (family, missing person) of ``case``; rows whose
    inclusion power at ``threshold`` is below ``level`` are weak, and get the
    best next relative (at most ``next_limit`` of them, weakest first).
    Rows of template families get it batched by shape
    (:func:`opendvi.power._next.best_next_batched`; ``next_batched=False``
    uses :func:`family_power` per row, the reference it equals); the others
    one by one (``workers`` > 1 spreads those over that many processes)."""
    from opendvi.screening._shapes import match_template

    if not (0.0 < level <= 1.0):
        raise ValueError(f"level must be in (0, 1], found {level}")
    ts = tuple(float(t) for t in thresholds)
    if not any(math.isclose(t, threshold) for t in ts):
        ts = tuple(sorted((*ts, float(threshold))))
    ti = next(i for i, t in enumerate(ts) if math.isclose(t, threshold))
    case, notes = case.with_unseen_alleles()
    markers = case.markers
    stats = RegistryStats()
    pairs = [(fam, mp) for fam in case.families for mp in fam.missing]
    stats.n_rows = len(pairs)
    rows: list[RegistryRow | None] = [None] * len(pairs)
    kept_at: dict[int, NDArray[np.bool_]] = {}  # template rows: per marker, the mutation model kept
    batchable = case.theta == 0.0 and not any(m.is_x for m in markers)
    groups: dict[Hashable, list[tuple[int, tuple[str, ...]]]] = {}
    engine: list[int] = []
    for r, (fam, mp) in enumerate(pairs):
        tpl = match_template(fam, mp) if batchable else None
        if tpl is None:
            engine.append(r)
        else:
            groups.setdefault(tpl.key, []).append((r, tpl.roles))
    done = 0
    keys = [threshold_key(t) for t in ts]
    fine = grid / REFINE_FACTOR

    def straddles(lower: FloatArray, upper: FloatArray) -> NDArray[np.bool_]:
        return np.asarray((lower[..., ti] < level) & (level <= upper[..., ti]))

    def finish(r: int, ep: FloatArray, e_lr: FloatArray, e_l: FloatArray, var: FloatArray, ip: FloatArray,
               lower: FloatArray, upper: FloatArray, path: str) -> None:
        fam, mp = pairs[r]
        bound = np.maximum(ip - lower, upper - ip) + FFT_ERROR
        rows[r] = RegistryRow(
            family=fam.id, missing=mp,
            ep_total=float(1.0 - np.prod(1.0 - ep)), expected_mismatch=float(ep.sum()),
            e_log10_lr=float(e_l.sum()), sd_log10_lr=float(math.sqrt(var.sum())),
            log10_e_lr=float(np.log10(e_lr[e_lr > 0]).sum()),
            inclusion={k: float(v) for k, v in zip(keys, ip, strict=True)},
            inclusion_bound={k: float(v) for k, v in zip(keys, bound, strict=True)},
            n_typed=len([p for p, g in fam.genotypes.items() if g]), path=path,
        )

    # -- template groups, in chunks of families
    for key, members in groups.items():
        for s0, s1 in _chunks(len(members), chunk):
            t0 = time.perf_counter()
            part = members[s0:s1]
            alleles = [_alleles(part, pairs, m) for m in markers]
            bt = _template_batch(key, alleles, markers, mutations)
            # families whose references are impossible at a marker cannot be evaluated (core.rules)
            bad_rows: dict[int, list[str]] = {}
            for b, mname in bt.impossible:
                if any(g.get(mname) for g in pairs[part[b][0]][0].genotypes.values()):
                    bad_rows.setdefault(b, []).append(mname)
            for b, names in bad_rows.items():
                notes.append(unevaluable_family_note(pairs[part[b][0]][0].id, names))
                stats.n_skipped += 1
            t1 = time.perf_counter()
            span = sum(float(np.ptp(Lj[Pj > 0.0])) if (Pj > 0.0).any() else 0.0 for Pj, Lj in zip(bt.P, bt.L,
                                                                                                  strict=True))
            step = max(8, _FFT_BUDGET // (int(span / grid) + 2 * len(markers) + 1))
            fine_step = max(1, _FFT_BUDGET // (int(span / fine) + 2 * len(markers) + 1))
            for c0, c1 in _chunks(len(part), step):
                ip, lo, up = batch_inclusion([Pj[c0:c1] for Pj in bt.P], [Lj[c0:c1] for Lj in bt.L], ts, grid)
                # rows whose interval straddles the level: the same atoms on a finer grid
                redo = np.nonzero(straddles(lo, up))[0]
                t2 = time.perf_counter()
                for f0, f1 in _chunks(len(redo), fine_step):
                    sel = c0 + redo[f0:f1]
                    ip2, lo2, up2 = batch_inclusion([Pj[sel] for Pj in bt.P], [Lj[sel] for Lj in bt.L], ts, fine)
                    ip[sel - c0], lo[sel - c0], up[sel - c0] = ip2, lo2, up2
                stats.n_refined += len(redo)
                stats.seconds_refine += time.perf_counter() - t2
                for b in range(c0, c1):
                    if b in bad_rows:
                        continue
                    assert bt.kept is not None
                    kept_at[part[b][0]] = bt.kept[b]
                    finish(part[b][0], bt.ep[b], bt.e_lr[b], bt.e_l[b], bt.var[b], ip[b - c0], lo[b - c0],
                           up[b - c0], "template")
            stats.seconds_tables += t1 - t0
            stats.seconds_inclusion += time.perf_counter() - t1
            stats.n_template += len(part)
            done += len(part)
            if progress is not None:
                progress(done, len(pairs))
    # -- the general engine, one family at a time
    for r in engine:
        t0 = time.perf_counter()
        fam, mp = pairs[r]
        mps = [marker_power(fam, mp, m, theta=case.theta, mode=mutations) for m in markers]
        for mpw in mps:
            notes.extend(mpw.notes)
        bad = [x.marker for x in mps if x.impossible]
        if bad:
            notes.append(unevaluable_family_note(fam.id, bad))
            stats.n_skipped += 1
            stats.seconds_tables += time.perf_counter() - t0
            done += 1
            continue
        atoms = [(x.atoms_p, x.atoms_l) for x in mps]
        inc = exact_inclusion(atoms, ts, grid=grid)
        assert inc.lower is not None and inc.upper is not None
        if straddles(inc.lower, inc.upper):
            inc = exact_inclusion(atoms, ts, grid=fine)
            stats.n_refined += 1
        assert inc.lower is not None and inc.upper is not None
        finish(r, np.array([x.ep for x in mps]), np.array([x.e_lr for x in mps]),
               np.array([x.e_log10_lr for x in mps]), np.array([x.var_log10_lr for x in mps]), inc.ip, inc.lower,
               inc.upper, "engine")
        stats.seconds_tables += time.perf_counter() - t0
        stats.n_engine += 1
        done += 1
        if progress is not None:
            progress(done, len(pairs))
    final = [r for r in rows if r is not None]
    key = threshold_key(threshold)
    for row in final:
        row.weak = row.inclusion[key] < level
    stats.n_weak = sum(r.weak for r in final)
    # -- the best next relative of each weak row
    if next_relative:
        t0 = time.perf_counter()
        weak = sorted((i for i, row in enumerate(final) if row.weak), key=lambda i: final[i].inclusion[key])
        if next_limit is not None:
            weak = weak[:next_limit]
        nset = PowerSettings(thresholds=ts, grid=grid, mutations=mutations, with_kept=False, method="exact",
                             rank_by="inclusion", rank_threshold=threshold)
        by_id = {(fam.id, mp): (r, fam) for r, (fam, mp) in enumerate(pairs)}
        jobs = []
        batched: list[tuple[int, NextJob]] = []
        for i in weak:
            r, fam = by_id[(final[i].family, final[i].missing)]
            if not untyped_relatives(fam, final[i].missing):
                continue
            if next_batched and r in kept_at:
                batched.append((i, NextJob(fam, final[i].missing, [bool(x) for x in kept_at[r]])))
            else:
                jobs.append((i, (one_family(case, fam), final[i].missing, nset, threshold)))
        parts_b = [batched[s0:s1] for s0, s1 in _chunks(len(batched), NEXT_CHUNK)]
        tasks = [([jb for _, jb in part_b], markers, mutations, ts, grid, threshold) for part_b in parts_b]
        if workers > 1 and len(tasks) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers) as pool:
                got_all = list(pool.map(_best_next_chunk, tasks))
        else:
            got_all = [_best_next_chunk(t) for t in tasks]
        for part_b, got in zip(parts_b, got_all, strict=True):
            for (i, _), best_b in zip(part_b, got, strict=True):
                if best_b is not None:
                    row = final[i]
                    row.next_candidate, row.next_e_log10_lr, row.next_inclusion, row.next_exclusion = best_b
                    stats.n_next += 1
        if workers > 1 and len(jobs) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=workers) as pool:
                found = list(pool.map(_best_next, [j for _, j in jobs], chunksize=max(1, len(jobs) // (8 * workers))))
        else:
            found = [_best_next(j) for _, j in jobs]
        for (i, _), best in zip(jobs, found, strict=True):
            row = final[i]
            row.next_candidate, row.next_e_log10_lr, row.next_inclusion, row.next_exclusion = best
            stats.n_next += 1
        stats.seconds_next = time.perf_counter() - t0
    return RegistryPower(rows=final, level=level, threshold=threshold, grid=grid, stats=stats,
                         notes=list(dict.fromkeys(notes)))


def _best_next_chunk(task: tuple[list[NextJob], Sequence[Marker], str, tuple[float, ...], float, float]
                     ) -> list[tuple[str, float, float, float] | None]:
    """The best next relatives of a chunk of template rows (a process-pool task)."""
    jobs, markers, mutations, ts, grid, threshold = task
    return best_next_batched(jobs, markers, mutations=mutations, thresholds=ts, grid=grid, threshold=threshold)


def _best_next(job: tuple[Case, str, PowerSettings, float]) -> tuple[str, float, float, float]:
    """The best next relative of one weak row (a process-pool task): its
    name, and the E[log10 LR], inclusion power and exclusion power expected
    after typing him or her."""
    case, mp, settings, threshold = job
    fam = case.families[0]
    res = family_power(case, fam, mp, candidates=[[c] for c in untyped_relatives(fam, mp)], settings=settings)
    best = res.next[0]
    return best.name, best.summary.e_log10_lr, best.summary.inclusion.at(threshold), best.summary.ep_total


def _alleles(part: Sequence[tuple[int, tuple[str, ...]]], pairs: Sequence[tuple[Family, str]],
             marker: Marker) -> NDArray[np.int64]:
    """(B, roles, 2) allele indices at ``marker`` (n = untyped) of a template batch."""
    n = marker.n_alleles
    idx = marker.index
    R = len(part[0][1])
    A = np.full((len(part), R, 2), n, dtype=np.int64)
    for b, (r, roles) in enumerate(part):
        gts = pairs[r][0].genotypes
        for k, pid in enumerate(roles):
            g = gts.get(pid)
            gt = g.get(marker.name) if g else None
            if gt:
                A[b, k, 0] = idx[gt[0]]
                A[b, k, 1] = idx[gt[-1]]
    return A
