"""The service's matching run: its home is :mod:`opendvi.workflows.matching` (the application layer);
the names are kept here for the service's modules that import them."""

from __future__ import annotations

from opendvi.workflows.matching import ENGINE, PHASE_END, MatchingResult, ProgressFn, match_case

__all__ = ["ENGINE", "PHASE_END", "MatchingResult", "ProgressFn", "match_case"]
