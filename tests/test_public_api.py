"""The public names of opendvi.core stay importable (httpx-style guard)."""

from __future__ import annotations

import opendvi.core as core


def test_core_all__every_name_exists() -> None:
    missing = [name for name in core.__all__ if not hasattr(core, name)]
    assert not missing


def test_core_all__sorted_and_unique() -> None:
    assert list(core.__all__) == sorted(set(core.__all__))
