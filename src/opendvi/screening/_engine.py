"""The screening driver: shards, kernels, top-K merging, resuming, Dask."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Case
from opendvi.core.rules import safe_exp
from opendvi.screening._dask import run_on_dask
from opendvi.screening._encode import Encoded, ScreeningError, encode_case
from opendvi.screening._scoring import score_shard
from opendvi.screening._shard import ShardTables, shard_tables

#: Shard size (rows = missing persons) used when none is given.
DEFAULT_SHARD_SIZE = 5000
MANIFEST = "manifest.json"
LOCK = "lock"


@dataclass
class ScreenStats:
    """What a screening run did (for benchmarks and the progress line)."""

    n_remains: int = 0
    n_rows: int = 0
    n_markers: int = 0
    width: int = 0
    n_shards: int = 0
    shards_computed: int = 0
    shards_resumed: int = 0
    rows_template: int = 0
    rows_engine: int = 0
    engine_calls: int = 0
    seconds_tables: float = 0.0
    seconds_kernel: float = 0.0
    max_shard_table_bytes: int = 0
    lookups: int = 0

    @property
    def lookups_per_second(self) -> float:
        return self.lookups / self.seconds_kernel if self.seconds_kernel > 0 else math.nan


@dataclass
class ScreenResult:
    """The kept pairings: per remains its top-K candidates and every pairing
    at or above the threshold, best first (``rank`` 1, 2, ...).

    Arrays are parallel, sorted by remains (case order), then rank.
    """

    remains_ids: tuple[str, ...]
    missing_ids: tuple[str, ...]
    family_ids: tuple[str, ...]  # per row (missing person)
    remains: NDArray[np.int64]
    rows: NDArray[np.int64]
    log_lr: NDArray[np.float64]
    exclusions: NDArray[np.int16]
    rank: NDArray[np.int32]
    top: int
    threshold: float | None
    notes: list[str] = field(default_factory=list)
    stats: ScreenStats = field(default_factory=ScreenStats)
    #: with lineage data: the systems ("autosomal", "Y", "mt"; those of the case),
    #: ln LR per system of each kept pairing (n, len(systems)) and the
    #: mismatches of each lineage system (n, len(lineage systems))
    systems: tuple[str, ...] = ()
    log_lr_by_system: NDArray[np.float64] | None = None
    mismatches: NDArray[np.int16] | None = None
    #: with ``screen(..., per_marker=True)``: the ln LR at each marker (``markers``, the case's
    #: autosomal and X markers in order) of each kept pairing, shape (n, len(markers)); its row sums
    #: are the autosomal part of ``log_lr`` (0 at a marker the remains was not typed at)
    markers: tuple[str, ...] = ()
    log_lr_by_marker: NDArray[np.float64] | None = None
    #: the reference checks of ``core.rules`` as data (the notes say the same in words): family ->
    #: markers at which its references are impossible (skipped; autosomal and X markers), and
    #: family -> markers at which they are inconsistent without mutation
    unevaluable: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inconsistent: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def lineage_systems(self) -> tuple[str, ...]:
        return tuple(s for s in self.systems if s in ("Y", "mt"))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def log10_lr(self) -> NDArray[np.float64]:
        return self.log_lr / math.log(10.0)

    def candidates(self) -> dict[str, list[dict[str, Any]]]:
        """``{remains: [{missing, family, lr, log10_lr, exclusions}, ...]}``, best first;
        every remains is present (an empty list when it has no admissible pairing).
        With lineage data each entry adds ``lr_by_system`` (``{"autosomal": x,
        "Y": y, "mt": z}``) and ``mismatches`` (``{"Y": 1, "mt": 0}``); ``lr``
        is then the combined LR."""
        out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in self.remains_ids}
        l10 = self.log10_lr
        for i in range(len(self.rows)):
            r = int(self.rows[i])
            s = float(self.log_lr[i])
            out[self.remains_ids[int(self.remains[i])]].append(
                {
                    "missing": self.missing_ids[r],
                    "family": self.family_ids[r],
                    "lr": safe_exp(s),
                    "log10_lr": float(l10[i]),
                    "exclusions": int(self.exclusions[i]),
                }
            )
            if self.log_lr_by_system is not None and self.mismatches is not None:
                lins = self.lineage_systems
                by = self.log_lr_by_system[i]
                out[self.remains_ids[int(self.remains[i])]][-1].update(
                    lr_by_system={sy: safe_exp(float(by[j])) for j, sy in enumerate(self.systems)},
                    mismatches={sy: int(self.mismatches[i, j]) for j, sy in enumerate(lins)},
                )
        return out

    def pairs(self) -> Iterator[tuple[str, str, float, int]]:
        """(remains, missing person, ln LR, exclusions) of every kept pairing."""
        for i in range(len(self.rows)):
            yield (
                self.remains_ids[int(self.remains[i])],
                self.missing_ids[int(self.rows[i])],
                float(self.log_lr[i]),
                int(self.exclusions[i]),
            )


# ---------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------

ProgressFn = Callable[[int, int], None]


def screen(
    case: Case,
    *,
    top: int = 20,
    threshold: float | None = 1e4,
    shard_size: int = DEFAULT_SHARD_SIZE,
    work_dir: str | Path | None = None,
    fingerprint: str | None = None,
    dask: str | None = None,
    dask_processes: bool = True,
    progress: ProgressFn | None = None,
    parallel: bool = True,
    use_templates: bool = True,
    stop_after: int | None = None,
    per_marker: bool = False,
) -> ScreenResult:
    """Screen every remains against every missing person of ``case``.

    Parameters
    ----------
    top:
        Candidates kept per remains (best first).
    threshold:
        Also keep every pairing with LR >= threshold (``None``: none).
    shard_size:
        Missing persons per shard; memory grows with it, not with the case.
    work_dir:
        Directory for finished shards; a run with the same case and settings
        resumes from it (finished shards are not recomputed).
    fingerprint:
        Identifies the case for resuming (default: a hash of the encoded case).
    dask:
        ``"local:N"`` (a LocalCluster of N workers) or ``"tcp://HOST:PORT"``.
    progress:
        Called with (missing persons done, total) after each shard.
    stop_after:
        Stop after this many newly computed shards (for tests of resuming);
        the result is then partial.
    per_marker:
        Also keep each kept pairing's ln LR at every marker
        (:attr:`ScreenResult.log_lr_by_marker`), read from the shard tables;
        memory stays within the kept pairings (pruned after each shard).
    """
    if top < 0:
        raise ScreeningError(f"top must be >= 0, found {top}")
    if threshold is not None and not threshold > 0:
        raise ScreeningError(f"threshold must be a positive LR, found {threshold}")
    if shard_size < 1:
        raise ScreeningError(f"shard size must be >= 1, found {shard_size}")
    case, notes = case.with_unseen_alleles()
    enc = encode_case(case)
    notes = list(notes) + list(enc.notes)
    log_thr = math.log(threshold) if threshold is not None else math.inf
    specs = [(i, r0, min(enc.n_rows, r0 + shard_size)) for i, r0 in enumerate(range(0, enc.n_rows, shard_size))]
    stats = ScreenStats(
        n_remains=enc.n_remains, n_rows=enc.n_rows, n_markers=len(enc.markers), width=enc.width, n_shards=len(specs)
    )
    wd: Path | None = Path(work_dir) if work_dir is not None else None
    done: set[int] = set()
    if wd is not None:  # the settings (and the case's fingerprint) serve only to resume from a work dir
        settings = {
            "format": "opendvi-screen-shards/2",
            "fingerprint": fingerprint or _fingerprint(enc),
            "top": top,
            "threshold": threshold,
            "shard_size": shard_size,
            "n_shards": len(specs),
            **({"per_marker": True} if per_marker else {}),
        }
        done = _open_work_dir(wd, settings)
        _lock(wd)
    try:
        return _screen_shards(enc, specs, done, wd, top, threshold, log_thr, notes, stats, dask=dask,
                              dask_processes=dask_processes, progress=progress, parallel=parallel,
                              use_templates=use_templates, stop_after=stop_after, per_marker=per_marker)
    finally:
        if wd is not None:
            (wd / LOCK).unlink(missing_ok=True)


def _screen_shards(enc: Encoded, specs: list[tuple[int, int, int]], done: set[int], wd: Path | None, top: int,
                   threshold: float | None, log_thr: float, notes: list[str], stats: ScreenStats, *,
                   dask: str | None, dask_processes: bool, progress: ProgressFn | None, parallel: bool,
                   use_templates: bool, stop_after: int | None, per_marker: bool = False) -> ScreenResult:
    from opendvi.screening import _kernel_numba_fns as K

    state = K.new_topk(enc.n_remains, top)
    merge: Any = K.merge_topk
    thr: list[tuple[NDArray[Any], ...]] = []
    extras: list[tuple[NDArray[Any], ...]] = []
    n_key = max(1, enc.n_rows)
    # per_marker: (key = remains * n_rows + row, ln LR per marker) of the pairings kept so far
    pm: list[tuple[NDArray[np.int64], NDArray[np.float64]]] = []
    unevaluable: dict[str, tuple[str, ...]] = {}
    inconsistent: dict[str, tuple[str, ...]] = {}
    rows_done = 0

    def absorb(res: dict[str, Any]) -> None:
        nonlocal rows_done
        if enc.lineage is not None:
            for pre in ("top", "thr"):
                extras.append((res[f"{pre}_v"] * max(1, enc.n_rows) + res[f"{pre}_r"], res[f"{pre}_sys"],
                               res[f"{pre}_mis"]))
        merge(*state, res["top_v"], res["top_s"], res["top_r"], res["top_x"])
        if len(res["thr_v"]):
            thr.append((res["thr_v"], res["thr_s"], res["thr_r"], res["thr_x"]))
        if per_marker:
            pm.append((np.concatenate([res["top_v"] * n_key + res["top_r"], res["thr_v"] * n_key + res["thr_r"]]),
                       np.concatenate([res["top_pm"], res["thr_pm"]])))
            pm[:] = [_prune_markers(pm, state, thr, top, n_key)]
        notes.extend(res["notes"])
        unevaluable.update((f, tuple(m)) for f, m in res["unevaluable"].items())
        inconsistent.update((f, tuple(m)) for f, m in res["inconsistent"].items())
        stats.rows_template += int(res["n_template"])
        stats.rows_engine += int(res["n_engine"])
        stats.engine_calls += int(res["engine_calls"])
        stats.seconds_tables += float(res["seconds_tables"])
        stats.seconds_kernel += float(res["seconds_kernel"])
        stats.lookups += int(res["lookups"])
        stats.max_shard_table_bytes = max(stats.max_shard_table_bytes, int(res["table_bytes"]))
        rows_done += int(res["r1"]) - int(res["r0"])
        if progress is not None:
            progress(rows_done, enc.n_rows)

    for i, _r0, _r1 in specs:
        if i in done:
            assert wd is not None
            absorb(_load_shard(wd, i))
            stats.shards_resumed += 1
    todo = [s for s in specs if s[0] not in done]
    if stop_after is not None:
        todo = todo[:stop_after]

    def finished(i: int, res: dict[str, Any]) -> None:
        if wd is not None:
            _save_shard(wd, i, res)
        stats.shards_computed += 1
        absorb(res)

    if dask:
        run_on_dask(dask, enc, todo, top, log_thr, finished, processes=dask_processes, use_templates=use_templates,
                    per_marker=per_marker)
    else:
        _run_pipelined(enc, todo, top, log_thr, state, finished, parallel=parallel, use_templates=use_templates,
                       per_marker=per_marker)
    out = _finish(enc, state, thr, top, threshold, notes, stats)
    out.unevaluable = {f.id: unevaluable[f.id] for f in enc.families if f.id in unevaluable}
    out.inconsistent = {f.id: inconsistent[f.id] for f in enc.families if f.id in inconsistent}
    if enc.lineage is not None:
        _attach_systems(enc, out, extras)
    if per_marker:
        keys, vals = pm[0] if pm else (np.zeros(0, dtype=np.int64), np.zeros((0, len(enc.markers))))
        at = np.searchsorted(keys, out.remains * n_key + out.rows)
        if len(out) and not ((at < len(keys)).all() and (keys[np.minimum(at, len(keys) - 1)]
                                                          == out.remains * n_key + out.rows).all()):
            raise AssertionError("a kept pairing without its per-marker LRs")  # pragma: no cover
        out.markers = tuple(m.name for m in enc.markers)
        out.log_lr_by_marker = vals[at] if len(out) else np.zeros((0, len(enc.markers)))
    return out


def _prune_markers(pm: list[tuple[NDArray[np.int64], NDArray[np.float64]]], state: tuple[NDArray[Any], ...],
                   thr: list[tuple[NDArray[Any], ...]], top: int,
                   n_key: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The per-marker rows of the pairings still kept (in a top-K list or above the threshold),
    one per pairing, sorted by key."""
    keys = np.concatenate([k for k, _ in pm])
    vals = np.concatenate([v for _, v in pm])
    top_r, top_n = state[1], state[3]
    mask = np.arange(top)[None, :] < top_n[:, None]
    kept = [np.nonzero(mask)[0].astype(np.int64) * n_key + top_r[mask]]
    kept += [t[0] * n_key + t[2] for t in thr]
    ukeys, first = np.unique(keys, return_index=True)
    sel = np.isin(ukeys, np.concatenate(kept))
    return ukeys[sel], vals[first[sel]]


