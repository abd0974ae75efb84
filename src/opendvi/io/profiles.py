"""Profiles as read from laboratory files, before they join a case.

Every profile reader (GeneMapper, CODIS CMF, profile CSV/Excel) returns a
:class:`ProfileSet`: one :class:`ProfileRecord` per sample, in file order,
with what a laboratory file can say that a case cannot hold: off-ladder
calls, more than two alleles (a mixture), the line the sample came from.
:meth:`ProfileSet.samples` turns them into case samples and refuses, with
the place, anything that is not a single-source profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from opendvi.core.case import Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage import YHaplotype, default_y_marker, is_y_str_locus, parse_y_value
from opendvi.core.markers import canonical_marker_name
from opendvi.core.profiles import Genotype
from opendvi.core.rules import resolve_sex_with_y
from opendvi.io.normalise import is_off_ladder

#: The sex tests of a profile (never genotypes): Amelogenin and the Yindel.
AMEL = "AMEL"
YINDEL = "Yindel"
_YINDEL_ALLELES = {"1", "2"}
_COPY = re.compile(r"^(DY[SF]\d+(?:S\d+)?)(AB|[A-D])$")


def y_locus(name: str) -> tuple[str, int | None] | None:
    """A Y-STR locus name as opendvi writes it (the spelling of the bundled
    mutation rates: ``DYS389I``, ``YGATAH4``, ``DYS385``) and, for one copy of
    a multi-copy locus written in its own column (``DYS385a``, ``DYF387S1 b``),
    the copy's index; ``None`` when ``name`` is not a Y-STR locus. The Yindel
    and Amelogenin are not Y-STR loci (they are sex tests).

    >>> y_locus("DYS385 a/b"), y_locus("DYS385b"), y_locus("Y GATA H4"), y_locus("DYS389 I"), y_locus("Yindel")
    (('DYS385', None), ('DYS385', 1), ('YGATAH4', None), ('DYS389I', None), None)
    """
    key = re.sub(r"[\s_\-./,]+", "", name).upper()
    if key in ("GATAH4", "YGATAH4"):
        return ("YGATAH4", None)
    if not is_y_str_locus(key):
        return None
    m = _COPY.match(key)
    if m:
        base, suffix = m.group(1), m.group(2)
        return (base, None) if suffix == "AB" else (base, "ABCD".index(suffix))
    return (key, None)


def y_copies(locus: str) -> int:
    """The number of copies of a Y locus: 2 for DYS385 and DYF387S1 (the
    bundled rates name their copies), 1 otherwise."""
    try:
        return default_y_marker(locus).copies
    except OpenDVIError:
        return 1


def is_yindel(name: str) -> bool:
    return canonical_marker_name(name) == "YINDEL"


def check_y_call(token: str, *, path: str, line: int | None, field: str) -> str:
    """One Y-STR call as read (a repeat number, a microvariant such as 13.2,
    ``null``, or an off-ladder call kept as read); raises one line otherwise."""
    if is_off_ladder(token):
        return token
    try:
        return parse_y_value(token, copies=1, who="call", locus=field)[0]
    except OpenDVIError as exc:
        raise FileFormatError(str(exc).split(": ", 1)[-1], path=path, line=line, field=field) from None


def check_yindel_call(token: str, *, path: str, line: int | None, field: str) -> str:
    t = token.strip()
    if t in _YINDEL_ALLELES or is_off_ladder(t.upper()):
        return t.upper()
    raise FileFormatError(f"Yindel call {token!r} is not 1 or 2", path=path, line=line, field=field)


def amel_letters(cells: Iterable[str]) -> tuple[str, ...]:
    """Amelogenin calls in any spelling (``X, Y``, ``XY``, ``X/X``) as letters;
    ``ValueError`` for anything that is not X or Y."""
    out: list[str] = []
    for c in cells:
        t = str(c).strip().upper().replace(" ", "")
        for part in re.split(r"[,/;]", t):
            if not part:
                continue
            if not set(part) <= {"X", "Y"}:
                raise ValueError(f"amelogenin allele {c!r} is not X or Y")
            out.extend(part)
    return tuple(out)


def split_y_cell(text: str) -> list[str]:
    """The calls of one cell: ``11,14``, ``11/14``, ``11 14``, ``11-14``."""
    return [t for t in re.split(r"[/,;\s]+|(?<=\d)-(?=\d)", text.strip()) if t]


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
    #: Y-STR calls by locus (opendvi spelling; a multi-copy locus's copies
    #: together), in file order, off-ladder calls included: the Y haplotype.
    y_calls: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Sex tests as read: ``AMEL`` (letters X/Y) and ``Yindel`` (1/2).
    sex_calls: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: A sex written in the file (a profiles table's sex column).
    recorded_sex: str | None = None
    #: The file the record came from, when it differs from its set's (merged sets).
    source: str | None = None

    @property
    def mixture_markers(self) -> list[str]:
        return [m for m, a in self.genotypes.items() if len(set(a)) > 2] + self.y_mixture_loci

    @property
    def y_mixture_loci(self) -> list[str]:
        """Y loci with more distinct calls than the locus has copies (a mixture
        of males, or a duplication: either way not one haplotype)."""
        return [m for m, a in self.y_calls.items() if len(set(a)) > y_copies(m)]

    def set_amelogenin(self, calls: Iterable[str]) -> None:
        """Amelogenin as called (``ValueError`` for a call that is not X or Y)."""
        self.sex_calls[AMEL] = amel_letters(calls)

    def set_yindel(self, calls: Sequence[str], *, path: str, line: int | None, field: str | Sequence[str]) -> None:
        """The Yindel as called (1 or 2; ``field``: one, or one per call)."""
        fields = [field] * len(calls) if isinstance(field, str) else field
        self.sex_calls[YINDEL] = tuple(
            check_yindel_call(t, path=path, line=line, field=f) for t, f in zip(calls, fields, strict=True)
        )

    def add_y_calls(
        self, locus: str, calls: Sequence[str], *, path: str, line: int | None, field: str | Sequence[str]
    ) -> None:
        """Calls of a Y-STR locus, after those already read (``field``: one, or one per call)."""
        fields = [field] * len(calls) if isinstance(field, str) else field
        checked = tuple(check_y_call(t, path=path, line=line, field=f) for t, f in zip(calls, fields, strict=True))
        self.y_calls[locus] = self.y_calls.get(locus, ()) + checked

    def resolve_sex(self, notes: list[str] | None, source: str = "") -> None:
        """Set :attr:`sex` from the recorded sex, Amelogenin and the Y markers
        by the one rule (:func:`opendvi.core.rules.resolve_sex_with_y`)."""
        y_seen = [m for m, a in self.sex_calls.items() if m == YINDEL and any(not is_off_ladder(x) for x in a)]
        y_seen += [m for m, a in self.y_calls.items() if any(not is_off_ladder(x) for x in a)]
        amel = self.sex_calls.get(AMEL) or None
        sex, note = resolve_sex_with_y(self.recorded_sex, amel, y_seen, who=f"sample {self.id}")
        self.sex = sex
        if note and notes is not None:
            notes.append(f"{source}: {self.where()}: {note}" if source else note)

    def y_haplotype(self, notes: list[str] | None = None, source: str = "") -> dict[str, tuple[str, ...]]:
        """The Y haplotype: each locus's copies sorted (one call at a two-copy
        locus is both copies, ``11`` -> ``11,11``, as GeneMapper and CODIS list
        distinct alleles). A locus with an off-ladder call is left untyped,
        with a note."""
        out: dict[str, tuple[str, ...]] = {}
        for m, calls in self.y_calls.items():
            if self.untyped_off_ladder(m, calls, notes, source, y=True):
                continue
            uniq = list(dict.fromkeys(calls))
            copies = y_copies(m)
            if not uniq:
                continue
            if len(uniq) < copies:
                uniq += [uniq[-1]] * (copies - len(uniq))
            out[m] = parse_y_value(",".join(uniq), copies=copies, who=f"sample {self.id}", locus=m)
        return out

    def untyped_off_ladder(
        self, m: str, calls: tuple[str, ...], notes: list[str] | None, source: str, *, y: bool
    ) -> bool:
        """True when ``calls`` hold an off-ladder call: the marker (or Y locus)
        is then left untyped, with a note."""
        if not any(is_off_ladder(x) for x in calls):
            return False
        if notes is not None:
            what, sep, unit = ("Y locus", ",", "locus") if y else ("marker", "/", "marker")
            notes.append(
                f"{source}: {self.where()}: sample {self.id}, {what} {m}: off-ladder call in "
                f"{sep.join(calls)}; {unit} left untyped"
            )
        return True

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
        return list(dict.fromkeys(m for r in self.records for m in r.genotypes))

    @property
    def y_loci(self) -> list[str]:
        return list(dict.fromkeys(m for r in self.records for m in r.y_calls))

    def samples(self, *, skip_mixtures: bool = False, notes: list[str] | None = None) -> list[Sample]:
        """Case samples: one per single-source profile (see :meth:`samples_and_haplotypes`)."""
        return self.samples_and_haplotypes(skip_mixtures=skip_mixtures, notes=notes)[0]

    def samples_and_haplotypes(
        self, *, skip_mixtures: bool = False, notes: list[str] | None = None
    ) -> tuple[list[Sample], dict[str, YHaplotype]]:
        """Case samples: one per single-source profile, and the Y haplotype of
        each that has one (by sample id).

        A mixture (more than two alleles at a marker) raises
        :class:`FileFormatError` naming the sample and its place, unless
        ``skip_mixtures`` (then it is left out and a note says so). An
        off-ladder call leaves that marker untyped for that sample, with a
        note (the allele is reported, not guessed).
        """
        out: list[Sample] = []
        haps: dict[str, YHaplotype] = {}
        for r in self.records:
            src = r.source or self.source
            if r.is_mixture:
                mm = r.mixture_markers
                what = (
                    f"{len(set(r.genotypes[mm[0]]))} alleles at {mm[0]}"
                    if mm and mm[0] in r.genotypes
                    else f"{len(set(r.y_calls[mm[0]]))} calls at the Y locus {mm[0]} of {y_copies(mm[0])} "
                    "cop" + ("y" if y_copies(mm[0]) == 1 else "ies") + " (a mixture of males or a duplication)"
                    if mm
                    else f"specimen category {r.category!r}"
                )
                msg = f"sample {r.id} is a mixture ({what}); a mixture is not a single-source profile"
                if not skip_mixtures:
                    raise FileFormatError(msg, path=src or None, line=r.line, field=r.element)
                if notes is not None:
                    notes.append(f"{src}: {r.where()}: {msg}: left out")
                continue
            gts: dict[str, Genotype] = {}
            for m, alleles in r.genotypes.items():
                if r.untyped_off_ladder(m, alleles, notes, src, y=False):
                    continue
                if not alleles:
                    continue
                uniq = tuple(dict.fromkeys(alleles))
                # laboratory files list distinct alleles: one call is a homozygote
                gts[m] = (uniq[0], uniq[0]) if len(uniq) == 1 else (uniq[0], uniq[1])
            out.append(Sample(id=r.id, sex=r.sex, genotypes=gts))
            y = r.y_haplotype(notes, src)
            if y:
                haps[r.id] = y
        return out, haps


def merge_profile_sets(sets: Iterable[ProfileSet], *, notes: list[str] | None = None) -> ProfileSet:
    """One set from several files, the records of one sample merged: an
    autosomal kit's export and a Y kit's export (GlobalFiler and Yfiler Plus)
    of the same samples make one profile each. A marker, Y locus or sex test
    typed in two files must agree; the sex is resolved again from everything
    (:meth:`ProfileRecord.resolve_sex`)."""
    out = ProfileSet(format="profiles")
    by_id: dict[str, ProfileRecord] = {}
    sources: list[str] = []
    for ps in sets:
        sources.append(ps.source)
        for r in ps.records:
            src = r.source or ps.source
            have = by_id.get(r.id)
            if have is None:
                rec = ProfileRecord(
                    id=r.id, sex=r.sex, genotypes=dict(r.genotypes), line=r.line, element=r.element,
                    heights=dict(r.heights), category=r.category, y_calls=dict(r.y_calls),
                    sex_calls=dict(r.sex_calls), recorded_sex=r.recorded_sex, source=src,
                )
                by_id[r.id] = rec
                out.records.append(rec)
                continue
            where = f"{have.source}: {have.where()}"
            for mine, theirs, what in (
                (have.genotypes, r.genotypes, "marker"),
                (have.y_calls, r.y_calls, "Y locus"),
                (have.sex_calls, r.sex_calls, "sex test"),
            ):
                for m, calls in theirs.items():
                    if m in mine and sorted(set(mine[m])) != sorted(set(calls)):
                        raise FileFormatError(
                            f"sample {r.id}: {what} {m} is {'/'.join(calls)} here but {'/'.join(mine[m])} in {where}",
                            path=src or None, line=r.line, field=r.element or m,
                        )
                    mine[m] = calls
            if r.recorded_sex and have.recorded_sex and r.recorded_sex != have.recorded_sex:
                raise FileFormatError(
                    f"sample {r.id}: sex {r.recorded_sex} here but {have.recorded_sex} in {where}",
                    path=src or None, line=r.line, field="sex",
                )
            have.recorded_sex = have.recorded_sex or r.recorded_sex
            have.category = have.category or r.category
            have.heights.update(r.heights)
            have.resolve_sex(notes, have.source or "")
    out.source = ",".join(dict.fromkeys(sources))
    return out


def records_from_samples(samples: Iterable[Sample]) -> list[ProfileRecord]:
    return [
        ProfileRecord(id=s.id, sex=s.sex, recorded_sex=s.sex, genotypes={m: tuple(g) for m, g in s.genotypes.items()})
        for s in samples
    ]
