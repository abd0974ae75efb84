"""Bombs are refused within 2 s and 200 MB, through the command line's readers and the service's import
routes: an Excel sheet declaring A1:XFD1048576, a deflate bomb (4 MB inflating to 4 GB), JSON and XML
nested 50,000 deep, a Familias file declaring a billion persons, a file of 1 GiB, an upload over the limit.

Each case runs in a fresh Python process that measures its own time and peak-RSS growth around the call
(``resource.getrusage``), with an address-space cap so that a regression fails instead of swapping.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests import bombs

REPO = Path(__file__).resolve().parents[1]
SECONDS = 2.0
GROWTH_MB = 200.0


def _cap_memory() -> None:  # pragma: no cover - runs in the child
    cap = 6 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _child(code: str, timeout: float = 60) -> list[dict]:  # type: ignore[type-arg]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=_cap_memory, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"child failed (status {proc.returncode}): {proc.stderr[-3000:]}"
    return [json.loads(ln) for ln in lines]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    return {
        "excel-dimension": bombs.excel_dimension_bomb(d / "dimension.xlsx"),
        "excel-deflate": bombs.excel_deflate_bomb(d / "deflate.xlsx"),
        "deep-json": bombs.deep_json(d / "deep.json"),
        "deep-xml": bombs.deep_xml(d / "deep.xml"),
        "fam-count": bombs.fam_count_bomb(d / "count.fam"),
        "huge-file": bombs.huge_file(d / "huge.csv"),
        "many-lines": _many_lines(d / "lines.txt"),
    }


def _many_lines(path: Path) -> Path:
    path.write_bytes(b"D3S1358\n" + b"12\t0.1\n" * 1_100_000)
    return path


def test_bomb_files__are_what_they_claim(files: dict[str, Path]) -> None:
    import zipfile

    assert files["excel-dimension"].stat().st_size < 10_000
    with zipfile.ZipFile(files["excel-deflate"]) as zf:
        sheet = zf.getinfo(bombs.SHEET)
        assert sheet.compress_size < 5_000_000 and sheet.file_size > 4_000_000_000
    assert files["deep-json"].stat().st_size == 100_000


CLI_CHILD = """
import json, resource, sys, time
import openpyxl, numpy, defusedxml.ElementTree, xmlschema
from opendvi.cli import main as cli
from opendvi.io import cmf
cmf._schema()
results = []
for name, args in CASES:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    sys.argv = ["opendvi", *args]
    try:
        cli.main()
        status = 0
    except SystemExit as exc:
        status = exc.code
    except MemoryError:
        status = "MemoryError"
    elapsed = time.perf_counter() - t
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"name": name, "status": status, "seconds": elapsed, "grew_mb": grew}), flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["excel-dimension", "excel-deflate", "deep-json", "deep-xml", "fam-count",
                                  "huge-file", "many-lines"])
def test_cli_readers__refuse_bombs_fast_and_small(name: str, files: dict[str, Path], tmp_path: Path) -> None:
    src = files[name]
    args = ["convert", str(src), str(tmp_path / "out.json")]
    if name == "many-lines":
        args = ["convert", str(src), str(tmp_path / "out.txt"), "--from", "freq", "--to", "freq"]
    code = f"CASES = {[(name, args)]!r}\n" + CLI_CHILD
    (result,) = _child(code)
    assert result["status"] == 2, result
    assert result["seconds"] < SECONDS, result
    assert result["grew_mb"] < GROWTH_MB, result


def test_cli_readers__error_is_one_line_naming_file_and_limit(files: dict[str, Path], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "opendvi.cli.main", "convert", str(files["excel-dimension"]),
                           str(tmp_path / "o.json")], capture_output=True, text=True, timeout=120, env=env,
                          preexec_fn=_cap_memory)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "dimension.xlsx" in lines[0] and "1,048,576 rows" in lines[0] and "OPENDVI_MAX_ROWS" in lines[0]


SERVICE_CHILD = """
import json, resource, sys, time, tempfile, pathlib
from fastapi.testclient import TestClient
from tests.servicekit import make_app, migrated_engine, bearer
tmp = pathlib.Path(tempfile.mkdtemp())
with migrated_engine("sqlite", tmp) as engine:
    app = make_app(engine)
    client = TestClient(app, raise_server_exceptions=False)
    h = bearer(client, "admin")
    client.get("/api/operations/demo", headers=h)
    for name, route, field, path, ctype in CASES:
        data = pathlib.Path(path).read_bytes() if path else b"x" * (51 * 1024 * 1024)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t = time.perf_counter()
        if field is None:
            r = client.post(route, content=data, headers={**h, "content-type": ctype})
        else:
            r = client.post(route, files={field: (pathlib.Path(path or "big.csv").name, data, ctype)}, headers=h)
        elapsed = time.perf_counter() - t
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        del data
        print(json.dumps({"name": name, "status": r.status_code, "body": r.json(), "seconds": elapsed,
                          "grew_mb": grew}), flush=True)
"""


@pytest.mark.slow
def test_service_import_routes__refuse_bombs_with_4xx_fast_and_small(files: dict[str, Path]) -> None:
    file_route = "/api/operations/demo/imports/file"
    xl = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    cases = [
        ("excel-dimension", file_route, "file", str(files["excel-dimension"]), xl),
        ("excel-deflate", file_route, "file", str(files["excel-deflate"]), xl),
        ("families-excel-deflate", "/api/operations/demo/imports/families", "families",
         str(files["excel-deflate"]), xl),
        ("families-excel-dimension", "/api/operations/demo/imports/families", "families",
         str(files["excel-dimension"]), xl),
        ("deep-json-file", file_route, "file", str(files["deep-json"]), "application/json"),
        ("deep-json-body", "/api/operations/demo/imports", None, str(files["deep-json"]), "application/json"),
        ("deep-xml", file_route, "file", str(files["deep-xml"]), "application/xml"),
        ("fam-count", file_route, "file", str(files["fam-count"]), "text/plain"),
        ("frequencies-many-lines", "/api/operations/demo/imports/frequencies", "file", str(files["many-lines"]),
         "text/plain"),
        ("huge-upload", file_route, "file", None, "text/csv"),
    ]
    results = _child(f"CASES = {cases!r}\n" + SERVICE_CHILD, timeout=300)
    assert [r["name"] for r in results] == [c[0] for c in cases]
    for r in results:
        assert r["status"] in (400, 413, 422), r
        err = r["body"]["error"]
        assert err["status"] == r["status"] and err["message"], r
        assert r["seconds"] < SECONDS, r
        assert r["grew_mb"] < GROWTH_MB, r
    by = {r["name"]: r for r in results}
    assert "limit" in json.dumps(by["excel-dimension"]["body"]), by["excel-dimension"]
    assert "OPENDVI_MAX_DEPTH" in json.dumps(by["deep-json-file"]["body"])
    assert by["huge-upload"]["status"] == 413
