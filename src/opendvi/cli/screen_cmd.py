"""``opendvi simulate`` and ``opendvi screen``: national-scale screening."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import typer
from rich.console import Console

from opendvi.cli.output import OutputFormat, console, print_json


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def simulate(
    families: int = typer.Option(..., "--families", min=1, help="Number of families (missing persons' relatives)."),
    remains: int = typer.Option(..., "--remains", min=0, help="Number of remains."),
    seed: int = typer.Option(..., "--seed", help="Random seed (explicit: the same seed gives the same case)."),
    output: Path = typer.Option(..., "-o", "--output", help="CASE.json (dvi-case/1) or CASE.npz (compact store)."),
    lineage: str = typer.Option(
        "", "--lineage", help="Also simulate lineage markers: Y, mt or Y,mt (PowerPlex Y23; mtDNA control region)."
    ),
) -> None:
    """Simulate a national case: families of realistic shapes, remains that are
    missing persons, unrelated people and fragments; 23 STRs of PowerPlex
    Fusion 6C (norSTR EuropaDB frequencies, stepwise mutation).

    A JSON case gets its truth beside it (CASE.truth.json); a store holds it
    inside. ``--lineage Y,mt`` adds Y-STR and mtDNA haplotypes and their
    databases (JSON cases only).
    """
    from opendvi.workflows.intake import simulate_to_file

    t0 = time.perf_counter()
    case = simulate_to_file(families=families, remains=remains, seed=seed, output=output, lineage=lineage).case
    n_missing = sum(len(f.missing) for f in case.families)
    console().print(
        f"wrote {output}: {len(case.families)} families, {n_missing} missing persons, "
        f"{len(case.remains)} remains, {len(case.markers)} markers ({time.perf_counter() - t0:.1f} s)"
    )


def screen(
    case_file: Path = typer.Argument(..., help="A dvi-case/1 JSON file or a .npz store (opendvi simulate)."),
    top: int = typer.Option(20, "--top", min=0, help="Candidates kept per remains."),
    threshold: float = typer.Option(1e4, "--threshold", help="Also keep every pairing with LR >= this (0: none)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="RESULTS.parquet or RESULTS.csv."),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", help="json prints the candidates (small cases)."
    ),
    shard_size: int = typer.Option(5000, "--shard-size", min=1, help="Missing persons per shard (memory)."),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Finished shards (default: RESULTS.parts beside the output); resumes from it."
    ),
    dask: str | None = typer.Option(None, "--dask", help="local:N (a local cluster) or tcp://HOST:PORT."),
    keep_parts: bool = typer.Option(False, "--keep-parts", help="Keep the shard directory after writing."),
) -> None:
    """Screen every remains against every missing person: exact pairwise LRs
    and exclusion counts; per remains the top candidates and every pairing
    above the threshold. Interrupt at will: a rerun resumes."""
    import shutil

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from opendvi.workflows.identify import screen as run_screen
    from opendvi.workflows.intake import ScreeningError, read_case_file
    from opendvi.workflows.results import screen_json, write_screen_results

    if output is None and output_format is not OutputFormat.json:
        raise ScreeningError("give -o RESULTS.parquet (or .csv), or --format json")
    if output is not None and output.suffix.lower() not in (".parquet", ".csv"):
        raise ScreeningError(f"{output}: results are written as .parquet or .csv")
    t0 = time.perf_counter()
    case = read_case_file(case_file)
    wd = work_dir
    if wd is None and output is not None:
        wd = output.with_name(output.name + ".parts")
    err = Console(stderr=True, highlight=False)
    fingerprint = _file_hash(case_file) if wd is not None else None
    quiet = output_format is OutputFormat.json
    with Progress(
        TextColumn("[bold]screening[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("missing persons"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as progress:
        task = progress.add_task("screen", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        res = run_screen(
            case,
            top=top,
            threshold=threshold if threshold > 0 else None,
            shard_size=shard_size,
            work_dir=wd,
            fingerprint=fingerprint,
            dask=dask,
            progress=on_progress,
        )
    if output is not None:
        write_screen_results(res, output)
        if wd is not None and not keep_parts and work_dir is None:
            shutil.rmtree(wd, ignore_errors=True)
    if output_format is OutputFormat.json:
        print_json(screen_json(res))
        return
    st = res.stats
    err.print(
        f"{st.n_remains} remains x {st.n_rows} missing persons x {st.n_markers} markers: "
        f"{len(res)} pairings kept -> {output} ({time.perf_counter() - t0:.1f} s; "
        f"{st.shards_resumed} shards resumed, {st.rows_engine} missing persons by the general engine)"
    )
    for note in res.notes[:20]:
        err.print(f"note: {note}", markup=False)
    if len(res.notes) > 20:
        err.print(f"note: ... and {len(res.notes) - 20} more", markup=False)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("screen")(screen)
