"""Plots of an operation, a family and a candidate: SVG and PNG drawn on the server with matplotlib's
Agg backend (``docs/reports.md``, Exports and plots).

* :func:`lr_histogram`: the best log10 LR of each remains of an operation in the current (latest
  finished) matching run, the run's LR threshold and LR = 1 marked;
* :func:`progress_plot`: cumulative counts by date of the remains received, typed, matched, proposed and
  confirmed (:func:`opendvi.store.repositories.operation_progress` says what each date is);
* :func:`distribution_plot`: a family's LR distribution, simulated log10 LR of the true missing person and
  of an unrelated person given the family's typed references (:func:`family_distribution`, from the power
  module's exact per-marker distributions), with a candidate's log10 LR marked when given.

Every text goes through gettext when the figure is drawn (DejaVu Sans, matplotlib's own font, has
Cyrillic); SVG keeps text as text (``svg.fonttype = none``), so labels can be searched and read by a
screen reader. Anything that has no data yet gets :func:`empty_plot`: a valid image with a message.

matplotlib keeps global state (fonts, its text cache), so one figure is drawn at a time in a process
(:data:`_DRAW`); results are kept in a small LRU cache (:class:`LRU`) keyed by what the picture depends
on, so a page shows a cached picture until its data change.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from opendvi.i18n import format_number
from opendvi.i18n import gettext as _
from opendvi.store import repositories as repo
from opendvi.store.models import Operation

FORMATS = ("svg", "png")
MEDIA = {"svg": "image/svg+xml", "png": "image/png"}
#: simulated people per distribution (true missing person, unrelated person): a few milliseconds
NSIM = 20_000
SEED = 1
#: the LR threshold marked when a run does not state one (log10)
DEFAULT_THRESHOLD_LOG10 = 4.0
DARK = "#23395b"
RED = "#a00"
GREY = "#888"
COLOURS = {"received": "#23395b", "typed": "#3a7ca5", "matched": "#81a4cd", "proposed": "#d08c2d",
           "confirmed": "#2a7f3f"}

_DRAW = threading.Lock()


class LRU:
    """A small thread-safe least-recently-used cache (per process)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


#: rendered pictures (bytes) and simulated distributions
CACHE = LRU(256)


# ---------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 3.4) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _save(fig: Any, fmt: str) -> bytes:
    """SVG (text kept as text, no time stamp: the same data give the same bytes) or PNG."""
    import matplotlib

    if fmt not in FORMATS:
        raise ValueError(f"format must be svg or png, found {fmt!r}")
    buf = io.BytesIO()
    if fmt == "svg":
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "opendvi"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    else:
        fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def draw(build: Callable[[], Any], fmt: str) -> bytes:
    """``build()`` makes a figure; one drawing at a time in the process. Texts are plain: a code with
    ``$`` in it (codes come from imported files) is no mathtext to parse."""
    import matplotlib

    with _DRAW, matplotlib.rc_context({"text.parse_math": False}):
        return _save(build(), fmt)


def empty_plot(message: str, *, title: str = "", fmt: str = "svg") -> bytes:
    """A picture saying why there is nothing to draw yet."""

    def build() -> Any:
        fig = _figure(7.0, 2.2)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_axis_off()
        ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#444", wrap=True,
                transform=ax.transAxes)
        if title:
            ax.set_title(title, fontsize=10)
        return fig

    return draw(build, fmt)


# ---------------------------------------------------------------------------
# (a) the operation's best LR per remains
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BestLR:
    """The best log10 LR of each remains of an operation in a run (``None``: every candidate excluded)."""

    run_id: int | None
    threshold_log10: float
    values: tuple[float | None, ...]

    @property
    def finite(self) -> list[float]:
        return [v for v in self.values if v is not None]


