"""Pydantic models of a ``dvi-case/1`` document (``shared/design/case-json.md``).

:func:`parse_case_document` validates a parsed JSON object and collects
every problem at once, each with its path (``families[3] (F4).members[2]
(M1).father: must be a member id or null, found 3``), into one
:class:`~opendvi.io.case_checks.CaseDocumentError`. The structure (types,
ranges, required fields) is checked by the models; the meaning (ids unique
in the case, genotypes at known markers that fit the marker and the sex, the
pedigree, pairings) by the rules of :mod:`opendvi.io.case_checks` and the
core's constructors (:class:`~opendvi.core.markers.Marker`,
:class:`~opendvi.core.pedigree.Pedigree`), called from the models'
validators. The checks that need another part of the document (a genotype's
marker, an id used twice, a pairing's remains) read what the parts validated
before them registered in the validation context (:class:`_Seen`): the fields
are validated in document order, markers first.

The lineage additions (``lineage.md``) are read by
:mod:`opendvi.io.lineage_json` once the rest is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from opendvi.core.errors import OpenDVIError, PedigreeError
from opendvi.core.markers import CHROMOSOMES, Marker
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.io.case_checks import (
    FORMAT,
    MISSING_TYPED,
    CaseDocumentError,
    Ids,
    Problem,
    SubProblem,
    duplicate_marker_problem,
    fit_problems,
    id_problem,
    item_path,
    join_path,
    markers_problem,
    pairing_problems,
    parse_genotypes,
    sex_problem,
    unit_interval_problem,
)

_KIND = "dvi_case"


def _fail(problems: Sequence[SubProblem] | str) -> PydanticCustomError:
    """One pydantic error carrying our problems (each with its path below
    the field or object that raised it)."""
    items = [((), problems)] if isinstance(problems, str) else list(problems)
    return PydanticCustomError(_KIND, "{summary}", {"summary": items[0][1], "problems": items})


def _check(problem: str | None) -> None:
    if problem:
        raise _fail(problem)


def _unit_interval(v: Any) -> Any:
    v = 0.0 if v is None else v
    _check(unit_interval_problem(v))
    return v


#: theta, dropout: a number in [0, 1) (null: 0).
UnitInterval = Annotated[float, BeforeValidator(_unit_interval)]


@dataclass
class _Seen:
    """What the parts validated so far registered, for the checks across parts."""

    has_lineage: bool = False
    markers_listed: bool = False  # False: 'markers' is not a list, genotypes' markers are not checked
    markers: dict[str, Marker | None] = field(default_factory=dict)  # None: an invalid marker
    ids: Ids = field(default_factory=Ids)
    remains: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)


def _seen(info: ValidationInfo) -> _Seen:
    ctx = info.context
    if isinstance(ctx, dict) and isinstance(ctx.get("seen"), _Seen):
        return ctx["seen"]
    return _Seen()  # validated without parse_case_document: no check across parts


# ---------------------------------------------------------------------------
# markers
# ---------------------------------------------------------------------------


class MutationPair(BaseModel):
    """A marker's mutation models: one for a mother's alleles, one for a father's
    (``mutation-models.md``); null for no mutation."""

    female: dict[str, Any] | None = None
    male: dict[str, Any] | None = None


class MarkerDoc(BaseModel):
    """``markers[]``: one marker with its frequencies and mutation models."""

    name: str
    alleles: list[str]
    frequencies: list[float]
    chromosome: Literal["autosomal", "X"] = "autosomal"
    mutation: MutationPair | None = None
    database_size: int | None = None
    _marker: Marker | None = PrivateAttr(default=None)

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, str) or not v.strip():
            raise _fail(f"marker name must be a non-empty string, found {v!r}")
        seen = _seen(info)
        _check(duplicate_marker_problem(v, seen.markers))
        seen.markers[v] = None
        return v

    @field_validator("alleles", mode="before")
    @classmethod
    def _alleles(cls, v: Any) -> Any:
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise _fail("must be a list of allele strings")
        return v

    @field_validator("frequencies", mode="before")
    @classmethod
    def _frequencies(cls, v: Any) -> Any:
        if not isinstance(v, list) or not all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in v):
            raise _fail("must be a list of numbers")
        return v

    @field_validator("chromosome", mode="before")
    @classmethod
    def _chromosome(cls, v: Any) -> Any:
        v = v or "autosomal"
        if v not in CHROMOSOMES:
            raise _fail(f"must be 'autosomal' or 'X', found {v!r}")
        return v

    @field_validator("mutation", mode="before")
    @classmethod
    def _mutation(cls, v: Any) -> Any:
        if v is not None and (not isinstance(v, dict) or set(v) - {"female", "male"}):
            raise _fail("must be null or an object with 'female' and 'male'")
        return v

    @field_validator("database_size", mode="before")
    @classmethod
    def _database_size(cls, v: Any) -> Any:
        try:
            return None if v is None else int(v)
        except (TypeError, ValueError):
            raise _fail(f"must be a whole number, found {v!r}") from None

    @model_validator(mode="after")
    def _build(self, info: ValidationInfo) -> MarkerDoc:
        mut = self.mutation
        try:
            self._marker = Marker(
                name=self.name,
                alleles=tuple(self.alleles),
                frequencies=tuple(self.frequencies),
                chromosome=self.chromosome,
                female=MutationModel.from_dict(mut.female, marker=self.name) if mut else None,
                male=MutationModel.from_dict(mut.male, marker=self.name) if mut else None,
                database_size=self.database_size,
            )
        except OpenDVIError as exc:
            raise _fail(str(exc)) from None
        _seen(info).markers[self.name] = self._marker
        return self

    @property
    def marker(self) -> Marker:
        assert self._marker is not None  # set by the validator
        return self._marker


def _markers_list(v: Any, info: ValidationInfo) -> Any:
    seen = _seen(info)
    if v is None and seen.has_lineage:
        v = []  # lineage evidence alone (a Yfiler-only case): no autosomal marker needed
    seen.markers_listed = isinstance(v, list)
    n = len(v) if isinstance(v, list) else 0
    _check(markers_problem(n, has_lineage=seen.has_lineage and isinstance(v, list)))
    return v


#: ``markers``: a non-empty list (or empty beside a ``lineage`` part).
MarkerList = Annotated[list[MarkerDoc], BeforeValidator(_markers_list)]


# ---------------------------------------------------------------------------
# people
# ---------------------------------------------------------------------------


def _claim_id(v: Any, info: ValidationInfo) -> Any:
    _check(id_problem(v) or _seen(info).ids.claim(v))
    return v


#: An id of a remains, a family or a member: non-empty, unique in the case.
CaseId = Annotated[str, BeforeValidator(_claim_id)]


class _PersonDoc(BaseModel):
    id: CaseId
    genotypes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    dropout: UnitInterval = 0.0
    #: Y and mtDNA haplotypes (``lineage.md``), read by :mod:`opendvi.io.lineage_json`.
    haplotypes: Any = None

    @field_validator("genotypes", mode="before")
    @classmethod
    def _genotypes(cls, v: Any, info: ValidationInfo) -> Any:
        v = v or {}
        if not isinstance(v, dict):
            raise _fail("must be an object mapping marker name to alleles")
        seen = _seen(info)
        out, problems = parse_genotypes(v, seen.markers if seen.markers_listed else None)
        if problems:
            raise _fail(problems)
        return out

    def _fit(self, info: ValidationInfo, sex: str | None) -> None:
        problems = fit_problems(self.genotypes, _seen(info).markers, sex)
        if problems:
            raise _fail([(("genotypes", *sub), msg) for sub, msg in problems])


class RemainsDoc(_PersonDoc):
    """``remains[]``: one post-mortem profile."""

    sex: Literal["M", "F"] | None = None

    @field_validator("id", mode="after")
    @classmethod
    def _remains_id(cls, v: str, info: ValidationInfo) -> str:
        _seen(info).remains.add(v)
        return v

    @field_validator("sex", mode="before")
    @classmethod
    def _sex(cls, v: Any) -> Any:
        _check(sex_problem(v, allow_none=True))
        return v

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> RemainsDoc:
        self._fit(info, self.sex)
        return self


def _parent(v: Any) -> Any:
    if v is not None and not isinstance(v, str):
        raise _fail(f"must be a member id or null, found {v!r}")
    return v


#: A member's father or mother: a member id of the same family, or null (a founder).
ParentId = Annotated[str | None, BeforeValidator(_parent)]


class MemberDoc(_PersonDoc):
    """``families[].members[]``: a person of a pedigree (a typed reference, a
    missing person, or neither)."""

    father: ParentId = None
    mother: ParentId = None
    sex: Literal["M", "F"]
    missing: bool = False

    @field_validator("sex", mode="before")
    @classmethod
    def _sex(cls, v: Any) -> Any:
        _check(sex_problem(v, allow_none=False))
        return v

    @field_validator("missing", mode="before")
    @classmethod
    def _missing(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, bool):
            raise _fail(f"must be true or false, found {v!r}")
        if v and isinstance(info.data.get("id"), str):
            _seen(info).missing.add(info.data["id"])
        return v

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> MemberDoc:
        if self.missing and self.genotypes:
            raise _fail([(("genotypes",), MISSING_TYPED)])
        self._fit(info, self.sex)
        return self

    @property
    def individual(self) -> Individual:
        return Individual(self.id, self.father, self.mother, self.sex)


class FamilyDoc(BaseModel):
    """``families[]``: a pedigree with its typed references and missing persons."""

    id: CaseId
    members: list[MemberDoc]
    _pedigree: Pedigree | None = PrivateAttr(default=None)

    @field_validator("members", mode="before")
    @classmethod
    def _members(cls, v: Any) -> Any:
        if not isinstance(v, list) or not v:
            raise _fail("must be a non-empty list")
        return v

    @model_validator(mode="after")
    def _build(self) -> FamilyDoc:
        """The parents' ids are checked here, each at its member's field; the
        rest of the pedigree (single parents, parents' sexes, cycles) by the
        :class:`Pedigree` constructor, which collects its problems."""
        ids = {m.id for m in self.members}
        problems: list[SubProblem] = []
        people: list[Individual] = []
        for j, m in enumerate(self.members):
            unknown = [
                (("members", j, role), f"{m.id}'s {role} {pid!r} is not in the pedigree")
                for role, pid in (("father", m.father), ("mother", m.mother))
                if pid is not None and pid not in ids
            ]
            problems.extend(unknown)
            people.append(Individual(m.id, None, None, m.sex) if unknown else m.individual)
        try:
            pedigree = Pedigree(people)
        except PedigreeError as exc:
            problems.extend((("members",), p) for p in exc.problems)
        if problems:
            raise _fail(problems)
        self._pedigree = pedigree
        return self

    @property
    def pedigree(self) -> Pedigree:
        assert self._pedigree is not None  # set by the validator
        return self._pedigree


# ---------------------------------------------------------------------------
# the document
# ---------------------------------------------------------------------------


class CaseDocument(BaseModel):
    """A whole ``dvi-case/1`` document. Unknown fields are ignored."""

    model_config = ConfigDict(json_schema_extra={"required": ["format"]})

    format: Literal["dvi-case/1"] = Field(default=None, validate_default=True)
    name: Any = None
    theta: UnitInterval = 0.0
    #: The lineage additions (``lineage.md``), read by :mod:`opendvi.io.lineage_json`.
    lineage: Any = None
    markers: MarkerList = Field(default=None, validate_default=True)
    remains: list[RemainsDoc] = Field(default_factory=list)
    families: list[FamilyDoc] = Field(default_factory=list)
    pairings: dict[str, list[str]] | None = None

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> Any:
        if v != FORMAT:
            raise _fail(f"expected {FORMAT!r}, found {v!r}")
        return v

    @field_validator("remains", "families", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        v = v or []
        if not isinstance(v, list):
            raise _fail("must be a list")
        return v

    @field_validator("pairings", mode="before")
    @classmethod
    def _pairings(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None:
            return v
        if not isinstance(v, dict):
            raise _fail("must be an object mapping a remains id to a list of missing person ids")
        seen = _seen(info)
        problems = pairing_problems(v, seen.remains, seen.missing)
        if problems:
            raise _fail(problems)
        return v


# ---------------------------------------------------------------------------
# validation with every problem
# ---------------------------------------------------------------------------


def parse_case_document(data: Any, *, path: str | None = None) -> CaseDocument:
    """Validate a parsed ``dvi-case/1`` object; raise one
    :class:`CaseDocumentError` with every problem."""
    if not isinstance(data, dict):
        raise CaseDocumentError([("", "the top level must be a JSON object")], path=path)
    seen = _Seen(has_lineage=data.get("lineage") is not None)
    return _validate(lambda: CaseDocument.model_validate(data, context={"seen": seen}), data, path)


class _MarkersDoc(BaseModel):
    markers: MarkerList


def parse_markers(raw: Any, *, path: str | None = None) -> tuple[Marker, ...]:
    """The markers of a ``markers`` list as a case file holds it (a stored
    frequency database, a screening store's header); problems as for a case."""
    data = {"markers": raw}
    doc = _validate(lambda: _MarkersDoc.model_validate(data, context={"seen": _Seen()}), data, path)
    return tuple(m.marker for m in doc.markers)


def _validate(run: Callable[[], Any], data: Any, path: str | None) -> Any:
    try:
        return run()
    except ValidationError as exc:
        problems = [p for e in exc.errors() for p in _problems(e, data)]
        raise CaseDocumentError(problems, path=path) from None


_MESSAGES = {
    "missing": "missing (required)",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
}


def _problems(e: Any, data: Any) -> list[Problem]:
    loc = tuple(e["loc"])
    if e["type"] == _KIND:
        subs: list[SubProblem] = e["ctx"]["problems"]
        return [(render_path((*loc, *sub), data), msg) for sub, msg in subs]
    return [(render_path(loc, data), _MESSAGES.get(e["type"], e["msg"]))]


#: The key that names an item of each list in a path.
_LABELS = {"markers": "name"}


def render_path(loc: Sequence[str | int], data: Any) -> str:
    """A pydantic location as a field path, each list item with its id or
    name from ``data`` (``families[0] (F1).members[2] (M1).father``); not in
    a problem about that id itself (``remains[1].id``)."""
    out = ""
    node, parent = data, ""
    for i, key in enumerate(loc):
        if isinstance(key, int) and isinstance(node, list):
            item = node[key] if 0 <= key < len(node) else None
            label_key = _LABELS.get(parent, "id")
            own = label_key == "id" and tuple(loc[i + 1:]) == ("id",)
            label = item.get(label_key) if isinstance(item, dict) and not own else None
            out = item_path(join_path(out, [key]), label)
            node = item
        else:
            out = join_path(out, [str(key)])
            node = node.get(key) if isinstance(node, dict) else None
            parent = str(key)
    return out