def screening_systems(enc: Encoded) -> tuple[str, ...]:
    """The systems of a screening with lineage data, in output order."""
    assert enc.lineage is not None
    return (("autosomal",) if enc.markers else ()) + enc.lineage.systems


def _attach_systems(enc: Encoded, res: ScreenResult, extras: list[tuple[NDArray[Any], ...]]) -> None:
    """Each kept pairing's ln LR per system and lineage mismatches, from the
    shards' lists (every kept pairing was kept by its shard)."""
    from opendvi.core.lineage_mt import mt_differences, range_intersection
    from opendvi.screening._lineage import MT_MANY

    le = enc.lineage
    assert le is not None
    systems = screening_systems(enc)
    keys = np.concatenate([e[0] for e in extras]) if extras else np.zeros(0, dtype=np.int64)
    sysv = np.concatenate([e[1] for e in extras]) if extras else np.zeros((0, len(systems)))
    misv = np.concatenate([e[2] for e in extras]) if extras else np.zeros((0, len(le.systems)), dtype=np.int16)
    ukeys, first = np.unique(keys, return_index=True)
    want = res.remains * max(1, enc.n_rows) + res.rows
    at = np.searchsorted(ukeys, want)
    if len(want) and not (at < len(ukeys)).all():  # pragma: no cover - every kept pairing comes from a shard
        raise AssertionError("a kept pairing without its systems")
    res.systems = systems
    res.log_lr_by_system = sysv[first[at]] if len(want) else np.zeros((0, len(systems)))
    mis = misv[first[at]].astype(np.int16) if len(want) else np.zeros((0, len(le.systems)), dtype=np.int16)
    if "mt" in le.systems:
        j = le.systems.index("mt")
        lin = le.lineage
        for i in np.nonzero(mis[:, j] == MT_MANY)[0]:  # two or more differences: count them
            r = int(res.rows[i])
            fam = enc.families[int(enc.row_family[r])]
            ref = le.mt_reference(fam, enc.row_missing[r])
            h = lin.mt_of(res.remains_ids[int(res.remains[i])])
            assert ref is not None and h is not None
            mis[i, j] = len(mt_differences(h, ref[0], range_intersection(h.range, ref[0].range)))
    res.mismatches = mis


