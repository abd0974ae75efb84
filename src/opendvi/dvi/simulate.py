"""Simulated identification cases (gene dropping with core/simulate.py).

Families of the common shapes, with one, two or three missing persons; the
missing persons' simulated profiles become remains, beside unrelated remains.
For tests, benchmarks and demonstrations; every function takes an explicit
seed.

The other simulators, and why they stay apart: :mod:`opendvi.core.simulate`
drops genes person by person for any pedigree (this module builds on it);
:func:`opendvi.screening.simulate_case` builds national-scale cases
(thousands of families) with its own gene dropping, batched with NumPy per
family shape, and its own mix of remains (second fragments, partial profiles,
lineage markers through :mod:`opendvi.core.lineage_sim`), and returns a
``SimulationTruth``. The two ``simulate_case`` take different arguments
because they answer different questions: here, which family shapes (several
missing persons in one family for joint identification); there, how many
families and remains and in which shares. One cannot call the other, nor
both take one signature, without changing every seeded case that the tests
and benchmarks pin: their random streams differ.
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

    def tagged(pid: str) -> str:
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
        ped = ped.relabel({pid: tagged(pid.lstrip("_")) for pid in ped.ids})
        return ped, (tagged("MP"),), tuple(tagged(r) for r in refs)
    if kind == "father_and_son":
        # missing: a father and his son; typed: the father's mother, the son's mother, a second son
        people = [
            Individual(tagged("GF"), sex="M"),
            Individual(tagged("GM"), sex="F"),
            Individual(tagged("MF"), tagged("GF"), tagged("GM"), "M"),
            Individual(tagged("W"), sex="F"),
            Individual(tagged("MS"), tagged("MF"), tagged("W"), "M"),
            Individual(tagged("S2"), tagged("MF"), tagged("W"), "M"),
        ]
        return Pedigree(people), (tagged("MF"), tagged("MS")), (tagged("GM"), tagged("W"), tagged("S2"))
    if kind == "three_generations":
        # missing: grandfather G, his son S, grandson GS; typed: G's wife, G's brother,
        # S's wife, GS's sister, GS's wife and child
        people = [
            Individual(tagged("GGF"), sex="M"),
            Individual(tagged("GGM"), sex="F"),
            Individual(tagged("G"), tagged("GGF"), tagged("GGM"), "M"),
            Individual(tagged("UB"), tagged("GGF"), tagged("GGM"), "M"),
            Individual(tagged("W1"), sex="F"),
            Individual(tagged("S"), tagged("G"), tagged("W1"), "M"),
            Individual(tagged("W2"), sex="F"),
            Individual(tagged("GS"), tagged("S"), tagged("W2"), "M"),
            Individual(tagged("SIS"), tagged("S"), tagged("W2"), "F"),
            Individual(tagged("W3"), sex="F"),
            Individual(tagged("C"), tagged("GS"), tagged("W3"), "F"),
        ]
        missing = tuple(tagged(pid) for pid in ("G", "S", "GS"))
        return Pedigree(people), missing, tuple(tagged(pid) for pid in ("UB", "W1", "W2", "SIS", "W3", "C"))
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
