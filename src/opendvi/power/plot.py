"""A picture of the LR distribution of the true missing person (matplotlib, PNG).

The exact distribution of log10 LR (the grid convolution of
:mod:`opendvi.power._inclusion`, gathered into bins of 0.1) as bars, the
thresholds 10^2 .. 10^6 as vertical lines, and the inclusion power at each.
matplotlib is imported only here, with its non-interactive Agg backend.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from opendvi.power._family import FamilyPower
from opendvi.power._inclusion import grid_pmf

BIN = 0.1


#: the picture's texts (English); a caller gives them in another language with ``labels``
LABELS = {
    "x": "log10 LR of the true missing person",
    "y": "probability",
    "title": "Family {family}, {missing}: E[log10 LR] = {mean} (sd {sd})",
}


def lr_distribution_png(result: FamilyPower, *, width: float = 7.0, height: float = 3.2, dpi: int = 100,
                        labels: dict[str, str] | None = None, number: Any = None) -> bytes:
    """The PNG bytes of the distribution of log10 LR of ``result``'s missing person. ``labels``: the
    texts of :data:`LABELS` (``str.format`` fields kept) in the reader's language; ``number(x, digits)``:
    numbers written by the reader's locale (default ``f"{x:.{digits}f}"``)."""
    text = {**LABELS, **(labels or {})}
    fmt = number or (lambda x, digits: f"{x:.{digits}f}")
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    s = result.summary
    atoms = [(m.atoms_p, m.atoms_l) for m in s.markers] + [(t.atoms_p, t.atoms_l) for t in s.lineage]
    pmf, start, h, _k = grid_pmf(atoms, grid=1e-3, max_bins=1 << 20)
    x = start + h * np.arange(len(pmf))
    edges_lo = math.floor(float(x[0]) / BIN) * BIN if len(x) else 0.0
    idx = np.floor((x - edges_lo) / BIN + 1e-9).astype(np.int64)
    mass = np.bincount(idx, weights=pmf)
    centers = edges_lo + BIN * (np.arange(len(mass)) + 0.5)
    keep = mass > 1e-6
    fig = Figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    if keep.any():
        lo, hi = centers[keep].min() - BIN, centers[keep].max() + BIN
        sel = (centers >= lo) & (centers <= hi)
        ax.bar(centers[sel], mass[sel], width=BIN, color="#23395b", edgecolor="none")
        ax.set_xlim(min(lo, -0.5), max(hi, 6.5))
    inc = s.inclusion.as_dict()
    for t, key in ((2, "100"), (4, "1e4"), (6, "1e6")):
        if key in inc:
            ax.axvline(t, color="#a00" if t == 4 else "#888", lw=1.2 if t == 4 else 0.8, ls="--")
            ax.text(t, ax.get_ylim()[1] * 0.95, f" P(LR≥1e{t}) = {fmt(inc[key], 3)}", fontsize=8, va="top",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8},
                    color="#a00" if t == 4 else "#555")
    # drawn plain: a code with "$" in it (codes come from imported files) is no mathtext to parse
    ax.set_xlabel(text["x"], parse_math=False)
    ax.set_ylabel(text["y"], parse_math=False)
    ax.set_title(text["title"].format(family=result.family, missing=result.missing, mean=fmt(s.e_log10_lr, 2),
                                      sd=fmt(s.sd_log10_lr, 2)), fontsize=10, parse_math=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
