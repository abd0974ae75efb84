"""CODIS CMF 3.2 XML: the sample files, safe parsing, schema validation,
writing and reading back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opendvi.core.case import Sample
from opendvi.core.errors import FileFormatError
from opendvi.io.cmf import read_cmf, write_cmf

from .conftest import SHARED

CMF = SHARED / "data" / "formats" / "codis_cmf"


def test_read_cmf__single_profile() -> None:
    ps = read_cmf(CMF / "smartrank_Codis-Single-Profile.xml")
    (rec,) = ps.records
    assert rec.id == "ABCD1234NL#01" and rec.sex == "M"
    assert rec.genotypes["D16S539"] == ("10", "11")
    assert not rec.is_mixture
    (s,) = ps.samples()
    assert s.genotypes["vWA"] == ("16", "16")  # one CODIS allele = homozygote
    # SOURCELAB is longer than the 2017 XSD allows: accepted with a note
    assert any("SOURCELAB" in n for n in ps.notes)


def test_read_cmf__mixture_with_bom_is_read_and_flagged() -> None:
    ps = read_cmf(CMF / "smartrank_Codis-Mix-Profile-With-BOM-Header.xml")
    (rec,) = ps.records
    assert rec.is_mixture and rec.category == "Forensic Mixture"
    with pytest.raises(FileFormatError, match="mixture"):
        ps.samples()


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("smartrank_broken-allele.xml", "/CODISImportFile/SPECIMEN/LOCUS[3]/ALLELE[1]"),
        ("smartrank_broken-locus.xml", "/CODISImportFile/SPECIMEN/LOCUS[4]"),
        ("smartrank_no-profiles.xml", "/CODISImportFile"),
        ("smartrank_not-a-codis-file.xml", "/rootnode"),
        ("osiris_CmfList.xml", "/CmfList"),
    ],
)
def test_read_cmf__broken_files_name_the_element(name: str, where: str) -> None:
    with pytest.raises(FileFormatError) as info:
        read_cmf(CMF / name)
    assert info.value.field == where
    assert "\n" not in str(info.value) and name in str(info.value)


def test_read_cmf__entities_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
        '<CODISImportFile xmlns="urn:CODISImportFile-schema"><HEADERVERSION>&lol2;</HEADERVERSION></CODISImportFile>'
    )
    with pytest.raises(FileFormatError, match="refused"):
        read_cmf(bomb)
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<CODISImportFile xmlns="urn:CODISImportFile-schema"><HEADERVERSION>&x;</HEADERVERSION></CODISImportFile>'
    )
    with pytest.raises(FileFormatError, match="refused"):
        read_cmf(xxe)


def test_read_cmf__not_xml_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "x.xml"
    f.write_text("<?xml version='1.0'?>\n<CODISImportFile>\n<oops>\n</CODISImportFile>\n")
    with pytest.raises(FileFormatError, match="invalid XML") as info:
        read_cmf(f)
    assert info.value.line == 4


def test_write_cmf__refuses_what_codis_cannot_take(tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    with pytest.raises(FileFormatError, match="24"):
        write_cmf([Sample("X" * 30, "M", {"TH01": ("6", "7")})], out)
    with pytest.raises(FileFormatError, match="schema"):
        write_cmf([Sample("S1", "M", {"D6S1043": ("6", "7")})], out)  # not a CODIS locus name
    assert not out.exists()


SAMPLES = st.lists(
    st.tuples(
        st.sampled_from(["M", "F", None]),
        st.dictionaries(
            st.sampled_from(["D3S1358", "vWA", "TH01", "D21S11", "Penta E", "FGA", "TPOX"]),
            st.lists(st.sampled_from(["6", "7", "9.3", "10", "12", "31.2"]), min_size=1, max_size=2, unique=True),
            max_size=5,
        ).filter(bool),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=SAMPLES)
def test_write_cmf__generated_profiles_read_back(tmp_path: Path, data: list) -> None:
    samples = [Sample(f"PM-{k}", sex, {m: (a[0], a[-1]) for m, a in g.items()}) for k, (sex, g) in enumerate(data)]
    out = tmp_path / "gen.xml"
    write_cmf(samples, out)
    back = read_cmf(out).samples()
    # CODIS writes a female's AMEL as a lone X, which reads back as unknown sex (core.rules.amelogenin_sex)
    want = [(s.id, "M" if s.sex == "M" else None, dict(s.genotypes)) for s in samples]
    assert [(s.id, s.sex, dict(s.genotypes)) for s in back] == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(0, 100_000), junk=st.sampled_from(["", "<", ">", "&", "</LOCUS>", "<ALLELE>", "x", '"']))
def test_read_cmf__corrupted_files_raise_only_file_format_error(tmp_path: Path, pos: int, junk: str) -> None:
    text = (CMF / "smartrank_Codis-Single-Profile.xml").read_text()
    k = pos % len(text)
    f = tmp_path / "bad.xml"
    f.write_text(text[:k] + junk + text[k + 1 :])
    try:
        read_cmf(f)
    except FileFormatError as exc:
        assert "\n" not in str(exc)


def test_read_cmf__unknown_encoding_in_declaration_is_a_format_error(tmp_path: Path) -> None:
    # found by Hypothesis: encoding="tf-8" made the XML parser raise LookupError
    path = tmp_path / "bad-encoding.xml"
    path.write_bytes(b'<?xml version="1.0" encoding="tf-8"?><CODISImportFile/>')
    with pytest.raises(FileFormatError, match="encoding"):
        read_cmf(path)
