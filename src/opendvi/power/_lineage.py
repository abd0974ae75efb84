"""Lineage markers (Y-STR, mtDNA) in power planning (``docs/power.md``, "Lineage markers").

Per system, the distribution of log10 LR_system of the true missing person M,
as :func:`opendvi.core.lineage_lr.y_lineage_lr` / ``mt_lineage_lr`` compute
the LR of a remains with M's haplotype (``shared/design/lineage.md``), given
what is typed on M's line now (the baseline) or after typing candidates on
the line. The systems are independent of the autosomal markers and of each
other given the pedigree, so each system is one more independent term of
the total log10 LR (:class:`LineagePower`, atoms like a marker's).

* The line's haplotype: the typed references of the line; with none, the
  first candidate on the line carries a haplotype drawn from the case's
  haplotype database (each haplotype with its count / N; a haplotype not in
  the database cannot be drawn).
* Y: per locus, the value of each further candidate and then of M is drawn
  from its exact conditional distribution given every value on the line so
  far, ``exp(YLineageTable.log_factors)`` (the engine's peeling, single-step
  kernel, founder approximation), over the window a walk from the nearest
  typed man can reach; the numerator of M's LR is the probability of M's
  values given the line, as the engine computes it, and f(h_M) is the
  database's estimate over the loci compared. Exact enumeration of every
  outcome (weights, no sampling) where the outcomes are at most
  :data:`MAX_EXACT` (always when the rates are 0); otherwise ``nsim`` seeded draws.
* mtDNA: M carries the line's haplotype (no mutation is simulated: the
  k-link model of ``lineage.md`` is not a per-link kernel), so
  LR_mt = (1 − μ)^k / f(h) with k the links to the nearest typed person of
  the line: one atom given a typed reference, and the database's
  distribution of h (exact) when a candidate is the first on the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Case, Family
from opendvi.core.lineage import CaseLineage, YHaplotype, YSystem, y_step
from opendvi.core.lineage_lr import mt_transmission, y_lineage_table
from opendvi.core.lineage_mt import MtHaplotype, range_length
from opendvi.core.lineage_tree import mt_lineage, nearest, y_lineage
from opendvi.power._distribution import PowerError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Largest number of outcomes enumerated exactly (else seeded simulation).
MAX_EXACT = 200_000
#: Draws of the Y simulation (``PowerSettings.lineage_nsim``).
DEFAULT_LINEAGE_NSIM = 20_000
LN10 = math.log(10.0)


@dataclass
class LineagePower:
    """One lineage system's term of the total log10 LR of the true missing person.

    ``atoms_p`` / ``atoms_l``: probabilities and log10 LRs of the distinct
    outcomes; ``reference``: whose haplotype the line's comes from (the
    nearest typed member of the line, or the candidate that would be);
    ``links`` from it to M; ``candidates``: the candidates on this line;
    ``method``: "exact" or "simulation" (``nsim`` draws, ``seed``)."""

    system: str
    reference: str
    links: int
    atoms_p: FloatArray
    atoms_l: FloatArray
    method: str = "exact"
    candidates: tuple[str, ...] = ()
    nsim: int | None = None
    seed: int | None = None

    @property
    def e_log10_lr(self) -> float:
        return math.fsum(self.atoms_p * self.atoms_l)

    @property
    def var_log10_lr(self) -> float:
        m = self.e_log10_lr
        return max(0.0, math.fsum(self.atoms_p * (self.atoms_l - m) ** 2))

    @property
    def e_lr(self) -> float:
        return math.fsum(self.atoms_p * np.power(10.0, self.atoms_l))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reference": self.reference, "links": self.links, "candidates": list(self.candidates),
            "e_log10_lr": self.e_log10_lr, "sd_log10_lr": math.sqrt(self.var_log10_lr), "e_lr": self.e_lr,
            "n_outcomes": len(self.atoms_p), "method": self.method,
        }
        if self.method == "simulation":
            out["nsim"] = self.nsim
            out["seed"] = self.seed
        return out


def _atoms(weights: FloatArray, log10_lr: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Equal values merged; probabilities sum to 1."""
    vals, inv = np.unique(log10_lr, return_inverse=True)
    p = np.bincount(inv.ravel(), weights=weights, minlength=len(vals))
    return p / p.sum(), vals.astype(float)


def lineage_power(case: Case, fam: Family, missing: str, candidates: Sequence[str] = (), *,
                  nsim: int = DEFAULT_LINEAGE_NSIM, seed: int = 1) -> list[LineagePower]:
    """The lineage terms (Y, then mt) of ``missing`` with ``candidates`` typed
    (their Y if on M's paternal line, their mtDNA if on M's maternal line);
    a system without anyone typed or to type on M's line gives no term."""
    lin = case.lineage
    if lin is None:
        return []
    out = []
    if lin.y is not None:
        y = _y_power(lin, lin.y, fam, missing, candidates, nsim=nsim, seed=seed)
        if y is not None:
            out.append(y)
    if lin.mt is not None:
        mt = _mt_power(lin, fam, missing, candidates)
        if mt is not None:
            out.append(mt)
    return out


