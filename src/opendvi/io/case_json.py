"""Read and write ``dvi-case/1`` JSON (``shared/design/case-json.md``).

Errors name the file and the field (``families[0].members[2].father``) or,
for malformed JSON, the line. Nothing is returned unless the whole file is
valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError, PedigreeError
from opendvi.core.markers import CHROMOSOMES, Marker
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype, make_genotype
from opendvi.core.rules import json_number as _json_number
from opendvi.io import limits
from opendvi.io.lineage_json import add_lineage_to_dict, with_lineage

FORMAT = "dvi-case/1"


def read_case(path: str | Path) -> Case:
    """Read a ``dvi-case/1`` file."""
    p = Path(path)
    limits.check_file(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileFormatError("file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileFormatError(f"cannot read: {exc}", path=str(p)) from None
    return case_from_dict(load_json(text, path=str(p)), path=str(p))


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
    """Build a :class:`Case` from parsed ``dvi-case/1`` JSON."""

    def err(msg: str, where: str | None = None) -> FileFormatError:
        return FileFormatError(msg, path=path, field=where)

    if not isinstance(data, dict):
        raise err("the top level must be a JSON object")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise err(f"expected {FORMAT!r}, found {fmt!r}", "format")
    theta = data.get("theta", 0.0)
    if theta is None:
        theta = 0.0
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not (0.0 <= theta < 1.0):
        raise err(f"must be a number in [0, 1), found {theta!r}", "theta")

    # -- markers
    raw_markers = data.get("markers")
    has_lineage = data.get("lineage") is not None
    if raw_markers is None and has_lineage:
        raw_markers = []  # lineage evidence alone (a Yfiler-only case): no autosomal marker needed
    if not isinstance(raw_markers, list) or (not raw_markers and not has_lineage):
        raise err("must be a non-empty list (or empty beside a 'lineage' part)", "markers")
    markers: list[Marker] = []
    names: set[str] = set()
    for k, rm in enumerate(raw_markers):
        where = f"markers[{k}]"
        if not isinstance(rm, dict):
            raise err("must be an object", where)
        name = rm.get("name")
        if not isinstance(name, str) or not name.strip():
            raise err(f"marker name must be a non-empty string, found {name!r}", f"{where}.name")
        where = f"markers[{k}] ({name})"
        if name in names:
            raise err(f"marker {name} is listed twice", f"{where}.name")
        names.add(name)
        alleles = rm.get("alleles")
        freqs = rm.get("frequencies")
        if not isinstance(alleles, list) or not all(isinstance(a, str) for a in alleles):
            raise err("must be a list of allele strings", f"{where}.alleles")
        if not isinstance(freqs, list) or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) for f in freqs
        ):
            raise err("must be a list of numbers", f"{where}.frequencies")
        chrom = rm.get("chromosome", "autosomal") or "autosomal"
        if chrom not in CHROMOSOMES:
            raise err(f"must be 'autosomal' or 'X', found {chrom!r}", f"{where}.chromosome")
        mut = rm.get("mutation")
        female = male = None
        try:
            if mut is not None:
                if not isinstance(mut, dict) or set(mut) - {"female", "male"}:
                    raise err("must be null or an object with 'female' and 'male'", f"{where}.mutation")
                female = MutationModel.from_dict(mut.get("female"), marker=name)
                male = MutationModel.from_dict(mut.get("male"), marker=name)
            dbsize = rm.get("database_size")
            markers.append(
                Marker(
                    name=name,
                    alleles=tuple(alleles),
                    frequencies=tuple(float(f) for f in freqs),
                    chromosome=chrom,
                    female=female,
                    male=male,
                    database_size=int(dbsize) if dbsize is not None else None,
                )
            )
        except FileFormatError:
            raise
        except OpenDVIError as exc:
            raise err(str(exc), where) from None

    def genotypes_of(obj: dict[str, Any], where: str) -> dict[str, Genotype]:
        raw = obj.get("genotypes") or {}
        if not isinstance(raw, dict):
            raise err("must be an object mapping marker name to alleles", f"{where}.genotypes")
        out: dict[str, Genotype] = {}
        for mname, alleles in raw.items():
            if mname not in names:
                raise err(f"unknown marker {mname!r} (not in 'markers')", f"{where}.genotypes")
            try:
                gt = make_genotype(alleles, who=where, marker=mname)
            except OpenDVIError as exc:
                raise err(str(exc).split(": ", 1)[-1], f"{where}.genotypes.{mname}") from None
            if gt is not None:
                out[mname] = gt
        return out

    def dropout_of(obj: dict[str, Any], where: str) -> float:
        d = obj.get("dropout", 0.0)
        if d is None:
            return 0.0
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not (0.0 <= d < 1.0):
            raise err(f"must be a number in [0, 1), found {d!r}", f"{where}.dropout")
        return float(d)

    def sex_of(obj: dict[str, Any], where: str, *, allow_none: bool) -> str | None:
        sex = obj.get("sex")
        if sex in ("M", "F") or (sex is None and allow_none):
            return sex
        raise err(f"must be 'M' or 'F'{' or null' if allow_none else ''}, found {sex!r}", f"{where}.sex")

    ids: set[str] = set()

    def check_id(value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise err(f"must be a non-empty string, found {value!r}", f"{where}.id")
        if value in ids:
            raise err(f"id {value!r} is used twice in the case", f"{where}.id")
        ids.add(value)
        return value

    # -- remains
    raw_remains = data.get("remains") or []
    if not isinstance(raw_remains, list):
        raise err("must be a list", "remains")
    remains: list[Sample] = []
    for k, rr in enumerate(raw_remains):
        where = f"remains[{k}]"
        if not isinstance(rr, dict):
            raise err("must be an object", where)
        rid = check_id(rr.get("id"), where)
        where = f"remains[{k}] ({rid})"
        remains.append(
            Sample(
                id=rid,
                sex=sex_of(rr, where, allow_none=True),
                genotypes=genotypes_of(rr, where),
                dropout=dropout_of(rr, where),
            )
        )

    # -- families
    raw_fams = data.get("families") or []
    if not isinstance(raw_fams, list):
        raise err("must be a list", "families")
    families: list[Family] = []
    for k, rf in enumerate(raw_fams):
        where = f"families[{k}]"
        if not isinstance(rf, dict):
            raise err("must be an object", where)
        fid = check_id(rf.get("id"), where)
        where = f"families[{k}] ({fid})"
        members = rf.get("members")
        if not isinstance(members, list) or not members:
            raise err("must be a non-empty list", f"{where}.members")
        people: list[Individual] = []
        gts: dict[str, dict[str, Genotype]] = {}
        missing: list[str] = []
        dropout: dict[str, float] = {}
        for j, rmem in enumerate(members):
            mw = f"{where}.members[{j}]"
            if not isinstance(rmem, dict):
                raise err("must be an object", mw)
            pid = check_id(rmem.get("id"), mw)
            mw = f"{where}.members[{j}] ({pid})"
            for role in ("father", "mother"):
                v = rmem.get(role)
                if v is not None and not isinstance(v, str):
                    raise err(f"must be a member id or null, found {v!r}", f"{mw}.{role}")
            people.append(Individual(pid, rmem.get("father"), rmem.get("mother"), sex_of(rmem, mw, allow_none=False)))
            g = genotypes_of(rmem, mw)
            is_missing = rmem.get("missing", False)
            if not isinstance(is_missing, bool):
                raise err(f"must be true or false, found {is_missing!r}", f"{mw}.missing")
            if is_missing:
                if g:
                    raise err("a missing person must not be typed", f"{mw}.genotypes")
                missing.append(pid)
            if g:
                gts[pid] = g
            d = dropout_of(rmem, mw)
            if d:
                dropout[pid] = d
        try:
            ped = Pedigree(people)
        except PedigreeError as exc:
            raise err("; ".join(exc.problems), f"{where}.members") from None
        families.append(Family(id=fid, pedigree=ped, genotypes=gts, missing=tuple(missing), dropout=dropout))

    # -- pairings
    pairings = data.get("pairings")
    parsed_pairings: dict[str, tuple[str, ...]] | None = None
    if pairings is not None:
        if not isinstance(pairings, dict):
            raise err("must be an object mapping a remains id to a list of missing person ids", "pairings")
        rem_ids = {r.id for r in remains}
        mp_ids = {mp for f in families for mp in f.missing}
        parsed_pairings = {}
        for rid, lst in pairings.items():
            if rid not in rem_ids:
                raise err(f"unknown remains {rid!r}", "pairings")
            if not isinstance(lst, list) or any(x not in mp_ids for x in lst):
                raise err(f"{rid}: must be a list of missing person ids", "pairings")
            parsed_pairings[rid] = tuple(lst)

    name = data.get("name") or (Path(path).stem if path else "case")
    case = Case(
        name=str(name),
        markers=tuple(markers),
        remains=tuple(remains),
        families=tuple(families),
        theta=float(theta),
        pairings=parsed_pairings,
    )
    _check_genotypes(case, err)
    return with_lineage(case, data, path=path)


def _check_genotypes(case: Case, err: Any) -> None:
    from opendvi.core.profiles import check_genotype

    by_name = {m.name: m for m in case.markers}
    for r in case.remains:
        for mname, gt in r.genotypes.items():
            _check_one(check_genotype, gt, by_name[mname], r.sex, f"remains {r.id}", err)
    for fam in case.families:
        for pid, g in fam.genotypes.items():
            for mname, gt in g.items():
                _check_one(check_genotype, gt, by_name[mname], fam.sex_of(pid), f"family {fam.id}, member {pid}", err)


def _check_one(check: Any, gt: Genotype, marker: Marker, sex: str | None, who: str, err: Any) -> None:
    # Alleles outside the frequency table are allowed here (they are added
    # with the minimum frequency at computation time); everything else about
    # the genotype must fit.
    known = [a for a in gt if a in marker.index]
    if len(known) != len(gt):
        return
    try:
        check(gt, marker, sex=sex, who=who)
    except OpenDVIError as exc:
        raise err(str(exc), f"{who}, genotypes.{marker.name}") from None


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


def write_case(case: Case, path: str | Path) -> None:
    """Write a case as ``dvi-case/1`` JSON (atomically: a temporary file renamed)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(case_to_dict(case), indent=2) + "\n", encoding="utf-8")
    tmp.replace(p)


#: A float for JSON output (-inf as the string "-inf", case-json.md): the one rule of opendvi.core.rules.
json_number = _json_number
