"""A ``.fam`` file as it is, parsed but not interpreted."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Familias' mutation model codes.
MODEL_CODES = {0: "equal", 1: "proportional", 2: "stepwise", 3: "stepwise-stationary", 4: "extended-stepwise"}
#: Names of reference persons taken as missing persons (dvir's convention).
MISSING_PREFIX = "Missing"


@dataclass
class FamSexModel:
    """The mutation parameters of one sex at one locus, as in the file."""

    code: int
    rate: float
    range: float
    rate2: float


@dataclass
class FamLocus:
    name: str
    female: FamSexModel
    male: FamSexModel
    alleles: list[str]
    frequencies: list[float]
    has_silent: bool = False
    silent_frequency: float = 0.0
    database_size: int | None = None
    dropout: float = 0.0
    maf: float = 0.0
    line: int = 0


@dataclass
class FamPerson:
    name: str
    sex: str | None
    genotypes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    consider_dropout: bool = False
    line: int = 0


@dataclass
class FamPedigree:
    name: str
    relations: list[tuple[str, str]]  # (parent, child) by name
    extras: list[tuple[str, str]] = field(default_factory=list)  # (name, sex)
    line: int = 0


@dataclass
class FamDVIFamily:
    name: str
    persons: list[FamPerson]
    pedigrees: list[FamPedigree]
    line: int = 0


@dataclass
class FamFile:
    """A ``.fam`` file parsed, before any interpretation."""

    version: str
    persons: list[FamPerson]
    known_extras: list[tuple[str, str]]
    known_relations: list[tuple[str, str]]
    pedigrees: list[FamPedigree]
    theta: float
    database_name: str
    loci: list[FamLocus]
    unidentified: list[FamPerson] | None = None
    families: list[FamDVIFamily] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def has_dvi(self) -> bool:
        return self.families is not None or self.unidentified is not None
