"""Pedigree likelihood of 23-marker pedigrees of 3, 10 and 30 members.

Markers: the 23 autosomal STRs of the bundled demo case
(``src/opendvi/data/demo-case.json``), with their mutation models (stepwise,
female 0.001 / male 0.002) or without. Pedigrees, with and without loops:

* 3 members: a trio, father and child typed (the mother untyped);
* 10 and 30 members, no loops: a family tree grown generation by generation
  from one couple (each child marries an untyped spouse);
* 10 members with a loop: first cousins who married, with two children;
* 30 members with loops: two brothers married two sisters, and two of their
  children (double first cousins) married; the tree grows below them.

Typed: the first founder and every person without children (except one, the
missing person), so that intermediates are untyped as in real families.
Genotypes are simulated with ``opendvi.core.simulate`` (seed fixed), with
the markers of the row (with or without mutation). Each row times
``pedigree_loglik`` over the 23 markers: ``first_ms`` is the first call
(cold caches), ``median_ms`` and ``min_ms`` are over ``repeats`` further calls.

Target (issue 2): a 10-member, 23-marker pedigree with mutation models in
under 20 ms (median).

Run alone: ``python benchmarks/bench_likelihood.py [--quick]``; all
benchmarks: ``python benchmarks/run.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from opendvi.core.likelihood import pedigree_loglik
from opendvi.core.markers import Marker
from opendvi.core.pedigree import Individual, Pedigree, trio
from opendvi.core.simulate import simulate_profiles
from opendvi.data import demo_case_path
from opendvi.io.case_json import read_case

SEED = 20240501
TARGET_MS = 20.0


def _grow(people: list[Individual], couples: list[tuple[str, str]], n: int) -> Pedigree:
    """Add children (two per couple, a son and a daughter) and their untyped
    spouses, breadth first, until the pedigree has ``n`` members."""
    k = 0
    queue = list(couples)
    while len(people) < n and queue:
        fa, mo = queue.pop(0)
        for sex in ("M", "F"):
            if len(people) >= n:
                break
            k += 1
            child = f"K{k}"
            people.append(Individual(child, fa, mo, sex))
            if len(people) < n - 1:  # room for a spouse and at least one child
                spouse = f"W{k}"
                people.append(Individual(spouse, sex="F" if sex == "M" else "M"))
                queue.append((child, spouse) if sex == "M" else (spouse, child))
    return Pedigree(people)


def tree(n: int) -> Pedigree:
    return _grow([Individual("F0", sex="M"), Individual("M0", sex="F")], [("F0", "M0")], n)


def cousin_marriage(n: int) -> Pedigree:
    people = [
        Individual("F0", sex="M"),
        Individual("M0", sex="F"),
        Individual("P1", "F0", "M0", "M"),
        Individual("P2", "F0", "M0", "F"),
        Individual("W1", sex="F"),
        Individual("H2", sex="M"),
        Individual("C1", "P1", "W1", "M"),
        Individual("C2", "H2", "P2", "F"),
    ]
    return _grow(people, [("C1", "C2")], n)


def double_cousin_marriage(n: int) -> Pedigree:
    people = [
        Individual("F0", sex="M"),
        Individual("M0", sex="F"),
        Individual("F1", sex="M"),
        Individual("M1", sex="F"),
        Individual("B1", "F0", "M0", "M"),
        Individual("B2", "F0", "M0", "M"),
        Individual("S1", "F1", "M1", "F"),
        Individual("S2", "F1", "M1", "F"),
        Individual("D1", "B1", "S1", "M"),  # D1 and D2 are double first cousins
        Individual("D2", "B2", "S2", "F"),
        Individual("D3", "B1", "S1", "F"),
    ]
    return _grow(people, [("D1", "D2")], n)


def _typed(ped: Pedigree) -> list[str]:
    leaves = [pid for pid, kids in zip(ped.ids, ped.children, strict=True) if not kids and pid not in ped.founders]
    return [ped.ids[0], *leaves[:-1]]


PEDIGREES: list[tuple[str, Callable[[], Pedigree], Callable[[Pedigree], list[str]]]] = [
    ("trio", lambda: trio(), lambda ped: ["FA", "CH"]),
    ("tree-10", lambda: tree(10), _typed),
    ("cousin-marriage-10", lambda: cousin_marriage(10), _typed),
    ("tree-30", lambda: tree(30), _typed),
    ("double-cousin-marriage-30", lambda: double_cousin_marriage(30), _typed),
]


def _time(ped: Pedigree, markers: list[Marker], gts: dict[str, Any], repeats: int) -> tuple[float, list[float], float]:
    t0 = time.perf_counter()
    ll = pedigree_loglik(ped, markers, gts)
    first = (time.perf_counter() - t0) * 1e3
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pedigree_loglik(ped, markers, gts)
        times.append((time.perf_counter() - t0) * 1e3)
    return first, times, ll.total


def run(quick: bool) -> list[dict[str, Any]]:
    demo = list(read_case(demo_case_path()).markers)
    assert len(demo) == 23
    repeats = 5 if quick else 25
    rows: list[dict[str, Any]] = []
    for name, build, typed_of in PEDIGREES:
        ped = build()
        typed = typed_of(ped)
        for mutation in (True, False):
            markers = demo if mutation else [m.without_mutation() for m in demo]
            gts = simulate_profiles(ped, markers, np.random.default_rng(SEED), ids=typed)
            first, times, total = _time(ped, markers, gts, repeats)
            median = statistics.median(times)
            row: dict[str, Any] = {
                "benchmark": "likelihood",
                "pedigree": name,
                "members": len(ped),
                "loops": ped.has_loops(),
                "mutation": mutation,
                "typed": len(typed),
                "markers": len(markers),
                "repeats": repeats,
                "first_ms": round(first, 2),
                "median_ms": round(median, 2),
                "min_ms": round(min(times), 2),
                "loglik_total": round(total, 6),
                "target": "",
            }
            if len(ped) == 10 and mutation:
                row["target"] = f"< {TARGET_MS:g} ms: {'met' if median < TARGET_MS else 'NOT met'}"
            rows.append(row)
    return rows


if __name__ == "__main__":
    for r in run("--quick" in sys.argv[1:]):
        print(r)
