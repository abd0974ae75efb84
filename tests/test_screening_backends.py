"""Backends and bookkeeping: Dask == in-process, resuming, bounded memory,
the serial kernel == the parallel one, the public names."""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest

import opendvi.screening as screening
from opendvi.core.case import Case
from opendvi.core.markers import Marker
from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.screening import ScreeningError, screen, simulate_case


def default_markers() -> tuple[Marker, ...]:
    """The simulator's default markers: the demo case's 23 STRs."""
    return read_case(demo_case_path()).markers


@pytest.fixture(scope="module")
def case() -> Case:
    c, _ = simulate_case(families=60, remains=80, seed=11, markers=default_markers()[:8])
    return c


def _same(a: screening.ScreenResult, b: screening.ScreenResult) -> None:
    assert np.array_equal(a.remains, b.remains)
    assert np.array_equal(a.rows, b.rows)
    assert np.array_equal(a.log_lr, b.log_lr)  # bit for bit
    assert np.array_equal(a.exclusions, b.exclusions)
    assert np.array_equal(a.rank, b.rank)


def test_screening_all__sorted_and_every_name_exists() -> None:
    assert list(screening.__all__) == sorted(set(screening.__all__))
    assert all(hasattr(screening, n) for n in screening.__all__)


def test_screen__dask_local_cluster_equals_in_process(case: Case) -> None:
    pytest.importorskip("dask.distributed")
    ref = screen(case, top=5, threshold=1e2, shard_size=13)
    got = screen(case, top=5, threshold=1e2, shard_size=13, dask="local:2", dask_processes=False)
    _same(ref, got)
    assert got.stats.shards_computed == ref.stats.n_shards


def test_screen__serial_kernel_equals_parallel(case: Case) -> None:
    ref = screen(case, top=4, threshold=10.0, shard_size=7)
    _same(ref, screen(case, top=4, threshold=10.0, shard_size=7, parallel=False))


def test_screen__shard_size_changes_nothing(case: Case) -> None:
    """Batches of families are evaluated row by row in a fixed order (no BLAS
    blocking), so any shard size gives the same bits."""
    ref = screen(case, top=1000, threshold=None, shard_size=1000)
    for size in (7, 13):
        _same(ref, screen(case, top=1000, threshold=None, shard_size=size))


def test_screen__topk_and_threshold_semantics(case: Case) -> None:
    every = screen(case, top=1000, threshold=None)
    res = screen(case, top=3, threshold=1e3)
    by_v: dict[str, list[tuple[float, str]]] = {}
    for v, m, s, _ in every.pairs():
        by_v.setdefault(v, []).append((s, m))
    kept = {(v, m) for v, m, _, _ in res.pairs()}
    want = set()
    for v, lst in by_v.items():
        rank = {m: i for i, m in enumerate(sorted(every.missing_ids))}
        lst.sort(key=lambda t: (-t[0], rank[t[1]]))
        want |= {(v, m) for _, m in lst[:3]}
        want |= {(v, m) for s, m in lst if s >= np.log(1e3)}
    assert kept == want
    # ranks run 1..n per remains, best first
    for lst in res.candidates().values():
        scores = [c["log10_lr"] for c in lst]
        assert scores == sorted(scores, reverse=True)


