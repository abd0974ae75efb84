"""National-scale screening: every remains against every missing person,
exact pairwise LRs (``likelihood.md``), kept where it matters.

Per family and marker a table of ln LR over the observations that occur among
the remains (batched across families of the same pedigree shape, the general
engine for the rest), then a numba gather-and-add kernel over shards of
missing persons, keeping per remains the top-K candidates and every pairing at
or above a threshold. See ``docs/screening.md``.

>>> from opendvi.screening import screen, simulate_case
>>> case, truth = simulate_case(families=3, remains=4, seed=1)
>>> res = screen(case, top=2, threshold=None)
>>> sorted(res.candidates())[:2]
['V000001', 'V000002']
"""

from __future__ import annotations

from opendvi.io.npz_store import read_store
from opendvi.screening._encode import ScreeningError
from opendvi.screening._engine import DEFAULT_SHARD_SIZE, ScreenResult, ScreenStats, screen
from opendvi.screening._output import read_results, write_results
from opendvi.screening._remains import RemainsLinks, screen_remains
from opendvi.screening._simulate import simulate_case

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "RemainsLinks",
    "ScreenResult",
    "ScreenStats",
    "ScreeningError",
    "read_results",
    "read_store",
    "screen",
    "screen_remains",
    "simulate_case",
    "write_results",
]