def _run_pipelined(enc: Encoded, todo: list[tuple[int, int, int]], top: int, log_thr: float,
                   state: tuple[NDArray[Any], ...], finished: Callable[[int, dict[str, Any]], None], *,
                   parallel: bool, use_templates: bool, per_marker: bool = False) -> None:
    """In-process: the tables of the next shard are made in a background
    thread while the kernel (which releases the GIL) scores this one; each
    shard's kernel starts from the floors of the shards before it."""
    from concurrent.futures import Future, ThreadPoolExecutor

    def tables(r0: int, r1: int) -> tuple[ShardTables, float]:
        t = time.perf_counter()
        tabs = shard_tables(enc, r0, r1, use_templates=use_templates)
        return tabs, time.perf_counter() - t

    if not todo:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt: Future[tuple[ShardTables, float]] | None = pool.submit(tables, todo[0][1], todo[0][2])
        for k, (i, r0, r1) in enumerate(todo):
            assert nxt is not None
            tabs, secs = nxt.result()
            nxt = pool.submit(tables, todo[k + 1][1], todo[k + 1][2]) if k + 1 < len(todo) else None
            seed = (state[5], state[6]) if top > 0 else None
            finished(i, score_shard(enc, r0, r1, tabs, secs, top, log_thr, parallel=parallel, floor=seed,
                                    per_marker=per_marker))
            del tabs