def operation_best_lr(db: Session, *, operation: Operation) -> BestLR:
    """The best log10 LR per remains of ``operation`` in the current run (the latest finished one, as on
    the dashboard and the remains list): remains without any candidate in it are not counted."""
    run, best = repo.best_lr_per_remains(db, operation=operation)
    if run is None:
        return BestLR(None, DEFAULT_THRESHOLD_LOG10, ())
    t = (run.parameters or {}).get("lr_threshold")
    threshold = math.log10(t) if isinstance(t, int | float) and t > 0 else DEFAULT_THRESHOLD_LOG10
    return BestLR(run.id, threshold, tuple(best))


def lr_histogram(data: BestLR, *, operation: str, fmt: str = "svg") -> bytes:
    """The histogram of :func:`operation_best_lr`; an empty-state picture without a run or remains."""
    title = _("Operation %(code)s: best log10 LR per remains", code=operation)
    if data.run_id is None:
        return empty_plot(_("No finished matching run yet."), title=title, fmt=fmt)
    if not data.values:
        return empty_plot(_("No remains of this operation in matching run %(run)s.", run=data.run_id), title=title,
                          fmt=fmt)
    vals = np.array(data.finite, dtype=float)
    n_zero = len(data.values) - len(vals)

    def build() -> Any:
        from matplotlib.ticker import MaxNLocator

        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        if len(vals):
            lo = math.floor(min(float(vals.min()), 0.0))
            hi = math.ceil(max(float(vals.max()), data.threshold_log10)) + 1
            width = 1.0 if hi - lo <= 60 else math.ceil((hi - lo) / 60)
            bins = np.arange(lo, hi + width, width)
            counts, _edges, _bars = ax.hist(vals, bins=bins, color=DARK, edgecolor="white", linewidth=0.5)
            ax.set_ylim(0, max(1.0, float(counts.max())) * 1.3)  # room for the legend above the bars
        ax.axvline(0.0, color=GREY, lw=0.8, ls=":", label=_("LR = 1"))
        ax.axvline(data.threshold_log10, color=RED, lw=1.2, ls="--",
                   label=_("threshold of the run: log10 LR %(t)s", t=format_number(data.threshold_log10)))
        ax.set_xlabel(_("best log10 LR of the remains"))
        ax.set_ylabel(_("remains"))
        ax.set_title(_("%(title)s (run %(run)s)", title=title, run=data.run_id), fontsize=10)
        note = _("%(n)s remains, %(z)s with every candidate excluded (LR 0)", n=len(data.values), z=n_zero)
        ax.text(1.0, -0.2, note, transform=ax.transAxes, ha="right", va="top", fontsize=8, color="#444")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left", fontsize=8, frameon=True, framealpha=0.85, edgecolor="none")
        fig.tight_layout()
        return fig

    return draw(build, fmt)


# ---------------------------------------------------------------------------
# (b) the operation's progress
# ---------------------------------------------------------------------------

PROGRESS_SERIES = ("received", "typed", "matched", "proposed", "confirmed")


def progress_plot(series: Mapping[str, Mapping[date, int]], *, operation: str, expected: int | None = None,
                  fmt: str = "svg") -> bytes:
    """Cumulative counts of :func:`~opendvi.store.repositories.operation_progress` by date, one line per series."""
    title = _("Operation %(code)s: progress", code=operation)
    labels = {"received": _("received"), "typed": _("typed"), "matched": _("matched"),
              "proposed": _("proposed"), "confirmed": _("confirmed")}
    if not any(series.get(k) for k in PROGRESS_SERIES):
        return empty_plot(_("No remains received yet."), title=title, fmt=fmt)
    all_days = sorted({d for k in PROGRESS_SERIES for d in series.get(k, {})})
    first, last = all_days[0] - timedelta(days=1), all_days[-1] + timedelta(days=1)

    def build() -> Any:
        import matplotlib.dates as mdates
        from matplotlib.ticker import MaxNLocator

        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        for k in PROGRESS_SERIES:
            days = series.get(k) or {}
            xs = [first, *days.keys(), last] if days else [first, last]
            ys = [0, *np.cumsum(list(days.values())).tolist(), sum(days.values())] if days else [0, 0]
            total = ys[-1]
            ax.step([mdates.date2num(x) for x in xs], ys, where="post", color=COLOURS[k], lw=1.6,
                    label=_("%(series)s: %(n)s", series=labels[k], n=total), marker="o" if len(xs) <= 4 else None)
        if expected:
            ax.axhline(expected, color=GREY, ls="--", lw=0.8, label=_("expected: %(n)s", n=expected))
        span = (last - first).days
        ax.xaxis.set_major_locator(mdates.DayLocator() if span <= 8 else mdates.AutoDateLocator(minticks=3, maxticks=8))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.set_xlim(mdates.date2num(first), mdates.date2num(last))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.set_xlabel(_("date (UTC)"))
        ax.set_ylabel(_("remains (cumulative)"))
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        fig.autofmt_xdate()
        fig.tight_layout()
        return fig

    return draw(build, fmt)


