"""The access rules that the API, the pages and the exports share (service/access.py): the family
liaison sees confirmed identifications only, whatever filter he asks for."""

from __future__ import annotations

from typing import Any

from tests.test_service_roles import world  # noqa: F401  (the fixture: a proposed and a confirmed identification)


def test_liaison_lists_confirmed_identifications_only(world: dict[str, Any]) -> None:  # noqa: F811
    client, headers = world["client"], world["headers"]
    proposed, confirmed = world["proposed"], world["confirmed"]
    liaison, reviewer = headers["liaison"], headers["reviewer"]

    rows = client.get("/api/identifications", headers=liaison).json()
    assert confirmed in {r["id"] for r in rows} and {r["state"] for r in rows} == {"confirmed"}
    assert client.get("/api/identifications?state=proposed", headers=liaison).json() == []
    assert client.get(f"/api/identifications/{proposed}", headers=liaison).status_code == 404
    assert proposed in {r["id"] for r in client.get("/api/identifications?state=proposed", headers=reviewer).json()}

    # the page: a filter on another state still shows the liaison his confirmed identifications, never others
    for state in ("", "proposed", "rejected"):
        page = client.get(f"/identifications?state={state}", headers=liaison).text
        assert f'id="ident-{confirmed}"' in page and f'id="ident-{proposed}"' not in page
    assert f'id="ident-{proposed}"' in client.get("/identifications?state=proposed", headers=reviewer).text


def test_administrator_cannot_demote_or_deactivate_himself(world: dict[str, Any]) -> None:  # noqa: F811
    client, admin = world["client"], world["headers"]["admin"]
    for body in ({"role": "reviewer"}, {"active": False}):
        r = client.patch("/api/users/admin", json=body, headers=admin)
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    r = client.post("/users/admin", data={"role": "reviewer", "active": "yes", "csrf_token": ""}, headers=admin)
    assert r.status_code == 409
    assert client.get("/api/me", headers=admin).json()["role"] == "administrator"
