"""``opendvi pairwise``, ``opendvi solve``, ``opendvi match-remains``: DVI matching."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from opendvi.cli.output import OutputFormat, console, jnum, print_json
from opendvi.dvi import (
    UNASSIGNED,
    DVIProblem,
    JointResult,
    PairwiseResult,
    RemainsMatching,
    UndisputedResult,
    consensus_profile,
    find_undisputed,
    group_remains,
    pairwise_lr,
    solve_joint,
)
from opendvi.dvi.joint import MAX_ASSIGNMENTS
from opendvi.dvi.problem import safe_exp
from opendvi.io.case_json import read_case

LN10 = math.log(10.0)

CASE_ARG = typer.Argument(..., help="A dvi-case/1 JSON file.")
FORMAT_OPT = typer.Option(OutputFormat.table, "--format", help="table or json.")
IGNORE_SEX_OPT = typer.Option(False, "--ignore-sex", help="Pair remains with missing persons of any sex.")


def log10_of(log_lr: float | None) -> float | str | None:
    """log10 LR for JSON: null when not admissible, "-inf" for an LR of 0."""
    if log_lr is None:
        return None
    return jnum(log_lr / LN10)


def fmt_lr(log_lr: float | None) -> str:
    if log_lr is None:
        return "-"
    if log_lr == -math.inf:
        return "0"
    x = log_lr / LN10
    if -3 < x < 4:
        return f"{safe_exp(log_lr):.4g}"
    exp = math.floor(x)
    mant = 10 ** (x - exp)
    if round(mant, 2) >= 10.0:
        mant, exp = mant / 10.0, exp + 1
    return f"{mant:.2f}e{exp:+d}"


def _notes(problem: DVIProblem, output_format: OutputFormat, out: Console) -> None:
    for note in problem.notes:
        if output_format is OutputFormat.json:
            print(f"note: {note}", file=sys.stderr)
        else:
            out.print(f"note: {note}")


# -- pairwise -----------------------------------------------------------------------
def pairwise_json(problem: DVIProblem, pw: PairwiseResult) -> dict[str, Any]:
    lr: dict[str, dict[str, float | str | None]] = {}
    log10: dict[str, dict[str, float | str | None]] = {}
    excl: dict[str, dict[str, int | None]] = {}
    for rid in problem.remains:
        lr[rid], log10[rid], excl[rid] = {}, {}, {}
        for mp in problem.missing:
            v = pw.log_lr[rid].get(mp)
            lr[rid][mp] = jnum(pw.lr(rid, mp))
            log10[rid][mp] = log10_of(v)
            excl[rid][mp] = pw.exclusions[rid].get(mp)
    return {"lr": lr, "log10_lr": log10, "exclusions": excl}


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
    """Pairwise LR of every remains against every missing person, with exclusion counts."""
    problem = DVIProblem(read_case(case_file), ignore_sex=ignore_sex)
    pw = pairwise_lr(problem)
    if output_format is OutputFormat.json:
        print_json(pairwise_json(problem, pw))
        _notes(problem, output_format, console())
        return
    out = console()
    out.print(pairwise_table(problem, pw))
    out.print(
        "LR of 'remains is missing person' vs 'unrelated'; (n) = markers excluding the pairing; - = not admissible"
    )
    _notes(problem, output_format, out)


# -- solve ---------------------------------------------------------------------------
def joint_json(res: JointResult) -> list[dict[str, Any]]:
    return [
        {
            "assignment": row.assignment,
            "loglik": jnum(row.loglik),
            "lr": jnum(row.lr),
            "posterior": jnum(row.posterior),
        }
        for row in res.rows
    ]


def undisputed_json(und: UndisputedResult) -> list[dict[str, Any]]:
    return [{"family": u.family, "missing": u.missing, "remains": u.remains, "lr": jnum(u.lr)} for u in und.identified]


def undisputed_table(und: UndisputedResult, threshold: float) -> Table:
    table = Table(title=f"Undisputed identifications (LR >= {threshold:g}, row and column)", title_justify="left")
    for col in ("remains", "missing", "family", "LR", "step"):
        table.add_column(col, justify="right" if col in ("LR", "step") else "left")
    for u in und.identified:
        table.add_row(u.remains, u.missing, u.family, fmt_lr(u.log_lr), str(u.step))
    if not und.identified:
        table.add_row("(none)", "", "", "", "")
    return table


def joint_table(res: JointResult, *, rows: int | None = None, glr: bool = True) -> Table:
    table = Table(
        title=(
            f"Best joint assignments ({res.n_assignments:,} in all, {len(res.components)} "
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
        table.add_row(str(k), text, fmt_lr(row.log_lr), f"{row.posterior:.4g}")
    return table


def tie_note(res: JointResult) -> str | None:
    """A sentence when the best assignments are tied (symmetric relatives)."""
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
        elif g == math.inf:
            text = "no alternative"
        else:
            text = fmt_lr(g)
        table.add_row(rid, t if t != UNASSIGNED else "* (not among the missing)", text)
    return table


def solve(
    case_file: Path = CASE_ARG,
    output_format: OutputFormat = FORMAT_OPT,
    top: int = typer.Option(20, "--top", min=1, help="How many of the best assignments to list."),
    threshold: float = typer.Option(1e4, "--threshold", help="LR threshold of undisputed identifications."),
    lr_threshold: float = typer.Option(
        0.0, "--lr-threshold", help="Joint: keep only pairings with pairwise LR >= this (always LR > 0)."
    ),
    max_exclusions: int | None = typer.Option(
        None, "--max-exclusions", help="Joint: keep only pairings with at most this many exclusions."
    ),
    max_assignments: int = typer.Option(
        MAX_ASSIGNMENTS, "--max-assignments", help="Refuse a component with more assignments than this."
    ),
    fix_undisputed: bool = typer.Option(
        False, "--fix-undisputed", help="Place the undisputed identifications before the joint search."
    ),
    group_threshold: float = typer.Option(1e4, "--group-threshold", help="Direct-match LR linking two remains."),
    ignore_sex: bool = IGNORE_SEX_OPT,
) -> None:
    """Joint identification: best assignments with LR and posterior, undisputed identifications, fragment groups."""
    problem = DVIProblem(read_case(case_file), ignore_sex=ignore_sex)
    pw = pairwise_lr(problem)
    und = find_undisputed(problem, threshold=threshold, pairwise=pw)
    opts: dict[str, Any] = {
        "top": top,
        "lr_threshold": lr_threshold,
        "max_exclusions": max_exclusions,
        "max_assignments": max_assignments,
    }
    if fix_undisputed and und.identified:
        res = solve_joint(und.remaining, und.pairwise, fixed=und.assignment, null_loglik=problem.null_loglik(), **opts)
        res.rows = [replace(row, assignment={r: row.assignment[r] for r in problem.remains}) for row in res.rows]
    else:
        res = solve_joint(problem, pw, **opts)
    groups = group_remains(problem, threshold=group_threshold)
    if output_format is OutputFormat.json:
        print_json({"joint": joint_json(res), "undisputed": undisputed_json(und), "groups": groups.groups})
        _notes(problem, output_format, console())
        return
    out = console()
    out.print(undisputed_table(und, threshold))
    out.print(joint_table(res))
    note = tie_note(res)
    if note:
        out.print(note)
    out.print(glr_table(res))
    if groups.groups:
        out.print("Remains that are fragments of one person: " + "; ".join(", ".join(g) for g in groups.groups))
    _notes(problem, output_format, out)


# -- match-remains ---------------------------------------------------------------------
def matching_json(problem: DVIProblem, m: RemainsMatching) -> dict[str, Any]:
    pairs = [
        {"remains": [a, b], "lr": jnum(safe_exp(v)), "log10_lr": log10_of(v)}
        for (a, b), v in sorted(m.log_lr.items(), key=lambda kv: -kv[1])
        if v >= 0
    ]
    consensus = {}
    for g in m.groups:
        prof, notes = consensus_profile([problem.remains[r] for r in g])
        consensus["+".join(g)] = {
            "remains": g,
            "sex": prof.sex,
            "dropout": prof.dropout,
            "genotypes": {k: list(v) for k, v in prof.genotypes.items()},
            "notes": notes,
        }
    return {
        "threshold": m.threshold,
        "groups": m.groups,
        "pairs": pairs,
        "conflicts": [{"remains": [a, b], "log10_lr": log10_of(v)} for a, b, v in m.conflicts],
        "consensus": consensus,
        "personal_effects": [
            {"remains": r, "missing": mp, "lr": jnum(safe_exp(v)), "log10_lr": log10_of(v)}
            for (r, mp), v in sorted(m.personal_effects.items(), key=lambda kv: -kv[1])
        ],
    }


def match_remains(
    case_file: Path = CASE_ARG,
    output_format: OutputFormat = FORMAT_OPT,
    threshold: float = typer.Option(1e4, "--threshold", help="Direct-match LR that links two remains."),
) -> None:
    """Remains-to-remains: direct-match LRs, groups of fragments of one person, consensus profiles,
    and matches with personal-effects samples (family members '<missing>.self')."""
    problem = DVIProblem(read_case(case_file))
    m = group_remains(problem, threshold=threshold)
    if output_format is OutputFormat.json:
        print_json(matching_json(problem, m))
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
            prof, notes = consensus_profile([problem.remains[r] for r in g])
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
