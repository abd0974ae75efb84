"""Incremental matching (issue 9, ``docs/decisions/0007-incremental-matching.md``): what a matching run
keeps from the run before it, exactly.

A run records its inputs (:class:`RunState`): the global ones (frequency database, mutation models,
theta, parameters, the alleles added to the frequency table, the software version), a fingerprint of
each remains (its profile version and its data) and of each family (pedigree, references, missing
persons), each remains' kept list and the families' reference checks. The next run compares
(:func:`plan`): a global change means a full run; otherwise

* the remains that are new or re-typed are screened against every family;
* the families that are new or changed (references re-typed, added or withdrawn, pedigree edited) are
  screened against every other remains;
* the rest is carried over.

**Exactness.** A remains' kept list is always a *prefix* of its pairings in the screening's total order
(ln LR descending, then the missing person's row): the top ``DEPTH x top_k`` and every pairing at or
above the threshold (a union of two prefixes), with a flag when it holds every admissible pairing.
Dropping the changed and deleted families leaves a prefix of the pairings with unchanged families
(every pairing that was not kept is below the threshold and below the last kept one); the changed
families' screening gives a prefix of the rest; the merge of two prefixes is exact as far as both are
known (:func:`_merge`). A remains whose prefix falls below ``top_k`` without being complete is screened
again against every family, so its top-K is always a full run's. The lists are ``DEPTH`` times deeper
than the top-K so that a re-typed family seldom forces that.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opendvi import __version__
from opendvi.core.case import Case, Family, Sample
from opendvi.core.rules import inconsistent_references_note, unevaluable_family_note
from opendvi.screening import screen as _screen

FORMAT = "opendvi-run-inputs/1"
#: kept lists are DEPTH x top_k long (plus every pairing at or above the threshold)
DEPTH = 2
LOG10 = math.log(10.0)

#: (missing person, ln LR, exclusions), best first
Entry = tuple[str, float, int]
ProgressFn = Callable[[float], None]


def _digest(obj: Any) -> str:
    """A digest of ``obj``, built of str, int, float, None, tuples and lists (their ``repr`` is stable)."""
    return hashlib.blake2b(repr(obj).encode(), digest_size=12).hexdigest()


def remains_fingerprint(sample: Sample, profile_id: int | None) -> str:
    """``"<profile version id>:<digest of sex, genotypes, dropout>"``: a re-typing (a new version) or any
    change of the data the screening reads is a change."""
    data = (sample.sex, sorted(sample.genotypes.items()), float(sample.dropout))
    return f"{profile_id if profile_id is not None else '-'}:{_digest(data)}"


def family_fingerprint(fam: Family) -> str:
    """A digest of the pedigree (ids, parents, sexes), the references, their dropout and the missing persons."""
    ped = fam.pedigree
    people = (tuple(ped.ids), ped.father.tolist(), ped.mother.tolist(), [str(x) for x in ped.sex])
    refs = sorted((pid, sorted(gts.items())) for pid, gts in fam.genotypes.items())
    return _digest((fam.id, people, refs, sorted((k, float(v)) for k, v in fam.dropout.items()), tuple(fam.missing)))


def unseen_alleles(case: Case) -> dict[str, list[str]]:
    """Marker -> the alleles of the case absent from the frequency table (added at the minimum frequency,
    then renormalised: every frequency of that marker depends on them, ``Case.with_unseen_alleles``)."""
    seen: dict[str, set[str]] = {m.name: set() for m in case.markers}
    for gts in [r.genotypes for r in case.remains] + [g for f in case.families for g in f.genotypes.values()]:
        for m, gt in gts.items():
            if (alleles := seen.get(m)) is not None:
                alleles.update(gt)
    index = {m.name: m.index for m in case.markers}
    return {m: sorted(v) for m, a in sorted(seen.items()) if (v := a.difference(index[m]))}


def case_globals(case: Case, *, top_k: int, lr_threshold: float, frequency_database_sha256: str,
                 mutation_models: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs every pairing depends on: a change of any of them means a full run."""
    return {"format": FORMAT, "software_version": __version__,
            "frequency_database_sha256": frequency_database_sha256, "mutation_models": dict(mutation_models),
            "theta": case.theta, "top_k": top_k, "lr_threshold": lr_threshold, "depth": DEPTH,
            "markers": [m.name for m in case.markers], "unseen_alleles": unseen_alleles(case),
            "lineage": case.lineage is not None, "pairings": bool(case.pairings)}


