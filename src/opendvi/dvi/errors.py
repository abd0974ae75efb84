"""Errors of the identification layer.

::

    OpenDVIError (opendvi.core.errors)
     +-- DVIError                  an identification problem cannot be solved as asked
          +-- ComponentTooLargeError   a connected component has too many assignments
"""

from __future__ import annotations

from opendvi.core.errors import OpenDVIError


class DVIError(OpenDVIError):
    """An identification problem cannot be solved as asked (unknown remains or
    missing person, a family whose references are impossible, ...). The
    message says what was found and what to change."""


class ComponentTooLargeError(DVIError):
    """A connected component of the candidate graph has more assignments than
    the limit. Raise the LR threshold, lower the exclusion limit, place the
    undisputed identifications first, or raise the limit.

    ``size`` is the number of assignments counted (a lower bound when the
    count stopped at the limit), ``remains`` and ``missing`` the component's
    members.
    """

    def __init__(self, message: str, *, size: int, remains: tuple[str, ...], missing: tuple[str, ...]) -> None:
        self.size = size
        self.remains = remains
        self.missing = missing
        super().__init__(message)
