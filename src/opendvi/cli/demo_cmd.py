"""``opendvi demo``: the main job on the bundled demo case."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from opendvi.cli.output import console, fmt_log
from opendvi.core.case import Case
from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case
from opendvi.workflows.identify import likelihoods


def demo() -> None:
    """Run opendvi on the bundled demo case (5 families, 8 remains, 23 STRs)."""
    path = demo_case_path()
    res = likelihoods(read_case(path))
    case = res.case
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
    for fam, (_fid, ll) in zip(case.families, res.families, strict=True):
        table.add_row(fam.id, ", ".join(fam.references), ", ".join(fam.missing), fmt_log(ll.total))
    out.print(table)
    _identification(case, out)
    for note in res.notes:
        out.print(f"note: {note}")


def _identification(case: Case, out: Console) -> None:
    """Pairwise LRs, undisputed identifications and the best joint solution."""
    from opendvi.cli.dvi_cmd import glr_table, joint_table, pairwise_table, tie_note, undisputed_table
    from opendvi.workflows.identify import overview

    ov = overview(case, top=5)
    out.print(pairwise_table(ov.problem, ov.pairwise,
                             title="Pairwise LR of each remains and missing person (exclusions)"))
    out.print(undisputed_table(ov.undisputed, 1e4))
    out.print(joint_table(ov.joint))
    note = tie_note(ov.joint)
    if note:
        out.print(note)
    out.print(glr_table(ov.joint))
    for g in ov.groups:
        out.print(f"Remains {', '.join(g)} match each other directly: fragments of one person.")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