def _finish(enc: Encoded, state: tuple[NDArray[Any], ...], thr: list[tuple[NDArray[Any], ...]], top: int,
            threshold: float | None, notes: list[str], stats: ScreenStats) -> ScreenResult:
    top_s, top_r, top_x, top_n = state[:4]
    mask = np.arange(top)[None, :] < top_n[:, None]
    v = np.nonzero(mask)[0].astype(np.int64)
    s, r, x = top_s[mask], top_r[mask], top_x[mask]
    if thr:
        v = np.concatenate([v] + [t[0] for t in thr])
        s = np.concatenate([s] + [t[1] for t in thr])
        r = np.concatenate([r] + [t[2] for t in thr])
        x = np.concatenate([x] + [t[3] for t in thr])
    # unique (remains, row), then order: remains, score desc, row asc
    key = v * max(1, enc.n_rows) + r
    _, first = np.unique(key, return_index=True)
    v, s, r, x = v[first], s[first], r[first], x[first]
    order = np.lexsort((r, -s, v))
    v, s, r, x = v[order], s[order], r[order], x[order]
    rank = np.zeros(len(v), dtype=np.int32)
    if len(v):
        starts = np.r_[0, np.nonzero(np.diff(v))[0] + 1]
        counts = np.diff(np.r_[starts, len(v)])
        rank = (np.arange(len(v)) - np.repeat(starts, counts) + 1).astype(np.int32)
    fam_of_row = tuple(enc.families[int(fi)].id for fi in enc.row_family)
    return ScreenResult(
        remains_ids=enc.remains_ids,
        missing_ids=enc.row_missing,
        family_ids=fam_of_row,
        remains=v,
        rows=r,
        log_lr=s,
        exclusions=x.astype(np.int16),
        rank=rank,
        top=top,
        threshold=threshold,
        notes=list(dict.fromkeys(notes)),
        stats=stats,
    )


