"""The case-work database: SQLAlchemy 2 models.

The tables, grouped by what they hold (``docs/service.md`` draws them):

* who works: ``users`` (role, argon2 password hash), ``auth_sessions``
  (server-side sessions, token stored hashed);
* what arrived: ``operations`` (a body exchange or a recovery), ``remains``
  (barcodes, bag, sample type, laboratory, kit), ``imports``;
* who is missing: ``families``, ``pedigree_members``, ``missing_persons``
  (genetic side, codes only) and ``missing_person_details`` (names and other
  personal data, in their own table, read only by the roles that need them),
  ``donors`` (relatives who gave a reference sample: relationship, consent)
  and ``donor_details`` (their names);
* DNA: ``profiles`` (versioned: a re-typed sample keeps its history),
  ``frequency_databases`` (markers with frequencies and mutation models, and
  the SHA-256 of their canonical JSON);
* matching: ``matching_runs`` (provenance: software version, frequency
  database and hash, mutation models, parameters, times), ``candidates``;
* decisions: ``identifications`` (proposed -> confirmed / rejected /
  withdrawn; by whom, when, why; row-versioned, and at most one active per
  remains, enforced by a partial unique index);
* ``audit_log`` (append-only, hash-chained) and ``audit_head`` (its last
  sequence number and hash).
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class Role(enum.StrEnum):
    """The roles of the service (least privilege; ``docs/service.md``)."""

    administrator = "administrator"
    intake_officer = "intake_officer"
    laboratory_analyst = "laboratory_analyst"
    dvi_analyst = "dvi_analyst"
    reviewer = "reviewer"
    family_liaison = "family_liaison"


class IdentificationState(enum.StrEnum):
    proposed = "proposed"
    confirmed = "confirmed"
    rejected = "rejected"
    withdrawn = "withdrawn"


ACTIVE_STATES = (IdentificationState.proposed.value, IdentificationState.confirmed.value)


def _enum(e: type[enum.Enum], name: str) -> Enum:
    return Enum(e, name=name, native_enum=False, length=32, validate_strings=True,
                values_callable=lambda x: [m.value for m in x])


# ---------------------------------------------------------------------------
# people who work
# ---------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: a one-time password (set by an administrator or at first start): every
    #: route but the password change answers 403 until the user sets his own
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: TOTP second factor (RFC 6238, base32 secret, sealed: service/secret_box.py): enabled when set
    totp_secret: Mapped[str | None] = mapped_column(String(160), default=None)
    #: a secret being set up, enabled once a code from it is confirmed
    totp_pending: Mapped[str | None] = mapped_column(String(160), default=None)
    #: the last 30-second step whose code was accepted (a code is used once)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    #: interface language chosen by the user ("uk", "en"); None: the browser's Accept-Language decides
    language: Mapped[str | None] = mapped_column(String(8), default=None)


class AuthSession(Base):
    """A signed-in session: the token is stored as its SHA-256 only."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


# ---------------------------------------------------------------------------
# what arrived
# ---------------------------------------------------------------------------


