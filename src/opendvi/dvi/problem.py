"""The identification problem: remains, families, missing persons, pairings.

:class:`DVIProblem` prepares a :class:`~opendvi.core.case.Case` for
matching: alleles absent from the frequency tables are added
(``likelihood.md``), each remains' sex is taken from its record or from its
Amelogenin result, the Amelogenin marker is set aside (it is a sex test, not
an STR), families whose references are impossible at a marker are set
aside with a note (they cannot be evaluated), and the admissible pairings
(remains -> missing persons) are derived. The rules are those of
:mod:`opendvi.core.rules`, shared with screening. It also owns the cache of
family likelihoods (:class:`LikelihoodCache`), so that every engine call is
made once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from opendvi.core.case import Case, Family, Sample
from opendvi.core.likelihood import GenotypeTable, marker_genotype_table, marker_loglik, pedigree_loglik
from opendvi.core.markers import Marker
from opendvi.core.observation import observed_value
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype
from opendvi.core.rules import amelogenin_sex as amelogenin_sex  # re-exported (opendvi.dvi)
from opendvi.core.rules import (
    inconsistent_references_note,
    is_amelogenin,
    lr_is_one,
    resolve_sex,
    unevaluable_family_note,
)
from opendvi.core.rules import safe_exp as safe_exp  # re-exported (joint, undisputed, cli)
from opendvi.dvi.errors import DVIError
from opendvi.dvi.lineage_joint import LineageFactors

#: A remains placed on a missing person: (missing person id, remains id).
Placement = tuple[str, str]

#: Suffix that marks a family member as the missing person's own reference
#: sample (personal effects: a toothbrush, a biopsy), e.g. ``M1.self``.
SELF_SUFFIX = ".self"


@dataclass(frozen=True)
class MissingPerson:
    """A missing person: id, family and sex."""

    id: str
    family: str
    sex: str | None


class LikelihoodCache:
    """Per-marker log-likelihoods of families and samples, each computed once.

    Two kinds of engine call. A *genotype table* (``marker_genotype_table``):
    one elimination gives P(references, other placements, M = g) for every
    genotype g of a missing person M, and a remains' value is the table
    summed against its observation model (dropout included); it is built
    where several genotypes will meet M (:meth:`prepare_table`), and P(g) of
    an unrelated person comes from a singleton's table. Everything else is a
    *marker-batched evaluation* (``pedigree_loglik``) of the family with one
    set of remains placed, over all markers not yet known. Values are cached
    by genotype, so two remains with the same genotype at a marker share them.
    """

    def __init__(self, markers: Sequence[Marker], families: Iterable[Family], *, theta: float) -> None:
        self.markers = tuple(markers)
        self.theta = theta
        self.families = {f.id: f for f in families}
        self._no_mut = {m.name: m.without_mutation() if m.has_mutation else m for m in self.markers}
        self._refs: dict[str, dict[str, dict[str, Genotype]]] = {}
        for f in self.families.values():
            per: dict[str, dict[str, Genotype]] = {m.name: {} for m in self.markers}
            for pid, gts in f.genotypes.items():
                for mname, gt in gts.items():
                    if mname in per:
                        per[mname][pid] = gt
            self._refs[f.id] = per
        self._null: dict[tuple[str, bool], dict[str, float]] = {}
        self._tables: dict[tuple[object, ...], GenotypeTable] = {}
        self._fam: dict[tuple[object, ...], float] = {}
        self._extra_ped: dict[tuple[str, str | None], Pedigree] = {}
        self.engine_calls = 0

    def inherit(self, other: LikelihoodCache, *, keep: set[str]) -> None:
        """Take over ``other``'s values for the families in ``keep`` (unchanged
        since) and for single samples; the markers must be the same."""
        if self.theta != other.theta or [m.name for m in self.markers] != [m.name for m in other.markers]:
            return
        self._null.update((k, v) for k, v in other._null.items() if k[0] in keep)
        self._tables.update((k, v) for k, v in other._tables.items() if k[0] in keep or k[0] == "")
        self._fam.update((k, v) for k, v in other._fam.items() if k[0] in keep or k[0] == "")

    def references_typed(self, fid: str, marker: Marker) -> bool:
        """Whether some reference of family ``fid`` is typed at ``marker``."""
        return bool(self._refs[fid][marker.name])

    def family_null(self, fid: str, marker: Marker, *, mutation: bool = True) -> float:
        """ln P(references of ``fid``) at ``marker`` (all markers in one batched call)."""
        key = (fid, mutation)
        per = self._null.get(key)
        if per is None:
            fam = self.families[fid]
            mks = self.markers if mutation else tuple(self._no_mut[m.name] for m in self.markers)
            gts: dict[str, dict[str, Genotype]] = {}
            for mname, by_pid in self._refs[fid].items():
                for pid, gt in by_pid.items():
                    gts.setdefault(pid, {})[mname] = gt
            per = dict(pedigree_loglik(fam.pedigree, mks, gts, theta=self.theta, dropout=fam.dropout).per_marker)
            self.engine_calls += 1
            self._null[key] = per
        return per[marker.name]

    def _table(
        self,
        fid: str,
        marker: Marker,
        target: str,
        others: tuple[tuple[str, Genotype, float], ...],
        mutation: bool,
    ) -> GenotypeTable:
        key = (fid, marker.name, target, others, mutation)
        tab = self._tables.get(key)
        if tab is None:
            fam = self.families[fid]
            gts = dict(self._refs[fid][marker.name])
            dropout = dict(fam.dropout)
            for mp, gt, d in others:
                gts[mp] = gt
                if d:
                    dropout[mp] = d
            mk = marker if mutation else self._no_mut[marker.name]
            tab = marker_genotype_table(fam.pedigree, mk, gts, target, theta=self.theta, dropout=dropout)
            self.engine_calls += 1
            self._tables[key] = tab
        return tab

    def family_markers(
        self,
        fid: str,
        items: Sequence[tuple[Marker, tuple[tuple[str, Genotype, float], ...]]],
        *,
        mutation: bool = True,
    ) -> list[float]:
        """ln P(references, placed genotypes) of family ``fid`` at each
        (marker, placed) of ``items`` (placed = sorted (missing person,
        genotype, dropout), one set of people across the items). Values come
        from the cache, from a genotype table already built, or from one
        engine call batched over the markers still needed."""
        out: list[float | None] = []
        todo: list[int] = []
        for k, (marker, placed) in enumerate(items):
            if not placed:
                out.append(self.family_null(fid, marker, mutation=mutation))
                continue
            if len(placed) == 1 and lr_is_one(self.references_typed(fid, marker), True):
                # no reference typed at this marker: a single placed remains
                # contributes LR 1 (core.rules.lr_is_one), i.e. its own
                # probability as an unrelated person. Two or more remains
                # placed in one family keep their relationship.
                mp, gt, d = placed[0]
                sex = self.families[fid].sex_of(mp)
                out.append(self.family_null(fid, marker, mutation=mutation) + self.single_marker(marker, gt, d, sex))
                continue
            key = (fid, marker.name, placed, mutation)
            val = self._fam.get(key)
            if val is None:
                target, gt, d = placed[-1]
                tab = self._tables.get((fid, marker.name, target, placed[:-1], mutation))
                if tab is not None:
                    val = observed_loglik(tab, marker, gt, d)
                    self._fam[key] = val
            out.append(val)
            if val is None:
                todo.append(k)
        if todo:
            fam = self.families[fid]
            gts: dict[str, dict[str, Genotype]] = {}
            dropout = dict(fam.dropout)
            mks = []
            for k in todo:
                marker, placed = items[k]
                mk = marker if mutation else self._no_mut[marker.name]
                mks.append(mk)
                for pid, gt in self._refs[fid][marker.name].items():
                    gts.setdefault(pid, {})[mk.name] = gt
                for mp, gt, d in placed:
                    gts.setdefault(mp, {})[mk.name] = gt
                    if d:
                        dropout[mp] = d
            res = pedigree_loglik(fam.pedigree, mks, gts, theta=self.theta, dropout=dropout).per_marker
            self.engine_calls += 1
            for k in todo:
                marker, placed = items[k]
                val = res[marker.name]
                self._fam[(fid, marker.name, placed, mutation)] = val
                out[k] = val
        return [float(v) for v in out]  # type: ignore[arg-type]

    def prepare_table(
        self,
        fid: str,
        marker: Marker,
        target: str,
        others: tuple[tuple[str, Genotype, float], ...] = (),
        *,
        mutation: bool = True,
    ) -> None:
        """Build the genotype table of ``target`` (worth it when several
        genotypes will be placed on it). Not with theta > 0: there the table
        keeps every founder allele over every allele of the marker (no
        lumping beside a target), which can exceed the engine's theta table
        limit where a direct evaluation (with lumping) stays small; so every
        genotype is evaluated directly."""
        if self.theta == 0.0:
            self._table(fid, marker, target, others, mutation)

    def single_marker(self, marker: Marker, gt: Genotype, dropout: float, sex: str | None) -> float:
        """ln P(gt) of one unrelated person."""
        s = (sex if sex is not None else "M") if marker.is_x else "M"
        if self.theta > 0.0:
            return self._direct(
                ("", marker.name, "single", s, gt, dropout),
                Pedigree([Individual("_V", sex=s)]),
                marker,
                {"_V": gt},
                {"_V": dropout},
            )
        key = ("", marker.name, "single", s)
        tab = self._tables.get(key)
        if tab is None:
            ped = Pedigree([Individual("_V", sex=s)])
            tab = marker_genotype_table(ped, marker, {}, "_V", theta=self.theta)
            self.engine_calls += 1
            self._tables[key] = tab
        return observed_loglik(tab, marker, gt, dropout)

    def unrelated_marker(self, fid: str, marker: Marker, gt: Genotype, dropout: float, sex: str | None) -> float:
        """ln P(references, gt) with the remains an unrelated extra founder of
        the family's pedigree (theta applied jointly)."""
        if self.theta == 0.0:
            return self.family_null(fid, marker) + self.single_marker(marker, gt, dropout, sex)
        s = (sex if sex is not None else "M") if marker.is_x else "M"
        fam = self.families[fid]
        pk = (fid, s)
        ped = self._extra_ped.get(pk)
        if ped is None:
            ped = fam.pedigree.add(Individual("_V", sex=s))
            self._extra_ped[pk] = ped
        return self._direct(
            (fid, marker.name, "unrelated", s, gt, dropout),
            ped,
            marker,
            {**self._refs[fid][marker.name], "_V": gt},
            {**fam.dropout, "_V": dropout},
        )

    def _direct(
        self,
        key: tuple[object, ...],
        ped: Pedigree,
        marker: Marker,
        gts: Mapping[str, Genotype],
        dropout: Mapping[str, float],
    ) -> float:
        val = self._fam.get(key)
        if val is None:
            val = marker_loglik(ped, marker, gts, theta=self.theta, dropout=dropout)
            self.engine_calls += 1
            self._fam[key] = val
        return val


