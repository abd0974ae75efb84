"""Joint identification: assignments of remains to missing persons.

An assignment gives each remains a missing person or ``*`` (not among the
missing), each missing person at most once, sexes compatible. Its
log-likelihood is

    ln P(data | a) = sum over families F of ln P(references of F, remains
                     assigned to F's missing persons placed on them)
                   + sum over unassigned remains V of ln P(g_V),

so a family with several missing persons is evaluated with all of its
assigned remains in the pedigree together. LR(a) = P(data | a) / P(data |
nobody identified); posterior(a) = prior(a) LR(a) / sum over assignments.

The candidate graph links a remains to a family when one of the family's
missing persons is a candidate for it (by default: admissible with pairwise
LR > 0, as dvir's ``jointDVI``). Each connected component is enumerated
exactly on its own; the assignments of the whole case are the product of
the components' lists, whose best ones are found by a k-best merge and whose
posteriors are products of per-component posteriors.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opendvi.dvi.errors import ComponentTooLargeError, DVIError
from opendvi.dvi.pairwise import PairwiseResult, pairwise_lr
from opendvi.dvi.problem import DVIProblem, Placement, safe_exp

#: Default limit on the number of assignments of one component.
MAX_ASSIGNMENTS = 1_000_000
UNASSIGNED = "*"


@dataclass
class Component:
    """One connected component of the candidate graph, solved exactly."""

    remains: tuple[str, ...]
    families: tuple[str, ...]
    missing: tuple[str, ...]
    candidates: dict[str, tuple[str, ...]]
    #: (score, loglik, targets) sorted by decreasing score; score = loglik + ln prior
    assignments: list[tuple[float, float, tuple[str, ...]]] = field(default_factory=list)
    null_loglik: float = 0.0
    log_norm: float = 0.0
    #: best loglik among assignments with remains V -> target
    best_given: dict[tuple[str, str], float] = field(default_factory=dict)
    #: best loglik among assignments giving missing person M the remains V (or ``*``: nobody)
    best_given_missing: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.assignments)


@dataclass(frozen=True)
class JointRow:
    """One assignment of the whole case."""

    assignment: dict[str, str]
    loglik: float
    log_lr: float
    log_posterior: float

    @property
    def lr(self) -> float:
        return safe_exp(self.log_lr)

    @property
    def posterior(self) -> float:
        return safe_exp(self.log_posterior)


@dataclass
class JointResult:
    """The best assignments of a case, with the components they come from."""

    rows: list[JointRow]
    null_loglik: float
    n_assignments: int
    components: list[Component]
    fixed: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> JointRow:
        return self.rows[0]

    def glr(self) -> dict[str, float]:
        """ln GLR of each remains' target in the best assignment: the best
        likelihood with V -> its target over the best with V -> anything else
        (another missing person or ``*``); ``inf`` when there is no
        alternative."""
        out: dict[str, float] = {}
        best = self.rows[0].assignment
        for comp in self.components:
            for rid in comp.remains:
                t = best[rid]
                mine = comp.best_given.get((rid, t), -math.inf)
                others = [v for (r, tt), v in comp.best_given.items() if r == rid and tt != t]
                alt = max(others) if others else -math.inf
                out[rid] = math.inf if alt == -math.inf else mine - alt
        return out

    def glr_missing(self) -> dict[str, float]:
        """ln GLR of each missing person's identification in the best
        assignment (its remains, or ``*`` for nobody): the best likelihood
        giving M that remains over the best giving M another remains or
        nobody; ``inf`` when there is no alternative. Missing persons outside
        every component are absent."""
        out: dict[str, float] = {}
        best = self.rows[0].assignment
        for comp in self.components:
            who = {m: r for r, m in best.items() if m in comp.missing}
            for mp in comp.missing:
                src = who.get(mp, UNASSIGNED)
                mine = comp.best_given_missing.get((mp, src), -math.inf)
                others = [v for (m, r), v in comp.best_given_missing.items() if m == mp and r != src]
                alt = max(others) if others else -math.inf
                out[mp] = math.inf if alt == -math.inf else mine - alt
        return out


def _logsumexp(vals: Sequence[float]) -> float:
    mx = max(vals, default=-math.inf)
    if mx == -math.inf:
        return -math.inf
    return mx + math.log(math.fsum(math.exp(v - mx) for v in vals))


def candidate_pairings(
    problem: DVIProblem,
    pw: PairwiseResult,
    *,
    lr_threshold: float = 0.0,
    max_exclusions: int | None = None,
) -> dict[str, tuple[str, ...]]:
    """Pairings that enter the joint enumeration: admissible, LR > 0 and
    LR >= ``lr_threshold``, at most ``max_exclusions`` exclusions."""
    log_t = math.log(lr_threshold) if lr_threshold > 0 else -math.inf
    out: dict[str, tuple[str, ...]] = {}
    for rid in problem.remains:
        keep = []
        for mp, v in pw.log_lr.get(rid, {}).items():
            if v == -math.inf or v < log_t:
                continue
            if max_exclusions is not None and pw.exclusions[rid][mp] > max_exclusions:
                continue
            keep.append(mp)
        out[rid] = tuple(keep)
    return out


def components(problem: DVIProblem, candidates: Mapping[str, Sequence[str]]) -> list[Component]:
    """Connected components of the graph remains -- families (an edge when a
    missing person of the family is a candidate for the remains). Remains
    without candidates and families without candidate remains are left out
    (their only assignment is "nobody")."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for rid, mps in candidates.items():
        for mp in mps:
            a, b = find("R" + rid), find("F" + problem.family_of(mp))
            if a != b:
                parent[a] = b
    groups: dict[str, list[str]] = {}
    for node in list(parent):
        groups.setdefault(find(node), []).append(node)
    comps = []
    order = {f: i for i, f in enumerate(problem.families)}
    rorder = {r: i for i, r in enumerate(problem.remains)}
    for nodes in groups.values():
        rem = sorted((n[1:] for n in nodes if n[0] == "R"), key=rorder.__getitem__)
        fams = sorted((n[1:] for n in nodes if n[0] == "F"), key=order.__getitem__)
        mps = tuple(mp for f in fams for mp in problem.families[f].missing)
        comps.append(Component(tuple(rem), tuple(fams), mps, {r: tuple(candidates[r]) for r in rem}))
    comps.sort(key=lambda c: rorder[c.remains[0]])
    return comps