class FrequencyDatabase(Base):
    """Markers with frequencies and mutation models (``dvi-case/1`` markers)."""

    __tablename__ = "frequency_databases"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    theta: Mapped[float] = mapped_column(Float, default=0.0)
    markers: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Operation(Base):
    """A body exchange or a recovery: one batch of remains."""

    __tablename__ = "operations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="exchange")
    received_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    expected_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frequency_database_id: Mapped[int | None] = mapped_column(
        ForeignKey("frequency_databases.id"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    frequency_database: Mapped[FrequencyDatabase | None] = relationship()


class Import(Base):
    """One file imported through the service (all or nothing)."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), nullable=True)
    format: Mapped[str] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Remains(Base):
    """A post-mortem sample, known by its barcode."""

    __tablename__ = "remains"
    __table_args__ = (Index("ix_remains_operation_barcode", "operation_id", "barcode"),
                      Index("ix_remains_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    barcode: Mapped[str] = mapped_column(String(64), unique=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), index=True)
    bag: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sample_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    laboratory: Mapped[str | None] = mapped_column(String(128), nullable=True)
    kit: Mapped[str | None] = mapped_column(String(128), nullable=True)
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    operation: Mapped[Operation] = relationship()


# ---------------------------------------------------------------------------
# who is missing
# ---------------------------------------------------------------------------


class Family(Base):
    __tablename__ = "families"
    __table_args__ = (Index("ix_families_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    members: Mapped[list[PedigreeMember]] = relationship(
        back_populates="family", order_by="PedigreeMember.position", cascade="all, delete-orphan"
    )


class PedigreeMember(Base):
    """One person of a family's pedigree (ids inside the family)."""

    __tablename__ = "pedigree_members"
    __table_args__ = (UniqueConstraint("family_id", "code", name="uq_pedigree_members_family_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    father: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mother: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)

    family: Mapped[Family] = relationship(back_populates="members")


class MissingPerson(Base):
    """The genetic side of a missing person: a code and a pedigree place."""

    __tablename__ = "missing_persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("pedigree_members.id", ondelete="CASCADE"), unique=True)
    sex: Mapped[str | None] = mapped_column(String(1), nullable=True)

    family: Mapped[Family] = relationship()
    member: Mapped[PedigreeMember] = relationship()


class MissingPersonDetails(Base):
    """Personal data of a missing person (names): its own table."""

    __tablename__ = "missing_person_details"

    id: Mapped[int] = mapped_column(primary_key=True)
    missing_person_id: Mapped[int] = mapped_column(
        ForeignKey("missing_persons.id", ondelete="CASCADE"), unique=True
    )
    full_name: Mapped[str] = mapped_column(String(300))
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    place_last_seen: Mapped[str | None] = mapped_column(String(300), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


#: the consent scope of a donor who withdrew consent (``Donor.profile_usable``)
CONSENT_WITHDRAWN = "withdrawn"


class Donor(Base):
    """A relative who gave a reference sample (AM), known by its barcode."""

    __tablename__ = "donors"

    id: Mapped[int] = mapped_column(primary_key=True)
    barcode: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[int] = mapped_column(ForeignKey("families.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("pedigree_members.id", ondelete="CASCADE"), unique=True)
    relationship_to_missing: Mapped[str | None] = mapped_column(String(64), nullable=True)
    consent: Mapped[str] = mapped_column(String(32), default="identification")
    consent_date: Mapped[date | None] = mapped_column(Date, nullable=True)

    family: Mapped[Family] = relationship()
    member: Mapped[PedigreeMember] = relationship()

    @hybrid_property
    def profile_usable(self) -> bool:
        """Whether the donor's reference profile may be used (matching, power planning): not once the
        consent is withdrawn. The one home of that rule, in Python and in SQL (``where(Donor.profile_usable)``)."""
        return self.consent != CONSENT_WITHDRAWN


class DonorDetails(Base):
    """Personal data of a donor (name, contact): its own table."""

    __tablename__ = "donor_details"

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"), unique=True)
    full_name: Mapped[str] = mapped_column(String(300))
    contact: Mapped[str | None] = mapped_column(String(300), nullable=True)
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)


# ---------------------------------------------------------------------------
# DNA profiles
# ---------------------------------------------------------------------------


class Profile(Base):
    """One typing of a remains or of a donor; a re-typing adds a version."""

    __tablename__ = "profiles"
    __table_args__ = (
        UniqueConstraint("remains_id", "version", name="uq_profiles_remains_version"),
        UniqueConstraint("donor_id", "version", name="uq_profiles_donor_version"),
        CheckConstraint(
            "(remains_id IS NULL) <> (donor_id IS NULL)", name="one_subject"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    remains_id: Mapped[int | None] = mapped_column(ForeignKey("remains.id", ondelete="CASCADE"), nullable=True)
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("donors.id", ondelete="CASCADE"), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    genotypes: Mapped[dict[str, Any]] = mapped_column(JSON)
    dropout: Mapped[float] = mapped_column(Float, default=0.0)
    laboratory: Mapped[str | None] = mapped_column(String(128), nullable=True)
    kit: Mapped[str | None] = mapped_column(String(128), nullable=True)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Y-STR and mtDNA haplotypes as dvi-case/1 spells them (``{"Y": {locus: value}, "mt": {"range",
    #: "variants"}}``); None: none typed (``models_lineage``, ``docs/lineage.md``)
    haplotypes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


# ---------------------------------------------------------------------------
# matching
# ---------------------------------------------------------------------------


class RunStatus(enum.StrEnum):
    """The life of a matching run, which is also its job (``docs/decisions/0006-matching-jobs.md``)."""

    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"
    cancelled = "cancelled"


class MatchingRun(Base):
    """One matching of every remains against every missing person, started from an
    operation (whose frequency database it uses), with its provenance.

    The row is also the run's job: ``status`` (queued -> running -> finished,
    failed or cancelled), the worker that holds it, its heartbeat and lease
    (a run whose lease expired is queued again or failed, never left
    running), progress, phase, timings, counts, the families skipped and the
    error of a failed run."""

    __tablename__ = "matching_runs"
    __table_args__ = (Index("ix_matching_runs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), index=True)
    software_version: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str] = mapped_column(String(128))
    frequency_database_id: Mapped[int] = mapped_column(ForeignKey("frequency_databases.id"))
    frequency_database_sha256: Mapped[str] = mapped_column(String(64))
    mutation_models: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_remains: Mapped[int] = mapped_column(Integer, default=0)
    n_missing: Mapped[int] = mapped_column(Integer, default=0)
    #: when a worker took it (the references typed after it are newer evidence)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # -- the job
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.finished.value,
                                        server_default=RunStatus.finished.value)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    phase: Mapped[str] = mapped_column(String(64), default="", server_default="")
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: seconds per phase, counts (candidates, components), families skipped (with their markers)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    skipped: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    #: the lineage databases the run used, per system: id, name, sha256, database_sha256, estimator, size
    lineage_databases: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: what the run recomputed and why (``workflows.incremental``): ``{"mode": "full" | "incremental",
    #: "reasons": [...], counts}``; its inputs' fingerprints are in ``matching_run_inputs`` (``models_runs``)
    recomputed: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Candidate(Base):
    """A (remains, missing person) pair kept by a matching run."""

    __tablename__ = "candidates"
    __table_args__ = (
        UniqueConstraint("run_id", "remains_id", "missing_person_id", name="uq_candidates_run_pair"),
        Index("ix_candidates_run_remains_rank", "run_id", "remains_id", "rank"),
        Index("ix_candidates_run_lr", "run_id", "log10_lr"),
        Index("ix_candidates_remains_run", "remains_id", "run_id"),
        # the best LR of each remains in a run from the index alone (lists, filters, dashboard; migration 0010)
        Index("ix_candidates_run_remains_lr", "run_id", "remains_id", "log10_lr"),
        # each remains' best candidate of a run (rank 1: its largest log10 LR) in LR order: the remains list
        # sorted by best LR walks it and stops at the page; its LR filters and the dashboard's matched count
        # read a range of it (partial: one row a remains; ``rank`` in it to cover the reads; migration 0012)
        Index("ix_candidates_run_best", "run_id", "log10_lr", "remains_id", "rank",
              sqlite_where=text("rank = 1"), postgresql_where=text("rank = 1")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("matching_runs.id", ondelete="CASCADE"), index=True)
    remains_id: Mapped[int] = mapped_column(ForeignKey("remains.id"), index=True)
    missing_person_id: Mapped[int] = mapped_column(ForeignKey("missing_persons.id"), index=True)
    remains_profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id"))
    log10_lr: Mapped[float | None] = mapped_column(Float, nullable=True)  # None = LR 0
    posterior: Mapped[float] = mapped_column(Float)
    exclusions: Mapped[int] = mapped_column(Integer)
    n_markers: Mapped[int] = mapped_column(Integer)
    #: 1, 2, ... per remains in the run, best LR first: rank 1 holds the remains' largest ``log10_lr`` (LR 0
    #: only when every one is), one row a remains (the remains list and the dashboard read it)
    rank: Mapped[int] = mapped_column(Integer)
    per_marker: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: the GLR (log10) of the call, when the run's best joint assignment places this remains on this
    #: missing person: the best assignment against the best one without this pairing (dvir's GLR);
    #: ``glr_bound``: a certified lower bound that already settles the call (not solved further)
    log10_glr: Mapped[float | None] = mapped_column(Float, nullable=True)
    glr_bound: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: with lineage evidence: ``{"log10_lr": {"autosomal", "Y", "mt"}, "mismatches": {"Y", "mt"}}`` (log10
    #: None = LR 0); ``log10_lr`` above is their product
    systems: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    remains: Mapped[Remains] = relationship()
    missing_person: Mapped[MissingPerson] = relationship()
    run: Mapped[MatchingRun] = relationship()


class Identification(Base):
    """A decision that remains are a missing person.

    At most one *active* (proposed or confirmed) identification per remains:
    a partial unique index, so two concurrent proposals end with one winner.
    ``version`` is bumped by every change; a decision updates only the version
    it read (optimistic locking in the database).
    """

    __tablename__ = "identifications"
    __table_args__ = (
        Index(
            "uq_identifications_active_remains",
            "remains_id",
            unique=True,
            sqlite_where=text("state IN ('proposed', 'confirmed')"),
            postgresql_where=text("state IN ('proposed', 'confirmed')"),
        ),
        Index("ix_identifications_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    remains_id: Mapped[int] = mapped_column(ForeignKey("remains.id"), index=True)
    missing_person_id: Mapped[int] = mapped_column(ForeignKey("missing_persons.id"), index=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), nullable=True)
    state: Mapped[IdentificationState] = mapped_column(_enum(IdentificationState, "identification_state"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    proposed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    proposal_note: Mapped[str] = mapped_column(Text, default="")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    remains: Mapped[Remains] = relationship()
    missing_person: Mapped[MissingPerson] = relationship()
    candidate: Mapped[Candidate | None] = relationship()
    proposed_by: Mapped[User] = relationship(foreign_keys=[proposed_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class Notification(Base):
    """The family liaison's record that relatives were told of a confirmed identification:
    whom (a donor of the family, or None for a relative without a sample), how, when, and by whom."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    identification_id: Mapped[int] = mapped_column(ForeignKey("identifications.id"), index=True)
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("donors.id"), nullable=True)
    method: Mapped[str] = mapped_column(String(32))  # "in person", "phone", "letter", ...
    notified_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    identification: Mapped[Identification] = relationship()
    donor: Mapped[Donor | None] = relationship()


# ---------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------


class AuditEntry(Base):
    """One audit entry. ``hash`` = SHA-256 of the previous hash and this
    entry's canonical JSON (``opendvi.store.audit``). Append-only: database
    triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_seq", "action", "seq"),
        Index("ix_audit_log_object", "object_type", "object_id", "seq"),
        Index("ix_audit_log_username_seq", "username", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC, hashed as written
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    object_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, hashed as written
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The last sequence number and hash of the audit chain (one row).

    Appenders lock this row, so concurrent appends never fork the chain, and
    ``audit verify`` detects a deleted tail."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class LoginThrottleKey(Base):
    """Failed sign-ins of one account name or client address (``service/throttle.py``),
    shared by every process of the service. Times are Unix seconds."""

    __tablename__ = "login_throttle"
    __table_args__ = (Index("ix_login_throttle_last", "last"),)

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # "account" or "address"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float] = mapped_column(Float, default=0.0)
    last: Mapped[float] = mapped_column(Float, default=0.0)


# tables in their own modules (fragments, lineage, run inputs), registered on Base.metadata with the rest
from opendvi.store.models_fragments import FragmentGroup, FragmentGroupMember, FragmentLink  # noqa: E402,F401
from opendvi.store.models_lineage import LineageDatabase, OperationLineage  # noqa: E402,F401
from opendvi.store.models_runs import MatchingRunInputs  # noqa: E402,F401