# ---------------------------------------------------------------------------
# shard files
# ---------------------------------------------------------------------------


def _fingerprint(enc: Encoded) -> str:
    from opendvi.core.lineage_mt import variant_text

    h = hashlib.sha256()
    h.update(json.dumps([m.name for m in enc.markers]).encode())
    h.update(json.dumps([list(m.alleles) for m in enc.markers]).encode())
    h.update(np.ascontiguousarray(enc.positions).tobytes())
    h.update(enc.remains_sex.tobytes())
    h.update(json.dumps(enc.remains_ids).encode())
    h.update(json.dumps(enc.row_missing).encode())
    for fam in enc.families:
        h.update(fam.id.encode())
        h.update(json.dumps(sorted((k, sorted(v.items())) for k, v in fam.genotypes.items())).encode())
    h.update(repr(enc.theta).encode())
    if enc.lineage is not None:  # the haplotypes and databases of every person
        lin = enc.lineage.lineage
        spelt: dict[Any, str] = {}  # MtHaplotype.variants, each variant spelt once
        for pid in sorted(lin.haplotypes):
            ph = lin.haplotypes[pid]
            y = sorted(ph.y.items()) if ph.y else None
            mt = None
            if ph.mt is not None:
                mt = [list(ph.mt.range), [spelt.get(sb) or spelt.setdefault(sb, variant_text(*sb))
                                          for sb in sorted(ph.mt.sites.items())]]
            h.update(json.dumps([pid, y, mt]).encode())
        if lin.y is not None:
            h.update(json.dumps([lin.y.database.digest, [(m.name, m.rate, m.copies) for m in lin.y.markers]]).encode())
        if lin.mt is not None:
            h.update(json.dumps([lin.mt.database.digest, lin.mt.rate]).encode())
    return h.hexdigest()


