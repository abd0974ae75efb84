"""The checks of a ``dvi-case/1`` case that every problem passes through.

A problem is a pair ``(path, message)``: the path names the field as the
case's JSON would (``families[0] (F1).members[2] (M1).father``; a list item
carries its id or marker name in parentheses). The rules here are written
once and used twice: by the pydantic models of the document
(:mod:`opendvi.io.case_schema`), and by :func:`validate_case` on a
:class:`~opendvi.core.case.Case` built in memory (by a reader of another
format). Every problem is collected; :class:`CaseDocumentError` reports them
together.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage import CaseLineage
from opendvi.core.markers import Marker
from opendvi.core.profiles import Genotype, check_genotype, make_genotype

#: A problem: where (a field path, "" for the whole document) and what.
Problem = tuple[str, str]
#: A problem inside one object: the path below it (keys and indices) and what.
SubProblem = tuple[tuple[str | int, ...], str]

#: How many problems the message of a :class:`CaseDocumentError` shows.
SHOWN_PROBLEMS = 10

FORMAT = "dvi-case/1"


class CaseDocumentError(FileFormatError):
    """A case has one or more problems, all listed in ``problems``.

    ``field`` is the path of the first; the message (one line) gives the first
    with its path, then the others (the first :data:`SHOWN_PROBLEMS`) and how
    many more there are. Fix them all and read the file again.
    """

    def __init__(self, problems: Sequence[Problem], *, path: str | None = None) -> None:
        if not problems:
            raise ValueError("CaseDocumentError needs at least one problem")
        self.problems: list[Problem] = list(problems)
        field, first = self.problems[0]
        super().__init__(_summary(first, self.problems[1:]), path=path, field=field or None)

    def report(self, *, limit: int = 20) -> str:
        """For a person at a terminal: the message, or with several problems
        a first line that counts them and one line each (the first ``limit``)."""
        if len(self.problems) == 1:
            return str(self)
        shown = [f"  {where}: {msg}" if where else f"  {msg}" for where, msg in self.problems[:limit]]
        more = [f"  ... and {len(self.problems) - limit} more"] if len(self.problems) > limit else []
        return "\n".join([f"{self.path or '<input>'}: {len(self.problems)} problems:", *shown, *more])

    def lines(self) -> list[str]:
        """Each problem on its own line, as ``path: field: message``."""
        return [": ".join(x for x in (self.path or "<input>", where, msg) if x) for where, msg in self.problems]


def _summary(first: str, others: Sequence[Problem]) -> str:
    if not others:
        return first
    shown = [f"{where}: {msg}" if where else msg for where, msg in others[: SHOWN_PROBLEMS - 1]]
    rest = len(others) - len(shown)
    text = f"{first}; and {len(others)} more problem{'s' if len(others) > 1 else ''}: " + "; ".join(shown)
    return text + (f"; ... and {rest} more" if rest else "")


def join_path(base: str, sub: Sequence[str | int]) -> str:
    """``base`` extended by keys (``.key``) and indices (``[k]``)."""
    out = base
    for key in sub:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def item_path(where: str, label: object) -> str:
    """A list item's path with its id or name (``remains[0] (V1)``)."""
    return f"{where} ({label})" if isinstance(label, str) and label.strip() else where


# ---------------------------------------------------------------------------
# the rules, one function each
# ---------------------------------------------------------------------------


def unit_interval_problem(value: object) -> str | None:
    """theta and dropout: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < 1.0):
        return f"must be a number in [0, 1), found {value!r}"
    return None


def sex_problem(value: object, *, allow_none: bool) -> str | None:
    """Remains: 'M', 'F' or null; family members: 'M' or 'F'."""
    if value in ("M", "F") or (value is None and allow_none):
        return None
    return f"must be 'M' or 'F'{' or null' if allow_none else ''}, found {value!r}"


def id_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"must be a non-empty string, found {value!r}"
    return None


class Ids:
    """The ids of a case: remains, families and members share one namespace."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def claim(self, value: str) -> str | None:
        if value in self.seen:
            return f"id {value!r} is used twice in the case"
        self.seen.add(value)
        return None


MISSING_TYPED = "a missing person must not be typed"
#: The lineage haplotypes' rules (``lineage.md``), also read by :mod:`opendvi.io.lineage_json`.
Y_NEEDS_SYSTEM = "a Y haplotype needs 'lineage.Y' (loci, rates, database) in the case"
MT_NEEDS_SYSTEM = "an mtDNA haplotype needs 'lineage.mt' (rate, database) in the case"
FEMALE_NO_Y = "a female carries no Y chromosome"


