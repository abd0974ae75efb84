"""Simulated DVI cases for the tests: :mod:`opendvi.dvi.simulate` on the demo
case's 23 STRs (norSTR European frequencies)."""

from __future__ import annotations

from collections.abc import Sequence

from opendvi.core.case import Case
from opendvi.core.markers import Marker
from opendvi.data import demo_case_path
from opendvi.dvi.simulate import ONE_MISSING, SHAPES
from opendvi.dvi.simulate import simulate_case as _simulate_case
from opendvi.io.case_json import read_case

__all__ = ["ONE_MISSING", "SHAPES", "demo_markers", "simulate_case"]


def demo_markers(n: int = 23, *, mutation: bool = False) -> tuple[Marker, ...]:
    """The demo case's STRs, with or without its mutation models."""
    markers = read_case(demo_case_path()).markers[:n]
    return tuple(markers if mutation else (m.without_mutation() for m in markers))


def simulate_case(
    shapes: Sequence[str],
    *,
    n_unrelated: int,
    seed: int,
    markers: Sequence[Marker] | None = None,
    found: float = 1.0,
) -> tuple[Case, dict[str, str]]:
    mk = markers if markers is not None else demo_markers()
    return _simulate_case(shapes, n_unrelated=n_unrelated, seed=seed, markers=mk, found=found)
