"""Make the bundled demo case ``src/opendvi/data/demo-case.json``.

Deterministic (seed 20261125). Frequencies: norSTR EuropaDB_v2023 (MIT), the
23 autosomal STRs of PowerPlex Fusion 6C; mutation: Oslo's defaults
(extended stepwise, female 0.001, male 0.002, rate2 1e-6, range 0.1).
Pedigrees and genotypes are simulated (no real person). Run from the repo
root: ``python scripts/make_demo_case.py ../shared/data/freqs/norSTR/EuropaDB_v2023.txt``.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np

from opendvi.core.case import Case, Family, Sample
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree, missing_person_family
from opendvi.core.simulate import apply_dropout, simulate_profiles
from opendvi.io.case_json import write_case
from opendvi.io.frequencies import read_familias_frequencies

FUSION_6C = [
    "D3S1358",
    "D1S1656",
    "D2S441",
    "D10S1248",
    "D13S317",
    "Penta E",
    "D16S539",
    "D18S51",
    "D2S1338",
    "CSF1PO",
    "Penta D",
    "TH01",
    "vWA",
    "D21S11",
    "D7S820",
    "D5S818",
    "TPOX",
    "D8S1179",
    "D12S391",
    "D19S433",
    "SE33",
    "D22S1045",
    "FGA",
]


def main(freq_path: str, out: str = "src/opendvi/data/demo-case.json") -> None:
    rng = np.random.default_rng(20261125)
    db = read_familias_frequencies(freq_path)
    female = MutationModel("stepwise", rate=0.001, rate2=1e-6, range=0.1)
    male = MutationModel("stepwise", rate=0.002, rate2=1e-6, range=0.1)
    markers = [db.marker(n, female=female, male=male) for n in FUSION_6C if n in db]
    peds = {
        "F1": (missing_person_family({"father": "F1-R1", "mother": "F1-R2"}, missing="M1"), ["M1"]),
        "F2": (missing_person_family({"full_sibling": ["F2-R1", "F2-R2"]}, missing="M2", sexes={"F2-R2": "F"}), ["M2"]),
        "F3": (missing_person_family({"child": ["F3-R1"], "spouse": "F3-R2"}, missing="M3"), ["M3"]),
        "F4": (
            Pedigree(
                [
                    Individual("F4-FA", sex="M"),
                    Individual("F4-R1", sex="F"),
                    Individual("M4a", "F4-FA", "F4-R1", "M"),
                    Individual("M4b", "F4-FA", "F4-R1", "M"),
                    Individual("F4-R2", "F4-FA", "F4-R1", "F"),
                ]
            ),
            ["M4a", "M4b"],
        ),
        "F5": (
            missing_person_family(
                {"paternal_half_sibling": ["F5-R1"], "paternal_uncle": ["F5-R2"]}, missing="M5", missing_sex="F"
            ),
            ["M5"],
        ),
    }
    families = []
    truth: dict[str, dict[str, tuple[str, ...]]] = {}
    for fid, (ped, missing) in peds.items():
        # ids of helpers must be unique across the case: prefix them
        ped = ped.relabel({pid: f"{fid}-{pid.lstrip('_')}" for pid in ped.ids if pid.startswith("_")})
        sim = simulate_profiles(ped, markers, rng)
        refs = [pid for pid in ped.ids if pid.startswith(f"{fid}-R")]
        for mp in missing:
            truth[mp] = sim[mp]
        families.append(Family(id=fid, pedigree=ped, genotypes={r: sim[r] for r in refs}, missing=tuple(missing)))
    unrelated = simulate_profiles(Pedigree([Individual("U", sex="M")]), markers, rng)["U"]
    fragment = apply_dropout(dict(truth["M1"]), 0.3, rng, locus_dropout=0.3)
    remains = [
        Sample("V1", "M", truth["M1"]),
        Sample("V2", "M", apply_dropout(dict(truth["M2"]), 0.15, rng, locus_dropout=0.1), dropout=0.15),
        Sample("V3", "M", truth["M4a"]),
        Sample("V4", "M", truth["M4b"]),
        Sample("V5", "M", unrelated),
        Sample("V6", None, fragment, dropout=0.3),
        Sample("V7", "F", truth["M5"]),
        Sample("V8", "M", truth["M3"]),
    ]
    case = Case(name="demo", markers=tuple(markers), remains=tuple(remains), families=tuple(families))
    write_case(replace(case), out)
    print(f"wrote {out}: {len(markers)} markers, {len(remains)} remains, {len(families)} families")


if __name__ == "__main__":
    main(*sys.argv[1:])