def unknown_y_locus(locus: object) -> str:
    return f"unknown Y locus {locus!r} (not in lineage.Y.markers)"


def parse_genotypes(
    raw: Mapping[Any, Any], known: Collection[str] | None
) -> tuple[dict[str, Genotype], list[SubProblem]]:
    """Genotypes by marker name (1 or 2 allele strings each; untyped left
    out), and the problems: a marker not in ``known`` (None: not checked), a
    genotype that is not 1 or 2 alleles."""
    out: dict[str, Genotype] = {}
    problems: list[SubProblem] = []
    for name, alleles in raw.items():
        if known is not None and name not in known:
            problems.append(((), f"unknown marker {name!r} (not in 'markers')"))
            continue
        try:
            gt = make_genotype(alleles, who="-", marker=str(name))
        except OpenDVIError as exc:
            problems.append(((str(name),), str(exc).split(": ", 1)[-1]))
            continue
        if gt is not None:
            out[str(name)] = gt
    return out, problems


def fit_problems(
    genotypes: Mapping[str, Genotype], markers: Mapping[str, Marker | None], sex: str | None
) -> list[SubProblem]:
    """Genotypes against their markers and the person's sex (an X marker).
    An allele outside the frequency table is allowed (it is added with the
    minimum frequency at computation time), so such a genotype is left alone."""
    problems: list[SubProblem] = []
    for name, gt in genotypes.items():
        marker = markers.get(name)
        if marker is None or any(a not in marker.index for a in gt):
            continue
        try:
            check_genotype(gt, marker, sex=sex, who="-")
        except OpenDVIError as exc:
            problems.append(((name,), str(exc).split(": ", 1)[-1]))
    return problems


def pairing_problems(
    pairings: Mapping[Any, Any], remains: Collection[str], missing: Collection[str]
) -> list[SubProblem]:
    """``pairings``: a known remains id to a list of missing person ids."""
    problems: list[SubProblem] = []
    for rid, lst in pairings.items():
        if rid not in remains:
            problems.append(((), f"unknown remains {rid!r}"))
        elif not isinstance(lst, list | tuple) or any(not isinstance(x, str) or x not in missing for x in lst):
            problems.append(((), f"{rid}: must be a list of missing person ids"))
    return problems


def markers_problem(n_markers: int, *, has_lineage: bool) -> str | None:
    if n_markers == 0 and not has_lineage:
        return "must be a non-empty list (or empty beside a 'lineage' part)"
    return None


def duplicate_marker_problem(name: str, seen: Collection[str]) -> str | None:
    return f"marker {name} is listed twice" if name in seen else None


# ---------------------------------------------------------------------------
# a Case built in memory
# ---------------------------------------------------------------------------


def validate_case(case: Case, *, path: str | None = None) -> Case:
    """Check a case as its ``dvi-case/1`` file would be checked (unique ids,
    sexes, genotypes against markers and sexes, missing persons untyped,
    pairings, lineage haplotypes); raise :class:`CaseDocumentError` with
    every problem, or return the case as its file would hold it
    (:func:`as_written`)."""
    problems = case_problems(case)
    if problems:
        raise CaseDocumentError(problems, path=path)
    return as_written(case)


def as_written(case: Case) -> Case:
    """``case`` without what its ``dvi-case/1`` file cannot hold: untyped
    markers (an empty genotype), members without genotypes or with dropout
    0 in a family's maps, genotypes, missing persons and haplotypes of
    people who are not in the case. ``case`` itself when there is none."""
    remains = tuple(replace(r, genotypes=_typed(r.genotypes)) for r in case.remains)
    families = tuple(_family_as_written(f) for f in case.families)
    lineage = case.lineage
    if lineage is not None:
        people = {r.id for r in case.remains} | {pid for f in case.families for pid in f.pedigree.ids}
        lineage = replace(lineage, haplotypes={k: v for k, v in lineage.haplotypes.items() if k in people})
    new = replace(case, remains=remains, families=families, lineage=lineage)
    return case if new == case else new


def _typed(genotypes: Mapping[str, Genotype]) -> Mapping[str, Genotype]:
    return genotypes if all(genotypes.values()) else {m: g for m, g in genotypes.items() if g}


def _family_as_written(f: Family) -> Family:
    genotypes = {pid: _typed(f.genotypes[pid]) for pid in f.pedigree.ids if _typed(f.genotypes.get(pid, {}))}
    dropout = {pid: f.dropout[pid] for pid in f.pedigree.ids if f.dropout.get(pid)}
    missing = tuple(mp for mp in f.pedigree.ids if mp in f.missing)
    return replace(f, genotypes=genotypes, dropout=dropout, missing=missing)