# ---------------------------------------------------------------------------
# mtDNA
# ---------------------------------------------------------------------------


def _mt_power(lin: CaseLineage, fam: Family, mp: str, candidates: Sequence[str]) -> LineagePower | None:
    assert lin.mt is not None
    ped = fam.pedigree
    dist = mt_lineage(ped, mp)
    refs = {pid: h for pid in ped.ids if pid in dist and pid != mp and (h := lin.mt_of(pid)) is not None}
    new = tuple(c for c in candidates if c in dist and c != mp)
    ref0 = nearest(dist, sorted({*refs, *new}))
    if ref0 is None:
        return None
    k = dist[ref0]
    rate, db = lin.mt.rate, lin.mt.database
    if refs:  # the line's haplotype is known: M carries it
        h = refs[nearest(dist, sorted(refs)) or ""]
        lines: list[tuple[MtHaplotype, float]] = [(h, 1.0)]
    else:  # a candidate is the first on the line: the line's haplotype from the database
        if db.size == 0:
            raise PowerError("mt: the haplotype database is empty; the lineage power needs one")
        lines = [(h, c / db.size) for h, c in zip(db.haplotypes, db.counts, strict=True)]
    w = np.array([p for _, p in lines])
    ll = np.array([
        (math.log(mt_transmission(0, k, rate, range_length(h.range))) - math.log(db.frequency(h, h.range).frequency))
        / LN10 for h, _ in lines
    ])
    p, lv = _atoms(w, ll)
    return LineagePower("mt", ref0, k, p, lv, candidates=new)


# ---------------------------------------------------------------------------
# Y
# ---------------------------------------------------------------------------


class _TooMany(Exception):
    pass


def _window(value: tuple[str, ...], k: int) -> list[tuple[str, ...]]:
    """Every value a walk of at most ``k`` single steps per copy reaches from ``value`` (sorted copies)."""
    per_copy = []
    for t in value:
        reach = {t}
        for s in range(-k, k + 1):
            moved = y_step(t, s) if s else t
            if moved is not None:
                reach.add(moved)
        per_copy.append(sorted(reach))
    out: set[tuple[str, ...]] = set()
    for combo in np.array(np.meshgrid(*per_copy, indexing="ij"), dtype=object).reshape(len(value), -1).T:
        out.add(tuple(sorted(combo, key=_token_key)))
    return sorted(out, key=lambda v: tuple(_token_key(t) for t in v))


def _token_key(t: str) -> tuple[int, float]:
    return (1, 0.0) if t == "null" else (0, float(t))


