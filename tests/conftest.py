"""Shared fixtures: where the reference corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENDVI_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "data" / "reference"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data not found at {SHARED} (set OPENDVI_SHARED)")
    return SHARED
