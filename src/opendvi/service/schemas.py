"""The JSON API's response models: what each endpoint returns, documented in the OpenAPI schema.

The values are built by :mod:`opendvi.service.views` (the same functions feed the pages); these
models describe them and check them on the way out. A key that a view leaves out stays out of the
response (the routers serialise with ``response_model_exclude_unset``): names reach only the roles
that may read them (``missing_person_name``, a member's ``name``), detail keys only the detail
endpoints (``profiles``, ``per_marker``, ``dashboard``). Numbers pass through as the view gave them
(an integer stays an integer).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

#: a JSON number, passed through unchanged (``3`` stays ``3``, ``0.5`` stays ``0.5``)
Number = Annotated[Any, WithJsonSchema({"type": "number"})]
#: an ISO 8601 date or timestamp the view already wrote as a string (``views.iso``)
IsoText = str | None


class Out(BaseModel):
    """A response object: its keys are exactly the view's (a key unknown here is refused, so that the
    schema and the views cannot drift apart)."""

    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------
# service, accounts
# ---------------------------------------------------------------------------


class HealthOut(Out):
    status: str
    version: str


class UserOut(Out):
    username: str
    full_name: str
    role: str
    active: bool
    must_change_password: bool
    totp: bool


class MeOut(UserOut):
    csrf_token: str


class LoginOut(Out):
    token: str
    csrf_token: str
    user: UserOut
    must_change_password: bool


class OkOut(Out):
    ok: bool


class PasswordChangedOut(OkOut):
    must_change_password: bool


class TotpStateOut(OkOut):
    totp: bool


class TotpSetupOut(Out):
    secret: str
    uri: str


class LanguageOut(Out):
    language: str | None
    locale: str
    supported: list[str]


# ---------------------------------------------------------------------------
# operations, imports, matching runs
# ---------------------------------------------------------------------------


class RunOut(Out):
    """A matching run: its job (status, progress, phase, timings, counts, families skipped, error) and
    its provenance."""

    id: int
    status: str
    progress: Number | None
    phase: str | None
    error: str | None
    cancel_requested: bool
    attempts: int | None
    queued_at: IsoText
    started_at: IsoText
    finished_at: IsoText
    heartbeat_at: IsoText
    timings: dict[str, Any]
    counts: dict[str, Any]
    skipped_families: list[Any]
    software_version: str | None
    engine: str | None
    frequency_database_sha256: str | None
    parameters: dict[str, Any] | None
    n_remains: int | None
    n_missing: int | None
    mutation_models: dict[str, Any] | None
    lineage_databases: dict[str, Any] | None = None
    #: what the run recomputed and why (incremental matching): ``mode`` ("full", "incremental"),
    #: ``reasons``, counts of remains and families screened, pairs screened and carried over
    recomputed: dict[str, Any] | None = None


class DashboardOut(Out):
    expected: int | None
    received: int
    typed: int
    matched: int
    proposed: int
    confirmed: int
    runs: int


class OperationOut(Out):
    code: str
    name: str
    kind: str
    received_on: IsoText
    expected_count: int | None
    frequency_database_sha256: str | None
    dashboard: DashboardOut | None = None
    latest_run: RunOut | None = None


class RunQueuedOut(Out):
    run: int
    status: str
    url: str


class ImportOut(Out):
    """What an import brought (counts of new and re-typed objects, notes)."""

    import_id: int
    operation: str
    remains_new: int
    remains_retyped: int
    families_new: int
    missing_persons_new: int
    donors_new: int
    reference_profiles_new: int
    notes: list[str]


class FrequencyImportOut(Out):
    import_id: int
    operation: str
    frequency_database: int
    frequency_database_sha256: str
    markers: int
    population: str | None
    replaced: str | None


# ---------------------------------------------------------------------------
# remains and candidates
# ---------------------------------------------------------------------------


class ActiveIdentificationOut(Out):
    id: int
    state: str
    missing_person: str


class RemainsBase(Out):
    barcode: str
    operation: str
    bag: str | None
    sample_type: str | None
    laboratory: str | None
    kit: str | None
    sex: str | None
    profile_version: int | None
    n_markers_typed: int


class RemainsRowOut(RemainsBase):
    """A remains in a list, with the best LR of the current run."""

    best_log10_lr: Number | None
    best_lr: str | None
    identification: ActiveIdentificationOut | None


class ProfileOut(Out):
    version: int
    created_at: IsoText
    dropout: Number | None
    laboratory: str | None
    kit: str | None
    genotypes: dict[str, Any]
    #: Y-STR and mtDNA haplotypes (``{"Y": {locus: value}, "mt": {"range", "variants"}}``); null: none
    haplotypes: dict[str, Any] | None = None


class RemainsOut(RemainsBase):
    """A remains; ``profiles`` (every version) on ``GET /api/remains/{barcode}`` only."""

    identification: ActiveIdentificationOut | None
    profiles: list[ProfileOut] | None = None


class MarkerLROut(Out):
    marker: str
    log10_lr: Number | None
    lr: str
    typed: bool


class CandidateOut(Out):
    """A pairing of a remains and a missing person; ``per_marker`` on ``GET /api/candidates/{id}`` only.
    ``log10_glr``: the call's GLR in the run's best joint assignment (``"inf"``: no alternative), else null."""

    id: int
    run_id: int
    remains: str
    missing_person: str
    family: str
    log10_lr: Number | None
    lr: str
    posterior: Number | None
    exclusions: int | None
    n_markers: int | None
    rank: int | None
    log10_glr: Number | str | None
    glr_bound: bool | None
    per_marker: list[MarkerLROut] | None = None
    #: with lineage evidence (Y-STR, mtDNA): each system's log10 LR (null: LR 0) and LR beside the
    #: combined ``log10_lr``, the mismatches of each lineage system; ``lineage`` (the details of each
    #: lineage LR) on ``GET /api/candidates/{id}`` only
    log10_lr_by_system: dict[str, Number | None] | None = None
    lr_by_system: dict[str, str] | None = None
    mismatches: dict[str, int] | None = None
    lineage: dict[str, Any] | None = None
    #: the remains is in a confirmed fragment group, matched as one person: these are the numbers of the
    #: group's consensus profile (``{"consensus": id, "members": [barcodes]}``)
    fragment_group: dict[str, Any] | None = None


# ---------------------------------------------------------------------------
# families, missing persons, donors
# ---------------------------------------------------------------------------


class MemberDonorOut(Out):
    barcode: str
    relationship: str | None
    consent: str | None
    profile_version: int | None


class MemberOut(Out):
    """A pedigree member; ``name`` (a missing person's) only for the roles that read names."""

    id: str
    father: str | None
    mother: str | None
    sex: str | None
    missing: bool
    donor: MemberDonorOut | None
    name: str | None = None


class FamilyOut(Out):
    code: str
    members: list[MemberOut]
    missing_persons: list[str]


class DetailsOut(Out):
    missing_person: str
    full_name: str
    date_of_birth: IsoText
    place_last_seen: str | None
    notes: str | None


class DonorOut(Out):
    barcode: str
    relationship: str | None
    consent: str | None
    consent_date: IsoText
    changed: list[str]


# ---------------------------------------------------------------------------
# identifications, notifications
# ---------------------------------------------------------------------------


class IdentificationOut(Out):
    """An identification; ``missing_person_name`` only for the roles that read names, once confirmed."""

    id: int
    state: str
    version: int
    remains: str
    operation: str
    missing_person: str
    family: str
    candidate_id: int | None
    log10_lr: Number | None
    posterior: Number | None
    proposed_by: str
    proposed_at: IsoText
    proposal_note: str | None
    decided_by: str | None
    decided_at: IsoText
    decision_reason: str | None
    missing_person_name: str | None = None


class RelativeOut(Out):
    barcode: str
    member: str
    name: str
    relationship: str | None
    contact: str | None
    consent: str | None


class NotificationOut(Out):
    id: int
    donor: str | None
    donor_name: str
    method: str
    notified_on: IsoText
    note: str | None
    by: str | None
    created_at: IsoText


class NotificationsOut(Out):
    identification: int
    state: str
    missing_person: str
    missing_person_name: str
    family: str
    relatives: list[RelativeOut]
    notifications: list[NotificationOut]


# ---------------------------------------------------------------------------
# audit
# ---------------------------------------------------------------------------


class AuditEntryOut(Out):
    seq: int
    at: str = Field(description="ISO 8601 UTC, as hashed")
    username: str | None
    action: str
    object_type: str | None
    object_id: str | None
    details: Any
    hash: str
    prev_hash: str


class ChainReportOut(Out):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]
    notes: list[str]
    checkpoint: dict[str, Any] | None


# -- fragments of one person (routes/api/fragments.py) ------------------------------------------------


class FragmentLinkOut(Out):
    """A pair of remains and its direct-match LR in the latest finished run (``linked``: at or above the
    run's fragment threshold; otherwise a pair inside a group, shown for its conflict)."""

    a: str
    b: str
    operation_a: str
    operation_b: str
    log10_lr: Number | None
    lr: str
    linked: bool
    lr_by_system: dict[str, Any] | None = None
    mismatches: dict[str, Any] | None = None


class FragmentMemberOut(Out):
    barcode: str
    operation: str
    bag: str | None


class FragmentGroupOut(Out):
    """A group of remains that are parts of one person: suggested (by a run), proposed, confirmed (four
    eyes) or split; its members and the links among them."""

    id: int
    state: str
    version: int
    run: int | None
    members: list[FragmentMemberOut]
    links: list[FragmentLinkOut]
    proposed_by: str | None
    proposed_at: IsoText
    proposal_note: str | None
    decided_by: str | None
    decided_at: IsoText
    decision_reason: str | None
