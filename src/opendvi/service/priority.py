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
    """Lower this process's CPU priority by ``OPENDVI_WORKER_NICE`` steps (default 10)."""
    step = int(os.environ.get(NICE_ENV) or DEFAULT_NICE)
    if step > 0 and hasattr(os, "nice"):
        os.nice(step)
