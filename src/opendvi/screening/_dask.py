"""The Dask backend: shards of missing persons as tasks, the encoded remains
broadcast once, top-K lists merged on the client as shards finish.

``"local:N"`` starts a LocalCluster of N single-threaded workers;
``"tcp://HOST:PORT"`` connects to a running scheduler. Each task runs the
serial kernel (the parallelism is the cluster's), and returns the same arrays
as an in-process shard, so that the merged result is identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opendvi.screening._encode import Encoded, ScreeningError
from opendvi.screening._scoring import compute_shard


def _client(address: str, processes: bool) -> tuple[Any, Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - depends on the environment
        raise ScreeningError(
            "the Dask backend needs dask.distributed: pip install 'opendvi[screening]'"
        ) from None
    if address.startswith("local"):
        _, _, n = address.partition(":")
        try:
            workers = int(n) if n else 2
        except ValueError:
            raise ScreeningError(f"--dask local:N needs a number of workers, found {address!r}") from None
        if workers < 1:
            raise ScreeningError(f"--dask local:N needs N >= 1, found {address!r}")
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None
        )
        return Client(cluster), cluster
    if address.startswith("tcp://") or address.startswith("tls://"):
        return Client(address), None
    raise ScreeningError(f"--dask must be local:N or tcp://HOST:PORT, found {address!r}")


def _task(enc: Encoded, r0: int, r1: int, top: int, log_thr: float, use_templates: bool,
          per_marker: bool = False) -> dict[str, Any]:
    return compute_shard(enc, r0, r1, top, log_thr, parallel=False, use_templates=use_templates,
                         per_marker=per_marker)


def run_on_dask(
    address: str,
    enc: Encoded,
    specs: Sequence[tuple[int, int, int]],
    top: int,
    log_thr: float,
    finished: Callable[[int, dict[str, Any]], None],
    *,
    processes: bool = True,
    use_templates: bool = True,
    per_marker: bool = False,
) -> None:
    """Run ``specs`` (shard, first row, end row) on a Dask cluster; call
    ``finished(shard, result)`` on the client as each one completes."""
    from dask.distributed import as_completed

    client, cluster = _client(address, processes)
    try:
        if not specs:
            return
        enc_f = client.scatter(enc, broadcast=True)
        futures = []
        shard_of = {}
        for i, r0, r1 in specs:
            fut = client.submit(_task, enc_f, r0, r1, top, log_thr, use_templates, per_marker, pure=False)
            futures.append(fut)
            shard_of[fut.key] = i
        for fut, res in as_completed(futures, with_results=True):
            finished(shard_of[fut.key], res)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