def _open_work_dir(wd: Path, settings: dict[str, Any]) -> set[int]:
    wd.mkdir(parents=True, exist_ok=True)
    mf = wd / MANIFEST
    if mf.exists():
        old = json.loads(mf.read_text())
        if old != settings:
            diff = [k for k in settings if old.get(k) != settings[k]]
            raise ScreeningError(
                f"{wd}: holds shards of another run (different {', '.join(diff)}); "
                "remove the directory or choose another work directory"
            )
    else:
        tmp = mf.with_name(MANIFEST + ".tmp")
        tmp.write_text(json.dumps(settings, indent=2) + "\n")
        os.replace(tmp, mf)
    done = set()
    for p in wd.glob("shard-*.npz"):
        try:
            done.add(int(p.stem.split("-")[1]))
        except ValueError:
            continue
    return {i for i in done if i < int(settings["n_shards"])}


def _lock(wd: Path) -> None:
    """One run per work directory: a lock file holding the process id."""
    path = wd / LOCK
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid > 0 and pid != os.getpid() and _alive(pid):
                raise ScreeningError(f"{wd}: in use by another screening run (process {pid})") from None
            path.unlink(missing_ok=True)  # a stale lock (that process is gone)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return
    raise ScreeningError(f"{wd}: cannot take the lock file {path}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_ARRAYS = ("top_v", "top_s", "top_r", "top_x", "thr_v", "thr_s", "thr_r", "thr_x")
#: with lineage data: ln LR per system and lineage mismatches of the shard's kept pairings;
#: with per_marker: their ln LR per marker
_OPTIONAL_ARRAYS = ("top_sys", "top_mis", "thr_sys", "thr_mis", "top_pm", "thr_pm")


def _save_shard(wd: Path, i: int, res: dict[str, Any]) -> None:
    path = wd / f"shard-{i:06d}.npz"
    tmp = wd / f"shard-{i:06d}.tmp.npz"
    arrays = _ARRAYS + tuple(k for k in _OPTIONAL_ARRAYS if k in res)
    meta = {k: v for k, v in res.items() if k not in arrays}
    np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             **{k: res[k] for k in arrays})
    os.replace(tmp, path)


def _load_shard(wd: Path, i: int) -> dict[str, Any]:
    with np.load(wd / f"shard-{i:06d}.npz") as z:
        res: dict[str, Any] = json.loads(bytes(z["meta"]).decode())
        for k in _ARRAYS + tuple(k for k in _OPTIONAL_ARRAYS if k in z.files):
            res[k] = z[k]
    res["seconds_tables"] = 0.0
    res["seconds_kernel"] = 0.0
    res["lookups"] = 0
    return res
