"""Familias .fam: every sample file reads, round trips are identical, the
likelihood of a converted case is sane, corrupted files fail cleanly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendvi.core.case import Case, Family, Sample
from opendvi.core.errors import FileFormatError
from opendvi.core.markers import Marker
from opendvi.core.mutation import MutationModel
from opendvi.core.pedigree import Individual, Pedigree
from opendvi.io.case_json import case_from_dict, case_to_dict
from opendvi.io.familias import case_to_fam_text, parse_fam, read_fam, write_fam

from .conftest import SHARED

FAM_DIR = SHARED / "data" / "formats" / "familias_fam"
FAM_FILES = sorted(FAM_DIR.rglob("*.fam"))


def _canon(case: Case) -> str:
    d = case_to_dict(case)
    d.pop("name")
    return json.dumps(d, sort_keys=True)


def test_sample_files__are_all_there() -> None:
    assert len(FAM_FILES) == 11


@pytest.mark.parametrize("path", FAM_FILES, ids=lambda p: p.name)
def test_read_fam__every_sample_file_reads(path: Path) -> None:
    case, _notes = read_fam(path)
    assert case.markers
    assert case.families or case.remains


@pytest.mark.parametrize("path", FAM_FILES, ids=lambda p: p.name)
def test_read_fam__round_trip_fam_json_fam_json_is_identical(path: Path, tmp_path: Path) -> None:
    case, _ = read_fam(path)
    first = case_from_dict(json.loads(json.dumps(case_to_dict(case))))
    out = tmp_path / "again.fam"
    write_fam(first, out)
    second, _ = read_fam(out)
    assert _canon(second) == _canon(case)


@pytest.mark.parametrize("path", FAM_FILES, ids=lambda p: p.name)
def test_read_fam__likelihood_of_converted_case_is_finite(path: Path) -> None:
    case, _ = read_fam(path)
    case, _ = case.with_unseen_alleles()
    lls = [fam.loglik(case.markers, theta=case.theta).total for fam in case.families]
    # a hypothesis may exclude (no mutation model: L = 0 is a result), but
    # never NaN, never above 1, and the data fit at least one hypothesis
    assert all(not math.isnan(x) and x <= 0 for x in lls)
    assert any(math.isfinite(x) for x in lls)


def test_read_fam__paternity_database_block() -> None:
    # pedFamilias paternity.fam: extended stepwise (code 4), female 0.001 /
    # male 0.002, range 0.1, rate2 1e-6, DatabaseSize 1000
    case, _ = read_fam(FAM_DIR / "pedFamilias" / "paternity.fam")
    m = case.markers[0]
    assert m.name == "D3S1358"
    assert m.female == MutationModel("stepwise", rate=0.001, rate2=1e-6, range=0.1)
    assert m.male == MutationModel("stepwise", rate=0.002, rate2=1e-6, range=0.1)
    assert m.database_size == 1000
    assert [f.id for f in case.families] == ["H1", "H2"]
    h1 = case.family("H1")
    # AF is CH's father under H1, not under H2
    ids = h1.pedigree.ids
    ch = next(i for i in ids if i.startswith("CH"))
    assert h1.pedigree.individuals[h1.pedigree.index(ch)].father.startswith("AF")  # type: ignore[union-attr]


def test_read_fam__paternity_lr_matches_forrel() -> None:
    # pedFamilias README (magnusdv/pedFamilias @7c7794a):
    #   peds = readFam(system.file("extdata", "paternity.fam", package = "pedFamilias"))
    #   forrel::kinshipLR(peds)   #>  H1:H2 760.3445
    case, notes = read_fam(FAM_DIR / "pedFamilias" / "paternity.fam")
    assert notes == []
    ll1 = case.family("H1").loglik(case.markers).total
    ll2 = case.family("H2").loglik(case.markers).total
    assert math.exp(ll1 - ll2) == pytest.approx(760.3445, rel=1e-6)


def test_read_fam__sex_specific_rates_of_halfsib_test() -> None:
    case, _ = read_fam(FAM_DIR / "KLINK" / "halfsib-test.fam")
    vwa = case.marker("vWA")
    assert vwa.female is not None and vwa.female.rate == pytest.approx(0.0003)
    assert vwa.male is not None and vwa.male.rate == pytest.approx(0.0017)


def test_read_fam__dvi_section() -> None:
    case, notes = read_fam(FAM_DIR / "dvir" / "dvi-example.fam")
    assert [r.id for r in case.remains] == ["V1", "V2", "V3"]
    assert case.remains[0].genotypes == {"L1": ("1", "1")}
    (fam,) = case.families
    assert fam.id == "Reference family 1"
    assert set(fam.missing) == {"Missing male 1", "Missing male 2", "Missing male 3", "Missing person"}
    assert fam.references == ("R",)
    assert any("added" in n for n in notes)  # Missing male 3 had one parent


def test_read_fam__names_used_in_several_families_are_qualified() -> None:
    case, _ = read_fam(FAM_DIR / "dvir" / "Solution3_3.fam")
    assert len(case.remains) == 8 and len(case.families) == 5
    ids = [pid for f in case.families for pid in f.pedigree.ids]
    assert len(ids) == len(set(ids))
    assert "Missing person [Family 1]" in case.family("Family 1").missing
    # theta and the proportional model (code 1)
    assert case.theta == 0.0
    assert case.markers[0].female is not None and case.markers[0].female.model == "proportional"


def test_model_codes__stationary_stepwise_written_as_code_3(tmp_path: Path) -> None:
    m = Marker(
        "M1",
        ("9", "10", "11"),
        (0.2, 0.5, 0.3),
        female=MutationModel("stepwise", rate=0.01, rate2=0.0, range=0.5, transform="stationary"),
        male=MutationModel("equal", rate=0.02),
    )
    case = _tiny_case([m])
    out = tmp_path / "x.fam"
    write_fam(case, out)
    lines = out.read_text().splitlines()
    i = lines.index('"M1"')
    assert lines[i + 3 : i + 5] == ["3", "0"]
    back, _ = read_fam(out)
    assert back.markers[0].female == m.female
    assert np.allclose(back.markers[0].female_matrix, m.female_matrix)  # type: ignore[arg-type]


def test_write_fam__refuses_models_familias_lacks(tmp_path: Path) -> None:
    m = Marker("M1", ("9", "10"), (0.5, 0.5), female=MutationModel("onestep", rate=0.01), male=None)
    with pytest.raises(FileFormatError, match="onestep"):
        write_fam(_tiny_case([m]), tmp_path / "x.fam")
    assert not (tmp_path / "x.fam").exists()


def _tiny_case(markers: list[Marker]) -> Case:
    ped = Pedigree([Individual("FA", sex="M"), Individual("MO", sex="F"), Individual("Missing 1", "FA", "MO", "M")])
    fam = Family("F1", ped, genotypes={"FA": {markers[0].name: (markers[0].alleles[0],) * 2}}, missing=("Missing 1",))
    return Case(
        "tiny", tuple(markers), remains=(Sample("V1", "M", {markers[0].name: markers[0].alleles[:2]}),), families=(fam,)
    )


# ---------------------------------------------------------------------------
# broken files: one line, the place, FileFormatError only
# ---------------------------------------------------------------------------


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (lambda ls: ["hello", *ls[1:]], ":1: not a Familias file"),
        (lambda ls: ls[:40], "file ends early"),
        (lambda ls: [("abc" if k == 10 else s) for k, s in enumerate(ls)], ":11:"),
    ],
)
def test_read_fam__broken_files_name_the_line(tmp_path: Path, edit: object, expect: str) -> None:
    src = _lines(FAM_DIR / "pedFamilias" / "paternity.fam")
    bad = tmp_path / "bad.fam"
    bad.write_text("\n".join(edit(src)) + "\n")  # type: ignore[operator]
    with pytest.raises(FileFormatError) as info:
        read_fam(bad)
    msg = str(info.value)
    assert "\n" not in msg and str(bad) in msg and expect in msg


def test_read_fam__silent_allele_is_refused_with_its_line(tmp_path: Path) -> None:
    src = _lines(FAM_DIR / "pedFamilias" / "paternity.fam")
    i = src.index('"D3S1358"')
    src[i + 10] = "#TRUE#"
    src[i + 11] = "0.01"
    bad = tmp_path / "silent.fam"
    bad.write_text("\n".join(src))
    with pytest.raises(FileFormatError, match="silent allele") as info:
        read_fam(bad)
    assert info.value.line == i + 1


_PATERNITY = (FAM_DIR / "pedFamilias" / "paternity.fam").read_text().splitlines() if FAM_DIR.is_dir() else []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    line=st.integers(min_value=0, max_value=max(len(_PATERNITY) - 1, 0)),
    junk=st.sampled_from(["", "x", "-1", "99999", "#TRUE#", '"', "1e400", "[DVI]", "0.5.5"]),
    drop=st.booleans(),
)
def test_read_fam__corrupted_files_raise_only_file_format_error(
    tmp_path: Path, line: int, junk: str, drop: bool
) -> None:
    lines = list(_PATERNITY)
    if drop:
        del lines[line]
    else:
        lines[line] = junk
    bad = tmp_path / "corrupt.fam"
    bad.write_text("\n".join(lines))
    try:
        read_fam(bad)
    except FileFormatError as exc:
        assert "\n" not in str(exc)


# ---------------------------------------------------------------------------
# generated cases: what is written is what is read
# ---------------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n_markers = draw(st.integers(1, 3))
    markers = []
    for k in range(n_markers):
        labels = draw(
            st.lists(
                st.sampled_from(["5", "6", "7", "8", "9", "9.3", "10", "11", "12", "13.2"]),
                min_size=2,
                max_size=6,
                unique=True,
            )
        )
        weights = draw(st.lists(st.integers(1, 50), min_size=len(labels), max_size=len(labels)))
        total = sum(weights)
        freqs = tuple(w / total for w in weights)
        kind = draw(st.sampled_from(["none", "equal", "proportional", "stepwise"]))
        models: tuple[MutationModel | None, MutationModel | None] = (None, None)
        if kind == "equal":
            models = (MutationModel("equal", rate=0.001), MutationModel("equal", rate=0.002))
        elif kind == "proportional":
            models = (MutationModel("proportional", rate=0.001), MutationModel("proportional", rate=0.001))
        elif kind == "stepwise":
            models = (
                MutationModel("stepwise", rate=0.001, rate2=1e-6, range=0.1),
                MutationModel("stepwise", rate=0.002, rate2=0.0, range=0.2),
            )
        markers.append(
            Marker(
                f"D{k + 1}S{k + 10}",
                tuple(labels),
                freqs,
                female=models[0],
                male=models[1],
                database_size=draw(st.sampled_from([None, 500])),
            )
        )

    def genotype() -> dict[str, tuple[str, ...]]:
        out = {}
        for m in markers:
            if draw(st.booleans()):
                out[m.name] = (draw(st.sampled_from(m.alleles)), draw(st.sampled_from(m.alleles)))
        return out

    remains = tuple(
        Sample(f"V{k}", draw(st.sampled_from(["M", "F", None])), genotype()) for k in range(draw(st.integers(0, 3)))
    )
    families = []
    for f in range(draw(st.integers(0, 2))):
        ped = Pedigree(
            [
                Individual(f"F{f}-FA", sex="M"),
                Individual(f"F{f}-MO", sex="F"),
                Individual(f"Missing {f}", f"F{f}-FA", f"F{f}-MO", draw(st.sampled_from(["M", "F"]))),
                Individual(f"F{f}-R1", f"F{f}-FA", f"F{f}-MO", draw(st.sampled_from(["M", "F"]))),
            ]
        )
        gts = {f"F{f}-R1": genotype(), f"F{f}-MO": genotype()}
        families.append(
            Family(f"Fam{f}", ped, genotypes={k: v for k, v in gts.items() if v}, missing=(f"Missing {f}",))
        )
    theta = draw(st.sampled_from([0.0, 0.01, 0.02]))
    return Case("gen", tuple(markers), remains=remains, families=tuple(families), theta=theta)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_write_fam__generated_cases_read_back(tmp_path: Path, case: Case) -> None:
    out = tmp_path / "gen.fam"
    write_fam(case, out)
    back, _ = read_fam(out, name="gen")
    assert _canon(back) == _canon(case)
    # and the text parses as Familias lays it out
    assert parse_fam(out).theta == case.theta
    assert case_to_fam_text(back) == case_to_fam_text(case)
