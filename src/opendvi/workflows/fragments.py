"""Fragments of one person across bags and exchanges, in the service's matching run
(``docs/service.md``, fragments).

* :func:`link_fragments`: every remains against every other remains of the case (the direct-match LR
  of ``opendvi match-remains``, by the screening's table-and-gather kernel
  :func:`opendvi.screening.screen_remains`), the pairs at or above the threshold, the groups they make
  (:func:`opendvi.dvi.remains.group_links`, the rule of ``match-remains``), and every other pair inside
  a group (a conflict shows);
* :func:`merge_confirmed`: a confirmed group is matched as one person: its members leave the case and
  its consensus profile (:func:`opendvi.dvi.remains.consensus_profile`) takes their place;
* :func:`expand_candidates`: the consensus' candidates, one row for each member, marked;
* :func:`store_links`: the run's links and suggested groups into the database;
  :func:`previous_links`: what an incremental run starts from.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from opendvi.core.case import Case, Sample
from opendvi.core.lineage import PersonHaplotypes
from opendvi.dvi.problem import DVIProblem
from opendvi.dvi.remains import DEFAULT_GROUP_THRESHOLD, consensus_profile, group_links
from opendvi.screening import screen_remains
from opendvi.store.repositories import CandidateRow, FragmentLinkRow, store_fragments

__all__ = ["FragmentLinks", "consensus_id", "expand_candidates", "link_fragments",
           "merge_confirmed", "previous_links", "store_links"]


#: links kept per remains (its strongest, over the remains after it in the run's order): fragments of one
#: person are a few to a few dozen parts; many samples of one profile (a contamination, a data error)
#: would otherwise make n x n links
MAX_LINKS_PER_REMAINS = 25
#: the largest group whose every inner pair is computed and shown (conflicts): 4,950 pairs
MAX_REVIEWED_GROUP = 100


@dataclass(frozen=True)
class FragmentLinks:
    threshold: float
    #: the pairs at or above the threshold (``linked``) and the other pairs inside groups
    pairs: list[FragmentLinkRow]
    groups: list[list[str]]
    #: pairs inside a group with LR below 1
    conflicts: list[tuple[str, str, float]]
    #: the remains whose pairs were computed (None: all; an incremental run: the changed ones)
    relinked: int | None = None
    #: pairs at or above the threshold not kept (beyond :data:`MAX_LINKS_PER_REMAINS` of a remains)
    dropped: int = 0
    #: the groups larger than :data:`MAX_REVIEWED_GROUP`: their other inner pairs are not computed
    unreviewed: list[list[str]] = field(default_factory=list)

    def notes(self) -> list[str]:
        """What a run says of links left out and groups too large to review pair by pair."""
        out = [f"fragments: group of {len(g)} remains (first {g[0]}) too large to compare pair by pair "
               f"(more than {MAX_REVIEWED_GROUP}): many samples of one profile, a contamination or a data "
               "error? Review it before confirming" for g in self.unreviewed]
        if self.dropped:
            out.append(f"fragments: {self.dropped} links at or above the threshold not stored (at most "
                       f"{MAX_LINKS_PER_REMAINS} per remains, the strongest); the groups are computed from all")
        return out


def link_fragments(case: Case, *, threshold: float = DEFAULT_GROUP_THRESHOLD,
                   progress: Callable[[int, int], None] | None = None, changed: Collection[str] | None = None,
                   carried: Sequence[FragmentLinkRow] = ()) -> FragmentLinks:
    """The fragment links and groups of every remains of ``case`` (``match-remains``' numbers: the
    case's markers, theta and lineage, sexes resolved as :class:`opendvi.dvi.DVIProblem` does);
    never n x n in memory. ``progress(rows done, rows)`` after each block of rows (it may raise to stop).

    Incremental (``changed``: the remains new or re-typed since the run that linked ``carried``, with the
    same markers, theta and threshold): only the pairs with a changed remains are computed (the changed
    remains are put first, and only their rows of the upper triangle are summed); the carried links of
    two unchanged remains are kept: the same links as a full computation."""
    problem = DVIProblem(replace(case, families=(), pairings=None))
    samples = list(problem.remains.values())
    ids = [s.id for s in samples]
    pos = {r: k for k, r in enumerate(ids)}
    lineage = case.lineage if case.lineage is not None and case.lineage.systems else None
    first = None
    if changed is not None:
        new = set(changed)
        samples = [s for s in samples if s.id in new] + [s for s in samples if s.id not in new]
        first = sum(1 for s in samples if s.id in new)
    ids_in_screen = [s.id for s in samples]
    res = screen_remains(samples, problem.markers, theta=problem.theta, lineage=lineage, threshold=threshold,
                         progress=progress, first_rows=first, max_per_row=MAX_LINKS_PER_REMAINS)
    pairs: dict[tuple[str, str], FragmentLinkRow] = {}
    for k, (a, b, v) in enumerate(res.pairs()):
        by, mis = res.systems_of(k)
        if pos[a] > pos[b]:
            a, b = b, a
        pairs[(a, b)] = FragmentLinkRow(a, b, v, True, by, mis)
    if changed is not None:
        for ln in carried:
            if ln.a in pos and ln.b in pos and ln.a not in new and ln.b not in new:
                key = (ln.a, ln.b) if pos[ln.a] < pos[ln.b] else (ln.b, ln.a)
                pairs[key] = replace(ln, a=key[0], b=key[1])
    # the groups of every linked pair, the ones not kept included: each connected set the screening
    # found is chained (first-second, second-third...), beside the kept and carried links
    chained: list[tuple[int, int]] = []
    if res.component is not None and res.dropped:
        order = np.argsort(res.component, kind="stable")
        lab = res.component[order]
        same = np.flatnonzero(lab[1:] == lab[:-1])
        chained = [(pos[ids_in_screen[x]], pos[ids_in_screen[y]])
                   for x, y in zip(order[same].tolist(), order[same + 1].tolist(), strict=True)]
    groups = group_links(ids, [*((pos[a], pos[b]) for a, b in pairs), *chained])
    conflicts = []
    unreviewed = []
    for g in groups:
        if len(g) > MAX_REVIEWED_GROUP:
            unreviewed.append(g)
            continue
        inner = screen_remains([problem.remains[r] for r in g], problem.markers, theta=problem.theta,
                               lineage=lineage, threshold=None)
        for k, (a, b, v) in enumerate(inner.pairs()):
            key = (a, b) if pos[a] < pos[b] else (b, a)
            if key not in pairs:
                by, mis = inner.systems_of(k)
                pairs[key] = FragmentLinkRow(key[0], key[1], v, False, by, mis)
            if v < 0:
                conflicts.append((key[0], key[1], v))
    return FragmentLinks(threshold, list(pairs.values()), groups, conflicts, first, res.dropped, unreviewed)


def consensus_id(group_id: int) -> str:
    """The id of a confirmed group's consensus sample in the run's case."""
    return f"fragment-group-{group_id}"


def merge_confirmed(case: Case, groups: Mapping[int, Sequence[str]]) -> tuple[Case, dict[str, list[str]], list[str]]:
    """``case`` with each confirmed group (id -> member barcodes) as one remains: its consensus profile
    (:func:`opendvi.dvi.remains.consensus_profile`) where its first member was, the members left out;
    lineage haplotypes: the members' where they agree. Returns the case, consensus id -> members, and
    notes (conflicts of a consensus)."""
    by_id = {r.id: r for r in case.remains}
    merged: dict[str, list[str]] = {}
    first: dict[str, Sample] = {}
    gone: set[str] = set()
    notes: list[str] = []
    haplotypes: dict[str, PersonHaplotypes] = {}
    for gid, members in groups.items():
        present = [m for m in members if m in by_id]
        if len(present) < 2:
            continue
        cid = consensus_id(gid)
        sample, problems = consensus_profile([by_id[m] for m in present], id=cid)
        notes += [f"fragment group {gid}: {p}" for p in problems]
        merged[cid] = present
        first[present[0]] = sample
        gone.update(present)
        if case.lineage is not None:
            hs = {case.lineage.haplotypes[m] for m in present if m in case.lineage.haplotypes}
            if len(hs) == 1:
                haplotypes[cid] = next(iter(hs))
            elif hs:
                notes.append(f"fragment group {gid}: the members' lineage haplotypes differ; not used")
    if not merged:
        return case, {}, []
    remains = tuple(first.get(r.id, r) for r in case.remains if r.id in first or r.id not in gone)
    lineage = case.lineage
    if lineage is not None and haplotypes:
        lineage = replace(lineage, haplotypes={**lineage.haplotypes, **haplotypes})
    return replace(case, remains=remains, lineage=lineage), merged, notes


def expand_candidates(rows: Sequence[CandidateRow], merged: Mapping[str, Sequence[str]]) -> list[CandidateRow]:
    """The candidate rows with each consensus' rows repeated for every member of its group (the same
    numbers: the group is matched as one person), marked ``per_marker["fragment_group"]``."""
    out: list[CandidateRow] = []
    for row in rows:
        members = merged.get(row.remains)
        if members is None:
            out.append(row)
            continue
        note: dict[str, Any] = {"consensus": row.remains, "members": list(members)}
        for m in members:
            out.append(replace(row, remains=m, per_marker={**row.per_marker, "fragment_group": note}))
    return out


def store_links(session: Any, *, run_id: int, remains: Mapping[str, tuple[int, int]], links: FragmentLinks,
                merged: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Store a finishing run's fragment links and suggested groups (``remains``: barcode -> (remains id,
    profile id), as :class:`opendvi.store.repositories.StoredCase` has them); what the run records."""
    counts = store_fragments(session, run_id=run_id, remains_ids={b: r for b, (r, _p) in remains.items()},
                             links=links.pairs, groups=links.groups, threshold=links.threshold)
    return {"threshold": links.threshold, **counts, "conflicts": len(links.conflicts),
            # a run that left links out is not carried: the next run links every remains again
            "links_dropped": links.dropped, "groups_unreviewed": len(links.unreviewed),
            "remains_relinked": "all" if links.relinked is None else links.relinked,
            "matched_as_one": {cid: list(m) for cid, m in merged.items()}}


def previous_links(session: Any, *, inputs: Any, case: Case, profile_ids: Mapping[str, int],
                   threshold: float) -> tuple[set[str] | None, list[FragmentLinkRow]]:
    """What :func:`link_fragments` may start from: the remains changed since the previous finished run
    and that run's links, when the incremental plan (``inputs``: :class:`opendvi.workflows.incremental.
    RunInputs`) is not a full run and that run linked with the same threshold; else ``(None, [])``."""
    from opendvi.store.repositories import linked_pairs_of_run
    from opendvi.workflows.incremental import plan, remains_fingerprint

    if inputs.previous is None or inputs.previous_run is None or plan(inputs.previous, inputs.current).full:
        return None, []
    carried = linked_pairs_of_run(session, run_id=inputs.previous_run, threshold=threshold)
    if carried is None:
        return None, []
    before = inputs.previous.remains
    changed = {r.id for r in case.remains if before.get(r.id) != remains_fingerprint(r, profile_ids.get(r.id))}
    return changed, carried
