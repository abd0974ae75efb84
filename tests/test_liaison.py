"""The family liaison: confirmed identifications with the missing person's name and the relatives to
notify, those still to notify first; a notification recorded (page and API) with its audit entry; only
confirmed identifications; the liaison's pages and API for the liaison only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opendvi.store.models import AuditEntry, Notification
from tests.servicekit import SECRET_NAME, assert_error_shape, bearer, make_app, match, migrated_engine

USERS = ("admin", "intake", "lab", "dvi", "reviewer", "liaison")
FUTURE = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo case matched; V1 and V2 confirmed, V3 proposed; names of M1, M2 and of F1's donors."""
    with migrated_engine("sqlite", tmp_path_factory.mktemp("liaison")) as engine:
        app = make_app(engine)
        client = TestClient(app)
        h = {u: bearer(client, u) for u in USERS}
        match(client, app, h["dvi"])
        idents: dict[str, int] = {}
        for barcode in ("V1", "V2", "V3"):
            cand = client.get(f"/api/remains/{barcode}/candidates", headers=h["dvi"]).json()[0]
            # V3's best candidate is below the decision policy (posterior 0.5): with a reason
            why = {"override_reason": "test of the liaison's list"}
            r = client.post("/api/identifications", json={"candidate_id": cand["id"], **why}, headers=h["dvi"])
            assert r.status_code == 201, r.text
            idents[barcode] = r.json()["id"]
            mp = r.json()["missing_person"]
            assert client.put(f"/api/missing-persons/{mp}/details", json={"full_name": f"{SECRET_NAME} {mp}"},
                              headers=h["intake"]).status_code == 200
            if barcode != "V3":
                r = client.post(f"/api/identifications/{idents[barcode]}/confirm", json=why, headers=h["reviewer"])
                assert r.status_code == 200, r.text
        fam = client.get(f"/api/identifications/{idents['V1']}", headers=h["dvi"]).json()["family"]
        donors = [m["donor"]["barcode"] for m in client.get(f"/api/families/{fam}", headers=h["intake"]).json()
                  ["members"] if m["donor"]]
        r = client.post(f"/donors/{donors[0]}/details", headers=h["intake"], follow_redirects=False,
                        data={"relationship": "mother", "consent": "identification", "consent_date": "2026-02-01",
                              "full_name": f"{SECRET_NAME} relative", "contact": "Kyiv, +380 67 111 22 33"})
        assert r.status_code == 303, r.text[:500]
        yield {"app": app, "client": client, "h": h, "idents": idents, "family": fam, "donors": donors}


def _section(page: str, ident: int) -> str:
    m = re.search(rf'<section id="ident-{ident}".*?</section>', page, re.S)
    assert m, page[:3000]
    return m.group(0)


def test_liaison_page__for_the_liaison_only(svc: dict[str, Any]) -> None:
    c, h = svc["client"], svc["h"]
    assert c.get("/liaison", headers=h["liaison"]).status_code == 200
    for user in ("admin", "intake", "lab", "dvi", "reviewer"):
        assert_error_shape(c.get("/liaison", headers=h[user]), 403)
        assert_error_shape(c.get(f"/api/identifications/{svc['idents']['V1']}/notifications", headers=h[user]), 403)
        assert_error_shape(c.post(f"/api/identifications/{svc['idents']['V1']}/notifications", headers=h[user],
                                  json={"method": "phone", "notified_on": "2026-01-01"}), 403)


def test_liaison_page__names_relatives_and_only_confirmed_identifications(svc: dict[str, Any]) -> None:
    c, h, ids = svc["client"], svc["h"], svc["idents"]
    page = c.get("/liaison", headers=h["liaison"]).text
    v1 = _section(page, ids["V1"])
    assert SECRET_NAME in v1 and f"{SECRET_NAME} relative" in v1 and "+380 67 111 22 33" in v1
    assert "mother" in v1 and "identification only" in v1
    assert f'action="/liaison/identifications/{ids["V1"]}/notifications"' in v1
    assert f'id="ident-{ids["V2"]}"' in page and f'id="ident-{ids["V3"]}"' not in page  # a proposal: not shown