# ---------------------------------------------------------------------------
# (c) a family's LR distribution, a candidate marked on it
# ---------------------------------------------------------------------------

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Distribution:
    """Simulated log10 LR of the true missing person and of an unrelated person given the family's typed
    references (``-inf``: excluded, LR 0), with the exact exclusion probability of an unrelated person."""

    family: str
    missing: str
    true: FloatArray
    unrelated: FloatArray
    exclusion: float
    nsim: int
    seed: int
    n_typed: int

    @property
    def unrelated_excluded(self) -> float:
        return float(np.mean(np.isneginf(self.unrelated))) if len(self.unrelated) else 0.0


def family_distribution(case: Any, family: str, missing: str | None = None, *, nsim: int = NSIM,
                        seed: int = SEED) -> Distribution:
    """The distributions of :class:`Distribution` for ``missing`` (default: the family's first missing
    person) of ``family`` in ``case`` (a :class:`opendvi.core.case.Case`).

    Per marker, the power module gives M's genotype distribution given the references (``P``) and the
    log10 LR of each genotype (:func:`opendvi.power.marker_power`, forrel's mutation convention). The
    same genotype in an unrelated person has probability ``q = P / LR``, and an unrelated person is
    excluded at the marker with the remaining probability (the exclusion power). Draws are independent
    across markers, ``nsim`` each, with ``seed`` (reproducible).
    Raises :class:`opendvi.power.UnevaluableFamily` when the references are impossible at a marker.
    """
    from opendvi.power import UnevaluableFamily, marker_power, simulate_log10_lr

    case, _notes = case.with_unseen_alleles()
    fam = case.family(family)
    mp = missing or (fam.missing[0] if fam.missing else None)
    if mp is None or mp not in fam.missing:
        raise ValueError(f"family {family} has no missing person {missing!r}")
    per_marker = [marker_power(fam, mp, m, theta=case.theta) for m in case.markers]
    bad = [m.marker for m in per_marker if m.impossible]
    if bad:
        raise UnevaluableFamily(fam.id, bad)
    true_atoms: list[tuple[FloatArray, FloatArray]] = []
    unrel_atoms: list[tuple[FloatArray, FloatArray]] = []
    survive = 1.0
    for m in per_marker:
        p = np.asarray(m.atoms_p, dtype=float)
        lv = np.asarray(m.atoms_l, dtype=float)
        true_atoms.append((p, lv))
        q = p * np.power(10.0, -lv)
        excluded = max(0.0, 1.0 - float(q.sum()))
        survive *= 1.0 - excluded
        if excluded > 1e-12:
            unrel_atoms.append((np.append(q, excluded), np.append(lv, -np.inf)))
        else:
            unrel_atoms.append((q, lv))
    with np.errstate(invalid="ignore"):
        true = simulate_log10_lr(true_atoms, nsim=nsim, seed=seed)
        unrelated = simulate_log10_lr(unrel_atoms, nsim=nsim, seed=seed + 1)
    n_typed = sum(1 for g in fam.genotypes.values() if g)
    return Distribution(family=fam.id, missing=mp, true=true, unrelated=unrelated, exclusion=1.0 - survive,
                        nsim=nsim, seed=seed, n_typed=n_typed)


