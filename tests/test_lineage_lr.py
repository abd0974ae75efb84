"""Lineage LRs (Y-STR and mtDNA): closed forms of ``shared/design/lineage.md``
and a brute-force check of the Y peeling on pedigrees with several typed males."""

from __future__ import annotations

import math
import random
from itertools import permutations, product

import numpy as np
import pytest

from opendvi.core.errors import LikelihoodError, ProfileError
from opendvi.core.lineage import MtDatabase, MtSystem, YDatabase, YMarker, YSystem, parse_y_value
from opendvi.core.lineage_lr import combined_log_lr, mt_lineage_lr, y_lineage_lr, y_lineage_table
from opendvi.core.lineage_mt import MtHaplotype, mt_differences, rcrs
from opendvi.core.lineage_tree import mt_lineage, pair_probability, single_step_kstep, y_lineage, y_locus_likelihood
from opendvi.core.pedigree import Individual, Pedigree, avuncular, full_siblings, parent_child

MU = 0.004
MU2 = 0.0025


def y_system(db_haps: list[dict[str, str]], counts: list[int], *, estimator: str = "augmented-counting") -> YSystem:
    markers = (YMarker("DYS19", MU), YMarker("DYS391", MU2), YMarker("DYS385", 0.003, copies=2))
    copies = {m.name: m.copies for m in markers}
    haps = tuple({k: parse_y_value(v, copies=copies[k]) for k, v in h.items()} for h in db_haps)
    return YSystem(markers=markers, database=YDatabase(haps, tuple(counts), estimator))


def yh(**values: str) -> dict[str, tuple[str, ...]]:
    return {k: parse_y_value(v, copies=2 if k == "DYS385" else 1) for k, v in values.items()}


DB = [
    {"DYS19": "14", "DYS391": "10", "DYS385": "11,14"},
    {"DYS19": "15", "DYS391": "10", "DYS385": "11,14"},
    {"DYS19": "14", "DYS391": "11", "DYS385": "13,14"},
    {"DYS19": "13", "DYS391": "10", "DYS385": "11,15"},
]
COUNTS = [3, 1, 2, 4]  # N = 10


def f_aug(x: int, n: int = 10) -> float:
    return (x + 1) / (n + 1)


# ---------------------------------------------------------------------------
# Y closed forms
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v", "p"),
    [("14", 1 - MU), ("15", MU / 2), ("13", MU / 2), ("16", 0.0)],
)
def test_y_father_son__0_1_2_steps(v: str, p: float) -> None:
    ped = parent_child(parent_sex="M", child_sex="M")  # P father, C son (missing)
    sysm = y_system(DB, COUNTS)
    res = y_lineage_lr(ped, "C", {"P": yh(DYS19="14")}, yh(DYS19=v), sysm)
    x = {"14": 5, "15": 1, "13": 4, "16": 0}[v]
    assert res.links == 1 and res.reference == "P" and res.compared == ("DYS19",)
    if p == 0.0:
        assert res.log_lr == -math.inf and res.lr == 0.0
    else:
        assert res.lr == pytest.approx(p / f_aug(x), rel=1e-12)
    assert res.mismatches == (0 if v == "14" else 1)


@pytest.mark.parametrize(
    ("v", "p"),
    [
        ("14", (1 - MU) ** 2 + MU**2 / 2),
        ("15", MU * (1 - MU)),
        ("13", MU * (1 - MU)),
        ("16", MU**2 / 4),
        ("12", MU**2 / 4),
    ],
)
def test_y_brothers__0_1_2_steps(v: str, p: float) -> None:
    ped = full_siblings(2)
    sysm = y_system(DB, COUNTS)
    res = y_lineage_lr(ped, "S2", {"S1": yh(DYS19="14")}, yh(DYS19=v), sysm)
    x = {"14": 5, "15": 1, "13": 4, "16": 0, "12": 0}[v]
    assert res.links == 2
    assert res.lr == pytest.approx(p / f_aug(x), rel=1e-12)
    assert single_step_kstep(int(v) - 14, 2, MU) == pytest.approx(p, rel=1e-12)


def p3(d: int, mu: float) -> float:
    """The 3-step single-step walk, written out."""
    return {
        0: (1 - mu) ** 3 + 3 * (1 - mu) * mu**2 / 2,
        1: 3 * mu * (1 - mu) ** 2 / 2 + 3 * mu**3 / 8,
        2: 3 * mu**2 * (1 - mu) / 4,
        3: mu**3 / 8,
    }[abs(d)]


