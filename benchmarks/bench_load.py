"""Load on the case-work service: 50 concurrent clients, idle, during imports and
matching runs, and during an anonymous sign-in flood; SQLite and PostgreSQL.

The benchmark starts ``opendvi serve --matching-worker`` as deployed (its
default worker processes, one per CPU up to 4, and one matching worker) on
127.0.0.1 on a free port, with a fresh database, and stops it at the end;
every phase lasts a fixed time, so the whole run is bounded (about 3.5
minutes per database in full, 40 s in ``--quick``). Nothing leaves the machine.

Each client signs in once (its own session, bearer token), then loops over
the mix a reading user makes: the dashboard page ``/``, the operation's
JSON, the remains list (JSON and page), the identifications, ``/api/me``.
Phases, one row each:

* ``one_client``: one reader alone (15 s): the time of a request itself;
* ``idle``: the 50 readers alone;
* ``signin_flood``: the readers while 8 anonymous clients post wrong
  sign-ins as fast as they can (random names, one address: the per-address
  back-off soon answers them 429 without an argon2 check). It comes right after
  ``idle``, on the same database, so that their ratio measures the flood alone;
* ``import``: the readers while one client imports, back to back, a
  ``dvi-case/1`` file of 100 new remains of distinct people (one write transaction each) and
  another runs matching, one run after another (queued, then followed until
  the matching worker has finished it);

Columns: ``p50_ms``/``p99_ms``/``max_ms`` of the readers' requests,
``errors`` (status >= 500, timeouts, resets: the goal is 0),
``dashboard_p99_ms`` (``/`` alone), ``writes`` (imports and matching runs
done), ``flood`` (sign-in attempts) and ``flood_429``, and
``dashboard_p99_vs_idle`` (the goal for the flood: at most 2), ``load_1m`` (the
machine's load average at the phase's end: the benchmark's own client shares
the machine, and so does anything else running on it).

PostgreSQL: ``--pg URL`` or ``OPENDVI_TEST_DATABASE_URL``; the database is
EMPTIED (schema ``public`` dropped), so its name must contain ``test`` or
``bench``. Run alone: ``python benchmarks/bench_load.py [--quick] [--pg URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
CLIENTS = 50
FLOODERS = 8
ADMIN_ONE_TIME = "bench one-time 5521"
PASSWORD = "bench lantern harbour 7731"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pg_url(explicit: str | None) -> str | None:
    url = explicit or os.environ.get("OPENDVI_TEST_DATABASE_URL")
    if not url:
        return None
    name = url.rsplit("/", 1)[-1].split("?")[0]
    if "test" not in name and "bench" not in name:
        raise SystemExit(f"refusing to empty database {name!r}: its name must contain 'test' or 'bench'")
    return url


def _empty_pg(url: str) -> bool:
    from sqlalchemy import text

    from opendvi.store import db as store_db

    engine = store_db.make_engine(store_db.database_url(url=url), connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        return True
    except Exception as exc:
        print(f"PostgreSQL at {url} unusable ({type(exc).__name__}): skipped", file=sys.stderr)
        return False
    finally:
        engine.dispose()


def _processes() -> dict[int, tuple[int, str, float, str]]:
    """Every process of the machine: pid -> (parent pid, name, CPU seconds so far, command line)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick, cmd)
    return out


def cpu_by_part(root: int) -> dict[str, float]:
    """CPU seconds so far of the service's parts: the serving processes, the import parsers, the
    matching worker (children of ``root``, the ``opendvi serve`` process, and theirs) and PostgreSQL's
    processes (every process named ``postgres``: the benchmark's database server is assumed alone)."""
    if not Path("/proc/self/stat").exists():  # pragma: no cover - not Linux
        return {}
    procs = _processes()
    parts = {"serve": 0.0, "parser": 0.0, "worker": 0.0, "postgres": 0.0}
    for pid, (ppid, name, cpu, cmd) in procs.items():
        if name == "postgres" or cmd.startswith("postgres:"):
            parts["postgres"] += cpu
        elif pid == root:
            parts["serve"] += cpu
        elif ppid == root:
            parts["worker" if " worker " in cmd else "serve"] += cpu
        elif procs.get(ppid, (0,))[0] == root:
            parts["parser"] += cpu
    return parts


#: what the import phase writes: ``both`` (as documented), ``imports`` or ``matching`` alone (to see what
#: each costs; ``--writes``)
WRITES = ["both"]

#: the pid of the ``opendvi serve`` process :func:`server` started
SERVER_PID: list[int] = []


