"""The ``opendvi`` command line.

Thin by design: each command parses its arguments, calls the library and
prints. Commands live in their own modules (``*_cmd.py``) and register
themselves on :data:`app`. Errors raised on purpose by the library
(:class:`~opendvi.core.errors.OpenDVIError`) become one line on standard
error (a case file with several problems: a line that counts them, then one
each) and exit status 2, never a traceback. Any other exception is a bug:
one line that says so and exit status 1, or the traceback with the global
``--debug`` option.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer
from rich.console import Console

from opendvi import __version__
from opendvi.core.errors import OpenDVIError

app = typer.Typer(
    name="opendvi",
    help="Identify human remains by DNA: pedigree likelihoods, matching, screening.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Modules that define commands; each has ``register(app)``.
COMMAND_MODULES = (
    "opendvi.cli.likelihood_cmd",
    "opendvi.cli.demo_cmd",
    "opendvi.cli.serve_cmd",
    "opendvi.cli.worker_cmd",
    "opendvi.cli.data_cmd",
    "opendvi.cli.dvi_cmd",
    "opendvi.cli.formats_cmd",
    "opendvi.cli.screen_cmd",
    "opendvi.cli.power_cmd",
    "opendvi.cli.report_cmd",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"opendvi {__version__}")
        raise typer.Exit()


#: Set by ``--debug`` for the run in progress (:func:`main` resets it).
_debug = False


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an internal error (a bug)."),
) -> None:
    """opendvi: disaster victim identification by DNA."""
    global _debug
    _debug = debug


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def _error_text(exc: OpenDVIError) -> str:
    from opendvi.io.case_checks import CaseDocumentError

    return exc.report() if isinstance(exc, CaseDocumentError) else str(exc)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point.

    ``argv`` are the arguments after the program name (by default
    ``sys.argv[1:]``); the tests run the command line in process this way.
    Expected errors (:class:`OpenDVIError`): one line, exit status 2. Any other
    exception is a bug: one line naming it, exit status 1; with ``--debug``
    the exception propagates with its traceback.
    """
    global _debug
    _debug = False
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        if argv is None:
            app()
        else:
            app(args=list(argv), prog_name="opendvi")
    except OpenDVIError as exc:
        err.print(f"opendvi: error: {_error_text(exc)}", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("opendvi: interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:
        if _debug:
            raise
        message = " ".join(str(exc).split())
        err.print(
            f"opendvi: internal error: {type(exc).__name__}: {message} (a bug; rerun with --debug for the traceback)",
            markup=False,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
