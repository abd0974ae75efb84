"""Errors of the store, mapped to HTTP statuses by the service::

    OpenDVIError
     +-- StoreError
          +-- NotFoundError         no such object (404)
          +-- ConflictError         another change won, or the state forbids it (409)
          +-- PermissionDeniedError the rules forbid this user the action (403, forbidden_by_rule)
          +-- ImportValidationError a file cannot be imported; ``problems`` lists all (422)
"""

from __future__ import annotations

from collections.abc import Sequence

from opendvi.core.errors import OpenDVIError


class StoreError(OpenDVIError):
    """Base class of the store's errors."""

    code = "store_error"


class NotFoundError(StoreError):
    """The object named does not exist (check the barcode, code or id)."""

    code = "not_found"


class ConflictError(StoreError):
    """The change lost against another one (reload and decide again), or the
    object's state does not allow it (e.g. confirming a rejected proposal)."""

    code = "conflict"


class PermissionDeniedError(StoreError):
    """The rules forbid this user the action (e.g. confirming one's own
    proposal), whatever the role allows."""

    code = "forbidden_by_rule"


class ImportValidationError(StoreError):
    """A file cannot be imported; nothing was written. ``problems`` lists every problem."""

    code = "import_invalid"

    def __init__(self, problems: Sequence[str], *, filename: str | None = None) -> None:
        self.problems = list(problems)
        where = f"{filename}: " if filename else ""
        super().__init__(f"{where}import refused, nothing was written ({len(self.problems)} problem(s))")
