"""A pedigree drawn as SVG on the server (no JavaScript, no external library).

Squares are males, circles females, diamonds unknown sex; typed references
are filled grey, the missing person is outlined in red and, when a remains is
placed on it, labelled with the remains' barcode. Generations are rows:
founders at the top unless they married into a later generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Person:
    id: str
    father: str | None
    mother: str | None
    sex: str | None
    typed: bool = False
    missing: bool = False
    placed: str | None = None  # remains barcode placed on this (missing) person


def _generations(people: Sequence[Person]) -> dict[str, int]:
    by_id = {p.id: p for p in people}
    gen: dict[str, int] = {}

    def g(pid: str, depth: int = 0) -> int:
        if pid in gen:
            return gen[pid]
        p = by_id[pid]
        if depth > len(people) or not p.father or p.father not in by_id or not p.mother or p.mother not in by_id:
            gen[pid] = 0
        else:
            gen[pid] = max(g(p.father, depth + 1), g(p.mother, depth + 1)) + 1
        return gen[pid]

    for p in people:
        g(p.id)
    # founders married into a later generation move down to their spouse's row
    for _ in range(len(people)):
        changed = False
        for p in people:
            if p.father in by_id and p.mother in by_id and p.father and p.mother:
                a, b = p.father, p.mother
                want = max(gen[a], gen[b])
                for x in (a, b):
                    px = by_id[x]
                    is_founder = not (px.father and px.mother)
                    if is_founder and gen[x] < want:
                        gen[x] = want
                        changed = True
                if gen[p.id] <= want:
                    gen[p.id] = want + 1
                    changed = True
        if not changed:
            break
    return gen


def _with_spouses_adjacent(row: list[Person], people: Sequence[Person]) -> list[Person]:
    spouses: dict[str, list[str]] = {}
    for p in people:
        if p.father and p.mother:
            spouses.setdefault(p.father, []).append(p.mother)
            spouses.setdefault(p.mother, []).append(p.father)
    in_row = {p.id: p for p in row}
    out: list[Person] = []
    placed: set[str] = set()
    for p in row:
        if p.id in placed:
            continue
        group = [p.id]
        for s in spouses.get(p.id, []):
            if s in in_row and s not in placed and s not in group:
                group.append(s)
        # a person with two spouses goes in the middle
        if len(group) == 3:
            group = [group[1], group[0], group[2]]
        for pid in group:
            out.append(in_row[pid])
            placed.add(pid)
    return out


def pedigree_svg(people: Sequence[Person], *, title: str = "") -> str:
    """The SVG document (a string) of one pedigree."""
    size, gap_x, gap_y, margin = 34, 90, 95, 30
    gen = _generations(people)
    rows: dict[int, list[Person]] = {}
    for p in people:
        rows.setdefault(gen[p.id], []).append(p)
    # order each row: spouses next to each other, children under their parents
    pos: dict[str, tuple[float, float]] = {}
    width_n = max(len(r) for r in rows.values()) if rows else 1
    for level in sorted(rows):
        row = rows[level]
        if level > 0:
            def key(p: Person) -> float:
                xs = [pos[x][0] for x in (p.father, p.mother) if x and x in pos]
                return sum(xs) / len(xs) if xs else 1e9

            row.sort(key=key)
        row = _with_spouses_adjacent(row, people)
        offset = (width_n - len(row)) * gap_x / 2
        for i, p in enumerate(row):
            pos[p.id] = (margin + offset + i * gap_x + size / 2, margin + 20 + level * gap_y + size / 2)
    width = max(margin * 2 + width_n * gap_x, 470)
    height = margin * 2 + 20 + (max(rows) + 1 if rows else 1) * gap_y
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="pedigree {escape(title)}" '
        'font-family="sans-serif" font-size="11">'
    ]
    if title:
        out.append(f'<text x="{margin}" y="{margin - 8}" font-size="13" font-weight="bold">{escape(title)}</text>')
    half = size / 2
    # lines: parents' midpoint -> child
    drawn_couples: set[tuple[str, str]] = set()
    for p in people:
        if p.father in pos and p.mother in pos and p.father and p.mother:
            (fx, fy), (mx, my) = pos[p.father], pos[p.mother]
            if (p.father, p.mother) not in drawn_couples:
                drawn_couples.add((p.father, p.mother))
                out.append(f'<line x1="{fx:.1f}" y1="{fy:.1f}" x2="{mx:.1f}" y2="{my:.1f}" stroke="#444"/>')
            cx, cy = pos[p.id]
            midx, midy = (fx + mx) / 2, (fy + my) / 2
            bar = cy - half - 18
            out.append(
                f'<polyline points="{midx:.1f},{midy:.1f} {midx:.1f},{bar:.1f} {cx:.1f},{bar:.1f} '
                f'{cx:.1f},{cy - half:.1f}" fill="none" stroke="#444"/>'
            )
    for p in people:
        x, y = pos[p.id]
        fill = "#9a9a9a" if p.typed else ("#fde2e2" if p.placed else "#ffffff")
        stroke, sw = ("#c00", 3) if p.missing else ("#222", 1.5)
        attrs = f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"'
        if p.sex == "M":
            out.append(f'<rect x="{x - half:.1f}" y="{y - half:.1f}" width="{size}" height="{size}" {attrs}/>')
        elif p.sex == "F":
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{half:.1f}" {attrs}/>')
        else:
            out.append(
                f'<polygon points="{x:.1f},{y - half:.1f} {x + half:.1f},{y:.1f} {x:.1f},{y + half:.1f} '
                f'{x - half:.1f},{y:.1f}" {attrs}/>'
            )
        out.append(f'<text x="{x:.1f}" y="{y + half + 13:.1f}" text-anchor="middle">{escape(p.id)}</text>')
        if p.placed:
            out.append(
                f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-weight="bold" fill="#900">'
                f'{escape(p.placed)}</text>'
            )
        elif p.missing:
            out.append(f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" fill="#900">?</text>')
    legend_y = height - 10
    out.append(
        f'<text x="{margin}" y="{legend_y:.0f}" fill="#555">grey: typed reference · red outline: missing person'
        " · label inside: remains placed</text>"
    )
    out.append("</svg>")
    return "\n".join(out)
