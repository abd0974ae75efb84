"""Lineage markers (Y-STR, mtDNA) in the screening: two more columns of the table.

The kernel stays a gather-and-add. A remains' Y haplotype and its mtDNA
haplotype each get a code (the distinct haplotypes among the remains, code 0
for untyped), and a row of the table (one missing person) holds, per system,
the full ln LR of every such haplotype as that missing person
(``shared/design/lineage.md``; the numbers of
:func:`opendvi.dvi.lineage.lineage_pairwise`):

* Y: ``Σ_loci T_M[l][v_l] − ln f(h_V)``. ``T_M[l]`` is the per-locus table of
  :class:`opendvi.core.lineage_lr.YLineageTable` over the values seen among
  the remains at locus ``l`` (a lineage with one reference at the locus: a
  function of that reference's value and the number of links only, shared
  by every row with the same); the sum over loci is one NumPy gather over the
  distinct remains haplotypes. ``f(h_V)`` over the loci compared is one value
  per (remains haplotype, set of loci): counted once (a dictionary of the
  database's haplotypes projected on those loci).
* mtDNA by difference count: with the nearest maternal-line reference of the
  row, only haplotypes with at most one difference carry a finite LR. They
  are found through an index of "deletion neighbourhoods" (a haplotype's
  variant set and the sets with one variant removed: two haplotypes without
  heteroplasmy differ at <= 1 site only if they share such a key; keys as
  XORs of 64-bit hashes of the variants, a hit confirmed on the sets) and
  checked exactly; haplotypes with a heteroplasmy (or odd variants) are
  compared directly. Everything else is an exclusion (two or more
  differences).

The mismatches of each system (as ``lineage_pairwise`` counts them) are
kept beside, per row and remains haplotype, and read only for the kept
pairings.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Case, Family
from opendvi.core.errors import LikelihoodError
from opendvi.core.lineage import CaseLineage, YHaplotype, count_frequency
from opendvi.core.lineage_lr import mt_transmission, y_lineage_table
from opendvi.core.lineage_mt import (
    IUPAC,
    MtHaplotype,
    in_range,
    mt_differences,
    range_covers,
    range_intersection,
    range_length,
    rcrs,
)
from opendvi.core.lineage_tree import mt_lineage, nearest, y_lineage

FloatArray = NDArray[np.float64]
Spans = tuple[tuple[int, int], ...]

#: mismatches code for "two or more mtDNA differences, not counted yet"
MT_MANY = -1


def _default_base(site: tuple[int, int]) -> frozenset[str]:
    return IUPAC["-"] if site[1] > 0 else frozenset(rcrs()[site[0] - 1])


#: (site, base) -> whether that variant is plain (:func:`_plain`); a few thousand distinct variants
_PLAIN_VARIANT: dict[tuple[tuple[int, int], str], bool] = {}


def _plain(h: MtHaplotype) -> bool:
    """Every variant one base, other than the rCRS (or "no insertion"): then
    two haplotypes differ at a site exactly when their variants there differ."""
    for sb in h.sites.items():
        ok = _PLAIN_VARIANT.get(sb)
        if ok is None:
            s, b = sb
            bases = IUPAC.get(b)
            ok = _PLAIN_VARIANT[sb] = not (bases is None or len(bases) != 1 or bases & _default_base(s))
        if not ok:
            return False
    return True


def _tokens(h: MtHaplotype, spans: Spans) -> frozenset[tuple[tuple[int, int], str]]:
    if h.range == spans:  # every variant lies in the haplotype's range
        return frozenset(h.sites.items())
    return frozenset((s, b) for s, b in h.sites.items() if in_range(s[0], spans))


@dataclass
class LineageEncoding:
    """The lineage part of an encoded case (see the module docstring)."""

    lineage: CaseLineage
    y_loci: tuple[str, ...]
    #: per Y locus: the values seen among the remains (code c -> y_values[l][c - 1])
    y_values: list[list[tuple[str, ...]]]
    #: distinct remains Y haplotypes (code c -> y_haps[c - 1])
    y_haps: list[YHaplotype]
    #: (D_Y, n_loci) flat index into the per-locus vector of one row
    y_flat: NDArray[np.intp]
    y_loc_off: NDArray[np.intp]
    mt_haps: list[MtHaplotype]
    #: per Y locus: value -> code; (D_Y + 1, n_loci) value codes of each haplotype (row 0: untyped)
    y_value_code: list[dict[tuple[str, ...], int]]
    y_vcode: NDArray[np.int16]
    #: column offsets in a table row (-1: system absent)
    y_col: int
    mt_col: int
    width: int
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def systems(self) -> tuple[str, ...]:
        return tuple(s for s, c in (("Y", self.y_col), ("mt", self.mt_col)) if c >= 0)

    def __getstate__(self) -> dict[str, Any]:  # caches stay home (Dask)
        d = dict(self.__dict__)
        d["_cache"] = {}
        return d

    # -- frequencies -------------------------------------------------------

    def y_log_f(self, h: YHaplotype, loci: tuple[str, ...]) -> float:
        y = self.lineage.y
        assert y is not None
        db = y.database
        if db.estimator not in ("augmented-counting", "clopper-pearson"):
            return math.log(db.frequency(h, loci).frequency)
        got = self._cache.get("ydb")
        if got is None:  # the database as value codes (-1: untyped), one column per locus
            names = sorted({k for g in db.haplotypes for k in g})
            vcode: dict[str, dict[tuple[str, ...], int]] = {k: {} for k in names}
            mat = np.full((len(db.haplotypes), len(names)), -1, dtype=np.int32)
            for i, g in enumerate(db.haplotypes):
                for j, k in enumerate(names):
                    v = g.get(k)
                    if v is not None:
                        mat[i, j] = vcode[k].setdefault(v, len(vcode[k]))
            got = self._cache["ydb"] = ({k: j for j, k in enumerate(names)}, vcode, mat,
                                        np.asarray(db.counts, dtype=np.int64))
        col, vcode, mat, counts = got
        if any(k not in col for k in loci):
            x, n = 0, 0
        else:
            proj = self._cache.get(("ydbsub", loci))
            if proj is None:  # the database's columns of these loci, once per set of loci
                sub = mat[:, [col[k] for k in loci]]
                typed = (sub >= 0).all(axis=1)
                proj = self._cache[("ydbsub", loci)] = (sub, typed, int(counts[typed].sum()))
            sub, typed, n = proj
            want = np.array([vcode[k].get(h[k], -2) for k in loci], dtype=np.int32)
            x = int(counts[typed & (sub == want[None, :]).all(axis=1)].sum())
        return math.log(count_frequency(x, n, db.estimator))

    def mt_log_f(self, h: MtHaplotype, spans: Spans) -> float:
        mt = self.lineage.mt
        assert mt is not None
        db = mt.database
        key = ("mtcount", spans)
        got = self._cache.get(key)
        if got is None:
            cnt: Counter[frozenset[tuple[tuple[int, int], str]]] = Counter()
            odd: list[tuple[MtHaplotype, int]] = []
            n = 0
            for g, c in zip(db.haplotypes, db.counts, strict=True):
                if range_covers(g.range, spans):
                    n += c
                    if _plain(g):
                        cnt[_tokens(g, spans)] += c
                    else:
                        odd.append((g, c))
            got = self._cache[key] = (cnt, odd, n)
        cnt, odd, n = got
        if _plain(h):
            x = cnt.get(_tokens(h, spans), 0) + sum(c for g, c in odd if not mt_differences(g, h, spans))
        else:
            x = db.count(h, spans)[0]
        return math.log(count_frequency(x, n, db.estimator))

    # -- per row -----------------------------------------------------------

    def y_row(self, fam: Family, mp: str) -> tuple[FloatArray, NDArray[np.int16]]:
        """ln LR_Y of every remains Y haplotype (index 0: untyped) and, per Y
        locus, the code of the given reference's value among the remains'
        values there (-1: locus not compared; 0: a value no remains has)."""
        lin = self.lineage
        assert lin.y is not None
        D = len(self.y_haps)
        nl = len(self.y_loci)
        vals = np.zeros(D + 1)
        rootc = np.full(nl, -1, dtype=np.int16)
        if D == 0:
            return vals, rootc
        if fam.sex_of(mp) == "F":
            vals[1:] = -math.inf
            return vals, rootc
        dist = self._lineage_of(fam, mp, "Y")
        refs = {pid: h for pid in fam.pedigree.ids if pid in dist and pid != mp and (h := lin.y_of(pid))}
        db_loci = self._cache.get("ydbloci")
        if db_loci is None:
            db_loci = self._cache["ydbloci"] = set(lin.y.database.loci)
        typed_loci = {name for h in refs.values() for name in h}
        loci = tuple(m.name for m in lin.y.markers if m.name in db_loci and m.name in typed_loci)
        if not loci:  # no typed man on the line (YLineageTable's note), or nothing compared
            return vals, rootc
        # Per locus, the vector over the remains' values is a function of the typed men's values
        # there, their places in the pedigree and M's (memoised across rows); each entry is
        # YLineageTable's own (log_factor with one typed man, log_factors with several).
        ped = fam.pedigree
        shape = (ped.father.tobytes(), ped.sex, ped.index(mp))
        compared = set(loci)
        order = sorted(refs, key=lambda pid: (dist[pid], pid))  # nearest first
        todo: list[tuple[int, str, tuple[Any, ...], bool]] = []
        if len(refs) == 1:  # one typed man on the line (most rows): the keys at once
            (h1,) = refs.values()
            k1 = dist[order[0]]
            for li, name in enumerate(self.y_loci):
                if name in compared:
                    rootc[li] = self.y_value_code[li].get(h1[name], 0)
                    todo.append((li, name, ("yloc", li, h1[name], k1), True))
        for li, name in enumerate(self.y_loci) if len(refs) > 1 else ():
            if name not in compared:
                continue
            typed = [pid for pid in order if name in refs[pid]]
            root = typed[0]
            rv = refs[root][name]
            rootc[li] = self.y_value_code[li].get(rv, 0)
            one = len(typed) == 1
            key = (("yloc", li, rv, dist[root]) if one
                   else ("ymulti", li, shape, ped.index(root),
                         tuple((ped.index(u), refs[u][name]) for u in sorted(typed))))
            todo.append((li, name, key, one))
        # the row is a function of these keys: rows of families alike are computed once
        row_key = ("yrow", loci, tuple(key for _, _, key, _ in todo))
        hit = self._cache.get(row_key)
        if hit is not None:
            return hit[0].copy(), hit[1].copy()
        table = None
        vec = np.zeros(int(self.y_loc_off[-1]))
        for li, name, key, one in todo:
            values = self.y_values[li]
            if not values:
                continue
            got = self._cache.get(key)
            if got is None:
                if table is None:
                    table = y_lineage_table(ped, mp, refs, lin.y)
                got = np.array([table.log_factor(name, v) for v in values] if one else table.log_factors(name, values))
                self._cache[key] = got
            vec[self._y_slices[li]] = got
        vals[1:] = self._y_sum(vec) + self._y_fterm(loci)
        self._cache[row_key] = (vals.copy(), rootc.copy())
        return vals, rootc

    def _y_sum(self, vec: FloatArray) -> FloatArray:
        """``vec[y_flat].sum(axis=1)``: Σ_loci of each remains haplotype's entries. A haplotype with
        an entry -inf at some locus sums to -inf; the others (few: within reach of the line at every
        locus), found from the entries' finiteness, are summed as that sum does (the same rows of
        ``vec[y_flat]``, the same reduction, so the same bits)."""
        flat_t = self._cache.get("yflatT")
        if flat_t is None:
            flat_t = self._cache["yflatT"] = np.ascontiguousarray(self.y_flat.T)
        fin = np.isfinite(vec)
        if fin.all():
            out: FloatArray = vec[self.y_flat].sum(axis=1)
            return out
        idx = np.flatnonzero(fin[flat_t].all(axis=0))
        out = np.full(len(self.y_haps), -math.inf)
        if idx.size:
            out[idx] = vec[self.y_flat[idx]].sum(axis=1)
        return out

    @property
    def _y_slices(self) -> list[slice]:
        got = self._cache.get("yslices")
        if got is None:
            off = [int(x) for x in self.y_loc_off]
            got = self._cache["yslices"] = [slice(off[li] + 1, off[li + 1]) for li in range(len(self.y_loci))]
        out: list[slice] = got
        return out

    def _lineage_of(self, fam: Family, mp: str, system: str) -> dict[str, int]:
        """``y_lineage`` / ``mt_lineage`` of ``mp``, memoised by the pedigree's shape."""
        ped = fam.pedigree
        parent = ped.father if system == "Y" else ped.mother
        key = ("line", system, parent.tobytes(), ped.sex, ped.index(mp))
        got = self._cache.get(key)
        if got is None:  # by position in the pedigree (ids differ between families of one shape)
            line = (y_lineage if system == "Y" else mt_lineage)(ped, mp)
            got = self._cache[key] = tuple((ped.index(pid), d) for pid, d in line.items())
        return {ped.ids[i]: d for i, d in got}

    def y_mismatches(self, codes: NDArray[np.intp], rootc: NDArray[np.int16]) -> NDArray[np.int16]:
        """Y mismatches of remains haplotypes ``codes`` against rows with reference codes ``rootc``."""
        yv = self.y_vcode[codes]
        out: NDArray[np.int16] = ((rootc >= 0) & (yv != 0) & (yv != rootc)).sum(axis=1).astype(np.int16)
        return out

    def _y_fterm(self, loci: tuple[str, ...]) -> FloatArray:
        key = ("yf", loci)
        got = self._cache.get(key)
        if got is None:
            got = np.zeros(len(self.y_haps))
            for c, h in enumerate(self.y_haps):
                comp = tuple(name for name in loci if name in h)
                if comp:  # the same loci compared under another set of the rows' loci: counted once
                    lf = self._cache.get(("ylf", c, comp))
                    if lf is None:
                        lf = self._cache[("ylf", c, comp)] = self.y_log_f(h, comp)
                    got[c] = -lf
            self._cache[key] = got
        out: FloatArray = got
        return out

    def _mt_groups(self) -> list[tuple[Spans, NDArray[np.intp], list[int]]]:
        """Remains mt haplotypes by range: (range, codes - 1, the non-plain ones)."""
        got = self._cache.get("mtgroups")
        if got is None:
            by: dict[Spans, list[int]] = {}
            for c, h in enumerate(self.mt_haps):
                by.setdefault(h.range, []).append(c)
            got = [
                (rng, np.array(cs, dtype=np.intp), [c for c in cs if not _plain(self.mt_haps[c])])
                for rng, cs in by.items()
            ]
            self._cache["mtgroups"] = got
        out: list[tuple[Spans, NDArray[np.intp], list[int]]] = got
        return out

    def _hkeys(self, tokens: frozenset[tuple[tuple[int, int], str]]) -> list[int]:
        """The keys of the deletion neighbourhood (module docstring) as integers: the XOR of the
        tokens' 64-bit hashes, and that of each set with one token removed (equal sets, equal
        keys; a candidate found by them is checked exactly)."""
        ids = self._cache.setdefault("mttok", {})
        vals = []
        full = 0
        for t in tokens:
            v = ids.get(t)
            if v is None:
                v = ids[t] = int.from_bytes(hashlib.blake2b(repr(t).encode(), digest_size=8).digest(), "little")
            vals.append(v)
            full ^= v
        return [full, *(full ^ v for v in vals)]

    def _mt_index(self, rng: Spans, common: Spans, codes: NDArray[np.intp]) -> tuple[
            dict[int, list[int]], dict[int, frozenset[tuple[tuple[int, int], str]]]]:
        """The plain haplotypes of one range by their keys over ``common`` (:meth:`_hkeys`), and
        their tokens there."""
        key = ("mtindex", rng, common)
        got = self._cache.get(key)
        if got is None:
            index: dict[int, list[int]] = {}
            tokens: dict[int, frozenset[tuple[tuple[int, int], str]]] = {}
            for c in codes.tolist():
                h = self.mt_haps[c]
                if _plain(h):
                    tokens[c] = tk = _tokens(h, common)
                    for k in self._hkeys(tk):
                        index.setdefault(k, []).append(c)
            got = self._cache[key] = (index, tokens)
        out: tuple[dict[int, list[int]], dict[int, frozenset[tuple[tuple[int, int], str]]]] = got
        return out

    def mt_reference(self, fam: Family, mp: str) -> tuple[MtHaplotype, int] | None:
        """The nearest typed maternal-line reference of ``mp`` and its number of links."""
        lin = self.lineage
        dist = self._lineage_of(fam, mp, "mt")
        refs = {pid: h for pid in fam.pedigree.ids if pid in dist and pid != mp and (h := lin.mt_of(pid)) is not None}
        ref0 = nearest(dist, sorted(refs))
        return None if ref0 is None else (refs[ref0], dist[ref0])

    def mt_row(self, fam: Family, mp: str) -> tuple[FloatArray, NDArray[np.int16]]:
        """ln LR_mt and mt mismatches of every remains mt haplotype (index 0:
        untyped); mismatches ``MT_MANY`` where two or more (not counted)."""
        lin = self.lineage
        assert lin.mt is not None
        D = len(self.mt_haps)
        vals = np.zeros(D + 1)
        mm = np.zeros(D + 1, dtype=np.int16)
        got = self.mt_reference(fam, mp) if D else None
        if got is None:
            return vals, mm
        ref, k = got
        row_key = ("mtrow", ref.range, tuple(ref.sites.items()), k)  # the row is a function of these
        hit = self._cache.get(row_key)
        if hit is not None:
            return hit[0].copy(), hit[1].copy()
        rate = lin.mt.rate
        pkey = ("plain", row_key[2])
        ref_plain = self._cache.get(pkey)
        if ref_plain is None:
            ref_plain = self._cache[pkey] = _plain(ref)
        for rng, codes, odd in self._mt_groups():
            common = range_intersection(rng, ref.range)
            length = range_length(common)
            if length == 0:
                continue
            vals[codes + 1] = -math.inf
            mm[codes + 1] = MT_MANY
            if ref_plain:  # plain ones sharing a key with the reference, and the odd ones
                index, tokens = self._mt_index(rng, common, codes)
                tr = _tokens(ref, common)
                cand: set[int] = set(odd)
                for key in self._hkeys(tr):
                    for c in index.get(key, ()):
                        th = tokens[c]
                        if len(th - tr) <= 1 and len(tr - th) <= 1:
                            cand.add(c)
            else:
                cand = {int(c) for c in codes}
            for c in cand:
                h = self.mt_haps[c]
                d = len(mt_differences(h, ref, common))
                mm[c + 1] = d
                if d <= 1:
                    p = mt_transmission(d, k, rate, length)
                    if p == 0.0:
                        vals[c + 1] = -math.inf
                        continue
                    fkey = ("mtf", c, common)
                    lf = self._cache.get(fkey)
                    if lf is None:
                        lf = self._cache[fkey] = self.mt_log_f(h, common)
                    vals[c + 1] = math.log(p) - lf
        self._cache[row_key] = (vals.copy(), mm.copy())
        return vals, mm


