"""The identification problem: pairwise LRs, exclusions, joint identification,
undisputed identifications and remains-to-remains matching.

Imports only :mod:`opendvi.core`, numpy and scipy. See ``docs/dvi.md``.

>>> from opendvi.io.case_json import read_case  # doctest: +SKIP
>>> problem = DVIProblem(read_case("case.json"))  # doctest: +SKIP
>>> solve_joint(problem).best.assignment  # doctest: +SKIP
"""

from opendvi.core.direct_match import direct_match_log_lr
from opendvi.dvi.components import MAX_ASSIGNMENTS, UNASSIGNED, Component, candidate_pairings, components
from opendvi.dvi.errors import ComponentTooLargeError, DVIError
from opendvi.dvi.joint import JointResult, JointRow, assignment_loglik, solve_joint
from opendvi.dvi.pairwise import PairwiseResult, pairwise_lr
from opendvi.dvi.problem import DVIProblem, MissingPerson, amelogenin_sex
from opendvi.dvi.remains import RemainsMatching, consensus_profile, group_remains
from opendvi.dvi.undisputed import Undisputed, UndisputedResult, find_undisputed

__all__ = [
    "MAX_ASSIGNMENTS",
    "UNASSIGNED",
    "Component",
    "ComponentTooLargeError",
    "DVIError",
    "DVIProblem",
    "JointResult",
    "JointRow",
    "MissingPerson",
    "PairwiseResult",
    "RemainsMatching",
    "Undisputed",
    "UndisputedResult",
    "amelogenin_sex",
    "assignment_loglik",
    "candidate_pairings",
    "components",
    "consensus_profile",
    "direct_match_log_lr",
    "find_undisputed",
    "group_remains",
    "pairwise_lr",
    "solve_joint",
]
