"""Conversions between field formats, and assembling a case from several files.

:func:`load` (:mod:`.load`) reads any supported file, a path or a file
object, into a :class:`Dataset` (whatever the file holds: a whole case,
profiles, families, frequencies); :func:`assemble_case` and :func:`case_of`
(:mod:`.assemble`) join remains, families, reference profiles and a
frequency source into one validated :class:`~opendvi.core.case.Case`, with
the lineage part of :func:`.lineage.build_lineage`;
:func:`save_case`, :func:`save_profiles` and :func:`save_freqs`
(:mod:`.save`) write in a target format. Every error is a
:class:`~opendvi.core.errors.FileFormatError` naming the file and the place;
nothing is written unless the whole input is valid (outputs are atomic).
"""

from opendvi.io.convert.assemble import assemble_case, case_of, mutation_models
from opendvi.io.convert.lineage import DEFAULT_MT_RATE, LineageSources
from opendvi.io.convert.load import FORMATS, Dataset, guess_format, load
from opendvi.io.convert.save import save_case, save_freqs, save_profiles

__all__ = [
    "DEFAULT_MT_RATE", "FORMATS", "Dataset", "LineageSources", "assemble_case", "case_of", "guess_format", "load",
    "mutation_models", "save_case", "save_freqs", "save_profiles",
]
