"""``opendvi likelihood``: the pedigree likelihood of every family of a case."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from opendvi.cli.output import OutputFormat, console, fmt_log, print_json
from opendvi.io.case_json import read_case
from opendvi.workflows.identify import likelihoods
from opendvi.workflows.results import likelihood_json


def likelihood(
    case_file: Path = typer.Argument(..., help="A dvi-case/1 JSON file."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json."),
) -> None:
    """Natural-log likelihood of each family's reference data, per marker and in total."""
    res = likelihoods(read_case(case_file))
    if output_format is OutputFormat.json:
        print_json(likelihood_json(res))
        return
    out = console()
    for fid, ll in res.families:
        table = Table(title=f"Family {fid}: ln L = {fmt_log(ll.total)}", title_justify="left")
        table.add_column("marker")
        table.add_column("ln L", justify="right")
        for m, v in ll.per_marker.items():
            table.add_row(m, fmt_log(v))
        out.print(table)
    for note in res.notes:
        out.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.command("likelihood")(likelihood)