def count_assignments(comp: Component, limit: int) -> int:
    """The number of assignments of a component; the count stops above
    ``limit`` (then some number above it is returned).

    A depth-first count memoised on (position, missing persons used), with
    a bounded memo.
    """
    rem = comp.remains
    bit = {mp: 1 << k for k, mp in enumerate(comp.missing)}
    cands = [[bit[mp] for mp in comp.candidates[r]] for r in rem]
    n = len(rem)
    memo: dict[tuple[int, int], int] = {}

    def count(i: int, used: int) -> int:
        if i == n:
            return 1
        key = (i, used)
        hit = memo.get(key)
        if hit is not None:
            return hit
        total = count(i + 1, used)
        for b in cands[i]:
            if total > limit:
                break
            if not used & b:
                total += count(i + 1, used | b)
        if len(memo) < 500_000:
            memo[key] = total
        return total

    return count(0, 0)


def solve_component(
    problem: DVIProblem,
    comp: Component,
    *,
    prior: Mapping[tuple[str, str], float] | None = None,
    max_assignments: int = MAX_ASSIGNMENTS,
) -> Component:
    """Enumerate every assignment of ``comp`` and its log-likelihood."""
    bound = math.prod(1 + len(comp.candidates[r]) for r in comp.remains)
    n = count_assignments(comp, max_assignments) if bound > max_assignments else bound
    if n > max_assignments:
        raise ComponentTooLargeError(
            f"a component with {len(comp.remains)} remains and {len(comp.missing)} missing persons "
            f"({len(comp.families)} families, {sum(len(c) for c in comp.candidates.values())} candidate "
            f"pairings) has more than {max_assignments:,} assignments (at most {bound:.3g}); raise the "
            "LR threshold (--lr-threshold), set an exclusion limit (--max-exclusions), place the undisputed "
            "identifications first (--fix-undisputed) or raise --max-assignments",
            size=n,
            remains=comp.remains,
            missing=comp.missing,
        )
    rem = comp.remains
    fam_of = {mp: problem.family_of(mp) for mp in comp.missing}
    single = {r: problem.remains_loglik(r) for r in rem}
    fam_memo: dict[tuple[str, tuple[Placement, ...]], float] = {}
    log_prior: dict[tuple[str, str], float] = {}
    if prior is not None:
        for (rid, mp), w in prior.items():
            if w < 0:
                raise DVIError(f"prior weight of {rid} -> {mp} must be >= 0, found {w}")
            log_prior[(rid, mp)] = math.log(w) if w > 0 else -math.inf

    def fam_ll(fid: str, pl: tuple[Placement, ...]) -> float:
        key = (fid, pl)
        v = fam_memo.get(key)
        if v is None:
            v = problem.family_loglik(fid, pl)
            fam_memo[key] = v
        return v

    comp.null_loglik = math.fsum([fam_ll(f, ()) for f in comp.families] + [single[r] for r in rem])
    targets: list[str] = [UNASSIGNED] * len(rem)
    used: set[str] = set()
    out: list[tuple[float, float, tuple[str, ...]]] = []

    def leaf() -> None:
        per_fam: dict[str, list[Placement]] = {}
        ll = 0.0
        lp = 0.0
        for rid, t in zip(rem, targets, strict=True):
            if t == UNASSIGNED:
                ll += single[rid]
            else:
                per_fam.setdefault(fam_of[t], []).append((t, rid))
                if log_prior:
                    lp += log_prior.get((rid, t), 0.0)
        for f in comp.families:
            v = fam_ll(f, tuple(sorted(per_fam.get(f, ()))))
            if v == -math.inf:
                ll = -math.inf
                break
            ll += v
        out.append((ll + lp if ll != -math.inf else -math.inf, ll, tuple(targets)))

    def visit(i: int) -> None:
        if i == len(rem):
            leaf()
            return
        targets[i] = UNASSIGNED
        visit(i + 1)
        for mp in comp.candidates[rem[i]]:
            if mp not in used:
                used.add(mp)
                targets[i] = mp
                visit(i + 1)
                used.discard(mp)
        targets[i] = UNASSIGNED

    visit(0)
    out.sort(key=lambda x: (-x[0], x[2]))
    comp.assignments = out
    comp.log_norm = _logsumexp([s for s, _, _ in out])
    best: dict[tuple[str, str], float] = {}
    best_m: dict[tuple[str, str], float] = {}
    for _, ll, tg in out:
        given = dict.fromkeys(comp.missing, UNASSIGNED)
        for rid, t in zip(rem, tg, strict=True):
            k = (rid, t)
            best[k] = max(ll, best.get(k, -math.inf))
            if t != UNASSIGNED:
                given[t] = rid
        for km in given.items():
            best_m[km] = max(ll, best_m.get(km, -math.inf))
    comp.best_given = best
    comp.best_given_missing = best_m
    return comp


