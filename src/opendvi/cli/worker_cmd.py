"""``opendvi worker``: the processes that execute matching runs (``docs/service.md``, *Matching runs*).

``opendvi serve`` starts one itself on the embedded default (SQLite); for a
PostgreSQL deployment run them apart, as many as wanted: the runs are taken
with ``FOR UPDATE SKIP LOCKED``, so two workers never execute the same run.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

import typer

from opendvi.service.priority import lower_priority


def worker(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder of the SQLite database "
                                                                   "(DATABASE_URL wins)."),
    processes: int = typer.Option(1, "--processes", min=1, max=64, help="Worker processes to run."),
    once: bool = typer.Option(False, "--once", help="Execute the queued runs, then exit."),
    lease: float | None = typer.Option(None, "--lease-seconds", min=2.0,
                                       help="A run whose worker sent no heartbeat for this long is queued again "
                                            "(default 60, or OPENDVI_JOB_LEASE_S)."),
    parent_pid: int | None = typer.Option(None, "--parent-pid", hidden=True,
                                          help="Stop when this process (opendvi serve) is gone."),
) -> None:
    """Execute queued matching runs (until SIGTERM or Ctrl-C; a run in progress goes back to the queue)."""
    import logging

    lower_priority()
    from dataclasses import replace

    from opendvi.service.worker import WorkerConfig, run_forever
    from opendvi.store.db import database_url

    logging.basicConfig(level=os.environ.get("OPENDVI_LOG_LEVEL", "warning").upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    url = database_url(data_dir=data_dir)
    cfg = WorkerConfig.from_env()
    if lease is not None:
        cfg = replace(cfg, lease_s=lease, heartbeat_s=min(cfg.heartbeat_s, lease / 4))
    if processes == 1:
        run_forever(url, config=cfg, once=once, parent_pid=parent_pid)
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_forever, args=(url,), kwargs={"config": cfg, "once": once})
             for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(30)


def start_embedded_worker(url: str) -> subprocess.Popen[bytes]:
    """One ``opendvi worker`` process on ``url`` for ``opendvi serve``, stopped (SIGTERM: its run goes
    back to the queue) when the service exits."""
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "worker", "--parent-pid", str(os.getpid())],
                            env=env)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    atexit.register(stop)
    return proc


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
