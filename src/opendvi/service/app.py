"""The FastAPI application: ``create_app()``.

The JSON API lives under ``/api`` (OpenAPI at ``/api/openapi.json``, docs at
``/api/docs``); the web pages at ``/``. Migrations run when the app is
created; the first administrator is created by :mod:`opendvi.service.bootstrap`.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from opendvi import __version__
from opendvi.service import errors
from opendvi.service.deps import SESSION_COOKIE
from opendvi.service.limits import BodyLimitMiddleware
from opendvi.service.routes import api, pages, power
from opendvi.service.settings import Settings
from opendvi.service.throttle import LoginThrottle
from opendvi.store import db as store_db

TEMPLATES = Path(__file__).resolve().parent / "templates"


def url_part(value: object) -> str:
    """One path segment or query value: every character but letters, digits and ``-._~`` percent-encoded."""
    return quote(str(value), safe="")


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'",
}


def create_app(*, settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """The service on ``engine`` (else the configured database), migrated to the newest schema."""
    settings = settings or Settings.from_env()
    settings.check()
    configured = engine is None
    if engine is None:
        engine = store_db.make_engine(store_db.database_url(url=settings.database_url, data_dir=settings.data_dir))
    store_db.upgrade(engine)
    if configured:  # the configured database: signed checkpoints of its audit head beside it (store/audit.py)
        from opendvi.store import audit

        audit.install_anchor(engine, audit.anchor_for(engine.url, settings.data_dir or store_db.default_data_dir()))
    app = FastAPI(
        title="opendvi case-work service",
        version=__version__,
        description="Disaster victim identification by DNA: operations, remains, families, matching, "
        "identifications with four-eyes review, and a hash-chained audit log. Every endpoint checks the "
        "caller's role; every error has the shape {\"error\": {status, code, message, details}}.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    # reads begin without a lock; writes call store_db.begin_write (docs/service.md, Concurrency)
    app.state.sessionmaker = store_db.session_factory(engine, reads_first=True)
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    # identifiers go into URLs percent-encoded whole ("/", "#", "?", spaces): {{ x|u }}
    app.state.templates.env.filters["u"] = url_part
    app.state.login_throttle = LoginThrottle(account_free=settings.login_failures,
                                             address_free=4 * settings.login_failures,
                                             cap=settings.login_lock_max_s)
    app.state.login_slots = threading.BoundedSemaphore(settings.login_parallel)
    errors.install(app)
    app.include_router(power.router)  # before api: /api/power/... is not a family code
    app.include_router(api.router)
    app.include_router(pages.router)
    # the body limit wraps everything: nothing is read, parsed or authenticated past it
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       anonymous_max_bytes=settings.anonymous_max_body_bytes, session_cookie=SESSION_COOKIE)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for k, val in SECURITY_HEADERS.items():
            response.headers.setdefault(k, val)
        return response

    return app
