"""The national database through the service's own API: imports, a full run, an exchange, new
references, 50 readers during the run, and four pages in headless Chromium (issue 9).

One ``opendvi serve --matching-worker`` is started by the benchmark on 127.0.0.1 (a free port, a
fresh database: the embedded SQLite default, then PostgreSQL when a URL is given) and stopped at the
end. Steps, one or more rows each:

1. ``opendvi simulate --families F --remains R+E --seed 2026``: the first R remains are the database's,
   the last E the exchange that comes later; in N families with two or more typed relatives one
   reference profile is held back (the "new references" that come later).
2. ``import``: the families, then the remains, through ``POST /api/operations/NAT/imports`` in
   ``dvi-case/1`` chunks of at most 10,000 (each chunk one all-or-nothing request).
3. ``full_run``: ``POST /api/operations/NAT/matching-runs`` (top 10, LR threshold 1e4), polled to
   the end; its timings (screening, joint, storing) beside ``opendvi screen`` on the same case file
   (the same top and threshold, a separate process, timed after the run). Target: the run within 2x
   of the CLI plus the run's own time to store the candidates.
4. ``readers``: meanwhile 50 closed-loop clients (signed-in reviewers) read pages and the API
   (the remains list, a remains with its candidates, a family, the run, the dashboard): p50, p99,
   errors. Target: p99 under 500 ms and no error.
5. ``exchange``: the E new remains imported and a run; beside ``opendvi screen`` of the E remains
   against every family. Target: import and run in under 1 minute.
6. ``references``: the N held-back references imported (their families again, now with the
   reference) and a run; beside ``opendvi screen`` of every remains against those N families.
   Target: under 10 s.
7. ``page``: the remains list, a family page, a remains' page with its candidates and the audit
   trail in headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright; skipped with a
   note when absent): the time to the ``load`` event, best of 3, the first beside it; a screenshot
   of each in ``build/test-artifacts/national/`` (under ``$OPENDVI_TEST_ARTIFACTS`` as the browser
   tests', or ``$OPENDVI_BENCH_ARTIFACTS``). Target: under 1 s.

Sizes: the issue's national sizes by default (30,000 remains, 50,000 families, an exchange of 6,000,
100 references); ``--quick`` a small case CI runs in about a minute (200 x 300, 40, 10);
``OPENDVI_BENCH_NATIONAL=REMAINSxFAMILIES[xEXCHANGExREFERENCES]`` or the command-line options pick
others. PostgreSQL: ``--pg URL`` or ``OPENDVI_TEST_DATABASE_URL`` (the database is EMPTIED: its name
must contain ``test`` or ``bench``); absent, the PostgreSQL row says it was skipped and why.

Rows: ``backend, step, metric, value, unit, cli_s`` (the CLI's time on the same data),
``ratio`` (value over the CLI's), ``target``, ``met`` and ``note``.

Run alone: ``python benchmarks/bench_national.py --remains 5000 --families 8000`` (a medium scale),
or through the runner: ``python benchmarks/run.py national``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_load  # noqa: E402  (the served instance, its users and PostgreSQL handling)

OPERATION = "NAT"
CHUNK = 10_000
TOP_K = 10
LR_THRESHOLD = 1e4
SEED = 2026
READERS = 50
#: the pages' screenshots: test artefacts, as the browser tests' (build/ is not committed)
_TEST_ARTIFACTS = Path(os.environ.get("OPENDVI_TEST_ARTIFACTS", HERE.parent / "build" / "test-artifacts"))
ARTIFACTS = Path(os.environ.get("OPENDVI_BENCH_ARTIFACTS") or _TEST_ARTIFACTS / "national")


@dataclass(frozen=True)
class Sizes:
    remains: int
    families: int
    exchange: int
    references: int

    @classmethod
    def national(cls) -> Sizes:
        return cls(30_000, 50_000, 6_000, 100)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(200, 300, 40, 10)

    @classmethod
    def parse(cls, text: str) -> Sizes:
        """``REMAINSxFAMILIES`` (exchange a fifth of the remains, 100 references at most a fiftieth of the
        families) or ``REMAINSxFAMILIESxEXCHANGExREFERENCES``."""
        parts = [int(p.replace("_", "").replace(",", "")) for p in text.lower().split("x")]
        if len(parts) == 2:
            return cls(parts[0], parts[1], max(1, parts[0] // 5), max(1, min(100, parts[1] // 50)))
        if len(parts) == 4:
            return cls(*parts)
        raise ValueError(f"sizes: REMAINSxFAMILIES or REMAINSxFAMILIESxEXCHANGExREFERENCES, found {text!r}")


# ---------------------------------------------------------------------------
# the case, split into what comes first and what comes later
# ---------------------------------------------------------------------------


@dataclass
class Plan:
    """The simulated case cut into the database's first import, the exchange and the held-back references."""

    header: dict[str, Any]  # format, name, theta, markers
    remains: list[dict[str, Any]]  # the database's first remains
    exchange: list[dict[str, Any]]  # the exchange's new remains
    families: list[dict[str, Any]]  # every family, the held-back references without genotypes
    full_families: list[dict[str, Any]]  # the families whose reference is held back, complete

    def document(self, remains: list[dict[str, Any]], families: list[dict[str, Any]]) -> dict[str, Any]:
        return {**self.header, "remains": remains, "families": families}


