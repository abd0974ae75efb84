"""Lineage evidence in the joint step (``opendvi solve``): the lineage factor
of a family option (``shared/design/lineage.md``, ``docs/lineage.md``).

One remains V placed on a missing person M: the factor is the pairing's
lineage LR, LR_Y x LR_mt, as :func:`opendvi.dvi.lineage.lineage_lrs` gives
it (the combined LR of the pairing = autosomal x Y x mt).

Several remains placed in one family: the placements are grouped by lineage.
Placements on different lineages are independent given the pedigree, so the
factor is the product over the groups. A group of one is the pairing's LR.
A Y group of several (males of one paternal line): the joint lineage LR

    P(h_V1, h_V2, ... | refs, pedigree) / prod f(h_Vi)

by the core's exact peeling (:func:`opendvi.core.lineage_tree.y_locus_likelihood`)
with the placed remains as typed members of the line, per locus compared (typed
in a reference of the line, as for one remains), each f(h_Vi) over its own
loci compared. An mt group of several (one maternal line): the core's mt model
is a k-link formula against the nearest reference, not a per-link kernel, so
the joint is exact only where every placed person has the same nearest
reference and their paths to it share no mother–child link (the placements
are then independent given that reference, and the factor is the product of
their mt LRs); otherwise the smallest of their mt LRs is used (the shared line
is not counted twice) and a note says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opendvi.core.errors import LikelihoodError
from opendvi.core.lineage_lr import YLineageTable, combined_log_lr, y_lineage_table
from opendvi.core.lineage_tree import mt_lineage, nearest, rooted_tree, y_adjacency, y_lineage, y_locus_likelihood
from opendvi.core.pedigree import Pedigree
from opendvi.dvi.errors import DVIError

if TYPE_CHECKING:
    from opendvi.dvi.problem import DVIProblem, Placement


class LineageFactors:
    """The lineage factors of one :class:`~opendvi.dvi.problem.DVIProblem`
    (memoised); ``notes`` collects what the joint step must say."""

    def __init__(self, problem: DVIProblem) -> None:
        self.problem = problem
        self.lineage = problem.case.lineage
        self.notes: list[str] = []
        self._tables: dict[str, YLineageTable] = {}
        self._pair: dict[tuple[str, str], tuple[float, float]] = {}
        self._memo: dict[tuple[str, tuple[Placement, ...]], float] = {}

    # -- one remains ---------------------------------------------------------------------------------
    def _pair_logs(self, rid: str, mp: str) -> tuple[float, float]:
        """(ln LR_Y, ln LR_mt) of ``rid`` as ``mp`` (0 for a system absent from the case)."""
        got = self._pair.get((rid, mp))
        if got is None:
            from opendvi.dvi.lineage import lineage_lrs

            d = lineage_lrs(self.problem, rid, mp, tables=self._tables)
            got = (d["Y"].log_lr if "Y" in d else 0.0, d["mt"].log_lr if "mt" in d else 0.0)
            self._pair[(rid, mp)] = got
        return got

    def pair_log_lr(self, rid: str, mp: str) -> float:
        """ln of the lineage LR (Y x mt) of ``rid`` as ``mp``; 0 without lineage data."""
        if self.lineage is None:
            return 0.0
        y, mt = self._pair_logs(rid, mp)
        return combined_log_lr({"Y": y, "mt": mt})

    # -- several remains in one family ---------------------------------------------------------------
    def family_log_lr(self, fid: str, placements: Sequence[Placement]) -> float:
        """ln of the joint lineage LR of ``placements`` ((missing, remains)) in family ``fid``."""
        if self.lineage is None or not placements:
            return 0.0
        pl = tuple(sorted(placements))
        key = (fid, pl)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        if len(pl) == 1:
            out = self.pair_log_lr(pl[0][1], pl[0][0])
        else:
            ped = self.problem.families[fid].pedigree
            try:
                out = combined_log_lr({"Y": self._y_joint(fid, ped, pl), "mt": self._mt_joint(fid, ped, pl)})
            except LikelihoodError as exc:
                raise DVIError(f"family {fid}: {exc}") from None
        self._memo[key] = out
        return out

    def _y_joint(self, fid: str, ped: Pedigree, pl: tuple[Placement, ...]) -> float:
        lin = self.lineage
        assert lin is not None
        if lin.y is None:
            return 0.0
        groups: dict[frozenset[str], list[Placement]] = {}
        total: dict[str, float] = {}
        for mp, rid in pl:
            line = frozenset(y_lineage(ped, mp))
            if not line or not lin.y_of(rid):  # female (exclusion if V carries Y) or V untyped: alone
                total[mp] = self._pair_logs(rid, mp)[0]
            else:
                groups.setdefault(line, []).append((mp, rid))
        for group in groups.values():
            if len(group) == 1:
                mp, rid = group[0]
                total[mp] = self._pair_logs(rid, mp)[0]
            else:
                total[group[0][0]] = self._y_group(ped, group)
        return combined_log_lr(total)

    def _y_group(self, ped: Pedigree, group: list[Placement]) -> float:
        """ln P(h_V1, ... | refs) / prod f(h_Vi) of remains on one paternal line (exact peeling)."""
        lin = self.lineage
        assert lin is not None and lin.y is not None
        for mp, rid in group:  # a pairing that excludes by itself excludes the option
            if self._pair_logs(rid, mp)[0] == -math.inf:
                return -math.inf
        mp0 = group[0][0]
        table = self._tables.get(mp0)
        if table is None:
            refs_all = {pid: h for pid in ped.ids if (h := lin.y_of(pid))}
            table = self._tables[mp0] = y_lineage_table(ped, mp0, refs_all, lin.y)
        if table.note:  # no typed reference on the line: every LR is 1, as for one remains
            return 0.0
        haps = {mp: lin.y_of(rid) for mp, rid in group}
        adj = y_adjacency(ped)
        nodes = {ped.index(pid) for pid in table.dist}
        log_num = 0.0
        for name in table.loci:
            typed = sorted(pid for pid, h in table.refs.items() if name in h)
            root_id = nearest(table.dist, typed)
            assert root_id is not None
            root = ped.index(root_id)
            rate = lin.y.by_name[name].rate
            obs = {ped.index(pid): table.refs[pid][name] for pid in typed}
            children = rooted_tree(adj, root, nodes)
            den = y_locus_likelihood(children, root, obs, rate) if len(obs) > 1 else 1.0
            if den == 0.0:
                raise LikelihoodError(f"Y locus {name}: the paternal-line references are impossible together")
            placed = {ped.index(mp): h[name] for mp, h in haps.items() if h and name in h}
            if not placed:
                continue
            num = y_locus_likelihood(children, root, {**obs, **placed}, rate)
            if num == 0.0:
                return -math.inf
            log_num += math.log(num) - math.log(den)
        log_f = 0.0
        for _mp, h in haps.items():
            assert h is not None
            loci = [name for name in table.loci if name in h]
            if loci:
                log_f += math.log(lin.y.database.frequency(h, loci).frequency)
        return log_num - log_f

    def _mt_joint(self, fid: str, ped: Pedigree, pl: tuple[Placement, ...]) -> float:
        lin = self.lineage
        assert lin is not None
        if lin.mt is None:
            return 0.0
        refs = {pid for pid in ped.ids if lin.mt_of(pid) is not None}
        groups: dict[frozenset[str], list[Placement]] = {}
        for mp, rid in pl:
            groups.setdefault(frozenset(mt_lineage(ped, mp)), []).append((mp, rid))
        total: list[float] = []
        for group in groups.values():
            logs = [self._pair_logs(rid, mp)[1] for mp, rid in group]
            typed = [(mp, rid) for mp, rid in group if lin.mt_of(rid) is not None]
            if len(typed) < 2 or self._mt_independent(ped, [mp for mp, _ in typed], refs):
                total.extend(logs)
                continue
            if any(v == -math.inf for v in logs):
                return -math.inf
            total.append(min(logs))
            self.note(
                f"family {fid}: the joint mtDNA likelihood of remains {', '.join(sorted(r for _, r in typed))} "
                "placed on one maternal line is not computed exactly (the mtDNA model is a k-link formula "
                "against the nearest reference, and their paths to it share links); the smallest of their "
                "mtDNA LRs is used"
            )
        return combined_log_lr({str(i): v for i, v in enumerate(total)})

    def _mt_independent(self, ped: Pedigree, mps: list[str], refs: set[str]) -> bool:
        """Whether every placed person has the same nearest mt reference and
        their paths to it share no mother–child link (exact product)."""
        nearest_refs = set()
        for mp in mps:
            dist = mt_lineage(ped, mp)
            nearest_refs.add(nearest(dist, sorted(r for r in refs if r in dist and r != mp)))
        if len(nearest_refs) != 1:
            return False
        ref = nearest_refs.pop()
        if ref is None:
            return True  # no reference: every mt LR is 1
        seen: set[str] = set()
        for mp in mps:
            links = _mt_path_links(ped, mp, ref)
            if links & seen:
                return False
            seen |= links
        return True

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _mt_path_links(ped: Pedigree, a: str, b: str) -> set[str]:
    """The mother–child links (named by the child) on the path from ``a`` to ``b``."""

    def up(x: str) -> list[str]:
        chain = [x]
        i = ped.index(x)
        while ped.mother[i] >= 0:
            i = ped.mother[i]
            chain.append(ped.ids[i])
        return chain

    ua, ub = up(a), up(b)
    common = next(x for x in ua if x in set(ub))
    return set(ua[: ua.index(common)]) | set(ub[: ub.index(common)])


def brothers_notes(problem: DVIProblem) -> list[str]:
    """One note per pair of missing persons of a family whom a lineage system
    cannot tell apart because they take it from the same parent: the Y of two
    sons of one father (full or paternal half brothers), the mtDNA of two
    children of one mother (full or maternal half siblings). Where that is
    every lineage system of the case, the calls between them rest on the
    autosomal markers only; otherwise on the autosomal markers and the other
    system."""
    lin = problem.case.lineage
    if lin is None or not lin.systems:
        return []
    out = []
    for fid, fam in problem.families.items():
        ped = fam.pedigree
        mps = [m for m in fam.missing if m in problem.missing]
        for k, a in enumerate(mps):
            ia = ped.index(a)
            for b in mps[k + 1 :]:
                ib = ped.index(b)
                same_father = ped.father[ia] >= 0 and ped.father[ia] == ped.father[ib]
                same_mother = ped.mother[ia] >= 0 and ped.mother[ia] == ped.mother[ib]
                males = bool(y_lineage(ped, a) and y_lineage(ped, b))  # Y tells only two males apart
                applies = [s for s in lin.systems if s == "mt" or males]
                shared = [s for s in applies if (s == "mt" and same_mother) or (s == "Y" and same_father)]
                if not shared:
                    continue
                kin = "full siblings" if same_father and same_mother else (
                    "half siblings through their father" if same_father else "half siblings through their mother")
                rest = [s for s in applies if s not in shared]
                basis = ("the autosomal markers only" if not rest
                         else f"the autosomal markers and the {' and '.join(rest)} lineage")
                out.append(
                    f"family {fid}: missing persons {a} and {b} share the {' and '.join(shared)} lineage "
                    f"({kin}): the {' and '.join(shared)} markers cannot tell which remains is {a} and which "
                    f"is {b}; those calls rest on {basis}"
                )
    return out
