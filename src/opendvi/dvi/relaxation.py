"""The linear relaxation of a component's set packing, kept warm in HiGHS for many small changes.

A GLR solve asks for the best assignment with one pairing forbidden: the best
of :mod:`opendvi.dvi.assignment`'s weighted set packing with the options holding
that pairing removed. The packing's linear relaxation (each option in [0, 1],
each family and each remains used at most once) bounds every such best from
above. Solved once, then re-solved by HiGHS's dual simplex from the previous
basis after the forbidden options' upper bounds are set to 0, each answer takes
a few pivots instead of a new integer program.

An answer is used only when it proves itself: the relaxation's solution,
rounded, is a packing (checked row by row), and its score (summed from the
options' own scores) reaches the relaxation's value. Then no packing does
better, and it is the exact best. Otherwise the caller falls back to the
integer program. On simulated national cases the relaxation is integral
for every call tried (:mod:`opendvi.dvi.components`, ``_call_glrs``).
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Collection, Iterable

import highspy
import numpy as np

from opendvi.dvi.assignment import Model, packing_matrix

#: relative tolerance of "the rounded packing reaches the relaxation's value"
_TOL = 1e-9
_BANNER = threading.Lock()
_banner_shown = False


def _highs() -> highspy.Highs:
    """A silent HiGHS instance. highspy's first instance in a process prints HiGHS's banner from C++
    onto file descriptor 1, which would corrupt a command's output (``--format json``): that one
    is made with the descriptor pointed at the null device."""
    global _banner_shown
    with _BANNER:
        if _banner_shown:
            h = highspy.Highs()
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            try:
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 1)
                    h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
            _banner_shown = True
    h.setOptionValue("output_flag", False)
    return h


class PackingRelaxation:
    """The relaxation of ``model`` in a HiGHS instance, over the options ``among`` (default all);
    :meth:`best_without` answers one change at a time."""

    def __init__(self, model: Model, among: Collection[int] | None = None) -> None:
        self.model = model
        self._options = sorted(among) if among is not None else list(range(len(model.options)))
        opts = [model.options[k] for k in self._options]
        # the packing's rows (each family, each remains at most once), one column per option
        a = packing_matrix(model, self._options)[3].tocsc()
        n_rows = a.shape[0]
        self._a = a
        #: the columns holding each pairing
        self._cols_of: dict[tuple[int, int], list[int]] = {}
        for j, o in enumerate(opts):
            for pair in o.pairs:
                self._cols_of.setdefault(pair, []).append(j)
        self._scores = np.array([o.score for o in opts], dtype=float)
        lp = highspy.HighsLp()
        lp.num_col_ = len(opts)
        lp.num_row_ = n_rows
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.col_cost_ = self._scores
        lp.col_lower_ = np.zeros(len(opts))
        lp.col_upper_ = np.ones(len(opts))
        lp.row_lower_ = np.full(n_rows, -highspy.kHighsInf)
        lp.row_upper_ = np.ones(n_rows)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = len(opts)
        lp.a_matrix_.num_row_ = n_rows
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data
        self._h = _highs()
        self._h.passModel(lp)

    def best_without(self, forbidden: Iterable[tuple[int, int]]) -> tuple[float, tuple[int, ...]] | None:
        """The best packing with the options holding any of the pairings ``forbidden`` (remains index,
        missing index) removed, as (score, chosen options), among the relaxation's options; None when
        the relaxation does not prove its rounded solution optimal (the caller then solves the
        integer program)."""
        cols = sorted({j for pair in forbidden for j in self._cols_of.get(pair, ())})
        h = self._h
        for j in cols:
            h.changeColBounds(j, 0.0, 0.0)
        try:
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            value = float(h.getInfo().objective_function_value)
            x = np.asarray(h.getSolution().col_value, dtype=float)
        finally:
            for j in cols:
                h.changeColBounds(j, 0.0, 1.0)
        pick = x > 0.5
        if cols and pick[cols].any():  # a forbidden option (bounds 0): never, but proven here
            return None
        used = self._a @ pick.astype(float)  # each family and each remains at most once
        if used.size and float(used.max()) > 1.5:
            return None
        picked = np.nonzero(pick)[0]
        chosen = tuple(self._options[int(j)] for j in picked)
        score = math.fsum(self._scores[picked].tolist())
        if score < value - _TOL * (1.0 + abs(value)):
            return None  # fractional: the relaxation proves nothing about this rounding
        return score, chosen