def plan(case: dict[str, Any], sizes: Sizes) -> Plan:
    """Cut ``case`` (an ``opendvi simulate`` document of R+E remains) as :class:`Plan` says. The held-back
    reference is the last typed member of a family with two typed members or more (the family keeps one)."""
    header = {k: case[k] for k in ("format", "name", "theta", "markers")}
    remains = case["remains"]
    families: list[dict[str, Any]] = []
    full: list[dict[str, Any]] = []
    for fam in case["families"]:
        typed = [m for m in fam["members"] if m.get("genotypes")]
        if len(full) < sizes.references and len(typed) >= 2:
            full.append(fam)
            cut = copy.deepcopy(fam)
            held = typed[-1]["id"]
            for m in cut["members"]:
                if m["id"] == held:
                    m.pop("genotypes")
                    m.pop("dropout", None)
            families.append(cut)
        else:
            families.append(fam)
    if len(full) < sizes.references:
        raise ValueError(f"only {len(full)} families have two typed relatives; {sizes.references} asked for")
    return Plan(header=header, remains=remains[:sizes.remains], exchange=remains[sizes.remains:],
                families=families, full_families=full)


def chunks(items: list[dict[str, Any]], size: int = CHUNK) -> list[list[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------------------
# the service
# ---------------------------------------------------------------------------


def _api(base: str, token: str) -> Any:
    import httpx

    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=3600)


def _token(base: str, user: str) -> str:
    import httpx

    r = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": bench_load.PASSWORD}, timeout=60)
    r.raise_for_status()
    return str(r.json()["token"])


def _import(client: Any, plan_: Plan, *, remains: list[dict[str, Any]], families: list[dict[str, Any]],
            name: str) -> tuple[float, int]:
    """Import in chunks of at most :data:`CHUNK` remains or families; (seconds, requests)."""
    t0 = time.perf_counter()
    n = 0
    for i, part in enumerate(chunks(families)):
        r = client.post(f"/api/operations/{OPERATION}/imports", params={"filename": f"{name}-families-{i}.json"},
                        json=plan_.document([], part))
        if r.status_code != 201:
            raise RuntimeError(f"import of families failed: {r.status_code} {r.text[:2000]}")
        n += 1
    for i, part in enumerate(chunks(remains)):
        r = client.post(f"/api/operations/{OPERATION}/imports", params={"filename": f"{name}-remains-{i}.json"},
                        json=plan_.document(part, []))
        if r.status_code != 201:
            raise RuntimeError(f"import of remains failed: {r.status_code} {r.text[:2000]}")
        n += 1
    return time.perf_counter() - t0, n


def _run(client: Any) -> tuple[float, dict[str, Any]]:
    """Queue a run and poll it to the end: (seconds from the request to the end, the run)."""
    t0 = time.perf_counter()
    r = client.post(f"/api/operations/{OPERATION}/matching-runs", json={"top_k": TOP_K, "lr_threshold": LR_THRESHOLD})
    if r.status_code != 202:
        raise RuntimeError(f"matching run refused: {r.status_code} {r.text[:1000]}")
    url = r.json()["url"]
    while True:
        run = client.get(url).json()
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(0.25)
    if run["status"] != "finished":
        raise RuntimeError(f"run {run['id']} {run['status']}: {run.get('error')}")
    return time.perf_counter() - t0, run


def _cli_screen(doc: dict[str, Any], tmp: Path, name: str) -> float:
    """``opendvi screen`` on ``doc`` (a separate process, the run's top and threshold): wall seconds."""
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(doc))
    out = tmp / f"{name}.parquet"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "opendvi.cli.main", "screen", str(path), "--top", str(TOP_K),
                    "--threshold", str(LR_THRESHOLD), "-o", str(out), "--work-dir", str(tmp / f"{name}.parts")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - t0
    path.unlink()
    return seconds