#: why a global difference means a full run (key of :func:`case_globals` -> reason)
GLOBAL_REASONS = {
    "format": "full: the previous run recorded its inputs in another format",
    "software_version": "full: another software version",
    "frequency_database_sha256": "full: frequency database changed",
    "mutation_models": "full: mutation models changed",
    "theta": "full: theta changed",
    "top_k": "full: top_k changed",
    "lr_threshold": "full: LR threshold changed",
    "depth": "full: kept-list depth changed",
    "markers": "full: markers changed",
    "unseen_alleles": "full: alleles absent from the frequency database changed (frequencies renormalised)",
    "lineage": "full: lineage data (incremental matching covers autosomal and X markers)",
    "pairings": "full: the case restricts pairings",
}


@dataclass
class RunState:
    """A run's inputs and kept lists, stored with the run (``matching_run_inputs``) for the next one."""

    globals: dict[str, Any]
    remains: dict[str, str]
    families: dict[str, str]
    #: remains -> (complete, kept prefix, best first)
    lists: dict[str, tuple[bool, list[Entry]]] = field(default_factory=dict)
    unevaluable: dict[str, list[str]] = field(default_factory=dict)
    inconsistent: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON; the kept lists by column, numbers as base64 little-endian arrays (compact and fast at
        30,000 remains x 20 entries; ln LR 0 stays -inf, which JSON itself could not hold)."""
        ids = list(self.lists)
        counts = np.array([len(self.lists[r][1]) for r in ids], dtype="<i4")
        flat = [e for r in ids for e in self.lists[r][1]]
        return {"globals": self.globals, "remains": self.remains, "families": self.families,
                "lists": {"remains": ids, "complete": _b64(np.array([self.lists[r][0] for r in ids], dtype="u1")),
                          "counts": _b64(counts), "missing": [e[0] for e in flat],
                          "ln": _b64(np.array([e[1] for e in flat], dtype="<f8")),
                          "x": _b64(np.array([e[2] for e in flat], dtype="<i4"))},
                "unevaluable": self.unevaluable, "inconsistent": self.inconsistent}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunState:
        col = doc["lists"]
        complete = _unb64(col["complete"], "u1").astype(bool).tolist()
        counts = _unb64(col["counts"], "<i4").tolist()
        ln = _unb64(col["ln"], "<f8").tolist()
        x = _unb64(col["x"], "<i4").tolist()
        entries = list(zip(col["missing"], ln, x, strict=True))
        ends = np.cumsum([0, *counts]).tolist()
        lists = {r: (complete[i], entries[ends[i]:ends[i + 1]]) for i, r in enumerate(col["remains"])}
        return cls(globals=dict(doc["globals"]), remains=dict(doc["remains"]), families=dict(doc["families"]),
                   lists=lists, unevaluable={f: list(m) for f, m in doc.get("unevaluable", {}).items()},
                   inconsistent={f: list(m) for f, m in doc.get("inconsistent", {}).items()})


def _b64(a: NDArray[Any]) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> NDArray[Any]:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


@dataclass
class Plan:
    """What a run recomputes and why."""

    full: bool
    reasons: list[str]
    #: why a full run, as keys of :data:`GLOBAL_REASONS` or "no_previous" (the pages translate them)
    causes: list[str] = field(default_factory=list)
    new_remains: list[str] = field(default_factory=list)
    retyped_remains: list[str] = field(default_factory=list)
    removed_remains: list[str] = field(default_factory=list)
    new_families: list[str] = field(default_factory=list)
    changed_families: list[str] = field(default_factory=list)
    removed_families: list[str] = field(default_factory=list)
    #: unchanged remains screened again against every family (their kept list lost a changed family)
    rescreened: list[str] = field(default_factory=list)

    def summary(self, *, pairs_screened: int = 0, pairs_carried: int = 0, n_remains: int = 0,
                n_families: int = 0) -> dict[str, Any]:
        """``matching_runs.recomputed`` (the API and the operation page show it)."""
        reasons = list(self.reasons)
        if not self.full:
            reasons += _counted(self.new_remains, "remains new", "remains new")
            reasons += _counted(self.retyped_remains, "remains re-typed", "remains re-typed")
            reasons += _counted(self.removed_remains, "remains removed", "remains removed")
            reasons += _counted(self.new_families, "family new", "families new")
            reasons += _counted(self.changed_families, "family changed", "families changed")
            reasons += _counted(self.removed_families, "family removed", "families removed")
            reasons += _counted(self.rescreened, "remains screened again in full (a changed family left its "
                                "kept list)", "remains screened again in full (a changed family left their "
                                "kept lists)")
            if len(reasons) == 0:
                reasons.append("nothing changed: every candidate carried over")
        return {"mode": "full" if self.full else "incremental", "reasons": reasons, "causes": list(self.causes),
                "remains_screened": n_remains if self.full else
                len(self.new_remains) + len(self.retyped_remains) + len(self.rescreened),
                "families_screened": n_families if self.full else len(self.new_families) + len(self.changed_families),
                "remains_new": len(self.new_remains), "remains_retyped": len(self.retyped_remains),
                "remains_removed": len(self.removed_remains), "families_new": len(self.new_families),
                "families_changed": len(self.changed_families), "families_removed": len(self.removed_families),
                "remains_rescreened": len(self.rescreened), "pairs_screened": pairs_screened,
                "pairs_carried": pairs_carried}


def _counted(items: Sequence[str], one: str, many: str, show: int = 5) -> list[str]:
    if not items:
        return []
    head = ", ".join(items[:show]) + (", ..." if len(items) > show else "")
    return [f"{len(items)} {one if len(items) == 1 else many}: {head}"]


def current_state(case: Case, *, profile_ids: Mapping[str, int], top_k: int, lr_threshold: float,
                  frequency_database_sha256: str, mutation_models: Mapping[str, Any]) -> RunState:
    """The fingerprints of ``case`` (lists and reference checks are filled by the run)."""
    return RunState(
        globals=case_globals(case, top_k=top_k, lr_threshold=lr_threshold,
                             frequency_database_sha256=frequency_database_sha256, mutation_models=mutation_models),
        remains={r.id: remains_fingerprint(r, profile_ids.get(r.id)) for r in case.remains},
        families={f.id: family_fingerprint(f) for f in case.families})


def plan(previous: RunState | None, current: RunState) -> Plan:
    """Full, or which remains and families changed since ``previous``."""
    if previous is None:
        return Plan(full=True, reasons=["full: no earlier finished run with recorded inputs"], causes=["no_previous"])
    changed = [k for k in current.globals if previous.globals.get(k) != current.globals[k]]
    if changed:
        return Plan(full=True, reasons=list(dict.fromkeys(
            GLOBAL_REASONS.get(k, f"full: {k} changed") for k in changed)), causes=changed)
    if current.globals.get("lineage") or current.globals.get("pairings"):
        why = "lineage" if current.globals.get("lineage") else "pairings"
        return Plan(full=True, reasons=[GLOBAL_REASONS[why]], causes=[why])
    p = Plan(full=False, reasons=[])
    p.new_remains, p.retyped_remains, p.removed_remains = _diff(previous.remains, current.remains)
    p.new_families, p.changed_families, p.removed_families = _diff(previous.families, current.families)
    return p


def _diff(previous: Mapping[str, str], current: Mapping[str, str]) -> tuple[list[str], list[str], list[str]]:
    """The ids new in ``current`` and those whose fingerprint changed (both in ``current``'s order),
    and those gone from it (sorted)."""
    new: list[str] = []
    changed: list[str] = []
    for key, fp in current.items():
        old = previous.get(key)
        if old is None:
            new.append(key)
        elif old != fp:
            changed.append(key)
    return new, changed, sorted(set(previous) - set(current))


# ---------------------------------------------------------------------------
# screening: the kept lists of a run, from the screening engine and the previous run
# ---------------------------------------------------------------------------


@dataclass
class Kept:
    """Each remains' kept prefix (best first) and, for the pairings that become candidates, their
    per-marker ln LRs (``per_marker``, in ``markers`` order) or the stored rows' ``carried`` dicts."""

    lists: dict[str, tuple[bool, list[Entry]]]
    markers: tuple[str, ...]
    per_marker: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    carried: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    unevaluable: dict[str, tuple[str, ...]] = field(default_factory=dict)
    inconsistent: dict[str, tuple[str, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    pairs_screened: int = 0
    pairs_carried: int = 0


def candidates_of(entries: Sequence[Entry], top_k: int, log_threshold: float) -> list[Entry]:
    """The candidates in a kept prefix: its ``top_k`` first and every one at or above the threshold."""
    return [e for i, e in enumerate(entries) if i < top_k or e[1] >= log_threshold]


def _screen_lists(case: Case, remains: Sequence[Sample], families: Sequence[Family], depth: int,
                  lr_threshold: float, progress: Callable[[int, int], None] | None,
                  out: Kept, lists: dict[str, tuple[bool, list[Entry]]]) -> None:
    """Screen ``remains`` x ``families`` (``case`` with its unseen alleles already added): each remains'
    prefix into ``lists``, per-marker ln LRs, reference checks and notes into ``out``."""
    if not remains or not families:
        for r in remains:
            lists[r.id] = (True, [])
        return
    sub = replace(case, remains=tuple(remains), families=tuple(families))
    res = _screen(sub, top=depth, threshold=lr_threshold, per_marker=True, progress=progress)
    assert res.log_lr_by_marker is not None
    got: dict[str, list[Entry]] = {r.id: [] for r in remains}
    for i, (rid, mp, v, x) in enumerate(res.pairs()):
        got[rid].append((mp, v, x))
        out.per_marker[(rid, mp)] = res.log_lr_by_marker[i].tolist()
    for rid, lst in got.items():
        lists[rid] = (len(lst) < depth, lst)
    out.markers = res.markers
    out.notes.extend(res.notes)
    out.unevaluable.update(res.unevaluable)
    out.inconsistent.update(res.inconsistent)
    out.pairs_screened += len(remains) * sum(len(f.missing) for f in families)


def _merge(a: tuple[bool, list[Entry]], b: tuple[bool, list[Entry]], row: Mapping[str, int],
           log_threshold: float, keep: int) -> tuple[bool, list[Entry]]:
    """The exact prefix of the union of two disjoint prefixes: an entry is certain when each list is
    complete, or reaches at least as far, or the entry is at or above the threshold (every unkept
    pairing of a list is below its last entry and below the threshold). Cut to ``keep`` entries and every
    one at or above the threshold."""

    def key(e: Entry) -> tuple[float, int]:
        return (-e[1], row[e[0]])

    merged = sorted(a[1] + b[1], key=key)
    limits = [key(lst[-1]) for complete, lst in (a, b) if not complete and lst]
    if any(not complete and not lst for complete, lst in (a, b)):
        limits.append((math.inf, -1))  # an empty, incomplete list: only the threshold is certain
    out: list[Entry] = []
    for e in merged:
        if e[1] < log_threshold and any(key(e) > lim for lim in limits):
            break
        out.append(e)
    complete = a[0] and b[0]
    if len(out) > keep:
        cut = max(keep, sum(1 for e in out if e[1] >= log_threshold))
        complete = complete and cut >= len(out)
        out = out[:cut]
    return complete, out


def kept_lists(case: Case, *, previous: RunState | None, plan_: Plan, top_k: int, lr_threshold: float,
               carried_rows: Mapping[tuple[str, str], dict[str, Any]],
               progress: ProgressFn | None = None) -> Kept:
    """Every remains' kept prefix, screening only what ``plan_`` says changed (every pairing when it is
    a full run). ``carried_rows``: the previous run's candidates, ``(remains, missing) -> per_marker``."""
    case_u, unseen_notes = case.with_unseen_alleles()
    depth = DEPTH * top_k
    log_thr = math.log(lr_threshold)
    out = Kept(lists={}, markers=())
    out.notes.extend(unseen_notes)
    row: dict[str, int] = {}
    family_of: dict[str, str] = {}
    for fam in case_u.families:
        for mp in fam.missing:
            row[mp] = len(row)
            family_of[mp] = fam.id
    fams = {f.id: f for f in case_u.families}
    n_pairs = len(case_u.remains) * len(row)

    def prog(base: int, size: int) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress((base + size * done / max(total, 1)) / max(n_pairs, 1))

    if plan_.full or previous is None:
        _screen_lists(case_u, case_u.remains, case_u.families, depth, lr_threshold, prog(0, n_pairs), out,
                      out.lists)
        return out
    changed_f = set(plan_.new_families) | set(plan_.changed_families)
    gone_f = changed_f | set(plan_.removed_families)
    changed_r = set(plan_.new_remains) | set(plan_.retyped_remains)
    kept_prev: dict[str, tuple[bool, list[Entry]]] = {}
    for r in case_u.remains:
        if r.id in changed_r:
            continue
        complete, lst = previous.lists.get(r.id, (False, []))
        left = [e for e in lst if e[0] in family_of and family_of[e[0]] not in gone_f]
        if not complete and len(left) < top_k:
            plan_.rescreened.append(r.id)
        else:
            kept_prev[r.id] = (complete, left)
    full_r = [r for r in case_u.remains if r.id not in kept_prev]  # new, re-typed or screened again
    rest_r = [r for r in case_u.remains if r.id in kept_prev]
    new_f = [f for f in case_u.families if f.id in changed_f]
    size_a = len(full_r) * len(row)
    _screen_lists(case_u, full_r, case_u.families, depth, lr_threshold, prog(0, size_a), out, out.lists)
    fresh: dict[str, tuple[bool, list[Entry]]] = {}
    _screen_lists(case_u, rest_r, new_f, depth, lr_threshold,
                  prog(size_a, len(rest_r) * sum(len(f.missing) for f in new_f)), out, fresh)
    # the reference checks of unchanged families, as the previous run found them
    if not full_r:  # every family was screened by the first step otherwise
        for fid, markers in previous.unevaluable.items():
            if fid in fams and fid not in changed_f:
                out.unevaluable[fid] = tuple(markers)
        for fid, markers in previous.inconsistent.items():
            if fid in fams and fid not in changed_f:
                out.inconsistent[fid] = tuple(markers)
    out.notes.extend(unevaluable_family_note(f, m) for f, m in out.unevaluable.items())
    out.notes.extend(inconsistent_references_note(f, m) for f, m in out.inconsistent.items())
    promoted: dict[str, set[str]] = {}
    for r in rest_r:
        merged = _merge(kept_prev[r.id], fresh.get(r.id, (True, [])), row, log_thr, depth)
        out.lists[r.id] = merged
        for mp, _v, _x in candidates_of(merged[1], top_k, log_thr):
            key = (r.id, mp)
            if key in out.per_marker:
                continue
            if key in carried_rows:
                out.carried[key] = dict(carried_rows[key])
                out.pairs_carried += 1
            else:  # a kept pairing below the previous candidates that is now one: its per-marker LRs
                promoted.setdefault(mp, set()).add(r.id)
    if promoted:
        _per_marker_of(case_u, promoted, family_of, out)
    out.lists = {r.id: out.lists[r.id] for r in case_u.remains}
    out.notes = list(dict.fromkeys(out.notes))
    return out


def _per_marker_of(case: Case, promoted: Mapping[str, set[str]], family_of: Mapping[str, str], out: Kept,
                   max_pairs: int = 250_000) -> None:
    """The per-marker ln LRs of pairings kept deeper in the previous run that are now candidates: small
    screenings of those remains against those families, every pairing kept, in groups of remains whose
    pairs stay under ``max_pairs``."""
    wanted: dict[str, set[str]] = {}
    for mp, rids in promoted.items():
        for rid in rids:
            wanted.setdefault(rid, set()).add(mp)
    fams = {f.id: f for f in case.families}
    by_id = {r.id: r for r in case.remains}
    group: list[str] = []
    group_fams: set[str] = set()

    def flush() -> None:
        families = [f for f in case.families if f.id in group_fams]
        sub = replace(case, remains=tuple(by_id[r] for r in group), families=tuple(families))
        n_rows = sum(len(f.missing) for f in families)
        res = _screen(sub, top=n_rows, threshold=None, per_marker=True)
        assert res.log_lr_by_marker is not None
        for i, (rid, mp, _v, _x) in enumerate(res.pairs()):
            if mp in wanted[rid]:
                out.per_marker[(rid, mp)] = res.log_lr_by_marker[i].tolist()
        out.markers = out.markers or res.markers

    for rid in sorted(wanted):
        mine = {family_of[mp] for mp in wanted[rid]}
        both = group_fams | mine
        if group and (len(group) + 1) * sum(len(fams[f].missing) for f in both) > max_pairs:
            flush()
            group, group_fams = [], set()
            both = mine
        group.append(rid)
        group_fams = both
    if group:
        flush()


@dataclass
class RunInputs:
    """What a worker passes to :func:`opendvi.workflows.matching.match_case` for an incremental run."""

    current: RunState
    previous: RunState | None
    previous_run: int | None
    #: the previous run's candidates, ``(remains, missing) -> (per_marker, the JSON it was stored as)``:
    #: a carried row is stored with that JSON again
    carried_json: dict[tuple[str, str], tuple[dict[str, Any], str]] = field(default_factory=dict)

    @property
    def carried_rows(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(remains, missing) -> per_marker`` of the previous run's candidates."""
        return {k: pm for k, (pm, _raw) in self.carried_json.items()}


def run_inputs(session: Any, *, run_id: int, case: Case, profile_ids: Mapping[str, int], top_k: int,
               lr_threshold: float, frequency_database_sha256: str, mutation_models: Mapping[str, Any]) -> RunInputs:
    """This run's fingerprints and, from the database, the latest finished run's state and its candidates'
    per-marker LRs (only when nothing global changed: a full run reads none)."""
    from opendvi.store.repositories.run_inputs import carried_per_marker, previous_inputs

    cur = current_state(case, profile_ids=profile_ids, top_k=top_k, lr_threshold=lr_threshold,
                        frequency_database_sha256=frequency_database_sha256, mutation_models=mutation_models)
    found = previous_inputs(session, before=run_id)
    if found is None:
        return RunInputs(cur, None, None, {})
    prev = RunState.from_json(found[1])
    if plan(prev, cur).full:
        return RunInputs(cur, prev, found[0], {})
    return RunInputs(cur, prev, found[0], carried_per_marker(session, run_id=found[0]))
