"""The exceptions of opendvi.

Every error the library raises on purpose derives from :class:`OpenDVIError`,
so that a caller (the CLI, the web service) can catch the family and print one
line instead of a traceback::

    OpenDVIError
     +-- MarkerError          a marker, its alleles, frequencies or parameters
     |    +-- MutationModelError   a mutation model's parameters are invalid
     +-- PedigreeError        a pedigree is malformed (all problems listed)
     +-- ProfileError         a genotype does not fit its marker or person
     +-- LikelihoodError      a computation that cannot be done as asked
     +-- FileFormatError      a file cannot be read (names path, line, field)

A message says what was expected, what was found, and where.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class OpenDVIError(Exception):
    """Base class of every error raised on purpose by opendvi."""


class MarkerError(OpenDVIError):
    """A marker is inconsistent: unknown allele, bad frequencies, bad name.

    Fix the marker definition (allele list, frequencies summing to 1) or the
    frequency database it came from.
    """


class MutationModelError(MarkerError):
    """A mutation model cannot be built with the parameters given.

    The message names the marker, the parameter and the offending value; see
    ``docs/statistics.md`` for each model's valid range.
    """


class PedigreeError(OpenDVIError):
    """A pedigree is malformed.

    ``problems`` lists every problem found (single parent, cycle, a female
    father, duplicate or unknown ids); all of them are reported at once so a
    user can fix the file in one pass.
    """

    def __init__(self, problems: Sequence[str], *, where: str | None = None) -> None:
        self.problems = list(problems)
        self.where = where
        prefix = f"{where}: " if where else ""
        if len(self.problems) == 1:
            msg = f"{prefix}invalid pedigree: {self.problems[0]}"
        else:
            msg = f"{prefix}invalid pedigree ({len(self.problems)} problems): " + "; ".join(self.problems)
        super().__init__(msg)


class ProfileError(OpenDVIError):
    """A genotype does not fit its marker or its person (e.g. a male
    heterozygous at an X marker, three alleles, an empty allele)."""


class LikelihoodError(OpenDVIError):
    """A likelihood cannot be computed as asked (e.g. a theta correction over
    too many untyped founders); the message says what to change."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` with every control character (newline, carriage return, tab,
    NUL...) written as its escape (``\\n``, ``\\x00``), so that a value read
    from a file cannot break a message into several lines."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class FileFormatError(OpenDVIError):
    """A file cannot be read.

    Carries ``path``, ``line`` (1-based, or None) and ``field`` (or None), and
    renders as ``path:line: field: message``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        # A message is one line wherever a value from the file enters it (a
        # header cell quoted across lines, a stray carriage return): the CLI
        # prints it as one line and the service returns it in one field.
        message = one_line(message)
        field = one_line(field) if field is not None else None
        self.path = path
        self.line = line
        self.field = field
        self.reason = message
        where = path or "<input>"
        if line is not None:
            where += f":{line}"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {message}")
