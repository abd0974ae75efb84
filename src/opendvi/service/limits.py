"""The request body limit, enforced before anything reads the body.

An ASGI middleware, outside every route, dependency and authentication: a
declared ``Content-Length`` over the limit is answered 413 at once, nothing
read; a body without one (chunked) is counted as it streams and cut at the
limit with the same 413. A request that carries no credential (no session
cookie, no bearer token: the sign-in forms) gets a much smaller limit, so an
anonymous client cannot make the server read, spool or parse megabytes.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opendvi.service.errors import error_body


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit (FastAPI re-raises HTTP errors)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {_size(limit)}")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, anonymous_max_bytes: int, session_cookie: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.anonymous_max_bytes = anonymous_max_bytes
        self.session_cookie = session_cookie

    def _limit(self, headers: Headers) -> int:
        if headers.get("authorization", "").lower().startswith("bearer "):
            return self.max_bytes
        if f"{self.session_cookie}=" in headers.get("cookie", ""):
            return self.max_bytes
        return self.anonymous_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self._limit(headers)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(declared) > limit:
                await _reply(send, 413, "too_large", f"the request body is larger than {_size(limit)}")
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _reply(send, 413, "too_large", str(exc.detail))


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(status, code, message)).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
