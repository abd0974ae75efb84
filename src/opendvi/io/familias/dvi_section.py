"""The ``[DVI]`` section of a ``.fam`` file: INI-like, nesting by the
number of brackets, with the unidentified persons and the reference
families."""

from __future__ import annotations

from dataclasses import dataclass, field

from opendvi.core.errors import FileFormatError
from opendvi.core.markers import canonical_marker_name
from opendvi.io import limits
from opendvi.io.familias.model import FamDVIFamily, FamFile, FamLocus, FamPedigree, FamPerson
from opendvi.io.normalise import normalise_allele


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


def parse_dvi(lines: list[str], first_line: int, ff: FamFile, path: str) -> None:
    """Read the ``[DVI]`` section (``lines`` from its first line, numbered
    from ``first_line``) into ``ff``: its unidentified persons and reference families."""
    dvi = _sections(lines, first_line, path).child("DVI")
    if dvi is None:  # pragma: no cover - the caller found it
        return
    by_key = {canonical_marker_name(loc.name): loc for loc in ff.loci}
    un = dvi.child("Unidentified persons")
    if un is not None:
        ff.unidentified = [_person(ch, by_key, path) for ch in un.children if ch.name.startswith("Person")]
    refs = dvi.child("Reference Families")
    if refs is not None:
        fams = [_family(fn, by_key, path) for fn in refs.children if fn.name.startswith("Family")]
        declared_f = refs.value("nFamilies")
        if declared_f is not None and declared_f.isdigit() and int(declared_f) != len(fams):
            raise FileFormatError(f"nFamilies says {declared_f}, found {len(fams)} families", path=path, line=refs.line)
        ff.families = fams
    if ff.unidentified is None and ff.families is None:
        ff.unidentified = []


def _sections(lines: list[str], first_line: int, path: str) -> _Node:
    """The tree of sections (nesting by the number of brackets) and their ``Key= value`` entries."""
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
    return root


def _person(node: _Node, by_key: dict[str, FamLocus], path: str) -> FamPerson:
    """A person section: name, gender and the ``DNA data`` subsection."""
    name = node.value("Name")
    if not name:
        raise FileFormatError("person without a Name", path=path, line=node.line, field=node.name)
    gender = (node.value("Gender") or "").strip().lower()
    sex = "M" if gender == "male" else "F" if gender == "female" else None
    dna = node.child("DNA data")
    gts = _dna_data(dna, name, by_key, path) if dna is not None else {}
    return FamPerson(name, sex, gts, False, node.line)


def _dna_data(dna: _Node, name: str, by_key: dict[str, FamLocus], path: str) -> dict[str, tuple[str, ...]]:
    """The genotypes of a ``DNA data`` section: ``SystemName`` then its ``Allele1``/``Allele2``."""
    gts: dict[str, tuple[str, ...]] = {}
    current: str | None = None
    alleles: list[str] = []

    def flush(at: int) -> None:
        if current is None:
            return
        loc = by_key.get(canonical_marker_name(current))
        if loc is None:
            raise FileFormatError(f"person {name}: marker {current!r} is not in the database", path=path, line=at,
                                  field="SystemName")
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
            alleles.append(v if label is None else label)
    flush(at)
    declared = dna.value("nSystems")
    if declared is not None:
        try:
            nsys = int(declared)
        except ValueError:
            raise FileFormatError(f"nSystems {declared!r} is not an integer", path=path, line=dna.line) from None
        n_found = sum(1 for k, _, _ in dna.entries if k == "SystemName")
        if nsys != n_found:
            raise FileFormatError(f"person {name}: nSystems says {nsys} markers, found {n_found}", path=path,
                                  line=dna.line)
    return gts


def _family(fn: _Node, by_key: dict[str, FamLocus], path: str) -> FamDVIFamily:
    """A reference family section: its persons and its pedigrees."""
    fname = fn.value("Name") or fn.name
    pnode = fn.child("Persons")
    persons = [_person(ch, by_key, path) for ch in pnode.children] if pnode is not None else []
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
            raise FileFormatError(f"family {fname}: nRelations says {declared}, found {len(rels)}", path=path,
                                  line=pd.line)
        peds.append(FamPedigree(pd.value("Name") or pd.name, rels, [], pd.line))
    return FamDVIFamily(fname, persons, peds, fn.line)
