"""Who may do what: one table, checked by every endpoint (``docs/service.md``).

Least privilege: names of missing persons and donors are seen only by the
intake officer and the family liaison (the liaison only for confirmed
identifications); the laboratory and DVI sides work on barcodes and codes.
"""

from __future__ import annotations

from opendvi.i18n import lazy, translate
from opendvi.store.models import Role

A = Role.administrator
I = Role.intake_officer  # noqa: E741
L = Role.laboratory_analyst
D = Role.dvi_analyst
R = Role.reviewer
F = Role.family_liaison

PERMISSIONS: dict[str, frozenset[Role]] = {
    "users.manage": frozenset({A}),
    "operations.read": frozenset({A, L, D, R}),
    "operations.create": frozenset({A, L}),
    "imports.create": frozenset({A, L}),
    # families template + reference profiles: the intake officer registers
    # families (codes and barcodes only, no names), the laboratory brings profiles
    "families.import": frozenset({A, I, L}),
    # the frequencies every LR rests on: the DVI analyst (who answers for the
    # matching) and the administrator
    "frequencies.import": frozenset({A, D}),
    # the imports page: whoever may import something
    "imports.page": frozenset({A, I, L, D}),
    "remains.read": frozenset({A, L, D, R}),
    "remains.write": frozenset({A, L}),
    "candidates.read": frozenset({A, D, R}),
    "matching.run": frozenset({D}),
    "families.read": frozenset({A, I, D, R}),
    "persons.write": frozenset({I}),
    # the donor form (relationship, consent, date of birth, name, contact) and the pedigree form
    # (add a relative, link a donor sample to a member): the intake officer, who meets the families
    "donors.write": frozenset({I}),
    "pedigree.write": frozenset({I}),
    # the family liaison's list of confirmed identifications with the relatives to notify, and the
    # record of each notification
    "notifications.read": frozenset({F}),
    "notifications.write": frozenset({F}),
    "identifications.read": frozenset({A, D, R, F}),
    "identifications.propose": frozenset({D}),
    "identifications.decide": frozenset({R}),
    "identifications.withdraw": frozenset({D, R}),
    # fragments of one person (groups of remains): proposed by the DVI analyst, confirmed by a reviewer
    # who did not propose it (four eyes), split by either (a confirmed group: the reviewer)
    "fragments.propose": frozenset({D}),
    "fragments.decide": frozenset({R}),
    "fragments.split": frozenset({D, R}),
    "audit.read": frozenset({A, R}),
    "audit.verify": frozenset({A}),
    # one's own TOTP second factor: for the roles whose decisions weigh most
    "account.totp": frozenset({A, R}),
    # not an endpoint: who sees names in the responses of the endpoints above
    "names.read": frozenset({I, F}),
}


#: Evidence rules (``opendvi.store.repositories.EVIDENCE_RULES``) that a proposal or a confirmation may
#: break when the user gives a reason (``override_reason``), recorded in the audit entry. The others are
#: always refused (409): a superseded run, a re-typed remains or reference, changed frequencies - run
#: matching again. Several remains of one missing person (fragmented or commingled remains) are a real
#: case: a second active identification of a missing person passes with a reason.
EVIDENCE_OVERRIDABLE: frozenset[str] = frozenset({"missing_person_identified", "below_policy"})


def allowed(role: Role, permission: str) -> bool:
    return role in PERMISSIONS[permission]


class _Titles(dict[Role, str]):
    """Role titles: ``ROLE_TITLES[role]`` is read in the request's language (``opendvi.i18n``)."""

    def __getitem__(self, role: Role) -> str:
        return translate(super().__getitem__(role))


ROLE_TITLES = _Titles({
    A: lazy("Administrator"),
    I: lazy("Intake officer"),
    L: lazy("Laboratory analyst"),
    D: lazy("DVI analyst"),
    R: lazy("Reviewer"),
    F: lazy("Family liaison"),
})