def test_notification__recorded_listed_audited_and_the_list_puts_those_to_notify_first(svc: dict[str, Any]) -> None:
    c, h, ids = svc["client"], svc["h"], svc["idents"]
    page = c.get("/liaison", headers=h["liaison"]).text
    assert 'class="identification to-notify"' in _section(page, ids["V1"])
    form = {"donor": svc["donors"][0], "method": "in_person", "notified_on": "2026-03-04",
            "note": "told at home, with a psychologist"}
    r = c.post(f"/liaison/identifications/{ids['V1']}/notifications", data=form, headers=h["liaison"],
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/liaison#ident-{ids['V1']}", r.text[:500]
    page = c.get("/liaison", headers=h["liaison"]).text
    v1 = _section(page, ids["V1"])
    assert 'class="identification notified"' in v1 and "told at home" in v1 and "in person" in v1
    # V2, still to notify, comes before V1
    assert page.index(f'id="ident-{ids["V2"]}"') < page.index(f'id="ident-{ids["V1"]}"')
    # the API lists it
    body = c.get(f"/api/identifications/{ids['V1']}/notifications", headers=h["liaison"]).json()
    assert [(n["donor"], n["method"], n["notified_on"], n["by"]) for n in body["notifications"]] == [
        (svc["donors"][0], "in_person", "2026-03-04", "liaison")]
    assert body["missing_person_name"].startswith(SECRET_NAME)
    # the audit names the donor, method and date, not the note
    with svc["app"].state.sessionmaker() as db:
        entry = db.execute(select(AuditEntry).where(AuditEntry.action == "notification.record")).scalars().all()[-1]
    details = json.loads(entry.details)
    assert entry.object_id == str(ids["V1"]) and details["method"] == "in_person"
    assert "told at home" not in entry.details


def test_notification__api_twin_records_and_refuses_bad_input_naming_the_field(svc: dict[str, Any]) -> None:
    c, h, ids = svc["client"], svc["h"], svc["idents"]
    url = f"/api/identifications/{ids['V2']}/notifications"
    with svc["app"].state.sessionmaker() as db:
        before = db.scalar(select(func.count()).select_from(Notification))
    bad = [({"method": "pigeon", "notified_on": "2026-01-01"}, "method"),
           ({"method": "phone", "notified_on": FUTURE}, "notified_on"),
           ({"method": "phone", "notified_on": "yesterday"}, "notified_on"),
           ({"method": "phone", "notified_on": "2026-01-01", "donor": svc["donors"][0]}, "donor")]
    for body, field in bad:
        if field == "donor":  # a donor of V1's family, not of V2's
            fam_v2 = c.get(url, headers=h["liaison"]).json()["family"]
            assert fam_v2 != svc["family"]
        err = assert_error_shape(c.post(url, json=body, headers=h["liaison"]), 422)
        assert [d["field"] for d in err["details"]] == [field], err
    with svc["app"].state.sessionmaker() as db:
        assert db.scalar(select(func.count()).select_from(Notification)) == before
    r = c.post(url, json={"method": "letter", "notified_on": "2026-01-05", "note": "registered letter"},
               headers=h["liaison"])
    assert r.status_code == 201, r.text
    assert [(n["donor"], n["method"]) for n in r.json()["notifications"]] == [(None, "letter")]
    # a proposal is not notified (409), and the liaison does not see it (404)
    proposed = ids["V3"]
    err = assert_error_shape(c.post(f"/api/identifications/{proposed}/notifications",
                                    json={"method": "phone", "notified_on": "2026-01-01"}, headers=h["liaison"]), 409)
    assert "only a confirmed identification" in err["message"]
    assert_error_shape(c.get(f"/api/identifications/{proposed}/notifications", headers=h["liaison"]), 404)
    r = c.post(f"/liaison/identifications/{proposed}/notifications", headers=h["liaison"],
               data={"method": "phone", "notified_on": "2026-01-01"})
    assert r.status_code == 409


def test_notification_form__a_date_in_the_future_is_refused_and_nothing_written(svc: dict[str, Any]) -> None:
    c, h, ids = svc["client"], svc["h"], svc["idents"]
    with svc["app"].state.sessionmaker() as db:
        before = db.scalar(select(func.count()).select_from(Notification))
    r = c.post(f"/liaison/identifications/{ids['V2']}/notifications", headers=h["liaison"],
               data={"method": "phone", "notified_on": FUTURE, "note": "n"})
    assert r.status_code == 422 and 'data-field="notified_on"' in r.text and "in the future" in r.text
    with svc["app"].state.sessionmaker() as db:
        assert db.scalar(select(func.count()).select_from(Notification)) == before



def test_liaison_page__an_identification_withdrawn_after_the_family_was_told_is_flagged(svc: dict[str, Any]) -> None:
    c, h, ids = svc["client"], svc["h"], svc["idents"]
    r = c.post(f"/api/identifications/{ids['V1']}/notifications", json={"method": "phone", "notified_on": "2026-01-03"},
               headers=h["liaison"])
    assert r.status_code == 201, r.text
    assert 'id="withdrawn"' not in c.get("/liaison", headers=h["liaison"]).text
    r = c.post(f"/api/identifications/{ids['V1']}/withdraw", json={"reason": "a re-analysis"}, headers=h["reviewer"])
    assert r.status_code == 200, r.text
    page = c.get("/liaison", headers=h["liaison"]).text
    flagged = re.search(r'<section id="withdrawn".*?</section>', page, re.S)
    assert flagged and f'id="withdrawn-{ids["V1"]}"' in flagged.group(0) and SECRET_NAME in flagged.group(0)
    assert f'<section id="ident-{ids["V1"]}"' not in page  # no longer among the confirmed
    # and no notification can be recorded on it any more
    assert_error_shape(c.post(f"/api/identifications/{ids['V1']}/notifications",
                              json={"method": "phone", "notified_on": "2026-01-04"}, headers=h["liaison"]), 409)