def lr_label(log10_lr: float | None) -> str:
    """The marked value's label: ``log10 LR = 12.34``, or ``LR = 0`` for an exclusion."""
    if log10_lr is None or (isinstance(log10_lr, float) and math.isinf(log10_lr) and log10_lr < 0):
        return _("LR = 0 (excluded)")
    return _("log10 LR = %(v)s", v=format_number(log10_lr, 2))


def distribution_plot(dist: Distribution, *, mark: tuple[str, float | None] | None = None,
                      title: str | None = None, fmt: str = "svg") -> bytes:
    """Both distributions of ``dist`` as overlaid histograms (an unrelated person's exclusions counted in
    the legend), the threshold log10 LR 4 marked, and ``mark`` = (what, log10 LR or None) as a vertical
    line with its value written beside it."""
    title = title or _("Family %(family)s, %(missing)s: simulated LR distribution", family=dist.family,
                       missing=dist.missing)
    if dist.n_typed == 0:
        return empty_plot(_("No typed reference in family %(family)s yet: no LR distribution.", family=dist.family),
                          title=title, fmt=fmt)
    t = dist.true[np.isfinite(dist.true)]
    u = dist.unrelated[np.isfinite(dist.unrelated)]
    excluded = dist.unrelated_excluded

    def build() -> Any:
        fig = _figure(7.0, 3.6)
        ax = fig.add_subplot(1, 1, 1)
        both = np.concatenate([t, u]) if len(u) else t
        marked = mark[1] if mark and mark[1] is not None else None
        lo = math.floor(min(float(both.min()) if len(both) else 0.0, 0.0, marked if marked is not None else 0.0))
        hi = math.ceil(max(float(both.max()) if len(both) else 0.0, DEFAULT_THRESHOLD_LOG10,
                           marked if marked is not None else 0.0))
        bins = np.linspace(lo, hi, max(10, min(80, int((hi - lo) * 4) + 1)))
        n = max(1, dist.nsim)
        if len(t):
            ax.hist(t, bins=bins, weights=np.full(len(t), 1.0 / n), color=DARK, alpha=0.75,
                    label=_("true missing person (median log10 LR %(m)s)",
                            m=format_number(float(np.median(dist.true)), 1)))
        ax.hist(u, bins=bins, weights=np.full(len(u), 1.0 / n), color="#d08c2d", alpha=0.6,
                label=_("unrelated person (%(p)s excluded, LR 0)", p=format_number(100 * excluded, 1) + " %"))
        ax.axvline(DEFAULT_THRESHOLD_LOG10, color=GREY, lw=0.8, ls="--", label=_("log10 LR 4"))
        ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # room for the marked value's label
        if mark is not None:
            what, value = mark
            x = value if value is not None else lo
            text = _("%(what)s: %(value)s", what=what, value=lr_label(value))
            ax.axvline(x, color=RED, lw=1.6)
            ax.text(x, 0.97, " " + text, transform=ax.get_xaxis_transform(), ha="left" if x < (lo + hi) / 2
                    else "right", va="top", fontsize=8, color=RED,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        ax.set_xlim(lo, hi)
        ax.set_xlabel(_("log10 LR"))
        ax.set_ylabel(_("probability"))
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), fontsize=8, frameon=False, ncol=1,
                  title=_("%(n)s simulations each, seed %(seed)s", n=dist.nsim, seed=dist.seed), title_fontsize=7,
                  alignment="left")
        fig.tight_layout()
        return fig

    return draw(build, fmt)


def medians(dist: Distribution) -> tuple[float, float]:
    """The medians of the true and the unrelated log10 LR (``-inf`` when most unrelated are excluded)."""
    return float(np.median(dist.true)), float(np.median(dist.unrelated))
