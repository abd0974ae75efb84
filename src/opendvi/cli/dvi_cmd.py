"""``opendvi pairwise``, ``opendvi solve``, ``opendvi match-remains``: DVI matching."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from opendvi.cli.output import OutputFormat, console, print_json
from opendvi.io.case_json import read_case
from opendvi.workflows import identify
from opendvi.workflows.identify import MAX_ASSIGNMENTS, UNASSIGNED, Conclusion, SolveOptions
from opendvi.workflows.results import format_lr, pairwise_json, remains_json, solve_json

if TYPE_CHECKING:
    from opendvi.workflows.identify import DVIProblem, JointResult, LineagePairwise, PairwiseResult, UndisputedResult

LN10 = math.log(10.0)

CASE_ARG = typer.Argument(..., help="A dvi-case/1 JSON file.")
FORMAT_OPT = typer.Option(OutputFormat.table, "--format", help="table or json.")
IGNORE_SEX_OPT = typer.Option(False, "--ignore-sex", help="Pair remains with missing persons of any sex.")


def fmt_lr(log_lr: float | None) -> str:
    """A table cell: the LR of a natural-log LR by :func:`~opendvi.workflows.results.format_lr`; "-" when
    there is none (not admissible)."""
    return "-" if log_lr is None else format_lr(log_lr / LN10)


def _notes(problem: DVIProblem, output_format: OutputFormat, out: Console) -> None:
    for note in problem.notes:
        if output_format is OutputFormat.json:
            print(f"note: {note}", file=sys.stderr)
        else:
            out.print(f"note: {note}")


# -- pairwise -----------------------------------------------------------------------
def pairwise_table(problem: DVIProblem, pw: PairwiseResult, *, title: str = "Pairwise LR (exclusions)") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("remains")
    for mp in problem.missing:
        table.add_column(f"{mp}\n({problem.missing[mp].family})", justify="right")
    for rid in problem.remains:
        cells = []
        best = max(pw.log_lr[rid].values(), default=-math.inf)
        for mp in problem.missing:
            v = pw.log_lr[rid].get(mp)
            if v is None:
                cells.append("[dim]-[/dim]")
                continue
            text = f"{fmt_lr(v)} ({pw.exclusions[rid][mp]})"
            cells.append(f"[bold]{text}[/bold]" if v == best and v > 0 else text)
        table.add_row(rid, *cells)
    return table


def pairwise(
    case_file: Path = CASE_ARG,
    output_format: OutputFormat = FORMAT_OPT,
    ignore_sex: bool = IGNORE_SEX_OPT,
) -> None:
    """Pairwise LR of every remains against every missing person, with exclusion counts.

    With Y-STR or mtDNA evidence in the case, the LR is the combined one (autosomal × X × Y × mt) and
    each system's LR is given beside it (``lr_by_system``, ``mismatches`` in JSON)."""
    run = identify.pairwise(read_case(case_file), ignore_sex=ignore_sex)
    problem, pw, lp = run.problem, run.pairwise, run.lineage
    if output_format is OutputFormat.json:
        print_json(pairwise_json(run))
        _notes(problem, output_format, console())
        return
    out = console()
    out.print(pairwise_table(problem, pw, title="Pairwise LR (exclusions)" if lp is None
                             else f"Pairwise LR, {' × '.join(lp.systems)} (exclusions)"))
    out.print(
        "LR of 'remains is missing person' vs 'unrelated'; (n) = markers excluding the pairing; - = not admissible"
    )
    if lp is not None:
        out.print(lineage_table(lp))
    _notes(problem, output_format, out)


def lineage_table(lp: LineagePairwise) -> Table:
    """Each system's LR of every admissible pairing, and the lineage mismatches."""
    table = Table(title="LR by system (lineage mismatches)", title_justify="left")
    table.add_column("remains")
    table.add_column("missing person")
    for s in lp.systems:
        table.add_column(s, justify="right")
    table.add_column("combined", justify="right")
    for rid in lp.remains:
        for mp, by in lp.log_lr_by_system.get(rid, {}).items():
            mism = lp.mismatches[rid][mp]
            cells = [
                (fmt_lr(by[s]) + (f" ({mism[s]})" if s in mism else "")) if s in by else "-" for s in lp.systems
            ]
            table.add_row(rid, mp, *cells, fmt_lr(lp.log_lr[rid][mp]))
    return table


# -- solve ---------------------------------------------------------------------------
def undisputed_table(und: UndisputedResult, threshold: float) -> Table:
    table = Table(title=f"Undisputed identifications (LR >= {threshold:g}, row and column)", title_justify="left")
    for col in ("remains", "missing", "family", "LR", "step"):
        table.add_column(col, justify="right" if col in ("LR", "step") else "left")
    for u in und.identified:
        table.add_row(u.remains, u.missing, u.family, fmt_lr(u.log_lr), str(u.step))
    if not und.identified:
        table.add_row("(none)", "", "", "", "")
    return table


