"""The lineage additions of ``dvi-case/1`` (``shared/design/lineage.md``).

A case may carry a top-level ``"lineage"`` object (the Y-STR loci with their
mutation rates and the Y haplotype database; the mtDNA mutation rate and the
mtDNA database), and any remains or family member a ``"haplotypes"`` object
(``{"Y": {"DYS391": "10", ...}, "mt": {"range": "...", "variants": [...]}}``).
:func:`lineage_from_dict` reads them (called by
:func:`opendvi.io.case_json.case_from_dict`, which reports its problems with
the rest of the document's), :func:`lineage_to_dict` writes them back.
Problems name the field; each system, database row and person's haplotypes
is read on after a problem in another, so that every problem is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import numpy as np

from opendvi.core.case import Case
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.lineage import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    CaseLineage,
    MtDatabase,
    MtSystem,
    PersonHaplotypes,
    YDatabase,
    YHaplotype,
    YMarker,
    YSystem,
    default_y_marker,
    parse_y_value,
    y_mutation_rates,
    y_value_text,
)
from opendvi.core.lineage_freq import (
    DiscreteLaplaceModel,
    coordinate_names,
    fit_discrete_laplace_bic,
    haplotype_coordinates,
)
from opendvi.core.lineage_mt import MtHaplotype
from opendvi.io.case_checks import FEMALE_NO_Y, MISSING_TYPED, MT_NEEDS_SYSTEM, Y_NEEDS_SYSTEM, unknown_y_locus

H = TypeVar("H")


class _Reported(Exception):
    """A part whose problems are already collected: it is left out."""


class _Err:
    """Makes the errors of one document, and collects them: each part read
    inside :meth:`catch` that fails adds its problem and reading goes on."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.problems: list[tuple[str, str]] = []

    def __call__(self, msg: str, where: str | None = None) -> FileFormatError:
        return FileFormatError(msg, path=self.path, field=where)

    @contextmanager
    def catch(self) -> Iterator[None]:
        try:
            yield
        except _Reported:
            pass
        except FileFormatError as exc:
            self.problems.append((exc.field or "", exc.reason))

    def check(self, since: int) -> None:
        """Raise :class:`_Reported` if a problem was collected after ``since``."""
        if len(self.problems) > since:
            raise _Reported


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value: Any, where: str, err: _Err) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise err(f"must be a positive integer, found {value!r}", where)
    return value


def _estimator(raw: Mapping[str, Any], where: str, err: _Err, *, system: str) -> str:
    est = raw.get("estimator", DEFAULT_ESTIMATOR) or DEFAULT_ESTIMATOR
    allowed = ESTIMATORS if system == "Y" else tuple(e for e in ESTIMATORS if e != "discrete-laplace")
    if est not in allowed:
        raise err(f"must be one of {', '.join(allowed)}, found {est!r}", f"{where}.estimator")
    return str(est)


def y_markers_from_list(raw: Any, err: _Err, where: str = "lineage.Y.markers") -> tuple[YMarker, ...]:
    if not isinstance(raw, list) or not raw:
        raise err("must be a non-empty list of Y-STR loci", where)
    out: list[YMarker] = []
    seen: set[str] = set()
    for k, rm in enumerate(raw):
        w = f"{where}[{k}]"
        if isinstance(rm, str):
            rm = {"name": rm}
        if not isinstance(rm, dict):
            raise err("must be an object with 'name' (and 'rate', 'copies')", w)
        name = rm.get("name")
        if not isinstance(name, str) or not name.strip():
            raise err(f"must be a non-empty string, found {name!r}", f"{w}.name")
        if name in seen:
            raise err(f"Y locus {name} is listed twice", f"{w}.name")
        seen.add(name)
        rate, copies = rm.get("rate"), rm.get("copies")
        try:
            default = default_y_marker(name) if rate is None or copies is None else None
        except OpenDVIError:
            if rate is None:
                known = ", ".join(sorted(k for k in y_mutation_rates() if not k.endswith(("a", "b"))))
                raise err(f"no bundled mutation rate for {name}; give 'rate' (bundled: {known})", f"{w}.rate") from None
            default = None
        if rate is None:
            assert default is not None
            rate = default.rate
        if copies is None:
            copies = default.copies if default is not None else 1
        if not _number(rate) or not 0.0 <= float(rate) < 1.0:
            raise err(f"must be a number in [0, 1), found {rate!r}", f"{w}.rate")
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 4:
            raise err(f"must be an integer 1 to 4, found {copies!r}", f"{w}.copies")
        out.append(YMarker(name=name, rate=float(rate), copies=copies))
    return tuple(out)


