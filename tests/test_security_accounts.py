"""Finding 7 of issue 15: passwords and sessions.

* a one-time password (a new user's, an administrator's reset, the first administrator's)
  must be changed at the first sign-in: the sign-in says ``must_change_password``, every
  other route answers 403 (pages go to the change page) until it is changed;
* ``POST /api/auth/password`` and its page; the other sessions end;
* an administrator's reset ends every session of the user;
* the password policy (NIST SP 800-63B): length, breached list, repeats, runs, the user's name;
* the optional TOTP second factor of reviewers and administrators, each code good once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from opendvi.service import bootstrap
from opendvi.service.security import common_passwords, password_problem
from tests.servicekit import BACKENDS, assert_error_shape, bearer, make_app, migrated_engine, password_of

NEW = "grey heron over the marsh"


@pytest.fixture(params=BACKENDS)
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    with migrated_engine(request.param, tmp_path) as engine:
        yield TestClient(make_app(engine, demo=False))


def _login(client: TestClient, username: str, password: str, **extra: Any) -> Any:
    r = client.post("/api/auth/login", json={"username": username, "password": password, **extra})
    client.cookies.clear()
    return r


@pytest.mark.parametrize("password", [
    "short-pw-1",                       # too short
    "aaaaaaaaaaaaaaaa",                 # too few different characters
    "abababababababab",
    "123456789012",                     # a run
    "qwertyuiopasdf",
    "password12345",                    # a breached password with digits around it
    "!!Password2024!!",
    "iloveyou1234567",
    "1234567890123456",
    "admin-password-ok",                # holds the user's name
    "my opendvi password",              # holds the service's name
])
def test_the_policy_refuses_weak_passwords(password: str) -> None:
    assert password_problem(password, username="admin") is not None


@pytest.mark.parametrize("password", [NEW, "correct horse battery staple", "Tr0ub4dor&3-plus-more", "7jK#mq2!Lp9z"])
def test_the_policy_accepts_good_passwords(password: str) -> None:
    assert password_problem(password, username="admin") is None


def test_the_bundled_list_is_there() -> None:
    common = common_passwords()
    assert len(common) > 19_000 and "password" in common and "123456" in common


def test_a_new_user_must_change_the_one_time_password(client: TestClient) -> None:
    admin = bearer(client, "admin")
    weak = client.post("/api/users", json={"username": "newbie", "password": "password", "role": "reviewer"},
                       headers=admin)
    assert assert_error_shape(weak, 422)["message"].startswith("password refused")
    r = client.post("/api/users", json={"username": "newbie", "password": "one-time 4471 pass", "role": "reviewer"},
                    headers=admin)
    assert r.status_code == 201, r.text
    login = _login(client, "newbie", "one-time 4471 pass")
    assert login.status_code == 200 and login.json()["must_change_password"] is True
    h = {"Authorization": f"Bearer {login.json()['token']}"}
    for method, path in (("GET", "/api/operations"), ("GET", "/api/identifications"), ("GET", "/api/audit"),
                         ("POST", "/api/auth/totp/setup")):
        err = assert_error_shape(client.request(method, path, headers=h, json={"password": "x"}), 403)
        assert err["code"] == "password_change_required"
    assert client.get("/api/me", headers=h).status_code == 200
    page = client.get("/identifications", headers={**h, "accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/account/password"
    assert client.get("/account/password", headers={**h, "accept": "text/html"}).status_code == 200
    # the change: wrong current password, a weak new one, then a good one
    bad = client.post("/api/auth/password", json={"old_password": "nope", "new_password": NEW}, headers=h)
    assert assert_error_shape(bad, 403)["code"] == "wrong_password"
    weak = client.post("/api/auth/password", json={"old_password": "one-time 4471 pass",
                                                   "new_password": "newbie-1234567"}, headers=h)
    assert_error_shape(weak, 422)
    ok = client.post("/api/auth/password", json={"old_password": "one-time 4471 pass", "new_password": NEW},
                     headers=h)
    assert ok.status_code == 200, ok.text
    assert client.get("/api/identifications", headers=h).status_code == 200
    again = _login(client, "newbie", NEW)
    assert again.status_code == 200 and again.json()["must_change_password"] is False
    assert _login(client, "newbie", "one-time 4471 pass").status_code == 401
    actions = [e["action"] for e in client.get("/api/audit", headers=admin).json()]
    assert "user.password_changed" in actions


def test_a_users_page_password_is_one_time_too(client: TestClient) -> None:
    admin = bearer(client, "admin")
    r = client.post("/users", data={"username": "paged", "role": "reviewer"}, headers=admin)
    assert r.status_code == 200
    password = r.text.split("One-time password (shown once): ")[1].split("<")[0].strip()
    assert _login(client, "paged", password).json()["must_change_password"] is True


def test_an_administrators_reset_ends_every_session(client: TestClient) -> None:
    admin = bearer(client, "admin")
    sessions = [bearer(client, "lab") for _ in range(2)]
    assert all(client.get("/api/me", headers=h).status_code == 200 for h in sessions)
    r = client.patch("/api/users/lab", json={"password": "reset by admin 8812"}, headers=admin)
    assert r.status_code == 200, r.text
    for h in sessions:
        assert_error_shape(client.get("/api/me", headers=h), 401)
    login = _login(client, "lab", "reset by admin 8812")
    assert login.json()["must_change_password"] is True


def test_changing_ones_password_ends_the_other_sessions(client: TestClient) -> None:
    other = bearer(client, "dvi")
    login = _login(client, "dvi", password_of("dvi"))
    h = {"Authorization": f"Bearer {login.json()['token']}"}
    r = client.post("/api/auth/password", json={"old_password": password_of("dvi"), "new_password": NEW}, headers=h)
    assert r.status_code == 200
    assert client.get("/api/me", headers=h).status_code == 200
    assert_error_shape(client.get("/api/me", headers=other), 401)


def test_the_change_page(client: TestClient) -> None:
    login = client.post("/api/auth/login", json={"username": "intake", "password": password_of("intake")})
    csrf = login.json()["csrf_token"]
    form = {"csrf_token": csrf, "old_password": password_of("intake"), "new_password": NEW,
            "new_password_again": NEW + "x"}
    r = client.post("/account/password", data=form)
    assert r.status_code == 422 and "differ" in r.text
    r = client.post("/account/password", data={**form, "new_password_again": NEW})
    assert r.status_code == 200 and "changed" in r.text
    client.cookies.clear()
    assert _login(client, "intake", NEW).status_code == 200


def test_the_first_administrator_must_change_his_password(tmp_path: Path) -> None:
    """``opendvi serve``'s administrator (generated or OPENDVI_ADMIN_PASSWORD) has a one-time password."""
    from opendvi.service.app import create_app
    from opendvi.service.settings import Settings

    with migrated_engine("sqlite", tmp_path) as engine:
        app = create_app(settings=Settings(environment="test"), engine=engine)
        pw = bootstrap.ensure_admin(app.state.sessionmaker)
        assert isinstance(pw, str) and pw != bootstrap.EXISTS
        assert bootstrap.ensure_admin(app.state.sessionmaker) == bootstrap.EXISTS
        r = TestClient(app).post("/api/auth/login", json={"username": "admin", "password": pw})
        assert r.json()["must_change_password"] is True


