"""``opendvi serve`` (the case-work service); ``opendvi audit verify`` is in ``data_cmd``.

The database is ``DATABASE_URL`` when set, else SQLite in ``--data-dir``
(default: ``OPENDVI_DATA_DIR`` or the user's data directory).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer


def _data_dir_option() -> Path | None:
    return typer.Option(None, "--data-dir", help="Folder of the SQLite database (DATABASE_URL wins).")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    data_dir: Path | None = _data_dir_option(),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Load the bundled demo case (operation 'demo')."),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Worker processes serving requests (default: the CPU count, at most 4)."),
    matching_worker: bool | None = typer.Option(
        None, "--matching-worker/--no-matching-worker",
        help="Start one process that executes matching runs (default: yes on SQLite; on PostgreSQL run "
             "'opendvi worker' apart)."),
) -> None:
    """Start the case-work service (web pages and JSON API) on http://HOST:PORT."""
    import uvicorn

    from opendvi.service import bootstrap
    from opendvi.service.app import MIGRATED_ENV, create_app
    from opendvi.service.settings import Settings
    from opendvi.store.db import POOL_ENV, database_url

    settings = Settings.from_env(data_dir=data_dir)
    url = database_url(url=settings.database_url, data_dir=settings.data_dir)
    app = create_app(settings=settings)
    factory = app.state.sessionmaker
    generated = bootstrap.ensure_admin(factory, password=settings.admin_password)
    if demo and bootstrap.load_demo(factory):
        typer.echo("Loaded the bundled demo case into operation 'demo'.")
    shown = url.split("@")[-1] if "@" in url else url
    typer.echo(f"Database: {shown}")
    if generated == bootstrap.EXISTS:
        typer.echo("An administrator exists already (OPENDVI_ADMIN_PASSWORD is used only for the first one).")
    elif generated:
        typer.echo("")
        typer.echo("Administrator account created. Sign in as 'admin' with this one-time password")
        typer.echo("(it is not stored anywhere; you will be asked to choose your own at the first sign-in):")
        typer.echo("")
        typer.echo(f"    {generated}")
        typer.echo("")
    else:
        typer.echo("Administrator 'admin' created with the password in OPENDVI_ADMIN_PASSWORD "
                   "(a one-time password: change it at the first sign-in).")
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.secure_cookies:
        typer.echo("warning: listening beyond this machine without secure cookies; put opendvi behind HTTPS "
                   "and set OPENDVI_ENV=production", err=True)
    typer.echo(f"opendvi is serving on http://{host}:{port}  (API docs: http://{host}:{port}/api/docs)")
    sys.stdout.flush()
    if matching_worker if matching_worker is not None else url.startswith("sqlite"):
        from opendvi.cli.worker_cmd import start_embedded_worker

        start_embedded_worker(url)  # stopped at exit; its run in progress goes back to the queue
        typer.echo("A matching worker runs beside the service.")
    n_workers = workers or default_workers()
    if n_workers > 1:
        # migrations, the first administrator and the demo ran above, once; each worker builds its own app
        # (its own engine and pool) from the environment, and the sign-in throttle lives in the database
        app.state.engine.dispose()
        if settings.data_dir is not None:
            os.environ["OPENDVI_DATA_DIR"] = str(settings.data_dir)
        os.environ[MIGRATED_ENV] = "1"
        os.environ.setdefault(POOL_ENV, str(max(10, 80 // n_workers)))  # PostgreSQL's 100 connections, shared
        typer.echo(f"{n_workers} worker processes")
        uvicorn.run("opendvi.service.app:worker_app", factory=True, workers=n_workers, host=host, port=port,
                    log_level=os.environ.get("OPENDVI_LOG_LEVEL", "warning"), proxy_headers=True,
                    timeout_keep_alive=30)
        return
    # keep-alive longer than clients' pools keep idle connections (httpx: 5 s), so that a client never
    # reuses a connection the server is closing (a reset under load); a reverse proxy's is longer still
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("OPENDVI_LOG_LEVEL", "warning"),
                proxy_headers=True, timeout_keep_alive=30)


def default_workers() -> int:
    """The CPU count (those this process may use), at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
