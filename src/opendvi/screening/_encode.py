"""A case as integer arrays: the screening's working form.

Remains' genotypes become *observation codes*: per marker, every distinct
observation among the remains (an unordered genotype {a, b}, or one allele
``a`` seen with dropout probability ``d``) gets a number, and code 0 is
"untyped" (ln LR 0). The codes of all markers are laid end to end, so that
one family row of likelihood ratios is one contiguous vector and a remains is
a vector of positions into it (scikit-allel style: allele strings stay at the
edges).

Missing persons are the *rows*: one per (family, missing person), in case
order, each with its family's references as allele-index arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Case, Family
from opendvi.core.errors import OpenDVIError
from opendvi.core.markers import Marker
from opendvi.core.observation import observed_values
from opendvi.core.rules import is_amelogenin, resolve_sex
from opendvi.screening._lineage import LineageEncoding, encode_lineage

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: Sex codes used in the arrays.
SEX_CODE = {"M": 0, "F": 1, None: -1}

#: Observation-code kinds.
KIND_UNTYPED, KIND_EXACT, KIND_ONE = 0, 1, 2


class ScreeningError(OpenDVIError):
    """Screening cannot be done as asked (an unsupported marker, a bad
    setting, a work directory of another run); the message says what to change."""


@dataclass
class MarkerCodes:
    """The observation codes of one marker: ``kind[c]``, alleles ``a[c]``,
    ``b[c]`` (``b = a`` for one-allele codes) and dropout ``d[c]``."""

    kind: NDArray[np.int8]
    a: IntArray
    b: IntArray
    d: FloatArray

    def __len__(self) -> int:
        return len(self.kind)


@dataclass
class Encoded:
    """Everything the tables and the kernel need, as arrays."""

    markers: tuple[Marker, ...]
    theta: float
    remains_ids: tuple[str, ...]
    remains_sex: NDArray[np.int8]
    #: flat positions into a row of the table, shape (n_remains, n_markers)
    positions: NDArray[np.int32]
    offsets: IntArray  # (n_markers + 1,)
    codes: list[MarkerCodes]
    # rows = missing persons
    row_family: IntArray  # index into families
    row_missing: tuple[str, ...]
    row_sex: NDArray[np.int8]
    families: tuple[Family, ...]
    #: pairings restriction: remains index -> sorted array of allowed rows
    restricted: NDArray[np.bool_]
    allowed_ptr: IntArray
    allowed_rows: NDArray[np.int32]
    notes: list[str] = field(default_factory=list)
    #: Y-STR / mtDNA columns after the markers' (``_lineage.LineageEncoding``); None without lineage data
    lineage: LineageEncoding | None = None

    @property
    def n_remains(self) -> int:
        return len(self.remains_ids)

    @property
    def n_rows(self) -> int:
        return len(self.row_missing)

    @property
    def width(self) -> int:
        """Length of one row of the table (all markers' codes, then the lineage columns)."""
        return int(self.offsets[-1]) + (self.lineage.width if self.lineage is not None else 0)


def encode_case(case: Case) -> Encoded:
    """Encode a case (alleles absent from the frequency tables must already
    have been added: :meth:`Case.with_unseen_alleles`)."""
    notes: list[str] = []
    amel = [m for m in case.markers if is_amelogenin(m)]
    markers = tuple(m for m in case.markers if not is_amelogenin(m))
    if not markers and (case.lineage is None or not case.lineage.systems):
        raise ScreeningError(f"case {case.name}: no marker to screen on")
    xs = [m.name for m in markers if m.is_x]
    if xs:
        raise ScreeningError(
            f"case {case.name}: X-chromosomal markers ({', '.join(xs)}) are not supported by screening; "
            "remove them or use `opendvi pairwise`"
        )
    # -- remains: sexes and codes
    rem_sex = np.empty(len(case.remains), dtype=np.int8)
    positions = np.zeros((len(case.remains), len(markers)), dtype=np.int32)
    codes: list[MarkerCodes] = []
    offsets = np.zeros(len(markers) + 1, dtype=np.int64)
    for i, r in enumerate(case.remains):
        sex, note = resolve_sex(r.sex, r.genotypes.get(amel[0].name) if amel else None, who=f"remains {r.id}")
        if note is not None:
            notes.append(note)
        rem_sex[i] = SEX_CODE[sex]
    for j, m in enumerate(markers):
        table: dict[tuple[int, int, int, float], int] = {(KIND_UNTYPED, -1, -1, 0.0): 0}
        idx = m.index
        for i, r in enumerate(case.remains):
            gt = r.genotypes.get(m.name)
            if not gt:
                continue
            if len(gt) == 2 or r.dropout == 0.0:
                a, b = sorted((idx[gt[0]], idx[gt[-1]]))
                key = (KIND_EXACT, a, b, 0.0)
            else:
                a = idx[gt[0]]
                key = (KIND_ONE, a, a, float(r.dropout))
            c = table.get(key)
            if c is None:
                c = table[key] = len(table)
            positions[i, j] = c
        kinds = np.array([k[0] for k in table], dtype=np.int8)
        codes.append(
            MarkerCodes(
                kind=kinds,
                a=np.array([k[1] for k in table], dtype=np.int64),
                b=np.array([k[2] for k in table], dtype=np.int64),
                d=np.array([k[3] for k in table], dtype=float),
            )
        )
        offsets[j + 1] = offsets[j] + len(table)
    positions += offsets[:-1].astype(np.int32)[None, :]
    lin = encode_lineage(case, int(offsets[-1]))
    if lin is not None:
        positions = np.concatenate([positions, lin[1]], axis=1)
    # -- rows
    row_family: list[int] = []
    row_missing: list[str] = []
    row_sex: list[int] = []
    row_of: dict[str, int] = {}
    for fi, fam in enumerate(case.families):
        for mp in fam.missing:
            row_of[mp] = len(row_missing)
            row_family.append(fi)
            row_missing.append(mp)
            row_sex.append(SEX_CODE[fam.sex_of(mp)])
    # -- pairings
    restricted = np.zeros(len(case.remains), dtype=np.bool_)
    ptr = np.zeros(len(case.remains) + 1, dtype=np.int64)
    allowed: list[int] = []
    if case.pairings:
        for i, r in enumerate(case.remains):
            lst = case.pairings.get(r.id)
            if lst is not None:
                restricted[i] = True
                rows = sorted({row_of[mp] for mp in lst if mp in row_of})
                missing = [mp for mp in lst if mp not in row_of]
                if missing:
                    raise ScreeningError(f"pairings: {r.id} -> {missing[0]}: not a missing person of the case")
                allowed.extend(rows)
            ptr[i + 1] = len(allowed)
    return Encoded(
        markers=markers,
        theta=case.theta,
        remains_ids=tuple(r.id for r in case.remains),
        remains_sex=rem_sex,
        positions=positions,
        offsets=offsets,
        codes=codes,
        row_family=np.array(row_family, dtype=np.int64),
        row_missing=tuple(row_missing),
        row_sex=np.array(row_sex, dtype=np.int8),
        families=tuple(case.families),
        restricted=restricted,
        allowed_ptr=ptr,
        allowed_rows=np.array(allowed, dtype=np.int32),
        notes=notes,
        lineage=lin[0] if lin is not None else None,
    )


def log_denominator(codes: MarkerCodes, p: FloatArray) -> FloatArray:
    """ln P(observation | unrelated person), Hardy-Weinberg, per code (0 for
    untyped): the observation model summed against the Hardy-Weinberg table."""
    hw = (p[:, None] * p[None, :])[None]
    with np.errstate(divide="ignore"):
        out = np.log(observed_values(hw, codes.a, codes.b, codes.kind == KIND_ONE, codes.d)[0])
    out[codes.kind == KIND_UNTYPED] = 0.0
    return out


def code_numerators(U: FloatArray, codes: MarkerCodes) -> FloatArray:
    """``sum_g P(obs | g) U[g]`` for every code, from ordered tables ``U``
    of shape (B, n, n) (:func:`opendvi.core.observation.observed_values`;
    exact codes carry d = 0: their factor (1 - d)^2 or 1 - d^2 cancels
    against the denominator). Code 0 (untyped) gives 0."""
    out = observed_values(U, codes.a, codes.b, codes.kind == KIND_ONE, codes.d)
    out[:, codes.kind == KIND_UNTYPED] = 0.0
    return out
