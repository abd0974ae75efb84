"""``opendvi convert`` and ``opendvi case build``: field formats in and out.

Thin: the work is in :mod:`opendvi.io.convert`. Any problem with an input is
one line (file, line or element, what was wrong) and exit status 2; nothing
is written unless every input is valid.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from opendvi.core.case import Case
from opendvi.core.errors import FileFormatError
from opendvi.core.lineage import DEFAULT_ESTIMATOR, ESTIMATORS
from opendvi.io.convert import (
    DEFAULT_MT_RATE,
    FORMATS,
    Dataset,
    LineageSources,
    case_of,
    guess_format,
    load,
    mutation_models,
    save_case,
    save_freqs,
    save_profiles,
)
from opendvi.io.frequencies import FrequencyDatabase
from opendvi.io.source import FILE_ERRORS

case_app = typer.Typer(help="Assemble and inspect dvi-case/1 files.", no_args_is_help=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _notes(notes: list[str], quiet: bool) -> None:
    if quiet:
        return
    err = _err()
    for n in notes:
        err.print(f"opendvi: note: {n}", markup=False)


def _file_error(exc: BaseException) -> FileFormatError:
    """An expected file or system error (:data:`opendvi.io.source.FILE_ERRORS`) as one line; any
    other exception is a bug and propagates (the CLI names it, ``--debug`` shows its traceback)."""
    return FileFormatError(f"{type(exc).__name__}: {exc}")


def _freqs(path: Path | None, population: str | None, datasets: list[Dataset]) -> FrequencyDatabase | None:
    """A frequency file, or a case (JSON, .fam) whose markers serve (put first)."""
    if path is None:
        return None
    fmt = guess_format(path)
    if fmt in ("json", "fam"):
        ds = load(path, fmt)
        assert ds.case is not None
        ds.case = replace(ds.case, remains=(), families=())
        datasets.insert(0, ds)
        return None
    return load(path, "freq", population=population).freqs


def _check_format(fmt: str | None, what: str) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise FileFormatError(f"unknown {what} format {fmt!r} (expected one of {', '.join(FORMATS)})")


_FROM = typer.Option(None, "--from", help=f"Input format: {', '.join(FORMATS)} (default: from the file).")
_TO = typer.Option(None, "--to", help=f"Output format: {', '.join(FORMATS)} (default: from the extension).")
_FREQS = typer.Option(None, "--freqs", help="Frequency file (Familias list, ladder CSV, long CSV) for the markers.")
_POP = typer.Option(None, "--population", help="Population to take from a long CSV with several.")
_MUT = typer.Option(
    "none", "--mutation", help="Mutation model for markers from --freqs: none, equal, proportional, stepwise."
)
_FRATE = typer.Option(0.001, "--female-rate", help="Female mutation rate (with --mutation).")
_MRATE = typer.Option(0.002, "--male-rate", help="Male mutation rate (with --mutation).")
_RANGE = typer.Option(0.1, "--range", help="Stepwise range.")
_RATE2 = typer.Option(1e-6, "--rate2", help="Stepwise rate2 (to and from microvariants).")
_SKIPMIX = typer.Option(False, "--skip-mixtures", help="Leave mixtures out (with a note) instead of failing.")
_SKIPUNK = typer.Option(
    False,
    "--skip-unknown-markers",
    help="Leave out markers absent from the frequencies (with a note) instead of failing.",
)
_QUIET = typer.Option(False, "--quiet", "-q", help="Do not print notes.")
_YDB = typer.Option(
    None,
    "--y-database",
    help="Y haplotype database (CSV with a count column, YHRD-like, or the disclapmix danes file): "
    "the Y-STR loci of the profiles become the case's Y lineage evidence.",
)
_MTDB = typer.Option(None, "--mt-database", help="mtDNA haplotype database (CSV: range, variants, count).")
_MTHAP = typer.Option(
    [], "--mt-haplotypes", help="mtDNA haplotypes of remains and reference samples (EMPOP-style table or CSV)."
)
_YEST = typer.Option(DEFAULT_ESTIMATOR, "--y-estimator", help=f"Y frequency estimator: {', '.join(ESTIMATORS)}.")
_MTEST = typer.Option(
    DEFAULT_ESTIMATOR, "--mt-estimator", help="mtDNA frequency estimator: augmented-counting, clopper-pearson."
)
_MTRATE = typer.Option(DEFAULT_MT_RATE, "--mt-rate", help="mtDNA mutation rate per transmission (whole range).")


def _load_each(files: list[Path], option: str, expects: str, fits: Callable[[Dataset], bool]) -> list[Dataset]:
    """Each file of ``option`` read, in order; the first that does not fit is the error."""
    out = []
    for f in files:
        ds = load(f)
        if not fits(ds):
            raise FileFormatError(f"{option} expects {expects}, found a {ds.format} file", path=str(f))
        out.append(ds)
    return out


#: the options ``convert`` and ``case build`` share, after each command's own (passed in ``**opts``)
_SHARED: dict[str, tuple[Any, Any]] = {
    "mutation": (str, _MUT), "female_rate": (float, _FRATE), "male_rate": (float, _MRATE),
    "range_": (float, _RANGE), "rate2": (float, _RATE2), "skip_mixtures": (bool, _SKIPMIX),
    "skip_unknown_markers": (bool, _SKIPUNK), "y_database": (Path | None, _YDB), "mt_database": (Path | None, _MTDB),
    "mt_haplotypes": (list[Path], _MTHAP), "y_estimator": (str, _YEST), "mt_estimator": (str, _MTEST),
    "mt_rate": (float, _MTRATE), "quiet": (bool, _QUIET),
}


def _with_shared(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn``'s signature (as typer reads it) with the :data:`_SHARED` options in place of ``**opts``."""
    sig = inspect.signature(fn)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    kw = inspect.Parameter.KEYWORD_ONLY
    shared = [inspect.Parameter(k, kw, default=d, annotation=a) for k, (a, d) in _SHARED.items()]
    fn.__signature__ = sig.replace(parameters=own + shared)  # type: ignore[attr-defined]
    return fn


