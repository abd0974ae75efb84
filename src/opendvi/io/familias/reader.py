"""Reading a ``.fam`` file into :class:`~opendvi.io.familias.model.FamFile`:
the header, the persons, the known relations, the pedigrees, the database,
then the ``[DVI]`` section if any (:mod:`opendvi.io.familias.dvi_section`),
each a step of :func:`parse_fam`."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from opendvi.core.errors import FileFormatError
from opendvi.core.markers import canonical_marker_name
from opendvi.io import limits
from opendvi.io.familias.dvi_section import parse_dvi
from opendvi.io.familias.model import FamFile, FamLocus, FamPedigree, FamPerson, FamSexModel
from opendvi.io.normalise import normalise_allele
from opendvi.io.source import Source, read_text, source_name

_THETA = re.compile(r"Theta/Kinship/Fst:\s*([-+0-9.eE]+)")
_INFO = {
    "database_size": re.compile(r"DatabaseSize\s*=\s*([-+0-9.eE]+)"),
    "dropout": re.compile(r"Dropout probability\s*=\s*([-+0-9.eE]+)"),
    "maf": re.compile(r"Minor allele frequency\s*=\s*([-+0-9.eE]+)"),
}


class _Lines:
    """A cursor over the lines of a .fam file that names the line on error."""

    def __init__(self, lines: list[str], path: str) -> None:
        self.lines = lines
        self.path = path
        self.i = 0

    @property
    def lineno(self) -> int:
        return self.i + 1

    def error(self, msg: str, *, line: int | None = None, field: str | None = None) -> FileFormatError:
        return FileFormatError(msg, path=self.path, line=line if line is not None else self.lineno, field=field)

    def raw(self, what: str) -> str:
        if self.i >= len(self.lines):
            raise FileFormatError(f"file ends early: expected {what}", path=self.path, line=len(self.lines))
        s = self.lines[self.i].rstrip("\r\n")
        self.i += 1
        return s

    def peek(self) -> str | None:
        return self.lines[self.i].rstrip("\r\n") if self.i < len(self.lines) else None

    def string(self, what: str) -> str:
        s = self.raw(what).strip()
        if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
            return s[1:-1]
        return s

    def integer(self, what: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        s = self.raw(what).strip()
        try:
            v = int(s) if len(s) <= 20 else int("x")
        except ValueError:
            raise self.error(f"expected {what} (an integer), found {s[:40]!r}", line=self.i) from None
        # counts and indices: never more than the limit on rows (checked before anything is built on them)
        limits.check_count(v, what, self.path, line=self.i)
        if v < minimum or (maximum is not None and v > maximum):
            rng = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise self.error(f"expected {what} {rng}, found {v}", line=self.i)
        return v

    def number(self, what: str, *, lo: float = 0.0, hi: float | None = 1.0) -> float:
        s = self.raw(what).strip()
        try:
            v = float(s.replace(",", "."))
        except ValueError:
            raise self.error(f"expected {what} (a number), found {s!r}", line=self.i) from None
        if not math.isfinite(v) or v < lo or (hi is not None and v > hi):
            raise self.error(
                f"{what} must be {f'in [{lo}, {hi}]' if hi is not None else f'>= {lo}'}, found {s}",
                line=self.i,
            )
        return v

    def boolean(self, what: str) -> bool:
        s = self.raw(what).strip()
        head = s.split()[0] if s.split() else ""
        if head == "#TRUE#":
            return True
        if head == "#FALSE#":
            return False
        raise self.error(f"expected {what} (#TRUE# or #FALSE#), found {s!r}", line=self.i)




@dataclass
class _RawPerson:
    """A person of the persons block, genotypes as (allele, allele, locus) indices and their line."""

    name: str
    sex: str
    consider_dropout: bool
    typed: list[tuple[int, int, int, int]]
    line: int


def parse_fam(source: Source, *, filename: str | None = None) -> FamFile:
    """Parse a ``.fam`` file (a path or a file object; ``filename``: the name
    messages give it) into :class:`FamFile` (no interpretation)."""
    path = source_name(source, filename)
    lim = limits.current()
    text = read_text(source, path, lim=lim)
    limits.check_text(text, path, limits=lim)
    lines = text.splitlines()
    c = _Lines(lines, path)
    version = _read_header(c)
    raw_persons = _read_persons(c)
    known_extras, known_relations, all_names = _read_known_relations(c, [r.name for r in raw_persons])
    pedigrees = _read_pedigrees(c, all_names, lim)
    theta, db_name, loci = _read_database(c)
    persons = _resolve_genotypes(c, raw_persons, loci)
    ff = FamFile(version=version, persons=persons, known_extras=known_extras, known_relations=known_relations,
                 pedigrees=pedigrees, theta=theta, database_name=db_name, loci=loci)
    # -- the [DVI] section, if any
    rest = lines[c.i :]
    for off, s in enumerate(rest):
        if s.strip() == "[DVI]":
            parse_dvi(rest[off:], c.i + off + 1, ff, path)
            break
    return ff


def _read_header(c: _Lines) -> str:
    """The program, the comment, the version (returned) and the optional ``""``."""
    lines = c.lines
    if not lines or "familias" not in lines[0].lower():
        raise FileFormatError(
            "not a Familias file: the first line should read "
            f'"Output from Familias, version ...", found {lines[0][:60] if lines else ""!r}',
            path=c.path,
            line=1,
        )
    c.raw("the header")
    c.raw("the comment line")
    version = c.string("the Familias version")
    nxt = (c.peek() or "").strip()
    if not re.fullmatch(r"-?\d+", nxt):
        c.raw("an empty line")  # usually ""
    return version


def _read_persons(c: _Lines) -> list[_RawPerson]:
    """The persons block (genotypes as indices, resolved once the database is read)."""
    n_persons = c.integer("the number of persons")
    raw_persons: list[_RawPerson] = []
    for k in range(n_persons):
        start = c.lineno
        name = c.string(f"the name of person {k + 1}")
        if not name:
            raise c.error(f"person {k + 1} has an empty name", line=start, field="name")
        c.boolean(f"a flag of person {name}")
        drop_line = c.raw(f"the dropout flag of person {name}")
        consider = "Consider dropouts" in drop_line
        c.boolean(f"a flag of person {name}")
        male = c.boolean(f"the sex of person {name} (#TRUE# = male)")
        n_typed = c.integer(f"the number of typed markers of person {name}")
        typed: list[tuple[int, int, int, int]] = []
        for _ in range(n_typed):
            ln = c.lineno
            a1 = c.integer(f"an allele index of person {name}")
            a2 = c.integer(f"an allele index of person {name}")
            m = c.integer(f"a locus index of person {name}")
            typed.append((a1, a2, m, ln))
        raw_persons.append(_RawPerson(name, "M" if male else "F", consider, typed, start))
    dup = {n for n, k in Counter(r.name for r in raw_persons).items() if k > 1}
    if dup:
        raise FileFormatError(f"person name {sorted(dup)[0]!r} is used twice", path=c.path, field="persons")
    return raw_persons


def _read_relations(c: _Lines, count: int, who: list[str], where: str) -> list[tuple[str, str]]:
    """``count`` (parent, child) pairs of indices into ``who``, as names."""
    rels = []
    for _ in range(count):
        ln = c.lineno
        s = (c.peek() or "").strip()
        if "Direct" in s:
            raise c.error("twins (a 'Direct' relation) are not supported", field=where)
        par = c.integer(f"a parent index in {where}")
        chi = c.integer(f"a child index in {where}")
        for idx in (par, chi):
            if idx >= len(who):
                raise c.error(f"person index {idx} is out of range (0 to {len(who) - 1})", line=ln, field=where)
        if par == chi:
            raise c.error(f"{who[par]} is his or her own parent", line=ln, field=where)
        rels.append((who[par], who[chi]))
    return rels


def _read_known_relations(
    c: _Lines, names: list[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """The extra persons and the relations known in every pedigree; returns
    (extras as (name, sex), relations, every person's name)."""
    kr = c.string('"Known relations"')
    if kr != "Known relations":
        raise c.error(f'expected "Known relations", found {kr!r}', line=c.i)
    n_fem = c.integer("the number of extra females")
    n_mal = c.integer("the number of extra males")
    known_extras = [(f"Extra female {k + 1}", "F") for k in range(n_fem)]
    known_extras += [(f"Extra male {k + 1}", "M") for k in range(n_mal)]
    all_names = names + [n for n, _ in known_extras]
    n_rel = c.integer("the number of known relations")
    return known_extras, _read_relations(c, n_rel, all_names, "known relations"), all_names


def _read_pedigrees(c: _Lines, all_names: list[str], lim: limits.Limits) -> list[FamPedigree]:
    """The pedigrees (hypotheses): name, extra persons, relations."""
    n_ped = c.integer("the number of pedigrees")
    pedigrees: list[FamPedigree] = []
    for k in range(n_ped):
        start = c.lineno
        c.integer("the pedigree index")
        pname = c.string("the pedigree name") or f"Pedigree {k + 1}"
        e_fem = c.integer(f"the number of extra females of pedigree {pname}")
        e_mal = c.integer(f"the number of extra males of pedigree {pname}")
        # each pedigree lists every person and its extras: bounded before the lists are built
        limits.check_count((len(all_names) + e_fem + e_mal) * (n_ped + 1), "persons over all pedigrees", c.path,
                           line=c.i, limits=lim, limit_name="max_cells")
        extras = [(f"{pname} extra female {j + 1}", "F") for j in range(e_fem)]
        extras += [(f"{pname} extra male {j + 1}", "M") for j in range(e_mal)]
        who = all_names + [n for n, _ in extras]
        nr = c.integer(f"the number of relations of pedigree {pname}")
        rels = _read_relations(c, nr, who, f"pedigree {pname}")
        pedigrees.append(FamPedigree(pname, rels, extras, start))
    if len({pd.name for pd in pedigrees}) != len(pedigrees):
        raise FileFormatError("two pedigrees have the same name", path=c.path, field="pedigrees")
    return pedigrees


def _read_database(c: _Lines) -> tuple[float, str, list[FamLocus]]:
    """The database: theta, its name and the loci."""
    ln = c.lineno
    head = c.raw("the database header")
    if head.strip().startswith("#TRUE#"):
        raise c.error(
            "this file stores computed probabilities before the database; save it in Familias without results",
            line=ln,
        )
    if not head.strip().startswith("#FALSE#"):
        raise c.error(
            f"expected the database header '#FALSE# (#Databases: 1 ;Theta/Kinship/Fst: ...)', found {head!r}", line=ln
        )
    mt = _THETA.search(head)
    theta = 0.0
    if mt:
        try:
            theta = float(mt.group(1))
        except ValueError:
            raise c.error(f"theta {mt.group(1)!r} is not a number", line=ln, field="theta") from None
        if not (0.0 <= theta < 1.0):
            raise c.error(f"theta must be in [0, 1), found {theta}", line=ln, field="theta")
    n_loci = c.integer("the number of loci")
    has_info = c.boolean("the database-name flag")
    db_name = c.string("the database name") if has_info else ""
    loci = [_parse_locus(c) for _ in range(n_loci)]
    keys = [canonical_marker_name(loc.name) for loc in loci]
    for j, key in enumerate(keys):
        if key in keys[:j]:
            raise c.error(f"locus {loci[j].name} appears twice", line=loci[j].line, field="locus")
    return theta, db_name, loci


def _resolve_genotypes(c: _Lines, raw_persons: list[_RawPerson], loci: list[FamLocus]) -> list[FamPerson]:
    """The persons with their genotypes as allele labels of the database."""
    persons: list[FamPerson] = []
    for r in raw_persons:
        gts: dict[str, tuple[str, ...]] = {}
        for a1, a2, m, ln in r.typed:
            if m >= len(loci):
                raise c.error(f"person {r.name}: locus index {m} is out of range (0 to {len(loci) - 1})", line=ln)
            loc = loci[m]
            for a in (a1, a2):
                if a >= len(loc.alleles):
                    raise c.error(
                        f"person {r.name}, locus {loc.name}: allele index {a} is out of range "
                        f"(0 to {len(loc.alleles) - 1})",
                        line=ln,
                    )
            gts[loc.name] = (loc.alleles[a1], loc.alleles[a2])
        persons.append(FamPerson(r.name, r.sex, gts, r.consider_dropout, r.line))
    return persons


def _parse_locus(c: _Lines) -> FamLocus:
    start = c.lineno
    name = c.string("a locus name").strip()
    if not name:
        raise c.error("empty locus name", line=start, field="locus")
    rf = c.number(f"the female mutation rate of {name}")
    rm = c.number(f"the male mutation rate of {name}")
    code_f = c.integer(f"the female mutation model code (0-4) of {name}", maximum=4)
    code_m = c.integer(f"the male mutation model code (0-4) of {name}", maximum=4)
    n_with_silent = c.integer(f"the number of alleles of {name}")
    range_f = c.number(f"the female mutation range of {name}", hi=None)
    range_m = c.number(f"the male mutation range of {name}", hi=None)
    r2f = c.number(f"the female rate2 of {name}")
    r2m = c.number(f"the male rate2 of {name}")
    has_silent = c.boolean(f"the silent-allele flag of {name}")
    silent = c.number(f"the silent allele frequency of {name}")
    info_line = c.lineno
    info = c.raw(f"the allele count of {name}")
    first = info.split("\t")[0].split("(")[0].strip()
    try:
        n_alleles = int(first)
    except ValueError:
        raise c.error(f"expected the number of alleles of {name}, found {first!r}", line=info_line) from None
    if n_alleles < 1:
        raise c.error(f"locus {name} has no alleles", line=info_line)
    if n_alleles + (1 if has_silent else 0) != n_with_silent and n_alleles != n_with_silent:
        raise c.error(f"locus {name}: {n_alleles} alleles here but {n_with_silent} in the locus header", line=info_line)
    values: dict[str, float] = {}
    for key, rx in _INFO.items():
        mm = rx.search(info)
        if mm:
            try:
                values[key] = float(mm.group(1))
            except ValueError:
                raise c.error(f"{key} {mm.group(1)!r} is not a number", line=info_line, field=name) from None
            v = values[key]
            limit = 1e12 if key == "database_size" else 1.0
            if not math.isfinite(v) or not (0.0 <= v <= limit):
                raise c.error(f"{key} must be in [0, {limit:g}], found {mm.group(1)}", line=info_line, field=name)
    alleles: list[str] = []
    freqs: list[float] = []
    for _ in range(n_alleles):
        ln = c.lineno
        raw = c.string(f"an allele of {name}")
        label = normalise_allele(raw, allow_off_ladder=False)
        if label is None:
            label = raw.strip()
            if not label:
                raise c.error(f"locus {name}: empty allele", line=ln, field="allele")
        if label in alleles:
            raise c.error(f"locus {name}: allele {label} listed twice", line=ln, field="allele")
        alleles.append(label)
        freqs.append(c.number(f"the frequency of allele {label} of {name}"))
    dbs = values.get("database_size")
    return FamLocus(
        name=name,
        female=FamSexModel(code_f, rf, range_f, r2f),
        male=FamSexModel(code_m, rm, range_m, r2m),
        alleles=alleles,
        frequencies=freqs,
        has_silent=has_silent,
        silent_frequency=silent,
        database_size=int(dbs) if dbs and dbs > 0 else None,
        dropout=values.get("dropout", 0.0),
        maf=values.get("maf", 0.0),
        line=start,
    )
