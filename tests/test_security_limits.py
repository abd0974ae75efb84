"""Findings 2 and 10 of issue 15: request bodies capped before anything reads them; deep
JSON, LIKE wildcards and multi-line parser messages.

* a declared ``Content-Length`` over the limit is 413 before the body is read, before
  authentication (not 401), in the one error shape;
* a streamed body without a length is cut at the limit (the rest never read);
* a request without a credential may send only 64 KiB (the sign-in forms);
* a JSON file nested 50,000 deep is 422, not 500;
* ``%`` and ``_`` in a search match themselves;
* error messages and details are one line each.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.data import demo_case_path
from opendvi.service.app import create_app
from opendvi.service.errors import from_exception
from opendvi.service.settings import Settings
from opendvi.store.errors import ImportValidationError
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, migrated_engine

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with migrated_engine("sqlite", tmp_path_factory.mktemp("limits")) as engine:
        app = make_app(engine)
        app.state.settings = Settings(environment="test")
        yield TestClient(app)


def test_declared_length_over_the_limit_is_413_before_authentication(client: TestClient) -> None:
    """Anonymous: 64 KiB; an import route answers 413, not 401 (the old service spooled 400 MiB, then said 401)."""
    big = b"x" * (200 * 1024)
    r = client.post("/api/operations/demo/imports/file", files={"file": ("a.json", big, "application/json")})
    assert assert_error_shape(r, 413)["code"] == "too_large"
    r = client.post("/api/operations/demo/imports", content=b"[" + b"1," * 60_000 + b"1]",
                    headers={"content-type": "application/json"})
    assert_error_shape(r, 413)
    r = client.post("/api/auth/login", content=json.dumps({"username": "a" * 100_000, "password": "x"}),
                    headers={"content-type": "application/json"})
    assert_error_shape(r, 413)
    # a small anonymous body still reaches authentication
    assert_error_shape(client.post("/api/operations/demo/imports", json={"format": "x"}), 401)


def test_signed_in_bodies_have_the_configured_limit(tmp_path: Path) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        app = create_app(settings=Settings(environment="test", max_body_bytes=1 * MiB), engine=engine)
        from opendvi.service import bootstrap
        from tests.servicekit import ADMIN_PASSWORD, add_role_users

        bootstrap.ensure_admin(app.state.sessionmaker, password=ADMIN_PASSWORD, must_change_password=False)
        add_role_users(app.state.sessionmaker)
        bootstrap.load_demo(app.state.sessionmaker)
        client = TestClient(app)
        h = bearer(client, "lab")
        case = Path(demo_case_path()).read_bytes()
        ok = client.post("/api/operations/demo/imports/file", files={"file": ("demo.json", case, "application/json")},
                         headers=h)
        assert ok.status_code == 201, ok.text
        r = client.post("/api/operations/demo/imports/file", headers=h,
                        files={"file": ("big.json", b" " * (2 * MiB), "application/json")})
        err = assert_error_shape(r, 413)
        assert "1 MiB" in err["message"]


def _run_asgi(app: Any, headers: list[tuple[bytes, bytes]], chunks: int, chunk: int = 64 * 1024) -> tuple[int, int]:
    """Send a streamed body to ``app``; returns (status, chunks the app pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    head = (b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="a.json"\r\n'
            b"Content-Type: application/json\r\n\r\n")

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        more = pulled < chunks
        body = head + b"x" * (chunk - len(head)) if pulled == 1 else b"x" * chunk
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/operations/demo/imports/file", "raw_path": b"/api/operations/demo/imports/file",
             "query_string": b"", "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], pulled


def test_a_streamed_body_is_cut_at_the_limit(tmp_path: Path) -> None:
    """No Content-Length (chunked): the middleware counts and stops reading at the limit."""
    with migrated_engine("sqlite", tmp_path) as engine:
        app = create_app(settings=Settings(environment="test", max_body_bytes=1 * MiB), engine=engine)
        headers = [(b"content-type", b"multipart/form-data; boundary=zzz"), (b"authorization", b"Bearer whatever")]
        status, pulled = _run_asgi(app, headers, chunks=10_000)  # 625 MiB offered
        assert status == 413
        assert pulled <= MiB // (64 * 1024) + 2
        anonymous = [(b"content-type", b"multipart/form-data; boundary=zzz")]
        status, pulled = _run_asgi(app, anonymous, chunks=10_000)
        assert status == 413 and pulled <= 2
        # a declared length over the limit: nothing is read at all
        status, pulled = _run_asgi(app, [*anonymous, (b"content-length", str(400 * MiB).encode())], chunks=10_000)
        assert status == 413 and pulled == 0


def test_deep_json_is_422_not_500(client: TestClient) -> None:
    h = bearer(client, "lab")
    deep = b"[" * 50_000 + b"]" * 50_000
    r = client.post("/api/operations/demo/imports/file", files={"file": ("deep.json", deep, "application/json")},
                    headers=h)
    assert assert_error_shape(r, 422)["code"] in ("import_invalid", "invalid")
    obj = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    r = client.post("/api/operations/demo/imports", content=obj, headers={**h, "content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert_error_shape(r)


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_wildcards_match_themselves(backend: str, tmp_path: Path) -> None:
    with migrated_engine(backend, tmp_path) as engine:
        client = TestClient(make_app(engine))
        h = bearer(client, "lab")
        case = json.loads(Path(demo_case_path()).read_text())
        base = case["remains"][0]
        case["remains"] = [dict(base, id=b) for b in ("A_1", "AB1", "P%5", "PQ5")]
        case["families"] = []
        r = client.post("/api/operations/demo/imports", json=case, headers=h)
        assert r.status_code == 201, r.text

        def found(q: str) -> list[str]:
            r = client.get("/api/remains", params={"q": q}, headers=h)
            assert r.status_code == 200
            return [x["barcode"] for x in r.json()]

        assert found("A_1") == ["A_1"]
        assert found("P%5") == ["P%5"]
        assert found("_") == ["A_1"]
        assert found("%") == ["P%5"]
        assert "AB1" in found("b1")


def test_error_messages_are_one_line() -> None:
    exc = ImportValidationError(["sheet profiles, row 3:\n  bad allele\n  'x'", {"line": 2}], filename="a.xlsx")
    err = from_exception(exc)
    assert "\n" not in err.message
    assert err.details[0] == "sheet profiles, row 3: bad allele 'x'" and err.details[1] == {"line": 2}


def test_an_unreadable_workbook_is_refused_on_one_line(client: TestClient) -> None:
    h = bearer(client, "lab")
    for name, raw in (("broken.xlsx", b"PK\x03\x04 not really a zip\n\nsecond line"),
                      ("profiles.csv", b"sample,D3S1358,D3S1358\n\"S\n1\",bad\n")):
        r = client.post("/api/operations/demo/imports/file", files={"file": (name, raw, "application/octet-stream")},
                        headers=h)
        err = assert_error_shape(r, 422)
        assert "\n" not in err["message"]
        assert all("\n" not in d for d in err["details"] if isinstance(d, str)), err