def y_haplotype_from_dict(
    raw: Any, markers: Mapping[str, YMarker], err: _Err, where: str
) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise err("must be an object mapping a Y-STR locus to its value", where)
    out: dict[str, tuple[str, ...]] = {}
    for locus, value in raw.items():
        if locus not in markers:
            raise err(unknown_y_locus(locus), where)
        if value is None or value == "":
            continue  # untyped
        try:
            out[locus] = parse_y_value(value, copies=markers[locus].copies, who=where, locus=locus)
        except OpenDVIError as exc:
            raise err(str(exc).split(": ", 1)[-1], f"{where}.{locus}") from None
    return out


def mt_haplotype_from_dict(raw: Any, err: _Err, where: str) -> MtHaplotype:
    if not isinstance(raw, dict):
        raise err("must be an object with 'range' and 'variants'", where)
    rng, variants = raw.get("range"), raw.get("variants", [])
    if not isinstance(rng, str):
        raise err(f"must be a range such as '16024-16569 1-576', found {rng!r}", f"{where}.range")
    if isinstance(variants, str):
        variants = variants.split()
    if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
        raise err("must be a list of variants in EMPOP notation", f"{where}.variants")
    try:
        return MtHaplotype.parse(rng, variants, who=where)
    except OpenDVIError as exc:
        raise err(str(exc).split(": ", 1)[-1], where) from None


def _database_rows(raw: Any, err: _Err, where: str, what: str, read: Callable[[Any, str], H], *,
                   system: str) -> tuple[list[H], list[int], str]:
    """A database object's haplotypes (each row read by ``read(row, where)``), counts and estimator; every
    row's problem is collected before :class:`_Reported`."""
    if not isinstance(raw, dict):
        raise err("must be an object with 'haplotypes' (and 'estimator')", where)
    rows = raw.get("haplotypes")
    if not isinstance(rows, list) or not rows:
        raise err(f"must be a non-empty list of {what}", f"{where}.haplotypes")
    haps: list[H] = []
    counts: list[int] = []
    since = len(err.problems)
    for k, row in enumerate(rows):
        w = f"{where}.haplotypes[{k}]"
        with err.catch():
            haps.append(read(row, w))
            counts.append(_count(row.get("count", 1), f"{w}.count", err))
    est = _estimator(raw, where, err, system=system)
    err.check(since)
    return haps, counts, est


def _y_database(raw: Any, markers: tuple[YMarker, ...], err: _Err, where: str) -> YDatabase:
    by_name = {m.name: m for m in markers}

    def row_of(row: Any, w: str) -> YHaplotype:
        if not isinstance(row, dict):
            raise err("must be an object with 'alleles' and 'count'", w)
        return y_haplotype_from_dict(row.get("alleles"), by_name, err, f"{w}.alleles")

    haps, counts, est = _database_rows(raw, err, where, "{alleles, count}", row_of, system="Y")
    model = None
    if est == "discrete-laplace":
        raw_model = raw.get("model")
        try:
            if raw_model is not None:
                if not isinstance(raw_model, dict):
                    raise err("must be an object with markers, centers, tau and p", f"{where}.model")
                model = DiscreteLaplaceModel.from_dict(raw_model)
            else:
                model = fit_y_database_model(haps, counts, markers)
        except FileFormatError:
            raise
        except OpenDVIError as exc:
            raise err(str(exc), f"{where}.model") from None
        coords = set(coordinate_names([m.name for m in markers], {m.name: m.copies for m in markers}))
        unknown = [c for c in model.markers if c not in coords]
        if unknown:
            raise err(f"model locus {unknown[0]!r} is not a Y locus of the case", f"{where}.model.markers")
    try:
        return YDatabase(tuple(haps), tuple(counts), est, model=model, name=str(raw.get("name") or ""))
    except OpenDVIError as exc:
        raise err(str(exc), where) from None


