"""The inputs of matching runs (``models_runs.MatchingRunInputs``) for incremental matching
(``workflows.incremental``, ``docs/decisions/0007-incremental-matching.md``): the previous run's state and
its candidates' per-marker LRs, read by the next run; a finished run's state and what it recomputed."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Text, cast, delete, select, update
from sqlalchemy.orm import Session

from opendvi.store.models import Candidate, MatchingRun, MissingPerson, Remains, RunStatus
from opendvi.store.models_runs import MatchingRunInputs

__all__ = ["carried_per_marker", "previous_inputs", "save_inputs"]


def previous_inputs(session: Session, *, before: int) -> tuple[int, dict[str, Any]] | None:
    """The latest finished run before ``before`` (every run matches the whole database) and its recorded
    inputs; None when it recorded none (a run of an earlier version) or there is none."""
    run_id = session.scalar(select(MatchingRun.id).where(MatchingRun.status == RunStatus.finished.value,
                                                         MatchingRun.id < before)
                            .order_by(MatchingRun.id.desc()).limit(1))
    if run_id is None:
        return None
    inputs = session.scalar(select(MatchingRunInputs.inputs).where(MatchingRunInputs.run_id == run_id))
    return None if inputs is None else (int(run_id), dict(inputs))


def carried_per_marker(session: Session, *, run_id: int) -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
    """``(barcode, missing person code) -> (per_marker, its stored JSON)`` of the run's candidates (one
    query of columns; each JSON decoded once, and kept: the next run stores a carried row's as it is,
    :func:`opendvi.store.repositories.insert_candidates`)."""
    return {(barcode, code): (json.loads(raw), raw) for barcode, code, raw in session.connection().execute(
        select(Remains.barcode, MissingPerson.code, cast(Candidate.per_marker, Text))
        .join(Remains, Remains.id == Candidate.remains_id)
        .join(MissingPerson, MissingPerson.id == Candidate.missing_person_id)
        .where(Candidate.run_id == run_id)).all()}


def save_inputs(session: Session, *, run_id: int, inputs: dict[str, Any], recomputed: dict[str, Any],
                keep_previous: int | None = None) -> None:
    """Record a finishing run's inputs and what it recomputed; the inputs of older runs are dropped (the
    next run reads only the latest; ``keep_previous``, the run this one started from, is kept too)."""
    session.execute(delete(MatchingRunInputs).where(MatchingRunInputs.run_id.not_in(
        [run_id] + ([keep_previous] if keep_previous is not None else []))))
    session.add(MatchingRunInputs(run_id=run_id, inputs=inputs))
    session.execute(update(MatchingRun).where(MatchingRun.id == run_id).values(recomputed=recomputed)
                    .execution_options(synchronize_session=False))