@contextlib.contextmanager
def server(database_url: str | None) -> Iterator[str]:
    """``opendvi serve`` on a free port of 127.0.0.1, a fresh database; stopped on exit."""
    import httpx

    with tempfile.TemporaryDirectory(prefix="opendvi-bench-load-") as tmp:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        env.update(OPENDVI_ADMIN_PASSWORD=ADMIN_ONE_TIME, OPENDVI_ENV="development", OPENDVI_LOG_LEVEL="error")
        if database_url:
            env["DATABASE_URL"] = database_url
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([sys.executable, "-m", "opendvi.cli.main", "serve", "--host", HOST, "--port",
                                 str(port), "--data-dir", tmp, "--matching-worker"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        base = f"http://{HOST}:{port}"
        SERVER_PID[:] = [proc.pid]
        try:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + (Path(tmp) / "server.log").read_text())
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                proc.kill()
                proc.wait()
            log.close()


def _setup(base: str) -> dict[str, Any]:
    """The administrator's own password, a reader and a laboratory analyst and a DVI analyst."""
    import httpx

    def sign_in(user: str, pw: str) -> dict[str, str]:
        r = httpx.post(f"{base}/api/auth/login", json={"username": user, "password": pw}, timeout=60)
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['token']}"}

    h = sign_in("admin", ADMIN_ONE_TIME)
    httpx.post(f"{base}/api/auth/password", json={"old_password": ADMIN_ONE_TIME, "new_password": PASSWORD},
               headers=h, timeout=60).raise_for_status()
    for user, role in (("reader", "reviewer"), ("lab", "laboratory_analyst"), ("dvi", "dvi_analyst")):
        httpx.post(f"{base}/api/users", json={"username": user, "password": ADMIN_ONE_TIME, "role": role},
                   headers=h, timeout=60).raise_for_status()
        u = sign_in(user, ADMIN_ONE_TIME)
        httpx.post(f"{base}/api/auth/password", json={"old_password": ADMIN_ONE_TIME, "new_password": PASSWORD},
                   headers=u, timeout=60).raise_for_status()
    httpx.post(f"{base}/api/operations", json={"code": "LOAD", "name": "load test"}, headers=h,
               timeout=60).raise_for_status()
    return {"admin": h}


READS = ["/", "/api/operations/demo", "/api/remains?operation=demo&limit=50", "/remains?operation=demo",
         "/api/identifications", "/api/me"]


FAILURES: dict[str, int] = {}


def _failed(kind: str) -> None:
    FAILURES[kind] = FAILURES.get(kind, 0) + 1


class _Connection:
    """One keep-alive HTTP/1.1 connection of a reader, on asyncio streams.

    The readers' own cost must not be what is measured: httpx spent about 6 ms of CPU per request in
    this process (half a core at 90 requests/s, on the same two cores as the server), and a busy
    client event loop adds its own queueing to every latency. A plain GET over a kept-alive stream
    costs about 0.1 ms. The writers and flooders (a few requests) keep httpx."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str]) -> int:
        return await self.request("GET", path, headers)

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        if body:
            headers = {**headers, "Content-Length": str(len(body))}
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{lines}\r\n".encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        fields = {k.strip().lower(): v.strip().lower() for k, v in fields.items()}
        if fields.get(b"transfer-encoding") == b"chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        else:
            await self.reader.readexactly(int(fields.get(b"content-length", b"0")))
        if fields.get(b"connection") == b"close":
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _reader(base: str, token: str, stop: float, out: list[tuple[str, float, int]]) -> None:
    host, port = base.removeprefix("http://").split(":")
    conn = _Connection(host, int(port))
    h = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    i = random.randrange(len(READS))
    while time.monotonic() < stop:
        path = READS[i % len(READS)]
        i += 1
        t0 = time.perf_counter()
        try:
            status = await asyncio.wait_for(conn.get(path, h), timeout=60)
            if status >= 500:
                _failed(f"{status} {path}")
        except Exception as exc:
            status = 599
            _failed(f"{type(exc).__name__} {path}")
            conn.close()
        out.append((path, (time.perf_counter() - t0) * 1000, status))
    conn.close()


def _import_case(k: int) -> dict[str, Any]:
    """The ``k``-th import: 100 new remains of unrelated people, typed at the demo's markers
    (genotypes drawn from its frequencies, seeded by ``k``; the sexes of its remains in turn). Distinct
    people, as an exchange brings: copies of one profile would make every run link thousands of
    identical remains as one person's fragments, which measures that pathological case instead."""
    from opendvi.data import demo_case_path

    case = json.loads(Path(demo_case_path()).read_text())
    rng = random.Random(k)
    template = case["remains"]
    markers = [m for m in case["markers"] if m.get("chromosome", "autosomal") == "autosomal"]

    def person(i: int) -> dict[str, Any]:
        sex = template[i % len(template)].get("sex")
        gts = {m["name"]: sorted(rng.choices(m["alleles"], weights=m["frequencies"], k=2), key=float)
               for m in markers}
        return {"id": f"L{k}-{i}", "sex": sex, "genotypes": gts}

    case["remains"] = [person(i) for i in range(100)]
    case["families"] = []
    return case


