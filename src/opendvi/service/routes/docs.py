"""The API's documentation pages, served from the package: no request leaves the machine.

``/api/docs`` (Swagger UI) and ``/api/redoc`` (ReDoc) render ``/api/openapi.json`` with the
JavaScript and CSS vendored under ``service/static`` (``static/README.md`` names their sources,
versions and licences). The Content-Security-Policy allows no inline script, so each page starts
its viewer from a served file (``static/api-docs.js``). ReDoc runs its search index in a web worker
that it builds from a ``blob:`` URL: its page alone adds ``worker-src 'self' blob:`` to the policy
(nothing else is relaxed, no ``'unsafe-eval'``). The pages and the files are public, like the
OpenAPI document they show: they hold no data.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from opendvi import __version__
from opendvi.i18n import gettext as _
from opendvi.service.errors import APIError

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parents[1] / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".txt": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8"}
#: the vendored files change only with the package's version, which is in their URLs (``?v=``)
_ASSET_CACHE = "public, max-age=86400"


def _files() -> dict[str, Path]:
    """Every file the route serves: those under ``static/`` and nothing else (no path is built from the URL)."""
    return {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*")
            if p.is_file() and p.suffix in _TYPES and not p.name.startswith(".")}


_FILES = _files()


def _csp_with(extra: str) -> str:
    from opendvi.service.app import SECURITY_HEADERS  # the app imports this router

    return f"{SECURITY_HEADERS['Content-Security-Policy']}; {extra}"


def _page(request: Request, *, viewer: str, title: str, csp: str | None = None) -> HTMLResponse:
    resp: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, "api_docs.html", {"viewer": viewer, "title": title, "v": __version__,
                                   "openapi_url": request.app.openapi_url or "/api/openapi.json"})
    if csp:
        resp.headers["Content-Security-Policy"] = csp
    return resp


@router.get("/api/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: the operations, their parameters and schemas, and "Try it out"."""
    return _page(request, viewer="swagger", title="Swagger UI")


@router.get("/api/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc: the same document as one readable page, with a search (in a ``blob:`` web worker)."""
    return _page(request, viewer="redoc", title="ReDoc", csp=_csp_with("worker-src 'self' blob:"))


@router.get("/static/{name:path}")
def static_file(name: str) -> Response:
    """A vendored file (and its licence) from ``service/static``."""
    path = _FILES.get(name)
    if path is None:
        raise APIError(404, _("no such file: %(name)s", name=name), code="not_found")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": _ASSET_CACHE})
