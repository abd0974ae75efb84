"""Bundled data: the demo case (see ``PROVENANCE.md`` beside this file)."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path


def demo_case_path() -> Path:
    """Path of the bundled demo case (``dvi-case/1``)."""
    with as_file(files(__name__) / "demo-case.json") as p:
        return Path(p)