def case_problems(case: Case) -> list[Problem]:
    """Every problem of ``case`` (empty when it is valid)."""
    out: list[Problem] = []
    theta = unit_interval_problem(case.theta)
    if theta:
        out.append(("theta", theta))
    out.extend(_marker_problems(case))
    by_name: dict[str, Marker | None] = {m.name: m for m in case.markers}
    ids = Ids()
    people: dict[str, tuple[str, str | None, bool]] = {}  # id -> (path, sex, missing)
    for k, r in enumerate(case.remains):
        where = item_path(f"remains[{k}]", r.id)
        out.extend(_sample_problems(r, f"remains[{k}]", ids, by_name))
        people[r.id] = (where, r.sex, False)
    for k, fam in enumerate(case.families):
        out.extend(_family_problems(fam, k, ids, by_name, people))
    if case.pairings is not None:
        missing = {mp for _fam, mp in case.missing_persons}
        subs = pairing_problems(case.pairings, {r.id for r in case.remains}, missing)
        out.extend(("pairings", msg) for _sub, msg in subs)
    if case.lineage is not None:
        out.extend(_lineage_problems(case.lineage, people))
    return out


def _marker_problems(case: Case) -> Iterator[Problem]:
    empty = markers_problem(len(case.markers), has_lineage=case.lineage is not None)
    if empty:
        yield "markers", empty
    seen: set[str] = set()
    for k, m in enumerate(case.markers):
        dup = duplicate_marker_problem(m.name, seen)
        if dup:
            yield f"{item_path(f'markers[{k}]', m.name)}.name", dup
        seen.add(m.name)


def _person_problems(
    where: str, pid: str, sex: str | None, genotypes: Mapping[str, Genotype], dropout: float,
    ids: Ids, markers: Mapping[str, Marker | None], *, allow_no_sex: bool,
) -> Iterator[Problem]:
    bad_id = id_problem(pid)
    claimed = bad_id or ids.claim(pid)
    if claimed:
        yield f"{where}.id", claimed
    here = item_path(where, pid)
    bad_sex = sex_problem(sex, allow_none=allow_no_sex)
    if bad_sex:
        yield f"{here}.sex", bad_sex
    gts, parsed = parse_genotypes(genotypes, markers)
    fits = fit_problems(gts, markers, sex)
    for sub, msg in [*parsed, *fits]:
        yield join_path(f"{here}.genotypes", sub), msg
    bad_dropout = unit_interval_problem(dropout)
    if bad_dropout:
        yield f"{here}.dropout", bad_dropout


def _sample_problems(r: Sample, where: str, ids: Ids, markers: Mapping[str, Marker | None]) -> Iterator[Problem]:
    yield from _person_problems(where, r.id, r.sex, r.genotypes, r.dropout, ids, markers, allow_no_sex=True)


def _family_problems(
    fam: Family, k: int, ids: Ids, markers: Mapping[str, Marker | None],
    people: dict[str, tuple[str, str | None, bool]],
) -> Iterator[Problem]:
    where = f"families[{k}]"
    bad_id = id_problem(fam.id) or ids.claim(fam.id)
    if bad_id:
        yield f"{where}.id", bad_id
    here = item_path(where, fam.id)
    for j, ind in enumerate(fam.pedigree.individuals):
        mw = f"{here}.members[{j}]"
        gts = fam.genotypes.get(ind.id, {})
        drop = fam.dropout.get(ind.id, 0.0)
        yield from _person_problems(mw, ind.id, ind.sex, gts, drop, ids, markers, allow_no_sex=False)
        is_missing = ind.id in fam.missing
        if is_missing and _typed(gts):
            yield f"{item_path(mw, ind.id)}.genotypes", MISSING_TYPED
        people[ind.id] = (item_path(mw, ind.id), ind.sex, is_missing)


def _lineage_problems(lin: CaseLineage, people: Mapping[str, tuple[str, str | None, bool]]) -> Iterator[Problem]:
    for pid, haps in lin.haplotypes.items():
        if pid not in people:
            continue
        where, sex, missing = people[pid]
        where += ".haplotypes"
        if missing:
            yield where, MISSING_TYPED
        if haps.y and lin.y is None:
            yield f"{where}.Y", Y_NEEDS_SYSTEM
        elif haps.y and sex == "F":
            yield f"{where}.Y", FEMALE_NO_Y
        elif haps.y and lin.y is not None:
            for locus in haps.y:
                if locus not in lin.y.by_name:
                    yield f"{where}.Y", unknown_y_locus(locus)
        if haps.mt is not None and lin.mt is None:
            yield f"{where}.mt", MT_NEEDS_SYSTEM
