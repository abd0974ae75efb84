"""Matching workers and import parsers run at a lower CPU priority than the service
(``service/priority.lower_priority``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD = "import os; from opendvi.service.priority import lower_priority; before = os.nice(0); lower_priority(); " \
        "print(os.nice(0) - before)"


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no nice() here")
@pytest.mark.parametrize(("setting", "expected"), [(None, 10), ("3", 3), ("0", 0)])
def test_workers_yield_to_the_service(setting: str | None, expected: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENDVI_WORKER_NICE"}
    if setting is not None:
        env["OPENDVI_WORKER_NICE"] = setting
    before = os.nice(0)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == min(expected, 19 - before)  # nice stops at 19


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no nice() here")
def test_the_import_parser_yields_to_the_service() -> None:
    """The process that parses uploads (``service/offload.py``) lowers its own priority when it starts."""
    from opendvi.service.offload import ImportPool

    pool = ImportPool(1)
    try:
        child = pool.run(os.nice, 0)  # the child's niceness, read in the child
    finally:
        pool.close()
    assert child == min(os.nice(0) + 10, 19)


THREADS = """
import os, threading
from opendvi.service.priority import lower_priority
started, stop = threading.Event(), threading.Event()
def early():
    started.set()
    stop.wait()
t = threading.Thread(target=early)  # as OpenBLAS's threads, started when NumPy is imported
t.start()
started.wait()
lower_priority()
tids = sorted(int(x) for x in os.listdir("/proc/self/task"))
print(len(tids), *{os.getpriority(os.PRIO_PROCESS, tid) for tid in tids})
stop.set()
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="threads' priorities are Linux's")
def test_threads_started_before_are_lowered_too() -> None:
    """On Linux a priority is a thread's: a thread started before ``lower_priority`` kept ``nice`` 0 (the
    worker's two OpenBLAS threads did) until each thread of the process was set."""
    env = {k: v for k, v in os.environ.items() if k != "OPENDVI_WORKER_NICE"}
    before = os.nice(0)
    out = subprocess.run([sys.executable, "-c", THREADS], env=env, capture_output=True, text=True, check=True)
    n, *values = out.stdout.split()
    assert int(n) >= 2 and values == [str(min(before + 10, 19))]
