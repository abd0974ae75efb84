"""pedtools-style pedigree text: whitespace-separated ``[famid] id fid mid
sex`` (0 = no parent; sex 1 male, 2 female) and a "a/b" column per marker.
"""

from __future__ import annotations

import re
from pathlib import Path

from opendvi.core.case import Case, Family
from opendvi.core.errors import FileFormatError, OpenDVIError
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.core.profiles import Genotype
from opendvi.io import limits
from opendvi.io.normalise import header_key, is_marker_name, marker_name, normalise_allele, parse_bool, parse_sex
from opendvi.io.source import Source, read_text, source_name


def read_ped(
    source: Source, *, missing_prefix: str | None = None, filename: str | None = None
) -> tuple[list[Family], list[str]]:
    """Read pedtools-style text: ``[famid] id fid mid sex`` + "a/b" marker
    columns, whitespace- or tab-separated, with a header line. An optional
    ``missing`` column (yes/no) marks missing persons; without it, untyped
    persons whose id matches the regular expression ``missing_prefix`` (at
    the start) are missing. Returns families and
    the marker names (opendvi spelling). ``filename``: the name messages give
    a stream."""
    p = source_name(source, filename)
    lim = limits.current()
    text = read_text(source, p, lim=lim)
    # cells: tabs counted; runs of spaces (aligned columns) are not cells, and each row is checked below
    limits.check_text(text, p, delimiter="\t" if "\t" in text else None, limits=lim)
    lines = [
        (k, ln) for k, ln in enumerate(text.splitlines(), start=1) if ln.strip() and not ln.lstrip().startswith("#")
    ]
    if not lines:
        raise FileFormatError("empty file", path=p)
    split = (lambda s: s.split("\t")) if "\t" in lines[0][1] else (lambda s: s.split())
    header = [h.strip() for h in split(lines[0][1])]
    limits.check_row(len(header), p, lines[0][0], lim)
    keys = [header_key(h) for h in header]
    base = ["id", "fid", "mid", "sex"]
    off = 1 if keys[:1] in (["famid"], ["fam"], ["family"]) else 0
    if keys[off : off + 4] != base:
        raise FileFormatError(
            f"expected the columns [famid] id fid mid sex, found {' '.join(header[:5])}",
            path=p,
            line=lines[0][0],
            field="header",
        )
    rest = header[off + 4 :]
    i_missing = None
    markers: list[tuple[int, str]] = []
    for j, h in enumerate(rest, start=off + 4):
        if header_key(h) == "missing":
            i_missing = j
        elif is_marker_name(h) or h:
            if not is_marker_name(h):
                raise FileFormatError(
                    f"unknown column {h!r}: not a marker name", path=p, line=lines[0][0], field=h
                )
            markers.append((j, marker_name(h)))
    fams: dict[str, tuple[list[Individual], list[str], dict[str, dict[str, Genotype]]]] = {}
    for ln, raw in lines[1:]:
        cells = [c.strip() for c in split(raw)]
        if len(cells) != len(header):
            raise FileFormatError(f"expected {len(header)} fields, found {len(cells)}", path=p, line=ln)
        fid = cells[0] if off else (Path(p).stem or "1")
        pid, fa, mo, sx = cells[off : off + 4]
        try:
            sex = parse_sex(sx, allow_unknown=False)
        except ValueError as exc:
            raise FileFormatError(str(exc), path=p, line=ln, field="sex") from None
        people, miss, gts = fams.setdefault(fid, ([], [], {}))
        people.append(
            Individual(pid, None if fa in ("0", "NA", "") else fa, None if mo in ("0", "NA", "") else mo, sex)
        )
        g: dict[str, Genotype] = {}
        for j, m in markers:
            c = cells[j]
            if c in ("-/-", "", "NA", "0/0", "-", "NA/NA"):
                continue
            parts = [x for x in re.split(r"[/,]", c)]
            if len(parts) != 2:
                raise FileFormatError(f"genotype {c!r} is not 'a/b'", path=p, line=ln, field=m)
            al = [normalise_allele(x, allow_off_ladder=False) for x in parts]
            if any(a is None for a in al):
                raise FileFormatError(f"genotype {c!r}: not STR alleles", path=p, line=ln, field=m)
            g[m] = (str(al[0]), str(al[1]))
        if g:
            gts[pid] = g
        is_missing = False
        if i_missing is not None:
            try:
                is_missing = parse_bool(cells[i_missing])
            except ValueError as exc:
                raise FileFormatError(str(exc), path=p, line=ln, field="missing") from None
        elif missing_prefix and not g and re.match(missing_prefix, pid):
            is_missing = True
        if is_missing:
            if g:
                raise FileFormatError(f"missing person {pid} is typed", path=p, line=ln)
            miss.append(pid)
    out: list[Family] = []
    for fid, (people, miss, gts) in fams.items():
        try:
            ped = Pedigree(people, where=f"family {fid}")
        except OpenDVIError as exc:
            raise FileFormatError(str(exc), path=p) from None
        out.append(Family(id=fid, pedigree=ped, genotypes=gts, missing=tuple(miss)))
    return out, [m for _, m in markers]


def ped_text(case: Case) -> str:
    markers = [m.name for m in case.markers]
    lines = ["\t".join(["famid", "id", "fid", "mid", "sex", "missing", *markers])]
    for f in case.families:
        for ind in f.pedigree.individuals:
            g = f.genotypes.get(ind.id, {})
            lines.append(
                "\t".join(
                    [
                        f.id,
                        ind.id,
                        ind.father or "0",
                        ind.mother or "0",
                        "1" if ind.sex == "M" else "2",
                        "yes" if ind.id in f.missing else "no",
                        *["/".join(g[m]) if m in g else "-/-" for m in markers],
                    ]
                )
            )
    return "\n".join(lines) + "\n"

