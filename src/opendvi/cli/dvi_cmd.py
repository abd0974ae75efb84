"""``opendvi pairwise``, ``opendvi solve``, ``opendvi match-remains``: DVI matching."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from opendvi.cli.output import OutputFormat, console, jnum, print_json
from opendvi.dvi import (
    UNASSIGNED,
    Component,
    DVIProblem,
    JointResult,
    PairwiseResult,
    RemainsMatching,
    UndisputedResult,
    consensus_profile,
    group_remains,
    pairwise_lr,
)
from opendvi.dvi.joint import MAX_ASSIGNMENTS
from opendvi.dvi.problem import safe_exp
from opendvi.dvi.workflow import (
    EXCLUDED,
    IDENTIFIED,
    PROBABLE,
    UNDECIDED,
    Conclusion,
    Solution,
    SolveOptions,
    solve_case,
)
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


def _with_lineage(problem: DVIProblem, pw: PairwiseResult) -> tuple[PairwiseResult, Any]:
    """With lineage evidence in the case (``shared/design/lineage.md``): the combined LR (autosomal × X × Y
    × mt) in place of ``pw``'s, and the :class:`~opendvi.dvi.lineage.LineagePairwise` with each system's."""
    from opendvi.dvi.lineage import lineage_pairwise

    lp = lineage_pairwise(problem, autosomal=pw)
    combined = PairwiseResult(remains=pw.remains, missing=pw.missing)
    for rid in problem.remains:
        combined.log_lr[rid] = dict(lp.log_lr.get(rid, {}))
        combined.exclusions[rid] = dict(pw.exclusions[rid])
    return combined, lp


def pairwise(
    case_file: Path = CASE_ARG,
    output_format: OutputFormat = FORMAT_OPT,
    ignore_sex: bool = IGNORE_SEX_OPT,
) -> None:
    """Pairwise LR of every remains against every missing person, with exclusion counts.

    With Y-STR or mtDNA evidence in the case, the LR is the combined one (autosomal × X × Y × mt) and
    each system's LR is given beside it (``lr_by_system``, ``mismatches`` in JSON)."""
    problem = DVIProblem(read_case(case_file), ignore_sex=ignore_sex)
    lineage = problem.case.lineage is not None
    pw = pairwise_lr(problem, keep_markers=lineage)
    lp = None
    if lineage:
        pw, lp = _with_lineage(problem, pw)
    if output_format is OutputFormat.json:
        doc = pairwise_json(problem, pw)
        if lp is not None:
            extra = lp.to_json()
            doc["systems"] = list(lp.systems)
            doc["lr_by_system"] = extra["lr_by_system"]
            doc["mismatches"] = extra["mismatches"]
        print_json(doc)
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


def lineage_table(lp: Any) -> Table:
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
def _interval(b: tuple[float, float] | None) -> list[float] | None:
    return None if b is None else [float(b[0]), float(b[1])]


def joint_json(res: JointResult) -> list[dict[str, Any]]:
    out = []
    for row in res.rows:
        item: dict[str, Any] = {
            "assignment": row.assignment,
            "loglik": jnum(row.loglik),
            "lr": jnum(row.lr),
            "posterior": jnum(row.posterior) if row.exact else None,
        }
        if not row.exact:
            item["posterior_interval"] = _interval(row.posterior_bounds)
        out.append(item)
    return out


def undisputed_json(und: UndisputedResult) -> list[dict[str, Any]]:
    return [{"family": u.family, "missing": u.missing, "remains": u.remains, "lr": jnum(u.lr)} for u in und.identified]


def _conclusion_json(c: Conclusion) -> dict[str, Any]:
    return {
        "remains": c.remains,
        "missing": c.missing,
        "family": c.family,
        "conclusion": c.conclusion,
        "lr": None if c.log_lr is None else jnum(safe_exp(c.log_lr)),
        "log10_lr": log10_of(c.log_lr),
        "posterior": None if c.posterior is None or not c.posterior_exact else c.posterior[0],
        "posterior_interval": _interval(c.posterior),
        "posterior_exact": c.posterior_exact if c.posterior is not None else None,
        "glr": None if c.log_glr is None else jnum(safe_exp(c.log_glr)),
        "log10_glr": log10_of(c.log_glr),
        "glr_exact": c.glr_exact if c.log_glr is not None else None,
        "symmetric": c.symmetric,
        "step": c.step,
        "comment": c.comment,
    }


def component_json(c: Component) -> dict[str, Any]:
    return {
        "remains": list(c.remains),
        "missing": list(c.missing),
        "families": list(c.families),
        "method": c.method,
        "posterior_exact": c.exact,
        "max_error": c.max_error,
        "log10_assignments": c.log_count / LN10,
        "assignments_exact": c.count_exact,
        "top_complete": c.top_complete,
        "message": c.message,
    }


def summary_json(sol: Solution, opts: SolveOptions) -> dict[str, Any]:
    families: dict[str, list[dict[str, Any]]] = {}
    for c in sol.missing:
        families.setdefault(c.family or "", []).append(_conclusion_json(c))
    return {
        "remains": [_conclusion_json(c) for c in sol.remains],
        "missing": [_conclusion_json(c) for c in sol.missing],
        "families": [{"family": f, "missing": v} for f, v in families.items()],
        "components": [component_json(c) for c in sol.joint.components],
        "options": {
            "pairwise": sol.pairwise_method,
            "max_exclusions": opts.max_exclusions,
            "threshold": opts.threshold,
            "threshold2": opts.probable_threshold,
            "min_posterior": opts.min_posterior,
            "lr_threshold": opts.lr_threshold,
            "undisputed": opts.undisputed,
            "max_assignments": opts.max_assignments,
        },
        "counts": {
            k: sum(1 for c in sol.remains if c.conclusion == k) for k in (IDENTIFIED, PROBABLE, EXCLUDED, UNDECIDED)
        },
        "seconds": {k: round(v, 3) for k, v in sol.seconds.items()},
        "notes": sol.notes,
    }


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
    sol = solve_case(case, opts, ignore_sex=ignore_sex)
    groups: list[list[str]] = []
    if group_threshold > 0:
        if len(sol.problem.remains) <= MAX_GROUPING:
            groups = group_remains(sol.problem, threshold=group_threshold).groups
        else:
            sol.notes.append(
                f"fragments not grouped ({len(sol.problem.remains)} remains > {MAX_GROUPING}): "
                "run opendvi match-remains"
            )
    if output_format is OutputFormat.json:
        print_json(
            {
                "joint": joint_json(sol.joint),
                "undisputed": undisputed_json(sol.undisputed),
                "groups": groups,
                "summary": summary_json(sol, opts),
            }
        )
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


#: Above this many remains, ``solve`` leaves fragment grouping to ``match-remains`` (quadratic).
MAX_GROUPING = 500


# -- match-remains ---------------------------------------------------------------------
def matching_json(problem: DVIProblem, m: RemainsMatching) -> dict[str, Any]:
    pairs = [
        {"remains": [a, b], "lr": jnum(safe_exp(v)), "log10_lr": log10_of(v), **m.systems_json(a, b)}
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
