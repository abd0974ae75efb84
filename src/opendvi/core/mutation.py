"""Mutation models: the matrices of allele transmission with mutation.

``M[i, j]`` is the probability that a parent's allele ``i`` is transmitted as
allele ``j``; rows sum to 1. The named models follow Familias and pedmut to
the letter (``shared/design/mutation-models.md``), so that the same name and
parameters give the same matrix to the last bit that matters:

>>> import numpy as np
>>> m = MutationModel(model="equal", rate=0.01)
>>> M = m.matrix(["1", "2", "3"], np.array([0.2, 0.3, 0.5]), marker="M1")
>>> float(M[0, 0]), float(M[0, 1])
(0.99, 0.005)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.core.errors import MutationModelError

FloatArray = NDArray[np.float64]

MODELS = ("trivial", "equal", "proportional", "stepwise", "onestep", "custom")
TRANSFORMS = (None, "stationary")
#: how far ``p S`` may be from ``p`` for a stationary version ``S`` of a model
STATIONARY_TOLERANCE = 1e-12
_ROW_TOL = 1e-9


def allele_value(allele: str, *, marker: str, model: str) -> float:
    """The numeric value of an STR allele label ("9.3" -> 9.3)."""
    try:
        value = float(allele)
    except ValueError:
        raise MutationModelError(
            f"marker {marker}: the {model} model needs numeric alleles, found {allele!r}"
        ) from None
    if not math.isfinite(value):
        raise MutationModelError(f"marker {marker}: allele {allele!r} is not a finite number")
    return value


@dataclass(frozen=True)
class MutationModel:
    """A named mutation model with its parameters (one sex of one marker).

    ``model`` is one of ``equal``, ``proportional``, ``stepwise``, ``onestep``,
    ``custom`` (with ``matrix``) or ``trivial`` (no mutation). ``transform``
    may be ``"stationary"``.
    """

    model: str
    rate: float = 0.0
    rate2: float = 0.0
    range: float = 0.5
    matrix_values: tuple[tuple[float, ...], ...] | None = field(default=None, repr=False)
    transform: str | None = None

    # -- construction -------------------------------------------------------
    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None, *, marker: str) -> MutationModel | None:
        """Build from the ``dvi-case/1`` JSON object (``None`` = no mutation)."""
        if spec is None:
            return None
        if not isinstance(spec, Mapping):
            raise MutationModelError(f"marker {marker}: mutation model must be an object, found {spec!r}")
        model = spec.get("model")
        if model not in MODELS:
            raise MutationModelError(
                f"marker {marker}: unknown mutation model {model!r} (expected one of {', '.join(MODELS)})"
            )
        known = {"model", "rate", "rate2", "range", "matrix", "transform"}
        extra = set(spec) - known
        if extra:
            raise MutationModelError(f"marker {marker}: unknown mutation parameter(s) {', '.join(sorted(extra))}")

        def num(name: str, default: float) -> float:
            value = spec.get(name, default)
            if value is None:
                return default
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MutationModelError(
                    f"marker {marker}: mutation parameter {name} must be a number, found {value!r}"
                )
            return float(value)

        if model == "stepwise" and spec.get("range") is None:
            raise MutationModelError(f"marker {marker}: stepwise mutation parameter range is missing")
        matrix = spec.get("matrix")
        values: tuple[tuple[float, ...], ...] | None = None
        if matrix is not None:
            try:
                values = tuple(tuple(float(x) for x in row) for row in matrix)
            except (TypeError, ValueError):
                raise MutationModelError(
                    f"marker {marker}: mutation parameter matrix must be a list of rows of numbers"
                ) from None
        transform = spec.get("transform")
        if transform not in TRANSFORMS:
            raise MutationModelError(
                f"marker {marker}: unknown mutation transform {transform!r} (expected 'stationary')"
            )
        m = cls(
            model=str(model),
            rate=num("rate", 0.0),
            rate2=num("rate2", 0.0),
            range=num("range", 0.5),
            matrix_values=values,
            transform=transform,
        )
        m.validate(marker=marker)
        return m

    def to_dict(self) -> dict[str, Any]:
        """The ``dvi-case/1`` JSON object of this model."""
        out: dict[str, Any] = {"model": self.model}
        if self.model in ("equal", "proportional", "onestep", "stepwise"):
            out["rate"] = self.rate
        if self.model == "stepwise":
            out["rate2"] = self.rate2
            out["range"] = self.range
        if self.model == "custom" and self.matrix_values is not None:
            out["matrix"] = [list(r) for r in self.matrix_values]
        if self.transform:
            out["transform"] = self.transform
        return out

    def validate(self, *, marker: str) -> None:
        """Check the parameters that do not depend on the alleles."""

        def bad(name: str, value: object, why: str) -> MutationModelError:
            return MutationModelError(f"marker {marker}: {self.model} mutation parameter {name}={value!r} {why}")

        if self.model in ("equal", "proportional", "onestep", "stepwise") and not (0.0 <= self.rate <= 1.0):
            raise bad("rate", self.rate, "must be in [0, 1]")
        if self.model == "stepwise":
            if not (0.0 <= self.rate2 <= 1.0) or math.isnan(self.rate2):
                raise bad("rate2", self.rate2, "must be in [0, 1]")
            if not (0.0 < self.range < 1.0):
                raise bad("range", self.range, "must be in (0, 1)")
            if self.rate + self.rate2 > 1.0:
                raise bad("rate+rate2", self.rate + self.rate2, "must not exceed 1")
        if self.model == "custom" and self.matrix_values is None:
            raise MutationModelError(f"marker {marker}: a custom mutation model needs a matrix")

    @property
    def is_trivial(self) -> bool:
        """True when the model never mutates (identity matrix)."""
        if self.model == "trivial":
            return True
        if self.model == "stepwise":
            return self.rate == 0.0 and self.rate2 == 0.0
        if self.model in ("equal", "proportional", "onestep"):
            return self.rate == 0.0
        return False

    # -- the matrix ---------------------------------------------------------
    def matrix(self, alleles: Sequence[str], freqs: FloatArray, *, marker: str) -> FloatArray:
        """The transmission matrix over ``alleles`` (in that order)."""
        self.validate(marker=marker)  # a model built directly, not through from_dict
        n = len(alleles)
        p = np.asarray(freqs, dtype=float)
        if self.model == "trivial":
            M = np.eye(n)
        elif self.model == "equal":
            M = _equal(n, self.rate)
        elif self.model == "proportional":
            M = _proportional(p, self.rate, marker=marker)
        elif self.model == "stepwise":
            x = np.array([allele_value(a, marker=marker, model="stepwise") for a in alleles])
            M = _stepwise(x, self.rate, self.rate2, self.range)
        elif self.model == "onestep":
            x = np.array([allele_value(a, marker=marker, model="onestep") for a in alleles])
            if np.any(x != np.round(x)):
                bad = [a for a, v in zip(alleles, x, strict=True) if v != round(v)]
                raise MutationModelError(
                    f"marker {marker}: the onestep model needs integer alleles, found {', '.join(bad)}"
                )
            M = _onestep(x, self.rate)
        elif self.model == "custom":
            assert self.matrix_values is not None
            M = np.array(self.matrix_values, dtype=float)
            check_matrix(M, n, marker=marker)
        else:  # pragma: no cover - guarded by validate()
            raise MutationModelError(f"marker {marker}: unknown mutation model {self.model!r}")
        if self.transform == "stationary":
            M = stationary(M, p, marker=marker)
        return M


def check_matrix(M: FloatArray, n: int, *, marker: str) -> None:
    """Validate a custom matrix: square n x n, entries in [0, 1], rows sum to 1."""
    if M.ndim != 2 or M.shape != (n, n):
        raise MutationModelError(
            f"marker {marker}: custom mutation matrix must be {n} x {n} (one row and column per allele), "
            f"found {'x'.join(map(str, M.shape))}"
        )
    if np.any(~np.isfinite(M)) or np.any(M < 0) or np.any(M > 1):
        raise MutationModelError(f"marker {marker}: custom mutation matrix entries must be in [0, 1]")
    sums = M.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1)))
    if abs(sums[worst] - 1) > _ROW_TOL:
        raise MutationModelError(
            f"marker {marker}: custom mutation matrix row {worst + 1} sums to {sums[worst]!r}, not 1"
        )


def _equal(n: int, r: float) -> FloatArray:
    if n == 1:
        return np.ones((1, 1))
    M = np.full((n, n), r / (n - 1))
    np.fill_diagonal(M, 1.0 - r)
    return M


def _proportional(p: FloatArray, r: float, *, marker: str) -> FloatArray:
    n = len(p)
    if n == 1 or r == 0.0:
        return np.eye(n)
    limit = (1.0 - float(np.sum(p * p))) / (1.0 - float(np.min(p)))
    if r > limit:
        raise MutationModelError(
            f"marker {marker}: proportional mutation parameter rate={r!r} is too large for these "
            f"frequencies (at most {limit:.6g})"
        )
    alpha = r / float(np.sum(p * (1.0 - p)))
    M = np.tile(alpha * p, (n, 1))
    np.fill_diagonal(M, 1.0 - alpha * (1.0 - p))
    return M


def _stepwise(x: FloatArray, r: float, r2: float, R: float) -> FloatArray:
    n = len(x)
    group = np.round(10.0 * (x - np.round(x))).astype(int)
    M = np.zeros((n, n))
    for i in range(n):
        same = (group == group[i]) & (np.arange(n) != i)
        other = group != group[i]
        if same.any():
            w = R ** np.abs(x[i] - x[same])
            M[i, same] = r * w / w.sum()
        n_other = int(other.sum())
        if n_other:
            M[i, other] = r2 / n_other
        if same.any() and n_other:
            M[i, i] = 1.0 - r - r2
        elif same.any():
            M[i, i] = 1.0 - r
        elif n_other:
            M[i, i] = 1.0 - r2
        else:
            M[i, i] = 1.0
    return M


def _onestep(x: FloatArray, r: float) -> FloatArray:
    n = len(x)
    M = np.zeros((n, n))
    for i in range(n):
        nb = np.abs(x - x[i]) == 1
        k = int(nb.sum())
        if k:
            M[i, nb] = r / k
            M[i, i] = 1.0 - r
        else:
            M[i, i] = 1.0
    return M


def stationary(M: FloatArray, p: FloatArray, *, marker: str) -> FloatArray:
    """The "PM" stationary version of ``M`` (Simonsson & Mostad 2015).

    Keeps the overall mutation rate ``1 - sum_i M_ii p_i`` and makes
    ``p S = p``.
    """
    n = len(p)
    if n == 1:
        return M.copy()
    # R = 1 - sum_i M_ii p_i, written sum_i p_i (1 - M_ii) so that it is
    # exactly 0 for a model that never mutates (frequencies may sum to
    # 1 - 1e-16, which would otherwise leave a singular system or NaNs)
    R = float(np.sum(p * (1.0 - np.diag(M))))
    if R == 0.0:
        return M.copy()
    X = M.T - np.eye(n)
    X[-1, :] = 1.0
    b = np.zeros(n)
    b[-1] = 1.0
    try:
        v = np.linalg.solve(X, b)
    except np.linalg.LinAlgError:
        raise MutationModelError(f"marker {marker}: the stationary transform has no solution for this model") from None
    denom = float(np.sum(v * (1.0 - np.diag(M))))  # 1 - sum_k M_kk v_k, as sum v = 1
    if not (denom > 0.0 and np.all(np.isfinite(v))):
        # e.g. stepwise with rate2 = 0 and a microvariant alone in its group:
        # that allele never mutates, the stationary distribution v is not
        # unique and the PM formula is undefined
        raise MutationModelError(
            f"marker {marker}: the stationary transform is undefined for this model "
            "(some alleles never mutate into the others)"
        )
    d = R * v / (denom * p)
    if np.any(d * (1.0 - np.diag(M)) > 1.0 + 1e-12) or np.any(d < 0):
        raise MutationModelError(
            f"marker {marker}: no stationary version of this mutation model exists "
            "(the scaled mutation rate of some allele exceeds 1)"
        )
    S = np.eye(n) + d[:, None] * (M - np.eye(n))
    # the answer checked, not trusted: where some alleles almost never mutate into the others (a
    # stepwise model with rate2 = 1e-204 and a microvariant), the system is so ill-conditioned that
    # v is wrong in the third digit and S would silently not keep the frequencies
    if float(np.max(np.abs(p @ S - p))) > STATIONARY_TOLERANCE:
        raise MutationModelError(
            f"marker {marker}: the stationary transform cannot be computed accurately for this model "
            "(some alleles almost never mutate into the others)"
        )
    return S


def is_lumpable(M: FloatArray, block: NDArray[np.intp]) -> bool:
    """Whether the alleles in ``block`` can be merged into one without changing
    any likelihood: every allele of the block has the same transition
    probabilities to each allele outside it and the same total into it."""
    if len(block) < 2:
        return True
    rows = M[block]
    outside = np.ones(M.shape[0], dtype=bool)
    outside[block] = False
    out_part = rows[:, outside]
    into = rows[:, block].sum(axis=1)
    return bool(
        np.allclose(out_part, out_part[0], rtol=1e-12, atol=0.0) and np.allclose(into, into[0], rtol=1e-12, atol=0.0)
    )
