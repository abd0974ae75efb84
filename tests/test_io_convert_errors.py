"""``opendvi convert`` and ``case build``: expected file and system errors
are one line (exit 2); any other exception is a bug and shows as one
(exit 1, "internal error"), never dressed up as a file format error."""

from __future__ import annotations

from pathlib import Path

import pytest

from .clikit import run
from .conftest import SHARED

FAM = SHARED / "data" / "formats" / "familias_fam" / "dvir" / "dvi-example.fam"


def test_convert__unwritable_output_is_one_line(tmp_path: Path) -> None:
    r = run("convert", FAM, tmp_path / "no-such-dir" / "out.json")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opendvi: error: ") and "FileNotFoundError" in lines[0], r.stderr


@pytest.mark.parametrize("command", ["convert", "build"])
def test_convert__a_bug_is_not_a_format_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    from opendvi.cli import formats_cmd

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(formats_cmd, "save_case", broken)
    args = ["convert", FAM, tmp_path / "out.json"] if command == "convert" else \
        ["case", "build", "--families", FAM, "-o", tmp_path / "out.json"]
    r = run(*args)
    assert r.returncode == 1, r.stderr
    assert "internal error: KeyError" in r.stderr and "file format" not in r.stderr.lower()
    assert not (tmp_path / "out.json").exists()