def test_y_uncle_nephew__three_links_several_loci() -> None:
    ped = avuncular(side="paternal")  # UN uncle, NE nephew: NE-PA-GF-UN
    assert y_lineage(ped, "NE")["UN"] == 3
    sysm = y_system(DB, COUNTS)
    ref = yh(DYS19="14", DYS391="10", DYS385="11,14")
    for v19, v391 in [("14", "10"), ("15", "10"), ("16", "11"), ("17", "10")]:
        res = y_lineage_lr(ped, "NE", {"UN": ref}, yh(DYS19=v19, DYS391=v391, DYS385="11,14"), sysm)
        d19, d391 = int(v19) - 14, int(v391) - 10
        # DYS385: two copies unchanged (11 and 14 are 3 apart: no cross assignment)
        p385 = p3(0, 0.003) ** 2
        x = {("14", "10"): 3, ("15", "10"): 1}.get((v19, v391), 0)
        expect = p3(d19, MU) * p3(d391, MU2) * p385 / f_aug(x)
        assert res.lr == pytest.approx(expect, rel=1e-12)
        assert res.mismatches == (d19 != 0) + (d391 != 0)
        for d in range(4):
            assert single_step_kstep(d, 3, MU) == pytest.approx(p3(d, MU), rel=1e-12)


def test_y_multicopy__copies_assigned_both_ways() -> None:
    # 11,12 vs 11,12 at one link: the copies can also have crossed (11->12, 12->11)
    ped = parent_child()
    sysm = y_system(DB, COUNTS)
    res = y_lineage_lr(ped, "C", {"P": yh(DYS385="11,12")}, yh(DYS385="11,12"), sysm)
    mu = 0.003
    expect = ((1 - mu) ** 2 + (mu / 2) ** 2) / f_aug(0)
    assert res.lr == pytest.approx(expect, rel=1e-12)


def test_y_microvariant_and_null() -> None:
    ped = parent_child()
    sysm = YSystem(
        markers=(YMarker("DYS19", MU),),
        database=YDatabase(({"DYS19": ("13.2",)},), (2,)),
    )
    one_step = y_lineage_lr(ped, "C", {"P": {"DYS19": ("13.2",)}}, {"DYS19": ("14.2",)}, sysm)
    assert one_step.lr == pytest.approx((MU / 2) / (1 / 3), rel=1e-12)
    other_class = y_lineage_lr(ped, "C", {"P": {"DYS19": ("13.2",)}}, {"DYS19": ("14",)}, sysm)
    assert other_class.lr == 0.0
    nulls = y_lineage_lr(ped, "C", {"P": {"DYS19": ("null",)}}, {"DYS19": ("null",)}, sysm)
    assert nulls.lr == pytest.approx(1.0 / (1 / 3), rel=1e-12)
    assert y_lineage_lr(ped, "C", {"P": {"DYS19": ("null",)}}, {"DYS19": ("13",)}, sysm).lr == 0.0
    with pytest.raises(ProfileError, match="DYS385"):
        parse_y_value("11", copies=2, locus="DYS385")
    with pytest.raises(ProfileError, match="invalid Y-STR allele"):
        parse_y_value("1x", locus="DYS19")


def test_y_empty_lineage_is_lr_one() -> None:
    ped = parent_child(parent_sex="F", child_sex="M")  # mother typed: no Y line
    sysm = y_system(DB, COUNTS)
    res = y_lineage_lr(ped, "C", {"P": yh(DYS19="14")}, yh(DYS19="14"), sysm)
    assert res.lr == 1.0 and res.frequency is None and "paternal line" in res.note
    female = parent_child(parent_sex="M", child_sex="F")
    assert "not male" in y_lineage_lr(female, "C", {"P": yh(DYS19="14")}, yh(DYS19="14"), sysm).note
    assert y_lineage_lr(ped, "C", {}, None, sysm).lr == 1.0


def test_y_references_impossible_together_raise() -> None:
    ped = full_siblings(3)
    sysm = y_system(DB, COUNTS)
    with pytest.raises(LikelihoodError, match="impossible together"):
        y_lineage_lr(ped, "S3", {"S1": yh(DYS19="14"), "S2": yh(DYS19="17")}, yh(DYS19="14"), sysm)


# ---------------------------------------------------------------------------
# Brute force: sum every untyped male of the line over a bounded allele range
# ---------------------------------------------------------------------------


