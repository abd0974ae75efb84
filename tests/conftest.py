"""Shared fixtures: where the reference corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

#: In CI (``CI`` set, as ``.ci/run`` does) the property tests draw the same examples every run, so a
#: red CI is reproducible; locally they explore new examples and keep failures in ``.hypothesis/``.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENDVI_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "data" / "reference"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED} (set OPENDVI_SHARED)")
    return SHARED