def encode_lineage(case: Case, base: int) -> tuple[LineageEncoding, NDArray[np.int32]] | None:
    """The lineage encoding of ``case`` (columns from ``base`` on) and the
    remains' positions in those columns; None when the case has no lineage."""
    lin = case.lineage
    if lin is None or not lin.systems:
        return None
    nv = len(case.remains)
    cols: list[NDArray[np.int32]] = []
    width = 0
    y_loci: tuple[str, ...] = ()
    y_values: list[list[tuple[str, ...]]] = []
    y_haps: list[YHaplotype] = []
    y_flat = np.zeros((0, 0), dtype=np.intp)
    value_code: list[dict[tuple[str, ...], int]] = []
    y_vcode = np.zeros((1, 0), dtype=np.int16)
    loc_off = np.zeros(1, dtype=np.intp)
    y_col = mt_col = -1
    if lin.y is not None:
        y_loci = tuple(m.name for m in lin.y.markers)
        codes: dict[tuple[tuple[str, tuple[str, ...]], ...], int] = {}
        pos = np.zeros(nv, dtype=np.int32)
        for i, r in enumerate(case.remains):
            h = lin.y_of(r.id)
            if not h:
                continue
            key = tuple(sorted(h.items()))
            c = codes.get(key)
            if c is None:
                c = codes[key] = len(codes) + 1
                y_haps.append(h)
            pos[i] = c
        value_code = [{} for _ in y_loci]
        for h in y_haps:
            for li, name in enumerate(y_loci):
                v = h.get(name)
                if v is not None and v not in value_code[li]:
                    value_code[li][v] = len(value_code[li]) + 1
        y_values = [list(vc) for vc in value_code]
        loc_off = np.zeros(len(y_loci) + 1, dtype=np.intp)
        for li in range(len(y_loci)):
            loc_off[li + 1] = loc_off[li] + len(y_values[li]) + 1
        y_flat = np.zeros((len(y_haps), len(y_loci)), dtype=np.intp)
        for c, h in enumerate(y_haps):
            for li, name in enumerate(y_loci):
                v = h.get(name)
                y_flat[c, li] = loc_off[li] + (value_code[li][v] if v is not None else 0)
        y_vcode = np.zeros((len(y_haps) + 1, len(y_loci)), dtype=np.int16)
        y_vcode[1:] = y_flat - loc_off[None, :-1]
        y_col = base + width
        cols.append(pos + y_col)
        width += len(y_haps) + 1
    mt_haps: list[MtHaplotype] = []
    if lin.mt is not None:
        mcodes: dict[Any, int] = {}
        pos = np.zeros(nv, dtype=np.int32)
        for i, r in enumerate(case.remains):
            hm = lin.mt_of(r.id)
            if hm is None:
                continue
            mkey = (hm.range, tuple(sorted(hm.sites.items())))
            c = mcodes.get(mkey)
            if c is None:
                c = mcodes[mkey] = len(mcodes) + 1
                mt_haps.append(hm)
            pos[i] = c
        mt_col = base + width
        cols.append(pos + mt_col)
        width += len(mt_haps) + 1
    enc = LineageEncoding(
        lineage=lin, y_loci=y_loci, y_values=y_values, y_haps=y_haps, y_flat=y_flat, y_loc_off=loc_off,
        mt_haps=mt_haps, y_value_code=value_code, y_vcode=y_vcode, y_col=y_col, mt_col=mt_col, width=width,
    )
    return enc, np.stack(cols, axis=1).astype(np.int32)


