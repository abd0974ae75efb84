"""Power of one family's references for one missing person, and whom to type next."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opendvi.core.case import Case, Family
from opendvi.core.rules import unevaluable_family_note
from opendvi.power._distribution import MarkerPower, PowerError, marker_power
from opendvi.power._inclusion import (
    DEFAULT_GRID,
    MAX_BINS,
    THRESHOLDS,
    Inclusion,
    exact_inclusion,
    poisson_binomial,
    simulated_inclusion,
)
from opendvi.power._lineage import DEFAULT_LINEAGE_NSIM, LineagePower, lineage_power

#: Simulation defaults (used when asked for, or when the exact method cannot be used).
DEFAULT_NSIM = 100_000
DEFAULT_SEED = 1
METHODS = ("auto", "exact", "simulation")
#: Orders of the "next relative" ranking.
RANK_BY = ("e_log10_lr", "inclusion", "exclusion")


class UnevaluableFamily(PowerError):
    """The family's references are impossible at some marker (likelihood 0
    even with its mutation model): by the core rule
    (:func:`opendvi.core.rules.unevaluable_family_note`) the family cannot be
    evaluated; the message is that rule's note, naming it and the markers."""

    def __init__(self, family: str, markers: Sequence[str]) -> None:
        super().__init__(unevaluable_family_note(family, list(markers)))
        self.family = family
        self.markers = tuple(markers)


@dataclass
class PowerSettings:
    """How power is computed.

    ``mutations``: "forrel" (a marker's mutation model is removed where the
    references are consistent without it, kept otherwise) or "kept".
    ``method``: "exact" (grid convolution with a bound), "simulation"
    (``nsim`` draws with ``seed``) or "auto" (exact unless the grid would
    exceed ``max_bins`` at ``grid``, then simulation).
    """

    thresholds: tuple[float, ...] = THRESHOLDS
    method: str = "auto"
    grid: float = DEFAULT_GRID
    max_bins: int = MAX_BINS
    nsim: int = DEFAULT_NSIM
    seed: int = DEFAULT_SEED
    mutations: str = "forrel"
    with_kept: bool = True
    use_templates: bool = True
    rank_threshold: float = 1e4
    rank_by: str = "e_log10_lr"
    #: draws of a lineage (Y) term that cannot be enumerated exactly (seeded by ``seed``)
    lineage_nsim: int = DEFAULT_LINEAGE_NSIM

    def check(self) -> None:
        if self.method not in METHODS:
            raise PowerError(f"method must be one of {', '.join(METHODS)}, found {self.method!r}")
        if self.mutations not in ("forrel", "kept"):
            raise PowerError(f"mutations must be 'forrel' or 'kept', found {self.mutations!r}")
        if self.rank_by not in RANK_BY:
            raise PowerError(f"rank_by must be one of {', '.join(RANK_BY)}, found {self.rank_by!r}")
        if not self.grid > 0:
            raise PowerError(f"grid must be positive, found {self.grid!r}")
        if self.nsim < 1 or self.lineage_nsim < 1:
            raise PowerError(f"nsim must be >= 1, found {min(self.nsim, self.lineage_nsim)}")
        if not self.thresholds or any(not t > 0 for t in self.thresholds):
            raise PowerError("thresholds must be positive LRs")


def inclusion_of(markers: Sequence[MarkerPower], settings: PowerSettings, *, seed_offset: int = 0,
                 lineage: Sequence[LineagePower] = ()) -> Inclusion:
    """Inclusion power of independent markers and lineage terms (exact or simulated, as the settings say)."""
    atoms = [(m.atoms_p, m.atoms_l) for m in markers] + [(t.atoms_p, t.atoms_l) for t in lineage]
    if settings.method in ("auto", "exact"):
        inc = exact_inclusion(atoms, settings.thresholds, grid=settings.grid,
                              max_bins=settings.max_bins if settings.method == "auto" else 1 << 62)
        if settings.method == "exact" or (inc.grid is not None and inc.grid <= settings.grid * 1.0001):
            return inc
    return simulated_inclusion(atoms, settings.thresholds, nsim=settings.nsim, seed=settings.seed + seed_offset)


