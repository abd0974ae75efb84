"""Lineage markers: Y-STR and mtDNA haplotypes (``shared/design/lineage.md``).

A haplotype is not a set of independent autosomal markers: it passes whole
from father to son (Y) or from mother to child (mtDNA), and its founder
probability is one frequency of the whole haplotype. This module holds the
data (haplotypes, the per-system settings, the haplotype databases) and the
transmission models; :mod:`opendvi.core.lineage_lr` computes the lineage
likelihood of a pedigree and the lineage LR of a remains as a missing person;
:mod:`opendvi.core.lineage_freq` holds the frequency estimators. The mtDNA
haplotype itself (ranges, variants, the rCRS) is in
:mod:`opendvi.core.lineage_mt`.

Y-STR values
    One value per locus. A multi-copy locus (DYS385, DYF387S1) is one marker
    whose value is its copies sorted and joined by commas (``"11,14"``).
    A copy is a repeat number, an integer or a microvariant (``"13.2"``: a
    single step moves it to ``12.2`` or ``14.2``), or ``"null"`` for a null
    allele (a deletion or a primer-site variant: it is inherited unchanged and
    never reached by a single step). An untyped locus is absent.

mtDNA haplotypes
    A typed range (``"16024-16569 1-576"``) and the variants against the rCRS
    in EMPOP/ISFG notation: ``16519C`` (substitution), ``315.1C`` (insertion
    after position 315), ``249del`` (deletion), ``16093Y`` (an IUPAC code: a
    point heteroplasmy). A position of the range without a variant carries the
    rCRS base.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib.resources import files
from typing import Any

from opendvi.core.errors import MarkerError, ProfileError
from opendvi.core.lineage_mt import MtHaplotype, in_range, mt_differences, range_covers, range_text

#: The two lineage systems, as named in case files and outputs.
SYSTEMS = ("Y", "mt")
#: Frequency estimators of ``lineage.md``.
ESTIMATORS = ("augmented-counting", "clopper-pearson", "discrete-laplace")
DEFAULT_ESTIMATOR = "augmented-counting"
NULL_ALLELE = "null"

YHaplotype = Mapping[str, tuple[str, ...]]
"""A Y haplotype: locus name -> sorted copies (one string each)."""

_Y_TOKEN = re.compile(r"^(\d+)(?:\.(\d))?$", re.ASCII)

__all__ = [
    "DEFAULT_ESTIMATOR",
    "ESTIMATORS",
    "NULL_ALLELE",
    "SYSTEMS",
    "CaseLineage",
    "FrequencyEstimate",
    "MtDatabase",
    "MtSystem",
    "PersonHaplotypes",
    "YDatabase",
    "YHaplotype",
    "YMarker",
    "YSystem",
    "count_frequency",
    "default_y_marker",
    "is_y_str_locus",
    "parse_y_value",
    "y_allele_class",
    "y_mutation_rates",
    "y_step",
    "y_value_text",
]


# ---------------------------------------------------------------------------
# Y-STR alleles and haplotypes
# ---------------------------------------------------------------------------


def _y_sort_key(token: str) -> tuple[int, float]:
    if token == NULL_ALLELE:
        return (1, 0.0)
    return (0, float(token))


def parse_y_value(value: object, *, copies: int = 1, who: str = "haplotype", locus: str = "?") -> tuple[str, ...]:
    """Normalise a Y-STR value to its sorted copies.

    >>> parse_y_value("14,11", copies=2)
    ('11', '14')
    >>> parse_y_value(13.2)
    ('13.2',)
    """
    if isinstance(value, bool) or value is None:
        raise ProfileError(f"{who}, locus {locus}: expected a repeat number, found {value!r}")
    if isinstance(value, (int, float)):
        text = str(int(value)) if float(value).is_integer() else str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ProfileError(f"{who}, locus {locus}: expected a repeat number, found {value!r}")
    parts = [t.strip() for t in text.split(",")]
    tokens: list[str] = []
    for t in parts:
        if t.lower() == NULL_ALLELE:
            tokens.append(NULL_ALLELE)
            continue
        m = _Y_TOKEN.match(t)
        if not m:
            raise ProfileError(
                f"{who}, locus {locus}: invalid Y-STR allele {t!r} (expected a repeat number such as 14 or "
                f"13.2, or 'null')"
            )
        tokens.append(str(int(m.group(1))) + (f".{m.group(2)}" if m.group(2) else ""))
    if len(tokens) != copies:
        raise ProfileError(
            f"{who}, locus {locus}: {len(tokens)} value(s) {text!r} for a locus of {copies} cop"
            f"{'y' if copies == 1 else 'ies'} (write the copies sorted, joined by commas)"
        )
    return tuple(sorted(tokens, key=_y_sort_key))


def y_value_text(value: tuple[str, ...]) -> str:
    """The case-file spelling of a Y value: copies joined by commas."""
    return ",".join(value)


def y_step(token: str, steps: int) -> str | None:
    """The allele ``steps`` repeats away (microvariant suffix kept); None for a null."""
    if token == NULL_ALLELE:
        return None
    m = _Y_TOKEN.match(token)
    assert m is not None
    n = int(m.group(1)) + steps
    if n < 0:
        return None
    return str(n) + (f".{m.group(2)}" if m.group(2) else "")


def y_allele_class(token: str) -> tuple[str, int]:
    """(class, integer part): two alleles can reach each other by single steps
    only within one class (same microvariant suffix; nulls only themselves)."""
    if token == NULL_ALLELE:
        return (NULL_ALLELE, 0)
    m = _Y_TOKEN.match(token)
    assert m is not None
    return ("." + m.group(2) if m.group(2) else "", int(m.group(1)))


_Y_LOCUS = re.compile(r"^(DYS\d|DYF\d|Y-?GATA|GATA[-_]?H4|DXYS156Y)", re.IGNORECASE | re.ASCII)


def is_y_str_locus(name: str) -> bool:
    """True for a Y-STR locus name (DYS..., DYF..., Y-GATA-H4 and its spellings).

    The Yindel and Amelogenin are sex evidence, not haplotype loci:

    >>> is_y_str_locus("DYS391"), is_y_str_locus("DYS385a"), is_y_str_locus("Yindel"), is_y_str_locus("AMEL")
    (True, True, False, False)
    """
    return bool(_Y_LOCUS.match(name.strip()))


@dataclass(frozen=True)
class YMarker:
    """A Y-STR locus: its mutation rate per meiosis and its number of copies."""

    name: str
    rate: float
    copies: int = 1

    def __post_init__(self) -> None:
        if not self.name:
            raise MarkerError("Y marker: empty name")
        if isinstance(self.rate, bool) or not (0.0 <= float(self.rate) < 1.0):
            raise MarkerError(f"Y marker {self.name}: rate must be in [0, 1), found {self.rate!r}")
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or not 1 <= self.copies <= 4:
            raise MarkerError(f"Y marker {self.name}: copies must be 1 to 4, found {self.copies!r}")


# ---------------------------------------------------------------------------
# Per-locus Y mutation rates (YHRD, via mikldk/malan: src/opendvi/data/PROVENANCE.md)
# ---------------------------------------------------------------------------


@cache
def y_mutation_rates() -> dict[str, tuple[float, int, int]]:
    """Bundled per-locus Y-STR mutation rates: name -> (rate, mutations, meioses).

    Multi-copy loci appear once (``DYS385``, ``DYF387S1``), with the rate of
    each copy.
    """
    text = files("opendvi").joinpath("data/ystr_mutation_rates_yhrd.csv").read_text(encoding="utf-8")
    out: dict[str, tuple[float, int, int]] = {}
    for row in csv.DictReader(text.splitlines()):
        name = row["Marker"]
        val = (float(row["MutProb"]), int(float(row["Mutations"])), int(float(row["Meioses"])))
        out[name] = val
        if name.endswith(("a", "b")) and name[:-1] not in out:
            out[name[:-1]] = val
    return out


def default_y_marker(name: str) -> YMarker:
    """A Y marker with the bundled rate (copies: 2 for DYS385 and DYF387S1)."""
    rates = y_mutation_rates()
    key = next((k for k in rates if k.upper() == name.upper()), None)
    if key is None:
        raise MarkerError(f"Y marker {name}: no bundled mutation rate; give 'rate' in the case file")
    copies = 2 if f"{key}a" in rates and f"{key}b" in rates else 1
    return YMarker(name=name, rate=rates[key][0], copies=copies)


# ---------------------------------------------------------------------------
# Haplotype databases
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FrequencyEstimate:
    """f(h) and how it was obtained: ``x`` of ``n`` database haplotypes match
    over ``over`` (the loci or the range compared)."""

    frequency: float
    x: int
    n: int
    estimator: str
    digest: str
    over: str


def _check_database(estimator: str, system: str, haplotypes: Sequence[object], counts: Sequence[object]) -> None:
    """The estimator is known (and fits the system), one positive integer count per haplotype."""
    if estimator not in ESTIMATORS:
        raise MarkerError(f"{system} database: estimator must be one of {', '.join(ESTIMATORS)}, found {estimator!r}")
    if estimator == "discrete-laplace" and system == "mt":
        raise MarkerError("mt database: the discrete Laplace estimator is for Y-STR haplotypes only")
    if len(haplotypes) != len(counts):
        raise MarkerError(f"{system} database: one count per haplotype")
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise MarkerError(f"{system} database: counts must be positive integers")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def count_frequency(x: int, n: int, estimator: str, *, confidence: float = 0.95) -> float:
    """f from a count ``x`` of ``n`` (augmented counting or Clopper-Pearson)."""
    from opendvi.core.lineage_freq import augmented_counting, clopper_pearson_upper

    if estimator == "augmented-counting":
        return augmented_counting(x, n)
    if estimator == "clopper-pearson":
        return clopper_pearson_upper(x, n, confidence=confidence) if n > 0 else 1.0
    raise MarkerError(f"count_frequency: estimator {estimator!r} is not a counting estimator")


@dataclass(frozen=True)
class YDatabase:
    """Y haplotypes with counts; ``model`` holds a fitted discrete Laplace
    mixture when the estimator is ``discrete-laplace``."""

    haplotypes: tuple[YHaplotype, ...]
    counts: tuple[int, ...]
    estimator: str = DEFAULT_ESTIMATOR
    model: Any = None  # opendvi.core.lineage_freq.DiscreteLaplaceModel
    name: str = ""
    _memo: dict[Any, FrequencyEstimate] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_database(self.estimator, "Y", self.haplotypes, self.counts)
        if self.estimator == "discrete-laplace" and self.model is None:
            raise MarkerError("Y database: the discrete Laplace estimator needs a fitted model")

    @cached_property
    def size(self) -> int:
        return sum(self.counts)

    @cached_property
    def loci(self) -> tuple[str, ...]:
        """Loci the database can give a frequency over."""
        if self.model is not None and self.estimator == "discrete-laplace":
            # model coordinates are loci, or ``name[i]`` for the copies of a multi-copy locus
            return tuple(dict.fromkeys(re.sub(r"\[\d+\]$", "", m) for m in self.model.markers))
        seen: dict[str, None] = {}
        for h in self.haplotypes:
            for k in h:
                seen.setdefault(k, None)
        return tuple(seen)

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the database (haplotypes, counts, estimator, model)."""
        rows = sorted(
            [[sorted((k, list(v)) for k, v in h.items()), c] for h, c in zip(self.haplotypes, self.counts, strict=True)]
        )
        model = self.model.to_dict() if self.model is not None else None
        return _digest({"system": "Y", "haplotypes": rows, "estimator": self.estimator, "model": model})

    def count(self, h: YHaplotype, loci: Sequence[str]) -> tuple[int, int]:
        """(x, n): database haplotypes typed at every locus of ``loci``, and those equal to ``h`` there."""
        x = n = 0
        for g, c in zip(self.haplotypes, self.counts, strict=True):
            if all(k in g for k in loci):
                n += c
                if all(g[k] == h[k] for k in loci):
                    x += c
        return x, n

    def frequency(self, h: YHaplotype, loci: Sequence[str], *, confidence: float = 0.95) -> FrequencyEstimate:
        loci = tuple(loci)
        key = (tuple(h[k] for k in loci), loci, confidence)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        x, n = self.count(h, loci)
        if self.estimator == "discrete-laplace":
            f = float(math.exp(self.model.log_prob(h, loci)))
        else:
            f = count_frequency(x, n, self.estimator, confidence=confidence)
        est = FrequencyEstimate(f, x, n, self.estimator, self.digest, ", ".join(loci))
        self._memo[key] = est
        return est


