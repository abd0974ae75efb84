"""The identification rules every engine shares: one home for each.

``opendvi pairwise``, ``opendvi solve`` (joint identification) and
``opendvi screen`` must give the same numbers for the same case; so each rule
that they all apply is written here once and called by each of them (the
observation model with dropout is in :mod:`opendvi.core.observation`).
``docs/statistics.md`` ("One rule in every engine") and decision 0004 give
the reasons.

* **Sex of a remains** (:func:`amelogenin_sex`, :func:`resolve_sex`): the
  Amelogenin marker is a sex test, not an STR. Y seen: male; X written twice:
  female; a lone X: unknown (a degraded male's Y may have dropped out). A
  recorded sex and the Amelogenin result that contradict each other, or a
  female record resting on a lone X, give an unknown sex with a note: an
  unknown sex pairs with every missing person, so no evidence that might be
  wrong can exclude the true one.
* **LR 1** (:func:`lr_is_one`): a marker untyped in the remains, or at which
  no reference of the family is typed, contributes LR 1 exactly.
* **Families that cannot be evaluated** (:func:`unevaluable_family_note`):
  a family whose own references are impossible at a marker (likelihood 0
  before any remains is placed; possible only without a mutation model) is
  skipped, with a note naming it and the markers; the rest of the case is
  evaluated.
* **Exclusions** (:func:`counts_as_exclusion`): a marker counts for a
  pairing when the data with V = M are impossible there once the mutation
  models are removed, as dvir counts them: a marker at which the family's
  references are already inconsistent without mutation counts for every
  pairing with its missing persons, V typed there or not (with a note:
  :func:`inconsistent_references_note`).
* **Numbers** (:func:`safe_exp`, :func:`json_number`): an LR beyond the
  float range is ``inf`` (not an error), an LR of 0 is 0; JSON writes
  ``-inf``/``inf`` as strings and NaN as ``null`` (``case-json.md``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from opendvi.core.markers import Marker, canonical_marker_name

# ---------------------------------------------------------------------------
# sex
# ---------------------------------------------------------------------------


def is_amelogenin(marker: Marker) -> bool:
    """A marker named AMEL / Amelogenin whose alleles are X and Y (a sex test:
    it never enters a likelihood)."""
    return canonical_marker_name(marker.name) == "AMEL" and {a.upper() for a in marker.alleles} <= {"X", "Y"}


def amelogenin_sex(gt: Sequence[str] | None) -> str | None:
    """Sex read from an Amelogenin result: Y seen (X/Y or Y alone) is male,
    X written twice female; a lone X, or no result, is unknown (a male whose
    Y dropped out shows a lone X).

    >>> amelogenin_sex(("X", "Y")), amelogenin_sex(("X", "X")), amelogenin_sex(("X",)), amelogenin_sex(())
    ('M', 'F', None, None)
    """
    if not gt:
        return None
    alleles = [a.strip().upper() for a in gt]
    if "Y" in alleles:
        return "M"
    if alleles.count("X") >= 2:
        return "F"
    return None


def resolve_sex(recorded: str | None, amelogenin: Sequence[str] | None, *, who: str) -> tuple[str | None, str | None]:
    """The sex used to pair a remains, and a note when the evidence conflicts.

    ``recorded`` is the sex in the remains' record, ``amelogenin`` its
    Amelogenin result (``None``: untyped). The sex is the one no evidence
    contradicts: Amelogenin decides when the record is empty; a record that
    Amelogenin contradicts (M with X/X, F with Y) gives unknown, and so does a
    female record beside a lone X (the record may itself come from that lone
    X, and a degraded male would be excluded from every male missing person).
    A male record beside a lone X stays male (his Y dropped out).

    >>> resolve_sex("F", ("X",), who="remains V1")[0] is None
    True
    >>> resolve_sex("M", ("X",), who="remains V1"), resolve_sex(None, ("X", "Y"), who="remains V1")
    (('M', None), ('M', None))
    """
    if not amelogenin:
        return recorded, None
    amel = amelogenin_sex(amelogenin)
    if recorded is None:
        return amel, None
    if amel is None:
        if recorded == "F":
            return None, (
                f"{who}: recorded sex F but Amelogenin shows a lone X (a male whose Y dropped out looks the same); "
                "sex unknown"
            )
        return recorded, None
    if amel != recorded:
        return None, f"{who}: recorded sex {recorded} but Amelogenin says {amel}; sex unknown"
    return recorded, None


def resolve_sex_with_y(
    recorded: str | None, amelogenin: Sequence[str] | None, y_markers: Sequence[str], *, who: str
) -> tuple[str | None, str | None]:
    """:func:`resolve_sex` when Y-chromosome markers were also typed (the
    Yindel of GlobalFiler, its DYS391, any Y-STR): ``y_markers`` names those
    called. A call there shows a Y chromosome, as a Y at Amelogenin does (a
    male whose AMELY is deleted shows a lone X at Amelogenin: the reason
    GlobalFiler carries the Yindel and DYS391). Amelogenin X,X beside such a
    call is a contradiction: unknown, with a note.

    >>> resolve_sex_with_y(None, ("X",), ["Yindel"], who="V1"), resolve_sex_with_y(None, None, [], who="V1")
    (('M', None), (None, None))
    >>> resolve_sex_with_y("M", ("X", "X"), ["DYS391"], who="V1")[0] is None
    True
    """
    if not y_markers:
        return resolve_sex(recorded, amelogenin, who=who)
    calls = list(amelogenin or ())
    if amelogenin_sex(calls) == "F":
        return None, f"{who}: Amelogenin says F but {', '.join(y_markers)} show a Y chromosome; sex unknown"
    return resolve_sex(recorded, [*calls, "Y"], who=who)


# ---------------------------------------------------------------------------
# markers that carry no evidence
# ---------------------------------------------------------------------------

BoolLike = bool | np.bool_ | NDArray[np.bool_]


def lr_is_one(references_typed: BoolLike, remains_typed: BoolLike) -> Any:
    """Whether a marker contributes LR 1 exactly to a pairing (``likelihood.md``):
    the remains is untyped there, or no reference of the family is typed there.
    Also under a non-stationary mutation model (where the missing person's
    marginal genotype would differ from Hardy-Weinberg by ~1e-4) and in a
    joint assignment that places one remains in such a family.
    Works on booleans and on NumPy arrays (broadcast)."""
    if isinstance(references_typed, bool) and isinstance(remains_typed, bool):  # the engines' hot path
        return not (references_typed and remains_typed)
    out = np.logical_or(np.logical_not(references_typed), np.logical_not(remains_typed))
    return bool(out) if np.ndim(out) == 0 else out


# ---------------------------------------------------------------------------
# families that cannot be evaluated; exclusions
# ---------------------------------------------------------------------------


def unevaluable_family_note(family: str, markers: Sequence[str]) -> str:
    """The note for a family whose references are impossible at ``markers``
    (likelihood 0 before any remains is placed): it is skipped, every engine
    alike, and the rest of the case goes on."""
    which = f"marker {markers[0]}" if len(markers) == 1 else f"markers {', '.join(markers)}"
    return (
        f"family {family}: the references are impossible at {which} (likelihood 0 before any remains "
        "is placed); the family cannot be evaluated and is skipped (check its genotypes or add a mutation model)"
    )


def unevaluable_family(note: str) -> tuple[str, tuple[str, ...]] | None:
    """The family and markers of a note written by
    :func:`unevaluable_family_note` (``None`` for any other note): the one
    parser of that format, for callers that report skipped families.

    >>> unevaluable_family(unevaluable_family_note("F 7", ["TH01", "FGA"]))
    ('F 7', ('TH01', 'FGA'))
    """
    m = _UNEVALUABLE.match(note)
    if m is None:
        return None
    return m["family"], tuple(x.strip() for x in m["markers"].split(","))


_UNEVALUABLE = re.compile(
    r"^family (?P<family>.+?): the references are impossible at markers? (?P<markers>.+?) \(likelihood 0 before"
)


def counts_as_exclusion(pairing_possible: BoolLike, references_possible: BoolLike) -> Any:
    """Whether a marker counts as an exclusion of a pairing V = M: the data
    with V placed on M are impossible there once the mutation models are
    removed. That is the case when V's genotype is incompatible
    (``pairing_possible`` false; pass true where V is untyped), and also when
    the family's references alone are already inconsistent without mutation
    (``references_possible`` false), which then counts for every pairing
    with the family's missing persons, V typed at the marker or not: the
    count of ``forrel::findExclusions`` / ``dvir::exclusionMatrix``.
    Booleans or NumPy arrays (broadcast)."""
    if isinstance(pairing_possible, bool) and isinstance(references_possible, bool):  # the engines' hot path
        return not (pairing_possible and references_possible)
    out = np.logical_not(np.logical_and(pairing_possible, references_possible))
    return bool(out) if np.ndim(out) == 0 else out


def inconsistent_references_note(family: str, markers: Sequence[str]) -> str:
    """The note for a family whose references are Mendelian-inconsistent
    without mutation at ``markers`` (explained by the mutation model)."""
    which = f"marker {markers[0]}" if len(markers) == 1 else f"markers {', '.join(markers)}"
    return (
        f"family {family}: the references are inconsistent without mutation at {which}; "
        "counted as an exclusion of every pairing with its missing persons (as dvir)"
    )


# ---------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------


@overload
def safe_exp(x: float) -> float: ...
@overload
def safe_exp(x: NDArray[np.float64]) -> NDArray[np.float64]: ...
def safe_exp(x: Any) -> Any:
    """exp(x) for an LR from its log: 0 for -inf, ``inf`` where the value is
    beyond the float range (an LR of 1e400 is a result, not an error), NaN
    for NaN. The cut-off is the float range itself (exp(709.78) is finite,
    exp(709.79) is not). Scalars and NumPy arrays.

    >>> safe_exp(-math.inf), safe_exp(0.0), safe_exp(800.0)
    (0.0, 1.0, inf)
    """
    if isinstance(x, np.ndarray):
        with np.errstate(over="ignore"):
            return np.exp(x)
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def json_number(x: float | None) -> float | str | None:
    """A float for JSON output (``case-json.md``): -inf as the string "-inf",
    inf as "inf", NaN and ``None`` as null.

    >>> json_number(-math.inf), json_number(math.inf), json_number(math.nan), json_number(2.5)
    ('-inf', 'inf', None, 2.5)
    """
    if x is None or math.isnan(x):
        return None
    if x == -math.inf:
        return "-inf"
    if x == math.inf:
        return "inf"
    return x


__all__ = [
    "amelogenin_sex",
    "counts_as_exclusion",
    "inconsistent_references_note",
    "is_amelogenin",
    "json_number",
    "lr_is_one",
    "resolve_sex",
    "resolve_sex_with_y",
    "safe_exp",
    "unevaluable_family",
    "unevaluable_family_note",
]
