"""Assembling one validated case from its parts: remains, families,
reference profiles, markers or a frequency source, and the lineage part."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage import CaseLineage, YHaplotype
from opendvi.core.markers import Marker, canonical_marker_name
from opendvi.core.mutation import MutationModel
from opendvi.io.case_json import validate_case
from opendvi.io.convert.lineage import LineageSources, build_lineage
from opendvi.io.convert.load import Dataset
from opendvi.io.frequencies import FrequencyDatabase
from opendvi.io.profiles import merge_profile_sets
from opendvi.io.tables import FamilyTable


def mutation_models(
    model: str = "none",
    *,
    female_rate: float = 0.001,
    male_rate: float = 0.002,
    range_: float = 0.1,
    rate2: float = 1e-6,
) -> tuple[MutationModel | None, MutationModel | None]:
    """Female and male models for markers made from a frequency file."""
    if model == "none":
        return None, None
    if model not in ("equal", "proportional", "stepwise"):
        raise FileFormatError(f"unknown mutation model {model!r} (none, equal, proportional, stepwise)")
    extra = {"range": range_, "rate2": rate2} if model == "stepwise" else {}
    return MutationModel(model, rate=female_rate, **extra), MutationModel(model, rate=male_rate, **extra)  # type: ignore[arg-type]


def _markers_from_db(
    db: FrequencyDatabase, used: Sequence[str], female: MutationModel | None, male: MutationModel | None
) -> list[Marker]:
    keys = {canonical_marker_name(m) for m in used}
    names = [t.name for k, t in db.tables.items() if not keys or k in keys]
    try:
        return [db.marker(n, female=female, male=male) for n in names]
    except OpenDVIError as exc:
        raise FileFormatError(str(exc), path=db.source) from None


def assemble_case(
    *,
    name: str,
    remains: Sequence[Sample] = (),
    families: Sequence[Family] = (),
    markers: Sequence[Marker] | None = None,
    freqs: FrequencyDatabase | None = None,
    theta: float = 0.0,
    mutation: tuple[MutationModel | None, MutationModel | None] = (None, None),
    skip_unknown_markers: bool = False,
    notes: list[str] | None = None,
    lineage: CaseLineage | None = None,
) -> Case:
    """One validated case from its parts.

    Markers come from ``markers`` (a case or .fam) or ``freqs`` (then only the
    markers typed somewhere, in the database's order). A typed marker absent
    from the frequencies is an error listing it and the sample, unless
    ``skip_unknown_markers`` (then it is left out, with a note per marker).
    ``lineage`` (Y-STR and mtDNA systems and haplotypes) goes into the case
    as it is; a case with lineage data needs no autosomal marker.
    """
    notes = notes if notes is not None else []
    used: dict[str, None] = {}
    for s in remains:
        for m in s.genotypes:
            used.setdefault(m, None)
    for f in families:
        for g in f.genotypes.values():
            for m in g:
                used.setdefault(m, None)
    if markers is None:
        if freqs is None:
            if used or lineage is None:
                raise FileFormatError(
                    "a case needs allele frequencies: give a frequency file (--freqs) or a .fam/.json with markers"
                )
            markers = []
        else:
            markers = _markers_from_db(freqs, list(used), *mutation)
    by_key = {canonical_marker_name(m.name): m.name for m in markers}
    unknown: dict[str, str] = {}
    for who, g in [(f"remains {s.id}", s.genotypes) for s in remains] + [
        (f"family {f.id}, member {pid}", g) for f in families for pid, g in f.genotypes.items()
    ]:
        for m in g:
            if canonical_marker_name(m) not in by_key:
                unknown.setdefault(m, who)
    if unknown and not skip_unknown_markers:
        lst = ", ".join(f"{m} (first in {w})" for m, w in unknown.items())
        raise FileFormatError(
            f"marker(s) not in the frequency database: {lst}; add their frequencies, or pass --skip-unknown-markers"
        )
    for m, w in unknown.items():
        notes.append(f"marker {m} (first in {w}) is not in the frequency database: left out")

    def fix(g: dict[str, tuple[str, ...]] | object) -> dict[str, tuple[str, ...]]:
        assert isinstance(g, dict)
        return {by_key[canonical_marker_name(m)]: a for m, a in g.items() if canonical_marker_name(m) in by_key}

    rem = [replace(s, genotypes=fix(dict(s.genotypes))) for s in remains]
    fams = [replace(f, genotypes={pid: fix(dict(g)) for pid, g in f.genotypes.items()}) for f in families]
    case = Case(
        name=name, markers=tuple(markers), remains=tuple(rem), families=tuple(fams), theta=theta, lineage=lineage
    )
    return validate_case(case)


def case_of(
    datasets: Sequence[Dataset],
    *,
    role: str = "remains",
    name: str,
    freqs: FrequencyDatabase | None = None,
    theta: float | None = None,
    mutation: tuple[MutationModel | None, MutationModel | None] = (None, None),
    skip_mixtures: bool = False,
    skip_unknown_markers: bool = False,
    notes: list[str],
    lineage: LineageSources | None = None,
) -> Case:
    """A case from several inputs: cases (JSON, .fam) are merged; profile
    files give remains (or, with ``role="references"``, the reference samples
    that the families tables name by barcode); families tables and ped files
    give families. Profiles of one sample in several files (an autosomal and
    a Y kit) are merged. Y-STR loci of the profiles become Y haplotypes and,
    with the sources of ``lineage``, the case's ``lineage`` part
    (:func:`build_lineage`)."""
    remains: list[Sample] = []
    families: list[Family] = []
    markers: list[Marker] | None = None
    th = 0.0
    ref_profiles: dict[str, Sample] = {}
    tables: list[FamilyTable] = []
    case_lineage: CaseLineage | None = None
    for ds in datasets:
        notes += [n for n in ds.notes if n not in notes]
        if ds.case is not None:
            remains += ds.case.remains
            families += ds.case.families
            if ds.case.lineage is not None:
                case_lineage = _merge_case_lineage(case_lineage, ds.case.lineage, ds.source)
            if markers is None:
                markers = list(ds.case.markers)
                th = ds.case.theta
        if ds.freqs is not None and freqs is None:
            freqs = ds.freqs
        if ds.family_table is not None:
            tables.append(ds.family_table)
        if ds.families is not None:
            families += ds.families
    named = {code for t in tables for _, _, _, codes in t.families for code in codes.values()}
    y_by_sample: dict[str, YHaplotype] = {}
    profile_sets = [ds.profiles for ds in datasets if ds.profiles is not None]
    if profile_sets:
        merged = merge_profile_sets(profile_sets, notes=notes) if len(profile_sets) > 1 else profile_sets[0]
        samples, y_by_sample = merged.samples_and_haplotypes(skip_mixtures=skip_mixtures, notes=notes)
        for s in samples:
            if role == "references" or s.id in named:
                ref_profiles[s.id] = s
            else:
                remains.append(s)
    for t in tables:
        families += t.build(ref_profiles, notes=notes)
    if ref_profiles and not tables:
        raise FileFormatError("reference profiles need a families table (--families) that names their samples")
    if freqs is not None:
        markers = None  # an explicit frequency file wins
    lin = build_lineage(
        remains=remains,
        families=families,
        tables=tables,
        y_by_sample=y_by_sample,
        sources=lineage or LineageSources(),
        case_lineage=case_lineage,
        skip_unknown_markers=skip_unknown_markers,
        notes=notes,
    )
    return assemble_case(
        name=name,
        remains=remains,
        families=families,
        markers=markers,
        freqs=freqs,
        theta=th if theta is None else theta,
        mutation=mutation,
        skip_unknown_markers=skip_unknown_markers,
        notes=notes,
        lineage=lin,
    )


def _merge_case_lineage(have: CaseLineage | None, new: CaseLineage, source: str) -> CaseLineage:
    if have is None:
        return new
    if (new.y is not None and have.y is not None and new.y != have.y) or (
        new.mt is not None and have.mt is not None and new.mt != have.mt
    ):
        raise FileFormatError("two cases with different lineage systems (loci, rates or databases)", path=source)
    return CaseLineage(y=have.y or new.y, mt=have.mt or new.mt, haplotypes={**have.haplotypes, **new.haplotypes})
