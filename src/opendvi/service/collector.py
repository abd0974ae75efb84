"""Python's garbage collector in a serving process.

A full collection stops every thread of the process while it walks every container object the
process holds. A serving process holds some 220,000 of them once it has served a few hundred
requests (the modules, the ORM's mappers and statement cache, the compiled templates), nearly all
long-lived; under load the load benchmark saw full collections of 100 to 300 ms (wall clock, the
machine busy) several times a minute in each serving process, and every request in flight waited
for them: the readers' 99th percentile.

So a serving process, once it has answered :data:`WARM_REQUESTS` requests (its caches filled),
collects once and moves what is left into the permanent generation (:func:`gc.freeze`, which
CPython's documentation advises for long-lived servers): later collections walk only what was
created after, and cycles created after are collected as before. ``OPENDVI_GC_TUNING=0`` leaves
the collector as Python sets it.
"""

from __future__ import annotations

import gc
import os
import threading

from starlette.types import ASGIApp, Receive, Scope, Send

#: environment variable: ``0`` leaves the collector as Python sets it
GC_ENV = "OPENDVI_GC_TUNING"
#: requests answered before the freeze
WARM_REQUESTS = 500


def enabled() -> bool:
    return os.environ.get(GC_ENV, "1").strip() != "0"


class FreezeWhenWarm:
    """ASGI middleware: after ``after`` HTTP requests of this process, one full collection and
    :func:`gc.freeze` (once)."""

    def __init__(self, app: ASGIApp, *, after: int = WARM_REQUESTS) -> None:
        self.app = app
        self.after = after
        self.seen = 0
        self.frozen = False
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.frozen and scope["type"] == "http":
            with self._lock:
                self.seen += 1
                due = self.seen >= self.after and not self.frozen
                if due:
                    self.frozen = True
            if due:
                gc.collect()
                gc.freeze()
        await self.app(scope, receive, send)
