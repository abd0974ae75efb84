"""Familias 3 ``.fam`` files: read into a case, write a case back.

A ``.fam`` file is positional: one value per line, strings in double quotes,
booleans as ``#TRUE#``/``#FALSE#``. Its parts, in order (``docs/file-formats.md``
gives every line):

1. a header (program, a comment, the version, an optional ``""``);
2. the persons: name, flags, sex, and genotypes as 0-based allele and locus
   indices into the database;
3. ``"Known relations"``: extra females and males, parent-child pairs
   (0-based person indices);
4. the pedigrees (hypotheses): name, extra persons, parent-child pairs;
5. the database: theta, then per locus the mutation model of each sex by
   Familias' code, rates, ranges, rate2, silent allele, database size,
   dropout, minor allele frequency and the allele frequencies;
6. optionally a ``[DVI]`` section (INI-like, nesting by the number of
   brackets) with the unidentified persons and the reference families.

Familias' mutation model codes: 0 equal, 1 proportional, 2 stepwise
(unstationary), 3 stepwise stationary, 4 extended stepwise (stepwise with
``rate2`` for integer <-> microvariant steps). opendvi reads 2 and 4 as
``stepwise`` (with the file's ``rate2``) and 3 as ``stepwise`` with
``"transform": "stationary"``, as pedFamilias does.

The package: :mod:`.model` (the file as it is), :mod:`.reader` (text ->
:class:`FamFile`, with :mod:`.dvi_section` for the ``[DVI]`` part),
:mod:`.interpret` (:class:`FamFile` -> case) and :mod:`.writer` (case ->
text). Readers take a path or a file object, with ``filename``: the name
their messages give it.
"""

from opendvi.io.familias.interpret import read_fam
from opendvi.io.familias.reader import parse_fam
from opendvi.io.familias.writer import case_to_fam_text, write_fam

__all__ = ["case_to_fam_text", "parse_fam", "read_fam", "write_fam"]
