"""``opendvi demo``: the main job on the bundled demo case."""

from __future__ import annotations

import typer
from rich.table import Table

from opendvi.cli.output import console, fmt_log
from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case


def demo() -> None:
    """Run opendvi on the bundled demo case (5 families, 8 remains, 23 STRs)."""
    path = demo_case_path()
    case, notes = read_case(path).with_unseen_alleles()
    out = console()
    out.print(f"Demo case [bold]{case.name}[/bold] ({path})")
    out.print(
        f"{len(case.markers)} markers, {len(case.remains)} remains, {len(case.families)} families, "
        f"{sum(len(f.missing) for f in case.families)} missing persons"
    )
    table = Table(title="Reference data of each family", title_justify="left")
    table.add_column("family")
    table.add_column("typed references")
    table.add_column("missing")
    table.add_column("ln L (references)", justify="right")
    for fam in case.families:
        ll = fam.loglik(case.markers, theta=case.theta)
        table.add_row(fam.id, ", ".join(fam.references), ", ".join(fam.missing), fmt_log(ll.total))
    out.print(table)
    for note in notes:
        out.print(f"note: {note}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
