"""Schemathesis against the service's OpenAPI description: no input makes it answer 5xx,
and every error keeps the one error shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra: pip install -e '.[test]'")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from tests.servicekit import bearer, make_app, migrated_engine  # noqa: E402

#: Fuzzing takes a minute or two: CI runs it, `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

AUTH: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with migrated_engine("sqlite", tmp) as engine:
        app = make_app(engine)
        client = TestClient(app)
        AUTH["admin"] = bearer(client, "admin")
        AUTH["dvi"] = bearer(client, "dvi")
        # logout would end the fuzzing session; matching is exercised elsewhere (seconds per call)
        yield schemathesis.openapi.from_asgi("/api/openapi.json", app).exclude(
            path_regex=r"^/api/auth/logout$|/matching-runs$"
        )


schema = schemathesis.pytest.from_fixture("api_schema")


def _check(response: Any) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and body["error"]["status"] == response.status_code, body


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_as_administrator_never_5xx(case: Any) -> None:
    _check(case.call(headers=AUTH["admin"]))


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_as_dvi_analyst_never_5xx(case: Any) -> None:
    _check(case.call(headers=AUTH["dvi"]))


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_anonymous_never_5xx(case: Any) -> None:
    _check(case.call())
