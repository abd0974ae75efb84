"""The lineage tables (Y-STR, mtDNA; ``docs/lineage.md``, ``docs/service.md``): the haplotype databases
and which of them an operation uses. Registered on :class:`opendvi.store.models.Base` (imported at the
end of :mod:`opendvi.store.models`); the haplotypes themselves are a column of each profile version
(``profiles.haplotypes``), the databases a run used are in its provenance
(``matching_runs.lineage_databases``) and each system's LR of a candidate in ``candidates.systems``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opendvi.store.models import Base, utcnow

__all__ = ["LineageDatabase", "OperationLineage"]


class LineageDatabase(Base):
    """One system's lineage settings and haplotype database, as ``dvi-case/1`` writes them under
    ``lineage.Y`` (``markers`` with rates and copies, ``database``) or ``lineage.mt`` (``rate``,
    ``database``): haplotypes with counts, the estimator and, for ``discrete-laplace``, the fitted model.

    ``sha256``: SHA-256 of the canonical JSON of ``{"system", "content"}`` (settings and database: one
    row per distinct content); ``database_sha256``: the engine's hash of the database alone (haplotypes,
    counts, estimator, model), the one every lineage LR's provenance names."""

    __tablename__ = "lineage_databases"

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(2))  # "Y" or "mt"
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    database_sha256: Mapped[str] = mapped_column(String(64))
    estimator: Mapped[str] = mapped_column(String(32))
    #: the database's size N (the sum of its counts)
    n_haplotypes: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OperationLineage(Base):
    """The lineage database an operation uses for one system (at most one per system), as
    ``operations.frequency_database_id`` is its autosomal one."""

    __tablename__ = "operation_lineage"

    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True)
    system: Mapped[str] = mapped_column(String(2), primary_key=True)
    lineage_database_id: Mapped[int] = mapped_column(ForeignKey("lineage_databases.id"))

    database: Mapped[LineageDatabase] = relationship()
