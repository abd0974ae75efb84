"""Fragments of one person across bags and exchanges (``docs/service.md``, fragments;
``docs/decisions/0008-fragment-groups.md``).

* ``fragment_links``: the pairs of remains a matching run found with a direct-match LR at or above
  its fragment threshold (and the other pairs inside a group, so that a conflict shows), per run;
* ``fragment_groups``: a group of remains that are parts of one person, with a state: suggested
  (by a run), proposed (by a DVI analyst), confirmed (by a reviewer who did not propose it: four
  eyes), split (dissolved, with a reason); row-versioned like identifications;
* ``fragment_group_members``: its remains; ``active`` while the group is proposed or confirmed, and
  a remains is in at most one active group (a partial unique index).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opendvi.store.models import Base, MatchingRun, Remains, User, utcnow


class FragmentGroupState(enum.StrEnum):
    suggested = "suggested"
    proposed = "proposed"
    confirmed = "confirmed"
    #: (not ``split``: a ``str`` method's name)
    dissolved = "split"


#: a remains is in at most one group in these states
ACTIVE_GROUP_STATES = (FragmentGroupState.proposed.value, FragmentGroupState.confirmed.value)


class FragmentLink(Base):
    """A pair of remains (``remains_a_id < remains_b_id``) and its direct-match LR in one run."""

    __tablename__ = "fragment_links"
    __table_args__ = (
        UniqueConstraint("run_id", "remains_a_id", "remains_b_id", name="uq_fragment_links_run_pair"),
        Index("ix_fragment_links_run_a", "run_id", "remains_a_id"),
        Index("ix_fragment_links_run_b", "run_id", "remains_b_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("matching_runs.id", ondelete="CASCADE"))
    remains_a_id: Mapped[int] = mapped_column(ForeignKey("remains.id"))
    remains_b_id: Mapped[int] = mapped_column(ForeignKey("remains.id"))
    #: log10 of the combined direct-match LR (None: LR 0)
    log10_lr: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: at or above the run's fragment threshold (else: a pair inside a group, kept to show a conflict)
    linked: Mapped[bool] = mapped_column(Boolean)
    #: with lineage data: log10 LR by system (None: LR 0) and mismatches by system
    by_system: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    mismatches: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)

    remains_a: Mapped[Remains] = relationship(foreign_keys=[remains_a_id])
    remains_b: Mapped[Remains] = relationship(foreign_keys=[remains_b_id])


class FragmentGroup(Base):
    """Remains that are parts of one person."""

    __tablename__ = "fragment_groups"
    __table_args__ = (Index("ix_fragment_groups_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: the run that suggested it (None: proposed by hand)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("matching_runs.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    proposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    proposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    proposal_note: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    members: Mapped[list[FragmentGroupMember]] = relationship(cascade="all, delete-orphan",
                                                              order_by="FragmentGroupMember.remains_id")
    run: Mapped[MatchingRun | None] = relationship()
    proposed_by: Mapped[User | None] = relationship(foreign_keys=[proposed_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class FragmentGroupMember(Base):
    __tablename__ = "fragment_group_members"
    __table_args__ = (
        Index("uq_fragment_group_members_active_remains", "remains_id", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
        Index("ix_fragment_group_members_remains", "remains_id"),
    )

    group_id: Mapped[int] = mapped_column(ForeignKey("fragment_groups.id", ondelete="CASCADE"), primary_key=True)
    remains_id: Mapped[int] = mapped_column(ForeignKey("remains.id"), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=False)

    remains: Mapped[Remains] = relationship()
