"""The CPU priority of the service's batch work: matching workers and the processes that parse
imports run below the serving processes, so that on a machine they share the pages and the API
come first (``nice`` 10 by default, ``OPENDVI_WORKER_NICE``; 0: the same priority). The batch work
still gets every cycle nobody else wants."""

from __future__ import annotations

import os

#: environment variable: how much lower the batch processes' priority is (``nice`` steps)
NICE_ENV = "OPENDVI_WORKER_NICE"
DEFAULT_NICE = 10


def lower_priority() -> None:
    """Lower this process's CPU priority by ``OPENDVI_WORKER_NICE`` steps (default 10), every thread of it.

    On Linux a priority belongs to a thread, and ``os.nice`` changes only the caller's: threads started
    before (OpenBLAS's, started when NumPy is imported) kept ``nice`` 0 and competed with the serving
    processes. Each thread of ``/proc/self/task`` is set to the caller's new value; threads started
    later take their creator's."""
    step = int(os.environ.get(NICE_ENV) or DEFAULT_NICE)
    if step <= 0 or not hasattr(os, "nice"):
        return
    value = os.nice(step)
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: a priority is the process's
        return
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < value:
                os.setpriority(os.PRIO_PROCESS, tid, value)
        except OSError:  # the thread has ended meanwhile
            continue
