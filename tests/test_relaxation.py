"""The warm HiGHS relaxation of a component's set packing (``dvi/relaxation.py``): every answer it
gives is the exact best with the pairing forbidden (brute force over the model), and where the
relaxation is fractional it gives none (the caller then solves the integer program)."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from opendvi.dvi.assignment import Constraints, Model, Option, solve_best
from opendvi.dvi.relaxation import LocalRelaxation, PackingRelaxation

from .test_joint_exact import _random_model


def _brute_best(model: Model, forbidden: set[tuple[int, int]]) -> float:
    """The best score over every packing that holds none of the ``forbidden`` pairings."""
    per_unit = [[None, *(k for k in ks if not set(model.options[k].pairs) & forbidden)] for ks in model.by_unit]
    best = -math.inf
    for combo in itertools.product(*per_unit):
        ks = [k for k in combo if k is not None]
        rs = [r for k in ks for r, _ in model.options[k].pairs]
        if len(rs) == len(set(rs)):
            best = max(best, model.score(ks))
    return best


def _is_packing(model: Model, chosen: tuple[int, ...]) -> bool:
    """Each family and each remains used at most once by the options ``chosen``."""
    rows = [("u", model.options[k].unit) for k in chosen]
    rows += [("r", r) for k in chosen for r, _ in model.options[k].pairs]
    return len(rows) == len(set(rows))


@pytest.mark.parametrize("kind", [PackingRelaxation, LocalRelaxation])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_every_answer__the_exact_best_with_the_pairing_forbidden(seed: int, kind: type[PackingRelaxation]) -> None:
    model = _random_model(seed, 6, [1, 2, 1, 3, 1], 0.5)
    relax = kind(model)
    pairs = sorted({p for o in model.options for p in o.pairs})
    answered = 0
    for pair in [None, *pairs]:  # repeated changes on one warm instance, each undone after
        forbidden = set() if pair is None else {pair}
        got = relax.best_without(forbidden)
        if got is None:
            continue
        answered += 1
        score, chosen = got
        assert score == pytest.approx(_brute_best(model, forbidden), abs=1e-9), pair
        assert score == pytest.approx(model.score(chosen), abs=1e-12)
        assert _is_packing(model, chosen), pair
        assert not any(set(model.options[k].pairs) & forbidden for k in chosen)
        alt = solve_best(model, Constraints(forbidden=frozenset(forbidden)))
        assert alt is not None and alt.score == pytest.approx(score, abs=1e-9)
    assert answered >= len(pairs) // 2  # the relaxation answers most changes


def test_among__the_best_over_those_options_only() -> None:
    model = _random_model(9, 6, [1, 2, 1, 2], 0.6)
    positive = [k for k, o in enumerate(model.options) if o.score > 0]
    got = PackingRelaxation(model, positive).best_without(())
    assert got is not None
    # options of score <= 0 never raise a packing: the best over the positive ones is the best
    assert got[0] == pytest.approx(_brute_best(model, set()), abs=1e-9)
    assert set(got[1]) <= set(positive)


def test_fractional_relaxation__no_answer() -> None:
    """Three families of two missing persons each place two of three remains: any two options
    share a remains, so the best packing takes one (score 10), while the relaxation takes each at
    one half (15). The rounding proves nothing and no answer is given."""
    options = [Option(0, ((0, 0), (1, 1)), 10.0, 10.0), Option(1, ((1, 2), (2, 3)), 10.0, 10.0),
               Option(2, ((0, 4), (2, 5)), 10.0, 10.0)]
    model = Model(("V0", "V1", "V2"), tuple(f"M{i}" for i in range(6)), ("F0", "F1", "F2"),
                  (0, 0, 1, 1, 2, 2), options, 0.0)
    relax = PackingRelaxation(model)
    assert relax.best_without(()) is None
    assert _brute_best(model, set()) == 10.0
    # with one option forbidden the rest is integral again: the other two still share remains V2
    got = relax.best_without({(0, 0)})
    assert got is not None and got[0] == pytest.approx(10.0)


def test_no_banner_on_standard_output() -> None:
    """HiGHS's first instance in a process prints a banner from C++; a command's output (JSON on
    standard output) must not carry it."""
    code = ("from opendvi.dvi.relaxation import PackingRelaxation\n"
            "from tests.test_relaxation import _tiny\n"
            "print(PackingRelaxation(_tiny()).best_without(()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "(5.0, (0,))"


def _tiny() -> Model:
    return Model(("V0",), ("M0",), ("F0",), (0,), [Option(0, ((0, 0),), 5.0, 5.0)], 0.0)


def test_no_positive_option__no_answer_and_the_integer_program_decides() -> None:
    from opendvi.dvi.components import _best_only

    model = Model(("V0",), ("M0",), ("F0",), (0,), [Option(0, ((0, 0),), -5.0, -5.0)], 0.0)
    assert _best_only(model) is None  # an empty relaxation proves nothing
    assert PackingRelaxation(model).best_without(()) == (0.0, ())
    other = _random_model(3, 6, [1, 2, 1, 3, 1], 0.5)
    tl = _best_only(other)
    assert tl is not None and tl.solutions[0].score == pytest.approx(_brute_best(other, set()), abs=1e-9)


@pytest.mark.parametrize("seed", [11, 13, 14])
def test_local__the_whole_relaxation_s_answers_from_the_rows_near_the_change(seed: int) -> None:
    """A component of 80 remains and 60 families: each pairing forbidden in turn, the small program over the rows
    near it, the others priced at the whole relaxation's duals (:class:`LocalRelaxation`), gives the whole
    relaxation's answer, and gives it by itself (without the whole relaxation) for most pairings."""
    model = _random_model(seed, 80, [1, 2, 1, 1, 3, 1, 2, 1, 1, 1] * 6, 0.04)
    positive = [k for k, o in enumerate(model.options) if o.score > 0]
    whole, local = PackingRelaxation(model, positive), LocalRelaxation(model, positive)
    assert local._x is not None  # the whole relaxation is integral here
    pairs = sorted({p for k in positive for p in model.options[k].pairs})
    by_itself = 0
    for pair in pairs:
        want = whole.best_without({pair})
        alone = local._local(np.asarray(sorted(local._cols_of.get(pair, ())), dtype=np.int64))
        got = local.best_without({pair})
        if want is None:
            assert alone is None and got is None, pair
            continue
        assert got is not None and got[0] == pytest.approx(want[0], abs=1e-9), pair
        if alone is not None:
            by_itself += 1
            assert alone[0] == pytest.approx(want[0], abs=1e-9), pair
            assert alone[0] == pytest.approx(model.score(alone[1]), abs=1e-9)
            assert _is_packing(model, alone[1]) and not any(pair in model.options[k].pairs for k in alone[1])
    assert len(pairs) > 100 and by_itself >= 0.9 * len(pairs), (by_itself, len(pairs))