@dataclass(frozen=True)
class MtDatabase:
    """mtDNA haplotypes with counts."""

    haplotypes: tuple[MtHaplotype, ...]
    counts: tuple[int, ...]
    estimator: str = DEFAULT_ESTIMATOR
    name: str = ""
    _memo: dict[Any, FrequencyEstimate] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_database(self.estimator, "mt", self.haplotypes, self.counts)

    @cached_property
    def size(self) -> int:
        return sum(self.counts)

    @cached_property
    def digest(self) -> str:
        rows = sorted([[list(h.range), list(h.variants), c] for h, c in zip(self.haplotypes, self.counts, strict=True)])
        return _digest({"system": "mt", "haplotypes": rows, "estimator": self.estimator})

    def count(self, h: MtHaplotype, spans: Sequence[tuple[int, int]]) -> tuple[int, int]:
        """(x, n): database haplotypes whose range covers ``spans``, and those
        with no difference from ``h`` there."""
        x = n = 0
        for g, c in zip(self.haplotypes, self.counts, strict=True):
            if range_covers(g.range, spans):
                n += c
                if not mt_differences(g, h, spans):
                    x += c
        return x, n

    def frequency(
        self, h: MtHaplotype, spans: Sequence[tuple[int, int]], *, confidence: float = 0.95
    ) -> FrequencyEstimate:
        spans = tuple(spans)
        key = (tuple(sorted((s, b) for s, b in h.sites.items() if in_range(s[0], spans))), spans, confidence)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        x, n = self.count(h, spans)
        f = count_frequency(x, n, self.estimator, confidence=confidence)
        est = FrequencyEstimate(f, x, n, self.estimator, self.digest, range_text(spans))
        self._memo[key] = est
        return est