def _lineage(opts: dict[str, Any]) -> LineageSources:
    y_estimator, mt_estimator = opts["y_estimator"], opts["mt_estimator"]
    if y_estimator not in ESTIMATORS:
        raise FileFormatError(f"--y-estimator must be one of {', '.join(ESTIMATORS)}, found {y_estimator!r}")
    if mt_estimator not in ESTIMATORS or mt_estimator == "discrete-laplace":
        raise FileFormatError(
            f"--mt-estimator must be augmented-counting or clopper-pearson, found {mt_estimator!r}"
        )
    return LineageSources(
        y_database=opts["y_database"],
        mt_database=opts["mt_database"],
        mt_haplotypes=tuple(opts["mt_haplotypes"]),
        y_estimator=y_estimator,
        mt_estimator=mt_estimator,
        mt_rate=opts["mt_rate"],
    )


def _case(datasets: list[Dataset], opts: dict[str, Any], lineage: LineageSources, **kw: Any) -> Case:
    """:func:`~opendvi.io.convert.case_of` with the shared options (``kw``: name, freqs, notes, ...)."""
    mutation = mutation_models(
        opts["mutation"], female_rate=opts["female_rate"], male_rate=opts["male_rate"], range_=opts["range_"],
        rate2=opts["rate2"],
    )
    return case_of(
        datasets, mutation=mutation, skip_mixtures=opts["skip_mixtures"],
        skip_unknown_markers=opts["skip_unknown_markers"], lineage=lineage, **kw,
    )


@_with_shared
def convert(
    input_file: Path = typer.Argument(..., help="File to read."),
    output_file: Path = typer.Argument(..., help="File to write."),
    from_format: str | None = _FROM,
    to_format: str | None = _TO,
    as_role: str = typer.Option("remains", "--as", help="Profiles are 'remains' (default) or 'references'."),
    families: Path | None = typer.Option(None, "--families", help="Families table naming the reference samples."),
    freqs: Path | None = _FREQS,
    population: str | None = _POP,
    name: str | None = typer.Option(None, "--name", help="Case name (default: the output file's stem)."),
    **opts: Any,
) -> None:
    """Convert INPUT to OUTPUT (json, fam, genemapper, cmf, ped, freq, profiles-csv, families-csv, xlsx)."""
    notes: list[str] = []
    try:
        lineage = _lineage(opts)
        wants_lineage = lineage.y_database is not None or lineage.mt_database is not None or bool(lineage.mt_haplotypes)
        _check_format(from_format, "input")
        _check_format(to_format, "output")
        if as_role not in ("remains", "references"):
            raise FileFormatError(f"--as must be 'remains' or 'references', found {as_role!r}")
        if as_role == "references" and families is None:
            raise FileFormatError("--as references needs --families FILE (the families table that names the samples)")
        ds = load(input_file, from_format)
        out_fmt = to_format or guess_format(output_file, output=True)
        datasets: list[Dataset] = [ds]
        if families is not None:
            datasets.append(load(families))
        fdb = _freqs(freqs, population, datasets)
        # profiles or frequencies on their own, to a format that needs no case
        if (
            ds.profiles is not None
            and families is None
            and fdb is None
            and not wants_lineage
            and out_fmt in ("cmf", "profiles-csv", "xlsx", "genemapper")
        ):
            notes += ds.notes
            save_profiles(ds.profiles, output_file, out_fmt)
        elif ds.freqs is not None and families is None and out_fmt in ("freq", "json", "fam"):
            notes += ds.notes
            save_freqs(ds.freqs, output_file, out_fmt, notes=notes)
        else:
            case = _case(datasets, opts, lineage, role=as_role, name=name or output_file.stem, freqs=fdb, notes=notes)
            if ds.profiles is not None and not case.remains and not case.families:
                raise FileFormatError("no single-source profile left to convert", path=str(input_file))
            save_case(case, output_file, out_fmt, notes=notes)
    except FILE_ERRORS as exc:
        raise _file_error(exc) from None
    _notes(notes, opts["quiet"])
    typer.echo(f"wrote {output_file} ({out_fmt})")


