"""Markers: name, alleles, frequencies, chromosome and mutation models.

Alleles are strings ("9.3", "31.2" are microvariants); their numeric value is
derived only where a model needs it (stepwise, onestep). A marker's
frequencies sum to 1. Marker names are compared through :func:`canonical_marker_name`
so that "vWA", "VWA", "TH01", "THO1", "Penta D", "PENTA_D" and "PentaD" meet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from opendvi.core.errors import MarkerError
from opendvi.core.mutation import MutationModel

FloatArray = NDArray[np.float64]

CHROMOSOMES = ("autosomal", "X")
FREQ_SUM_TOL = 1e-6
#: Minimum frequency given to an allele absent from the database when the
#: database size is unknown (``likelihood.md``).
DEFAULT_MIN_FREQUENCY = 0.001

# Display names for canonical keys: the spelling opendvi writes.
_PREFERRED = {
    "VWA": "vWA",
    "TH01": "TH01",
    "PENTAD": "Penta D",
    "PENTAE": "Penta E",
    "AMEL": "AMEL",
    "DYS391": "DYS391",
    "D22GATA198B05": "D22GATA198B05",
}
_ALIASES = {
    "THO1": "TH01",
    "TH1": "TH01",
    "AMELOGENIN": "AMEL",
    "AM": "AMEL",
    "D22S1045": "D22S1045",
    "FIBRA": "FGA",
    "FGA": "FGA",
}


def canonical_marker_name(name: str) -> str:
    """The key under which marker names are compared.

    Case, spaces, dashes, underscores and dots are ignored, and the known
    aliases are merged:

    >>> canonical_marker_name("Penta D"), canonical_marker_name("PENTA_D")
    ('PENTAD', 'PENTAD')
    >>> canonical_marker_name("THO1"), canonical_marker_name("vWA")
    ('TH01', 'VWA')
    """
    key = re.sub(r"[\s_\-.]+", "", name).upper()
    return _ALIASES.get(key, key)


def display_marker_name(name: str) -> str:
    """The spelling opendvi uses for a marker name it reads ("VWA" -> "vWA")."""
    key = canonical_marker_name(name)
    return _PREFERRED.get(key, name.strip())


@dataclass(frozen=True)
class Marker:
    """One genetic marker.

    ``female`` and ``male`` are the mutation models for a mother's and a
    father's alleles (``None`` = no mutation). ``database_size`` (number of
    individuals behind the frequencies) sets the minimum frequency 5 / (2N)
    for alleles absent from the database.
    """

    name: str
    alleles: tuple[str, ...]
    frequencies: tuple[float, ...]
    chromosome: str = "autosomal"
    female: MutationModel | None = None
    male: MutationModel | None = None
    database_size: int | None = None
    added_alleles: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.name or not self.name.strip():
            problems.append("empty marker name")
        if self.chromosome not in CHROMOSOMES:
            problems.append(f"chromosome must be 'autosomal' or 'X', found {self.chromosome!r}")
        if len(self.alleles) == 0:
            problems.append("no alleles")
        if len(self.alleles) != len(self.frequencies):
            problems.append(f"{len(self.alleles)} alleles but {len(self.frequencies)} frequencies")
        seen: set[str] = set()
        for a in self.alleles:
            if not isinstance(a, str) or not a.strip():
                problems.append(f"invalid allele label {a!r}")
            elif a in seen:
                problems.append(f"allele {a!r} listed twice")
            seen.add(a)
        for a, f in zip(self.alleles, self.frequencies, strict=False):
            if not isinstance(f, (int, float)) or not math.isfinite(f) or not (0.0 < f <= 1.0):
                problems.append(f"frequency of allele {a} must be in (0, 1], found {f!r}")
        if not problems:
            total = math.fsum(self.frequencies)
            if abs(total - 1.0) > FREQ_SUM_TOL:
                problems.append(f"frequencies sum to {total:.8g}, not 1")
        if self.database_size is not None and self.database_size <= 0:
            problems.append(f"database size must be positive, found {self.database_size}")
        if problems:
            raise MarkerError(f"marker {self.name}: " + "; ".join(problems))
        # Build the matrices now so that invalid parameters fail at load time.
        _ = self.female_matrix, self.male_matrix

    # -- derived --------------------------------------------------------------
    @property
    def n_alleles(self) -> int:
        return len(self.alleles)

    @property
    def is_x(self) -> bool:
        return self.chromosome == "X"

    @cached_property
    def p(self) -> FloatArray:
        """Frequencies as an array (read-only)."""
        arr = np.array(self.frequencies, dtype=float)
        arr.setflags(write=False)
        return arr

    @cached_property
    def index(self) -> dict[str, int]:
        """Allele label -> position."""
        return {a: i for i, a in enumerate(self.alleles)}

    def _matrix(self, model: MutationModel | None) -> FloatArray | None:
        if model is None or (model.is_trivial and model.transform is None):
            return None
        M = model.matrix(self.alleles, self.p, marker=self.name)
        M.setflags(write=False)
        return M

    @cached_property
    def female_matrix(self) -> FloatArray | None:
        """Mutation matrix for a mother's alleles, or None (identity)."""
        return self._matrix(self.female)

    @cached_property
    def male_matrix(self) -> FloatArray | None:
        """Mutation matrix for a father's alleles, or None (identity)."""
        return self._matrix(self.male)

    @cached_property
    def lump_cache(self) -> dict[bytes, bool]:
        """Memo of which allele sets can be lumped (used by the likelihood)."""
        return {}

    @cached_property
    def female_lumpable(self) -> bool:
        """Whether any set of alleles can be merged exactly under the female model."""
        return _universally_lumpable(self.female_matrix)

    @cached_property
    def male_lumpable(self) -> bool:
        """Whether any set of alleles can be merged exactly under the male model."""
        return _universally_lumpable(self.male_matrix)

    @property
    def has_mutation(self) -> bool:
        return self.female_matrix is not None or self.male_matrix is not None

    # -- transformations ------------------------------------------------------
    def without_mutation(self) -> Marker:
        return replace(self, female=None, male=None)

    def with_alleles(self, extra: Iterable[str]) -> Marker:
        """This marker with alleles absent from its database added.

        Each new allele gets the minimum frequency 5 / (2N) (N the database
        size, or 0.001 when unknown), then all frequencies are renormalised
        (``likelihood.md``). The new alleles are recorded in ``added_alleles``.
        """
        new = [a for a in dict.fromkeys(extra) if a not in self.index]
        if not new:
            return self
        bad = [a for a in new if not a or not a.strip()]
        if bad:
            raise MarkerError(f"marker {self.name}: invalid allele label {bad[0]!r}")
        if (
            (self.female is not None
            and self.female.model == "custom")
            or (self.male is not None and self.male.model == "custom")
        ):
            raise MarkerError(
                f"marker {self.name}: allele(s) {', '.join(new)} are not in the custom mutation "
                "matrix; add them to the marker's allele list and matrix"
            )
        fmin = self.minimum_frequency
        freqs = [*self.frequencies, *([fmin] * len(new))]
        total = math.fsum(freqs)
        return replace(
            self,
            alleles=(*self.alleles, *new),
            frequencies=tuple(f / total for f in freqs),
            added_alleles=(*self.added_alleles, *new),
        )

    @property
    def minimum_frequency(self) -> float:
        if self.database_size:
            return 5.0 / (2.0 * self.database_size)
        return DEFAULT_MIN_FREQUENCY