# ---------------------------------------------------------------------------
# TOTP
# ---------------------------------------------------------------------------


def test_totp_second_factor(client: TestClient) -> None:
    h = bearer(client, "reviewer")
    assert_error_shape(client.post("/api/auth/totp/setup", json={"password": "wrong"}, headers=h), 403)
    setup = client.post("/api/auth/totp/setup", json={"password": password_of("reviewer")}, headers=h)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["uri"].startswith("otpauth://totp/")
    # not on until a code is confirmed
    assert _login(client, "reviewer", password_of("reviewer")).status_code == 200
    assert_error_shape(client.post("/api/auth/totp/enable", json={"code": "000000"}, headers=h), 422)
    totp = pyotp.TOTP(secret)
    code = totp.now()
    assert client.post("/api/auth/totp/enable", json={"code": code}, headers=h).status_code == 200
    # now a sign-in needs the code; the code already used is refused (good once)
    r = _login(client, "reviewer", password_of("reviewer"))
    assert assert_error_shape(r, 401)["code"] == "totp_required"
    assert_error_shape(_login(client, "reviewer", password_of("reviewer"), totp=code), 401)
    import time

    later = totp.at(time.time() + 30)  # the next step's code (one step of drift is accepted)
    ok = _login(client, "reviewer", password_of("reviewer"), totp=later)
    assert ok.status_code == 200, ok.text
    assert_error_shape(_login(client, "reviewer", password_of("reviewer"), totp=later), 401)
    assert_error_shape(_login(client, "reviewer", "wrong", totp=totp.at(time.time() + 30)), 401)
    # the page asks for the code
    page = client.get("/login")
    token = client.cookies.get("opendvi_login_csrf")
    r = client.post("/login", data={"username": "reviewer", "password": password_of("reviewer"),
                                    "csrf_token": token})
    assert r.status_code == 401 and 'name="totp"' in r.text and page.status_code == 200
    # an administrator turns off a lost authenticator
    admin = bearer(client, "admin")
    assert client.patch("/api/users/reviewer", json={"totp": False}, headers=admin).status_code == 200
    assert _login(client, "reviewer", password_of("reviewer")).status_code == 200
    actions = [e["action"] for e in client.get("/api/audit", headers=admin).json()]
    assert "user.totp_enabled" in actions and "user.totp_disabled" in actions