def observed_loglik(tab: GenotypeTable, marker: Marker, gt: Genotype, d: float) -> float:
    """ln of sum over the target's genotypes of P(data, genotype) P(gt observed | genotype),
    with the dropout model of ``likelihood.md`` (:func:`opendvi.core.observation.observed_value`)."""
    val = observed_value(tab.table, [marker.index[a] for a in gt], d)
    if val <= 0.0 or tab.log_scale == -math.inf:
        return -math.inf
    return tab.log_scale + math.log(val)


class DVIProblem:
    """A case prepared for identification.

    Parameters
    ----------
    case:
        The case (``dvi-case/1``).
    ignore_sex:
        Pair every remains with every missing person, whatever the sexes.
    reference_checks:
        The reference checks of :mod:`opendvi.core.rules` already made on this
        case by screening (``ScreenResult.unevaluable``, ``.inconsistent``:
        family -> markers), so that they are not computed again; the notes are
        the same.
    """

    def __init__(
        self,
        case: Case,
        *,
        ignore_sex: bool = False,
        reference_checks: tuple[Mapping[str, Sequence[str]], Mapping[str, Sequence[str]]] | None = None,
        _reuse: tuple[LikelihoodCache, set[str]] | None = None,
    ) -> None:
        case, notes = case.with_unseen_alleles()
        self.notes: list[str] = list(notes)
        self.case = case
        self.ignore_sex = ignore_sex
        self.theta = case.theta
        amel = [m for m in case.markers if is_amelogenin(m)]
        self.amelogenin: str | None = amel[0].name if amel else None
        self.markers: tuple[Marker, ...] = tuple(m for m in case.markers if not is_amelogenin(m))
        if not self.markers and case.lineage is None:
            raise DVIError(f"case {case.name}: no marker to compute likelihood ratios on")
        self.personal_effects: dict[str, Sample] = {}
        families = [self._split_personal_effects(fam) for fam in case.families]
        self.cache = LikelihoodCache(self.markers, families, theta=self.theta)
        if _reuse is not None:
            self.cache.inherit(_reuse[0], keep=_reuse[1])
        #: families that cannot be evaluated (core.rules): id -> the markers
        #: at which their references are impossible; they take no part
        self.skipped: dict[str, tuple[str, ...]] = {}
        #: markers at which a family's references are inconsistent without
        #: mutation: an exclusion of every pairing with the family (core.rules)
        self.inconsistent: dict[str, frozenset[str]] = {}
        self._known_checks = reference_checks
        self.families: dict[str, Family] = {}
        for fam in families:
            if self._check_references(fam):
                self.families[fam.id] = fam
        self.missing: dict[str, MissingPerson] = {}
        for fam in self.families.values():
            for mp in fam.missing:
                self.missing[mp] = MissingPerson(mp, fam.id, fam.sex_of(mp))
        self.remains: dict[str, Sample] = {}
        for r in case.remains:
            self.remains[r.id] = self._resolve_sex(r)
        self.admissible: dict[str, tuple[str, ...]] = self._pairings(case.pairings)
        #: the lineage factors of the joint step (``dvi.lineage_joint``; 1 without lineage data)
        self.lineage_factors = LineageFactors(self)

    # -- preparation --------------------------------------------------------------
    def _split_personal_effects(self, fam: Family) -> Family:
        """Members ``<missing>.self`` (typed founders without children) are the
        missing person's own reference sample: they leave the pedigree and are
        kept for direct matching."""
        selfs = [
            pid
            for pid in fam.pedigree.ids
            if pid.endswith(SELF_SUFFIX) and pid[: -len(SELF_SUFFIX)] in fam.missing and fam.genotypes.get(pid)
        ]
        if not selfs:
            return fam
        ped = fam.pedigree
        for pid in selfs:
            i = ped.index(pid)
            if ped.father[i] >= 0 or ped.children[i]:
                raise DVIError(
                    f"family {fam.id}: {pid} is a personal-effects sample (id '<missing>{SELF_SUFFIX}') "
                    "and must be a founder without children"
                )
            mp = pid[: -len(SELF_SUFFIX)]
            self.personal_effects[mp] = Sample(
                id=pid, sex=fam.sex_of(mp), genotypes=dict(fam.genotypes[pid]), dropout=fam.dropout.get(pid, 0.0)
            )
        keep = [p for p in ped.ids if p not in selfs]
        return replace(
            fam,
            pedigree=ped.subset(keep),
            genotypes={k: v for k, v in fam.genotypes.items() if k not in selfs},
            dropout={k: v for k, v in fam.dropout.items() if k not in selfs},
        )

    def _check_references(self, fam: Family) -> bool:
        """Whether the family can be evaluated (core.rules): its references
        must be possible at every marker. Also records the markers at which
        they are inconsistent without mutation (an exclusion of every pairing)."""
        if self._known_checks is not None:
            bad = list(self._known_checks[0].get(fam.id, ()))
            inc = [] if bad else list(self._known_checks[1].get(fam.id, ()))
        else:
            bad = [m.name for m in self.markers if self.cache.family_null(fam.id, m) == -math.inf]
            inc = [] if bad else self._inconsistent_markers(fam)
        if bad:
            self.skipped[fam.id] = tuple(bad)
            self.notes.append(unevaluable_family_note(fam.id, bad))
            return False
        if inc:
            self.inconsistent[fam.id] = frozenset(inc)
            self.notes.append(inconsistent_references_note(fam.id, inc))
        return True

    def _inconsistent_markers(self, fam: Family) -> list[str]:
        if not (fam.references and any(m.has_mutation for m in self.markers)):
            return []
        return [
            m.name
            for m in self.markers
            if m.has_mutation and self.cache.family_null(fam.id, m, mutation=False) == -math.inf
        ]

    def _resolve_sex(self, r: Sample) -> Sample:
        amel = r.genotypes.get(self.amelogenin) if self.amelogenin is not None else None
        sex, note = resolve_sex(r.sex, amel, who=f"remains {r.id}")
        if note is not None:
            self.notes.append(note)
        gts = dict(r.genotypes)
        if sex is None:
            dropped = [m.name for m in self.markers if m.is_x and m.name in gts]
            for name in dropped:
                del gts[name]
            if dropped:
                self.notes.append(f"remains {r.id}: sex unknown, X markers {', '.join(dropped)} not used")
        return replace(r, sex=sex, genotypes=gts)

    def _pairings(self, restriction: Mapping[str, tuple[str, ...]] | None) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for rid, r in self.remains.items():
            allowed = list(self.missing) if restriction is None or rid not in restriction else list(restriction[rid])
            keep = []
            for mp in allowed:
                if restriction is not None and mp not in self.missing and self._in_skipped_family(mp):
                    continue
                if mp not in self.missing:
                    raise DVIError(f"pairings: {rid} -> {mp}: {mp} is not a missing person of the case")
                if self.sex_compatible(r.sex, self.missing[mp].sex):
                    keep.append(mp)
                elif restriction is not None and rid in restriction:
                    self.notes.append(f"pairings: {rid} -> {mp} dropped (sex {r.sex} vs {self.missing[mp].sex})")
            out[rid] = tuple(keep)
        return out

    def _in_skipped_family(self, mp: str) -> bool:
        return any(f.id in self.skipped and mp in f.missing for f in self.case.families)

    def sex_compatible(self, a: str | None, b: str | None) -> bool:
        return self.ignore_sex or a is None or b is None or a == b

    # -- likelihoods ------------------------------------------------------------------
    def family_of(self, mp: str) -> str:
        try:
            return self.missing[mp].family
        except KeyError:
            raise DVIError(f"{mp!r} is not a missing person of case {self.case.name}") from None

    def placed_at(self, marker: Marker, placements: Iterable[Placement]) -> tuple[tuple[str, Genotype, float], ...]:
        out = []
        for mp, rid in placements:
            r = self.remains[rid]
            gt = r.genotypes.get(marker.name)
            if gt:
                out.append((mp, gt, r.dropout))
        return tuple(sorted(out))

    def family_loglik(self, fid: str, placements: Iterable[Placement]) -> float:
        """ln P(references of ``fid`` and the remains placed on its missing persons)."""
        pl = tuple(placements)
        vals = self.cache.family_markers(fid, [(m, self.placed_at(m, pl)) for m in self.markers])
        if any(v == -math.inf for v in vals):
            return -math.inf
        if self.case.lineage is not None and pl:  # times the placements' joint lineage LR
            vals.append(self.lineage_factors.family_log_lr(fid, pl))
            if vals[-1] == -math.inf:
                return -math.inf
        return math.fsum(vals)

    def remains_loglik(self, rid: str) -> float:
        """ln P(profile of remains ``rid``) as an unrelated person."""
        r = self.remains[rid]
        total = 0.0
        for m in self.markers:
            gt = r.genotypes.get(m.name)
            if gt:
                total += self.cache.single_marker(m, gt, r.dropout, r.sex)
        return total

    def null_loglik(self) -> float:
        """ln P(all data | nobody identified)."""
        return math.fsum(
            [self.family_loglik(f, ()) for f in self.families] + [self.remains_loglik(r) for r in self.remains]
        )

    # -- derived problems -------------------------------------------------------------
    def with_identified(self, identified: Mapping[str, str]) -> DVIProblem:
        """The problem after placing remains on missing persons (``{remains:
        missing}``): each remains' profile becomes its missing person's
        genotypes in the family, and both leave the problem."""
        fams = {f.id: f for f in self.case.families}
        for rid, mp in identified.items():
            fid = self.family_of(mp)
            r = self.remains[rid]
            fam = fams[fid]
            gts = {k: dict(v) for k, v in fam.genotypes.items()}
            gts[mp] = dict(r.genotypes)
            dropout = dict(fam.dropout)
            if r.dropout:
                dropout[mp] = r.dropout
            fams[fid] = replace(fam, genotypes=gts, dropout=dropout, missing=tuple(x for x in fam.missing if x != mp))
        pairings = None
        if self.case.pairings is not None:
            gone = set(identified.values())
            pairings = {
                k: tuple(x for x in v if x not in gone) for k, v in self.case.pairings.items() if k not in identified
            }
        case = replace(
            self.case,
            remains=tuple(self.remains[r] for r in self.remains if r not in identified),
            families=tuple(fams[f.id] for f in self.case.families),
            pairings=pairings,
            lineage=None if self.case.lineage is None else self.case.lineage.with_identified(identified),
        )
        changed = {self.family_of(m) for m in identified.values()}
        return DVIProblem(
            case, ignore_sex=self.ignore_sex, _reuse=(self.cache, {f for f in self.families if f not in changed})
        )