async def _writer(client: Any, base: str, lab: str, dvi: str, stop: float, done: list[str]) -> None:
    k = 0
    while time.monotonic() < stop:
        k += 1
        try:
            r = await client.post(f"{base}/api/operations/LOAD/imports", json=_import_case(k),
                                  headers={"Authorization": f"Bearer {lab}"})
            done.append(f"import {r.status_code}")
        except Exception as exc:
            done.append("import 599")
            _failed(f"{type(exc).__name__} import")


async def _matcher(client: Any, base: str, dvi: str, stop: float, done: list[str]) -> None:
    """One matching run after another: queue one (202), wait until the service's matching worker has
    finished it, queue the next (a run in the request, 200/201, is done when it answers)."""
    h = {"Authorization": f"Bearer {dvi}"}
    while time.monotonic() < stop:
        try:
            r = await client.post(f"{base}/api/operations/demo/matching-runs", json={}, headers=h)
            if r.status_code == 202:
                url = base + r.json()["url"]
                while time.monotonic() < stop:
                    await asyncio.sleep(0.5)
                    status = (await client.get(url, headers=h)).json().get("status")
                    if status not in ("queued", "running"):
                        break
                else:  # still running at the end of the phase: cancelled (not to load the next phase), not counted
                    with contextlib.suppress(Exception):
                        await client.post(url + "/cancel",
                                          headers=h)
                    break
                done.append(f"matching {({'finished': 200, 'failed': 500}).get(status, 409)}")
            else:
                done.append(f"matching {r.status_code}")
        except Exception as exc:
            done.append("matching 599")
            _failed(f"{type(exc).__name__} matching")


async def _flooder(base: str, stop: float, codes: list[int]) -> None:
    host, port = base.removeprefix("http://").split(":")
    conn = _Connection(host, int(port))
    h = {"Content-Type": "application/json"}
    while time.monotonic() < stop:
        body = json.dumps({"username": f"guess{random.randrange(10**9)}", "password": "wrong-guess"}).encode()
        try:
            codes.append(await asyncio.wait_for(conn.request("POST", "/api/auth/login", h, body), timeout=60))
        except Exception:
            codes.append(599)
            conn.close()
    conn.close()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def _phase(base: str, tokens: list[str], lab: str, dvi: str, phase: str, seconds: float) -> dict[str, Any]:
    import httpx

    FAILURES.clear()
    # idle connections are dropped by the client well before the server's keep-alive ends
    limits = httpx.Limits(max_connections=CLIENTS + FLOODERS + 4, max_keepalive_connections=CLIENTS + FLOODERS + 4,
                          keepalive_expiry=2.0)
    clients = 1 if phase == "one_client" else CLIENTS
    # the client's own garbage collections would stop its event loop and count as the service's latency
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(100_000, threshold[1], threshold[2])
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        stop = time.monotonic() + seconds
        samples: list[tuple[str, float, int]] = []
        done: list[str] = []
        codes: list[int] = []
        tasks = [_reader(base, tokens[i % len(tokens)], stop, samples) for i in range(clients)]
        if phase == "import":
            if WRITES[0] in ("both", "imports"):
                tasks.append(_writer(client, base, lab, dvi, stop, done))
            if WRITES[0] in ("both", "matching"):
                tasks.append(_matcher(client, base, dvi, stop, done))
        if phase == "signin_flood":
            tasks += [_flooder(base, stop, codes) for _ in range(FLOODERS)]
        await asyncio.gather(*tasks)
    gc.set_threshold(*threshold)
    gc.unfreeze()
    times = [ms for _p, ms, _s in samples]
    dash = [ms for p, ms, _s in samples if p == "/"]
    errors = sum(1 for _p, _ms, s in samples if s >= 500) + sum(1 for d in done if d.split()[-1].startswith("5"))
    return {
        "phase": phase, "seconds": seconds, "clients": clients, "requests": len(samples),
        "rps": round(len(samples) / seconds, 1),
        "p50_ms": round(statistics.median(times), 1) if times else None,
        "p99_ms": round(_pct(times, 0.99), 1), "max_ms": round(max(times), 1) if times else None,
        "errors": errors, "other_4xx": sum(1 for _p, _ms, s in samples if 400 <= s < 500),
        "dashboard_p99_ms": round(_pct(dash, 0.99), 1),
        "writes": sum(1 for d in done if d.split()[-1] in ("200", "201")),
        "write_errors": sum(1 for d in done if d.split()[-1] not in ("200", "201")),
        "flood": len(codes), "flood_429": sum(1 for c in codes if c == 429),
        "error_kinds": "; ".join(f"{k}: {n}" for k, n in sorted(FAILURES.items())),
        # each read's own p99, slowest first: which read makes the tail
        "p99_by_read_ms": " ".join(f"{p} {v}" for p, v in sorted(
            ((p, round(_pct([ms for q, ms, _s in samples if q == p], 0.99), 1)) for p in {q for q, _m, _s in samples}),
            key=lambda pv: -pv[1])),
        # the machine's 1-minute load average at the phase's end: other work on it slows the service
        "load_1m": round(os.getloadavg()[0], 2),
    }


