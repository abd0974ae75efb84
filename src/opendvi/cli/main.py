"""The ``opendvi`` command line.

Thin by design: each command parses its arguments, calls the library and
prints. Commands live in their own modules (``*_cmd.py``) and register
themselves on :data:`app`. Errors raised on purpose by the library
(:class:`~opendvi.core.errors.OpenDVIError`) become one line on standard
error and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

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


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """opendvi: disaster victim identification by DNA."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console entry point."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        app()
    except OpenDVIError as exc:
        err.print(f"opendvi: error: {exc}", markup=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("opendvi: interrupted", markup=False)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
