"""The API documentation pages work with no internet: Swagger UI at ``/api/docs`` and ReDoc at
``/api/redoc`` are served from the package (``service/static``, routes/docs.py).

In-process: the pages, the vendored files with their licences, the Content-Security-Policy (no
``'unsafe-eval'``; ReDoc's page alone allows ``blob:`` workers), nothing outside ``static/``.
In Chromium (``opendvi serve`` in a subprocess): every request of both pages goes to 127.0.0.1,
no Content-Security-Policy violation is reported, and the operations are listed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from opendvi.service.routes import docs
from tests import webkit
from tests.servicekit import bearer, make_app, migrated_engine

STATIC = docs.STATIC


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with migrated_engine("sqlite", tmp_path_factory.mktemp("api-docs")) as engine:
        yield TestClient(make_app(engine, demo=False))


@pytest.mark.parametrize(("path", "asset"), [("/api/docs", "/static/swagger-ui/swagger-ui-bundle.js"),
                                             ("/api/redoc", "/static/redoc/redoc.standalone.js")])
def test_docs_page__served_from_the_package(client: TestClient, path: str, asset: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert f'src="{asset}?v=' in html and 'src="/static/api-docs.js?v=' in html
    assert 'data-openapi="/api/openapi.json"' in html
    # nothing from elsewhere, no inline script
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html), html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    policy = {name: value.strip() for name, _sep, value in
              (d.strip().partition(" ") for d in r.headers["content-security-policy"].split(";"))}
    scripts = policy.get("script-src", policy["default-src"])
    assert scripts == "'self'", scripts  # no inline script, no eval, nothing from elsewhere
    assert "'unsafe-eval'" not in r.headers["content-security-policy"]
    assert policy.get("worker-src") == ("'self' blob:" if path == "/api/redoc" else None)
    for src in re.findall(r'(?:src|href)="(/static/[^"?]+)', html):
        got = client.get(src)
        assert got.status_code == 200 and got.content, src
        assert got.headers["cache-control"].startswith("public"), src


def test_docs_page__in_the_request_language(client: TestClient) -> None:
    r = client.get("/api/docs", headers={"accept-language": "uk-UA,uk;q=0.9"})
    assert '<html lang="uk">' in r.text
    assert '<div id="api-docs" lang="en"' in r.text  # the OpenAPI document itself is in English
    assert '<html lang="en">' in client.get("/api/redoc", headers={"accept-language": "en"}).text


def test_openapi_document__lists_the_api_and_not_the_docs_routes(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert "/api/identifications" in spec["paths"]
    assert not {"/api/docs", "/api/redoc"} & set(spec["paths"])
    assert not any(p.startswith("/static/") for p in spec["paths"])


@pytest.mark.parametrize("name", ["../routes/docs.py", "..%2Fapp.py", "swagger-ui/", "nothing.js",
                                  "swagger-ui/swagger-ui-bundle.js.map", "/etc/passwd"])
def test_static_file__only_the_vendored_files(client: TestClient, name: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 404, (name, r.status_code)
    assert r.json()["error"]["code"] == "not_found"


def test_vendored_files__each_with_its_licence_and_its_hash_in_the_readme() -> None:
    readme = (STATIC / "README.md").read_text(encoding="utf-8")
    import hashlib

    for rel, licence in (("swagger-ui/swagger-ui-bundle.js", "swagger-ui/LICENSE"),
                         ("swagger-ui/swagger-ui.css", "swagger-ui/LICENSE"),
                         ("redoc/redoc.standalone.js", "redoc/LICENSE")):
        digest = hashlib.sha256((STATIC / rel).read_bytes()).hexdigest()
        assert f"{digest}  {rel}" in readme, f"README.md: update the hash of {rel}"
        assert (STATIC / licence).stat().st_size > 500
    assert "Apache License" in (STATIC / "swagger-ui" / "LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in (STATIC / "redoc" / "LICENSE").read_text(encoding="utf-8")


def test_vendored_files__are_package_data() -> None:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["opendvi"]
    package = STATIC.parent.parent  # src/opendvi
    for path in STATIC.rglob("*"):
        if path.is_file():
            rel = path.relative_to(package)
            assert any(rel.match(p) and len(rel.parts) == len(Path(p).parts) for p in patterns), rel


def test_users_page__links_to_the_api_docs(client: TestClient, tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        c = TestClient(make_app(engine, demo=False))
        page = c.get("/users", headers=bearer(c, "admin"))
    assert page.status_code == 200 and 'href="/api/docs"' in page.text
    assert client.get("/api/docs").status_code == 200


# -- in Chromium ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webkit.Server]:
    with webkit.serve(tmp_path_factory.mktemp("api-docs-web"), demo=False, matching_worker=False) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with webkit.chromium() as b:
        yield b


def _open(browser: Any, url: str) -> tuple[Any, list[str], list[str]]:
    """The page at ``url``, every URL it requested, and the Content-Security-Policy violations reported."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    requests: list[str] = []
    violations: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(url)
    return page, requests, violations


@webkit.needs_chromium
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "uk"])
def test_swagger_ui__renders_the_operations_offline(server: webkit.Server, browser: Any, lang: str) -> None:
    page, requests, violations = _open(browser, f"{server.base}/api/docs")
    webkit.set_language(page.context, server.base, lang)
    page.reload()
    page.wait_for_selector("#api-docs[data-ready='1'] .opblock", timeout=60_000)
    summaries = page.locator("#api-docs .opblock .opblock-summary-path").all_inner_texts()
    assert len(summaries) > 30 and any("/api/identifications" in s for s in summaries), summaries[:5]
    assert page.get_attribute("html", "lang") == lang
    webkit.shot(page, f"api-docs-swagger-{lang}", folder="tour")
    outside = [u for u in requests if not u.startswith(("data:", "blob:")) and urlsplit(u).hostname != "127.0.0.1"]
    assert requests and not outside, outside
    assert not violations, violations
    page.context.close()


@webkit.needs_chromium
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "uk"])
def test_redoc__renders_the_operations_offline(server: webkit.Server, browser: Any, lang: str) -> None:
    page, requests, violations = _open(browser, f"{server.base}/api/redoc")
    webkit.set_language(page.context, server.base, lang)
    page.reload()
    page.wait_for_selector("#api-docs[data-ready='1'] [data-section-id^='operation/']", timeout=60_000,
                           state="attached")
    operations = page.locator("#api-docs [data-section-id^='operation/']").count()
    assert operations > 30
    assert "/api/identifications" in page.inner_text("#api-docs")
    assert page.get_attribute("html", "lang") == lang
    # the search runs in its web worker (allowed on this page only): it finds an operation
    page.fill("#api-docs input[placeholder]", "identifications")
    page.wait_for_selector("#api-docs [data-role='search:results'] li, #api-docs [role='search'] ~ * li",
                           timeout=30_000)
    webkit.shot(page, f"api-docs-redoc-{lang}", folder="tour")
    outside = [u for u in requests if not u.startswith(("data:", "blob:")) and urlsplit(u).hostname != "127.0.0.1"]
    assert requests and not outside, outside
    assert not violations, violations
    page.context.close()


def test_openapi_document__declares_the_bearer_token(client: TestClient) -> None:
    """Swagger UI's "Authorize" needs a security scheme: the bearer token of POST /api/auth/login, on
    every operation but the public ones."""
    doc = client.get("/api/openapi.json").json()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/api/health"]["get"]["security"] == []
    assert doc["paths"]["/api/auth/login"]["post"]["security"] == []
    assert "security" not in doc["paths"]["/api/candidates"]["get"]  # the document's default: the token
