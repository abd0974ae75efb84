"""One error shape for every error of the service.

Every error response is JSON of the form::

    {"error": {"status": 409, "code": "conflict", "message": "...", "details": [...]}}

whatever raised it: an :class:`APIError`, a store error, a validation error
of FastAPI, an unknown route, or an unexpected exception: a bug, 500
``internal_error`` with no internals in the message, its traceback logged
under an error id that the response carries (``details``: ``[{"error_id":
...}]``) so that a report can be matched to the log. Web pages (``text/html``
requested) get the same fields rendered as a page.

A database that is busy, locked or unreachable (``OperationalError``, a pool
timeout, a lost connection) is 503 ``unavailable`` with ``Retry-After``:
never a 401 or a 500, and nothing half-written (the transaction rolls back).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from opendvi.core.errors import OpenDVIError
from opendvi.i18n import lazy, translate
from opendvi.service.policy import ROLE_TITLES, allowed
from opendvi.store.errors import (
    ConflictError,
    ImportValidationError,
    NotFoundError,
    PermissionDeniedError,
)

log = logging.getLogger("opendvi.service")

_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "too_many_attempts",
          500: "internal_error", 503: "unavailable"}
#: the API's code when a one-time password must be changed first (pages go to the change page)
PASSWORD_CHANGE_REQUIRED = "password_change_required"
CHANGE_PASSWORD_PAGE = "/account/password"


def one_line(text: str) -> str:
    """A message on one line (parsers' messages may hold line breaks)."""
    return " ".join(str(text).split())


class APIError(Exception):
    """An error with an HTTP status, a machine code, a message and details."""

    def __init__(self, status: int, message: str, *, code: str | None = None, details: list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = details or []
        self.headers = headers


class LoginRequired(APIError):
    def __init__(self) -> None:
        super().__init__(401, lazy("sign in first"), code="unauthenticated")


@dataclass
class _PageUser:
    """What the error page's menu asks of the signed-in user (``can``), from the detached snapshot that
    :func:`opendvi.service.deps.current_principal` leaves on the request."""

    user: Any
    csrf: str

    def can(self, permission: str) -> bool:
        return allowed(self.user.role, permission)


def error_body(status: int, code: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "details": details or []}}


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


#: the messages of Starlette's own errors, marked for the catalogue (translated in :func:`_respond`)
_STARLETTE_MESSAGES = (lazy("Not Found"), lazy("Method Not Allowed"), lazy("Request Entity Too Large"),
                       lazy("Unsupported Media Type"), lazy("Bad Request"))


def _respond(request: Request, err: APIError) -> Response:
    # a message marked with ``lazy`` (or any message the catalogue holds) in the request's language;
    # one built with ``_()`` where it was raised is already in it; the machine ``code`` never changes
    message = translate(err.message)
    if message != err.message:
        err = APIError(err.status, message, code=err.code, details=err.details, headers=err.headers)
    if _wants_html(request):
        if err.status == 401:
            from urllib.parse import quote

            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if err.code == PASSWORD_CHANGE_REQUIRED:
            return RedirectResponse(CHANGE_PASSWORD_PAGE, status_code=303)
        user = getattr(request.state, "user", None)
        csrf = getattr(request.state, "csrf", "")
        # ``user`` is a detached snapshot (name and role): enough for the page's menu
        principal = _PageUser(user=user, csrf=csrf) if user else None
        templates = request.app.state.templates
        return templates.TemplateResponse(
            request, "error.html", {"error": err, "user": user, "principal": principal, "csrf": csrf,
                                    "role_titles": ROLE_TITLES},
            status_code=err.status, headers=err.headers,
        )
    return JSONResponse(error_body(err.status, err.code, err.message, err.details), status_code=err.status,
                        headers=err.headers)


def from_exception(exc: Exception) -> APIError:
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ImportValidationError):
        return APIError(422, one_line(str(exc)), code=exc.code,
                        details=[one_line(p) if isinstance(p, str) else p for p in exc.problems])
    if isinstance(exc, NotFoundError):
        return APIError(404, str(exc), code=exc.code)
    if isinstance(exc, ConflictError):
        return APIError(409, str(exc), code=exc.code)
    if isinstance(exc, PermissionDeniedError):
        return APIError(403, str(exc), code=exc.code)
    if isinstance(exc, OpenDVIError):
        return APIError(422, one_line(str(exc)), code="invalid")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError
                  | sa_exc.DisconnectionError) or (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated):
        return APIError(503, lazy("the database is busy or unavailable: try again in a moment"), code="unavailable",
                        headers={"Retry-After": "5"})
    return APIError(500, lazy("internal error (logged on the server)"), code="internal_error")


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError) -> Response:
        return _respond(request, exc)

    @app.exception_handler(OpenDVIError)
    async def _domain(request: Request, exc: OpenDVIError) -> Response:
        return _respond(request, from_exception(exc))

    @app.exception_handler(sa_exc.SQLAlchemyError)
    async def _database(request: Request, exc: sa_exc.SQLAlchemyError) -> Response:
        err = from_exception(exc)
        if err.status == 503:
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                        one_line(str(exc))[:300])
        else:
            log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        return _respond(request, err)

    @app.exception_handler(RecursionError)
    async def _nesting(request: Request, exc: RecursionError) -> Response:
        return _respond(request, APIError(422, lazy("the document is nested too deeply"), code="invalid"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _respond(request, APIError(422, lazy("the request is not valid"), code="invalid", details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers) if exc.headers else None
        return _respond(request, APIError(exc.status_code, str(exc.detail), headers=headers))

    @app.exception_handler(Exception)
    async def _other(request: Request, exc: Exception) -> Response:
        err = from_exception(exc)
        if err.status == 500:  # a bug: its traceback in the log, under the id the response gives
            error_id = secrets.token_hex(8)
            log.error("unexpected error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
            err.details = [{"error_id": error_id}]
        else:
            log.warning("error %s on %s %s: %s", err.status, request.method, request.url.path,
                        one_line(str(exc))[:300])
        return _respond(request, err)