@dataclass
class Summary:
    """Totals over markers of one set of :class:`MarkerPower`, and the lineage
    terms (Y, mt) when the case has them: they enter the LR totals and the
    inclusion power (independent systems), not the exclusion power."""

    markers: list[MarkerPower]
    inclusion: Inclusion
    lineage: list[LineagePower] = field(default_factory=list)

    @property
    def ep_total(self) -> float:
        return 1.0 - math.prod(1.0 - m.ep for m in self.markers)

    @property
    def expected_mismatch(self) -> float:
        return math.fsum(m.ep for m in self.markers)

    @property
    def e_log10_lr(self) -> float:
        return math.fsum([*(m.e_log10_lr for m in self.markers), *(t.e_log10_lr for t in self.lineage)])

    @property
    def sd_log10_lr(self) -> float:
        return math.sqrt(math.fsum([*(m.var_log10_lr for m in self.markers), *(t.var_log10_lr for t in self.lineage)]))

    @property
    def e_lr(self) -> float:
        lg = self.log10_e_lr
        return 10.0**lg if lg < 308 else math.inf

    @property
    def log10_e_lr(self) -> float:
        e = [m.e_lr for m in self.markers] + [t.e_lr for t in self.lineage]
        return math.fsum(math.log10(x) for x in e if x > 0)

    def lineage_json(self) -> dict[str, Any]:
        """Each lineage term (``{"Y": {...}, "mt": {...}}``; empty without lineage data)."""
        return {t.system: t.to_json() for t in self.lineage}

    def mismatch_distribution(self) -> list[float]:
        """P(exactly k excluding markers), k = 0 .. number of markers with EP > 0."""
        return [float(x) for x in poisson_binomial([m.ep for m in self.markers if m.ep > 0])]

    def inclusion_json(self) -> dict[str, Any]:
        inc = self.inclusion
        out: dict[str, Any] = {"inclusion": inc.as_dict(), "method": inc.method}
        if inc.method == "exact":
            out["inclusion_bound"] = inc.error_dict()
            out["grid_log10"] = inc.grid
        else:
            out["inclusion_se"] = inc.error_dict()
            out["nsim"] = inc.nsim
            out["seed"] = inc.seed
        return out


@dataclass
class CandidatePower:
    """The expected power after typing ``candidates`` (one relative or a set)."""

    candidates: tuple[str, ...]
    summary: Summary

    @property
    def name(self) -> str:
        return "+".join(self.candidates)

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "candidate": self.name,
            "exclusion_total": s.ep_total,
            "expected_mismatch": s.expected_mismatch,
            "e_log10_lr": s.e_log10_lr,
            **s.inclusion_json(),
            "per_marker": {m.marker: {"exclusion": m.ep, "e_log10_lr": m.e_log10_lr} for m in s.markers},
            **({"lineage": s.lineage_json()} if s.lineage else {}),
        }


@dataclass
class FamilyPower:
    """Power of a family's references for one missing person."""

    family: str
    missing: str
    summary: Summary
    kept: Summary | None = None
    next: list[CandidatePower] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def markers(self) -> list[MarkerPower]:
        return self.summary.markers

    def to_json(self, *, per_marker_detail: bool = True) -> dict[str, Any]:
        s = self.summary
        out: dict[str, Any] = {
            "family": self.family,
            "missing": self.missing,
            "exclusion": {
                "per_marker": {m.marker: m.ep for m in s.markers},
                "total": s.ep_total,
                "expected_mismatch": s.expected_mismatch,
                "distribution": s.mismatch_distribution(),
                "n_potentially_excluding": sum(1 for m in s.markers if m.ep > 0),
            },
            "lr": {
                "per_marker": {
                    m.marker: {"e_lr": m.e_lr, "e_log10_lr": m.e_log10_lr, "var_log10_lr": m.var_log10_lr,
                               "mutation": m.mutation}
                    | ({"n_genotypes": m.n_genotypes, "n_possible": m.n_possible} if per_marker_detail else {})
                    for m in s.markers
                },
                "e_log10_lr": s.e_log10_lr,
                "sd_log10_lr": s.sd_log10_lr,
                "e_lr": s.e_lr,
                "log10_e_lr": s.log10_e_lr,
            },
            **s.inclusion_json(),
            "mutation_kept_for": [m.marker for m in s.markers if m.mutation == "kept"],
        }
        if s.lineage:
            out["lineage"] = s.lineage_json()
        if self.kept is not None:
            k = self.kept
            out["mutations_kept"] = {
                "exclusion_total": k.ep_total,
                "expected_mismatch": k.expected_mismatch,
                "e_log10_lr": k.e_log10_lr,
                "sd_log10_lr": k.sd_log10_lr,
                "e_lr": k.e_lr,
                "per_marker_e_log10_lr": {m.marker: m.e_log10_lr for m in k.markers},
                **k.inclusion_json(),
            }
        if self.next:
            out["next"] = [c.to_json() for c in self.next]
        out["notes"] = list(self.notes)
        return out