@_with_shared
def build(
    remains: list[Path] = typer.Option(
        [], "--remains", help="Profiles of the remains (GeneMapper, CMF, profiles CSV/Excel)."
    ),
    families: list[Path] = typer.Option(
        [], "--families", help="Families: families CSV/Excel, ped text, .fam or case JSON."
    ),
    references: list[Path] = typer.Option([], "--references", help="Reference profiles named by the families tables."),
    freqs: Path | None = _FREQS,
    population: str | None = _POP,
    output: Path = typer.Option(..., "-o", "--output", help="The dvi-case/1 JSON to write."),
    name: str | None = typer.Option(None, "--name", help="Case name (default: the output file's stem)."),
    theta: float | None = typer.Option(None, "--theta", help="Subpopulation correction (Fst)."),
    **opts: Any,
) -> None:
    """Assemble a dvi-case/1 JSON from remains, families, references, frequencies and haplotype databases."""
    notes: list[str] = []
    try:
        lineage = _lineage(opts)
        datasets = _load_each(remains, "--remains", "a profile file", lambda d: d.profiles is not None)
        datasets += _load_each(
            families, "--families", "families (CSV/Excel, ped, .fam, JSON)",
            lambda d: d.family_table is not None or d.families is not None or d.case is not None,
        )
        refs = _load_each(references, "--references", "a profile file", lambda d: d.profiles is not None)
        fdb = _freqs(freqs, population, datasets)
        if refs:
            # reference profiles are linked through the families tables; one sample's
            # profiles in several files (an autosomal and a Y kit) are merged
            from opendvi.io.profiles import merge_profile_sets

            for ds in refs:
                notes += ds.notes
            merged = merge_profile_sets([ds.profiles for ds in refs if ds.profiles is not None], notes=notes)
            datasets.append(Dataset(source=merged.source, format="profiles", profiles=merged, family_table=None))
            tables = [d for d in datasets if d.family_table is not None]
            if not tables:
                raise FileFormatError("--references needs a families table (--families CSV/Excel) naming the samples")
            # attach the references to the first table's dataset
            tables[0].profiles = merged
            datasets.pop()
        case = _case(datasets, opts, lineage, name=name or output.stem, freqs=fdb, theta=theta, notes=notes)
        save_case(case, output, "json", notes=notes)
    except FILE_ERRORS as exc:
        raise _file_error(exc) from None
    _notes(notes, opts["quiet"])
    lin = case.lineage
    extra = ""
    if lin is not None:
        n_y = sum(1 for h in lin.haplotypes.values() if h.y)
        n_mt = sum(1 for h in lin.haplotypes.values() if h.mt is not None)
        parts = ([f"{len(lin.y.markers)} Y loci ({n_y} Y haplotypes)"] if lin.y is not None else []) + (
            [f"{n_mt} mtDNA haplotypes"] if lin.mt is not None else []
        )
        extra = ", " + ", ".join(parts)
    typer.echo(
        f"wrote {output}: {len(case.markers)} markers, {len(case.remains)} remains, {len(case.families)} families, "
        f"{sum(len(f.missing) for f in case.families)} missing persons{extra}"
    )


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
    case_app.command("build")(build)
    app.add_typer(case_app, name="case")
