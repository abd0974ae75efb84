"""The pedigree drawing of the pages: :mod:`opendvi.reports.pedigree` (one home for the pages and
the identification report)."""

from opendvi.reports.pedigree import Person, fit_text, pedigree_svg, text_width

__all__ = ["Person", "fit_text", "pedigree_svg", "text_width"]
