"""mtDNA haplotypes (``shared/design/lineage.md``): the rCRS, typed ranges,
variants in EMPOP/ISFG notation and the differences between two haplotypes.

A haplotype is a typed range (``"16024-16569 1-576"``) and the variants
against the rCRS: ``16519C`` (substitution), ``315.1C`` (insertion after
position 315), ``249del`` (deletion), ``16093Y`` (an IUPAC code: a point
heteroplasmy). A position of the range without a variant carries the rCRS
base. Re-exported by :mod:`opendvi.core.lineage`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files

from opendvi.core.errors import MarkerError, ProfileError

#: Length of the rCRS (NC_012920.1).
MT_LENGTH = 16569

IUPAC: dict[str, frozenset[str]] = {
    "A": frozenset("A"),
    "C": frozenset("C"),
    "G": frozenset("G"),
    "T": frozenset("T"),
    "R": frozenset("AG"),
    "Y": frozenset("CT"),
    "K": frozenset("GT"),
    "M": frozenset("AC"),
    "S": frozenset("CG"),
    "W": frozenset("AT"),
    "B": frozenset("CGT"),
    "D": frozenset("AGT"),
    "H": frozenset("ACT"),
    "V": frozenset("ACG"),
    "N": frozenset("ACGT"),
    "-": frozenset("-"),
}
_MT_VARIANT = re.compile(r"^([ACGT]?)(\d+)(?:\.(\d+))?([ACGTRYKMSWBDHVN]|DEL|-)$", re.IGNORECASE | re.ASCII)
_MT_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$", re.ASCII)

Site = tuple[int, int]
"""An mtDNA site: (position, insertion index); 0 for the position itself."""


@cache
def rcrs() -> str:
    """The rCRS (NC_012920.1), 16,569 bases; ``rcrs()[i - 1]`` is position i."""
    text = files("opendvi").joinpath("data/rCRS_NC_012920.fasta").read_text(encoding="ascii")
    seq = "".join(line.strip() for line in text.splitlines() if line and not line.startswith((">", "#")))
    if len(seq) != MT_LENGTH:  # pragma: no cover - bundled data
        raise MarkerError(f"bundled rCRS has {len(seq)} bases, expected {MT_LENGTH}")
    return seq.upper()


def parse_mt_range(text: str, *, who: str = "haplotype") -> tuple[tuple[int, int], ...]:
    """Normalise a typed range: sorted, merged intervals of 1-based positions.

    A wrapping interval ``16024-576`` is split at the end of the genome.

    >>> parse_mt_range("16024-16569 1-576")
    ((1, 576), (16024, 16569))
    """
    if not isinstance(text, str) or not text.strip():
        raise ProfileError(f"{who}: mtDNA range must be a non-empty string such as '16024-16569 1-576'")
    spans: list[tuple[int, int]] = []
    for part in re.split(r"[\s;,]+", text.strip()):
        m = _MT_RANGE.match(part)
        if m is None:
            if re.fullmatch(r"[0-9]+", part):
                a = b = int(part)
            else:
                raise ProfileError(f"{who}: invalid mtDNA range {part!r} (expected start-end, e.g. 16024-16569)")
        else:
            a, b = int(m.group(1)), int(m.group(2))
        if not (1 <= a <= MT_LENGTH and 1 <= b <= MT_LENGTH):
            raise ProfileError(f"{who}: mtDNA range {part!r} outside 1-{MT_LENGTH}")
        if a <= b:
            spans.append((a, b))
        else:
            spans.extend([(a, MT_LENGTH), (1, b)])
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def range_text(spans: Sequence[tuple[int, int]]) -> str:
    """The range spelled as in case files (control region first when it wraps)."""
    parts = sorted(spans, key=lambda s: (s[0] < 16000, s[0]))
    return " ".join(f"{a}-{b}" for a, b in parts)


def range_intersection(
    a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for x0, x1 in a:
        for y0, y1 in b:
            lo, hi = max(x0, y0), min(x1, y1)
            if lo <= hi:
                out.append((lo, hi))
    return tuple(sorted(out))


def range_length(spans: Sequence[tuple[int, int]]) -> int:
    return sum(b - a + 1 for a, b in spans)


def range_covers(outer: Sequence[tuple[int, int]], inner: Sequence[tuple[int, int]]) -> bool:
    return range_length(range_intersection(outer, inner)) == range_length(inner)


def in_range(pos: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(a <= pos <= b for a, b in spans)


def parse_mt_variant(text: str, *, who: str = "haplotype") -> tuple[Site, str]:
    """One variant in EMPOP notation -> (site, base); the base ``-`` is a deletion.

    >>> parse_mt_variant("315.1C")
    ((315, 1), 'C')
    >>> parse_mt_variant("249del")
    ((249, 0), '-')
    """
    if not isinstance(text, str):
        raise ProfileError(f"{who}: mtDNA variant must be a string, found {text!r}")
    m = _MT_VARIANT.match(text.strip())
    if m is None:
        raise ProfileError(
            f"{who}: invalid mtDNA variant {text!r} (EMPOP notation: 16519C, 315.1C, 249del, 16093Y)"
        )
    pos = int(m.group(2))
    ins = int(m.group(3)) if m.group(3) else 0
    base = m.group(4).upper()
    if base == "DEL":
        base = "-"
    if not 1 <= pos <= MT_LENGTH:
        raise ProfileError(f"{who}: mtDNA variant {text!r}: position outside 1-{MT_LENGTH}")
    if ins and base == "-":
        raise ProfileError(f"{who}: mtDNA variant {text!r}: an insertion cannot be a deletion")
    return (pos, ins), base


def variant_text(site: Site, base: str) -> str:
    pos, ins = site
    return f"{pos}{f'.{ins}' if ins else ''}{'del' if base == '-' else base}"


@dataclass(frozen=True)
class MtHaplotype:
    """An mtDNA haplotype: the typed range and the variants against the rCRS."""

    range: tuple[tuple[int, int], ...]
    sites: Mapping[Site, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, range_: str, variants: Iterable[str], *, who: str = "haplotype") -> MtHaplotype:
        spans = parse_mt_range(range_, who=who)
        sites: dict[Site, str] = {}
        if isinstance(variants, str):
            variants = variants.split()
        for v in variants:
            site, base = parse_mt_variant(v, who=who)
            if not in_range(site[0], spans):
                raise ProfileError(f"{who}: mtDNA variant {v} lies outside the typed range {range_text(spans)}")
            if site in sites and sites[site] != base:
                raise ProfileError(f"{who}: mtDNA site {variant_text(site, base)} is given twice")
            if site[1] == 0 and base != "-" and IUPAC[base] == frozenset(rcrs()[site[0] - 1]):
                continue  # the rCRS base itself is no variant
            sites[site] = base
        return cls(range=spans, sites=dict(sorted(sites.items())))

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(variant_text(s, b) for s, b in sorted(self.sites.items()))

    @property
    def range_text(self) -> str:
        return range_text(self.range)

    @property
    def heteroplasmies(self) -> tuple[str, ...]:
        return tuple(variant_text(s, b) for s, b in sorted(self.sites.items()) if len(IUPAC[b]) > 1)

    def base_at(self, site: Site) -> frozenset[str]:
        """The bases this haplotype allows at a site of its range."""
        b = self.sites.get(site)
        if b is not None:
            return IUPAC[b]
        if site[1] > 0:
            return IUPAC["-"]  # no insertion
        return frozenset(rcrs()[site[0] - 1])


def mt_differences(a: MtHaplotype, b: MtHaplotype, spans: Sequence[tuple[int, int]] | None = None) -> list[Site]:
    """Sites of ``spans`` (default: the common range) at which ``a`` and ``b``
    differ; a heteroplasmy matches either of its bases."""
    common = range_intersection(a.range, b.range) if spans is None else tuple(spans)
    out = []
    for site in sorted(set(a.sites) | set(b.sites)):
        if not in_range(site[0], common):
            continue
        if not (a.base_at(site) & b.base_at(site)):
            out.append(site)
    return out
