"""Power planning (``docs/power.md``): how well each family's references can identify its missing
person, and which relative to type next; for ``opendvi power``, ``opendvi power-registry`` and the
service's power pages and API (:mod:`opendvi.power` does the computing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from opendvi.core.case import Case
from opendvi.power import FamilyPower, PowerSettings, RegistryPower, case_power, family_power, registry_power
from opendvi.power import untyped_relatives as _untyped_relatives
from opendvi.power.plot import lr_distribution_png

__all__ = [
    "CasePower",
    "FamilyPower",
    "PowerSettings",
    "RegistryPower",
    "family_plan",
    "lr_distribution_png",
    "plan_case",
    "plan_registry",
]


@dataclass(frozen=True)
class CasePower:
    """The power of every (family, missing person) evaluated, and a note for each family that cannot be
    evaluated (``core.rules``)."""

    results: list[FamilyPower]
    skipped: list[str] = field(default_factory=list)


def plan_case(case: Case, *, families: Sequence[str] | None = None, candidates: Sequence[Sequence[str]] = (),
              settings: PowerSettings | None = None) -> CasePower:
    """``opendvi power``: every family of ``case`` (or of ``families``), with ``candidates`` (sets of
    untyped relatives typed together) ranked as the next sample."""
    skipped: list[str] = []
    results = case_power(case, families=families, candidates=candidates, settings=settings, skipped=skipped)
    return CasePower(results, skipped)


def plan_registry(case: Case, *, level: float = 0.9, threshold: float = 1e4, grid: float | None = None,
                  next_limit: int | None = None, workers: int = 1) -> RegistryPower:
    """Power of every family of a registry, batched by pedigree shape; the weak families each with its
    best next relative (``opendvi power-registry``, the service's list of weak families)."""
    if grid is None:
        return registry_power(case, level=level, threshold=threshold, next_limit=next_limit, workers=workers)
    return registry_power(case, level=level, threshold=threshold, grid=grid, next_limit=next_limit,
                          workers=workers)


def family_plan(case: Case, family: str) -> list[FamilyPower]:
    """The service's family page: the power of each missing person of ``family``, every untyped
    relative (alone) ranked as the next sample by inclusion power."""
    f = case.family(family)
    settings = PowerSettings(rank_by="inclusion")
    return [family_power(case, f, mp, candidates=[[c] for c in _untyped_relatives(f, mp)], settings=settings)
            for mp in f.missing]