def fill_lineage(le: LineageEncoding, families: Sequence[Family], row_family: NDArray[np.int64],
                 row_missing: Sequence[str], r0: int, r1: int, lt: FloatArray) -> tuple[
                     dict[str, NDArray[np.int16]], NDArray[np.bool_], list[str]]:
    """Write the lineage columns of rows ``r0 .. r1`` into ``lt``; return the
    mismatches per system (rows x haplotype codes), the rows whose family
    cannot be evaluated (paternal-line references impossible together) and notes."""
    R = r1 - r0
    mms: dict[str, NDArray[np.int16]] = {}
    if le.y_col >= 0:  # the reference's value code per locus (``y_mismatches``)
        mms["Y"] = np.zeros((R, len(le.y_loci)), dtype=np.int16)
    if le.mt_col >= 0:
        mms["mt"] = np.zeros((R, len(le.mt_haps) + 1), dtype=np.int16)
    skip = np.zeros(R, dtype=bool)
    notes: list[str] = []
    for k in range(R):
        fam = families[int(row_family[r0 + k])]
        mp = row_missing[r0 + k]
        if le.y_col >= 0:
            try:
                vals, mm = le.y_row(fam, mp)
            except LikelihoodError as exc:
                skip[k] = True
                notes.append(f"family {fam.id} is left out: {exc}")
                continue
            lt[k, le.y_col : le.y_col + len(vals)] = vals
            mms["Y"][k] = mm
        if le.mt_col >= 0:
            vals, mm = le.mt_row(fam, mp)
            lt[k, le.mt_col : le.mt_col + len(vals)] = vals
            mms["mt"][k] = mm
    return mms, skip, notes
