"""Marker-name and allele-label normalisation shared by every reader.

Marker names meet through :func:`~opendvi.core.markers.canonical_marker_name`
(vWA/VWA, TH01/THO1, Penta D/PENTA_D/PentaD, Amelogenin/AMEL) and are written
in opendvi's spelling (:func:`~opendvi.core.markers.display_marker_name`).
Allele labels are kept as strings: "12", "9.3", "31.2"; "12.0" becomes "12";
"OL" (off-ladder) is recognised and never turned into a number.

Readers of profile files use :func:`is_marker_name` to tell a marker
column from a column they do not know, so that an unknown marker is reported
(by name and place), never silently dropped.
"""

from __future__ import annotations

import re

from opendvi.core.markers import canonical_marker_name, display_marker_name

#: Off-ladder call as written by GeneMapper ID/ID-X and most CE software.
OFF_LADDER = "OL"

#: The sex marker (amelogenin), canonical key.
AMEL = "AMEL"

# Loci of the common kits (shared/data/kits/str_kits_loci.csv): autosomal
# STRs, Y-STRs, the sex marker and quality sensors. Canonical keys.
_KNOWN = """
AMEL CSF1PO D10S1248 D10S1435 D10S2325 D11S2368 D11S554 D12S391 D13S317 D13S325 D14S1434
D15S659 D16S539 D17S1301 D17S906 D18S1364 D18S51 D19S253 D19S433 D1S1656 D20S482 D21S11
D21S2055 D22GATA198B05 D22S1045 D2S1338 D2S1360 D2S441 D3S1358 D3S1744 D3S3045 D4S2366
D5S2500 D5S2800 D5S818 D6S1043 D6S474 D6S477 D7S1517 D7S3048 D7S820 D8S1132 D8S1179
D9S1122 APOAI1 FGA PENTAD PENTAE SE33 TH01 TPOX VWA
DYF387S1 DYS19 DYS385 DYS385A DYS385B DYS389I DYS389II DYS390 DYS391 DYS392 DYS393 DYS437
DYS438 DYS439 DYS448 DYS449 DYS456 DYS458 DYS460 DYS481 DYS518 DYS533 DYS549 DYS570
DYS576 DYS627 DYS635 DYS643 YGATAH4 YINDEL QS1 QS2
"""
KNOWN_MARKERS: frozenset[str] = frozenset(canonical_marker_name(m) for m in _KNOWN.split())

# What an STR locus name looks like (D3S1358, DYS389 II, D22GATA198B05, ...).
_LOCUS_PATTERN = re.compile(r"^(D[0-9XY]{1,2}S\d{1,4}[A-Z]?|DYS\d{2,4}[A-Z]*I*|DXS\d{2,5}|D\d{1,2}GATA\w+|HPRTB)$")

_ALLELE = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
_BIN = re.compile(r"^[<>]\s*\d{1,3}(\.\d{1,2})?$")


def header_key(header: str) -> str:
    """A column header as readers compare it: no spaces, ``_``, ``-`` or ``.``, lower case."""
    return re.sub(r"[\s_\-.]+", "", header).lower()


def marker_name(name: str) -> str:
    """The spelling opendvi writes for a marker name read from a file."""
    # TP0X (a zero) is a CODIS spelling of TPOX.
    key = canonical_marker_name(name)
    if key == "TP0X":
        return "TPOX"
    return display_marker_name(name)


def is_marker_name(name: str) -> bool:
    """True when ``name`` is a known locus or looks like one (D3S1358, DYS19...)."""
    key = canonical_marker_name(name)
    if key in KNOWN_MARKERS or key == "TP0X":
        return True
    return bool(_LOCUS_PATTERN.match(key))


def is_amelogenin(name: str) -> bool:
    return canonical_marker_name(name) == AMEL


def normalise_allele(label: object, *, allow_off_ladder: bool = True) -> str | None:
    """An allele label as opendvi keeps it, or ``None`` when it is not one.

    >>> normalise_allele(" 12 "), normalise_allele("9.3"), normalise_allele(12.0)
    ('12', '9.3', '12')
    >>> normalise_allele("ol"), normalise_allele("abc") is None
    ('OL', True)
    """
    if isinstance(label, bool) or label is None:
        return None
    if isinstance(label, float):
        if label != label or label < 0:
            return None
        text = str(int(label)) if label.is_integer() else repr(label)
    else:
        text = str(label).strip()
    if not text:
        return None
    if text.upper() == OFF_LADDER:
        return OFF_LADDER if allow_off_ladder else None
    if _BIN.match(text):  # "<7", ">30": outside the ladder, reported like OL
        return text.replace(" ", "") if allow_off_ladder else None
    if _ALLELE.match(text):
        whole, _, frac = text.partition(".")
        whole = str(int(whole))
        if frac and int(frac) == 0:
            return whole
        return f"{whole}.{frac}" if frac else whole
    return None


def is_off_ladder(allele: str) -> bool:
    """True for an off-ladder call: "OL", or a bin such as "<7" or ">30"."""
    return allele == OFF_LADDER or bool(_BIN.match(allele))


def parse_sex(value: object, *, allow_unknown: bool = True) -> str | None:
    """'M'/'F' from the usual spellings (M, male, 1, F, female, 2); ``None`` for
    unknown (blank, 0, U, unknown) when allowed; raises ``ValueError`` otherwise."""
    t = str(value if value is not None else "").strip().lower()
    if t in ("m", "male", "1", "man", "boy", "mann", "xy"):
        return "M"
    if t in ("f", "female", "2", "woman", "girl", "k", "kvinne", "w", "xx"):
        return "F"
    if t in ("", "0", "u", "unknown", "na", "nan", "none", "?", "-") and allow_unknown:
        return None
    raise ValueError(f"sex {value!r} is not M or F")


def parse_bool(value: object) -> bool:
    """Yes/no spellings of template cells (missing: yes, x, 1, true)."""
    t = str(value if value is not None else "").strip().lower()
    if t in ("1", "yes", "y", "true", "t", "x", "missing", "ja"):
        return True
    if t in ("", "0", "no", "n", "false", "f", "nei"):
        return False
    raise ValueError(f"{value!r} is not yes or no")
