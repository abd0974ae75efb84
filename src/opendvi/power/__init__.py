"""Power planning: how well a family's references can identify its missing
person, and which relative to type next (``docs/power.md``).

Per family and missing person: the exact exclusion power per marker (the
probability that a random unrelated person is incompatible with the
references), the exact moments of the LR of the true missing person, the
inclusion power P(LR >= t) (exact convolution with a stated error bound, or
simulation with a seed and a standard error), and for untyped relatives the
same quantities expected after typing them. :func:`registry_power` does it
for a whole registry, batched by pedigree shape.

>>> from opendvi.core.case import Case, Family
>>> from opendvi.core.markers import make_marker
>>> from opendvi.core.pedigree import parent_child
>>> m = make_marker("M", ["a", "b"], [0.5, 0.5])
>>> fam = Family("F", parent_child(), {"P": {"M": ("a", "a")}}, missing=("C",))
>>> res = family_power(Case("c", (m,), families=(fam,)), "F")
>>> res.summary.ep_total, round(res.summary.e_lr, 12)  # b/b excluded; E[LR] = sum P^2 / HW
(0.25, 1.5)
"""

from opendvi.power._distribution import MarkerPower, PowerError, marker_power
from opendvi.power._family import (
    CandidatePower,
    FamilyPower,
    PowerSettings,
    Summary,
    UnevaluableFamily,
    case_power,
    family_power,
    untyped_relatives,
)
from opendvi.power._inclusion import (
    THRESHOLD_KEYS,
    THRESHOLDS,
    Inclusion,
    exact_inclusion,
    poisson_binomial,
    simulate_log10_lr,
    simulated_inclusion,
)
from opendvi.power._registry import RegistryPower, RegistryRow, registry_power

__all__ = [
    "THRESHOLDS",
    "THRESHOLD_KEYS",
    "CandidatePower",
    "FamilyPower",
    "Inclusion",
    "MarkerPower",
    "PowerError",
    "PowerSettings",
    "RegistryPower",
    "RegistryRow",
    "Summary",
    "UnevaluableFamily",
    "case_power",
    "exact_inclusion",
    "family_power",
    "marker_power",
    "poisson_binomial",
    "registry_power",
    "simulate_log10_lr",
    "simulated_inclusion",
    "untyped_relatives",
]
