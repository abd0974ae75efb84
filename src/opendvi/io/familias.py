"""Familias 3 ``.fam`` files: read into a case, write a case back.

A ``.fam`` file is positional: one value per line, strings in double quotes,
booleans as ``#TRUE#``/``#FALSE#``. Its parts, in order (``docs/file-formats.md``
gives every line):

1. a header (program, a comment, the version, an optional ``""``);
2. the persons: name, flags, sex, and genotypes as 0-based allele and locus
   indices into the database;
3. ``"Known relations"``: extra females and males, parent-child pairs
   (0-based person indices);
4. the pedigrees (hypotheses): name, extra persons, parent-child pairs;
5. the database: theta, then per locus the mutation model of each sex by
   Familias' code, rates, ranges, rate2, silent allele, database size,
   dropout, minor allele frequency and the allele frequencies;
6. optionally a ``[DVI]`` section (INI-like, nesting by the number of
   brackets) with the unidentified persons and the reference families.

Familias' mutation model codes: 0 equal, 1 proportional, 2 stepwise
(unstationary), 3 stepwise stationary, 4 extended stepwise (stepwise with
``rate2`` for integer <-> microvariant steps). opendvi reads 2 and 4 as
``stepwise`` (with the file's ``rate2``) and 3 as ``stepwise`` with
``"transform": "stationary"``, as pedFamilias does.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.markers import FREQ_SUM_TOL, Marker, canonical_marker_name
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype
from opendvi.io import limits
from opendvi.io.normalise import marker_name, normalise_allele, read_text, write_text_atomic

#: Familias' mutation model codes.
MODEL_CODES = {0: "equal", 1: "proportional", 2: "stepwise", 3: "stepwise-stationary", 4: "extended-stepwise"}
#: Names of reference persons taken as missing persons (dvir's convention).
MISSING_PREFIX = "Missing"
_THETA = re.compile(r"Theta/Kinship/Fst:\s*([-+0-9.eE]+)")
_INFO = {
    "database_size": re.compile(r"DatabaseSize\s*=\s*([-+0-9.eE]+)"),
    "dropout": re.compile(r"Dropout probability\s*=\s*([-+0-9.eE]+)"),
    "maf": re.compile(r"Minor allele frequency\s*=\s*([-+0-9.eE]+)"),
}


# ---------------------------------------------------------------------------
# the file as it is
# ---------------------------------------------------------------------------


@dataclass
class FamSexModel:
    """The mutation parameters of one sex at one locus, as in the file."""

    code: int
    rate: float
    range: float
    rate2: float


@dataclass
class FamLocus:
    name: str
    female: FamSexModel
    male: FamSexModel
    alleles: list[str]
    frequencies: list[float]
    has_silent: bool = False
    silent_frequency: float = 0.0
    database_size: int | None = None
    dropout: float = 0.0
    maf: float = 0.0
    line: int = 0


@dataclass
class FamPerson:
    name: str
    sex: str | None
    genotypes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    consider_dropout: bool = False
    line: int = 0


@dataclass
class FamPedigree:
    name: str
    relations: list[tuple[str, str]]  # (parent, child) by name
    extras: list[tuple[str, str]] = field(default_factory=list)  # (name, sex)
    line: int = 0


@dataclass
class FamDVIFamily:
    name: str
    persons: list[FamPerson]
    pedigrees: list[FamPedigree]
    line: int = 0


@dataclass
class FamFile:
    """A ``.fam`` file parsed, before any interpretation."""

    version: str
    persons: list[FamPerson]
    known_extras: list[tuple[str, str]]
    known_relations: list[tuple[str, str]]
    pedigrees: list[FamPedigree]
    theta: float
    database_name: str
    loci: list[FamLocus]
    unidentified: list[FamPerson] | None = None
    families: list[FamDVIFamily] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def has_dvi(self) -> bool:
        return self.families is not None or self.unidentified is not None


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------


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


def parse_fam(path: str | Path) -> FamFile:
    """Parse a ``.fam`` file into :class:`FamFile` (no interpretation)."""
    p = Path(path)
    lim = limits.current()
    limits.check_file(p, lim)
    text = read_text(p)
    limits.check_text(text, p, limits=lim)
    lines = text.splitlines()
    c = _Lines(lines, str(p))
    if not lines or "familias" not in lines[0].lower():
        raise FileFormatError(
            "not a Familias file: the first line should read "
            f'"Output from Familias, version ...", found {lines[0][:60] if lines else ""!r}',
            path=str(p),
            line=1,
        )
    c.raw("the header")
    c.raw("the comment line")
    version = c.string("the Familias version")
    nxt = (c.peek() or "").strip()
    if not re.fullmatch(r"-?\d+", nxt):
        c.raw("an empty line")  # usually ""
    n_persons = c.integer("the number of persons")

    # -- persons (genotypes as indices, resolved once the database is read)
    raw_persons: list[tuple[str, str | None, bool, list[tuple[int, int, int, int]], int]] = []
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
        triples: list[tuple[int, int, int, int]] = []
        for _ in range(n_typed):
            ln = c.lineno
            a1 = c.integer(f"an allele index of person {name}")
            a2 = c.integer(f"an allele index of person {name}")
            m = c.integer(f"a locus index of person {name}")
            triples.append((a1, a2, m, ln))
        raw_persons.append((name, "M" if male else "F", consider, triples, start))
    names = [r[0] for r in raw_persons]
    dup = {n for n, k in Counter(names).items() if k > 1}
    if dup:
        raise FileFormatError(f"person name {sorted(dup)[0]!r} is used twice", path=str(p), field="persons")

    # -- known relations
    kr = c.string('"Known relations"')
    if kr != "Known relations":
        raise c.error(f'expected "Known relations", found {kr!r}', line=c.i)
    n_fem = c.integer("the number of extra females")
    n_mal = c.integer("the number of extra males")
    sexes: list[str | None] = [r[1] for r in raw_persons]
    all_names = list(names)
    known_extras: list[tuple[str, str]] = []
    for k in range(n_fem):
        known_extras.append((f"Extra female {k + 1}", "F"))
    for k in range(n_mal):
        known_extras.append((f"Extra male {k + 1}", "M"))
    all_names += [n for n, _ in known_extras]
    sexes += [s for _, s in known_extras]

    def relations(count: int, who: list[str], where: str) -> list[tuple[str, str]]:
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

    n_rel = c.integer("the number of known relations")
    known_relations = relations(n_rel, all_names, "known relations")
    n_ped = c.integer("the number of pedigrees")
    pedigrees: list[FamPedigree] = []
    for k in range(n_ped):
        start = c.lineno
        c.integer("the pedigree index")
        pname = c.string("the pedigree name") or f"Pedigree {k + 1}"
        e_fem = c.integer(f"the number of extra females of pedigree {pname}")
        e_mal = c.integer(f"the number of extra males of pedigree {pname}")
        # each pedigree lists every person and its extras: bounded before the lists are built
        limits.check_count((len(all_names) + e_fem + e_mal) * (n_ped + 1), "persons over all pedigrees", p,
                           line=c.i, limits=lim, limit_name="max_cells")
        extras = [(f"{pname} extra female {j + 1}", "F") for j in range(e_fem)]
        extras += [(f"{pname} extra male {j + 1}", "M") for j in range(e_mal)]
        who = all_names + [n for n, _ in extras]
        nr = c.integer(f"the number of relations of pedigree {pname}")
        rels = relations(nr, who, f"pedigree {pname}")
        pedigrees.append(FamPedigree(pname, rels, extras, start))
    if len({pd.name for pd in pedigrees}) != len(pedigrees):
        raise FileFormatError("two pedigrees have the same name", path=str(p), field="pedigrees")

    # -- database
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
    loci: list[FamLocus] = []
    for _ in range(n_loci):
        loci.append(_parse_locus(c))
    keys = [canonical_marker_name(loc.name) for loc in loci]
    for j, key in enumerate(keys):
        if key in keys[:j]:
            raise c.error(f"locus {loci[j].name} appears twice", line=loci[j].line, field="locus")

    # -- resolve genotypes of the persons block
    persons: list[FamPerson] = []
    for name, sex, consider, triples, start in raw_persons:
        gts: dict[str, tuple[str, ...]] = {}
        for a1, a2, m, ln2 in triples:
            if m >= len(loci):
                raise c.error(f"person {name}: locus index {m} is out of range (0 to {len(loci) - 1})", line=ln2)
            loc = loci[m]
            for a in (a1, a2):
                if a >= len(loc.alleles):
                    raise c.error(
                        f"person {name}, locus {loc.name}: allele index {a} is out of range "
                        f"(0 to {len(loc.alleles) - 1})",
                        line=ln2,
                    )
            gts[loc.name] = (loc.alleles[a1], loc.alleles[a2])
        persons.append(FamPerson(name, sex, gts, consider, start))

    ff = FamFile(
        version=version,
        persons=persons,
        known_extras=known_extras,
        known_relations=known_relations,
        pedigrees=pedigrees,
        theta=theta,
        database_name=db_name,
        loci=loci,
    )
    # -- the [DVI] section, if any
    rest = lines[c.i :]
    for off, s in enumerate(rest):
        if s.strip() == "[DVI]":
            _parse_dvi(rest[off:], c.i + off + 1, ff, str(p))
            break
    return ff


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


@dataclass
class _Node:
    name: str
    depth: int
    line: int
    entries: list[tuple[str, str, int]] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)

    def child(self, name: str) -> _Node | None:
        for ch in self.children:
            if ch.name == name:
                return ch
        return None

    def value(self, key: str) -> str | None:
        for k, v, _ in self.entries:
            if k == key:
                return v
        return None


def _parse_dvi(lines: list[str], first_line: int, ff: FamFile, path: str) -> None:
    root = _Node("", 0, first_line)
    stack = [root]
    for off, raw in enumerate(lines):
        ln = first_line + off
        s = raw.strip()
        if not s:
            continue
        if s.startswith("["):
            depth = len(s) - len(s.lstrip("["))
            limits.check_count(depth, "section levels", path, line=ln, limit_name="max_depth")
            name = s.strip("[]").strip()
            if depth > len(stack):
                raise FileFormatError(f"section {s!r} is nested too deep", path=path, line=ln)
            node = _Node(name, depth, ln)
            del stack[depth:]
            stack[-1].children.append(node)
            stack.append(node)
            continue
        key, sep, value = s.partition("=")
        if not sep:
            raise FileFormatError(f"expected 'Key= value', found {s!r}", path=path, line=ln)
        stack[-1].entries.append((key.strip(), value.strip(), ln))
    dvi = root.child("DVI")
    if dvi is None:  # pragma: no cover - the caller found it
        return
    by_key = {canonical_marker_name(loc.name): loc for loc in ff.loci}

    def person(node: _Node) -> FamPerson:
        name = node.value("Name")
        if not name:
            raise FileFormatError("person without a Name", path=path, line=node.line, field=node.name)
        gender = (node.value("Gender") or "").strip().lower()
        sex = "M" if gender == "male" else "F" if gender == "female" else None
        gts: dict[str, tuple[str, ...]] = {}
        dna = node.child("DNA data")
        if dna is not None:
            current: str | None = None
            alleles: list[str] = []
            declared = dna.value("nSystems")

            def flush(at: int) -> None:
                if current is None:
                    return
                loc = by_key.get(canonical_marker_name(current))
                if loc is None:
                    raise FileFormatError(
                        f"person {name}: marker {current!r} is not in the database",
                        path=path,
                        line=at,
                        field="SystemName",
                    )
                labels = [a for a in alleles if a]
                if labels:
                    gts[loc.name] = tuple(labels)

            at = dna.line
            for k, v, ln in dna.entries:
                if k == "SystemName":
                    flush(at)
                    current, alleles, at = v, [], ln
                elif k in ("Allele1", "Allele2"):
                    if current is None:
                        raise FileFormatError(f"{k} before any SystemName", path=path, line=ln)
                    label = normalise_allele(v, allow_off_ladder=False) if v else ""
                    if label is None:
                        label = v
                    alleles.append(label)
            flush(at)
            if declared is not None:
                try:
                    nsys = int(declared)
                except ValueError:
                    raise FileFormatError(
                        f"nSystems {declared!r} is not an integer", path=path, line=dna.line
                    ) from None
                n_found = sum(1 for k, _, _ in dna.entries if k == "SystemName")
                if nsys != n_found:
                    raise FileFormatError(
                        f"person {name}: nSystems says {nsys} markers, found {n_found}", path=path, line=dna.line
                    )
        return FamPerson(name, sex, gts, False, node.line)

    un = dvi.child("Unidentified persons")
    if un is not None:
        ff.unidentified = [person(ch) for ch in un.children if ch.name.startswith("Person")]
    refs = dvi.child("Reference Families")
    if refs is not None:
        fams: list[FamDVIFamily] = []
        for fn in refs.children:
            if not fn.name.startswith("Family"):
                continue
            fname = fn.value("Name") or fn.name
            pnode = fn.child("Persons")
            persons = [person(ch) for ch in pnode.children] if pnode is not None else []
            peds: list[FamPedigree] = []
            dnode = fn.child("Pedigrees")
            for pd in dnode.children if dnode is not None else []:
                rels: list[tuple[str, str]] = []
                parent: str | None = None
                for k, v, ln in pd.entries:
                    if k == "Parent":
                        parent = v
                    elif k == "Child":
                        if parent is None:
                            raise FileFormatError("Child without a Parent before it", path=path, line=ln)
                        rels.append((parent, v))
                        parent = None
                declared = pd.value("nRelations")
                if declared is not None and declared.isdigit() and int(declared) != len(rels):
                    raise FileFormatError(
                        f"family {fname}: nRelations says {declared}, found {len(rels)}", path=path, line=pd.line
                    )
                peds.append(FamPedigree(pd.value("Name") or pd.name, rels, [], pd.line))
            fams.append(FamDVIFamily(fname, persons, peds, fn.line))
        declared_f = refs.value("nFamilies")
        if declared_f is not None and declared_f.isdigit() and int(declared_f) != len(fams):
            raise FileFormatError(f"nFamilies says {declared_f}, found {len(fams)} families", path=path, line=refs.line)
        ff.families = fams
    if ff.unidentified is None and ff.families is None:
        ff.unidentified = []


# ---------------------------------------------------------------------------
# interpretation: FamFile -> Case
# ---------------------------------------------------------------------------


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
    from opendvi.io.case_json import case_from_dict, case_to_dict

    try:
        case_from_dict(case_to_dict(case), path=path)
    except FileFormatError as exc:
        raise FileFormatError(exc.reason, path=path, field=exc.field) from None


def read_fam(
    path: str | Path,
    *,
    name: str | None = None,
    missing_prefix: str = MISSING_PREFIX,
    chromosome: str = "autosomal",
) -> tuple[Case, list[str]]:
    """Read a Familias ``.fam`` file into a case; returns ``(case, notes)``."""
    ff = parse_fam(path)
    return fam_to_case(ff, path=str(path), name=name, missing_prefix=missing_prefix, chromosome=chromosome)


# ---------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------


def _num(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def _code_and_params(
    model: MutationModel | None, marker: Marker, sex: str, path: str
) -> tuple[int, float, float, float]:
    """(code, rate, range, rate2) for one sex."""
    if model is None or model.model == "trivial":
        return 0, 0.0, 0.1, 0.0
    if model.model in ("equal", "proportional"):
        if model.transform:
            raise FileFormatError(
                f"the {sex} {model.model} model with a stationary transform has no Familias code",
                path=path,
                field=marker.name,
            )
        return (0 if model.model == "equal" else 1), model.rate, 0.1, 0.0
    if model.model == "stepwise":
        if model.transform == "stationary":
            return 3, model.rate, model.range, model.rate2
        return (4 if model.rate2 > 0 else 2), model.rate, model.range, model.rate2
    raise FileFormatError(
        f"the {sex} mutation model {model.model!r} cannot be written to a .fam file (Familias has equal, "
        "proportional and stepwise models)",
        path=path,
        field=marker.name,
    )


def case_to_fam_text(
    case: Case, *, path: str = "", missing_prefix: str = MISSING_PREFIX, notes: list[str] | None = None
) -> str:
    """The ``.fam`` text of a case: the database, then a ``[DVI]`` section
    with the remains as unidentified persons and each family as a reference
    family (its pedigree written twice, as "Reference pedigree" and under the
    family's name, as Familias does)."""
    notes = notes if notes is not None else []
    out: list[str] = [
        '"Output from Familias, version 3.3.1"',
        '"(Written by opendvi)"',
        "3.3.1 (DVI)",
        '""',
        "0",
        '"Known relations"',
        "0",
        "0",
        "0",
        "0",
        f"#FALSE# (#Databases: 1 ;Theta/Kinship/Fst: {_num(case.theta)} )",
        str(len(case.markers)),
        "#TRUE#",
        '"opendvi"',
    ]
    for m in case.markers:
        if m.is_x:
            raise FileFormatError(
                f"marker {m.name} is X-chromosomal; a .fam file cannot say so", path=path, field=m.name
            )
        cf, rf, gf, r2f = _code_and_params(m.female, m, "female", path)
        cm, rm, gm, r2m = _code_and_params(m.male, m, "male", path)
        out += [
            f'"{m.name}"',
            _num(rf),
            _num(rm),
            str(cf),
            str(cm),
            str(m.n_alleles),
            _num(gf),
            _num(gm),
            _num(r2f),
            _num(r2m),
        ]
        out += ["#FALSE#", "0"]
        out.append(
            f"{m.n_alleles}\t(DatabaseSize = {m.database_size or 0} , Dropout probability = 0 , "
            "Minor allele frequency = 0 )"
        )
        for a, freq in zip(m.alleles, m.frequencies, strict=True):
            out += [f'"{a}"', repr(float(freq))]
    out.append("")

    def check_name(n: str, what: str) -> None:
        if not n or n != n.strip() or "\n" in n or "=" in n or n.startswith("["):
            raise FileFormatError(f"{what} {n!r} cannot be written to a .fam file", path=path)

    def dna(gts: dict[str, Genotype] | object, depth: int) -> list[str]:
        assert isinstance(gts, dict)
        lines = ["[" * depth + "DNA data" + "]" * depth, f"nSystems= {len(gts)}"]
        for mname, gt in gts.items():
            a1 = gt[0]
            a2 = gt[1] if len(gt) > 1 else ""
            lines += [f"SystemName= {mname}", f"Allele1= {a1}", f"Allele2= {a2}"]
        return lines

    def gender(sex: str | None) -> str:
        return "Male" if sex == "M" else "Female" if sex == "F" else "Unknown"

    out += ["[DVI]", "[[Unidentified persons]]", f"nPersons= {len(case.remains)}"]
    for k, r in enumerate(case.remains, start=1):
        check_name(r.id, "remains id")
        if r.dropout:
            notes.append(f"{path}: remains {r.id}: dropout {r.dropout:g} is not written (no place for it in .fam)")
        out += [f"[[[Person {k} ]]]", f"Name= {r.id}", f"Gender= {gender(r.sex)}"]
        out += dna(dict(r.genotypes), 4)
    out += ["", "[[Reference Families]]", f"nFamilies= {len(case.families)}"]
    for k, f in enumerate(case.families, start=1):
        check_name(f.id, "family id")
        rename: dict[str, str] = {}
        for pid in f.pedigree.ids:
            check_name(pid, "member id")
            if pid in f.missing and not pid.lower().startswith(missing_prefix.lower()):
                rename[pid] = f"{missing_prefix} {pid}"
                notes.append(
                    f"{path}: family {f.id}: missing person {pid} written as {rename[pid]!r} "
                    "(Familias DVI marks missing persons by name)"
                )
            elif pid not in f.missing and not f.genotypes.get(pid) and pid.lower().startswith(missing_prefix.lower()):
                raise FileFormatError(
                    f"family {f.id}: member {pid} is not missing but its name begins with {missing_prefix!r}",
                    path=path,
                )
            else:
                rename[pid] = pid
            if f.dropout.get(pid):
                notes.append(f"{path}: family {f.id}, member {pid}: dropout is not written (no place for it in .fam)")
        out += [f"[[[Family {k} ]]]", f"Name= {f.id}", "[[[[Persons]]]]", f"nPersons= {len(f.pedigree)}"]
        for j, ind in enumerate(f.pedigree.individuals, start=1):
            out += [f"[[[[[Person {j}]]]]]", f"Name= {rename[ind.id]}", f"Gender= {gender(ind.sex)}"]
            out += dna(dict(f.genotypes.get(ind.id, {})), 6)
        rels: list[str] = []
        for ind in f.pedigree.individuals:
            for par in (ind.father, ind.mother):
                if par is not None:
                    rels += [f"Parent= {rename[par]}", f"Child= {rename[ind.id]}"]
        out += ["[[[[Pedigrees]]]]", "nPedigrees= 2"]
        for j, pname in enumerate(("Reference pedigree", f.id), start=1):
            out += [f"[[[[[Pedigree {j}]]]]]", f"Name= {pname}", f"nRelations= {len(rels) // 2}", *rels]
    if case.pairings:
        notes.append(f"{path}: pairings are not written (no place for them in .fam)")
    out.append("")
    return "\r\n".join(out)


def write_fam(case: Case, path: str | Path, *, notes: list[str] | None = None) -> None:
    """Write a case as a Familias ``.fam`` file (atomically)."""
    text = case_to_fam_text(case, path=str(path), notes=notes)
    write_text_atomic(path, text)