def _family_and_missing(case: Case, family: str | Family, missing: str | None) -> tuple[Family, str]:
    fam = case.family(family) if isinstance(family, str) else family
    if missing is None:
        if not fam.missing:
            raise PowerError(f"family {fam.id} has no missing person")
        missing = fam.missing[0]
    if missing not in fam.missing:
        raise PowerError(f"family {fam.id}: {missing!r} is not one of its missing persons "
                         f"({', '.join(fam.missing) or 'none'})")
    return fam, missing


def check_candidates(fam: Family, missing: str, candidates: Sequence[str]) -> None:
    """A candidate is an untyped member of the pedigree who is not missing."""
    if not candidates:
        raise PowerError("an empty candidate set")
    for c in candidates:
        if c not in fam.pedigree:
            raise PowerError(f"family {fam.id}: candidate {c!r} is not in the pedigree "
                             f"(members: {', '.join(fam.pedigree.ids)})")
        if fam.genotypes.get(c):
            raise PowerError(f"family {fam.id}: candidate {c} is already typed")
        if c in fam.missing:
            raise PowerError(f"family {fam.id}: candidate {c} is a missing person")
    if len(set(candidates)) != len(candidates):
        raise PowerError(f"family {fam.id}: candidate set {'+'.join(candidates)} names someone twice")


def family_power(
    case: Case,
    family: str | Family,
    missing: str | None = None,
    *,
    candidates: Sequence[Sequence[str]] = (),
    settings: PowerSettings | None = None,
) -> FamilyPower:
    """Exclusion power, the LR distribution of the true missing person and
    inclusion power of ``family``'s references for ``missing`` (default:
    its first missing person); with ``candidates`` (each a relative or a set
    of relatives, by pedigree id), the expected power after typing them,
    best first.

    >>> from opendvi.core.markers import make_marker
    >>> from opendvi.core.pedigree import parent_child
    >>> m = make_marker("M", ["a", "b", "c"], [0.2, 0.3, 0.5])
    >>> fam = Family("F", parent_child(), {"P": {"M": ("a", "b")}}, missing=("C",))
    >>> res = family_power(Case("c", (m,), families=(fam,)), "F")
    >>> round(res.summary.ep_total, 12)  # the child carries neither a nor b: c/c, 0.5^2
    0.25
    """
    settings = settings or PowerSettings()
    settings.check()
    case, notes = case.with_unseen_alleles()
    fam, mp = _family_and_missing(case, family, missing)
    kw: dict[str, Any] = {"theta": case.theta, "use_templates": settings.use_templates}
    base = [marker_power(fam, mp, m, mode=settings.mutations, **kw) for m in case.markers]
    for m in base:
        notes.extend(m.notes)
    bad = [m.marker for m in base if m.impossible]
    if bad:
        raise UnevaluableFamily(fam.id, bad)
    lin = lineage_power(case, fam, mp, nsim=settings.lineage_nsim, seed=settings.seed)
    summary = Summary(base, inclusion_of(base, settings, lineage=lin), lin)
    kept: Summary | None = None
    if settings.with_kept and settings.mutations == "forrel" and any(mk.has_mutation for mk in case.markers):
        km = [marker_power(fam, mp, m, mode="kept", **kw) for m in case.markers]
        kept = Summary(km, inclusion_of(km, settings, seed_offset=500, lineage=lin), lin)
    result = FamilyPower(family=fam.id, missing=mp, summary=summary, kept=kept, notes=list(dict.fromkeys(notes)))
    for j, cset in enumerate(candidates, start=1):
        cs = tuple(cset)
        check_candidates(fam, mp, cs)
        cm = [marker_power(fam, mp, m, mode=settings.mutations, candidates=cs, choice=b.mutation, **kw)
              for m, b in zip(case.markers, base, strict=True)]
        cl = lineage_power(case, fam, mp, cs, nsim=settings.lineage_nsim, seed=settings.seed + j)
        result.next.append(CandidatePower(cs, Summary(cm, inclusion_of(cm, settings, seed_offset=j, lineage=cl), cl)))
    result.next.sort(key=lambda c: rank_key(c.summary, settings))
    return result


