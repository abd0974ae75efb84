"""The core layer imports no web, database or CLI library (architecture.md)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("sqlalchemy", "fastapi", "typer", "click", "rich", "starlette", "alembic", "dask", "pydantic")


def test_core_imports_no_outer_library() -> None:
    code = (
        "import sys, opendvi.core.likelihood, opendvi.core.case, opendvi.core.simulate, "
        "opendvi.core.pedigree, opendvi.core.mutation, opendvi.core.markers\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "mine = [m for m in sys.modules if m.startswith('opendvi.') and not m.startswith('opendvi.core')]\n"
        "print(bad, mine)\n"
        "assert not bad and not mine, (bad, mine)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_power_imports_only_domain_packages() -> None:
    """opendvi.power (a domain package) uses core and screening, never the
    service, the store, the CLI or their libraries; matplotlib only when a plot is drawn."""
    code = (
        "import sys, opendvi.power, opendvi.power.plot\n"
        f"bad = [m for m in {(*FORBIDDEN, 'matplotlib')!r} if m in sys.modules]\n"
        "mine = [m for m in sys.modules if m.startswith(('opendvi.service', 'opendvi.store', 'opendvi.cli'))]\n"
        "print(bad, mine)\n"
        "assert not bad and not mine, (bad, mine)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
