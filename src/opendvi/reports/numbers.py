"""An LR for people: the one rule by which the CLI's tables, the web pages (the ``lr`` filter of the
templates, the API's ``lr`` texts) and the reports write a likelihood ratio."""

from __future__ import annotations

import math


def format_lr(log10_lr: float | None) -> str:
    """The LR whose log10 is ``log10_lr``, for people to read.

    - ``None`` or -inf (an exclusion; the store keeps log10 0 as null): ``0``; +inf: ``∞``; NaN: ``-``;
    - 1e-3 < LR < 1e4: four significant digits (``0.5``, ``1``, ``2471``);
    - otherwise a mantissa of two decimals in [1, 10) and the exponent: ``1.20e+23``, ``5.00e-4``
      (9.999e5 is written ``1.00e+6``, never ``10.00e+5``).

    >>> [format_lr(x) for x in (None, -math.inf, math.inf, 0.0, 2.0, 3.999999, 23.079, -3.3)]
    ['0', '0', '∞', '1', '100', '1.00e+4', '1.20e+23', '5.01e-4']
    """
    if log10_lr is None or log10_lr == -math.inf:
        return "0"
    if log10_lr == math.inf:
        return "∞"
    if math.isnan(log10_lr):
        return "-"
    if -3 < log10_lr < 4:
        text = f"{10.0 ** log10_lr:.4g}"
        if "e" not in text:
            return text
    exp = math.floor(log10_lr)
    mant = 10 ** (log10_lr - exp)
    if round(mant, 2) >= 10.0:
        mant, exp = mant / 10.0, exp + 1
    return f"{mant:.2f}e{exp:+d}"
