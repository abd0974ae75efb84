"""Repository functions: every option keyword-only, one session passed in.

The caller owns the transaction (``opendvi.store.db.transaction``); these
functions add, flush and raise :mod:`opendvi.store.errors`, never commit.
Every change that matters writes its audit entry in the same transaction.

One module per aggregate, every public name re-exported here
(``from opendvi.store import repositories as repo; repo.get_remains(...)``):

- :mod:`.users`: accounts, sign-in sessions, TOTP
- :mod:`.operations`: operations and their dashboard
- :mod:`.queries`: :func:`one_by`, :func:`add_unique`, :class:`Page`, :func:`paginate` and the list
  filters shared by pages, API and exports
- :mod:`.remains`: remains and profile versions
- :mod:`.families`: families, missing persons (and their details), reference donors
- :mod:`.imports`: frequency and profile imports, :class:`ImportSummary`
- :mod:`.case_import`: importing a ``dvi-case/1`` case (read, check, write)
- :mod:`.case`: the stored case for matching (:func:`build_case`)
- :mod:`.runs`: matching runs as jobs, bulk candidates
- :mod:`.candidates`: reading candidates and identifications
- :mod:`.decisions`: the decision policy, the evidence rules, proposing and deciding
- :mod:`.audit_reads`: reading the audit log
"""

from opendvi.store.models import utcnow
from opendvi.store.repositories.audit_reads import audit_entries, audit_json, page_audit
from opendvi.store.repositories.candidates import (
    candidates_for_remains,
    get_candidate,
    get_identification,
    list_identifications,
    page_candidates,
    page_identifications,
)
from opendvi.store.repositories.case import StoredCase, build_case
from opendvi.store.repositories.case_import import KnownRecords, case_import_problems, import_case
from opendvi.store.repositories.decisions import (
    EVIDENCE_RULES,
    DecisionPolicy,
    decide_identification,
    evidence_problems,
    propose_identification,
)
from opendvi.store.repositories.families import (
    donors_of,
    get_family,
    get_missing_person,
    list_families,
    list_missing_persons,
    missing_of,
    missing_person_details,
    page_families,
    set_missing_person_details,
)
from opendvi.store.repositories.imports import (
    ImportSummary,
    get_or_create_frequency_database,
    import_frequencies,
    import_remains_profiles,
)
from opendvi.store.repositories.operations import create_operation, get_operation, list_operations, operation_dashboard
from opendvi.store.repositories.queries import (
    Page,
    filter_audit,
    filter_candidates,
    filter_identifications,
    like_escape,
    paginate,
)
from opendvi.store.repositories.remains import (
    REMAINS_SORTS,
    add_profile,
    current_profile,
    get_remains,
    list_remains,
    page_remains,
    profiles_of,
    update_remains,
)
from opendvi.store.repositories.runs import (
    CANDIDATE_CHUNK,
    CandidateRow,
    cancel_run,
    claim_run,
    current_run_id,
    end_run,
    enqueue_run,
    get_run,
    insert_candidates,
    latest_run,
    recover_runs,
    runs_of,
    touch_run,
)
from opendvi.store.repositories.users import (
    change_own_password,
    create_auth_session,
    create_user,
    delete_auth_session,
    get_auth_session,
    get_user,
    list_users,
    set_totp,
    token_hash,
    update_user,
    use_totp_step,
)

__all__ = [
    "CANDIDATE_CHUNK",
    "EVIDENCE_RULES",
    "REMAINS_SORTS",
    "CandidateRow",
    "DecisionPolicy",
    "ImportSummary",
    "KnownRecords",
    "Page",
    "StoredCase",
    "add_profile",
    "audit_entries",
    "audit_json",
    "build_case",
    "cancel_run",
    "candidates_for_remains",
    "case_import_problems",
    "change_own_password",
    "claim_run",
    "create_auth_session",
    "create_operation",
    "create_user",
    "current_profile",
    "current_run_id",
    "decide_identification",
    "delete_auth_session",
    "donors_of",
    "end_run",
    "enqueue_run",
    "evidence_problems",
    "filter_audit",
    "filter_candidates",
    "filter_identifications",
    "get_auth_session",
    "get_candidate",
    "get_family",
    "get_identification",
    "get_missing_person",
    "get_operation",
    "get_or_create_frequency_database",
    "get_remains",
    "get_run",
    "get_user",
    "import_case",
    "import_frequencies",
    "import_remains_profiles",
    "insert_candidates",
    "latest_run",
    "like_escape",
    "list_families",
    "list_identifications",
    "list_missing_persons",
    "list_operations",
    "list_remains",
    "list_users",
    "missing_of",
    "missing_person_details",
    "operation_dashboard",
    "page_audit",
    "page_candidates",
    "page_families",
    "page_identifications",
    "page_remains",
    "paginate",
    "profiles_of",
    "propose_identification",
    "recover_runs",
    "runs_of",
    "set_missing_person_details",
    "set_totp",
    "token_hash",
    "touch_run",
    "update_remains",
    "update_user",
    "use_totp_step",
    "utcnow",
]