def _sign_in_clients(base: str, n: int) -> list[str]:
    import httpx

    tokens = []
    for _ in range(n):
        r = httpx.post(f"{base}/api/auth/login", json={"username": "reader", "password": PASSWORD}, timeout=60)
        r.raise_for_status()
        tokens.append(r.json()["token"])
    return tokens


PHASES = ("one_client", "idle", "signin_flood", "import")


def _one_backend(backend: str, database_url: str | None, seconds: float, sessions: int,
                 phases: tuple[str, ...] = PHASES) -> list[dict[str, Any]]:
    import httpx

    rows = []
    with server(database_url) as base:
        _setup(base)
        tokens = _sign_in_clients(base, sessions)
        lab = httpx.post(f"{base}/api/auth/login", json={"username": "lab", "password": PASSWORD},
                         timeout=60).json()["token"]
        dvi = httpx.post(f"{base}/api/auth/login", json={"username": "dvi", "password": PASSWORD},
                         timeout=60).json()["token"]
        idle_dash = None
        # the flood right after idle: both on the same database (the import phase adds thousands of remains,
        # which the dashboard counts), so that their ratio measures the flood alone
        for phase in phases:
            cpu0 = cpu_by_part(SERVER_PID[0])
            row = asyncio.run(_phase(base, tokens, lab, dvi, phase, min(seconds, 15.0) if phase == "one_client"
                                     else seconds))
            cpu1 = cpu_by_part(SERVER_PID[0])
            # where the machine's CPU went during the phase (seconds): the readers' share is "serve" less
            # what the writes cost there; "postgres" holds the database's side of both
            row["cpu_s"] = " ".join(f"{k} {cpu1[k] - cpu0.get(k, 0.0):.1f}" for k in cpu1)
            if phase == "idle":
                idle_dash = row["dashboard_p99_ms"]
            row["dashboard_p99_vs_idle"] = round(row["dashboard_p99_ms"] / idle_dash, 2) \
                if idle_dash and phase != "one_client" else None
            rows.append({"backend": backend, **row})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def run(quick: bool = False, pg: str | None = None, *, backends: tuple[str, ...] = ("sqlite", "postgresql"),
        phases: tuple[str, ...] = PHASES, seconds: float | None = None) -> list[dict[str, Any]]:
    seconds = seconds or (10.0 if quick else 60.0)
    sessions = 10 if quick else CLIENTS
    rows = _one_backend("sqlite", None, seconds, sessions, phases) if "sqlite" in backends else []
    url = _pg_url(pg) if "postgresql" in backends else None
    if url and _empty_pg(url):
        from opendvi.store.db import database_url

        rows += _one_backend("postgresql", database_url(url=url), seconds, sessions, phases)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s phases instead of 60 s")
    parser.add_argument("--pg", help="PostgreSQL URL of a test database (EMPTIED)")
    parser.add_argument("--seconds", type=float, help="each phase's length (default 60, 10 with --quick)")
    parser.add_argument("--writes", default="both", choices=("both", "imports", "matching"),
                        help="the import phase's writers: both (the documented phase), or one alone")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="comma-separated, in this order: " + ", ".join(PHASES) + " (the flood's ratio needs idle)")
    args = parser.parse_args()
    phases = tuple(p for p in PHASES if p in args.phases.split(","))
    WRITES[0] = args.writes
    for row in run(quick=args.quick, pg=args.pg, backends=tuple(args.backends.split(",")), phases=phases,
                   seconds=args.seconds):
        print(row)


if __name__ == "__main__":
    main()
