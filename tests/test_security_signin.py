"""Finding 3 of issue 15: sign-in defence.

* per account and per client address, exponential back-off: while locked, 429 with
  ``Retry-After`` and no argon2 work (so a flood costs nothing);
* an unknown user name costs the same argon2 verification as a known one (API and page);
* failed attempts are aggregated in the audit (one entry per lock, a count on the next
  sign-in), and a typed name that is no account is stored nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opendvi.service import security
from opendvi.service.throttle import LoginThrottle
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, migrated_engine, password_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_backs_off_exponentially_per_account_and_address() -> None:
    clock = Clock()
    t = LoginThrottle(account_free=3, address_free=11, base=1.0, cap=60.0, clock=clock)
    for _ in range(3):
        assert t.retry_after(account="Alice", address="10.0.0.1") == 0
        assert t.failure(account="alice", address="10.0.0.1") == []
    waits = []
    for _ in range(8):
        locks = t.failure(account="ALICE ", address="10.0.0.1")
        assert [lk.scope for lk in locks] == ["account"]
        waits.append(t.retry_after(account="alice", address="10.0.0.2"))  # another address: the account is locked
        clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    # the address locks after its own threshold, whatever the account
    assert t.retry_after(account="bob", address="10.0.0.1") == 0
    locks = t.failure(account="bob", address="10.0.0.1")
    assert [lk.scope for lk in locks] == ["address"] and locks[0].failures == 12
    assert t.retry_after(account="carol", address="10.0.0.1") > 0
    assert t.retry_after(account="carol", address="10.0.0.3") == 0
    # a success forgets the account's failures and says how many there were
    assert t.success(account="Bob") == 1
    assert t.success(account="bob") == 0


def test_throttle_forgets_and_is_bounded() -> None:
    clock = Clock()
    t = LoginThrottle(account_free=1, address_free=1000, forget=100.0, max_keys=50, clock=clock)
    t.failure(account="a", address="x")
    t.failure(account="a", address="x")
    assert t.retry_after(account="a", address="y") > 0
    clock.now += 200
    assert t.retry_after(account="a", address="y") == 0
    assert t.failure(account="a", address="y") == []  # counting starts again
    for i in range(1000):
        t.failure(account=f"guess-{i}", address="x")
    assert len(t) <= 50


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with migrated_engine(request.param, tmp_path) as engine:
        yield TestClient(make_app(engine))


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    calls: list[str | None] = []
    real = security.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        calls.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(security, "verify_password", counting)
    return calls


def _audit(client: TestClient) -> list[dict[str, Any]]:
    return client.get("/api/audit", headers=bearer(client, "admin")).json()


def test_repeated_failures_lock_the_account_without_argon2(client: TestClient, argon2_calls: list[Any]) -> None:
    client.app.state.login_throttle.clock = Clock()  # type: ignore[attr-defined]
    for _ in range(5):
        assert_error_shape(client.post("/api/auth/login", json={"username": "lab", "password": "wrong"}), 401)
    assert len(argon2_calls) == 5
    r = client.post("/api/auth/login", json={"username": "lab", "password": "wrong"})
    assert_error_shape(r, 401)  # the sixth failure sets the first lock
    r = client.post("/api/auth/login", json={"username": "lab", "password": password_of("lab")})
    err = assert_error_shape(r, 429)
    assert err["code"] == "too_many_attempts" and int(r.headers["retry-after"]) >= 1
    assert len(argon2_calls) == 6  # refused before any argon2 work
    # another account from the same address is not locked
    assert client.post("/api/auth/login", json={"username": "dvi", "password": password_of("dvi")}).status_code == 200
    entries = _audit(client)
    throttled = [e for e in entries if e["action"] == "auth.login_throttled"]
    assert len(throttled) == 1
    assert throttled[0]["object_id"] == "lab" and throttled[0]["details"]["failures"] == 6
    assert throttled[0]["details"]["scope"] == "account"
    assert not [e for e in entries if e["action"] == "auth.login_failed"]


def test_a_lock_lifts_and_the_sign_in_reports_the_failures(client: TestClient) -> None:
    throttle = client.app.state.login_throttle  # type: ignore[attr-defined]
    clock = Clock()
    throttle.clock = clock
    for _ in range(6):
        client.post("/api/auth/login", json={"username": "reviewer", "password": "wrong"})
    assert client.post("/api/auth/login", json={"username": "reviewer",
                                                "password": password_of("reviewer")}).status_code == 429
    clock.now += 2
    r = client.post("/api/auth/login", json={"username": "reviewer", "password": password_of("reviewer")})
    assert r.status_code == 200
    login = next(e for e in _audit(client) if e["action"] == "auth.login" and e["object_id"] == "reviewer")
    assert login["details"] == {"failed_attempts": 6}


def test_unknown_names_cost_an_argon2_check_and_are_stored_nowhere(client: TestClient,
                                                                   argon2_calls: list[Any]) -> None:
    names = [f"guess-{i}-{'x' * 40}" for i in range(30)]
    for name in names:
        r = client.post("/api/auth/login", json={"username": name, "password": "whatever"})
        assert r.status_code in (401, 429)
    checked = [c for c in argon2_calls if c is None]
    assert len(checked) >= 20  # every name until the address locks (after 20 failures)
    # the page too: an unknown name is verified against the dummy hash (same time as a known one)
    before = len(argon2_calls)
    client.app.state.login_throttle = type(client.app.state.login_throttle)()  # type: ignore[attr-defined]
    page = client.get("/login")
    token = page.cookies.get("opendvi_login_csrf") or client.cookies.get("opendvi_login_csrf")
    r = client.post("/login", data={"username": "nobody-at-all", "password": "whatever", "csrf_token": token})
    assert r.status_code == 401
    assert len(argon2_calls) == before + 1 and argon2_calls[-1] is None
    entries = _audit(client)
    text = str(entries)
    assert "guess-" not in text and "nobody-at-all" not in text
    assert len([e for e in entries if e["action"].startswith("auth.login_")]) <= 3  # not one row per guess
    lock = next(e for e in entries if e["action"] == "auth.login_throttled")
    assert lock["object_id"] is None and lock["details"]["known_account"] is False


def test_the_address_locks_after_its_threshold(client: TestClient) -> None:
    client.app.state.login_throttle.clock = Clock()  # type: ignore[attr-defined]  # time stands still
    for i in range(21):
        client.post("/api/auth/login", json={"username": f"n{i}", "password": "x"})
    r = client.post("/api/auth/login", json={"username": "lab", "password": password_of("lab")})
    assert assert_error_shape(r, 429)["code"] == "too_many_attempts"
    page = client.get("/login")
    token = client.cookies.get("opendvi_login_csrf")
    r = client.post("/login", data={"username": "lab", "password": password_of("lab"), "csrf_token": token})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text and r.headers["retry-after"]
    assert page.status_code == 200