# ---------------------------------------------------------------------------
# The lineage part of a case
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class YSystem:
    """The Y-STR loci of a case (with their rates) and the haplotype database."""

    markers: tuple[YMarker, ...]
    database: YDatabase

    @cached_property
    def by_name(self) -> dict[str, YMarker]:
        return {m.name: m for m in self.markers}


@dataclass(frozen=True)
class MtSystem:
    """The mtDNA mutation rate per transmission (whole typed range) and the database."""

    rate: float
    database: MtDatabase

    def __post_init__(self) -> None:
        if isinstance(self.rate, bool) or not (0.0 <= float(self.rate) < 1.0):
            raise MarkerError(f"mt: rate must be in [0, 1), found {self.rate!r}")


@dataclass(frozen=True)
class PersonHaplotypes:
    """A person's lineage haplotypes (either may be absent)."""

    y: YHaplotype | None = None
    mt: MtHaplotype | None = None


@dataclass(frozen=True)
class CaseLineage:
    """The lineage part of a case: systems and the haplotypes of every typed
    person (remains and family members, by id: ids are unique in a case)."""

    y: YSystem | None = None
    mt: MtSystem | None = None
    haplotypes: Mapping[str, PersonHaplotypes] = field(default_factory=dict)

    def y_of(self, pid: str) -> YHaplotype | None:
        h = self.haplotypes.get(pid)
        return h.y if h is not None else None

    def mt_of(self, pid: str) -> MtHaplotype | None:
        h = self.haplotypes.get(pid)
        return h.mt if h is not None else None

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(s for s, v in (("Y", self.y), ("mt", self.mt)) if v is not None)

    def with_identified(self, identified: Mapping[str, str]) -> CaseLineage:
        """After placing remains on missing persons (``{remains: missing}``):
        each remains' haplotypes become its missing person's, as the
        genotypes do in ``DVIProblem.with_identified``."""
        haps = dict(self.haplotypes)
        for rid, mp in identified.items():
            h = haps.pop(rid, None)
            if h is not None:
                haps[mp] = h
        return CaseLineage(y=self.y, mt=self.mt, haplotypes=haps)
