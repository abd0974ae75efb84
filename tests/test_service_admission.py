"""The admission queues (service/admission.py): reads beyond the limit wait and are served first come,
first served; sign-ins one at a time; other writes pass; a place is given back when the response
starts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from opendvi.service.admission import AdmissionMiddleware


class _App:
    """An ASGI app whose requests wait until released; it records who is inside, and in which order
    they came in."""

    def __init__(self, *, stream: bool = False) -> None:
        self.inside: set[str] = set()
        self.most = 0
        self.order: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"]
        self.order.append(name)
        self.inside.add(name)
        self.most = max(self.most, len(self.inside))
        gate = self.gates.setdefault(name, asyncio.Event())
        if self.stream:  # the response starts at once, then its body takes long (a streamed export)
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await gate.wait()
        self.inside.discard(name)
        if not self.stream:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _scope(method: str, path: str) -> Scope:
    return {"type": "http", "method": method, "path": path, "headers": []}


async def _noop_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _noop_send(message: Message) -> None:
    return None


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_reads_beyond_the_limit_wait_and_are_served_in_arrival_order() -> None:
    async def go() -> None:
        app = _App()
        mw = AdmissionMiddleware(app, limit=2)
        names = [f"/r{i}" for i in range(6)]
        tasks = []
        for n in names:
            tasks.append(asyncio.create_task(mw(_scope("GET", n), _noop_receive, _noop_send)))
            await _settle()
        assert app.order == names[:2] and app.most == 2
        for n in names:  # end them one at a time: the next waiting one comes in, in arrival order
            app.gates.setdefault(n, asyncio.Event()).set()
            await _settle()
        await asyncio.gather(*tasks)
        assert app.order == names
        assert app.most == 2

    asyncio.run(go())


def test_sign_ins_one_at_a_time_other_writes_pass() -> None:
    async def go() -> None:
        app = _App()
        mw = AdmissionMiddleware(app, limit=4)
        tasks = [asyncio.create_task(mw(_scope("POST", p), _noop_receive, _noop_send))
                 for p in ("/api/auth/login", "/login", "/api/operations/X/imports", "/api/decisions")]
        await _settle()
        assert set(app.order) == {"/api/auth/login", "/api/operations/X/imports", "/api/decisions"}
        for g in list(app.gates.values()):
            g.set()
        await _settle()
        app.gates.setdefault("/login", asyncio.Event()).set()
        await asyncio.gather(*tasks)
        assert app.order[-1] == "/login"

    asyncio.run(go())


def test_a_place_is_given_back_when_the_response_starts() -> None:
    async def go() -> None:
        app = _App(stream=True)
        mw = AdmissionMiddleware(app, limit=1)
        first = asyncio.create_task(mw(_scope("GET", "/export"), _noop_receive, _noop_send))
        await _settle()
        second = asyncio.create_task(mw(_scope("GET", "/page"), _noop_receive, _noop_send))
        await _settle()
        assert app.order == ["/export", "/page"]  # the export streams; the page did not wait for it
        for g in app.gates.values():
            g.set()
        await asyncio.gather(first, second)

    asyncio.run(go())


def test_limit_zero_turns_the_queues_off() -> None:
    async def go() -> None:
        app = _App()
        mw = AdmissionMiddleware(app, limit=0)
        tasks = [asyncio.create_task(mw(_scope("GET", f"/r{i}"), _noop_receive, _noop_send)) for i in range(5)]
        await _settle()
        assert app.most == 5
        for g in app.gates.values():
            g.set()
        await asyncio.gather(*tasks)

    asyncio.run(go())


def test_a_failing_request_gives_its_place_back() -> None:
    async def boom(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bug")

    async def go() -> None:
        mw = AdmissionMiddleware(boom, limit=1)
        for _ in range(3):  # with the place kept, the second would wait for ever
            with pytest.raises(RuntimeError, match="bug"):
                await asyncio.wait_for(mw(_scope("GET", "/x"), _noop_receive, _noop_send), timeout=5)

    asyncio.run(go())


def test_queues_belong_to_their_event_loop() -> None:
    """A test client may run each request on a loop of its own: the queues of one loop are not used on
    another (an asyncio semaphore is bound to the loop it first waited on)."""
    app = _App()
    mw = AdmissionMiddleware(app, limit=1)

    async def contended() -> None:
        tasks = [asyncio.create_task(mw(_scope("GET", f"/r{i}"), _noop_receive, _noop_send)) for i in range(3)]
        for i in range(3):
            await _settle()
            app.gates.setdefault(f"/r{i}", asyncio.Event()).set()
        await asyncio.gather(*tasks)

    for _ in range(2):
        app.gates.clear()
        asyncio.run(contended())


def _answering(status: int) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def test_a_locked_sign_in_is_answered_late_without_holding_its_place() -> None:
    """A 429 to a sign-in is sent after the delay; meanwhile the next sign-in is worked on (the place
    was given back first); other answers and other routes are not delayed."""

    async def go() -> None:
        loop = asyncio.get_running_loop()
        sent: list[tuple[str, float]] = []

        def recorder(name: str) -> Send:
            async def send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    sent.append((name, loop.time()))
            return send

        locked = AdmissionMiddleware(_answering(429), limit=2, refusal_delay=0.3)
        t0 = loop.time()
        first = asyncio.create_task(locked(_scope("POST", "/api/auth/login"), _noop_receive, recorder("first")))
        await _settle()
        ok = AdmissionMiddleware(_answering(200), limit=2, refusal_delay=0.3)
        ok._queues = locked._queues  # the same process: the same sign-in queue
        await ok(_scope("POST", "/login"), _noop_receive, recorder("second"))
        await locked(_scope("GET", "/api/me"), _noop_receive, recorder("read 429"))
        await first
        assert [name for name, _t in sent] == ["second", "read 429", "first"]  # not behind the delayed one
        assert dict(sent)["first"] - t0 >= 0.29

    asyncio.run(go())
