"""The inputs of a matching run (``docs/decisions/0007-incremental-matching.md``): registered on
:class:`opendvi.store.models.Base` (imported at the end of :mod:`opendvi.store.models`). One row per
finished run, read only by the next run (``workflows.incremental``); kept apart from ``matching_runs`` so
that lists of runs never load it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from opendvi.store.models import Base

__all__ = ["MatchingRunInputs"]


class MatchingRunInputs(Base):
    """The fingerprints of a run's inputs (frequency database, mutation models, theta, parameters, each
    remains' profile version and data, each family's pedigree and references) and each remains' kept
    list (``workflows.incremental.RunState``)."""

    __tablename__ = "matching_run_inputs"

    run_id: Mapped[int] = mapped_column(ForeignKey("matching_runs.id", ondelete="CASCADE"), primary_key=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