def test_screen__resume_skips_finished_shards(case: Case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref = screen(case, top=5, threshold=1e2, shard_size=10)
    wd = tmp_path / "parts"
    part = screen(case, top=5, threshold=1e2, shard_size=10, work_dir=wd, stop_after=2)
    assert part.stats.shards_computed == 2
    assert len(list(wd.glob("shard-*.npz"))) == 2
    again = screen(case, top=5, threshold=1e2, shard_size=10, work_dir=wd)
    assert again.stats.shards_resumed == 2
    assert again.stats.shards_computed == ref.stats.n_shards - 2
    _same(ref, again)
    done = screen(case, top=5, threshold=1e2, shard_size=10, work_dir=wd)
    assert done.stats.shards_computed == 0
    _same(ref, done)
    # a run with other settings refuses the directory
    with pytest.raises(ScreeningError, match="another run"):
        screen(case, top=6, threshold=1e2, shard_size=10, work_dir=wd)
    assert json.loads((wd / "manifest.json").read_text())["top"] == 5


def test_screen__memory_bounded_by_shard_size() -> None:
    """Table memory is shard rows x width x 9 bytes, and the peak of NumPy
    allocations during screening does not grow with the number of families."""
    mk = default_markers()[:6]
    small, _ = simulate_case(families=60, remains=200, seed=3, markers=mk)
    large, _ = simulate_case(families=240, remains=200, seed=3, markers=mk)
    # the same remains in both: the widths match
    large = replace(large, remains=small.remains)
    peaks = []
    for c in (small, large):
        screen(c, top=5, threshold=None, shard_size=20)  # warm-up (compilation)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        res = screen(c, top=5, threshold=None, shard_size=20)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        assert res.stats.max_shard_table_bytes == 20 * res.stats.width * 9
        peaks.append(peak)
    assert peaks[1] < 1.5 * peaks[0]


def test_screening_modules__no_import_cycle() -> None:
    """The screening package's modules import each other without a cycle,
    function-local imports included (issue 11: _engine <-> _dask was one)."""
    import ast
    from pathlib import Path

    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pkg = Path(screening.__file__).parent
    names = sorted(p.stem for p in pkg.glob("*.py"))
    index = {n: i for i, n in enumerate(names)}
    edges: list[tuple[int, int]] = []
    for n in names:
        for node in ast.walk(ast.parse((pkg / f"{n}.py").read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "opendvi.screening":
                    targets = [a.name for a in node.names]
                elif node.module.startswith("opendvi.screening."):
                    targets = [node.module.rsplit(".", 1)[1]]
            edges += [(index[n], index[t]) for t in targets if t in index and t != n and n != "__init__"]
    graph = coo_matrix(([1] * len(edges), ([a for a, _ in edges], [b for _, b in edges])), shape=(len(names),) * 2)
    n_comp, _ = connected_components(graph, directed=True, connection="strong")
    assert n_comp == len(names), "a cycle among " + ", ".join(names)


def test_screen__per_marker_lrs_are_the_engines_and_sum_to_the_total(case: Case, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``per_marker=True``: each kept pairing's ln LR per marker equals the general engine's
    (``pairwise_lr(keep_markers=True)``) to 1e-9 and adds up to its total; the same with several
    shards, the serial kernel, Dask and a resumed work directory; nothing else changes."""
    from opendvi.dvi import DVIProblem, pairwise_lr

    plain = screen(case, top=3, threshold=1e3, shard_size=13)
    assert plain.log_lr_by_marker is None
    res = screen(case, top=3, threshold=1e3, shard_size=13, per_marker=True)
    _same(plain, res)
    assert res.log_lr_by_marker is not None and res.log_lr_by_marker.shape == (len(res), len(case.markers))
    assert res.markers == tuple(m.name for m in case.markers)
    finite = np.isfinite(res.log_lr)
    assert np.allclose(res.log_lr_by_marker[finite].sum(axis=1), res.log_lr[finite], rtol=0, atol=1e-9)
    kept: dict[str, list[str]] = {}
    for rid, mp, _v, _x in res.pairs():
        kept.setdefault(rid, []).append(mp)
    problem = DVIProblem(replace(case, pairings={r: tuple(v) for r, v in kept.items()}))
    pw = pairwise_lr(problem, keep_markers=True)
    for i, (rid, mp, _v, _x) in enumerate(res.pairs()):
        per = pw.per_marker[(rid, mp)]
        for j, name in enumerate(res.markers):
            want = per.get(name, 0.0)
            got = float(res.log_lr_by_marker[i, j])
            assert got == want or abs(got - want) <= 1e-9, (rid, mp, name, got, want)
    other = screen(case, top=3, threshold=1e3, shard_size=7, per_marker=True, parallel=False)
    _same(other, res)
    assert np.array_equal(other.log_lr_by_marker, res.log_lr_by_marker)
    screen(case, top=3, threshold=1e3, shard_size=13, per_marker=True, work_dir=tmp_path / "w", stop_after=2)
    resumed = screen(case, top=3, threshold=1e3, shard_size=13, per_marker=True, work_dir=tmp_path / "w")
    assert resumed.stats.shards_resumed == 2
    assert np.array_equal(resumed.log_lr_by_marker, res.log_lr_by_marker)
    if pytest.importorskip("dask.distributed"):
        got = screen(case, top=3, threshold=1e3, shard_size=13, per_marker=True, dask="local:2",
                     dask_processes=False)
        assert np.array_equal(got.log_lr_by_marker, res.log_lr_by_marker)
