"""``opendvi power``: how well each family's references can identify its
missing person, and which relative to type next (``docs/power.md``)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opendvi.cli.output import OutputFormat, console, print_json


def _parse_candidates(text: str | None) -> list[list[str]]:
    """"Uncle,HalfSib,PGF+PGM" -> [["Uncle"], ["HalfSib"], ["PGF", "PGM"]]."""
    if not text:
        return []
    out = []
    for part in text.split(","):
        names = [x.strip() for x in part.split("+") if x.strip()]
        if names:
            out.append(names)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def power(
    case_file: Path = typer.Argument(..., help="A dvi-case/1 JSON file or a .npz store (opendvi simulate)."),
    candidates: str | None = typer.Option(
        None, "--candidates", help="Untyped relatives to rank as the next sample, by pedigree id: "
        "Uncle,HalfSib (each alone) or PGF+PGM (a set typed together)."),
    family: list[str] = typer.Option([], "--family", help="Only this family (repeatable)."),
    method: str = typer.Option("auto", "--method", help="auto, exact (grid convolution with a bound) or simulation."),
    nsim: int = typer.Option(100_000, "--nsim", min=1, help="Draws when simulating."),
    seed: int = typer.Option(1, "--seed", help="Random seed when simulating."),
    grid: float = typer.Option(2e-4, "--grid", help="Grid width in log10 units of the exact method."),
    mutations: str = typer.Option(
        "forrel", "--mutations", help="forrel (drop a marker's mutation model where the references are "
        "consistent without it) or kept."),
    rank_by: str = typer.Option("e_log10_lr", "--rank-by", help="e_log10_lr, inclusion (at 1e4) or exclusion."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json."),
) -> None:
    """Exclusion power, the LR distribution of the true missing person and
    inclusion power P(LR >= 1 .. 1e6) of every family; with --candidates, the
    expected power after typing each candidate, best first."""
    from opendvi.workflows.intake import read_case_file
    from opendvi.workflows.planning import PowerSettings, plan_case
    from opendvi.workflows.results import power_json

    case = read_case_file(case_file)
    settings = PowerSettings(method=method, nsim=nsim, seed=seed, grid=grid, mutations=mutations, rank_by=rank_by)
    planned = plan_case(case, families=family or None, candidates=_parse_candidates(candidates), settings=settings)
    results = planned.results
    for note in planned.skipped:  # families that cannot be evaluated (core.rules), on stderr in both formats
        Console(stderr=True, highlight=False).print(f"note: {note}", markup=False)
    if output_format is OutputFormat.json:
        print_json(power_json(results))
        return
    out = console()
    for r in results:
        s = r.summary
        inc = s.inclusion
        err = inc.bound if inc.method == "exact" else inc.se
        assert err is not None
        how = (f"exact, bound {float(err.max()):.1g}" if inc.method == "exact"
               else f"simulation, {inc.nsim} draws, seed {inc.seed}, se <= {float(err.max()):.1g}")
        out.print(f"[bold]Family {r.family}, missing person {r.missing}[/bold]")
        out.print(
            f"exclusion power {s.ep_total:.6f} (expected excluding markers {s.expected_mismatch:.2f}); "
            f"E[log10 LR] {s.e_log10_lr:.2f} (sd {s.sd_log10_lr:.2f}); "
            f"log10 E[LR] {s.log10_e_lr:.2f}", markup=False
        )
        t = Table(title=f"inclusion power P(LR >= t) ({how})", title_justify="left")
        for key in inc.as_dict():
            t.add_column(key, justify="right")
        t.add_row(*(_pct(v) for v in inc.as_dict().values()))
        out.print(t)
        mt = Table(title="per marker", title_justify="left")
        for col in ("marker", "exclusion", "E[LR]", "E[log10 LR]", "sd", "mutation"):
            mt.add_column(escape(col), justify="left" if col in ("marker", "mutation") else "right")
        for m in s.markers:
            mt.add_row(m.marker, f"{m.ep:.4f}", f"{m.e_lr:.4g}", f"{m.e_log10_lr:.3f}",
                       f"{math.sqrt(m.var_log10_lr):.3f}", m.mutation)
        out.print(mt)
        for term in s.lineage:  # Y-STR / mtDNA: independent of the markers, in the totals above
            how = "exact" if term.method == "exact" else f"simulation, {term.nsim} draws, seed {term.seed}"
            out.print(f"lineage {term.system}: E[log10 LR] {term.e_log10_lr:.3f} "
                      f"(sd {math.sqrt(term.var_log10_lr):.3f}), E[LR] {term.e_lr:.4g}; "
                      f"the line of {term.reference} ({term.links} links; {how})", markup=False)
        if r.next:
            nt = Table(title="next relative to type (expected after typing, best first)", title_justify="left")
            for col in ("rank", "candidate", "exclusion", "E[log10 LR]", "IP(1e4)", "lineage E[log10 LR]"):
                nt.add_column(escape(col), justify="left" if col == "candidate" else "right")
            for k, c in enumerate(r.next, start=1):
                nt.add_row(str(k), c.name, f"{c.summary.ep_total:.6f}", f"{c.summary.e_log10_lr:.2f}",
                           _pct(c.summary.inclusion.at(1e4)) if 1e4 in c.summary.inclusion.thresholds else "-",
                           ", ".join(f"{t.system} {t.e_log10_lr:.2f}" for t in c.summary.lineage) or "-")
            out.print(nt)
        for note in r.notes:
            out.print(f"note: {note}", markup=False)


ROW_FIELDS = ("family", "missing", "n_typed", "ep_total", "expected_mismatch", "e_log10_lr", "sd_log10_lr",
              "inclusion", "bound", "weak", "next_candidate", "next_inclusion", "next_e_log10_lr", "next_exclusion",
              "path")


def power_registry(
    case_file: Path = typer.Argument(..., help="A dvi-case/1 JSON file or a .npz store (opendvi simulate)."),
    level: float = typer.Option(0.9, "--level", help="A family is weak when P(LR >= threshold) is below this."),
    threshold: float = typer.Option(1e4, "--threshold", help="The LR threshold of the level."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write every family's row to a .csv file."),
    next_limit: int | None = typer.Option(
        None, "--next-limit", min=0, help="Best next relative for at most this many weak families (weakest first)."),
    grid: float = typer.Option(1e-2, "--grid", help="Grid width in log10 units of the first pass."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes for the next-relative pass."),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json (weak families)."),
) -> None:
    """Power of every family of a registry, batched by pedigree shape; the
    families too weak to identify their missing person (inclusion power at
    the threshold below the level), each with its best next relative."""
    import csv
    import time

    from opendvi.workflows.intake import read_case_file
    from opendvi.workflows.planning import plan_registry
    from opendvi.workflows.results import registry_json

    t0 = time.perf_counter()
    case = read_case_file(case_file)
    res = plan_registry(case, level=level, threshold=threshold, grid=grid, next_limit=next_limit, workers=workers)
    key = res.key
    if output is not None:
        with open(output, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(ROW_FIELDS)
            for r in res.rows:
                w.writerow([r.family, r.missing, r.n_typed, f"{r.ep_total:.10g}", f"{r.expected_mismatch:.6g}",
                            f"{r.e_log10_lr:.6g}", f"{r.sd_log10_lr:.6g}", f"{r.inclusion[key]:.6g}",
                            f"{r.inclusion_bound[key]:.2g}", int(r.weak), r.next_candidate or "",
                            "" if r.next_inclusion is None else f"{r.next_inclusion:.6g}",
                            "" if r.next_e_log10_lr is None else f"{r.next_e_log10_lr:.6g}",
                            "" if r.next_exclusion is None else f"{r.next_exclusion:.10g}", r.path])
    weak = res.weak()
    if output_format is OutputFormat.json:
        print_json(registry_json(res, level=level, threshold=threshold))
        return
    err = Console(stderr=True, highlight=False)
    st = res.stats
    err.print(f"{st.n_rows} missing persons: {st.n_weak} weak ({100 * res.fraction_weak:.1f} %) at "
              f"P(LR >= {threshold:g}) < {level:g}; {st.n_template} by shape, {st.n_engine} by the general engine, "
              f"{st.n_refined} refined; {time.perf_counter() - t0:.1f} s", markup=False)
    out = console()
    t = Table(title=f"weak families (P(LR >= {threshold:g}) < {level:g}), weakest first", title_justify="left")
    for col in ("family", "missing", "typed", "IP", "E[log10 LR]", "next relative", "IP after", "E after"):
        t.add_column(escape(col), justify="left" if col in ("family", "missing", "next relative") else "right")
    for r in weak[:50]:
        t.add_row(r.family, r.missing, str(r.n_typed), _pct(r.inclusion[key]), f"{r.e_log10_lr:.2f}",
                  r.next_candidate or "-", "-" if r.next_inclusion is None else _pct(r.next_inclusion),
                  "-" if r.next_e_log10_lr is None else f"{r.next_e_log10_lr:.2f}")
    out.print(t)
    if len(weak) > 50:
        out.print(f"... and {len(weak) - 50} more" + (f" (all in {output})" if output else ""), markup=False)
    for note in res.notes[:20]:
        err.print(f"note: {note}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("power")(power)
    app.command("power-registry")(power_registry)
