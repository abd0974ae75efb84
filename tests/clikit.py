"""The command line in this process: ``opendvi ARGS`` as the console script runs it.

:func:`run` calls :func:`opendvi.cli.main.main` (so errors are handled as in the
console entry point: an :class:`~opendvi.core.errors.OpenDVIError` is one line on
standard error and exit status 2, any other exception one line and status 1) with
standard input, output and error captured by Click's test isolation, and answers
like :func:`subprocess.run` with ``capture_output=True, text=True``: ``returncode``,
``stdout``, ``stderr``. A fresh Python costs about a second per call; this costs
nothing. Tests that need a real process (``serve``, ``worker``, signals, the
console script itself) still start one.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from opendvi.cli.main import main


@dataclass(frozen=True)
class Result:
    """What a run of the command line gave, named as :class:`subprocess.CompletedProcess` names it."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check_returncode(self) -> None:
        if self.returncode != 0:
            raise AssertionError(f"opendvi {' '.join(self.args)} exited {self.returncode}:\n{self.stderr}")


def _status(exc: SystemExit) -> tuple[int, str]:
    """Exit status and message of a :class:`SystemExit`, as the interpreter reads them."""
    if exc.code is None:
        return 0, ""
    if isinstance(exc.code, int):
        return exc.code, ""
    return 1, f"{exc.code}\n"


def run(
    *args: object,
    cwd: Path | str | None = None,
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
    check: bool = False,
) -> Result:
    """``opendvi ARGS`` in this process.

    ``cwd``: the working directory during the run; ``env``: variables to set
    (``None`` removes one) during the run, on top of this process's environment;
    ``input``: standard input; ``check``: raise if the exit status is not 0.
    """
    argv = tuple(str(a) for a in args)
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        out, err, _ = stack.enter_context(CliRunner().isolation(input=input, env=env))
        message = ""
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code, message = _status(exc)
        except Exception as exc:  # what main() lets through (--debug): the interpreter prints the traceback
            code, message = 1, "".join(traceback.format_exception(exc))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        stdout = out.getvalue().decode()
        stderr = err.getvalue().decode("utf-8", "backslashreplace") + message
    result = Result(argv, code, stdout, stderr)
    if check:
        result.check_returncode()
    return result
