"""A bug in an endpoint is a 500 in the one error shape, with an error id that the server's log
carries with the traceback; expected errors keep their 4xx; the response holds no internals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opendvi.store.errors import NotFoundError
from tests.servicekit import assert_error_shape, bearer, make_app, migrated_engine

SECRET = "internal-detail-7f3a"


def test_unexpected_exception_is_500_with_a_logged_error_id(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with migrated_engine("sqlite", tmp_path) as engine:
        app = make_app(engine, demo=False)

        def boom() -> None:
            raise KeyError(SECRET)

        def missing() -> None:
            raise NotFoundError("no remains X")

        app.add_api_route("/api/test-boom", boom)
        app.add_api_route("/api/test-missing", missing)
        client = TestClient(app, raise_server_exceptions=False)
        with caplog.at_level(logging.ERROR, logger="opendvi.service"):
            r = client.get("/api/test-boom")
        assert r.status_code == 500
        assert assert_error_shape(r, 500)["code"] == "internal_error"
        assert SECRET not in r.text
        (detail,) = r.json()["error"]["details"]
        error_id = detail["error_id"]
        assert len(error_id) == 16
        logged = [rec for rec in caplog.records if error_id in rec.getMessage()]
        assert logged and logged[0].exc_info is not None and logged[0].exc_info[0] is KeyError
        # another bug, another id
        assert client.get("/api/test-boom").json()["error"]["details"][0]["error_id"] != error_id
        # an expected error stays what it is: no error id
        r = client.get("/api/test-missing")
        assert assert_error_shape(r, 404)["code"] == "not_found"
        assert r.json()["error"]["details"] == []


def test_error_page_of_a_signed_in_user_shows_his_menu(tmp_path: Path) -> None:
    """The error page is rendered after the database session closed, from the user's snapshot."""
    with migrated_engine("sqlite", tmp_path) as engine:
        client = TestClient(make_app(engine, demo=False))
        headers = {**bearer(client, "admin"), "accept": "text/html"}
        r = client.get("/operations/NO-SUCH-OPERATION", headers=headers)
        assert r.status_code == 404
        assert 'href="/users"' in r.text  # the administrator's menu
