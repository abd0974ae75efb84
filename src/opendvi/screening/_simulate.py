"""Simulated national cases: many families, many remains, known truth.

Families follow the reference shapes of large operations (about 2 to 3 typed
relatives per missing person: parents, children with their other parent,
full and half siblings, grandparents, uncles and aunts), plus a few families
with two missing persons. Genotypes are dropped down each pedigree (NumPy,
batched by shape) with the markers' mutation models; founders are
Hardy-Weinberg. The remains are a mix of true missing persons, people in no
family, and second fragments of the same person; part of them are partial
(allelic and locus dropout, with the dropout probability recorded).

Default markers: the 23 autosomal STRs of PowerPlex Fusion 6C with norSTR
EuropaDB_v2023 frequencies and stepwise mutation (female 0.001, male 0.002),
as bundled with the demo case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi.core.case import Case, Family, Sample
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Individual, Pedigree, missing_person_family
from opendvi.core.profiles import Genotype
from opendvi.core.simulate import SimulationTruth

R = "R"  # placeholder: a typed reference

#: (weight, relations of missing_person_family); "R" marks typed references.
FAMILY_SHAPES: tuple[tuple[float, Mapping[str, object]], ...] = (
    (0.16, {"father": R, "mother": R}),
    (0.12, {"mother": R, "full_sibling": [R]}),
    (0.07, {"father": R, "full_sibling": [R]}),
    (0.08, {"full_sibling": [R, R]}),
    (0.05, {"mother": R, "full_sibling": [R, R]}),
    (0.07, {"child": [R], "spouse": R}),
    (0.05, {"child": [R, R], "spouse": R}),
    (0.04, {"child": [R, R]}),
    (0.04, {"paternal_half_sibling": [R], "paternal_uncle": [R]}),
    (0.03, {"maternal_half_sibling": [R], "full_sibling": [R]}),
    (0.04, {"maternal_grandfather": R, "maternal_grandmother": R, "maternal_uncle": [R]}),
    (0.03, {"paternal_grandfather": R, "paternal_grandmother": R}),
    (0.03, {"paternal_uncle": [R], "maternal_uncle": [R], "full_sibling": [R]}),
    (0.05, {"mother": R}),
    (0.03, {"father": R}),
    (0.02, {"full_sibling": [R]}),
    (0.02, {"child": [R], "mother": R}),
)
#: Share of families with two missing brothers (parents and a sister typed).
TWO_BROTHERS = 0.015
#: Share of families with a missing father and a missing son (three generations).
FATHER_AND_SON = 0.002


def default_markers() -> tuple[Marker, ...]:
    """The 23 autosomal STRs of PowerPlex Fusion 6C (norSTR EuropaDB_v2023,
    stepwise mutation female 0.001 / male 0.002), from the bundled demo case."""
    from opendvi.data import demo_case_path
    from opendvi.io.case_json import read_case

    return read_case(demo_case_path()).markers


class _Shape:
    """One pedigree shape: individuals with placeholder ids, typed and missing members."""

    def __init__(self, ped: Pedigree, typed: Sequence[str], missing: Sequence[str]) -> None:
        self.ped = ped
        self.typed = list(typed)
        self.missing = list(missing)
        self.order = list(ped.topological_order)


def _relations_shape(rel: Mapping[str, object], rng: np.random.Generator) -> _Shape:
    relatives: dict[str, object] = {}
    typed: list[str] = []
    sexes: dict[str, str] = {}
    k = 0
    for name, v in rel.items():
        if isinstance(v, list):
            ids = []
            for _ in v:
                k += 1
                ids.append(f"R{k}")
                sexes[f"R{k}"] = "M" if rng.random() < 0.5 else "F"
            relatives[name] = ids
            typed.extend(ids)
        elif name == "spouse" or v == R:
            k += 1
            relatives[name] = f"R{k}"
            typed.append(f"R{k}")
    msex = "M" if rng.random() < 0.85 else "F"
    ped = missing_person_family(relatives, missing="MP", missing_sex=msex, sexes=sexes)  # type: ignore[arg-type]
    return _Shape(ped, typed, ["MP"])


def _two_brothers() -> _Shape:
    ped = Pedigree([
        Individual("R1", sex="M"), Individual("R2", sex="F"),
        Individual("MP", "R1", "R2", "M"), Individual("MP2", "R1", "R2", "M"), Individual("R3", "R1", "R2", "F"),
    ])
    return _Shape(ped, ["R1", "R2", "R3"], ["MP", "MP2"])


def _father_and_son() -> _Shape:
    ped = Pedigree([
        Individual("R1", sex="M"), Individual("GM", sex="F"), Individual("MP", "R1", "GM", "M"),
        Individual("R2", sex="F"), Individual("MP2", "MP", "R2", "M"), Individual("SP", sex="F"),
        Individual("R3", "MP2", "SP", "M"),
    ])
    return _Shape(ped, ["R1", "R2", "R3"], ["MP", "MP2"])


def _cum(M: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
    if M is None:
        return None
    c = np.cumsum(M, axis=1)
    c[:, -1] = 1.0
    return c


def _draw(cum: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.int64]:
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1).astype(np.int64)


def _mutate(x: NDArray[np.int64], cum: NDArray[np.float64] | None, rng: np.random.Generator) -> NDArray[np.int64]:
    if cum is None:
        return x
    u = rng.random(len(x))
    out = (cum[x] <= u[:, None]).sum(axis=1)
    return np.minimum(out, cum.shape[1] - 1).astype(np.int64)


def drop_genes(ped: Pedigree, markers: Sequence[Marker], copies: int,
               rng: np.random.Generator) -> NDArray[np.int16]:
    """Alleles (copies, people, markers, 2), sorted within each genotype, of
    ``copies`` independent gene drops down ``ped`` (autosomal markers)."""
    n_people = len(ped)
    out = np.empty((copies, n_people, len(markers), 2), dtype=np.int16)
    for j, m in enumerate(markers):
        cp = np.cumsum(m.p)
        cp[-1] = 1.0
        cf, cm = _cum(m.female_matrix), _cum(m.male_matrix)
        pat = np.empty((n_people, copies), dtype=np.int64)
        mat = np.empty((n_people, copies), dtype=np.int64)
        for i in ped.topological_order:
            f, mo = int(ped.father[i]), int(ped.mother[i])
            if f < 0:
                pat[i] = _draw(cp, rng.random(copies))
                mat[i] = _draw(cp, rng.random(copies))
            else:
                pat[i] = _mutate(np.where(rng.random(copies) < 0.5, pat[f], mat[f]), cm, rng)
                mat[i] = _mutate(np.where(rng.random(copies) < 0.5, pat[mo], mat[mo]), cf, rng)
        out[:, :, j, 0] = np.minimum(pat, mat).T
        out[:, :, j, 1] = np.maximum(pat, mat).T
    return out


def _genotypes(al: NDArray[np.int16], markers: Sequence[Marker]) -> dict[str, Genotype]:
    out: dict[str, Genotype] = {}
    for j, m in enumerate(markers):
        a, b = int(al[j, 0]), int(al[j, 1])
        if a < 0 and b < 0:
            continue
        if b < 0:
            out[m.name] = (m.alleles[a],)
        else:
            out[m.name] = (m.alleles[a], m.alleles[b])
    return out


def degrade(al: NDArray[np.int16], d: float, locus: float, rng: np.random.Generator) -> NDArray[np.int16]:
    """Allelic dropout ``d`` per allele copy (a homozygote is seen, as one
    allele, with probability 1 - d^2) and whole-locus failure ``locus``.
    One-allele results are written [a, -1], untyped [-1, -1]."""
    nm = al.shape[0]
    out = np.full((nm, 2), -1, dtype=np.int16)
    for j in range(nm):
        a, b = int(al[j, 0]), int(al[j, 1])
        if rng.random() < locus:
            continue
        if a == b:
            if rng.random() >= d * d:
                out[j, 0] = a
            continue
        keep = [x for x in (a, b) if rng.random() >= d]
        if len(keep) == 2:
            out[j] = keep
        elif keep:
            out[j, 0] = keep[0]
    return out


def simulate_case(
    *,
    families: int,
    remains: int,
    seed: int,
    markers: Sequence[Marker] | None = None,
    share_missing: float = 0.6,
    share_fragments: float = 0.05,
    share_partial: float = 0.2,
    share_unknown_sex: float = 0.05,
    name: str | None = None,
    lineage: Sequence[str] = (),
) -> tuple[Case, SimulationTruth]:
    """A simulated national case and its truth.

    ``share_missing`` of the remains are missing persons of the families (at
    most one remains each), ``share_fragments`` are second, degraded samples
    of earlier remains, the rest are people in no family. ``share_partial``
    of the other remains are partial profiles (dropout 0.1 to 0.3 recorded,
    10 to 30 % of loci failed).

    ``lineage`` (``("Y", "mt")`` or either) adds lineage markers
    (:func:`simulate_lineage`): the autosomal data are the same as without.
    """
    if families < 1 or remains < 0:
        raise ValueError("families must be >= 1 and remains >= 0")
    rng = np.random.default_rng(seed)
    mk = tuple(markers) if markers is not None else default_markers()
    # -- families: choose a shape for each, then drop genes per shape
    weights = np.array([w for w, _ in FAMILY_SHAPES] + [TWO_BROTHERS, FATHER_AND_SON])
    weights = weights / weights.sum()
    which = rng.choice(len(weights), size=families, p=weights)
    fams: list[Family | None] = [None] * families
    truth_geno: dict[str, NDArray[np.int16]] = {}
    missing_sex: dict[str, str | None] = {}
    for s in np.unique(which):
        idx = np.nonzero(which == s)[0]
        # the relatives' sexes vary: draw a few variants of the shape
        variants = [
            _relations_shape(FAMILY_SHAPES[s][1], rng) if s < len(FAMILY_SHAPES)
            else (_two_brothers() if s == len(FAMILY_SHAPES) else _father_and_son())
            for _ in range(4 if s < len(FAMILY_SHAPES) else 1)
        ]
        pick = rng.integers(len(variants), size=len(idx))
        for vi, shape in enumerate(variants):
            sel = idx[pick == vi]
            if len(sel) == 0:
                continue
            al = drop_genes(shape.ped, mk, len(sel), rng)
            pos = {pid: k for k, pid in enumerate(shape.ped.ids)}
            for c, fi in enumerate(sel):
                fid = f"F{fi + 1:06d}"
                mids = [f"M{fi + 1:06d}" + ("" if k == 0 else f"-{k + 1}") for k in range(len(shape.missing))]
                ren = {pid: f"{fid}-{pid.lstrip('_')}" for pid in shape.ped.ids}
                for mp, mid in zip(shape.missing, mids, strict=True):
                    ren[mp] = mid
                people = [
                    Individual(ren[p.id], ren[p.father] if p.father else None, ren[p.mother] if p.mother else None,
                               p.sex)
                    for p in shape.ped.individuals
                ]
                gts = {ren[t]: _genotypes(al[c, pos[t]], mk) for t in shape.typed}
                for mp, mid in zip(shape.missing, mids, strict=True):
                    truth_geno[mid] = al[c, pos[mp]]
                    missing_sex[mid] = shape.ped.sex[pos[mp]]
                fams[fi] = Family(id=fid, pedigree=Pedigree(people), genotypes=gts, missing=tuple(mids))
    family_list = [f for f in fams if f is not None]
    # -- remains
    all_missing = [mp for f in family_list for mp in f.missing]
    n_frag = round(share_fragments * remains)
    n_miss = min(len(all_missing), round(share_missing * remains))
    n_unrel = max(0, remains - n_miss - n_frag)
    chosen = rng.choice(len(all_missing), size=n_miss, replace=False) if n_miss else np.array([], dtype=int)
    unrelated = drop_genes(Pedigree([Individual("U", sex="M")]), mk, n_unrel, rng)[:, 0] if n_unrel else None
    base: list[tuple[str | None, str | None, NDArray[np.int16], str]] = []
    for k in chosen:
        mp = all_missing[int(k)]
        base.append((mp, missing_sex[mp], truth_geno[mp], "missing"))
    for u in range(n_unrel):
        assert unrelated is not None
        base.append((None, "M" if rng.random() < 0.85 else "F", unrelated[u], "unrelated"))
    order = rng.permutation(len(base))
    base = [base[int(i)] for i in order]
    items: list[tuple[str | None, str | None, NDArray[np.int16], str]] = list(base)
    for _ in range(n_frag if base else 0):
        src = base[int(rng.integers(len(base)))]
        items.insert(int(rng.integers(len(items) + 1)), (src[0], src[1], src[2], "fragment"))
    samples: list[Sample] = []
    truth = SimulationTruth()
    levels = np.array([0.1, 0.2, 0.3])
    for k, (true_mp, sex, al, kind) in enumerate(items):
        rid = f"V{k + 1:06d}"
        d = 0.0
        obs = al
        if kind == "fragment" or rng.random() < share_partial:
            d = float(levels[rng.integers(3)]) if kind != "fragment" else 0.3
            obs = degrade(al, d, float(rng.uniform(0.1, 0.3)) if kind != "fragment" else 0.4, rng)
        if kind == "fragment" or rng.random() < share_unknown_sex:
            sex = None
        samples.append(Sample(id=rid, sex=sex, genotypes=_genotypes(obs, mk), dropout=d))
        truth.missing[rid] = true_mp
        truth.kind[rid] = kind
    case = Case(
        name=name or f"simulated-{families}x{remains}-seed{seed}",
        markers=mk,
        remains=tuple(samples),
        families=tuple(family_list),
    )
    if lineage:
        true_sex = {f"V{k + 1:06d}": it[1] for k, it in enumerate(items)}
        case = simulate_lineage(case, truth, true_sex, seed=seed, systems=lineage)
    return case, truth


#: Y-STR loci of the simulated lineage data (PowerPlex Y23; bundled rates).
Y23 = ("DYS576", "DYS389I", "DYS448", "DYS389II", "DYS19", "DYS391", "DYS481", "DYS549", "DYS533", "DYS438",
       "DYS437", "DYS570", "DYS635", "DYS390", "DYS439", "DYS392", "DYS643", "DYS393", "DYS458", "DYS385",
       "DYS456", "YGATAH4")
#: typed mtDNA range of the simulated data (the control region)
MT_RANGE = "16024-16569 1-576"


def _y_founder(markers: Sequence[Any], rng: np.random.Generator) -> dict[str, tuple[str, ...]]:
    w = np.array([1, 4, 10, 14, 10, 4, 1], dtype=float)
    w /= w.sum()
    out: dict[str, tuple[str, ...]] = {}
    for i, m in enumerate(markers):
        modal = 10 + (3 * i) % 8
        vals = sorted(int(modal - 3 + rng.choice(7, p=w)) + (4 * c) for c in range(m.copies))
        out[m.name] = tuple(str(v) for v in vals)
    return out


def _mt_pool() -> list[tuple[tuple[int, int], str]]:
    """Polymorphic sites of the simulated control region, each with its variant base."""
    from opendvi.core.lineage_mt import parse_mt_range, rcrs

    ref = rcrs()
    spans = parse_mt_range(MT_RANGE)
    positions = [p for a, b in spans for p in range(a, b + 1)]
    pick = np.random.default_rng(12345).choice(len(positions), size=80, replace=False)
    out = []
    for k in sorted(int(i) for i in pick):
        pos = positions[k]
        base = {"A": "G", "G": "A", "C": "T", "T": "C"}.get(ref[pos - 1], "A")
        out.append(((pos, 0), base))
    return out


def simulate_lineage(case: Case, truth: SimulationTruth, true_sex: Mapping[str, str | None], *, seed: int,
                     systems: Sequence[str] = ("Y", "mt")) -> Case:
    """``case`` with simulated Y-STR (PowerPlex Y23 loci, bundled rates) and
    mtDNA (control region, rate 0.005) haplotypes: founders drawn from
    simulated populations (Y: independent loci around a modal value; mt: 80
    polymorphic sites), passed down each pedigree with
    :mod:`opendvi.core.lineage_sim`; databases of 2,000 Y and 1,000 mt
    haplotypes drawn from the same populations. Typed references and remains
    get their haplotypes (a remains is the true missing person's, an
    unrelated one a fresh draw; 10 % of remains untyped per system; a
    fragment's Y haplotype loses 30 % of its loci)."""
    from dataclasses import replace

    from opendvi.core import lineage as lin
    from opendvi.core.lineage_mt import MtHaplotype, parse_mt_range
    from opendvi.core.lineage_sim import simulate_mt, simulate_y

    bad = [s for s in systems if s not in ("Y", "mt")]
    if bad:
        raise ValueError(f"lineage systems are Y and mt, found {bad[0]!r}")
    rng = np.random.default_rng([seed, 5])
    ymarkers = tuple(lin.default_y_marker(n) for n in Y23)
    spans = parse_mt_range(MT_RANGE)
    pool = _mt_pool()
    freq = np.random.default_rng(54321).uniform(0.02, 0.4, size=len(pool))

    def y_draw(g: np.random.Generator) -> dict[str, tuple[str, ...]]:
        return _y_founder(ymarkers, g)

    def mt_draw(g: np.random.Generator) -> MtHaplotype:
        on = g.random(len(pool)) < freq
        return MtHaplotype(range=spans, sites=dict(sorted(pool[i] for i in np.nonzero(on)[0])))

    def database(draw: Any, n: int) -> tuple[tuple[Any, ...], tuple[int, ...]]:
        counts: dict[Any, int] = {}
        keep: dict[Any, Any] = {}
        for _ in range(n):
            h = draw(rng)
            key = tuple(sorted(h.items())) if isinstance(h, dict) else tuple(sorted(h.sites.items()))
            counts[key] = counts.get(key, 0) + 1
            keep.setdefault(key, h)
        return tuple(keep[k] for k in counts), tuple(counts.values())

    ysys = lin.YSystem(ymarkers, lin.YDatabase(*database(y_draw, 2000))) if "Y" in systems else None
    mtsys = lin.MtSystem(0.005, lin.MtDatabase(*database(mt_draw, 1000))) if "mt" in systems else None
    haps: dict[str, lin.PersonHaplotypes] = {}
    true_haps: dict[str, tuple[Any, Any]] = {}
    for fam in case.families:
        ys = simulate_y(fam.pedigree, ysys, y_draw, rng) if ysys is not None else {}
        ms = simulate_mt(fam.pedigree, mtsys, mt_draw, rng) if mtsys is not None else {}
        for pid in fam.genotypes:
            haps[pid] = lin.PersonHaplotypes(y=ys.get(pid), mt=ms.get(pid))
        for mp in fam.missing:
            true_haps[mp] = (ys.get(mp), ms.get(mp))
    for r in case.remains:
        true_mp = truth.missing.get(r.id)
        if true_mp is not None:
            y, mt = true_haps[true_mp]
        else:
            y = y_draw(rng) if ysys is not None and true_sex.get(r.id) == "M" else None
            mt = mt_draw(rng) if mtsys is not None else None
        if truth.kind.get(r.id) == "fragment" and y:
            y = {k: v for k, v in y.items() if rng.random() >= 0.3} or None
        if rng.random() < 0.1:
            y = None
        if rng.random() < 0.1:
            mt = None
        if y or mt is not None:
            haps[r.id] = lin.PersonHaplotypes(y=y or None, mt=mt)
    return replace(case, lineage=lin.CaseLineage(y=ysys, mt=mtsys, haplotypes=haps))
