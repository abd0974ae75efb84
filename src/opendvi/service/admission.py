"""Admission of reads: at most a few requests of one process worked on at once, the others served in
the order they came (``docs/service.md``, Concurrency).

Without it every request that arrives starts at once: fifty readers are fifty threads of one process
taking turns at the interpreter lock, each request takes fifty times its own time, and the slowest
of them (a page that renders a table) waits longest, so the 99th percentile is several times the
median. With a short first-come, first-served queue in front, a request waits for the ones before it
and then runs nearly alone: the median hardly moves and the tail comes close to it.

Reads (GET, HEAD) queue here: they are short and bounded. Sign-ins (``POST /api/auth/login`` and
the page's ``POST /login``, anonymous) have a queue of their own, one at a time per process: a flood
of guesses then never takes more than one of the process's threads from the readers, whatever its
rate. Other writes (imports, decisions) pass at once, as before, so that a slow upload never holds a
place in a queue. A place is given back when the response starts (a streamed export then runs
beside the queue, not in it).

A sign-in refused because its account or address is locked (429) is answered after
``refusal_delay`` seconds (``OPENDVI_SIGNIN_REFUSAL_DELAY``, default 1), waited on the event loop
after the sign-in's place was given back: no thread, no place in a queue. A client that guesses as
fast as it can then gets one answer a second per connection instead of hundreds, and its refusals
cost the service almost nothing; a locked client has nothing to gain from a faster "no".
"""

from __future__ import annotations

import asyncio
import weakref

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: environment variable: reads worked on at once per process (``0``: no queues)
ADMISSION_ENV = "OPENDVI_CONCURRENT_READS"
DEFAULT_CONCURRENT_READS = 3
READ_METHODS = frozenset({"GET", "HEAD"})
SIGN_IN_PATHS = frozenset({"/api/auth/login", "/login"})
#: sign-ins worked on at once per process
CONCURRENT_SIGN_INS = 1
#: seconds before a locked sign-in's 429 is sent (``Settings.signin_refusal_delay``)
DEFAULT_REFUSAL_DELAY = 1.0


class AdmissionMiddleware:
    """First come, first served: reads beyond ``limit`` at once wait, and sign-ins beyond one (plain
    ASGI: nothing is buffered)."""

    def __init__(self, app: ASGIApp, *, limit: int, refusal_delay: float = DEFAULT_REFUSAL_DELAY) -> None:
        self.app = app
        self.limit = limit
        self.refusal_delay = refusal_delay
        # per event loop (a server has one; a test client may run one per request): a queue belongs to one
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = \
            weakref.WeakKeyDictionary()

    @staticmethod
    def _sign_in(scope: Scope) -> bool:
        return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in SIGN_IN_PATHS

    def _queue_of(self, scope: Scope) -> asyncio.Semaphore | None:
        if scope["type"] != "http" or self.limit <= 0:
            return None
        if scope["method"] in READ_METHODS:
            kind, size = "read", self.limit
        elif self._sign_in(scope):
            kind, size = "sign-in", CONCURRENT_SIGN_INS
        else:
            return None
        queues = self._queues.setdefault(asyncio.get_running_loop(), {})
        if kind not in queues:
            queues[kind] = asyncio.Semaphore(size)  # asyncio wakes its waiters in arrival order
        return queues[kind]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        queue = self._queue_of(scope)
        delay = self.refusal_delay if self._sign_in(scope) else 0.0
        if queue is None and delay <= 0:
            await self.app(scope, receive, send)
            return
        if queue is not None:
            await queue.acquire()
        held = queue is not None

        def release() -> None:
            nonlocal held
            if held and queue is not None:
                held = False
                queue.release()

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
                if delay > 0 and message.get("status") == 429:
                    await asyncio.sleep(delay)
            await send(message)

        try:
            await self.app(scope, receive, send_releasing)
        finally:
            release()