def _fmt_post(row_exact: bool, value: float, bounds: tuple[float, float]) -> str:
    if row_exact:
        return f"{value:.4g}"
    return f"[{bounds[0]:.3g}, {bounds[1]:.3g}]"


def joint_table(res: JointResult, *, rows: int | None = None, glr: bool = True) -> Table:
    n = f"{res.n_assignments:,}" if res.count_exact and res.n_assignments else f"about 10^{res.log_count / LN10:.1f}"
    table = Table(
        title=(
            f"Best joint assignments ({n} in all, {len(res.components)} "
            f"component{'' if len(res.components) == 1 else 's'})"
        ),
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("assignment (remains=missing)")
    table.add_column("LR", justify="right")
    table.add_column("posterior", justify="right")
    for k, row in enumerate(res.rows[:rows] if rows else res.rows, start=1):
        text = ", ".join(f"{r}={m}" for r, m in row.assignment.items() if m != UNASSIGNED) or "(nobody identified)"
        table.add_row(str(k), text, fmt_lr(row.log_lr), _fmt_post(row.exact, row.posterior, row.posterior_bounds))
    return table


def tie_note(res: JointResult) -> str | None:
    """A sentence when the best assignments are tied (symmetric relatives)."""
    if not res.rows:
        return None
    best = res.rows[0].loglik
    tied = [r for r in res.rows if best != -math.inf and abs(r.loglik - best) <= 1e-9 * max(1.0, abs(best))]
    if len(tied) < 2:
        return None
    more = " (or more)" if len(tied) == len(res.rows) else ""
    return (
        f"The best {len(tied)}{more} assignments are tied: the data cannot tell them apart "
        "(e.g. full siblings with only their parents typed); a GLR of 1 marks the remains concerned."
    )


def glr_table(res: JointResult) -> Table:
    table = Table(
        title="Best assignment, remains by remains (GLR: best with this call vs best without)", title_justify="left"
    )
    for col in ("remains", "call", "GLR"):
        table.add_column(col, justify="right" if col == "GLR" else "left")
    glr = res.glr()
    for rid, t in res.best.assignment.items():
        if rid in res.fixed:
            table.add_row(rid, t, "undisputed")
            continue
        g = glr.get(rid)
        if g is None:
            text = "no candidate"
        elif math.isnan(g):
            text = "not computed"
        elif g == math.inf:
            text = "no alternative"
        else:
            text = fmt_lr(g)
        table.add_row(rid, t if t != UNASSIGNED else "* (not among the missing)", text)
    return table


def summary_table(lines: list[Conclusion], *, by: str) -> Table:
    title = "Summary by remains" if by == "remains" else "Summary by family and missing person"
    table = Table(title=title, title_justify="left")
    cols = ("remains", "missing", "family") if by == "remains" else ("family", "missing", "remains")
    for col in (*cols, "conclusion", "LR", "posterior", "GLR", "comment"):
        table.add_column(col, justify="right" if col in ("LR", "posterior", "GLR") else "left")
    for c in lines:
        vals = {"remains": c.remains or "-", "missing": c.missing or "-", "family": c.family or "-"}
        post = "-" if c.posterior is None else _fmt_post(c.posterior_exact, c.posterior[0], c.posterior)
        glr = "-" if c.log_glr is None else ("no alternative" if c.log_glr == math.inf else fmt_lr(c.log_glr))
        if c.log_glr is not None and not c.glr_exact:
            glr = ">= " + glr
        table.add_row(*(vals[k] for k in cols), c.conclusion, fmt_lr(c.log_lr), post, glr, c.comment)
    return table


def components_table(res: JointResult) -> Table | None:
    big = [c for c in res.components if c.method != "enumeration"]
    if not big:
        return None
    table = Table(title="Components beyond enumeration", title_justify="left")
    for col in ("remains", "missing", "assignments", "method", "posterior error", "note"):
        table.add_column(col, justify="right" if col in ("remains", "missing", "posterior error") else "left")
    for c in big:
        n = f"10^{c.log_count / LN10:.1f}" + ("" if c.count_exact else " (at most)")
        err = "exact" if c.exact else f"<= {c.max_error:.2g}"
        table.add_row(str(len(c.remains)), str(len(c.missing)), n, c.method, err, c.message or "")
    return table


def solve(
    case_file: Path = CASE_ARG,
    output_format: OutputFormat = FORMAT_OPT,
    top: int = typer.Option(20, "--top", min=1, help="How many of the best assignments to list."),
    threshold: float = typer.Option(
        1e4, "--threshold", help="LR of undisputed identifications; LR and GLR an identification needs."
    ),
    threshold2: float | None = typer.Option(
        None, "--threshold2", help="GLR of a probable identification (default: max(1, threshold/10))."
    ),
    max_exclusions: int = typer.Option(
        2, "--max-exclusions", help="Exclusion reduction: drop pairings with more exclusions (-1: keep all)."
    ),
    lr_threshold: float = typer.Option(
        0.0, "--lr-threshold", help="Joint: keep only pairings with pairwise LR >= this (always LR > 0)."
    ),
    undisputed: bool = typer.Option(
        True, "--undisputed/--no-undisputed", help="Place the undisputed identifications before the joint step."
    ),
    fix_undisputed: bool = typer.Option(False, "--fix-undisputed", help="Kept for compatibility (now the default)."),
    min_posterior: float = typer.Option(
        0.999, "--min-posterior", help="Posterior (lower bound) an identification needs."
    ),
    max_assignments: int = typer.Option(
        MAX_ASSIGNMENTS, "--max-assignments", help="Enumerate components up to this many assignments."
    ),
    pairwise_method: str = typer.Option(
        "auto", "--pairwise", help="engine, screening, or auto (screening for large cases)."
    ),
    group_threshold: float = typer.Option(
        1e4, "--group-threshold", help="Direct-match LR linking two remains (0: no fragment grouping)."
    ),
    ignore_sex: bool = IGNORE_SEX_OPT,
) -> None:
    """The whole identification workflow (as dvir's dviSolve): exclusions, undisputed
    identifications, joint identification of the rest, a summary per remains and per family."""
    case = read_case(case_file)
    opts = SolveOptions(
        threshold=threshold,
        threshold2=threshold2,
        max_exclusions=None if max_exclusions < 0 else max_exclusions,
        lr_threshold=lr_threshold,
        undisputed=undisputed or fix_undisputed,
        top=top,
        max_assignments=max_assignments,
        min_posterior=min_posterior,
        pairwise=pairwise_method,
    )
    run = identify.solve(case, opts, ignore_sex=ignore_sex, group_threshold=group_threshold)
    sol, groups = run.solution, run.groups
    if output_format is OutputFormat.json:
        print_json(solve_json(run))
        for text in sol.notes:
            print(f"note: {text}", file=sys.stderr)
        return
    out = console()
    out.print(undisputed_table(sol.undisputed, threshold))
    out.print(joint_table(sol.joint, rows=min(top, 20)))
    note = tie_note(sol.joint)
    if note:
        out.print(note)
    comp = components_table(sol.joint)
    if comp is not None:
        out.print(comp)
    out.print(summary_table(sol.remains, by="remains"))
    out.print(summary_table(sol.missing, by="missing"))
    if groups:
        out.print("Remains that are fragments of one person: " + "; ".join(", ".join(g) for g in groups))
    for n in sol.notes:
        out.print(f"note: {n}", markup=False)


# -- match-remains ---------------------------------------------------------------------
def match_remains(
    case_file: Path = CASE_ARG,
    output_format: OutputFormat = FORMAT_OPT,
    threshold: float = typer.Option(1e4, "--threshold", help="Direct-match LR that links two remains."),
) -> None:
    """Remains-to-remains: direct-match LRs, groups of fragments of one person, consensus profiles,
    and matches with personal-effects samples (family members '<missing>.self')."""
    run = identify.match_remains(read_case(case_file), threshold=threshold)
    problem, m = run.problem, run.matching
    if output_format is OutputFormat.json:
        print_json(remains_json(run))
        _notes(problem, output_format, console())
        return
    out = console()
    table = Table(title="Direct matches between remains (LR >= 1)", title_justify="left")
    for col in ("remains", "remains ", "LR"):
        table.add_column(col, justify="right" if col == "LR" else "left")
    shown = 0
    for (a, b), v in sorted(m.log_lr.items(), key=lambda kv: -kv[1]):
        if v < 0:
            break
        table.add_row(a, b, fmt_lr(v))
        shown += 1
    if not shown:
        table.add_row("(none)", "", "")
    out.print(table)
    if m.groups:
        out.print(f"Groups (LR >= {threshold:g}, connected): " + "; ".join(", ".join(g) for g in m.groups))
        for g in m.groups:
            prof, notes = run.consensus["+".join(g)]
            out.print(f"  consensus of {'+'.join(g)}: {len(prof.genotypes)} markers, sex {prof.sex or 'unknown'}")
            for note in notes:
                out.print(f"    note: {note}")
    else:
        out.print(f"No two remains match with LR >= {threshold:g}.")
    for a, b, v in m.conflicts:
        out.print(f"conflict: {a} and {b} are in one group but their direct LR is {fmt_lr(v)}")
    if m.personal_effects:
        pe = Table(title="Remains against personal-effects samples", title_justify="left")
        for col in ("remains", "missing", "LR"):
            pe.add_column(col, justify="right" if col == "LR" else "left")
        for (r, mp), v in sorted(m.personal_effects.items(), key=lambda kv: -kv[1]):
            pe.add_row(r, mp, fmt_lr(v))
        out.print(pe)
    _notes(problem, output_format, out)


def register(app: typer.Typer) -> None:
    app.command("pairwise")(pairwise)
    app.command("solve")(solve)
    app.command("match-remains")(match_remains)