def fit_y_database_model(
    haps: list[YHaplotype] | tuple[YHaplotype, ...], counts: list[int] | tuple[int, ...], markers: tuple[YMarker, ...]
) -> DiscreteLaplaceModel:
    """Fit the discrete Laplace mixture (1 to 5 clusters, lowest BIC) over the
    loci typed in every database haplotype."""
    loci = [m.name for m in markers if all(m.name in h for h in haps)]
    if not loci:
        raise OpenDVIError("discrete Laplace: no Y locus is typed in every database haplotype")
    rows = [haplotype_coordinates(h, loci) for h in haps]
    names = list(rows[0])
    x = np.array([[r[n] for n in names] for r in rows], dtype=np.int64)
    return fit_discrete_laplace_bic(x, counts=counts, markers=names, max_clusters=5).model


def _mt_database(raw: Any, err: _Err, where: str) -> MtDatabase:
    def row_of(row: Any, w: str) -> MtHaplotype:
        return mt_haplotype_from_dict(row, err, w)

    haps, counts, est = _database_rows(raw, err, where, "{range, variants, count}", row_of, system="mt")
    return MtDatabase(tuple(haps), tuple(counts), est, name=str(raw.get("name") or ""))


class _Person(NamedTuple):
    where: str  # the field path of the person
    id: str
    sex: Any
    missing: bool
    haplotypes: Any


def _people(data: Mapping[str, Any]) -> list[_Person]:
    """Every remains and family member of the document that carries haplotypes."""
    out: list[_Person] = []
    remains = data.get("remains")
    for k, r in enumerate(remains if isinstance(remains, list) else []):
        if isinstance(r, dict) and r.get("haplotypes"):
            out.append(_Person(f"remains[{k}] ({r.get('id')})", str(r.get("id")), r.get("sex"), False, r["haplotypes"]))
    families = data.get("families")
    for k, f in enumerate(families if isinstance(families, list) else []):
        members = f.get("members") if isinstance(f, dict) else None
        for j, m in enumerate(members if isinstance(members, list) else []):
            if isinstance(m, dict) and m.get("haplotypes"):
                where = f"families[{k}] ({f.get('id')}).members[{j}] ({m.get('id')})"
                out.append(_Person(where, str(m.get("id")), m.get("sex"), m.get("missing") is True, m["haplotypes"]))
    return out


def _y_system(ry: Any, err: _Err) -> YSystem:
    if not isinstance(ry, dict):
        raise err("must be an object with 'markers' and 'database'", "lineage.Y")
    markers = y_markers_from_list(ry.get("markers"), err)
    if ry.get("database") is None:
        raise err("a haplotype database is needed for f(h)", "lineage.Y.database")
    return YSystem(markers=markers, database=_y_database(ry["database"], markers, err, "lineage.Y.database"))


def _mt_system(rm: Any, err: _Err) -> MtSystem:
    if not isinstance(rm, dict):
        raise err("must be an object with 'rate' and 'database'", "lineage.mt")
    rate: Any = rm.get("rate")
    if not _number(rate) or not 0.0 <= float(rate) < 1.0:
        raise err(f"must be a number in [0, 1), found {rate!r}", "lineage.mt.rate")
    if rm.get("database") is None:
        raise err("a haplotype database is needed for f(h)", "lineage.mt.database")
    return MtSystem(rate=float(rate), database=_mt_database(rm["database"], err, "lineage.mt.database"))


def _y_of(person: _Person, rh: Mapping[str, Any], systems: Mapping[str, Any], err: _Err) -> YHaplotype | None:
    w = f"{person.where}.haplotypes.Y"
    if "Y" in systems and systems["Y"] is None:
        raise err(Y_NEEDS_SYSTEM, w)
    if person.sex == "F":
        raise err(FEMALE_NO_Y, w)
    y_sys = systems.get("Y")
    if not isinstance(y_sys, YSystem):
        raise _Reported  # lineage.Y could not be read (its problem is reported): the loci are unknown
    return y_haplotype_from_dict(rh["Y"], y_sys.by_name, err, w) or None


def _person_haplotypes(
    person: _Person, systems: Mapping[str, YSystem | MtSystem | None], err: _Err
) -> PersonHaplotypes | None:
    rh, w = person.haplotypes, f"{person.where}.haplotypes"
    if not isinstance(rh, dict) or set(rh) - {"Y", "mt"}:
        raise err("must be an object with 'Y' and/or 'mt'", w)
    if person.missing:
        raise err(MISSING_TYPED, w)
    yh = mh = None
    since = len(err.problems)
    if rh.get("Y"):
        with err.catch():
            yh = _y_of(person, rh, systems, err)
    if rh.get("mt") and "mt" in systems:  # a system given but unreadable: its haplotypes are not checked
        with err.catch():
            if systems["mt"] is None:
                raise err(MT_NEEDS_SYSTEM, f"{w}.mt")
            mh = mt_haplotype_from_dict(rh["mt"], err, f"{w}.mt")
    err.check(since)
    return PersonHaplotypes(y=yh, mt=mh) if yh is not None or mh is not None else None