def test_totp_is_for_reviewers_and_administrators(client: TestClient) -> None:
    for user in ("lab", "dvi", "intake", "liaison"):
        r = client.post("/api/auth/totp/setup", json={"password": password_of(user)}, headers=bearer(client, user))
        assert assert_error_shape(r, 403)["code"] == "forbidden"
    r = client.post("/api/auth/totp/setup", json={"password": password_of("admin")}, headers=bearer(client, "admin"))
    assert r.status_code == 200


# ---------------------------------------------------------------------------
# TOTP secrets sealed at rest (service/secret_box.py)
# ---------------------------------------------------------------------------


def _stored_totp(client: TestClient, username: str) -> tuple[str | None, str | None]:
    from sqlalchemy import select

    from opendvi.store.models import User

    with client.app.state.sessionmaker() as db:  # type: ignore[attr-defined]
        u = db.scalars(select(User).where(User.username == username)).one()
        return u.totp_secret, u.totp_pending


def _enable_totp(client: TestClient, username: str) -> pyotp.TOTP:
    h = bearer(client, username)
    secret = client.post("/api/auth/totp/setup", json={"password": password_of(username)}, headers=h).json()["secret"]
    totp = pyotp.TOTP(secret)
    assert client.post("/api/auth/totp/enable", json={"code": totp.now()}, headers=h).status_code == 200
    return totp


def test_totp_secrets_are_sealed_in_the_database(client: TestClient) -> None:
    h = bearer(client, "reviewer")
    secret = client.post("/api/auth/totp/setup", json={"password": password_of("reviewer")},
                         headers=h).json()["secret"]
    _stored, pending = _stored_totp(client, "reviewer")
    assert pending is not None and pending.startswith("enc1:") and secret not in pending
    totp = pyotp.TOTP(secret)
    assert client.post("/api/auth/totp/enable", json={"code": totp.now()}, headers=h).status_code == 200
    stored, pending = _stored_totp(client, "reviewer")
    assert pending is None and stored is not None and stored.startswith("enc1:") and secret not in stored
    import time

    assert _login(client, "reviewer", password_of("reviewer"), totp=totp.at(time.time() + 30)).status_code == 200


def test_a_secret_that_does_not_open_refuses_the_sign_in(client: TestClient) -> None:
    """A lost or replaced key is a 503, never "no second factor"; a sealed secret copied onto another
    user's row does not open either."""
    import time

    from sqlalchemy import update

    from opendvi.service.secret_box import SecretBox
    from opendvi.store.models import User

    totp = _enable_totp(client, "reviewer")
    app: Any = client.app
    right = app.state.secret_box
    app.state.secret_box = SecretBox(b"another key, as after a restore without secrets.key")
    r = _login(client, "reviewer", password_of("reviewer"), totp=totp.at(time.time() + 30))
    assert assert_error_shape(r, 503)["code"] == "unavailable"
    app.state.secret_box = right
    stored, _pending = _stored_totp(client, "reviewer")
    with app.state.sessionmaker() as db:
        db.execute(update(User).where(User.username == "admin").values(totp_secret=stored))
        db.commit()
    r = _login(client, "admin", password_of("admin"), totp=totp.at(time.time() + 30))
    assert assert_error_shape(r, 503)["code"] == "unavailable"


@pytest.mark.parametrize("backend", BACKENDS)
def test_secrets_stored_in_the_clear_are_sealed_at_start(backend: str, tmp_path: Path) -> None:
    import time

    from sqlalchemy import update

    from opendvi.service.secret_box import is_sealed
    from opendvi.store import db as store_db
    from opendvi.store.models import User

    secret = pyotp.random_base32()
    with migrated_engine(backend, tmp_path) as engine:
        client = TestClient(make_app(engine, demo=False))
        with store_db.transaction(store_db.session_factory(engine)) as db:  # as an earlier version stored it
            db.execute(update(User).where(User.username == "reviewer").values(totp_secret=secret))
        again = TestClient(make_app(engine, demo=False, users=False))  # a restart on the same database
        stored, _pending = _stored_totp(again, "reviewer")
        assert stored is not None and is_sealed(stored) and secret not in stored
        ok = _login(again, "reviewer", password_of("reviewer"), totp=pyotp.TOTP(secret).at(time.time() + 30))
        assert ok.status_code == 200, ok.text
        del client


def test_the_key_file_is_private_and_kept(tmp_path: Path) -> None:
    import stat

    from opendvi.service.secret_box import KEY_FILE, box_for
    from opendvi.store import db as store_db

    engine = store_db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    sealed = box_for(tmp_path, engine=engine).seal("JBSWY3DPEHPK3PXP", context="user 1 totp")
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert box_for(tmp_path, engine=engine).open(sealed, context="user 1 totp") == "JBSWY3DPEHPK3PXP"
    engine.dispose()
