"""A pedigree drawn as SVG on the server (no JavaScript, no external library).

Squares are males, circles females, diamonds unknown sex; typed references
are filled grey, the missing person is outlined in red and, when a remains is
placed on it, a red box under it holds the remains' barcode. Generations are
rows: founders at the top unless they married into a later generation.

Every label is fitted to its column (:func:`fit_text`): long codes wrap (at
``-``, ``_``, ``/``, ``.``, ``:`` or spaces where they can, anywhere if they
must) and shrink down to 8 px; nothing is cut off. Labels sit under the
symbols and partner lines join the symbols at their middle, so no line
crosses a label. A legend (typed reference, missing person, remains) closes
the drawing. The SVG scales to its container (``viewBox``, ``max-width:
100%``), for pages 800 px wide and for print.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from opendvi.i18n import gettext as _


@dataclass(frozen=True)
class Person:
    id: str
    father: str | None
    mother: str | None
    sex: str | None
    typed: bool = False
    missing: bool = False
    placed: str | None = None  # remains barcode placed on this (missing) person


#: geometry (px)
SIZE = 34  # a symbol
COLUMN = 112  # one person's column: labels never exceed COLUMN - 2 * PAD
PAD = 6
FONT = 11.0
MIN_FONT = 8.0
LINE = 1.25  # line height, in font sizes
MARGIN = 16

_NARROW = set("iljtfrI1.,:;'|!()[] ")
_WIDE = set("MWmw@%#&")


def text_width(text: str, size: float) -> float:
    """A generous estimate of ``text``'s width in a sans-serif font of ``size`` px (DejaVu Sans,
    the widest of the common ones; capitals and digits 0.7 em)."""
    w = 0.0
    for ch in text:
        if ch in _NARROW:
            w += 0.36
        elif ch in _WIDE:
            w += 0.92
        elif ch.isupper() or ch.isdigit():
            w += 0.72
        else:
            w += 0.62
    return w * size


def _break(text: str, width: float, size: float) -> list[str]:
    """Greedy lines of at most ``width``: after a separator where possible, else anywhere."""
    lines: list[str] = []
    rest = text
    while rest:
        if text_width(rest, size) <= width:
            lines.append(rest)
            break
        # the longest prefix that fits
        n = 1
        while n < len(rest) and text_width(rest[: n + 1], size) <= width:
            n += 1
        cut = n
        for i in range(n, 0, -1):
            if rest[i - 1] in "-_/.: ":
                cut = i
                break
        lines.append(rest[:cut].rstrip() or rest[:cut])
        rest = rest[cut:].lstrip()
    return lines or [""]


def fit_text(text: str, width: float, *, size: float = FONT, max_lines: int = 2) -> tuple[list[str], float]:
    """``(lines, font size)`` that set ``text`` within ``width``: one line at ``size`` if it fits,
    else wrapped into at most ``max_lines`` at the largest size from ``size`` down to 8 px, else
    as many lines as needed at 8 px. Every line fits (:func:`text_width`)."""
    s = size
    while s >= MIN_FONT:
        lines = _break(text, width, s)
        if len(lines) <= max_lines:
            return lines, s
        s -= 0.5
    return _break(text, width, MIN_FONT), MIN_FONT


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
    for _round in range(len(people)):
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


def _tspans(lines: list[str], x: float, y: float, size: float) -> str:
    """``<tspan>`` lines from baseline ``y`` down."""
    return "".join(f'<tspan x="{x:.1f}" y="{y + i * size * LINE:.1f}">{escape(t)}</tspan>'
                   for i, t in enumerate(lines))


def _symbol(x: float, y: float, sex: str | None, attrs: str, half: float) -> str:
    if sex == "M":
        return f'<rect x="{x - half:.1f}" y="{y - half:.1f}" width="{2 * half:.1f}" height="{2 * half:.1f}" {attrs}/>'
    if sex == "F":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{half:.1f}" {attrs}/>'
    return (f'<polygon points="{x:.1f},{y - half:.1f} {x + half:.1f},{y:.1f} {x:.1f},{y + half:.1f} '
            f'{x - half:.1f},{y:.1f}" {attrs}/>')


def pedigree_svg(people: Sequence[Person], *, title: str = "") -> str:
    """The SVG document (a string) of one pedigree."""
    half = SIZE / 2
    inner = COLUMN - 2 * PAD
    gen = _generations(people)
    rows: dict[int, list[Person]] = {}
    for p in people:
        rows.setdefault(gen[p.id], []).append(p)
    levels = sorted(rows)
    width_n = max((len(r) for r in rows.values()), default=1)
    width = max(MARGIN * 2 + width_n * COLUMN, 360)
    # labels first: a row is as tall as its tallest label block
    labels: dict[str, tuple[list[str], float]] = {p.id: fit_text(p.id, inner) for p in people}
    boxes: dict[str, tuple[list[str], float]] = {p.id: fit_text(p.placed, inner - 8, max_lines=3)
                                                 for p in people if p.placed}

    def below(p: Person) -> float:
        """Height under the symbol taken by the label (and the remains' box)."""
        lines, s = labels[p.id]
        h = 4 + len(lines) * s * LINE
        if p.id in boxes:
            blines, bs = boxes[p.id]
            h += 6 + len(blines) * bs * LINE + 8
        return h

    out_title: list[str] = []
    top: float = MARGIN
    if title:
        tlines, ts = fit_text(title, width - 2 * MARGIN, size=13, max_lines=3)
        out_title.append(f'<text x="{MARGIN}" font-size="{ts:g}" font-weight="bold">'
                         f'{_tspans(tlines, MARGIN, top + ts, ts)}</text>')
        top += len(tlines) * ts * LINE + 6
    row_y: dict[int, float] = {}
    y = top + 24  # room for the children's bar above the first row's symbols (none there) and air
    for level in levels:
        row_y[level] = y + half
        y += SIZE + max(below(p) for p in rows[level]) + 34  # 34: the bar to the next row and air
    pos: dict[str, tuple[float, float]] = {}
    for level in levels:
        row = rows[level]
        if level > levels[0]:
            def key(p: Person) -> float:
                xs = [pos[x][0] for x in (p.father, p.mother) if x and x in pos]
                return sum(xs) / len(xs) if xs else 1e9

            row.sort(key=key)
        row = _with_spouses_adjacent(row, people)
        offset = (width_n - len(row)) * COLUMN / 2 + (width - MARGIN * 2 - width_n * COLUMN) / 2
        for i, p in enumerate(row):
            pos[p.id] = (MARGIN + offset + i * COLUMN + COLUMN / 2, row_y[level])
    legend_top = y - 10
    legend_items = [
        ("typed", _("typed reference")),
        ("missing", _("missing person")),
        ("remains", _("remains placed on the missing person")),
    ]
    # the legend: items side by side, wrapping to the next line when the width is used up
    legend: list[str] = []
    lx, ly = float(MARGIN), legend_top + 10
    for kind, label in legend_items:
        lines, s = fit_text(label, width - 2 * MARGIN - 24, size=10, max_lines=2)
        w = 20 + max(text_width(t, s) for t in lines) + 18
        if lx > MARGIN and lx + w > width - MARGIN:
            lx, ly = float(MARGIN), ly + 26
        if kind == "typed":
            legend.append(f'<rect x="{lx:.1f}" y="{ly:.1f}" width="14" height="14" fill="#9a9a9a" stroke="#222"/>')
        elif kind == "missing":
            legend.append(f'<rect x="{lx:.1f}" y="{ly:.1f}" width="14" height="14" fill="#fff" stroke="#c00" '
                          'stroke-width="3"/>')
        else:
            legend.append(f'<rect x="{lx:.1f}" y="{ly + 2:.1f}" width="16" height="10" rx="2" fill="#fde2e2" '
                          'stroke="#900"/>')
        legend.append(f'<text font-size="{s:g}" fill="#333">{_tspans(lines, lx + 20, ly + 11, s)}</text>')
        lx += w
    height = ly + 30
    aria = _("Pedigree: %(title)s", title=title) if title else _("Pedigree")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(aria)}" '
        'style="max-width:100%;height:auto" font-family="DejaVu Sans, Verdana, sans-serif" '
        f'font-size="{FONT:g}">',
        f"<title>{escape(aria)}</title>",
        *out_title,
    ]
    # lines: partners joined at the symbols' middle; from the partners' midpoint down to a bar above
    # the children (below every label of the parents' row), then down to each child
    drawn_couples: set[tuple[str, str]] = set()
    for p in people:
        if p.father in pos and p.mother in pos and p.father and p.mother:
            (fx, fy), (mx, my) = pos[p.father], pos[p.mother]
            if (p.father, p.mother) not in drawn_couples:
                drawn_couples.add((p.father, p.mother))
                a, b = sorted((fx, mx))
                out.append(f'<line x1="{a + half:.1f}" y1="{fy:.1f}" x2="{b - half:.1f}" y2="{my:.1f}" '
                           'stroke="#444"/>')
            cx, cy = pos[p.id]
            midx, midy = (fx + mx) / 2, (fy + my) / 2
            bar = cy - half - 16
            out.append(
                f'<polyline points="{midx:.1f},{midy:.1f} {midx:.1f},{bar:.1f} {cx:.1f},{bar:.1f} '
                f'{cx:.1f},{cy - half:.1f}" fill="none" stroke="#444"/>'
            )
    for p in people:
        x, y0 = pos[p.id]
        fill = "#9a9a9a" if p.typed else ("#fde2e2" if p.placed else "#ffffff")
        stroke, sw = ("#c00", 3) if p.missing else ("#222", 1.5)
        out.append(_symbol(x, y0, p.sex, f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"', half))
        if p.missing and not p.placed:
            out.append(f'<text x="{x:.1f}" y="{y0 + 4:.1f}" text-anchor="middle" fill="#900">?</text>')
        lines, s = labels[p.id]
        base = y0 + half + 4 + s
        out.append(f'<text text-anchor="middle" font-size="{s:g}">{_tspans(lines, x, base, s)}</text>')
        if p.placed:
            blines, bs = boxes[p.id]
            btop = y0 + half + 4 + len(lines) * s * LINE + 4
            bw = max(text_width(t, bs) for t in blines) + 8
            bh = len(blines) * bs * LINE + 6
            out.append(f'<rect x="{x - bw / 2:.1f}" y="{btop:.1f}" width="{bw:.1f}" height="{bh:.1f}" rx="3" '
                       'fill="#fde2e2" stroke="#900"/>')
            out.append(f'<text text-anchor="middle" font-size="{bs:g}" font-weight="bold" fill="#900">'
                       f'{_tspans(blines, x, btop + 2 + bs, bs)}</text>')
    out.extend(legend)
    out.append("</svg>")
    assert not math.isnan(height)
    return "\n".join(out)
