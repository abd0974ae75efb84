"""Spreadsheet templates (CSV or Excel) and pedtools-style pedigree text.

* families template (:mod:`.families`): one row per person, columns
  ``family``, ``id``, ``father``, ``mother``, ``sex``, ``missing``,
  ``sample`` (the barcode of the person's reference sample, linking to a
  profiles file);
* profiles template (:mod:`.profiles`): one row per sample, ``sample`` (or
  ``id``/``barcode``/``Sample Name``), optional ``sex``, then a column per
  marker with "12/14" (or "12,14", "12 14"), or two columns per marker
  (``D3S1358_1``/``D3S1358_2``, ``D3S1358.1``/``.2``, ``D3S1358 Allele 1``);
* pedtools text (:mod:`.ped`): whitespace-separated ``[famid] id fid mid
  sex`` (0 = no parent; sex 1 male, 2 female) and a "a/b" column per marker.

Readers take a path or a file object (with ``filename``, the name their
messages give it) and collect the rows; any bad row raises
:class:`~opendvi.core.errors.FileFormatError` with its line (CSV/text: file
line; Excel: sheet row) before anything is returned. Writers for results
(generic rows, a pairwise matrix; :mod:`.rows`) write CSV or Excel
atomically.
"""

from opendvi.io.tables.families import FamilyTable, families_table_rows, read_families_table
from opendvi.io.tables.ped import ped_text, read_ped
from opendvi.io.tables.profiles import profiles_table_rows, read_profiles_table
from opendvi.io.tables.rows import Row, read_rows, write_matrix, write_rows, write_table

__all__ = [
    "FamilyTable",
    "Row",
    "families_table_rows",
    "ped_text",
    "profiles_table_rows",
    "read_families_table",
    "read_ped",
    "read_profiles_table",
    "read_rows",
    "write_matrix",
    "write_rows",
    "write_table",
]