# ---------------------------------------------------------------------------
# 50 readers during the full run
# ---------------------------------------------------------------------------


def reader_paths(barcodes: list[str], families: list[str]) -> list[str]:
    bc = [quote(b, safe="") for b in barcodes]
    fam = [quote(f, safe="") for f in families]
    return ["/", f"/remains?operation={OPERATION}", f"/remains?operation={OPERATION}&page=40&sort=-best_lr",
            f"/api/remains?operation={OPERATION}&per_page=50", f"/api/operations/{OPERATION}",
            *(f"/remains/{b}" for b in bc[:3]), *(f"/api/remains/{b}/candidates" for b in bc[:3]),
            *(f"/families/{f}" for f in fam[:3]), "/families?page=3", "/api/me"]


async def _reader(client: Any, base: str, token: str, paths: list[str], done: asyncio.Event,
                  out: list[tuple[str, float, int]], failures: dict[str, int]) -> None:
    h = {"Authorization": f"Bearer {token}", "accept": "text/html"}
    i = random.randrange(len(paths))
    while not done.is_set():
        path = paths[i % len(paths)]
        i += 1
        t0 = time.perf_counter()
        try:
            r = await client.get(base + path, headers=h)
            status = r.status_code
        except Exception as exc:
            status = 599
            failures[f"{type(exc).__name__} {path}"] = failures.get(f"{type(exc).__name__} {path}", 0) + 1
        if status >= 500:
            failures[f"{status} {path}"] = failures.get(f"{status} {path}", 0) + 1
        out.append((path, (time.perf_counter() - t0) * 1000, status))


async def _run_with_readers(base: str, dvi: str, tokens: list[str], paths: list[str]
                            ) -> tuple[float, dict[str, Any], list[tuple[str, float, int]], dict[str, int]]:
    import httpx

    samples: list[tuple[str, float, int]] = []
    failures: dict[str, int] = {}
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=len(tokens) + 4, max_keepalive_connections=len(tokens) + 4,
                          keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        readers = [asyncio.create_task(_reader(client, base, t, paths, done, samples, failures)) for t in tokens]
        try:
            with _api(base, dvi) as api:
                seconds, run = await asyncio.to_thread(_run, api)
        finally:
            done.set()
            await asyncio.gather(*readers)
    return seconds, run, samples, failures


# ---------------------------------------------------------------------------
# pages in headless Chromium
# ---------------------------------------------------------------------------


def _pages(base: str, pages: dict[str, str], users: dict[str, str], backend: str) -> list[dict[str, Any]]:
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [{"step": "page", "metric": "skipped", "note": "playwright is not installed"}]
    if not chromium.exists():
        return [{"step": "page", "metric": "skipped", "note": f"{chromium} is absent"}]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rows = []
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=args)
        try:
            signed: dict[str, Any] = {}
            for name, path in pages.items():
                user = users[name]
                if user not in signed:
                    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                    page.goto(f"{base}/login")
                    page.fill("#username", user)
                    page.fill("#password", bench_load.PASSWORD)
                    page.click("#sign-in")
                    page.wait_for_load_state("load")
                    signed[user] = page
                page = signed[user]
                times = []
                status = None
                for _ in range(3):
                    t0 = time.perf_counter()
                    resp = page.goto(base + path, wait_until="load")
                    times.append(time.perf_counter() - t0)
                    status = resp.status if resp is not None else None
                shot = ARTIFACTS / f"{backend}-{name}.png"
                page.screenshot(path=str(shot), full_page=False)
                rows.append({"step": "page", "metric": name, "value": round(min(times), 3), "unit": "s",
                             "target": "< 1 s", "met": min(times) < 1.0 and status == 200,
                             "note": f"{path} as {user}: HTTP {status}, first {times[0]:.3f} s; {shot.name}"})
        finally:
            browser.close()
    return rows


