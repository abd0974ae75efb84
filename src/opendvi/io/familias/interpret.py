"""A parsed ``.fam`` file interpreted as a case: markers from the database,
remains and families from the ``[DVI]`` section or the pedigrees."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.markers import FREQ_SUM_TOL, Marker, canonical_marker_name
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype
from opendvi.io.familias.model import MISSING_PREFIX, MODEL_CODES, FamFile, FamPedigree, FamPerson, FamSexModel
from opendvi.io.familias.reader import parse_fam
from opendvi.io.normalise import marker_name, normalise_allele
from opendvi.io.source import Source, source_name


def _model(m: FamSexModel, *, numeric: bool) -> MutationModel | None:
    kind = MODEL_CODES[m.code]
    if kind == "equal":
        return MutationModel("equal", rate=m.rate)
    if kind == "proportional":
        return MutationModel("proportional", rate=m.rate)
    if not numeric:
        return MutationModel("equal", rate=m.rate)
    return MutationModel(
        "stepwise",
        rate=m.rate,
        rate2=m.rate2,
        range=m.range,
        transform="stationary" if kind == "stepwise-stationary" else None,
    )


def _markers(ff: FamFile, path: str, notes: list[str], *, chromosome: str) -> list[Marker]:
    out: list[Marker] = []
    for loc in ff.loci:
        if loc.has_silent and loc.silent_frequency > 0:
            raise FileFormatError(
                f"locus {loc.name} has a silent allele (frequency {loc.silent_frequency:g}); opendvi has no "
                "null-allele model: remove it in Familias",
                path=path,
                line=loc.line,
                field=loc.name,
            )
        freqs = list(loc.frequencies)
        total = math.fsum(freqs)
        if any(f <= 0 for f in freqs):
            zero = [a for a, f in zip(loc.alleles, freqs, strict=True) if f <= 0]
            raise FileFormatError(
                f"locus {loc.name}: allele {zero[0]} has frequency 0", path=path, line=loc.line, field=loc.name
            )
        if abs(total - 1.0) > 0.02:
            raise FileFormatError(
                f"locus {loc.name}: frequencies sum to {total:.6g}, expected 1",
                path=path,
                line=loc.line,
                field=loc.name,
            )
        if abs(total - 1.0) > FREQ_SUM_TOL:
            notes.append(f"{path}: locus {loc.name}: frequencies sum to {total:.6g}; renormalised to 1")
            freqs = [f / total for f in freqs]
        no_mut = all(s.rate == 0 and (s.code <= 1 or s.rate2 == 0) for s in (loc.female, loc.male))
        numeric = all(normalise_allele(a, allow_off_ladder=False) == a for a in loc.alleles)
        if not numeric and not no_mut and (loc.female.code > 1 or loc.male.code > 1):
            notes.append(
                f"{path}: locus {loc.name}: non-numeric allele with a stepwise model; the equal model "
                "is used with the same rates (as Familias and pedFamilias do)"
            )
        try:
            female = None if no_mut else _model(loc.female, numeric=numeric)
            male = None if no_mut else _model(loc.male, numeric=numeric)
            out.append(
                Marker(
                    name=marker_name(loc.name),
                    alleles=tuple(loc.alleles),
                    frequencies=tuple(freqs),
                    chromosome=chromosome,
                    female=female,
                    male=male,
                    database_size=loc.database_size,
                )
            )
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=path, line=loc.line, field=loc.name) from None
    return out


def _genotypes(person: FamPerson, names: dict[str, str]) -> dict[str, Genotype]:
    out: dict[str, Genotype] = {}
    for m, alleles in person.genotypes.items():
        mname = names[canonical_marker_name(m)]
        if len(alleles) == 1:
            out[mname] = (alleles[0],)
        elif alleles:
            out[mname] = (alleles[0], alleles[1])
    return out


@dataclass
class _Member:
    name: str
    sex: str | None
    father: str | None = None
    mother: str | None = None
    genotypes: dict[str, Genotype] = field(default_factory=dict)
    dropout: float = 0.0


def _build_members(
    persons: Sequence[tuple[str, str | None, dict[str, Genotype], float]],
    relations: Sequence[tuple[str, str]],
    *,
    where: str,
    path: str,
    notes: list[str],
    line: int | None,
) -> list[_Member]:
    members: dict[str, _Member] = {}
    for name, sex, gts, d in persons:
        members[name] = _Member(name, sex, genotypes=dict(gts), dropout=d)
    for par, chi in relations:
        for n in (par, chi):
            if n not in members:
                members[n] = _Member(n, None)
    # sex of persons that appear only in relations: from their co-parents
    parents_of: dict[str, list[str]] = {}
    for par, chi in relations:
        parents_of.setdefault(chi, []).append(par)
    for _ in range(3):
        for m in members.values():
            if m.sex is not None:
                continue
            kids = [chi for par, chi in relations if par == m.name]
            if not kids:
                continue
            spouses = {q for k in kids for q in parents_of[k] if q != m.name}
            ssex = {members[q].sex for q in spouses}
            if ssex == {"M"}:
                m.sex = "F"
            elif ssex == {"F"}:
                m.sex = "M"
            elif not spouses:
                m.sex = "F"
                notes.append(
                    f"{path}: {where}: the sex of {m.name} is not given and {m.name} has no co-parent; "
                    "taken as female (as pedFamilias does): check it"
                )
    for m in members.values():
        if m.sex is None:
            m.sex = "M"
            notes.append(f"{path}: {where}: the sex of {m.name} is not given in the file; taken as male: check it")
    for chi, pars in parents_of.items():
        if len(pars) > 2:
            raise FileFormatError(f"{where}: {chi} has {len(pars)} parents", path=path, line=line)
        for par in pars:
            role = "father" if members[par].sex == "M" else "mother"
            if getattr(members[chi], role) not in (None, par):
                raise FileFormatError(f"{where}: {chi} has two {role}s", path=path, line=line)
            setattr(members[chi], role, par)
    # a single parent gets a founder partner (pedtools needs both or neither)
    k = 0
    for m in list(members.values()):
        if (m.father is None) != (m.mother is None):
            k += 1
            new = f"added_{k}"
            while new in members:
                k += 1
                new = f"added_{k}"
            sex = "M" if m.father is None else "F"
            members[new] = _Member(new, sex)
            if m.father is None:
                m.father = new
            else:
                m.mother = new
            # the same added parent for full siblings of m
            for o in members.values():
                if o is m:
                    continue
                if m.father == new and o.father is None and o.mother == m.mother and o.mother is not None:
                    o.father = new
                if m.mother == new and o.mother is None and o.father == m.father and o.father is not None:
                    o.mother = new
            notes.append(f"{path}: {where}: {m.name} has one parent in the file; {new} ({sex}) added as the other")
    return list(members.values())


def fam_to_case(
    ff: FamFile,
    *,
    path: str = "",
    name: str | None = None,
    missing_prefix: str = MISSING_PREFIX,
    chromosome: str = "autosomal",
) -> tuple[Case, list[str]]:
    """Turn a parsed ``.fam`` into a case and the notes made on the way.

    * the database gives the markers;
    * with a ``[DVI]`` section: its unidentified persons are the remains and
      each reference family a family (its pedigree other than "Reference
      pedigree"); untyped persons whose name begins with ``missing_prefix``
      are the missing persons (dvir's convention);
    * without one: each pedigree (hypothesis) is a family of all persons.

    Ids must be unique in a case: a name used in more than one family (or by
    a remains) is written ``name [family]``.
    """
    notes = list(ff.notes)
    markers = _markers(ff, path, notes, chromosome=chromosome)
    mnames = {canonical_marker_name(loc.name): marker_name(loc.name) for loc in ff.loci}
    remains: list[Sample] = []
    fam_specs: list[tuple[str, list[_Member], int | None]] = []

    if ff.has_dvi:
        if ff.persons or ff.pedigrees:
            notes.append(
                f"{path}: the persons and pedigrees before the database are not used: the [DVI] section "
                "gives the remains and the families"
            )
        for pr in ff.unidentified or []:
            remains.append(Sample(id=pr.name, sex=pr.sex, genotypes=_genotypes(pr, mnames)))
        for fam in ff.families or []:
            peds = [pd for pd in fam.pedigrees if pd.name != "Reference pedigree"] or fam.pedigrees
            distinct: list[FamPedigree] = []
            for pd in peds:
                if not any(sorted(pd.relations) == sorted(q.relations) for q in distinct):
                    distinct.append(pd)
            if not distinct:
                distinct = [FamPedigree("", [], [], fam.line)]
            people = [(pr.name, pr.sex, _genotypes(pr, mnames), 0.0) for pr in fam.persons]
            for pd in distinct:
                fid = fam.name if len(distinct) == 1 else f"{fam.name}: {pd.name}"
                members = _build_members(
                    people, pd.relations, where=f"family {fid}", path=path, notes=notes, line=pd.line
                )
                fam_specs.append((fid, members, pd.line))
    else:
        people = []
        for pr in ff.persons:
            d = 0.0
            if pr.consider_dropout:
                d = max((loc.dropout for loc in ff.loci if loc.name in pr.genotypes), default=0.0)
            people.append((pr.name, pr.sex, _genotypes(pr, mnames), d))
        people += [(n, s, {}, 0.0) for n, s in ff.known_extras]
        if ff.pedigrees:
            for pd in ff.pedigrees:
                rels = list(dict.fromkeys([*ff.known_relations, *pd.relations]))
                members = _build_members(
                    [*people, *[(n, s, {}, 0.0) for n, s in pd.extras]],
                    rels,
                    where=f"pedigree {pd.name}",
                    path=path,
                    notes=notes,
                    line=pd.line,
                )
                fam_specs.append((pd.name, members, pd.line))
        elif people:
            members = _build_members(
                people, ff.known_relations, where="known relations", path=path, notes=notes, line=None
            )
            fam_specs.append((name or (Path(path).stem if path else "family"), members, None))

    # -- unique ids across the case
    used: dict[str, int] = {}
    for r in remains:
        used[r.id] = used.get(r.id, 0) + 1
    for fid, members, _ in fam_specs:
        used[fid] = used.get(fid, 0) + 1
        for m in members:
            used[m.name] = used.get(m.name, 0) + 1
    families: list[Family] = []
    for fid, members, line in fam_specs:
        rename = {m.name: (f"{m.name} [{fid}]" if used[m.name] > 1 else m.name) for m in members}
        people_ind = [
            Individual(
                rename[m.name],
                rename[m.father] if m.father else None,
                rename[m.mother] if m.mother else None,
                m.sex,
            )
            for m in members
        ]
        try:
            ped = Pedigree(people_ind, where=f"family {fid}")
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=path, line=line) from None
        missing = tuple(
            rename[m.name] for m in members if not m.genotypes and m.name.lower().startswith(missing_prefix.lower())
        )
        families.append(
            Family(
                id=fid,
                pedigree=ped,
                genotypes={rename[m.name]: m.genotypes for m in members if m.genotypes},
                missing=missing,
                dropout={rename[m.name]: m.dropout for m in members if m.dropout},
            )
        )
    case = Case(
        name=name or (Path(path).stem if path else "familias"),
        markers=tuple(markers),
        remains=tuple(remains),
        families=tuple(families),
        theta=ff.theta,
    )
    _check_case(case, path)
    return case, notes


def _check_case(case: Case, path: str) -> None:
    """The case checked as its ``dvi-case/1`` file would be (one line, no element path)."""
    from opendvi.io.case_checks import validate_case

    try:
        validate_case(case, path=path)
    except FileFormatError as exc:
        raise FileFormatError(exc.reason, path=path, field=exc.field) from None


def read_fam(
    source: Source,
    *,
    name: str | None = None,
    missing_prefix: str = MISSING_PREFIX,
    chromosome: str = "autosomal",
    filename: str | None = None,
) -> tuple[Case, list[str]]:
    """Read a Familias ``.fam`` file (a path or a file object; ``filename``:
    the name messages give it) into a case; returns ``(case, notes)``."""
    path = source_name(source, filename)
    ff = parse_fam(source, filename=path)
    return fam_to_case(ff, path=path, name=name, missing_prefix=missing_prefix, chromosome=chromosome)
