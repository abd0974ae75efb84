"""The serving process's garbage collector (``service/collector.py``): its long-lived objects frozen
once, after it has answered its first requests; ``OPENDVI_GC_TUNING=0`` leaves it alone."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from opendvi.service import collector


def _call(app: Any, scope_type: str = "http") -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(_message: dict[str, Any]) -> None:
        return None

    asyncio.run(app({"type": scope_type}, receive, send))


def test_freeze_once_after_the_warm_requests() -> None:
    calls: list[str] = []

    async def inner(scope: Any, _receive: Any, _send: Any) -> None:
        calls.append(scope["type"])

    app = collector.FreezeWhenWarm(inner, after=3)
    before = gc.get_freeze_count()
    try:
        _call(app)
        _call(app, "lifespan")  # not a request: not counted
        _call(app)
        assert gc.get_freeze_count() == before and not app.frozen
        _call(app)  # the third request: one collection, everything alive frozen
        assert app.frozen and gc.get_freeze_count() > before
        frozen = gc.get_freeze_count()
        garbage = [object() for _ in range(10)]
        _call(app)
        assert gc.get_freeze_count() == frozen  # once only
        del garbage
        assert calls == ["http", "lifespan", "http", "http", "http"]  # every call passed through
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("environment", "tuning", "wired"),
                         [("development", None, True), ("development", "0", False), ("test", None, False)])
def test_a_served_app_freezes_when_warm_unless_turned_off(
        environment: str, tuning: str | None, wired: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from opendvi.service.app import create_app
    from opendvi.service.settings import Settings
    from tests.servicekit import migrated_engine

    if tuning is None:
        monkeypatch.delenv(collector.GC_ENV, raising=False)
    else:
        monkeypatch.setenv(collector.GC_ENV, tuning)
    assert collector.enabled() is (tuning != "0")
    with migrated_engine("sqlite", tmp_path) as engine:
        app = create_app(settings=Settings(environment=environment), engine=engine, migrate=False)
        assert any(m.cls is collector.FreezeWhenWarm for m in app.user_middleware) is wired
