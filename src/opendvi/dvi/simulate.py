"""Simulated identification cases (gene dropping with core/simulate.py).

Families of the common shapes, with one, two or three missing persons; the
missing persons' simulated profiles become remains, beside unrelated remains.
For tests, benchmarks and demonstrations; every function takes an explicit
seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from opendvi.core.case import Case, Family, Sample
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Individual, Pedigree, missing_person_family
from opendvi.core.simulate import simulate_profiles
from opendvi.dvi.errors import DVIError


def _shape(kind: str, tag: str) -> tuple[Pedigree, tuple[str, ...], tuple[str, ...]]:
    """(pedigree, missing, typed references) of a family shape; ids prefixed by ``tag``."""

    def P(pid: str) -> str:
        return f"{tag}_{pid}"

    if kind in ("parents", "sibling", "child", "grandparents", "uncle", "half_sibling"):
        shapes: dict[str, tuple[dict[str, str | list[str]], tuple[str, ...]]] = {
            "parents": ({"father": "R1", "mother": "R2"}, ("R1", "R2")),
            "sibling": ({"full_sibling": ["R1", "R2"]}, ("R1", "R2")),
            "child": ({"child": ["R1", "R2"], "spouse": "R3"}, ("R1", "R2", "R3")),
            "grandparents": (
                {"paternal_grandfather": "R1", "paternal_grandmother": "R2", "mother": "R3"},
                ("R1", "R2", "R3"),
            ),
            "uncle": ({"paternal_uncle": ["R1", "R2"], "mother": "R3"}, ("R1", "R2", "R3")),
            "half_sibling": ({"paternal_half_sibling": ["R1"], "mother": "R2"}, ("R1", "R2")),
        }
        relatives, refs = shapes[kind]
        ped = missing_person_family(relatives, missing="MP")
        ped = ped.relabel({pid: P(pid.lstrip("_")) for pid in ped.ids})
        return ped, (P("MP"),), tuple(P(r) for r in refs)
    if kind == "father_and_son":
        # missing: a father and his son; typed: the father's mother, the son's mother, a second son
        people = [
            Individual(P("GF"), sex="M"),
            Individual(P("GM"), sex="F"),
            Individual(P("MF"), P("GF"), P("GM"), "M"),
            Individual(P("W"), sex="F"),
            Individual(P("MS"), P("MF"), P("W"), "M"),
            Individual(P("S2"), P("MF"), P("W"), "M"),
        ]
        return Pedigree(people), (P("MF"), P("MS")), (P("GM"), P("W"), P("S2"))
    if kind == "three_generations":
        # missing: grandfather G, his son S, grandson GS; typed: G's wife, G's brother,
        # S's wife, GS's sister, GS's wife and child
        people = [
            Individual(P("GGF"), sex="M"),
            Individual(P("GGM"), sex="F"),
            Individual(P("G"), P("GGF"), P("GGM"), "M"),
            Individual(P("UB"), P("GGF"), P("GGM"), "M"),
            Individual(P("W1"), sex="F"),
            Individual(P("S"), P("G"), P("W1"), "M"),
            Individual(P("W2"), sex="F"),
            Individual(P("GS"), P("S"), P("W2"), "M"),
            Individual(P("SIS"), P("S"), P("W2"), "F"),
            Individual(P("W3"), sex="F"),
            Individual(P("C"), P("GS"), P("W3"), "F"),
        ]
        return Pedigree(people), (P("G"), P("S"), P("GS")), (P("UB"), P("W1"), P("W2"), P("SIS"), P("W3"), P("C"))
    raise DVIError(f"unknown family shape {kind!r}; known: {', '.join(SHAPES)}")


ONE_MISSING = ("parents", "sibling", "child", "grandparents", "uncle", "half_sibling")
SHAPES = (*ONE_MISSING, "father_and_son", "three_generations")


def simulate_case(
    shapes: Sequence[str],
    *,
    n_unrelated: int,
    seed: int,
    markers: Sequence[Marker],
    found: float = 1.0,
    name: str = "simulated",
) -> tuple[Case, dict[str, str]]:
    """A case with one family per entry of ``shapes`` (see :data:`SHAPES`); each missing person is
    found (becomes a remains) with probability ``found``. Returns the case and
    the truth ``{remains: missing}`` (unrelated remains are absent)."""
    rng = np.random.default_rng(seed)
    mk = tuple(markers)
    families: list[Family] = []
    remains: list[Sample] = []
    truth: dict[str, str] = {}
    for k, kind in enumerate(shapes):
        fid = f"F{k + 1}"
        ped, missing, refs = _shape(kind, fid)
        prof = simulate_profiles(ped, mk, rng)
        families.append(Family(fid, ped, {r: prof[r] for r in refs}, missing))
        for mp in missing:
            if rng.random() < found:
                remains.append(Sample(f"_{mp}", sex=ped.sex[ped.index(mp)], genotypes=prof[mp]))
    for j in range(n_unrelated):
        ped = Pedigree([Individual("U", sex="M" if rng.random() < 0.5 else "F")])
        remains.append(Sample(f"_U{j}", sex=ped.sex[0], genotypes=simulate_profiles(ped, mk, rng)["U"]))
    order = rng.permutation(len(remains))
    renamed: list[Sample] = []
    for i, k in enumerate(order):
        r = remains[int(k)]
        rid = f"V{i + 1}"
        if not r.id.startswith("_U"):
            truth[rid] = r.id[1:]
        renamed.append(replace(r, id=rid))
    return Case(name=name, markers=mk, remains=tuple(renamed), families=tuple(families)), truth