# ---------------------------------------------------------------------------
# one backend
# ---------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    return bench_load._pct(values, q)


def _one_backend(backend: str, database_url: str | None, plan_: Plan, sizes: Sizes, cli: dict[str, float],
                 readers: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(step: str, metric: str, value: Any, unit: str = "s", **extra: Any) -> None:
        rows.append({"backend": backend, "step": step, "metric": metric,
                     "value": round(value, 3) if isinstance(value, float) else value, "unit": unit, **extra})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    with bench_load.server(database_url) as base:
        bench_load._setup(base)
        admin = _token(base, "admin")
        with _api(base, admin) as a:
            a.post("/api/operations", json={"code": OPERATION, "name": "national benchmark"}).raise_for_status()
        lab, dvi = _token(base, "lab"), _token(base, "dvi")
        with _api(base, lab) as api:
            fam_s, nf = _import(api, plan_, remains=[], families=plan_.families, name="initial")
            row("import", "families", fam_s, note=f"{len(plan_.families)} families in {nf} request(s): "
                f"{len(plan_.families) / fam_s:.0f} a second")
            rem_s, nr = _import(api, plan_, remains=plan_.remains, families=[], name="initial")
            row("import", "remains", rem_s, note=f"{len(plan_.remains)} remains in {nr} request(s): "
                f"{len(plan_.remains) / rem_s:.0f} a second")
        tokens = [_token(base, "reader") for _ in range(readers)]
        paths = reader_paths([r["id"] for r in plan_.remains], [f["id"] for f in plan_.families])
        seconds, run, samples, failures = asyncio.run(_run_with_readers(base, dvi, tokens, paths))
        t = run.get("timings") or {}
        storing = float(t.get("storing") or 0.0)
        bound = 2 * cli["full"] + storing
        row("full_run", "run", seconds, cli_s=round(cli["full"], 3), ratio=round(seconds / cli["full"], 2),
            target=f"< 2 x CLI + storing = {bound:.1f} s", met=seconds < bound,
            note=f"{len(plan_.remains)} remains x {len(plan_.families)} families; timings "
                 + json.dumps(t, sort_keys=True) + "; counts " + json.dumps(run.get("counts") or {}, sort_keys=True))
        times = [ms for _p, ms, _s in samples]
        errors = sum(1 for _p, _ms, s in samples if s >= 500)
        p99 = _pct(times, 0.99)
        slow = sorted(((ms, p) for p, ms, _s in samples), reverse=True)[:3]
        row("readers", "p50", round(statistics.median(times), 1) if times else None, "ms")
        row("readers", "p99", round(p99, 1), "ms", target="< 500 ms", met=p99 < 500 and errors == 0,
            note=f"{len(tokens)} clients, {len(samples)} requests, errors {errors} "
                 + "; ".join(f"{k}: {n}" for k, n in sorted(failures.items()))
                 + "; slowest " + ", ".join(f"{p} {ms:.0f} ms" for ms, p in slow))
        row("readers", "errors", errors, "", target="0", met=errors == 0)
        with _api(base, lab) as api:
            ex_import, _n = _import(api, plan_, remains=plan_.exchange, families=[], name="exchange")
        with _api(base, dvi) as api:
            ex_run, run = _run(api)
        total = ex_import + ex_run
        row("exchange", "import", ex_import, note=f"{len(plan_.exchange)} new remains")
        row("exchange", "import + run", total, cli_s=round(cli["exchange"], 3), ratio=round(total / cli["exchange"], 2),
            target="< 60 s", met=total < 60, note=f"run {ex_run:.1f} s; timings "
            + json.dumps(run.get("timings") or {}, sort_keys=True))
        with _api(base, lab) as api:
            ref_import, _n = _import(api, plan_, remains=[], families=plan_.full_families, name="references")
        with _api(base, dvi) as api:
            ref_run, run = _run(api)
        total = ref_import + ref_run
        row("references", "import", ref_import, note=f"{len(plan_.full_families)} new reference profiles")
        row("references", "import + run", total, cli_s=round(cli["references"], 3),
            ratio=round(total / cli["references"], 2), target="< 10 s", met=total < 10,
            note=f"run {ref_run:.1f} s; timings " + json.dumps(run.get("timings") or {}, sort_keys=True))
        b, fam = quote(plan_.remains[0]["id"], safe=""), quote(plan_.families[0]["id"], safe="")
        pages = {"remains_list": f"/remains?operation={OPERATION}", "family": f"/families/{fam}",
                 "remains_candidates": f"/remains/{b}", "audit": "/audit"}
        users = {"remains_list": "reader", "family": "reader", "remains_candidates": "reader", "audit": "admin"}
        for r in _pages(base, pages, users, backend):
            rows.append({"backend": backend, **r})
    return rows


def run(quick: bool = False, pg: str | None = None, sizes: Sizes | None = None,
        backends: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    env = os.environ.get("OPENDVI_BENCH_NATIONAL")
    sizes = sizes or (Sizes.parse(env) if env else Sizes.quick() if quick else Sizes.national())
    backends = backends or tuple(os.environ.get("OPENDVI_BENCH_NATIONAL_BACKENDS", "sqlite,postgresql").split(","))
    readers = READERS
    with tempfile.TemporaryDirectory(prefix="opendvi-bench-national-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "opendvi.cli.main", "simulate", "--families", str(sizes.families),
                        "--remains", str(sizes.remains + sizes.exchange), "--seed", str(SEED), "-o",
                        str(tmp / "case.json")], check=True, stdout=subprocess.DEVNULL)
        case = json.loads((tmp / "case.json").read_text())
        plan_ = plan(case, sizes)
        del case
        rows: list[dict[str, Any]] = [{"backend": "", "step": "simulate", "metric": "case",
                                       "value": round(time.perf_counter() - t0, 3), "unit": "s",
                                       "note": f"{sizes.remains} + {sizes.exchange} remains, {sizes.families} "
                                               f"families, {sizes.references} held-back references, seed {SEED}"}]
        cli = {"full": _cli_screen(plan_.document(plan_.remains, plan_.families), tmp, "full"),
               "exchange": _cli_screen(plan_.document(plan_.exchange, plan_.families), tmp, "exchange"),
               "references": _cli_screen(plan_.document(plan_.remains + plan_.exchange, plan_.full_families), tmp,
                                         "references")}
        for name, seconds in cli.items():
            rows.append({"backend": "cli", "step": name, "metric": "opendvi screen", "value": round(seconds, 3),
                         "unit": "s", "note": "a separate process: start-up, reading the file, screening, writing"})
        for backend in backends:
            if backend == "sqlite":
                rows += _one_backend("sqlite", None, plan_, sizes, cli, readers)
            elif backend == "postgresql":
                url = bench_load._pg_url(pg)
                if not url:
                    rows.append({"backend": "postgresql", "step": "skipped", "metric": "",
                                 "note": "no PostgreSQL: set OPENDVI_TEST_DATABASE_URL or pass --pg URL"})
                elif bench_load._empty_pg(url):
                    from opendvi.store.db import database_url

                    rows += _one_backend("postgresql", database_url(url=url), plan_, sizes, cli, readers)
                else:
                    rows.append({"backend": "postgresql", "step": "skipped", "metric": "",
                                 "note": f"PostgreSQL at {url.split('@')[-1]} unusable"})
            else:
                raise ValueError(f"backend must be sqlite or postgresql, found {backend!r}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 remains x 300 families (CI)")
    parser.add_argument("--remains", type=int)
    parser.add_argument("--families", type=int)
    parser.add_argument("--exchange", type=int)
    parser.add_argument("--references", type=int)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", help="PostgreSQL URL of a test database (EMPTIED)")
    parser.add_argument("--out", type=Path, help="also write the rows as a markdown table here")
    args = parser.parse_args()
    base = Sizes.quick() if args.quick else Sizes.national()
    if args.remains or args.families:
        base = Sizes.parse(f"{args.remains or base.remains}x{args.families or base.families}")
    sizes = Sizes(base.remains, base.families, args.exchange or base.exchange, args.references or base.references)
    t0 = time.perf_counter()
    rows = run(quick=args.quick, pg=args.pg, sizes=sizes, backends=tuple(args.backends.split(",")))
    for r in rows:
        print(r)
    if args.out:
        import run as runner

        md = runner.markdown("national", rows, runner.machine(), quick=args.quick, seconds=time.perf_counter() - t0)
        args.out.write_text(md.replace("`python benchmarks/run.py`", "`python benchmarks/bench_national.py "
                                       + " ".join(a for a in sys.argv[1:] if "://" not in a) + "`"))


if __name__ == "__main__":
    main()