def lineage_from_dict(
    data: Mapping[str, Any], *, path: str | None = None
) -> tuple[CaseLineage | None, list[tuple[str, str]]]:
    """The lineage part of a parsed ``dvi-case/1`` object (None if it has
    none), and every problem found in it as ``(field, message)`` (the lineage
    is None when there is one)."""
    err = _Err(path)
    raw = data.get("lineage")
    typed = _people(data)
    if raw is None and not typed:
        return None, []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict) or set(raw) - {"Y", "mt"}:
        return None, [("lineage", "must be an object with 'Y' and/or 'mt'")]
    # a system absent from the case is None; one given but unreadable is left out
    systems: dict[str, YSystem | MtSystem | None] = {"Y": None, "mt": None}
    for name, read in (("Y", _y_system), ("mt", _mt_system)):
        if raw.get(name) is not None:
            del systems[name]
            with err.catch():
                systems[name] = read(raw[name], err)
    haplotypes: dict[str, PersonHaplotypes] = {}
    for person in typed:
        with err.catch():
            ph = _person_haplotypes(person, systems, err)
            if ph is not None:
                haplotypes[person.id] = ph
    if err.problems:
        return None, err.problems
    y, mt = systems["Y"], systems["mt"]
    assert (y is None or isinstance(y, YSystem)) and (mt is None or isinstance(mt, MtSystem))
    return CaseLineage(y=y, mt=mt, haplotypes=haplotypes), []


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def y_haplotype_to_dict(h: YHaplotype) -> dict[str, str]:
    return {k: y_value_text(v) for k, v in h.items()}


def mt_haplotype_to_dict(h: MtHaplotype) -> dict[str, Any]:
    return {"range": h.range_text, "variants": list(h.variants)}


def lineage_to_dict(lin: CaseLineage) -> dict[str, Any]:
    """The top-level ``"lineage"`` object."""
    out: dict[str, Any] = {}
    if lin.y is not None:
        db = lin.y.database
        ydb: dict[str, Any] = {
            "haplotypes": [
                {"alleles": y_haplotype_to_dict(h), "count": c} for h, c in zip(db.haplotypes, db.counts, strict=True)
            ],
            "estimator": db.estimator,
        }
        if db.name:
            ydb["name"] = db.name
        if db.model is not None:
            ydb["model"] = db.model.to_dict()
        out["Y"] = {
            "markers": [
                {"name": m.name, "rate": m.rate, **({"copies": m.copies} if m.copies != 1 else {})}
                for m in lin.y.markers
            ],
            "database": ydb,
        }
    if lin.mt is not None:
        mdb = lin.mt.database
        mt_db: dict[str, Any] = {
            "haplotypes": [
                {**mt_haplotype_to_dict(h), "count": c} for h, c in zip(mdb.haplotypes, mdb.counts, strict=True)
            ],
            "estimator": mdb.estimator,
        }
        if mdb.name:
            mt_db["name"] = mdb.name
        out["mt"] = {"rate": lin.mt.rate, "database": mt_db}
    return out


def add_lineage_to_dict(case: Case, out: dict[str, Any]) -> dict[str, Any]:
    """Add the lineage part of ``case`` to its ``dvi-case/1`` object ``out``
    (the top-level block and each person's ``haplotypes``); returns ``out``."""
    lin: CaseLineage | None = getattr(case, "lineage", None)
    if lin is None:
        return out
    out["lineage"] = lineage_to_dict(lin)
    people = [r for r in out.get("remains", [])] + [m for f in out.get("families", []) for m in f.get("members", [])]
    for person in people:
        ph = lin.haplotypes.get(person.get("id"))
        if ph is None:
            continue
        d: dict[str, Any] = {}
        if ph.y:
            d["Y"] = y_haplotype_to_dict(ph.y)
        if ph.mt is not None:
            d["mt"] = mt_haplotype_to_dict(ph.mt)
        if d:
            person["haplotypes"] = d
    return out
