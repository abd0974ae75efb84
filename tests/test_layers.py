"""The core layer imports no web, database or CLI library (architecture.md)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


#: what each package of src/opendvi may import from the others (docs/architecture.md); ``opendvi``
#: itself (its ``__version__``) and ``opendvi.data`` (bundled files) are open to all
ALLOWED = {
    "core": set(),
    "i18n": set(),
    "io": {"core"},
    "screening": {"core", "io"},
    "dvi": {"core", "screening"},
    "power": {"core", "screening", "dvi"},
    "store": {"core", "io", "i18n"},
    "reports": {"core", "io", "screening", "dvi", "power", "store", "i18n"},
    "workflows": {"core", "io", "screening", "dvi", "power", "store", "reports", "i18n"},
    "service": {"core", "io", "store", "reports", "workflows", "i18n"},
    "cli": {"core", "io", "store", "reports", "workflows", "service", "i18n"},
}
OPEN = {"data"}


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, opendvi package) of each absolute import of another opendvi package, at any depth
    (imports inside functions count: a layer is crossed wherever it is crossed)."""
    import ast

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = ([f"opendvi.{a.name}" for a in node.names] if node.module == "opendvi"
                     else [node.module])
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "opendvi" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_packages_import_only_inner_layers() -> None:
    """Every module of every package, read with ``ast``: no import of an outer layer (the web service
    or the CLI from the store or the reports, the store from the engines, ...)."""
    src = Path(__file__).resolve().parents[1] / "src" / "opendvi"
    wrong = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if len(rel.parts) < 2 or rel.parts[0] in OPEN:
            continue
        pkg = rel.parts[0]
        assert pkg in ALLOWED, f"{pkg}: a new package; give it its layer in ALLOWED and docs/architecture.md"
        for line, target in _imports(path):
            if target != pkg and target not in ALLOWED[pkg] and target not in OPEN and target != "__version__":
                wrong.append(f"{rel}:{line} imports opendvi.{target}")
    assert not wrong, "\n".join(wrong)


def test_every_folder_of_modules_is_a_regular_package() -> None:
    """A folder of modules without ``__init__.py`` is a namespace package: pytest's doctest collection imported
    ``service/routes/api/accounts.py`` a second time under another name (``api.accounts``), which added its
    routes to the shared router again (duplicate operation ids in the OpenAPI document)."""
    src = Path(__file__).resolve().parents[1] / "src" / "opendvi"
    missing = sorted(str(d.relative_to(src)) for d in {p.parent for p in src.rglob("*.py")}
                     if not (d / "__init__.py").is_file())
    assert missing == []
