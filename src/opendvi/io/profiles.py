"""Profiles as read from laboratory files, before they join a case.

Every profile reader (GeneMapper, CODIS CMF, profile CSV/Excel) returns a
:class:`ProfileSet`: one :class:`ProfileRecord` per sample, in file order,
with what a laboratory file can say that a case cannot hold: off-ladder
calls, more than two alleles (a mixture), the line the sample came from.
:meth:`ProfileSet.samples` turns them into case samples and refuses, with
the place, anything that is not a single-source profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from opendvi.core.case import Sample
from opendvi.core.errors import FileFormatError
from opendvi.core.profiles import Genotype
from opendvi.io.normalise import is_off_ladder


@dataclass
class ProfileRecord:
    """One sample of a profile file.

    ``genotypes`` maps marker name (opendvi spelling) to the alleles called,
    in file order, off-ladder calls ("OL") included; it may hold more than two
    alleles (``mixture_markers`` lists those markers).
    """

    id: str
    sex: str | None = None
    genotypes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    line: int | None = None
    element: str | None = None
    heights: dict[str, tuple[float | None, ...]] = field(default_factory=dict)
    category: str | None = None

    @property
    def mixture_markers(self) -> list[str]:
        return [m for m, a in self.genotypes.items() if len(set(a)) > 2]

    @property
    def off_ladder_markers(self) -> list[str]:
        return [m for m, a in self.genotypes.items() if any(is_off_ladder(x) for x in a)]

    @property
    def is_mixture(self) -> bool:
        return bool(self.mixture_markers) or (self.category or "").lower().endswith("mixture")

    def where(self) -> str:
        if self.line is not None:
            return f"line {self.line}"
        return self.element or "?"


@dataclass
class ProfileSet:
    """The profiles of one file, with the notes the reader made."""

    records: list[ProfileRecord] = field(default_factory=list)
    source: str = ""
    notes: list[str] = field(default_factory=list)
    format: str = ""

    def __len__(self) -> int:
        return len(self.records)

    @property
    def marker_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            for m in r.genotypes:
                seen.setdefault(m, None)
        return list(seen)

    @property
    def mixtures(self) -> list[ProfileRecord]:
        return [r for r in self.records if r.is_mixture]

    def samples(self, *, skip_mixtures: bool = False, notes: list[str] | None = None) -> list[Sample]:
        """Case samples: one per single-source profile.

        A mixture (more than two alleles at a marker) raises
        :class:`FileFormatError` naming the sample and its place, unless
        ``skip_mixtures`` (then it is left out and a note says so). An
        off-ladder call leaves that marker untyped for that sample, with a
        note (the allele is reported, not guessed).
        """
        out: list[Sample] = []
        for r in self.records:
            if r.is_mixture:
                what = (
                    f"{len(set(r.genotypes[r.mixture_markers[0]]))} alleles at {r.mixture_markers[0]}"
                    if r.mixture_markers
                    else f"specimen category {r.category!r}"
                )
                msg = f"sample {r.id} is a mixture ({what}); a mixture is not a single-source profile"
                if not skip_mixtures:
                    raise FileFormatError(msg, path=self.source or None, line=r.line, field=r.element)
                if notes is not None:
                    notes.append(f"{self.source}: {r.where()}: {msg}: left out")
                continue
            gts: dict[str, Genotype] = {}
            for m, alleles in r.genotypes.items():
                if any(is_off_ladder(x) for x in alleles):
                    if notes is not None:
                        notes.append(
                            f"{self.source}: {r.where()}: sample {r.id}, marker {m}: off-ladder call "
                            f"in {'/'.join(alleles)}; marker left untyped"
                        )
                    continue
                if not alleles:
                    continue
                uniq = tuple(dict.fromkeys(alleles))
                # laboratory files list distinct alleles: one call is a homozygote
                gts[m] = (uniq[0], uniq[0]) if len(uniq) == 1 else (uniq[0], uniq[1])
            out.append(Sample(id=r.id, sex=r.sex, genotypes=gts))
        return out


def records_from_samples(samples: Iterable[Sample]) -> list[ProfileRecord]:
    return [ProfileRecord(id=s.id, sex=s.sex, genotypes={m: tuple(g) for m, g in s.genotypes.items()}) for s in samples]


def merge_notes(target: list[str], extra: Iterable[str]) -> None:
    for n in extra:
        if n not in target:
            target.append(n)


def genotype_text(gt: tuple[str, ...] | Genotype) -> str:
    return "/".join(gt)


def check_unique_ids(records: Iterable[ProfileRecord], *, path: str) -> None:
    seen: dict[str, ProfileRecord] = {}
    for r in records:
        if r.id in seen:
            raise FileFormatError(
                f"sample {r.id!r} appears twice (also {seen[r.id].where()})",
                path=path,
                line=r.line,
                field=r.element or "sample",
            )
        seen[r.id] = r


def as_mapping(records: Iterable[ProfileRecord]) -> Mapping[str, ProfileRecord]:
    return {r.id: r for r in records}