class _YLine:
    """Conditional distributions of one locus's values on M's paternal line (memoised)."""

    def __init__(self, fam: Family, system: YSystem, refs: dict[str, YHaplotype]):
        self.fam, self.system, self.refs = fam, system, refs
        self.memo: dict[tuple[Any, ...], tuple[list[tuple[str, ...]], FloatArray]] = {}

    def conditional(self, locus: str, who: str, given: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[
            list[tuple[str, ...]], FloatArray]:
        """The values of ``who`` at ``locus`` with positive probability given the
        references' values there and ``given`` ((person, value) pairs), and those probabilities."""
        key = (locus, who, given)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        obs = {pid: {locus: h[locus]} for pid, h in self.refs.items() if locus in h}
        obs.update({pid: {locus: v} for pid, v in given})
        table = y_lineage_table(self.fam.pedigree, who, obs, self.system)
        root = table.root(locus)
        values = _window(obs[root][locus], table.dist[root])
        logs = np.array(table.log_factors(locus, values))
        keep = np.isfinite(logs)
        probs = np.exp(logs[keep])
        total = float(probs.sum())
        if abs(total - 1.0) > 1e-9:  # the window holds every value of positive probability
            raise PowerError(f"Y locus {locus}: the values reachable from the line sum to {total!r}, not 1")
        got = ([v for v, ok in zip(values, keep, strict=True) if ok], probs)
        self.memo[key] = got
        return got


def _y_power(lin: CaseLineage, system: YSystem, fam: Family, mp: str, candidates: Sequence[str], *,
             nsim: int, seed: int) -> LineagePower | None:
    ped = fam.pedigree
    dist = y_lineage(ped, mp)  # empty for a female M
    refs = {pid: h for pid in ped.ids if pid in dist and pid != mp and (h := lin.y_of(pid))}
    new = tuple(c for c in candidates if c in dist and c != mp)
    if not refs and not new:
        return None
    db = system.database
    db_loci = set(db.loci)
    loci = tuple(m.name for m in system.markers if m.name in db_loci)
    if refs:  # compared: the loci typed on the line (M and the candidates are typed with the kit)
        loci = tuple(name for name in loci if any(name in h for h in refs.values()))
    if not loci:
        return None
    reference = nearest(dist, sorted({*refs, *new}))
    assert reference is not None
    line = _YLine(fam, system, refs)
    try:
        return _y_run(line, loci, refs, new, mp, dist, reference, exact=True, nsim=nsim, seed=seed)
    except _TooMany:
        return _y_run(line, loci, refs, new, mp, dist, reference, exact=False, nsim=nsim, seed=seed)


def _y_run(line: _YLine, loci: tuple[str, ...], refs: dict[str, YHaplotype],
           new: tuple[str, ...], mp: str, dist: dict[str, int], reference: str, *, exact: bool, nsim: int,
           seed: int) -> LineagePower:
    """Enumerate (``exact``) or draw the values of the candidates and M, locus by locus."""
    db = line.system.database
    rng = np.random.default_rng(seed)
    nl = len(loci)
    vocab: list[list[tuple[str, ...]]] = [[] for _ in loci]
    codes: list[dict[tuple[str, ...], int]] = [{} for _ in loci]

    def code(li: int, v: tuple[str, ...]) -> int:
        c = codes[li].get(v)
        if c is None:
            c = codes[li][v] = len(vocab[li])
            vocab[li].append(v)
        return c

    people = [*new, mp]
    first = 0
    if refs:
        weights = np.ones(1) if exact else np.full(nsim, 1.0 / nsim)
        cols = {p: np.full((len(weights), nl), -1, dtype=np.int64) for p in people}
    else:  # the first candidate carries a database haplotype (typed at every locus compared)
        rows = [(h, c) for h, c in zip(db.haplotypes, db.counts, strict=True) if all(k in h for k in loci)]
        if not rows:
            raise PowerError("Y: no database haplotype is typed at the loci compared")
        cnt = np.array([c for _, c in rows], dtype=float)
        pick = np.arange(len(rows)) if exact else rng.choice(len(rows), size=nsim, p=cnt / cnt.sum())
        weights = cnt / cnt.sum() if exact else np.full(nsim, 1.0 / nsim)
        cols = {p: np.full((len(weights), nl), -1, dtype=np.int64) for p in people}
        table = np.array([[code(li, h[name]) for li, name in enumerate(loci)] for h, _ in rows], dtype=np.int64)
        cols[new[0]] = table[pick]
        first = 1
    lognum = np.zeros(len(weights))
    for li, name in enumerate(loci):
        for j in range(first, len(people)):
            who = people[j]
            before = people[:j]
            keys = (np.stack([cols[p][:, li] for p in before], axis=1) if before
                    else np.zeros((len(weights), 0), dtype=np.int64))
            uniq, inv = np.unique(keys, axis=0, return_inverse=True)
            inv = inv.ravel()
            parts: list[tuple[IntArray, IntArray, FloatArray]] = []  # (particle, value code, probability)
            for g, key in enumerate(uniq):
                given = tuple((p, vocab[li][int(c)]) for p, c in zip(before, key, strict=True))
                values, probs = line.conditional(name, who, given)
                vc = np.array([code(li, v) for v in values], dtype=np.int64)
                idx = np.nonzero(inv == g)[0]
                if exact:
                    parts.append((np.repeat(idx, len(vc)), np.tile(vc, len(idx)), np.tile(probs, len(idx))))
                else:
                    d = rng.choice(len(vc), size=len(idx), p=probs)
                    parts.append((idx, vc[d], probs[d]))
            part = np.concatenate([a for a, _, _ in parts])
            val = np.concatenate([b for _, b, _ in parts])
            prob = np.concatenate([c for _, _, c in parts])
            if exact:
                if len(part) > MAX_EXACT:
                    raise _TooMany
                cols = {p: a[part] for p, a in cols.items()}
                weights = weights[part] * prob
                lognum = lognum[part]
            else:
                order = np.argsort(part, kind="stable")
                part, val, prob = part[order], val[order], prob[order]
            cols[who][:, li] = val
            if who == mp:
                lognum = lognum + np.log(prob)
    # f(h_M) over the loci compared, once per distinct haplotype of M
    hm, inv = np.unique(cols[mp], axis=0, return_inverse=True)
    log_f = np.array([
        math.log(db.frequency({name: vocab[li][int(row[li])] for li, name in enumerate(loci)}, loci).frequency)
        for row in hm
    ])
    log10_lr = (lognum - log_f[inv.ravel()]) / LN10
    p, lv = _atoms(weights, log10_lr)
    return LineagePower("Y", reference, dist[reference], p, lv, method="exact" if exact else "simulation",
                        candidates=new, nsim=None if exact else nsim, seed=None if exact else seed)
