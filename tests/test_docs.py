"""Docs that tests keep honest (datasette-style).

* The README opens with exactly two set-up commands, and `.ci/run` runs the
  second one (the test command) verbatim.
* Every `opendvi` command is mentioned in the README or in docs/.
* CHANGELOG.md has an "Unreleased" section.
"""

from __future__ import annotations

import re

from typer.main import get_command

from opendvi.cli.main import app

from .conftest import REPO


def _setup_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README must open with a ```sh block"
    assert text.index("```sh") < text.index("\n## "), "the set-up block must come before the first section"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme__opens_with_two_setup_commands() -> None:
    cmds = _setup_commands()
    assert len(cmds) == 2
    assert cmds[0].startswith("pip install -e .")
    assert "pytest" in cmds[1] and "ruff" in cmds[1] and "mypy" in cmds[1]


def test_ci_run__calls_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert _setup_commands()[1] in ci


def test_every_command__is_documented() -> None:
    docs = (REPO / "README.md").read_text() + "".join(p.read_text() for p in (REPO / "docs").rglob("*.md"))
    group = get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert names
    undocumented = [n for n in names if f"opendvi {n}" not in docs]
    assert not undocumented


def test_changelog__has_unreleased_section() -> None:
    assert "## Unreleased" in (REPO / "CHANGELOG.md").read_text()
