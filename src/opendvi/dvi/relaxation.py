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

Each warm re-solve still works on the whole component (11 ms a call at 5,000
remains, one component). :class:`LocalRelaxation` answers the same questions
from the rows near the change, the others priced at the whole relaxation's
duals: a bound by weak duality that the small program's solution reaches,
or rows join it. Same answers (the benchmark compares every GLR), a small
program each. (Growing the small program by the options whose reduced costs
disagree with its own duals, tried first, did not converge: the relaxation
is degenerate, and each round priced in hundreds of options.)
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Collection, Iterable
from typing import Any

import highspy
import numpy as np
from scipy.sparse import csr_matrix

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
        return self._answer(pick, value)

    def _answer(self, pick: np.ndarray, value: float) -> tuple[float, tuple[int, ...]] | None:
        """The rounding ``pick`` of a solution of value ``value``, proven optimal for the relaxation, as
        (score, chosen options): where it is a packing whose score reaches ``value``; None otherwise."""
        used = self._a @ pick.astype(float)  # each family and each remains at most once
        if used.size and float(used.max()) > 1.5:
            return None
        picked = np.nonzero(pick)[0]
        score = math.fsum(self._scores[picked].tolist())
        if score < value - _TOL * (1.0 + abs(value)):
            return None  # fractional: the relaxation proves nothing about this rounding
        return score, tuple(self._options[int(j)] for j in picked)


#: rounds of growing the rows before a change is left to the whole relaxation
_MAX_ROUNDS = 60


class LocalRelaxation(PackingRelaxation):
    """:class:`PackingRelaxation` answering each change from the rows near it (a Lagrangian bound).

    The whole relaxation is solved once: its solution ``x*`` (the best packing, where integral) and
    its row duals ``y* >= 0``. For a change, a set of rows ``R`` (first those of the forbidden
    options the best uses) keeps its constraints; every other row is priced at ``y*``. Then, for any
    packing of the whole relaxation, its value is at most ``sum(y*) outside R + sum(max(0, d*_j))
    over the options away from R + L``, with ``d* = c - A'y*`` and ``L`` the small linear program
    over the options touching ``R`` with costs ``c_j - a_j'y*`` outside ``R``: a bound that holds
    whatever ``R`` (weak duality). The small program's solution, with ``x*`` elsewhere, is a
    solution of the whole relaxation when no row overflows; its value reaches the bound when every
    row outside ``R`` with ``y* > 0`` stays full. Rows that overflow or empty join ``R`` and the
    small program is solved again. Where ``x*`` is fractional or the rounds run out, the whole
    relaxation answers (:meth:`PackingRelaxation.best_without`)."""

    def __init__(self, model: Model, among: Collection[int] | None = None) -> None:
        super().__init__(model, among)
        self._csr = csr_matrix(self._a)
        self._x: np.ndarray | None = None
        self._small: highspy.Highs | None = None
        h = self._h
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            x = np.asarray(h.getSolution().col_value, dtype=float)
            if np.all((x < 1e-9) | (x > 1 - 1e-9)):  # integral: x* is a packing
                self._x = (x > 0.5).astype(float)
                self._y = np.maximum(np.asarray(h.getSolution().row_dual, dtype=float), 0.0)
                self._d = self._scores - self._a.T @ self._y

    def best_without(self, forbidden: Iterable[tuple[int, int]]) -> tuple[float, tuple[int, ...]] | None:
        forbidden = list(forbidden)
        if self._x is not None:
            cols = np.asarray(sorted({j for pair in forbidden for j in self._cols_of.get(pair, ())}), dtype=np.int64)
            found = self._local(cols)
            if found is not None:
                return found
        return super().best_without(forbidden)

    def _local(self, banned: np.ndarray) -> tuple[float, tuple[int, ...]] | None:
        assert self._x is not None
        a, csr, y, d, c = self._a, self._csr, self._y, self._d, self._scores
        n_rows, n_cols = a.shape
        allowed = np.ones(n_cols, dtype=bool)
        allowed[banned] = False
        base = self._x.copy()
        base[banned] = 0.0
        pos_allowed = float(np.sum(np.maximum(d, 0.0)[allowed]))
        in_r = np.zeros(n_rows, dtype=bool)
        freed = banned[self._x[banned] > 0.5] if banned.size else banned
        if freed.size:
            in_r[a[:, freed].indices] = True
        scale = 1.0 + float(np.sum(np.abs(c[base > 0.5])))
        for _round in range(_MAX_ROUNDS):
            rows = np.nonzero(in_r)[0]
            touching = np.zeros(n_cols, dtype=bool)
            if rows.size:
                touching[csr[rows].indices] = True
            touching &= allowed
            cols = np.nonzero(touching)[0]
            x = base.copy()
            x[cols] = 0.0
            small = 0.0
            if cols.size:
                block = a[:, cols][rows]
                cost = d[cols] + block.T @ y[rows]  # c_j priced at y* outside R
                sol = self._solve_small(cost, block.tocsc())
                if sol is None:
                    return None
                small, x[cols] = sol
            bound = float(np.sum(y[~in_r])) + pos_allowed - float(np.sum(np.maximum(d[cols], 0.0))) + small
            usage = a @ x
            over = (usage > 1.0 + 1e-9) & ~in_r
            emptied = (usage < 1.0 - 1e-9) & (y > 1e-12) & ~in_r
            value = float(c @ x)
            if not over.any() and bound - value <= _TOL * scale:
                return self._answer(x > 0.5, value)
            grow = over | emptied
            if not grow.any():
                return None  # a gap the rows cannot close (tolerances): the whole relaxation decides
            in_r |= grow
        return None

    def _solve_small(self, cost: np.ndarray, sub: Any) -> tuple[float, np.ndarray] | None:
        """The small program's value and solution (None when HiGHS does not find it optimal)."""
        n_cols, n_rows = int(cost.size), int(sub.shape[0])
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n_cols, n_rows
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.col_cost_ = np.asarray(cost, dtype=float)
        lp.col_lower_ = np.zeros(n_cols)
        lp.col_upper_ = np.ones(n_cols)
        lp.row_lower_ = np.full(n_rows, -highspy.kHighsInf)
        lp.row_upper_ = np.ones(n_rows)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n_cols, n_rows
        lp.a_matrix_.start_ = sub.indptr.astype(np.int32)
        lp.a_matrix_.index_ = sub.indices.astype(np.int32)
        lp.a_matrix_.value_ = np.asarray(sub.data, dtype=float)
        if self._small is None:
            self._small = _highs()
        h = self._small
        h.passModel(lp)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return float(h.getInfo().objective_function_value), np.asarray(h.getSolution().col_value, dtype=float)
