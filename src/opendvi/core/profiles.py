"""Profiles: genotypes of one person at many markers.

A genotype is a tuple of allele labels: two alleles (``("12", "14")``,
``("9", "9")`` for a homozygote), or one (``("12",)``) for a sample whose
second allele may have dropped out. An untyped marker is simply absent.
Males at X markers carry one allele, written twice (``("9", "9")``) or once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opendvi.core.errors import ProfileError
from opendvi.core.markers import Marker

Genotype = tuple[str, ...]


def make_genotype(alleles: Sequence[object] | None, *, who: str, marker: str) -> Genotype | None:
    """Normalise a genotype read from a file: strings, 1 or 2 alleles.

    ``None`` or an empty list means untyped (returns ``None``). A list already in normal form (1 or 2
    non-empty labels without surrounding blanks, as a stored profile holds them) is taken as it is:
    a national run builds hundreds of thousands of genotypes from the database.
    """
    if type(alleles) is list and 0 < len(alleles) <= 2 and all(
            type(a) is str and a and a == a.strip() for a in alleles):
        return tuple(alleles)
    return _normalise(alleles, who=who, marker=marker)


def _normalise(alleles: Sequence[object] | None, *, who: str, marker: str) -> Genotype | None:
    """:func:`make_genotype` for any input (its checks and conversions, one allele at a time)."""
    if alleles is None:
        return None
    if isinstance(alleles, str) or not isinstance(alleles, Sequence):
        raise ProfileError(f"{who}, marker {marker}: genotype must be a list of 1 or 2 alleles, found {alleles!r}")
    labels: list[str] = []
    for a in alleles:
        if isinstance(a, bool) or not isinstance(a, (str, int, float)):
            raise ProfileError(f"{who}, marker {marker}: invalid allele {a!r}")
        label = str(int(a)) if isinstance(a, float) and a.is_integer() else str(a).strip()
        if not label:
            raise ProfileError(f"{who}, marker {marker}: empty allele")
        labels.append(label)
    if len(labels) == 0:
        return None
    if len(labels) > 2:
        raise ProfileError(
            f"{who}, marker {marker}: {len(labels)} alleles ({', '.join(labels)}); a single-source "
            "profile has at most 2 (a mixture is not a profile)"
        )
    return tuple(labels)


@dataclass(frozen=True)
class Profile:
    """A person's genotypes by marker name, and the sample's dropout probability."""

    genotypes: Mapping[str, Genotype] = field(default_factory=dict)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.dropout < 1.0):
            raise ProfileError(f"dropout probability must be in [0, 1), found {self.dropout!r}")

    def __contains__(self, marker: object) -> bool:
        return marker in self.genotypes

    def get(self, marker: str) -> Genotype | None:
        return self.genotypes.get(marker)

    @property
    def n_typed(self) -> int:
        return len(self.genotypes)


def check_genotype(gt: Genotype, marker: Marker, *, sex: str | None, who: str) -> None:
    """Raise :class:`ProfileError` if ``gt`` does not fit the marker or the sex."""
    unknown = [a for a in gt if a not in marker.index]
    if unknown:
        raise ProfileError(f"{who}, marker {marker.name}: allele {unknown[0]} is not in the marker's allele list")
    if marker.is_x:
        if sex is None:
            raise ProfileError(f"{who}, X marker {marker.name}: typed person of unknown sex")
        if sex == "M" and len(set(gt)) > 1:
            raise ProfileError(f"{who}, X marker {marker.name}: a male has one X allele, found {'/'.join(gt)}")