def _line_pedigree(*, son: bool = False) -> Pedigree:
    """A paternal line: GGF -> {GF, GU}; GF -> {FA, UN}; GU -> CC; FA -> {M, B};
    UN -> C; B -> L (and M -> MS when ``son``). Wives W* are untyped founders."""
    men = [*([("MS", "M")] if son else []),
        ("GGF", None),
        ("GF", "GGF"),
        ("GU", "GGF"),
        ("FA", "GF"),
        ("UN", "GF"),
        ("CC", "GU"),
        ("M", "FA"),
        ("B", "FA"),
        ("C", "UN"),
        ("L", "B"),
    ]
    people = []
    for pid, father in men:
        if father is None:
            people.append(Individual(pid, sex="M"))
        else:
            people.append(Individual(f"W_{pid}", sex="F"))
            people.append(Individual(pid, father, f"W_{pid}", "M"))
    return Pedigree(people)


def brute_force_locus(ped: Pedigree, typed: dict[str, tuple[str, ...]], mu: float, margin: int = 2) -> float:
    """Σ over the labelled copies of every untyped male of the line (values in
    [min - margin, max + margin]) and every labelling of the typed males
    (the first typed male's labelling fixed) of Π_links Π_copies K."""
    line = y_lineage(ped, sorted(typed)[0])
    males = sorted(line)
    edges = []
    for pid in males:
        i = ped.index(pid)
        f = int(ped.father[i])
        if f >= 0 and ped.ids[f] in line:
            edges.append((ped.ids[f], pid))
    vals = [int(v) for t in typed.values() for v in t]
    window = range(min(vals) - margin, max(vals) + margin + 1)
    copies = len(next(iter(typed.values())))
    untyped = [p for p in males if p not in typed]
    first, *others = sorted(typed)
    labelings = [sorted(set(permutations(typed[p]))) for p in others]
    grid = np.array(list(product(window, repeat=len(untyped))), dtype=np.int64).reshape(-1, len(untyped))
    col = {p: i for i, p in enumerate(untyped)}
    total = 0.0
    for combo in product(*labelings):
        lab = {first: typed[first], **dict(zip(others, combo, strict=True))}
        p_combo = 1.0
        for c in range(copies):
            # every configuration of the untyped males at once (one row each)
            term = np.ones(grid.shape[0])
            for fa, so in edges:
                a = grid[:, col[fa]] if fa in col else np.full(grid.shape[0], int(lab[fa][c]))
                b = grid[:, col[so]] if so in col else np.full(grid.shape[0], int(lab[so][c]))
                d = np.abs(a - b)
                term *= np.where(d == 0, 1.0 - mu, np.where(d == 1, mu / 2.0, 0.0))
            p_combo *= float(term.sum())
        total += p_combo
    return total


@pytest.mark.parametrize("son", [False, True])
def test_y_brute_force__several_typed_males_on_one_line(son: bool) -> None:
    # with ``son`` the missing person has a typed son: M is inside the tree
    ped = _line_pedigree(son=son)
    rng = random.Random(20261207 + son)
    sysm = y_system(DB, COUNTS)
    checked = 0
    for trial in range(6 if not son else 5):
        base19, base385 = 14, (11, 14)
        refs = {}
        for pid in ("GGF", "GU", "UN", "B", "C", "CC", *(["MS"] if son else [])):
            if rng.random() < 0.8 or pid in ("B", "MS"):
                v19 = base19 + rng.choice([0, 0, 0, 1, -1])
                a, b = base385[0] + rng.choice([0, 0, 1]), base385[1] + rng.choice([0, 0, -1])
                refs[pid] = yh(DYS19=str(v19), DYS385=f"{a},{b}")
        remains = yh(DYS19=str(base19 + rng.choice([0, 1, -1])), DYS385="11,14")
        expect = 0.0
        impossible = False
        for locus, mu in (("DYS19", MU), ("DYS385", 0.003)):
            typed = {p: h[locus] for p, h in refs.items()}
            den = brute_force_locus(ped, typed, mu)
            if den == 0.0:  # the references alone are impossible (e.g. 2 steps in one link)
                impossible = True
                break
            num = brute_force_locus(ped, {**typed, "M": remains[locus]}, mu)
            expect += (math.log(num) if num > 0 else -math.inf) - math.log(den)
        if impossible:
            with pytest.raises(LikelihoodError, match="impossible together"):
                y_lineage_lr(ped, "M", refs, remains, sysm)
            continue
        res = y_lineage_lr(ped, "M", refs, remains, sysm)
        checked += 1
        if expect == -math.inf:
            assert res.log_numerator == -math.inf and res.lr == 0.0
            continue
        assert res.log_numerator == pytest.approx(expect, rel=1e-10, abs=1e-12), trial
        assert (res.reference, res.links) == (("MS", 1) if son else ("B", 2))
        x, n = sysm.database.count(remains, res.compared)
        assert res.log_lr == pytest.approx(expect - math.log((x + 1) / (n + 1)), rel=1e-10)
    assert checked >= 3