def rank_key(s: Summary, settings: PowerSettings) -> tuple[float, ...]:
    """Sort key, best first: by E[log10 LR] (then exclusion power), by
    inclusion power at ``rank_threshold`` (then E[log10 LR]), or by
    exclusion power (then E[log10 LR])."""
    if settings.rank_by == "inclusion":
        return (-round(s.inclusion.at(settings.rank_threshold), 9), -s.e_log10_lr)
    if settings.rank_by == "exclusion":
        return (-round(s.ep_total, 12), -s.e_log10_lr)
    return (-s.e_log10_lr, -s.ep_total)


def untyped_relatives(fam: Family, missing: str) -> list[str]:
    """Members who could be typed next: untyped, not missing, and connected to
    the missing person through the pedigree."""
    ped = fam.pedigree
    adj: dict[int, set[int]] = {i: set() for i in range(len(ped))}
    for i in range(len(ped)):
        for par in (int(ped.father[i]), int(ped.mother[i])):
            if par >= 0:
                adj[i].add(par)
                adj[par].add(i)
    seen = {ped.index(missing)}
    stack = [ped.index(missing)]
    while stack:
        i = stack.pop()
        for j in adj[i] - seen:
            seen.add(j)
            stack.append(j)
    return [ped.ids[i] for i in sorted(seen)
            if not fam.genotypes.get(ped.ids[i]) and ped.ids[i] not in fam.missing]


def case_power(case: Case, *, families: Sequence[str] | None = None,
               candidates: Sequence[Sequence[str]] = (), settings: PowerSettings | None = None,
               skipped: list[str] | None = None) -> list[FamilyPower]:
    """:func:`family_power` of every (family, missing person) of the case
    (or of ``families``). Candidates are applied to the families whose
    pedigree holds every member of the set; a candidate in no family is an error.
    A family that cannot be evaluated (:class:`UnevaluableFamily`) is left
    out, and its note (core.rules) appended to ``skipped`` when given."""
    settings = settings or PowerSettings()
    case, notes = case.with_unseen_alleles()  # once for the case, as pairwise and screening do
    fams = [case.family(f) for f in families] if families else list(case.families)
    for cset in candidates:
        if not any(all(c in f.pedigree for c in cset) for f in fams):
            raise PowerError(f"candidate {'+'.join(cset)} is in no family's pedigree")
    out: list[FamilyPower] = []
    for fam in fams:
        own = one_family(case, fam)
        for mp in fam.missing:
            mine = [c for c in candidates if all(x in fam.pedigree for x in c)]
            try:
                res = family_power(own, fam, mp, candidates=mine, settings=settings)
            except UnevaluableFamily as exc:
                if skipped is not None:
                    skipped.append(str(exc))
                break  # the family, not one missing person, cannot be evaluated
            res.notes = list(dict.fromkeys([*notes, *res.notes]))
            out.append(res)
    return out


def one_family(case: Case, fam: Family) -> Case:
    """The case reduced to one family (its markers and theta), so that
    per-family work does not scan the whole registry."""
    return replace(case, families=(fam,), remains=(), pairings=None)
