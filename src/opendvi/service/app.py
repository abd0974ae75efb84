"""The FastAPI application: ``create_app()``.

The JSON API lives under ``/api`` (OpenAPI at ``/api/openapi.json``, docs at
``/api/docs``); the web pages at ``/``. Migrations run when the app is
created; the first administrator is created by :mod:`opendvi.service.bootstrap`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opendvi import __version__, i18n
from opendvi.service import collector, errors, offload, secret_box
from opendvi.service.admission import ADMISSION_ENV, DEFAULT_CONCURRENT_READS, AdmissionMiddleware
from opendvi.service.deps import SESSION_COOKIE
from opendvi.service.limits import BodyLimitMiddleware
from opendvi.service.routes import api, docs, families_pages, fragments_pages, pages, power
from opendvi.service.routes import exports as exports_routes
from opendvi.service.routes import plots as plots_routes
from opendvi.service.routes import review as review_routes
from opendvi.service.settings import Settings
from opendvi.service.throttle import LoginThrottle
from opendvi.store import db as store_db
from opendvi.workflows.results import format_lr

TEMPLATES = Path(__file__).resolve().parent / "templates"


def url_part(value: object) -> str:
    """One path segment or query value: every character but letters, digits and ``-._~`` percent-encoded."""
    return quote(str(value), safe="")


#: environment variable: worker threads per process running the endpoints (database work, pages)
THREADS_ENV = "OPENDVI_THREADS"
DEFAULT_THREADS = 16

#: set by ``opendvi serve --workers N`` for its worker processes: migrations and bootstrap ran before they forked
MIGRATED_ENV = "OPENDVI_SERVE_MIGRATED"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'",
}


class SecurityHeadersMiddleware:
    """The :data:`SECURITY_HEADERS` on every response (plain ASGI: the body passes through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _v in headers}
                headers += [(k, v) for k, v in self.raw if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: endpoints that need no credentials: no lock in the API documentation
PUBLIC_OPERATIONS = {("get", "/api/health"), ("post", "/api/auth/login")}


def install_openapi_security(app: FastAPI) -> None:
    """The OpenAPI document declares how to authenticate: a bearer token from ``POST /api/auth/login``
    (Swagger UI's "Authorize" then sends it with "Try it out"); the session cookie of the pages is for
    the pages."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "the token of POST /api/auth/login (valid for the session's hours)"}}
        schema["security"] = [{"bearer": []}]
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                if (method, path) in PUBLIC_OPERATIONS:
                    op["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(*, settings: Settings | None = None, engine: Engine | None = None, migrate: bool = True) -> FastAPI:
    """The service on ``engine`` (else the configured database), migrated to the newest schema
    (``migrate=False``: the caller did it, as ``opendvi serve`` does before its workers start)."""
    settings = settings or Settings.from_env()
    settings.check()
    configured = engine is None
    if engine is None:
        engine = store_db.make_engine(store_db.database_url(url=settings.database_url, data_dir=settings.data_dir))
    if migrate:
        store_db.upgrade(engine)
    if configured:  # the configured database: signed checkpoints of its audit head beside it (store/audit.py)
        from opendvi.store import audit

        audit.install_anchor(engine, audit.anchor_for(engine.url, settings.data_dir or store_db.default_data_dir()))
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # fewer threads than AnyIO's 40: requests past them wait on the event loop, not for the GIL
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = max(
            2, int(os.environ.get(THREADS_ENV) or DEFAULT_THREADS))
        # uploads parsed and checked in a process of their own, not under the readers' lock (service/offload.py)
        with offload.import_pool(warm=settings.environment != "test"):
            yield

    app = FastAPI(
        lifespan=lifespan,
        title="opendvi case-work service",
        version=__version__,
        description="Disaster victim identification by DNA: operations, remains, families, matching, "
        "identifications with four-eyes review, and a hash-chained audit log. Every endpoint checks the "
        "caller's role; every error has the shape {\"error\": {status, code, message, details}}.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # /api/docs and /api/redoc: routes/docs.py, from the package (no CDN)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    # reads begin without a lock; writes call store_db.begin_write (docs/service.md, Concurrency)
    app.state.sessionmaker = store_db.session_factory(engine, reads_first=True)
    # second-factor secrets sealed at rest, the key beside the configured database (service/secret_box.py)
    app.state.secret_box = secret_box.box_for(
        (settings.data_dir or store_db.default_data_dir()) if configured else None, engine=engine)
    if migrate:  # once per database start, before the workers (opendvi serve --workers N) begin
        secret_box.seal_stored_totp(app.state.sessionmaker, app.state.secret_box)
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    app.state.templates.env.auto_reload = False  # compiled once per process: no stat() per page
    # identifiers go into URLs percent-encoded whole ("/", "#", "?", spaces): {{ x|u }}
    app.state.templates.env.filters["u"] = url_part
    # an LR for people from its log10, {{ c.log10_lr|lr }}: the rule of the CLI's tables (workflows.results)
    app.state.templates.env.filters["lr"] = format_lr
    # {{ _("...") }} in every template: the request's locale (opendvi/i18n)
    i18n.install(app.state.templates.env)
    # in the database: one lockout for every worker process and server on it (service/throttle.py)
    app.state.login_throttle = LoginThrottle(account_free=settings.login_failures,
                                             address_free=4 * settings.login_failures,
                                             cap=settings.login_lock_max_s, engine=engine)
    app.state.login_slots = threading.BoundedSemaphore(settings.login_parallel)
    errors.install(app)
    install_openapi_security(app)
    app.include_router(power.router)  # before api: /api/power/... is not a family code
    app.include_router(exports_routes.router)  # before api: /api/exports/... (reports/exports.py)
    app.include_router(plots_routes.router)  # before pages: /plots/... (reports/plots.py)
    app.include_router(api.router)  # one router per resource: routes/api/
    app.include_router(families_pages.router)  # before pages: /families/{code}, /remains/{barcode}
    app.include_router(fragments_pages.router)  # the remains page's fragment forms
    app.include_router(review_routes.router)  # before pages: /candidates/{id}, /identifications/{id}/report
    app.include_router(pages.router)
    app.include_router(docs.router)  # Swagger UI and ReDoc, vendored under service/static
    # the body limit wraps everything: nothing is read, parsed or authenticated past it
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       anonymous_max_bytes=settings.anonymous_max_body_bytes, session_cookie=SESSION_COOKIE)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(i18n.LocaleMiddleware)
    # outermost: reads queue first come, first served before any work is done for them (admission.py)
    app.add_middleware(AdmissionMiddleware,
                       limit=int(os.environ.get(ADMISSION_ENV) or DEFAULT_CONCURRENT_READS),
                       refusal_delay=settings.signin_refusal_delay)
    if settings.environment != "test" and collector.enabled():  # (a test process keeps Python's collector)
        app.add_middleware(collector.FreezeWhenWarm)  # long-lived objects out of later collections
    return app


def worker_app() -> FastAPI:
    """The app of one worker process of ``opendvi serve --workers N`` (uvicorn's factory): the
    settings from the environment, the schema migrated by the parent before it started the workers."""
    return create_app(settings=Settings.from_env(), migrate=os.environ.get(MIGRATED_ENV) != "1")