@pytest.mark.parametrize(
    ("a", "b"), [(("14",), ("14",)), (("14",), ("16",)), (("11", "12"), ("11", "12")), (("11", "14"), ("12", "13")),
                 (("13.2",), ("14.2",)), (("null", "12"), ("null", "13"))]
)
def test_y_single_reference_walk_equals_peeling(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    # a chain of k links: root 0 typed with a, node k typed with b, 1..k-1 untyped
    for k in range(1, 5):
        children = {i: [i + 1] for i in range(k)} | {k: []}
        peel = y_locus_likelihood(children, 0, {0: a, k: b}, MU)
        assert pair_probability(a, b, k, MU) == pytest.approx(peel, rel=1e-12, abs=1e-300)


def test_y_table_reused_over_remains_equals_fresh_computation() -> None:
    ped = _line_pedigree()
    sysm = y_system(DB, COUNTS)
    refs = {"GGF": yh(DYS19="14", DYS385="11,14"), "C": yh(DYS19="15", DYS385="11,14"), "B": yh(DYS19="14")}
    table = y_lineage_table(ped, "M", refs, sysm)
    for v19 in ("13", "14", "15", "16", "14"):
        for v385 in ("11,14", "11,15", "10,14"):
            v = yh(DYS19=v19, DYS385=v385)
            assert table.lr(v).log_lr == y_lineage_lr(ped, "M", refs, v, sysm).log_lr
    assert table.root("DYS19") == "B" and table.root("DYS385") == "GGF"  # GGF: 3 links, C: 4


def test_y_relabelling_changes_nothing() -> None:
    ped = _line_pedigree()
    sysm = y_system(DB, COUNTS)
    refs = {"GGF": yh(DYS19="14", DYS385="11,14"), "C": yh(DYS19="15", DYS385="11,14"), "B": yh(DYS19="14")}
    v = yh(DYS19="15", DYS385="11,15")
    base = y_lineage_lr(ped, "M", refs, v, sysm)
    mapping = {pid: f"x{i:02d}" for i, pid in enumerate(reversed(ped.ids))}
    other = y_lineage_lr(ped.relabel(mapping), mapping["M"], {mapping[k]: h for k, h in refs.items()}, v, sysm)
    assert other.log_lr == pytest.approx(base.log_lr, rel=1e-13)
    assert other.reference == mapping[base.reference or ""] and other.links == base.links


# ---------------------------------------------------------------------------
# mtDNA closed forms
# ---------------------------------------------------------------------------

RANGE = "16024-16569 1-576"
L_RANGE = (16569 - 16024 + 1) + 576
MT_MU = 0.002
MT_DB = MtDatabase(
    haplotypes=(
        MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C"]),
        MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C", "16093C"]),
        MtHaplotype.parse(RANGE, ["263G", "315.1C"]),
        MtHaplotype.parse("16024-16365", ["16519C"][:0]),
    ),
    counts=(4, 1, 5, 3),
)
MT = MtSystem(rate=MT_MU, database=MT_DB)


def _maternal_sibs() -> Pedigree:
    return full_siblings(2, sexes=["F", "M"])  # S1 sister (reference), S2 missing brother


def test_mt_identical() -> None:
    ref = MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C"])
    res = mt_lineage_lr(_maternal_sibs(), "S2", {"S1": ref}, ref, MT)
    assert res.links == 2 and res.mismatches == 0
    # database: entries covering the whole range: 4 + 1 + 5 = 10; identical: 4
    assert (res.frequency.x, res.frequency.n) == (4, 10)  # type: ignore[union-attr]
    assert res.lr == pytest.approx((1 - MT_MU) ** 2 / (5 / 11), rel=1e-12)


def test_mt_one_difference() -> None:
    ref = MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C"])
    v = MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C", "16093C"])
    res = mt_lineage_lr(_maternal_sibs(), "S2", {"S1": ref}, v, MT)
    assert res.mismatches == 1 and "16093C" in res.differences[0]
    p = (1 - (1 - MT_MU) ** 2) / L_RANGE
    assert res.lr == pytest.approx(p / (2 / 11), rel=1e-12)


def test_mt_heteroplasmy_matches_either_base() -> None:
    assert rcrs()[16093 - 1] == "T"
    ref = MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C", "16093C"])
    v = MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C", "16093Y"])  # Y = C/T
    res = mt_lineage_lr(_maternal_sibs(), "S2", {"S1": ref}, v, MT)
    assert res.mismatches == 0
    # database: 16093Y matches both the 16093T (rCRS) and the 16093C entries with 16519C 263G 315.1C
    assert (res.frequency.x, res.frequency.n) == (5, 10)  # type: ignore[union-attr]
    assert res.lr == pytest.approx((1 - MT_MU) ** 2 / (6 / 11), rel=1e-12)
    # the rCRS base itself at a heteroplasmic site: no difference either
    plain = MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C"])
    assert mt_differences(plain, v) == []


def test_mt_two_differences_exclude() -> None:
    ref = MtHaplotype.parse(RANGE, ["16519C", "263G", "315.1C"])
    v = MtHaplotype.parse(RANGE, ["263G", "315.1C", "16093C"])
    res = mt_lineage_lr(_maternal_sibs(), "S2", {"S1": ref}, v, MT)
    assert res.mismatches == 2 and res.lr == 0.0 and res.log_lr == -math.inf


def test_mt_common_range_and_lineage() -> None:
    ped = avuncular(side="maternal", uncle_sex="F")  # maternal aunt UN of NE: NE-PA-GM-UN
    assert mt_lineage(ped, "NE")["UN"] == 3
    ref = MtHaplotype.parse("16024-16365", ["16093C"])
    v = MtHaplotype.parse(RANGE, ["16519C", "263G"])
    res = mt_lineage_lr(ped, "NE", {"UN": ref}, v, MT)
    # compared over 16024-16365 only: 16093C differs, 16519C and 263G are outside
    assert res.compared == ("16024-16365",) and res.mismatches == 1
    p = (1 - (1 - MT_MU) ** 3) / (16365 - 16024 + 1)
    # database over 16024-16365: all 13 cover it; equal to v there (no variant): 4 + 5 + 3
    assert (res.frequency.x, res.frequency.n) == (12, 13)  # type: ignore[union-attr]
    assert res.lr == pytest.approx(p / (13 / 14), rel=1e-12)
    # a paternal aunt is not on the maternal line
    pat = avuncular(side="paternal", uncle_sex="F")
    assert mt_lineage_lr(pat, "NE", {"UN": ref}, v, MT).lr == 1.0


def test_mt_notation() -> None:
    h = MtHaplotype.parse("16024-576", "16519C 315.1C 249del 16093y 73A")
    assert h.range == ((1, 576), (16024, 16569))
    assert h.variants == ("249del", "315.1C", "16093Y", "16519C")  # 73A is the rCRS base
    assert h.heteroplasmies == ("16093Y",)
    with pytest.raises(ProfileError, match="outside the typed range"):
        MtHaplotype.parse("16024-16365", ["263G"])
    with pytest.raises(ProfileError, match="invalid mtDNA variant"):
        MtHaplotype.parse(RANGE, ["263QQ"])


def test_combined_is_product() -> None:
    by = {"autosomal": math.log(1234.5), "Y": math.log(50.0), "mt": math.log(3.0)}
    assert math.exp(combined_log_lr(by)) == pytest.approx(1234.5 * 50.0 * 3.0, rel=1e-12)
    assert combined_log_lr({**by, "mt": -math.inf}) == -math.inf


def test_simulation_follows_the_transmission_model() -> None:
    from opendvi.core.lineage_sim import mutate_mt, simulate_mt, simulate_y

    rng = np.random.default_rng(7)
    sysm = YSystem(markers=(YMarker("DYS19", 0.2),), database=YDatabase(({"DYS19": ("14",)},), (1,)))
    ped = full_siblings(2)
    diffs = []
    for _ in range(4000):
        ys = simulate_y(ped, sysm, lambda r: {"DYS19": ("14",)}, rng)
        diffs.append(int(ys["S2"]["DYS19"][0]) - int(ys["S1"]["DYS19"][0]))
    freq = {d: diffs.count(d) / len(diffs) for d in range(-2, 3)}
    for d, f in freq.items():  # brothers: the 2-step walk
        assert f == pytest.approx(single_step_kstep(d, 2, 0.2), abs=0.02)
    h = MtHaplotype.parse(RANGE, ["263G"])
    mt = MtSystem(rate=0.5, database=MT_DB)
    changed = [len(mt_differences(mutate_mt(h, 0.5, rng), h)) for _ in range(2000)]
    assert set(changed) <= {0, 1} and sum(changed) / 2000 == pytest.approx(0.5, abs=0.04)
    kids = simulate_mt(_maternal_sibs(), mt, lambda r: h, rng)
    assert set(kids) == {"FA", "MO", "S1", "S2"} and kids["FA"] == h