def make_marker(
    name: str,
    alleles: Sequence[str | int | float],
    frequencies: Sequence[float] | None = None,
    *,
    chromosome: str = "autosomal",
    female: MutationModel | None = None,
    male: MutationModel | None = None,
    database_size: int | None = None,
) -> Marker:
    """Convenience constructor: alleles may be numbers; equal frequencies when
    none are given.

    >>> m = make_marker("TPOX", [8, 9, 10])
    >>> m.alleles, round(sum(m.frequencies), 12)
    (('8', '9', '10'), 1.0)
    """
    labels = tuple(_allele_label(a) for a in alleles)
    if frequencies is None:
        frequencies = [1.0 / len(labels)] * len(labels)
    return Marker(
        name=name,
        alleles=labels,
        frequencies=tuple(float(f) for f in frequencies),
        chromosome=chromosome,
        female=female,
        male=male if male is not None else female,
        database_size=database_size,
    )


def _universally_lumpable(M: FloatArray | None) -> bool:
    """True when off-diagonal entries depend only on the target allele
    (M_ij = c_j, i != j) and M_ii - c_i is the same for all i: then every
    partition of the alleles is exactly lumpable (equal and proportional
    models are of this kind)."""
    if M is None:
        return True
    n = M.shape[0]
    if n < 3:
        return True
    off = M.copy()
    np.fill_diagonal(off, np.nan)
    c = np.nanmax(off, axis=0)
    if not np.allclose(np.nanmin(off, axis=0), c, rtol=1e-12, atol=0.0):
        return False
    d = np.diag(M) - c
    return bool(np.allclose(d, d[0], rtol=1e-12, atol=1e-15))


def _allele_label(a: str | int | float) -> str:
    if isinstance(a, float) and a.is_integer():
        return str(int(a))
    return str(a).strip()
