"""The verbal equivalent of a likelihood ratio: the ENFSI scale.

ENFSI Guideline for Evaluative Reporting in Forensic Science (2015), the
table of verbal equivalents: LR 1, the findings support neither proposition;
2-10 weak, 10-100 moderate, 100-1,000 moderately strong, 1,000-10,000
strong, 10,000-1,000,000 very strong, 1,000,000 and above extremely strong
support for the first proposition. An LR below 1 reads the same scale, for
the alternative proposition, on 1/LR. An LR of 0 is an exclusion (the
findings are impossible under the first proposition).

Band edges (the guideline's ranges share their ends): a band holds its lower
end, so LR 10 is *moderate*, LR 1,000,000 *extremely strong*. The table
begins the weak band at 2: an LR between 1/2 and 2 (exclusive) is read as
supporting neither proposition. In log10: ``|log10 LR| < log10 2`` none;
``< 1`` weak; ``< 2`` moderate; ``< 3`` moderately strong; ``< 4`` strong;
``< 6`` very strong; else extremely strong.

>>> verbal_equivalent(6.0).band, verbal_equivalent(6.0).favours
('extremely_strong', 'H1')
>>> verbal_equivalent(-1.5).band, verbal_equivalent(-1.5).favours
('moderate', 'H2')
>>> verbal_equivalent(None).band
'exclusion'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from opendvi.i18n import gettext as _

LOG10_2 = math.log10(2.0)

#: (upper end of |log10 LR|, exclusive; band), in order
BANDS: tuple[tuple[float, str], ...] = (
    (LOG10_2, "none"),
    (1.0, "weak"),
    (2.0, "moderate"),
    (3.0, "moderately_strong"),
    (4.0, "strong"),
    (6.0, "very_strong"),
    (math.inf, "extremely_strong"),
)


@dataclass(frozen=True)
class Verbal:
    """A band of the scale: ``band`` (``exclusion``, ``none``, ``weak``, ... ``extremely_strong``),
    ``favours`` (``"H1"``, ``"H2"`` or None) and ``text``, the sentence in the current locale."""

    band: str
    favours: str | None
    text: str


def band_of(log10_lr: float | None) -> tuple[str, str | None]:
    """``(band, favours)`` of a log10 LR; None or -inf is an LR of 0 (an exclusion)."""
    if log10_lr is None or log10_lr == -math.inf:
        return "exclusion", "H2"
    if math.isnan(log10_lr):
        raise ValueError("log10 LR is NaN: no verbal equivalent")
    size = abs(log10_lr)
    for upper, band in BANDS:
        if size < upper:
            if band == "none":
                return band, None
            return band, "H1" if log10_lr > 0 else "H2"
    return "extremely_strong", "H1" if log10_lr > 0 else "H2"  # pragma: no cover (inf)


def _text(band: str, favours: str | None) -> str:
    """Whole sentences, one per band and side (never assembled from pieces: translators see each)."""
    if band == "exclusion":
        return _("Exclusion: the findings are impossible if the remains are of the missing person (LR 0).")
    if band == "none":
        return _("The findings support neither proposition over the other.")
    h1 = {
        "weak": _("The findings provide weak support for H1 rather than H2."),
        "moderate": _("The findings provide moderate support for H1 rather than H2."),
        "moderately_strong": _("The findings provide moderately strong support for H1 rather than H2."),
        "strong": _("The findings provide strong support for H1 rather than H2."),
        "very_strong": _("The findings provide very strong support for H1 rather than H2."),
        "extremely_strong": _("The findings provide extremely strong support for H1 rather than H2."),
    }
    h2 = {
        "weak": _("The findings provide weak support for H2 rather than H1."),
        "moderate": _("The findings provide moderate support for H2 rather than H1."),
        "moderately_strong": _("The findings provide moderately strong support for H2 rather than H1."),
        "strong": _("The findings provide strong support for H2 rather than H1."),
        "very_strong": _("The findings provide very strong support for H2 rather than H1."),
        "extremely_strong": _("The findings provide extremely strong support for H2 rather than H1."),
    }
    return (h1 if favours == "H1" else h2)[band]


def band_label(band: str) -> str:
    """The band's short name in the current locale (a table cell, a badge)."""
    return {
        "exclusion": _("exclusion"),
        "none": _("no support"),
        "weak": _("weak support"),
        "moderate": _("moderate support"),
        "moderately_strong": _("moderately strong support"),
        "strong": _("strong support"),
        "very_strong": _("very strong support"),
        "extremely_strong": _("extremely strong support"),
    }[band]


def verbal_equivalent(log10_lr: float | None) -> Verbal:
    """The ENFSI verbal equivalent of an LR given as log10 (None: an LR of 0), in the current locale.

    H1: the remains are of the missing person; H2: they are of a person unrelated to the family,
    drawn from the population (the alternative).
    """
    band, favours = band_of(log10_lr)
    return Verbal(band=band, favours=favours, text=_text(band, favours))
