"""The identification problem as data: markers, remains and families.

This is the in-memory form of a ``dvi-case/1`` file (``shared/design/case-json.md``):

* ``markers``: :class:`~opendvi.core.markers.Marker` with frequencies and
  mutation models;
* ``remains``: post-mortem samples (PM), each a :class:`Sample`;
* ``families``: ante-mortem families (AM), each a pedigree with typed
  references and one or more missing persons.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from opendvi.core.errors import OpenDVIError, ProfileError
from opendvi.core.likelihood import LogLikelihood, pedigree_loglik
from opendvi.core.lineage import CaseLineage
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Pedigree
from opendvi.core.profiles import Genotype, check_genotype


@dataclass(frozen=True)
class Sample:
    """A typed sample: a remains (PM) or a person's reference profile."""

    id: str
    sex: str | None = None
    genotypes: Mapping[str, Genotype] = field(default_factory=dict)
    dropout: float = 0.0


@dataclass(frozen=True)
class Family:
    """A reference family: a pedigree, its typed members and its missing persons."""

    id: str
    pedigree: Pedigree
    genotypes: Mapping[str, Mapping[str, Genotype]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    dropout: Mapping[str, float] = field(default_factory=dict)

    @property
    def references(self) -> tuple[str, ...]:
        """Typed members (in pedigree order)."""
        return tuple(pid for pid in self.pedigree.ids if self.genotypes.get(pid))

    def sex_of(self, pid: str) -> str | None:
        return self.pedigree.sex[self.pedigree.index(pid)]

    def loglik(self, markers: Sequence[Marker], *, theta: float = 0.0) -> LogLikelihood:
        """Log-likelihood of the family's reference data, per marker."""
        return pedigree_loglik(self.pedigree, markers, self.genotypes, theta=theta, dropout=self.dropout)


@dataclass(frozen=True)
class Case:
    """A whole identification problem (``dvi-case/1``)."""

    name: str
    markers: tuple[Marker, ...]
    remains: tuple[Sample, ...] = ()
    families: tuple[Family, ...] = ()
    theta: float = 0.0
    pairings: Mapping[str, tuple[str, ...]] | None = None
    #: Y-STR / mtDNA systems and haplotypes (``lineage.md``); None when the case has none.
    lineage: CaseLineage | None = None

    def marker(self, name: str) -> Marker:
        for m in self.markers:
            if m.name == name:
                return m
        raise OpenDVIError(f"case {self.name}: no marker named {name!r}")

    def family(self, fid: str) -> Family:
        for f in self.families:
            if f.id == fid:
                return f
        raise OpenDVIError(f"case {self.name}: no family named {fid!r}")

    def remains_by_id(self, rid: str) -> Sample:
        for r in self.remains:
            if r.id == rid:
                return r
        raise OpenDVIError(f"case {self.name}: no remains named {rid!r}")

    @property
    def missing_persons(self) -> Iterator[tuple[Family, str]]:
        for fam in self.families:
            for mp in fam.missing:
                yield fam, mp

    # -- consistency ------------------------------------------------------------
    def all_genotypes(self) -> Iterator[tuple[str, str | None, Mapping[str, Genotype]]]:
        """(who, sex, genotypes) for every typed sample of the case."""
        for r in self.remains:
            yield f"remains {r.id}", r.sex, r.genotypes
        for fam in self.families:
            for pid, gts in fam.genotypes.items():
                yield f"family {fam.id}, member {pid}", fam.sex_of(pid), gts

    def with_unseen_alleles(self) -> tuple[Case, list[str]]:
        """Add alleles observed in the case but absent from the frequency
        table (``likelihood.md``: minimum frequency, then renormalise).

        Returns the new case and one note per added allele. The answer is kept on the (immutable)
        case: a run asks it of the same case at several steps (screening, the joint step).
        """
        memo = self.__dict__.get("_with_unseen_alleles")
        if memo is not None:
            return memo[0], list(memo[1])
        case, notes = self._add_unseen_alleles()
        object.__setattr__(self, "_with_unseen_alleles", (case, tuple(notes)))
        if case is not self:  # complete now: asked again, it is itself
            object.__setattr__(case, "_with_unseen_alleles", (case, ()))
        return case, notes

    def _add_unseen_alleles(self) -> tuple[Case, list[str]]:
        by_name = {m.name: m for m in self.markers}
        extra: dict[str, list[str]] = {}
        for who, _sex, gts in self.all_genotypes():
            for mname, gt in gts.items():
                marker = by_name.get(mname)
                if marker is None:
                    raise ProfileError(f"{who}: marker {mname!r} is not among the case's markers")
                for a in gt:
                    if a not in marker.index and a not in extra.get(mname, []):
                        extra.setdefault(mname, []).append(a)
        if not extra:
            return self, []
        notes: list[str] = []
        markers = []
        for m in self.markers:
            if m.name in extra:
                new = m.with_alleles(extra[m.name])
                for a in extra[m.name]:
                    notes.append(
                        f"marker {m.name}: allele {a} is not in the frequency table; "
                        f"added with frequency {m.minimum_frequency:g} (then renormalised)"
                    )
                markers.append(new)
            else:
                markers.append(m)
        return replace(self, markers=tuple(markers)), notes

    def validate(self) -> None:
        """Check every genotype against its marker and its person's sex."""
        by_name = {m.name: m for m in self.markers}
        for who, sex, gts in self.all_genotypes():
            for mname, gt in gts.items():
                marker = by_name.get(mname)
                if marker is None:
                    raise ProfileError(f"{who}: marker {mname!r} is not among the case's markers")
                check_genotype(gt, marker, sex=sex, who=who)
