"""Read and write ``dvi-case/1`` JSON (``shared/design/case-json.md``).

Errors name the file and the field (``families[0] (F1).members[2] (M1).father``)
or, for malformed JSON, the line; every problem of a document is reported at
once (:mod:`opendvi.io.case_schema`). Nothing is returned unless the whole
file is valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError
from opendvi.core.profiles import Genotype
from opendvi.io import limits
from opendvi.io.case_checks import FORMAT, CaseDocumentError, validate_case
from opendvi.io.case_schema import FamilyDoc, RemainsDoc, parse_case_document, parse_markers
from opendvi.io.lineage_json import add_lineage_to_dict, lineage_from_dict
from opendvi.io.source import Source, Target, put_bytes, read_utf8, source_name

__all__ = [
    "FORMAT",
    "CaseDocumentError",
    "case_from_dict",
    "case_to_dict",
    "load_json",
    "parse_markers",
    "read_case",
    "validate_case",
    "write_case",
]


def read_case(source: Source, filename: str | None = None) -> Case:
    """Read a ``dvi-case/1`` file: a path or a file object (``filename``: the name messages give it)."""
    name = source_name(source, filename)
    return case_from_dict(load_json(read_utf8(source, name), path=name), path=name)


def load_json(text: str | bytes, *, path: str) -> Any:
    """``json.loads`` after the limits on size, nesting and values
    (:mod:`opendvi.io.limits`); errors as :class:`FileFormatError`."""
    limits.check_json(text, path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno) from None
    except RecursionError:  # a backstop: the depth check comes first
        raise limits.LimitError("JSON nested too deep", path=path) from None
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"not UTF-8: {exc.reason} at byte {exc.start}", path=path) from None


def case_from_dict(data: Any, *, path: str | None = None) -> Case:
    """Build a :class:`Case` from parsed ``dvi-case/1`` JSON.

    Every problem of the document is collected (:mod:`opendvi.io.case_schema`)
    and raised together as one :class:`~opendvi.io.case_checks.CaseDocumentError`."""
    try:
        doc, problems = parse_case_document(data, path=path), []
    except CaseDocumentError as exc:
        doc, problems = None, exc.problems
    lineage, lineage_problems = lineage_from_dict(data, path=path) if isinstance(data, dict) else (None, [])
    if doc is None or lineage_problems:
        raise CaseDocumentError([*problems, *lineage_problems], path=path)
    return Case(
        name=str(doc.name or (Path(path).stem if path else "case")),
        markers=tuple(m.marker for m in doc.markers),
        remains=tuple(_sample(r) for r in doc.remains),
        families=tuple(_family(f) for f in doc.families),
        theta=float(doc.theta),
        pairings=None if doc.pairings is None else {k: tuple(v) for k, v in doc.pairings.items()},
        lineage=lineage,
    )


def _sample(r: RemainsDoc) -> Sample:
    return Sample(id=r.id, sex=r.sex, genotypes=dict(r.genotypes), dropout=float(r.dropout))


def _family(f: FamilyDoc) -> Family:
    return Family(
        id=f.id,
        pedigree=f.pedigree,
        genotypes={m.id: dict(m.genotypes) for m in f.members if m.genotypes},
        missing=tuple(m.id for m in f.members if m.missing),
        dropout={m.id: float(m.dropout) for m in f.members if m.dropout},
    )


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def case_to_dict(case: Case) -> dict[str, Any]:
    """The ``dvi-case/1`` JSON object of a case (added alleles included)."""
    out: dict[str, Any] = {"format": FORMAT, "name": case.name, "theta": case.theta}
    mk: list[dict[str, Any]] = []
    for m in case.markers:
        d: dict[str, Any] = {
            "name": m.name,
            "chromosome": m.chromosome,
            "alleles": list(m.alleles),
            "frequencies": list(m.frequencies),
        }
        if m.female is None and m.male is None:
            d["mutation"] = None
        else:
            d["mutation"] = {
                "female": m.female.to_dict() if m.female else None,
                "male": m.male.to_dict() if m.male else None,
            }
        if m.database_size is not None:
            d["database_size"] = m.database_size
        mk.append(d)
    out["markers"] = mk

    def gts(g: Mapping[str, Genotype]) -> dict[str, list[str]]:
        return {k: list(v) for k, v in g.items()}

    rem: list[dict[str, Any]] = []
    for r in case.remains:
        rd: dict[str, Any] = {"id": r.id, "sex": r.sex, "genotypes": gts(r.genotypes)}
        if r.dropout:
            rd["dropout"] = r.dropout
        rem.append(rd)
    out["remains"] = rem
    fams: list[dict[str, Any]] = []
    for f in case.families:
        members: list[dict[str, Any]] = []
        for ind in f.pedigree.individuals:
            md: dict[str, Any] = {"id": ind.id, "father": ind.father, "mother": ind.mother, "sex": ind.sex}
            if ind.id in f.missing:
                md["missing"] = True
            if f.genotypes.get(ind.id):
                md["genotypes"] = gts(f.genotypes[ind.id])
            if f.dropout.get(ind.id):
                md["dropout"] = f.dropout[ind.id]
            members.append(md)
        fams.append({"id": f.id, "members": members})
    out["families"] = fams
    if case.pairings is not None:
        out["pairings"] = {k: list(v) for k, v in case.pairings.items()}
    return add_lineage_to_dict(case, out)


def write_case(case: Case, target: Target) -> None:
    """Write a case as ``dvi-case/1`` JSON to a path (atomically) or a binary file object."""
    put_bytes(target, (json.dumps(case_to_dict(case), indent=2) + "\n").encode("utf-8"))
