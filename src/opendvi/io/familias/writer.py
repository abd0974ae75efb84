"""A case written as a ``.fam`` file: the database, then a ``[DVI]``
section with the remains and the reference families."""

from __future__ import annotations

from opendvi.core.case import Case
from opendvi.core.errors import FileFormatError
from opendvi.core.markers import Marker
from opendvi.core.mutation import MutationModel
from opendvi.core.profiles import Genotype
from opendvi.io.familias.model import MISSING_PREFIX
from opendvi.io.source import Target, put_bytes, source_name


def _num(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


def _code_and_params(
    model: MutationModel | None, marker: Marker, sex: str, path: str
) -> tuple[int, float, float, float]:
    """(code, rate, range, rate2) for one sex."""
    if model is None or model.model == "trivial":
        return 0, 0.0, 0.1, 0.0
    if model.model in ("equal", "proportional"):
        if model.transform:
            raise FileFormatError(
                f"the {sex} {model.model} model with a stationary transform has no Familias code",
                path=path,
                field=marker.name,
            )
        return (0 if model.model == "equal" else 1), model.rate, 0.1, 0.0
    if model.model == "stepwise":
        if model.transform == "stationary":
            return 3, model.rate, model.range, model.rate2
        return (4 if model.rate2 > 0 else 2), model.rate, model.range, model.rate2
    raise FileFormatError(
        f"the {sex} mutation model {model.model!r} cannot be written to a .fam file (Familias has equal, "
        "proportional and stepwise models)",
        path=path,
        field=marker.name,
    )


def case_to_fam_text(
    case: Case, *, path: str = "", missing_prefix: str = MISSING_PREFIX, notes: list[str] | None = None
) -> str:
    """The ``.fam`` text of a case: the database, then a ``[DVI]`` section
    with the remains as unidentified persons and each family as a reference
    family (its pedigree written twice, as "Reference pedigree" and under the
    family's name, as Familias does)."""
    notes = notes if notes is not None else []
    out: list[str] = [
        '"Output from Familias, version 3.3.1"',
        '"(Written by opendvi)"',
        "3.3.1 (DVI)",
        '""',
        "0",
        '"Known relations"',
        "0",
        "0",
        "0",
        "0",
        f"#FALSE# (#Databases: 1 ;Theta/Kinship/Fst: {_num(case.theta)} )",
        str(len(case.markers)),
        "#TRUE#",
        '"opendvi"',
    ]
    for m in case.markers:
        if m.is_x:
            raise FileFormatError(
                f"marker {m.name} is X-chromosomal; a .fam file cannot say so", path=path, field=m.name
            )
        cf, rf, gf, r2f = _code_and_params(m.female, m, "female", path)
        cm, rm, gm, r2m = _code_and_params(m.male, m, "male", path)
        out += [
            f'"{m.name}"',
            _num(rf),
            _num(rm),
            str(cf),
            str(cm),
            str(m.n_alleles),
            _num(gf),
            _num(gm),
            _num(r2f),
            _num(r2m),
        ]
        out += ["#FALSE#", "0"]
        out.append(
            f"{m.n_alleles}\t(DatabaseSize = {m.database_size or 0} , Dropout probability = 0 , "
            "Minor allele frequency = 0 )"
        )
        for a, freq in zip(m.alleles, m.frequencies, strict=True):
            out += [f'"{a}"', repr(float(freq))]
    out.append("")

    def check_name(n: str, what: str) -> None:
        if not n or n != n.strip() or "\n" in n or "=" in n or n.startswith("["):
            raise FileFormatError(f"{what} {n!r} cannot be written to a .fam file", path=path)

    def dna(gts: dict[str, Genotype] | object, depth: int) -> list[str]:
        assert isinstance(gts, dict)
        lines = ["[" * depth + "DNA data" + "]" * depth, f"nSystems= {len(gts)}"]
        for mname, gt in gts.items():
            a1 = gt[0]
            a2 = gt[1] if len(gt) > 1 else ""
            lines += [f"SystemName= {mname}", f"Allele1= {a1}", f"Allele2= {a2}"]
        return lines

    def gender(sex: str | None) -> str:
        return "Male" if sex == "M" else "Female" if sex == "F" else "Unknown"

    out += ["[DVI]", "[[Unidentified persons]]", f"nPersons= {len(case.remains)}"]
    for k, r in enumerate(case.remains, start=1):
        check_name(r.id, "remains id")
        if r.dropout:
            notes.append(f"{path}: remains {r.id}: dropout {r.dropout:g} is not written (no place for it in .fam)")
        out += [f"[[[Person {k} ]]]", f"Name= {r.id}", f"Gender= {gender(r.sex)}"]
        out += dna(dict(r.genotypes), 4)
    out += ["", "[[Reference Families]]", f"nFamilies= {len(case.families)}"]
    for k, f in enumerate(case.families, start=1):
        check_name(f.id, "family id")
        rename: dict[str, str] = {}
        for pid in f.pedigree.ids:
            check_name(pid, "member id")
            if pid in f.missing and not pid.lower().startswith(missing_prefix.lower()):
                rename[pid] = f"{missing_prefix} {pid}"
                notes.append(
                    f"{path}: family {f.id}: missing person {pid} written as {rename[pid]!r} "
                    "(Familias DVI marks missing persons by name)"
                )
            elif pid not in f.missing and not f.genotypes.get(pid) and pid.lower().startswith(missing_prefix.lower()):
                raise FileFormatError(
                    f"family {f.id}: member {pid} is not missing but its name begins with {missing_prefix!r}",
                    path=path,
                )
            else:
                rename[pid] = pid
            if f.dropout.get(pid):
                notes.append(f"{path}: family {f.id}, member {pid}: dropout is not written (no place for it in .fam)")
        out += [f"[[[Family {k} ]]]", f"Name= {f.id}", "[[[[Persons]]]]", f"nPersons= {len(f.pedigree)}"]
        for j, ind in enumerate(f.pedigree.individuals, start=1):
            out += [f"[[[[[Person {j}]]]]]", f"Name= {rename[ind.id]}", f"Gender= {gender(ind.sex)}"]
            out += dna(dict(f.genotypes.get(ind.id, {})), 6)
        rels: list[str] = []
        for ind in f.pedigree.individuals:
            for par in (ind.father, ind.mother):
                if par is not None:
                    rels += [f"Parent= {rename[par]}", f"Child= {rename[ind.id]}"]
        out += ["[[[[Pedigrees]]]]", "nPedigrees= 2"]
        for j, pname in enumerate(("Reference pedigree", f.id), start=1):
            out += [f"[[[[[Pedigree {j}]]]]]", f"Name= {pname}", f"nRelations= {len(rels) // 2}", *rels]
    if case.pairings:
        notes.append(f"{path}: pairings are not written (no place for them in .fam)")
    out.append("")
    return "\r\n".join(out)


def write_fam(case: Case, target: Target, *, notes: list[str] | None = None, filename: str | None = None) -> None:
    """Write a case as a Familias ``.fam`` file, to a path (atomically) or a
    binary file object (``filename``: the name messages give it)."""
    text = case_to_fam_text(case, path=source_name(target, filename), notes=notes)
    put_bytes(target, text.encode("utf-8"))
