"""Allele frequency databases.

Two layouts are read:

* the Familias frequency file (norSTR's ``*_v2023.txt``): a marker name on a
  line of its own, then one ``allele<TAB>frequency`` line per allele, a blank
  line between markers;
* a long CSV with columns ``marker`` (or ``locus``), ``allele``,
  ``frequency``, optionally ``population`` (then one must be chosen).

Marker names are normalised (vWA/VWA, TH01/THO1, Penta D/PENTA_D/PentaD),
frequencies of each marker are checked to sum to 1 within a tolerance and
renormalised; every problem names the file and the line. The result is a
:class:`FrequencyDatabase`, from which :class:`~opendvi.core.markers.Marker`
objects are made with the mutation models of choice.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opendvi.core.errors import FileFormatError, MarkerError
from opendvi.core.markers import Marker, canonical_marker_name, display_marker_name
from opendvi.core.mutation import MutationModel
from opendvi.io import limits
from opendvi.io.source import Source, Target, put_bytes, read_bytes, reopenable, rewind, source_name

#: Frequencies of a marker must sum to 1 within this before renormalising.
SUM_TOLERANCE = 0.02


@dataclass(frozen=True)
class FrequencyTable:
    """Alleles and frequencies of one marker, as read."""

    name: str
    alleles: tuple[str, ...]
    frequencies: tuple[float, ...]
    line: int | None = None


@dataclass
class FrequencyDatabase:
    """Per-marker allele frequencies from one source."""

    tables: dict[str, FrequencyTable] = field(default_factory=dict)  # canonical key -> table
    source: str = ""
    sha256: str = ""
    database_size: int | None = None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_marker_name(name) in self.tables

    def __len__(self) -> int:
        return len(self.tables)

    @property
    def marker_names(self) -> list[str]:
        return [t.name for t in self.tables.values()]

    def table(self, name: str) -> FrequencyTable:
        try:
            return self.tables[canonical_marker_name(name)]
        except KeyError:
            raise MarkerError(f"marker {name} is not in the frequency database {self.source or ''}".rstrip()) from None

    def marker(
        self,
        name: str,
        *,
        female: MutationModel | None = None,
        male: MutationModel | None = None,
        chromosome: str = "autosomal",
    ) -> Marker:
        """A :class:`Marker` from this database (frequencies renormalised to sum 1)."""
        t = self.table(name)
        total = math.fsum(t.frequencies)
        return Marker(
            name=t.name,
            alleles=t.alleles,
            frequencies=tuple(f / total for f in t.frequencies),
            chromosome=chromosome,
            female=female,
            male=male,
            database_size=self.database_size,
        )

    def markers(
        self,
        names: Iterable[str] | None = None,
        *,
        female: MutationModel | None = None,
        male: MutationModel | None = None,
    ) -> list[Marker]:
        chosen = list(names) if names is not None else self.marker_names
        return [self.marker(n, female=female, male=male) for n in chosen]


def _add_table(
    db: FrequencyDatabase,
    name: str,
    rows: list[tuple[str, float, int]],
    *,
    path: str,
    line: int,
) -> None:
    key = canonical_marker_name(name)
    if key in db.tables:
        raise FileFormatError(
            f"marker {name} appears twice (first at line {db.tables[key].line})", path=path, line=line, field="marker"
        )
    if not rows:
        raise FileFormatError(f"marker {name} has no alleles", path=path, line=line, field="marker")
    seen: dict[str, int] = {}
    for allele, _f, ln in rows:
        if allele in seen:
            raise FileFormatError(
                f"marker {name}: allele {allele} listed twice (also line {seen[allele]})",
                path=path,
                line=ln,
                field="allele",
            )
        seen[allele] = ln
    total = math.fsum(f for _, f, _ in rows)
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise FileFormatError(
            f"marker {name}: frequencies sum to {total:.6g}, expected 1", path=path, line=line, field="frequency"
        )
    db.tables[key] = FrequencyTable(
        name=display_marker_name(name),
        alleles=tuple(a for a, _, _ in rows),
        frequencies=tuple(f for _, f, _ in rows),
        line=line,
    )


def _parse_frequency(text: str, *, path: str, line: int) -> float:
    try:
        f = float(text.replace(",", "."))
    except ValueError:
        raise FileFormatError(f"frequency {text!r} is not a number", path=path, line=line, field="frequency") from None
    if not math.isfinite(f) or not (0.0 < f <= 1.0):
        raise FileFormatError(f"frequency {text!r} must be in (0, 1]", path=path, line=line, field="frequency")
    return f


def _parse_allele(text: str, *, path: str, line: int) -> str:
    a = text.strip()
    if not a:
        raise FileFormatError("empty allele", path=path, line=line, field="allele")
    try:
        x = float(a)
    except ValueError:
        return a  # non-numeric labels ("X", "Y", "OL" bins) are kept as strings
    if not math.isfinite(x) or x < 0:
        raise FileFormatError(f"allele {a!r} is not a valid STR allele", path=path, line=line, field="allele")
    return str(int(x)) if x.is_integer() and "." not in a else a


def read_familias_frequencies(
    source: Source, *, database_size: int | None = None, filename: str | None = None
) -> FrequencyDatabase:
    """Read a Familias frequency file (norSTR layout)."""
    p = source_name(source, filename)
    raw, text = _read(source, p)
    db = FrequencyDatabase(source=p, sha256=hashlib.sha256(raw).hexdigest(), database_size=database_size)
    current: str | None = None
    start = 0
    rows: list[tuple[str, float, int]] = []
    for ln, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        parts = s.split("\t") if "\t" in s else s.split()
        # a marker name has no tab and no trailing number ("Penta D" has a space)
        if "\t" not in s and (len(parts) == 1 or not _looks_numeric(parts[-1])):
            # a marker name (may contain a space: "Penta D")
            if current is not None:
                _add_table(db, current, rows, path=p, line=start)
            current, start, rows = s, ln, []
            continue
        if current is None:
            raise FileFormatError(f"allele line {s!r} before any marker name", path=p, line=ln, field="marker")
        if len(parts) != 2:
            raise FileFormatError(f"expected 'allele<TAB>frequency', found {len(parts)} fields", path=p, line=ln)
        rows.append(
            (_parse_allele(parts[0], path=p, line=ln), _parse_frequency(parts[1], path=p, line=ln), ln)
        )
    if current is not None:
        _add_table(db, current, rows, path=p, line=start)
    if not db.tables:
        raise FileFormatError("no markers found", path=p)
    return db


def read_long_csv(
    source: Source,
    *,
    population: str | None = None,
    database_size: int | None = None,
    filename: str | None = None,
) -> FrequencyDatabase:
    """Read a long CSV (``marker``/``locus``, ``allele``, ``frequency``[, ``population``])."""
    p = source_name(source, filename)
    raw, text = _read(source, p)
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise FileFormatError("empty file", path=p) from None
    col_marker = _col(header, ("marker", "locus"), path=p)
    col_allele = _col(header, ("allele",), path=p)
    col_freq = _col(header, ("frequency", "freq"), path=p)
    col_pop = header.index("population") if "population" in header else None
    if col_pop is not None:
        pops = sorted({r[col_pop] for r in csv.reader(text.splitlines()[1:]) if len(r) > col_pop})
        if population is None:
            if len(pops) > 1:
                raise FileFormatError(
                    f"the file holds {len(pops)} populations ({', '.join(pops[:6])}"
                    f"{'...' if len(pops) > 6 else ''}); choose one",
                    path=p,
                    field="population",
                )
        elif population not in pops:
            raise FileFormatError(
                f"population {population!r} not in the file (found {', '.join(pops[:6])})",
                path=p,
                field="population",
            )
    elif population is not None:
        raise FileFormatError("the file has no population column", path=p, field="population")
    db = FrequencyDatabase(source=p, sha256=hashlib.sha256(raw).hexdigest(), database_size=database_size)
    grouped: dict[str, tuple[str, int, list[tuple[str, float, int]]]] = {}
    for ln, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise FileFormatError(f"expected {len(header)} fields, found {len(row)}", path=p, line=ln)
        if col_pop is not None and population is not None and row[col_pop] != population:
            continue
        name = row[col_marker].strip()
        if not name:
            raise FileFormatError("empty marker name", path=p, line=ln, field=header[col_marker])
        key = canonical_marker_name(name)
        entry = grouped.setdefault(key, (name, ln, []))
        entry[2].append(
            (
                _parse_allele(row[col_allele], path=p, line=ln),
                _parse_frequency(row[col_freq], path=p, line=ln),
                ln,
            )
        )
    for name, ln, rows in grouped.values():
        _add_table(db, name, rows, path=p, line=ln)
    if not db.tables:
        raise FileFormatError("no frequencies found", path=p)
    return db


def read_frequencies(source: Source, *, filename: str | None = None, **kwargs: object) -> FrequencyDatabase:
    """Read a frequency file (a path or a file object; ``filename``: the name
    messages give it), choosing the layout from its content."""
    src, p = reopenable(source, filename)
    raw = _read_bytes(src, p)
    head = raw[:4096].decode("utf-8-sig", errors="replace").splitlines()
    first = head[0].lower() if head else ""
    if _is_ladder_header(first):
        return read_ladder_csv(rewind(src), filename=p, **kwargs)  # type: ignore[arg-type]
    if Path(p).suffix.lower() == ".csv" or ("allele" in first and "," in first):
        return read_long_csv(rewind(src), filename=p, **kwargs)  # type: ignore[arg-type]
    return read_familias_frequencies(rewind(src), filename=p, **kwargs)  # type: ignore[arg-type]


def _is_ladder_header(first: str) -> bool:
    cells = [c.strip().strip('"').lower() for c in first.split(",")]
    return len(cells) > 1 and cells[0] == "allele" and not ({"frequency", "freq", "marker", "locus"} & set(cells))


def read_ladder_csv(
    source: Source, *, database_size: int | None = None, population: str | None = None, filename: str | None = None
) -> FrequencyDatabase:
    """Read the ladder layout: an ``Allele`` column, then one column per
    marker holding each allele's frequency (blank or 0 = absent), as in
    ``FBI_extended_Cauc_022024.csv``. The amelogenin column (sex proportions,
    not allele frequencies) is skipped."""
    if population is not None:
        raise FileFormatError("the ladder layout has no population column", path=source_name(source, filename),
                              field="population")
    p = source_name(source, filename)
    raw, text = _read(source, p)
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise FileFormatError("empty file", path=p)
    header = [h.strip() for h in rows[0]]
    limits.check_row(len(header), p, 1)
    if not header or header[0].lower() != "allele":
        raise FileFormatError("the first column must be 'Allele'", path=p, line=1, field="Allele")
    db = FrequencyDatabase(source=p, sha256=hashlib.sha256(raw).hexdigest(), database_size=database_size)
    columns: dict[int, list[tuple[str, float, int]]] = {j: [] for j in range(1, len(header)) if header[j]}
    for j in list(columns):
        if canonical_marker_name(header[j]) == "AMEL":
            del columns[j]
    for ln, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        label = row[0].strip()
        if label.upper() in ("N", "2N", "SIZE", "SAMPLE SIZE"):
            sizes = {
                int(float(row[j].replace(",", ".")))
                for j in columns
                if j < len(row) and _looks_numeric(row[j]) and 0 < float(row[j].replace(",", ".")) < 1e12
            }
            if database_size is None and len(sizes) == 1 and all(s > 1 for s in sizes):
                n = sizes.pop()
                # "N" counts alleles (2 per person); "2N" says so explicitly
                db.database_size = n // 2 if label.upper() in ("N", "2N") else n
            continue
        numeric = [
            j
            for j in columns
            if j < len(row) and row[j].strip() and _looks_numeric(row[j]) and float(row[j].replace(",", ".")) != 0.0
        ]
        if not numeric:
            continue
        allele = _parse_allele(label, path=p, line=ln)
        for j in numeric:
            columns[j].append((allele, _parse_frequency(row[j], path=p, line=ln), ln))
        for j in columns:
            if j < len(row) and row[j].strip() and not _looks_numeric(row[j]):
                raise FileFormatError(f"frequency {row[j]!r} is not a number", path=p, line=ln, field=header[j])
    for j, entries in columns.items():
        if entries:
            _add_table(db, header[j], entries, path=p, line=1)
    if not db.tables:
        raise FileFormatError("no frequencies found", path=p)
    return db


def write_familias_frequencies(db: FrequencyDatabase | Mapping[str, FrequencyTable], target: Target) -> None:
    """Write frequencies as a Familias frequency file, to a path (atomically) or a binary file object."""
    tables = db.tables.values() if isinstance(db, FrequencyDatabase) else db.values()
    lines: list[str] = []
    for t in tables:
        lines.append(t.name)
        lines.extend(f"{a}\t{f!r}" for a, f in zip(t.alleles, t.frequencies, strict=True))
        lines.append("")
    put_bytes(target, "\n".join(lines).encode("utf-8"))


def _col(header: list[str], names: tuple[str, ...], *, path: str) -> int:
    for n in names:
        if n in header:
            return header.index(n)
    raise FileFormatError(
        f"missing column {names[0]!r} (header: {', '.join(header)})", path=path, line=1, field=names[0]
    )


def _looks_numeric(s: str) -> bool:
    try:
        float(s.replace(",", "."))
    except ValueError:
        return False
    return True


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_bytes(source: Source, name: str) -> bytes:
    """The content, its size, lines and cells checked (:mod:`opendvi.io.limits`)."""
    lim = limits.current()
    raw = read_bytes(source, name, lim=lim)
    limits.check_text(raw, name, delimiter="," if raw.count(b",") > raw.count(b"\t") else "\t", limits=lim)
    return raw


def _read(source: Source, name: str) -> tuple[bytes, str]:
    """The content and its text (UTF-8, else Latin-1)."""
    raw = _read_bytes(source, name)
    return raw, raw.decode("utf-8-sig") if _is_utf8(raw) else raw.decode("latin-1")