def k_best(comps: Sequence[Component], k: int) -> list[tuple[int, ...]]:
    """Index tuples of the ``k`` best combinations of the components' sorted
    lists (sum of scores), best first, without enumerating the product."""
    if not comps:
        return [()]
    start = tuple(0 for _ in comps)

    def score(idx: tuple[int, ...]) -> float:
        return math.fsum(c.assignments[i][0] for c, i in zip(comps, idx, strict=True))

    heap: list[tuple[float, tuple[int, ...], int]] = [(-score(start), start, 0)]
    out: list[tuple[int, ...]] = []
    while heap and len(out) < k:
        _, idx, last = heapq.heappop(heap)
        out.append(idx)
        for j in range(last, len(comps)):
            if idx[j] + 1 < comps[j].size:
                nxt = (*idx[:j], idx[j] + 1, *idx[j + 1 :])
                heapq.heappush(heap, (-score(nxt), nxt, j))
    return out


def solve_joint(
    problem: DVIProblem,
    pairwise: PairwiseResult | None = None,
    *,
    top: int = 20,
    lr_threshold: float = 0.0,
    max_exclusions: int | None = None,
    max_assignments: int = MAX_ASSIGNMENTS,
    prior: Mapping[tuple[str, str], float] | None = None,
    fixed: Mapping[str, str] | None = None,
    null_loglik: float | None = None,
) -> JointResult:
    """The ``top`` best assignments of the case, with LR and posterior.

    ``prior`` gives a weight to pairings (``{(remains, missing): w}``, 1 when
    absent; ``*`` always 1): the prior of an assignment is the product of
    its pairings' weights (flat when ``None``). ``fixed`` and ``null_loglik``
    are for a problem reduced by placing identifications already made
    (:func:`opendvi.dvi.undisputed.find_undisputed`): the fixed pairs are
    added to every row and the LR is taken against ``null_loglik`` (that of
    the problem before reduction).
    """
    pw = pairwise if pairwise is not None else pairwise_lr(problem)
    cands = candidate_pairings(problem, pw, lr_threshold=lr_threshold, max_exclusions=max_exclusions)
    comps = [
        solve_component(problem, c, prior=prior, max_assignments=max_assignments) for c in components(problem, cands)
    ]
    in_comp = {r for c in comps for r in c.remains}
    fams_in = {f for c in comps for f in c.families}
    const = math.fsum(
        [problem.family_loglik(f, ()) for f in problem.families if f not in fams_in]
        + [problem.remains_loglik(r) for r in problem.remains if r not in in_comp]
    )
    null = math.fsum([const] + [c.null_loglik for c in comps])
    ref_null = null if null_loglik is None else null_loglik
    rows: list[JointRow] = []
    for idx in k_best(comps, top):
        assignment = {r: UNASSIGNED for r in problem.remains}
        lls = [const]
        lpost = 0.0
        for c, i in zip(comps, idx, strict=True):
            s, ll, tg = c.assignments[i]
            lls.append(ll)
            lpost += s - c.log_norm if s != -math.inf else -math.inf
            assignment.update(zip(c.remains, tg, strict=True))
        ll_total = -math.inf if any(v == -math.inf for v in lls) else math.fsum(lls)
        if fixed:
            assignment = {**dict(fixed), **assignment}
        rows.append(
            JointRow(
                assignment=assignment,
                loglik=ll_total,
                log_lr=ll_total - ref_null if ll_total != -math.inf else -math.inf,
                log_posterior=lpost,
            )
        )
    n = 1
    for c in comps:
        n *= c.size
    return JointResult(rows=rows, null_loglik=ref_null, n_assignments=n, components=comps, fixed=dict(fixed or {}))


def assignment_loglik(problem: DVIProblem, assignment: Mapping[str, str]) -> float:
    """ln P(data | assignment) computed directly (any assignment; ``*`` or
    absent = not identified). For checks and for one-off evaluations."""
    used: set[str] = set()
    per_fam: dict[str, list[Placement]] = {}
    total = []
    for rid in problem.remains:
        t = assignment.get(rid, UNASSIGNED)
        if t == UNASSIGNED:
            total.append(problem.remains_loglik(rid))
            continue
        if t in used:
            raise DVIError(f"missing person {t} is assigned twice")
        used.add(t)
        per_fam.setdefault(problem.family_of(t), []).append((t, rid))
    for f in problem.families:
        v = problem.family_loglik(f, tuple(sorted(per_fam.get(f, ()))))
        if v == -math.inf:
            return -math.inf
        total.append(v)
    return math.fsum(total)
